"""Issue 14, calibration on real code: tenancy idioms of argilla-server, dstack, fief and letta
reproduced in ``tests/fixtures/tenant_patterns`` (safe and unsafe variant of each; the table
is in its README). Every route is annotated ``# route: METHOD PATH verdict=V auth=A`` and
every BLOCKER line ``# expect: SEC-011 (blocker)``."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
from test_security_core import VERDICT_NAMES as NAMES
from test_tenancy_saas import annotated_blockers

from auditlib.checks import run_checks
from auditlib.facts.routes import route_inventory
from auditlib.findings import Severity
from auditlib.target.context import AuditContext
from auditlib.tenancy.scoping import endpoint_verdicts

ROOT = Path(__file__).resolve().parent / "fixtures" / "tenant_patterns"
ROUTE = re.compile(r"#\s*route:\s*(\S+)\s+(\S+)\s+verdict=(\S+)\s+auth=(\S+)")


def annotated() -> dict[tuple[str, str], tuple[str, str]]:
    out = {}
    for path in sorted(ROOT.rglob("*.py")):
        for line in path.read_text().splitlines():
            if m := ROUTE.search(line):
                out[(m.group(1), m.group(2))] = (NAMES.get(m.group(3), m.group(3)), m.group(4))
    return out


@pytest.fixture(scope="module")
def ctx(tmp_path_factory):
    return AuditContext.open(ROOT, tmp_path_factory.mktemp("out"))


def test_every_route_verdict_and_auth(ctx):
    expected = annotated()
    assert len(expected) >= 20
    assert {("|".join(r.methods), r.path) for r in route_inventory(ctx)} == set(expected)
    got = {("|".join(v.route.methods), v.route.path): (v.verdict, v.route.auth) for v in endpoint_verdicts(ctx)}
    wrong = {k: (e, got.get(k)) for k, e in expected.items() if got.get(k) != e}
    for (m, p), (e, g) in sorted(wrong.items()):
        print(f"  {m} {p}: expected {e}, got {g}")
    assert wrong == {}


def test_blockers_are_exactly_the_annotated_ones(ctx):
    findings = run_checks(ctx, ids=["SEC-011", "SEC-012", "SEC-013"], source="static")
    blockers = {(f.check, f.locations[0].file, f.locations[0].line) for f in findings if f.severity == Severity.BLOCKER}
    expected = annotated_blockers(ROOT)
    print("false:", sorted(blockers - expected), "missed:", sorted(expected - blockers))
    assert blockers == expected
