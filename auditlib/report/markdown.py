"""``report.md``: the 12-section production-readiness report (Jinja2 template).

Autoescape is off (this is Markdown), so every piece of target-supplied text goes through
one of the filters below:

* ``inline``  - prose: newlines folded, balanced code spans kept verbatim, ``\\``, ``<``,
  ``[`` and stray backticks backslash-escaped (no raw HTML, no links, no runaway code
  spans);
* ``cell``    - a table cell: ``\\``, ``<``, ``[``, *every* backtick and ``|`` escaped,
  newlines as ``<br>``;
* ``heading`` - ``inline`` plus a trailing ``#`` run escaped (ATX closing sequence);
* ``code``    - an inline code span whose fence is longer than any backtick run inside;
* ``fenced``  - an excerpt as a fenced block whose fence is longer than any backtick run.
"""
from __future__ import annotations

import re
from pathlib import Path, PurePosixPath

import jinja2

from auditlib.findings import AREAS, Finding, Severity, counts

from . import common as c
from .model import RunResult

TEMPLATES = Path(__file__).parent / "templates"

# Which findings areas are tabled under which numbered section. Areas not listed here
# (e.g. "audit" = audit coverage, or unknown areas) are tabled in the executive summary,
# so every finding appears in exactly one area table.
SECTION_AREAS = {
    1: ("functional", "documentation"),
    2: ("security",),
    3: ("reliability", "deployment"),
    4: ("observability",),
    5: ("compliance",),
    6: ("performance",),
    7: ("testing",),
}
# Stages whose skip/failure is noted under a section (besides stages named like its areas).
SECTION_STAGES = {3: c.DB_STAGE_PREFIXES, 7: c.TESTS_STAGE_PREFIXES}

# Subsections filled by check id (ranges are inclusive).
SUBSECTIONS = {
    "isolation": c.checks("SEC-010..013"),
    "input": c.checks("SEC-020..023", "SEC-050"),
    "secrets": c.checks("SEC-001", "SEC-002", "SEC-030"),
    "database": c.checks("REL-001", "REL-002", "REL-007", "PERF-001"),
    "external": c.checks("REL-003..005"),
    "jobs": c.checks("REL-006", "REL-008"),
    "metrics": c.checks("OBS-002..004"),
    "logging": c.checks("OBS-005"),
    "health": c.checks("OBS-001"),
    "email": c.checks("CMP-001..003"),
    "retention": c.checks("CMP-004", "CMP-005"),
    "db_perf": c.checks("PERF-001..003"),
    "async": c.checks("PERF-004"),
    "missing_tests": c.checks("TEST-002..004"),
}

_LANG = {".py": "python", ".sql": "sql", ".toml": "toml", ".yaml": "yaml", ".yml": "yaml",
         ".ini": "ini", ".cfg": "ini", ".json": "json", ".sh": "bash", ".md": "markdown",
         ".js": "javascript", ".ts": "typescript", ".html": "html", ".mako": ""}


# --------------------------------------------------------------------------- escaping
def _longest_backtick_run(s: str) -> int:
    return max((len(m) for m in re.findall(r"`+", s or "")), default=0)


def _escape_text(s: str) -> str:
    # "[" too: no link/image syntax (e.g. [x](javascript:...)) from target text
    return (s.replace("\\", "\\\\").replace("`", "\\`").replace("<", "\\<")
            .replace("[", "\\["))


def md_inline(s) -> str:
    """Prose: whitespace folded; balanced code spans kept (check authors write
    `settings.x`; a code span is literal, so it cannot inject HTML); everything else has
    ``\\``, ``<``, ``[`` and stray backticks backslash-escaped."""
    s = " ".join(("" if s is None else str(s)).split())
    out: list[str] = []
    i = 0
    while i < len(s):
        m = re.compile(r"`+").search(s, i)
        if not m:
            out.append(_escape_text(s[i:]))
            break
        out.append(_escape_text(s[i:m.start()]))
        n = len(m.group(0))
        close = next((c for c in re.finditer(r"`+", s[m.end():]) if len(c.group(0)) == n), None)
        if close is None:  # unbalanced: literal backticks
            out.append("\\`" * n)
            i = m.end()
        else:
            end = m.end() + close.end()
            out.append(s[m.start():end])
            i = end
    return "".join(out)


def md_cell(s) -> str:
    """Table cell: every backtick, ``<``, ``[``, ``\\`` and ``|`` escaped, newlines as ``<br>``."""
    s = "" if s is None else str(s)
    parts = [_escape_text(" ".join(line.split())) for line in s.splitlines() or [""]]
    return "<br>".join(p for p in parts if p).replace("|", "\\|")


def md_heading(s) -> str:
    s = md_inline(s)
    return re.sub(r"(#+)$", lambda m: "\\#" * len(m.group(1)), s)


def md_code(s) -> str:
    s = " ".join(("" if s is None else str(s)).split())
    if not s:
        return ""
    fence = "`" * (_longest_backtick_run(s) + 1)
    pad = " " if s.startswith("`") or s.endswith("`") else ""
    return f"{fence}{pad}{s}{pad}{fence}"


def md_fenced(excerpt: str, file: str = "") -> str:
    text = (excerpt or "").rstrip("\n")
    fence = "`" * max(3, _longest_backtick_run(text) + 1)
    name = PurePosixPath(file or "").name
    lang = "dockerfile" if name.lower().startswith("dockerfile") else _LANG.get(
        PurePosixPath(name).suffix.lower(), "")
    return f"{fence}{lang}\n{text}\n{fence}"


def plural(n: int, word: str, many: str | None = None) -> str:
    return f"{n} {word if n == 1 else (many or word + 's')}"


# --------------------------------------------------------------------------- context
def _summary(run: RunResult) -> str:
    n = counts(run.findings)
    b, w, r, i = n["BLOCKER"], n["WARNING"], n["RECOMMENDATION"], n["INFO"]
    out = []
    if b:
        s = f"{plural(b, 'blocker')} must be fixed before production"
        if w:
            s += f", and {plural(w, 'warning')} should be fixed soon after launch"
        out.append(s + ".")
    elif w:
        out.append(f"No blockers were found, but {plural(w, 'warning')} must be addressed "
                   "soon after launch (the conditions of this release).")
    else:
        out.append("No blockers or warnings were found.")
    if r or i:
        out.append(f"{plural(r, 'recommendation')} and {plural(i, 'informational finding')} "
                   "are listed for later improvement.")
    not_run = run.stages_not_run()
    if not_run:
        out.append("Stages not run: " + "; ".join(
            f"{md_inline(k)} ({md_inline(v)})" for k, v in not_run.items()) + ".")
    elif run.stages:
        out.append("All audit stages ran (" + ", ".join(md_inline(k) for k in run.stages) + ").")
    failed = run.failed_notebooks()
    if failed:
        out.append("Report sections that failed to build: " + ", ".join(
            md_inline(nb.title) for nb in failed) + ".")
    return " ".join(out)


def _section_notes(run: RunResult, num: int) -> list[str]:
    areas = SECTION_AREAS[num]
    notes = []
    for name, status in run.stages_not_run().items():
        prefixes = tuple(areas) + SECTION_STAGES.get(num, ())
        if any(name.lower() == p or name.lower().startswith(p) for p in prefixes):
            notes.append(f"Stage {md_code(name)} {md_inline(status)}")
    for nb in run.failed_notebooks():
        if nb.area in areas:
            notes.append(f"Notebook {md_inline(nb.title)} failed: "
                         f"{md_inline(nb.error or 'notebook was not produced')}")
    return notes


def _vulnerable_endpoints(findings: list[Finding]) -> list[str]:
    seen, out = set(), []
    for f in findings:
        if f.severity is Severity.INFO:
            continue
        for r in f.routes:
            key = (c.route_str(r), f.check)
            if key not in seen:
                seen.add(key)
                out.append(f"{md_code(key[0])} — {md_inline(f.check)} ({f.severity.value}): "
                           f"{md_inline(f.title)}")
    return out


def build_context(run: RunResult) -> dict:
    fs = c.sorted_findings(run.findings)
    n = counts(fs)
    v = c.verdict_of(run)
    sec = [f for f in fs if f.area == "security"]
    ts = c.suite_stats(run)
    if not ts.ran:
        tests_line = f"not run ({md_inline(ts.reason)})"
    elif ts.passed is None or ts.failed is None:
        tests_line = "ran (results unavailable)"
    else:
        tests_line = f"{ts.passed} passed / {ts.failed} failed"
        if ts.skipped:
            tests_line += f" ({ts.skipped} skipped)"
    ep = run.stats.get("endpoints_reviewed")
    sectioned = {a for areas in SECTION_AREAS.values() for a in areas}

    def by(key):
        return [f for f in fs if c.matches(f, SUBSECTIONS[key])]

    known = set().union(*(SUBSECTIONS[k] for k in ("isolation", "input", "secrets")))
    score = c.isolation_score(run)
    coverage_bits = []
    for key, label in (("files_indexed", "files indexed"), ("files_unparsed", "files unparsed")):
        if key in run.stats:
            coverage_bits.append(f"{md_inline(run.stats[key])} {label}")
    if run.stats.get("db_url"):
        coverage_bits.append(f"database {md_code(run.stats['db_url'])}")
    if run.commit:
        coverage_bits.append(f"commit {md_code(run.commit)}")
    incomplete = c.incomplete_reasons(run)
    v_text = {
        "READY": "is READY for production: no blockers or warnings were found.",
        "READY WITH CONDITIONS": (f"is READY WITH CONDITIONS: no blockers, but "
                                  f"{plural(n['WARNING'], 'warning')} must be fixed soon after launch."),
        "NOT READY": (f"is NOT READY for production: {plural(n['BLOCKER'], 'blocker')} must be "
                      "fixed before deployment."),
    }[v.value]
    phased = v.value != "READY"
    return {
        "run": run,
        "app": md_inline(run.target_name),
        "date": run.started.date().isoformat(),
        "version": md_inline(run.tool_version),
        "verdict": v.value,
        "verdict_line": c.verdict_label(v),
        "summary": _summary(run),
        "tests_line": tests_line,
        "security_counts": counts(sec),
        "counts": n,
        "endpoints_line": f"{md_inline(ep)} total" if ep is not None else "not inventoried",
        "coverage_line": ", ".join(coverage_bits),
        "other_findings": [f for f in fs if f.area not in sectioned],
        "area": {num: [f for f in fs if f.area in areas] for num, areas in SECTION_AREAS.items()},
        "notes": {num: _section_notes(run, num) for num in SECTION_AREAS},
        "sub": {k: by(k) for k in SUBSECTIONS},
        "sub_label": {k: c.ranges_label(r) for k, r in SUBSECTIONS.items()},
        "implemented": [f for f in fs if f.area == "functional" and f.severity is Severity.INFO],
        "unfinished": [f for f in fs if f.area == "functional" and f.severity is not Severity.INFO],
        "auth": [f for f in sec if not c.matches(f, known)],
        "isolation_score": "not assessed" if score is None else f"{score}/10",
        "vulnerable": _vulnerable_endpoints(by("isolation")),
        "coverage": c.coverage_str(run),
        "passed_line": (f"{ts.passed} / {ts.total} tests" if ts.ran and ts.total is not None
                        else ("not run" if not ts.ran else "n/a")),
        "blockers": [f for f in fs if f.severity is Severity.BLOCKER],
        "warnings": [f for f in fs if f.severity is Severity.WARNING],
        "recommendations": [f for f in fs if f.severity is Severity.RECOMMENDATION],
        "checklist": c.checklist(run),
        "conclusion": f"{md_inline(run.target_name)} {v_text}",
        "days": c.days_str(c.estimated_days(run)),
        "approach": (
            "Phased rollout — fix the items in section 8 (and section 9 for a conditional "
            "release), re-run the audit, deploy to staging, then roll out gradually "
            "(10% → 50% → 100%) while watching error rates and tenant isolation."
            if phased else
            "Standard multi-tenant rollout — deploy to staging, run smoke tests, then promote "
            "to production following the release checklist."),
        "review_status": "COMPLETE" if not incomplete else "INCOMPLETE — " + "; ".join(
            md_inline(r) for r in incomplete),
        "areas": AREAS,
    }


def _env() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES)),
        autoescape=False,  # Markdown: escaping is done by the md_* filters
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        undefined=jinja2.StrictUndefined,
    )
    env.filters.update(inline=md_inline, cell=md_cell, heading=md_heading, code=md_code,
                       fenced=md_fenced, loc=c.loc_str, first_loc=c.first_loc_str,
                       route=c.route_str)
    return env


def _tidy(text: str) -> str:
    """Collapse runs of blank lines left by template logic, never inside fenced blocks."""
    out: list[str] = []
    fence = ""
    for line in text.split("\n"):
        if fence:
            if re.fullmatch(re.escape(fence) + r"`*\s*", line):
                fence = ""
        else:
            m = re.match(r"(`{3,})", line)
            if m:
                fence = m.group(1)
            elif not line.strip() and (not out or not out[-1].strip()):
                continue
        out.append(line)
    return "\n".join(out).strip("\n") + "\n"


def render_markdown(run: RunResult) -> str:
    text = _env().get_template("report.md.j2").render(**build_context(run))
    if run.changes:  # with a baseline, the report opens with what changed
        marker = "## EXECUTIVE SUMMARY"
        text = text.replace(marker, changes_md(run.changes) + "\n" + marker, 1) if marker in text \
            else changes_md(run.changes) + "\n" + text
    if run.suppressed:
        text = text.rstrip("\n") + "\n\n" + suppressed_md(run) + "\n"
    return _tidy(text)


def changes_md(ch: dict) -> str:
    """"Changes since the previous audit", from ``diff.Changes.to_dict()``."""
    line = lambda x: f"- `{x['check']}` {x['severity']}: {md_inline(x['title'])} ({md_inline(x['file'])}"  # noqa: E731
    out = ["## Changes since the previous audit", "",
           f"Verdict: **{ch['verdict']['old']}** -> **{ch['verdict']['new']}**. New: {len(ch['new'])}, "
           f"resolved: {len(ch['resolved'])}, severity changed: {len(ch['severity_changed'])}, "
           f"persisting: {ch['persisting']}.", ""]
    for title, key in (("New findings", "new"), ("Resolved findings", "resolved"),
                       ("Suppressed in review (not fixed)", "suppressed")):
        if ch.get(key):
            out += [f"### {title}", ""] + [line(x) + (f":{x['line']})" if x["line"] else ")") for x in ch[key]] + [""]
    if ch["severity_changed"]:
        out += ["### Severity changed", ""] + [f"- `{x['check']}` {x['old_severity']} -> {x['severity']}: "
                                               f"{md_inline(x['title'])}" for x in ch["severity_changed"]] + [""]
    return "\n".join(out)


def suppressed_md(run: RunResult) -> str:
    """The appendix of findings a review set aside: never dropped silently."""
    out = ["## APPENDIX: SUPPRESSED FINDINGS", "",
           f"{len(run.suppressed)} finding(s) were judged in review and are not counted in the verdict "
           "(counts with them: see `counts_with_suppressed` in findings.json).", "",
           "| Check | Severity | Finding | Location | Judgement | Reason | Reviewer |", "|---|---|---|---|---|---|---|"]
    for f, j in run.suppressed:
        loc = f.locations[0] if f.locations else None
        where = f"{loc.file}:{loc.line}" if loc and loc.line else (loc.file if loc else "")
        status = j["status"] + (f" until {j['expires']}" if j.get("expires") else "")
        out.append(f"| {f.check} | {f.severity.value} | {md_cell(f.title)} | {md_cell(where)} | {md_cell(status)} | "
                   f"{md_cell(j['reason'])} | {md_cell(j.get('reviewer') or '')} |")
    return "\n".join(out)


def write_markdown(run: RunResult, path: Path) -> Path:
    path = Path(path)
    path.write_text(render_markdown(run), encoding="utf-8")
    return path
