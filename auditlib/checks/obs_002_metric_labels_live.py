"""OBS-002 live: metric labels that carry raw paths or ids, watched growing."""
from __future__ import annotations

from collections import defaultdict

from ..findings import Severity
from . import check

SUFFIXES = ("_total", "_created", "_bucket", "_count", "_sum", "_info")


def family_location(ctx, family: str):
    """Where the family is defined: its name as a string literal in the app (suffix-less)."""
    from ..stages.live import literal_location

    base = family
    for s in SUFFIXES:
        base = base.removesuffix(s)
    for name in (family, base):
        loc = literal_location(ctx, name)
        src = ctx.index.get(loc[0])
        if loc[1] and src is not None and name in (src.line(loc[1]) or ""):
            return loc
    return literal_location(ctx, base)


@check("OBS-002", "observability", "Metric label cardinality (live)", source="live")
def metric_labels_live(ctx):
    """Reads ``/metrics`` of the booted app, sends GET requests to three distinct made-up
    ids on up to three routes with a path id (``/bookings/900001`` ...), reads
    ``/metrics`` again (with the token when it is protected) and looks for label values
    carrying those ids. Parsed with prometheus_client's exposition parser.

    Why: a label holding the raw URL path (or a user/booking id) creates one time series per
    distinct value; series grow without bound until Prometheus runs out of memory and
    dashboards slow to a halt.

    Severity: each (family, label) whose values contain the probe ids is a WARNING at the
    family's definition, with the series count before and after. Series counts per
    family are INFO.

    Not flagged: labels holding route templates (``/bookings/{booking_id}``); when
    /metrics is absent or unreadable (OBS-003/OBS-004 say so).
    """
    from ..stages.live import PROBE_IDS, app_location, live_run

    chk = metric_labels_live.check
    res = live_run(ctx)
    if not res.requested or res.error or res.boot_failure or not res.samples_after:
        return
    before = defaultdict(int)
    for s in res.samples_before:
        before[s.family] += 1
    after, raw = defaultdict(int), defaultdict(set)
    for s in res.samples_after:
        after[s.family] += 1
        for label, value in s.labels.items():
            if any(i in str(value) for i in PROBE_IDS):
                raw[(s.family, label)].add(str(value))
    for (family, label), values in sorted(raw.items()):
        yield chk.finding(ctx, Severity.WARNING, f"Metric `{family}` label `{label}` carries raw paths/ids",
                          f"After {len(res.id_probes)} requests to distinct ids, `{family}` grew from "
                          f"{before[family]} to {after[family]} series; `{label}` holds values such as "
                          f"{', '.join(sorted(values)[:3])}. Every new id adds series: unbounded cardinality.",
                          "Label with the route template (`request.scope['route'].path`) instead of "
                          "`request.url.path`, and never with user, org or object ids.",
                          *family_location(ctx, family), key=f"{family}:{label}")
    summary = ", ".join(f"{f} {n}" for f, n in sorted(after.items()))
    yield chk.finding(ctx, Severity.INFO, f"/metrics exposes {len(after)} families, {sum(after.values())} series",
                      f"Series per family after the probes: {summary}.", "", *app_location(ctx), excerpt="",
                      key="families")
