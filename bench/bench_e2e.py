"""End-to-end audit time by phase, on a real tree or generated ones (issue 13's table).

    .venv/bin/python bench/bench_e2e.py PATH [PATH ...]     # static audits (--db none), with the HTML
    .venv/bin/python bench/bench_e2e.py --generate 2000 10000   # synthetic FastAPI trees of ~N files

For each tree it runs ``auditlib run --db none`` in a fresh process with an empty cache
and prints the time of each phase, read from the run's own log: index, analysis (every
static check once, and the notebooks' tables), notebooks, report; then the floor
(``ruff check --select S`` + one ``ast.parse`` pass over the same Python files, in the
same run) and the ratio of the analysis phase to it, files per second, and the peak
resident memory of the largest process (the runner or a notebook kernel). Generated
trees show whether the cost grows linearly: compare the files per second at each size.
"""
from __future__ import annotations

import argparse
import ast
import os
import re
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


def audit(root: Path) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "XDG_CACHE_HOME": str(Path(tmp) / "cache")}  # cold: nothing reused
        out = Path(tmp) / "out"
        cmd = [sys.executable, "-m", "auditlib", "run", str(root), "--db", "none", "--out", str(out),
               "--no-progress", "--fail-on", "never"]
        # a watcher process per audit, so the peak memory is this audit's (its descendants')
        watch = ("import resource, subprocess, sys, time; t = time.perf_counter(); "
                 "subprocess.run(sys.argv[1:], capture_output=True); "
                 "print(time.perf_counter() - t, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)")
        res = subprocess.run([sys.executable, "-c", watch, *cmd], cwd=REPO, env=env, capture_output=True, text=True)
        wall, rss_kb = (float(x) for x in res.stdout.split())
        rss_mb = rss_kb / 1024
        log = (out / "audit.log").read_text() if (out / "audit.log").exists() else ""
    got = {"wall": wall, "rss_mb": rss_mb}
    for name, rx in PHASES:
        m = rx.search(log)
        if m:
            got[name] = float(m.group(m.lastindex))
    nbs = [(n, float(s)) for n, s in NOTEBOOK.findall(log)]
    got["notebooks"] = nbs
    return got


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("paths", nargs="*", type=Path)
    ap.add_argument("--generate", nargs="+", type=int, metavar="FILES", help="synthetic trees of about FILES .py files")
    args = ap.parse_args()
    trees: list[tuple[str, Path]] = [(str(p), p) for p in args.paths]
    keep = tempfile.TemporaryDirectory()
    if args.generate:
        from bench_security import generate  # ~5 files per generated area

        for n in args.generate:
            root = Path(keep.name) / f"gen{n}"
            made = generate(root, max(1, n // 5))
            trees.append((f"generated ({made} files)", root))
    for label, root in trees:
        fl, n = floor(root)
        r = audit(root)
        nb = r["notebooks"]
        slowest = max(nb, key=lambda x: x[1]) if nb else ("-", 0.0)
        print(f"\n{label}: {n} .py files")
        print(f"  wall {r['wall']:.1f} s (the run's own total {r.get('total', float('nan')):.1f} s); peak RSS "
              f"{r['rss_mb']:.0f} MB")
        print(f"  index {r.get('index', float('nan')):.2f} s | analysis {r.get('analysis', float('nan')):.2f} s | "
              f"notebooks {len(nb)} (slowest {slowest[0]} {slowest[1]:.1f} s, sum {sum(s for _, s in nb):.1f} s) | "
              f"report {r.get('report', float('nan')):.2f} s")
        if "analysis" in r:
            print(f"  floor (ruff -S + ast.parse) {fl:.2f} s -> analysis / floor {r['analysis'] / fl:.1f}x; "
                  f"{n / r['wall']:.0f} files/s end to end")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
