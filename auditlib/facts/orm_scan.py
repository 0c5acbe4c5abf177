"""SQLAlchemy facts read from the AST: mapped models with their columns and
relationships, database calls, and which functions run queries (directly or through
the functions they call, across modules).
"""
from __future__ import annotations

import ast
from dataclasses import dataclass, field

from ..code.pyast import dotted, literal, of_type

# Session / connection methods that make a database round trip to read.
READ_METHODS = {"execute", "scalar", "scalars", "get", "get_one", "refresh", "stream",
                "stream_scalars", "query"}
WRITE_STATEMENTS = {"insert", "update", "delete"}
EAGER_OPTIONS = {"selectinload", "joinedload", "subqueryload", "immediateload", "contains_eager"}
SESSION_HINTS = ("session", "db", "conn", "connection", "tx", "uow")


@dataclass
class Relationship:
    name: str
    line: int
    lazy: str  # "select" when not given (SQLAlchemy's default)
    target: str


@dataclass
class Model:
    name: str
    table: str
    file: str
    line: int
    columns: dict[str, int] = field(default_factory=dict)  # name -> line
    relationships: dict[str, Relationship] = field(default_factory=dict)


def models(ctx, graph=None) -> list[Model]:
    """Declarative classes with ``__tablename__`` in the application code (memoised on
    the graph; callers only read the list)."""
    from ..code.callgraph import app_graph

    graph = graph or app_graph(ctx)
    memo = getattr(graph, "_orm_models", None)
    if memo is not None:
        return memo
    out = []
    for src in graph.files:
        for cls in of_type(src.tree, ast.ClassDef):
            table = None
            m = Model(cls.name, "", src.path, cls.lineno)
            for stmt in cls.body:
                target, value = _assign(stmt)
                if target == "__tablename__":
                    table = literal(value)
                elif target and isinstance(value, ast.Call):
                    fname = dotted(value.func).rsplit(".", 1)[-1]
                    if fname in ("relationship", "relation"):
                        lazy = next((literal(k.value) for k in value.keywords if k.arg == "lazy"), "select")
                        tgt = literal(value.args[0]) if value.args else ""
                        m.relationships[target] = Relationship(target, stmt.lineno, str(lazy),
                                                               tgt if isinstance(tgt, str) else "")
                    elif fname in ("mapped_column", "Column", "column_property"):
                        m.columns[target] = stmt.lineno
            if isinstance(table, str):
                m.table = table
                out.append(m)
    graph._orm_models = out
    return out


def _assign(stmt) -> tuple[str | None, ast.AST | None]:
    if isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name):
        return stmt.target.id, stmt.value
    if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Name):
        return stmt.targets[0].id, stmt.value
    return None, None


def is_session_receiver(node: ast.AST) -> bool:
    name = dotted(node).lower()
    last = name.rsplit(".", 1)[-1]
    return bool(name) and (last in SESSION_HINTS or any(h in last for h in ("session", "conn")))


def db_read_call(call: ast.Call, fn: ast.AST | None = None) -> bool:
    """``session.execute(select(...))``, ``session.get(M, id)``, ``db.scalars(...)``...:
    a read round trip on something named like a session or connection (writes such as
    ``execute(update(...))`` are not reads, nor ``execute(stmt)`` when every assignment
    of ``stmt`` in ``fn``, the enclosing function, is an insert/update/delete; nor
    ``x.get(k)`` when ``x`` is a dict of ``fn``, e.g. ``rows_by_session.get(k)``)."""
    if not (isinstance(call.func, ast.Attribute) and call.func.attr in READ_METHODS):
        return False
    if not is_session_receiver(call.func.value):
        return False
    if fn is not None and isinstance(call.func.value, ast.Name) and _local_mapping(call.func.value.id, fn):
        return False  # `traces_by_session.get(k)`: a dict lookup, named like a session
    if call.func.attr == "execute" and call.args:
        arg = call.args[0]
        if isinstance(arg, ast.Call):
            return not _write_statement(arg)
        if isinstance(arg, ast.Name) and fn is not None:
            values = [n.value for n in of_type(fn, ast.Assign) if n.lineno < call.lineno
                      and any(isinstance(t, ast.Name) and t.id == arg.id for t in n.targets)]
            return not (values and all(_write_statement(v) for v in values))
    return True


MAPPING_TYPES = {"dict", "Dict", "Mapping", "MutableMapping", "defaultdict", "DefaultDict", "OrderedDict",
                 "Counter"}


def _mapping_annotation(ann: ast.AST | None) -> bool:
    if isinstance(ann, ast.Subscript):
        ann = ann.value
    return ann is not None and dotted(ann).rsplit(".", 1)[-1] in MAPPING_TYPES


def _local_mapping(name: str, fn: ast.AST) -> bool:
    """``name`` is a dict in ``fn``: a parameter annotated ``dict[...]`` / ``Mapping``, or
    a local assigned a dict display, a dict comprehension or ``dict()`` /
    ``defaultdict()`` (or annotated so)."""
    args = getattr(fn, "args", None)
    if args is not None and any(a.arg == name and _mapping_annotation(a.annotation)
                                for a in args.posonlyargs + args.args + args.kwonlyargs):
        return True
    for n in of_type(fn, (ast.Assign, ast.AnnAssign)):
        targets = n.targets if isinstance(n, ast.Assign) else [n.target]
        if not any(isinstance(t, ast.Name) and t.id == name for t in targets):
            continue
        if isinstance(n, ast.AnnAssign) and _mapping_annotation(n.annotation):
            return True
        v = n.value
        if isinstance(v, (ast.Dict, ast.DictComp)) or (
                isinstance(v, ast.Call) and dotted(v.func).rsplit(".", 1)[-1] in MAPPING_TYPES):
            return True
    return False


def _write_statement(expr: ast.AST) -> bool:
    """``insert(M)...`` / ``update(M).where(...).values(...)`` / ``delete(M)``."""
    if not isinstance(expr, ast.Call):
        return False
    if dotted(expr.func).rsplit(".", 1)[-1].split(".")[0] in WRITE_STATEMENTS:
        return True
    root = expr
    while isinstance(root, ast.Call) and isinstance(root.func, ast.Attribute):
        root = root.func.value  # update(M).where(...).values(...) -> update(M)
    return isinstance(root, ast.Call) and dotted(root.func).rsplit(".", 1)[-1] in WRITE_STATEMENTS


def query_functions(graph) -> dict[int, str]:
    """id(Func node) -> why it queries ("session.scalars at file:line" or "calls f"),
    for every function that reads from the database directly or through its callees."""
    memo = getattr(graph, "_query_functions", None)
    if memo is not None:
        return memo
    out: dict[int, str] = {}
    for fn in graph.all_funcs:
        for node in of_type(fn.node, ast.Call):
            if db_read_call(node, fn.node):
                out[id(fn.node)] = f"`{dotted(node.func)}` at {fn.file}:{node.lineno}"
                break
    changed = True
    while changed:  # propagate to callers, to a fixpoint
        changed = False
        for fn in graph.all_funcs:
            if id(fn.node) in out:
                continue
            for _call, callee in graph.callees(fn):
                if id(callee.node) in out:
                    out[id(fn.node)] = f"calls `{callee.qualname}` ({out[id(callee.node)]})"
                    changed = True
                    break
    graph._query_functions = out
    return out


def eager_loaded(graph, funcs) -> set[str]:
    """Relationship attribute names named in eager-loading options in ``funcs``."""
    out = set()
    for fn in funcs:
        for node in of_type(fn.node, ast.Call):
            if dotted(node.func).rsplit(".", 1)[-1] in EAGER_OPTIONS:
                for arg in node.args:
                    if isinstance(arg, ast.Attribute):
                        out.add(arg.attr)
                    elif isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                        out.add(arg.value.rsplit(".", 1)[-1])
    return out


def uses_asyncio(ctx) -> bool:
    """Whether the app uses SQLAlchemy's asyncio extension (AsyncSession / async engine)."""
    for src in ctx.layout.app_sources(ctx.index):  # text search: no parse needed
        if src.text and ("create_async_engine" in src.text or "AsyncSession" in src.text
                         or "async_sessionmaker" in src.text):
            return True
    return False
