"""The findings model: fingerprints, verdict rule, counts, redaction of excerpts."""
from __future__ import annotations

from auditlib.findings import (
    Finding,
    Location,
    Severity,
    Verdict,
    assign_fingerprints,
    counts,
    not_verified,
    verdict,
)
from auditlib.redact import redact_text


def f(check="FUNC-002", sev="WARNING", file="app/a.py", line=3, excerpt="# FIXME: x", key=""):
    return Finding(check=check, area="functional", severity=sev, title="t", message="m",
                   locations=[Location(file, line, line, excerpt)], key=key)


def test_fingerprint_ignores_line_shifts_but_not_content():
    a = assign_fingerprints([f(line=3)])[0].fingerprint
    b = assign_fingerprints([f(line=40)])[0].fingerprint
    c = assign_fingerprints([f(excerpt="# FIXME: y")])[0].fingerprint
    d = assign_fingerprints([f(file="app/b.py")])[0].fingerprint
    assert a == b and len({a, c, d}) == 3


def test_identical_problems_in_one_file_get_distinct_stable_ids():
    first = [x.fingerprint for x in assign_fingerprints([f(line=3), f(line=9)])]
    shifted = [x.fingerprint for x in assign_fingerprints([f(line=5), f(line=11)])]
    assert len(set(first)) == 2 and first == shifted


def test_verdict_rule():
    assert verdict([]) == Verdict.READY
    assert verdict([f(sev="RECOMMENDATION"), f(sev="INFO")]) == Verdict.READY
    assert verdict([f(sev="WARNING")]) == Verdict.READY_WITH_CONDITIONS
    assert verdict([f(sev="WARNING"), f(sev="BLOCKER")]) == Verdict.NOT_READY
    assert counts([f(sev="BLOCKER"), f(sev="BLOCKER"), f(sev="INFO")]) == {
        "BLOCKER": 2, "WARNING": 0, "RECOMMENDATION": 0, "INFO": 1}


def test_not_verified_is_a_warning_with_a_location():
    nv = not_verified("DEP-002", "deployment", "migrations", "no PostgreSQL", source="db")
    assert nv.severity == Severity.WARNING and nv.message == "not verified: no PostgreSQL"
    assert nv.locations and nv.source == "db"


def test_round_trip_keeps_the_contract_names():
    d = assign_fingerprints([f()])[0].to_dict()
    assert list(d) == ["fingerprint", "check", "area", "severity", "title", "message", "fix", "source",
                       "locations", "routes", "tables", "settings"]
    assert list(d["locations"][0]) == ["file", "line", "end_line", "excerpt"]
    assert Finding.from_dict(d).to_dict() == d


def test_redaction_of_excerpts():
    cases = {
        'STRIPE_SECRET_KEY=sk_live_51FAKEdemoKEYnotREAL0000000000': "STRIPE_SECRET_KEY=sk_live_****",
        'url = "postgresql://app:hunter2@db/app"': 'url = "postgresql://app:***@db/app"',
        'api_key: str = Field("abcd1234efgh")': 'api_key: str = Field("ab****")',
        "SMTP_PASSWORD=hunter22": "SMTP_PASSWORD=hu****",
        "ADMIN_PASSWORD=<set-me>": "ADMIN_PASSWORD=<set-me>",
        'password = os.environ["X"]': 'password = os.environ["X"]',
    }
    for raw, want in cases.items():
        assert redact_text(raw) == want
