"""REL-001: the database engine's effective pool settings, pre-ping and statement timeout."""
from __future__ import annotations

import ast

from ..findings import Severity, db_not_verified
from ..code.pyast import NOT_LITERAL, dotted, inner, literal, of_type, source
from ..code.pyresolve import Project, calls, enclosing_function, kwarg, parents
from . import check

ENGINE_FACTORIES = {"create_engine", "create_async_engine"}
ENGINE_MODULES = ("sqlalchemy", "sqlmodel")
DEFAULTS = {"pool_size": 5, "max_overflow": 10, "pool_timeout": 30}
NO_POOL = {"NullPool", "StaticPool", "AssertionPool"}


def engine_calls(ctx):
    """(src, call) of every SQLAlchemy engine factory call in application code."""
    proj = Project.of(ctx)
    for src in ctx.layout.app_sources(ctx.index):
        if src.tree is None:
            continue
        # the factory's name is the last part of the qualified name, always written in the
        # file (the call or its import)
        if not src.may_name(*ENGINE_FACTORIES):
            continue
        for call in calls(src.tree, nested=True):
            q = proj.qualify(src, call.func)
            if q.rsplit(".", 1)[-1] in ENGINE_FACTORIES and q.split(".")[0] in ENGINE_MODULES:
                yield src, call


class EngineArgs:
    """The keyword arguments an engine factory call receives: the written ones and
    those of its ``**expr`` arguments when they can be read (a dict literal or
    ``dict(...)``, a local dict filled with ``d[k] = v`` / ``d.update(...)``, the dict a
    project function or a settings property returns, on any of its paths).
    ``opaque`` lists the ``**`` arguments that could not be read: a keyword absent from
    ``values`` may then still be passed."""

    def __init__(self, proj: Project, src, call: ast.Call):
        self.values: dict[str, ast.AST] = {}
        self.opaque: list[str] = []
        scope = enclosing_function(call, parents(src.tree)) or src.tree
        for k in call.keywords:
            if k.arg is not None:
                self.values[k.arg] = k.value
                continue
            got = _dict_entries(proj, src, k.value, scope, call.lineno, 3)
            if got is None:
                self.opaque.append(source(k.value))
            else:
                for name, value in got.items():
                    self.values.setdefault(name, value)

    def get(self, name: str) -> ast.AST | None:
        return self.values.get(name)


def _dict_entries(proj: Project, src, expr: ast.AST, scope: ast.AST, before: int, depth: int):
    """{key: value node} of the dict ``expr`` evaluates to (keys set on any path), or
    None when it cannot be read statically."""
    if depth < 0:
        return None
    if isinstance(expr, ast.Dict):
        out: dict[str, ast.AST] = {}
        for k, v in zip(expr.keys, expr.values):
            if k is None:  # {**other}
                sub = _dict_entries(proj, src, v, scope, before, depth - 1)
                if sub is None:
                    return None
                out.update(sub)
            elif isinstance(literal(k), str):
                out[literal(k)] = v
            else:
                return None
        return out
    if isinstance(expr, ast.Call) and dotted(expr.func) == "dict" and not expr.args:
        out = {}
        for k in expr.keywords:
            if k.arg is None:
                sub = _dict_entries(proj, src, k.value, scope, before, depth - 1)
                if sub is None:
                    return None
                out.update(sub)
            else:
                out[k.arg] = k.value
        return out
    if isinstance(expr, ast.Name):
        return _local_dict(proj, src, expr.id, scope, before, depth)
    if isinstance(expr, ast.Call):
        r = proj.resolve_call(src, expr.func)
        return _returned_dict(proj, r.src, r.func, depth - 1) if r is not None else None
    if isinstance(expr, ast.Attribute):  # settings.engine_args: a property of a project class
        props = [(s, fn) for s in proj.files if s.tree is not None and s.may_name(expr.attr)
                 for fn in of_type(s.tree, ast.FunctionDef)
                 if fn.name == expr.attr and any(dotted(d).rsplit(".", 1)[-1] in ("property", "cached_property")
                                                for d in fn.decorator_list)]
        if len(props) != 1:
            return None
        return _returned_dict(proj, props[0][0], props[0][1], depth - 1)
    return None


def _local_dict(proj: Project, src, name: str, scope: ast.AST, before: int, depth: int):
    """The entries of the local (or module-level) dict ``name`` as built before line
    ``before``: its assignments, ``name[k] = v``, ``name.update(...)``/``setdefault``."""
    out: dict[str, ast.AST] = {}
    found = False
    for n in inner(scope, keep_scopes=False):
        if isinstance(n, (ast.Assign, ast.AnnAssign, ast.Call)) and n.lineno < before:
            if isinstance(n, (ast.Assign, ast.AnnAssign)):
                targets = n.targets if isinstance(n, ast.Assign) else [n.target]
                for t in targets:
                    if isinstance(t, ast.Name) and t.id == name and n.value is not None:
                        sub = _dict_entries(proj, src, n.value, scope, n.lineno, depth - 1)
                        if sub is None:
                            return None
                        out.update(sub)
                        found = True
                    elif isinstance(t, ast.Subscript) and dotted(t.value) == name:
                        key = literal(t.slice)
                        if not isinstance(key, str):
                            return None
                        out[key] = n.value
            elif isinstance(n.func, ast.Attribute) and dotted(n.func.value) == name:
                if n.func.attr == "update":
                    for a in n.args:
                        sub = _dict_entries(proj, src, a, scope, n.lineno, depth - 1)
                        if sub is None:
                            return None
                        out.update(sub)
                    out.update({k.arg: k.value for k in n.keywords if k.arg})
                elif n.func.attr == "setdefault" and n.args and isinstance(literal(n.args[0]), str):
                    out.setdefault(literal(n.args[0]), n.args[1] if len(n.args) > 1 else ast.Constant(None))
    if found:
        return out
    if not isinstance(scope, ast.Module):  # a module-level dict read inside a function
        return _local_dict(proj, src, name, src.tree, 10**9, depth)
    return None


def _returned_dict(proj: Project, src, fn: ast.AST, depth: int):
    """The entries of the dicts ``fn`` returns (union over its ``return`` statements)."""
    rets = [n for n in inner(fn) if isinstance(n, ast.Return)]
    if not rets or depth < 0:
        return None
    out: dict[str, ast.AST] = {}
    for r in rets:
        if r.value is None:
            return None
        sub = _dict_entries(proj, src, r.value, fn, r.lineno, depth)
        if sub is None:
            return None
        for k, v in sub.items():
            out.setdefault(k, v)
    return out


def _string_prefix(proj: Project, src, expr: ast.AST | None, scope: ast.AST, before: int, depth: int = 2) -> str:
    """The literal beginning of a string expression (a constant, an f-string, a ``+``
    concatenation, a local assigned only such values), or ''."""
    if expr is None or depth < 0:
        return ""
    if isinstance(expr, ast.Constant) and isinstance(expr.value, str):
        return expr.value
    if isinstance(expr, ast.JoinedStr) and expr.values and isinstance(expr.values[0], ast.Constant):
        return str(expr.values[0].value)
    if isinstance(expr, ast.BinOp) and isinstance(expr.op, ast.Add):
        return _string_prefix(proj, src, expr.left, scope, before, depth)
    if isinstance(expr, ast.Name):
        values = [n.value for n in of_type(scope, ast.Assign) if n.lineno < before
                  and any(isinstance(t, ast.Name) and t.id == expr.id for t in n.targets)]
        prefixes = {_string_prefix(proj, src, v, scope, before, depth - 1) for v in values}
        return prefixes.pop() if len(prefixes) == 1 else ""
    return ""


SQLITE_MODULES = {"sqlite3", "aiosqlite"}


def _sqlite_creator(proj: Project, src, args: EngineArgs) -> str:
    """The ``creator=`` / ``async_creator=`` argument (as written) when it opens SQLite
    connections: it is, or calls, ``sqlite3`` / ``aiosqlite`` (a lambda, or a project
    function whose body, nested functions included, does); '' otherwise."""
    for key in ("creator", "async_creator"):
        node = args.get(key)
        if node is None:
            continue
        bodies = [(src, node)]
        target = node.func if isinstance(node, ast.Call) else node
        r = proj.resolve_call(src, target) if isinstance(target, (ast.Name, ast.Attribute)) else None
        if r is not None:
            bodies.append((r.src, r.func))
        for where, body in bodies:
            names = [proj.qualify(where, n) for n in of_type(body, (ast.Name, ast.Attribute))]
            if any(q.split(".")[0] in SQLITE_MODULES for q in names):
                return source(node)
    return ""


def _describe(proj: Project, args: EngineArgs, name: str) -> tuple[object, str]:
    """(effective value, how it was found) for a pool parameter."""
    node = args.get(name)
    if node is None:
        if args.opaque:
            return NOT_LITERAL, f"{name} not written (maybe in `**{args.opaque[0]}`)"
        return DEFAULTS[name], f"{name}={DEFAULTS[name]} (SQLAlchemy default)"
    v = literal(node)
    if v is not NOT_LITERAL:
        return v, f"{name}={v!r}"
    s = proj.setting(node)
    if s is not None and s.value is not NOT_LITERAL:
        return s.value, f"{name}={s.value!r} (default of setting `{s.name}`, {s.file}:{s.line}; env {s.name.upper()})"
    return NOT_LITERAL, f"{name}=`{ast.unparse(node)}` (computed)"


def statement_timeout(call: ast.Call, src_text: str, args: EngineArgs | None = None) -> str:
    """Where a statement / command timeout is configured for this engine, or ''."""
    ca = args.get("connect_args") if args is not None else kwarg(call, "connect_args")
    if ca is not None:
        text = ast.unparse(ca)
        for needle in ("statement_timeout", "command_timeout", "options"):
            if needle in text and (needle != "options" or "statement_timeout" in text):
                return f"connect_args ({needle})"
    if "statement_timeout" in src_text:  # SET statement_timeout in a connect event listener, URL options
        return "statement_timeout set in the engine's module"
    return ""


@check("REL-001", "reliability", "Database engine pool and timeouts")
def engine_pool(ctx):
    """Every ``create_engine`` / ``create_async_engine`` call in application code with its
    effective pool: explicit values, values from settings resolved to their defaults
    (``pool_size=settings.db_pool_size`` -> the field's default and env var), or
    SQLAlchemy's defaults stated as such (pool_size=5, max_overflow=10,
    pool_timeout=30 s: bounded). Reported as INFO (with the checklist's reference of
    ~20 / ~10 / ~30 s for comparison).

    The keyword arguments are read where the call writes them and, for ``**expr``,
    from the dict it evaluates to when that can be read (a dict literal or ``dict()``,
    a local dict filled with ``d[k] = v`` / ``d.update(...)``, the dicts a project
    function or a settings ``@property`` returns, on any path).

    Flagged: ``pool_pre_ping`` absent or False — WARNING (after a database restart or
    failover the first request on every stale pooled connection fails); bound to a
    setting whose default is off — RECOMMENDATION (the deployment can turn it on; the
    message names the setting and its default); no statement timeout
    (asyncpg ``command_timeout`` / ``server_settings={"statement_timeout": ...}``,
    psycopg ``options="-c statement_timeout=..."``, or a ``SET statement_timeout`` in
    the engine's module) — RECOMMENDATION (defence in depth: a runaway query holds its
    connection and locks until it ends, which only a timeout bounds); ``max_overflow=-1``
    (no limit on connections) — WARNING; ``pool_timeout=None`` on a bounded pool (a
    checkout waits forever when every connection is held: a stuck holder stalls its
    waiters; often a deliberate choice to queue bursts) — RECOMMENDATION, also on SQLite
    engines; ``NullPool`` — RECOMMENDATION (fine
    behind PgBouncer, otherwise one new connection per checkout). No engine found — a
    "not verified" WARNING.
    Not flagged: engines in migrations (Alembic's env.py uses NullPool by design), tests;
    engines on a SQLite URL (a literal, f-string or concatenation starting with
    ``sqlite``) or whose ``creator=`` / ``async_creator=`` opens SQLite connections (it
    is, or calls a project function that uses, ``sqlite3`` / ``aiosqlite``): INFO, a
    local file has no server to restart or fail over (no pre-ping, no statement
    timeout; only the ``pool_timeout=None`` RECOMMENDATION applies); ``pool_pre_ping`` or the
    statement timeout when the value is computed, or when it may come from a ``**``
    argument that cannot be read (the INFO says the pool was not read).
    """
    chk = engine_pool.check
    proj = Project.of(ctx)
    found = False
    for src, call in engine_calls(ctx):
        found = True
        args = EngineArgs(proj, src, call)
        scope = enclosing_function(call, parents(src.tree)) or src.tree
        url = call.args[0] if call.args else args.get("url")
        creator = _sqlite_creator(proj, src, args)
        if creator or _string_prefix(proj, src, url, scope, call.lineno).startswith("sqlite"):
            what = (f"The connections come from `{creator}`, which opens SQLite connections" if creator else
                    f"The URL (`{source(url)}`) is a SQLite database file")
            yield chk.finding(ctx, Severity.INFO, "Engine pool: SQLite database",
                              f"{what}: a local file, with no server to restart or fail over; pre-ping and "
                              "statement timeouts do not apply.", "", src.path, call.lineno, key="pool")
            yield from _unbounded(ctx, chk, proj, src, call, args)
            continue
        pool_class = dotted(args.get("poolclass") or ast.Name("")).rsplit(".", 1)[-1]
        if pool_class in NO_POOL:
            yield chk.finding(ctx, Severity.RECOMMENDATION, f"Engine uses {pool_class}",
                              f"`poolclass={pool_class}`: no connection pooling; every checkout opens a new "
                              "connection. Right behind PgBouncer (transaction mode), costly otherwise.",
                              "Use the default QueuePool (pool_size ~20, max_overflow ~10, pool_timeout ~30, "
                              "pool_pre_ping=True) unless an external pooler is in place.",
                              src.path, call.lineno, key="nullpool")
        else:
            values = {n: _describe(proj, args, n) for n in DEFAULTS}
            explicit = any(args.get(n) is not None for n in DEFAULTS)
            summary = ", ".join(d for _, d in values.values())
            yield chk.finding(ctx, Severity.INFO,
                              "Engine pool: " + ("configured" if explicit else
                                                 "not read (keyword arguments from `**`)" if args.opaque else
                                                 "defaults in effect"),
                              f"{summary}; at most pool_size + max_overflow connections per process "
                              "(checklist reference: pool_size ~20, max_overflow ~10, pool_timeout ~30 s).",
                              "", src.path, call.lineno, key="pool")
            yield from _unbounded(ctx, chk, proj, src, call, args)
            yield from _pre_ping(ctx, chk, proj, src, call, args)
        if not statement_timeout(call, src.text or "", args) and not (args.opaque and args.get("connect_args") is None):
            yield chk.finding(ctx, Severity.RECOMMENDATION, "No statement timeout on the database engine",
                              "No statement timeout is configured (connect_args or SET statement_timeout): a "
                              "runaway query or a lock wait holds its connection indefinitely and can drain "
                              "the pool.",
                              "asyncpg: `connect_args={\"command_timeout\": 30, \"server_settings\": "
                              "{\"statement_timeout\": \"30000\"}}`; psycopg: `connect_args={\"options\": "
                              "\"-c statement_timeout=30000\"}`.", src.path, call.lineno, key="statement-timeout")
    if not found:
        yield db_not_verified(ctx, chk.id, chk.area, "database engine pool",
                           "no create_engine / create_async_engine call found in application code")


def _unbounded(ctx, chk, proj: Project, src, call: ast.Call, args: EngineArgs):
    """``max_overflow=-1``: no limit on connections — WARNING. ``pool_timeout=None`` on
    a bounded pool: a checkout waits forever when every connection is held (a stuck
    holder stalls its waiters instead of failing them) — RECOMMENDATION."""
    values = {n: _describe(proj, args, n) for n in DEFAULTS}
    summary = ", ".join(d for _, d in values.values())
    if values["max_overflow"][0] == -1:
        yield chk.finding(ctx, Severity.WARNING, "Unbounded connection pool",
                          f"{summary}: `max_overflow=-1` opens connections without limit (exhausting the "
                          "server's max_connections under load).",
                          "Bound the pool: max_overflow ~10, pool_timeout ~30 s.",
                          src.path, call.lineno, key="unbounded")
    elif args.get("pool_timeout") is not None and values["pool_timeout"][0] is None:
        yield chk.finding(ctx, Severity.RECOMMENDATION, "Pool checkout without a timeout (pool_timeout=None)",
                          f"{summary}: the pool is bounded, but `pool_timeout=None` makes a caller wait "
                          "forever for a connection when all are checked out: a connection held by a stuck "
                          "session stalls every waiter instead of failing them after a timeout.",
                          "Give the checkout a bound (`pool_timeout=30`), long enough for bursts to queue.",
                          src.path, call.lineno, key="unbounded")


def _pre_ping(ctx, chk, proj: Project, src, call: ast.Call, args: EngineArgs):
    """The pool_pre_ping finding of one engine: WARNING when it is absent or False,
    RECOMMENDATION when a setting off by default decides, nothing when it is on or
    cannot be read (computed, or possibly passed in an unread ``**``)."""
    pre_ping = args.get("pool_pre_ping")
    recycle = " `pool_recycle` only limits idle disconnects." if args.get("pool_recycle") is not None else ""
    effect = ("pooled connections are not checked before use, so after a database restart or failover "
              "requests fail on stale connections.")
    fix = "Pass `pool_pre_ping=True` (and consider `pool_recycle=1800`)."
    if pre_ping is None:
        if not args.opaque:
            yield chk.finding(ctx, Severity.WARNING, "Engine without pool_pre_ping",
                              f"`pool_pre_ping` is not set: {effect}{recycle}", fix, src.path, call.lineno,
                              key="pre-ping")
        return
    value = literal(pre_ping)
    if value is True:
        return
    setting = proj.setting(pre_ping) if value is NOT_LITERAL else None
    if setting is not None and setting.value is not NOT_LITERAL:
        if setting.value:
            return
        yield chk.finding(ctx, Severity.RECOMMENDATION, "pool_pre_ping off by default",
                          f"`pool_pre_ping={source(pre_ping)}`: the setting `{setting.name}` defaults to "
                          f"{setting.value!r} ({setting.file}:{setting.line}); unless the deployment turns it on, "
                          f"{effect}{recycle}",
                          f"Default `{setting.name}` to True (or set it in the production environment).",
                          src.path, call.lineno, key="pre-ping")
    elif value is not NOT_LITERAL:
        yield chk.finding(ctx, Severity.WARNING, "Engine without pool_pre_ping",
                          f"`pool_pre_ping={value!r}`: {effect}{recycle}", fix, src.path, call.lineno,
                          key="pre-ping")
