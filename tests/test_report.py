"""Report writers: findings.json, report.md, report.sarif, report.html (auditlib.report)."""
from __future__ import annotations

import json
import platform
import re
from datetime import datetime, timezone
from html.parser import HTMLParser
from pathlib import Path

import nbformat
import pytest

from auditlib.findings import Finding, Location, Severity, assign_fingerprints, not_verified
from auditlib.report import NotebookResult, RunResult, build_report_notebook, write_reports
from auditlib.report import html as report_html
from auditlib.report.markdown import md_cell, md_code, md_fenced

XSS = "<script>alert(1)</script>"
TICKS = "``` and ````"  # a backtick run of 4 inside the excerpt

PNG = ("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAA"
       "AABJRU5ErkJggg==")

SECTION_HEADINGS = [
    "## EXECUTIVE SUMMARY",
    "## 1. ФУНКЦИОНАЛЬНАЯ ПОЛНОТА",
    "## 2. SECURITY ASSESSMENT",
    "## 3. RELIABILITY",
    "## 4. OBSERVABILITY",
    "## 5. COMPLIANCE",
    "## 6. PERFORMANCE",
    "## 7. TESTING",
    "## 8. BLOCKERS (MUST FIX BEFORE PRODUCTION)",
    "## 9. WARNINGS (FIX SOON AFTER LAUNCH)",
    "## 10. RECOMMENDATIONS",
    "## 11. RELEASE CHECKLIST",
    "## 12. CONCLUSION",
]


def _findings() -> list[Finding]:
    blocker = Finding(
        check="SEC-010", area="security", severity=Severity.BLOCKER,
        title=f"Query without tenant filter {XSS}",
        message="Any tenant can read other tenants' orders | really",
        fix="Filter by tenant_id in the repository layer",
        locations=[
            Location("app/api/orders.py", 42, 44,
                     f"rows = await db.execute(select(Order))  # {XSS} {TICKS}"),
            Location("app/services/orders.py", 7, None, "return rows"),
        ],
        routes=[{"method": "GET", "path": "/api/orders"}],
        tables=["orders"],
    )
    warning = Finding(
        check="REL-003", area="reliability", severity=Severity.WARNING,
        title="HTTP client without timeout",
        message="A slow upstream blocks the worker.",
        fix="Pass timeout= to httpx.AsyncClient",
        locations=[Location("app/services/mail.py", 12, None, "httpx.AsyncClient()")],
    )
    rec = Finding(
        check="PERF-002", area="performance", severity=Severity.RECOMMENDATION,
        title="Missing index on orders.created_at",
        message="Sorting by created_at scans the table.",
        fix="CREATE INDEX ...",
        locations=[Location("alembic/versions/0001_init.py", 30, None, "sa.Column('created_at')")],
        tables=["orders"],
    )
    info = Finding(
        check="FUNC-001", area="functional", severity=Severity.INFO,
        title="Orders API implemented",
        message="12 endpoints found.",
        locations=[Location("app/api/orders.py", 1, None, "")],
    )
    return assign_fingerprints([info, rec, warning, blocker])


def _source_notebook(path: Path) -> Path:
    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell("target = None")
    params.metadata["tags"] = ["parameters"]
    injected = nbformat.v4.new_code_cell("target = '/tmp/x'")
    injected.metadata["tags"] = ["injected-parameters"]
    md = nbformat.v4.new_markdown_cell("# Summary notebook\n\nSome prose.")
    code = nbformat.v4.new_code_cell("display(df)")
    code.outputs = [
        nbformat.v4.new_output(
            "display_data",
            data={"text/html": "<table><tr><td>synthetic-output-marker</td></tr></table>",
                  "text/plain": "synthetic-output-marker"}),
        nbformat.v4.new_output("display_data", data={"image/png": PNG, "text/plain": "<Figure>"}),
        # a tqdm-style widget: needs JS from a CDN -> dropped, text/plain fallback kept
        nbformat.v4.new_output("display_data", data={
            "application/vnd.jupyter.widget-view+json": {"model_id": "m1", "version_major": 2,
                                                         "version_minor": 0},
            "text/plain": "progress-fallback-marker"}),
    ]
    # Same ids as cells of the other notebook: the stitcher must renumber them.
    for i, cell in enumerate([params, injected, md, code]):
        cell.id = f"dup-{i}"
    nb.cells = [params, injected, md, code]
    nbformat.write(nb, str(path))
    return path


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> RunResult:
    d = tmp_path_factory.mktemp("nbs")
    summary = _source_notebook(d / "summary.ipynb")
    functional = _source_notebook(d / "functional.ipynb")  # same cell ids as summary
    return RunResult(
        tool_version="0.1.0",
        target_root=Path("/srv/bookly"),
        target_name="bookly",
        commit="abc1234",
        started=datetime(2024, 5, 17, 9, 30, tzinfo=timezone.utc),
        finished=datetime(2024, 5, 17, 9, 41, tzinfo=timezone.utc),
        stages={"static": "ran", "db": "ran: embedded PostgreSQL (throwaway)",
                "tests": "skipped: no pytest in target venv"},
        findings=_findings(),
        notebooks=[
            NotebookResult("security", "Security", d / "missing-security.ipynb", "failed",
                           "kernel died: <b>boom</b>", 1.5),
            NotebookResult("summary", "Summary", summary, "ok", "", 0.4),
            NotebookResult("functional", "Functional completeness", functional, "ok", "", 0.3),
        ],
        stats={"endpoints_reviewed": 12, "files_indexed": 30, "files_unparsed": 0,
               "db_url": "postgresql://***@localhost/bookly"},
    )


@pytest.fixture(scope="module")
def out(run, tmp_path_factory) -> dict[str, Path]:
    return write_reports(run, tmp_path_factory.mktemp("out"))


# --------------------------------------------------------------------------- findings.json
def test_findings_json_contract(out, run):
    data = json.loads(out["json"].read_text(encoding="utf-8"))
    assert list(data) == ["schema", "tool", "target", "generated_at", "verdict", "stages", "review",
                          "counts", "stats", "findings", "suppressed", "counts_with_suppressed"]
    assert data["suppressed"] == [] and data["counts_with_suppressed"] == data["counts"]
    # added to @1: one reason per stage that did not do its work and per failed notebook
    assert data["review"] == {"status": "INCOMPLETE", "reasons": [
        "tests: skipped: no pytest in target venv", "notebook Security failed: kernel died: <b>boom</b>"]}
    assert data["schema"] == "auditlib/findings@1"
    assert data["tool"] == {"name": "auditlib", "version": "0.1.0", "python": platform.python_version()}
    assert data["target"] == {"root": "/srv/bookly", "name": "bookly", "commit": "abc1234"}
    assert data["verdict"] == "NOT READY"
    assert data["counts"] == {"BLOCKER": 1, "WARNING": 1, "RECOMMENDATION": 1, "INFO": 1}
    assert data["stages"]["tests"] == "skipped: no pytest in target venv"
    assert data["stats"]["endpoints_reviewed"] == 12
    assert data["generated_at"].startswith("2024-05-17T09:41")
    assert [f["severity"] for f in data["findings"]] == ["BLOCKER", "WARNING", "RECOMMENDATION", "INFO"]
    fps = {f.fingerprint for f in run.findings}
    assert {f["fingerprint"] for f in data["findings"]} == fps and len(fps) == 4
    assert Finding.from_dict(data["findings"][0]).title == f"Query without tenant filter {XSS}"


def test_verdict_and_counts_follow_the_findings(run, tmp_path):
    from dataclasses import replace

    from auditlib.report import findings_json

    only_warning = replace(run, findings=[f for f in run.findings if f.severity is not Severity.BLOCKER])
    data = findings_json(only_warning)
    assert data["verdict"] == "READY WITH CONDITIONS"
    assert data["counts"] == {"BLOCKER": 0, "WARNING": 1, "RECOMMENDATION": 1, "INFO": 1}
    ready = replace(run, findings=[f for f in run.findings if f.severity.rank < 2])
    assert findings_json(ready)["verdict"] == "READY"


# --------------------------------------------------------------------------- report.md
def _section(md: str, heading: str) -> str:
    start = md.index(heading + "\n")
    nxt = re.search(r"^## ", md[start + len(heading):], flags=re.M)
    return md[start: start + len(heading) + nxt.start()] if nxt else md[start:]


def test_markdown_has_the_12_sections_in_order(out):
    md = out["markdown"].read_text(encoding="utf-8")
    assert md.startswith("# PRODUCTION READINESS AUDIT REPORT\n")
    assert "**Application:** bookly" in md and "**Audit Date:** 2024-05-17" in md
    assert "**Auditor:** auditlib 0.1.0" in md
    h2 = re.findall(r"^## .*$", md, flags=re.M)
    assert h2 == SECTION_HEADINGS
    lines = md.splitlines()
    verdicts = [line for line in lines if line.startswith("### VERDICT:")]
    assert verdicts == ["### VERDICT: ❌ NOT READY"]
    h3 = [line for line in lines if line.startswith("### ") and "#" not in line[4:]]
    expected_h3 = [
        "### VERDICT: ❌ NOT READY", "### CRITICAL STATISTICS",
        "### Реализованные фичи", "### Незавершенные фичи",
        "### Authentication & Authorization", "### Multi-Tenant Isolation",
        "### Input Validation", "### Secrets Management",
        "### Database", "### External Services", "### Jobs Runner",
        "### Metrics", "### Logging", "### Health Checks",
        "### Email Compliance", "### Data Retention",
        "### Database Performance", "### Async Efficiency",
        "### Coverage: n/a", "### Passed: not run", "### Missing Critical Tests",
        "### Immediate Actions (Before Launch)", "### Short-term (First Month)",
        "### Long-term (Future Improvements)",
        "### Pre-Deployment", "### Deployment", "### Post-Deployment",
    ]
    assert h3 == expected_h3


def test_markdown_statistics_and_conclusion(out):
    md = out["markdown"].read_text(encoding="utf-8")
    assert "- Tests: not run (skipped: no pytest in target venv)" in md
    assert "- Security Issues: 1 critical, 0 high, 0 medium" in md
    assert "- Blockers: 1 issues" in md and "- Warnings: 1 issues" in md
    assert "- Endpoints Reviewed: 12 total" in md
    assert "**Data Isolation Score:** 7/10" in md  # 10 - 3 * 1 BLOCKER
    assert "`GET /api/orders`" in _section(md, "## 2. SECURITY ASSESSMENT")
    # 1 BLOCKER + 0.5 WARNING = 1.5 -> 2 days
    assert "**Estimated Time to Production Ready:** 2 days" in md
    assert "**Recommended Approach:** Phased rollout" in md
    assert "**Report Compiled By:** auditlib 0.1.0" in md
    status = re.search(r"^\*\*Review Status:\*\* (.*)$", md, flags=re.M).group(1)
    assert status.startswith("INCOMPLETE — stages not run: tests (skipped: no pytest in target venv)")
    assert "notebooks failed: Security" in status


def test_markdown_checklist_ticks_only_what_is_proven(out):
    md = _section(out["markdown"].read_text(encoding="utf-8"), "## 11. RELEASE CHECKLIST")
    ticked = re.findall(r"^- \[x\] (.*)$", md, flags=re.M)
    unticked = re.findall(r"^- \[ \] ([^—\n]*?)(?: — .*)?$", md, flags=re.M)
    # db stage ran and there is no DEP-002 blocker -> migrations tested; nothing else proven
    assert [t.split(" — ")[0] for t in ticked] == ["Migrations tested"]
    assert unticked == [
        "All blockers fixed", "All tests passing", "Production secrets configured",
        "Database backed up", "Deploy to staging first", "Run smoke tests",
        "Monitor metrics for 24h", "Gradual rollout (10% → 50% → 100%)",
        "Monitor error rates", "Check health endpoints", "Verify metrics collection",
        "Test critical user flows"]


def test_markdown_blockers_section_has_evidence(out, run):
    md = out["markdown"].read_text(encoding="utf-8")
    sec8 = _section(md, "## 8. BLOCKERS (MUST FIX BEFORE PRODUCTION)")
    blockers = [f for f in run.findings if f.severity is Severity.BLOCKER]
    assert len(re.findall(r"^### BLOCKER #\d+: ", sec8, flags=re.M)) == len(blockers) == 1
    for f in blockers:
        for loc in f.locations:
            assert f"`{loc.file}:{loc.line}" in sec8
        assert f"fingerprint `{f.fingerprint}`" in sec8
    assert "### BLOCKER #1: Query without tenant filter \\<script>alert(1)\\</script>" in sec8
    assert "**Severity:** CRITICAL" in sec8
    assert "**Fix Required:** Filter by tenant\\_id" not in sec8  # no over-escaping
    assert "**Fix Required:** Filter by tenant_id in the repository layer" in sec8
    assert "- Routes: `GET /api/orders`" in sec8 and "- Tables: `orders`" in sec8
    # the excerpt sits in a fence longer than its longest backtick run (4) -> 5 backticks
    fence = re.search(r"^(`{3,})python\n(.*?)\n\1$", sec8, flags=re.M | re.S)
    assert fence and len(fence.group(1)) == 5 and TICKS in fence.group(2)
    sec9 = _section(md, "## 9. WARNINGS (FIX SOON AFTER LAUNCH)")
    assert "### WARNING #1: HTTP client without timeout" in sec9 and "**Severity:** HIGH" in sec9
    sec10 = _section(md, "## 10. RECOMMENDATIONS")
    assert ("1. [REL-003] HTTP client without timeout — Pass timeout= to httpx.AsyncClient "
            "(app/services/mail.py:12)") in sec10


def test_markdown_area_tables_and_failure_notes(out, run):
    md = out["markdown"].read_text(encoding="utf-8")
    sec2 = _section(md, "## 2. SECURITY ASSESSMENT")
    row = next(line for line in sec2.splitlines() if line.startswith("| BLOCKER |"))
    # the title's "<" and the message's "|" cannot break the table / inject HTML
    assert row.count(" | ") == 3 and "\\<script>" in row
    assert "Stage/notebook failed:** Notebook Security failed: kernel died: \\<b>boom\\</b>" in sec2
    sec7 = _section(md, "## 7. TESTING")
    assert "Stage `tests` skipped: no pytest in target venv" in sec7
    assert "No findings." in sec7
    assert "| RECOMMENDATION | PERF-002 |" in _section(md, "## 6. PERFORMANCE")
    assert "Orders API implemented" in _section(md, "### Реализованные фичи").split("###")[1]


def test_markdown_escape_helpers():
    from auditlib.report.markdown import md_inline

    # balanced code spans survive (literal, so "<" inside is harmless), the rest is escaped
    assert md_inline("set `x<y` in <b>[a](javascript:z)</b>") == \
        "set `x<y` in \\<b>\\[a](javascript:z)\\</b>"
    assert md_inline("stray ` tick\nand \\ slash") == "stray \\` tick and \\\\ slash"
    assert md_cell("a|b\nc`d") == "a\\|b<br>c\\`d"
    assert md_code("x `y` z") == "``x `y` z``"
    assert md_code("`edge") == "`` `edge ``"
    block = md_fenced("a ```` b", "Dockerfile")
    assert block.startswith("`````dockerfile\n") and block.endswith("\n`````")


def test_not_verified_warning_shows_like_any_finding(run, tmp_path):
    from dataclasses import replace

    from auditlib.report import render_markdown

    nv = not_verified("OBS-001", "observability", "health endpoint", "app did not start")
    cov = not_verified("AUD-001", "audit", "app/legacy.py", "syntax error")
    findings = assign_fingerprints(run.findings + [nv, cov])
    md = render_markdown(replace(run, findings=findings))
    # every finding is in exactly one area table (audit-coverage ones in the summary)
    for f in findings:
        rows = re.findall(rf"^\| {f.severity.value} \| {re.escape(f.check)} \|", md, flags=re.M)
        assert len(rows) == 1, f.check
    assert "| WARNING | AUD-001 |" in _section(md, "## EXECUTIVE SUMMARY")
    sec4 = _section(md, "## 4. OBSERVABILITY")
    assert "| WARNING | OBS-001 | OBS-001 not verified: health endpoint | . |" in sec4
    assert "### WARNING #" in md and "OBS-001 not verified: health endpoint" in \
        _section(md, "## 9. WARNINGS (FIX SOON AFTER LAUNCH)")


def test_markdown_ready_run(run, monkeypatch):
    from dataclasses import replace

    from auditlib.report import render_markdown

    clean = replace(
        run,
        findings=[f for f in run.findings if f.severity.rank < 2],
        stages={"static": "ran", "db": "ran", "tests": "ran"},
        notebooks=[nb for nb in run.notebooks if nb.status == "ok"],
        stats={"tests_passed": 40, "tests_failed": 0, "tests_skipped": 2, "coverage": 81.5},
    )
    from auditlib.report import common

    # a clean 10/10 needs an isolation check to exist and its stage to have run
    monkeypatch.setattr(common, "registered_checks", lambda: {"SEC-001", "SEC-011"})
    md = render_markdown(clean)
    assert "### VERDICT: ✅ READY\n" in md and "NOT READY" not in md
    assert "- Tests: 40 passed / 0 failed (2 skipped)" in md
    assert "- Endpoints Reviewed: not inventoried" in md
    assert "### Coverage: 81.5%" in md and "### Passed: 40 / 42 tests" in md
    assert "**Data Isolation Score:** 10/10" in md  # the static stage ran, nothing found
    assert "**Estimated Time to Production Ready:** 0 days" in md
    assert "**Recommended Approach:** Standard" in md
    assert "**Review Status:** COMPLETE" in md
    sec11 = _section(md, "## 11. RELEASE CHECKLIST")
    assert [t.split(" — ")[0] for t in re.findall(r"^- \[x\] (.*)$", sec11, flags=re.M)] == [
        "All blockers fixed", "All tests passing", "Migrations tested"]
    assert "No blockers." in md and "No warnings." in md

    unassessed = replace(clean, stages={"tests": "ran"})
    assert "**Data Isolation Score:** not assessed" in render_markdown(unassessed)
    monkeypatch.setattr(common, "registered_checks", lambda: {"SEC-001"})
    assert "**Data Isolation Score:** not assessed" in render_markdown(clean)
    dep = Finding(check="DEP-002", area="deployment", severity=Severity.BLOCKER,
                  title="Migrations fail on an empty database", message="alembic upgrade failed")
    md = render_markdown(replace(clean, findings=assign_fingerprints(clean.findings + [dep])))
    assert "- [ ] Migrations tested" in md
    assert "| BLOCKER | DEP-002 |" in _section(md, "## 3. RELIABILITY")
    assert "No evidence recorded." in _section(md, "## 8. BLOCKERS (MUST FIX BEFORE PRODUCTION)")


# --------------------------------------------------------------------------- report.sarif
def test_sarif(out, run):
    s = json.loads(out["sarif"].read_text(encoding="utf-8"))
    assert s["version"] == "2.1.0" and "sarif-2.1.0" in s["$schema"]
    assert len(s["runs"]) == 1
    r = s["runs"][0]
    driver = r["tool"]["driver"]
    assert driver["name"] == "auditlib" and driver["version"] == "0.1.0"
    assert [rule["id"] for rule in driver["rules"]] == ["SEC-010", "REL-003", "PERF-002", "FUNC-001"]
    assert driver["rules"][1]["shortDescription"]["text"] == "HTTP client without timeout"
    levels = {res["ruleId"]: res["level"] for res in r["results"]}
    assert levels == {"SEC-010": "error", "REL-003": "warning", "PERF-002": "note", "FUNC-001": "none"}
    by_rule = {res["ruleId"]: res for res in r["results"]}
    blk = by_rule["SEC-010"]
    assert blk["partialFingerprints"] == {"auditlib/v1": run.findings[0].fingerprint}
    phys = blk["locations"][0]["physicalLocation"]
    assert phys["artifactLocation"]["uri"] == "app/api/orders.py"
    assert phys["region"]["startLine"] == 42 and phys["region"]["endLine"] == 44
    assert len(blk["locations"]) == 2
    assert XSS in blk["message"]["text"]  # JSON is not HTML: raw text, consumers escape
    for res in r["results"]:
        assert driver["rules"][res["ruleIndex"]]["id"] == res["ruleId"]


# --------------------------------------------------------------------------- report.html
class _Collector(HTMLParser):
    def __init__(self):
        super().__init__()
        self.ids: list[str] = []
        self.toc_hrefs: list[str] = []
        self.external: list[str] = []
        self.scripts: list[str] = []
        self.handlers: list[str] = []
        self.findings: list[dict] = []
        self._in_toc = False
        self._in_script = False

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if "id" in a:
            self.ids.append(a["id"])
        if tag == "nav" and "auditlib-toc" in (a.get("class") or ""):
            self._in_toc = True
        if tag == "a" and self._in_toc:
            self.toc_hrefs.append(a.get("href", ""))
        if tag == "script":
            self._in_script = True
            self.scripts.append("")
        if "al-finding" in (a.get("class") or "").split():
            self.findings.append(a)
        self.handlers += [f"{tag} {k}" for k in a if k.startswith("on")]
        for attr in ("src", "href"):
            v = (a.get(attr) or "").strip().lower()
            if tag in ("script", "link", "img", "iframe") and (v.startswith(("http:", "https:", "//"))):
                self.external.append(f"{tag} {attr}={v}")

    def handle_data(self, data):
        if self._in_script:
            self.scripts[-1] += data

    def handle_endtag(self, tag):
        if tag == "nav":
            self._in_toc = False
        if tag == "script":
            self._in_script = False


def _parse(text: str) -> _Collector:
    p = _Collector()
    p.feed(text)
    return p


def _element(text: str, element_id: str) -> str:
    """The HTML of the element with this id, up to its end tag (no nesting of the same tag)."""
    m = re.search(rf'<(\w+)[^>]*\bid="{re.escape(element_id)}"', text)
    assert m, element_id
    end = text.index(f"</{m.group(1)}>", m.end())
    return text[m.start(): end]


def _start_tag(text: str, element_id: str) -> str:
    return re.search(rf'<\w+[^>]*\bid="{re.escape(element_id)}"[^>]*>', text).group(0)


def test_html_report(out, run):
    text = out["html"].read_text(encoding="utf-8")
    assert "NOT READY" in text and "bookly" in text
    for f in run.findings:
        assert report_html.esc(f.title) in text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    assert "<script>alert(1)" not in text
    assert "This section failed:</strong> kernel died: &lt;b&gt;boom&lt;/b&gt;" in text
    assert "<b>boom</b>" not in text
    assert "synthetic-output-marker" in text  # the executed notebook's display_data
    assert "target = None" not in text and "/tmp/x" not in text  # parameters cells dropped
    assert f"data:image/png;base64,{PNG}" in text  # images embedded
    assert "progress-fallback-marker" in text and "widget-view+json" not in text


def test_html_only_script_is_ours_and_the_csp_allows_nothing_else(out):
    import base64
    import hashlib

    text = out["html"].read_text(encoding="utf-8")
    p = _parse(text)
    assert p.scripts == [report_html.SCRIPT]  # nothing else executable is left at all
    assert p.handlers == []  # no on*= attribute anywhere
    csp = re.search(r'<meta content="([^"]*)" http-equiv="Content-Security-Policy"', text).group(1)
    digest = base64.b64encode(hashlib.sha256(p.scripts[0].encode()).digest()).decode()
    assert f"script-src 'sha256-{digest}'" in csp and "unsafe-inline' ;" not in csp
    assert "default-src 'none'" in csp and "unsafe-eval" not in csp


def test_html_makes_no_network_fetches(out):
    text = out["html"].read_text(encoding="utf-8")
    assert not re.search(r"""<script[^>]*\bsrc\s*=""", text, re.I)
    assert not re.search(r"""<link[^>]*\bhref\s*=\s*["']?\s*(https?:)?//""", text, re.I)
    assert 'src="http' not in text and "cdnjs" not in text and "unpkg" not in text
    assert _parse(text).external == []


def test_html_toc_links_land_on_existing_anchors(out):
    p = _parse(out["html"].read_text(encoding="utf-8"))
    assert len(p.ids) == len(set(p.ids)), "duplicate element ids"
    assert all(h.startswith("#") for h in p.toc_hrefs)
    targets = [h[1:] for h in p.toc_hrefs]
    assert set(targets) <= set(p.ids)
    # the decision first, then the findings, then the notebooks (summary first, in the given order)
    assert targets == ["auditlib-verdict", "al-stats", "al-stages", "al-blockers", "al-warnings", "al-other",
                       "al-appendix", "auditlib-sec-01-summary", "auditlib-sec-02-security",
                       "auditlib-sec-03-functional"]


def test_html_front_page_order_and_review_status(out):
    text = out["html"].read_text(encoding="utf-8")
    order = [text.index(f'id="{i}"') for i in ("auditlib-verdict", "al-review", "al-stats", "al-stages",
                                                "al-blockers", "al-warnings", "al-other", "al-appendix",
                                                "auditlib-sec-01-summary")]
    assert order == sorted(order)
    review = _element(text, "al-review")
    assert "INCOMPLETE" in review
    assert "<li>tests: skipped: no pytest in target venv</li>" in review
    assert "<li>notebook Security failed: kernel died: &lt;b&gt;boom&lt;/b&gt;</li>" in review
    stats = _element(text, "al-stats") + text[text.index('class="al-stats"'):text.index('id="al-stages"')]
    for label, value in [("Blockers", "1"), ("Warnings", "1"), ("Security issues", "1 critical, 0 high"),
                         ("Tests", "not run"), ("Endpoints reviewed", "12 total"),
                         ("Data isolation score", "7/10"), ("Estimated time to production ready", "2 days")]:
        assert (f'<div class="al-stat-label">{label}</div><div class="al-stat-value">{value}</div>'
                in stats), label
    stages = text[text.index('id="al-stages"'):text.index('id="al-findings"')]
    assert ('<strong>db</strong></td><td><span class="al-badge al-stage-ran">ran</span></td>'
            "<td>embedded PostgreSQL (throwaway)</td>") in stages
    assert '<strong>tests</strong></td><td><span class="al-badge al-stage-skipped">skipped</span>' in stages


def test_html_every_finding_once_with_anchor_and_filter_attributes(out, run):
    text = out["html"].read_text(encoding="utf-8")
    p = _parse(text)
    by_id = {a["id"]: a for a in p.findings}
    assert len(p.findings) == len(by_id) == len(run.findings)
    for f in run.findings:
        a = by_id[f"f-{f.fingerprint}"]
        assert (a["data-sev"], a["data-area"], a["data-check"]) == (f.severity.value, f.area, f.check)
        assert f'href="#f-{f.fingerprint}"' in text  # a permalink to itself
    # the filter offers exactly the severities, areas and checks present
    flt = _element(text, "al-filter")
    assert re.findall(r'<option value="([^"]+)"', flt) == [
        "BLOCKER", "WARNING", "RECOMMENDATION", "INFO",
        "functional", "security", "reliability", "performance",
        "FUNC-001", "PERF-002", "REL-003", "SEC-010"]


def test_html_blocker_card_has_evidence_why_and_fix(out, run):
    text = out["html"].read_text(encoding="utf-8")
    [blocker] = [f for f in run.findings if f.severity is Severity.BLOCKER]
    card = _element(text, f"f-{blocker.fingerprint}")
    assert card.startswith("<article")
    assert '<code class="al-loc">app/api/orders.py:42-44</code>' in card
    assert '<code class="al-loc">app/services/orders.py:7</code>' in card
    assert ('<pre class="al-excerpt">rows = await db.execute(select(Order))  # '
            "&lt;script&gt;alert(1)&lt;/script&gt; ``` and ````</pre>") in card
    assert "<h4>Affected routes (1)</h4>" in card and "<code>GET /api/orders</code>" in card
    assert "<h4>Tables</h4>" in card and "<code>orders</code>" in card
    assert "<h4>Why it matters</h4><p>Any tenant can read other tenants' orders | really</p>" in card
    assert "<h4>How to fix</h4><p>Filter by tenant_id in the repository layer</p>" in card
    # the blockers section holds the blocker; the warning is in its area's group
    blockers = text[text.index('id="al-blockers"'):text.index('id="al-warnings"')]
    assert f'id="f-{blocker.fingerprint}"' in blockers
    [warning] = [f for f in run.findings if f.severity is Severity.WARNING]
    group = text[text.index('id="al-warnings-reliability"'):text.index('id="al-other"')]
    assert _start_tag(text, f"f-{warning.fingerprint}").startswith("<details")
    assert f'id="f-{warning.fingerprint}"' in group
    assert " open" in _start_tag(text, "al-warnings-reliability")
    assert re.search(r'<summary>Reliability and infrastructure<span class="al-count" data-al-count[^>]*>1</span>',
                     group)
    assert " open" not in _start_tag(text, "al-other-recommendation")  # collapsed


def test_html_code_spans_in_messages_are_code_but_never_markup():
    f = assign_fingerprints([Finding(
        check="SEC-001", area="security", severity=Severity.BLOCKER, title="Secret `auth_key` <i>x</i>",
        message="`<img src=x onerror=alert(1)>` and `settings.x`", fix="")])[0]
    card = report_html.finding_card(f)
    assert "<h3>Secret <code>auth_key</code> &lt;i&gt;x&lt;/i&gt;</h3>" in card
    assert "<p><code>&lt;img src=x onerror=alert(1)&gt;</code> and <code>settings.x</code></p>" in card
    assert "<img" not in card


def test_html_long_evidence_is_collapsed_with_a_count():
    f = assign_fingerprints([Finding(
        check="SEC-011", area="security", severity=Severity.BLOCKER, title="Unscoped", message="m",
        locations=[Location(f"app/r{i}.py", i + 1, None, "q") for i in range(8)],
        routes=[{"method": "GET", "path": f"/r/{i}"} for i in range(15)])])[0]
    card = report_html.finding_card(f)
    assert card.count('<code class="al-loc">') == 8
    assert '<details class="al-more"><summary>3 more locations</summary>' in card
    assert card.index("app/r4.py") < card.index("3 more locations") < card.index("app/r5.py")
    assert "<h4>Affected routes (15)</h4>" in card and "<summary>3 more routes</summary>" in card


def test_html_warnings_of_a_large_area_start_collapsed():
    many = assign_fingerprints([Finding(check="REL-003", area="reliability", severity=Severity.WARNING,
                                        title=f"w{i}", message="m", key=str(i)) for i in range(16)])
    html_text = report_html.findings_html(RunResult("0", Path("/x"), "x", None, datetime.now(timezone.utc),
                                                    datetime.now(timezone.utc), {}, many, []))
    assert ('<details class="al-group" id="al-warnings-reliability" data-al-group><summary>'
            'Reliability and infrastructure<span class="al-count" data-al-count>16</span>') in html_text


def test_pandas_tables_lose_the_range_index_and_long_ones_collapse():
    import pandas as pd

    plain = pd.DataFrame({"file": ["a.py", "<b>.py"], "line": [1, 2]})._repr_html_()
    tidy = report_html.tidy_dataframe_html(plain)
    assert "<th>0</th>" not in tidy and "<th>1</th>" not in tidy and "<th></th>" not in tidy
    assert re.findall(r"<th>(.*?)</th>", tidy) == ["file", "line"]
    assert "<td>&lt;b&gt;.py</td>" in tidy and 'style="text-align: right;"' not in tidy
    assert "<details" not in tidy
    named = pd.DataFrame({"n": [1, 2]}, index=pd.Index(["Security", "Testing"], name="area"))._repr_html_()
    assert "<th>Security</th>" in report_html.tidy_dataframe_html(named)  # a meaningful index stays
    long = report_html.tidy_dataframe_html(pd.DataFrame({"x": range(25)})._repr_html_())
    assert '<details class="al-df-wrap"><summary>Show the table (25 rows)</summary><table' in long
    assert "<th>24</th>" not in long and "<td>24</td>" in long


def test_stitched_notebook(out, run):
    nb = nbformat.read(str(out["notebook"]), as_version=4)
    nbformat.validate(nb)
    ids = [cell.id for cell in nb.cells]
    assert len(ids) == len(set(ids))
    assert not any(set(c.metadata.get("tags", [])) & {"parameters", "injected-parameters"}
                   for c in nb.cells)
    built = build_report_notebook(run)
    assert [c.id for c in built.cells] == ids  # deterministic
    # two source notebooks with the same cell ids both survive, renumbered
    assert sum("synthetic-output-marker" in json.dumps(c.get("outputs", [])) for c in nb.cells) == 2
    header = nb.cells[0].source
    assert "NOT READY" in header and "Review Status:</strong> INCOMPLETE" in header


def test_failed_notebook_keeps_its_cells(run):
    from dataclasses import replace

    summary = next(nb for nb in run.notebooks if nb.area == "summary")
    half = replace(summary, status="failed", error="cell 3 raised <KeyError>")
    nb = build_report_notebook(replace(run, notebooks=[half]))
    text = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
    assert "This section failed:</strong> cell 3 raised &lt;KeyError&gt;" in text
    assert any("synthetic-output-marker" in json.dumps(c.get("outputs", [])) for c in nb.cells)


def test_html_failure_falls_back_to_the_front_page(run, tmp_path, monkeypatch, caplog):
    import auditlib.report as report

    def boom(run):
        raise RuntimeError("exporter exploded <i>x</i>")

    monkeypatch.setattr(report, "render_html", boom)
    paths = write_reports(run, tmp_path)
    assert {"json", "markdown", "sarif", "html"} <= set(paths)
    assert all(p.exists() and p.stat().st_size > 0 for p in paths.values())
    text = paths["html"].read_text(encoding="utf-8")
    assert "NOT READY" in text and "exporter exploded &lt;i&gt;x&lt;/i&gt;" in text
    assert "<i>x</i>" not in text and "<script>alert(1)" not in text
    for f in run.findings:
        assert f'id="f-{f.fingerprint}"' in text
    p = _parse(text)
    assert p.scripts == [report_html.SCRIPT] and f"'{report_html.SCRIPT_HASH}'" in text
    assert set(h[1:] for h in p.toc_hrefs) <= set(p.ids) and "#al-appendix" not in p.toc_hrefs
    assert "export failed" in caplog.text


def test_strip_external_safety_net():
    html_in = ('<p>x</p><script src="https://cdn.example/a.js"></script>'
               '<link rel="stylesheet" href="//cdn.example/a.css"><script>ok()</script>')
    cleaned, n = report_html.strip_external(html_in)
    assert n == 2 and "cdn.example" not in cleaned and "<script>ok()</script>" in cleaned


# --------------------------------------------------------------------------- stage status
# The database stage "ran" only when the target's migrations reached the head and the
# schema was read; the CLI runs only the database and summary notebooks here.
REPO = Path(__file__).resolve().parent.parent
ALEMBIC = REPO / "tests" / "fixtures" / "alembic"


def _audit_db_only(target: Path, tmp_path: Path, db: str) -> tuple[dict, str, str]:
    import shutil
    import subprocess
    import sys

    nbs = tmp_path / "notebooks"
    nbs.mkdir()
    for name in ("00_summary.ipynb", "10_database.ipynb"):
        shutil.copy(REPO / "notebooks" / name, nbs / name)
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, "-m", "auditlib", "run", str(target), "--out", str(out), "--db", db,
                           "--notebooks", str(nbs), "--target-python", sys.executable, "--no-progress",
                           "--fail-on", "never"], capture_output=True, text=True, timeout=600, cwd=REPO)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    return (json.loads((out / "findings.json").read_text(encoding="utf-8")),
            (out / "report.html").read_text(encoding="utf-8"), (out / "report.md").read_text(encoding="utf-8"))


def _assert_db_failed(data: dict, page: str, md: str, reason: str) -> None:
    assert data["stages"]["db"].startswith(f"failed: {reason}"), data["stages"]["db"]
    assert data["review"]["status"] == "INCOMPLETE"
    assert f"db: {data['stages']['db']}" in data["review"]["reasons"]
    review = _element(page, "al-review")
    assert "INCOMPLETE" in review and f"<li>db: failed: {reason}" in review
    stages = page[page.index('id="al-stages"'):page.index('id="al-findings"')]
    assert '<strong>db</strong></td><td><span class="al-badge al-stage-failed">failed</span>' in stages
    status = re.search(r"^\*\*Review Status:\*\* (.*)$", md, flags=re.M).group(1)
    assert status.startswith("INCOMPLETE") and f"db (failed: {reason}" in status.replace("\\`", "`")


def test_db_stage_on_an_unreachable_server_failed_not_ran(tmp_path):
    data, page, md = _audit_db_only(REPO / "examples" / "bookly", tmp_path,
                                    "postgresql://u:Pw9secret@127.0.0.1:9/nowhere")
    reason = "could not create a database on postgresql://u:***@127.0.0.1:9/nowhere: OperationalError"
    _assert_db_failed(data, page, md, reason)
    # every database check says what was not verified, and why
    nv = [f for f in data["findings"] if f["source"] == "db" and f["severity"] == "WARNING"]
    assert nv and all(reason in f["message"] for f in nv if "not verified" in f["message"])
    for path in (tmp_path / "out").rglob("*"):
        if path.is_file():
            assert "Pw9secret" not in path.read_text(encoding="utf-8", errors="replace"), path


def test_db_stage_with_a_hanging_migration_failed_not_ran(tmp_path, pg):
    data, page, md = _audit_db_only(ALEMBIC / "hanging_migration", tmp_path, pg.url(driver=""))
    _assert_db_failed(data, page, md, "`alembic upgrade head` did not finish within 10 s")
    # what did finish is said too (the offline steps ran beside the upgrade)
    assert data["stages"]["db"].endswith("(finished: alembic heads, alembic history, alembic upgrade head --sql)")


def test_db_stage_ran_when_the_schema_was_migrated_and_read(tmp_path, pg):
    from auditlib.redact import redact_url

    data, page, _ = _audit_db_only(ALEMBIC / "linear", tmp_path, pg.url(driver=""))
    assert re.fullmatch(re.escape(f"ran: {redact_url(pg.url(driver=''))}; ")
                        + r"\d+ revisions migrated to head \w+, schema read \(\d+ tables\)", data["stages"]["db"])
    assert not any(r.startswith("db:") for r in data["review"]["reasons"])
    assert '<strong>db</strong></td><td><span class="al-badge al-stage-ran">ran</span>' in page
