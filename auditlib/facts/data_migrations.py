"""Data statements inside Alembic revisions, read statically (DEP-003).

A *data statement* is DML run by a migration: ``op.execute("UPDATE ...")``,
``op.execute(table.update().values(...))``, ``op.bulk_insert(table, rows)``, a bind's /
session's ``.execute(...)`` with DML, or an ORM ``Session`` opened on the migration's
connection. Each is summarised (operation, table, columns set) so the report can say
what every data migration does.
"""
from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field

from ..code.pyast import dotted, literal, walk

_DML = re.compile(r"^\s*(?:--[^\n]*\n\s*)*(INSERT\s+INTO|UPDATE|DELETE\s+FROM|MERGE\s+INTO|COPY|WITH)\s+\"?([\w.]+)?",
                  re.I)
_SET = re.compile(r"\bSET\s+(.*?)(?:\bWHERE\b|\bFROM\b|$)", re.I | re.S)


@dataclass
class DataStatement:
    file: str
    line: int
    op: str  # INSERT | UPDATE | DELETE | MERGE | COPY | WITH | SESSION
    table: str
    sets: dict[str, str] = field(default_factory=dict)  # column -> expression text (UPDATE)
    text: str = ""


@dataclass
class ColumnAdd:
    file: str
    line: int
    table: str
    column: str
    nullable: bool
    server_default: bool


def _sql_text(node) -> str | None:
    if isinstance(node, ast.Call) and dotted(node.func).rsplit(".", 1)[-1] == "text" and node.args:
        node = node.args[0]
    v = literal(node)
    if isinstance(v, str):
        return v
    if isinstance(node, ast.JoinedStr):
        return "".join(p.value if isinstance(p, ast.Constant) else "?" for p in node.values)
    return None


def _tables(tree) -> dict[str, str]:
    """Variables bound to ``sa.table("name", ...)`` / ``sa.Table("name", ...)``."""
    out = {}
    for n in walk(tree):
        if isinstance(n, ast.Assign) and isinstance(n.value, ast.Call) \
                and dotted(n.value.func).rsplit(".", 1)[-1] in ("table", "Table") and n.value.args:
            name = literal(n.value.args[0])
            for t in n.targets:
                if isinstance(t, ast.Name) and isinstance(name, str):
                    out[t.id] = name
    return out


def _core(node, tables) -> tuple[str, str, dict] | None:
    """(op, table, sets) of a Core DML expression: t.update().values(...), sa.insert(t)..."""
    sets, cur = {}, node
    while isinstance(cur, ast.Call) and isinstance(cur.func, ast.Attribute):
        name = cur.func.attr
        if name == "values":
            sets.update({k.arg: ast.unparse(k.value) for k in cur.keywords if k.arg})
        if name in ("update", "insert", "delete"):
            if isinstance(cur.func.value, ast.Name) and cur.func.value.id in tables:  # t.update()
                return name.upper(), tables[cur.func.value.id], sets
            if cur.args and isinstance(cur.args[0], ast.Name):  # sa.update(t)
                return name.upper(), tables.get(cur.args[0].id, cur.args[0].id), sets
        cur = cur.func.value
    return None


def _from_sql(sql: str) -> tuple[str, str, dict] | None:
    m = _DML.match(sql)
    if not m:
        return None
    op, table, sets = m.group(1).split()[0].upper(), (m.group(2) or "").strip('"'), {}
    if op == "UPDATE" and (s := _SET.search(sql)):
        for part in re.split(r",(?![^()]*\))", s.group(1)):
            if "=" in part:
                k, v = part.split("=", 1)
                sets[k.strip().strip('"')] = v.strip()
    return op, table, sets


def _upgrade_nodes(tree):
    """Nodes of the module except those inside ``downgrade()``."""
    skip = {id(n) for f in tree.body if isinstance(f, ast.FunctionDef) and f.name == "downgrade"
            for n in walk(f)}
    return [n for n in walk(tree) if id(n) not in skip]


def data_statements(path: str, tree: ast.Module) -> list[DataStatement]:
    tables, out = _tables(tree), []
    for n in _upgrade_nodes(tree):
        if not isinstance(n, ast.Call):
            continue
        fn = dotted(n.func)
        last = fn.rsplit(".", 1)[-1]
        if last == "execute" and n.args:
            sql = _sql_text(n.args[0])
            parsed = _from_sql(sql) if sql is not None else _core(n.args[0], tables)
            if parsed:
                out.append(DataStatement(path, n.lineno, parsed[0], parsed[1], parsed[2], (sql or ast.unparse(n.args[0]))[:200]))
        elif fn == "op.bulk_insert" and n.args:
            t = n.args[0]
            name = tables.get(t.id, t.id) if isinstance(t, ast.Name) else ""
            out.append(DataStatement(path, n.lineno, "INSERT", name, {}, "op.bulk_insert(...)"))
        elif last in ("Session", "sessionmaker"):
            out.append(DataStatement(path, n.lineno, "SESSION", "", {}, ast.unparse(n)[:200]))
    return out


def column_adds(path: str, tree: ast.Module, column: str) -> list[ColumnAdd]:
    """``op.add_column(t, sa.Column(column, ...))`` in upgrade()."""
    out = []
    for n in _upgrade_nodes(tree):
        if isinstance(n, ast.Call) and dotted(n.func) == "op.add_column" and len(n.args) >= 2:
            t, col = literal(n.args[0]), n.args[1]
            if isinstance(col, ast.Call) and col.args and literal(col.args[0]) == column and isinstance(t, str):
                kw = {k.arg: k.value for k in col.keywords}
                out.append(ColumnAdd(path, n.lineno, t, column, literal(kw.get("nullable")) is not False,
                                     "server_default" in kw))
    return out


def created_tables(tree: ast.Module) -> set[str]:
    return {literal(n.args[0]) for n in _upgrade_nodes(tree) if isinstance(n, ast.Call)
            and dotted(n.func) == "op.create_table" and n.args and isinstance(literal(n.args[0]), str)}


def project_imports(tree: ast.Module, is_project_module) -> list[tuple[int, str]]:
    """(line, module) of imports of the target's own (application) modules."""
    out = []
    for n in walk(tree):
        if isinstance(n, ast.ImportFrom) and n.module and not n.level and is_project_module(n.module):
            out.append((n.lineno, n.module))
        elif isinstance(n, ast.Import):
            out += [(n.lineno, a.name) for a in n.names if is_project_module(a.name)]
    return out
