"""OBS-003 live: /metrics requested without and with the token."""
from __future__ import annotations

from ..findings import Severity
from . import check


@check("OBS-003", "observability", "/metrics protection (live)", source="live")
def metrics_auth_live(ctx):
    """Requests ``/metrics`` (``[tool.auditlib.live] metrics_path``) of the booted app
    without credentials, then, when refused, with ``Authorization: Bearer <token>`` (the
    generated ``METRICS_TOKEN`` of the app's environment, or
    ``[tool.auditlib.live] metrics_token``).

    Why: open metrics reveal routes, traffic, error rates and often tenant or user ids in
    labels to anyone who can reach the service.

    Severity: metrics served without a token are a WARNING at the route (or mount) that
    serves them. A protected endpoint is INFO (with whether the token was accepted).

    Not flagged: no /metrics at all (OBS-004's static half reports missing metrics);
    whether production *requires* ``METRICS_TOKEN`` is the static OBS-003's.
    """
    from ..stages.live import live_run, route_location

    chk = metrics_auth_live.check
    res = live_run(ctx)
    if not res.requested or res.error or res.boot_failure or res.metrics_anon is None:
        return
    anon, path = res.metrics_anon, res.metrics_path
    if anon.status in (0, 404, 405):
        return
    where = route_location(ctx, res, path)
    route = [{"method": "GET", "path": path}]
    if anon.ok:
        yield chk.finding(ctx, Severity.WARNING, f"{path} is served without a token",
                          f"GET {path} without credentials answered {anon.status} with {len(anon.body)} bytes of "
                          "metrics: route names, traffic and error rates (and any ids in labels) are public.",
                          "Require a bearer token (compare with `secrets.compare_digest` against METRICS_TOKEN) "
                          "or serve metrics on a separate, non-public port.", *where, routes=route, key="open")
    elif anon.status in (401, 403):
        tok = res.metrics_token
        verdict = ("the token was accepted" if tok is not None and tok.ok else
                   f"the token was refused ({tok.status})" if tok is not None else "no token available to check")
        yield chk.finding(ctx, Severity.INFO, f"{path} refuses requests without a token ({anon.status})",
                          f"Without credentials: {anon.status}; with the bearer token: {verdict}.", "", *where,
                          routes=route, key="protected")
