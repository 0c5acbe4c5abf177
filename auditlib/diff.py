"""Changes between two audits (``auditlib diff OLD NEW``, ``auditlib run --baseline OLD``).

Findings are matched by fingerprint, which hashes the check, the file, the normalised
excerpt and the finding's keys, not its line: a finding whose lines moved, or whose
file was edited elsewhere, is the same finding. The result lists new, resolved,
persisting and severity-changed findings, per area and per check, and the verdict
change.
"""
from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from .findings import Finding, Severity, verdict
from .report.markdown import md_inline


class DiffError(ValueError):
    """An input is not a findings.json (or a run directory holding one)."""


@dataclass
class Audit:
    findings: list[Finding]
    verdict: str
    source: str
    suppressed: set[str] = field(default_factory=set)  # fingerprints a review set aside


@dataclass
class Changes:
    old: Audit
    new: Audit
    added: list[Finding] = field(default_factory=list)
    resolved: list[Finding] = field(default_factory=list)
    persisting: list[Finding] = field(default_factory=list)
    changed: list[tuple[Finding, Finding]] = field(default_factory=list)  # (old, new): severity differs
    suppressed: list[Finding] = field(default_factory=list)  # no longer counted: judged in review, not fixed

    def by(self, what: str) -> dict[str, Counter]:
        """{"new"/"resolved"/"changed": Counter(area or check)}."""
        key = (lambda f: f.area) if what == "area" else (lambda f: f.check)
        return {"new": Counter(map(key, self.added)), "resolved": Counter(map(key, self.resolved)),
                "changed": Counter(key(n) for _o, n in self.changed)}

    def to_dict(self) -> dict:
        brief = lambda f: {"fingerprint": f.fingerprint, "check": f.check, "severity": f.severity.value,  # noqa: E731
                           "title": f.title, "file": f.locations[0].file if f.locations else "",
                           "line": f.locations[0].line if f.locations else None}
        return {"verdict": {"old": self.old.verdict, "new": self.new.verdict},
                "new": [brief(f) for f in self.added], "resolved": [brief(f) for f in self.resolved],
                "severity_changed": [{**brief(n), "old_severity": o.severity.value} for o, n in self.changed],
                "persisting": len(self.persisting),
                "suppressed": [brief(f) for f in self.suppressed],
                "by_area": {k: dict(v) for k, v in self.by("area").items()},
                "by_check": {k: dict(v) for k, v in self.by("check").items()}}


def load_audit(path: str | Path) -> Audit:
    """A findings.json, or a run directory that holds one."""
    p = Path(path)
    if p.is_dir():
        p = p / "findings.json"
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
        fs = [Finding.from_dict(d) for d in data["findings"]]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise DiffError(f"not a findings.json: {p} ({type(exc).__name__}: {exc})") from None
    return Audit(fs, data.get("verdict") or verdict(fs).value, str(p),
                 {d.get("fingerprint", "") for d in data.get("suppressed", [])})


def compare(old: Audit, new: Audit) -> Changes:
    before = {f.fingerprint: f for f in old.findings}
    after = {f.fingerprint: f for f in new.findings}
    ch = Changes(old, new)
    for fp, f in after.items():
        o = before.get(fp)
        if o is None:
            ch.added.append(f)
        elif o.severity != f.severity:
            ch.changed.append((o, f))
        else:
            ch.persisting.append(f)
    ch.resolved = [f for fp, f in before.items() if fp not in after and fp not in new.suppressed]
    ch.suppressed = [f for fp, f in before.items() if fp not in after and fp in new.suppressed]
    rank = lambda f: (-Severity(f.severity).rank, f.check, f.title)  # noqa: E731
    ch.added.sort(key=rank)
    ch.resolved.sort(key=rank)
    return ch


def _line(f: Finding) -> str:
    loc = f.locations[0] if f.locations else None
    where = f"{loc.file}:{loc.line}" if loc and loc.line else (loc.file if loc else "")
    return f"{f.severity.value:14} {f.check:9} {f.title}  ({where})"


def render_text(ch: Changes) -> str:
    out = [f"verdict: {ch.old.verdict} -> {ch.new.verdict}",
           f"new {len(ch.added)}, resolved {len(ch.resolved)}, severity changed {len(ch.changed)}, "
           f"persisting {len(ch.persisting)}" + (f", suppressed in review {len(ch.suppressed)}" if ch.suppressed else "")]
    for title, items in (("New", ch.added), ("Resolved", ch.resolved), ("Suppressed in review (not fixed)", ch.suppressed)):
        if items:
            out += ["", f"{title}:"] + [f"  {_line(f)}" for f in items]
    if ch.changed:
        out += ["", "Severity changed:"] + [f"  {o.severity.value} -> {_line(n)}" for o, n in ch.changed]
    area = ch.by("area")
    if any(area.values()):
        out += ["", "By area (new / resolved / changed):"]
        for a in sorted(set().union(*area.values())):
            out.append(f"  {a:14} {area['new'][a]} / {area['resolved'][a]} / {area['changed'][a]}")
    return "\n".join(out) + "\n"


def render_markdown(ch: Changes) -> str:
    """The "Changes since the previous audit" section of report.md."""
    out = ["## Changes since the previous audit", "",
           f"Verdict: **{ch.old.verdict}** -> **{ch.new.verdict}**. New: {len(ch.added)}, resolved: "
           f"{len(ch.resolved)}, severity changed: {len(ch.changed)}, persisting: {len(ch.persisting)}.", ""]
    for title, items in (("New findings", ch.added), ("Resolved findings", ch.resolved)):
        if items:
            out += [f"### {title}", ""] + [f"- `{f.check}` {f.severity.value}: {md_inline(f.title)}" for f in items] + [""]
    if ch.changed:
        out += ["### Severity changed", ""] + [f"- `{n.check}` {o.severity.value} -> {n.severity.value}: {md_inline(n.title)}"
                                               for o, n in ch.changed] + [""]
    return "\n".join(out)
