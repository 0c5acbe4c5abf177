"""Severities, messages and grouping of SEC-021, SEC-023, REL-006, FUNC-002, SEC-010 and
PERF-001 (the fixture tests compare only where findings are; these say what they say)."""
from __future__ import annotations

from pathlib import Path

from auditlib.checks import run_checks
from auditlib.target.context import AuditContext

FIX = Path(__file__).resolve().parent / "fixtures" / "checks"


def _run(root: Path, tmp_path: Path, check: str):
    ctx = AuditContext.open(root, tmp_path)
    return [f for f in run_checks(ctx, ids=[check], source="static") if f.check == check]


def _at(findings, file: str, line: int):
    return next(f for f in findings if (f.locations[0].file, f.locations[0].line) == (file, line))


def test_sec_021_names_the_value_that_carries_markup(tmp_path):
    found = _run(FIX / "SEC-021" / "unsafe", tmp_path, "SEC-021")
    upload = _at(found, "app/uploads.py", 15)
    assert upload.severity.value == "BLOCKER"
    assert "`file.filename` (uploaded file name" in upload.message
    assert "render_receipt()" in upload.message
    assert "upload_id" not in upload.message and "uuid4" not in upload.message
    # a route registered only under a settings flag that is off by default: WARNING, condition named
    gated = _at(found, "app/share.py", 23)
    assert gated.severity.value == "WARNING"
    assert "registered only when `settings.enable_share_page is not False`" in gated.message
    assert "ENABLE_SHARE_PAGE defaults to False" in gated.message and "`title`" in gated.message
    assert _at(found, "app/share.py", 31).severity.value == "BLOCKER"  # its flag is on by default


def test_sec_023_untraced_values_and_grouping(tmp_path):
    found = _run(FIX / "SEC-023" / "injection", tmp_path, "SEC-023")
    assert _at(found, "app/main.py", 35).severity.value == "RECOMMENDATION"  # self.ssh_path
    assert _at(found, "app/main.py", 27).severity.value == "WARNING"  # request data via a variable
    grouped = _at(found, "app/main.py", 40)
    assert [loc.line for loc in grouped.locations] == [40, 42, 44]


def test_rel_006_one_shutdown_finding_for_every_runner(tmp_path):
    found = _run(FIX / "REL-006" / "runner", tmp_path, "REL-006")
    shutdown = [f for f in found if "graceful shutdown" in f.title]
    assert len(shutdown) == 1
    assert [(loc.file, loc.line) for loc in shutdown[0].locations] == [
        ("app/jobs/runner.py", 17), ("app/jobs/runner.py", 35)]
    # no dead-letter handling in either loop: one finding too
    dead = [f for f in found if "dead-letter" in f.title]
    assert [(f.title, [loc.line for loc in f.locations]) for f in dead] == [
        ("No dead-letter handling in 2 jobs runner loops", [17, 35])]


def test_rel_006_severity_follows_what_stops_the_runner(tmp_path):
    found = _run(FIX / "REL-006" / "in_process_tasks", tmp_path, "REL-006")
    beats = {f.locations[0].line: f for f in found if "record no heartbeat" in f.title
             or "records no heartbeat" in f.title}
    assert {ln: f.severity.value for ln, f in beats.items()} == {
        24: "RECOMMENDATION",  # rounds guarded: only a hang stops it (and the loop at 60: one finding)
        34: "WARNING"}  # the first error ends the loop: its own defect
    # guarded, though it sends e-mails: the same missing heartbeat, a second location
    assert [loc.line for loc in beats[24].locations] == [24, 60]
    assert beats[24].title == "2 jobs runner loops record no heartbeat"
    assert "`run` at app/daemons.py:60: the e-mails it sends (`_send_warning_emails`) silently stop" \
        in beats[24].message
    assert "`refresh_cache`" in beats[34].message and "ends the loop" in beats[34].message
    memory = _at(found, "app/daemons.py", 67)
    assert memory.severity.value == "RECOMMENDATION" and "`self._last_sent`" in memory.message
    # the lease renewal and the metrics sampler are not runners to report
    assert not [f for f in found if f.locations[0].line in (17, 40)]


def test_func_002_severity_follows_what_the_comment_admits(tmp_path):
    found = _run(FIX / "FUNC-002" / "markers", tmp_path, "FUNC-002")
    sev = {(f.locations[0].file, f.locations[0].line): f.severity.value for f in found}
    assert sev[("app/notes.py", 3)] == "WARNING"  # race, lock
    assert sev[("app/notes.py", 4)] == "RECOMMENDATION"  # a note on typing stubs
    assert sev[("app/notes.py", 5)] == "RECOMMENDATION"  # an identifier is not a defect word
    assert sev[("app/notes.py", 10)] == "WARNING"  # the defect is on the continuation line
    assert sev[("app/service.py", 6)] == "RECOMMENDATION"  # TODO


def test_func_002_shortcuts_error_notes_and_deferred_limits_are_not_defects(tmp_path):
    found = _run(FIX / "FUNC-002" / "severity", tmp_path, "FUNC-002")
    sev = {f.locations[0].line: f.severity.value for f in found}
    assert sev == {10: "WARNING",  # lock released too early
                   12: "WARNING",  # not locked, duplicate
                   21: "RECOMMENDATION",  # which errors to catch: no defect named
                   26: "INFO",  # a quick-and-dirty hack: a shortcut, no defect named
                   31: "RECOMMENDATION",  # "if this becomes a problem, consider ...": a defect, deferred
                   52: "INFO",  # "not urgent ... rare operation", no defect named
                   58: "INFO"}  # "hack to silence a warning"
    deferred = _at(found, "app/jobs.py", 31)
    assert "chose to live with" in deferred.message and "If this becomes a problem" in deferred.message


def test_func_002_same_note_at_several_places_is_one_finding(tmp_path):
    root = tmp_path / "proj"
    (root / "app").mkdir(parents=True)
    note = "# FIXME: ProvisioningError should not be used outside of Compute\n"
    (root / "app" / "a.py").write_text(note + "import os\n")
    (root / "app" / "b.py").write_text("import os\n" + note)
    found = _run(root, tmp_path / "out", "FUNC-002")
    assert len(found) == 1
    assert [(loc.file, loc.line) for loc in found[0].locations] == [("app/a.py", 1), ("app/b.py", 2)]


def test_sec_010_child_tables_are_defence_in_depth(tmp_path):
    found = _run(FIX / "SEC-010" / "models_and_migrations", tmp_path, "SEC-010")
    assert _at(found, "app/models.py", 32).severity.value == "RECOMMENDATION"  # booking_notes -> bookings
    assert _at(found, "app/models.py", 56).severity.value == "BLOCKER"  # orders with an e-mail
    info = next(f for f in found if f.severity.value == "INFO")
    assert "anonymous state" in info.message and "chat_sessions" in info.message


def test_perf_001_names_the_query_that_filters_by_org(tmp_path):
    found = _run(FIX / "PERF-001" / "schema", tmp_path, "PERF-001")
    teams = next(f for f in found if f.tables == ["teams"] and f.severity.value == "WARNING")
    assert "`Team.org_id` at app/main.py:11" in teams.message
    assert not [f for f in found if f.tables in (["audit_log"], ["projects"])]


def test_perf_001_warns_only_where_org_is_the_access_path(tmp_path):
    found = _run(FIX / "PERF-001" / "query_shapes", tmp_path, "PERF-001")
    sev = {f.tables[0]: f.severity.value for f in found}
    assert sev == {"invoices": "WARNING", "documents": "WARNING", "memberships": "RECOMMENDATION",
                   "attachments": "RECOMMENDATION", "settings": "RECOMMENDATION", "drafts": "RECOMMENDATION",
                   "exports": "RECOMMENDATION"}
    invoices = next(f for f in found if f.tables == ["invoices"])
    assert "`InvoiceModel.org_id` at app/main.py:12" in invoices.message  # an import alias of the model
    assert [(loc.file, loc.line) for loc in invoices.locations] == [("alembic/versions/0001_initial.py", 14),
                                                                    ("app/main.py", 12)]
    assert "next to indexed id (app/main.py:26)" in next(f for f in found if f.tables == ["memberships"]).message
    assert "unique key (kind, org_id)" in next(f for f in found if f.tables == ["settings"]).message


def test_perf_001_reads_the_postgresql_branch_of_dialect_guards(tmp_path):
    found = _run(FIX / "PERF-001" / "dialect_guards", tmp_path, "PERF-001")
    assert [(f.locations[0].file, f.locations[0].line, f.severity.value) for f in found] == [
        ("alembic/versions/0003_tasks.py", 23, "WARNING")]


def test_func_002_same_marker_line_with_other_continuations_is_one_finding(tmp_path):
    root = tmp_path / "proj"
    (root / "app").mkdir(parents=True)
    (root / "app" / "a.py").write_text("# FIXME: potentially long write transaction\n# update the rows\nx = 1\n"
                                       "# TODO\ny = 2\n")
    (root / "app" / "b.py").write_text("import os\n\n# FIXME: potentially long write transaction\n"
                                       "# clear_members() issues DELETE without commit\nz = 3\n# TODO\n")
    found = _run(root, tmp_path / "out", "FUNC-002")
    fixme = [f for f in found if f.title.startswith("FIXME")]
    assert len(fixme) == 1
    assert [(loc.file, loc.line) for loc in fixme[0].locations] == [("app/a.py", 1), ("app/b.py", 3)]
    # a bare TODO says nothing by itself: two of them are two notes
    assert sorted((f.locations[0].file, len(f.locations)) for f in found if f.title.startswith("TODO")) == [
        ("app/a.py", 1), ("app/b.py", 1)]


def test_dep_004_variants_of_one_image_are_one_finding_per_defect(tmp_path):
    found = _run(FIX / "DEP-004" / "variants", tmp_path, "DEP-004")
    by_title = {}
    for f in found:
        by_title.setdefault(f.title, []).append([(loc.file, loc.line) for loc in f.locations])
    both = [("docker/release/Dockerfile", 3), ("docker/staging/Dockerfile", 3)]
    for title in ("Container runs as root", "Single-stage Docker build", "No HEALTHCHECK in the image"):
        assert sorted(by_title[title]) == [both, [("docker/worker/Dockerfile", 3)]], title
    root = next(f for f in found if f.title == "Container runs as root" and len(f.locations) == 2)
    assert "docker/release/Dockerfile, docker/staging/Dockerfile" in root.message


def test_obs_002_one_finding_per_function_feeding_raw_paths(tmp_path):
    found = _run(FIX / "OBS-002" / "raw_path", tmp_path, "OBS-002")
    fed = _at(found, "app/metrics.py", 3)
    assert fed.title == "3 metrics are fed raw URL paths (`http_requests_total`, `http_request_seconds`, `http_5xx_total`)"
    assert [(loc.file, loc.line) for loc in fed.locations] == [
        ("app/metrics.py", 3), ("app/metrics.py", 4), ("app/metrics.py", 5),
        ("app/main.py", 18), ("app/main.py", 20), ("app/main.py", 24)]
    assert "`REQUESTS.labels(...)` gets `path` = the raw URL path" in fed.message
    assert "`LATENCY.labels(...)` gets `path` = `raw` (from the raw URL path)" in fed.message
    slow = _at(found, "app/metrics.py", 7)
    assert slow.title == "Metric `http_slow_total` is fed raw URL paths"
    assert [(loc.file, loc.line) for loc in slow.locations] == [("app/metrics.py", 7), ("app/main.py", 43)]
    assert len(found) == 2
