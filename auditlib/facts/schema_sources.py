"""Where a database object comes from in the target's source: the migration line that
created a table, column, index or constraint, and the ORM model that maps a table.

Db-source findings are about tables, but a reader wants a file and a line to fix: this
map (AST only, no import) gives them the ``op.create_table("bookings", ...)`` /
``sa.Column("org_id", ...)`` / ``op.create_index("ix_...")`` line, or the model's
``__tablename__`` line, and the ``alembic.ini`` as the last resort.
"""
from __future__ import annotations

import ast
from dataclasses import dataclass, field

from ..code.pyast import dotted, literal, walk

_CONSTRAINTS = {"UniqueConstraint", "Index", "ForeignKeyConstraint", "PrimaryKeyConstraint",
                "CheckConstraint", "Enum", "ENUM"}


def _str(node) -> str | None:
    v = literal(node)
    return v if isinstance(v, str) else None


def _kw(call: ast.Call, name: str):
    return next((k.value for k in call.keywords if k.arg == name), None)


@dataclass
class SchemaSources:
    tables: dict[str, tuple[str, int]] = field(default_factory=dict)
    columns: dict[tuple[str, str], tuple[str, int]] = field(default_factory=dict)
    names: dict[str, tuple[str, int]] = field(default_factory=dict)  # index / constraint / enum names
    models: dict[str, tuple[str, int, str]] = field(default_factory=dict)  # table -> (file, line, class)
    model_columns: dict[tuple[str, str], tuple[str, int]] = field(default_factory=dict)
    fallback: tuple[str, int | None] = (".", None)

    def where(self, table: str | None = None, column: str | None = None,
              name: str | None = None) -> tuple[str, int | None]:
        """The best (file, line) for an object: its migration, else its model, else the ini."""
        for hit in ((self.names.get(name) if name else None),
                    (self.columns.get((table, column)) if table and column else None),
                    (self.model_columns.get((table, column)) if table and column else None),
                    (self.tables.get(table) if table else None),
                    (self.models.get(table)[:2] if table in self.models else None)):
            if hit:
                return hit
        return self.fallback


def _scan_migration(path: str, tree: ast.Module, out: SchemaSources) -> None:
    for node in walk(tree):
        if not isinstance(node, ast.Call):
            continue
        fn = dotted(node.func).rsplit(".", 1)[-1]
        args = node.args
        if fn == "create_table" and args and (t := _str(args[0])):
            out.tables.setdefault(t, (path, node.lineno))
            for a in args[1:]:
                if isinstance(a, ast.Call) and dotted(a.func).endswith("Column") and a.args and (c := _str(a.args[0])):
                    out.columns.setdefault((t, c), (path, a.lineno))
        elif fn == "add_column" and len(args) >= 2 and (t := _str(args[0])):
            col = args[1]
            if isinstance(col, ast.Call) and col.args and (c := _str(col.args[0])):
                out.columns.setdefault((t, c), (path, node.lineno))
        elif fn in ("create_index", "create_unique_constraint", "create_foreign_key",
                    "create_check_constraint") and args and (n := _str(args[0])):
            out.names.setdefault(n, (path, node.lineno))
        if fn in _CONSTRAINTS:
            n = _str(_kw(node, "name")) or (_str(args[0]) if fn == "Index" and args else None)
            if n:
                out.names.setdefault(n, (path, node.lineno))


def _scan_models(path: str, tree: ast.Module, out: SchemaSources) -> None:
    for cls in walk(tree):
        if not isinstance(cls, ast.ClassDef):
            continue
        table, cols = None, {}
        for stmt in cls.body:
            target = stmt.targets[0] if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 else \
                stmt.target if isinstance(stmt, ast.AnnAssign) else None
            if not isinstance(target, ast.Name) or stmt.value is None:
                continue
            if target.id == "__tablename__":
                table = _str(stmt.value)
            elif isinstance(stmt.value, ast.Call) and dotted(stmt.value.func).rsplit(".", 1)[-1] in (
                    "mapped_column", "Column"):
                name = _str(stmt.value.args[0]) if stmt.value.args else None
                cols[name or target.id] = stmt.lineno
        if table:
            out.models.setdefault(table, (path, cls.lineno, cls.name))
            for c, line in cols.items():
                out.model_columns.setdefault((table, c), (path, line))


def schema_sources(ctx) -> SchemaSources:
    """Scan the migrations and the application's models once per context."""
    cached = getattr(ctx, "_schema_sources", None)
    if cached is not None:
        return cached
    lay = ctx.layout
    out = SchemaSources(fallback=(lay.alembic_ini or ".", None))
    for path in lay.migration_files:
        src = ctx.index.get(path)
        if src is not None and src.tree is not None:
            _scan_migration(path, src.tree, out)
    for src in ctx.index.python_files():
        if not lay.is_migration(src.path) and not lay.is_test(src.path) and "__tablename__" in (src.text or ""):
            _scan_models(src.path, src.tree, out)
    ctx._schema_sources = out
    return out
