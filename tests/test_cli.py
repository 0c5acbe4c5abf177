"""The CLI end to end: real papermill runs, a real embedded PostgreSQL, real Alembic."""
from __future__ import annotations

import html
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import nbformat
import pytest

from expectations import expected_findings

REPO = Path(__file__).resolve().parent.parent
DEMO = REPO / "examples" / "bookly"
CLEAN = REPO / "tests" / "fixtures" / "targets" / "clean_app"
PLANTED_SECRET = "sk_live_51FAKEdemoKEYnotREAL0000000000"


def auditlib(*args, timeout=300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "auditlib", *map(str, args)], capture_output=True,
                          text=True, timeout=timeout, cwd=REPO)


def pg_leftovers() -> set[str]:
    """Cluster folders whose owner process is gone: left behind. Folders of processes still
    running (another audit on the same machine) are theirs to remove."""
    tmp = Path(tempfile.gettempdir())
    out = set()
    for p in tmp.glob("auditlib-pg-*"):
        pid = p.name.split("-")[2]
        if pid.isdigit() and not Path(f"/proc/{pid}").exists():
            out.add(p.name)
    return out


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo-out")
    before = pg_leftovers()
    proc = auditlib("run", DEMO, "--out", out, "--jobs", 2, "--target-python", sys.executable,
                    "--tests", "--live", "--no-progress")
    return proc, out, before


def test_demo_exit_code_and_outputs(demo_run):
    proc, out, _ = demo_run
    assert proc.returncode == 1, proc.stderr[-3000:]
    assert "VERDICT: NOT READY" in proc.stdout
    for name in ["report.html", "report.md", "findings.json", "report.sarif", "audit.log"]:
        assert (out / name).is_file(), name
    executed = sorted(p.name for p in (out / "notebooks").glob("*.ipynb"))
    assert executed == sorted(p.name for p in (REPO / "notebooks").glob("*.ipynb"))


def test_demo_findings_are_exactly_the_planted_ones(demo_run):
    _, out, _ = demo_run
    data = json.loads((out / "findings.json").read_text())
    assert data["schema"] == "auditlib/findings@1"
    assert data["verdict"] == "NOT READY"
    found = {(f["check"], f["locations"][0]["file"], f["locations"][0]["line"])
             for f in data["findings"] if f["severity"] != "INFO"}
    assert found == expected_findings(DEMO)
    # the database stage really ran the demo's migrations
    assert data["stages"]["db"].startswith("ran")
    infos = {(f["check"], f["source"], f["title"].split(" in ")[0]) for f in data["findings"] if f["severity"] == "INFO"}
    assert ("DEP-002", "db", "`alembic upgrade head` succeeded") in infos
    # static: SEC-001, SEC-004, SEC-030; tests: the failing test; live: the open admin route
    assert sorted((f["check"], f["source"]) for f in data["findings"] if f["severity"] == "BLOCKER") == [
        ("SEC-001", "static"), ("SEC-004", "live"), ("SEC-004", "static"), ("SEC-030", "static"),
        ("TEST-001", "tests")]
    assert data["stages"]["tests"].startswith("ran") and data["stages"]["live"].startswith("ran")
    assert len({f["fingerprint"] for f in data["findings"]}) == len(data["findings"])


def test_demo_html_has_verdict_and_every_title(demo_run):
    _, out, _ = demo_run
    page = (out / "report.html").read_text(encoding="utf-8")
    data = json.loads((out / "findings.json").read_text())
    assert "NOT READY" in page
    for f in data["findings"]:
        assert html.escape(f["title"], quote=False) in page or html.escape(f["title"]) in page, f["title"]


def test_no_secret_value_in_any_output(demo_run):
    _, out, _ = demo_run
    for path in out.rglob("*"):
        if path.is_file():
            assert PLANTED_SECRET not in path.read_text(encoding="utf-8", errors="replace"), path


def test_embedded_postgres_is_gone_after_the_run(demo_run):
    _, _, before = demo_run
    assert pg_leftovers() - before == set()
    ps = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
    new_dirs = pg_leftovers() - before
    assert not any(d in ps for d in new_dirs)


def test_clean_twin_has_no_blocker(tmp_path):
    proc = auditlib("run", CLEAN, "--out", tmp_path, "--target-python", sys.executable, "--no-progress")
    assert proc.returncode == 0, proc.stdout + proc.stderr[-3000:]
    data = json.loads((tmp_path / "findings.json").read_text())
    assert [f for f in data["findings"] if f["severity"] == "BLOCKER"] == []
    assert data["stages"]["db"].startswith("ran")
    # stages that were not asked for say so (the live notebook once mistook its module for the switch)
    assert data["stages"]["tests"] == "skipped: not requested (run with --tests)"
    assert data["stages"]["live"] == "skipped: not requested (run with --live or --base-url URL)"


def test_failing_notebook_does_not_lose_the_audit(tmp_path):
    nbs = tmp_path / "notebooks"
    shutil.copytree(REPO / "notebooks", nbs)
    victim = nbs / "03_reliability.ipynb"
    nb = nbformat.read(victim, as_version=4)
    nb.cells.insert(3, nbformat.v4.new_code_cell('raise RuntimeError("planted <notebook> failure")'))
    nbformat.write(nb, victim)
    out = tmp_path / "out"
    proc = auditlib("run", DEMO, "--out", out, "--db", "none", "--notebooks", nbs, "--no-progress")
    assert proc.returncode == 1, proc.stderr[-3000:]
    data = json.loads((out / "findings.json").read_text())
    failed = [f for f in data["findings"] if f["check"] == "AUDIT-002"]
    assert [f["title"] for f in failed] == ["Not verified: the reliability notebook failed"]
    assert "planted <notebook> failure" in failed[0]["message"]
    # the other areas still reported their findings
    assert {"SEC-001", "FUNC-002", "DEP-004"} <= {f["check"] for f in data["findings"]}
    page = (out / "report.html").read_text(encoding="utf-8")
    assert "planted &lt;notebook&gt; failure" in page
    assert "planted <notebook> failure" not in page
    # --db none: the migration check says what was not verified
    db = [f for f in data["findings"] if f["check"] == "DEP-002" and f["source"] == "db"]
    assert [(f["severity"], f["message"]) for f in db] == [
        ("WARNING", "not verified: the database stage is disabled (--db none)")]


@pytest.mark.parametrize("make_target, message", [
    (lambda tmp: tmp / "missing", "does not exist"),
    (lambda tmp: (tmp / "file.py").write_text("x = 1\n") and tmp / "file.py", "not a directory"),
    (lambda tmp: (tmp / "README.md").write_text("hi\n") and tmp, "not a Python project"),
])
def test_bad_target_exits_2_with_one_line(tmp_path, make_target, message):
    proc = auditlib("run", make_target(tmp_path), timeout=60)
    assert proc.returncode == 2
    assert proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0] and "Traceback" not in proc.stderr


def test_unreadable_config_exits_2(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("this is = = not toml\n")
    proc = auditlib("run", DEMO, "--config", bad, timeout=60)
    assert proc.returncode == 2
    assert len(proc.stderr.strip().splitlines()) == 1 and "invalid TOML" in proc.stderr


def test_fail_on_never_exits_0(tmp_path):
    proc = auditlib("run", CLEAN, "--out", tmp_path, "--db", "none", "--fail-on", "warning", "--no-progress")
    # the clean twin without a database has the "not verified" WARNING -> at the threshold
    assert proc.returncode == 1
    proc = auditlib("run", CLEAN, "--out", tmp_path, "--db", "none", "--fail-on", "never", "--no-progress")
    assert proc.returncode == 0


def test_notebooks_are_committed_without_outputs():
    for path in sorted((REPO / "notebooks").glob("*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        nbformat.validate(nb)
        code = [c for c in nb.cells if c.cell_type == "code"]
        assert all(not c.outputs and c.execution_count is None for c in code), path.name
        assert "parameters" in code[0].metadata.get("tags", []), path.name


def test_db_url_uses_an_existing_server_and_never_prints_its_password(tmp_path, pg):
    import psycopg

    password = "Sup3rSecretPw"
    with psycopg.connect(pg.url(driver=""), autocommit=True) as conn:
        conn.execute(f"CREATE ROLE auditor LOGIN CREATEDB PASSWORD '{password}'")
    url = f"postgresql://auditor:{password}@{pg.host}:{pg.port}/postgres"
    proc = auditlib("run", DEMO, "--out", tmp_path, "--db", url, "--target-python", sys.executable,
                    "--no-progress")
    assert proc.returncode == 1, proc.stderr[-3000:]
    assert password not in proc.stdout + proc.stderr
    data = json.loads((tmp_path / "findings.json").read_text())
    # "ran" names the server, and says the demo's migrations reached the head and were read
    assert data["stages"]["db"].startswith(f"ran: postgresql://auditor:***@{pg.host}:{pg.port}/postgres; ")
    assert " migrated to head " in data["stages"]["db"] and "schema read" in data["stages"]["db"]
    assert any(f["check"] == "DEP-002" and f["source"] == "db" and f["severity"] == "INFO"
               for f in data["findings"])
    for path in tmp_path.rglob("*"):
        if path.is_file():
            assert password not in path.read_text(encoding="utf-8", errors="replace"), path
