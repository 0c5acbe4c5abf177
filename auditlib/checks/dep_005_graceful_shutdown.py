"""DEP-005: graceful shutdown (lifespan disposes the engine and stops background work;
standalone runners handle SIGTERM)."""
from __future__ import annotations

import ast
import io
import json
import re
import shlex
import tokenize
from dataclasses import dataclass

from ..code.callgraph import app_graph
from ..findings import Location, Severity
from ..facts.jobs_scan import _is_loop_forever as loops_forever_node, find_jobs
from ..code.pyast import dotted, literal, of_type
from . import check
from .dep_004_docker import dockerfile_stages

ENGINE_FACTORIES = {"create_async_engine", "create_engine"}
STOPPERS = {"cancel", "shutdown", "stop", "join", "terminate", "aclose", "cancel_scope"}
CALLS_READ = (*ENGINE_FACTORIES, "FastAPI", "add_event_handler")
SERVERS = re.compile(r"\b(uvicorn|gunicorn|hypercorn|granian)\b")
# PID 1 of a container: an init that forwards signals, or a program that handles SIGTERM itself
INITS = {"tini", "tini-static", "dumb-init", "catatonit", "s6-svscan", "init", "supervisord"}
SHELLS = {"sh", "bash", "dash", "ash", "zsh"}
PYTHONS = re.compile(r"^python(?:\d(?:\.\d+)?)?$")
# what installs a SIGTERM handler in the process: the servers and worker frameworks, or the code
HANDLES_SIGTERM = re.compile(r"\b(?:SIGTERM|uvicorn\.run|Server\(|gunicorn|hypercorn|granian|celery|arq|dramatiq|"
                             r"rq\.Worker|Worker\()")
COMPOSE_INIT = re.compile(r"^\s*init:\s*true\b", re.M)
EXEC_LINE = re.compile(r"^\s*(?:[\w-]+=\S*\s+)*exec\s+[\"'$\w/.-]")
TRAP_TERM = re.compile(r"^\s*trap\b.*\b(?:TERM|SIGTERM|15)\b", re.M)
# what a person at a terminal answers: a loop that waits for it is an interactive client, not a job runner
INTERACTIVE = re.compile(r"^(input|getpass(\.getpass)?|sys\.stdin\.\w+|(rich\.prompt\.)?Prompt\.ask|"
                         r"questionary\.\w+|click\.prompt|typer\.prompt)$")
PID1_FACTS = ("the kernel does not apply a signal's default action to PID 1, so a process there that "
              "installs no SIGTERM handler ignores SIGTERM: `docker stop` / Kubernetes wait the whole grace "
              "period and then SIGKILL it")


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
      RECOMMENDATION at the first ``create_async_engine`` line, one finding for every engine
      the shutdown path leaves (the branches that create an engine and the other engines
      are its locations: the shutdown path is the one place to fix): pooled connections are cut
      when the process exits instead of closed cleanly (PostgreSQL logs unexpected
      EOFs; nothing is lost, transactions roll back);
    - background work started at startup (``asyncio.create_task``, ``scheduler.start()``)
      that the shutdown path never cancels / shuts down: WARNING: the task is destroyed
      mid-work when the loop closes;
    - a standalone runner (a module with ``if __name__ == "__main__"`` or
      ``asyncio.run``) looping forever without a SIGTERM handler (``SIGTERM`` named in
      its code or the code it calls; a comment or docstring naming it installs nothing;
      the same holds for the servers and frameworks below): WARNING: Python's
      default SIGTERM action kills the process at once, in the middle of a job, with no
      ``finally`` run; when a Dockerfile runs that module as PID 1 with no init
      (exec-form ``python -m mod`` / ``python file.py``, no tini / dumb-init in the
      ENTRYPOINT, no compose ``init: true``; or a wrapper script whose last ``exec`` runs
      ``python -m mod`` / ``python file.py``) the message says what happens there instead:
      the kernel applies no default signal action to PID 1, so SIGTERM is ignored until
      the SIGKILL at the end of the grace period (the Dockerfile line is a second
      location);
    - any other Python module run that way (directly, or ``exec``ed by a wrapper script)
      that installs no SIGTERM handler (and starts
      no server or worker framework, which install one): WARNING at the Dockerfile line,
      same reason;
    - an exec-form ENTRYPOINT/CMD running a wrapper shell script of the repository that
      never ``exec``s its command and traps no TERM: WARNING: the shell is PID 1, ignores
      SIGTERM and does not forward it, so the server never shuts down gracefully and is
      SIGKILLed with the shell;
    - a Dockerfile ``CMD``/``ENTRYPOINT`` in shell form: RECOMMENDATION (hadolint
      DL3025): ``/bin/sh -c`` may stay PID 1 and not forward SIGTERM, so the server is
      SIGKILLed after the grace period.
    The effective shutdown behaviour is summarised as INFO. Not flagged: waits and polls
    (a loop that ``return``s or ``break``s once something is done, or whose condition
    waits for completion: ``while not op.done()``, ``while not ready``, ``while any(...)``):
    a library function its caller awaits, cut with its caller, not a runner; a module whose
    ``__main__`` / ``asyncio.run(`` appears only in a docstring or comment (a usage
    example: the module runs nothing itself); interactive
    clients (a loop that reads the terminal: ``input()``, ``getpass``, ``click.prompt``...,
    or runs inside ``try: ... except KeyboardInterrupt``: a load generator, a watch mode;
    a person runs and stops them, no job is cut), metrics samplers (a loop that only
    updates gauges: REL-006's reading), the target of a daemon thread
    (``Thread(target=f, daemon=True)``: it dies with the process by design, and a signal
    handler can only be installed by the main thread, whose server handles SIGTERM), Celery / arq / RQ workers (they handle SIGTERM with a warm shutdown), FastAPI ``BackgroundTasks``
    (uvicorn waits for them as part of the request), an ENTRYPOINT outside the repository
    (a base image's script: its behaviour is not known here).
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

    same: dict[tuple, list[int]] = {}  # the lines of each engine variable of a file (if/else branches)
    for file, line, var in engines:
        same.setdefault((file, var or line), []).append(line)
    undisposed = []  # (file, lines, var): one finding for all, the shutdown path is the one place to fix
    for (file, _v), lines in same.items():
        var = next(v for f0, ln, v in engines if f0 == file and ln == lines[0])
        if disposed and (len(engines) == 1 or any(c[2].rsplit(".", 1)[0].endswith(var or "\0") for c in disposed)):
            continue
        undisposed.append((file, lines, var))
    if undisposed:
        undisposed.sort(key=lambda u: (u[0], u[1][0]))
        (file, lines, key), names = undisposed[0], list(dict.fromkeys(u[2] or "engine" for u in undisposed))
        var = key or "engine"
        listed = ", ".join(f"`{n}.dispose()`" for n in names)
        f = chk.finding(
            ctx, Severity.RECOMMENDATION, f"Engine `{var}` is not disposed on shutdown" if len(undisposed) == 1
            else f"{len(undisposed)} engines are not disposed on shutdown ({', '.join(f'`{n}`' for n in names)})",
            f"{hook[0].upper() + hook[1:]} never calls {listed}: at exit the pooled "
            "connections are cut instead of closed (PostgreSQL logs 'unexpected EOF on client connection'; "
            "open transactions roll back, nothing is lost)."
            + (f" Engines created at {len(undisposed)} places (one finding): "
               + ", ".join(f"`{v or 'engine'}` {fl}:{ls[0]}" for fl, ls, v in undisposed) + "."
               if len(undisposed) > 1 else ""),
            f"Call `await {var}.dispose()` after `yield` in the lifespan"
            + (" for each engine the app keeps." if len(undisposed) > 1 else "."),
            file, lines[0], key=f"dispose:{key}")
        for fl, ls, _v in undisposed:
            for n in ls:
                if (fl, n) != (file, lines[0]):
                    f.locations.append(Location(fl, n, n, ctx.index.get(fl).line(n)[:300]))
        yield f

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

    pid1 = _container_pid1(ctx, graph)
    reported: set[str] = set()
    yield from _runners(ctx, chk, graph, pid1, reported)
    yield from _dockerfiles(ctx, chk)
    yield from _pid1_findings(ctx, chk, pid1, reported)

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


def _code(ctx, path: str) -> str:
    """The text of a Python file with its comments and string literals (docstrings
    included) blanked: a comment that mentions SIGTERM installs no handler."""
    f = ctx.index.get(path)
    text = (f.text if f is not None else None) or ""
    lines = text.splitlines(keepends=True)
    try:
        for tok in tokenize.generate_tokens(io.StringIO(text).readline):
            if tok.type not in (tokenize.COMMENT, tokenize.STRING):
                continue
            (r0, c0), (r1, c1) = tok.start, tok.end
            for r in range(r0, r1 + 1):
                line = lines[r - 1]
                a, b = (c0 if r == r0 else 0), (c1 if r == r1 else len(line.rstrip("\r\n")))
                lines[r - 1] = line[:a] + " " * (b - a) + line[b:]
    except (tokenize.TokenError, IndentationError, SyntaxError, IndexError):
        return text
    return "".join(lines)


def _ctrl_c_loop(fn_node, loop) -> bool:
    """The loop runs inside ``try: ... except KeyboardInterrupt``: a command-line loop its
    user stops with Ctrl-C (a load generator, a ``--watch`` mode), not a service's runner."""
    return any(t.lineno <= loop.lineno <= (t.end_lineno or t.lineno) and any(
        h.type is not None and "KeyboardInterrupt" in ast.unparse(h.type) for h in t.handlers)
        for t in of_type(fn_node, ast.Try))


def _ends_when_done(loop: ast.While) -> bool:
    """The loop waits for something and ends: it ``return``s or ``break``s from inside
    (``while True: run = read(); if run.is_final(): return run``), or its condition waits
    for completion (``while not op.done()``, ``while not ready``, ``while any(...)``):
    a poll inside a function its caller awaits, not a runner that works until stopped."""
    from .rel_006_jobs_runner import _breaks, _forever_test
    own = [n for n in of_type(loop, ast.Return)]
    return bool(own) or _breaks(loop) or not _forever_test(loop.test)


def _daemon_thread_targets(graph) -> set[str]:
    """Names of functions run as ``Thread(target=f, daemon=True)``: killed when the process
    exits by design; the process's SIGTERM is its main thread's (a server's) to handle."""
    out = set()
    for src in graph.files:
        if "daemon" not in (src.text or ""):
            continue
        for c in of_type(src.tree, ast.Call):
            kw = {k.arg: k.value for k in c.keywords}
            if dotted(c.func).rsplit(".", 1)[-1] == "Thread" and literal(kw.get("daemon")) is True \
                    and kw.get("target") is not None:
                out.add(dotted(kw["target"]).rsplit(".", 1)[-1])
    return out


def _runners(ctx, chk, graph, pid1, reported):
    """Long-running loops in modules run as their own process, without a SIGTERM handler."""
    from .rel_006_jobs_runner import _metrics_sampler
    daemons = None
    runner_files = set()
    for src in graph.files:
        text = src.text or ""
        # in the code, not in a docstring's usage example (``asyncio.run(main())`` shown to the reader)
        if ("__main__" in text or "asyncio.run(" in text) and (
                "__main__" in (code := _code(ctx, src.path)) or "asyncio.run(" in code):
            runner_files.add(src.path)
    jobs = [j for j in find_jobs(ctx) if j.kind == "loop" and j.func is not None]
    for job in jobs:
        reach_files = {job.func.file}
        for rf in runner_files:  # the loop's module, or a runner module that calls it
            if any(job.func in graph.reach(fn) for fn in graph.by_file.get(rf, [])):
                reach_files.add(rf)
        if not reach_files & runner_files:
            continue
        if any("SIGTERM" in _code(ctx, f) for f in reach_files):
            continue
        # the first loop that runs until stopped; a wait or poll (it returns or breaks once something
        # is done, or its condition waits for completion) is a library call's loop, not a runner
        loop = next((n for n in of_type(job.func.node, ast.While)
                     if loops_forever_node(n) and not _ends_when_done(n)), None)
        if loop is None or any(INTERACTIVE.match(dotted(c.func)) for c in of_type(job.func.node, ast.Call)) \
                or _ctrl_c_loop(job.func.node, loop):
            continue  # an interactive client (it reads the terminal, or stops on Ctrl-C): its user stops it
        if _metrics_sampler(loop):
            continue  # it samples gauges: cut mid-round, nothing is lost
        daemons = _daemon_thread_targets(graph) if daemons is None else daemons
        if job.func.node.name in daemons:
            continue  # a daemon thread: the process exits with its main thread, whose SIGTERM it is
        as_pid1 = [p for p in pid1 if p.kind == "python" and p.module in reach_files]
        if as_pid1:
            p = as_pid1[0]
            why = (f"This loop runs as PID 1 of a container without an init ({p.dockerfile}:{p.line} starts "
                   f"`{p.command}`{', and ' + p.via if p.via else ''}; no tini, dumb-init or `--init`): nothing installs a SIGTERM handler, and "
                   f"{PID1_FACTS}, in the middle of a job, without running `finally` blocks or closing connections.")
            reported.update(x.module for x in as_pid1)
        else:
            why = ("This loop runs in its own process; nothing installs a SIGTERM handler, so on SIGTERM Python's "
                   "default action terminates the process immediately (or, where it is PID 1 of a container "
                   "without an init, SIGTERM is ignored until the SIGKILL at the end of the grace period), in the "
                   "middle of a job, without running `finally` blocks or closing connections.")
        f = chk.finding(
            ctx, Severity.WARNING, f"Job runner `{job.func.qualname}` does not handle SIGTERM", why,
            "Install a handler that sets a stop flag checked by the loop (`loop.add_signal_handler(signal.SIGTERM, "
            "stop.set)` in asyncio, `signal.signal(signal.SIGTERM, ...)` otherwise) and finish the current job"
            + ("; or run the container with an init (`tini`, `--init`)." if as_pid1 else "."),
            job.func.file, loop.lineno)
        for p in as_pid1:
            f.locations.append(Location(p.dockerfile, p.line, p.line, ctx.index.get(p.dockerfile).line(p.line)[:300]))
        yield f


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


@dataclass
class Pid1:
    """What a Dockerfile's final stage runs as PID 1 (when no init is in front of it)."""
    dockerfile: str
    line: int
    command: str
    kind: str  # "python" (module path known) | "shell" (a wrapper script that never execs)
    module: str = ""  # python: the module file run; shell: the script
    via: str = ""  # python started by a wrapper script's `exec` line: which one


def _argv(ins) -> list[str] | None:
    value = ins["value"].strip()
    if value.startswith("["):
        try:
            argv = json.loads(value)
        except ValueError:
            return None
        return [str(a) for a in argv] if isinstance(argv, list) else None
    return None  # shell form: DL3025's RECOMMENDATION covers it


def _find_file(ctx, near: str, name: str) -> str:
    """The indexed file a path in a Dockerfile names (WORKDIR and COPY unknown: by its
    trailing path, nearest to the Dockerfile first)."""
    name = name.lstrip("./")
    tail = name.split("/")
    for k in range(len(tail)):
        suffix = "/".join(tail[k:])
        hits = [f.path for f in ctx.index if f.path == suffix or f.path.endswith("/" + suffix)]
        if hits:  # the one sharing the longest folder prefix with the Dockerfile, then the shortest
            home = near.split("/")[:-1]

            def shared(h: str) -> int:
                return next((i for i, (a, b) in enumerate(zip(home, h.split("/")[:-1])) if a != b),
                            min(len(home), h.count("/")))
            return sorted(hits, key=lambda h: (-shared(h), len(h)))[0]
    return ""


def _python_module(ctx, near: str, argv: list[str]) -> str:
    args = [a for a in argv[1:] if not a.startswith("-") or a == "-m"]
    if args[:1] == ["-m"] and len(args) > 1:
        rel = args[1].replace(".", "/")
        return _find_file(ctx, near, rel + ".py") or _find_file(ctx, near, rel + "/__main__.py")
    if args and args[0].endswith(".py"):
        return _find_file(ctx, near, args[0])
    return ""


def _container_pid1(ctx, graph) -> list[Pid1]:
    """Containers whose PID 1 is Python, or a shell script that keeps the server as its
    child, with no init in front (Dockerfile ENTRYPOINT/CMD, exec form)."""
    if any(COMPOSE_INIT.search(ctx.index.get(c).text or "") for c in ctx.layout.compose_files):
        return []  # `init: true`: an init forwards signals (which service cannot be told apart)
    out = []
    for path in ctx.layout.dockerfiles:
        stages = dockerfile_stages(ctx.index.get(path).text or "")
        if not stages:
            continue
        final = [i for i in stages[-1]["instructions"] if i["instruction"] in ("CMD", "ENTRYPOINT")]
        entry = next((i for i in reversed(final) if i["instruction"] == "ENTRYPOINT"), None)
        cmd = next((i for i in reversed(final) if i["instruction"] == "CMD"), None)
        first = entry or cmd
        argv = _argv(first) if first else None
        if not argv:
            continue
        if entry is not None and cmd is not None and (extra := _argv(cmd)):
            argv = argv + extra
        prog = argv[0].rsplit("/", 1)[-1]
        line = first["startline"] + 1
        shown = " ".join(argv)
        if prog in INITS:
            continue
        if PYTHONS.match(prog):
            module = _python_module(ctx, path, argv)
            if module:
                out.append(Pid1(path, line, shown, "python", module))
            continue
        script = argv[1] if prog in SHELLS and len(argv) > 1 and not argv[1].startswith("-") else (
            argv[0] if argv[0].endswith(".sh") else "")
        if script:
            found = _find_file(ctx, path, script)
            text = ctx.index.get(found).text if found else None
            if text is None:
                continue
            execs = [x for x in text.splitlines() if EXEC_LINE.match(x)]
            if not execs and not TRAP_TERM.search(text):
                out.append(Pid1(path, line, shown, "shell", found))
            for x in execs[-1:]:  # the script `exec`s Python: Python becomes PID 1
                try:
                    run = shlex.split(re.split(r"\bexec\s+", x, maxsplit=1)[1], comments=True)
                except ValueError:
                    continue
                if run and PYTHONS.match(run[0].rsplit("/", 1)[-1]) and (module := _python_module(ctx, path, run)):
                    out.append(Pid1(path, line, shown, "python", module, via=f"{found} runs `exec {' '.join(run)}`"))
    return out


def _pid1_findings(ctx, chk, pid1, reported):
    graph = app_graph(ctx)
    groups: dict[tuple[str, str], list[Pid1]] = {}
    for p in pid1:  # one finding per module / script, every Dockerfile that runs it a location
        groups.setdefault((p.kind, p.module), []).append(p)
    for (_kind, _module), same in groups.items():
        for f in _pid1_finding(ctx, chk, graph, same[0], reported):
            for q in same[1:]:
                f.locations.append(Location(q.dockerfile, q.line, q.line, ctx.index.get(q.dockerfile).line(q.line)[:300]))
            yield f


def _pid1_finding(ctx, chk, graph, p, reported):
    if p.kind == "python":
        if p.module in reported:
            return  # the runner's own finding says it
        files = {p.module} | {fn.file for f0 in graph.by_file.get(p.module, []) for fn in graph.reach(f0)}
        if any(HANDLES_SIGTERM.search(_code(ctx, f)) for f in files if ctx.index.get(f)):
            return  # a server or worker framework (or the code) handles SIGTERM
        yield chk.finding(
            ctx, Severity.WARNING, "Python runs as PID 1 without an init and ignores SIGTERM",
            f"`{p.command}`{' (' + p.via + ')' if p.via else ''} makes Python PID 1 of the container with no "
            "init (tini, dumb-init, `--init`), and "
            f"{p.module} installs no SIGTERM handler (nor starts a server that does): {PID1_FACTS}.",
            "Run it behind an init (`ENTRYPOINT [\"tini\", \"--\"]`, `docker run --init`, compose `init: true`) "
            "or install a SIGTERM handler that stops the work cleanly.", p.dockerfile, p.line, key="pid1-python")
    else:
        yield chk.finding(
            ctx, Severity.WARNING, f"Wrapper script {p.module.rsplit('/', 1)[-1]} stays PID 1 and swallows SIGTERM",
            f"`{p.command}` makes the shell running {p.module} PID 1 of the container; the script never `exec`s "
            "its command and traps no TERM, so what it starts runs as the shell's child and never receives SIGTERM: "
            f"{PID1_FACTS}, and its child with it: in-flight requests are cut and no shutdown code (lifespan, "
            "`finally`) runs.",
            f"Start the server with `exec` in {p.module} (`exec uvicorn ...`) so it becomes PID 1 and gets SIGTERM, "
            "or put an init in front (`tini`, `--init`).", p.dockerfile, p.line, key="pid1-shell")


def _server(ctx) -> str:
    for f in ctx.index:
        name = f.path.rsplit("/", 1)[-1].lower()
        if f.text and (name.startswith(("requirements", "dockerfile", "procfile")) or name == "pyproject.toml"):
            m = SERVERS.search(f.text)
            if m:
                return m.group(1)
    return ""
