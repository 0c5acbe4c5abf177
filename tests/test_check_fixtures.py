"""Each check against its own annotated fixture cases, semgrep-style.

``tests/fixtures/checks/<CHECK-ID>/<case>/`` is a small target tree; its files mark the
lines where that check must report with ``# expect: <CHECK-ID>`` (or
``expect-next-line:``), and safe variants with ``# ok: <CHECK-ID>`` (documentation only:
any unannotated line must stay silent). The check runs alone on the case; found and
expected (file, line) sets must be equal, both ways.
"""
from __future__ import annotations

from pathlib import Path

import pytest

from expectations import expected_findings
from auditlib.checks import run_checks
from auditlib.target.context import AuditContext

ROOT = Path(__file__).resolve().parent / "fixtures" / "checks"
CASES = sorted(p for p in ROOT.glob("*/*") if p.is_dir())


@pytest.mark.parametrize("case", CASES, ids=[f"{p.parent.name}/{p.name}" for p in CASES])
def test_check_on_its_fixture(case, tmp_path):
    check_id = case.parent.name
    ctx = AuditContext.open(case, tmp_path)
    found = {(f.locations[0].file, f.locations[0].line)
             for f in run_checks(ctx, ids=[check_id], source="static")
             if f.check == check_id and f.severity.value != "INFO"}
    expected = {(file, line) for cid, file, line in expected_findings(case) if cid == check_id}
    assert sorted(found - expected, key=str) == [], "unexpected findings"
    assert sorted(expected - found, key=str) == [], "missed findings"
