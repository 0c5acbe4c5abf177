"""SEC-022: cookie- or Basic-authenticated state-changing endpoints without CSRF protection."""
from __future__ import annotations

import ast
import re

from ..findings import Severity
from ..code.keywords import mentions_any
from ..code.pyast import dotted, literal, of_type
from ..facts.route_credentials import STATE_CHANGING, routes
from . import check

CSRF_NAME = re.compile(r"csrf|xsrf", re.IGNORECASE)


@check("SEC-022", "security", "Cross-site request forgery (CSRF)")
def csrf(ctx):
    """State-changing routes (POST/PUT/PATCH/DELETE) whose authentication the browser
    attaches by itself, with no CSRF defence: credentials are found by following the
    route's dependencies (:mod:`auditlib.facts.route_credentials`). A CSRF defence is any
    middleware or dependency whose name says CSRF/XSRF (``starlette-csrf``'s
    ``CSRFMiddleware``, ``fastapi-csrf-protect``'s ``CsrfProtect``, ``asgi-csrf``).

    Why: another site can make the victim's browser send the request with the victim's
    cookies (transfers, deletions, admin actions on their behalf).
    Severity: cookie/session authentication with a form or no body: WARNING, BLOCKER
    when cookies are set with ``samesite="none"`` (Starlette's ``set_cookie`` and
    ``SessionMiddleware`` default to Lax, which keeps cookies off cross-site POSTs but
    not off same-site subdomains or GET-triggered changes); with a JSON body:
    RECOMMENDATION (FastAPI only parses JSON sent as ``application/json``, which needs a
    CORS preflight). HTTP Basic with a form or no body: RECOMMENDATION (browsers cache
    Basic credentials and re-send them cross-site).
    Not flagged: bearer tokens, API-key headers (a browser never adds an
    ``Authorization`` header on its own, so a forged request arrives unauthenticated),
    unauthenticated routes (nothing to forge), GET routes (they should not change state;
    that is a different finding).
    """
    chk = csrf.check
    if _csrf_protection(ctx):
        return
    samesite_none = _samesite_none(ctx)
    for r in routes(ctx):
        if r.method not in STATE_CHANGING or any(CSRF_NAME.search(d) for d in r.dependencies):
            continue
        route = [{"method": r.method, "path": r.path}]
        if "cookie" in r.credentials:
            if r.body == "json":
                sev = Severity.RECOMMENDATION
                why = ("Its JSON body needs `Content-Type: application/json`, which a cross-site form cannot "
                       "send without a CORS preflight; the defence rests on the CORS configuration alone.")
            else:
                sev = Severity.BLOCKER if samesite_none else Severity.WARNING
                why = (f"It takes {'a form' if r.body == 'form' else 'no body'}, so a plain cross-site form "
                       "post reaches it with the victim's cookies"
                       + (f" (cookies are set with SameSite=None at {samesite_none})." if samesite_none else
                          "; only the SameSite=Lax default keeps the cookie off cross-site POSTs (not off "
                          "sibling subdomains, nor off older browsers)."))
            yield chk.finding(
                ctx, sev, f"{r.method} {r.path} is cookie-authenticated without CSRF protection",
                f"`{r.handler}` authenticates by cookie/session. " + why,
                "Add a CSRF token (e.g. `starlette-csrf` middleware or `fastapi-csrf-protect`) or check "
                "the `Origin` header on state-changing requests, and set cookies SameSite=Strict.",
                r.file, r.line, routes=route, key=f"{r.method} {r.path}")
        elif "basic" in r.credentials and r.body != "json" and "header" not in r.credentials:
            yield chk.finding(
                ctx, Severity.RECOMMENDATION, f"{r.method} {r.path} uses HTTP Basic without CSRF protection",
                f"`{r.handler}` is authenticated with HTTP Basic and takes "
                f"{'a form' if r.body == 'form' else 'no body'}: browsers cache Basic credentials after a "
                "login prompt and attach them to cross-site requests too.",
                "Prefer bearer tokens for admin APIs, or require a JSON body / custom header on "
                "state-changing admin routes.", r.file, r.line, routes=route, key=f"{r.method} {r.path}")


def _csrf_protection(ctx) -> bool:
    """An app-wide CSRF middleware (``add_middleware(CSRFMiddleware, ...)``, ``Middleware(...)``)."""
    for src in ctx.layout.app_sources(ctx.index):
        if src.tree is None or not mentions_any(src.text or "", ("csrf", "xsrf")):
            continue
        for n in of_type(src.tree, ast.Call):
            if dotted(n.func).rsplit(".", 1)[-1] in ("add_middleware", "Middleware") \
                    and n.args and CSRF_NAME.search(dotted(n.args[0])):
                return True
    return False


def _samesite_none(ctx) -> str:
    for src in ctx.layout.app_sources(ctx.index):
        if src.tree is None or not mentions_any(src.text or "", ("samesite", "same_site")):
            continue
        for n in of_type(src.tree, ast.Call):
            for k in n.keywords:
                if k.arg in ("samesite", "same_site") and str(literal(k.value)).lower() == "none":
                    return f"{src.path}:{n.lineno}"
    return ""
