"""Reviews and suppressions: an auditor's judgement of a finding, recorded so the next
audit remembers it.

A review file (``auditlib-review.toml`` at the target root, or ``--review FILE``) holds
judgements by fingerprint::

    [[judgement]]
    fingerprint = "3f2a9c0d1e4b5a67"
    check = "SEC-011"                  # for the reader; not used to match
    status = "accepted-risk"           # false-positive | accepted-risk | fixed-elsewhere
    reason = "read-only reporting replica, no tenant data"
    reviewer = "a.auditor"
    expires = 2027-03-31               # accepted-risk only: the finding reopens after it

In code, ``# auditlib: ignore[SEC-011, SEC-013] reason`` on the flagged line, or on the
``def`` / a decorator line of the function that encloses it, marks the finding a false
positive with that reason.

Suppressed findings are never dropped silently: :func:`apply` returns them with their
judgement (the report lists them in an appendix, the verdict is computed without them),
turns a judgement without a reason into a WARNING instead of honouring it, reopens an
accepted risk whose expiry date has passed (saying so in its message), and reports
review-file entries that match no finding any more (INFO: fixed, or reworded).
"""
from __future__ import annotations

import ast
import datetime as dt
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from .findings import Finding, Location, Severity, assign_fingerprints

REVIEW_FILE = "auditlib-review.toml"
STATUSES = ("false-positive", "accepted-risk", "fixed-elsewhere")
INLINE = re.compile(r"#\s*auditlib:\s*ignore\[([A-Z]+-\d{3}(?:\s*,\s*[A-Z]+-\d{3})*)\]\s*([^#]*)")


class ReviewError(ValueError):
    """The review file cannot be read (the CLI turns it into exit code 2)."""


@dataclass
class Judgement:
    fingerprint: str
    status: str
    reason: str = ""
    reviewer: str = ""
    expires: dt.date | None = None
    check: str = ""
    where: str = ""  # review file:entry, or file:line of the inline comment

    def expired(self, today: dt.date) -> bool:
        return self.status == "accepted-risk" and self.expires is not None and self.expires < today

    def to_dict(self) -> dict:
        return {"status": self.status, "reason": self.reason, "reviewer": self.reviewer,
                "expires": self.expires.isoformat() if self.expires else None, "where": self.where}


@dataclass
class Applied:
    kept: list[Finding] = field(default_factory=list)  # what the verdict counts
    suppressed: list[tuple[Finding, Judgement]] = field(default_factory=list)
    notes: list[Finding] = field(default_factory=list)  # review problems (also in kept)


def review_path(root: Path, path: str | Path | None = None) -> Path:
    return Path(path) if path else Path(root) / REVIEW_FILE


def load(path: Path) -> list[Judgement]:
    """The judgements of a review file ([] when it does not exist)."""
    if not path.is_file():
        return []
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ReviewError(f"cannot read review file {path}: {exc}") from None
    out = []
    for i, e in enumerate(data.get("judgement", []), 1):
        status = str(e.get("status", ""))
        if status not in STATUSES or not e.get("fingerprint"):
            raise ReviewError(f"{path}: judgement {i} needs a fingerprint and a status among {', '.join(STATUSES)}")
        expires = e.get("expires")
        if isinstance(expires, str):
            try:
                expires = dt.date.fromisoformat(expires)
            except ValueError:
                raise ReviewError(f"{path}: judgement {i}: expires must be a date (YYYY-MM-DD)") from None
        out.append(Judgement(str(e["fingerprint"]), status, str(e.get("reason", "")).strip(),
                             str(e.get("reviewer", "")), expires, str(e.get("check", "")),
                             f"{path.name}: judgement {i}"))
    return out


def inline_judgement(index, f: Finding) -> Judgement | None:
    """``# auditlib: ignore[ID] reason`` on a location's line, or on the ``def`` or a
    decorator of the function enclosing it."""
    for loc in f.locations:
        src = index.get(loc.file) if loc.file and loc.line else None
        if src is None or src.text is None or "auditlib" not in src.text:
            continue  # no marker in the file: nothing to parse it for
        for n in _candidate_lines(src, loc.line):
            m = INLINE.search(src.line(n)) if n else None
            if m and f.check in {x.strip() for x in m.group(1).split(",")}:
                return Judgement(f.fingerprint, "false-positive", m.group(2).strip(), "", None, f.check,
                                 f"{loc.file}:{n}")
    return None


def _candidate_lines(src, line: int) -> list[int]:
    lines = [line]
    if src.tree is not None:
        from .code.pyast import of_type

        funcs = [fn for fn in of_type(src.tree, (ast.FunctionDef, ast.AsyncFunctionDef))
                 if fn.lineno <= line <= (fn.end_lineno or fn.lineno)
                 or any(d.lineno <= line <= (d.end_lineno or d.lineno) for d in fn.decorator_list)]
        if funcs:
            fn = max(funcs, key=lambda x: x.lineno)  # the innermost
            lines += [fn.lineno] + [d.lineno for d in fn.decorator_list]
    return lines


def apply(findings: list[Finding], judgements: list[Judgement], index=None, *,
          today: dt.date | None = None, enabled: bool = True) -> Applied:
    """Split ``findings`` into those the verdict counts and those suppressed by a
    judgement; review problems become findings of AUDIT-003 (in ``kept``)."""
    today = today or dt.date.today()
    by_fp = {j.fingerprint: j for j in judgements}
    used: set[str] = set()
    out = Applied()
    for f in findings:
        j = by_fp.get(f.fingerprint)
        if j is not None:
            used.add(j.fingerprint)
        elif index is not None:
            j = inline_judgement(index, f)
        if j is None or not enabled:
            out.kept.append(f)
        elif not j.reason:
            out.kept.append(f)
            out.notes.append(_note(Severity.WARNING, f"Suppression without a reason ignored: {f.check} {f.title}"[:200],
                                   f"The judgement at {j.where} marks this finding `{j.status}` but gives no reason, "
                                   "so it is not honoured: an unexplained suppression cannot be reviewed.",
                                   "Give the judgement a reason (what makes the finding wrong or the risk "
                                   "acceptable), or remove it.", f, j))
        elif j.expired(today):
            f.message = f"(accepted risk expired on {j.expires.isoformat()}: {j.reason}) " + f.message
            out.kept.append(f)
        else:
            out.suppressed.append((f, j))
    for j in judgements:
        if j.fingerprint not in used:
            out.notes.append(_note(Severity.INFO, f"Review entry matches no finding: {j.fingerprint}",
                                   f"{j.where} ({j.check or 'no check'}, {j.status}: {j.reason or 'no reason'}) "
                                   "matches no finding of this audit: the defect was fixed, or the finding changed.",
                                   "Remove the entry once the fix is confirmed.", None, j))
    out.notes = assign_fingerprints(out.notes)
    out.kept += out.notes
    return out


def _note(sev: Severity, title: str, message: str, fix: str, f: Finding | None, j: Judgement) -> Finding:
    loc = f.locations[0] if f is not None and f.locations else Location(j.where.split(":")[0] or REVIEW_FILE)
    return Finding(check="AUDIT-003", area="audit", severity=sev, title=title, message=message, fix=fix,
                   source="static", locations=[Location(loc.file, loc.line, loc.line, loc.excerpt)],
                   key=f"review:{j.fingerprint}")


def record(path: Path, fingerprint: str, status: str, reason: str, reviewer: str = "",
           expires: dt.date | None = None, check: str = "") -> None:
    """Append (or replace) the judgement of ``fingerprint`` in the review file."""
    if status not in STATUSES:
        raise ReviewError(f"status must be one of {', '.join(STATUSES)}")
    if not reason.strip():
        raise ReviewError("a judgement needs a reason")
    if expires is not None and status != "accepted-risk":
        raise ReviewError("only an accepted risk expires")
    kept = [j for j in load(path) if j.fingerprint != fingerprint]
    kept.append(Judgement(fingerprint, status, reason.strip(), reviewer, expires, check))
    lines = ["# auditlib review file: judgements of findings, by fingerprint (see `auditlib review --help`)\n"]
    for j in kept:
        lines.append("\n[[judgement]]\n")
        lines.append(f"fingerprint = {_q(j.fingerprint)}\n")
        if j.check:
            lines.append(f"check = {_q(j.check)}\n")
        lines.append(f"status = {_q(j.status)}\nreason = {_q(j.reason)}\n")
        if j.reviewer:
            lines.append(f"reviewer = {_q(j.reviewer)}\n")
        if j.expires:
            lines.append(f"expires = {j.expires.isoformat()}\n")
    path.write_text("".join(lines), encoding="utf-8")


def _q(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"').replace("\n", " ") + '"'
