"""Reviews, suppressions and changes between audits (issue: the report an auditor
hands over). Real audits of the demo and of edited copies of it; no mocks."""
from __future__ import annotations

import datetime as dt
import json
import shutil
from pathlib import Path

import pytest

from auditlib import review
from auditlib.checks import run_checks
from auditlib.cli import main
from auditlib.diff import Audit, compare, load_audit
from auditlib.findings import assign_fingerprints, counts, verdict
from auditlib.target.context import AuditContext

DEMO = Path(__file__).parent.parent / "examples" / "bookly"


def _audit(root: Path, tmp: Path) -> tuple[AuditContext, list]:
    ctx = AuditContext.open(root, tmp / f"out-{root.name}-{len(list(tmp.iterdir()))}")
    return ctx, assign_fingerprints(run_checks(ctx, source="static"))


def _copy(tmp: Path, name: str) -> Path:
    dst = tmp / name
    shutil.copytree(DEMO, dst, ignore=shutil.ignore_patterns("__pycache__", ".pytest_cache"))
    return dst


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, old
    path.write_text(text.replace(old, new, 1))


def _one(findings, check, file):
    (f,) = [f for f in findings if f.check == check and f.locations and f.locations[0].file == file
            and f.severity.value != "INFO"]
    return f


def test_fingerprints_survive_moved_lines_edits_elsewhere_and_a_renamed_handler(tmp_path):
    _, before = _audit(DEMO, tmp_path)
    moved = _copy(tmp_path, "moved")
    for rel in ("app/api/routes_admin.py", "app/settings.py", "app/services/email.py"):
        p = moved / rel  # lines move: a docstring paragraph on top, a helper appended
        p.write_text('"""Edited.\n\nSeveral lines\nmove every finding down.\n"""\n' + p.read_text()
                     + "\n\ndef _unrelated_helper():\n    return 42\n")
    _edit(moved / "app/api/routes_admin.py", "async def platform_stats(", "async def platform_statistics(")
    _, after = _audit(moved, tmp_path)
    for check, file in (("SEC-004", "app/api/routes_admin.py"), ("SEC-001", "app/settings.py"),
                        ("FUNC-002", "app/services/email.py")):
        old, new = _one(before, check, file), _one(after, check, file)
        assert new.locations[0].line == old.locations[0].line + 5
        assert new.fingerprint == old.fingerprint, (check, old.title, new.title)


def test_diff_lists_exactly_two_fixes_and_one_new_defect(tmp_path, capsys):
    _, before = _audit(DEMO, tmp_path)
    fixed = _copy(tmp_path, "fixed")
    _edit(fixed / ".env.example", "STRIPE_SECRET_KEY=sk_live_51FAKEdemoKEYnotREAL0000000000",
          "STRIPE_SECRET_KEY=<stripe secret key>")  # fix 1: the committed live key
    _edit(fixed / "app/services/email.py", "    # TODO: retry on transient SMTP errors instead of giving up  expect: FUNC-002\n",
          "")  # fix 2: the unfinished-work marker
    _edit(fixed / "app/services/bookings.py", "    # FIXME: overlapping visits",
          "    # HACK: slots are not locked yet\n    # FIXME: overlapping visits")  # a new marker
    _, after = _audit(fixed, tmp_path)
    ch = compare(Audit(before, verdict(before).value, "old"), Audit(after, verdict(after).value, "new"))
    assert sorted((f.check, f.locations[0].file) for f in ch.resolved) == [
        ("FUNC-002", "app/services/email.py"), ("SEC-030", ".env.example")]
    assert [(f.check, f.locations[0].file, f.title) for f in ch.added] == [
        ("FUNC-002", "app/services/bookings.py", ch.added[0].title)]
    assert "HACK" in ch.added[0].locations[0].excerpt
    assert ch.changed == [] and len(ch.persisting) == len(before) - 2
    # the command line, on two findings.json files
    for name, fs in (("old", before), ("new", after)):
        (tmp_path / name).mkdir()
        (tmp_path / name / "findings.json").write_text(json.dumps(
            {"verdict": verdict(fs).value, "findings": [f.to_dict() for f in fs]}))
    assert main(["diff", str(tmp_path / "old"), str(tmp_path / "new" / "findings.json"), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [x["check"] for x in data["resolved"]] == ["SEC-030", "FUNC-002"]
    assert [x["check"] for x in data["new"]] == ["FUNC-002"] and data["verdict"] == {"old": "NOT READY",
                                                                                       "new": "NOT READY"}
    assert main(["diff", str(tmp_path / "old"), str(tmp_path / "nowhere")]) == 2


def test_review_file_changes_the_verdict_counts_exactly(tmp_path):
    ctx, found = _audit(DEMO, tmp_path)
    sec001, sec030 = _one(found, "SEC-001", "app/settings.py"), _one(found, "SEC-030", ".env.example")
    path = tmp_path / "review.toml"
    review.record(path, sec001.fingerprint, "false-positive", "the default is rejected at start-up in prod",
                  "a.auditor", check="SEC-001")
    review.record(path, sec030.fingerprint, "accepted-risk", "a revoked test key, kept for the demo", "a.auditor",
                  dt.date(2099, 1, 1), check="SEC-030")
    applied = review.apply(found, review.load(path), ctx.index, today=dt.date(2026, 12, 2))
    assert [(f.check, j.status) for f, j in applied.suppressed] == [("SEC-001", "false-positive"),
                                                                      ("SEC-030", "accepted-risk")]
    before, after = counts(found), counts(applied.kept)
    assert after["BLOCKER"] == before["BLOCKER"] - 2 and after["WARNING"] == before["WARNING"]
    assert applied.notes == []
    # the acceptance expires: the finding is back, and says why
    reopened = review.apply(found, review.load(path), ctx.index, today=dt.date(2100, 1, 1))
    assert [f.check for f, _ in reopened.suppressed] == ["SEC-001"]
    assert any(f is sec030 and f.message.startswith("(accepted risk expired on 2099-01-01") for f in reopened.kept)
    # --no-suppress: everything counts
    assert counts(review.apply(found, review.load(path), ctx.index, enabled=False).kept) == before


def test_a_suppression_needs_a_reason_and_stale_entries_are_reported(tmp_path):
    ctx, found = _audit(DEMO, tmp_path)
    sec004 = _one(found, "SEC-004", "app/api/routes_admin.py")
    path = tmp_path / "review.toml"
    path.write_text(f'[[judgement]]\nfingerprint = "{sec004.fingerprint}"\nstatus = "false-positive"\n\n'
                    '[[judgement]]\nfingerprint = "0000000000000000"\ncheck = "SEC-011"\nstatus = "fixed-elsewhere"\n'
                    'reason = "moved to the gateway"\n')
    applied = review.apply(found, review.load(path), ctx.index)
    assert applied.suppressed == [] and sec004 in applied.kept
    titles = sorted((f.severity.value, f.title) for f in applied.notes)
    assert titles == [("INFO", "Review entry matches no finding: 0000000000000000"),
                      ("WARNING", "Suppression without a reason ignored: SEC-004 " + sec004.title)]
    with pytest.raises(review.ReviewError):
        review.record(path, "x", "false-positive", "   ")
    bad = tmp_path / "bad.toml"
    bad.write_text('[[judgement]]\nfingerprint = "x"\nstatus = "maybe"\n')
    with pytest.raises(review.ReviewError, match="status"):
        review.load(bad)


def test_inline_ignore_on_the_line_or_on_the_enclosing_def(tmp_path):
    root = _copy(tmp_path, "inline")
    _edit(root / "app/services/email.py", "  expect: FUNC-002\n", "  # auditlib: ignore[FUNC-002] tracked in JIRA-12\n")
    text = (root / "app/api/routes_admin.py").read_text()
    (root / "app/api/routes_admin.py").write_text(text.replace(
        '@stats_router.get("/stats")', '@stats_router.get("/stats")  # auditlib: ignore[SEC-004, SEC-005] behind the VPN'))
    _edit(root / "app/services/bookings.py", "async def create_booking(session: AsyncSession, org_id: int, "
          "data: BookingCreate) -> Booking:", "async def create_booking(session: AsyncSession, org_id: int, "
          "data: BookingCreate) -> Booking:  # auditlib: ignore[FUNC-002] overlap check lands in 2.1")
    ctx, found = _audit(root, tmp_path)
    applied = review.apply(found, [], ctx.index)
    got = sorted((f.check, f.locations[0].file, j.reason, j.where) for f, j in applied.suppressed)
    assert got == [("FUNC-002", "app/services/bookings.py", "overlap check lands in 2.1", "app/services/bookings.py:59"),
                   ("FUNC-002", "app/services/email.py", "tracked in JIRA-12", "app/services/email.py:48"),
                   ("SEC-004", "app/api/routes_admin.py", "behind the VPN", "app/api/routes_admin.py:24"),
                   ("SEC-005", "app/api/routes_admin.py", "behind the VPN", "app/api/routes_admin.py:24")]


def test_review_command_writes_the_file(tmp_path, capsys):
    root = _copy(tmp_path, "cmd")
    assert main(["review", str(root), "abc123", "--status", "accepted-risk", "--reason", "pen-test scope",
                 "--reviewer", "qa", "--expires", "2027-01-31", "--check", "SEC-005"]) == 0
    (j,) = review.load(root / "auditlib-review.toml")
    assert (j.fingerprint, j.status, j.reason, j.reviewer, j.expires, j.check) == (
        "abc123", "accepted-risk", "pen-test scope", "qa", dt.date(2027, 1, 31), "SEC-005")
    assert main(["review", str(root), "abc123", "--status", "false-positive", "--reason", "x",
                 "--expires", "2027-01-31"]) == 2


def test_reports_list_suppressed_findings_and_open_with_the_changes(tmp_path):
    from dataclasses import replace
    from datetime import datetime, timezone

    from auditlib.report import write_reports
    from auditlib.report.model import RunResult

    ctx, found = _audit(DEMO, tmp_path)
    sec001 = _one(found, "SEC-001", "app/settings.py")
    sec001 = replace(sec001, title=sec001.title + " <script>alert(1)</script>")
    judged = review.Judgement(sec001.fingerprint, "accepted-risk", "rotated <b>weekly</b>", "qa", dt.date(2099, 1, 1))
    kept = [f for f in found if f.fingerprint != sec001.fingerprint]
    before = Audit(found, verdict(found).value, "old")
    changes = compare(before, Audit(kept, verdict(kept).value, "new"))
    run = RunResult("0.1.0", DEMO, "bookly", None, datetime.now(timezone.utc), datetime.now(timezone.utc),
                    {"static": "ran"}, kept, [], suppressed=[(sec001, judged.to_dict())], changes=changes.to_dict())
    paths = write_reports(run, tmp_path / "reports")
    data = json.loads(paths["json"].read_text())
    assert [s["fingerprint"] for s in data["suppressed"]] == [sec001.fingerprint]
    assert data["suppressed"][0]["judgement"]["status"] == "accepted-risk"
    assert data["counts"]["BLOCKER"] == data["counts_with_suppressed"]["BLOCKER"] - 1
    assert data["changes"]["resolved"][0]["fingerprint"] == sec001.fingerprint
    md = paths["markdown"].read_text()
    assert md.index("## Changes since the previous audit") < md.index("## EXECUTIVE SUMMARY")
    assert "## APPENDIX: SUPPRESSED FINDINGS" in md and "accepted-risk until 2099-01-01" in md
    html = paths["html"].read_text()
    assert 'id="al-changes"' in html and 'id="al-suppressed"' in html
    assert html.index('id="al-changes"') < html.index('id="al-blockers"')
    assert "<script>alert(1)</script>" not in html and "rotated <b>weekly</b>" not in html


def test_run_rejects_a_broken_review_file_or_baseline(tmp_path, capsys):
    root = _copy(tmp_path, "broken-review")
    (root / "auditlib-review.toml").write_text('[[judgement]]\nfingerprint = "x"\nstatus = "maybe"\n')
    assert main(["run", str(root), "--db", "none", "--no-progress"]) == 2
    assert "status among" in capsys.readouterr().err
    (root / "auditlib-review.toml").unlink()
    assert main(["run", str(root), "--db", "none", "--no-progress", "--baseline", str(tmp_path / "none")]) == 2
    assert "not a findings.json" in capsys.readouterr().err


def test_summary_notebook_counts_what_the_report_counts(tmp_path, monkeypatch):
    from auditlib import workbook

    root = _copy(tmp_path, "summary")
    ctx, found = _audit(root, tmp_path)
    sec001 = _one(found, "SEC-001", "app/settings.py")
    review.record(root / review.REVIEW_FILE, sec001.fingerprint, "false-positive", "rejected at start-up")
    monkeypatch.delenv(workbook.REVIEW_ENV, raising=False)
    ctx = AuditContext.open(root, tmp_path / "summary-out")
    assert sec001.fingerprint not in {f.fingerprint for f in workbook.collect_all(ctx)}
    monkeypatch.setenv(workbook.REVIEW_ENV, "")  # what the batch run sets for --no-suppress
    ctx = AuditContext.open(root, tmp_path / "summary-out2")
    assert sec001.fingerprint in {f.fingerprint for f in workbook.collect_all(ctx)}


def test_a_finding_judged_in_review_is_suppressed_not_resolved(tmp_path):
    _, found = _audit(DEMO, tmp_path)
    sec001 = _one(found, "SEC-001", "app/settings.py")
    kept = [f for f in found if f is not sec001]
    ch = compare(Audit(found, verdict(found).value, "old"),
                 Audit(kept, verdict(kept).value, "new", {sec001.fingerprint}))
    assert ch.resolved == [] and ch.suppressed == [sec001] and ch.to_dict()["suppressed"][0]["check"] == "SEC-001"
