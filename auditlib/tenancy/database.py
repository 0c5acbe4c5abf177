"""Which tables of a migrated schema are tenant-owned, and what the org table is.

Shared by the db checks (SEC-010, PERF-001) and the database notebook. A tenant table is
one of the configured ``tenant_tables`` that exists, any table that has the org column,
or any table that references a tenant table (transitively); the org table itself (the
table the org column's foreign keys point to) is not.
"""
from __future__ import annotations

from collections import Counter

from ..facts.dbschema import Schema

DEFAULT_ORG_COLUMN = "org_id"
DEFAULT_TENANT_TABLES: list[str] = []  # none expected by name: derived from the org column and its FKs
_ORG_TABLE_NAMES = ("organizations", "organisations", "orgs", "tenants", "companies", "accounts")


def org_column(ctx) -> str:
    return ctx.config.get("org_column", DEFAULT_ORG_COLUMN)


def org_table(schema: Schema, ctx) -> str | None:
    """``org_table`` from config, else the table the org column's FKs point to, else a
    conventionally named one that exists."""
    if ctx.config.get("org_table"):
        return ctx.config["org_table"]
    col = org_column(ctx)
    refs = Counter(fk.ref_table for fk in schema.foreign_keys if fk.columns == [col])
    if refs:
        return refs.most_common(1)[0][0]
    return next((t for t in _ORG_TABLE_NAMES if t in schema.tables), None)


def tenant_tables(schema: Schema, ctx) -> dict[str, str]:
    """{table: why it is a tenant table}, in schema order."""
    col, org = org_column(ctx), org_table(schema, ctx)
    out: dict[str, str] = {}
    expected = set(ctx.config.get("tenant_tables", DEFAULT_TENANT_TABLES))
    for name, t in schema.tables.items():
        if name == org or name == "alembic_version":
            continue
        if t.column(col):
            out[name] = f"has {col}"
        elif name in expected:
            out[name] = "listed in tenant_tables"
    changed = True
    while changed:
        changed = False
        for fk in schema.foreign_keys:
            if fk.ref_table in out and fk.table not in out and fk.table not in (org, "alembic_version"):
                out[fk.table] = f"references tenant table {fk.ref_table}"
                changed = True
    return {n: out[n] for n in schema.tables if n in out}


def coverage_frame(schema: Schema, ctx):
    """One row per table: columns, org column present / nullable / FK / indexed, RLS."""
    import pandas as pd

    from ..facts.dbschema import supporting_index

    col, org, tenants = org_column(ctx), org_table(schema, ctx), tenant_tables(schema, ctx)
    rows = []
    for name, t in schema.tables.items():
        c = t.column(col)
        rows.append({
            "table": name, "columns": len(t.columns), "tenant": tenants.get(name, ""),
            col: bool(c), "nullable": bool(c and c.nullable),
            "fk_to_org": any(fk.columns == [col] and fk.ref_table == org for fk in schema.fks_of(name)),
            "indexed": bool(c and supporting_index(schema, name, [col])),
            "rls": t.rls, "force_rls": t.force_rls, "policies": ", ".join(t.policies),
        })
    return pd.DataFrame(rows)
