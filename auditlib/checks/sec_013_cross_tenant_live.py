"""SEC-013 confirmed live: one organisation's credentials reading another's objects."""
from __future__ import annotations

from ..findings import Severity
from . import check


@check("SEC-013", "security", "Cross-organisation access (live)", source="live")
def cross_tenant_live(ctx):
    """With two identities of different organisations configured
    (``[tool.auditlib.live] auth``), lists objects as each, then requests organisation B's
    object ids on every detail route with organisation A's credentials.

    Why: ID substitution (IDOR) lets any customer read other tenants' bookings, invoices or
    leads by changing a number in the URL.

    Severity: every 2xx that returns B's object to A is a BLOCKER at the route's handler.
    Whether the check could run (identities configured, routes probed) is INFO.

    Not flagged: 403/404 answers (correctly refused); routes whose list returned no ids;
    without two identities the confirmation is not attempted (the static SEC-013 still
    reports the code).
    """
    from ..stages.live import app_location, live_run, route_location

    chk = cross_tenant_live.check
    res = live_run(ctx)
    if not res.requested or res.error or res.boot_failure:
        return
    for hit in res.cross_org:
        r = hit["route"]
        yield chk.finding(ctx, Severity.BLOCKER, f"GET {r.path} returns another organisation's object",
                          f"As {hit['as']}, GET {hit['path']} (an object of {hit['owner']}) answered {hit['status']} "
                          "with the object: the handler does not check the caller's organisation.",
                          "Filter by the caller's org_id in the query (`.where(Model.org_id == user.org_id)`) "
                          "and answer 404 for other organisations' ids.", *route_location(ctx, res, r.path, "GET"),
                          routes=[{"method": "GET", "path": r.path}], key=f"idor:{r.path}")
    yield chk.finding(ctx, Severity.INFO, "Cross-organisation probe", res.smoke_note + (
        f"; {len(res.cross_org)} route(s) served another organisation's object." if res.cross_org else "."),
        "Configure two identities of different organisations in [tool.auditlib.live] auth to confirm tenant "
        "isolation live." if "not run" in res.smoke_note else "", *app_location(ctx), excerpt="", key="probe")
