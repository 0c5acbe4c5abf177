"""Severities and grouping of PERF-002, PERF-004, REL-001 and REL-003 on their fixture
cases (the fixture tests compare only where findings are; these say what they say)."""
from __future__ import annotations

from pathlib import Path

from auditlib.checks import run_checks
from auditlib.target.context import AuditContext

FIX = Path(__file__).resolve().parent / "fixtures" / "checks"


def _run(root: Path, tmp_path: Path, check: str):
    ctx = AuditContext.open(root, tmp_path)
    return [f for f in run_checks(ctx, ids=[check], source="static") if f.check == check]


def _at(findings, file: str, line: int, title: str | None = None):
    return next(f for f in findings if (f.locations[0].file, f.locations[0].line) == (file, line)
                and (title is None or f.title == title))


def _lines(f):
    return [(loc.file, loc.line) for loc in f.locations]


def test_perf_002_opt_in_and_request_bounded_loops_are_recommendations(tmp_path):
    found = _run(FIX / "PERF-002" / "request_bounds", tmp_path, "PERF-002")
    opt_in = _at(found, "app/main.py", 20)
    assert opt_in.severity.value == "RECOMMENDATION"
    assert "opts in with `sync=true`" in opt_in.message
    tags = _at(found, "app/main.py", 36)
    assert tags.severity.value == "RECOMMENDATION" and "`body.tags`" in tags.message
    assert _at(found, "app/main.py", 29).severity.value == "WARNING"  # a False default, but no guard
    assert _at(found, "app/main.py", 42).severity.value == "WARNING"  # the request's payload itself
    merged = _at(found, "app/services.py", 38)
    assert merged.severity.value == "WARNING"
    assert _lines(merged) == [("app/services.py", 38), ("app/services.py", 40)]
    assert "line 40 (loop at line 39" in merged.message
    assert not [f for f in found if f.locations[0].file == "app/services.py" and f.locations[0].line != 38]


def test_perf_004_one_finding_per_helper(tmp_path):
    found = _run(FIX / "PERF-004" / "helpers", tmp_path, "PERF-004")
    deliver = _at(found, "app/main.py", 19)
    assert _lines(deliver) == [("app/main.py", 19), ("app/main.py", 52)]
    assert "app/main.py:52 (`again`)" in deliver.message


def test_perf_004_script_reached_from_main_block(tmp_path):
    found = _run(FIX / "PERF-004" / "off_loop", tmp_path, "PERF-004")
    assert not [f for f in found if f.locations[0].file.startswith("app/evals/")]
    assert _at(found, "app/refresher.py", 8).severity.value == "WARNING"  # imported: not a script
    assert _at(found, "app/standalone_api.py", 14).severity.value == "WARNING"  # declares a route


def test_rel_001_sqlite_creator_and_checkout_timeout(tmp_path):
    found = _run(FIX / "REL-001" / "sqlite_creator", tmp_path, "REL-001")
    at23 = {(f.severity.value, f.title) for f in found if f.locations[0].line == 23}
    assert at23 == {("INFO", "Engine pool: SQLite database"),
                    ("RECOMMENDATION", "Pool checkout without a timeout (pool_timeout=None)")}
    assert {(f.severity.value, f.title) for f in found if f.locations[0].line == 34} == {
        ("INFO", "Engine pool: SQLite database")}
    assert _at(found, "app/db.py", 42, "Engine without pool_pre_ping").severity.value == "WARNING"
    assert _at(found, "app/db.py", 46, "Pool checkout without a timeout (pool_timeout=None)").severity.value \
        == "RECOMMENDATION"
    assert _at(found, "app/db.py", 51, "Unbounded connection pool").severity.value == "WARNING"


def test_rel_003_one_finding_per_function(tmp_path):
    found = _run(FIX / "REL-003" / "one_per_function", tmp_path, "REL-003")
    smtp = _at(found, "app/mail.py", 12)
    assert _lines(smtp) == [("app/mail.py", 12), ("app/mail.py", 15), ("app/mail.py", 17)]
    assert "3 such calls (lines 12, 15, 17)" in smtp.message
    assert _lines(_at(found, "app/mail.py", 25)) == [("app/mail.py", 25)]
    assert len(_at(found, "app/mail.py", 31).locations) == 2
