"""OBS-005: structured logging, PII redaction, request ids, no personal data in log calls."""
from __future__ import annotations

import ast
import re

from ..findings import Severity
from ..code.pyast import dotted, of_type
from ..code.pyresolve import Project, enclosing_function, parents
from ..facts.routes import app_anchor
from . import check

LOG_METHODS = {"debug", "info", "warning", "warn", "error", "exception", "critical", "fatal", "log", "msg"}
LOGGER_NAME = re.compile(r"(^|[._])(log|logger|logging|_log|audit_log|structlog)$", re.I)
PII = (r"(^|_)(e_?mail|phone|mobile|msisdn|address|street|postcode|postal_code|zip_code|ssn|iban|card_number|"
       r"date_of_birth|dob)(_?(address|number|raw|value))?$")
NOT_PII = re.compile(r"^(ip|remote|client|server|host|bind|mac|email_from|from_email|sender|smtp|mail_from)", re.I)
# a name for the slot that holds personal data, not the data: the env var, LDAP attribute,
# form field, column or claim *named* email (``ENV_LDAP_ATTR_EMAIL``, ``config.attr_email``)
SLOT = re.compile(r"(^|_)(attr|attribute|field|column|col|key|claim|env|var|header|param|setting)(_|$)", re.I)
SAFE_WRAPPER = re.compile(r"mask|redact|scrub|anonymi|pseudonymi|hash|obfuscat|sha\d*|len$|bool$|domain", re.I)
STRUCTURED = re.compile(r"JsonFormatter|jsonlogger|json_log_formatter|structlog|ecs_logging|"
                        r"logstash|JSONRenderer|serialize\s*=\s*True", re.I)
REDACTION = re.compile(r"redact|mask|scrub|pii|sanitiz|anonymi", re.I)
REQUEST_ID = re.compile(r"asgi_correlation_id|CorrelationIdMiddleware|x-request-id|x-correlation-id|"
                        r"request_id|correlation_id|trace_id|starlette_context|RequestIdMiddleware", re.I)
BODY_CALLS = {"body", "json", "form", "stream"}
DUMP_CALLS = {"model_dump", "dict", "model_dump_json", "json"}


def _is_logger(call: ast.Call, loggers: set[str]) -> bool:
    if not (isinstance(call.func, ast.Attribute) and call.func.attr in LOG_METHODS):
        return False
    recv = dotted(call.func.value)
    return bool(recv) and (recv in loggers or bool(LOGGER_NAME.search(recv)))


def _loggers(tree: ast.AST) -> set[str]:
    """Names bound to ``logging.getLogger(...)`` / ``structlog.get_logger(...)``."""
    out = set()
    for n in of_type(tree, ast.Assign):
        if isinstance(n.value, ast.Call) and re.search(r"get_?logger", dotted(n.value.func), re.I):
            out |= {dotted(t) for t in n.targets}
    return out


def _request_body_names(func: ast.AST) -> set[str]:
    """Locals assigned from ``await request.body()`` / ``.json()`` / ``.form()``."""
    out = set()
    for n in of_type(func, ast.Assign):
        v = n.value.value if isinstance(n.value, ast.Await) else n.value
        if isinstance(v, ast.Call) and isinstance(v.func, ast.Attribute) and v.func.attr in BODY_CALLS \
                and re.search(r"request|req$", dotted(v.func.value), re.I):
            out |= {t.id for t in n.targets if isinstance(t, ast.Name)}
    return out


def _problems(arg: ast.AST, pii: re.Pattern, body_names: set[str]):
    """(kind, expression) of PII or raw request bodies in a log argument, skipping
    values wrapped in a mask/redact/hash call."""
    stack = [arg]
    while stack:
        n = stack.pop()
        if isinstance(n, ast.Call):
            name = dotted(n.func).split(".")[-1]
            if SAFE_WRAPPER.search(name):
                continue
            if name in BODY_CALLS and re.search(r"request|req$", dotted(n.func.value) if isinstance(n.func, ast.Attribute) else "", re.I):
                yield "raw request body", dotted(n.func)
                continue
            if name in DUMP_CALLS and isinstance(n.func, ast.Attribute) and isinstance(n.func.value, ast.Name) \
                    and n.func.value.id in ("body", "payload", "data", "request_body"):
                yield "raw request body", dotted(n.func)
                continue
        if isinstance(n, ast.Name) and n.id in body_names:
            yield "raw request body", n.id
            continue
        if isinstance(n, (ast.Name, ast.Attribute)):
            last = dotted(n).split(".")[-1]
            m = pii.search(last)
            if m and not NOT_PII.search(last) and not SLOT.search(last[: m.start() + 1]):
                yield "personal data", dotted(n)
                continue
        stack.extend(ast.iter_child_nodes(n))


def _needles(rx: re.Pattern) -> tuple[str, ...] | None:
    """Lower-case literals one of which is in the (lower-cased, ASCII) text of every
    match of ``rx``: the literal head of each ``|`` alternative. None (no prefilter)
    unless ``rx`` is case-insensitive, not verbose, ASCII and flat (no groups or classes)."""
    pat = rx.pattern
    if not rx.flags & re.I or rx.flags & re.X or not pat.isascii() or any(c in pat for c in "()[]"):
        return None
    out = []
    for alt in pat.split("|"):
        head = re.match(r"[^\\.^$*+?{}]*", alt).group()
        if alt[len(head):len(head) + 1] in ("*", "?", "{", "+"):
            head = head[:-1]  # the last character is quantified (maybe absent)
        if not head:
            return None
        out.append(head.lower())
    return tuple(out)


def _scan_text(ctx, rx: re.Pattern) -> str | None:
    """First ``file:line`` in app code or logging config files whose text matches ``rx``.
    A file is split into lines only when its whole text matches (a line's match is a
    match of the text); an ASCII file is skipped first when it has none of ``rx``'s
    literal heads (:func:`_needles`: under ``re.I`` ASCII text only matches ASCII
    letters, so lower-casing decides it exactly)."""
    files = ctx.layout.app_sources(ctx.index) + ctx.index.select(
        ["*logging*.yaml", "*logging*.yml", "*logging*.ini", "*logging*.json", "*log_config*", "*.toml"])
    needles = _needles(rx)
    for f in files:
        text = f.text
        if not text:
            continue
        if needles is not None and text.isascii():
            low = text.lower()
            if not any(n in low for n in needles):
                continue
        if not rx.search(text):
            continue
        for i, line in enumerate(f.lines, 1):
            if rx.search(line) and not line.lstrip().startswith("#"):
                return f"{f.path}:{i}"
    return None


MASKING_CALL = re.compile(r"^(sub|subn)$|mask|redact|scrub|anonymi|obfuscat", re.I)
RECORD_PARTS = {"msg", "args", "message", "extra", "__dict__"}


def _masks(fn: ast.AST) -> bool:
    """The function rewrites what gets logged: it calls a substitution or masking
    function (``re.sub``, ``PATTERN.sub``, ``mask_email``)."""
    return any(MASKING_CALL.search(dotted(c.func).split(".")[-1]) for c in of_type(fn, ast.Call))


def _rewrites_record(fn: ast.AST) -> bool:
    """A ``filter(record)`` that writes the record (``record.msg = ...``, ``record.args = ...``,
    ``setattr(record, ...)``, ``record.__dict__[k] = ...``) or a processor that writes the
    event dict it returns (``event_dict[k] = ...``)."""
    for n in of_type(fn, (ast.Assign, ast.AugAssign)):
        targets = n.targets if isinstance(n, ast.Assign) else [n.target]
        for t in targets:
            if isinstance(t, ast.Attribute) and t.attr in RECORD_PARTS:
                return True
            if isinstance(t, ast.Subscript):
                return True
    return any(dotted(c.func) == "setattr" for c in of_type(fn, ast.Call))


def _referenced_names(proj, ctx) -> set[str]:
    """Names used anywhere in app code other than by their definition (``addFilter(Redact())``,
    ``processors=[redact_pii]``) plus the last segment of dotted strings (dictConfig's
    ``"()": "app.logging.RedactFilter"``)."""
    out = set()
    for src in proj.files:
        if not ctx.layout.is_app(src.path):
            continue
        for n in of_type(src.tree, (ast.Name, ast.Attribute, ast.Constant)):
            if isinstance(n, ast.Name):
                out.add(n.id)
            elif isinstance(n, ast.Attribute):
                out.add(n.attr)
            elif isinstance(n.value, str) and "." in n.value and " " not in n.value:
                out.add(n.value.rsplit(".", 1)[-1])
    return out


def redaction_layer(ctx, proj) -> tuple[str, int, str] | None:
    """(file, line, what) of a redaction applied to every log record: a ``logging.Filter``
    whose ``filter`` rewrites the record through a substitution/masking call, a
    ``Formatter`` whose ``format`` masks its output, or a structlog / loguru processor
    (a function taking the event dict or record that masks and writes it back), in use
    (referenced outside its definition: ``addFilter(...)``, ``processors=[...]``,
    ``logger.patch(...)``, a dictConfig ``"()"`` path)."""
    used = None
    for src in proj.files:
        if not ctx.layout.is_app(src.path) or src.tree is None:
            continue
        candidates = []
        for cls in of_type(src.tree, ast.ClassDef):
            for m in cls.body:
                if isinstance(m, (ast.FunctionDef, ast.AsyncFunctionDef)) and m.name in ("filter", "format") \
                        and _masks(m) and (m.name == "format" or _rewrites_record(m)):
                    candidates.append((cls.name, m.lineno, f"`{cls.name}.{m.name}`"))
        for fn in of_type(src.tree, (ast.FunctionDef, ast.AsyncFunctionDef)):
            params = [a.arg for a in fn.args.args]
            if ("event_dict" in params or "record" in params[:1]) and _masks(fn) and _rewrites_record(fn):
                candidates.append((fn.name, fn.lineno, f"`{fn.name}`"))
        if not candidates:
            continue
        used = used if used is not None else _referenced_names(proj, ctx)
        for name, line, what in candidates:
            if name in used:
                return src.path, line, what
    return None


@check("OBS-005", "observability", "Logging: structure, PII, request ids")
def logging_hygiene(ctx):
    """Log calls (``logger.info/...`` on names bound to ``getLogger`` or named like a
    logger, structlog included) whose arguments (positional, keyword, ``extra=``,
    f-string parts) carry personal data (identifiers named email / phone / address /
    postcode / IBAN ...) not wrapped in a mask/redact/hash call, or a raw request body
    (``await request.body()`` / ``.json()`` / ``.form()``, also through a local variable,
    or ``body.model_dump()``). Project-wide: a JSON/structured formatter (structlog,
    python-json-logger, ecs-logging, loguru ``serialize=True``), a redaction filter or
    processor, request-id propagation (asgi-correlation-id, an X-Request-ID middleware,
    a ``request_id`` contextvar).

    Why: logs are copied to many systems and kept for long; personal data there is a
    GDPR liability, and request bodies carry passwords and card data. Each such log call
    is a WARNING. Plain-text logs (hard to search and alert on), no request id (a
    failing request cannot be traced across log lines) and no redaction filter (when
    the app stores personal data) are RECOMMENDATIONs at the logging setup or the
    ``FastAPI()`` call.
    Not flagged: ids (``booking.id``), the sender address (``email_from``), IP
    addresses, names of the slot that holds personal data rather than the data (an env
    var, attribute, field, column, key or claim named email: ``ENV_LDAP_ATTR_EMAIL``,
    ``config.attr_email``, ``field_email``), masked values (``mask_email(user.email)``), ``len(...)``; log levels are
    left to review. Personal data at any call site when redaction happens at the logging
    layer, which covers every call site: a ``logging.Filter`` whose ``filter`` rewrites
    the record through a substitution or masking call, a ``Formatter`` whose ``format``
    masks, a structlog processor or loguru patcher that masks the event, in use
    (``addFilter``, ``processors=[...]``, a dictConfig ``"()"`` path). A filter that
    rewrites nothing does not count; raw request bodies stay flagged (key masking does not
    reach inside a body logged as one string).
    """
    chk = logging_hygiene.check
    pii = re.compile(ctx.config.get("log_pii_names", PII), re.I)
    proj = Project.of(ctx)
    layer = redaction_layer(ctx, proj)
    setup = None
    handles_pii = False
    for src in proj.files:
        if not ctx.layout.is_app(src.path):
            continue
        loggers = _loggers(src.tree)
        calls = of_type(src.tree, ast.Call)
        up = None
        body_names: dict[int, set[str]] = {}
        for n in calls:
            if not _is_logger(n, loggers):
                continue
            if up is None:
                up = parents(src.tree)
            fn = enclosing_function(n, up)
            if fn is not None and id(fn) not in body_names:
                body_names[id(fn)] = _request_body_names(fn)
            names = body_names.get(id(fn), set()) if fn is not None else set()
            args = list(n.args) + [k.value for k in n.keywords if k.arg not in ("exc_info", "stack_info")]
            hit = next((p for a in args for p in _problems(a, pii, names)
                        if not (layer and p[0] == "personal data")), None)
            if hit:
                kind, expr = hit
                yield chk.finding(ctx, Severity.WARNING, f"Log call writes {kind} (`{expr}`)",
                                  f"`{dotted(n.func)}(...)` logs `{expr}` unmasked: logs are shipped to "
                                  "third parties and retained for months, so personal data (or request "
                                  "bodies with credentials) there is a privacy breach waiting to happen.",
                                  "Log an id instead, or wrap the value in a masking helper "
                                  "(`mask_email(...)`), and add a redaction filter to the log handlers.",
                                  src.path, n.lineno, key=f"{kind}:{expr}")
        if setup is None:
            setup = next(((src.path, n.lineno) for n in calls if dotted(n.func).split(".")[-1] in (
                "basicConfig", "dictConfig", "fileConfig", "configure_logging", "setup_logging")), None)
        if not handles_pii:
            for n in of_type(src.tree, (ast.AnnAssign, ast.Assign)):
                targets = [n.target] if isinstance(n, ast.AnnAssign) else n.targets
                if any(isinstance(t, ast.Name) and pii.search(t.id) and not NOT_PII.search(t.id) for t in targets):
                    handles_pii = True
                    break
    file, line = setup or app_anchor(ctx)
    if not _scan_text(ctx, STRUCTURED):
        yield chk.finding(ctx, Severity.RECOMMENDATION, "Logs are plain text, not structured (JSON)",
                          "No JSON formatter or structured logger was found: production logs cannot be queried by "
                          "field (request id, status, org) nor alerted on reliably.",
                          "Use python-json-logger's JsonFormatter (or structlog's JSONRenderer) in production "
                          "and include request id, route and status in every line.", file, line, key="structured")
    if not _scan_text(ctx, REQUEST_ID):
        yield chk.finding(ctx, Severity.RECOMMENDATION, "No request-id propagation",
                          "No request-id middleware or contextvar was found: the log lines of one failing request "
                          "cannot be correlated, nor matched with the client's report.",
                          "Add asgi-correlation-id's CorrelationIdMiddleware (X-Request-ID) and its log filter.",
                          file, line, key="request-id")
    if handles_pii and not layer and not any(REDACTION.search(n.name) for s in proj.files if ctx.layout.is_app(s.path)
                               for n in of_type(s.tree, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))):
        yield chk.finding(ctx, Severity.RECOMMENDATION, "No PII redaction in logging",
                          "The app stores personal data (email/phone/address fields) but has no redaction filter "
                          "or masking helper: one careless log call leaks it.",
                          "Add a logging.Filter (or structlog processor) that masks emails and phone numbers in "
                          "messages and extras, attached to every handler.", file, line, key="redaction")
