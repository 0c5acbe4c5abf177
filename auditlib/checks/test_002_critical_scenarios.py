"""TEST-002: critical scenarios have tests."""
from __future__ import annotations

from ..findings import Severity, not_verified
from ..facts.profile_data import ProfileError
from ..facts.scenarios import coverage
from ..facts.test_model import test_functions
from . import check


@check("TEST-002", "testing", "Critical scenarios have tests")
def critical_scenarios(ctx):
    """For each critical scenario of the profile (tenant isolation, bearer/JWT, HTTP
    Basic and magic-link auth, payment webhook signature validation, rate limiting,
    email de-duplication, storage, booking lifecycle, referral credits), whether the
    application has the feature (imports, calls, names, tenant column) and whether a
    test covers it (test names, docstrings, the identifiers and strings they use).

    Why: these are the paths where a regression leaks data, lets forged requests in or
    charges customers twice; without a test, a refactor breaks them silently.
    Severity per scenario (data): WARNING for tenant isolation, authentication and
    webhook signatures, RECOMMENDATION for the rest; pointed at the application code
    that makes the scenario relevant. Covered scenarios are INFO with their tests.
    Not flagged: scenarios whose feature the app does not have (no Stripe code: no
    webhook test needed); each scenario separately when the project has no test at all
    (one defect, TEST-003's WARNING; here one INFO lists the scenarios). Matching is by words, so a test is credited by what it says
    it tests; whether it asserts the right thing is for a reviewer.
    """
    chk = critical_scenarios.check
    try:
        rows, where = coverage(ctx, "scenario")
    except ProfileError as exc:
        yield not_verified(chk.id, chk.area, "critical test scenarios", str(exc))
        return
    if not test_functions(ctx):  # no suite at all: one defect, TEST-003's; listed here once
        needed = [c for c in rows if c.needed_by is not None]
        if needed:
            ev = needed[0].needed_by
            yield chk.finding(ctx, Severity.INFO, f"No test suite: {len(needed)} critical scenarios untested",
                              "No test was found at all (TEST-003 reports it); these scenarios are relevant here "
                              "and will need tests: " + "; ".join(f"{c.title} ({c.needed_by.where})" for c in needed)
                              + ".", "Start the suite with these scenarios.", ev.file, ev.line, key="no-suite")
        return
    for c in rows:
        if c.needed_by is None:
            continue
        ev = c.needed_by
        if c.tests:
            t = c.tests[0]
            names = ", ".join(x.label for x in c.tests[:5]) + (" ..." if len(c.tests) > 5 else "")
            yield chk.finding(ctx, Severity.INFO, f"Tested: {c.title}",
                              f"Needed because of `{ev.name}` ({ev.where}); covered by {names}.", "",
                              t.file, t.line, key=c.id)
            continue
        yield chk.finding(
            ctx, c.spec.get("severity", "RECOMMENDATION"), f"No test for: {c.title}",
            f"The scenario is relevant here (`{ev.name}` at {ev.where}) but no test's name, docstring or "
            f"body mentions it (looked for: {', '.join(c.spec.get('tests', [])[:6])}; scenarios from {where}). "
            "A regression here would reach production unnoticed.",
            f"Add a test for {c.title.lower()} (e.g. `tests/test_{c.id.replace('-', '_')}.py`) that exercises "
            "the feature through the API and asserts the refusal / outcome.",
            ev.file, ev.line, key=c.id)
