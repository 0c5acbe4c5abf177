"""TEST-004: negative security tests exist."""
from __future__ import annotations

from ..findings import Severity, not_verified
from ..facts.profile_data import ProfileError
from ..facts.scenarios import coverage
from . import check


@check("TEST-004", "testing", "Negative security tests")
def negative_security_tests(ctx):
    """Tests that prove refusals: another organisation's leads / bookings / invoices
    are refused, a worker cannot see other teams' jobs, the rate limit answers 429
    after N requests. A test counts when its words say so (``other org``, ``another
    tenant``, ``other team``, ``rate limit``... in its name, docstring, fixtures or body),
    it names the resource, and it compares the response status with 403/404 (429 for
    the rate limit).

    Why: isolation bugs (IDOR) are invisible to happy-path tests; only a test that
    logs in as org A and asks for org B's record proves the refusal.
    Severity (data): WARNING for tenant and team isolation, RECOMMENDATION for the rate
    limit; pointed at the route that serves the resource. Not flagged: resources the
    app does not have or serves only through routes that take the org id as a path
    parameter (cross-org by design, e.g. a platform admin), and apps without a rate
    limiter (SEC-005 reports that). Passing tests are INFO.
    """
    chk = negative_security_tests.check
    try:
        rows, where = coverage(ctx, "negative")
    except ProfileError as exc:
        yield not_verified(chk.id, chk.area, "negative security tests", str(exc))
        return
    for c in rows:
        if c.needed_by is None:
            continue
        ev = c.needed_by
        statuses = "/".join(str(s) for s in c.spec.get("statuses", []))
        if c.tests:
            t = c.tests[0]
            yield chk.finding(ctx, Severity.INFO, f"Negative test: {c.title}",
                              f"Covered by {', '.join(x.label for x in c.tests[:5])}.", "", t.file, t.line, key=c.id)
            continue
        yield chk.finding(
            ctx, c.spec.get("severity", "WARNING"), f"No negative test: {c.title}",
            f"`{ev.name}` ({ev.where}) serves this resource, but no test asserts a {statuses} refusal for it "
            f"(looked for tests naming `{c.spec.get('resource', '')}` with one of: "
            f"{', '.join(c.spec.get('tests', [])[:5])}; scenarios from {where}).",
            "Add a test that authenticates as one tenant (or worker) and requests another's record by id, "
            f"asserting {statuses}; for the rate limit, send N+1 requests and assert 429.",
            ev.file, ev.line, key=c.id)
