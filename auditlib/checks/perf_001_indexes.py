"""PERF-001 (static fallback): indexes read from the Alembic migrations."""
from __future__ import annotations

import re

from ..findings import Severity, db_not_verified
from ..facts.migration_schema import schema_for
from ..facts.org_reads import OrgIndexRule, org_column_at, orm_indexes
from . import check

_BASIS = "read from the migrations as they run on PostgreSQL, and the ORM model's declared indexes"
DEFAULT_REQUIRED = ["bookings(starts_at)", "email_events(booking_id, email_type)"]
SPEC = re.compile(r"^\s*(\w+)\s*\(([^)]*)\)\s*$")


def parse_required(items) -> list[tuple[str, tuple[str, ...]]]:
    out = []
    for item in items:
        m = SPEC.match(item or "")
        if m:
            out.append((m.group(1), tuple(c.strip() for c in m.group(2).split(",") if c.strip())))
    return out


@check("PERF-001", "performance", "Indexes on foreign keys, tenant column and hot queries")
def indexes(ctx):
    """Static fallback of the database check: the schema as the Alembic migrations build
    it on PostgreSQL (``auditlib.facts.migration_schema``: ``op.create_table`` /
    ``create_index`` / ``create_unique_constraint`` / raw ``CREATE INDEX`` replayed base to
    head; a branch or revision guarded to another dialect, such as a SQLite-only baseline
    that returns early on PostgreSQL, is not PostgreSQL's schema), then:

    - every foreign key whose columns are not the leading columns of some index (a
      primary key and a unique constraint count) — RECOMMENDATION (joins and parent
      deletes scan the child table); a foreign key on the org column is part of the
      org-column finding when there is one (one index fixes both);
    - every table that has the org column (config ``org_column``, default ``org_id``)
      without an index led by it (the query evidence and the rule below live in
      ``auditlib.facts.org_reads``, shared with the db half, which judges the same reads
      against the live catalogue and reports the same defect under the same title, key
      and location). Covering: an index, unique constraint or primary key
      whose leading column is the org column (single or composite), in the migrations or
      declared on the ORM model (``__table_args__`` ``Index`` / ``UniqueConstraint``,
      ``mapped_column(index=True)``, mixins included). The severity follows the queries
      that read the table by the org column (``Model.org_id == x`` / ``.in_()``, import
      aliases included; ``select(Model).filter_by(org_id=...)``; a join to the org table
      through the model's relationship; SQL text ``FROM t WHERE ... org_id = ...``), each
      judged with the predicates that build the same query unconditionally (its statement,
      and ``q = q.where(...)`` / ``filters.append(...)`` outside any ``if``):
      WARNING when some read has the org column as its access path — no other predicate on
      an indexed column (primary key, an index's leading column) nor on another key
      (``*_id``, a foreign key) — on a table that is not bounded per org; the message
      names that query (a paginated list of the model first) and it is the finding's
      second location. RECOMMENDATION when the org column is only an extra predicate
      (next to the primary key, an indexed column, or an unindexed narrower key whose own
      index is the fix), when the only reads are bulk deletes/updates, join conditions, a
      load of the org's relationship collection (``selectinload(Org.backends)``: a
      per-org set loaded whole), a generic access predicate (``cls.org_id`` in a base
      class) whose callers could not be told, when a unique key (org, enum or boolean
      columns) bounds the table to a handful of rows per org, or when no model or SQL
      text names the table. A table the app reads but never filters by the org column
      (only selects it, or reaches it through a parent) is not flagged;
    - required indexes (config ``required_indexes``, default
      ``bookings(starts_at)``, ``email_events(booking_id, email_type)``) missing on
      tables that exist — RECOMMENDATION; an index led by the org column followed by
      the required columns counts (tenant-scoped queries use it).

    Not flagged: tables dropped by later revisions, partial indexes are not counted as
    covering, required indexes on tables that do not exist. No migrations found is a
    "not verified" WARNING. Findings say they come from the migrations, not the database;
    the org-column finding points at the line that defines the column for PostgreSQL.
    When the audit has a database (``--db``), this fallback stays silent and the db half
    reports.
    """
    chk = indexes.check
    if not ctx.layout.migration_files:
        yield db_not_verified(ctx, chk.id, chk.area, "indexes (static fallback)",
                           "no Alembic revision files found to read the schema from")
        return
    if ctx.db_stage_owns():
        return  # a database is available: the db-source half of this check reads the real catalogue
    schema = schema_for(ctx)
    org = ctx.config.get("org_column", "org_id")

    def leads(name: str) -> set[str]:
        """The leading column of the indexes the ORM model of ``name`` declares."""
        return {cols[0] for cols, _, _ in orm_indexes(ctx)[0].get(name, [])}

    def indexed_cols(name: str) -> set[str]:
        t = schema.table(name)
        mig = {ix.columns[0] for ix in t.indexes if ix.columns and not ix.partial} if t is not None else set()
        return mig | leads(name)

    def unique_keys(name: str) -> list[tuple[str, ...]]:
        t = schema.table(name)
        return [ix.columns for ix in (t.indexes if t is not None else []) if ix.unique and not ix.partial] + \
               [cols for cols, uniq, _ in orm_indexes(ctx)[0].get(name, []) if uniq]

    rule = OrgIndexRule(ctx, org, indexed_cols, unique_keys)
    for t in schema.tables.values():
        org_finding = None
        if org in t.columns and t.covered((org,)) is None and org not in leads(t.name):
            org_finding = rule.finding(chk, t.name, org_column_at(ctx, t.name, org), _BASIS)
        for fk in t.foreign_keys:
            if fk.columns == (org,) and org_finding is not None:
                continue  # the org column's finding: an index led by it serves the foreign key too
            if fk.columns and t.covered(fk.columns) is None:
                cols = ", ".join(fk.columns)
                yield chk.finding(ctx, Severity.RECOMMENDATION, f"Foreign key {t.name}({cols}) is not indexed",
                                  f"No index on {t.name} starts with ({cols}) (read from the migrations): joins to "
                                  f"{fk.ref_table} and deletes of {fk.ref_table} rows scan {t.name}.",
                                  f"Add `op.create_index('ix_{t.name}_{'_'.join(fk.columns)}', '{t.name}', "
                                  f"{list(fk.columns)!r})` in a new revision.", fk.file, fk.line,
                                  tables=[t.name], key=f"fk:{t.name}:{cols}")
        if org_finding is not None:
            yield org_finding
    for table, cols in parse_required(ctx.config.get("required_indexes", DEFAULT_REQUIRED)):
        t = schema.table(table)
        if t is None or not set(cols) <= set(t.columns):
            continue
        if t.covered(cols) is None and not (org in t.columns and _led_by_org(t, org, cols)):
            yield chk.finding(ctx, Severity.RECOMMENDATION, f"Required index {table}({', '.join(cols)}) is missing",
                              f"The audit profile expects an index on {table}({', '.join(cols)}) for a hot query; "
                              "the migrations create none with those leading columns.",
                              f"Add `op.create_index('ix_{table}_{'_'.join(cols)}', '{table}', {list(cols)!r})`.",
                              t.file, t.line, tables=[table], key=f"required:{table}")


def _led_by_org(t, org, cols) -> bool:
    want = set(cols)
    return any(ix.columns[:1] == (org,) and set(ix.columns[1:1 + len(want)]) == want and not ix.partial
               for ix in t.indexes)
