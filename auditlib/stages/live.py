"""The live stage: boot the target app on a migrated throwaway PostgreSQL (or use the
user's ``--base-url``) and probe it over HTTP, once per audit process.

Boot (:mod:`.live_boot`): the target's interpreter, a private copy of the tree, a fresh
database migrated with the target's own ``alembic upgrade head`` (plus optional
``[tool.auditlib.live] seed_sql``), an environment assembled from its env example files,
uvicorn on a free loopback port. Probes (:mod:`.http_probe`): health and readiness,
``/openapi.json``, ``/metrics`` with and without the token (before and after requests to
distinct ids), an authenticated smoke over list/detail routes for each configured
identity (``[tool.auditlib.live] auth``) with cross-organisation id substitution, and the
unauthenticated matrix over every route. Against ``--base-url`` only GET/HEAD/OPTIONS are
sent, and only to that host. Everything started is stopped in ``finally`` (also on
timeout and Ctrl-C); the app process also dies with the audit (parent-death signal).

The route table comes from the booted app itself (every route with its handler's
file:line, including routes hidden from the schema); with ``--base-url`` from the static
route inventory (``auditlib.facts.routes.route_inventory``) when that module exists, else from
the served ``/openapi.json``.
"""
from __future__ import annotations

import json
import tempfile
import threading
import time
from dataclasses import dataclass, field
from fnmatch import fnmatch
from pathlib import Path

from ..code.pyast import walk
from ..redact import redact_text, redact_url
from .http_probe import Client, Response, fill_path, parse_metrics, path_params
from .live_boot import AppSpec, BootFailure

DEFAULT_PUBLIC_ROUTES = ["/", "/healthz", "/readyz", "/livez", "/health", "/health/*", "/ready", "/ping",
                         "/docs", "/docs/*", "/redoc", "/openapi.json", "/favicon.ico"]
DEFAULT_ADMIN_PATTERNS = ["/admin", "/admin/*", "*/admin", "*/admin/*"]
HEALTH_PATHS = ["/healthz", "/health", "/livez"]
READY_PATHS = ["/readyz", "/ready", "/health/ready"]
PROBE_IDS = ("900001", "900002", "900003")
DEFAULT_BOOT_TIMEOUT = 30  # [tool.auditlib.timeouts] boot


@dataclass
class RouteInfo:
    method: str
    path: str
    file: str | None = None  # relative to the target root
    line: int | None = None
    in_schema: bool = True
    kind: str = "APIRoute"


@dataclass
class LiveResult:
    requested: bool = False
    mode: str = ""  # boot | base_url
    error: str = ""  # why the stage could not run at all
    app: AppSpec | None = None
    notes: list[str] = field(default_factory=list)
    boot_failure: BootFailure | None = None
    boot_seconds: float = 0.0
    routes: list[RouteInfo] = field(default_factory=list)
    routes_source: str = ""
    probes: dict[str, Response] = field(default_factory=dict)  # "/healthz" -> response
    openapi: dict | None = None
    metrics_path: str = "/metrics"
    metrics_anon: Response | None = None
    metrics_token: Response | None = None
    samples_before: list = field(default_factory=list)
    samples_after: list = field(default_factory=list)
    metrics_error: str = ""
    id_probes: list[str] = field(default_factory=list)
    unauth: list[tuple[RouteInfo, int]] = field(default_factory=list)
    smoke_errors: list[dict] = field(default_factory=list)
    cross_org: list[dict] = field(default_factory=list)
    smoke_note: str = ""
    requests_sent: int = 0
    duration: float = 0.0
    processes: list[tuple[int, int]] = field(default_factory=list)  # (pid, port) of every app started

    @property
    def booted(self) -> bool:
        return self.requested and not self.error and self.boot_failure is None

    def stage_status(self) -> str:
        if not self.requested:
            return "skipped: not requested (run with --live or --base-url URL)"
        if self.error:
            return f"failed: {self.error}"
        if self.boot_failure:
            return f"failed: the app did not boot ({self.boot_failure.error[:200]})"
        what = f"booted {self.app.spec}" if self.mode == "boot" else "probed the given --base-url"
        return f"ran: {what}, {self.requests_sent} requests in {self.duration:.1f}s"

    def stats(self) -> dict:
        return {"stage_live": self.stage_status(), "live_routes": len(self.routes) if self.booted else None}

    def route_at(self, path: str) -> RouteInfo | None:
        return next((r for r in self.routes if r.path == path), None)


_RESULTS: dict[int, tuple[object, LiveResult]] = {}
_LOCK = threading.Lock()


def configure(ctx, live: bool = False, base_url: str = "") -> None:
    """Switch the live stage on for ``ctx`` (the notebook's ``live`` / ``base_url``)."""
    ctx.stages["live"] = bool(live or base_url)
    ctx.stages["base_url"] = base_url or ""


def live_run(ctx) -> LiveResult:
    """The live stage for ``ctx``: run on first use, memoised for the process."""
    with _LOCK:
        if id(ctx) not in _RESULTS:
            _RESULTS[id(ctx)] = (ctx, _run(ctx))
        return _RESULTS[id(ctx)][1]


def _cfg(ctx) -> dict:
    return ctx.config.get("live") or {}


def _run(ctx) -> LiveResult:
    res = LiveResult(requested=bool(ctx.stages.get("live") or ctx.stages.get("base_url")))
    if not res.requested:
        return res
    t0 = time.monotonic()
    try:
        if ctx.stages.get("base_url"):
            _run_base_url(ctx, res, ctx.stages["base_url"])
        else:
            _run_boot(ctx, res)
    except Exception as exc:  # auditlib's own failure: say so, keep the audit going
        res.error = f"the live stage crashed: {type(exc).__name__}: {redact_text(str(exc))}"
    res.duration = time.monotonic() - t0
    return res


def _run_base_url(ctx, res: LiveResult, base_url: str) -> None:
    res.mode = "base_url"
    client = Client(base_url, safe_only=True)
    res.notes.append(f"probing the running deployment {redact_url(base_url)} (GET/HEAD/OPTIONS only)")
    res.routes, res.routes_source = _inventory_routes(ctx)
    _probe(ctx, res, client, None, {})


def _inventory_routes(ctx) -> tuple[list[RouteInfo], str]:
    try:
        from ..facts.routes import route_inventory
    except ImportError:
        return [], ""
    out = []
    for r in route_inventory(ctx):
        get = r.get if isinstance(r, dict) else lambda k, d=None, r=r: getattr(r, k, d)
        out.append(RouteInfo(get("method"), get("path"), get("file"), get("line")))
    return out, "the static route inventory"


def _run_boot(ctx, res: LiveResult) -> None:
    from ..target.targetenv import database_env, detect_driver_scheme, resolve_target_python
    from .live_boot import discover_app
    from .database import create_database, db_unavailable_reason, drop_database

    res.mode = "boot"
    timeouts = ctx.config.get("timeouts", {})
    python, why = resolve_target_python(ctx.root, ctx.target_python, ctx.provision,
                                        timeout=timeouts.get("provision", 900))
    if python is None:
        res.error = why
        return
    reason = db_unavailable_reason(ctx)
    if reason:
        res.error = f"no PostgreSQL to boot the app against ({reason})"
        return
    res.app = discover_app(ctx)
    if not res.app.spec:
        res.error = res.app.why
        return
    if not _has_module(python, "uvicorn"):
        res.error = "uvicorn is not installed in the target environment (add it to the target's requirements)"
        return
    # The database stage's migrated_database() runs every Alembic step (history, offline
    # SQL, check, downgrade round trip) and lives in another notebook process; booting
    # needs only `upgrade head`, so the live stage migrates its own throwaway database.
    with tempfile.TemporaryDirectory(prefix="auditlib-live-") as tmp:
        tmp = Path(tmp)
        from .live_boot import copy_tree

        work = tmp / "target"
        copy_tree(ctx.root, work)
        url, db_name = create_database(ctx.database_url())
        try:
            from sqlalchemy.engine import make_url

            secrets = [p for p in [make_url(url).password] if p]
            _migrate(ctx, res, python, work, url, timeouts)
            _seed(ctx, res, url)
            db_env = database_env(url, detect_driver_scheme(ctx.root))
            _boot_and_probe(ctx, res, python, work, tmp, db_env, secrets, timeouts)
        finally:
            try:
                drop_database(ctx.database_url(), db_name)
            except Exception:
                pass  # the embedded server is thrown away anyway


def _has_module(python: Path, name: str) -> bool:
    import subprocess

    r = subprocess.run([str(python), "-c", f"import importlib.util as u; raise SystemExit(u.find_spec({name!r}) is None)"],
                       capture_output=True, timeout=60)
    return r.returncode == 0


def _migrate(ctx, res, python, work, url, timeouts) -> None:
    from ..target.targetenv import run_alembic

    ini = ctx.layout.alembic_ini
    if not ini:
        res.notes.append("no alembic.ini: the app booted against an empty database")
        return
    up = run_alembic(Path(python), work / ini, url, ["upgrade", "head"], timeout=timeouts.get("alembic", 300))
    if not up.ok:
        res.notes.append("`alembic upgrade head` failed (DEP-002 reports it); the app booted against a partly "
                         "migrated database")


def _seed(ctx, res, url: str) -> None:
    """``[tool.auditlib.live] seed_sql``: SQL files (relative to the target) or statements."""
    items = _cfg(ctx).get("seed_sql") or []
    if not items:
        return
    import psycopg

    with psycopg.connect(url, autocommit=True, connect_timeout=10) as conn:
        for item in items:
            path = ctx.root / item
            conn.execute(path.read_text(encoding="utf-8") if path.is_file() else item)
    res.notes.append(f"seeded with {len(items)} seed_sql item(s) from [tool.auditlib.live]")


def _boot_and_probe(ctx, res, python, work, tmp, db_env, secrets, timeouts) -> None:
    from .live_boot import AppProcess, assemble_env, dev_mode_retry, parse_boot_failure

    appenv = assemble_env(ctx, db_env)
    res.notes += appenv.notes
    secrets = secrets + appenv.secrets
    env = {**appenv.env, "AUDITLIB_APP": res.app.spec, "AUDITLIB_FACTORY": "1" if res.app.factory else "0",
           "AUDITLIB_ROUTES_OUT": str(tmp / "routes.json")}
    limit = float(timeouts.get("boot", DEFAULT_BOOT_TIMEOUT))
    cwd = work / res.app.app_dir
    for attempt in (1, 2):
        t0 = time.monotonic()
        proc = AppProcess(python, cwd, env, tmp / f"app{attempt}.log")
        res.processes.append((proc.proc.pid, proc.port))
        try:
            ready = proc.wait_ready(limit)
            res.boot_seconds = time.monotonic() - t0
            if ready:
                res.boot_failure = None
                res.routes = _dumped_routes(tmp / "routes.json", work)
                res.routes_source = "the booted app's route table"
                client = Client(f"http://127.0.0.1:{proc.port}")
                _probe(ctx, res, client, proc, appenv.env, secrets, work)
                _write_log(ctx, proc.log_text(), secrets, work)
                return
            log = proc.log_text()
            if proc.proc.poll() is None:
                log += f"\n[auditlib: no answer on the port within {limit:g} s]"
        finally:
            proc.stop()
        _write_log(ctx, log, secrets, work)
        res.boot_failure = parse_boot_failure(redact_text(log, secrets), work)
        mode_var = dev_mode_retry(env)
        if attempt == 2 or mode_var is None:
            return
        res.notes.append(f"production mode ({mode_var}={env[mode_var]}) refused the throwaway values "
                         f"({res.boot_failure.error[:160]}); retried with {mode_var}=development")
        env = {**env, mode_var: "development"}


def _dumped_routes(path: Path, work: Path) -> list[RouteInfo]:
    if not path.is_file():
        return []
    out = []
    prefix = str(work) + "/"
    for r in json.loads(path.read_text()):
        if not r["path"].startswith("/"):
            continue
        file = r["file"][len(prefix):] if r.get("file") and r["file"].startswith(prefix) else None
        methods = [m for m in r["methods"] if m not in ("HEAD", "OPTIONS")] or (["*"] if r["kind"] == "Mount" else [])
        for m in methods or ["GET"]:
            out.append(RouteInfo(m, r["path"], file, r.get("line") if file else None, r["in_schema"], r["kind"]))
    return out


def _write_log(ctx, text: str, secrets, work: Path) -> None:
    log = ctx.out_dir / "logs" / "live.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("a", encoding="utf-8") as fh:
        fh.write(redact_text(text, secrets).replace(str(work) + "/", ""))


def matches(path: str, patterns) -> bool:
    return any(fnmatch(path, p) for p in patterns)


def _probe(ctx, res: LiveResult, client: Client, proc, env: dict, secrets=(), work: Path | None = None) -> None:
    cfg = _cfg(ctx)
    for p in cfg.get("health_paths", HEALTH_PATHS) + cfg.get("ready_paths", READY_PATHS):
        res.probes[p] = client.request("GET", p)
    spec = client.request("GET", cfg.get("openapi_path", "/openapi.json"))
    res.probes["openapi"] = spec
    res.openapi = spec.json() if spec.ok and isinstance(spec.json(), dict) else None
    if not res.routes and res.openapi:
        res.routes_source = "the served /openapi.json"
        res.routes = [RouteInfo(m.upper(), p) for p, ops in (res.openapi.get("paths") or {}).items()
                      for m in ops if m.upper() in ("GET", "POST", "PUT", "PATCH", "DELETE")]
    _probe_metrics(ctx, res, client, env)
    identities = _identities(cfg, env)
    if identities:
        _smoke(ctx, res, client, proc, identities, secrets, work)
    else:
        res.smoke_note = "no credentials configured ([tool.auditlib.live] auth): authenticated smoke not run"
    _unauthenticated(ctx, res, client)
    res.requests_sent = client.sent


def _probe_metrics(ctx, res: LiveResult, client: Client, env: dict) -> None:
    cfg = _cfg(ctx)
    res.metrics_path = cfg.get("metrics_path", "/metrics")
    res.metrics_anon = client.request("GET", res.metrics_path)
    token = cfg.get("metrics_token") or env.get(cfg.get("metrics_token_env", "METRICS_TOKEN"), "")
    res.samples_before = _samples(res, res.metrics_anon)
    targets = [r for r in res.routes if r.method == "GET" and len(path_params(r.path)) == 1
               and r.path != res.metrics_path][:3]
    for r in targets:
        for i in PROBE_IDS:
            path = fill_path(r.path, i)
            client.request("GET", path)
            res.id_probes.append(path)
    after = client.request("GET", res.metrics_path)
    if not after.ok and token:
        res.metrics_token = client.request("GET", res.metrics_path, {"Authorization": f"Bearer {token}"})
        after = res.metrics_token
    res.samples_after = _samples(res, after)


def _samples(res: LiveResult, resp: Response) -> list:
    if not resp.ok:
        return []
    try:
        return parse_metrics(resp.body.decode("utf-8", errors="replace"))
    except (ValueError, TypeError, IndexError) as exc:
        res.metrics_error = f"{res.metrics_path} is not a Prometheus exposition: {exc}"
        return []


def _identities(cfg: dict, env: dict) -> list[dict]:
    """``[tool.auditlib.live] auth = [{name, headers = {...}} | {name, basic = [user, pw]}]``."""
    import base64

    from .live_boot import expand

    out = []
    for i, item in enumerate(cfg.get("auth") or []):
        headers = {k: expand(str(v), env) for k, v in (item.get("headers") or {}).items()}
        if item.get("basic"):
            user, pw = (expand(str(x), env) for x in item["basic"])
            headers["Authorization"] = "Basic " + base64.b64encode(f"{user}:{pw}".encode()).decode()
        out.append({"name": item.get("name", f"identity {i + 1}"), "headers": headers})
    return out


def _ids(body) -> list:
    items = body.get("items") if isinstance(body, dict) and isinstance(body.get("items"), list) else body
    return [x["id"] for x in items if isinstance(x, dict) and "id" in x] if isinstance(items, list) else []


def _smoke(ctx, res: LiveResult, client, proc, identities, secrets, work) -> None:
    public = _cfg(ctx).get("public_routes", DEFAULT_PUBLIC_ROUTES)
    gets = [r for r in res.routes if r.method == "GET" and r.kind != "Mount" and r.path != res.metrics_path
            and not matches(r.path, public)]
    lists = [r for r in gets if not path_params(r.path)]
    details = [r for r in gets if len(path_params(r.path)) == 1]
    ids: dict[str, dict[str, list]] = {}
    for ident in identities:
        ids[ident["name"]] = {}
        for r in lists:
            resp = _send(res, client, proc, "GET", r.path, ident, r, secrets, work)
            if resp.ok:
                ids[ident["name"]][r.path] = _ids(resp.json())
    for ident in identities:
        for r in details:
            own = _ids_for(r.path, ids[ident["name"]])
            if own:
                _send(res, client, proc, "GET", fill_path(r.path, str(own[0])), ident, r, secrets, work)
            for other in identities:
                if other is ident:
                    continue
                theirs = [i for i in _ids_for(r.path, ids[other["name"]]) if i not in own]
                if not theirs:
                    continue
                path = fill_path(r.path, str(theirs[0]))
                resp = client.request("GET", path, ident["headers"])
                body = resp.json()
                seen = any(h["route"].path == r.path for h in res.cross_org)
                if resp.ok and not seen and (not isinstance(body, dict) or body.get("id") in (None, theirs[0])):
                    res.cross_org.append({"route": r, "path": path, "as": ident["name"], "owner": other["name"],
                                          "status": resp.status})
    res.smoke_note = f"authenticated smoke as {', '.join(i['name'] for i in identities)}: {len(lists)} list and " \
                     f"{len(details)} detail route(s)"


def _ids_for(detail: str, lists: dict[str, list]) -> list:
    base = detail[: detail.find("{")].rstrip("/")
    return lists.get(base, [])


def _send(res, client, proc, method, path, ident, route, secrets, work) -> Response:
    before = len(proc.log_text()) if proc else 0
    resp = client.request(method, path, ident["headers"])
    if resp.status >= 500 and not any(e["route"].path == route.path for e in res.smoke_errors):
        time.sleep(0.1)  # let the server flush its traceback
        log = proc.log_text()[before:] if proc else ""
        tail = "\n".join(log.strip().splitlines()[-12:])
        tail = redact_text(tail, secrets).replace(str(work) + "/", "") if work else redact_text(tail, secrets)
        res.smoke_errors.append({"route": route, "path": path, "as": ident["name"], "status": resp.status,
                                 "log": tail})
    return resp


def _unauthenticated(ctx, res: LiveResult, client: Client) -> None:
    public = _cfg(ctx).get("public_routes", DEFAULT_PUBLIC_ROUTES)
    for r in res.routes:
        if r.kind in ("Mount", "WebSocketRoute") or r.path == res.metrics_path or matches(r.path, public):
            continue
        if client.safe_only and r.method not in ("GET",):
            continue
        body = b"{}" if r.method in ("POST", "PUT", "PATCH") else None
        resp = client.request(r.method, fill_path(r.path), body=body)
        res.unauth.append((r, resp.status))


def admin_route(ctx, path: str) -> bool:
    return matches(path, _cfg(ctx).get("admin_routes", DEFAULT_ADMIN_PATTERNS))


def routes_frame(res: LiveResult):
    """The unauthenticated matrix (for the notebook)."""
    import pandas as pd

    return pd.DataFrame([{"method": r.method, "path": r.path, "status without credentials": s,
                          "handler": f"{r.file}:{r.line}" if r.file else ""} for r, s in res.unauth],
                        columns=["method", "path", "status without credentials", "handler"])


def probes_frame(res: LiveResult):
    import pandas as pd

    rows = [{"probe": f"GET {p}", "status": r.status or r.error, "body": r.body[:120].decode("utf-8", "replace")}
            for p, r in res.probes.items() if p != "openapi"]
    for label, r in (("GET /metrics (no token)", res.metrics_anon), ("GET /metrics (token)", res.metrics_token)):
        if r is not None:
            rows.append({"probe": label, "status": r.status or r.error, "body": f"{len(r.body)} bytes"})
    return pd.DataFrame(rows, columns=["probe", "status", "body"])



# ---------------------------------------------------------------- locations for findings


def app_location(ctx) -> tuple[str, int | None]:
    """The ``FastAPI(...)`` call of the app (or the first app file)."""
    import ast

    for path in ctx.layout.app_files:
        src = ctx.index.get(path)
        for node in walk(src.tree) if src is not None and src.tree is not None else []:
            if isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", "")) == "FastAPI":
                return path, node.lineno
    return (ctx.layout.app_files or ["."])[0], None


def literal_location(ctx, text: str) -> tuple[str, int | None]:
    """The first application line holding ``text`` as a string literal."""
    for f in ctx.layout.app_sources(ctx.index):
        for n, line in enumerate((f.text or "").splitlines(), 1):
            if f'"{text}"' in line or f"'{text}'" in line:
                return f.path, n
    return app_location(ctx)


def route_location(ctx, res: LiveResult, path: str, method: str | None = None) -> tuple[str, int | None]:
    """The handler of a route (from the booted app's table), else where its path is written."""
    for r in res.routes:
        if r.path == path and (method is None or r.method == method) and r.file:
            return r.file, r.line
    return literal_location(ctx, path)


def handler_text(ctx, file: str | None, line: int | None) -> str:
    """The source of the function starting at ``file:line`` (decorators included)."""
    import ast

    src = ctx.index.get(file) if file else None
    if src is None or src.tree is None or line is None:
        return ""
    for node in walk(src.tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            first = min([node.lineno] + [d.lineno for d in node.decorator_list])
            if first == line or node.lineno == line:
                return "\n".join(src.text.splitlines()[first - 1: node.end_lineno])
    return ""
