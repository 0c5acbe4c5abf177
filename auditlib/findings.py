"""The findings model shared by every check, notebook and report writer.

A :class:`Finding` is one problem (or one inventory fact) with its evidence. Its JSON
form is the ``auditlib/findings@1`` contract read by other tools: names here may be
extended, never renamed.
"""
from __future__ import annotations

import hashlib
import re
from dataclasses import asdict, dataclass, field
from enum import Enum
from typing import Iterable

SCHEMA = "auditlib/findings@1"


class Severity(str, Enum):
    BLOCKER = "BLOCKER"
    WARNING = "WARNING"
    RECOMMENDATION = "RECOMMENDATION"
    INFO = "INFO"

    @property
    def rank(self) -> int:
        return _RANK[self]


_RANK = {Severity.BLOCKER: 3, Severity.WARNING: 2, Severity.RECOMMENDATION: 1, Severity.INFO: 0}

SEVERITIES = [s.value for s in Severity]


class Verdict(str, Enum):
    READY = "READY"
    READY_WITH_CONDITIONS = "READY WITH CONDITIONS"
    NOT_READY = "NOT READY"


AREAS = {
    "functional": "Functional completeness",
    "security": "Security",
    "reliability": "Reliability and infrastructure",
    "observability": "Observability",
    "compliance": "Compliance",
    "performance": "Performance and scalability",
    "testing": "Testing",
    "deployment": "Deployment readiness",
    "documentation": "Documentation",
    "audit": "Audit coverage",
}


@dataclass
class Location:
    file: str  # relative to the target root, POSIX separators
    line: int | None = None
    end_line: int | None = None
    excerpt: str = ""


@dataclass
class Finding:
    check: str
    area: str
    severity: Severity
    title: str
    message: str  # why it matters
    fix: str = ""
    source: str = "static"  # static | db | tests | live
    locations: list[Location] = field(default_factory=list)
    routes: list[dict] = field(default_factory=list)  # [{"method", "path"}]
    tables: list[str] = field(default_factory=list)
    settings: list[str] = field(default_factory=list)
    key: str = ""  # optional stable discriminator for the fingerprint (e.g. a setting name)
    fingerprint: str = ""

    def __post_init__(self) -> None:
        self.severity = Severity(self.severity)

    def identity(self) -> str:
        """What makes two findings 'the same problem', independent of line numbers."""
        loc = self.locations[0] if self.locations else None
        parts = [
            self.check,
            loc.file if loc else "",
            _normalise(loc.excerpt) if loc else "",
            self.key,
            ",".join(sorted(f"{r.get('method')} {r.get('path')}" for r in self.routes)),
            ",".join(sorted(self.tables)),
            ",".join(sorted(self.settings)),
        ]
        if not (loc and loc.excerpt) and not self.key:
            parts.append(self.title)
        return "\x1f".join(parts)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["severity"] = self.severity.value
        d.pop("key")
        order = ["fingerprint", "check", "area", "severity", "title", "message", "fix", "source",
                 "locations", "routes", "tables", "settings"]
        return {k: d[k] for k in order}

    @classmethod
    def from_dict(cls, d: dict) -> "Finding":
        d = dict(d)
        d["locations"] = [Location(**loc) for loc in d.get("locations", [])]
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in d.items() if k in known})


def _normalise(text: str) -> str:
    return re.sub(r"\s+", " ", text or "").strip()


def assign_fingerprints(findings: Iterable[Finding]) -> list[Finding]:
    """Give every finding a stable id: same problem -> same id across runs.

    The id hashes the check, file, normalised excerpt and explicit keys (not the line),
    so inserting lines above a finding does not change it. Identical problems in one
    file are told apart by their order of appearance. A finding that already has its id
    keeps it: findings read back from a notebook's sidecar (where the key, which is not
    part of ``findings.json``, is gone) keep the id their check gave them.
    """
    out = sorted(findings, key=sort_key)
    seen: dict[str, int] = {}
    for f in out:
        ident = f.identity()
        n = seen.get(ident, 0)
        seen[ident] = n + 1
        if not f.fingerprint:
            f.fingerprint = hashlib.sha256(f"{ident}\x1f{n}".encode()).hexdigest()[:16]
    return out


def sort_key(f: Finding):
    loc = f.locations[0] if f.locations else Location("")
    return (-f.severity.rank, f.check, loc.file, loc.line or 0, f.title)


def verdict(findings: Iterable[Finding]) -> Verdict:
    """The checklist's rule: any BLOCKER -> NOT READY; WARNINGs only -> WITH CONDITIONS."""
    sev = {f.severity for f in findings}
    if Severity.BLOCKER in sev:
        return Verdict.NOT_READY
    if Severity.WARNING in sev:
        return Verdict.READY_WITH_CONDITIONS
    return Verdict.READY


def counts(findings: Iterable[Finding]) -> dict[str, int]:
    c = {s: 0 for s in SEVERITIES}
    for f in findings:
        c[f.severity.value] += 1
    return c


def not_verified(check: str, area: str, what: str, reason: str, *, source: str = "static",
                 location: Location | None = None, fix: str = "") -> Finding:
    """The WARNING a check yields when it could not run: never a silent pass."""
    return Finding(
        check=check, area=area, severity=Severity.WARNING,
        title=f"{check} not verified: {what}",
        message=f"not verified: {reason}",
        fix=fix or "Make the missing input available and re-run the audit.",
        source=source,
        locations=[location or Location(".", None, None, "")],
        key=f"not-verified:{what}",
    )


def not_applicable(check: str, area: str, what: str, reason: str, *, source: str = "static") -> Finding:
    """The INFO a check yields when what it verifies does not exist in the target (e.g.
    database checks on an app that uses no SQL database): said, never silent."""
    return Finding(
        check=check, area=area, severity=Severity.INFO,
        title=f"{check} not applicable: {what}", message=f"not applicable: {reason}",
        source=source, locations=[Location(".", None, None, "")], key=f"not-applicable:{what}",
    )


def db_not_verified(ctx, check: str, area: str, what: str, reason: str, *, source: str = "static",
                    **kw) -> Finding:
    """``not_verified`` for a database check, or ``not_applicable`` (INFO) when the
    target imports no SQL database library at all (nothing to verify)."""
    if not ctx.layout.sql_libraries:
        return not_applicable(check, area, what, "the application imports no SQL database library",
                              source=source)
    return not_verified(check, area, what, reason, source=source, **kw)


def findings_frame(findings: Iterable[Finding]):
    """A pandas DataFrame with one row per finding (first location flattened)."""
    import pandas as pd

    rows = []
    for f in findings:
        loc = f.locations[0] if f.locations else Location("")
        rows.append({
            "severity": f.severity.value, "check": f.check, "title": f.title,
            "file": loc.file, "line": loc.line, "excerpt": loc.excerpt,
            "why": f.message, "fix": f.fix, "source": f.source,
            "fingerprint": f.fingerprint,
        })
    cols = ["severity", "check", "title", "file", "line", "excerpt", "why", "fix", "source", "fingerprint"]
    df = pd.DataFrame(rows, columns=cols)
    df["line"] = df["line"].astype("Int64")  # integers, with <NA> for file-level findings
    return df
