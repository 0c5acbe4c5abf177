"""SEC-010: tenant tables lacking the org column (static: models and migrations)."""
from __future__ import annotations

import re

from ..findings import Severity, db_not_verified
from ..facts.orm_schema import cap_inferred, schema
from . import check

DEFAULT_TENANT_TABLES: list[str] = []  # none expected by name: derived from the org column and its FKs
# columns that hold personal data (a person's identity or contact details)
PERSONAL = re.compile(r"(^|_)(e_?mail|phone|mobile|first_?name|last_?name|full_?name|display_?name|given_?name|"
                      r"family_?name|user_?name|address|street|post_?code|zip_?code|birth\w*|dob|ssn|national_id|"
                      r"ip|ip_address|user_agent|password\w*|avatar\w*|gender|user_id|customer_id|contact_id|"
                      r"person_id|member_id|account_id)$", re.I)
# columns of anonymous state: keys, timestamps, counters, flags, opaque state/payload
STATE = re.compile(r"^(id|uuid|key|token|hash|nonce|state|status|data|payload|value|expires\w*|ttl|version|"
                   r"count|hits|attempts|\w+_(id|uuid|key|token|hash|at|on|state|status|data|payload|count|"
                   r"attempts|ttl)|is_\w+|has_\w+|created|updated|deleted|widget\w*|\w*_?json)$", re.I)
PERSON_TABLES = ("users", "user", "accounts", "account", "customers", "customer", "members", "people", "persons",
                 "contacts", "profiles", "employees", "patients", "clients_users")


def tenant_tables_configured(ctx) -> bool:
    """Whether the auditor named the tenant tables (not a named profile's generic list)."""
    from ..target.config import profile_value

    listed = list(ctx.config.get("tenant_tables", DEFAULT_TENANT_TABLES))
    return listed != DEFAULT_TENANT_TABLES and listed != list(profile_value(ctx.config, "tenant_tables") or [])


def person_tables(tables: dict[str, list[str]]) -> set[str]:
    """Tables that describe people: named like it, or holding an e-mail column
    (``tables``: name -> column names)."""
    return {n for n, cols in tables.items() if n in PERSON_TABLES or any(c.lower() == "email" for c in cols)}


def personal(columns: list[str], fk_targets: list[str], persons: set[str]) -> bool:
    """Whether rows with these columns / foreign keys are more than anonymous state:
    personal data (e-mail, phone, names, IP, a user id, a foreign key to people) or any
    business value (a name, an amount, a text) beyond keys, timestamps, counters, flags
    and opaque state."""
    return any(PERSONAL.search(c) or not STATE.match(c) for c in columns) or any(t in persons for t in fk_targets)


@check("SEC-010", "security", "Tenant tables lacking the org column")
def tenant_tables(ctx):
    """Tables read from the ORM models (SQLAlchemy declarative, SQLModel, core ``Table``)
    and the Alembic migrations (in revision order). The org column is ``org_column``
    (default ``org_id``); a foreign key to the organisation table counts as the org column
    under another name.

    Why: a tenant table without its org column cannot be filtered by organisation: every
    query on it is cross-tenant, or depends on joins someone will forget. Severity: an
    expected tenant table (``tenant_tables``: none by default, where tenant tables are
    derived from the org column and its foreign keys; a profile or the auditor may name
    them) that exists but lacks the column is a BLOCKER; any other table with a foreign key to a tenant table but no org column of
    its own is a RECOMMENDATION: its rows are scoped through that parent, and the org
    column is defence in depth (whether each query checks the parent is judged per
    endpoint by SEC-011/SEC-013). One INFO lists the tenant tables found. Not flagged:
    expected tables the app does not have at all, the organisation table itself, tables
    unrelated to tenant data, and a table that only a named profile's generic
    ``tenant_tables`` list names (not the auditor's own list) and that holds anonymous state: no parent tenant table, no personal data
    (no e-mail/phone/name/address/IP/user-id columns, no foreign key to a table of
    people), only keys, timestamps, counters, flags and opaque state columns; it is
    named in the INFO instead. The database stage
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
    configured = tenant_tables_configured(ctx)
    expected = list(ctx.config.get("tenant_tables", DEFAULT_TENANT_TABLES))
    tenant = set(s.tenant_tables)
    persons = person_tables({n: list(t.columns) for n, t in s.tables.items()})
    anonymous: list[str] = []
    for name in sorted(s.tables):
        t = s.tables[name]
        if name in tenant or name == s.org_table:
            continue
        file, line = (t.file, t.line) if t.source != "migration" or not t.migration else t.migration
        refs = sorted({fk for fk in t.fks().values() if fk in tenant})
        if name in expected and not configured and not refs \
                and not personal(list(t.columns), list(t.fks().values()), persons):
            anonymous.append(name)  # a default name, but anonymous state: no person, no parent, no org
            continue
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
                ctx, Severity.RECOMMENDATION, f"Table `{name}` is scoped only through its parent "
                f"({', '.join(refs)})",
                f"`{name}` points at {', '.join(refs)} but carries no org column of its own: its rows are tied "
                "to an organisation through that parent, so every query on it must join or check the parent. "
                "An org column here is defence in depth (whether each query does check the parent is judged "
                "per endpoint by SEC-011/SEC-013).",
                f"Add `{s.org_column}` to `{name}` (backfilled from {refs[0]}) and filter on it, or document "
                "that it is only ever read through its parent.", file, line, tables=[name])
    first = next(iter(s.tables.values()))
    yield chk.finding(ctx, Severity.INFO, f"{len(tenant)} tenant table(s) with an org column",
                      f"Tables carrying the org column: {', '.join(sorted(tenant)) or 'none'}; organisation "
                      f"table: {s.org_table or 'not found'}."
                      + (f" Not treated as tenant tables (anonymous state: no org column, no parent, no personal "
                         f"data): {', '.join(anonymous)}." if anonymous else ""),
                      "", first.file, first.line, key="summary")
