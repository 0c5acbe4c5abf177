"""OBS-001 live: what /healthz and /readyz answer, and what the readiness handler checks."""
from __future__ import annotations

import re

from ..findings import Severity
from . import check

CHECKS = {"database": r"execute\(|SELECT 1|\.connect\(|ping|session|engine",
          "migration head": r"alembic|ScriptDirectory|MigrationContext|alembic_version|get_current_revision|heads?\(",
          "jobs heartbeat": r"heartbeat"}


@check("OBS-001", "observability", "Health and readiness endpoints (live)", source="live")
def health_live(ctx):
    """Requests the liveness (``/healthz``, ``/health``, ``/livez``) and readiness
    (``/readyz``, ``/ready``, ``/health/ready``) paths of the booted app (overridable:
    ``[tool.auditlib.live] health_paths`` / ``ready_paths``) and reads the handler that
    answered (database ping, migration head, jobs heartbeat) for comparison.

    Why: orchestrators restart or route traffic on these answers; a readiness probe that
    fails while the database is up keeps every replica out of rotation.

    Severity: an endpoint that exists but does not answer 2xx while the freshly migrated
    database is up is a WARNING at its handler. What answered, with its body and what the
    handler checks, is INFO.

    Not flagged: a missing endpoint or a readiness check that skips the migration head is
    the static OBS-001's (reported once, from the code).
    """
    from ..stages.live import (
        HEALTH_PATHS,
        READY_PATHS,
        app_location,
        handler_text,
        live_run,
        route_location,
    )

    chk = health_live.check
    res = live_run(ctx)
    if not res.requested or res.error or res.boot_failure:
        return
    cfg = ctx.config.get("live") or {}
    for kind, paths in (("liveness", cfg.get("health_paths", HEALTH_PATHS)),
                        ("readiness", cfg.get("ready_paths", READY_PATHS))):
        served = [(p, res.probes[p]) for p in paths if p in res.probes and res.probes[p].status not in (0, 404, 405)]
        if not served:
            yield chk.finding(ctx, Severity.INFO, f"No {kind} endpoint served ({', '.join(paths)})",
                              f"None of {', '.join(paths)} answered on the booted app.", "", *app_location(ctx),
                              excerpt="", key=f"absent:{kind}")
            continue
        path, resp = served[0]
        file, line = route_location(ctx, res, path, "GET")
        body = resp.body[:200].decode("utf-8", "replace")
        text = handler_text(ctx, file, line)
        checks = [name for name, rx in CHECKS.items() if re.search(rx, text)] if text else []
        reading = f" Its handler checks: {', '.join(checks) or 'nothing (a constant answer)'}." if text else ""
        if not resp.ok:
            yield chk.finding(ctx, Severity.WARNING, f"GET {path} answers {resp.status} with the database up",
                              f"The {kind} endpoint fails on a freshly migrated, reachable database ({body})."
                              + reading + " Orchestrators would keep the app out of rotation or restart it.",
                              "Reproduce locally against a migrated database and fix the probe's handler.",
                              file, line, routes=[{"method": "GET", "path": path}], key=f"failing:{path}")
        else:
            yield chk.finding(ctx, Severity.INFO, f"GET {path} answers {resp.status}", f"Body: {body}." + reading,
                              "", file, line, routes=[{"method": "GET", "path": path}], key=f"ok:{path}")
