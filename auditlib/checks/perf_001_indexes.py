"""PERF-001 (static fallback): indexes read from the Alembic migrations."""
from __future__ import annotations

import re

from ..findings import Severity, db_not_verified
from ..facts.migration_schema import schema_for
from . import check

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
    it (``auditlib.facts.migration_schema``: ``op.create_table`` / ``create_index`` /
    ``create_unique_constraint`` / raw ``CREATE INDEX`` replayed base to head), then:

    - every foreign key whose columns are not the leading columns of some index (a
      primary key and a unique constraint count) — RECOMMENDATION (joins and parent
      deletes scan the child table);
    - every table that has the org column (config ``org_column``, default ``org_id``)
      without an index led by it — WARNING (every tenant-scoped query scans the table);
    - required indexes (config ``required_indexes``, default
      ``bookings(starts_at)``, ``email_events(booking_id, email_type)``) missing on
      tables that exist — RECOMMENDATION; an index led by the org column followed by
      the required columns counts (tenant-scoped queries use it).

    Not flagged: tables dropped by later revisions, partial indexes are not counted as
    covering, required indexes on tables that do not exist. No migrations found is a
    "not verified" WARNING. Findings say they come from the migrations, not the database;
    when the audit has a database (``--db``), this fallback stays silent and the db half
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
    for t in schema.tables.values():
        for fk in t.foreign_keys:
            if fk.columns and t.covered(fk.columns) is None:
                cols = ", ".join(fk.columns)
                yield chk.finding(ctx, Severity.RECOMMENDATION, f"Foreign key {t.name}({cols}) is not indexed",
                                  f"No index on {t.name} starts with ({cols}) (read from the migrations): joins to "
                                  f"{fk.ref_table} and deletes of {fk.ref_table} rows scan {t.name}.",
                                  f"Add `op.create_index('ix_{t.name}_{'_'.join(fk.columns)}', '{t.name}', "
                                  f"{list(fk.columns)!r})` in a new revision.", fk.file, fk.line,
                                  tables=[t.name], key=f"fk:{t.name}:{cols}")
        if org in t.columns and t.covered((org,)) is None:
            col = t.columns[org]
            yield chk.finding(ctx, Severity.WARNING, f"Tenant column {t.name}.{org} is not indexed",
                              f"No index on {t.name} starts with {org} (read from the migrations): every "
                              "tenant-scoped query scans the whole table.",
                              f"Add `op.create_index('ix_{t.name}_{org}', '{t.name}', ['{org}'])` (or a composite "
                              f"index led by {org}).", col.file or t.file, col.line or t.line, tables=[t.name], key=f"org:{t.name}")
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
