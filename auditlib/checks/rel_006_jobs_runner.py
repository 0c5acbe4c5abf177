"""REL-006: the background jobs runner (heartbeat, SIGTERM, idempotent e-mails, dead letters)."""
from __future__ import annotations

import ast
import re

from ..facts.external_calls import external_calls
from ..findings import Severity
from ..facts.migration_schema import schema_for
from ..code.pyast import dotted, of_type, walk
from ..code.pyresolve import Project, callees, functions
from ..target.discovery import is_example
from . import check
from .obs_001_health_endpoints import _records, heartbeat_records
from .rel_007_email_dedup import DEFAULT_COLUMNS, DEFAULT_TABLE, dedup_index, email_tables

READY_PATHS = re.compile(r"^/(readyz|ready|health/ready|readiness)$")
EMAIL_MODEL = re.compile(r"e?mail\w*(event|log|sent|outbox|delivery)", re.I)
STOP_FLAG = re.compile(r"is_set|running|alive|stop|shutdown|cancel|closed|exit|should", re.I)
DEAD_LETTER = re.compile(r"dead|dlq|max_attempts|attempts|failed_at|status\s*=\s*['\"]failed", re.I)


def _forever_test(test: ast.AST) -> bool:
    """``while True`` / ``while running`` / ``while not stop.is_set()``: a loop meant to run
    until shutdown. A comparison (``while status != OK``, ``while i < n``) is a bounded wait
    or poll, not a runner."""
    if isinstance(test, ast.Constant):
        return bool(test.value)
    if isinstance(test, ast.UnaryOp) and isinstance(test.op, ast.Not):
        test = test.operand
    if isinstance(test, ast.Call):
        # `not stop.is_set()` is a shutdown flag; `not op.done()`, `not finished(fleet)`,
        # `any(... for w in work)` wait for something to complete
        if test.args or test.keywords or not STOP_FLAG.search(dotted(test.func).rsplit(".", 1)[-1]):
            return False
        test = test.func
    return isinstance(test, (ast.Name, ast.Attribute))


def _is_runner_loop(loop: ast.While, fn: ast.AST | None = None) -> bool:
    """A ``while`` loop meant to run until shutdown that sleeps between rounds and never
    returns from inside (retry loops return on success). Not runners: generators (a
    ``yield`` in the function: streaming responses, SSE), bounded waits and polls."""
    if not _forever_test(loop.test):
        return False
    if fn is not None and of_type(fn, (ast.Yield, ast.YieldFrom)):
        return False
    if _breaks(loop) or fn is not None and _interactive(loop, fn):
        return False
    if any(dotted(n.func).rsplit(".", 1)[-1].startswith(("recv", "receive")) for n in of_type(loop, ast.Call)):
        return False  # a connection's message loop (websocket.recv()), not a jobs runner
    sleeps = any(dotted(n.func).split(".")[-1] in ("sleep", "wait", "wait_for") for n in of_type(loop, ast.Call))
    return sleeps and not of_type(loop, ast.Return)


def _breaks(loop: ast.While) -> bool:
    """A ``break`` of this loop (not of a nested one): it waits until something is done."""
    todo = list(loop.body)
    while todo:
        n = todo.pop()
        if isinstance(n, ast.Break):
            return True
        if isinstance(n, (ast.For, ast.AsyncFor, ast.While, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef,
                          ast.Lambda)):
            continue
        todo.extend(ast.iter_child_nodes(n))
    return False


def _interactive(loop: ast.While, fn) -> bool:
    """The loop runs inside ``try: ... except KeyboardInterrupt``: a command-line wait the
    user ends with Ctrl-C (``watch`` modes, ``attach``), not a service's runner."""
    return any(t.lineno <= loop.lineno <= (t.end_lineno or t.lineno) and any(
        h.type is not None and "KeyboardInterrupt" in ast.unparse(h.type) for h in t.handlers)
        for t in of_type(fn, ast.Try))


def _reach(proj: Project, src, fn, depth: int) -> list[tuple]:
    """(src, function) of ``fn`` and the project functions it calls, ``depth`` levels."""
    out, frontier = [(src, fn)], [(src, fn)]
    for _ in range(depth):
        nxt = []
        for s, f in frontier:
            for _site, r in callees(proj, s, f):
                if all(r.func is not g for _, g in out):
                    out.append((r.src, r.func))
                    nxt.append((r.src, r.func))
        frontier = nxt
    return out


def _names_used(sources, words) -> set[str]:
    """Which of ``words`` occur as a name or an attribute in ``sources``. A file whose
    text lacks a word cannot use it (identifiers are in the text as written; the parser
    NFKC-normalises non-ASCII ones, so such files are always read)."""
    out: set[str] = set()
    for f in sources:
        todo = {w for w in words if w not in out and f.may_name(w)}
        if todo:
            out |= {v for n in of_type(f.tree, (ast.Attribute, ast.Name))
                    if (v := n.attr if isinstance(n, ast.Attribute) else n.id) in todo}
    return out


def _text(items) -> str:
    return "\n".join(ast.unparse(f) for _, f in items)


def _ready_routes(ctx):
    for src in ctx.layout.app_sources(ctx.index):
        for fn in functions(src.tree) if src.tree else []:
            for d in fn.decorator_list:
                if isinstance(d, ast.Call) and d.args and isinstance(d.args[0], ast.Constant) \
                        and isinstance(d.args[0].value, str) and READY_PATHS.match(d.args[0].value):
                    yield src, fn


@check("REL-006", "reliability", "Background jobs runner")
def jobs_runner(ctx):
    """Hand-written job runner loops (a ``while`` loop that sleeps between rounds, in
    application or script code) and, following the functions they call two levels deep:

    - a heartbeat recorded each round (a clock value stored under a heartbeat name, a
      store call on a heartbeat key or gauge, an SQL write of a heartbeat column: OBS-001's
      reading; a flag or a task merely named heartbeat is none) — WARNING if missing; if
      recorded and there is no ``/readyz`` (or ``/ready``) handler, WARNING (a dead runner
      goes unnoticed); a readiness handler that ignores the heartbeat is OBS-001's
      finding, at the route (one finding for the defect);
    - graceful shutdown: a SIGTERM handler (``signal.signal`` / ``add_signal_handler``)
      or the runner task cancelled in the app's lifespan — WARNING if neither (a deploy
      kills jobs mid-send);
    - e-mail jobs: an idempotency record before sending — an insert into the e-mail
      events table protected by a unique constraint (REL-007's reading of the
      migrations) or ``ON CONFLICT DO NOTHING``; check-then-insert without such a
      constraint is a duplicate-send race — WARNING; sending with no record at all —
      WARNING;
    - dead-letter handling (attempt counters, a failed status, a DLQ) — RECOMMENDATION
      if failures are only logged.

    Not flagged: projects with no runner loop (INFO), retry loops (they return on
    success), waits and polls (a loop that ``break``s, or whose condition waits for
    something to finish: ``while not op.done()``, ``while any(...)``; ``while not
    stop.is_set()`` stays a runner), a connection's message loop (``websocket.recv()`` /
    ``receive_text()``), command-line waits ended with Ctrl-C (the loop is in
    a ``try`` that catches ``KeyboardInterrupt``), Celery/arq/RQ workers (the library
    handles heartbeat and SIGTERM), loops in example, demo, docs or benchmark folders
    (they show how to use the project; they are not what it runs, unless the project
    has nothing else). The missing graceful shutdown is one finding for the
    process (no SIGTERM handler anywhere), with every runner loop as a location.
    """
    chk = jobs_runner.check
    proj = Project.of(ctx)
    lay = ctx.layout
    sources = [f for f in ctx.index.python_files() if not lay.is_test(f.path) and not lay.is_migration(f.path)]
    # examples and demos show how to use the project; they are not what it runs
    sources = [f for f in sources if not is_example(f.path)] or sources
    loops = []
    for src in sources:
        if not of_type(src.tree, ast.While):
            continue
        for fn in functions(src.tree):
            for node in fn.body:
                for loop in of_type(node, ast.While)[:1]:
                    if _is_runner_loop(loop, fn):
                        loops.append((src, fn, loop))
    if not loops:
        yield chk.finding(ctx, Severity.INFO, "No background jobs runner loop found",
                          "No sleeping `while` loop (hand-written jobs runner) in the project; heartbeat, SIGTERM "
                          "and e-mail idempotency checks do not apply.", "", ".", None, excerpt="", key="none")
        return
    names = _names_used(sources, ("cancel", "create_task", "SIGTERM"))
    ready = list(_ready_routes(ctx))
    email_sites = {(c.src.path, id(c.func)) for c in external_calls(ctx) if c.service in ("smtp", "email")}
    schema = schema_for(ctx) if lay.migration_files else None
    shutdown = None
    for src, fn, loop in loops:
        reach = _reach(proj, src, fn, 2)
        text = _text(reach)
        where = (src.path, loop.lineno)
        if not any(_records(n) for _s, f in reach for n in walk(f)):
            yield chk.finding(ctx, Severity.WARNING, f"Jobs runner `{fn.name}` records no heartbeat",
                              "Nothing records that the runner is alive: if it dies or hangs, reminders and "
                              "e-mails silently stop and no probe notices.",
                              "Record a heartbeat each round (a timestamp row, Redis key or gauge) and make "
                              "/readyz fail when it is older than a few intervals.", *where, key=f"heartbeat:{fn.name}")
        elif not any("heartbeat" in _text(_reach(proj, s, f, 2)).lower() for s, f in ready) \
                and not (ready and heartbeat_records(ctx)):  # a /readyz ignoring a recorded heartbeat: OBS-001's
            loc = (ready[0][0].path, ready[0][1].lineno) if ready else where
            yield chk.finding(ctx, Severity.WARNING, "Readiness probe does not check the jobs heartbeat",
                              f"`{fn.name}` records a heartbeat but " + ("/readyz does not read it" if ready else
                              "there is no /readyz endpoint") + ": a dead runner goes unnoticed.",
                              "Make /readyz return 503 when the last heartbeat is older than N intervals.",
                              *loc, key=f"ready:{fn.name}")
        cancelled = "cancel" in names and "create_task" in names  # a lifespan-managed runner task
        if "SIGTERM" not in names and not cancelled:
            if shutdown is None:
                shutdown = chk.finding(ctx, Severity.WARNING, f"Jobs runner `{fn.name}` has no graceful shutdown",
                                       "No SIGTERM handler and no lifespan cancellation: on deploy the process is "
                                       "killed mid-job (half-sent batches, jobs marked running forever).",
                                       "Handle SIGTERM (`loop.add_signal_handler(signal.SIGTERM, stop.set)`) and let "
                                       "the loop finish its current job: `while not stop.is_set(): ...`.",
                                       *where, key=f"sigterm:{fn.name}")
            else:  # the same missing handler: one finding, every runner loop a location
                extra = chk.finding(ctx, Severity.WARNING, "", "", "", *where)
                shutdown.locations += extra.locations
                shutdown.title = f"{len(shutdown.locations)} jobs runner loops have no graceful shutdown"
        senders = [(s, f) for s, f in reach if (s.path, id(f)) in email_sites
                   or re.search(r"send\w*(e?mail|reminder)|e?mail\w*send", f.name, re.I)]
        if senders:
            yield from _email_idempotency(ctx, chk, reach, senders, schema, fn)
        if not DEAD_LETTER.search(text):
            yield chk.finding(ctx, Severity.RECOMMENDATION, f"No dead-letter handling in `{fn.name}`",
                              "Failed jobs are only logged (no attempt counter, failed status or dead-letter "
                              "queue): they are retried forever or lost without trace.",
                              "Count attempts per job, stop after N and park the job as failed / in a DLQ "
                              "with its error for an operator.", *where, key=f"dlq:{fn.name}")
    if shutdown is not None:
        yield shutdown


def _email_idempotency(ctx, chk, reach, senders, schema, fn):
    text = _text(reach)
    if "on_conflict_do_nothing" in text or "ON CONFLICT" in text.upper():
        return
    adds = [(s, n) for s, f in reach for n in of_type(f, ast.Call)
            if isinstance(n.func, ast.Attribute) and n.func.attr == "add" and n.args
            and isinstance(n.args[0], ast.Call) and EMAIL_MODEL.search(dotted(n.args[0].func))]
    s0, f0 = senders[0]
    if not adds:
        yield chk.finding(ctx, Severity.WARNING, f"E-mail job `{f0.name}` keeps no idempotency record",
                          "E-mails are sent without recording (booking, type) first: a retried or overlapping run "
                          "sends them again.",
                          "Insert an e-mail event keyed by (booking_id, invoice_id, email_type) with ON CONFLICT DO "
                          "NOTHING and send only when the insert succeeded.", s0.path, f0.lineno,
                          key=f"no-record:{f0.name}")
        return
    ok = False
    if schema is not None:
        cols = list(ctx.config.get("email_dedup_columns", DEFAULT_COLUMNS))
        for t in email_tables(schema, ctx.config.get("email_dedup_table", DEFAULT_TABLE)):
            ix = dedup_index(t, [c for c in cols if c in t.columns] or cols)
            nullable = ix is not None and any(t.columns.get(c) and t.columns[c].nullable for c in ix.columns)
            ok = ok or (ix is not None and (ix.nulls_not_distinct or not nullable))
    if not ok:
        s, n = adds[0]
        yield chk.finding(ctx, Severity.WARNING, "Duplicate-send race: check-then-insert without a unique constraint",
                          "The job looks for an existing e-mail event and inserts one, but the table has no "
                          "effective unique constraint on the de-duplication key (see REL-007): two overlapping "
                          "runs both see nothing and both send.",
                          "Add the UNIQUE NULLS NOT DISTINCT constraint and insert with ON CONFLICT DO NOTHING "
                          "before sending.", s.path, n.lineno, key=f"race:{fn.name}")
