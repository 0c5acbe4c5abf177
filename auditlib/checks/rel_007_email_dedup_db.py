"""REL-007 (db half): the email de-duplication unique constraint in the migrated schema."""
from __future__ import annotations

from ..findings import Severity
from ..facts.schema_sources import schema_sources
from . import check, static_fallback

DEFAULT_TABLE = "email_events"
DEFAULT_TYPE_COLUMNS = ["email_type", "type", "kind", "template"]


def email_log_table(schema, ctx) -> tuple[str, str] | None:
    """(table, type column): ``email_dedup_table`` from config, else a table whose name
    mentions email and that has a type-like column."""
    names = [ctx.config.get("email_dedup_table", DEFAULT_TABLE)]
    names += [t for t in schema.tables if "email" in t and t not in names]
    for name in names:
        t = schema.tables.get(name)
        typ = next((c for c in DEFAULT_TYPE_COLUMNS if t and t.column(c)), None)
        if t and typ:
            return name, typ
    return None


@check("REL-007", "reliability", "Email de-duplication unique constraint (migrated schema)", source="db")
def email_dedup_db(ctx):
    """Finds the email log table (``email_dedup_table``, default ``email_events``, else a
    table named like ``*email*`` with an ``email_type``/``type``/``kind``/``template``
    column) and its unique indexes (pg_index, which information_schema cannot show:
    ``indnullsnotdistinct`` and partial predicates). WARNING: no unique index covers the
    type column (two workers or a retried job send the same email twice); the only
    covering unique index has nullable columns and treats NULLs as distinct (the
    PostgreSQL default: ``UNIQUE (booking_id, invoice_id, email_type)`` never conflicts
    while ``invoice_id`` is NULL, so it de-duplicates nothing for booking emails). Fine
    (INFO): ``UNIQUE NULLS NOT DISTINCT``, all key columns NOT NULL, or a partial unique
    index (the per-NULL-pattern alternative). INFO when no email log table exists (the
    static REL-006/REL-007 checks look at the sending code). When the stage cannot run:
    a WARNING (static fallback: the static REL-007 check reads the migrations).
    """
    from ..stages.database import migrated_database

    chk = email_dedup_db.check
    st = migrated_database(ctx)
    if not st.ok:
        yield st.not_verified(chk, "the email de-duplication constraint",
                              "the static REL-007 check reads the migrations instead")
        yield from static_fallback(ctx, "REL-007")
        return
    s, src = st.schema, schema_sources(ctx)
    found = email_log_table(s, ctx)
    if found is None:
        yield chk.finding(ctx, Severity.INFO, "No email log table in the schema",
                          "No table records sent emails, so the database cannot de-duplicate them; the "
                          "sending code must be idempotent on its own.",
                          "Record sends in a table (e.g. email_events) with UNIQUE NULLS NOT DISTINCT "
                          "(booking_id, invoice_id, email_type).", *src.fallback, source="db", key="no-table")
        return
    name, typ = found
    t = s.tables[name]
    uniques = [i for i in s.indexes_of(name) if i.unique and i.valid and not i.primary and typ in i.columns]
    good = [i for i in uniques if i.nulls_not_distinct or i.predicate is not None
            or all(c and t.column(c) and not t.column(c).nullable for c in i.columns)]
    if good:
        i = good[0]
        yield chk.finding(ctx, Severity.INFO, f"Email de-duplication: {i.name} on {name}",
                          f"{i.definition}" + (" (NULLS NOT DISTINCT)" if i.nulls_not_distinct else ""), "",
                          *src.where(table=name, name=i.constraint or i.name), source="db", tables=[name],
                          key="dedup-ok")
    elif uniques:
        i = uniques[0]
        nullable = [c for c in i.columns if c and t.column(c) and t.column(c).nullable]
        yield chk.finding(ctx, Severity.WARNING, f"{i.name} on {name} treats NULLs as distinct",
                          f"UNIQUE ({', '.join(map(str, i.columns))}) never conflicts while "
                          f"{', '.join(nullable)} is NULL: emails whose row has a NULL there (e.g. a booking "
                          "email without an invoice) can be recorded, and sent, twice.",
                          f"Recreate it as `UNIQUE NULLS NOT DISTINCT ({', '.join(map(str, i.columns))})` "
                          "(PostgreSQL 15+; SQLAlchemy: postgresql_nulls_not_distinct=True), or add partial "
                          "unique indexes per NULL pattern.",
                          *src.where(table=name, name=i.constraint or i.name), source="db", tables=[name],
                          key=f"nulls-distinct:{i.name}")
    else:
        yield chk.finding(ctx, Severity.WARNING, f"No unique constraint de-duplicates {name}",
                          f"Nothing stops two rows with the same ({typ}, target) in {name}: a retried job or "
                          "two workers send the same email twice.",
                          f"Add `UNIQUE NULLS NOT DISTINCT (booking_id, invoice_id, {typ})` (the columns "
                          "that identify one email) and insert before sending.",
                          *src.where(table=name), source="db", tables=[name], key="no-unique")
