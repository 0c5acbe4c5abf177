"""SEC-020: SQL built from strings and run through text()/execute()."""
from __future__ import annotations

import ast
import re

from ..engines.ruff import RuffUnavailable, ruff_hits
from ..findings import Severity, not_verified
from ..code.pyast import of_type
from ..code.pyresolve import Project, import_map, qualify
from ..code.value_origin import tracer_for
from . import check

TEXT_SINKS = {"sqlalchemy.text", "sqlalchemy.sql.text", "sqlalchemy.sql.expression.text", "sqlalchemy.literal_column",
              "sqlalchemy.sql.literal_column", "sqlalchemy.sql.expression.literal_column"}
METHOD_SINKS = {"execute", "executemany", "executescript", "exec_driver_sql", "fetch", "fetchrow", "fetchval",
                "fetch_all", "fetch_one", "fetch_val", "execute_many", "copy_expert", "mogrify"}
DB_RECEIVER = re.compile(r"session|conn|connection|cursor|cur$|db$|database|engine|tx$|transaction|pool", re.IGNORECASE)
SINK_HINT = re.compile(r"text|literal_column|" + "|".join(sorted(METHOD_SINKS)))
SEVERITY = {"param": Severity.BLOCKER, "unknown": Severity.WARNING, "settings": Severity.RECOMMENDATION}


def sql_sinks(src, imports):
    """(call, sql expression, sink name) for every SQL-executing call of a module."""
    for node in of_type(src.tree, ast.Call):
        if not node.args:
            continue
        q = qualify(node.func, imports)
        if q in TEXT_SINKS:
            yield node, node.args[0], q.rsplit(".", 1)[-1] + "()"
        elif isinstance(node.func, ast.Attribute) and node.func.attr in METHOD_SINKS:
            recv = ast.unparse(node.func.value)
            arg = node.args[0]
            if isinstance(arg, ast.Call) and qualify(arg.func, imports) in TEXT_SINKS:
                continue  # the text() call is the sink
            if node.func.attr == "exec_driver_sql" or DB_RECEIVER.search(recv.rsplit(".", 1)[-1].rstrip("()")):
                yield node, arg, f".{node.func.attr}()"


@check("SEC-020", "security", "SQL injection", engines=("ruff",))
def sql_injection(ctx):
    """SQL strings built by formatting (f-strings, ``%``, ``.format``, ``+``,
    ``"".join``) or passed in non-literal, at the SQL sinks: ``sqlalchemy.text()`` /
    ``literal_column()`` (through any import alias), ``.exec_driver_sql()``, and
    ``.execute()``/``executemany``/asyncpg ``fetch*`` on a session, connection or cursor.
    Each interpolated value is traced (:mod:`auditlib.code.value_origin`): local variables
    back to their assignments in the function, loop variables to what they iterate,
    parameters to the project's call sites.

    Why: a value spliced into SQL text is parsed as SQL: data theft, tenant isolation
    bypass, ``DROP TABLE``. Bound parameters (``text("... :id")`` with params, DBAPI
    ``execute("... %s", (x,))``) are safe and never flagged.
    A sink's argument that is a statement object (a call result such as ``select()`` or
    ``query.where()``, awaited or unpacked from a tuple, or a parameter annotated with a
    non-string type like ``Select``/``Executable``) is not SQL text and is not flagged.
    Severity: BLOCKER when a value comes from a function parameter (request data in a
    handler, or a helper whose callers pass non-constants); WARNING for values of unknown
    origin (a call result, an object attribute) and for Ruff S608 hits (SQL-looking
    strings built by formatting; the engine part) outside a recognised sink;
    RECOMMENDATION for values from settings. Not flagged: literals, module constants,
    whitelist lookups (``COLUMNS[sort]``), ``int()``-cast or int-annotated values,
    loops over constants, migrations and tests (their SQL is not fed by requests).
    """
    chk = sql_injection.check
    project = Project.of(ctx)
    sources = [s for s in ctx.layout.app_sources(ctx.index) if s.tree is not None]
    covered_functions: set[tuple[str, int]] = set()
    for src in sources:
        if not SINK_HINT.search(src.text or ""):
            continue
        imports = {k: project.absolute(src, v) for k, v in import_map(src.tree).items()}
        tracer = tracer_for(src, project, sources)
        for call, expr, sink in sql_sinks(src, imports):
            fn = _function_line(tracer, call)
            covered_functions.add((src.path, fn))
            if sink.startswith(".") and _statement_object(tracer, expr, call):
                continue  # session.execute(stmt) with stmt = text(...)/select(...): analysed there
            built, parts = tracer.string_parts(expr, call)
            risky = [p for p in parts if p.kind in SEVERITY]
            if not risky:
                continue
            severity = max((SEVERITY[p.kind] for p in risky), key=lambda s: s.rank)
            how = "built by string formatting" if built else "not a literal"
            yield chk.finding(
                ctx, severity, f"SQL passed to {sink} is {how}",
                f"The SQL given to {sink} includes "
                + "; ".join(f"`{p.text}` ({p.detail or p.kind}, line {p.line})" for p in risky[:4])
                + ". Values spliced into SQL text are parsed as SQL (injection), unlike bound parameters.",
                "Use bound parameters: `text(\"... WHERE id = :id\").bindparams(id=value)` or "
                "`session.execute(stmt, {\"id\": value})`; for identifiers (columns, sort order) map "
                "the input through a whitelist dict of constants.",
                src.path, call.lineno, key=f"{sink}:{ast.unparse(expr)[:60]}")
    try:
        hits = [h for h in ruff_hits(ctx, ("S608",)) if h.code == "S608"]
    except RuffUnavailable as exc:
        yield not_verified(chk.id, chk.area, "SQL strings built outside recognised sinks (Ruff S608)", str(exc))
        return
    by_path = {s.path: s for s in sources}
    for h in hits:
        src = by_path.get(h.file)
        if src is None:
            continue
        tracer = tracer_for(src, project, sources)
        node = next((n for n in of_type(src.tree, (ast.JoinedStr, ast.BinOp, ast.Call))
                     if n.lineno == h.line), None)
        if node is None or (src.path, _function_line(tracer, node)) in covered_functions:
            continue
        callees = [tracer.callee(c) for c in of_type(src.tree, ast.Call) if c.lineno == h.line]
        if any(c is not None and (c[0].path, c[1].lineno) in covered_functions for c in callees):
            continue  # passed straight to a function whose sink is analysed (and reported) there
        _built, parts = tracer.string_parts(node, node)
        risky = [p for p in parts if p.kind in ("param", "unknown")]
        if risky:
            yield chk.finding(
                ctx, Severity.WARNING, "SQL text built by string formatting (Ruff S608)",
                "A SQL-looking string is assembled from "
                + "; ".join(f"`{p.text}` ({p.detail or p.kind})" for p in risky[:4])
                + "; where it is executed could not be followed, so it may reach the database unbound.",
                "Build the statement with SQLAlchemy constructs or bound parameters.",
                src.path, h.line, key=f"S608:{ast.unparse(node)[:60]}")


STRING_TYPES = re.compile(r"\b(str|Any|LiteralString|bytes)\b")


def _statement_object(tracer, expr, at) -> bool:
    """Whether a method sink's argument is a statement object, not a string: a call
    result (``select()``/``text()``/``query.where()``, awaited or not), directly, through
    its local assignments (tuple unpacking included), or a parameter annotated with a
    non-string type (``stmt: Select``, ``statement: Executable``)."""
    def is_stmt(v):
        if isinstance(v, ast.Await):
            v = v.value
        if not isinstance(v, ast.Call):
            return False
        f = v.func  # "...".format() / ", ".join() build strings; query.join(Other, cond) is a statement
        return not (isinstance(f, ast.Attribute) and (f.attr == "format" or f.attr == "join" and isinstance(
            f.value, ast.Constant)))
    if isinstance(expr, ast.Name):
        fn = tracer.up.get(id(at))
        while fn is not None and not isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
            fn = tracer.up.get(id(fn))
        values = tracer.assignments(expr.id, fn, at) + _unpacked(expr.id, fn, at)
        if values:
            return all(is_stmt(v) for v in values)
        p = tracer.param(expr.id, fn)
        return p is not None and p.annotation is not None and not STRING_TYPES.search(ast.unparse(p.annotation))
    return is_stmt(expr)


def _unpacked(name: str, fn, at) -> list[ast.AST]:
    """Values of ``name, other = value`` assignments before ``at`` in ``fn``."""
    if fn is None:
        return []
    return [n.value for n in of_type(fn, ast.Assign) if n.lineno < at.lineno
            and any(isinstance(t, (ast.Tuple, ast.List)) and any(isinstance(e, ast.Name) and e.id == name
                                                                  for e in t.elts) for t in n.targets)]


def _function_line(tracer, node) -> int:
    p = tracer.up.get(id(node))
    while p is not None and not isinstance(p, (ast.FunctionDef, ast.AsyncFunctionDef)):
        p = tracer.up.get(id(p))
    return p.lineno if p is not None else 0
