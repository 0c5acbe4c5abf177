"""SEC-010: tenant tables lacking the org column (static: models and migrations)."""
from __future__ import annotations

from ..findings import Severity, db_not_verified
from ..facts.orm_schema import cap_inferred, schema
from . import check

DEFAULT_TENANT_TABLES = ["bookings", "leads", "invoices", "workers", "teams", "orders", "chat_sessions"]


@check("SEC-010", "security", "Tenant tables lacking the org column")
def tenant_tables(ctx):
    """Tables read from the ORM models (SQLAlchemy declarative, SQLModel, core ``Table``)
    and the Alembic migrations (in revision order). The org column is ``org_column``
    (default ``org_id``); a foreign key to the organisation table counts as the org column
    under another name.

    Why: a tenant table without its org column cannot be filtered by organisation: every
    query on it is cross-tenant, or depends on joins someone will forget. Severity: an
    expected tenant table (``tenant_tables``) that exists but lacks the column is a
    BLOCKER; any other table with a foreign key to a tenant table but no org column of
    its own is a WARNING (its rows are scoped only through a join). One INFO lists the
    tenant tables found. Not flagged: expected tables the app does not have at all, the
    organisation table itself, tables unrelated to tenant data. The database stage
    confirms against ``information_schema``.
    """
    chk = tenant_tables.check
    if ctx.db_stage_owns():
        return  # the db half reads the migrated schema (and falls back to this if it cannot)
    s = schema(ctx)
    if not s.tables:
        yield db_not_verified(ctx, chk.id, chk.area, "tenant tables (static)",
                           "no ORM models and no Alembic create_table calls were found")
        return
    if not s.org_table and not s.tenant_tables:
        first = s.tables[sorted(s.tables)[0]]
        yield chk.finding(
            ctx, Severity.INFO, "No organisation concept in the schema: single-tenant",
            f"No table has `{s.org_column}` and no organisation table exists, so the app keeps one "
            "tenant's data; tenant-isolation checks do not apply. If tenancy lives elsewhere (per-tenant "
            "databases, another column name), set [tool.auditlib] org_column / org_table.",
            "", first.file, first.line, key="single-tenant")
        return
    expected = list(ctx.config.get("tenant_tables", DEFAULT_TENANT_TABLES))
    tenant = set(s.tenant_tables)
    for name in sorted(s.tables):
        t = s.tables[name]
        if name in tenant or name == s.org_table:
            continue
        file, line = (t.file, t.line) if t.source != "migration" or not t.migration else t.migration
        refs = sorted({fk for fk in t.fks().values() if fk in tenant})
        if name in expected:
            sev, caveat = cap_inferred(ctx, Severity.BLOCKER)
            yield chk.finding(
                ctx, sev, f"Tenant table `{name}` has no `{s.org_column}` column",
                f"`{name}` is an expected tenant table but neither its model nor its migrations declare "
                f"`{s.org_column}`: its rows cannot be filtered by organisation." + caveat,
                f"Add `{s.org_column}` (NOT NULL, foreign key to {s.org_table or 'the organisation table'}, "
                "indexed) with a migration that backfills existing rows, and filter every query on it.",
                file, line, tables=[name])
        elif refs:
            yield chk.finding(
                ctx, Severity.WARNING, f"Table `{name}` references tenant data but has no `{s.org_column}`",
                f"`{name}` points at {', '.join(refs)} but carries no org column of its own: its rows can "
                "only be scoped through a join, which one query will eventually forget.",
                f"Add `{s.org_column}` to `{name}` (backfilled from {refs[0]}) and filter on it, or document "
                "that it is only ever read through its parent.", file, line, tables=[name])
    first = next(iter(s.tables.values()))
    yield chk.finding(ctx, Severity.INFO, f"{len(tenant)} tenant table(s) with an org column",
                      f"Tables carrying the org column: {', '.join(sorted(tenant)) or 'none'}; organisation "
                      f"table: {s.org_table or 'not found'}.", "", first.file, first.line, key="summary")
