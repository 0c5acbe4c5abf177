"""REL-003: timeouts on calls to external services, with the libraries' effective defaults."""
from __future__ import annotations

import ast

from ..engines.ruff import RuffUnavailable, ruff_hits
from ..facts.external_calls import external_calls, kw
from ..findings import Severity, not_verified
from ..code.pyast import dotted, literal, of_type, walk
from ..code.pyresolve import Project
from . import check

FIX_SMTP = "Pass `timeout=` (e.g. 10 s) to `smtplib.SMTP(...)` / `SMTP_SSL(...)`."


def _is_none(node) -> bool:
    return node is not None and literal(node) is None


def _project_sets(ctx, needle) -> bool:
    """Whether any project file calls / assigns something matching ``needle(text)``."""
    return any(needle(f.text or "") for f in ctx.layout.app_sources(ctx.index))


def _config_of(call: ast.Call, src, proj) -> ast.Call | None:
    """The ``botocore.config.Config(...)`` passed as ``config=`` (inline or a module name)."""
    node = kw(call, "config")
    if isinstance(node, ast.Call):
        return node
    if isinstance(node, (ast.Name, ast.Attribute)):
        name = dotted(node)
        for n in walk(src.tree):
            if isinstance(n, ast.Assign) and isinstance(n.value, ast.Call) and any(dotted(t) == name for t in n.targets):
                return n.value
    return None


@check("REL-003", "reliability", "Timeouts on external calls", engines=("ruff",))
def external_timeouts(ctx):
    """Every call to an external service in application code and the timeout that is
    actually in effect, explicit or the library's default:

    - ``smtplib.SMTP``/``SMTP_SSL`` without ``timeout=`` (and no
      ``socket.setdefaulttimeout``): no timeout at all — WARNING;
    - ``requests`` calls without ``timeout`` (from the Ruff engine, rule S113) and calls
      on a ``requests.Session`` without ``timeout`` (Ruff cannot know the receiver):
      requests has no default timeout — WARNING;
    - ``urllib.request.urlopen`` without ``timeout``: none — WARNING;
    - httpx clients/calls with ``timeout=None`` (unbounded) — WARNING; without a
      ``timeout`` httpx's 5 s default is in effect and nothing is reported;
    - ``aiohttp.ClientSession`` without ``timeout``: defaults in effect (total 300 s) —
      RECOMMENDATION; ``ClientTimeout(total=None)`` / ``timeout=None`` — WARNING;
    - ``boto3.client/resource`` without ``Config(connect_timeout, read_timeout)``:
      botocore defaults in effect (60 s connect, 60 s read, with retries) —
      RECOMMENDATION;
    - Stripe used without a configured HTTP client timeout: the client's 80 s default is
      in effect — RECOMMENDATION (one finding, at the first Stripe call);
    - ``SendGridAPIClient`` without a timeout set on its client: python-http-client
      defaults to none — WARNING.

    Why: a dependency that stops answering holds a worker (or the event loop's task)
    forever; under load every worker ends up waiting and the API stops responding.
    One finding per defect: calls of one kind in one function (connection fallbacks,
    ``if/elif`` branches of one request helper) are one finding at the first call,
    with every call as a location.
    Not flagged: explicit finite timeouts, httpx/aiosmtplib defaults (bounded and short),
    code outside the application (tests, migrations).
    """
    chk = external_timeouts.check
    yield from _one_per_function(ctx, _findings(ctx, chk))


def _enclosing_def(src, line: int):
    """The innermost function of ``src`` whose lines hold ``line``, or None."""
    best = None
    for fn in of_type(src.tree, (ast.FunctionDef, ast.AsyncFunctionDef)):
        if fn.lineno <= line <= (fn.end_lineno or fn.lineno) and (best is None or fn.lineno >= best.lineno):
            best = fn
    return best


def _one_per_function(ctx, findings):
    """One finding per defect: the calls of one kind (same title) in one function
    (``for method in fallbacks: smtplib.SMTP(...) / SMTP_SSL(...)``) are the same
    missing timeout, fixed in one place; the first call carries the finding and every
    call is a location."""
    groups: dict[tuple, list] = {}
    order: list[tuple] = []
    for f in findings:
        loc = f.locations[0] if f.locations else None
        src = ctx.index.get(loc.file) if loc is not None and loc.line else None
        fn = _enclosing_def(src, loc.line) if src is not None and src.tree is not None else None
        key = (loc.file, id(fn), f.title, f.severity) if fn is not None else (id(f),)
        if key not in groups:
            groups[key] = []
            order.append(key)
        groups[key].append(f)
    for key in order:
        group = sorted(groups[key], key=lambda f: f.locations[0].line if f.locations else 0)
        first = group[0]
        if len(group) > 1:
            first.locations += [loc for f in group[1:] for loc in f.locations]
            lines = ", ".join(str(f.locations[0].line) for f in group)
            first.message += f" The same function makes {len(group)} such calls (lines {lines})."
        yield first


def _findings(ctx, chk):
    proj = Project.of(ctx)
    calls = external_calls(ctx)
    has_socket_default = _project_sets(ctx, lambda t: "setdefaulttimeout(" in t)
    seen: set[tuple[str, int]] = set()

    def emit(sev, title, msg, fix, c, key):
        if (c.src.path, c.line) in seen:
            return None
        seen.add((c.src.path, c.line))
        return chk.finding(ctx, sev, title, msg, fix, c.src.path, c.line, key=key)

    stripe_first = None
    for c in calls:
        f = None
        t = kw(c.call, "timeout")
        if c.library == "smtplib" and c.kind == "ctor":
            given = t if t is not None else (c.call.args[3] if len(c.call.args) > 3 else None)
            if given is None and not has_socket_default or _is_none(given):
                f = emit(Severity.WARNING, "SMTP connection without a timeout",
                         "smtplib uses the socket default timeout, which is none: a mail server that "
                         "accepts the connection and stalls blocks this sender forever.",
                         FIX_SMTP, c, "smtp")
        elif c.library == "requests" and c.kind == "method" and (t is None or _is_none(t)):
            f = emit(Severity.WARNING, "requests.Session call without a timeout",
                     "requests has no default timeout: the call waits forever on a silent server.",
                     "Pass `timeout=(connect, read)` (e.g. `(3.05, 10)`) to every call.", c, "requests")
        elif c.library == "urllib" and t is None and len(c.call.args) < 3:
            f = emit(Severity.WARNING, "urlopen without a timeout",
                     "urllib.request.urlopen uses the socket default timeout, which is none.",
                     "Pass `timeout=` to urlopen, or use httpx with its default 5 s timeout.", c, "urllib")
        elif c.library == "httpx" and _is_none(t):
            f = emit(Severity.WARNING, "httpx with timeout disabled",
                     "`timeout=None` turns off httpx's 5 s default: the call can wait forever.",
                     "Remove `timeout=None` or pass a finite `httpx.Timeout(...)`.", c, "httpx")
        elif c.library == "aiohttp" and c.kind in ("ctor", "request"):
            total = kw(t, "total") if isinstance(t, ast.Call) else None
            if _is_none(t) or (isinstance(t, ast.Call) and total is not None and _is_none(total)):
                f = emit(Severity.WARNING, "aiohttp session without a total timeout",
                         "The total timeout is disabled: a stalled server holds the request forever.",
                         "Pass `timeout=aiohttp.ClientTimeout(total=..., connect=...)`.", c, "aiohttp")
            elif t is None:
                f = emit(Severity.RECOMMENDATION, "aiohttp session with default timeouts (total 300 s)",
                         "aiohttp's defaults are in effect: 300 s total and 30 s to connect, long for a "
                         "request path.", "Pass `timeout=aiohttp.ClientTimeout(total=10, connect=3)`.",
                         c, "aiohttp-default")
        elif c.library == "boto3" and c.kind == "ctor":
            cfg = _config_of(c.call, c.src, proj)
            have = {k.arg for k in cfg.keywords} if cfg is not None else set()
            if not {"connect_timeout", "read_timeout"} <= have:
                missing = " and ".join(sorted({"connect_timeout", "read_timeout"} - have))
                f = emit(Severity.RECOMMENDATION, f"boto3 client without {missing}",
                         "botocore defaults are in effect: connect_timeout=60 s and read_timeout=60 s "
                         "(with its built-in retries, one S3 call can take minutes before failing).",
                         "Pass `config=botocore.config.Config(connect_timeout=5, read_timeout=30, "
                         "retries={'mode': 'standard'})`.", c, "boto3")
        elif c.library == "sendgrid" and c.kind == "ctor":
            if not _project_sets(ctx, lambda t: ".timeout =" in t or ".timeout=" in t):
                f = emit(Severity.WARNING, "SendGrid client without a timeout",
                         "SendGridAPIClient's python-http-client defaults to timeout=None (urllib with no "
                         "timeout): a stalled API call blocks the sender forever.",
                         "Set `sg.client.timeout = 10` after creating the client (or send through a "
                         "client with a finite timeout).", c, "sendgrid")
        elif c.library == "stripe" and stripe_first is None:
            stripe_first = c
        if f is not None:
            yield f
    if stripe_first is not None and not _project_sets(
            ctx, lambda t: "default_http_client" in t or "http_client=" in t or "api_timeout" in t):
        f = emit(Severity.RECOMMENDATION, "Stripe calls with the client's default 80 s timeout",
                 "No HTTP client timeout is configured for Stripe: the library default of 80 s is in "
                 "effect, long enough to exhaust request workers during a Stripe incident.",
                 "Configure `stripe.default_http_client = stripe.HTTPXClient(timeout=20)` (or pass "
                 "`http_client=` to `StripeClient`).", stripe_first, "stripe")
        if f is not None:
            yield f

    try:
        hits = ruff_hits(ctx, ("S113",))
    except RuffUnavailable as exc:
        yield not_verified(chk.id, chk.area, "requests calls without timeout", str(exc))
        return
    for h in hits:
        if ctx.layout.is_app(h.file) and (h.file, h.line) not in seen:
            seen.add((h.file, h.line))
            yield chk.finding(ctx, Severity.WARNING, "HTTP call without a timeout",
                              f"{h.message} (Ruff S113). requests has no default timeout: the call waits "
                              "forever on a server that stops answering.",
                              "Pass `timeout=(connect, read)` to every requests call.", h.file, h.line,
                              key="S113")
