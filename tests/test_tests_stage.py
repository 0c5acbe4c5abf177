"""The tests stage: the target's own suite run for real (target interpreter = ours, real
embedded PostgreSQL), exact findings, and the discovery of the project's test command."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

from expectations import expected_findings
from auditlib.checks import run_checks
from auditlib.target.context import AuditContext
from auditlib.stages import tests_stage
from auditlib.stages.test_command import discover_test_command, masked_env, pytest_args

REPO = Path(__file__).resolve().parent.parent
DEMO = REPO / "examples" / "bookly"
APPS = REPO / "tests" / "fixtures" / "apps"


def tree(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


def stage(target: Path, tmp_path: Path, pg=None, tests=True, target_python=sys.executable):
    ctx = AuditContext.open(target, tmp_path / "out", db=pg.url(driver="") if pg else "none",
                            target_python=target_python)
    tests_stage.configure(ctx, tests)
    return ctx, run_checks(ctx, source="tests")


def located(findings, ids=None):
    return {(f.check, f.locations[0].file, f.locations[0].line) for f in findings
            if f.severity.value != "INFO" and (ids is None or f.check in ids)}


def test_demo_suite_reports_the_planted_failure_and_skip(pg, tmp_path):
    before = tree(DEMO)
    ctx, findings = stage(DEMO, tmp_path, pg)
    assert tree(DEMO) == before, "the tests stage wrote into the audited tree"
    # the tests stage reports TEST-001 (TEST-002/003/004 on the demo are static findings)
    assert located(findings) == {x for x in expected_findings(DEMO) if x[0] == "TEST-001"}
    sev = {f.title: f.severity.value for f in findings}
    assert sev["Failing test: tests/test_bookings.py::test_short_weekend_visit_pays_minimum_plus_surcharge"] == "BLOCKER"
    assert sev["Skipped test: tests/test_bookings.py::test_invoice_payment_webhook_marks_invoice_paid"] == "RECOMMENDATION"
    assert sev["The test suite used PostgreSQL"] == "INFO"  # test_readyz reached the throwaway database
    run = tests_stage.suite_run(ctx)
    stats = run.stats()
    assert (stats["tests_passed"], stats["tests_failed"], stats["tests_skipped"]) == (18, 1, 1)
    assert stats["coverage"] > 50 and stats["stage_tests"].startswith("ran: 18 passed, 1 failed, 1 skipped")
    summary = next(f for f in findings if f.title.startswith("Test suite:"))
    assert "default `python -m pytest`" in summary.message and "--junitxml" in summary.message
    assert (ctx.out_dir / "logs" / "tests.log").is_file()


def test_circular_import_app_has_a_green_suite(pg, tmp_path):
    _, findings = stage(APPS / "circular_boot", tmp_path, pg)
    assert located(findings) == set()
    assert "Test suite: 1 passed, 0 failed, 0 skipped" in {f.title for f in findings}
    assert "The application uses no database" in {f.title for f in findings}


def test_sqlite_only_suite(pg, tmp_path):
    _, findings = stage(APPS / "pg_only", tmp_path, pg)
    assert located(findings) == {x for x in expected_findings(APPS / "pg_only") if x[0].startswith("TEST-")}


def test_not_requested_is_one_info(tmp_path):
    _, findings = stage(DEMO, tmp_path, tests=False)
    assert [(f.check, f.severity.value, f.title) for f in findings] == [
        ("TEST-001", "INFO", "Test suite not run (the tests stage was not requested)")]


def test_no_target_environment_is_not_verified(tmp_path):
    _, findings = stage(DEMO, tmp_path, target_python=None)
    assert [(f.check, f.severity.value, f.message) for f in findings] == [
        ("TEST-001", "WARNING", "not verified: no target environment: pass --target-python PATH or --provision")]


@pytest.mark.parametrize("line, args", [
    ("pytest -q tests/unit --cov=app --cov-report=xml", ["-q", "tests/unit"]),
    ("python -m pytest -m 'not slow' -n 4 && coverage xml", ["-m", "not slow"]),
    ("poetry run pytest {posargs} --timeout 30", []),
    ("echo hi", None),
])
def test_pytest_args(line, args):
    assert pytest_args(line) == args


def test_command_and_env_from_a_workflow(tmp_path):
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "main.py").write_text("from fastapi import FastAPI\napp = FastAPI()\n")
    wf = tmp_path / ".github" / "workflows"
    wf.mkdir(parents=True)
    (wf / "ci.yml").write_text(
        "on: push\njobs:\n  test:\n    runs-on: ubuntu-latest\n    services:\n      postgres:\n        image: postgres:16\n"
        "    env:\n      DATABASE_URL: postgresql+asyncpg://ci:ci@localhost/ci\n      STRIPE_KEY: ${{ secrets.STRIPE }}\n"
        "    steps:\n      - run: pip install -r requirements.txt\n      - run: pytest -x tests/api\n")
    ctx = AuditContext.open(tmp_path, tmp_path / "out")
    cmd = discover_test_command(ctx)
    assert cmd.args == ["-x", "tests/api"] and cmd.expects_postgres
    assert cmd.source == ".github/workflows/ci.yml (job test)"
    assert masked_env(cmd.env) == {"DATABASE_URL": "postgresql+asyncpg://ci:***@localhost/ci", "STRIPE_KEY": "****"}
