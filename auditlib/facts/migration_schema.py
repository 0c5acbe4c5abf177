"""The database schema as the Alembic migrations build it, read statically (no import,
no database): tables, columns with nullability, foreign keys, indexes and unique
constraints, replaying the ``op.*`` calls of each revision's ``upgrade()`` in revision
order (base to head).

Understood: ``op.create_table`` (``sa.Column`` with ``primary_key`` / ``nullable`` /
``unique`` / ``index`` / ``sa.ForeignKey``; ``sa.PrimaryKeyConstraint``,
``sa.UniqueConstraint`` (``postgresql_nulls_not_distinct``), ``sa.ForeignKeyConstraint``,
``sa.Index``), ``op.add_column`` / ``drop_column`` / ``alter_column`` (nullable, rename),
``op.create_index`` (``unique``, ``postgresql_nulls_not_distinct``) / ``drop_index``,
``op.create_unique_constraint`` / ``create_foreign_key`` / ``create_primary_key`` /
``drop_constraint``, ``op.drop_table`` / ``rename_table``, the same ops on
``batch_alter_table`` contexts, and ``CREATE [UNIQUE] INDEX`` / ``ALTER TABLE ... ADD
CONSTRAINT ... UNIQUE`` in ``op.execute("...")`` literals. Anything else is recorded in
:attr:`Schema.unknown` so callers can say what they could not read.

The schema is PostgreSQL's: an ``if`` that tests the dialect (``bind.dialect.name ==
"sqlite"``, ``settings.engine is Choice.POSTGRES``, a flag named after a dialect such as
``is_sqlite`` / ``settings.pg_uri``, see :func:`on_postgres`) replays only the branch that
runs on PostgreSQL, and a revision that returns early on PostgreSQL (a SQLite-only
baseline) contributes nothing after that ``return``. Other conditions: the ``if`` body is
assumed to run.

The database stage (``auditlib/stages``) reads the real catalogue; this is the fallback
when no database is available.
"""
from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field

from .alembic_graph import read_graph
from ..code.pyast import NOT_LITERAL, dotted, literal, walk


@dataclass
class Column:
    name: str
    nullable: bool = True
    primary_key: bool = False
    line: int | None = None
    file: str = ""


@dataclass
class ForeignKey:
    columns: tuple[str, ...]
    ref_table: str
    ref_columns: tuple[str, ...]
    name: str | None
    file: str
    line: int


@dataclass
class Index:
    """An index or a unique/primary-key constraint (both are backed by an index)."""
    name: str | None
    columns: tuple[str, ...]
    unique: bool
    file: str
    line: int
    kind: str = "index"  # index | unique | primary
    nulls_not_distinct: bool = False
    partial: bool = False  # has a WHERE clause (postgresql_where)


@dataclass
class Table:
    name: str
    file: str
    line: int
    columns: dict[str, Column] = field(default_factory=dict)
    foreign_keys: list[ForeignKey] = field(default_factory=list)
    indexes: list[Index] = field(default_factory=list)

    def covered(self, cols: tuple[str, ...] | list[str]) -> Index | None:
        """An index whose leading columns are ``cols`` (in any order), if any."""
        want = set(cols)
        for ix in self.indexes:
            if not ix.partial and set(ix.columns[: len(want)]) == want:
                return ix
        return None


@dataclass
class Schema:
    tables: dict[str, Table] = field(default_factory=dict)
    files: list[str] = field(default_factory=list)  # revision files in replay order
    unknown: list[tuple[str, int, str]] = field(default_factory=list)  # (file, line, what)

    def table(self, name: str) -> Table | None:
        return self.tables.get(name)


def _str(node) -> str | None:
    v = literal(node)
    return v if isinstance(v, str) else None


def _strs(node) -> tuple[str, ...]:
    v = literal(node)
    if isinstance(v, str):
        return (v,)
    if isinstance(v, (list, tuple)) and all(isinstance(x, str) for x in v):
        return tuple(v)
    if isinstance(node, (ast.List, ast.Tuple)):  # sa.text(...) / column expressions
        return tuple(_str(e) or dotted(e) or "<expr>" for e in node.elts)
    return ()


def _kw(call: ast.Call, name: str, default=None):
    for k in call.keywords:
        if k.arg == name:
            return k.value
    return default


def _kwbool(call: ast.Call, name: str, default: bool = False) -> bool:
    node = _kw(call, name)
    v = literal(node) if node is not None else default
    return bool(v) if v is not NOT_LITERAL else default


def _tail(call: ast.Call) -> str:
    return dotted(call.func).rsplit(".", 1)[-1]


class _Replayer:
    def __init__(self, schema: Schema, file: str):
        self.s, self.file = schema, file

    def table(self, name: str | None, line: int) -> Table:
        if name is None:  # a computed table name: absorb the operation, record nothing
            return Table("(computed)", self.file, line)
        if name not in self.s.tables:  # altered before we saw it created: keep what we learn
            self.s.tables[name] = Table(name, self.file, line)
        return self.s.tables[name]

    def column(self, t: Table | None, call: ast.Call) -> None:
        name = _str(call.args[0]) if call.args else _str(_kw(call, "name"))
        if name is None or t is None:  # a table named by a computed expression: not followed
            return
        pk = _kwbool(call, "primary_key")
        col = Column(name, nullable=_kwbool(call, "nullable", not pk), primary_key=pk, line=call.lineno,
                     file=self.file)
        t.columns[name] = col
        if pk:
            t.indexes.append(Index(None, (name,), True, self.file, call.lineno, "primary"))
        if _kwbool(call, "unique"):
            t.indexes.append(Index(None, (name,), True, self.file, call.lineno, "unique"))
        if _kwbool(call, "index"):
            t.indexes.append(Index(None, (name,), False, self.file, call.lineno))
        for a in call.args[1:]:
            if isinstance(a, ast.Call) and _tail(a) == "ForeignKey" and a.args:
                ref = _str(a.args[0]) or ""
                rt, _, rc = ref.rpartition(".")
                t.foreign_keys.append(ForeignKey((name,), rt, (rc,), _str(_kw(a, "name")), self.file, call.lineno))

    def element(self, t: Table, el: ast.AST) -> None:
        if not isinstance(el, ast.Call):
            return
        kind = _tail(el)
        if kind == "Column":
            self.column(t, el)
        elif kind in ("PrimaryKeyConstraint", "UniqueConstraint"):
            cols = tuple(c for c in (_str(a) for a in el.args) if c)
            k = "primary" if kind == "PrimaryKeyConstraint" else "unique"
            t.indexes.append(Index(_str(_kw(el, "name")), cols, True, self.file, el.lineno, k,
                                   _kwbool(el, "postgresql_nulls_not_distinct")))
            if k == "primary":
                for c in cols:
                    if c in t.columns:
                        t.columns[c].nullable, t.columns[c].primary_key = False, True
        elif kind == "ForeignKeyConstraint" and len(el.args) >= 2:
            refs = _strs(el.args[1])
            rt = refs[0].rpartition(".")[0] if refs else ""
            t.foreign_keys.append(ForeignKey(_strs(el.args[0]), rt, tuple(r.rpartition(".")[2] for r in refs),
                                             _str(_kw(el, "name")), self.file, el.lineno))
        elif kind == "Index":
            cols = tuple(c for c in (_str(a) or dotted(a) for a in el.args[1:]) if c)
            self.index(t, _str(el.args[0]) if el.args else None, cols, el)

    def index(self, t: Table, name, cols, call: ast.Call, unique: bool | None = None) -> None:
        uniq = _kwbool(call, "unique") if unique is None else unique
        t.indexes.append(Index(name, cols, uniq, self.file, call.lineno, "unique" if unique else "index",
                               _kwbool(call, "postgresql_nulls_not_distinct"),
                               _kw(call, "postgresql_where") is not None or _kw(call, "sqlite_where") is not None))

    def drop_named(self, name: str | None, table: str | None) -> None:
        for t in self.s.tables.values():
            if table and t.name != table:
                continue
            t.indexes = [i for i in t.indexes if not (name and i.name == name)]
            t.foreign_keys = [f for f in t.foreign_keys if not (name and f.name == name)]

    def op(self, call: ast.Call, batch_table: str | None = None) -> None:
        kind = _tail(call)
        args = list(call.args)
        if batch_table is not None:  # batch_op.add_column(col) == op.add_column(table, col)
            args.insert(0, ast.Constant(batch_table))
        name0 = _str(args[0]) if args else None
        line = call.lineno
        if kind == "create_table":
            if name0 is None:
                return self.unknown(call, "create_table with a computed name")
            t = self.s.tables[name0] = Table(name0, self.file, line)
            for el in args[1:]:
                self.element(t, el)
        elif kind == "drop_table":
            self.s.tables.pop(name0 or _str(_kw(call, "table_name")) or "", None)
        elif kind == "rename_table" and len(args) > 1:
            old, new = name0, _str(args[1])
            if old in self.s.tables and new:
                t = self.s.tables.pop(old)
                t.name = new
                self.s.tables[new] = t
        elif kind == "add_column" and len(args) > 1 and isinstance(args[1], ast.Call):
            t = self.table(name0, line)
            self.column(t, args[1])
        elif kind == "drop_column" and len(args) > 1:
            t, col = self.table(name0, line), _str(args[1])
            t.columns.pop(col, None)
            t.indexes = [i for i in t.indexes if col not in i.columns]
            t.foreign_keys = [f for f in t.foreign_keys if col not in f.columns]
        elif kind == "alter_column" and len(args) > 1:
            t, col = self.table(name0, line), _str(args[1])
            c = t.columns.setdefault(col, Column(col, line=line, file=self.file)) if col else None
            if c is not None and _kw(call, "nullable") is not None:
                c.nullable = _kwbool(call, "nullable", c.nullable)
            new = _str(_kw(call, "new_column_name"))
            if c is not None and new:
                t.columns[new] = t.columns.pop(col)
                c.name = new
                for i in t.indexes:
                    i.columns = tuple(new if x == col else x for x in i.columns)
        elif kind == "create_index":
            if batch_table is not None:  # batch_op.create_index(name, columns)
                args = [args[1], args[0], *args[2:]]
            name, table = _str(args[0]) if args else None, _str(_arg_at(args, call, 1, "table_name"))
            cols = _strs(_arg_at(args, call, 2, "columns"))
            t = self.table(table, line)
            if t is not None:
                self.index(t, name, cols, call)
        elif kind == "create_unique_constraint":
            if batch_table is not None:
                args = [args[1], args[0], *args[2:]]
            t = self.table(_str(_arg_at(args, call, 1, "table_name")), line)
            if t is not None:
                self.index(t, _str(args[0]) if args else None, _strs(_arg_at(args, call, 2, "columns")), call, True)
        elif kind == "create_primary_key":
            if batch_table is not None:
                args = [args[1], args[0], *args[2:]]
            t = self.table(_str(_arg_at(args, call, 1, "table_name")), line)
            if t is not None:
                t.indexes.append(Index(_str(args[0]) if args else None, _strs(_arg_at(args, call, 2, "columns")),
                                       True, self.file, line, "primary"))
        elif kind == "create_foreign_key":
            if batch_table is not None:  # batch_op.create_foreign_key(name, referent, local, remote)
                args = [args[1], args[0], *args[2:]]
            t = self.table(_str(_arg_at(args, call, 1, "source_table")), line)
            if t is not None:
                t.foreign_keys.append(ForeignKey(_strs(_arg_at(args, call, 3, "local_cols")),
                                                 _str(_arg_at(args, call, 2, "referent_table")) or "",
                                                 _strs(_arg_at(args, call, 4, "remote_cols")),
                                                 _str(args[0]) if args else None, self.file, line))
        elif kind in ("drop_index", "drop_constraint"):
            table = _str(_kw(call, "table_name")) or (_str(args[1]) if len(args) > 1 else None)
            self.drop_named(name0, table)
        elif kind == "execute" and args:
            sql = _str(args[0]) or (_str(args[0].args[0]) if isinstance(args[0], ast.Call) and args[0].args else None)
            if sql:
                self.sql(sql, line)
            else:
                self.unknown(call, "op.execute with computed SQL")

    def sql(self, sql: str, line: int) -> None:
        for m in CREATE_INDEX.finditer(sql):
            t = self.table(m["table"].strip('"'), line)
            cols = tuple(c.strip().strip('"').split()[0] for c in m["cols"].split(",") if c.strip())
            t.indexes.append(Index(m["name"].strip('"'), cols, bool(m["unique"]), self.file, line,
                                   "unique" if m["unique"] else "index", bool(m["nnd"]), bool(m["where"])))
        for m in ADD_UNIQUE.finditer(sql):
            t = self.table(m["table"].strip('"'), line)
            cols = tuple(c.strip().strip('"') for c in m["cols"].split(",") if c.strip())
            t.indexes.append(Index(m["name"].strip('"'), cols, True, self.file, line, "unique", bool(m["nnd"])))

    def unknown(self, call: ast.Call, what: str) -> None:
        self.s.unknown.append((self.file, call.lineno, what))


def _arg_at(args: list, call: ast.Call, i: int, name: str):
    return args[i] if len(args) > i else _kw(call, name)


_ID = r'"?[\w.]+"?'
CREATE_INDEX = re.compile(
    rf"CREATE\s+(?P<unique>UNIQUE\s+)?INDEX\s+(?:CONCURRENTLY\s+)?(?:IF\s+NOT\s+EXISTS\s+)?(?P<name>{_ID})\s+"
    rf"ON\s+(?:ONLY\s+)?(?P<table>{_ID})\s*(?:USING\s+\w+\s*)?\((?P<cols>[^)]*)\)"
    r"(?P<nnd>\s*NULLS\s+NOT\s+DISTINCT)?(?P<where>\s*WHERE\b)?", re.I)
ADD_UNIQUE = re.compile(
    rf"ALTER\s+TABLE\s+(?:ONLY\s+)?(?P<table>{_ID})\s+ADD\s+CONSTRAINT\s+(?P<name>{_ID})\s+UNIQUE"
    r"(?P<nnd>\s+NULLS\s+NOT\s+DISTINCT)?\s*\((?P<cols>[^)]*)\)", re.I)

OPS = {"create_table", "drop_table", "rename_table", "add_column", "drop_column", "alter_column",
       "create_index", "drop_index", "create_unique_constraint", "create_primary_key",
       "create_foreign_key", "drop_constraint", "execute"}


_PG_WORDS = {"pg", "postgres", "postgresql", "psycopg", "psycopg2", "asyncpg"}
_OTHER_WORDS = {"sqlite", "mysql", "mariadb", "mssql", "oracle"}


def _words(text: str) -> set[str]:
    return {w.lower() for w in re.findall(r"[A-Z]?[a-z0-9]+|[A-Z]+(?![a-z])", text)}


_FLAG_WORDS = {"is", "use", "using", "uri", "url", "dsn", "db", "database", "engine", "dialect", "backend", "on"}


def _side(node, flag: bool = False) -> bool | None:
    """True / False when ``node`` names PostgreSQL / another dialect (``"sqlite"``,
    ``DatabaseChoice.POSTGRES``), else None. A ``flag`` (a bare condition) must also read
    as one about the database in use (``is_sqlite``, ``settings.pg_uri``), not about a
    feature (``has_pg_trgm``)."""
    v = literal(node)
    text = v if isinstance(v, str) else dotted(node.func if isinstance(node, ast.Call) else node)
    if not text:
        return None
    words = _words(text)
    if flag and not (words & _FLAG_WORDS or len(words) == 1):
        return None
    if words & _OTHER_WORDS:
        return False
    return True if words & _PG_WORDS else None


def on_postgres(test: ast.AST, local: dict[str, bool] | None = None) -> bool | None:
    """Whether a migration's ``if`` condition holds on PostgreSQL: True, False, or None
    (not a dialect guard). Read from code facts only: ``<bind>.dialect.name == "sqlite"``
    (``!=``, ``in``), ``settings.engine is Choice.POSTGRES``, a flag named after a dialect
    (``is_sqlite``, ``settings.pg_uri``), ``not`` of one, a local assigned one of these."""
    if isinstance(test, ast.UnaryOp) and isinstance(test.op, ast.Not):
        v = on_postgres(test.operand, local)
        return None if v is None else not v
    if isinstance(test, ast.Compare) and len(test.ops) == 1:
        left, op_, right = test.left, test.ops[0], test.comparators[0]
        if isinstance(op_, (ast.In, ast.NotIn)) and isinstance(right, (ast.Tuple, ast.List, ast.Set)):
            sides = [_side(e) for e in right.elts]
            if None in sides or not sides:
                return None
            hit = any(sides)  # the dialect is one of the listed ones: is PostgreSQL among them?
            return hit if isinstance(op_, ast.In) else not hit
        if isinstance(op_, (ast.Eq, ast.NotEq, ast.Is, ast.IsNot)):
            sides = [x for x in (_side(left), _side(right)) if x is not None]
            if len(sides) != 1:
                return None  # no operand names a dialect, or both do: not a guard we can read
            return sides[0] if isinstance(op_, (ast.Eq, ast.Is)) else not sides[0]
        return None
    if isinstance(test, ast.Name) and local and test.id in local:
        return local[test.id]
    if isinstance(test, (ast.Name, ast.Attribute, ast.Call)):
        return _side(test, flag=True)
    return None


def _replay(body: list[ast.stmt], rep: _Replayer, batch: dict[str, str],
            local: dict[str, bool] | None = None) -> bool:
    """Replay ``body``; False when it returns early on PostgreSQL (the rest of the
    revision does not run there)."""
    local = {} if local is None else local
    for stmt in body:
        if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Name):
            v = on_postgres(stmt.value, local)
            if v is not None:
                local[stmt.targets[0].id] = v  # is_sqlite = bind.dialect.name == "sqlite"
        if isinstance(stmt, ast.Return):
            return False
        if isinstance(stmt, ast.If):
            pg = on_postgres(stmt.test, local)
            if pg is True:  # runs on PostgreSQL: the body, not the else branch
                if not _replay(stmt.body, rep, batch, local):
                    return False
            elif pg is False:  # another dialect's branch (SQLite-only DDL): the else branch runs
                if not _replay(stmt.orelse, rep, batch, local):
                    return False
            else:
                _replay(stmt.body, rep, batch, local)  # conditional ops: assume the main path runs
            continue
        if isinstance(stmt, (ast.With, ast.AsyncWith)):
            inner = dict(batch)
            for item in stmt.items:
                c = item.context_expr
                if isinstance(c, ast.Call) and _tail(c) == "batch_alter_table" and isinstance(item.optional_vars, ast.Name):
                    t = _str(c.args[0]) if c.args else _str(_kw(c, "table_name"))
                    if t:
                        inner[item.optional_vars.id] = t
            _replay(stmt.body, rep, inner, local)
            continue
        if isinstance(stmt, (ast.For, ast.Try)):
            _replay(stmt.body, rep, batch, local)  # loops and try blocks: assume the main path runs
            continue
        for node in walk(stmt):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
                continue
            owner = dotted(node.func.value)
            if node.func.attr not in OPS:
                continue
            if owner in batch:
                rep.op(node, batch[owner])
            elif owner.split(".")[-1] == "op":
                rep.op(node)
    return True


def read_schema(index, migration_files: list[str]) -> Schema:
    """Replay the ``upgrade()`` of every revision in ``migration_files``, base to head."""
    schema = Schema()
    graph = read_graph(index, migration_files)
    ordered = [r.file for r in graph.order()]
    ordered += sorted(f for f in migration_files if f not in ordered)
    for path in ordered:
        src = index.get(path)
        if src is None or src.tree is None:
            continue
        up = next((n for n in src.tree.body if isinstance(n, ast.FunctionDef) and n.name == "upgrade"), None)
        if up is None:
            continue
        schema.files.append(path)
        _replay(up.body, _Replayer(schema, path), {})
    return schema


def schema_for(ctx) -> Schema:
    """The static schema of the audited target's migrations (computed once per context)."""
    cached = ctx.__dict__.get("_migration_schema")
    if cached is None:
        cached = ctx.__dict__["_migration_schema"] = read_schema(ctx.index, ctx.layout.migration_files)
    return cached
