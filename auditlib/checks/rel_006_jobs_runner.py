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
from .obs_001_health_endpoints import _records, compared_columns, heartbeat_records
from .rel_007_email_dedup import DEFAULT_COLUMNS, DEFAULT_TABLE, dedup_index, email_tables

READY_PATHS = re.compile(r"^/(readyz|ready|health/ready|readiness)$")
EMAIL_MODEL = re.compile(r"e?mail\w*(event|log|sent|outbox|delivery)", re.I)
STOP_FLAG = re.compile(r"is_set|running|alive|stop|shutdown|cancel|closed|exit|should", re.I)
# a flag that turns true once something is up or finished: `while not <flag>` waits for it
DONE_FLAG = re.compile(r"(^|_)(ready|started|done|finished|complete|completed|connected|available|"
                       r"initiali[sz]ed|loaded|found|succeeded|success|healthy)$", re.I)
# a loop that is itself a liveness signal to a peer: it sends a heartbeat / keep-alive each round
BEAT_NAME = re.compile(r"heart_?beat|keep_?alive|(^|_)ping(_|$)", re.I)
SEND_CALLS = re.compile(r"^(send\w*|ping|post|publish|emit|write|put|notify)$")
LOG_RECV = re.compile(r"(^|\.)(log|logger|_log|_logger|logging|LOG|LOGGER)$")
LOG_CALLS = {"debug", "info", "warning", "warn", "error", "exception", "critical", "log"}
DEAD_LETTER = re.compile(r"dead|dlq|max_attempts|attempts|failed_at|status\s*=\s*['\"]failed", re.I)


def _forever_test(test: ast.AST) -> bool:
    """``while True`` / ``while running`` / ``while not stop.is_set()``: a loop meant to run
    until shutdown. A comparison (``while status != OK``, ``while i < n``) is a bounded wait
    or poll, not a runner."""
    if isinstance(test, ast.Constant):
        return bool(test.value)
    if isinstance(test, ast.UnaryOp) and isinstance(test.op, ast.Not):
        test = test.operand
        if isinstance(test, (ast.Name, ast.Attribute)) and DONE_FLAG.search(dotted(test).rsplit(".", 1)[-1]):
            return False  # `while not ready`, `while not server.started`: a wait until something is up or done
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
    if sleeps and _idles(loop):
        return False  # it only sleeps until stopped: the work runs in callbacks set up before it
    if fn is not None and _beat_sender(loop, fn):
        return False  # it sends a heartbeat: it is the liveness signal its peer watches
    return sleeps and not of_type(loop, ast.Return)


def _idles(loop: ast.While) -> bool:
    """The loop's body is only its sleep (``while not stop.is_set(): await asyncio.sleep(0.2)``):
    it keeps a context open until stopped; it runs no rounds that can fail or hang."""
    for st in loop.body:
        v = st.value.value if isinstance(st, ast.Expr) and isinstance(st.value, ast.Await) else (
            st.value if isinstance(st, ast.Expr) else None)
        if isinstance(st, ast.Pass) or (isinstance(v, ast.Call) and dotted(v.func).rsplit(".", 1)[-1] in ("sleep", "wait")):
            continue
        return False
    return True


def _beat_sender(loop: ast.While, fn) -> bool:
    """A heartbeat / keep-alive sender: its function is named so (``_heartbeat_loop``,
    ``keepalive``) and each round sends something (``send``, ``ping``, ``publish``...):
    the loop is itself the liveness signal the other side watches; when it stops, the peer
    notices (the connection or the worker is marked dead)."""
    return bool(BEAT_NAME.search(fn.name)) and any(
        SEND_CALLS.match(dotted(c.func).rsplit(".", 1)[-1]) for c in of_type(loop, ast.Call))


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


METRIC_UPDATES = {"set", "inc", "dec", "observe", "set_to_current_time", "labels", "time"}
METRIC_NAME = re.compile(r"metric|gauge|counter|histogram|summary|\.labels$", re.I)
CLOCK_CALL = re.compile(r"(^|\.)(now|utcnow|time|time_ns|monotonic|timestamp|current_timestamp)$")


def _metrics_sampler(loop: ast.While) -> bool:
    """Every effect of the loop is a metric update (``GAUGE.set(...)``,
    ``METRIC.labels(...).set(...)``) or its sleep: a sampler of gauges (RAM, CPU). If it
    stops, the gauges go flat; nothing else depends on it and it holds no work."""
    updates = logs = 0
    for n in of_type(loop, ast.Expr):
        v = n.value.value if isinstance(n.value, ast.Await) else n.value
        if not isinstance(v, ast.Call):
            continue
        last = dotted(v.func).rsplit(".", 1)[-1]
        if last in ("sleep", "wait"):
            continue
        recv = dotted(v.func.value) if isinstance(v.func, ast.Attribute) else ""
        if last in LOG_CALLS and LOG_RECV.search(recv):
            updates += 1  # a log line of counters: an observer too, nothing depends on it
            logs += 1
            continue
        if last in METRIC_UPDATES and recv and (METRIC_NAME.search(recv) or recv.split(".")[0].isupper()):
            updates += 1
            continue
        return False
    if any(isinstance(t, (ast.Attribute, ast.Subscript)) for a in of_type(loop, (ast.Assign, ast.AugAssign))
           for t in (a.targets if isinstance(a, ast.Assign) else [a.target])):
        return False  # it changes state the app reads
    if logs and any(not _pure_call(c) for c in of_type(loop, ast.Call)):
        return False  # it logs, but also does work (`batch = await fetch()`): a runner
    return updates > 0


PURE_CALLS = {"sleep", "wait", "items", "values", "keys", "get", "len", "min", "max", "sum", "round", "str", "int",
              "float", "sorted", "list", "dict", "tuple", "format", "time", "monotonic", "perf_counter", "now"}


def _pure_call(c: ast.Call) -> bool:
    """A call that reads or formats (``METRICS.items()``, ``len(q)``) or logs or updates a metric."""
    last = dotted(c.func).rsplit(".", 1)[-1]
    recv = dotted(c.func.value) if isinstance(c.func, ast.Attribute) else ""
    return last in PURE_CALLS or (last in LOG_CALLS and bool(LOG_RECV.search(recv))) or (
        last in METRIC_UPDATES and bool(recv) and bool(METRIC_NAME.search(recv) or recv.split(".")[0].isupper()))


def _clock_names(fn: ast.AST) -> set[str]:
    """Local names bound to a clock reading in ``fn`` (``now = datetime.now(timezone.utc)``)."""
    return {t.id for a in of_type(fn, ast.Assign) if isinstance(a.value, ast.Call)
            and CLOCK_CALL.search(dotted(a.value.func)) for t in a.targets if isinstance(t, ast.Name)}


def _stamped_columns(fn: ast.AST) -> set[str]:
    """Columns / attributes ``fn`` sets to the current time: ``.values(claimed_at=now)``,
    ``row.claimed_at = func.now()`` (``now`` a local bound to a clock reading)."""
    clock = _clock_names(fn)

    def clocked(v: ast.AST) -> bool:
        return (isinstance(v, ast.Name) and v.id in clock) or (
            isinstance(v, ast.Call) and bool(CLOCK_CALL.search(dotted(v.func))))
    out = {k.arg for c in of_type(fn, ast.Call) for k in c.keywords if k.arg and clocked(k.value)}
    out |= {t.attr for a in of_type(fn, ast.Assign) if clocked(a.value) for t in a.targets
            if isinstance(t, ast.Attribute)}
    return out


def lease_renewal(ctx, reach) -> str | None:
    """The column a runner renews each round when it is a lease: a timestamp it sets to
    the current time (``.values(claimed_at=now)``, ``heartbeat_at=func.now()``) that the
    app compares against a staleness cutoff elsewhere (``claimed_at < cutoff``): other
    replicas or the next claimant take over what a dead holder held, so the runner's death
    is handled, not silent."""
    compared = compared_columns(ctx)
    for _s, f in reach:
        hit = sorted(_stamped_columns(f) & compared)
        if hit:
            return hit[0]
    return None


def _guarded_rounds(loop: ast.While) -> bool:
    """Each round's work is inside a ``try`` that catches ``Exception`` (or everything):
    a failing round is logged and the loop goes on."""
    for t in of_type(loop, ast.Try):
        for h in t.handlers:
            if h.type is None or any(dotted(x) in ("Exception", "BaseException") for x in
                                     (h.type.elts if isinstance(h.type, ast.Tuple) else [h.type])):
                return True
    return any(isinstance(w, ast.With) and any("suppress" in dotted(i.context_expr) and "Exception" in
                                               ast.unparse(i.context_expr) for i in w.items)
               for w in of_type(loop, ast.With))


def _memory_dedup(senders) -> str | None:
    """``self.<attr>`` the sender keeps per recipient in process memory and consults before
    sending (``if email in self._last_sent ...``, ``self._last_sent[email] = now``)."""
    for _s, f in senders:
        written = {dotted(t.value) for a in of_type(f, ast.Assign) for t in a.targets
                   if isinstance(t, ast.Subscript) and dotted(t.value).startswith("self.")}
        read = {dotted(c) for cmp in of_type(f, ast.Compare) if any(isinstance(o, (ast.In, ast.NotIn)) for o in cmp.ops)
                for c in cmp.comparators if isinstance(c, ast.Attribute)}
        hit = sorted(written & read)
        if hit:
            return hit[0]
    return None


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
      reading; a flag or a task merely named heartbeat is none). Missing: WARNING when a
      failing round ends the loop (no ``try/except Exception`` in it: the first error
      kills the task or thread without a trace); RECOMMENDATION when every round's failure
      is caught (only a hang stops it: a heartbeat is defence in depth). The message names
      what silently stops: the e-mails it sends, else the functions it runs. If recorded
      and there is no ``/readyz`` (or ``/ready``) handler, WARNING (a dead runner goes
      unnoticed); a readiness handler that ignores the heartbeat is OBS-001's finding, at
      the route (one finding for the defect). A lease renewed each round is no missing
      heartbeat: a timestamp the runner sets to the current time (``.values(claimed_at=now)``)
      that the app compares against a staleness cutoff elsewhere (``claimed_at < cutoff``):
      what a dead holder held is taken over, readiness need not read it;
    - graceful shutdown: a SIGTERM handler (``signal.signal`` / ``add_signal_handler``)
      or the runner task cancelled in the app's lifespan — WARNING if neither (a deploy
      kills jobs mid-send);
    - e-mail jobs: an idempotency record before sending — an insert into the e-mail
      events table protected by a unique constraint (REL-007's reading of the
      migrations) or ``ON CONFLICT DO NOTHING``; check-then-insert without such a
      constraint is a duplicate-send race — WARNING; sending with no record at all —
      WARNING; de-duplication kept only in process memory (``self._last_sent[email]``
      consulted before sending) — RECOMMENDATION (a restart or a second replica repeats
      a send within the window);
    - dead-letter handling (attempt counters, a failed status, a DLQ) — RECOMMENDATION
      if failures are only logged (not for a lease renewal: it runs no jobs).

    Not flagged: projects with no runner loop (INFO), metrics samplers (a loop whose only
    effects are metric updates, ``GAUGE.set(...)``, or log lines of counters
    (``logger.debug(...)`` with nothing but reads besides), and its sleep: if it stops the
    gauges go flat or the log goes quiet and nothing else depends on it), retry loops (they
    return on success), waits and polls (a loop that ``break``s, or whose condition waits for
    something to finish: ``while not op.done()``, ``while any(...)``, ``while not ready``,
    ``while not server.started``; ``while not stop.is_set()`` stays a runner), an idle loop
    (its body is only its sleep: it keeps a context open until stopped, the work runs in
    callbacks), a heartbeat sender (a function named heartbeat / keepalive / ping whose loop
    sends each round: it is itself the liveness signal its peer watches), a connection's message loop (``websocket.recv()`` /
    ``receive_text()``), command-line waits ended with Ctrl-C (the loop is in
    a ``try`` that catches ``KeyboardInterrupt``), Celery/arq/RQ workers (the library
    handles heartbeat and SIGTERM), loops in example, demo, docs or benchmark folders
    (they show how to use the project; they are not what it runs, unless the project
    has nothing else). One finding per defect, every runner loop a location: the missing
    graceful shutdown (no SIGTERM handler anywhere in the process), the missing heartbeat
    of loops whose rounds are guarded (the RECOMMENDATION: one heartbeat mechanism is
    missing; a loop a failing round ends stays its own WARNING, its exception handling
    is the defect) and the missing dead-letter handling.
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
                    if _is_runner_loop(loop, fn) and not _metrics_sampler(loop):
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
    guarded, dead = [], []  # (finding, runner name, what stops): one finding each, every loop a location
    for src, fn, loop in loops:
        reach = _reach(proj, src, fn, 2)
        text = _text(reach)
        where = (src.path, loop.lineno)
        senders = [(s, f) for s, f in reach if (s.path, id(f)) in email_sites
                   or re.search(r"send\w*(e?mail|reminder)|e?mail\w*send", f.name, re.I)]
        lease = lease_renewal(ctx, reach)
        if lease:
            pass  # a lease renewed each round: a dead holder's claims are taken over (its own liveness signal)
        elif not any(_records(n) for _s, f in reach for n in walk(f)):
            beat = _no_heartbeat(ctx, chk, fn, loop, reach, senders, where)
            if beat.severity == Severity.RECOMMENDATION:  # the same missing heartbeat: one finding below
                guarded.append((beat, fn.name, _what_stops(reach, senders)))
            else:
                yield beat
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
        if senders:
            yield from _email_idempotency(ctx, chk, reach, senders, schema, fn)
        if not DEAD_LETTER.search(text) and not lease:
            dead.append((chk.finding(ctx, Severity.RECOMMENDATION, f"No dead-letter handling in `{fn.name}`",
                                     "Failed jobs are only logged (no attempt counter, failed status or dead-letter "
                                     "queue): they are retried forever or lost without trace.",
                                     "Count attempts per job, stop after N and park the job as failed / in a DLQ "
                                     "with its error for an operator.", *where, key=f"dlq:{fn.name}"), fn.name, ""))
    if shutdown is not None:
        yield shutdown
    if guarded:
        yield _one_finding(guarded, "{n} jobs runner loops record no heartbeat",
                           "Each round's failure is caught in each of these loops, so an error does not stop them; "
                           "but nothing records that they are alive: if one hangs (an await without a timeout) or "
                           "its task is lost, its work silently stops and no probe notices ({each}). A heartbeat "
                           "is defence in depth here.")
    if dead:
        yield _one_finding(dead, "No dead-letter handling in {n} jobs runner loops",
                           "Failed jobs are only logged (no attempt counter, failed status or dead-letter queue) "
                           "in {each}: they are retried forever or lost without trace.")


def _one_finding(items, title: str, message: str):
    """The same defect in several runner loops: one finding at the first loop (its
    fingerprint kept), every other loop a location, the message naming each."""
    items = sorted(items, key=lambda it: (it[0].locations[0].file, it[0].locations[0].line or 0))
    f = items[0][0]
    if len(items) == 1:
        return f
    for other, *_r in items[1:]:
        f.locations += other.locations
    f.title = title.format(n=len(items))
    f.message = message.format(each="; ".join(
        f"`{name}` at {it.locations[0].file}:{it.locations[0].line}" + (f": {what}" if what else "")
        for it, name, what in items))
    return f


def _what_stops(reach, senders) -> str:
    """What silently stops with the runner: the e-mails it sends, else the functions it runs."""
    if senders:
        return "the e-mails it sends (" + ", ".join(f"`{f.name}`" for _s, f in senders[:3]) + ") silently stop"
    names = [f.name for _s, f in reach[1:] if not f.name.startswith("__")][:3]
    return ("its work (" + ", ".join(f"`{n}`" for n in names) + ")" if names else "its work") + " silently stops"


def _no_heartbeat(ctx, chk, fn, loop, reach, senders, where):
    """The runner records no heartbeat: WARNING when a failing round ends the loop (the
    first exception stops it for good, silently); RECOMMENDATION when every round's
    failure is caught (only a hang stops it: a heartbeat is defence in depth). The message
    names what stops: the e-mails it sends, else the functions it runs."""
    what = _what_stops(reach, senders)
    if _guarded_rounds(loop):
        return chk.finding(
            ctx, Severity.RECOMMENDATION, f"Jobs runner `{fn.name}` records no heartbeat",
            f"Each round's failure is caught, so an error does not stop `{fn.name}`; but nothing records that it "
            f"is alive: if it hangs (an await without a timeout) or its task is lost, {what} and "
            "no probe notices. A heartbeat is defence in depth here.",
            "Record a heartbeat each round (a timestamp row, Redis key or gauge) and alert, or fail /readyz, when "
            "it is older than a few intervals.", *where, key=f"heartbeat:{fn.name}")
    return chk.finding(
        ctx, Severity.WARNING, f"Jobs runner `{fn.name}` records no heartbeat",
        f"No exception handling around the rounds: the first error raised in a round ends the loop (a task or "
        f"thread dies without a trace), and nothing records that the runner is alive, so {what} and no probe "
        "notices.",
        "Catch and log exceptions per round so the loop survives them, and record a heartbeat each round "
        "(a timestamp row, Redis key or gauge) that /readyz or an alert checks.", *where,
        key=f"heartbeat:{fn.name}")


def _email_idempotency(ctx, chk, reach, senders, schema, fn):
    text = _text(reach)
    if "on_conflict_do_nothing" in text or "ON CONFLICT" in text.upper():
        return
    adds = [(s, n) for s, f in reach for n in of_type(f, ast.Call)
            if isinstance(n.func, ast.Attribute) and n.func.attr == "add" and n.args
            and isinstance(n.args[0], ast.Call) and EMAIL_MODEL.search(dotted(n.args[0].func))]
    s0, f0 = senders[0]
    memory = None if adds else _memory_dedup(senders)
    if memory:
        yield chk.finding(ctx, Severity.RECOMMENDATION, f"E-mail job `{f0.name}` de-duplicates in process memory",
                          f"Sends are de-duplicated only in `{memory}`, in the process's memory: a restart or a "
                          "second replica sends the same e-mail again (within the de-duplication window).",
                          "Record each send in the database (a row keyed by recipient and e-mail type, inserted "
                          "with ON CONFLICT DO NOTHING before sending) when duplicates matter.", s0.path, f0.lineno,
                          key=f"no-record:{f0.name}")
        return
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
