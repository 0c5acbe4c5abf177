"""PERF-001 (db half): indexes of the migrated schema."""
from __future__ import annotations

import re

from ..facts.dbschema import supporting_index
from ..tenancy.database import org_column, tenant_tables
from ..findings import Severity
from ..facts.schema_sources import schema_sources
from . import check, static_fallback

DEFAULT_REQUIRED_INDEXES = ["bookings(starts_at)", "email_events(booking_id, email_type)"]
_SPEC = re.compile(r"^\s*([\w.]+)\s*\(([^)]*)\)\s*$")


@check("PERF-001", "performance", "Indexes: foreign keys, org column, required, redundant", source="db")
def indexes_db(ctx):
    """Reads the indexes the migrations build (pg_index, key columns in order). An index
    *supports* columns when they are its leading key columns (any order), it is valid and
    not partial. WARNING: the org column (``org_column``) of a tenant table has no
    supporting index (every tenant-scoped query scans the table); a required index
    (``required_indexes``, default ``bookings(starts_at)``, ``email_events(booking_id,
    email_type)``) is missing on a table that exists — an index led by the org column
    followed by the required columns counts, since tenant queries filter by org first.
    RECOMMENDATION: a foreign key without a supporting index (joins and ``ON DELETE`` on
    the parent scan the child table); an index identical to another one; a plain btree
    index whose columns are a leading prefix of another btree index (redundant: costs
    writes, buys nothing). Not flagged: unique / primary-key indexes as redundant (they
    enforce constraints), partial or expression indexes, required indexes of tables that
    do not exist. When the stage cannot run: a WARNING (static fallback: the static
    PERF-001 check reads the migrations).
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
    for name in tenants:
        if s.tables[name].column(col) and not supporting_index(s, name, [col]):
            yield chk.finding(ctx, Severity.WARNING, f"{name}.{col} is not indexed",
                              f"Every tenant-scoped query on {name} filters by {col}; without an index it scans "
                              "the whole table (all tenants' rows) and slows down as any tenant grows.",
                              f"`op.create_index('ix_{name}_{col}', '{name}', ['{col}'])` "
                              "(postgresql_concurrently=True on a live table).",
                              *src.where(table=name, column=col), source="db", tables=[name],
                              key=f"org-index:{name}")
    for fk in s.foreign_keys:
        if fk.columns == [col] and fk.table in tenants:
            continue  # reported above as the org column
        if not supporting_index(s, fk.table, fk.columns):
            cols = ", ".join(fk.columns)
            yield chk.finding(ctx, Severity.RECOMMENDATION, f"Foreign key {fk.table}({cols}) has no index",
                              f"Joins from {fk.ref_table} to {fk.table}, and every delete/update of a "
                              f"{fk.ref_table} row (the FK check), scan {fk.table}.",
                              f"`op.create_index('ix_{fk.table}_{'_'.join(fk.columns)}', '{fk.table}', "
                              f"{fk.columns!r})`.",
                              *src.where(table=fk.table, column=fk.columns[0]), source="db", tables=[fk.table],
                              key=f"fk-index:{fk.table}:{cols}")
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
