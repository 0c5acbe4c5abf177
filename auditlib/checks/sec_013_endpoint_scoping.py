"""SEC-013: per-endpoint tenant scoping verdicts (the table; defects are SEC-011's)."""
from __future__ import annotations

from collections import Counter

from ..findings import Severity
from ..tenancy.scoping import endpoint_verdicts
from . import check


@check("SEC-013", "security", "Per-endpoint tenant scoping verdict")
def endpoint_scoping(ctx):
    """For every route, the roll-up of the data accesses it reaches, each with evidence
    (query, table, call chain): **scoped (org)**, **scoped (owner)** (constrained to the
    caller's own id), **capability token** (a signed token or an unguessable token
    column), **signed webhook** (a signature-verified payload), **platform**
    (cross-tenant by design, behind a platform-operator credential), **no tenant data**
    (login / session plumbing included), **unscoped**, **id-substitution** (a
    request-supplied id loads another org's row: IDOR), **test-only bypass** (the org
    comes from the request only under a debug flag, see SEC-012), **unknown** (the org
    value's origin could not be decided, or the endpoint's only tenant queries are keyed by
    ids the code holds whose origin was not traced).

    Why: an auditor needs the answer per endpoint: can a caller of org A read or change
    org B's data by substituting an id? The full table is in the security notebook and
    the report. Severity: one INFO counting verdicts. The defects themselves are
    reported once each by SEC-011 at the query (or helper) every affected route reaches,
    with all those routes, so that one defect is never two findings.
    """
    chk = endpoint_scoping.check
    verdicts = endpoint_verdicts(ctx)
    if not verdicts:
        return
    c = Counter(v.verdict for v in verdicts)
    first = verdicts[0].route
    bad = [v for v in verdicts if v.verdict in ("unscoped", "id-substitution", "unknown")]
    yield chk.finding(ctx, Severity.INFO, f"Tenant scoping of {len(verdicts)} routes: "
                      + ", ".join(f"{n} {k}" for k, n in c.most_common()),
                      "Per-endpoint verdicts; the security notebook shows the table."
                      + (f" The {len(bad)} endpoint(s) reaching an unscoped query are listed in SEC-011's findings, "
                         "one per query." if bad else ""), "",
                      first.file, first.line, key="summary")
