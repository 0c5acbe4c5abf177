"""Calls to external services in the target's code (SMTP, HTTP, S3, Stripe, SendGrid),
found by what the names resolve to through imports, not by keywords.

One :class:`ExternalCall` per call site: the constructor of a client
(``smtplib.SMTP(...)``, ``httpx.AsyncClient(...)``, ``boto3.client("s3", ...)``,
``stripe.StripeClient(...)``, ``SendGridAPIClient(...)``), a module-level request
(``requests.get``, ``httpx.post``, ``urllib.request.urlopen``, ``stripe.Customer.create``)
or a method call on a variable / ``self`` attribute bound to such a client. REL-003,
REL-004, REL-005 and PERF-004 share this inventory.
"""
from __future__ import annotations

import ast
from dataclasses import dataclass

from ..target.index import SourceFile
from ..code.pyast import dotted, of_type
from ..code.pyresolve import FuncDef, Project, enclosing_function, parents

HTTP_VERBS = {"get", "post", "put", "patch", "delete", "head", "options", "request", "stream", "send"}

# qualified constructor -> (service, library, blocking)
CLIENTS = {
    "smtplib.SMTP": ("smtp", "smtplib", True), "smtplib.SMTP_SSL": ("smtp", "smtplib", True),
    "smtplib.LMTP": ("smtp", "smtplib", True),
    "aiosmtplib.SMTP": ("smtp", "aiosmtplib", False),
    "requests.Session": ("http", "requests", True), "requests.session": ("http", "requests", True),
    "httpx.Client": ("http", "httpx", True), "httpx.AsyncClient": ("http", "httpx", False),
    "aiohttp.ClientSession": ("http", "aiohttp", False),
    "boto3.client": ("storage", "boto3", True), "boto3.resource": ("storage", "boto3", True),
    "boto3.session.Session.client": ("storage", "boto3", True),
    "stripe.StripeClient": ("payments", "stripe", True),
    "sendgrid.SendGridAPIClient": ("email", "sendgrid", True),
    "sendgrid.sendgrid.SendGridAPIClient": ("email", "sendgrid", True),
}
# qualified module-level request functions -> (service, library, blocking)
FUNCTIONS = {
    **{f"requests.{v}": ("http", "requests", True) for v in HTTP_VERBS - {"send", "stream"}},
    **{f"httpx.{v}": ("http", "httpx", True) for v in HTTP_VERBS - {"send"}},
    "urllib.request.urlopen": ("http", "urllib", True),
    "aiosmtplib.send": ("smtp", "aiosmtplib", False),
    "aiohttp.request": ("http", "aiohttp", False),
}
BOTO_SESSIONS = {"boto3.Session", "boto3.session.Session"}
STRIPE_LOCAL = {"Webhook", "WebhookSignature", "util", "error", "StripeError"}  # no network
# Every qualified name above starts with one of these roots; a qualified name is made of
# dot-separated pieces of the file's text (the call, its imports) and of its module path,
# so a file in which none of them occurs (text or path) can hold no external call
# (non-ASCII files are always read: the parser NFKC-normalises identifiers).
LIBRARY_ROOTS = ("smtplib", "requests", "httpx", "aiohttp", "boto3", "stripe", "sendgrid", "urllib")


@dataclass
class ExternalCall:
    service: str  # smtp | http | storage | payments | email
    library: str
    src: SourceFile
    call: ast.Call
    func: FuncDef | None  # enclosing function
    kind: str  # ctor | request | method
    blocking: bool
    binding: ast.Call | None = None  # the constructor call a method call's receiver came from

    @property
    def line(self) -> int:
        return self.call.lineno

    @property
    def is_async_context(self) -> bool:
        return isinstance(self.func, ast.AsyncFunctionDef)


def _bindings(tree: ast.AST, proj: Project, src: SourceFile, up) -> tuple[dict, set[str]]:
    """(function or None, name) -> the client constructor call the name was bound to
    (assignments and ``with ... as name``; ``self.x`` is recorded under None: any method
    of the class may use it)."""
    out: dict[tuple, ast.Call] = {}
    sessions: set[str] = set()
    for node in of_type(tree, (ast.Assign, ast.AnnAssign, ast.With, ast.AsyncWith)):
        pairs = []
        if isinstance(node, (ast.Assign, ast.AnnAssign)) and isinstance(node.value, ast.Call):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            pairs = [(dotted(t), node.value) for t in targets]
        elif isinstance(node, (ast.With, ast.AsyncWith)):
            pairs = [(dotted(i.optional_vars), i.context_expr) for i in node.items
                     if i.optional_vars is not None and isinstance(i.context_expr, ast.Call)]
        for name, call in pairs:
            if not name:
                continue
            q = proj.qualify(src, call.func)
            if q in BOTO_SESSIONS:
                sessions.add(name)
            elif _ctor(q, call, sessions) is not None:
                scope = None if name.startswith("self.") else enclosing_function(node, up)
                out[(id(scope) if scope else None, name)] = call
    return out, sessions


def _bound(binds: dict, fn, recv: str) -> ast.Call | None:
    names = [recv, ".".join(recv.split(".")[:2]) if recv.startswith("self.") else recv.split(".")[0]]
    for name in names:
        for scope in (id(fn) if fn else None, None):
            if (scope, name) in binds:
                return binds[(scope, name)]
    return None


def _ctor(q: str, call: ast.Call, sessions: set[str]) -> tuple | None:
    if q in CLIENTS:
        return CLIENTS[q]
    head, _, attr = q.rpartition(".")
    if attr in ("client", "resource") and head in sessions:
        return ("storage", "boto3", True)
    if attr in ("client", "resource") and isinstance(call.func, ast.Attribute) and isinstance(call.func.value, ast.Call) \
            and dotted(call.func.value.func).split(".")[-1] == "Session" and q.startswith("boto3"):
        return ("storage", "boto3", True)
    return None


def external_calls(ctx) -> list[ExternalCall]:
    """Every external-service call site in application code (cached per context)."""
    cached = ctx.__dict__.get("_external_calls")
    if cached is not None:
        return cached
    proj = Project.of(ctx)
    out: list[ExternalCall] = []
    for src in ctx.layout.app_sources(ctx.index):
        if src.tree is None:
            continue
        out += calls_in(src, proj)
    ctx.__dict__["_external_calls"] = out
    return out


def calls_in(src: SourceFile, proj: Project) -> list[ExternalCall]:
    tree = src.tree
    if not src.may_name(*LIBRARY_ROOTS):
        return []
    up = parents(tree)
    binds, sessions = _bindings(tree, proj, src, up)
    out = []
    # every call of the module, nested ones included, in (line, column) order: the order
    # of ``calls(tree, nested=True)`` (a stable sort of the same preorder list)
    for call in sorted(of_type(tree, ast.Call), key=lambda c: (c.lineno, c.col_offset)):
        q = proj.qualify(src, call.func)
        fn = enclosing_function(call, up)
        hit = _ctor(q, call, sessions)
        if hit is not None:
            out.append(ExternalCall(*hit[:2], src, call, fn, "ctor", hit[2]))
            continue
        if q in FUNCTIONS:
            s, lib, blocking = FUNCTIONS[q]
            out.append(ExternalCall(s, lib, src, call, fn, "request", blocking))
            continue
        parts = q.split(".")
        if parts[0] == "stripe" and len(parts) >= 3 and parts[1][:1].isupper() and parts[1] not in STRIPE_LOCAL:
            out.append(ExternalCall("payments", "stripe", src, call, fn, "request",
                                    not parts[-1].endswith("_async")))
            continue
        if isinstance(call.func, ast.Attribute):
            recv = dotted(call.func.value)
            bound = _bound(binds, fn, recv) if recv else None
            if bound is not None:
                hit = _ctor(proj.qualify(src, bound.func), bound, sessions) or ("storage", "boto3", True)
                service, lib, blocking = hit
                if lib in ("requests", "httpx", "aiohttp") and call.func.attr not in HTTP_VERBS:
                    continue
                if lib in ("smtplib", "aiosmtplib") and call.func.attr in ("ehlo", "quit", "close", "set_debuglevel"):
                    continue
                if lib == "boto3" and call.func.attr in ("generate_presigned_url", "generate_presigned_post", "get_paginator"):
                    continue  # signed locally, no network round trip
                if lib == "stripe" and call.func.attr.endswith("_async"):
                    blocking = False
                out.append(ExternalCall(service, lib, src, call, fn, "method", blocking, bound))
    return out


def kw(call: ast.Call, name: str) -> ast.AST | None:
    return next((k.value for k in call.keywords if k.arg == name), None)
