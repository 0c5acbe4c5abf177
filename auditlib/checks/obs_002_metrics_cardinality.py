"""OBS-002: Prometheus label cardinality (raw URL paths, unbounded ids)."""
from __future__ import annotations

import ast
import re

from ..findings import Severity
from ..facts.metrics_model import exporters, label_calls, metrics
from ..code.pyast import dotted, literal, of_type
from ..code.pyresolve import kwarg
from . import check

UNBOUNDED_LABEL = (r"^(id|uuid|email|phone|ip|ip_address|client_ip|url|raw_path|full_path|query|user_agent|"
                   r"token|session|user|customer|booking|order|invoice|lead)$|"
                   r"(^|_)(user|customer|client|booking|order|invoice|org|organization|tenant|account|"
                   r"session|lead|request|trace|job|message|payment)_?(id|uuid|email)$")
CLIENT_ATTRS = {"query_params", "headers", "cookies", "path_params", "client"}


def _raw_path(node: ast.AST) -> str | None:
    """What client-controlled request data ``node`` contains, if any: the raw URL path
    (``request.url.path``, ``request.url``, ``scope["path"]``) or another request part."""
    for n in of_type(node, (ast.Attribute, ast.Subscript)):
        if isinstance(n, ast.Attribute) and n.attr in ("path", "raw_path") \
                and isinstance(n.value, ast.Attribute) and n.value.attr == "url":
            return "the raw URL path"
        if isinstance(n, ast.Attribute) and n.attr == "url" and re.search(r"request|req$", dotted(n.value), re.I):
            return "the raw URL"
        if isinstance(n, ast.Subscript) and literal(n.slice) in ("path", "raw_path") \
                and "scope" in dotted(n.value):
            return "the raw URL path"
        if isinstance(n, ast.Attribute) and n.attr in CLIENT_ATTRS and re.search(r"request|req$", dotted(n.value), re.I):
            return f"request.{n.attr} (client-controlled)"
    return None


def _tainted_names(func: ast.AST | None) -> dict[str, str]:
    """Local names assigned (directly or through other tainted names) from raw request data."""
    out: dict[str, str] = {}
    if func is None:
        return out
    assigns = sorted(of_type(func, (ast.Assign, ast.AnnAssign)), key=lambda n: n.lineno)
    for _ in range(2):
        for a in assigns:
            if a.value is None:
                continue
            why = _raw_path(a.value) or next((out[n.id] for n in of_type(a.value, ast.Name)
                                              if n.id in out), None)
            targets = a.targets if isinstance(a, ast.Assign) else [a.target]
            for t in targets:
                if why and isinstance(t, ast.Name):
                    out[t.id] = why
    return out


def _unbounded_value(node: ast.AST, rx: re.Pattern) -> str | None:
    """``user.id`` / ``booking_id`` / ``current_user.email``: a per-entity value."""
    stack = [node]
    while stack:
        n = stack.pop()
        name = dotted(n) if isinstance(n, (ast.Name, ast.Attribute)) else ""
        if not name:
            stack.extend(ast.iter_child_nodes(n))
            continue
        parts = name.split(".")  # the whole chain only: `user.role` is not `user`
        if rx.search(parts[-1]) or (len(parts) > 1 and parts[-1] in ("id", "uuid", "email")
                                    and not parts[-2].startswith(("route", "self"))):
            return name
    return None


@check("OBS-002", "observability", "Metrics label cardinality")
def metrics_cardinality(ctx):
    """prometheus_client metrics (found through imports) and their ``.labels(...)`` calls:
    label values that carry the raw request path (``request.url.path``, ``request.url``,
    ``scope["path"]``, also through local variables, including a fallback such as
    ``route.path if route else request.url.path``) or other client-controlled request
    data, and label names or values that identify entities (``user_id``, ``booking.id``,
    ``org_id``, ``email``). Exporters: prometheus-fastapi-instrumentator with
    ``should_group_untemplated=False`` and starlette-exporter with ``group_paths=False``.

    Why: every distinct label value is a new time series held in the process forever; a
    scanner requesting random URLs (every 404 included) or a growing user base grows
    memory and Prometheus storage without bound (a cardinality bomb). WARNING each.
    starlette-exporter without ``group_paths`` is a RECOMMENDATION: it defaults to the
    template only since 0.18 (raw paths before).
    Raw request data is one finding per defect: the function labelling with it and every
    metric it feeds (one middleware feeding a counter and a histogram), at the first
    metric's definition, with each labels value as a further location.
    Not flagged: the route template (``request.scope["route"].path``), method, status
    code and other literal/bounded values; metrics in tests. No metrics at all is OBS-004.
    """
    chk = metrics_cardinality.check
    rx = re.compile(ctx.config.get("metrics_unbounded_labels", UNBOUNDED_LABEL), re.I)
    flagged_metrics = set()
    for m in metrics(ctx):
        bad = [lb for lb in m.labels if rx.search(lb)]
        if bad:
            flagged_metrics.add(m.var)
            yield chk.finding(ctx, Severity.WARNING, f"Metric `{m.name or m.var}` has unbounded label(s) {', '.join(bad)}",
                              f"Label(s) {', '.join(bad)} take one value per entity: each new value creates a "
                              "time series that lives for the life of the process and in Prometheus.",
                              "Drop per-entity labels (count per route/status/type instead) and put ids in logs "
                              "or traces.", m.file, m.line, key=f"label:{m.var}")
    raw: list[tuple] = []  # (label call, label, value, why): raw request data fed to a label
    for lc in label_calls(ctx):
        tainted = _tainted_names(lc.func)
        for label, value in lc.values.items():
            why = _raw_path(value) or next((f"`{n.id}` (from {tainted[n.id]})" for n in of_type(value, ast.Name)
                                            if n.id in tainted), None)
            if why:
                raw.append((lc, label, value, why))
                continue
            if lc.metric.var in flagged_metrics:
                continue
            ent = _unbounded_value(value, rx)
            if ent:
                yield chk.finding(ctx, Severity.WARNING, f"Metric label `{label}` is set to `{ent}`",
                                  f"`{lc.metric.var}` is labelled with `{ent}`, one series per entity: "
                                  "unbounded cardinality as data grows.",
                                  "Use a bounded value (type, status, route template) instead of an id.",
                                  lc.src.path, value.lineno, key=f"entity:{lc.metric.var}:{label}")
    yield from _raw_fed(ctx, chk, raw, flagged_metrics)
    for ex in exporters(ctx):
        if ex.library == "prometheus-fastapi-instrumentator":
            v = kwarg(ex.call, "should_group_untemplated")
            if v is not None and literal(v) is False:
                yield chk.finding(ctx, Severity.WARNING, "Instrumentator labels untemplated paths one by one",
                                  "`should_group_untemplated=False` gives every unmatched URL (404 scans) its "
                                  "own `handler` label value: unbounded series.",
                                  "Keep the default `should_group_untemplated=True`.", ex.src.path, v.lineno,
                                  key="instrumentator")
        elif ex.library == "starlette-exporter":
            call = ex.call
            v = kwarg(call, "group_paths")
            if v is not None and literal(v) is False:
                yield chk.finding(ctx, Severity.WARNING, "starlette-exporter labels raw paths",
                                  "`group_paths=False` labels each request with its raw URL path.",
                                  "Set `group_paths=True` (and `filter_unhandled_paths=True`).", ex.src.path,
                                  v.lineno, key="starlette-exporter")
            elif v is None:
                yield chk.finding(ctx, Severity.RECOMMENDATION, "starlette-exporter without explicit group_paths",
                                  "starlette-exporter labelled raw URL paths by default before 0.18; with an "
                                  "older pin every URL is a time series.",
                                  "Pass `group_paths=True, filter_unhandled_paths=True` explicitly.",
                                  ex.src.path, call.lineno, key="starlette-exporter")


def _raw_fed(ctx, chk, raw, flagged_metrics):
    """One finding per defect: the function that computes raw request data into labels
    and every metric it feeds are one place to fix, so the labels calls of one function
    (and of any other function feeding the same metrics) are one finding, at the
    definition of the first metric fed (the labels' lines are further locations)."""
    parent: dict = {}

    def find(k):
        while parent.setdefault(k, k) != k:
            k = parent[k]
        return k
    for lc, *_rest in raw:
        parent[find(("fn", lc.src.path, id(lc.func) if lc.func is not None else 0))] = find(("m", lc.metric.var))
    groups: dict = {}
    for item in raw:
        lc = item[0]
        groups.setdefault(find(("m", lc.metric.var)), []).append(item)
    by_var = {m.var: m for m in metrics(ctx)}
    for items in groups.values():
        fed = sorted(dict.fromkeys(lc.metric.var for lc, *_r in items),
                     key=lambda v: (by_var[v].file, by_var[v].line) if v in by_var else ("~", 0))
        defs = sorted({(by_var[v].file, by_var[v].line) for v in fed if v in by_var and v not in flagged_metrics})
        uses = sorted({(lc.src.path, value.lineno) for lc, _l, value, _w in items})
        whys = list(dict.fromkeys(w for *_r, w in items))
        names = [f"`{by_var[v].name or v}`" if v in by_var else f"`{v}`" for v in fed]
        what = "raw URL paths" if all("URL" in w for w in whys) else "client-controlled request data"
        title = (f"Metric {names[0]} is fed {what}" if len(names) == 1
                 else f"{len(names)} metrics are fed {what} ({', '.join(names)})")
        per_metric = "; ".join(
            f"`{v}.labels(...)` gets " + ", ".join(dict.fromkeys(f"`{lb}` = {w}" for lc, lb, _v, w in items
                                                               if lc.metric.var == v)) for v in fed)
        message = (f"{per_metric} (at {', '.join(f'{f}:{n}' for f, n in uses)}): every distinct URL (ids in paths, "
                   "404 scans of random paths) becomes a new time series, an unbounded memory growth any client "
                   "can trigger, in this process and in Prometheus.")
        fix = ("Label with the route template: `route = request.scope.get(\"route\"); "
               "path = route.path if route else \"unmatched\"`, computed once for every metric.")
        if defs:
            var0 = next(v for v in fed if v in by_var and (by_var[v].file, by_var[v].line) == defs[0])
            f = chk.finding(ctx, Severity.WARNING, title, message, fix, *defs[0], key=f"fed:{var0}")
        else:  # every metric fed is already reported for its label names: the labels' lines
            lc0, label0 = next((lc, lb) for lc, lb, v, _w in items if (lc.src.path, v.lineno) == uses[0])
            f = chk.finding(ctx, Severity.WARNING, title, message, fix, *uses[0],
                            key=f"raw:{lc0.metric.var}:{label0}")
        for file, line in defs[1:] + uses:
            if (file, line) != (f.locations[0].file, f.locations[0].line):
                f.locations.append(chk.finding(ctx, Severity.WARNING, "", "", "", file, line).locations[0])
        yield f
