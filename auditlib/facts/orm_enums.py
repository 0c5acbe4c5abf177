"""Enum columns as the ORM writes them, and enum labels as the migrations declare them
(AST only).

SQLAlchemy's ``Enum(PyEnum)`` persists the members' **names** (``PENDING``) unless
``values_callable`` is given (then, by convention, their values); ``Mapped[PyEnum]``
without an explicit type does the same with the lower-cased class name as the type
name. ``native_enum=False`` stores VARCHAR and is left out.
"""
from __future__ import annotations

import ast
from dataclasses import dataclass

from ..code.pyast import dotted, literal, parent_map, walk

_ENUM_BASES = {"Enum", "StrEnum", "IntEnum"}


@dataclass
class OrmEnum:
    file: str
    line: int
    py_class: str
    type_name: str  # the PostgreSQL type name SQLAlchemy uses
    writes: list[str]  # the labels the ORM writes
    by_values: bool  # values_callable given
    column: str = ""  # "table.attribute" (or "Class.attribute") where the enum is mapped, when known


def _column_of(parents: dict[int, ast.AST], node: ast.AST) -> str:
    """``table.attr`` of the class attribute whose value holds ``node`` (``Column("name", ...)``
    gives the column's own name)."""
    attr, cur = "", node
    while (cur := parents.get(id(cur))) is not None:
        if isinstance(cur, ast.Call) and dotted(cur.func).rsplit(".", 1)[-1] == "Column" and cur.args \
                and isinstance(literal(cur.args[0]), str):
            attr = attr or literal(cur.args[0])
        elif isinstance(cur, (ast.Assign, ast.AnnAssign)) and not attr:
            target = cur.targets[0] if isinstance(cur, ast.Assign) else cur.target
            attr = target.id if isinstance(target, ast.Name) else ""
        elif isinstance(cur, ast.ClassDef):
            table = next((literal(st.value) for st in cur.body if isinstance(st, ast.Assign)
                          and any(isinstance(t, ast.Name) and t.id == "__tablename__" for t in st.targets)), None)
            return f"{table if isinstance(table, str) else cur.name}.{attr}" if attr else ""
    return attr


def _python_enums(ctx) -> dict[str, tuple[list[str], list[str]]]:
    """{class name: (member names, member values as str)} for literal Enum subclasses."""
    out = {}
    for src in ctx.index.python_files():
        for node in walk(src.tree):
            if isinstance(node, ast.ClassDef) and any(dotted(b).rsplit(".", 1)[-1] in _ENUM_BASES for b in node.bases):
                names, values = [], []
                for st in node.body:
                    if isinstance(st, ast.Assign) and len(st.targets) == 1 and isinstance(st.targets[0], ast.Name) \
                            and not st.targets[0].id.startswith("_"):
                        v = literal(st.value)
                        names.append(st.targets[0].id)
                        values.append(str(v) if isinstance(v, (str, int)) else st.targets[0].id)
                if names:
                    out[node.name] = (names, values)
    return out


def _kw(call: ast.Call, name: str):
    return next((k.value for k in call.keywords if k.arg == name), None)


def orm_enums(ctx) -> list[OrmEnum]:
    lay, enums, out = ctx.layout, _python_enums(ctx), []
    for src in ctx.index.python_files():
        if lay.is_migration(src.path) or lay.is_test(src.path) or src.tree is None:
            continue
        parents = None
        for node in walk(src.tree):
            if isinstance(node, ast.Call) and dotted(node.func).rsplit(".", 1)[-1] in ("Enum", "ENUM") \
                    and node.args and isinstance(node.args[0], (ast.Name, ast.Attribute)):
                cls = dotted(node.args[0]).rsplit(".", 1)[-1]
                if cls not in enums or literal(_kw(node, "native_enum")) is False:
                    continue
                by_values = _kw(node, "values_callable") is not None
                name = literal(_kw(node, "name"))
                names, values = enums[cls]
                parents = parents or parent_map(src.tree)
                out.append(OrmEnum(src.path, node.lineno, cls, name if isinstance(name, str) else cls.lower(),
                                   values if by_values else names, by_values, _column_of(parents, node)))
            elif isinstance(node, ast.AnnAssign) and isinstance(node.annotation, ast.Subscript) \
                    and dotted(node.annotation.value).endswith("Mapped"):
                inner = node.annotation.slice
                cls = dotted(inner).rsplit(".", 1)[-1] if isinstance(inner, (ast.Name, ast.Attribute)) else ""
                call = node.value
                explicit = isinstance(call, ast.Call) and (call.args or _kw(call, "type_") is not None)
                if cls in enums and isinstance(call, ast.Call) and not explicit:
                    parents = parents or parent_map(src.tree)
                    out.append(OrmEnum(src.path, node.lineno, cls, cls.lower(), enums[cls][0], False,
                                       _column_of(parents, node.value)))
    return out


def migration_enum_labels(ctx) -> dict[str, list[str]]:
    """{type name: labels} from ``sa.Enum("a", "b", name="x")`` / ``postgresql.ENUM(...)``
    literals in the revision files (the static fallback for the database's pg_enum)."""
    out = {}
    for path in ctx.layout.migration_files:
        src = ctx.index.get(path)
        for node in walk(src.tree) if src is not None and src.tree is not None else []:
            if isinstance(node, ast.Call) and dotted(node.func).rsplit(".", 1)[-1] in ("Enum", "ENUM"):
                labels = [literal(a) for a in node.args]
                name = literal(_kw(node, "name"))
                if labels and all(isinstance(x, str) for x in labels) and isinstance(name, str):
                    out.setdefault(name, labels)
    return out
