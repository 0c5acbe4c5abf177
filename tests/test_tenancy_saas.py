"""Issue 14: tenant-isolation verdicts on ``tests/fixtures/saas_app``, a production-shaped
multi-tenant SaaS (middleware-set request state, worker / client / public / admin /
platform / API-key portals, repository objects, filters built as data, a debug-only org
override, signed webhooks and capability links). Every route is annotated with its
expected verdict (``# route: METHOD PATH verdict=V``) and every finding line with
``# expect: ID`` (``(blocker)`` marks BLOCKERs); the tests compare both ways and print
the BLOCKER precision and recall."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
from expectations import expected_findings

from auditlib.checks import run_checks
from auditlib.facts.routes import route_inventory
from auditlib.findings import Severity
from auditlib.target.context import AuditContext
from auditlib.tenancy.scoping import VERDICTS, endpoint_verdicts

REPO = Path(__file__).resolve().parent.parent
SAAS_APP = REPO / "tests" / "fixtures" / "saas_app"
IDS = ["SEC-006", "SEC-011", "SEC-012", "SEC-013"]
ROUTE = re.compile(r"#\s*route:\s*(\S+)\s+(\S+)\s+verdict=(\S+)")
from test_security_core import VERDICT_NAMES as NAMES  # noqa: E402


def annotated(root: Path) -> dict[tuple[str, str], str]:
    out = {}
    for path in sorted(root.rglob("*.py")):
        for line in path.read_text().splitlines():
            if m := ROUTE.search(line):
                out[(m.group(1), m.group(2))] = NAMES.get(m.group(3), m.group(3))
    return out


def annotated_blockers(root: Path) -> set[tuple[str, str, int]]:
    out = set()
    for path in sorted(root.rglob("*.py")):
        for n, line in enumerate(path.read_text().splitlines(), 1):
            if m := re.search(r"expect:\s*([A-Z]+-\d{3})\s*\(blocker\)", line):
                out.add((m.group(1), path.relative_to(root).as_posix(), n))
    return out


@pytest.fixture(scope="module")
def saas_ctx(tmp_path_factory):
    return AuditContext.open(SAAS_APP, tmp_path_factory.mktemp("out"))


def test_fixture_is_production_shaped(saas_ctx):
    expected = annotated(SAAS_APP)
    assert len(expected) >= 60
    assert set(expected.values()) <= set(VERDICTS)
    found = {("|".join(r.methods), r.path) for r in route_inventory(saas_ctx)}
    assert found == set(expected)


def test_every_route_verdict(saas_ctx):
    expected = annotated(SAAS_APP)
    got = {("|".join(v.route.methods), v.route.path): v.verdict for v in endpoint_verdicts(saas_ctx)}
    wrong = {k: (expected[k], got.get(k)) for k in expected if got.get(k) != expected[k]}
    print(f"verdicts: {len(expected) - len(wrong)} of {len(expected)} routes as annotated")
    for (m, p), (e, g) in sorted(wrong.items()):
        print(f"  {m} {p}: expected {e}, got {g}")
    assert wrong == {}


def test_every_verdict_has_evidence(saas_ctx):
    for v in endpoint_verdicts(saas_ctx):
        assert v.reason, v.route.key
        if v.verdict not in ("no tenant data",):
            assert v.evidence, v.route.key


def test_findings_and_blocker_precision_recall(saas_ctx):
    findings = [f for f in run_checks(saas_ctx, ids=IDS, source="static") if f.severity != Severity.INFO]
    found = {(f.check, f.locations[0].file, f.locations[0].line) for f in findings}
    expected = {e for e in expected_findings(SAAS_APP) if e[0] in IDS}
    blockers = {(f.check, f.locations[0].file, f.locations[0].line) for f in findings
                if f.severity == Severity.BLOCKER}
    exp_blockers = annotated_blockers(SAAS_APP)
    tp = len(blockers & exp_blockers)
    precision = tp / len(blockers) if blockers else 1.0
    recall = tp / len(exp_blockers) if exp_blockers else 1.0
    print(f"tenant BLOCKERs: {len(blockers)} reported, {len(exp_blockers)} expected, "
          f"precision {precision:.0%} recall {recall:.0%}")
    for x in sorted(blockers - exp_blockers):
        print("  false BLOCKER", x)
    for x in sorted(exp_blockers - blockers):
        print("  missed BLOCKER", x)
    assert sorted(found - expected) == [], "unexpected findings"
    assert sorted(expected - found) == [], "missed findings"
    assert precision == recall == 1.0


def test_one_finding_per_defect(saas_ctx):
    """A defect is reported once: by SEC-011 at its query (every route reaching it in
    ``routes``), never again by SEC-013 per endpoint."""
    findings = [f for f in run_checks(saas_ctx, ids=IDS, source="static") if f.severity != Severity.INFO]
    assert not [f for f in findings if f.check == "SEC-013"]
    by_loc = {}
    for f in findings:
        by_loc.setdefault((f.locations[0].file, f.locations[0].line), []).append(f.check)
    assert all(len(v) == 1 for v in by_loc.values()), by_loc
    billing = next(f for f in findings if f.locations[0].file == "app/services/billing.py")
    assert billing.routes == [{"method": "POST", "path": "/api/admin/billing/run"}]  # not the ops route


def test_tenant_app_blockers_are_exactly_the_annotated_ones(tmp_path):
    """The older fixture keeps its BLOCKERs (``(blocker)`` after the expectation), no more, no fewer."""
    root = REPO / "tests" / "fixtures" / "tenant_app"
    ctx = AuditContext.open(root, tmp_path)
    blockers = {(f.check, f.locations[0].file, f.locations[0].line)
                for f in run_checks(ctx, ids=IDS, source="static") if f.severity == Severity.BLOCKER}
    expected = annotated_blockers(root)
    assert {b for b in blockers if b[0] == "SEC-011"} == expected
