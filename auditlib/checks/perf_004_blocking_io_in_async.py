"""PERF-004: blocking I/O inside ``async def`` (the event loop stalls for every request)."""
from __future__ import annotations

import ast

from ..engines.ruff import RuffUnavailable, ruff_hits
from ..facts.external_calls import external_calls
from ..findings import Location, Severity, not_verified
from ..redact import redact_text
from ..code.callgraph import app_graph, module_name, shared
from ..code.pyast import dotted, flat, inner, literal, of_type
from ..code.pyresolve import Project, callees, calls, functions
from . import check

# Ruff's flake8-async rules that answer "blocking call in async function"
RUFF_CODES = ("ASYNC210", "ASYNC212", "ASYNC220", "ASYNC221", "ASYNC222", "ASYNC230", "ASYNC250", "ASYNC251")
FILE_IO = {"ASYNC230"}
BLOCKING_STDLIB = {"time.sleep": "sleep", "open": "file", "io.open": "file", "os.system": "process",
                   "subprocess.run": "process", "subprocess.call": "process", "subprocess.check_call": "process",
                   "subprocess.check_output": "process", "subprocess.Popen": "process"}
# decorators that make a function a task run by a queue worker process (RQ ``@job``,
# Celery ``@app.task`` / ``@shared_task``, Dramatiq ``@actor``, Huey / Taskiq ``@x.task``):
# it runs in the worker, on no event loop of the API
WORKER_TASKS = {"job", "task", "shared_task", "actor"}
APP_CLASSES = {"FastAPI", "Starlette", "APIRouter"}
ROUTE_DECORATORS = {"get", "post", "put", "patch", "delete", "head", "options", "api_route", "route", "websocket"}
LOOP_RUNNERS = {"asyncio.run", "anyio.run", "trio.run", "uvloop.run"}
# calls that run the work they are handed alongside the requests, not before them
SPAWNERS = {"create_task", "ensure_future", "start_soon", "add_job", "add_task", "spawn", "Thread", "Process",
            "submit", "run_in_executor", "call_soon", "call_later", "call_soon_threadsafe", "run_coroutine_threadsafe"}
LIB_WORD = {"smtplib": "SMTP (smtplib)", "boto3": "boto3", "stripe": "Stripe (sync API)",
            "sendgrid": "SendGrid", "requests": "requests", "httpx": "httpx (sync client)", "urllib": "urllib"}


def _blocking_in(proj: Project, src, fn, by_func) -> list[tuple[int, str, str]]:
    """(line, what, kind) of blocking calls made directly in the sync function ``fn``."""
    out = [(c.line, LIB_WORD.get(c.library, c.library), "network") for c in by_func.get(id(fn), [])]
    for call in calls(fn):
        q = proj.qualify(src, call.func)
        if q in BLOCKING_STDLIB and not (q == "open" and "open" in proj.defs.get(src.path, {})):
            out.append((call.lineno, q, BLOCKING_STDLIB[q]))
    return out


def _may_block(proj: Project, by_func) -> set[str]:
    """Names of the sync functions for which :func:`_followed` (two levels) can find a
    blocking call: those with one themselves (network calls from ``by_func``; stdlib calls,
    looked for only in files whose text has the called name: ``sleep``, ``open``,
    ``system``, or ``subprocess`` in the text or path) and those calling one of them
    (looked for only in files naming one). Async functions in files that name none of
    them cannot reach a blocking helper."""
    direct = {id(cs[0].func): cs[0].func for cs in by_func.values()}
    for src in proj.files:
        if not src.may_name("sleep", "open", "system", "subprocess"):
            continue
        for fn in functions(src.tree):
            if isinstance(fn, ast.FunctionDef) and id(fn) not in direct and _blocking_in(proj, src, fn, by_func):
                direct[id(fn)] = fn
    names = {fn.name for fn in direct.values()}
    if not names:
        return names
    callers = set()
    for src in proj.files:
        if not src.may_name(*names):
            continue
        for fn in functions(src.tree):
            if isinstance(fn, ast.FunctionDef) and any(
                    isinstance(r.func, ast.FunctionDef) and id(r.func) in direct for _s, r in callees(proj, src, fn)):
                callers.add(fn.name)
    return names | callers


def _followed(proj: Project, src, fn, by_func, depth: int, path: tuple) -> tuple[str, str] | None:
    """A description of the first blocking call reached from the sync function ``fn``."""
    hits = _blocking_in(proj, src, fn, by_func)
    if hits:
        line, what, kind = min(hits)
        return f"{' -> '.join(path)} calls {what} ({src.path}:{line})", kind
    if depth <= 1:
        return None
    for _site, r in callees(proj, src, fn):
        if isinstance(r.func, ast.FunctionDef):
            got = _followed(proj, r.src, r.func, by_func, depth - 1, (*path, r.func.name))
            if got:
                return got
    return None


class OffLoop:
    """Where a blocking call stalls no request of the API: async functions run by a
    queue worker (task decorators), the app's lifecycle code (the ``lifespan`` function,
    startup / shutdown handlers, and module-level functions called only from there,
    across modules, not handed to a task spawner), and modules that are scripts with
    their own event loop (``asyncio.run(...)`` at module level or under ``__main__``,
    named by no other module of the app)."""

    def __init__(self, ctx):
        self.graph = g = app_graph(ctx)
        self.lifecycle: set[int] = set()  # id(def) of lifespans and startup/shutdown handlers
        for src in g.files:
            if not src.may_name("lifespan", "startup", "shutdown", "on_event"):
                continue
            for node in of_type(src.tree, ast.Call):
                name = dotted(node.func).rsplit(".", 1)[-1]
                if name in APP_CLASSES:
                    for kw in node.keywords:
                        if kw.arg == "lifespan":
                            self._add(g.resolve_name(src.path, dotted(kw.value)))
                        elif kw.arg in ("on_startup", "on_shutdown") and isinstance(kw.value, (ast.List, ast.Tuple)):
                            for el in kw.value.elts:
                                self._add(g.resolve_name(src.path, dotted(el)))
                elif name == "add_event_handler" and len(node.args) > 1 \
                        and literal(node.args[0]) in ("startup", "shutdown"):
                    self._add(g.resolve_name(src.path, dotted(node.args[1])))
            for fn in g.by_file.get(src.path, []):
                if any(isinstance(d, ast.Call) and dotted(d.func).endswith("on_event") and d.args
                       and literal(d.args[0]) in ("startup", "shutdown") for d in fn.node.decorator_list):
                    self.lifecycle.add(id(fn.node))
        self._callers: dict[int, list] | None = None
        self.module_funcs = {id(f.node) for f in g.all_funcs if "." not in f.qualname}
        self._memo: dict[int, bool] = {}
        self._scripts: dict[str, bool] = {}

    def _add(self, fn) -> None:
        if fn is not None:
            self.lifecycle.add(id(fn.node))

    def callers(self, node) -> list:
        if self._callers is None:
            self._callers = {}
            for fn in self.graph.all_funcs:
                for call, callee in self.graph.callees(fn):
                    self._callers.setdefault(id(callee.node), []).append((fn, call))
        return self._callers.get(id(node), [])

    def _spawned(self, caller, call: ast.Call) -> bool:
        """The call hands work to something that runs it alongside the requests
        (``asyncio.create_task(f())``, ``scheduler.add_job(f)``, ``Thread(target=f)``)."""
        f, i = flat(call)
        fc, j = flat(caller.node)
        stop = j if fc is f else -1
        while i > stop:
            node = f.order[i]
            if isinstance(node, ast.Call) and dotted(node.func).rsplit(".", 1)[-1] in SPAWNERS:
                return True
            i = f.parent[i]
        return False

    def _module_ref(self, name: str) -> bool:
        """Module-level code names ``name`` (``app.add_api_route("/x", f)``,
        ``router.get("/x")(f)``): a use the call graph does not see."""
        for src in self.graph.files:
            if src.text and name in src.text:
                for n in inner(src.tree, keep_scopes=False):
                    if (isinstance(n, ast.Name) and n.id == name and isinstance(n.ctx, ast.Load)) or \
                            (isinstance(n, ast.Attribute) and n.attr == name):
                        return True
        return False

    def lifecycle_only(self, fn_node, depth: int = 4) -> bool:
        """``fn_node`` runs only while the app starts or stops."""
        if id(fn_node) in self.lifecycle:
            return True
        if depth <= 0:
            return False
        hit = self._memo.get(id(fn_node))
        if hit is None:
            self._memo[id(fn_node)] = False  # recursion: not proven
            sites = self.callers(fn_node)
            # a method's callers (``obj.f()``) are not all resolved: only module functions are judged
            hit = bool(sites) and id(fn_node) in self.module_funcs and not self._module_ref(fn_node.name) and all(
                not self._spawned(caller, call) and self.lifecycle_only(caller.node, depth - 1)
                for caller, call in sites)
            self._memo[id(fn_node)] = hit
        return hit

    def script(self, src) -> bool:
        """``src`` runs its own event loop as a script and no other app module imports it:
        ``asyncio.run(...)`` at module level, or reached from the ``__main__`` block
        through the module's own functions (``main()`` -> ``run()`` -> ``asyncio.run``);
        a module that creates the app or declares routes is never a script."""
        memo = self._scripts.get(src.path)
        if memo is None:
            memo = self._scripts[src.path] = self._runs_loop(src) and not self._serves(src) \
                and not self._imported(src)
        return memo

    @staticmethod
    def _runs_loop(src) -> bool:
        local = {n.name: n for n in src.tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))}
        todo: list[ast.AST] = []
        for st in src.tree.body:
            main = isinstance(st, ast.If) and dotted(getattr(st.test, "left", st.test)) == "__name__"
            if main:
                todo += st.body
            elif isinstance(st, ast.Expr):
                todo.append(st)
        seen: set[str] = set()
        while todo:
            node = todo.pop()
            for call in of_type(node, ast.Call):
                name = dotted(call.func)
                if name in LOOP_RUNNERS:
                    return True
                if name in local and name not in seen and len(seen) < 8:
                    seen.add(name)
                    todo.append(local[name])
        return False

    @staticmethod
    def _serves(src) -> bool:
        """``src`` creates the app or a router, or declares a route."""
        for node in of_type(src.tree, ast.Call):
            if dotted(node.func).rsplit(".", 1)[-1] in APP_CLASSES:
                return True
        return any(isinstance(d, ast.Call) and isinstance(d.func, ast.Attribute) and d.func.attr in ROUTE_DECORATORS
                   for fn in of_type(src.tree, (ast.FunctionDef, ast.AsyncFunctionDef)) for d in fn.decorator_list)

    def _imported(self, src) -> bool:
        """Another app module imports ``src`` (``import a.b.mod``, ``from a.b import mod``,
        ``from a.b.mod import f``, relative forms) or names it as an ASGI target
        (``"a.b.mod:app"``). A mention in a comment or a docstring is no import."""
        mod = module_name(src.path)
        stem = mod.rsplit(".", 1)[-1]

        def same(name: str) -> bool:
            return name.rsplit(".", 1)[-1] == stem and (name == mod or mod.endswith("." + name)
                                                         or name.endswith("." + mod))
        for other in self.graph.files:
            if other.path == src.path:
                continue
            if f"{mod}:" in (other.text or ""):
                return True
            if not other.may_name(stem):
                continue
            omod = module_name(other.path)
            pkg = omod if other.path.endswith("__init__.py") else omod.rpartition(".")[0]
            for node in of_type(other.tree, (ast.Import, ast.ImportFrom)):
                if isinstance(node, ast.Import):
                    if any(same(a.name) for a in node.names):
                        return True
                    continue
                base = node.module or ""
                if node.level:
                    parts = pkg.split(".") if pkg else []
                    parts = parts[: len(parts) - (node.level - 1)] if node.level > 1 else parts
                    base = ".".join(p for p in parts + ([node.module] if node.module else []) if p)
                if (base and same(base)) or any(same(f"{base}.{a.name}" if base else a.name) for a in node.names):
                    return True
        return False

    def why(self, src, fn) -> str:
        """Why a blocking call in the async ``fn`` of ``src`` stalls no request, or ''."""
        if fn is not None:
            if any(dotted(d).rsplit(".", 1)[-1] in WORKER_TASKS for d in fn.decorator_list):
                return "worker task"
            if self.lifecycle_only(fn):
                return "lifecycle"
        return "script" if self.script(src) else ""


def _off_loop(ctx) -> OffLoop:
    return shared(ctx, "perf004_off_loop", lambda: OffLoop(ctx))


def _enclosing_async(src, line: int):
    best = None
    for fn in functions(src.tree):
        if fn.lineno <= line <= (fn.end_lineno or fn.lineno) and (best is None or fn.lineno >= best.lineno):
            best = fn
    return best


@check("PERF-004", "performance", "Blocking I/O inside async functions", engines=("ruff",))
def blocking_io(ctx):
    """Blocking calls made on the event loop: inside an ``async def``, a call to
    ``requests``, a sync httpx client, ``urllib``, ``time.sleep``, ``subprocess`` or
    ``open()`` (these from the Ruff engine's flake8-async rules ASYNC210-251), and what
    Ruff cannot see: ``smtplib``, boto3 clients, Stripe's sync API and SendGrid called
    directly in the ``async def``, and sync helper functions of the project called from
    it that perform such I/O themselves or one level further down (followed across
    modules through imports).

    Why: while a blocking call runs, the event loop serves no other request; one slow
    SMTP server or S3 upload stalls the whole API. WARNING for network I/O, sleeps and
    subprocesses; RECOMMENDATION for local file I/O (usually short). Not flagged: work
    handed to ``asyncio.to_thread`` / ``loop.run_in_executor`` /
    ``run_in_threadpool`` / ``anyio.to_thread.run_sync`` / FastAPI ``add_task`` (the
    function is passed, not called), sync ``def`` route handlers (FastAPI runs them in
    a thread pool), calls inside lambdas and nested functions; and code whose event
    loop serves no request: async functions decorated as queue-worker tasks (RQ
    ``@job``, Celery ``@task`` / ``@shared_task``, Dramatiq ``@actor``: they run in the
    worker process), the app's lifecycle code (the ``lifespan`` given to ``FastAPI``,
    startup / shutdown handlers, and module-level functions whose every resolved caller
    is lifecycle code, not handed to a task spawner such as ``asyncio.create_task`` and
    not named by module-level code: blocking there delays the start or the stop, not a
    request), and script modules that run their own loop (``asyncio.run(...)`` at
    module level, or reached from the ``__main__`` block through the module's own
    functions: ``main()`` -> ``run()`` -> ``asyncio.run(...)``), that create no app,
    router or route, and that no other module imports (``import``/``from`` statements,
    or an ``"a.b.mod:app"`` ASGI string; a mention in a comment or docstring is no
    import). A sync helper called from async code at several places is one finding
    (the helper is the defect), located at every call site.
    """
    chk = blocking_io.check
    proj = Project.of(ctx)
    seen: set[tuple[str, int]] = set()
    try:
        hits = ruff_hits(ctx, RUFF_CODES)
    except RuffUnavailable as exc:
        hits = []
        yield not_verified(chk.id, chk.area, "blocking calls (Ruff ASYNC rules)", str(exc))
    off = _off_loop(ctx)
    for h in hits:
        if not ctx.layout.is_app(h.file):
            continue
        src = ctx.index.get(h.file)
        if src is not None and src.tree is not None and off.why(src, _enclosing_async(src, h.line)):
            continue
        seen.add((h.file, h.line))
        file_io = h.code in FILE_IO
        yield chk.finding(
            ctx, Severity.RECOMMENDATION if file_io else Severity.WARNING,
            "Blocking file I/O in async function" if file_io else "Blocking call in async function",
            f"{h.message} (Ruff {h.code}). It runs on the event loop: no other request is served "
            "until it returns.",
            "Use an async library (httpx.AsyncClient, asyncio.sleep, anyio/aiofiles) or run it in a "
            "thread: `await asyncio.to_thread(fn, ...)`.", h.file, h.line, key=h.code)

    ext = external_calls(ctx)
    by_func: dict[int, list] = {}
    for c in ext:
        if c.blocking and c.func is not None:
            by_func.setdefault(id(c.func), []).append(c)
    for c in ext:
        if c.blocking and c.is_async_context and (c.src.path, c.line) not in seen:
            seen.add((c.src.path, c.line))
            if off.why(c.src, c.func):
                continue
            what = LIB_WORD.get(c.library, c.library)
            yield chk.finding(
                ctx, Severity.WARNING, f"Blocking {what} call in async function `{c.func.name}`",
                f"{what} is synchronous network I/O: called inside `async def {c.func.name}` it blocks "
                "the event loop for the whole round trip (and its timeout).",
                "Use the library's async API (aiosmtplib, aioboto3, Stripe's `*_async` methods) or "
                f"`await asyncio.to_thread(...)` around the {what} work.",
                c.src.path, c.line, key=f"direct:{c.library}")

    targets = _may_block(proj, by_func)
    sites: dict[int, list] = {}  # id(helper def) -> [(file, line, async caller, chain, kind, helper)]
    for src in ctx.layout.app_sources(ctx.index):
        if not targets or src.tree is None or not src.may_name(*targets):
            continue
        for fn in functions(src.tree):
            if not isinstance(fn, ast.AsyncFunctionDef):
                continue
            for site, r in callees(proj, src, fn):
                if not isinstance(r.func, ast.FunctionDef) or (src.path, site.lineno) in seen:
                    continue
                got = _followed(proj, r.src, r.func, by_func, 2, (r.func.name,))
                if not got:
                    continue
                chain, kind = got
                seen.add((src.path, site.lineno))
                if off.why(src, fn):
                    continue
                sites.setdefault(id(r.func), []).append((src.path, site.lineno, fn.name, chain, kind, r.func.name))
    for group in sites.values():  # one finding per helper, located at every async call site
        group.sort()
        file, line, caller, chain, kind, name = group[0]
        msg = f"`async def {caller}` calls the sync function {chain}: the event loop is blocked until it returns."
        if len(group) > 1:
            msg += " Also called from async code at " + ", ".join(
                f"{f}:{ln} (`{c}`)" for f, ln, c, *_rest in group[1:]) + "."
        finding = chk.finding(
            ctx, Severity.RECOMMENDATION if kind == "file" else Severity.WARNING,
            f"Sync helper `{name}` does blocking I/O on the event loop", msg,
            f"Call it as `await asyncio.to_thread({name}, ...)` or make it async with an "
            "async client.", file, line, key=f"helper:{name}")
        finding.locations += [Location(f, ln, ln, redact_text(ctx.index.get(f).line(ln))[:300])
                              for f, ln, *_rest in group[1:]]
        yield finding
