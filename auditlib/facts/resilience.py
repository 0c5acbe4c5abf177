"""What protects an external call: retry decorators and loops, circuit breakers, library
built-in retries. Shared by REL-004 (retries) and REL-005 (circuit breakers).

A call counts as protected when the protection wraps it where it runs: a decorator on
its enclosing function or on a caller up to two levels (the callers of
:func:`~auditlib.code.pyresolve.callers_upto`, which also follows functions handed to
``asyncio.to_thread`` / ``add_task``), an enclosing ``with``/``async with`` /
``async for`` block, or a hand-written loop.
"""
from __future__ import annotations

import ast

from .external_calls import ExternalCall
from ..code.pyast import dotted, literal, of_type
from ..code.pyresolve import Project, callers_upto, parents

RETRY_LIBS = ("tenacity", "backoff", "stamina", "retry", "retrying", "aiohttp_retry", "opnieuw", "redo")
BREAKER_LIBS = ("pybreaker", "aiobreaker", "purgatory", "circuitbreaker", "aiocircuitbreaker")


def _decorators(fn) -> list[ast.AST]:
    return list(getattr(fn, "decorator_list", []))


def _matches(proj: Project, src, node: ast.AST, libs: tuple[str, ...], word: str, local: set[str]) -> bool:
    q = proj.qualify(src, node)
    root = q.split(".")[0]
    name = dotted(node).lower()
    return root in libs or word in name or any(q.split(".")[0] == n or q.endswith("." + n) for n in local)


def wrappers(proj: Project, c: ExternalCall, depth: int = 2):
    """(src, node) of every decorator and ``with`` context around the call's execution."""
    up = parents(c.src.tree)
    n = up.get(id(c.call))
    while n is not None:
        if isinstance(n, (ast.With, ast.AsyncWith)):
            for item in n.items:
                yield c.src, item.context_expr
        elif isinstance(n, ast.AsyncFor):
            yield c.src, n.iter
        n = up.get(id(n))
    if c.func is not None:
        for d in _decorators(c.func):
            yield c.src, d
        for r in callers_upto(proj, c.func, depth):
            for d in _decorators(r.func):
                yield r.src, d


# keyword arguments of a task decorator / actor registration that make the queue retry it:
# Celery (``autoretry_for``, ``retry_backoff``, ``max_retries``), RQ (``retry=Retry(...)``),
# Dramatiq (``retry_when``, ``max_retries``), arq / Huey (``retries``)
QUEUE_RETRY_KWARGS = ("autoretry_for", "retry_backoff", "max_retries", "retry", "retries", "retry_when")


def _queue_retry(proj: Project, src, node: ast.AST) -> bool:
    """A task decorator or actor registration that retries the task: one of
    :data:`QUEUE_RETRY_KWARGS` set to something other than 0 / None / False, or
    ``dramatiq.actor`` itself (Dramatiq's Retries middleware retries failed messages with
    exponential backoff unless ``max_retries=0``)."""
    if not isinstance(node, (ast.Call, ast.Name, ast.Attribute)):
        return False
    call = node if isinstance(node, ast.Call) else None
    kws = {k.arg: k.value for k in (call.keywords if call else []) if k.arg}
    if any(a in kws and literal(kws[a]) not in (0, None, False) for a in QUEUE_RETRY_KWARGS):
        return True
    q = proj.qualify(src, call.func if call else node)
    if q.split(".")[0] == "dramatiq" and q.endswith("actor"):
        return "max_retries" not in kws
    return False


def _registered_actor(proj: Project, c: ExternalCall) -> bool:
    """The call runs in a method of a class whose instance is registered as a retried task
    (``dramatiq.actor(DeliverTask(), retry_when=...)``): a method on the call's path (its
    function or a caller up to two levels) belongs to such a class, or to a class built by
    the methods of such a class (up to two levels: ``delivery = Delivery(); delivery.send()``
    inside the task's ``run``)."""
    funcs = ([(c.src, c.func)] if c.func is not None else []) + \
        [(r.src, r.func) for r in (callers_upto(proj, c.func, 2) if c.func is not None else [])]
    names = set()
    for src, fn in funcs:
        up = parents(src.tree)
        p = up.get(id(fn))
        if isinstance(p, ast.ClassDef):
            names.add(p.name)
    if not names:
        return False
    for _ in range(2):  # classes whose methods build an instance of one of these (a local variable's type)
        more = set()
        for src in proj.files:
            if src.tree is None or not src.may_name(*names):
                continue
            for cls in of_type(src.tree, ast.ClassDef):
                if cls.name not in names and any(dotted(x.func).split(".")[-1] in names
                                                 for x in of_type(cls, ast.Call)):
                    more.add(cls.name)
        if not more:
            break
        names |= more
    for src in proj.files:
        if src.tree is None or not src.may_name(*names):
            continue
        for call in of_type(src.tree, ast.Call):
            if any(isinstance(a, ast.Call) and dotted(a.func).split(".")[-1] in names for a in call.args) \
                    and _queue_retry(proj, src, call):
                return True
    return False


def has_retry(proj: Project, c: ExternalCall) -> bool:
    for src, node in wrappers(proj, c):
        target = node.func if isinstance(node, ast.Call) else node
        if _matches(proj, src, target, RETRY_LIBS, "retry", set()) or _matches(proj, src, target, RETRY_LIBS, "retrying", set()):
            return True
        if _queue_retry(proj, src, node):
            return True  # a queue task retried by the broker (Celery, RQ, Dramatiq, arq)
    return _registered_actor(proj, c)


def retry_loop(c: ExternalCall) -> str:
    """'backoff' when the call sits in a loop with a try and a sleep, 'no-backoff' when in
    a loop with a try but no sleep, '' otherwise."""
    up = parents(c.src.tree)
    n, in_try = up.get(id(c.call)), False
    while n is not None and not isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)):
        if isinstance(n, ast.Try) and n.handlers:
            in_try = True
        if isinstance(n, (ast.For, ast.While, ast.AsyncFor)) and in_try:
            sleeps = any(dotted(x.func).split(".")[-1] == "sleep" for x in of_type(n, ast.Call))
            return "backoff" if sleeps else "no-backoff"
        n = up.get(id(n))
    return ""


def builtin_retries(ctx, c: ExternalCall) -> str:
    """A description of the library's own retries that cover this call, or ''."""
    if c.library == "boto3":
        return "botocore retries by default (legacy mode: up to 5 attempts with exponential backoff)"
    texts = [f.text or "" for f in ctx.layout.app_sources(ctx.index)]
    if c.library == "stripe":
        for t in texts:
            for m in _assigned_numbers(t, "max_network_retries"):
                if m > 0:
                    return f"stripe max_network_retries={m}"
        return ""
    if c.library == "httpx" and "retries=" in (c.src.text or "") and "HTTPTransport" in (c.src.text or ""):
        return "httpx transport retries (connection errors only)"
    if c.library == "requests" and "max_retries" in (c.src.text or "") and "HTTPAdapter" in (c.src.text or ""):
        return "urllib3 Retry mounted on the requests session"
    if c.library == "aiohttp" and "RetryClient" in (c.src.text or ""):
        return "aiohttp_retry RetryClient"
    return ""


def _assigned_numbers(text: str, name: str) -> list[int]:
    import re

    out = []
    for m in re.finditer(rf"{name}\s*[=:]\s*([^,)\n]+)", text):
        v = literal(_expr(m.group(1).strip()))
        if isinstance(v, int):
            out.append(v)
    return out


def _expr(text: str):
    try:
        return ast.parse(text, mode="eval").body
    except SyntaxError:
        return None


def breaker_names(ctx) -> set[str]:
    """Names of hand-written circuit breaker classes / instances in the project."""
    out = set()
    for f in ctx.layout.app_sources(ctx.index):
        for n in of_type(f.tree, ast.ClassDef) if f.tree else []:
            if "breaker" in n.name.lower():
                out.add(n.name)
    for f in ctx.layout.app_sources(ctx.index):  # instances: crm = CircuitBreaker(...)
        for n in of_type(f.tree, ast.Assign) if f.tree else []:
            if isinstance(n.value, ast.Call):
                callee = dotted(n.value.func)
                if callee.split(".")[-1] in out or "breaker" in callee.lower():
                    out |= {dotted(t).split(".")[-1] for t in n.targets if dotted(t)}
    return out


def has_breaker(proj: Project, c: ExternalCall, local: set[str]) -> bool:
    for src, node in wrappers(proj, c):
        target = node.func if isinstance(node, ast.Call) else node
        if _matches(proj, src, target, BREAKER_LIBS, "breaker", local):
            return True
    # breaker.call(fn, ...) style: the enclosing function hands the work to a breaker
    if c.func is not None:
        for n in of_type(c.func, ast.Call):
            if "breaker" in dotted(n.func).lower():
                return True
    return False
