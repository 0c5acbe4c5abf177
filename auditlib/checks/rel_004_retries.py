"""REL-004: retries with backoff around calls to external services."""
from __future__ import annotations

import ast
import re

from ..facts.external_calls import HTTP_VERBS, external_calls
from ..findings import Location, Severity
from ..code.pyast import dotted, literal, of_type
from ..code.pyresolve import parents
from ..code.pyresolve import Project
from ..facts.resilience import builtin_retries, has_retry, retry_loop
from . import check

SERVICE = {"smtp": "SMTP", "http": "HTTP", "storage": "object storage", "payments": "Stripe", "email": "SendGrid"}


def network_sites(ctx):
    """External calls that go over the network: requests and client methods, plus the
    SMTP constructor (it connects); HTTP client constructors do not."""
    return [c for c in external_calls(ctx) if c.kind != "ctor" or c.library in ("smtplib",)]


IDEMPOTENT = {"get", "head", "options", "put", "delete"}
IDEMPOTENCY_KEY = re.compile(r"idempot", re.I)


def _verb(c) -> str:
    """The HTTP method of a request call, lower-case, '' when not known statically."""
    attr = dotted(c.call.func).split(".")[-1].lower()
    if attr in ("request", "stream"):
        m = next((k.value for k in c.call.keywords if k.arg == "method"), None)
        if m is None and c.call.args:
            m = c.call.args[0]
        v = literal(m) if m is not None else None
        return v.lower() if isinstance(v, str) else ""
    return attr


def _has_idempotency_key(c) -> bool:
    """An ``Idempotency-Key`` header or ``idempotency_key=`` argument on the call."""
    for k in c.call.keywords:
        if k.arg and IDEMPOTENCY_KEY.search(k.arg):
            return True
    for n in of_type(c.call, (ast.Constant, ast.Name, ast.Attribute)):
        text = n.value if isinstance(n, ast.Constant) and isinstance(n.value, str) else \
            (n.id if isinstance(n, ast.Name) else getattr(n, "attr", ""))
        if isinstance(text, str) and IDEMPOTENCY_KEY.search(text):
            return True
    return False


def single_use(c) -> str:
    """Why a blind retry of this call is wrong ('' when a retry is safe): sending an e-mail
    (SMTP, SendGrid ``send``: a retry after a lost response sends it twice), a POST / PATCH
    without an idempotency key (creates or charges twice; captcha and OAuth code exchanges
    are single-use). Stripe is left out: stripe-python's own retries add an idempotency key."""
    if c.library == "stripe":
        return ""
    if c.service == "smtp":
        return "sends an e-mail"
    verb = _verb(c)
    if c.service == "email" and verb in ("send", "post", "patch"):
        return "sends an e-mail" if verb == "send" else f"a {verb.upper()} to the e-mail provider"
    if verb in ("post", "patch") and not _has_idempotency_key(c):
        return f"a {verb.upper()} without an idempotency key"
    return ""


def _owner(c):
    """What groups the call sites of one client: the class whose methods make the calls (an
    API client class), else the client object the call goes through, else the function."""
    if c.func is not None:
        p = parents(c.src.tree).get(id(c.func))
        if isinstance(p, ast.ClassDef):
            return ("class", p.name, id(p))
    if c.binding is not None:
        return ("client", id(c.binding))
    return ("func", id(c.func))


def _where(owner, c) -> str:
    if owner[0] == "class":
        return f"`{owner[1]}`"
    return f"`{c.func.name}`" if c.func else "module level"


@check("REL-004", "reliability", "Retries with backoff for transient errors")
def retries(ctx):
    """Each function that calls an external service (SMTP, HTTP APIs, S3, Stripe,
    SendGrid) and whether a transient failure (timeout, connection reset, 5xx, 429) is
    retried with backoff: a retry decorator (tenacity, backoff, stamina) on the function
    or on a caller up to two levels (functions handed to ``asyncio.to_thread`` /
    ``add_task`` count as called), a queue task that the broker retries (Celery
    ``autoretry_for`` / ``max_retries``, RQ ``retry=Retry(...)``, Dramatiq actors, which
    retry by default, arq ``retries``; an instance registered as an actor,
    ``dramatiq.actor(Task(), retry_when=...)``, counts for its methods),
    ``tenacity.AsyncRetrying`` blocks, a hand-written loop with ``try`` and a ``sleep``,
    or the library's own retries: botocore retries by default (reported as INFO: they
    count), Stripe when ``max_network_retries`` is set above 0 (older stripe-python
    releases default to 0), httpx transports with ``retries=``, requests sessions with a
    mounted ``Retry``.

    Why: transient network errors are routine in production; without a retry the user
    sees a 500, or a background pass is lost until the next one. RECOMMENDATION per client
    with no retry (resilience, not a launch risk: calibrated on real code, a reviewer
    rated nearly every such finding below a WARNING: callers in periodic loops retry on
    their next tick, model listings and admin one-offs can simply be repeated): the call
    sites of one client object, or the methods of one class that make them (an API
    client class), or one function, are one finding with every location. A retry loop
    without any sleep (hammering a struggling service) is a WARNING: it makes an outage
    worse.
    Not flagged: operations a blind retry would repeat (sending an e-mail, a POST or
    PATCH without an idempotency key: creating a resource, capturing a payment, verifying
    a single-use captcha or OAuth code), webhook signature checks and other local
    library calls, presigned URL generation, HTTP client constructors, tests.
    """
    chk = retries.check
    proj = Project.of(ctx)
    groups: dict[tuple, object] = {}
    methods: dict[tuple, set] = {}
    libs: dict[tuple, set] = {}
    builtin_seen: set[str] = set()
    out = []
    for c in network_sites(ctx):
        name = SERVICE.get(c.service, c.service)
        builtin = builtin_retries(ctx, c)
        if builtin:
            if c.library not in builtin_seen:
                builtin_seen.add(c.library)
                out.append(chk.finding(ctx, Severity.INFO, f"{name} calls retried by the library ({c.library})",
                                       f"{builtin}; these count as retries with backoff.", "", c.src.path, c.line,
                                       key=f"builtin:{c.library}"))
            continue
        if c.library == "sendgrid" and _verb(c) not in HTTP_VERBS | {"send"}:
            continue  # python_http_client builds the URL (`domains._(id).validate`): no request yet
        if single_use(c) or has_retry(proj, c):
            continue
        loop = retry_loop(c)
        if loop == "backoff":
            continue
        owner = _owner(c)
        group = (c.src.path, owner, c.service, loop)
        fname = c.func.name if c.func else "module level"
        if group in groups:
            f = groups[group]
            if all(l.line != c.line for l in f.locations):
                f.locations.append(Location(c.src.path, c.line, c.line, c.src.line(c.line)[:300]))
            methods[group].add(fname)
            libs[group].add(c.library)
            continue
        where = _where(owner, c)
        methods[group] = {fname}
        libs[group] = {c.library}
        if loop == "no-backoff":
            f = chk.finding(ctx, Severity.WARNING, f"{name} retry loop without backoff in {where}",
                            "The call is retried in a loop with no sleep between attempts: during an "
                            "outage it hammers the failing service and exhausts the attempts in "
                            "milliseconds.",
                            "Sleep with exponential backoff and jitter between attempts, or use "
                            "tenacity (`@retry(wait=wait_exponential_jitter(), stop=stop_after_attempt(3))`).",
                            c.src.path, c.line, key=f"no-backoff:{c.service}")
        else:
            extra = (" Stripe's `max_network_retries` is not set (older stripe-python releases default to 0 "
                     "retries; set it explicitly so behaviour does not depend on the installed version)."
                     if c.library == "stripe" else "")
            f = chk.finding(
                ctx, Severity.RECOMMENDATION, f"{name} call without retries in {where}",
                f"A transient failure of the {name} call ({c.library}) is not retried: no retry decorator on "
                "this function or its callers, no retry loop, no library-level retries." + extra,
                "Retry transient errors with exponential backoff and a bounded number of attempts "
                "(tenacity: `@retry(retry=retry_if_exception_type((OSError, TimeoutError)), "
                "wait=wait_exponential_jitter(1, 10), stop=stop_after_attempt(3))`), only for idempotent "
                "operations or with an idempotency key."
                + (" For Stripe set `stripe.max_network_retries = 2`." if c.library == "stripe" else ""),
                c.src.path, c.line, key=f"no-retry:{c.service}")
        groups[group] = f
        out.append(f)
    for group, f in groups.items():
        fns = methods[group]
        if len(f.locations) > 1:
            listed = ", ".join(f"`{n}`" for n in sorted(fns))
            f.message = (f"{len(f.locations)} calls in {listed} (one finding). "
                         + f.message.replace("A transient failure of the", "A transient failure of each")
                         .replace("this function or its callers", "these functions or their callers"))
            if len(libs[group]) > 1:
                first = f.message.index(" call (") + len(" call (")
                f.message = (f.message[:first] + ", ".join(sorted(libs[group]))
                             + f.message[f.message.index(")", first):])
    yield from out
