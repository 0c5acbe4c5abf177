"""Static halves of db checks: silent while a database stage is requested, run by the db
half (and marked "static fallback") when that stage cannot run."""
from __future__ import annotations

from pathlib import Path

from auditlib.checks import run_checks
from auditlib.target.context import AuditContext

CASE = Path(__file__).resolve().parent / "fixtures" / "checks" / "REL-007" / "nullable_unique"


def rel007(ctx, source):
    return [(f.severity.value, f.locations[0].file, f.locations[0].line, f.message)
            for f in run_checks(ctx, ids=["REL-007"], source=source)]


def test_without_a_database_the_static_half_reports(tmp_path):
    ctx = AuditContext.open(CASE, tmp_path, db="none")
    static = rel007(ctx, "static")
    assert [s[:3] for s in static] == [("WARNING", "alembic/versions/0001_email.py", 16)]
    # the db half only says what it could not verify (the static half already spoke)
    db = rel007(ctx, "db")
    assert [(s[0], s[3].startswith("not verified")) for s in db] == [("WARNING", True)]


def test_a_failed_database_stage_falls_back_to_the_static_reading(tmp_path, pg):
    ctx = AuditContext.open(CASE, tmp_path, db=pg.url(driver=""), target_python=None)
    assert rel007(ctx, "static") == []  # the db stage owns REL-007
    db = rel007(ctx, "db")
    assert db[0][0] == "WARNING" and db[0][3].startswith("not verified")
    assert [(s[0], s[1], s[2]) for s in db[1:]] == [("WARNING", "alembic/versions/0001_email.py", 16)]
    assert "static fallback" in db[1][3]
