"""The batch run: index once, start the database, execute the area notebooks with
papermill in parallel processes, then the summary, then write every report.

Processes, not threads: papermill changes the working directory. Each notebook runs
with an explicit kernel bound to this interpreter (a bare ``python3`` kernelspec can
resolve to another interpreter without auditlib). A notebook that fails does not lose
the others: its section says it failed and the audit gets a WARNING.
"""
from __future__ import annotations

import json
import logging
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from . import __version__
from . import analysis, review
from .target.context import REPO_ROOT, AuditContext
from .findings import Finding, Location, Severity, assign_fingerprints, verdict
from .redact import redact_text, redact_url
from .report import write_reports
from .report.model import NotebookResult, RunResult
from .workbook import REVIEW_ENV, load_recorded, record

log = logging.getLogger("auditlib")
NOTEBOOKS_DIR = REPO_ROOT / "notebooks"
KERNEL_NAME = "auditlib-run"
DB_URL_ENV = "AUDITLIB_DB_URL"


@dataclass
class RunOptions:
    target: str
    out: str | None = None
    jobs: int = 0
    db: str = "auto"
    config: str | None = None
    target_python: str | None = None
    provision: bool = False
    notebooks_dir: str | None = None
    timeout: float | None = None
    progress: bool = True
    tests: bool = False  # run the target's test suite (11_tests)
    live: bool = False  # boot the app and probe it (12_live)
    base_url: str | None = None  # probe this running deployment instead (safe methods only)
    review: str | None = None  # review file (default: TARGET/auditlib-review.toml)
    suppress: bool = True  # False (--no-suppress): every finding counts, judgements shown
    baseline: str | None = None  # a previous findings.json or run directory to compare with


def notebook_plan(nb_dir: Path) -> tuple[list[tuple[str, Path]], Path | None]:
    """Area notebooks ``NN_<area>.ipynb`` in order, and the summary notebook."""
    areas, summary = [], None
    for p in sorted(nb_dir.glob("[0-9][0-9]_*.ipynb")):
        area = p.stem.split("_", 1)[1]
        if area == "summary":
            summary = p
        else:
            areas.append((area, p))
    return areas, summary


def ensure_kernel(cache_dir: Path) -> str:
    """A kernelspec that runs *this* interpreter, on a private JUPYTER_PATH."""
    spec = cache_dir / "jupyter" / "kernels" / KERNEL_NAME
    spec.mkdir(parents=True, exist_ok=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "auditlib (run)", "language": "python",
        "env": {"MPLBACKEND": "module://matplotlib_inline.backend_inline"},
    }))
    os.environ["JUPYTER_PATH"] = os.pathsep.join(
        [str(cache_dir / "jupyter")] + [p for p in os.environ.get("JUPYTER_PATH", "").split(os.pathsep) if p])
    return KERNEL_NAME


def _execute(nb: str, out_nb: str, params: dict, kernel: str, cwd: str, timeout: float | None,
             jupyter_path: str, log_path: str) -> tuple[str, str, float]:
    """Run one notebook (in a worker process). Returns (status, error, seconds).

    The worker's stderr (and so its kernel's) goes to a log file: kernel chatter must
    not scramble the terminal's progress bar.
    """
    os.environ["JUPYTER_PATH"] = jupyter_path
    fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(fd, 2)
    os.close(fd)
    import papermill as pm

    t0 = time.monotonic()
    try:
        pm.execute_notebook(nb, out_nb, parameters=params, kernel_name=kernel, cwd=cwd,
                            execution_timeout=timeout, progress_bar=False, log_output=False,
                            start_timeout=120)
    except Exception as exc:  # PapermillExecutionError, timeouts, kernel death...
        ename = getattr(exc, "ename", type(exc).__name__)
        evalue = getattr(exc, "evalue", str(exc))
        return "failed", f"{ename}: {evalue}".strip().splitlines()[0][:500], time.monotonic() - t0
    return "ok", "", time.monotonic() - t0


DB_NOT_REPORTED = "failed: the database notebook did not report (no migrated schema was recorded)"


def _start_db(opts: RunOptions, stages: dict) -> tuple[object | None, str, str, str]:
    """(server or None, url or 'none', reason when none, what the stage runs on).

    A database that is available does not make the stage "ran": ``stages["db"]`` stays
    "failed: ..." until the database notebook records that the target's migrations
    reached the head and the schema was read (:func:`_db_stage_line`).
    """
    if opts.db == "none":
        stages["db"] = "skipped: disabled (--db none)"
        return None, "none", "the database stage is disabled (--db none)", ""
    if opts.db != "auto":
        stages["db"] = DB_NOT_REPORTED
        return None, opts.db, "", redact_url(opts.db)
    from .target.pg import EmbeddedPostgres, PostgresUnavailable, find_pg_bindir

    if find_pg_bindir() is None:
        reason = "no PostgreSQL server binaries found (set PG_BINDIR or pass --db URL)"
        stages["db"] = f"skipped: {reason}"
        return None, "none", reason, ""
    try:
        server = EmbeddedPostgres().start()
    except PostgresUnavailable as exc:
        stages["db"] = f"failed: embedded PostgreSQL did not start: {exc}"
        return None, "none", f"embedded PostgreSQL did not start: {exc}", ""
    stages["db"] = DB_NOT_REPORTED
    return server, server.url(driver=""), "", "embedded PostgreSQL (throwaway)"


def _db_stage_line(server: str, recorded: str | None) -> str:
    """``stages["db"]`` from what the database notebook recorded (``stage_db``).

    "ran: <server>; <what was done>" only when the notebook says the stage ran; its
    "failed: <reason>" as it is; DB_NOT_REPORTED when the notebook recorded nothing.
    """
    if not recorded:
        return DB_NOT_REPORTED
    recorded = " ".join(str(recorded).split())
    head, _, details = recorded.partition(":")
    if head.strip().lower() == "ran":
        return f"ran: {server}" + (f"; {details.strip()}" if details.strip() else "")
    return recorded


def run_audit(opts: RunOptions) -> RunResult:
    started = datetime.now(timezone.utc)
    ctx = AuditContext.open(opts.target, opts.out, config_file=opts.config, db="none",
                            target_python=opts.target_python, provision=opts.provision)
    out = ctx.out_dir
    for stale in ("findings", "notebooks", "logs"):
        for p in (out / stale).glob("*"):
            p.unlink()
    _setup_log(out)
    log.info("auditing %s -> %s", ctx.root, out)
    nb_dir = Path(opts.notebooks_dir) if opts.notebooks_dir else NOTEBOOKS_DIR
    areas, summary = notebook_plan(nb_dir)

    t0 = time.monotonic()
    index = ctx.index  # walked once here; parse outcomes cached on disk for the notebooks
    index.save_cache()
    log.info("indexed %d files in %.2fs (%d unparsed)", len(index.files), time.monotonic() - t0,
             len(index.problems))
    stages = {"static": "ran"}
    server, db_url, db_reason, db_server = _start_db(opts, stages)
    # one analysis for the whole audit: every static check once, for every notebook
    t1 = time.monotonic()
    actx = AuditContext.open(opts.target, out, config_file=opts.config,
                             db=f"env:{DB_URL_ENV}" if db_url != "none" else "none",
                             target_python=opts.target_python, provision=opts.provision)
    actx.__dict__["index"] = index  # the same walk
    shared = analysis.of(actx)
    store = analysis.save(shared, analysis.store_path(actx, shared.key))
    log.info("analysed once in %.2fs (%d static findings)", time.monotonic() - t1, len(shared.findings))
    audit_findings = shared.area("audit") + _config_findings(ctx)
    stages["tests"] = "skipped: not requested (run with --tests)" if not opts.tests else "failed: the tests notebook did not report"
    stages["live"] = "skipped: not requested (run with --live or --base-url URL)" \
        if not (opts.live or opts.base_url) else "failed: the live notebook did not report"
    kernel = ensure_kernel(ctx.cache_dir)
    previous_store = os.environ.get(analysis.ANALYSIS_ENV)
    previous_review = os.environ.get(REVIEW_ENV)
    os.environ[analysis.ANALYSIS_ENV] = str(store)  # the notebooks' kernels load it
    # the summary notebook's verdict leaves out what the review judged, as the report does
    os.environ[REVIEW_ENV] = "" if not opts.suppress else str(review.review_path(ctx.root, opts.review))
    # the URL (and its password) reaches the kernels through the environment, never
    # through the parameters that papermill writes into every executed notebook
    if db_url != "none":
        os.environ[DB_URL_ENV] = db_url
    params = {"target": str(ctx.root), "out_dir": str(out),
              "db": f"env:{DB_URL_ENV}" if db_url != "none" else "none", "db_reason": db_reason,
              "config": str(Path(opts.config).resolve()) if opts.config else "",
              "target_python": opts.target_python or "", "provision": bool(opts.provision),
              "tests": bool(opts.tests), "live": bool(opts.live or opts.base_url), "base_url": opts.base_url or ""}
    timeout = opts.timeout or ctx.config.get("timeouts", {}).get("notebook", 600)
    jobs = opts.jobs or os.cpu_count() or 1
    results: dict[str, NotebookResult] = {}
    (out / "notebooks").mkdir(exist_ok=True)
    from tqdm import tqdm

    bar = tqdm(total=len(areas) + (summary is not None), desc="notebooks", unit="nb",
               disable=not opts.progress, file=sys.stderr)
    try:
        _run_batch(areas, out, params, kernel, nb_dir, timeout, jobs, bar, results)
        for area, _nb in areas:
            res = results.get(area)
            if res is None or res.status != "ok":
                audit_findings.append(_notebook_failed(area, res))
        # recorded before the summary notebook runs, so its verdict includes these
        record(ctx, "audit", assign_fingerprints(audit_findings))
        if summary is not None:
            _run_batch([("summary", summary)], out, params, kernel, nb_dir, timeout, 1, bar, results)
    finally:
        bar.close()
        for name, previous in ((analysis.ANALYSIS_ENV, previous_store), (REVIEW_ENV, previous_review)):
            if previous is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = previous
        if server is not None:
            server.stop()

    by_area, stats = load_recorded(out)
    for stage in ("tests", "live"):  # the stage notebooks record what their stage did
        if stats.get(f"stage_{stage}"):
            stages[stage] = stats[f"stage_{stage}"]
        stats.pop(f"stage_{stage}", None)
    recorded_db = stats.pop("stage_db", None)
    if db_server:  # a database was available: the notebook says whether the stage did its work
        stages["db"] = _db_stage_line(db_server, recorded_db)
    findings = assign_fingerprints([f for area in by_area.values() for f in area])
    judged = review.apply(findings, review.load(review.review_path(ctx.root, opts.review)), ctx.index,
                          enabled=opts.suppress)
    findings = judged.kept
    changes = None
    if opts.baseline:
        from .diff import Audit, compare, load_audit

        changes = compare(load_audit(opts.baseline), Audit(findings, verdict(findings).value, "this audit",
                                                           {f.fingerprint for f, _ in judged.suppressed}))
    ordered = ([results["summary"]] if "summary" in results else []) + [results[a] for a, _ in areas if a in results]
    stats.update({"files_indexed": len(index.files), "files_unparsed": len(index.problems),
                  "db_url": redact_url(db_url) if db_url != "none" else None,
                  "duration_s": round(time.monotonic() - t0, 2)})
    run = RunResult(tool_version=__version__, target_root=ctx.root, target_name=ctx.name,
                    commit=ctx.commit, started=started, finished=datetime.now(timezone.utc),
                    stages=stages, findings=findings, notebooks=ordered, stats=stats,
                    config={k: v for k, v in ctx.config.items() if not k.startswith("_")},
                    suppressed=[(f, j.to_dict()) for f, j in judged.suppressed],
                    changes=changes.to_dict() if changes else None)
    t_report = time.monotonic()
    write_reports(run, out)
    log.info("reports written in %.2fs", time.monotonic() - t_report)
    log.info("done in %.1fs", time.monotonic() - t0)
    return run


def _run_batch(plan, out, params, kernel, nb_dir, timeout, jobs, bar, results) -> None:
    jupyter_path = os.environ["JUPYTER_PATH"]
    log_path = str(out / "logs" / "kernels.log")
    Path(log_path).parent.mkdir(exist_ok=True)
    with ProcessPoolExecutor(max_workers=max(1, min(jobs, len(plan)))) as pool:
        futures = {}
        for area, nb in plan:
            out_nb = out / "notebooks" / nb.name
            futures[pool.submit(_execute, str(nb), str(out_nb), params, kernel, str(nb_dir),
                                timeout, jupyter_path, log_path)] = (area, nb, out_nb)
        for fut in as_completed(futures):
            area, nb, out_nb = futures[fut]
            try:
                status, error, secs = fut.result()
            except Exception as exc:  # the worker process itself died
                status, error, secs = "failed", f"{type(exc).__name__}: {exc}", 0.0
            error = redact_text(error)
            results[area] = NotebookResult(area=area, title=_title(nb), path=out_nb if out_nb.exists() else None,
                                           status=status, error=error, duration=secs)
            log.info("notebook %s: %s in %.1fs %s", nb.name, status, secs, error)
            bar.set_postfix_str(f"{nb.stem} {status}")
            bar.update(1)


def _title(nb: Path) -> str:
    try:
        cells = json.loads(nb.read_text(encoding="utf-8"))["cells"]
        first = "".join(cells[0]["source"]).splitlines()[0]
        return first.lstrip("# ").strip() or nb.stem
    except Exception:
        return nb.stem


def _notebook_failed(area: str, res: NotebookResult | None) -> Finding:
    reason = res.error if res else "the notebook did not run"
    return Finding(check="AUDIT-002", area="audit", severity=Severity.WARNING,
                   title=f"Not verified: the {area} notebook failed",
                   message=f"not verified: the {area} area's notebook failed ({reason}); its checks "
                           "may not have run, so problems in that area could be missing from this report.",
                   fix="Open the executed notebook in the output's notebooks/ folder, fix the cause and re-run.",
                   source="static", locations=[Location(".", None, None, reason[:300])], key=f"notebook:{area}")


def _config_findings(ctx: AuditContext) -> list[Finding]:
    return [Finding(check="AUDIT-003", area="audit", severity=Severity.WARNING,
                    title="Configuration problem", message=w,
                    fix="Fix [tool.auditlib] in the target's pyproject.toml or the --config file.",
                    locations=[Location("pyproject.toml", None, None, "")], key=w)
            for w in ctx.config.get("_warnings", [])]


def _setup_log(out: Path) -> None:
    for h in list(log.handlers):
        log.removeHandler(h)
    handler = logging.FileHandler(out / "audit.log", mode="w", encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    log.addHandler(handler)
    log.setLevel(logging.INFO)
