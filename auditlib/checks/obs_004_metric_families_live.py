"""OBS-004 live: which useful metric families the running app actually exposes."""
from __future__ import annotations

from ..findings import Severity
from . import check

ROUTE_LABELS = {"path", "route", "handler", "endpoint", "url", "template", "path_template"}
STATUS_LABELS = {"status", "status_code", "code", "http_status"}


@check("OBS-004", "observability", "Useful metrics exposed (live)", source="live")
def metric_families_live(ctx):
    """Reads the booted app's ``/metrics`` (after some traffic) and looks for a request
    counter by route and method and a way to count 5xx (a status label, or an
    error/exception family).

    Why: without per-route request and error counts there is nothing to alert on when a
    release starts failing.

    Severity: no request counter labelled by method and route is a RECOMMENDATION; a
    request counter without a status label and no error family is a RECOMMENDATION; the
    inventory is INFO. Both at the metrics route.

    Not flagged: email, webhook and jobs-heartbeat families: whether the app has those
    features is known from the code (the static OBS-004 reports them); no /metrics at all.
    """
    from ..stages.live import live_run, route_location

    chk = metric_families_live.check
    res = live_run(ctx)
    if not res.requested or res.error or res.boot_failure or not res.samples_after:
        return
    labels: dict[str, set] = {}
    for s in res.samples_after:
        labels.setdefault(s.family, set()).update(s.labels)
    where = route_location(ctx, res, res.metrics_path)
    counters = [f for f, ls in labels.items() if "method" in ls and ls & ROUTE_LABELS]
    if not counters:
        yield chk.finding(ctx, Severity.RECOMMENDATION, "No request metrics by route and method",
                          f"None of the {len(labels)} families exposed has both a `method` and a route label.",
                          "Add a request counter/histogram labelled by method, route template and status "
                          "(e.g. prometheus-fastapi-instrumentator).", *where, key="requests")
    elif not any(labels[f] & STATUS_LABELS for f in counters) and \
            not any("error" in f or "exception" in f or "5xx" in f for f in labels):
        yield chk.finding(ctx, Severity.RECOMMENDATION, "5xx responses cannot be counted",
                          f"The request metrics ({', '.join(counters)}) have no status label and no error family "
                          "exists: an error-rate alert cannot be written.",
                          "Add the status code as a label of the request counter.", *where, key="5xx")
    yield chk.finding(ctx, Severity.INFO, f"Request metrics: {', '.join(counters) or 'none'}",
                      "Families and their labels: " + "; ".join(f"{f}({', '.join(sorted(ls))})"
                                                                for f, ls in sorted(labels.items())) + ".",
                      "", *where, key="inventory")
