"""OBS-003: the /metrics endpoint is authenticated, and its token required in production."""
from __future__ import annotations

import ast

from ..findings import Severity
from ..facts.prod_validation import prod_requirement
from ..code.pyast import literal, of_type
from ..code.pyresolve import Project, kwarg
from ..facts.routes import library_route, protection, routes_at
from ..facts.settings_model import find_settings
from . import check

METRICS_PATHS = ["/metrics"]
TOKEN_SETTING = r"^metrics_(token|bearer|auth|api_key|secret)"


def _expose_calls(ctx):
    """prometheus-fastapi-instrumentator ``.expose(app, endpoint=...)`` and prometheus_client
    ``start_http_server(port)`` calls in application code."""
    proj = Project.of(ctx)
    for src in proj.files:
        if not ctx.layout.is_app(src.path):
            continue
        imports = " ".join(proj.imports.get(src.path, {}).values())
        for n in of_type(src.tree, ast.Call):
            if isinstance(n.func, ast.Attribute) and n.func.attr == "expose" \
                    and "prometheus_fastapi_instrumentator" in imports:
                yield "expose", src, n
            elif proj.qualify(src, n.func) in ("prometheus_client.start_http_server",
                                               "prometheus_client.exposition.start_http_server"):
                yield "server", src, n


@check("OBS-003", "observability", "/metrics authentication")
def metrics_auth(ctx):
    """Where metrics are exposed: a ``/metrics`` route (decorator, ``add_route``, including
    ``app.mount("/metrics", make_asgi_app())``), prometheus-fastapi-instrumentator's
    ``.expose(app)``, or ``start_http_server(port)``. Each HTTP exposure must be
    authenticated: a route/router dependency that authenticates (by name, or because it
    raises 401/403 or uses a FastAPI security scheme), a credential check in the handler,
    or a middleware guarding the path. A ``METRICS_TOKEN``-like setting must be required
    (no default) or demanded by production config validation.

    Why: /metrics reveals routes, traffic, error rates and business counters to anyone, and
    scraping it is a cheap DoS. An unauthenticated HTTP exposure is a WARNING at the
    route/mount/expose line; an optional token that production validation does not
    require (so /metrics silently opens when it is unset) is a WARNING at the setting;
    ``start_http_server`` (a separate port) is a RECOMMENDATION to keep that port private.
    Not flagged: apps without metrics (OBS-004 says so); a literal default token (SEC-001).
    """
    chk = metrics_auth.check
    exposed = list(routes_at(ctx, ctx.config.get("metrics_paths", METRICS_PATHS)))
    for kind, src, call in _expose_calls(ctx):
        if kind == "server":
            yield chk.finding(ctx, Severity.RECOMMENDATION, "Metrics served by start_http_server on a separate port",
                              "prometheus_client's HTTP server has no authentication; it is only private if "
                              "the port is not published or reachable from outside.",
                              "Do not publish the metrics port (compose `ports:` / Service), or expose "
                              "/metrics in the app behind a bearer token.", src.path, call.lineno, key="server")
            continue
        path = literal(kwarg(call, "endpoint"))
        route = library_route(ctx, src.path, call.lineno, path if isinstance(path, str) else "/metrics",
                              getattr(kwarg(call, "dependencies"), "elts", []))
        if not any(r.path == route.path for r in exposed):
            exposed.append(route)
    if not exposed:
        return
    guarded = False
    for route in exposed:
        how = protection(ctx, route)
        if how:
            guarded = True
            yield chk.finding(ctx, Severity.INFO, f"{route.path} is authenticated ({how})",
                              f"{route.path} requires credentials: {how}.", "", route.file, route.line,
                              key="protected", routes=route.as_dicts())
            continue
        what = route.node.name if route.node is not None else route.handler
        yield chk.finding(ctx, Severity.WARNING, f"{route.path} is served without authentication",
                          f"{route.path} ({what or 'metrics exporter'}) answers anyone: route names, traffic "
                          "volumes, error rates and business counters leak, and heavy scrapes cost CPU.",
                          "Require `Authorization: Bearer <METRICS_TOKEN>` (a dependency comparing with "
                          "`secrets.compare_digest`), or serve metrics on an internal-only port.",
                          route.file, route.line, key="public", routes=route.as_dicts())
    for s in find_settings(ctx, ctx.config.get("metrics_token_setting", TOKEN_SETTING)):
        if s.required or not s.empty:
            continue
        rule = prod_requirement(ctx, s)
        if rule:
            continue
        yield chk.finding(ctx, Severity.WARNING if guarded else Severity.RECOMMENDATION,
                          f"{s.env} is optional and not required in production",
                          f"`{s.name}` defaults to {s.default!r} and no production validation demands it: a "
                          "deployment that forgets it serves /metrics without a token (or with an empty one).",
                          f"Reject a missing {s.env} when APP_ENV is production (in the settings validator), "
                          "or make the field required.", s.file, s.line, settings=[s.env], key="token-optional")
