"""OBS-004: the metrics an operator needs exist (requests, 5xx, email, webhooks, heartbeat)."""
from __future__ import annotations

import re

from ..facts.email_model import sends_mail
from ..findings import Severity
from ..facts.metrics_model import exporters, metrics
from ..code.pyresolve import Project
from ..facts.routes import app_anchor, mounted_apps, source_routes
from . import check

JOB_LIBS = re.compile(r"^(apscheduler|arq|celery|rq|dramatiq|taskiq|huey|saq)\b")
ROUTE_LABELS = {"path", "route", "endpoint", "handler", "template", "path_template"}
STATUS_LABELS = {"status", "status_code", "code", "status_class"}


def _is(m, rx: str) -> bool:
    return bool(re.search(rx, f"{m.name} {m.var}", re.I))


def _kinds(m) -> set[str]:
    """Which of the useful signals metric ``m`` provides."""
    labels = {lb.lower() for lb in m.labels}
    out = set()
    if m.kind in ("Counter", "Histogram", "Summary") and (
            _is(m, r"request") or ("method" in labels and labels & ROUTE_LABELS)):
        out.add("requests")
        if labels & STATUS_LABELS:
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
        if re.search(r"(^|/)(jobs|workers?|scheduler)(/|\.py$)", src.path) or re.search(r"heartbeat", src.text or "", re.I):
            return True
    return False


def _has_webhooks(ctx) -> bool:
    return any("webhook" in r.path.lower() for r in [*source_routes(ctx), *mounted_apps(ctx)]) or any(
        "construct_event" in (s.text or "") for s in ctx.layout.app_sources(ctx.index))


WANTED = [  # (signal, what, severity, applies)
    ("requests", "request counter by route and method", Severity.WARNING, lambda ctx: True),
    ("errors", "5xx error counter (or a status label on the request counter)", Severity.WARNING, lambda ctx: True),
    ("email", "email send counter (success / error)", Severity.RECOMMENDATION, lambda ctx: bool(sends_mail(ctx))),
    ("webhook", "webhook event counter", Severity.RECOMMENDATION, _has_webhooks),
    ("heartbeat", "jobs heartbeat timestamp gauge", Severity.RECOMMENDATION, _has_jobs),
]


@check("OBS-004", "observability", "Useful metrics exist")
def useful_metrics(ctx):
    """Inventory of the app's Prometheus metrics (prometheus_client definitions found
    through imports, with file:line, as INFO) against what an operator needs: a request
    counter by route and method, a 5xx counter (or a status label), email send
    success/error (when the app sends mail), webhook events (when it has webhook routes),
    a jobs heartbeat timestamp (when it has a jobs runner: apscheduler/arq/celery/rq...,
    a jobs/ or worker module, or a heartbeat). prometheus-fastapi-instrumentator and
    starlette-exporter count requests by template, method and status by themselves.

    Why: without these, a failing email job, a webhook outage or a dead jobs runner is
    noticed by customers first. No metrics at all is one WARNING at the ``FastAPI()`` call;
    a missing request or 5xx counter is a WARNING; missing email / webhook / heartbeat
    metrics are RECOMMENDATIONs, at the first metric definition.
    Not flagged: signals the app has no use for (no mail, no webhooks, no jobs). Whether
    the metrics are actually exported is the live stage's part.
    """
    chk = useful_metrics.check
    found = metrics(ctx)
    exps = exporters(ctx)
    if not found and not exps:
        file, line = app_anchor(ctx)
        yield chk.finding(ctx, Severity.WARNING, "No application metrics",
                          "No prometheus_client metric and no request-metrics exporter was found: request rates, "
                          "5xx errors, email and job failures are invisible until users report them.",
                          "Add prometheus-fastapi-instrumentator (requests by route/method/status) plus counters "
                          "for email sends, webhook events and a jobs heartbeat gauge; expose /metrics behind a token.",
                          file, line, key="none")
        return
    have: dict[str, str] = {}
    for e in exps:
        have.setdefault("requests", f"{e.library} at {e.src.path}:{e.call.lineno}")
        have.setdefault("errors", f"{e.library} status label at {e.src.path}:{e.call.lineno}")
    for m in found:
        kinds = _kinds(m)
        for k in kinds:
            have.setdefault(k, f"{m.name or m.var} at {m.file}:{m.line}")
        yield chk.finding(ctx, Severity.INFO, f"{m.kind} `{m.name or m.var}`"
                          + (f" labels {', '.join(m.labels)}" if m.labels else ""),
                          f"Metric `{m.name}` ({m.kind}) provides: {', '.join(sorted(kinds)) or 'a custom signal'}.",
                          "", m.file, m.line, key=f"metric:{m.var}:{m.name}")
    file, line = (found[0].file, found[0].line) if found else (exps[0].src.path, exps[0].call.lineno)
    for signal, what, severity, applies in WANTED:
        if signal in have or not applies(ctx):
            continue
        yield chk.finding(ctx, severity, f"No {what}",
                          f"The app defines metrics ({len(found)} found) but none provides a {what}: that failure "
                          "mode goes unnoticed until users report it.",
                          f"Add a {what} (bounded labels only) and alert on it.", file, line, key=f"missing:{signal}")
