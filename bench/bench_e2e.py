"""End-to-end audit time by phase, on a real tree or generated ones (issue 13's table).

    .venv/bin/python bench/bench_e2e.py PATH [PATH ...]     # static audits (--db none), with the HTML
    .venv/bin/python bench/bench_e2e.py --generate 2000 10000   # synthetic FastAPI trees of ~N files
    .venv/bin/python bench/bench_e2e.py --baseline /tmp/old PATH   # also audit with another checkout's code

For each tree it runs ``auditlib run --db none`` in a fresh process with an empty cache
and prints the time of each phase, read from the run's own log: index, analysis (every
static check once, and the notebooks' tables), notebooks, report; then the floor
(``ruff check --select S`` + one ``ast.parse`` pass over the same Python files, in the
same run) and the ratio of the analysis phase to it, files per second, the CPU time of
the whole process tree (user + system: on a shared machine it moves less than the wall
time) and the peak resident memory of the largest process (the runner or a notebook
kernel). Generated trees show whether the cost grows linearly: compare the files per
second at each size.

``--baseline DIR`` audits every tree with the code of DIR too (e.g. ``git worktree add
/tmp/old main``), alternating which goes first, and prints the ratios measured in the
same run and whether findings.json is the same (timings and the target root left out).
Matplotlib's font cache is kept warm across runs (built once, as on a user's machine);
auditlib's own cache starts empty for every audit.
"""
from __future__ import annotations

import argparse
import ast
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

PHASES = [("index", re.compile(r"indexed (\d+) files in ([\d.]+)s")),
          ("analysis", re.compile(r"analysed once in ([\d.]+)s")),
          ("report", re.compile(r"reports written in ([\d.]+)s")),
          ("total", re.compile(r"done in ([\d.]+)s"))]
NOTEBOOK = re.compile(r"notebook (\S+): \w+ in ([\d.]+)s")
STAMP = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) INFO (.*)$", re.M)
# the watcher: runs the audit, prints wall, CPU of its process tree and the largest peak RSS
WATCH = ("import resource, subprocess, sys, time; t = time.perf_counter(); "
         "p = subprocess.run(sys.argv[1:], capture_output=True); "
         "r = resource.getrusage(resource.RUSAGE_CHILDREN); "
         "sys.stderr.buffer.write(p.stderr[-3000:]); "
         "print(time.perf_counter() - t, r.ru_utime + r.ru_stime, r.ru_maxrss, p.returncode)")


def floor(root: Path) -> tuple[float, int]:
    from auditlib.engines.ruff import ruff_binary

    files = [p for p in root.rglob("*.py") if not any(part.startswith(".") or part in ("node_modules", "venv")
                                                      for part in p.parts)]
    t0 = time.perf_counter()
    subprocess.run([ruff_binary(), "check", "--isolated", "--no-cache", "--exit-zero", "--select", "S", "-q",
                    str(root)], capture_output=True)
    t1 = time.perf_counter()
    for f in files:
        try:
            ast.parse(f.read_bytes())
        except (SyntaxError, ValueError):
            pass
    return t1 - t0 + time.perf_counter() - t1, len(files)


def _notebooks_phase(log: str) -> float | None:
    """Seconds from the end of the analysis to the last notebook's end (from the log's stamps)."""
    from datetime import datetime

    stamps = [(datetime.strptime(s, "%Y-%m-%d %H:%M:%S,%f"), msg) for s, msg in STAMP.findall(log)]
    start = next((t for t, m in stamps if m.startswith("analysed once")), None)
    ends = [t for t, m in stamps if m.startswith("notebook ")]
    return (max(ends) - start).total_seconds() if start and ends else None


def _comparable(findings_json: Path) -> str | None:
    """findings.json without what changes from run to run (timings, where the code ran)."""
    if not findings_json.exists():
        return None
    data = json.loads(findings_json.read_text())
    data.pop("generated_at", None)
    data.get("stats", {}).pop("duration_s", None)
    return json.dumps(data, sort_keys=True)


def audit(root: Path, code: Path, mpl_dir: Path, keep: Path | None = None) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "XDG_CACHE_HOME": str(Path(tmp) / "cache"),  # cold: nothing of auditlib's reused
               "MPLCONFIGDIR": str(mpl_dir), "PYTHONPATH": str(code)}
        out = Path(tmp) / "out"
        cmd = [sys.executable, "-m", "auditlib", "run", str(root), "--db", "none", "--out", str(out),
               "--no-progress", "--fail-on", "never"]
        # a watcher process per audit, so the CPU and peak memory are this audit's (its descendants')
        res = subprocess.run([sys.executable, "-c", WATCH, *cmd], cwd=code, env=env, capture_output=True, text=True)
        wall, cpu, rss_kb, rc = res.stdout.split()
        log = (out / "audit.log").read_text() if (out / "audit.log").exists() else ""
        got = {"wall": float(wall), "cpu": float(cpu), "rss_mb": float(rss_kb) / 1024, "rc": int(rc),
               "findings": _comparable(out / "findings.json"), "stderr": res.stderr}
        if keep is not None:
            shutil.rmtree(keep, ignore_errors=True)
            shutil.copytree(out, keep)
    for name, rx in PHASES:
        m = rx.search(log)
        if m:
            got[name] = float(m.group(m.lastindex))
    got["notebooks"] = [(n, float(s)) for n, s in NOTEBOOK.findall(log)]
    got["notebooks_phase"] = _notebooks_phase(log)
    return got


def show(label: str, r: dict, n: int, fl: float) -> None:
    nan = float("nan")
    nb = r["notebooks"]
    slowest = max(nb, key=lambda x: x[1]) if nb else ("-", 0.0)
    print(f"  [{label}] wall {r['wall']:.1f} s (the run's own total {r.get('total', nan):.1f} s), "
          f"CPU {r['cpu']:.1f} s, peak RSS {r['rss_mb']:.0f} MB, {n / r['wall']:.0f} files/s end to end"
          + ("" if r["rc"] in (0, 1) else f"  EXIT {r['rc']}: {r['stderr'][-300:]}"))
    print(f"  [{label}] index {r.get('index', nan):.2f} s | analysis {r.get('analysis', nan):.2f} s | "
          f"notebooks {r['notebooks_phase'] or nan:.1f} s ({len(nb)}, slowest {slowest[0]} {slowest[1]:.1f} s, "
          f"sum {sum(s for _, s in nb):.1f} s) | report {r.get('report', nan):.2f} s")
    if "analysis" in r:
        print(f"  [{label}] floor (ruff -S + ast.parse) {fl:.2f} s -> analysis / floor {r['analysis'] / fl:.1f}x")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("paths", nargs="*", type=Path)
    ap.add_argument("--generate", nargs="+", type=int, metavar="FILES", help="synthetic trees of about FILES .py files")
    ap.add_argument("--baseline", type=Path, metavar="DIR", help="also audit with the auditlib code of DIR")
    ap.add_argument("--keep", type=Path, metavar="DIR", help="keep each run's output in DIR/<tree>-<code>")
    args = ap.parse_args()
    trees: list[tuple[str, Path]] = [(str(p), p.resolve()) for p in args.paths]
    keep = tempfile.TemporaryDirectory()
    mpl_dir = Path(keep.name) / "mpl"
    subprocess.run([sys.executable, "-c", "import matplotlib.font_manager"], env={**os.environ, "MPLCONFIGDIR": str(mpl_dir)})
    if args.generate:
        from bench_security import generate  # ~5 files per generated area

        for n in args.generate:
            root = Path(keep.name) / f"gen{n}"
            made = generate(root, max(1, n // 5))
            trees.append((f"generated ({made} files)", root))
    codes = [("this", REPO)] + ([("baseline", args.baseline.resolve())] if args.baseline else [])
    for i, (label, root) in enumerate(trees):
        fl, n = floor(root)
        print(f"\n{label}: {n} .py files", flush=True)
        runs = {}
        for name, code in (codes if i % 2 == 0 else codes[::-1]):  # alternate who runs first
            runs[name] = audit(root, code, mpl_dir, args.keep / f"{root.name}-{name}" if args.keep else None)
        for name, _ in codes:
            show(name, runs[name], n, fl)
        if args.baseline:
            new, old = runs["this"], runs["baseline"]
            same = new["findings"] is not None and new["findings"] == old["findings"]
            print(f"  this / baseline: wall {new['wall'] / old['wall']:.2f}, CPU {new['cpu'] / old['cpu']:.2f}, "
                  f"peak RSS {new['rss_mb'] / old['rss_mb']:.2f}; findings.json "
                  + ("identical" if same else "DIFFERENT") + " (timings and root aside)")
        sys.stdout.flush()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
