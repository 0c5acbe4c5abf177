"""What the tests and live stages add to the demo audit (goal: under 30 s).

    .venv/bin/python bench/bench_stages.py [TARGET]

- stages alone, in-process: the tests stage (copy, pytest with JUnit XML, coverage and
  the probe plugin) and the live stage (migrate, boot uvicorn, probe) on one embedded
  PostgreSQL, each timed;
- batch: `auditlib run` without and with `--tests --live` (--jobs 2); the difference is
  what the two stages cost in a real run (their notebooks run beside the others).
Printed, not asserted: machines are noisy.
"""
from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from auditlib.checks import run_checks  # noqa: E402
from auditlib.target.context import AuditContext  # noqa: E402
from auditlib.target.pg import EmbeddedPostgres  # noqa: E402
from auditlib.stages import live, tests_stage  # noqa: E402


def main() -> None:
    target = Path(sys.argv[1] if len(sys.argv) > 1 else REPO / "examples" / "bookly").resolve()
    with tempfile.TemporaryDirectory() as tmp, EmbeddedPostgres() as pg:
        for name, source, configure in (("tests", "tests", lambda c: tests_stage.configure(c, True)),
                                        ("live", "live", lambda c: live.configure(c, True))):
            ctx = AuditContext.open(target, f"{tmp}/{name}", db=pg.url(driver=""), target_python=sys.executable)
            configure(ctx)
            t0 = time.perf_counter()
            n = len(run_checks(ctx, source=source))
            print(f"stage  {name}: {time.perf_counter() - t0:.1f} s ({n} findings)")
    runs = {}
    with tempfile.TemporaryDirectory() as tmp:
        for label, extra in (("static+db", []), ("+tests+live", ["--tests", "--live"])):
            t0 = time.perf_counter()
            proc = subprocess.run([sys.executable, "-m", "auditlib", "run", str(target), "--out", f"{tmp}/{label}",
                                   "--jobs", "2", "--no-progress", "--target-python", sys.executable, *extra],
                                  capture_output=True, text=True)
            runs[label] = time.perf_counter() - t0
            print(f"batch  {label}: {runs[label]:.1f} s (exit {proc.returncode})")
    added = runs["+tests+live"] - runs["static+db"]
    print(f"batch  the two stages add {added:.1f} s ({'within' if added < 30 else 'OVER'} the 30 s budget)")


if __name__ == "__main__":
    main()
