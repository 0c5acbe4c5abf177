"""DEP-003: data migrations (DML in revisions), org-column backfills, default organisation."""
from __future__ import annotations

import re

from ..facts.alembic_graph import read_graph
from ..facts.data_migrations import column_adds, created_tables, data_statements, project_imports
from ..findings import Severity
from . import check

_CONST = re.compile(r"^\s*(\d+|'[^']*'|:?\w+_id)\s*$")
_SQL_TEXT = re.compile(r"^\s*(?:--[^\n]*\n\s*)*(?:UPDATE|WITH)\s", re.I)


def _constant(s, value: str) -> bool:
    """The value set is one fixed organisation: a number, a string, a bind parameter
    (``:org_id``) or, in Core ``.values(org_id=default_org_id)``, a Python name. A bare
    name in SQL text (``SET organization_id = org_id``) is a column of the same row: the
    value is copied from the row, not assumed."""
    if not _CONST.match(value):
        return False
    return not (re.fullmatch(r"\s*[A-Za-z_]\w*\s*", value) and _SQL_TEXT.match(s.text or ""))


@check("DEP-003", "deployment", "Data migrations")
def data_migrations(ctx):
    """Reads every revision's upgrade() (AST, in history order) for data statements:
    ``op.execute`` with INSERT/UPDATE/DELETE SQL or Core DML, ``op.bulk_insert``, a
    bind's ``.execute`` with DML, ORM ``Session`` use. Each is reported as INFO saying
    what it does (operation, table, columns set), the org-column backfills and the
    default-organisation inserts included. WARNING: an org column (``org_column``) added
    to an existing table NOT NULL without a server default (the upgrade fails on any
    table that has rows, which an empty CI database never shows); added nullable with no
    later UPDATE that backfills it (existing rows keep no organisation); a backfill that
    sets the org column to a constant while no revision up to it inserts into the org
    table (``org_table``, default ``organizations``: the FK fails, or rows point at
    nothing; a constant is a number, a string, a bind parameter, or a Python name in Core
    ``.values()``); a revision that opens an ORM Session and imports the application's own
    modules (models change later and the old migration breaks on a fresh database).
    Not flagged: DDL in ``op.execute`` (DEP-008 lints locking), org columns created
    together with their table or added after an unconditional ``DELETE FROM`` of the
    table earlier in the same upgrade (no row left to violate NOT NULL), backfills
    computed from other tables (subqueries) or copied from another column of the same
    row (``UPDATE users SET organization_id = org_id``: the value comes from the row).
    """
    chk = data_migrations.check
    lay = ctx.layout
    col = ctx.config.get("org_column", "org_id")
    org_table = ctx.config.get("org_table") or "organizations"
    graph = read_graph(ctx.index, lay.migration_files)
    order = [r for r in graph.order()]
    app_roots = {p.split("/")[0] for p in lay.app_paths} | {p.split("/")[0].removesuffix(".py") for p in lay.app_files}
    seen_org_insert = False
    parsed = []
    for r in order:
        src = ctx.index.get(r.file)
        if src is not None and src.tree is not None:
            parsed.append((r, src, data_statements(r.file, src.tree)))
    backfilled = {(s.table, c) for _r, _s, stmts in parsed for s in stmts if s.op == "UPDATE" for c in s.sets}
    for r, src, stmts in parsed:
        new_tables = created_tables(src.tree)
        # a table emptied earlier in the same upgrade (`DELETE FROM t` without WHERE) has no rows to fail on
        emptied = {s.table: s.line for s in stmts if s.op == "DELETE" and not _where(s.text)}
        for add in column_adds(r.file, src.tree, col):
            if add.table in new_tables or emptied.get(add.table, add.line) < add.line:
                continue
            if not add.nullable and not add.server_default:
                yield chk.finding(ctx, Severity.WARNING, f"{add.table}.{col} added NOT NULL without a default or backfill",
                                  f"Revision {r.revision} adds {col} to the existing table {add.table} as NOT NULL: "
                                  "on a database where the table has rows the upgrade fails (column contains null "
                                  "values). An empty CI database does not show it.",
                                  f"Add it nullable, backfill with `UPDATE {add.table} SET {col} = ...`, then "
                                  f"`op.alter_column('{add.table}', '{col}', nullable=False)`.",
                                  add.file, add.line, key=f"notnull:{add.table}")
            elif add.nullable and (add.table, col) not in backfilled:
                yield chk.finding(ctx, Severity.WARNING, f"{add.table}.{col} is added but existing rows are never backfilled",
                                  f"Revision {r.revision} adds {col} to {add.table}, and no revision updates it: "
                                  "existing rows keep no organisation (invisible to tenants, or leaked by IS NULL "
                                  "filters).",
                                  f"Backfill in the same revision (`UPDATE {add.table} SET {col} = ...` from the "
                                  "owning row or a default organisation), then make it NOT NULL.",
                                  add.file, add.line, key=f"nobackfill:{add.table}")
        sessions = [s for s in stmts if s.op == "SESSION"]
        if sessions:
            for line, mod in project_imports(src.tree, lambda m: m.split(".")[0] in app_roots):
                yield chk.finding(ctx, Severity.WARNING, f"Revision {r.revision} uses the application's models",
                                  f"It opens an ORM Session and imports {mod}: the migration runs against today's "
                                  "models, so once they change it fails (or writes wrong columns) on a fresh database.",
                                  "Use `sa.table(...)`/`sa.column(...)` lightweight tables and op.execute() inside "
                                  "migrations instead of application models.", r.file, line, key=f"app-import:{mod}")
        for s in stmts:
            if s.op == "INSERT" and s.table == org_table:
                seen_org_insert = True
            what = _describe(s, col, org_table)
            yield chk.finding(ctx, Severity.INFO, f"Data migration in {r.revision}: {what}",
                              f"Revision {r.revision} ({r.message or r.file}) {what}.", "", s.file, s.line,
                              key=f"data:{s.op}:{s.table}:{','.join(s.sets)}")
            value = s.sets.get(col)
            if s.op == "UPDATE" and value and _constant(s, value) and not seen_org_insert:
                yield chk.finding(ctx, Severity.WARNING, f"Backfill of {s.table}.{col} assumes an organisation exists",
                                  f"It sets {col} = {value}, but no revision up to {r.revision} creates that "
                                  f"organisation in {org_table}: on a database with rows the foreign key fails, "
                                  "or rows point at an organisation that does not exist.",
                                  f"Insert the default organisation in {org_table} in the same revision, before "
                                  "the UPDATE (and reference it by a stable key, not a guessed id).",
                                  s.file, s.line, key=f"default-org:{s.table}")


def _describe(s, col: str, org_table: str) -> str:
    if s.op == "SESSION":
        return "opens an ORM session on the migration's connection"
    if s.op == "UPDATE" and col in s.sets:
        return f"backfills {s.table}.{col} ({col} = {s.sets[col]})"
    if s.op == "INSERT" and s.table == org_table:
        return f"creates an organisation row in {org_table} (default organisation)"
    cols = f" (sets {', '.join(s.sets)})" if s.sets else ""
    return f"{s.op} on {s.table or '?'}{cols}"


def _where(sql: str) -> bool:
    return " where " in f" {(sql or '').lower()} ".replace("\n", " ")
