"""PERF-001 (db half): indexes of the migrated schema."""
from __future__ import annotations

import re

from ..facts.dbschema import supporting_index
from ..facts.migration_schema import schema_for
from ..facts.org_reads import OrgIndexRule, org_column_at
from ..facts.schema_sources import schema_sources
from ..findings import Severity
from ..tenancy.database import org_column, tenant_tables
from . import check, static_fallback

_BASIS = "in the migrated database: its catalogue after `alembic upgrade head`"

DEFAULT_REQUIRED_INDEXES = ["bookings(starts_at)", "email_events(booking_id, email_type)"]
_SPEC = re.compile(r"^\s*([\w.]+)\s*\(([^)]*)\)\s*$")


@check("PERF-001", "performance", "Indexes: foreign keys, org column, required, redundant", source="db")
def indexes_db(ctx):
    """Reads the indexes the migrations build (pg_index, key columns in order). An index
    *supports* columns when they are its leading key columns (any order), it is valid and
    not partial.

    - The org column (``org_column``) of a tenant table with no supporting index: the
      same query evidence and severity rule as the static half
      (``auditlib.facts.org_reads``), with the live catalogue as the index truth (an
      index the migrations' replay cannot read counts; an index only the ORM model
      declares does not, since the migrated database lacks it). WARNING when some read
      filters the table by the org column with no other indexed or key predicate on a
      table not bounded per org, naming the query (its second location);
      RECOMMENDATION with the reason when the org column is only an extra predicate,
      the reads are bulk writes / join conditions / the org's relationship collection /
      a generic base-class filter, a unique key (org, enum or boolean columns) bounds
      the table per org, or no code names the table; not flagged when the app reads the
      table but never by the org column. Title, key and location (the line that defines
      the column for PostgreSQL in the migrations, else the schema's source) are the
      static half's: the two halves report one defect under one fingerprint.
    - WARNING: a required index (``required_indexes``, default ``bookings(starts_at)``,
      ``email_events(booking_id, email_type)``) is missing on a table that exists — an
      index led by the org column followed by the required columns counts, since
      tenant queries filter by org first.
    - RECOMMENDATION: a foreign key without a supporting index (joins and ``ON DELETE``
      on the parent scan the child table; a foreign key on the org column is part of
      the org-column finding when there is one; key and location are the static
      half's); an index identical to another one; a
      plain btree index whose columns are a leading prefix of another btree index
      (redundant: costs writes, buys nothing).

    Not flagged: unique / primary-key indexes as redundant (they enforce constraints),
    partial or expression indexes, required indexes of tables that do not exist. When
    the stage cannot run: a WARNING (static fallback: the static PERF-001 check reads
    the migrations).
    """
    from ..stages.database import migrated_database

    chk = indexes_db.check
    st = migrated_database(ctx)
    if not st.ok:
        yield st.not_verified(chk, "indexes of the migrated schema",
                              "the static PERF-001 check reads the migrations instead")
        yield from static_fallback(ctx, "PERF-001")
        return
    s, col, src = st.schema, org_column(ctx), schema_sources(ctx)
    tenants = tenant_tables(s, ctx)

    def usable(table: str):  # what PostgreSQL can look rows up with: valid, not partial
        return [ix for ix in s.indexes_of(table) if ix.valid and ix.predicate is None and ix.columns]

    def small(table: str) -> set[str]:  # enum and boolean columns: a handful of values
        t = s.tables.get(table)
        return {c.name for c in t.columns if c.enum_type or c.type == "boolean"} if t is not None else set()

    rule = OrgIndexRule(ctx, col, lambda t: {ix.columns[0] for ix in usable(t) if ix.columns[0]},
                        lambda t: [tuple(ix.columns) for ix in usable(t) if ix.unique and None not in ix.columns],
                        small)
    reported = set()
    for name in tenants:
        if s.tables[name].column(col) and not supporting_index(s, name, [col]):
            f = rule.finding(chk, name, org_column_at(ctx, name, col) or src.where(table=name, column=col),
                             _BASIS, source="db")
            if f is not None:
                reported.add(name)
                yield f
    for fk in s.foreign_keys:
        if fk.columns == [col] and fk.table in reported:
            continue  # the org column's finding: an index led by it serves the foreign key too
        if not supporting_index(s, fk.table, fk.columns):
            cols = ", ".join(fk.columns)
            mig = schema_for(ctx).table(fk.table)  # where the migrations declare it, as the static half says
            at = next(((m.file, m.line) for m in (mig.foreign_keys if mig is not None else [])
                       if list(m.columns) == fk.columns), None) or src.where(table=fk.table, column=fk.columns[0])
            yield chk.finding(ctx, Severity.RECOMMENDATION, f"Foreign key {fk.table}({cols}) is not indexed",
                              f"No index on {fk.table} starts with ({cols}) ({_BASIS}): joins from "
                              f"{fk.ref_table} to {fk.table}, and every delete/update of a {fk.ref_table} row (the "
                              f"FK check), scan {fk.table}.",
                              f"`op.create_index('ix_{fk.table}_{'_'.join(fk.columns)}', '{fk.table}', "
                              f"{fk.columns!r})`.", *at, source="db", tables=[fk.table],
                              key=f"fk:{fk.table}:{cols}")  # the static half's key: one defect
    yield from _required(ctx, chk, s, col, src)
    yield from _redundant(ctx, chk, s, src)


def _required(ctx, chk, s, col, src):
    for spec in ctx.config.get("required_indexes", DEFAULT_REQUIRED_INDEXES):
        m = _SPEC.match(spec)
        if not m:
            continue
        table, cols = m.group(1), [c.strip() for c in m.group(2).split(",") if c.strip()]
        t = s.tables.get(table)
        if t is None or not all(t.column(c) for c in cols):
            continue
        ok = supporting_index(s, table, cols) or any(
            ix.valid and ix.predicate is None and ix.columns[:1] == [col] and set(ix.columns[1:len(cols) + 1]) == set(cols)
            for ix in s.indexes_of(table))
        if not ok:
            yield chk.finding(ctx, Severity.WARNING, f"Required index {spec} is missing",
                              f"The audit profile requires an index on {spec} (a hot query path); without it "
                              "the query scans the table.",
                              f"`op.create_index('ix_{table}_{'_'.join(cols)}', '{table}', {cols!r})`.",
                              *src.where(table=table, column=cols[0]), source="db", tables=[table],
                              key=f"required:{spec}")


def _redundant(ctx, chk, s, src):
    for table in s.tables:
        ixs = [i for i in s.indexes_of(table) if i.valid and i.predicate is None and None not in i.columns]
        for a in ixs:
            if a.primary or a.unique or a.method != "btree":
                continue
            for b in ixs:
                if b is a or b.method != "btree":
                    continue
                same = a.signature == b.signature
                if same and a.name < b.name:
                    continue  # report one of two identical indexes, the later name
                if same or (len(a.columns) < len(b.columns) and b.columns[:len(a.columns)] == a.columns) \
                        or (a.columns == b.columns and b.unique):
                    what = "duplicates" if same else "is a leading prefix of"
                    yield chk.finding(ctx, Severity.RECOMMENDATION, f"Index {a.name} is redundant",
                                      f"{a.name} ({', '.join(a.columns)}) {what} {b.name} "
                                      f"({', '.join(b.columns)}): PostgreSQL can use {b.name} for the same "
                                      "lookups, and every write maintains both.",
                                      f"Drop {a.name} in a migration (`op.drop_index('{a.name}', table_name='{table}')`).",
                                      *src.where(table=table, name=a.name), source="db", tables=[table],
                                      key=f"redundant:{a.name}")
                    break
