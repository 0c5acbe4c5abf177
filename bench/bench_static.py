"""The static audit's cost against its floor: `ruff check --select S` plus one
`ast.parse` pass over the same tree (issue 4's budget: at most 2x).

    .venv/bin/python bench/bench_static.py [COPIES]

The tree is generated: COPIES (default 10) copies of the multi-tenant fixture app
(tests/fixtures/tenant_app, 20 modules) plus the demo target, each copy its own
package (`app` renamed), so imports resolve inside each copy: ~210 Python files.
Times are best of 3; machines are noisy, so compare the ratio printed by one run.
"""
from __future__ import annotations

import ast
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from auditlib.checks import run_checks  # noqa: E402
from auditlib.context import AuditContext  # noqa: E402
from auditlib.engines.ruff import ruff_binary  # noqa: E402


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


def best(fn, n=3) -> float:
    out = float("inf")
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        out = min(out, time.perf_counter() - t0)
    return out


def main() -> None:
    copies = int(sys.argv[1]) if len(sys.argv) > 1 else 10
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "target"
        n = build_tree(root, copies)
        files = sorted(root.rglob("*.py"))
        ruff = ruff_binary()
        t_ruff = best(lambda: subprocess.run([ruff, "check", "--isolated", "--no-cache", "--exit-zero",
                                              "--select", "S", "--quiet", str(root)], capture_output=True))
        t_parse = best(lambda: [ast.parse(f.read_text()) for f in files])

        def audit():
            ctx = AuditContext.open(root, Path(tmp) / "out", db="none")
            return run_checks(ctx, source="static")

        t_static = best(audit)
        findings = audit()
        floor = t_ruff + t_parse
        print(f"tree: {n} Python files ({copies} copies of the tenant fixture + the demo)")
        print(f"ruff --select S {t_ruff:.2f} s + ast.parse {t_parse:.2f} s = floor {floor:.2f} s")
        print(f"full static audit (every static check, {len(findings)} findings): {t_static:.2f} s")
        print(f"ratio static/floor: {t_static / floor:.2f}x (budget 2x)")


if __name__ == "__main__":
    main()
