"""OBS-004: the metrics an operator needs exist (requests, 5xx, email, webhooks, heartbeat)."""
from __future__ import annotations

import ast
import re

from ..facts.email_model import sends_mail
from ..findings import Severity
from ..facts.metrics_model import Metric, exporters, metrics
from ..code.pyast import by_scope, dotted, literal, of_type
from ..code.pyresolve import Project, kwarg
from ..facts.routes import app_anchor, mounted_apps, source_routes
from . import check
from .obs_001_health_endpoints import heartbeat_records

JOB_LIBS = re.compile(r"^(apscheduler|arq|celery|rq|dramatiq|taskiq|huey|saq)\b")
ROUTE_LABELS = {"path", "route", "endpoint", "handler", "template", "path_template"}
# a label carrying the response status: status, status_code, http_status, response_code, status_class
STATUS_LABEL = re.compile(r"(^|[_.])(status|code)([_.]|$)", re.I)
# OpenTelemetry instruments: meter.create_counter(name=...), attributes given at each record
OTEL_KINDS = {"create_counter": "Counter", "create_histogram": "Histogram", "create_up_down_counter": "Gauge",
              "create_gauge": "Gauge", "create_observable_counter": "Counter",
              "create_observable_gauge": "Gauge", "create_observable_up_down_counter": "Gauge"}
OTEL_EXPORTER = "opentelemetry.instrumentation.fastapi.FastAPIInstrumentor"
# error trackers: unhandled exceptions (5xx) reach them with their stack traces
TRACKERS = {"sentry_sdk": "Sentry", "rollbar": "Rollbar", "bugsnag": "Bugsnag", "honeybadger": "Honeybadger",
            "airbrake": "Airbrake", "raygun4py": "Raygun"}


def _is(m, rx: str) -> bool:
    return bool(re.search(rx, f"{m.name} {m.var}", re.I))


def _kinds(m) -> set[str]:
    """Which of the useful signals metric ``m`` provides."""
    labels = {lb.lower() for lb in m.labels}
    out = set()
    if m.kind in ("Counter", "Histogram", "Summary") and (
            _is(m, r"request") or ("method" in labels and labels & ROUTE_LABELS)):
        out.add("requests")
        if any(STATUS_LABEL.search(lb) for lb in labels):
            out.add("errors")
    if _is(m, r"5xx|server_error|http_error|exception|unhandled"):
        out.add("errors")
    if _is(m, r"e?mail|smtp|sendgrid|notification"):
        out.add("email")
    if _is(m, r"webhook|stripe_event"):
        out.add("webhook")
    if _is(m, r"heartbeat|last_(run|success|seen)|job.*timestamp"):
        out.add("heartbeat")
    return out


def _has_jobs(ctx) -> bool:
    proj = Project.of(ctx)
    for src in proj.files:
        if not ctx.layout.is_app(src.path):
            continue
        if any(JOB_LIBS.match(v) for v in proj.imports.get(src.path, {}).values()):
            return True
        if re.search(r"(^|/)(jobs|workers?|scheduler)(/|\.py$)", src.path):
            return True
    return bool(heartbeat_records(ctx))


def _has_webhooks(ctx) -> bool:
    return any("webhook" in r.path.lower() for r in [*source_routes(ctx), *mounted_apps(ctx)]) or any(
        "construct_event" in (s.text or "") for s in ctx.layout.app_sources(ctx.index))


def _otel(ctx) -> tuple[list[Metric], str | None]:
    """OpenTelemetry instruments created in application code (``meter.create_counter(
    "name", ...)``), and ``file:line`` of a metric record whose attributes carry a
    response status (``.add(1, attributes={"status_code": ...})``, the dict built in the
    same function): OpenTelemetry declares no label names, they come with each record."""
    out, status = [], None
    for src in ctx.layout.app_sources(ctx.index):
        text = src.text or ""
        if src.tree is None or (text.isascii() and "create_" not in text and "attributes" not in text):
            continue
        for call in of_type(src.tree, ast.Call):
            func = call.func
            if call.args and isinstance(call.args[0], ast.Attribute) and dotted(func).rsplit(".", 1)[-1] == "partial":
                func = call.args[0]  # partial(meter.create_counter, name=...): created lazily
                call = ast.Call(func, call.args[1:], call.keywords, lineno=call.lineno)
            kind = OTEL_KINDS.get(func.attr) if isinstance(func, ast.Attribute) else None
            if kind:
                name = literal(call.args[0]) if call.args else literal(kwarg(call, "name"))
                if isinstance(name, str):
                    out.append(Metric("", name, kind, [], src.path, call.lineno))
        if status is None and "attributes" in text:
            for _scope, nodes in by_scope(src.tree, (ast.Call, ast.Dict)):
                records = [n for n in nodes if type(n) is ast.Call and isinstance(n.func, ast.Attribute)
                           and n.func.attr in ("add", "record", "set") and kwarg(n, "attributes") is not None]
                if records and any(type(d) is ast.Dict and any(
                        isinstance(k, ast.Constant) and isinstance(k.value, str) and STATUS_LABEL.search(k.value)
                        for k in d.keys) for d in nodes):
                    status = f"{src.path}:{records[0].lineno}"
                    break
    return out, status


def _error_tracker(ctx) -> str | None:
    """``Sentry at file:line`` when an error tracker is set up (``sentry_sdk.init``,
    ``add_middleware(SentryAsgiMiddleware)``, ``rollbar.init`` ...)."""
    proj = Project.of(ctx)
    for src in ctx.layout.app_sources(ctx.index):
        if not any(v.split(".")[0] in TRACKERS for v in proj.imports.get(src.path, {}).values()):
            continue
        for call in of_type(src.tree, ast.Call):
            for ref in [call.func, *call.args[:1]]:
                top = proj.qualify(src, ref).split(".")[0]
                if top in TRACKERS:
                    return f"{TRACKERS[top]} at {src.path}:{call.lineno}"
    return None


def _otel_exporters(ctx) -> list[str]:
    """``file:line`` of OpenTelemetry's FastAPI instrumentation (request duration by route,
    method and status)."""
    proj, out = Project.of(ctx), []
    for src in ctx.layout.app_sources(ctx.index):
        if not any(v.startswith(OTEL_EXPORTER) for v in proj.imports.get(src.path, {}).values()):
            continue
        out += [f"{src.path}:{c.lineno}" for c in of_type(src.tree, ast.Call)
                if proj.qualify(src, c.func).startswith(OTEL_EXPORTER)]
    return out


WANTED = [  # (signal, what, severity, applies)
    ("requests", "request counter by route and method", Severity.WARNING, lambda ctx: True),
    ("errors", "5xx error counter (or a status label on the request counter)", Severity.WARNING, lambda ctx: True),
    ("email", "email send counter (success / error)", Severity.RECOMMENDATION, lambda ctx: bool(sends_mail(ctx))),
    ("webhook", "webhook event counter", Severity.RECOMMENDATION, _has_webhooks),
    ("heartbeat", "jobs heartbeat timestamp gauge", Severity.RECOMMENDATION, _has_jobs),
]


@check("OBS-004", "observability", "Useful metrics exist")
def useful_metrics(ctx):
    """Inventory of the app's metrics (prometheus_client definitions found through
    imports, and OpenTelemetry instruments ``meter.create_counter/histogram/...``, with
    file:line, as INFO) against what an operator needs: a request counter by route and
    method, a 5xx counter (or a status label: ``status``, ``status_code``,
    ``http_status``, ``code``...; for OpenTelemetry, a status key in the attributes of a
    metric record), email send success/error (when the app sends mail), webhook events
    (when it has webhook routes), a jobs heartbeat timestamp (when it has a jobs runner:
    apscheduler/arq/celery/rq..., a jobs/ or worker module, or a recorded heartbeat, see
    OBS-001). prometheus-fastapi-instrumentator, starlette-exporter and OpenTelemetry's
    ``FastAPIInstrumentor`` count requests by template, method and status by themselves.

    Why: without these, a failing email job, a webhook outage or a dead jobs runner is
    noticed by customers first. No metrics at all is one WARNING at the ``FastAPI()``
    call; a missing request or 5xx counter is a WARNING. With an error tracker set up
    (``sentry_sdk.init``, Sentry's ASGI middleware, Rollbar, Bugsnag...), unhandled
    errors are reported with their traces, so no metrics at all and a missing 5xx
    counter are RECOMMENDATIONs (rates and latency stay unmeasured, failures do not go
    unnoticed). Missing email / webhook / heartbeat metrics are RECOMMENDATIONs, at the
    first metric definition.
    Not flagged: signals the app has no use for (no mail, no webhooks, no jobs). Whether
    the metrics are actually exported is the live stage's part.
    """
    chk = useful_metrics.check
    otel, otel_status = _otel(ctx)
    found = [*metrics(ctx), *otel]
    exps = [(e.library, f"{e.src.path}:{e.call.lineno}") for e in exporters(ctx)]
    exps += [("OpenTelemetry FastAPIInstrumentor", where) for where in _otel_exporters(ctx)]
    tracker = _error_tracker(ctx)
    if not found and not exps:
        file, line = app_anchor(ctx)
        if tracker:
            yield chk.finding(ctx, Severity.RECOMMENDATION, "No application metrics",
                              "No Prometheus or OpenTelemetry metric and no request-metrics exporter was found. "
                              f"Unhandled errors go to {tracker} when it is configured, but request rates, latency "
                              "and job health are not measured: slow degradation and dead background work show up only "
                              "in user reports.",
                              "Add prometheus-fastapi-instrumentator (requests by route/method/status) plus "
                              "counters for email sends, webhook events and a jobs heartbeat gauge; expose /metrics "
                              "behind a token.", file, line, key="none")
        else:
            yield chk.finding(ctx, Severity.WARNING, "No application metrics",
                              "No Prometheus or OpenTelemetry metric, no request-metrics exporter and no error "
                              "tracker was found: request rates, 5xx errors, email and job failures are invisible "
                              "until users report them.",
                              "Add prometheus-fastapi-instrumentator (requests by route/method/status) plus counters "
                              "for email sends, webhook events and a jobs heartbeat gauge; expose /metrics behind a "
                              "token.", file, line, key="none")
        return
    have: dict[str, str] = {}
    for library, where in exps:
        have.setdefault("requests", f"{library} at {where}")
        have.setdefault("errors", f"{library} status label at {where}")
    for m in found:
        kinds = _kinds(m)
        if "requests" in kinds and not m.var and otel_status:  # OpenTelemetry: status among the attributes
            kinds.add("errors")
        for k in kinds:
            have.setdefault(k, f"{m.name or m.var} at {m.file}:{m.line}")
        yield chk.finding(ctx, Severity.INFO, f"{m.kind} `{m.name or m.var}`"
                          + (f" labels {', '.join(m.labels)}" if m.labels else ""),
                          f"Metric `{m.name}` ({m.kind}) provides: {', '.join(sorted(kinds)) or 'a custom signal'}.",
                          "", m.file, m.line, key=f"metric:{m.var}:{m.name}")
    file, line = (found[0].file, found[0].line) if found else exps[0][1].rsplit(":", 1)
    line = int(line)
    for signal, what, severity, applies in WANTED:
        if signal in have or not applies(ctx):
            continue
        gap = f"The app defines metrics ({len(found)} found) but none provides a {what}"
        if signal == "errors" and tracker:
            severity = Severity.RECOMMENDATION
            message = (f"{gap}; unhandled errors go to {tracker} when it is configured, but their rate is not "
                       "measured nor alerted on.")
        else:
            message = f"{gap}: that failure mode goes unnoticed until users report it."
        yield chk.finding(ctx, severity, f"No {what}", message,
                          f"Add a {what} (bounded labels only) and alert on it.", file, line, key=f"missing:{signal}")
