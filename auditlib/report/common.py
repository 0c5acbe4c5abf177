"""Facts derived from a :class:`RunResult` that several report formats share.

Every number here is computed from the findings, stages and stats of the run; nothing is
passed in pre-digested, so the Markdown, HTML, JSON and SARIF outputs cannot disagree.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Iterable

from auditlib.findings import Finding, Location, Severity, Verdict, counts, sort_key, verdict

from .model import RunResult, stage_ran

VERDICT_EMOJI = {
    Verdict.READY: "✅",
    Verdict.NOT_READY: "❌",
    Verdict.READY_WITH_CONDITIONS: "⚠️",
}

# Stage names (keys of RunResult.stages) the report reasons about. A stage counts as a
# "tests stage" / "db stage" when its name equals or starts with one of these prefixes.
TESTS_STAGE_PREFIXES = ("tests", "pytest")
DB_STAGE_PREFIXES = ("db", "database", "migration")
# Stages that run the static multi-tenant isolation checks (SEC-010..SEC-013).
ISOLATION_STAGE_PREFIXES = ("static", "security")

_CHECK_RE = re.compile(r"^([A-Za-z]+)-(\d+)")


@dataclass(frozen=True)
class CheckRange:
    """Inclusive range of check ids with one prefix, e.g. SEC-010..SEC-013."""

    prefix: str
    lo: int
    hi: int

    def __contains__(self, check: str) -> bool:
        m = _CHECK_RE.match(check or "")
        return bool(m) and m.group(1).upper() == self.prefix and self.lo <= int(m.group(2)) <= self.hi

    def label(self) -> str:
        a = f"{self.prefix}-{self.lo:03d}"
        return a if self.lo == self.hi else f"{a}..{self.prefix}-{self.hi:03d}"


def checks(*spec: str) -> tuple[CheckRange, ...]:
    """``checks("SEC-010..013", "SEC-050")`` -> ranges."""
    out = []
    for s in spec:
        first, _, last = s.partition("..")
        m = _CHECK_RE.match(first)
        if not m:
            raise ValueError(s)
        lo = int(m.group(2))
        hi = int(last.rsplit("-", 1)[-1]) if last else lo
        out.append(CheckRange(m.group(1).upper(), lo, hi))
    return tuple(out)


def matches(f: Finding, ranges: Iterable[CheckRange]) -> bool:
    return any(f.check in r for r in ranges)


def ranges_label(ranges: Iterable[CheckRange]) -> str:
    return ", ".join(r.label() for r in ranges)


def sorted_findings(findings: Iterable[Finding]) -> list[Finding]:
    return sorted(findings, key=sort_key)


def verdict_label(v: Verdict) -> str:
    return f"{VERDICT_EMOJI[v]} {v.value}"


def loc_str(loc: Location | None) -> str:
    """``file:line`` (or ``file:line-end``, or just ``file``)."""
    if loc is None:
        return ""
    s = loc.file or "."
    if loc.line:
        s += f":{loc.line}"
        if loc.end_line and loc.end_line != loc.line:
            s += f"-{loc.end_line}"
    return s


def first_loc_str(f: Finding) -> str:
    if not f.locations:
        return ""
    s = loc_str(f.locations[0])
    if len(f.locations) > 1:
        s += f" (+{len(f.locations) - 1} more)"
    return s


def route_str(r: dict) -> str:
    return f"{r.get('method') or ''} {r.get('path') or ''}".strip()


def _stage_matches(name: str, prefixes: tuple[str, ...]) -> bool:
    n = name.lower()
    return any(n == p or n.startswith(p) for p in prefixes)


def stages_ran(run: RunResult, prefixes: tuple[str, ...]) -> bool:
    return any(stage_ran(st) for name, st in run.stages.items() if _stage_matches(name, prefixes))


def tests_stage(run: RunResult) -> tuple[str, str] | None:
    """(name, status) of the tests stage, preferring one that ran; None when absent."""
    found = [(n, s) for n, s in run.stages.items() if _stage_matches(n, TESTS_STAGE_PREFIXES)]
    for n, s in found:
        if stage_ran(s):
            return n, s
    return found[0] if found else None


def _int(v) -> int | None:
    try:
        return None if v is None else int(v)
    except (TypeError, ValueError):
        return None


@dataclass
class SuiteStats:
    ran: bool
    reason: str  # why it did not run ("" when it ran)
    passed: int | None
    failed: int | None
    skipped: int | None

    @property
    def total(self) -> int | None:
        if self.passed is None or self.failed is None:
            return None
        return self.passed + self.failed + (self.skipped or 0)

    @property
    def all_passing(self) -> bool:
        return self.ran and self.failed == 0 and self.passed is not None


def suite_stats(run: RunResult) -> SuiteStats:
    st = tests_stage(run)
    if st is None:
        return SuiteStats(False, "no tests stage", None, None, None)
    name, status = st
    if not stage_ran(status):
        return SuiteStats(False, status, None, None, None)
    s = run.stats
    return SuiteStats(True, "", _int(s.get("tests_passed")), _int(s.get("tests_failed")),
                     _int(s.get("tests_skipped")))


def coverage_str(run: RunResult) -> str:
    """Coverage from stats["coverage"] (a percentage 0-100), or "n/a"."""
    c = run.stats.get("coverage")
    try:
        c = float(c)
    except (TypeError, ValueError):
        return "n/a"
    return f"{c:.0f}%" if c == int(c) else f"{c:.1f}%"


ISOLATION_CHECKS = checks("SEC-010..013")


def registered_checks() -> set[str] | None:
    """Ids of the checks in auditlib's registry, or None when it cannot be loaded."""
    try:
        from auditlib.checks import checks_for
    except Exception:  # noqa: BLE001 - the report must not depend on the registry loading
        return None
    try:
        return {chk.id for chk in checks_for()}
    except Exception:  # noqa: BLE001
        return None


def isolation_score(run: RunResult) -> int | None:
    """Data Isolation Score out of 10, or None for "not assessed".

    Heuristic: start at 10, subtract 3 per BLOCKER and 1 per WARNING among the
    multi-tenant isolation checks SEC-010..SEC-013, floor at 0.

    It is "not assessed" unless one of those checks produced a finding (any severity,
    including "not verified" WARNINGs), or all of these hold: an isolation stage ran
    (see ISOLATION_STAGE_PREFIXES), at least one SEC-010..SEC-013 check is registered
    (when the registry can be loaded) and the security notebook, if any, did not fail.
    A clean 10/10 is only claimed when something actually looked.
    """
    fs = [f for f in run.findings if matches(f, ISOLATION_CHECKS)]
    if not fs:
        if not stages_ran(run, ISOLATION_STAGE_PREFIXES):
            return None
        reg = registered_checks()
        if reg is not None and not any(cid in r for cid in reg for r in ISOLATION_CHECKS):
            return None
        if any(nb.failed for nb in run.notebooks if nb.area == "security"):
            return None
    b = sum(f.severity is Severity.BLOCKER for f in fs)
    w = sum(f.severity is Severity.WARNING for f in fs)
    return max(0, 10 - 3 * b - w)


def estimated_days(run: RunResult) -> int:
    """Estimated days to production ready: 1 per BLOCKER + 0.5 per WARNING, rounded up.

    0 when the verdict is READY (no blockers, no warnings).
    """
    c = counts(run.findings)
    return math.ceil(c["BLOCKER"] * 1.0 + c["WARNING"] * 0.5)


def days_str(n: int) -> str:
    return f"{n} day" if n == 1 else f"{n} days"


@dataclass
class ChecklistItem:
    text: str
    done: bool
    note: str = ""


def checklist(run: RunResult) -> dict[str, list[ChecklistItem]]:
    """The release checklist; an item is ticked only when the findings/stages prove it."""
    c = counts(run.findings)
    ts = suite_stats(run)
    db_ran = stages_ran(run, DB_STAGE_PREFIXES)
    dep002 = [f for f in run.findings if f.check.upper() == "DEP-002" and f.severity is Severity.BLOCKER]

    if ts.all_passing:
        tests_note = f"{ts.passed} passed, 0 failed"
    elif not ts.ran:
        tests_note = f"tests not run ({ts.reason})"
    elif ts.failed is None:
        tests_note = "test results unavailable"
    else:
        tests_note = f"{ts.failed} failed"
    if not db_ran:
        mig_note = "no database stage ran"
    elif dep002:
        mig_note = "DEP-002 blocker open"
    else:
        mig_note = "database stage ran, no DEP-002 blocker"
    return {
        "Pre-Deployment": [
            ChecklistItem("All blockers fixed", c["BLOCKER"] == 0,
                          "0 blockers" if c["BLOCKER"] == 0 else f"{c['BLOCKER']} open"),
            ChecklistItem("All tests passing", ts.all_passing, tests_note),
            ChecklistItem("Migrations tested", db_ran and not dep002, mig_note),
            ChecklistItem("Production secrets configured", False),
            ChecklistItem("Database backed up", False),
        ],
        "Deployment": [
            ChecklistItem("Deploy to staging first", False),
            ChecklistItem("Run smoke tests", False),
            ChecklistItem("Monitor metrics for 24h", False),
            ChecklistItem("Gradual rollout (10% → 50% → 100%)", False),
        ],
        "Post-Deployment": [
            ChecklistItem("Monitor error rates", False),
            ChecklistItem("Check health endpoints", False),
            ChecklistItem("Verify metrics collection", False),
            ChecklistItem("Test critical user flows", False),
        ],
    }


def incomplete_reasons(run: RunResult) -> list[str]:
    """Human-readable reasons the review is incomplete (empty list: complete)."""
    out = []
    nr = run.stages_not_run()
    if nr:
        out.append("stages not run: " + ", ".join(f"{k} ({v})" for k, v in nr.items()))
    fn = run.failed_notebooks()
    if fn:
        out.append("notebooks failed: " + ", ".join(
            f"{nb.title} ({nb.error or 'not produced'})" for nb in fn))
    return out


def incomplete_items(run: RunResult) -> list[str]:
    """One line per cause of an incomplete review: each stage that did not do its work
    (``db: failed: ...``), each notebook that failed."""
    out = [f"{k}: {v}" for k, v in run.stages_not_run().items()]
    out += [f"notebook {nb.title} failed: {nb.error or 'not produced'}" for nb in run.failed_notebooks()]
    return out


def review_status(run: RunResult) -> tuple[str, list[str]]:
    """("COMPLETE" | "INCOMPLETE", reasons): complete only when every stage ran (did its
    work) and every notebook succeeded."""
    reasons = incomplete_items(run)
    return ("INCOMPLETE" if reasons else "COMPLETE"), reasons


def review_status_line(run: RunResult) -> str:
    reasons = incomplete_reasons(run)
    return "INCOMPLETE — " + "; ".join(reasons) if reasons else "COMPLETE"


def verdict_of(run: RunResult) -> Verdict:
    return verdict(run.findings)
