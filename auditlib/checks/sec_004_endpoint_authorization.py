"""SEC-004: authorization per endpoint, from the static route inventory."""
from __future__ import annotations

import ast
import re

from ..findings import Location, Severity, not_verified
from ..facts.routes import apps, route_inventory, unreached_handlers
from ..redact import redact_text
from . import check

ADMIN = re.compile(r"(^|[/_.:-])admin", re.IGNORECASE)
# Routes an unauthenticated caller must reach to authenticate at all.
AUTH_FLOW = re.compile(r"(^|[/_.:-])(log-?in|log-?out|sign-?in|sign-?out|sign-?up|register|callback|oauth2?"
                       r"|sso|saml|token|forgot|reset|verify|password|magic)", re.IGNORECASE)


def is_auth_flow(route) -> bool:
    """Login / callback / token / password-reset routes: public by necessity."""
    last = route.path.rstrip("/").rsplit("/", 1)[-1]
    return bool(AUTH_FLOW.search(last) or AUTH_FLOW.search(route.handler.rsplit(".", 1)[-1].rsplit(":", 1)[-1]))


def is_pure_redirect(route) -> bool:
    """A handler whose body only returns a redirect to a literal URL: it exposes nothing."""
    fn = getattr(route, "node", None)
    body = list(getattr(fn, "body", []))
    if body and isinstance(body[0], ast.Expr) and isinstance(getattr(body[0], "value", None), ast.Constant):
        body = body[1:]  # docstring
    if len(body) != 1 or not isinstance(body[0], ast.Return) or not isinstance(body[0].value, ast.Call):
        return False
    call = body[0].value
    name = call.func.attr if isinstance(call.func, ast.Attribute) else getattr(call.func, "id", "")
    return name == "RedirectResponse" and all(isinstance(a, ast.Constant) for a in call.args[:1]) \
        and all(isinstance(k.value, ast.Constant) or k.arg == "status_code" for k in call.keywords)


def is_admin_route(route) -> bool:
    """Path segment, router/module or handler named admin."""
    return bool(ADMIN.search(route.path) or ADMIN.search(route.router) or ADMIN.search(route.handler))


@check("SEC-004", "security", "Authorization per endpoint")
def endpoint_authorization(ctx):
    """Every route (method, full path through every router prefix, handler, file:line)
    classified as unprotected, authenticated or role-gated, by which dependency (app,
    router, include, decorator or parameter level, followed through dependency functions)
    or auth-enforcing path-prefix middleware. See :mod:`auditlib.facts.routes`.

    Why: a route that forgot its auth dependency is reachable by anyone; admin routes
    are the worst case. Severity: an admin-looking route (path, router, module or handler
    named admin) with no protection is a BLOCKER — except the admin area's login flow
    (login, callback, token, password reset: public by necessity) and handlers that only
    return a redirect to a literal URL, which are listed as INFO; every other unprotected route is an
    INFO finding so the auditor can confirm it is meant to be public; one INFO summary
    counts routes by protection (and how many of the protected ones are protected only
    under a condition). Authentication is recognised structurally (a
    ``fastapi.security`` scheme in the dependency chain, a 401/403 rejection), never by a
    function's name alone. Not flagged: protected routes; websocket routes.

    Handlers the inventory saw declared (``@router.get`` on a router it recognises,
    ``@app.get`` on an app parameter) but could not reach from any application are one
    WARNING "not verified for N route handlers", listing up to 10 at their decorators:
    their authorization was not verified, and the auditor learns what the inventory
    missed (a router never included, or included in a way it does not follow). It is
    SEC-004's own gap (this check's verdicts are what those handlers lack), hence a
    finding of SEC-004 rather than a generic audit one (AUDIT-003 is the runner's
    configuration-problem finding).

    Routes whose only authentication is a middleware added under a condition
    (``if os.getenv("SECURE") == "true": app.add_middleware(CheckPassword...)``) count as
    authenticated, and one WARNING per such middleware says that their authentication
    depends on that condition (with every route): the default deployment may run without it.
    This holds for ``app.add_middleware(...)`` and for an ``@app.middleware("http")`` function
    defined inside the ``if``; the message names the local variables the condition tests
    (``auth_string = settings.AUTH_STRING.value()``). A middleware whose every rejection runs
    only for state-changing methods (``if request.method in {"POST", "PUT", ...}``: a CSRF
    token check) is not authentication: every read passes it unidentified.
    Likewise routes whose every authenticating dependency applies only under a condition —
    appended to the router's dependency list in ``if authentication_enabled:``, listed in
    ``[Depends(auth)] if flag else []``, or a dependency that returns early ``if not
    request.app.state.auth_enabled`` (application state or configuration only) — count as
    authenticated, and are ONE WARNING listing every such route and, as locations, the places
    where the conditions are set (SEC-005 then does not report them one by one).
    Not authentication: a 401/403 that does not depend on the caller (a feature gate on
    application state or configuration, ``if request.app.state.read_only: raise
    HTTPException(403)``), or one that only restricts a kind of identified caller and lets
    an unidentified one through (``if isinstance(user, AppUser) and user.is_viewer``).
    """
    chk = endpoint_authorization.check
    routes = route_inventory(ctx)
    if not routes:
        yield not_verified(chk.id, chk.area, "route inventory",
                           "no FastAPI app or APIRouter with routes was found in the application code")
        return
    missed = unreached_handlers(ctx)
    if missed:
        shown = missed[:10]
        locs = [Location(h.file, h.line, h.line, redact_text(s.line(h.line) if (s := ctx.index.get(h.file)) else "")[:300])
                for h in shown]
        more = f" (the first {len(shown)} listed)" if len(missed) > len(shown) else ""
        f = chk.finding(
            ctx, Severity.WARNING,
            f"SEC-004 not verified for {len(missed)} route handler{'s' * (len(missed) > 1)}: not reached from any application",
            f"not verified: {len(missed)} handler{'s are' if len(missed) > 1 else ' is'} declared on a router or app "
            f"parameter that the route inventory does not reach from any application{more}: "
            + ", ".join(f"`{h.handler}` ({h.file}:{h.line})" for h in shown)
            + ". Their authorization, rate limits and tenant scoping were not checked; either the router is "
              "never included (dead code) or it is included in a way the static inventory does not follow.",
            "Check how these routers are served; remove dead routers, or include them where the app is built.",
            shown[0].file, shown[0].line, key="unreached")
        f.locations = locs
        yield f
    counts = {"none": 0, "authenticated": 0, "role": 0}
    for r in routes:
        counts[r.auth] += 1
    only_if = sum(1 for r in routes if r.auth != "none" and (
        [m for m in r.middlewares if m.enforces_auth] or [d for d in r.dependencies if d.authenticates])
        and all(m.condition for m in r.middlewares if m.enforces_auth)
        and all(d.condition for d in r.dependencies if d.authenticates))
    cond = f" ({only_if} only under a condition)" if only_if else ""
    anchor = next((r for r in routes if r.router in apps(ctx)), routes[0])
    yield chk.finding(
        ctx, Severity.INFO, f"{len(routes)} routes: {counts['none']} unprotected, {counts['authenticated']} "
        f"authenticated, {counts['role']} role-gated{cond}",
        "Route inventory by protection; the security notebook lists every route with its dependencies.",
        "", anchor.file, anchor.line, key="summary")
    conditional: dict[tuple, list] = {}
    by_deps: list = []  # routes whose every authentication is a dependency listed or acting under a condition
    for r in routes:
        deps = [d for d in r.dependencies if d.authenticates]
        mws = [m for m in r.middlewares if m.enforces_auth]
        if r.auth != "none" and not deps:
            if mws and all(m.condition for m in mws):
                conditional.setdefault((mws[0].file, mws[0].line, mws[0].name, mws[0].condition), []).append(r)
        elif deps and all(d.condition for d in deps) and all(m.condition for m in mws):
            by_deps.append(r)
    if by_deps:
        yield _conditional_dependencies(ctx, chk, by_deps)
    for (file, line, name, cond), rs in conditional.items():
        yield chk.finding(
            ctx, Severity.WARNING, f"Authentication of {len(rs)} route{'s' * (len(rs) > 1)} depends on a condition",
            f"The only authentication of {len(rs)} route{'s' * (len(rs) > 1)} is the middleware "
            f"`{name.rsplit(':', 1)[-1]}`, added only if `{cond}`{_where_set(ctx, file, line, cond)}: when that "
            "is false these routes are "
            "reachable without credentials; confirm every production deployment makes it true.",
            "Make authentication unconditional in production (add the middleware or an auth dependency "
            "always, or fail at startup when it is disabled outside development).",
            file, line, key=f"conditional:{name}", routes=[d for r in rs for d in r.as_dicts()])
    for r in routes:
        if r.auth != "none":
            continue
        if is_admin_route(r) and not is_auth_flow(r) and not is_pure_redirect(r):
            yield chk.finding(
                ctx, Severity.BLOCKER, f"Admin route without authentication: {' '.join(r.methods)} {r.path}",
                f"`{r.handler}` is an admin route but no dependency or middleware authenticates its caller: "
                "anyone who can reach the API can call it.",
                "Add the admin auth dependency at router level (`APIRouter(dependencies=[Depends(require_admin)])`) "
                "or on the route, and a test that calls it without credentials and expects 401/403.",
                r.file, r.line, routes=r.as_dicts())
        else:
            yield chk.finding(
                ctx, Severity.INFO, f"Public route: {' '.join(r.methods)} {r.path}",
                f"`{r.handler}` has no authentication dependency or middleware; confirm it is meant to be public.",
                "If it is not public, add the auth dependency.", r.file, r.line, routes=r.as_dicts())


def _conditional_dependencies(ctx, chk, routes):
    """One WARNING: these routes are authenticated only when the conditions hold."""
    places: dict[tuple, str] = {}
    count: dict[tuple, int] = {}
    for r in routes:
        for d in r.dependencies:
            if d.authenticates and d.condition:
                at = (d.condition, *(d.condition_at or (d.file, d.line)))
                places.setdefault(at, d.written or d.name.rsplit(":", 1)[-1])
                count[at] = count.get(at, 0) + 1
    places = dict(sorted(places.items(), key=lambda kv: (-count[kv[0]], kv[0][1], kv[0][2])))
    conds = list(dict.fromkeys(c for c, _f, _l in places))
    said = "; ".join(f"`{c}` ({', '.join(dict.fromkeys(f'`{n}`' for (c2, _f, _l), n in places.items() if c2 == c))})"
                     for c in conds[:6]) + (f" (+{len(conds) - 6} more)" if len(conds) > 6 else "")
    n = len(routes)
    first = next(iter(places))
    f = chk.finding(
        ctx, Severity.WARNING, f"Authentication of {n} route{'s' * (n > 1)} depends on a condition",
        f"Every authentication dependency of {n} route{'s' * (n > 1)} applies only under a condition: {said}. "
        "When it is false these routes answer anyone without credentials; confirm every production deployment "
        "makes it true.",
        "Make authentication unconditional in production (always add the auth dependency, or fail at startup "
        "when authentication is disabled outside development).",
        first[1], first[2], key="conditional-dependencies", routes=[d for r in routes for d in r.as_dicts()])
    f.locations += [Location(file, line, line, "") for (_c, file, line) in list(places)[1:20]]
    return f


def _where_set(ctx, file, line, cond) -> str:
    """`` (auth_string = settings.AUTH_STRING.value(), line 520)``: the assignment of each
    local name the condition tests, nearest before the middleware, so the finding names the
    setting or variable that switches authentication on."""
    src = ctx.index.get(file)
    tree = getattr(src, "tree", None)
    if tree is None:
        return ""
    try:
        names = {n.id for n in ast.walk(ast.parse(cond, mode="eval")) if isinstance(n, ast.Name)}
    except SyntaxError:
        return ""
    said = []
    for name in sorted(names):
        found = [a for a in ast.walk(tree) if isinstance(a, ast.Assign) and a.lineno < line and any(
            isinstance(t, ast.Name) and t.id == name for t in a.targets)]
        if found:
            a = max(found, key=lambda a: a.lineno)
            said.append(f"{name} = {ast.unparse(a.value)[:120]}, line {a.lineno}")
    return f" ({'; '.join(said)})" if said else ""

