"""Speed figures for the audit (printed, not asserted: machines are noisy, compare the
ratios measured in one run).

    .venv/bin/python bench/bench_audit.py [TARGET]

- index: a cold build that parses every file vs a warm build that takes the parse
  outcomes from the content-hash cache (what each notebook of a batch does);
- batch: the whole `auditlib run` with --jobs 1 vs --jobs 2 (embedded PostgreSQL,
  the target's Alembic through this interpreter).
"""
from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from auditlib.target.index import CodeIndex  # noqa: E402


def timed(fn, repeat=3):
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def main() -> None:
    target = Path(sys.argv[1] if len(sys.argv) > 1 else REPO / "examples" / "bookly").resolve()
    with tempfile.TemporaryDirectory() as tmp:
        cache = Path(tmp) / "cache"
        cold = timed(lambda: CodeIndex.build(target).problems)
        CodeIndex.build(target, cache).save_cache()
        warm = timed(lambda: CodeIndex.build(target, cache).problems)
        n = len(CodeIndex.build(target).files)
        print(f"index  {n} files: cold (parse all) {cold * 1000:.1f} ms, warm (cached outcomes) "
              f"{warm * 1000:.1f} ms, cold/warm {cold / warm:.1f}x")
        runs = {}
        for jobs in (1, 2):
            t0 = time.perf_counter()
            proc = subprocess.run([sys.executable, "-m", "auditlib", "run", str(target), "--out",
                                   f"{tmp}/out{jobs}", "--jobs", str(jobs), "--no-progress",
                                   "--target-python", sys.executable], capture_output=True, text=True)
            runs[jobs] = time.perf_counter() - t0
            print(f"batch  --jobs {jobs}: {runs[jobs]:.1f} s (exit {proc.returncode})")
        print(f"batch  jobs1/jobs2 {runs[1] / runs[2]:.2f}x")


if __name__ == "__main__":
    main()
