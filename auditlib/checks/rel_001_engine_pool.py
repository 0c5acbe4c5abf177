"""REL-001: the database engine's effective pool settings, pre-ping and statement timeout."""
from __future__ import annotations

import ast

from ..findings import Severity, db_not_verified
from ..code.pyast import NOT_LITERAL, dotted, literal
from ..code.pyresolve import Project, calls, kwarg
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


def _describe(proj: Project, call: ast.Call, name: str) -> tuple[object, str]:
    """(effective value, how it was found) for a pool parameter."""
    node = kwarg(call, name)
    if node is None:
        return DEFAULTS[name], f"{name}={DEFAULTS[name]} (SQLAlchemy default)"
    v = literal(node)
    if v is not NOT_LITERAL:
        return v, f"{name}={v!r}"
    s = proj.setting(node)
    if s is not None and s.value is not NOT_LITERAL:
        return s.value, f"{name}={s.value!r} (default of setting `{s.name}`, {s.file}:{s.line}; env {s.name.upper()})"
    return NOT_LITERAL, f"{name}=`{ast.unparse(node)}` (computed)"


def statement_timeout(call: ast.Call, src_text: str) -> str:
    """Where a statement / command timeout is configured for this engine, or ''."""
    ca = kwarg(call, "connect_args")
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

    Flagged: no ``pool_pre_ping=True`` — WARNING (after a database restart or failover
    the first request on every stale pooled connection fails); no statement timeout
    (asyncpg ``command_timeout`` / ``server_settings={"statement_timeout": ...}``,
    psycopg ``options="-c statement_timeout=..."``, or a ``SET statement_timeout`` in
    the engine's module) — RECOMMENDATION (defence in depth: a runaway query holds its
    connection and locks until it ends, which only a timeout bounds); ``max_overflow=-1`` or ``pool_timeout=None`` (unbounded) — WARNING;
    ``NullPool`` — RECOMMENDATION (fine behind PgBouncer, otherwise one new connection
    per checkout). No engine found — a "not verified" WARNING.
    Not flagged: engines in migrations (Alembic's env.py uses NullPool by design), tests.
    """
    chk = engine_pool.check
    proj = Project.of(ctx)
    found = False
    for src, call in engine_calls(ctx):
        found = True
        pool_class = dotted(kwarg(call, "poolclass") or ast.Name("")).rsplit(".", 1)[-1]
        if pool_class in NO_POOL:
            yield chk.finding(ctx, Severity.RECOMMENDATION, f"Engine uses {pool_class}",
                              f"`poolclass={pool_class}`: no connection pooling; every checkout opens a new "
                              "connection. Right behind PgBouncer (transaction mode), costly otherwise.",
                              "Use the default QueuePool (pool_size ~20, max_overflow ~10, pool_timeout ~30, "
                              "pool_pre_ping=True) unless an external pooler is in place.",
                              src.path, call.lineno, key="nullpool")
        else:
            values = {n: _describe(proj, call, n) for n in DEFAULTS}
            explicit = any(kwarg(call, n) is not None for n in DEFAULTS)
            summary = ", ".join(d for _, d in values.values())
            yield chk.finding(ctx, Severity.INFO,
                              "Engine pool: " + ("configured" if explicit else "defaults in effect"),
                              f"{summary}; at most pool_size + max_overflow connections per process "
                              "(checklist reference: pool_size ~20, max_overflow ~10, pool_timeout ~30 s).",
                              "", src.path, call.lineno, key="pool")
            if values["max_overflow"][0] == -1 or (kwarg(call, "pool_timeout") is not None
                                                   and values["pool_timeout"][0] is None):
                yield chk.finding(ctx, Severity.WARNING, "Unbounded connection pool",
                                  f"{summary}: `max_overflow=-1` opens connections without limit (exhausting "
                                  "max_connections) / `pool_timeout=None` waits forever for a connection.",
                                  "Bound the pool: max_overflow ~10, pool_timeout ~30 s.",
                                  src.path, call.lineno, key="unbounded")
            pre_ping = kwarg(call, "pool_pre_ping")
            if literal(pre_ping) is not True and proj.value(pre_ping) is not True:
                how = ("is not set" if pre_ping is None else
                       f"is `{dotted(pre_ping) or 'computed'}`, off by default (the deployment must turn it on)"
                       if literal(pre_ping) is None else "is False")
                recycle = " `pool_recycle` only limits idle disconnects." if kwarg(call, "pool_recycle") is not None else ""
                yield chk.finding(ctx, Severity.WARNING, "Engine without pool_pre_ping",
                                  f"`pool_pre_ping` {how}: pooled connections are not checked before use, so after "
                                  "a database restart or failover requests fail on stale connections." + recycle,
                                  "Pass `pool_pre_ping=True` (and consider `pool_recycle=1800`).",
                                  src.path, call.lineno, key="pre-ping")
        if not statement_timeout(call, src.text or ""):
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
