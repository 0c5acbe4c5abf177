"""REL-007 (static fallback): the e-mail de-duplication constraint, read from the migrations."""
from __future__ import annotations

import re

from ..findings import Severity, db_not_verified
from ..facts.migration_schema import Index, Table, schema_for
from . import check

DEFAULT_TABLE = "email_events"
DEFAULT_COLUMNS = ["booking_id", "invoice_id", "email_type"]
EMAIL_LOG = re.compile(r"e?mail.*(event|log|sent|outbox|deliver|dispatch)|(sent|outbound)_e?mails?", re.I)


def email_tables(schema, configured: str) -> list[Table]:
    t = schema.table(configured)
    if t is not None:
        return [t]
    return [t for name, t in schema.tables.items() if EMAIL_LOG.search(name)]


def dedup_index(t: Table, columns: list[str]) -> Index | None:
    """The unique index / constraint over the de-duplication key: its columns are a subset
    of ``columns`` including the type column (the last one) and at least one other."""
    want, kind_col = set(columns), columns[-1]
    best = None
    for ix in t.indexes:
        cols = set(ix.columns)
        if ix.unique and kind_col in cols and cols <= want and len(cols) >= 2:
            if best is None or len(cols) > len(best.columns):
                best = ix
    return best


@check("REL-007", "reliability", "E-mail de-duplication constraint")
def email_dedup(ctx):
    """Static fallback of the database check: the e-mail events table (config
    ``email_dedup_table``, default ``email_events``; otherwise tables named like an
    e-mail log / outbox) as the migrations build it, and its unique constraint over the
    de-duplication key (config ``email_dedup_columns``, default ``booking_id,
    invoice_id, email_type``): ``sa.UniqueConstraint`` in ``op.create_table``,
    ``op.create_unique_constraint``, ``op.create_index(unique=True)`` or raw
    ``CREATE UNIQUE INDEX``.

    Why: without it, a retried or concurrently running job sends the same e-mail twice
    (check-then-insert races). WARNING when there is no such unique constraint; WARNING
    when it covers nullable columns without ``postgresql_nulls_not_distinct=True`` /
    ``NULLS NOT DISTINCT`` (PostgreSQL treats NULLs as distinct: two rows
    ``(booking 7, NULL, 'reminder')`` do not conflict, so booking e-mails are never
    de-duplicated). Not flagged: partial unique indexes (one per nullable column,
    ``WHERE x IS NOT NULL``), which de-duplicate correctly; no e-mail events table at
    all (INFO: nothing to check). No migrations found is a "not verified" WARNING. When
    the audit has a database (``--db``) this fallback stays silent and the db half reports.
    """
    chk = email_dedup.check
    if not ctx.layout.migration_files:
        yield db_not_verified(ctx, chk.id, chk.area, "e-mail de-duplication (static fallback)",
                           "no Alembic revision files found to read the schema from")
        return
    if ctx.db_stage_owns():
        return  # a database is available: the db-source half of this check reads the real catalogue
    schema = schema_for(ctx)
    configured = ctx.config.get("email_dedup_table", DEFAULT_TABLE)
    columns = list(ctx.config.get("email_dedup_columns", DEFAULT_COLUMNS))
    tables = email_tables(schema, configured)
    if not tables:
        yield chk.finding(ctx, Severity.INFO, "No e-mail events table in the migrations",
                          f"No table `{configured}` (nor one named like an e-mail log) is created by the "
                          "migrations: there is no e-mail de-duplication table to check.", "",
                          ctx.layout.migration_files[-1], None, excerpt="", key="no-table")
        return
    for t in tables:
        key_cols = [c for c in columns if c in t.columns] or columns
        ix = dedup_index(t, key_cols)
        if ix is None:
            partial = [i for i in t.indexes if i.unique and i.partial and key_cols[-1] in i.columns]
            if partial:
                continue
            yield chk.finding(ctx, Severity.WARNING, f"No unique constraint de-duplicates `{t.name}`",
                              f"(static fallback, read from the migrations) `{t.name}` is created without a unique constraint over "
                              f"({', '.join(key_cols)}): a retried or concurrent job can record and send the "
                              "same e-mail twice.",
                              f"Add `op.create_unique_constraint('uq_{t.name}_dedup', '{t.name}', {key_cols!r}, "
                              "postgresql_nulls_not_distinct=True)` (PostgreSQL 15+) and insert with ON CONFLICT "
                              "DO NOTHING before sending.", t.file, t.line, tables=[t.name], key=f"missing:{t.name}")
            continue
        nullable = [c for c in ix.columns if c in t.columns and t.columns[c].nullable]
        if nullable and not ix.nulls_not_distinct:
            yield chk.finding(ctx, Severity.WARNING,
                              f"Unique constraint on `{t.name}` does not de-duplicate rows with NULLs",
                              f"(static fallback, read from the migrations) UNIQUE ({', '.join(ix.columns)}) includes nullable column(s) "
                              f"{', '.join(nullable)}; PostgreSQL treats NULLs as distinct, so two rows that differ "
                              "only by a NULL never conflict and the e-mail is sent twice.",
                              "Recreate it with `postgresql_nulls_not_distinct=True` (UNIQUE NULLS NOT DISTINCT, "
                              "PostgreSQL 15+), or use one partial unique index per nullable column.",
                              ix.file, ix.line, tables=[t.name], key=f"nulls:{t.name}")
