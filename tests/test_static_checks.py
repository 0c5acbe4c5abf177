"""Every static check against the annotated fixture targets, compared at line level
both ways: each annotated line must be found, and nothing else may be."""
from __future__ import annotations

from pathlib import Path

import pytest

from expectations import expected_findings
from auditlib.checks import checks_for, run_checks
from auditlib.target.context import AuditContext
from auditlib.findings import Severity

REPO = Path(__file__).resolve().parent.parent
TARGETS = REPO / "tests" / "fixtures" / "targets"

# Findings that have no line to carry an annotation (a file that does not exist).
NO_TESTS = {("TEST-003", ".", None)}
UNANNOTATABLE = {
    # broken_app imports no SQL library: the database checks say "not applicable" (INFO)
    "broken_app": {("DEP-004", ".", None), ("DOC-001", "README.md", None)} | NO_TESTS,
    "alembic_broken": {("DEP-004", ".", None), ("DOC-001", "README.md", None), ("REL-001", ".", None),
                       ("SEC-010", ".", None)} | NO_TESTS,
    "clean_app": NO_TESTS,
}
# Annotated findings that only the db / tests stages produce (the CLI test checks them).
NOT_STATIC = {
    "bookly": {("DEP-008", "alembic/versions/0002_invoices.py", 42),
               ("PERF-001", "alembic/versions/0001_initial.py", 46),
               ("PERF-001", "alembic/versions/0001_initial.py", 64),
               ("TEST-001", "tests/test_bookings.py", 29), ("TEST-001", "tests/test_bookings.py", 70)},
}
CASES = {
    "bookly": REPO / "examples" / "bookly",
    "clean_app": TARGETS / "clean_app",
    "broken_app": TARGETS / "broken_app",
    "alembic_broken": TARGETS / "alembic_broken",
}


def static_findings(root: Path, tmp_path: Path):
    ctx = AuditContext.open(root, tmp_path)
    return [f for f in run_checks(ctx) if f.source == "static" and f.severity != Severity.INFO]


@pytest.mark.parametrize("name", sorted(CASES))
def test_findings_match_annotations(name, tmp_path, monkeypatch):
    root = CASES[name]
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    found = {(f.check, f.locations[0].file, f.locations[0].line) for f in static_findings(root, tmp_path)}
    assert list(cwd.iterdir()) == [], "a check wrote into the working directory"
    expected = (expected_findings(root) | UNANNOTATABLE.get(name, set())) - NOT_STATIC.get(name, set())
    assert sorted(found - expected, key=str) == [], "unexpected findings"
    assert sorted(expected - found, key=str) == [], "missed findings"


def test_clean_twin_has_no_blocker(tmp_path):
    bad = [f for f in static_findings(CASES["clean_app"], tmp_path) if f.severity == Severity.BLOCKER]
    assert bad == []


def test_demo_planted_severities(tmp_path):
    sev = {(f.check, f.locations[0].file, f.locations[0].line, f.title): f.severity.value
           for f in static_findings(CASES["bookly"], tmp_path)}
    blockers = sorted((c, fi, ln) for (c, fi, ln, _t), s in sev.items() if s == "BLOCKER")
    assert blockers == [("SEC-001", "app/settings.py", 18), ("SEC-004", "app/api/routes_admin.py", 24),
                        ("SEC-030", ".env.example", 18)]


def test_every_check_is_documented():
    for chk in checks_for():
        assert chk.doc, f"{chk.id} has no docstring"
        assert chk.func.__module__.split(".")[-1].startswith(chk.id.lower().replace("-", "_")), \
            f"{chk.id} lives in {chk.func.__module__}: the module must be named after the id"


def test_crashing_check_becomes_not_verified_warning(tmp_path, monkeypatch):
    from auditlib import checks

    chk = checks.REGISTRY["FUNC-002"]

    def boom(ctx):
        raise RuntimeError("synthetic failure")
        yield  # pragma: no cover

    monkeypatch.setattr(chk, "func", boom)
    ctx = AuditContext.open(CASES["bookly"], tmp_path)
    out = checks.run_checks(ctx, ids=["FUNC-002"])
    assert [(f.check, f.severity.value) for f in out] == [("FUNC-002", "WARNING")]
    assert out[0].message.startswith("not verified: the check crashed: RuntimeError: synthetic failure")
