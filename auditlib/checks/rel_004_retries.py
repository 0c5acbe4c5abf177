"""REL-004: retries with backoff around calls to external services."""
from __future__ import annotations

from ..facts.external_calls import external_calls
from ..findings import Severity
from ..code.pyresolve import Project
from ..facts.resilience import builtin_retries, has_retry, retry_loop
from . import check

SERVICE = {"smtp": "SMTP", "http": "HTTP", "storage": "object storage", "payments": "Stripe", "email": "SendGrid"}


def network_sites(ctx):
    """External calls that go over the network: requests and client methods, plus the
    SMTP constructor (it connects); HTTP client constructors do not."""
    return [c for c in external_calls(ctx) if c.kind != "ctor" or c.library in ("smtplib",)]


@check("REL-004", "reliability", "Retries with backoff for transient errors")
def retries(ctx):
    """Each function that calls an external service (SMTP, HTTP APIs, S3, Stripe,
    SendGrid) and whether a transient failure (timeout, connection reset, 5xx, 429) is
    retried with backoff: a retry decorator (tenacity, backoff, stamina, Celery's
    ``autoretry_for``) on the function or on a caller up to two levels (functions handed
    to ``asyncio.to_thread`` / ``add_task`` count as called), ``tenacity.AsyncRetrying``
    blocks, a hand-written loop with ``try`` and a ``sleep``, or the library's own
    retries: botocore retries by default (reported as INFO: they count), Stripe when
    ``max_network_retries`` is set above 0 (older stripe-python releases default to 0),
    httpx transports with ``retries=``, requests sessions with a mounted ``Retry``.

    Why: transient network errors are routine in production; without a retry the user
    sees a 500 or an e-mail is silently lost. WARNING per function and service with no
    retry; a retry loop without any sleep (hammering a struggling service) is a WARNING
    too. Not flagged: webhook signature checks and other local library calls, presigned
    URL generation, HTTP client constructors, tests.
    """
    chk = retries.check
    proj = Project.of(ctx)
    done: set[tuple] = set()
    builtin_seen: set[str] = set()
    for c in network_sites(ctx):
        group = (c.src.path, id(c.func), c.service)
        if group in done:
            continue
        done.add(group)
        where = f"`{c.func.name}`" if c.func else "module level"
        name = SERVICE.get(c.service, c.service)
        builtin = builtin_retries(ctx, c)
        if builtin:
            if c.library not in builtin_seen:
                builtin_seen.add(c.library)
                yield chk.finding(ctx, Severity.INFO, f"{name} calls retried by the library ({c.library})",
                                  f"{builtin}; these count as retries with backoff.", "", c.src.path, c.line,
                                  key=f"builtin:{c.library}")
            continue
        if has_retry(proj, c):
            continue
        loop = retry_loop(c)
        if loop == "backoff":
            continue
        if loop == "no-backoff":
            yield chk.finding(ctx, Severity.WARNING, f"{name} retry loop without backoff in {where}",
                              "The call is retried in a loop with no sleep between attempts: during an "
                              "outage it hammers the failing service and exhausts the attempts in "
                              "milliseconds.",
                              "Sleep with exponential backoff and jitter between attempts, or use "
                              "tenacity (`@retry(wait=wait_exponential_jitter(), stop=stop_after_attempt(3))`).",
                              c.src.path, c.line, key=f"no-backoff:{c.service}")
            continue
        extra = (" Stripe's `max_network_retries` is not set (older stripe-python releases default to 0 "
                 "retries; set it explicitly so behaviour does not depend on the installed version)."
                 if c.library == "stripe" else "")
        yield chk.finding(
            ctx, Severity.WARNING, f"{name} call without retries in {where}",
            f"A transient failure of the {name} call ({c.library}) is not retried: no retry decorator on "
            "this function or its callers, no retry loop, no library-level retries." + extra,
            "Retry transient errors with exponential backoff and a bounded number of attempts "
            "(tenacity: `@retry(retry=retry_if_exception_type((OSError, TimeoutError)), "
            "wait=wait_exponential_jitter(1, 10), stop=stop_after_attempt(3))`), only for idempotent "
            "operations or with an idempotency key."
            + (" For Stripe set `stripe.max_network_retries = 2`." if c.library == "stripe" else ""),
            c.src.path, c.line, key=f"no-retry:{c.service}")
