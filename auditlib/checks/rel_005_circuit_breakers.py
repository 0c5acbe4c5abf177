"""REL-005: circuit breakers around external services (recommended)."""
from __future__ import annotations

from ..findings import Severity
from ..code.pyresolve import Project
from ..facts.resilience import breaker_names, has_breaker
from . import check
from .rel_004_retries import SERVICE, network_sites


@check("REL-005", "reliability", "Circuit breakers around external services")
def circuit_breakers(ctx):
    """For each external service the application calls (SMTP, HTTP APIs, S3, Stripe,
    SendGrid), whether its calls go through a circuit breaker: a decorator or context
    of pybreaker / aiobreaker / purgatory / circuitbreaker, or of a hand-written class
    whose name says breaker, on the calling function or a caller up to two levels, or a
    ``breaker.call(...)`` in the calling function.

    Why: when a dependency is down, every request still waits for its timeout (and its
    retries); a breaker fails fast and lets the service recover. RECOMMENDATION, one
    finding per service and library, at its first unprotected call site. Not flagged:
    services whose every call is behind a breaker; the object store's built-in retries
    do not count as a breaker.
    """
    chk = circuit_breakers.check
    proj = Project.of(ctx)
    local = breaker_names(ctx)
    reported: set[tuple[str, str]] = set()
    for c in network_sites(ctx):
        key = (c.service, c.library)
        if key in reported or has_breaker(proj, c, local):
            continue
        reported.add(key)
        name = SERVICE.get(c.service, c.service)
        yield chk.finding(
            ctx, Severity.RECOMMENDATION, f"No circuit breaker around {name} calls ({c.library})",
            f"Calls to {name} are not behind a circuit breaker: during an outage each request "
            "still waits for the full timeout (and retries), tying up workers.",
            "Wrap the client calls in a breaker (e.g. `aiobreaker.CircuitBreaker(fail_max=5, "
            "timeout_duration=timedelta(seconds=30))` or purgatory) and fail fast / degrade while open.",
            c.src.path, c.line, key=f"{c.service}:{c.library}")
