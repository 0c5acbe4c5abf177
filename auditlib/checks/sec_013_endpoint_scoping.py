"""SEC-013: per-endpoint tenant scoping verdict."""
from __future__ import annotations

from collections import Counter

from ..findings import Severity
from ..facts.orm_schema import cap_inferred
from ..tenancy.scoping import endpoint_verdicts
from . import check


@check("SEC-013", "security", "Per-endpoint tenant scoping verdict")
def endpoint_scoping(ctx):
    """For every route, the roll-up of the data accesses it reaches (see SEC-011):
    **scoped**, **unscoped** (which query, which table, the call chain), **id-substitution**
    (a request-supplied id or org loads a tenant row with no org check: IDOR), **unknown**
    (the org value's origin could not be decided), **no tenant data**, or **cross-tenant
    (platform)** for platform-operator routes.

    Why: an auditor needs the answer per endpoint: can a caller of org A read or change
    org B's data by substituting an id? Severity: id-substitution and unscoped on an
    authenticated tenant route are BLOCKERs (cross-tenant maintenance actions included),
    at the route's decorator; on an unauthenticated route a WARNING (confirm the data is
    meant to be public); unknown is a WARNING; one INFO counts verdicts. The full table
    is in the security notebook.
    """
    chk = endpoint_scoping.check
    verdicts = endpoint_verdicts(ctx)
    if not verdicts:
        return
    for v in verdicts:
        r = v.route
        if v.verdict not in ("unscoped", "id-substitution", "unknown"):
            continue
        authed = r.auth != "none"
        sev, caveat = cap_inferred(ctx, Severity.BLOCKER if authed and v.verdict != "unknown" else Severity.WARNING)
        label = {"id-substitution": "ID substitution (IDOR)", "unscoped": "unscoped tenant data",
                 "unknown": "tenant scoping undecided"}[v.verdict]
        yield chk.finding(
            ctx, sev, f"{' '.join(r.methods)} {r.path}: {label}",
            f"{v.reason}. Call chain: {v.evidence}."
            + ("" if authed else " The route is unauthenticated: anyone can call it.") + caveat,
            "Take the org from the authenticated identity and constrain every query of this endpoint with it "
            "(or load by id and compare the row's org to the caller's before use); add a test where a user "
            "of another org gets 404.", r.file, r.line, routes=r.as_dicts())
    c = Counter(v.verdict for v in verdicts)
    first = verdicts[0].route
    yield chk.finding(ctx, Severity.INFO, f"Tenant scoping of {len(verdicts)} routes: "
                      + ", ".join(f"{n} {k}" for k, n in c.most_common()),
                      "Per-endpoint verdicts; the security notebook shows the table.", "",
                      first.file, first.line, key="summary")
