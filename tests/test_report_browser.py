"""report.html in a real browser: headless Chromium (Debian's ``chromium``) over DevTools.

One audit of the demo with planted payloads (a ``<script>`` and an ``onerror=`` in file
names, code, comments and docstrings), then the page is loaded from disk and used: no
console error, no network request, the table of contents lands on every section, the
payloads stay text, the filter hides and shows findings, a link to a finding opens it, the
print view. Screenshots go to ``output/test-artefacts/`` (gitignored).

The browser is required: when it cannot start these tests fail (``make test`` installs
``chromium`` when it is missing and we are root, as on CI).
"""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from browser import Chromium

REPO = Path(__file__).resolve().parent.parent
DEMO = REPO / "examples" / "bookly"
ARTEFACTS = REPO / "output" / "test-artefacts"

PAYLOAD_FILES = ["<img src=x onerror=window.__pwned=1>.py", "<script>window.__pwned=9<.py"]
# the first docstring line of a migration is its message (the deployment notebook tables it)
PAYLOAD_DOCSTRING = "invoices <script>window.__pwned=10</script> <img src=x onerror=window.__pwned=11>"
PAYLOAD_SOURCE = '''"""Helpers. <script>window.__pwned = 2</script> <img src=x onerror="window.__pwned=3">"""
import os

API_URL = "http://localhost:8000/<script>window.__pwned=4</script>"


def helper():
    # FIXME: <img src=x onerror=window.__pwned=6> finish <script>window.__pwned=7</script>
    """<script>window.__pwned=8</script> docstring"""
    return os.environ.get("X", API_URL)
'''

VISIBLE = """(() => [...document.querySelectorAll('.al-finding')]
    .filter(el => !el.closest('[hidden]')).map(el => el.id).sort())()"""


@pytest.fixture(scope="module")
def audited(tmp_path_factory):
    """(report.html, findings.json data) of the planted demo, audited by the CLI."""
    target = tmp_path_factory.mktemp("planted") / "bookly"
    shutil.copytree(DEMO, target, ignore=shutil.ignore_patterns("__pycache__", ".pytest_cache"))
    for name in PAYLOAD_FILES:
        (target / "app" / name).write_text(PAYLOAD_SOURCE, encoding="utf-8")
    migration = target / "alembic" / "versions" / "0002_invoices.py"
    src = migration.read_text(encoding="utf-8")
    assert src.startswith('"""')
    migration.write_text(f'"""{PAYLOAD_DOCSTRING}\n' + src.split("\n", 1)[1], encoding="utf-8")
    out = tmp_path_factory.mktemp("planted-out")
    proc = subprocess.run([sys.executable, "-m", "auditlib", "run", str(target), "--out", str(out), "--db", "none",
                           "--jobs", "2", "--no-progress", "--fail-on", "never"],
                          capture_output=True, text=True, timeout=600, cwd=REPO)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    return out / "report.html", json.loads((out / "findings.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def browser():
    with Chromium() as b:  # raises (fails the tests) when Chromium cannot start
        yield b


@pytest.fixture
def page(browser, audited):
    p = browser.page()
    p.goto(audited[0].as_uri())
    yield p
    p.close()


def test_loads_without_console_errors_or_network_requests(page, audited):
    ARTEFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(ARTEFACTS / "report-front-page.png")
    page.eval("document.querySelectorAll('details').forEach(d => d.open = true)")
    assert page.console_errors() == []
    own = audited[0].as_uri()
    assert [u for u in page.requests() if u != own and not u.startswith("data:")] == []
    assert page.eval("document.title").startswith("Production readiness audit")
    assert page.eval("document.querySelector('.al-verdict').textContent") == "Verdict: NOT READY"


def test_planted_script_and_onerror_stay_text(page, audited):
    _, data = audited
    # the payloads reached the report (so this test can fail) ...
    planted = [f for f in data["findings"] if any(loc["file"].startswith("app/<") for loc in f["locations"])]
    assert {loc["file"] for f in planted for loc in f["locations"]} >= {f"app/{n}" for n in PAYLOAD_FILES}
    page.eval("document.querySelectorAll('details').forEach(d => d.open = true)")
    text = page.eval("document.body.innerText")
    for needle in PAYLOAD_FILES + [PAYLOAD_DOCSTRING, "<img src=x onerror=window.__pwned=6>",
                                   "<script>window.__pwned=7</script>",
                                   'API_URL = "http://localhost:8000/<script>window.__pwned=4</script>"']:
        assert needle in text, needle
    # ... and none of them ran or became an element
    assert page.eval("typeof window.__pwned") == "undefined"
    assert page.eval("document.scripts.length") == 1
    assert page.eval("""[...document.querySelectorAll('*')].filter(el => [...el.attributes]
        .some(a => a.name.startsWith('on'))).length""") == 0
    assert page.eval("[...document.images].filter(i => !i.src.startsWith('data:')).length") == 0
    assert page.console_errors() == []  # not even a CSP violation: nothing tried to run


def test_every_contents_link_lands_on_its_section(page):
    hrefs = page.eval("[...document.querySelectorAll('nav.al-toc a')].map(a => a.getAttribute('href'))")
    assert len(hrefs) >= 10 and all(h.startswith("#") for h in hrefs)
    for href in hrefs:
        page.eval("window.scrollTo(0, 0)")
        page.click(f'nav.al-toc a[href="{href}"]')
        where = page.eval(f"""(() => {{ const el = document.getElementById({json.dumps(href[1:])});
            const r = el.getBoundingClientRect();
            const atEnd = window.scrollY + window.innerHeight >= document.documentElement.scrollHeight - 2;
            return {{hash: location.hash, top: r.top, height: window.innerHeight, atEnd: atEnd}}; }})()""")
        assert where["hash"] == href, where
        # at the top of the window (below the sticky filter at most), or the page ends there
        assert 0 <= where["top"] <= 80 or (where["atEnd"] and 0 <= where["top"] < where["height"]), (href, where)
    assert page.console_errors() == []


def test_filter_hides_and_shows_findings(page, audited):
    _, data = audited
    fs = data["findings"]
    every = sorted(f"f-{f['fingerprint']}" for f in fs)
    assert page.eval(VISIBLE) == every

    def choose(select_id: str, value: str) -> list[str]:
        page.eval(f"""(() => {{ const s = document.getElementById({json.dumps(select_id)});
            s.value = {json.dumps(value)}; s.dispatchEvent(new Event('change')); }})()""")
        return page.eval(VISIBLE)

    blockers = sorted(f"f-{f['fingerprint']}" for f in fs if f["severity"] == "BLOCKER")
    assert blockers and choose("al-filter-sev", "BLOCKER") == blockers
    assert page.eval("document.getElementById('al-filter-status').textContent") == \
        f"Showing {len(blockers)} of {len(fs)} findings"
    counts = "[...document.querySelectorAll('[data-al-count-of]')].map(el => el.textContent)"
    assert page.eval(counts) == [str(len(blockers)), "0", "0"]  # the sections' counts follow
    # a group with nothing left is hidden; with severity and area combined
    assert page.eval("document.getElementById('al-warnings-functional').closest('[hidden]') !== null")
    choose("al-filter-sev", "WARNING")
    want = sorted(f"f-{f['fingerprint']}" for f in fs if f["severity"] == "WARNING" and f["area"] == "security")
    assert want and choose("al-filter-area", "security") == want
    page.eval("document.getElementById('al-filter').scrollIntoView()")
    page.screenshot(ARTEFACTS / "report-filtered-security-warnings.png")
    check = next(f["check"] for f in fs if f["severity"] == "RECOMMENDATION")
    choose("al-filter-sev", "")
    choose("al-filter-area", "")
    by_check = sorted(f"f-{f['fingerprint']}" for f in fs if f["check"] == check)
    assert choose("al-filter-check", check) == by_check
    # the matches are shown even in a group that starts collapsed
    assert page.eval(f"document.getElementById({json.dumps(by_check[0])}).closest('details.al-group').open")
    page.click("#al-filter-reset")
    assert page.eval(VISIBLE) == every
    n = {sev: sum(f["severity"] == sev for f in fs) for sev in ("BLOCKER", "WARNING", "RECOMMENDATION", "INFO")}
    assert page.eval(counts) == [str(n["BLOCKER"]), str(n["WARNING"]), str(n["RECOMMENDATION"] + n["INFO"])]
    assert page.eval("document.getElementById('al-filter-status').textContent") == f"All {len(fs)} findings"
    assert page.console_errors() == []


def test_link_to_a_finding_opens_its_evidence(browser, audited):
    html_path, data = audited
    # a recommendation: in a group that starts collapsed, in a row that starts closed
    f = next(f for f in data["findings"] if f["severity"] == "RECOMMENDATION" and f["locations"][0]["excerpt"])
    p = browser.page()
    try:
        p.goto(html_path.as_uri() + f"#f-{f['fingerprint']}")
        state = p.eval(f"""(() => {{ const el = document.getElementById('f-{f['fingerprint']}');
            const r = el.getBoundingClientRect(); const pre = el.querySelector('pre.al-excerpt');
            return {{open: el.open, group: el.closest('details.al-group').open, top: r.top,
                     excerpt: pre.innerText, shown: pre.getBoundingClientRect().height > 0}}; }})()""")
        assert state["open"] and state["group"] and state["shown"], state
        assert 0 <= state["top"] <= 80, state
        assert state["excerpt"].strip() == f["locations"][0]["excerpt"].strip()
        p.screenshot(ARTEFACTS / "report-finding-evidence.png")
        # a blocker's card: evidence, why, fix
        b = next(f for f in data["findings"] if f["severity"] == "BLOCKER")
        p.eval(f"location.hash = '#f-{b['fingerprint']}'")  # same document: the script opens it
        card = p.eval(f"document.getElementById('f-{b['fingerprint']}').innerText")
        for part in ("EVIDENCE", "WHY IT MATTERS", "HOW TO FIX", b["locations"][0]["file"]):
            assert part in card, part
        assert p.console_errors() == []
    finally:
        p.close()


def test_print_view(page):
    closed = page.eval("document.querySelectorAll('details:not([open])').length")
    assert closed > 0
    page.send("Emulation.setEmulatedMedia", media="print")
    try:
        state = page.eval("""(() => ({
            filter: getComputedStyle(document.getElementById('al-filter')).display,
            hidden: [...document.querySelectorAll('details:not([open]) > .al-body')]
                     .filter(el => el.getBoundingClientRect().height === 0).length,
            bodies: document.querySelectorAll('details:not([open]) > .al-body').length}))()""")
        assert state["filter"] == "none"
        assert state["bodies"] > 0 and state["hidden"] == 0, state  # collapsed evidence is printed
        page.screenshot(ARTEFACTS / "report-print-view.png")
        page.eval("document.getElementById('al-warnings').scrollIntoView()")
        page.screenshot(ARTEFACTS / "report-print-view-warnings.png")
    finally:
        page.send("Emulation.setEmulatedMedia", media="")
    pdf = page.pdf(ARTEFACTS / "report.pdf")
    assert pdf.read_bytes().startswith(b"%PDF") and pdf.stat().st_size > 50_000
    assert page.console_errors() == []


def test_a_browser_that_cannot_start_is_an_error_not_a_skip(tmp_path):
    from browser import BrowserError

    with pytest.raises(BrowserError, match="no Chromium at"):
        Chromium(executable=str(tmp_path / "chromium")).__enter__()
    fake = tmp_path / "broken-chromium"
    fake.write_text("#!/bin/sh\necho 'cannot open display' >&2\nexit 3\n")
    fake.chmod(0o755)
    with pytest.raises(BrowserError, match=r"did not start \(exit code 3\): cannot open display"):
        Chromium(executable=str(fake)).__enter__()
