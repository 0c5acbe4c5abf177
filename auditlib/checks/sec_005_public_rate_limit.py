"""SEC-005: public endpoints without rate limiting."""
from __future__ import annotations

import ast
import re

from ..code.pyast import dotted, of_type
from ..code.pyresolve import Project, callees_upto
from ..facts.routes import route_inventory
from ..findings import Location, Severity, not_verified
from . import check
from .sec_004_endpoint_authorization import is_auth_flow

LIMITER = re.compile(r"limit|throttl|rate", re.IGNORECASE)
# Probes and metrics are polled by infrastructure and must not be throttled.
DEFAULT_EXEMPT = [r"/(healthz?|health-?check|readyz?|livez?|ready|live|ping|status|metrics)"]


def rate_limited(route) -> str:
    """How the route is rate limited ('' if not): decorator, dependency or middleware."""
    for d in route.decorators:
        if LIMITER.search(d):
            return f"decorator {d}"
    for d in route.dependencies:
        for name in (d.name, *d.chain):
            if LIMITER.search(name.rsplit(":", 1)[-1]):
                return f"dependency {name}"
    for m in route.middlewares:
        if m.rate_limits:
            return f"middleware {m.name}"
    return ""


# inputs worth guessing: a route taking one of these (parameter or body field) is a brute-force target
SECRET_INPUT = re.compile(r"pass(word|wd|phrase)?$|^pin$|otp|totp|mfa|2fa|secret|api_?key|recovery", re.I)
# session / database calls and cheap response builders
DATA_CALLS = {"execute", "scalars", "scalar", "scalar_one", "query", "get", "add", "add_all", "commit",
              "delete", "merge", "exec", "fetch", "fetchrow", "fetchval", "find", "find_one", "insert_one"}
# file and object-store writes: a flood of uploads fills the disk or the bucket
FILE_WRITES = {"write", "write_bytes", "write_text", "copyfileobj", "upload_fileobj", "upload_file", "put_object"}
SESSIONISH = re.compile(r"(^|_)(session|db|conn|connection|repo|repository|store|manager|crud|client)s?$", re.I)
FIX = ("Add a limiter (e.g. slowapi `@limiter.limit(\"10/minute\")` or fastapi-limiter "
       "`Depends(RateLimiter(times=10, seconds=60))`), backed by Redis in production, or a rate-limiting "
       "middleware / gateway rule for these paths.")


@check("SEC-005", "security", "Public endpoints without rate limiting")
def public_rate_limit(ctx):
    """Unauthenticated routes (per the route inventory) with no rate limiting: no limiter
    decorator on the handler (slowapi ``@limiter.limit``), no limiter dependency
    (fastapi-limiter ``RateLimiter``, a project ``rate_limit`` dependency) and no
    rate-limiting middleware on the app (``SlowAPIMiddleware`` or a project middleware
    whose name or body refers to a limiter), judged by what a flood of calls can do; a
    handler served at several paths or methods (a router included twice, stacked
    decorators) is judged once, listing every route:

    - a route that takes a secret to check (a parameter or body field named password,
      OTP, PIN, API key...): brute force and credential stuffing — WARNING per route;
    - a public write (POST/PUT/PATCH/DELETE) that reaches the database or an external
      service (sign-up, lead forms, magic links, e-mail): spam, e-mail bombing, cost —
      WARNING per route;
    - a public read that reaches the database or an external service: scraping and
      load — one RECOMMENDATION listing every such route (defence in depth).

    Limiters and authentication are read wherever the route inventory finds dependencies,
    also in lists held in variables (``dependencies=_limits``, a factory's ``deps`` built
    with ``append`` / ``extend``, :mod:`auditlib.facts.route_deps`); a limiter listed under
    a condition (``[] if rate_limit_disabled() else [Depends(limiter)]``) counts.

    Not flagged: routes of an app that its own module serves only with
    ``uvicorn.Config(app, port=0)`` / ``uvicorn.run(app, port=0)`` on the loopback
    interface (a throwaway local server a CLI starts for a browser login callback);
    authenticated routes, also those authenticated only under a condition
    (``if authentication_enabled: deps.append(Depends(is_authenticated))``: SEC-004 reports
    that condition once, for every such route, rather than one finding per route here) and
    handlers that turn away a caller without a session themselves; health/readiness/metrics probes
    (``rate_limit_exempt_paths``, regexes matched against the full path); routes that
    reach neither the database nor an external service within three calls (redirects,
    static pages, docs; file and object-store writes count as work; only the bodies are
    read: a stacked ``@router.delete(...)`` decorator is no ``delete`` call); GET steps of a login flow that take no secret (an OAuth
    authorize redirect, a callback exchanging a single-use code).
    """
    chk = public_rate_limit.check
    routes = route_inventory(ctx)
    if not routes:
        yield not_verified(chk.id, chk.area, "rate limiting of public routes", "no routes were found")
        return
    exempt = [re.compile(p + "$") for p in ctx.config.get("rate_limit_exempt_paths", DEFAULT_EXEMPT)]
    proj = Project.of(ctx)
    handlers: dict[tuple, list] = {}
    local: dict[str, bool] = {}
    for r in routes:
        if r.auth != "none" or any(p.match(r.path) for p in exempt) or rate_limited(r):
            continue
        if r.app not in local:
            local[r.app] = _ephemeral_local_app(proj, r.app)
        if local[r.app]:
            continue  # a throwaway loopback server on a random port (a CLI login callback): not a public endpoint
        handlers.setdefault((r.file, r.handler_line, r.handler), []).append(r)
    reads = []
    for group in handlers.values():
        group.sort(key=lambda r: (not r.include_in_schema, r.line))  # named by its first documented route
        r = group[0]
        more = f" (and {len(group) - 1} more)" if len(group) > 1 else ""
        label = f"Public route without rate limiting: {' '.join(r.methods)} {r.path}{more}"
        served = [d for x in group for d in x.as_dicts()]
        secret = _secret_input(ctx, proj, r)
        writes = {m for x in group for m in x.methods} - {"GET", "HEAD", "OPTIONS"}
        if secret:
            yield chk.finding(
                ctx, Severity.WARNING, label,
                f"`{r.handler}` needs no credentials, takes `{secret}` to check, and nothing limits how often "
                "it can be called: open to brute force and credential stuffing.", FIX,
                r.file, r.line, routes=served, key=r.key)
        elif (is_auth_flow(r) and not writes) or not _does_work(ctx, proj, r):
            continue
        elif writes:
            yield chk.finding(
                ctx, Severity.WARNING, label,
                f"`{r.handler}` needs no credentials, writes or sends on every call (it reaches the database or "
                "an external service), and nothing limits how often it can be called: open to spam, "
                "e-mail/SMS bombing and cost abuse.", FIX, r.file, r.line, routes=served, key=r.key)
        else:
            reads.extend(group)
    if reads:
        first = reads[0]
        f = chk.finding(
            ctx, Severity.RECOMMENDATION, f"{len(reads)} public read route(s) without rate limiting",
            "These routes need no credentials and read the database or call an external service on every "
            "request, with nothing limiting how often: scraping and load from one client are unbounded. "
            "Routes: " + ", ".join(r.key for r in reads[:12]) + (f" (+{len(reads) - 12} more)" if len(reads) > 12 else "")
            + ".", FIX, first.file, first.line, routes=[d for r in reads for d in r.as_dicts()], key="public-reads")
        f.locations += [Location(r.file, r.line, r.line, "") for r in reads[1:]]
        yield f


def _handler_src(ctx, route):
    return ctx.index.get(route.module.path if route.module is not None else route.file)


def _secret_input(ctx, proj: Project, route) -> str:
    """The name of a secret-looking input of the handler: a parameter, or a field of a
    body model defined in the project."""
    fn = route.node
    src = _handler_src(ctx, route)
    if fn is None or not hasattr(fn, "args"):
        return ""
    for a in fn.args.args + fn.args.kwonlyargs:
        if SECRET_INPUT.search(a.arg):
            return a.arg
        if a.annotation is not None and src is not None:
            for name in {dotted(n) for n in of_type(a.annotation, (ast.Name, ast.Attribute))}:
                cls = _project_class(proj, src, name)
                for st in getattr(cls, "body", ()):
                    if isinstance(st, ast.AnnAssign) and isinstance(st.target, ast.Name) \
                            and SECRET_INPUT.search(st.target.id):
                        return f"{name}.{st.target.id}"
    return ""


LOOPBACK = {"127.0.0.1", "localhost", "::1"}


def _ephemeral_local_app(proj: Project, app: str) -> bool:
    """The app (``module:name``) is served only by its own module through
    ``uvicorn.Config(app, port=0)`` / ``uvicorn.run(app, port=0)`` on the loopback
    interface (no ``host``: uvicorn's default 127.0.0.1): a server on a random local port
    that a CLI starts for one exchange (a browser login callback), not a public endpoint."""
    mod, _, name = app.rpartition(":")
    src = proj.by_module.get(mod)
    if src is None or src.tree is None or not name:
        return False
    serves = [c for c in of_type(src.tree, ast.Call) if dotted(c.func).rsplit(".", 1)[-1] in ("Config", "run")
              and "uvicorn" in proj.qualify(src, c.func) and c.args and dotted(c.args[0]) == name]
    if not serves:
        return False
    for c in serves:
        kw = {k.arg: k.value for k in c.keywords}
        port, host = kw.get("port"), kw.get("host")
        if not (isinstance(port, ast.Constant) and port.value == 0):
            return False
        if host is not None and not (isinstance(host, ast.Constant) and host.value in LOOPBACK):
            return False
    return True


def _project_class(proj: Project, src, name: str):
    q = proj.qualify(src, ast.Name(id=name) if "." not in name else ast.parse(name, mode="eval").body)
    mod, _, cls = q.rpartition(".")
    target = proj.by_module.get(mod) if mod else src
    if target is None or target.tree is None:
        return None
    return next((c for c in target.tree.body if isinstance(c, ast.ClassDef) and c.name == cls), None)


def _does_work(ctx, proj: Project, route) -> bool:
    """The handler reaches the database, an external service or a file / object-store
    write within three calls."""
    fn, src = route.node, _handler_src(ctx, route)
    if fn is None or src is None or src.tree is None:
        return True  # cannot tell: judge as doing work
    from ..facts.external_calls import external_calls

    ext = {(c.src.path, c.line) for c in external_calls(ctx)}
    for s, f in callees_upto(proj, src, fn, 3):
        # the body only: the route decorators (``@router.delete(...)``) are not work
        for c in (c for st in getattr(f, "body", [f]) for c in of_type(st, ast.Call)):
            name = dotted(c.func)
            recv, _, meth = name.rpartition(".")
            last = name.rsplit(".", 1)[-1]
            if (s.path, c.lineno) in ext or last in ("select", "insert", "update", "delete", "text") \
                    or last in FILE_WRITES:
                return True
            if meth in DATA_CALLS and SESSIONISH.search(recv.rsplit(".", 1)[-1] or ""):
                return True
    return False
