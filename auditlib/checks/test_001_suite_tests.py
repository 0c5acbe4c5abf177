"""TEST-001: the target's own test suite, run (tests stage, ``--tests``)."""
from __future__ import annotations

from collections import Counter

from ..findings import Location, Severity, not_verified
from . import check

MIN_COVERAGE = 70.0  # [tool.auditlib] min_coverage (percent)


def test_location(ctx) -> tuple[str, int | None]:
    """Where the suite lives: its conftest.py, else the first test directory."""
    paths = ctx.layout.test_paths
    for p in paths:
        if ctx.index.get(f"{p}/conftest.py"):
            return f"{p}/conftest.py", None
    return (paths[0] if paths else "."), None


@check("TEST-001", "testing", "Test suite results", source="tests")
def suite_results(ctx):
    """Runs the target's own pytest suite once (in the target's interpreter, on a copy of
    the tree, with its CI's command and environment, database URLs pointed at a throwaway
    PostgreSQL; see :mod:`auditlib.stages.tests_stage`) and reports it.

    Why: a red or partly-skipped suite means the release is not verified by its own
    authors; low coverage means most code paths ship untested.

    Severity: every failing test or test error is a BLOCKER at the failing line (the last
    ``file:line`` of its traceback inside the target); an ``async def`` test that no async
    plugin ran (pytest skips or fails it with "not natively supported") is a WARNING: the
    suite looks green while it never ran; each skipped test is a RECOMMENDATION at its
    skip marker; total coverage of the application packages below ``min_coverage``
    (default 70 %) is a RECOMMENDATION. The counts, duration, slowest tests, the command
    and environment used (secrets masked) and why, coverage per package and the warnings
    grouped by category and source are INFO. A suite that could not run (no target
    environment, pytest missing, timeout, collection crash) is a "not verified" WARNING
    with the first error, the environment used (secrets masked), the CI steps replayed
    before it (migrations) and those that were not.

    Not flagged: expected failures (``xfail``) are INFO; when ``--tests`` was not given the
    stage did not run by choice, which is one INFO (the report's stages say so too).
    """
    from ..stages.tests_stage import suite_run

    chk = suite_results.check
    run = suite_run(ctx)
    where = test_location(ctx)
    if not run.requested:
        yield chk.finding(ctx, Severity.INFO, "Test suite not run (the tests stage was not requested)",
                          "The audit did not run the target's tests; pass --tests to run them.",
                          "Re-run with `auditlib run --tests` (with --target-python or --provision).", *where,
                          excerpt="", key="not-requested")
        return
    if run.error:
        reason = run.error + (f". {run.ci_context()}" if run.test_command is not None else "")
        yield not_verified(chk.id, chk.area, "the test suite did not run", reason, source="tests",
                           location=Location(where[0], None, None, ""),
                           fix="Make the suite runnable in a fresh environment (declared test dependencies, "
                               "no external services); see logs/tests.log.")
        return
    for c in run.cases:
        file, line = c.where
        if c.outcome in ("failed", "error"):
            yield chk.finding(ctx, Severity.BLOCKER, f"Failing test: {c.nodeid}",
                              f"The test {'fails' if c.outcome == 'failed' else 'errors'}: {c.message[:300]}. "
                              "A red suite means this release is not verified by its own tests.\n\n"
                              + _tail(c.details), "Fix the code (or the test, if the rule changed) until the suite "
                              "is green; run it in CI on every push.", file, line, key=c.nodeid)
        elif c.outcome == "not-run":
            yield chk.finding(ctx, Severity.WARNING, f"Async test never ran: {c.nodeid}",
                              "An `async def` test without an async plugin is not executed (pytest skips or "
                              "fails it with 'async def functions are not natively supported'): the suite "
                              "looks green while this test proves nothing.",
                              "Install and configure an async plugin (anyio's `@pytest.mark.anyio`, or "
                              "pytest-asyncio with `asyncio_mode = auto`).", c.file, c.line, key=c.nodeid)
        elif c.outcome == "skipped":
            yield chk.finding(ctx, Severity.RECOMMENDATION, f"Skipped test: {c.nodeid}",
                              f"Skipped ({c.message[:200] or 'no reason given'}): what it covers is not "
                              "verified by this run.", "Make the test runnable (fixtures, test credentials, "
                              "service containers) or delete it if obsolete.", file, line, key=c.nodeid)
    yield _summary(ctx, chk, run, where)
    if run.coverage:
        minimum = float(ctx.config.get("min_coverage", MIN_COVERAGE))
        pkgs = ", ".join(f"{p} {v:.0f}%" for p, v in run.coverage["packages"].items())
        app = (ctx.layout.app_paths or ["."])[0]
        total = run.coverage["total"]
        sev = Severity.RECOMMENDATION if total < minimum else Severity.INFO
        yield chk.finding(ctx, sev, f"Test coverage of the application: {total:.1f}%"
                          + (f" (below {minimum:.0f}%)" if total < minimum else ""),
                          f"Line coverage measured by pytest-cov while the suite ran: {pkgs}. Untested code "
                          "paths reach production unverified.",
                          "Add tests for the least covered packages first (handlers, services).", app, None,
                          excerpt="", key="coverage")
    if run.probe.get("warnings"):
        yield _warnings(ctx, chk, run, where)


def _tail(text: str, n: int = 12) -> str:
    return "\n".join(text.strip().splitlines()[-n:])


def _summary(ctx, chk, run, where):
    slow = sorted(run.cases, key=lambda c: c.duration, reverse=True)[:5]
    msg = (f"{run.count('passed')} passed, {run.count('failed')} failed, {run.count('error')} errors, "
           f"{run.count('skipped')} skipped, {run.count('xfailed')} xfailed, {run.count('not-run')} not run, "
           f"in {run.duration:.1f} s. Slowest: " + "; ".join(f"{c.nodeid} {c.duration:.2f}s" for c in slow)
           + f". Command: `{' '.join(run.command)}` (why: {run.test_command.why}). {run.ci_context()} "
           f"Database: {run.database}." + (f" Test tools: {run.tools_note}." if run.tools_note else ""))
    return chk.finding(ctx, Severity.INFO, f"Test suite: {run.count('passed')} passed, "
                       f"{run.count('failed', 'error')} failed, {run.count('skipped', 'not-run')} skipped",
                       msg, "", *where, excerpt="", key="summary")


def _warnings(ctx, chk, run, where):
    groups = Counter()
    for w in run.probe["warnings"]:
        src = str(w.get("file") or "")
        src = src.split("site-packages/", 1)[1].split("/", 1)[0] if "site-packages/" in src else \
            src.replace(str(ctx.root) + "/", "").split("/target/", 1)[-1]
        groups[(w.get("category"), src)] += 1
    lines = "; ".join(f"{cat} from {src}: {n}" for (cat, src), n in groups.most_common(20))
    return chk.finding(ctx, Severity.INFO, f"Test run warnings: {sum(groups.values())} in {len(groups)} group(s)",
                       f"Warnings recorded while the suite ran, by category and source: {lines}.",
                       "Fix deprecations coming from the application's own code before upgrading the "
                       "libraries that emit them.", *where, excerpt="", key="warnings")
