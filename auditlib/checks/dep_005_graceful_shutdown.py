"""DEP-005: graceful shutdown (lifespan disposes the engine and stops background work;
standalone runners handle SIGTERM)."""
from __future__ import annotations

import ast
import re

from ..code.callgraph import app_graph
from ..findings import Severity
from ..facts.jobs_scan import find_jobs, loops_forever
from ..code.pyast import dotted, literal, of_type
from . import check
from .dep_004_docker import dockerfile_stages

ENGINE_FACTORIES = {"create_async_engine", "create_engine"}
STOPPERS = {"cancel", "shutdown", "stop", "join", "terminate", "aclose", "cancel_scope"}
CALLS_READ = (*ENGINE_FACTORIES, "FastAPI", "add_event_handler")
SERVERS = re.compile(r"\b(uvicorn|gunicorn|hypercorn|granian)\b")


def _shutdown_parts(fn_node) -> tuple[list[ast.AST], list[ast.AST]]:
    """(startup calls, shutdown calls) of a lifespan function: before / after its ``yield``
    (a ``finally:`` after the yield counts as shutdown)."""
    y = next(iter(of_type(fn_node, (ast.Yield, ast.YieldFrom))), None)
    calls = of_type(fn_node, ast.Call)
    if y is None:
        return calls, []
    return [c for c in calls if c.lineno < y.lineno], [c for c in calls if c.lineno > y.lineno]


def _calls(graph, file, calls) -> list[tuple[str, ast.Call, str]]:
    """(file, call, dotted callee) for ``calls`` and the calls of the functions they reach."""
    out = []
    for call in calls:
        out.append((file, call, dotted(call.func)))
        target = graph.resolve(file, call)
        for fn in graph.reach(target) if target else []:
            out += [(fn.file, c, dotted(c.func)) for c in of_type(fn.node, ast.Call)]
    return out


@check("DEP-005", "deployment", "Graceful shutdown")
def graceful_shutdown(ctx):
    """How the app and its job runners stop on SIGTERM (``docker stop``, a Kubernetes
    rollout): uvicorn (and gunicorn's uvicorn workers) handle SIGTERM themselves: stop
    accepting connections, let in-flight requests finish, then run the ASGI lifespan
    shutdown. So the check reads the shutdown path: the code after ``yield`` in the
    ``lifespan`` passed to ``FastAPI(...)``, ``@app.on_event("shutdown")`` /
    ``on_shutdown=[...]`` handlers, and every function they call (imports resolved).

    - engine not disposed (no ``engine.dispose()`` reachable from the shutdown path):
      RECOMMENDATION at the ``create_async_engine`` line: pooled connections are cut
      when the process exits instead of closed cleanly (PostgreSQL logs unexpected
      EOFs; nothing is lost, transactions roll back);
    - background work started at startup (``asyncio.create_task``, ``scheduler.start()``)
      that the shutdown path never cancels / shuts down: WARNING: the task is destroyed
      mid-work when the loop closes;
    - a standalone runner (a module with ``if __name__ == "__main__"`` or
      ``asyncio.run``) looping forever without a SIGTERM handler: WARNING: Python's
      default SIGTERM action kills the process at once, in the middle of a job, with no
      ``finally`` run;
    - a Dockerfile ``CMD``/``ENTRYPOINT`` in shell form: RECOMMENDATION (hadolint
      DL3025): ``/bin/sh -c`` may stay PID 1 and not forward SIGTERM, so the server is
      SIGKILLed after the grace period.
    The effective shutdown behaviour is summarised as INFO. Not flagged: Celery / arq /
    RQ workers (they handle SIGTERM with a warm shutdown), FastAPI ``BackgroundTasks``
    (uvicorn waits for them as part of the request).
    """
    chk = graceful_shutdown.check
    graph = app_graph(ctx)
    engines, apps, startup, shutdown = [], [], [], []  # startup/shutdown: (file, nodes)
    for src in graph.files:
        if not src.may_name(*CALLS_READ):  # the callee's last name is written in the file
            continue
        for node in of_type(src.tree, ast.Call):
            name = dotted(node.func).rsplit(".", 1)[-1]
            if name in ENGINE_FACTORIES:
                engines.append((src.path, node.lineno, _assigned_name(src.tree, node)))
            elif name == "FastAPI":
                apps.append((src.path, node))
                for kw in node.keywords:
                    if kw.arg == "lifespan":
                        fn = graph.resolve_name(src.path, dotted(kw.value))
                        if fn is not None:
                            before, after = _shutdown_parts(fn.node)
                            startup.append((fn.file, before))
                            shutdown.append((fn.file, after, fn))
                    elif kw.arg in ("on_startup", "on_shutdown") and isinstance(kw.value, (ast.List, ast.Tuple)):
                        for el in kw.value.elts:
                            fn = graph.resolve_name(src.path, dotted(el))
                            if fn is not None:
                                (startup if kw.arg == "on_startup" else shutdown).append(
                                    (fn.file, _fn_calls(graph, fn)) if kw.arg == "on_startup"
                                    else (fn.file, _fn_calls(graph, fn), fn))
            elif name == "add_event_handler" and node.args and literal(node.args[0]) in ("startup", "shutdown"):
                fn = graph.resolve_name(src.path, dotted(node.args[1])) if len(node.args) > 1 else None
                if fn is not None:
                    if literal(node.args[0]) == "startup":
                        startup.append((fn.file, _fn_calls(graph, fn)))
                    else:
                        shutdown.append((fn.file, _fn_calls(graph, fn), fn))
    for fn in graph.all_funcs:
        for dec in fn.node.decorator_list:
            if isinstance(dec, ast.Call) and dotted(dec.func).endswith("on_event") and dec.args:
                kind = literal(dec.args[0])
                if kind == "startup":
                    startup.append((fn.file, _fn_calls(graph, fn)))
                elif kind == "shutdown":
                    shutdown.append((fn.file, _fn_calls(graph, fn), fn))

    down_calls = [c for file, nodes, _fn in shutdown for c in _calls(graph, file, nodes)]
    disposed = [c for c in down_calls if c[2].endswith(".dispose")]
    stops = {c[2].rsplit(".", 1)[-1] for c in down_calls} & STOPPERS
    hook = (f"the shutdown path ({', '.join(f'`{fn.qualname}` {fn.file}:{fn.line}' for *_x, fn in shutdown)})"
            if shutdown else "the app has no lifespan shutdown or shutdown handler, so")

    for file, line, var in engines:
        if disposed and (len(engines) == 1 or any(c[2].rsplit(".", 1)[0].endswith(var or "\0") for c in disposed)):
            continue
        yield chk.finding(
            ctx, Severity.RECOMMENDATION, f"Engine `{var or 'engine'}` is not disposed on shutdown",
            f"{hook[0].upper() + hook[1:]} never calls `{var or 'engine'}.dispose()`: at exit the pooled "
            "connections are cut instead of closed (PostgreSQL logs 'unexpected EOF on client connection'; "
            "open transactions roll back, nothing is lost).",
            f"Call `await {var or 'engine'}.dispose()` after `yield` in the lifespan.",
            file, line, key=f"dispose:{var}")

    for file, calls in startup:
        for call in calls:
            attr = dotted(call.func).rsplit(".", 1)[-1]
            if attr in ("create_task", "ensure_future") or (attr == "start" and not call.args and _receiver_is_scheduler(call)):
                if stops:
                    continue
                yield chk.finding(
                    ctx, Severity.WARNING, "Background work started at startup is never stopped",
                    f"`{dotted(call.func)}(...)` starts work that keeps running beside the app; {hook} "
                    "neither cancels nor shuts it down, so on SIGTERM it is destroyed mid-work when the "
                    "event loop closes ('Task was destroyed but it is pending').",
                    "Keep a reference and stop it after `yield`: `task.cancel()` then `await task` (catching "
                    "CancelledError), or `scheduler.shutdown(wait=True)`.", file, call.lineno)

    yield from _runners(ctx, chk, graph)
    yield from _dockerfiles(ctx, chk)

    served = _server(ctx)
    if apps:
        file, node = (shutdown[0][2].file, shutdown[0][2].node) if shutdown else apps[0]
        what = ", ".join(sorted({c[2] for c in down_calls if c[2].rsplit(".", 1)[-1] in STOPPERS | {"dispose"}})) or "nothing"
        yield chk.finding(
            ctx, Severity.INFO, "Shutdown path",
            (f"Served by {served}, which handles SIGTERM itself: it stops accepting connections, waits for "
             "in-flight requests (without limit unless --timeout-graceful-shutdown is set) and then runs the "
             f"lifespan shutdown. " if served else "No ASGI server found in requirements or Dockerfiles. ")
            + f"On shutdown the app calls: {what}.", "", file, node.lineno, key="summary")


def _fn_calls(graph, fn) -> list[ast.Call]:
    return of_type(fn.node, ast.Call)


def _assigned_name(tree, call) -> str:
    for node in of_type(tree, (ast.Assign, ast.AnnAssign)):
        if node.value is call:
            t = node.targets[0] if isinstance(node, ast.Assign) else node.target
            return dotted(t).rsplit(".", 1)[-1]
    return ""


def _receiver_is_scheduler(call) -> bool:
    return isinstance(call.func, ast.Attribute) and "sched" in dotted(call.func.value).lower()


def _runners(ctx, chk, graph):
    """Long-running loops in modules run as their own process, without a SIGTERM handler."""
    runner_files = set()
    for src in graph.files:
        text = src.text or ""
        if "__main__" in text or "asyncio.run(" in text:
            runner_files.add(src.path)
    jobs = [j for j in find_jobs(ctx) if j.kind == "loop" and j.func is not None]
    for job in jobs:
        reach_files = {job.func.file}
        for rf in runner_files:  # the loop's module, or a runner module that calls it
            if any(job.func in graph.reach(fn) for fn in graph.by_file.get(rf, [])):
                reach_files.add(rf)
        if not reach_files & runner_files:
            continue
        if any("SIGTERM" in (ctx.index.get(f).text or "") for f in reach_files):
            continue
        loop = loops_forever(job.func)
        yield chk.finding(
            ctx, Severity.WARNING, f"Job runner `{job.func.qualname}` does not handle SIGTERM",
            "This loop runs in its own process; nothing installs a SIGTERM handler, and Python's default "
            "action for SIGTERM terminates the process immediately, in the middle of a job, without running "
            "`finally` blocks or closing connections.",
            "Install a handler that sets a stop flag checked by the loop (`loop.add_signal_handler(signal.SIGTERM, "
            "stop.set)` in asyncio, `signal.signal(signal.SIGTERM, ...)` otherwise) and finish the current job.",
            job.func.file, loop.lineno)


def _dockerfiles(ctx, chk):
    for path in ctx.layout.dockerfiles:
        stages = dockerfile_stages(ctx.index.get(path).text or "")
        if not stages:
            continue
        final = [i for i in stages[-1]["instructions"] if i["instruction"] in ("CMD", "ENTRYPOINT")]
        entry = [i for i in final if i["instruction"] == "ENTRYPOINT"]
        last = entry[-1] if entry else (final[-1] if final else None)
        if last is None:
            continue
        value = last["value"].strip()
        if value.startswith(("[", "exec ")):
            continue
        yield chk.finding(
            ctx, Severity.RECOMMENDATION, f"{last['instruction']} in shell form",
            f"`{last['instruction']} {value}` runs under `/bin/sh -c`; depending on the shell, sh stays PID 1 "
            "and does not forward SIGTERM, so the server never starts its graceful shutdown and is killed after "
            "the stop grace period (hadolint DL3025).",
            f"Use the exec form: `{last['instruction']} [\"{value.split()[0]}\", ...]` (or prefix the command with `exec`).",
            path, last["startline"] + 1)


def _server(ctx) -> str:
    for f in ctx.index:
        name = f.path.rsplit("/", 1)[-1].lower()
        if f.text and (name.startswith(("requirements", "dockerfile", "procfile")) or name == "pyproject.toml"):
            m = SERVERS.search(f.text)
            if m:
                return m.group(1)
    return ""
