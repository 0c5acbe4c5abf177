"""PERF-004: blocking I/O inside ``async def`` (the event loop stalls for every request)."""
from __future__ import annotations

import ast

from ..engines.ruff import RuffUnavailable, ruff_hits
from ..facts.external_calls import external_calls
from ..findings import Severity, not_verified
from ..code.pyresolve import Project, callees, calls, functions
from . import check

# Ruff's flake8-async rules that answer "blocking call in async function"
RUFF_CODES = ("ASYNC210", "ASYNC212", "ASYNC220", "ASYNC221", "ASYNC222", "ASYNC230", "ASYNC250", "ASYNC251")
FILE_IO = {"ASYNC230"}
BLOCKING_STDLIB = {"time.sleep": "sleep", "open": "file", "io.open": "file", "os.system": "process",
                   "subprocess.run": "process", "subprocess.call": "process", "subprocess.check_call": "process",
                   "subprocess.check_output": "process", "subprocess.Popen": "process"}
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
    a thread pool), calls inside lambdas and nested functions.
    """
    chk = blocking_io.check
    proj = Project.of(ctx)
    seen: set[tuple[str, int]] = set()
    try:
        hits = ruff_hits(ctx, RUFF_CODES)
    except RuffUnavailable as exc:
        hits = []
        yield not_verified(chk.id, chk.area, "blocking calls (Ruff ASYNC rules)", str(exc))
    for h in hits:
        if not ctx.layout.is_app(h.file):
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
            what = LIB_WORD.get(c.library, c.library)
            yield chk.finding(
                ctx, Severity.WARNING, f"Blocking {what} call in async function `{c.func.name}`",
                f"{what} is synchronous network I/O: called inside `async def {c.func.name}` it blocks "
                "the event loop for the whole round trip (and its timeout).",
                "Use the library's async API (aiosmtplib, aioboto3, Stripe's `*_async` methods) or "
                f"`await asyncio.to_thread(...)` around the {what} work.",
                c.src.path, c.line, key=f"direct:{c.library}")

    targets = _may_block(proj, by_func)
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
                yield chk.finding(
                    ctx, Severity.RECOMMENDATION if kind == "file" else Severity.WARNING,
                    f"Sync helper `{r.func.name}` does blocking I/O on the event loop",
                    f"`async def {fn.name}` calls the sync function {chain}: the event loop is blocked "
                    "until it returns.",
                    f"Call it as `await asyncio.to_thread({r.func.name}, ...)` or make it async with an "
                    "async client.", src.path, site.lineno, key=f"helper:{r.func.name}")
