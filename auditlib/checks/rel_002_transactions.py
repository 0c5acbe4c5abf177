"""REL-002: database writes inside transactions that commit, with rollback on error."""
from __future__ import annotations

import ast
import re

from ..findings import Severity
from ..code.pyast import FUNCS, dotted, flat, literal, of_type
from ..code.callgraph import shared
from ..code.pyresolve import FuncDef, Project, callers_upto, calls, functions
from . import check

# a receiver named like a session or connection (``session``, ``db_session``, ``self.session``,
# ``db``, ``conn``); ``session_token_repository`` or ``events_counter`` are not sessions
SESSION_NAME = re.compile(r"(^|_)(session|sess|db|conn|connection|tx|uow)$|^s$", re.I)
# calls whose ``autocommit=True`` means the database's autocommit mode (not an app helper's flag)
AUTOCOMMIT_CALLS = {"create_engine", "create_async_engine", "sessionmaker", "async_sessionmaker", "Session",
                    "AsyncSession", "scoped_session", "connect", "execution_options", "set_session"}
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
    committed by the caller or by the dependency, or by a project helper the function
    or its caller calls (matched by name when every project function of that name
    commits: ``await repo.delete(obj)``, ``await obj.create_async(session)``; when the
    call hands the session over, only the definitions taking a session parameter count,
    and an override calling ``super().<same name>(...)`` counts as the one it extends);
    ``async with sessionmaker() as s`` without explicit rollback (closing the session
    rolls back uncommitted work), also when the ``except`` sits outside that block;
    handlers that call a project function which always raises (an error translator);
    ``AUTOCOMMIT`` in migrations (``CREATE INDEX CONCURRENTLY`` needs it);
    ``autocommit=True`` passed to the project's own helpers (only engine, session and
    connection factories mean the database's autocommit mode); receivers that are not
    sessions (``session_token_repository.delete``, ``events_counter.add``).
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
                        (k.arg == "autocommit" and literal(k.value) is True
                         and dotted(call.func).rsplit(".", 1)[-1] in AUTOCOMMIT_CALLS):
                    yield chk.finding(ctx, Severity.WARNING, "Autocommit mode",
                                      "Every statement commits on its own: a multi-step write that fails half-way "
                                      "leaves partial data, and rollback has no effect.",
                                      "Use the default transactional mode and commit once per unit of work "
                                      "(`async with session.begin(): ...`).", src.path, call.lineno, key="autocommit")
        registered = _listeners(src)
        for fn in functions(src.tree):
            yield from _function_findings(ctx, chk, proj, src, fn, dep_commits, registered)


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


def _by_name(ctx, proj: Project) -> dict[str, list[FuncDef]]:
    """Every function and method of the project by its bare name (method calls on
    objects whose class is not resolved are matched by name); built once per audit."""
    def build():
        out: dict[str, list[FuncDef]] = {}
        for s in proj.files:
            if s.tree is not None:
                for f in functions(s.tree):
                    out.setdefault(f.name, []).append(f)
        return out
    return shared(ctx, "functions_by_name", build)


def _name_commits(ctx, proj: Project, name: str, depth: int = 2, session_arg: bool = False) -> bool:
    """Every project function of that name commits, itself or through such a helper
    (``repo.delete(x)`` where each ``delete`` of the project ends its unit of work with
    ``commit()``; ``obj.create_async(s)`` that calls ``self._commit(s)``).

    With ``session_arg`` (the call hands a session over: ``obj.create(session)``) only
    the definitions that take a session parameter can be the callee (a module function
    ``create(llm_config, messages)`` of the same name is another thing); an override
    that delegates to ``super().<name>(...)`` behaves as the definition it extends."""
    memo = shared(ctx, "commits_by_name", dict)
    key = (name, depth, session_arg)
    if key not in memo:
        memo[key] = False  # a recursive helper does not commit through itself
        defs = _by_name(ctx, proj).get(name, [])
        if session_arg:
            defs = [d for d in defs if any(SESSION_NAME.search(a.arg) for a in _params(d))]
        own = [d for d in defs if not _delegates_to_super(d)]
        memo[key] = bool(own) and all(_commits(d) or (depth > 0 and _called_commit(ctx, proj, d, depth - 1))
                                       for d in own)
    return memo[key]


def _params(fn: FuncDef) -> list[ast.arg]:
    a = fn.args
    return [*a.posonlyargs, *a.args, *a.kwonlyargs]


def _delegates_to_super(fn: FuncDef) -> bool:
    """``fn`` calls ``super().<its own name>(...)``: an override of an inherited method."""
    return any(isinstance(c.func, ast.Attribute) and c.func.attr == fn.name and isinstance(c.func.value, ast.Call)
               and dotted(c.func.value.func) == "super" for c in of_type(fn, ast.Call))


def _callee_name(call: ast.Call) -> str:
    """The called name: ``f`` of ``f(...)``, ``obj.f(...)`` and ``super().f(...)``."""
    if isinstance(call.func, ast.Attribute):
        return call.func.attr
    return call.func.id if isinstance(call.func, ast.Name) else ""


def _passes_session(call: ast.Call) -> bool:
    return any(SESSION_NAME.search(dotted(a).rsplit(".", 1)[-1] or "-")
               for a in [*call.args, *(k.value for k in call.keywords)])


def _called_commit(ctx, proj: Project, fn, depth: int = 2) -> bool:
    """``fn`` calls, by name, a project function that commits."""
    return any(_callee_name(c) and _name_commits(ctx, proj, _callee_name(c), depth, _passes_session(c))
               for c in of_type(fn, ast.Call))


def _always_raises(ctx, proj: Project, name: str) -> bool:
    """Every project function of that name ends by raising (an error translator)."""
    defs = _by_name(ctx, proj).get(name, [])
    return bool(defs) and all(d.body and isinstance(d.body[-1], ast.Raise) for d in defs)


def _listeners(src) -> set[str]:
    """Names of the module's functions registered as ORM event listeners without a
    decorator: ``event.listen(Session, "before_flush", fn)``, ``listens_for(...)(fn)``."""
    out = set()
    if src.may_name("listen", "listens_for"):
        for c in of_type(src.tree, ast.Call):
            if dotted(c.func).rsplit(".", 1)[-1] == "listen" and len(c.args) >= 3:
                out.add(dotted(c.args[2]))
            elif isinstance(c.func, ast.Call) and dotted(c.func.func).rsplit(".", 1)[-1] == "listens_for" and c.args:
                out.add(dotted(c.args[0]))
    return out


def _listener(fn, registered: set[str]) -> bool:
    """An ORM event listener (``@event.listens_for(Session, "before_flush")``): its writes
    join the flush of the transaction that triggered it, whoever commits that."""
    return fn.name in registered or any(dotted(d).rsplit(".", 1)[-1] == "listens_for"
                                        for d in getattr(fn, "decorator_list", ()))


def _function_findings(ctx, chk, proj, src, fn, dep_commits, registered=frozenset()):
    if _listener(fn, registered):
        return
    if not dep_commits and not _commits(fn) and not _called_commit(ctx, proj, fn):
        writes = _writes(proj, src, fn)
        if writes and not any(_commits(r.func) or _called_commit(ctx, proj, r.func) for r in callers_upto(proj, fn, 3)):
            w = writes[0]
            yield chk.finding(ctx, Severity.WARNING, f"Write in `{fn.name}` is never committed",
                              f"`{fn.name}` writes through the session but neither it, its callers (3 levels), the project "
                              "helpers they call "
                              "nor the session dependency commit or open `session.begin()`: the change is "
                              "rolled back when the session closes.",
                              "Commit in the unit of work (`async with session.begin(): ...` in the service or "
                              "the dependency) and test that the row persists.", src.path, w.lineno,
                              key=f"uncommitted:{fn.name}")
    for node in of_type(fn, ast.Try):
        if any(isinstance(c.func, ast.Attribute) and c.func.attr == "commit"
               for s in node.body for c in of_type(s, ast.Call)):
            if _closes_first(node) or _closed_finally(node):
                continue  # the session is closed (rolled back) before or after the handler runs
            for h in node.handlers:
                reraises = any(of_type(s, ast.Raise) for s in h.body) or any(
                    _always_raises(ctx, proj, dotted(c.func).rsplit(".", 1)[-1]) for s in h.body for c in of_type(s, ast.Call))
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


def _closes_first(node: ast.Try) -> bool:
    """Every ``commit()`` of the ``try`` body sits inside a ``with`` block opened in that
    body: an error leaves the block first, which closes the session (rolling back)."""
    commits = [c for s in node.body for c in of_type(s, ast.Call)
               if isinstance(c.func, ast.Attribute) and c.func.attr == "commit"]
    inside = {id(c) for s in node.body for w in of_type(s, (ast.With, ast.AsyncWith)) for c in of_type(w, ast.Call)}
    return bool(commits) and all(id(c) in inside for c in commits)


def _closed_finally(node: ast.Try) -> bool:
    """The ``finally`` of the ``try`` closes a session: its failed transaction goes with it."""
    return any(isinstance(c.func, ast.Attribute) and c.func.attr == "close"
               and SESSION_NAME.search(dotted(c.func.value).rsplit(".", 1)[-1] or "")
               for s in node.finalbody for c in of_type(s, ast.Call))


def _is_session_factory(proj: Project, src, call: ast.Call) -> bool:
    """``SessionLocal()`` where SessionLocal = (async_)sessionmaker(...), or ``Session(engine)``."""
    name = dotted(call.func)
    qual = proj.qualify(src, call.func)
    if qual.split(".")[-1] in ("Session", "AsyncSession"):  # SQLAlchemy's, not boto3's or requests'
        return qual.startswith(("sqlalchemy.", "sqlmodel.")) or qual in ("Session", "AsyncSession")
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
