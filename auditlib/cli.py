"""``auditlib run PATH``: the batch audit from the command line.

Exit codes (a contract; extend, don't change): 0 the verdict is below ``--fail-on``;
1 at or above it; 2 the audit itself could not run (bad path, not a Python project,
unreadable config), with a one-line reason and no traceback.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from . import __version__

EXIT_OK, EXIT_FAIL, EXIT_ERROR = 0, 1, 2


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="auditlib", description=__doc__.splitlines()[0])
    p.add_argument("--version", action="version", version=f"auditlib {__version__}")
    sub = p.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="audit a FastAPI backend on disk")
    run.add_argument("target", help="path to the target project")
    run.add_argument("--out", help="output directory (default: output/<target-name>)")
    run.add_argument("--jobs", type=int, default=0, help="notebooks run in parallel (default: CPU count)")
    run.add_argument("--db", default="auto",
                     help="auto (embedded PostgreSQL when server binaries are found), none, or a URL")
    run.add_argument("--config", help="TOML file with [tool.auditlib]-style settings")
    run.add_argument("--profile", metavar="NAME",
                     help="a named profile shipped with auditlib (e.g. cleaning): expected features, tenant "
                          "tables and critical variables of that kind of product (default: read from the app)")
    run.add_argument("--fail-on", choices=["blocker", "warning", "never"], default="blocker",
                     help="exit 1 when the verdict reaches this level (default: blocker)")
    run.add_argument("--target-python", help="interpreter that has the target's dependencies (for Alembic)")
    run.add_argument("--provision", action="store_true",
                     help="create and cache a virtualenv for the target from its requirements")
    run.add_argument("--notebooks", help=argparse.SUPPRESS)  # alternative notebook dir (tests)
    run.add_argument("--timeout", type=float, help="seconds per notebook cell (default from config)")
    run.add_argument("--no-progress", action="store_true", help="no progress bar")
    run.add_argument("--tests", action="store_true",
                     help="run the target's own test suite (in the target's environment, on a copy of the tree)")
    run.add_argument("--live", action="store_true",
                     help="boot the app on a migrated throwaway PostgreSQL and probe it over loopback HTTP")
    run.add_argument("--base-url", metavar="URL",
                     help="probe an already running deployment instead (GET/HEAD/OPTIONS only, to that host only)")
    run.add_argument("--review", metavar="FILE",
                     help="review file with judgements of findings (default: TARGET/auditlib-review.toml)")
    run.add_argument("--no-suppress", action="store_true",
                     help="count every finding, even those a review judged (they stay marked)")
    run.add_argument("--baseline", metavar="OLD",
                     help="a previous findings.json or run directory: the report opens with what changed")
    sub.add_parser("checks", help="list the registered checks")
    d = sub.add_parser("diff", help="changes between two audits (findings.json files or run directories)")
    d.add_argument("old")
    d.add_argument("new")
    d.add_argument("--json", action="store_true", help="print the changes as JSON")
    r = sub.add_parser("review", help="record a judgement of a finding in the review file")
    r.add_argument("target", help="path to the audited project (the review file lives at its root)")
    r.add_argument("fingerprint", help="the finding's fingerprint (findings.json, report)")
    r.add_argument("--status", required=True, choices=["false-positive", "accepted-risk", "fixed-elsewhere"])
    r.add_argument("--reason", required=True, help="why: what makes the finding wrong or the risk acceptable")
    r.add_argument("--reviewer", default="", help="who judged it")
    r.add_argument("--expires", help="accepted-risk only: the date (YYYY-MM-DD) the finding reopens")
    r.add_argument("--check", default="", help="the finding's check id, recorded for the reader")
    r.add_argument("--file", help="review file (default: TARGET/auditlib-review.toml)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "checks":
        from .checks import iter_docs

        for cid, area, title, _doc in iter_docs():
            print(f"{cid:10} {area:14} {title}")
        return EXIT_OK
    if args.command == "diff":
        return _diff(args)
    if args.command == "review":
        return _review(args)
    return _run(args)


def _diff(args) -> int:
    import json

    from .diff import DiffError, compare, load_audit, render_text

    try:
        ch = compare(load_audit(args.old), load_audit(args.new))
    except DiffError as exc:
        print(f"auditlib: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    print(json.dumps(ch.to_dict(), indent=2) if args.json else render_text(ch), end="" if not args.json else "\n")
    return EXIT_OK


def _review(args) -> int:
    import datetime as dt

    from .review import ReviewError, record, review_path

    try:
        expires = dt.date.fromisoformat(args.expires) if args.expires else None
        path = review_path(Path(args.target), args.file)
        record(path, args.fingerprint, args.status, args.reason, args.reviewer, expires, args.check)
    except (ReviewError, ValueError) as exc:
        print(f"auditlib: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    print(f"recorded {args.status} for {args.fingerprint} in {path}")
    return EXIT_OK


def _run(args) -> int:
    from .target.config import ConfigError, load_config
    from .target.context import TargetError, validate_target

    try:
        root = validate_target(args.target)
        if args.config or args.profile:
            load_config(root, args.config, profile=args.profile)
        from .review import load as load_review, review_path

        load_review(review_path(root, args.review))  # a broken review file stops here
        if args.baseline:
            from .diff import load_audit

            load_audit(args.baseline)
        if args.target_python and not os.access(args.target_python, os.X_OK):
            raise TargetError(f"--target-python is not an executable: {args.target_python}")
        if args.jobs < 0:
            raise TargetError("--jobs must be >= 0")
        if args.base_url:
            from urllib.parse import urlsplit

            parts = urlsplit(args.base_url)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise TargetError(f"--base-url must be an http(s) URL with a host: {args.base_url}")
    except (TargetError, ConfigError, ValueError) as exc:  # ReviewError, DiffError are ValueErrors
        print(f"auditlib: error: {exc}", file=sys.stderr)
        return EXIT_ERROR

    from .findings import counts, verdict
    from .runner import RunOptions, run_audit

    if args.profile:  # every notebook process reads its configuration with this profile
        from .target.config import PROFILE_ENV

        os.environ[PROFILE_ENV] = args.profile
    t0 = time.monotonic()
    # absolute, but not resolved: a venv's python is a symlink whose location matters
    target_python = os.path.abspath(args.target_python) if args.target_python else None
    run = run_audit(RunOptions(target=str(root), out=args.out, jobs=args.jobs, db=args.db,
                               config=args.config, target_python=target_python,
                               provision=args.provision, notebooks_dir=args.notebooks,
                               timeout=args.timeout, progress=not args.no_progress, tests=args.tests,
                               live=args.live, base_url=args.base_url, review=args.review,
                               suppress=not args.no_suppress, baseline=args.baseline))
    v, c = verdict(run.findings), counts(run.findings)
    out = Path(args.out) if args.out else None
    print(f"\nVERDICT: {v.value}")
    print(f"  blockers {c['BLOCKER']}, warnings {c['WARNING']}, recommendations {c['RECOMMENDATION']}, "
          f"info {c['INFO']}")
    if run.suppressed:
        print(f"  suppressed in review: {len(run.suppressed)} (listed in the report's appendix)")
    for name, state in run.stages.items():
        print(f"  stage {name}: {state}")
    failed = [n.area for n in run.notebooks if n.status != "ok"]
    if failed:
        print(f"  notebooks failed: {', '.join(failed)}")
    print(f"  report: {(out or run_out(run)) / 'report.html'}  ({time.monotonic() - t0:.1f}s)")
    level = {"blocker": 3, "warning": 2, "never": 99}[args.fail_on]
    worst = max((f.severity.rank for f in run.findings), default=0)
    return EXIT_FAIL if worst >= level else EXIT_OK


def run_out(run) -> Path:
    from .target.context import REPO_ROOT

    return REPO_ROOT / "output" / run.target_name


if __name__ == "__main__":
    sys.exit(main())
