"""The live stage: real uvicorn processes on a real embedded PostgreSQL, exact findings,
and nothing (process, port) left behind."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from expectations import expected_findings
from auditlib.checks import run_checks
from auditlib.target.context import AuditContext
from auditlib.stages import live, tests_stage
from auditlib.stages.http_probe import Client
from auditlib.stages.live_boot import assemble_env, parse_env_file

REPO = Path(__file__).resolve().parent.parent
DEMO = REPO / "examples" / "bookly"
APPS = REPO / "tests" / "fixtures" / "apps"


def run_live(target: Path, tmp_path: Path, pg, tests: bool = False):
    ctx = AuditContext.open(target, tmp_path / "out", db=pg.url(driver=""), target_python=sys.executable)
    live.configure(ctx, True)
    tests_stage.configure(ctx, tests)
    findings = run_checks(ctx, source="live") + (run_checks(ctx, source="tests") if tests else [])
    res = live.live_run(ctx)
    for pid, port in res.processes:  # nothing left behind
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
        with socket.socket() as s:  # nobody listens there any more (TIME_WAIT connections aside)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind(("127.0.0.1", port))
            s.listen()
    return ctx, res, findings


def located(findings):
    return {(f.check, f.locations[0].file, f.locations[0].line) for f in findings if f.severity.value != "INFO"}


def test_demo_live_findings(pg, tmp_path):
    before = {str(p) for p in DEMO.rglob("*")}
    _, res, findings = run_live(DEMO, tmp_path, pg)
    assert {str(p) for p in DEMO.rglob("*")} == before
    assert res.booted and res.processes
    want = {x for x in expected_findings(DEMO) if x[0] in ("SEC-004", "OBS-003") or x[:2] == ("OBS-002", "app/metrics.py")}
    assert located(findings) == want
    sev = {f.check: f.severity.value for f in findings if f.severity.value != "INFO"}
    assert sev == {"SEC-004": "BLOCKER", "OBS-002": "WARNING", "OBS-003": "WARNING"}
    infos = {f.title for f in findings if f.severity.value == "INFO"}
    assert {"GET /healthz answers 200", "GET /readyz answers 200", "OpenAPI: Bookly 1.4.0, 13 operations"} <= infos
    doc = next(f for f in findings if f.title.startswith("OpenAPI: Bookly"))
    assert "Hidden from the schema: GET /metrics" in doc.message
    assert res.stage_status().startswith("ran: booted app.main:app")


def test_circular_import_fails_to_boot_while_its_tests_pass(pg, tmp_path):
    _, res, findings = run_live(APPS / "circular_boot", tmp_path, pg, tests=True)
    assert located(findings) == expected_findings(APPS / "circular_boot")
    boot = next(f for f in findings if f.check == "DEP-007" and f.severity.value == "BLOCKER")
    assert "most likely due to a circular import" in boot.title
    assert ("Import chain: app/main.py:4 `from app.api.routes import router` -> app/api/routes.py:5 "
            "`from app.main import VERSION") in boot.message
    assert "Test suite: 1 passed, 0 failed, 0 skipped" in {f.title for f in findings}
    assert res.stage_status().startswith("failed: the app did not boot")


def test_postgres_only_failure_and_cross_org_access(pg, tmp_path):
    _, _, findings = run_live(APPS / "pg_only", tmp_path, pg, tests=True)
    assert located(findings) == expected_findings(APPS / "pg_only")
    by = {(f.check, f.severity.value): f for f in findings if f.severity.value != "INFO"}
    assert "operator does not exist: boolean = integer" in by[("DEP-007", "BLOCKER")].message
    assert by[("SEC-013", "BLOCKER")].routes == [{"method": "GET", "path": "/projects/{project_id}"}]
    assert "Test suite: 3 passed, 0 failed, 0 skipped" in {f.title for f in findings}  # green on SQLite


def test_not_requested_and_static_fallback(tmp_path):
    ctx = AuditContext.open(DEMO, tmp_path / "out")
    findings = run_checks(ctx, source="live")
    assert [(f.check, f.severity.value) for f in findings] == [("DEP-007", "INFO"), ("DOC-002", "INFO")]
    assert "Static fallback (the live stage was not requested)" in findings[1].message


def test_base_url_client_sends_safe_methods_only():
    client = Client("http://127.0.0.1:9", safe_only=True)
    with pytest.raises(PermissionError):
        client.request("POST", "/v1/bookings", body=b"{}")
    assert client.request("GET", "/healthz").status == 0  # refused connection, no exception
    with pytest.raises(ValueError):
        Client("file:///etc/passwd")


def test_environment_from_env_examples(tmp_path):
    assert parse_env_file("# c\nexport A='x y'\nB=1 # note\nC=\n") == {"A": "x y", "B": "1", "C": ""}
    ctx = AuditContext.open(DEMO, tmp_path / "out")
    env = assemble_env(ctx, {"DATABASE_URL": "postgresql+psycopg://u@127.0.0.1/db"})
    assert env.env["AUTH_SECRET_KEY"].startswith("audit-") and env.env["AUTH_SECRET_KEY"] in env.secrets
    assert not env.env["STRIPE_SECRET_KEY"].startswith("sk_live_")  # committed values are never used
    assert "EMAIL_FROM" not in env.env and env.env["SMTP_PORT"] == "587"
    assert env.env["DATABASE_URL"] == "postgresql+psycopg://u@127.0.0.1/db"


def test_cli_rejects_a_non_http_base_url():
    proc = subprocess.run([sys.executable, "-m", "auditlib", "run", str(DEMO), "--base-url", "ftp://example.org"],
                          capture_output=True, text=True, timeout=60, cwd=REPO)
    assert proc.returncode == 2 and "--base-url must be an http(s) URL" in proc.stderr


def test_stage_notebooks_record_their_stats(pg, tmp_path):
    import json

    import papermill as pm

    from auditlib.runner import ensure_kernel

    kernel = ensure_kernel(tmp_path / "kernel")
    out = tmp_path / "out"
    params = {"out_dir": str(out), "db": pg.url(driver=""), "target_python": sys.executable}
    for name in ("11_tests.ipynb", "12_live.ipynb"):
        pm.execute_notebook(REPO / "notebooks" / name, tmp_path / name, parameters=params, kernel_name=kernel,
                            cwd=REPO / "notebooks", progress_bar=False)
    tests = json.loads((out / "findings" / "tests.json").read_text())
    assert tests["stats"]["tests_failed"] == 1 and tests["stats"]["stage_tests"].startswith("ran:")
    live_side = json.loads((out / "findings" / "live.json").read_text())
    assert live_side["stats"]["stage_live"].startswith("ran: booted app.main:app")
    assert {f["check"] for f in live_side["findings"] if f["severity"] == "BLOCKER"} == {"SEC-004"}
