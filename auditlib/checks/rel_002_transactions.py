"""REL-002: database writes inside transactions that commit, with rollback on error."""
from __future__ import annotations

import ast
import re

from ..findings import Severity
from ..code.pyast import FUNCS, dotted, flat, literal, of_type
from ..code.pyresolve import FuncDef, Project, callers_upto, calls, functions
from . import check

SESSION_NAME = re.compile(r"session|^db$|^s$|^tx$|uow|conn", re.I)
WRITE_METHODS = {"add", "add_all", "delete", "merge", "bulk_save_objects", "bulk_insert_mappings"}
DML = {"insert", "update", "delete"}
DML_SQL = re.compile(r"^\s*(insert|update|delete)\b", re.I)
SESSION_FACTORIES = {"sessionmaker", "async_sessionmaker", "Session", "AsyncSession", "scoped_session"}


def _method(call: ast.Call) -> tuple[str, str]:
    if isinstance(call.func, ast.Attribute):
        return dotted(call.func.value), call.func.attr
    return "", ""


def is_write(proj: Project, src, call: ast.Call) -> bool:
    recv, meth = _method(call)
    if not recv or not SESSION_NAME.search(recv.split(".")[-1]):
        return False
    if meth in WRITE_METHODS:
        return True
    if meth in ("execute", "exec") and call.args:
        a = call.args[0]
        while isinstance(a, ast.Call) and isinstance(a.func, ast.Attribute) and dotted(a.func) and \
                dotted(a.func).split(".")[-1] not in DML | {"text"}:
            a = a.func.value  # update(X).where(...).values(...) -> update(X)
        if isinstance(a, ast.Call):
            name = proj.qualify(src, a.func).split(".")[-1]
            if name in DML:
                return True
            if name == "text" and a.args and isinstance(literal(a.args[0]), str):
                return bool(DML_SQL.match(literal(a.args[0])))
    return False


def _commits(fn: FuncDef) -> bool:
    """The function commits or opens ``session.begin()`` (including ``begin_nested``)."""
    return any(isinstance(n.func, ast.Attribute) and n.func.attr in ("commit", "begin") for n in of_type(fn, ast.Call))


def _dependency_commits(ctx, proj: Project) -> bool:
    """A session dependency (a generator yielding a session) commits after the yield."""
    for src in ctx.layout.app_sources(ctx.index):
        if src.tree is None or not of_type(src.tree, ast.Yield):
            continue
        for fn in functions(src.tree):  # the unparse last: it is the costly test
            if of_type(fn, ast.Yield) and _commits(fn) and "session" in ast.unparse(fn).lower():
                return True
    return False


@check("REL-002", "reliability", "Transactions around database writes")
def transactions(ctx):
    """Database writes and the transactions around them, in application code:

    - writes (``session.add/add_all/delete/merge``, ``session.execute(insert|update|
      delete(...))``, ``execute(text("UPDATE ..."))``) that are never committed: no
      ``commit()`` / ``session.begin()`` in the writing function, in its callers up to
      three levels (followed across modules), nor in a session dependency that commits
      after ``yield`` — WARNING (the write is rolled back silently when the session closes);
    - a ``try`` around ``commit()`` whose ``except`` swallows the error without
      ``rollback()`` — WARNING (the session is left in a failed transaction and every
      later use raises PendingRollbackError);
    - sessions opened without ``with`` and never closed in a ``finally`` — WARNING (on an
      error the connection leaks with its transaction open: "idle in transaction");
    - ``isolation_level="AUTOCOMMIT"`` (engine, connection or session) or
      ``autocommit=True`` — WARNING (multi-statement writes are no longer atomic).

    Why: partial writes and lost writes corrupt business data. Not flagged: writes
    committed by the caller or by the dependency; ``async with sessionmaker() as s``
    without explicit rollback (closing the session rolls back uncommitted work);
    ``AUTOCOMMIT`` in migrations (``CREATE INDEX CONCURRENTLY`` needs it).
    """
    chk = transactions.check
    proj = Project.of(ctx)
    dep_commits = _dependency_commits(ctx, proj)
    for src in ctx.layout.app_sources(ctx.index):
        if src.tree is None:
            continue
        autocommit = src.may_name("isolation_level", "autocommit")  # keyword names are identifiers
        for call in calls(src.tree, nested=True) if autocommit else ():
            for k in call.keywords:
                if (k.arg == "isolation_level" and literal(k.value) == "AUTOCOMMIT") or \
                        (k.arg == "autocommit" and literal(k.value) is True):
                    yield chk.finding(ctx, Severity.WARNING, "Autocommit mode",
                                      "Every statement commits on its own: a multi-step write that fails half-way "
                                      "leaves partial data, and rollback has no effect.",
                                      "Use the default transactional mode and commit once per unit of work "
                                      "(`async with session.begin(): ...`).", src.path, call.lineno, key="autocommit")
        for fn in functions(src.tree):
            yield from _function_findings(ctx, chk, proj, src, fn, dep_commits)


def _writes(proj: Project, src, fn: FuncDef) -> list[ast.Call]:
    """The writes among ``calls(fn)`` (same order), found from the function's calls of
    a write-like method only: ``is_write`` needs ``recv.add/.../execute/exec(...)``, and
    calls inside nested functions / lambdas are dropped by walking up the flattened tree."""
    f, i = flat(fn)
    out = []
    for c in of_type(fn, ast.Call):
        func = c.func
        if not (isinstance(func, ast.Attribute) and (func.attr in WRITE_METHODS or func.attr in ("execute", "exec"))):
            continue
        fc, j = flat(c)
        if fc is not f:  # not the same flattening (never for index trees): ask pyresolve
            return [c for c in calls(fn) if is_write(proj, src, c)]
        p, nested = f.parent[j], False
        while p != i and not nested:
            nested = isinstance(f.order[p], FUNCS)
            p = f.parent[p]
        if not nested and is_write(proj, src, c):
            out.append(c)
    return sorted(out, key=lambda c: (c.lineno, c.col_offset))  # the order of calls(fn)


def _function_findings(ctx, chk, proj, src, fn, dep_commits):
    if not dep_commits and not _commits(fn):
        writes = _writes(proj, src, fn)
        if writes and not any(_commits(r.func) for r in callers_upto(proj, fn, 3)):
            w = writes[0]
            yield chk.finding(ctx, Severity.WARNING, f"Write in `{fn.name}` is never committed",
                              f"`{fn.name}` writes through the session but neither it, its callers (3 levels) "
                              "nor the session dependency commit or open `session.begin()`: the change is "
                              "rolled back when the session closes.",
                              "Commit in the unit of work (`async with session.begin(): ...` in the service or "
                              "the dependency) and test that the row persists.", src.path, w.lineno,
                              key=f"uncommitted:{fn.name}")
    for node in of_type(fn, ast.Try):
        if any(isinstance(c.func, ast.Attribute) and c.func.attr == "commit"
               for s in node.body for c in of_type(s, ast.Call)):
            for h in node.handlers:
                reraises = any(of_type(s, ast.Raise) for s in h.body)
                rollback = any(isinstance(n.func, ast.Attribute) and n.func.attr == "rollback"
                               for s in h.body for n in of_type(s, ast.Call))
                if not reraises and not rollback:
                    yield chk.finding(ctx, Severity.WARNING, f"Commit error swallowed without rollback in `{fn.name}`",
                                      "The except branch neither rolls back nor re-raises: the session stays in a "
                                      "failed transaction and its next use raises PendingRollbackError.",
                                      "Call `await session.rollback()` in the except branch (or re-raise).",
                                      src.path, h.lineno, key=f"swallow:{fn.name}")
    for node in of_type(fn, ast.Assign):
        if isinstance(node.value, ast.Call) and len(node.targets) == 1 \
                and isinstance(node.targets[0], ast.Name) and SESSION_NAME.search(node.targets[0].id) \
                and _is_session_factory(proj, src, node.value):
            name = node.targets[0].id
            closed = any(any(
                dotted(c.func) in (f"{name}.close", f"{name}.rollback")
                for s in t.finalbody + [x for h in t.handlers for x in h.body] for c in of_type(s, ast.Call))
                for t in of_type(fn, ast.Try))
            if not closed:
                yield chk.finding(ctx, Severity.WARNING, f"Session opened without `with` in `{fn.name}`",
                                  f"`{name}` is created without a context manager and is not closed / rolled back "
                                  "in a finally block: an exception leaks the connection with its transaction "
                                  "open (idle in transaction, holding locks).",
                                  f"Use `async with SessionLocal() as {name}:` (or close it in `finally`).",
                                  src.path, node.lineno, key=f"bare-session:{fn.name}")


def _is_session_factory(proj: Project, src, call: ast.Call) -> bool:
    """``SessionLocal()`` where SessionLocal = (async_)sessionmaker(...), or ``Session(engine)``."""
    name = dotted(call.func)
    q = proj.qualify(src, call.func).split(".")[-1]
    if q in ("Session", "AsyncSession"):
        return True
    for n in of_type(src.tree, ast.Assign):
        if isinstance(n.value, ast.Call) and any(dotted(t) == name for t in n.targets):
            return dotted(n.value.func).split(".")[-1] in SESSION_FACTORIES
    imported = proj.imports.get(src.path, {}).get(name)
    if imported:
        mod, _, attr = imported.rpartition(".")
        other = proj.by_module.get(mod)
        if other is not None and other.tree is not None:
            for n in other.tree.body:
                if isinstance(n, ast.Assign) and isinstance(n.value, ast.Call) and any(dotted(t) == attr for t in n.targets):
                    return dotted(n.value.func).split(".")[-1] in SESSION_FACTORIES
    return False
