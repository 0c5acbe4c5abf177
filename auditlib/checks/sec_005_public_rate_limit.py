"""SEC-005: public endpoints without rate limiting."""
from __future__ import annotations

import re

from ..findings import Severity, not_verified
from ..facts.routes import route_inventory
from . import check

LIMITER = re.compile(r"limit|throttl|rate", re.IGNORECASE)
# Probes and metrics are polled by infrastructure and must not be throttled.
DEFAULT_EXEMPT = [r"/(healthz?|health-?check|readyz?|livez?|ready|live|ping|status|metrics)"]


def rate_limited(route) -> str:
    """How the route is rate limited ('' if not): decorator, dependency or middleware."""
    for d in route.decorators:
        if LIMITER.search(d):
            return f"decorator {d}"
    for d in route.dependencies:
        for name in (d.name, *d.chain):
            if LIMITER.search(name.rsplit(":", 1)[-1]):
                return f"dependency {name}"
    for m in route.middlewares:
        if m.rate_limits:
            return f"middleware {m.name}"
    return ""


@check("SEC-005", "security", "Public endpoints without rate limiting")
def public_rate_limit(ctx):
    """Unauthenticated routes (per the route inventory) with no rate limiting: no limiter
    decorator on the handler (slowapi ``@limiter.limit``), no limiter dependency
    (fastapi-limiter ``RateLimiter``, a project ``rate_limit`` dependency) and no
    rate-limiting middleware on the app (``SlowAPIMiddleware`` or a project middleware
    whose name or body refers to a limiter). A handler served at several paths or methods
    (a router included twice, stacked decorators) is one finding listing every route.

    Why: public endpoints (login, signup, lead forms, magic links) are what bots hammer:
    credential stuffing, email bombing, scraping, cost. WARNING per route at its
    decorator. Not flagged: authenticated routes, and health/readiness/metrics probes
    (``rate_limit_exempt_paths``, regexes matched against the full path).
    """
    chk = public_rate_limit.check
    routes = route_inventory(ctx)
    if not routes:
        yield not_verified(chk.id, chk.area, "rate limiting of public routes", "no routes were found")
        return
    exempt = [re.compile(p + "$") for p in ctx.config.get("rate_limit_exempt_paths", DEFAULT_EXEMPT)]
    handlers: dict[tuple, list] = {}
    for r in routes:
        if r.auth != "none" or any(p.match(r.path) for p in exempt) or rate_limited(r):
            continue
        handlers.setdefault((r.file, r.handler_line, r.handler), []).append(r)
    for group in handlers.values():
        group.sort(key=lambda r: (not r.include_in_schema, r.line))  # named by its first documented route
        r = group[0]
        more = f" (and {len(group) - 1} more)" if len(group) > 1 else ""
        yield chk.finding(
            ctx, Severity.WARNING, f"Public route without rate limiting: {' '.join(r.methods)} {r.path}{more}",
            f"`{r.handler}` needs no credentials and nothing limits how often it can be called: open to "
            "brute force, scraping and abuse.",
            "Add a limiter (e.g. slowapi `@limiter.limit(\"10/minute\")` or fastapi-limiter "
            "`Depends(RateLimiter(times=10, seconds=60))`), backed by Redis in production.",
            r.file, r.line, routes=[d for x in group for d in x.as_dicts()])
