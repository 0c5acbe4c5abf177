"""SARIF 2.1.0 output (``report.sarif``) for code-scanning UIs.

Hand-written JSON on purpose: the only Python SARIF package (``sarif-om``) provides bare
classes without any validation and pulls in ``attrs``; the subset we emit is small and
stable, so a dict is clearer and dependency-free.
"""
from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

from auditlib.findings import Finding, Severity

from .common import sorted_findings
from .json_report import dumps
from .model import RunResult

SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
SARIF_VERSION = "2.1.0"
FINGERPRINT_KEY = "auditlib/v1"

LEVELS = {
    Severity.BLOCKER: "error",
    Severity.WARNING: "warning",
    Severity.RECOMMENDATION: "note",
    Severity.INFO: "none",
}


def _uri(file: str) -> str:
    """Relative, percent-encoded URI of a target file (POSIX separators)."""
    f = (file or ".").replace("\\", "/")
    while f.startswith("./") and len(f) > 2:
        f = f[2:]
    return quote(f, safe="/-_.~")


def _location(loc) -> dict:
    phys: dict = {"artifactLocation": {"uri": _uri(loc.file), "uriBaseId": "%SRCROOT%"}}
    if loc.line:
        region: dict = {"startLine": int(loc.line)}
        if loc.end_line and loc.end_line >= loc.line:
            region["endLine"] = int(loc.end_line)
        if loc.excerpt:
            region["snippet"] = {"text": loc.excerpt}
        phys["region"] = region
    return {"physicalLocation": phys}


def _message(f: Finding) -> str:
    text = f.title
    if f.message:
        text += f" — {f.message}"
    if f.routes:
        text += " (routes: " + ", ".join(
            f"{r.get('method', '')} {r.get('path', '')}".strip() for r in f.routes) + ")"
    return text


def sarif_report(run: RunResult) -> dict:
    fs = sorted_findings(run.findings)
    rules: dict[str, dict] = {}
    for f in fs:  # sorted by severity first: a rule's default level is its worst finding's
        if f.check not in rules:
            rules[f.check] = {
                "id": f.check,
                "name": f.check,
                "shortDescription": {"text": f.title},
                "defaultConfiguration": {"level": LEVELS[f.severity]},
                "properties": {"area": f.area},
            }
            if f.fix:
                rules[f.check]["help"] = {"text": f.fix}
    index = {cid: i for i, cid in enumerate(rules)}
    results = []
    for f in fs:
        res = {
            "ruleId": f.check,
            "ruleIndex": index[f.check],
            "level": LEVELS[f.severity],
            "message": {"text": _message(f)},
            "locations": [_location(loc) for loc in f.locations],
            "partialFingerprints": {FINGERPRINT_KEY: f.fingerprint},
            "properties": {"severity": f.severity.value, "area": f.area, "source": f.source,
                           "fix": f.fix},
        }
        if not res["locations"]:
            del res["locations"]
        results.append(res)
    root_uri = Path(run.target_root).resolve().as_uri().rstrip("/") + "/"
    return {
        "$schema": SARIF_SCHEMA,
        "version": SARIF_VERSION,
        "runs": [{
            "tool": {"driver": {
                "name": "auditlib",
                "version": run.tool_version,
                "rules": list(rules.values()),
            }},
            "originalUriBaseIds": {"%SRCROOT%": {"uri": root_uri}},
            "results": results,
            "properties": {"target": run.target_name, "commit": run.commit},
        }],
    }


def write_sarif(run: RunResult, path: Path) -> Path:
    path = Path(path)
    path.write_text(dumps(sarif_report(run)), encoding="utf-8")
    return path
