"""Compare two ``auditlib run`` output directories, timings aside: findings.json, the
executed notebooks' outputs (cell by cell) and report.html.

    .venv/bin/python bench/compare_outputs.py OLD_OUT NEW_OUT

What is left out: timestamps and durations (findings.json's ``generated_at`` and
``duration_s``; papermill's cell metadata; the notebooks' ``ok in N s`` in the report),
and the two runs' output paths. Prints the first differences; exits 1 when any.
"""
from __future__ import annotations

import difflib
import json
import re
import sys
from pathlib import Path

TIMING = [re.compile(r"/tmp/tmp[\w]+/out"), re.compile(r"\b\d+(\.\d+)?\s?s\b"), re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[.\d]*(\+00:00|Z)?"),
          re.compile(r"\d\d:\d\d:\d\d")]


def _norm(text: str, old: Path, new: Path) -> str:
    text = text.replace(str(old), "<OUT>").replace(str(new), "<OUT>")
    for rx in TIMING:
        text = rx.sub("<T>", text)
    return text


def _findings(p: Path) -> str:
    data = json.loads(p.read_text())
    data.pop("generated_at", None)
    data.get("stats", {}).pop("duration_s", None)
    return json.dumps(data, indent=1, sort_keys=True)


def _outputs(p: Path) -> str:
    nb = json.loads(p.read_text())
    cells = [{"source": c["source"], "outputs": c.get("outputs", [])} for c in nb["cells"]]
    return json.dumps(cells, indent=1, sort_keys=True)


def main() -> int:
    old, new = Path(sys.argv[1]).resolve(), Path(sys.argv[2]).resolve()
    pairs = [("findings.json", _findings)] + [(f"notebooks/{p.name}", _outputs)
                                              for p in sorted((old / "notebooks").glob("*.ipynb"))]
    pairs.append(("report.html", lambda p: p.read_text()))
    bad = 0
    for rel, read in pairs:
        a, b = (_norm(read(d / rel), old, new).splitlines() if (d / rel).exists() else ["<missing>"]
                for d in (old, new))
        diff = [line for line in difflib.unified_diff(a, b, lineterm="", n=0) if not line.startswith("@@")][2:]
        print(f"{rel}: {'same' if not diff else f'{len(diff)} differing lines'}")
        for line in diff[:6]:
            print("   ", line[:200])
        bad += bool(diff)
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
