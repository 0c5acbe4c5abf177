"""``findings.json``: the ``auditlib/findings@1`` contract read by other tools.

Keys here may be extended by a new schema version, never renamed. Verdict and counts are
always computed from the findings (``findings.verdict`` / ``findings.counts``).
"""
from __future__ import annotations

import json
import platform
from pathlib import Path

from auditlib.findings import SCHEMA, counts, verdict

from .common import review_status, sorted_findings
from .model import RunResult


def findings_json(run: RunResult) -> dict:
    fs = sorted_findings(run.findings)
    status, reasons = review_status(run)
    return {
        "schema": SCHEMA,
        # the interpreter matters: files in newer Python syntax were read after a rewrite
        "tool": {"name": "auditlib", "version": run.tool_version, "python": platform.python_version()},
        "target": {"root": str(run.target_root), "name": run.target_name, "commit": run.commit},
        "generated_at": run.finished.isoformat(),
        "verdict": verdict(fs).value,
        "stages": dict(run.stages),
        # added to @1: COMPLETE only when every stage did its work and every notebook ran
        "review": {"status": status, "reasons": reasons},
        "counts": counts(fs),
        "stats": dict(run.stats),
        "findings": [f.to_dict() for f in fs],
        # extensions: what a review file set aside (with its judgement), counts with those
        # included, and the changes against a baseline audit
        "suppressed": [{**f.to_dict(), "judgement": j} for f, j in run.suppressed],
        "counts_with_suppressed": counts(fs + [f for f, _ in run.suppressed]),
        **({"changes": run.changes} if run.changes else {}),
    }


def dumps(data: dict) -> str:
    # default=str: stats may hold Paths/Decimals; the contract only promises JSON scalars.
    return json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n"


def write_findings_json(run: RunResult, path: Path) -> Path:
    path = Path(path)
    path.write_text(dumps(findings_json(run)), encoding="utf-8")
    return path
