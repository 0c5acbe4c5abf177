"""OBS-001: liveness and readiness endpoints, and what readiness really checks."""
from __future__ import annotations

import ast
import re

from ..findings import Severity
from ..code.pyast import dotted, of_type, walk
from ..code.pyresolve import Project, callees_upto
from ..facts.routes import app_anchor, builder, mounted_apps, source_routes
from ..target.discovery import SQL_LIBRARIES
from . import check

HEALTH_PATHS = ["/healthz", "/health", "/livez", "/healthcheck"]
READY_PATHS = ["/readyz", "/ready", "/readiness"]
DB_CALLS = {"execute", "scalar", "scalars", "exec_driver_sql", "fetch", "fetchval", "fetchrow"}
# a database connectivity check behind an interface (`db.is_db_connectable()`, `ping_database()`)
DB_PROBE = re.compile(r"(^|_)(db|database)_?(is_)?(connectable|reachable|ping|alive|healthy|health|check)$|"
                      r"^(is_|check_|ping_)(db|database)(_connectable|_reachable|_alive|_healthy|_connection)?$", re.I)
MIGRATION_NAMES = {"ScriptDirectory", "MigrationContext", "get_current_revision", "get_current_heads", "get_heads"}
HEARTBEAT = re.compile(r"heartbeat", re.I)
# a probe under another name: the last segment of a GET route (behind an auth middleware
# too: such middlewares usually let probes through, and the live stage probes it)
READY_SEGMENT = re.compile(r"^(readyz|ready|readiness)$", re.I)
PROBE_SEGMENT = re.compile(r"^(health|healthz|healthcheck|health-check|livez|liveness|live|alive|ping|status|up)$", re.I)


def _probes(routes) -> list:
    """GET routes whose last path segment names a probe (``/api/v1/status``, ``/v1/health/``)."""
    found = [r for r in routes if "GET" in r.methods and "{" not in r.path  # `/queues/{id}/status`: a resource's
             and PROBE_SEGMENT.match(r.path.rstrip("/").rsplit("/", 1)[-1] or "")]
    return sorted(found, key=lambda r: not r.include_in_schema)  # the documented path first


def _ready_probes(routes) -> list:
    """GET routes (no path parameter) whose last segment names a readiness probe (``/api/ready``)."""
    return [r for r in routes if "GET" in r.methods and "{" not in r.path
            and READY_SEGMENT.match(r.path.rstrip("/").rsplit("/", 1)[-1] or "")]


def _evidence(ctx, handler_src, handler):
    """{what: "file:line"} for the checks found in the handler and its callees."""
    found: dict[str, str] = {}
    fails = False
    for src, fn in callees_upto(Project.of(ctx), handler_src, handler):
        for n in walk(fn):
            where = f"{src.path}:{getattr(n, 'lineno', fn.lineno)}"
            if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute) and (
                    n.func.attr in DB_CALLS or DB_PROBE.search(n.func.attr)):
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


# a recorded heartbeat: a clock value stored under a heartbeat name, or a store call
CLOCK = re.compile(r"(^|\.)(now|utcnow|time|time_ns|monotonic|timestamp|current_timestamp|perf_counter)$")
# a model field declared with a clock default (`last_seen: Mapped[dt] = mapped_column(default=now)`)
COLUMN_DECL = re.compile(r"(^|\.)(mapped_column|Column|column_property|Field|field)$")
STORE_CALLS = {"set", "setex", "psetex", "hset", "mset", "zadd", "set_to_current_time", "touch", "put", "upsert"}
SQL_WRITE = re.compile(r"\bupdate\s+[\w.\"]+\s+set\b.*heartbeat|\binsert\s+into\s+[\w.\"]+.*heartbeat", re.I | re.S)


def _clocked(expr: ast.AST | None) -> bool:
    """``expr`` reads a clock (``time.time()``, ``datetime.now(...)``, ``func.now()``)."""
    return expr is not None and any(isinstance(n, ast.Call) and CLOCK.search(dotted(n.func))
                                    for n in of_type(expr, ast.Call))


def _records(n: ast.AST) -> bool:
    """Node ``n`` records a heartbeat: a clock value stored under a heartbeat name
    (``STATE["heartbeat"] = time.time()``, ``worker.last_heartbeat = now()``,
    ``.values(heartbeat_at=func.now())``), a store call on a heartbeat key or metric
    (``redis.set("jobs:heartbeat", ...)``, ``HEARTBEAT.set_to_current_time()``) or an SQL
    ``UPDATE`` / ``INSERT`` of a heartbeat column."""
    search = HEARTBEAT.search
    t = type(n)
    if t in (ast.Assign, ast.AugAssign, ast.AnnAssign):
        targets = n.targets if t is ast.Assign else [n.target]
        if isinstance(n.value, ast.Call) and COLUMN_DECL.search(dotted(n.value.func)):
            return False  # a model's column declaration: the clock is its default, nothing is recorded
        return _clocked(n.value) and any(search(ast.unparse(x)) for x in targets)
    if t is ast.keyword:
        return bool(n.arg) and bool(search(n.arg)) and _clocked(n.value)
    if t is ast.Dict:
        return any(isinstance(k, ast.Constant) and isinstance(k.value, str) and search(k.value) and _clocked(v)
                   for k, v in zip(n.keys, n.values))
    if t is ast.Call:
        if not (isinstance(n.func, ast.Attribute) and n.func.attr in STORE_CALLS):
            return False
        key = n.args[0] if n.args else None
        return bool(search(dotted(n.func.value))) or (key is not None and bool(search(ast.unparse(key))) and
                                                      isinstance(key, (ast.Constant, ast.JoinedStr)))
    if t is ast.Constant:
        return isinstance(n.value, str) and bool(SQL_WRITE.search(n.value))
    return False


def heartbeat_records(ctx) -> list[tuple[str, ast.AST]]:
    """(file, node) of every place the application records a jobs heartbeat (cached).
    A name alone is no heartbeat: a task named ``heartbeat`` that pings a telemetry
    service, or an LLM agent's ``request_heartbeat`` flag, stores no liveness time."""
    key = "_obs_heartbeat_records"
    if key in ctx.__dict__:
        return ctx.__dict__[key]
    out = []
    kinds = (ast.Assign, ast.AugAssign, ast.AnnAssign, ast.keyword, ast.Dict, ast.Call, ast.Constant)
    for src in ctx.layout.app_sources(ctx.index):
        text = src.text or ""
        if src.tree is None or (text.isascii() and "heartbeat" not in text.lower()):
            continue
        out += [(src.path, n) for n in of_type(src.tree, kinds) if _records(n)]
    ctx.__dict__[key] = out
    return out


def compared_columns(ctx) -> set[str]:
    """Attributes and names the app orders against something (``Job.claimed_at < cutoff``,
    ``heartbeat_at >= now - STALENESS``): timestamps whose staleness the app itself acts on
    (cached per audit)."""
    key = "_obs_compared_columns"
    if key not in ctx.__dict__:
        out = set()
        order = (ast.Lt, ast.LtE, ast.Gt, ast.GtE)
        for src in ctx.layout.app_sources(ctx.index):
            for c in of_type(src.tree, ast.Compare) if src.tree is not None else []:
                if any(isinstance(op, order) for op in c.ops):
                    for side in [c.left, *c.comparators]:
                        if isinstance(side, ast.Attribute):
                            out.add(side.attr)
                        elif isinstance(side, ast.Name):
                            out.add(side.id)
        ctx.__dict__[key] = out
    return ctx.__dict__[key]


def _record_column(n: ast.AST) -> str | None:
    """The column or attribute a heartbeat record writes (``heartbeat_at=...``,
    ``worker.last_heartbeat = ...``); None for keys, gauges and raw SQL."""
    if isinstance(n, ast.keyword):
        return n.arg
    if isinstance(n, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
        targets = n.targets if isinstance(n, ast.Assign) else [n.target]
        return next((t.attr for t in targets if isinstance(t, ast.Attribute)), None)
    return None


def jobs_heartbeat_records(ctx) -> list[tuple[str, ast.AST]]:
    """The heartbeat records that are a jobs runner's liveness signal: not a lease, i.e.
    not a column the app itself compares against a staleness cutoff (``heartbeat_at <
    now - STALENESS`` to take over a turn lock, ``claimed_at < cutoff`` to recover
    orphaned claims): the app already acts when such a holder dies."""
    compared = compared_columns(ctx)
    return [(p, n) for p, n in heartbeat_records(ctx) if _record_column(n) not in compared]


def _heartbeat_elsewhere(ctx, skip: set[int]) -> str | None:
    """Where a jobs heartbeat is recorded in the app (outside readiness), ``file:line``."""
    for path, n in jobs_heartbeat_records(ctx):
        if id(n) not in skip:
            return f"{path}:{n.lineno}"
    return None


def _migrates_itself(ctx) -> str | None:
    """``file:line`` where application code runs Alembic's upgrade to head
    (``command.upgrade(cfg, "head")``): the app migrates its schema itself (at start-up,
    in the lifespan, at engine creation or in its serve command)."""
    for src in ctx.layout.app_sources(ctx.index):
        text = src.text or ""
        if src.tree is None or "upgrade" not in text or "head" not in text:
            continue
        for c in of_type(src.tree, ast.Call):
            name = dotted(c.func)
            if (name.endswith("command.upgrade") or (name == "upgrade" and "alembic" in text)) and any(
                    isinstance(a, ast.Constant) and a.value in ("head", "heads") for a in c.args[1:2]):
                return f"{src.path}:{c.lineno}"
    return None


def _module_file(proj: Project, qualified: str):
    parts = qualified.split(".")
    for i in range(len(parts), 0, -1):
        f = proj.by_module.get(".".join(parts[:i]))
        if f is not None:
            return f
    return None


def _uses_database(ctx, files: set[str]) -> str | None:
    """``file: library`` when one of ``files`` (an app's module and the modules of its
    route handlers) or a project module they import imports an SQL database library:
    the app has a database a readiness probe should check. Two levels only: a shared
    model package reached through many imports does not make a proxy app a database app."""
    proj = Project.of(ctx)
    frontier, seen = sorted(files), set(files)
    for _level in range(2):
        nxt = []
        for path in frontier:
            for name in proj.imports.get(path, {}).values():
                if name.split(".")[0] in SQL_LIBRARIES and name.split(".")[0] != "sqlite3":
                    return f"{path}: {name.split('.')[0]}"
                f = _module_file(proj, name)
                if f is not None and f.path not in seen:
                    seen.add(f.path)
                    nxt.append(f.path)
        frontier = nxt
    return None


SERVE_CALLS = {"run", "serve", "Config", "Server", "run_app", "TestClient"}


def _built_for_its_routes(o) -> bool:
    """An app built as a local of a function that neither returns, yields, stores nor
    serves it (``app = FastAPI(); app.include_router(...); build_schema(app)``): its routes
    feed something else (a schema, a tool catalogue); it is never served."""
    fn = o.scope
    if not isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)) or not o.name or "." in o.name:
        return False

    def names(node) -> set[str]:
        """Names in ``node`` used as a whole (``api``, not ``api.routes``)."""
        if node is None:
            return set()
        attr_bases = {id(x.value) for x in ast.walk(node) if isinstance(x, ast.Attribute)}
        return {x.id for x in ast.walk(node) if isinstance(x, ast.Name) and id(x) not in attr_bases}
    for n in ast.walk(fn):
        if isinstance(n, (ast.Return, ast.Yield, ast.YieldFrom)) and o.name in names(n.value):
            return False
        if isinstance(n, (ast.Global, ast.Nonlocal)) and o.name in n.names:
            return False
        if isinstance(n, ast.Assign) and o.name in names(n.value) and any(
                isinstance(t, (ast.Attribute, ast.Subscript)) for t in n.targets):
            return False
        if isinstance(n, ast.Call) and dotted(n.func).rsplit(".", 1)[-1] in SERVE_CALLS and o.name in {
                a.id for a in [*n.args, *(k.value for k in n.keywords)] if isinstance(a, ast.Name)}:
            return False
    return True


def _ephemeral_port(o) -> bool:
    """The app is served by its own module on port 0 (``uvicorn.Config(app, port=0)``): an
    ephemeral port the OS picks, that no orchestrator's probe can target: a transient local
    server (an OAuth callback of a CLI login, a test helper), not a deployed service."""
    if not o.name or "." in o.name:
        return False
    for n in ast.walk(o.module.tree):
        if isinstance(n, ast.Call) and dotted(n.func).rsplit(".", 1)[-1] in SERVE_CALLS and o.name in {
                a.id for a in [*n.args, *(k.value for k in n.keywords)] if isinstance(a, ast.Name)} and any(
                k.arg == "port" and isinstance(k.value, ast.Constant) and k.value.value == 0 for k in n.keywords):
            return True
    return False


def _served_apps(ctx, routes) -> list[tuple[str | None, str, int | None]]:
    """(app qualname, file, line) of each FastAPI app that serves routes (a mounted
    sub-app's routes are served by the app it is mounted on), in discovery order, placed
    at the first app constructor of its mount tree (``app = FastAPI(...)`` rather than a
    wrapper that mounts it under a base path); one ``(None, anchor)`` entry judging the
    whole project when no app serves any."""
    served = {r.app for r in routes if r.app}
    order = {p: i for i, p in enumerate(ctx.layout.app_files)}
    objs = builder(ctx).objs.values()

    def place(o):
        return order.get(o.module.path, len(order)), o.line, o.module.path

    out = []
    for root in objs:
        if root.kind != "app" or root.qualname not in served or not ctx.layout.is_app(root.module.path) \
                or _built_for_its_routes(root) or _ephemeral_port(root):
            continue
        tree, todo = [root], [root]
        while todo:  # the apps mounted into this one, at any depth
            for child, *_rest in todo.pop().mounts:
                if child.kind == "app" and child not in tree and ctx.layout.is_app(child.module.path):
                    tree.append(child)
                    todo.append(child)
        first = min(tree, key=place)
        out.append((place(first), root.qualname))
    return [(q, path, line) for (_i, line, path), q in sorted(out)] or [(None, *app_anchor(ctx))]


def _at(routes, paths) -> list:
    wanted = {p.rstrip("/") or "/" for p in paths}
    return [r for r in routes if (r.path.rstrip("/") or "/") in wanted]


@check("OBS-001", "observability", "Health and readiness endpoints")
def health_endpoints(ctx):
    """Liveness (``/healthz``) and readiness (``/readyz``) routes exist, for each FastAPI
    app that serves routes (a proxy and an API server in one project are judged apart),
    found from route decorators, ``add_api_route`` and mounts (router prefixes included);
    then the readiness handler *and the functions it calls* (imports resolved) are read
    for what they verify: a database query (``execute`` / ``scalar`` ...), the migration
    version against the Alembic head (``alembic_version`` or Alembic's
    ``ScriptDirectory`` / ``MigrationContext``), and the jobs heartbeat when the app
    records one.

    Why: orchestrators restart hung processes by liveness and route traffic by
    readiness. Severity: no liveness route at all is a WARNING (at the ``FastAPI()``
    call: nothing tells a hung process from a live one); a readiness handler that
    catches the failure of its checks yet never answers non-200, and one that ignores
    a jobs heartbeat the app records, are WARNINGs (the probe exists and misleads). No
    readiness route, or readiness without a database query or without the migration
    comparison, is a RECOMMENDATION: the database is shared by every instance, so taking
    one out of rotation rarely helps; the check matters for start-up and rolling
    deploys. What readiness checks is INFO.
    Accepted path aliases: ``health_paths`` / ``ready_paths`` in config; without them,
    a GET route whose last segment names a probe (``/api/v1/status``, ``/ping``,
    ``/v1/health/``), else a ``GET /`` route, else the readiness route, is the liveness
    route; a GET route whose last segment is ``ready`` / ``readyz`` / ``readiness``
    (``/api/ready``) is the readiness route, else a health route whose handler queries the
    database is read as the readiness route (judged as one). A route with a path parameter
    (``/queues/{id}/status``) is a resource's endpoint, never a probe. A database check
    behind an interface counts as a query (``db.is_db_connectable()``, ``ping_database()``).
    One handler served by several apps (the same router under two base paths) is judged once.
    Not flagged: ``/healthz`` doing no I/O (a liveness probe should not depend on the
    database); readiness and its database check for an app that uses no SQL database
    (the project imports none; with several apps, neither the app's module, its route
    handlers' modules nor what they import directly do); the
    migration comparison in a project without Alembic migrations; the heartbeat when the
    app records none: a name is not a heartbeat (a ``heartbeat`` task pinging a
    telemetry service, an agent's ``request_heartbeat`` flag); a heartbeat is a clock
    value stored under a heartbeat name, a store call on a heartbeat key or gauge, or an
    SQL write of a heartbeat column (REL-006 judges the runner loops); a lease: a heartbeat
    column the app itself compares against a staleness cutoff (``heartbeat_at < now -
    STALE`` to take over a turn lock, ``claimed_at < cutoff`` to recover orphaned claims),
    so a dead holder is already handled; a model's column declared with a clock default
    (``last_heartbeat: Mapped[dt] = mapped_column(default=now)``: a declaration, nothing
    recorded); an app served on port 0 (``uvicorn.Config(app, port=0)``: an ephemeral port no
    probe can target, a CLI's local callback server); the migration comparison when the app runs
    Alembic's upgrade to head in its own code (``command.upgrade(cfg, "head")`` in the
    lifespan, at engine creation or in its serve command: an instance serves only after
    it ran; INFO says where); an app built as a local of a function that neither returns,
    stores nor serves it (its routes feed a schema or a tool catalogue: it is never served).
    The live probe of these endpoints is the live stage's part.
    """
    chk = health_endpoints.check
    files = {src.path for src in ctx.layout.app_sources(ctx.index)}
    every = [*source_routes(ctx), *(m for m in mounted_apps(ctx) if m.file in files)]
    has_alembic = bool(ctx.layout.alembic_dir or ctx.layout.migration_files)
    served = _served_apps(ctx, every)
    judged: set[tuple] = set()
    for app, anchor_file, anchor_line in served:
        routes = [r for r in every if app is None or r.app == app]
        if len(served) == 1:  # the project's one app: its database is the project's
            uses_db = ", ".join(ctx.layout.sql_libraries)
        else:
            uses_db = _uses_database(ctx, {anchor_file} | {r.file for r in routes if r.node is not None})
        health = _at(routes, ctx.config.get("health_paths", HEALTH_PATHS))
        ready = _at(routes, ctx.config.get("ready_paths", READY_PATHS))
        if "ready_paths" not in ctx.config and not ready:
            ready = _ready_probes(routes)  # under a prefix: `/api/ready`
        if "health_paths" not in ctx.config and not health:
            # a probe under another name still lets the orchestrator restart a hung process
            health = _probes(routes) or [r for r in _at(routes, ["/"]) if "GET" in r.methods and r.node is not None]
        # a readiness route answers whenever the process is alive: it serves liveness too
        health = health or ready
        if "ready_paths" not in ctx.config and not ready:
            # a health route that queries the database is the readiness probe under another name
            ready = [r for r in health if r.node is not None and ctx.index.get(r.file) is not None
                     and "database query" in _evidence(ctx, ctx.index.get(r.file), r.node)[0]]
        if not health:
            yield chk.finding(ctx, Severity.WARNING, "No liveness endpoint (/healthz)",
                              "No `/healthz` (or `/health`, `/livez`, `/status`, `/ping`, `GET /`) route was found "
                              "on this app: the orchestrator cannot tell a hung process from a live one and will "
                              "not restart it.",
                              "Add `@app.get(\"/healthz\")` returning 200 without touching dependencies, and "
                              "point the container/Kubernetes liveness probe at it.",
                              anchor_file, anchor_line, key="no-healthz")
        if not ready and uses_db:
            probe = health[0] if health else None
            yield chk.finding(
                ctx, Severity.RECOMMENDATION, "No readiness endpoint (/readyz)",
                (f"The app's only probe, `GET {probe.path}` ({probe.file}:{probe.line}), runs no database query, "
                 "and no `/readyz` route exists" if probe else "No `/readyz` route and no probe that queries the "
                 "database exist") + ": at start-up and during rolling deploys, an instance whose database is "
                "unreachable or whose schema is older than the code still receives traffic.",
                "Add `/readyz` that runs `SELECT 1`, compares `alembic_version` with the Alembic head "
                "(ScriptDirectory.get_current_head()), answering 503 when either fails; point the readiness "
                "probe at it.", anchor_file, anchor_line, key="no-readyz")
        # one handler served by several apps (under each base path) is one readiness probe: judged once
        ready = [r for r in ready if (r.file, r.line) not in judged]
        judged.update((r.file, r.line) for r in ready)
        yield from _judge_ready(ctx, chk, ready, uses_db, has_alembic)


def _judge_ready(ctx, chk, ready, uses_db, has_alembic):
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
        if "database query" not in found and uses_db:
            yield chk.finding(ctx, Severity.RECOMMENDATION, f"{route.path} does not check the database",
                              f"`{handler.name}` and the functions it calls run no query, so readiness "
                              "stays green while PostgreSQL is unreachable.",
                              "Execute `SELECT 1` through the app's engine/session in the readiness handler "
                              "and answer 503 on failure.", route.file, route.line, key="no-db", routes=route_ref)
        migrates = _migrates_itself(ctx) if "migration version" not in found and uses_db and has_alembic else None
        if migrates:
            yield chk.finding(ctx, Severity.INFO, f"{route.path}: the app migrates its schema itself",
                              f"The app runs Alembic's upgrade to head in its own code ({migrates}): when that "
                              "upgrade runs as the instance starts, the instance serves only after it ran (and "
                              "does not start when it raises), so readiness need not compare `alembic_version` "
                              "with the head.",
                              "", route.file, route.line, key="no-migration", routes=route_ref)
        elif "migration version" not in found and uses_db and has_alembic:
            yield chk.finding(ctx, Severity.RECOMMENDATION, f"{route.path} does not compare the migration version "
                              "with the Alembic head",
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
