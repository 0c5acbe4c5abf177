"""SEC-004 confirmed live: routes that answer 2xx without credentials."""
from __future__ import annotations

from ..findings import Severity
from . import check


@check("SEC-004", "security", "Routes answering without credentials (live)", source="live")
def unauthenticated_routes(ctx):
    """Sends one request without credentials to every route of the booted app's route
    table (path ids filled with 1, ``{}`` as the body of POST/PUT/PATCH; against
    ``--base-url`` only GET) and lists those answering 2xx.

    Why: an admin or tenant route that serves anonymous callers exposes every tenant's
    data or operations, whatever the code seemed to say.

    Severity: a 2xx on an admin route (``[tool.auditlib.live] admin_routes``, default
    paths with an ``admin`` segment) is a BLOCKER at the handler; a 2xx on any other route
    not declared public (``[tool.auditlib.live] public_routes``, default health,
    readiness and documentation paths) is a WARNING asking to confirm it is public by
    design. The matrix itself is INFO.

    Not flagged: 401/403/404/405/422 and other refusals; ``/metrics`` (OBS-003's); mounts
    and websockets; routes declared public.
    """
    from ..stages.live import admin_route, app_location, live_run

    chk = unauthenticated_routes.check
    res = live_run(ctx)
    if not res.requested or res.error or res.boot_failure or not res.unauth:
        return
    open_routes = [(r, s) for r, s in res.unauth if 200 <= s < 300]
    for r, status in open_routes:
        admin = admin_route(ctx, r.path)
        file, line = (r.file, r.line) if r.file else app_location(ctx)
        yield chk.finding(ctx, Severity.BLOCKER if admin else Severity.WARNING,
                          f"{r.method} {r.path} answers {status} without credentials",
                          f"A request with no credentials to {r.method} {r.path} was served ({status})"
                          + (" on an admin route: anyone can use it." if admin else
                             ": unless this route is public by design, anyone can call it."),
                          "Add the authentication dependency (router- or route-level `dependencies=[Depends("
                          "require_admin)]`); if the route is public by design, list it in [tool.auditlib.live] "
                          "public_routes.", file, line, routes=[{"method": r.method, "path": r.path}],
                          key=f"{r.method} {r.path}")
    refused = sum(1 for _, s in res.unauth if s in (401, 403))
    yield chk.finding(ctx, Severity.INFO, f"Unauthenticated matrix: {len(res.unauth)} route(s) probed",
                      f"{refused} refused with 401/403, {len(open_routes)} answered 2xx, the rest other statuses "
                      f"(routes from {res.routes_source}).", "", *app_location(ctx), excerpt="", key="matrix")
