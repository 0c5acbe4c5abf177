"""SEC-010 (db half): tenant tables and their org column in the migrated schema."""
from __future__ import annotations

from ..tenancy.database import org_column, org_table, tenant_tables
from ..findings import Severity
from ..facts.schema_sources import schema_sources
from . import check, static_fallback
from .sec_010_tenant_tables import person_tables, personal, tenant_tables_configured


@check("SEC-010", "security", "Tenant tables and their org column (migrated schema)", source="db")
def tenant_columns_db(ctx):
    """Reads the schema the target's migrations actually build (pg_catalog). Tenant
    tables are the configured ``tenant_tables`` that exist, every table with the org
    column (``org_column``, default ``org_id``) and every table that references a tenant
    table. BLOCKER: a configured tenant table without the org column that is not scoped
    through a parent either (no foreign key to another tenant table): its rows cannot be
    tied to an organisation, so tenant isolation cannot be enforced (not when the table
    is only on the *default* ``tenant_tables`` list and holds anonymous state: no parent,
    no personal-data column, no foreign key to a table of people). RECOMMENDATION: a
    tenant table without the org column that is scoped only through a parent (defence
    in depth: every query must join the parent; each endpoint's scoping is judged by
    SEC-011/SEC-013). WARNING: a nullable org column (rows without an
    owner: invisible to every tenant, or leaked by ``IS NULL`` filters); an org column
    without a foreign key to the org table (orphaned tenant ids, no cascade). INFO:
    row-level security per tenant table (enabled / forced / policies), as context.
    Not flagged: schemas where no table has the org column (not multi-tenant; INFO),
    the org table itself, ``alembic_version``. When the stage cannot run: a WARNING
    (static fallback: the static SEC-010 check reads models and migrations).
    """
    from ..stages.database import migrated_database

    chk = tenant_columns_db.check
    st = migrated_database(ctx)
    if not st.ok:
        yield st.not_verified(chk, "tenant columns in the migrated schema",
                              "the static SEC-010 check reads the models and migrations instead")
        yield from static_fallback(ctx, "SEC-010")
        return
    s, col, src = st.schema, org_column(ctx), schema_sources(ctx)
    org, tenants = org_table(s, ctx), tenant_tables(s, ctx)
    if not any(t.column(col) for t in s.tables.values()):
        yield chk.finding(ctx, Severity.INFO, f"No table has a `{col}` column",
                          f"The migrated schema has no `{col}` column: the target is not multi-tenant, or its "
                          "org column has another name.", "Set org_column in [tool.auditlib] if it differs.",
                          *src.fallback, key="not-multi-tenant")
        return
    persons = person_tables({n: [c.name for c in t.columns] for n, t in s.tables.items()})
    for name, why in tenants.items():
        t = s.tables[name]
        c = t.column(col)
        if c is None:
            parents = [fk.ref_table for fk in s.fks_of(name) if fk.ref_table in tenants]
            if not parents and not tenant_tables_configured(ctx) and not personal(
                    [x.name for x in t.columns], [fk.ref_table for fk in s.fks_of(name)], persons):
                continue  # a default tenant-table name holding anonymous state (no parent, no personal data)
            sev = Severity.RECOMMENDATION if parents else Severity.BLOCKER
            how = (f"It is scoped only through {', '.join(sorted(set(parents)))}: every query must join the parent "
                   "to check the organisation." if parents else "Nothing ties its rows to an organisation.")
            yield chk.finding(ctx, sev, f"Tenant table {name} has no `{col}` column",
                              f"{name} is a tenant table ({why}) but has no `{col}`. {how} One missed filter "
                              "exposes other organisations' rows.",
                              f"Add `{col}` (NOT NULL, FK to {org or 'the org table'}, indexed) with a migration "
                              "that backfills existing rows from the parent.",
                              *src.where(table=name), source="db", tables=[name], key=f"no-org:{name}")
            continue
        if c.nullable:
            yield chk.finding(ctx, Severity.WARNING, f"{name}.{col} is nullable",
                              f"Rows of {name} may have no organisation: they are invisible to every tenant, or "
                              f"visible to all when a query tests `{col} IS NULL`.",
                              f"Backfill NULLs, then `op.alter_column('{name}', '{col}', nullable=False)`.",
                              *src.where(table=name, column=col), source="db", tables=[name], key=f"nullable:{name}")
        if org and not any(fk.columns == [col] and fk.ref_table == org for fk in s.fks_of(name)):
            yield chk.finding(ctx, Severity.WARNING, f"{name}.{col} has no foreign key to {org}",
                              f"Nothing stops {name} rows from pointing at an organisation that does not exist "
                              "(typos, deleted organisations); deleting an organisation leaves its rows behind.",
                              f"`op.create_foreign_key(None, '{name}', '{org}', ['{col}'], ['id'], "
                              "ondelete='CASCADE')` (NOT VALID first on a big table).",
                              *src.where(table=name, column=col), source="db", tables=[name], key=f"no-fk:{name}")
    if tenants:
        rows = [f"{n}: RLS {'on' if s.tables[n].rls else 'off'}"
                + (", forced" if s.tables[n].force_rls else "")
                + (f", policies {', '.join(s.tables[n].policies)}" if s.tables[n].policies else "")
                for n in tenants]
        yield chk.finding(ctx, Severity.INFO, "Row-level security on tenant tables",
                          "; ".join(rows) + ". Without RLS, tenant isolation rests on every query's filter.",
                          "", *src.fallback, source="db", tables=list(tenants), key="rls")
