"""The target's tables as declared statically: ORM models (SQLAlchemy declarative with
``Mapped[...]`` / ``mapped_column`` / ``Column``, SQLModel ``table=True``, core
``Table(...)``) and Alembic migrations (``op.create_table`` / ``add_column`` /
``drop_column`` / ``drop_table`` in revision order). Columns, foreign keys and
relationships, the organisation table and which tables carry the org column.

Public API: :func:`schema` ``(ctx) -> Schema`` (memoised per target contents).
"""
from __future__ import annotations

import ast
import hashlib
import re
from dataclasses import dataclass, field

from .alembic_graph import read_graph
from ..code.pyast import dotted, literal, of_type, source, walk
from ..code.pymodules import Module, Project, project

ORG_TABLE_NAMES = ("organizations", "organisations", "orgs", "organization", "organisation", "tenants", "tenant",
                   "companies", "accounts", "workspaces")


@dataclass
class Column:
    name: str
    line: int
    fk: str = ""  # referenced table
    primary_key: bool = False


@dataclass
class Table:
    name: str
    file: str
    line: int
    source: str  # model | migration | table
    cls: str = ""  # "module:Class" of the ORM model
    columns: dict[str, Column] = field(default_factory=dict)
    relationships: dict[str, str] = field(default_factory=dict)  # attribute -> target class name
    migration: tuple[str, int] | None = None  # where the migrations create it

    def fks(self) -> dict[str, str]:
        return {c.name: c.fk for c in self.columns.values() if c.fk}

    @property
    def pk(self) -> list[str]:
        return [c.name for c in self.columns.values() if c.primary_key] or (["id"] if "id" in self.columns else [])


@dataclass
class Schema:
    tables: dict[str, Table]
    by_class: dict[str, str]  # "module:Class" -> table
    class_names: dict[str, list[str]]  # bare class name -> tables (for string relationship targets)
    org_column: str
    org_table: str

    def org_col(self, table: str) -> str | None:
        """The column constraining the organisation of ``table``: the configured org column,
        else a foreign key to the organisation table; None for non-tenant tables."""
        t = self.tables.get(table)
        if t is None or table == self.org_table:
            return None
        if self.org_column in t.columns:
            return self.org_column
        return next((c for c, fk in t.fks().items() if fk == self.org_table), None)

    @property
    def tenancy_inferred(self) -> bool:
        """True when no table has the configured org column and the organisation table
        was guessed from its name (``tenants``, ``accounts``, ``workspaces``...): such a
        schema may be multi-tenant in another sense (per-tenant databases, tenants as a
        product feature), so scoping findings on it cannot be BLOCKERs."""
        return bool(self.org_table) and not self.org_table_configured and not any(
            self.org_column in t.columns for t in self.tables.values())

    org_table_configured: bool = False

    @property
    def tenant_tables(self) -> list[str]:
        return sorted(t for t in self.tables if self.org_col(t))

    def relationship_table(self, table: str, attr: str) -> str | None:
        t = self.tables.get(table)
        target = t.relationships.get(attr) if t else None
        names = self.class_names.get(target or "", [])
        return names[0] if names else None


def _fk_target(call: ast.AST) -> str:
    for n in walk(call):
        if isinstance(n, ast.Call) and dotted(n.func).rsplit(".", 1)[-1] == "ForeignKey" and n.args:
            v = literal(n.args[0])
            if isinstance(v, str):
                return v.split(".")[0]
            if isinstance(n.args[0], ast.Attribute):  # ForeignKey(Organization.id)
                return "@" + dotted(n.args[0]).split(".")[0]
        if isinstance(n, ast.keyword) and n.arg == "foreign_key":
            v = literal(n.value)
            if isinstance(v, str):
                return v.split(".")[0]
    return ""


def _is_pk(call: ast.AST) -> bool:
    return any(isinstance(n, ast.keyword) and n.arg == "primary_key" and literal(n.value) is True
               for n in walk(call))


COLUMN_CALLS = {"mapped_column", "Column", "Field", "column_property"}


def _class_columns(proj: Project, mod: Module, cls: ast.ClassDef, depth=0):
    cols, rels = {}, {}
    for b in cls.bases:  # mixins and abstract bases of the project contribute columns
        sym = proj.resolve(mod, b)
        if sym is not None and sym.kind == "class" and depth < 6:
            c2, r2 = _class_columns(proj, sym.module, sym.node, depth + 1)
            cols.update(c2)
            rels.update(r2)
    for stmt in cls.body:
        name, value, ann = None, None, None
        if isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name):
            name, value, ann = stmt.target.id, stmt.value, stmt.annotation
        elif isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Name):
            name, value = stmt.targets[0].id, stmt.value
        if not name or name.startswith("__"):
            continue
        callee = dotted(value.func).rsplit(".", 1)[-1] if isinstance(value, ast.Call) else ""
        if callee == "relationship" or (ann is not None and "relationship" in callee):
            target = literal(value.args[0]) if value.args else None
            if not isinstance(target, str):
                target = _mapped_target(ann)
            if target:
                rels[name] = target
        elif callee in COLUMN_CALLS or (ann is not None and dotted(getattr(ann, "value", ann)).endswith("Mapped")
                                         and value is None):
            cols[name] = Column(name, stmt.lineno, _fk_target(value) if value is not None else "",
                                _is_pk(value) if value is not None else False)
        elif ann is not None and value is None and not callee and _is_sqlmodel_table(proj, mod, cls) or ann is not None and callee == "" and value is not None and _is_sqlmodel_table(proj, mod, cls):
            cols[name] = Column(name, stmt.lineno)
    return cols, rels


def _mapped_target(ann) -> str:
    text = source(ann) if ann is not None else ""
    names = re.findall(r"[A-Z]\w+", text.replace("Mapped", "").replace("Optional", "").replace("List", ""))
    return names[-1] if names else ""


def _is_sqlmodel_table(proj, mod, cls) -> bool:
    return any(k.arg == "table" and literal(k.value) is True for k in cls.keywords)


def _tablename(proj, mod, cls) -> str | None:
    for stmt in cls.body:
        if isinstance(stmt, (ast.Assign, ast.AnnAssign)):
            targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
            if any(isinstance(t, ast.Name) and t.id == "__tablename__" for t in targets):
                v = literal(stmt.value)
                return v if isinstance(v, str) else cls.name.lower()
    if _is_sqlmodel_table(proj, mod, cls):
        return cls.name.lower()
    return None


def _models(proj: Project, tables: dict, by_class: dict) -> None:
    for mod in proj.by_path.values():
        for node in of_type(mod.tree, (ast.ClassDef, ast.Call)):
            if isinstance(node, ast.ClassDef):
                name = _tablename(proj, mod, node)
                if not name:
                    continue
                if any(isinstance(s, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "__abstract__"
                                                         for t in s.targets) for s in node.body):
                    continue
                cols, rels = _class_columns(proj, mod, node)
                qual = f"{mod.name}:{node.name}"
                t = tables.setdefault(name, Table(name, mod.path, node.lineno, "model", qual))
                t.cls = t.cls or qual
                t.columns.update({k: v for k, v in cols.items() if k not in t.columns})
                t.relationships.update(rels)
                by_class[qual] = name
            elif isinstance(node, ast.Call) and dotted(node.func).rsplit(".", 1)[-1] == "Table" and node.args:
                name = literal(node.args[0])
                if isinstance(name, str):
                    t = tables.setdefault(name, Table(name, mod.path, node.lineno, "table"))
                    for c in node.args[2:]:
                        _column_arg(t, c)


def _column_arg(t: Table, c: ast.AST) -> None:
    if isinstance(c, ast.Call) and dotted(c.func).rsplit(".", 1)[-1] == "Column" and c.args:
        cname = literal(c.args[0])
        if isinstance(cname, str):
            t.columns[cname] = Column(cname, c.lineno, _fk_target(c), _is_pk(c))
    elif isinstance(c, ast.Call) and dotted(c.func).rsplit(".", 1)[-1] == "ForeignKeyConstraint" and len(c.args) > 1:
        local, remote = literal(c.args[0]), literal(c.args[1])
        if isinstance(local, (list, tuple)) and isinstance(remote, (list, tuple)):
            for lc, rc in zip(local, remote):
                if isinstance(lc, str) and isinstance(rc, str):
                    col = t.columns.setdefault(lc, Column(lc, c.lineno))
                    col.fk = col.fk or rc.split(".")[0]
    elif isinstance(c, ast.Call) and dotted(c.func).rsplit(".", 1)[-1] == "PrimaryKeyConstraint":
        for a in c.args:
            if isinstance(literal(a), str) and literal(a) in t.columns:
                t.columns[literal(a)].primary_key = True


def _migrations(ctx, tables: dict) -> None:
    lay = ctx.layout
    if not lay.migration_files:
        return
    graph = read_graph(ctx.index, lay.migration_files)
    try:  # base-to-head; cycles are guarded, a very deep history could still recurse too far
        ordered = [r.file for r in graph.order()]
    except RecursionError:
        ordered = list(lay.migration_files)
    ordered += [f for f in lay.migration_files if f not in ordered]
    for path in ordered:
        src = ctx.index.get(path)
        tree = src.tree if src else None
        up = next((n for n in (tree.body if tree else []) if isinstance(n, ast.FunctionDef) and n.name == "upgrade"), None)
        if up is None:
            continue
        for n in walk(up):
            if not (isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute) and n.args):
                continue
            op, name = n.func.attr, literal(n.args[0])
            if not isinstance(name, str):
                continue
            if op == "create_table":
                t = tables.get(name)
                if t is None:
                    t = tables[name] = Table(name, path, n.lineno, "migration")
                t.migration = t.migration or (path, n.lineno)
                mig = Table(name, path, n.lineno, "migration")
                for c in n.args[1:]:
                    _column_arg(mig, c)
                for c, col in mig.columns.items():
                    cur = t.columns.setdefault(c, col)
                    cur.fk = cur.fk or col.fk
            elif op == "add_column" and len(n.args) > 1 and name in tables:
                _column_arg(tables[name], n.args[1])
            elif op == "drop_column" and len(n.args) > 1 and name in tables and tables[name].source == "migration":
                tables[name].columns.pop(literal(n.args[1]) if isinstance(literal(n.args[1]), str) else "", None)
            elif op == "drop_table" and name in tables and tables[name].source == "migration":
                tables.pop(name)


_MEMO: dict[tuple, Schema] = {}


def schema(ctx) -> Schema:
    proj = project(ctx)
    mig = "".join(f"{p}:{ctx.index.get(p).sha256}" for p in ctx.layout.migration_files if ctx.index.get(p))
    org_column = ctx.config.get("org_column", "org_id")
    key = (str(ctx.root), id(proj), hashlib.sha256(mig.encode()).hexdigest(), org_column,
           ctx.config.get("org_table", ""))
    if key in _MEMO:
        return _MEMO[key]
    tables: dict[str, Table] = {}
    by_class: dict[str, str] = {}
    _models(proj, tables, by_class)
    class_tables = {q.rsplit(":", 1)[-1]: t for q, t in by_class.items()}
    for t in tables.values():  # ForeignKey(Organization.id) -> the class's table
        for c in t.columns.values():
            if c.fk.startswith("@"):
                c.fk = class_tables.get(c.fk[1:], c.fk[1:])
    _migrations(ctx, tables)
    org_table = ctx.config.get("org_table") or _org_table(tables, org_column)
    names: dict[str, list[str]] = {}
    for q, t in by_class.items():
        names.setdefault(q.rsplit(":", 1)[-1], []).append(t)
    if len(_MEMO) > 8:
        _MEMO.clear()
    _MEMO[key] = s = Schema(tables, by_class, names, org_column, org_table,
                            org_table_configured=bool(ctx.config.get("org_table")))
    s._proj = proj  # keeps the memo key's id alive
    return s


INFERRED_NOTE = (" (Tenancy inferred: no table has the `{col}` column and `{table}` was recognised by its name, "
                 "so this is a WARNING, not a BLOCKER; set [tool.auditlib] org_column / org_table to confirm.)")


def cap_inferred(ctx, severity):
    """(severity, note): BLOCKERs become WARNINGs, with a note, when tenancy is only inferred."""
    from ..findings import Severity

    s = schema(ctx)
    if severity == Severity.BLOCKER and s.tenancy_inferred:
        return Severity.WARNING, INFERRED_NOTE.format(col=s.org_column, table=s.org_table)
    return severity, ""


def _org_table(tables: dict[str, Table], org_column: str) -> str:
    refs: dict[str, int] = {}
    for t in tables.values():
        c = t.columns.get(org_column)
        if c is not None and c.fk:
            refs[c.fk] = refs.get(c.fk, 0) + 1
    if refs:
        return max(refs, key=refs.get)
    return next((n for n in ORG_TABLE_NAMES if n in tables), "")
