"""The static audit's cost against its floor: `ruff check --select S` plus one
`ast.parse` pass over the same tree (issue 4's budget: at most 2x).

    .venv/bin/python bench/bench_static.py [COPIES] [--compare CHECKOUT]

``--compare CHECKOUT`` also audits the same tree with the auditlib of another checkout
(e.g. ``git worktree add /tmp/old <rev>``), in the same run, and prints the speed-up:
machines are noisy, so a before/after is only worth a ratio measured in one run.

The tree is generated: COPIES (default 10) copies of the multi-tenant fixture app
(tests/fixtures/tenant_app, 20 modules) plus the demo target, each copy its own
package (`app` renamed), so imports resolve inside each copy: ~200 Python files.

Each audit repetition runs in a fresh process with an empty cache directory, so
nothing is reused from an earlier run (no in-process memo, no parse-outcome or Ruff
cache): that is a *cold* audit, what a first `auditlib run` pays. The clock starts
after the imports (printed separately: Python start-up is not the checks' cost, and
Ruff's own start-up is inside its figure). The warm figure (the same tree audited a
second time with the disk cache filled) is printed for information.
Times are best of N; machines are noisy, so compare the ratio printed by one run.
"""
from __future__ import annotations

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

from auditlib.engines.ruff import ruff_binary  # noqa: E402

# One audit in this (fresh) process: imports untimed, then open + every static check.
CHILD = r"""
import json, sys, time
t0 = time.perf_counter()
sys.path.insert(0, sys.argv[1])
from auditlib.checks import checks_for, run_checks
from auditlib.target.context import AuditContext
checks_for(source="static")  # imports every check module
t1 = time.perf_counter()
runs = []
for _ in range(int(sys.argv[4])):
    a = time.perf_counter()
    ctx = AuditContext.open(sys.argv[2], sys.argv[3], db="none")
    per = {}
    try:
        n = len(run_checks(ctx, source="static", timings=per))  # what the notebooks call
    except TypeError:  # a checkout from before run_checks(timings=): total only
        n = len(run_checks(ctx, source="static"))
    runs.append((time.perf_counter() - a, n, per))
print(json.dumps({"imports": t1 - t0, "runs": runs}))
"""


def build_tree(root: Path, copies: int) -> int:
    src = REPO / "tests" / "fixtures" / "tenant_app"
    shutil.copytree(REPO / "examples" / "bookly", root, ignore=shutil.ignore_patterns("__pycache__"))
    for i in range(copies):
        pkg = f"app{i}"
        for f in (src / "app").rglob("*.py"):
            dest = root / pkg / f.relative_to(src / "app")
            dest.parent.mkdir(parents=True, exist_ok=True)
            text = re.sub(r"\b(from|import) app\b", rf"\1 {pkg}", f.read_text())
            dest.write_text(text)
    return sum(1 for _ in root.rglob("*.py"))


def best(fn, n=5) -> float:
    out = float("inf")
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        out = min(out, time.perf_counter() - t0)
    return out


def audit(root: Path, tmp: Path, runs: int, code: Path = REPO) -> dict:
    cache = Path(tempfile.mkdtemp(dir=tmp))  # empty: a cold audit
    env = {**os.environ, "XDG_CACHE_HOME": str(cache)}
    out = subprocess.run([sys.executable, "-c", CHILD, str(code), str(root), str(tmp / "out"), str(runs)],
                         capture_output=True, text=True, env=env, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    args = sys.argv[1:]
    other = None
    if "--compare" in args:
        i = args.index("--compare")
        other = Path(args[i + 1]).resolve()
        del args[i:i + 2]
    copies = int(args[0]) if args else 10
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        root = tmp / "target"
        n = build_tree(root, copies)
        files = sorted(root.rglob("*.py"))
        ruff = ruff_binary()
        t_ruff = best(lambda: subprocess.run([ruff, "check", "--isolated", "--no-cache", "--exit-zero",
                                              "--select", "S", "--quiet", str(root)], capture_output=True))
        t_parse = best(lambda: [ast.parse(f.read_text()) for f in files])
        cold, old = [], []
        for _ in range(3):  # 3 fresh processes, each: cold run, warm run (interleaved with --compare's)
            cold.append(audit(root, tmp, 2))
            if other is not None:
                old.append(audit(root, tmp, 2, other))
        t_cold = min(c["runs"][0][0] for c in cold)
        t_warm = min(c["runs"][1][0] for c in cold)
        found = cold[0]["runs"][0][1]
        per = min(cold, key=lambda c: c["runs"][0][0])["runs"][0][2]
        floor = t_ruff + t_parse
        print(f"tree: {n} Python files ({copies} copies of the tenant fixture + the demo)")
        print(f"ruff --select S {t_ruff:.3f} s + ast.parse {t_parse:.3f} s = floor {floor:.3f} s")
        print(f"imports of auditlib and its checks (not timed): {min(c['imports'] for c in cold):.2f} s")
        print(f"full static audit, cold (fresh process, empty cache; {found} findings): {t_cold:.3f} s")
        print("  slowest checks: " + ", ".join(f"{k} {v * 1000:.0f} ms"
                                                for k, v in sorted(per.items(), key=lambda kv: -kv[1])[:8]))
        print(f"full static audit, warm (same process, disk cache filled): {t_warm:.3f} s")
        print(f"ratio cold/floor: {t_cold / floor:.2f}x (budget 2x); warm/floor: {t_warm / floor:.2f}x")
        if other is not None:
            o_cold = min(c["runs"][0][0] for c in old)
            o_warm = min(c["runs"][1][0] for c in old)
            print(f"{other}: cold {o_cold:.3f} s ({o_cold / floor:.2f}x the floor, {old[0]['runs'][0][1]} findings), "
                  f"warm {o_warm:.3f} s; this checkout is {o_cold / t_cold:.2f}x faster cold, "
                  f"{o_warm / t_warm:.2f}x warm")


if __name__ == "__main__":
    main()
