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


# -- the suite as its CI runs it ---------------------------------------------------------

CI_APP = APPS / "ci_workflow"


def test_suite_runs_green_as_its_ci_runs_it(pg, tmp_path):
    """YAML 1.1 booleans in env: stay the CI's strings, the migration step is replayed on the
    throwaway database that stands in for the postgres service, $GITHUB_ENV is applied."""
    ctx, findings = stage(CI_APP, tmp_path, pg)
    assert located(findings) == set()
    run = tests_stage.suite_run(ctx)
    assert run.stage_status().startswith("ran: 4 passed, 0 failed, 0 skipped")
    assert [r.split(": ok in ")[0] for r in run.replayed] == ["step 'Migrate': `alembic upgrade head`"]
    assert run.not_replayed == []
    assert run.database.startswith(f"a throwaway PostgreSQL {pg.server_version} database")
    assert run.database.endswith("it stands in for the CI's `postgres:16` service)")
    shown = run.env_shown
    assert (shown["EXPORT_MODE"], shown["STRICT_MODE"], shown["AUDIT_TRAIL"]) == ("off", "yes", "on")
    assert (shown["FEATURE_FLAGS"], shown["REGION"], shown["SECRET_KEY"]) == ("audit-log", "eu", "****")
    assert shown["REPORT_DB_HOST"] == "127.0.0.1" and shown["REPORT_DB_PORT"] == str(pg.port)
    assert shown["DATABASE_URL"].startswith(f"postgresql+psycopg://auditlib:***@127.0.0.1:{pg.port}/audit_")
    [summary] = [f for f in findings if f.title.startswith("Test suite:")]
    assert "CI steps replayed first: step 'Migrate': `alembic upgrade head`: ok in" in summary.message
    log = (ctx.out_dir / "logs" / "tests.log").read_text()
    assert "$ alembic upgrade head  (CI step replayed, rc=0" in log and "ci-password" not in log


def _broken_copy(tmp_path: Path, **replace: str) -> Path:
    import shutil

    target = tmp_path / "ci_workflow"
    shutil.copytree(CI_APP, target)
    wf = target / ".github" / "workflows" / "ci.yml"
    text = wf.read_text()
    for old, new in replace.items():
        assert old in text
        text = text.replace(old, new)
    wf.write_text(text)
    return target


def test_suite_that_cannot_start_shows_first_error_environment_and_steps_not_replayed(pg, tmp_path):
    target = _broken_copy(tmp_path, **{"EXPORT_MODE: off": "EXPORT_MODE: disabled",
                                       "run: alembic upgrade head": "run: ./scripts/migrate.sh && make seed"})
    ctx, findings = stage(target, tmp_path, pg)
    [f] = [f for f in findings if f.severity.value != "INFO"]
    assert (f.check, f.severity.value, f.title) == ("TEST-001", "WARNING",
                                                     "TEST-001 not verified: the test suite did not run")
    msg = f.message
    assert msg.startswith("not verified: pytest exited 4 (interrupted, internal or usage error): "
                          "ImportError while loading conftest")
    assert "export_mode | Input should be 'off' or 'csv'" in msg and "input_value='disabled'" in msg
    assert "Environment used: " in msg and "EXPORT_MODE=disabled" in msg and "SECRET_KEY=****" in msg
    assert "ci-password" not in msg
    assert msg.endswith("CI steps before the tests NOT replayed: step 'Migrate': `./scripts/migrate.sh` "
                        "and 1 more command(s).")


def test_workflow_is_read_as_the_ci_reads_it(tmp_path):
    wf = tmp_path / ".github" / "workflows"
    wf.mkdir(parents=True)
    (tmp_path / "app.py").write_text("from fastapi import FastAPI\napp = FastAPI()\n")
    (wf / "ci.yml").write_text(
        "on: push\nenv:\n  A: off\n  B: workflow\n  C: workflow\n  D: workflow\n  N: 010\n  E:\n"
        "jobs:\n  test:\n    container: python:3.12\n    services:\n      db:\n        image: postgis/postgis:16-3.4\n"
        "    strategy:\n      matrix:\n        include:\n          - {mode: fast, db: pg}\n"
        "    env:\n      B: job\n      C: job\n      URL: postgresql://u:p@db:5432/x\n"
        "    defaults:\n      run:\n        working-directory: backend\n"
        "    steps:\n"
        "      - run: echo C=ghenv >> \"$GITHUB_ENV\"\n"
        "      - run: echo \"STAMP=$(date)\" >> $GITHUB_ENV\n"
        "      - run: cp .env.example .env && poetry run alembic -c db/alembic.ini upgrade head\n"
        "        env: {MIGRATE: yes}\n"
        "      - run: |\n          ruff check .\n          cd api && pytest -x \\\n            tests\n"
        "        env: {D: '${{ env.B }}-${{ matrix.mode }}', F: on}\n")
    ctx = AuditContext.open(tmp_path, tmp_path / "out")
    cmd = discover_test_command(ctx)
    assert cmd.args == ["-x", "tests"] and cmd.cwd == "backend/api" and cmd.expects_postgres
    assert {k: cmd.env[k] for k in "ABCDEFN"} == {"A": "off", "B": "job", "C": "ghenv", "D": "job-fast",
                                                  "E": "", "F": "on", "N": "010"}
    assert cmd.pg_service["name"] == "db" and cmd.pg_service["image"] == "postgis/postgis:16-3.4"
    assert [(s.kind, s.line) for s in cmd.before] == [
        ("env", 'echo C=ghenv >> "$GITHUB_ENV"'), ("other", 'echo "STAMP=$(date)" >> $GITHUB_ENV'),
        ("other", "cp .env.example .env"), ("migrate", "poetry run alembic -c db/alembic.ini upgrade head")]
    migrate = cmd.before[-1]
    assert migrate.args == ["-c", "db/alembic.ini", "upgrade", "head"] and migrate.cwd == "backend"
    assert migrate.env["MIGRATE"] == "yes" and migrate.env["C"] == "ghenv"


def test_failed_migration_replay_is_reported_and_the_suite_still_runs(pg, tmp_path):
    target = _broken_copy(tmp_path)
    (target / "alembic" / "versions" / "0002_broken.py").write_text(
        'from alembic import op\n\nrevision = "0002"\ndown_revision = "0001"\n\n\n'
        'def upgrade() -> None:\n    op.execute("ALTER TABLE no_such_table ADD COLUMN x int")\n\n\n'
        'def downgrade() -> None:\n    pass\n')
    ctx, findings = stage(target, tmp_path, pg)
    run = tests_stage.suite_run(ctx)
    [replayed] = run.replayed
    assert replayed.startswith("step 'Migrate': `alembic upgrade head`: FAILED (exit 1): ")
    assert 'relation "no_such_table" does not exist' in replayed
    # one transaction for the whole upgrade: no table, so the suite runs and fails
    assert run.ran and run.count("failed", "error") == 3 and run.count("passed") == 1
    [summary] = [f for f in findings if f.title.startswith("Test suite:")]
    assert "CI steps replayed first: " + replayed in summary.message


@pytest.mark.parametrize("command, kind", [
    ("pip install -r requirements.txt pytest", None), ("uv sync --frozen", None), ("ruff check .", None),
    ("echo 'A=on' >> $GITHUB_ENV", "env"), ('echo "A=$(date)" >> "$GITHUB_ENV"', "other"),
    ("echo SECRET=x > .env", "other"), ("uv run python scripts/seed.py", "other"),
    ("python -m alembic upgrade head", "migrate"), ("pdm run alembic upgrade heads", "migrate"),
    ("alembic downgrade base", "other"), ("./scripts/migrate.sh", "other"),
    ("docker compose down -v --remove-orphans", None), ("docker compose up -d redis", "other"),
    ('alembic upgrade heads || echo "Migrations already applied"', "migrate"),
    ("alembic upgrade head | tee log.txt", "other"),
])
def test_ci_commands_before_the_tests(command, kind):
    from auditlib.stages.test_command import _classify

    steps, _ = _classify("step", [command], {}, "")
    assert [s.kind for s in steps] == ([kind] if kind else [])


# -- parts of the database address left to the application's defaults --------------------

NESTED_APP = APPS / "ci_nested_settings"


def test_settings_defaults_behind_a_partial_ci_address_point_at_the_throwaway_database(pg, tmp_path):
    """The CI sets DATABASE__HOST and DATABASE__PASSWORD (nested settings) and REPORTS_DB_HOST;
    the port, user and database name are the settings' defaults, which only the CI's service
    matches: the audit sets them too, for the replayed migration and for the suite. A database
    address elsewhere (WAREHOUSE_DB__HOST) is left as the CI wrote it, defaults included."""
    ctx, findings = stage(NESTED_APP, tmp_path, pg)
    run = tests_stage.suite_run(ctx)
    assert run.stage_status().startswith("ran: 3 passed, 0 failed, 0 skipped"), run.output_tail
    assert [r.split(": ok in ")[0] for r in run.replayed] == ["step 'Migrate': `alembic upgrade head`"]
    shown = run.env_shown
    assert (shown["DATABASE__HOST"], shown["DATABASE__PORT"], shown["DATABASE__USER"]) == \
        ("127.0.0.1", str(pg.port), "auditlib")
    assert shown["DATABASE__NAME"].startswith("audit_") and shown["REPORTS_DB_NAME"] == shown["DATABASE__NAME"]
    assert (shown["REPORTS_DB_HOST"], shown["REPORTS_DB_PORT"]) == ("127.0.0.1", str(pg.port))
    assert shown["WAREHOUSE_DB__HOST"] == "warehouse.example.com"
    assert not any(k.startswith("WAREHOUSE_DB__") and k != "WAREHOUSE_DB__HOST" for k in shown)
    assert located(findings) == set()


def test_nested_settings_names_and_partial_address_completion(tmp_path):
    from auditlib.stages.tests_stage import _CIEnvironment, settings_env_names

    ctx = AuditContext.open(NESTED_APP, tmp_path / "out")
    names = settings_env_names(ctx)
    assert {"DATABASE__HOST", "DATABASE__PORT", "DATABASE__NAME", "WAREHOUSE_DB__PORT", "REPORTS_DB_PORT"} <= names
    ci = {"DATABASE__HOST": "localhost", "DATABASE__PASSWORD": "postgres", "WAREHOUSE_DB__HOST": "wh.example.com"}
    env = _CIEnvironment({}, "postgresql://audit@127.0.0.1:6543/audit_x", {"name": "postgres"}, names).build(ci)
    assert {k: v for k, v in env.items() if k.startswith("DATABASE__")} == {
        "DATABASE__HOST": "127.0.0.1", "DATABASE__PASSWORD": "postgres", "DATABASE__PORT": "6543",
        "DATABASE__USER": "audit", "DATABASE__NAME": "audit_x"}
    assert {k: v for k, v in env.items() if k.startswith("WAREHOUSE_DB__")} == {"WAREHOUSE_DB__HOST": "wh.example.com"}
    # no throwaway database: nothing is rewritten or added
    assert _CIEnvironment({}, "", {}, names).build(ci) == ci


# -- CI commands kept in the project's scripts; the database as a compose service ---------

SCRIPTS_APP = APPS / "ci_scripts"


def test_test_command_and_migration_found_in_the_projects_scripts(tmp_path):
    ctx = AuditContext.open(SCRIPTS_APP, tmp_path / "out")
    cmd = discover_test_command(ctx)
    assert cmd.source == ".github/workflows/test-backend.yml (job test-backend) via backend/scripts/test.sh"
    assert cmd.line == "coverage run --source=app -m pytest ${TEST_PATH}" and cmd.args == []
    assert cmd.cwd == "backend" and cmd.expects_postgres
    assert (cmd.pg_service["name"], cmd.pg_service["image"]) == ("db", "postgres:17")
    assert [(s.kind, s.line) for s in cmd.before] == [
        ("service", "docker compose up -d db mailcatcher"), ("other", "docker compose up -d db mailcatcher"),
        ("other", "python app/backend_pre_start.py"), ("migrate", "alembic upgrade head"),
        ("other", "python app/backend_pre_start.py")]
    assert cmd.before[3].cwd == "backend"


def test_suite_whose_ci_commands_are_scripts_runs_green(pg, tmp_path):
    ctx, findings = stage(SCRIPTS_APP, tmp_path, pg)
    run = tests_stage.suite_run(ctx)
    assert run.stage_status().startswith("ran: 2 passed, 0 failed, 0 skipped"), run.output_tail
    assert [r.split(": ok in ")[0] for r in run.replayed] == ["step 'Migrate DB': `alembic upgrade head`"]
    assert run.database.endswith("it stands in for the CI's `postgres:17` service)")
    assert run.not_replayed == ["`docker compose up -d db mailcatcher`",
                                "step 'Migrate DB': `python app/backend_pre_start.py`",
                                "step 'Run tests': `python app/backend_pre_start.py`"]
    assert [f.title for f in findings if f.severity.value in ("BLOCKER", "WARNING")] == []
