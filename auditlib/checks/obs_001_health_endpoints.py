"""OBS-001: liveness and readiness endpoints, and what readiness really checks."""
from __future__ import annotations

import ast
import re

from ..findings import Severity
from ..code.pyast import dotted, of_type, walk
from ..code.pyresolve import Project, callees_upto
from ..facts.routes import app_anchor, routes_at, source_routes
from . import check

HEALTH_PATHS = ["/healthz", "/health", "/livez", "/healthcheck"]
READY_PATHS = ["/readyz", "/ready", "/readiness"]
DB_CALLS = {"execute", "scalar", "scalars", "exec_driver_sql", "fetch", "fetchval", "fetchrow"}
MIGRATION_NAMES = {"ScriptDirectory", "MigrationContext", "get_current_revision", "get_current_heads", "get_heads"}
HEARTBEAT = re.compile(r"heartbeat", re.I)
# a probe under another name: the last segment of a GET route (behind an auth middleware
# too: such middlewares usually let probes through, and the live stage probes it)
PROBE_SEGMENT = re.compile(r"^(health|healthz|healthcheck|health-check|livez|liveness|live|alive|ping|status|up)$", re.I)


def _probes(ctx) -> list:
    """GET routes whose last path segment names a probe (``/api/v1/status``, ``/v1/health/``)."""
    return [r for r in source_routes(ctx) if "GET" in r.methods
            and PROBE_SEGMENT.match(r.path.rstrip("/").rsplit("/", 1)[-1] or "")]


def _evidence(ctx, handler_src, handler):
    """{what: "file:line"} for the checks found in the handler and its callees."""
    found: dict[str, str] = {}
    fails = False
    for src, fn in callees_upto(Project.of(ctx), handler_src, handler):
        for n in walk(fn):
            where = f"{src.path}:{getattr(n, 'lineno', fn.lineno)}"
            if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute) and n.func.attr in DB_CALLS:
                found.setdefault("database query", where)
            name = dotted(n) if isinstance(n, (ast.Name, ast.Attribute)) else ""
            text = n.value if isinstance(n, ast.Constant) and isinstance(n.value, str) else ""
            if name.split(".")[-1] in MIGRATION_NAMES or "alembic_version" in text:
                found.setdefault("migration version", where)
            if HEARTBEAT.search(name) or HEARTBEAT.search(text):
                found.setdefault("jobs heartbeat", where)
            if isinstance(n, ast.Raise) or (isinstance(n, ast.Constant) and n.value in (500, 503)) \
                    or (isinstance(n, ast.Attribute) and n.attr.startswith(("HTTP_5", "HTTP_424"))) \
                    or (isinstance(n, ast.keyword) and n.arg == "status_code"):
                fails = True
    catches = any(isinstance(n, ast.Try) and n.handlers for n in walk(handler))
    return found, (catches and not fails)


def _heartbeat_elsewhere(ctx, skip: set[int]) -> str | None:
    """A jobs heartbeat written or configured anywhere in the app (outside readiness)."""
    search = HEARTBEAT.search
    for src in ctx.layout.app_sources(ctx.index):
        for n in of_type(src.tree, (ast.Name, ast.Attribute, ast.Constant)) if src.tree else ():
            if type(n) is ast.Constant:
                if not (isinstance(n.value, str) and search(n.value)):
                    continue
            elif not search(dotted(n)):
                continue
            if id(n) not in skip:
                return f"{src.path}:{n.lineno}"
    return None


@check("OBS-001", "observability", "Health and readiness endpoints")
def health_endpoints(ctx):
    """Liveness (``/healthz``) and readiness (``/readyz``) routes exist, found from route
    decorators, ``add_api_route`` and mounts (router prefixes included); then the
    readiness handler *and the functions it calls* (imports resolved) are read for what
    they verify: a database query (``execute`` / ``scalar`` ...), the migration version
    against the Alembic head (``alembic_version`` or Alembic's ``ScriptDirectory`` /
    ``MigrationContext``), and the jobs heartbeat when the app has one.

    Why: orchestrators route traffic by readiness; a ``/readyz`` that answers 200 while the
    database is down, or while the schema lags behind the code after a deploy, sends
    users to a broken instance. Every gap is a WARNING: no liveness or readiness route
    (at the ``FastAPI()`` call), readiness without a DB query, without the migration
    comparison, without the heartbeat although the app records one, and a readiness
    handler that catches errors yet never answers non-200. What it checks is INFO.
    Accepted path aliases: ``health_paths`` / ``ready_paths`` in config; without them,
    a GET route whose last segment names a probe (``/api/v1/status``, ``/ping``,
    ``/v1/health/``) is the liveness route, and a health route whose handler
    queries the database is read as the readiness route (judged as one).
    Not flagged: ``/healthz`` doing no I/O (a liveness probe should not depend on the
    database); no heartbeat check when the app has no jobs heartbeat at all (REL-006).
    The live probe of these endpoints is the live stage's part.
    """
    chk = health_endpoints.check
    anchor_file, anchor_line = app_anchor(ctx)
    health = routes_at(ctx, ctx.config.get("health_paths", HEALTH_PATHS))
    ready = routes_at(ctx, ctx.config.get("ready_paths", READY_PATHS))
    if "health_paths" not in ctx.config and not health:
        health = _probes(ctx)  # a probe under another name still lets the orchestrator restart a hung process
    if "ready_paths" not in ctx.config and not ready:
        # a health route that queries the database is the readiness probe under another name
        ready = [r for r in health if r.node is not None and ctx.index.get(r.file) is not None
                 and "database query" in _evidence(ctx, ctx.index.get(r.file), r.node)[0]]
    if not health:
        yield chk.finding(ctx, Severity.WARNING, "No liveness endpoint (/healthz)",
                          "No `/healthz` (or `/health`, `/livez`) route was found: the orchestrator cannot "
                          "tell a hung process from a live one and will not restart it.",
                          "Add `@app.get(\"/healthz\")` returning 200 without touching dependencies, and "
                          "point the container/Kubernetes liveness probe at it.",
                          anchor_file, anchor_line, key="no-healthz")
    if not ready:
        yield chk.finding(ctx, Severity.WARNING, "No readiness endpoint (/readyz)",
                          "No `/readyz` route was found: traffic reaches instances whose database is "
                          "unreachable or whose schema is older than the code.",
                          "Add `/readyz` that runs `SELECT 1`, compares `alembic_version` with the Alembic "
                          "head (ScriptDirectory.get_current_head()) and checks the jobs heartbeat, "
                          "answering 503 when any fails.", anchor_file, anchor_line, key="no-readyz")
    for route in ready:
        handler, src = route.node, ctx.index.get(route.file)
        if handler is None or src is None:
            continue
        found, always_ok = _evidence(ctx, src, handler)
        route_ref = route.as_dicts()
        yield chk.finding(ctx, Severity.INFO, f"{route.path} checks: " + (", ".join(found) or "nothing"),
                          "Readiness evidence: " + ("; ".join(f"{k} at {v}" for k, v in found.items())
                                                    or "no I/O found in the handler or its callees") + ".",
                          "", route.file, route.line, key="summary", routes=route_ref)
        if "database query" not in found:
            yield chk.finding(ctx, Severity.WARNING, f"{route.path} does not check the database",
                              f"`{handler.name}` and the functions it calls run no query, so readiness "
                              "stays green while PostgreSQL is unreachable.",
                              "Execute `SELECT 1` through the app's engine/session in the readiness handler "
                              "and answer 503 on failure.", route.file, route.line, key="no-db", routes=route_ref)
        if "migration version" not in found:
            yield chk.finding(ctx, Severity.WARNING, f"{route.path} does not compare the migration version with "
                              "the Alembic head",
                              f"`{handler.name}` never reads `alembic_version` nor the Alembic head: after a "
                              "deploy whose migration failed or has not run, instances report ready and serve "
                              "code against an old schema.",
                              "Read `SELECT version_num FROM alembic_version` and compare with "
                              "`ScriptDirectory.from_config(cfg).get_current_head()` (computed once at startup); "
                              "answer 503 when they differ.", route.file, route.line, key="no-migration",
                              routes=route_ref)
        if "jobs heartbeat" not in found:
            skip = {id(n) for _s, fn in callees_upto(Project.of(ctx), src, handler) for n in walk(fn)}
            elsewhere = _heartbeat_elsewhere(ctx, skip)
            if elsewhere:
                yield chk.finding(ctx, Severity.WARNING, f"{route.path} ignores the jobs heartbeat",
                                  f"The app records a jobs heartbeat ({elsewhere}) but readiness never reads "
                                  "it: a dead jobs runner (no reminders, no emails) goes unnoticed.",
                                  "Have /readyz read the last heartbeat and answer 503 when it is older than "
                                  "a few intervals (when JOB_HEARTBEAT_REQUIRED is set).", route.file, route.line,
                                  key="no-heartbeat", routes=route_ref)
        if always_ok and found:
            yield chk.finding(ctx, Severity.WARNING, f"{route.path} always answers 200",
                              f"`{handler.name}` catches the failure of its checks but never raises or "
                              "sets a 5xx status, so the probe cannot fail.",
                              "Return `JSONResponse(..., status_code=503)` (or raise HTTPException(503)) when a "
                              "check fails.", route.file, route.line, key="always-ok", routes=route_ref)
