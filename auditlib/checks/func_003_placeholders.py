"""FUNC-003: hard-coded placeholder values and local URLs in application code."""
from __future__ import annotations

import ast
import re

from ..findings import Location, Severity
from ..code.pyast import dotted, parent_map, string_constants
from ..facts.settings_model import settings_model
from . import check

PATTERNS = [
    ("placeholder domain", re.compile(r"\b(?:[\w-]+\.)*example\.(?:com|org|net)\b", re.I)),
    ("local URL", re.compile(r"\bhttps?://(?:localhost|127\.0\.0\.1|0\.0\.0\.0)\b", re.I)),
    ("placeholder value", re.compile(r"\bplaceholder\b|\bchange[-_]?me\b|\bYOUR_\w+_HERE\b", re.I)),
]
# keyword arguments / dict keys whose value is text for people (documentation, form
# hints, labels), never a value the code uses
TEXT_KEYS = {"description", "help", "help_text", "title", "summary", "example", "examples",
             "placeholder", "label", "hint", "tooltip", "doc", "comment", "deprecated_reason"}
# translation functions: their argument is a message id or a message with placeholders
I18N = {"_", "t", "gettext", "ngettext", "pgettext", "lazy_gettext", "gettext_lazy", "_l",
        "ugettext", "ugettext_lazy", "translate"}
# callees whose first argument / url / base_url is the address the code itself talks to
CLIENT_ARGS = {"url", "base_url", "endpoint", "endpoint_url"}
CONTAINERS = (ast.List, ast.Tuple, ast.Set)
# interactive prompts: their ``default=`` is shown to the person typing and editable
PROMPT_CALLS = {"prompt", "ask"}
# a list of addresses that are admitted, not used: CORS origins, OAuth redirect URIs, trusted hosts
ALLOW_LIST = re.compile(r"origin|cors|redirect_?ur[il]s|callback_?ur[il]s|allow|trusted|whitelist", re.I)
REDIRECT_LIST = re.compile(r"redirect|callback", re.I)
# a setting that builds what users see or are sent to (links, senders, redirects), not a service address
# words that introduce an example in prose ("for example http://localhost:11434", "e.g. you@example.com",
# "a conventional fill-in (user@example.com)"): the literal talks about such a value, it is not one
EXAMPLE_CUE = re.compile(r"\be\.\s?g\.|\bi\.\s?e\.|\bfor (example|instance)\b|\bexamples?\b|\bsuch as\b|"
                         r"\bfill-?ins?\b|\bdummy\b|\bfake\b|\bsample\b", re.I)
# names of a credential handed to a client (``api_key=``, ``token = ...``)
CREDENTIAL = re.compile(r"(^|_)(api_?key|key|token|secret|password|passwd|credentials?|auth)$", re.I)
# modules that parse a command line (a developer tool / client CLI) and those that serve the app
CLI_LIBS = {"argparse", "click", "typer"}
SERVER_LIBS = {"uvicorn", "hypercorn", "gunicorn", "fastapi", "starlette", "granian", "daphne"}
LINK_SETTING = re.compile(r"public|front_?end|site|web|(^|_)ui(_|$)|dashboard|portal|external|callback|redirect|"
                          r"return|link|absolute|origin|cors|domain|e?mail|sender|"
                          r"(^|_)(app|base|root|server|host)_?ur[il]$|^ur[il]$", re.I)


def _word_is_markup(value: str, m: re.Match) -> bool:
    """``placeholder`` as markup, not as a value: an HTML/JSX attribute
    (``placeholder="..."``), an i18n / format placeholder (``{placeholder}``,
    ``%(placeholder)s``) or a segment of a dotted message id (``form.email.placeholder``)."""
    if m.group(0).lower() != "placeholder":
        return False
    before, after = value[: m.start()], value[m.end():]
    return (bool(re.match(r"\s*=", after)) or before.endswith(("{", "%(", ".")) or after.startswith((".", "}")))


def _documentation(node: ast.Constant, up: dict) -> bool:
    """A bare string statement (an attribute docstring after an assignment, a string
    used as a comment): documentation, never a value the code uses."""
    parent = up.get(id(node))
    if isinstance(parent, ast.JoinedStr):
        parent = up.get(id(parent))
    return isinstance(parent, ast.Expr)


def _whole_text(node: ast.Constant, up: dict) -> str:
    """The literal's text with the f-string it is part of (constant parts only)."""
    parent = up.get(id(node))
    if isinstance(parent, ast.JoinedStr):
        return "".join(v.value for v in parent.values if isinstance(v, ast.Constant) and isinstance(v.value, str))
    return node.value


def _prose(text: str) -> bool:
    return len(text.split()) >= 5


def _mentioned(node: ast.Constant, value: str, m: re.Match, up: dict) -> bool:
    """The literal is prose that *mentions* the value rather than being it: the word
    ``placeholder`` in a sentence (``"must contain '%s' placeholder for username"``,
    ``"referenced by placeholder"``), a value introduced as an example in the text before
    it on the same line (``"(for example http://localhost:11434/v1)"``, ``"e.g.,"``,
    ``"Example: 'ldap.example.com'"``, ``"a conventional fill-in (user@example.com)"``),
    or a value quoted inside a sentence (``'- "Draft an email and CC john@example.com"'``,
    an example in an LLM prompt; an HTML attribute ``href="..."`` is not a quotation)."""
    if not _prose(_whole_text(node, up)):
        return False  # a value, not a sentence
    if m.group(0).lower() == "placeholder":
        return True
    line_start = value.rfind("\n", 0, m.start()) + 1
    before = value[max(line_start, m.start() - 150): m.start()]
    if EXAMPLE_CUE.search(before):
        return True
    after = value[m.end():].split("\n", 1)[0]
    for q in ('"', "'", "`"):
        i = before.rfind(q)
        # an opening quote before (an odd count on the line), its closing one after,
        # and not an attribute value (``href="...``)
        if i >= 0 and before.count(q) % 2 == 1 and q in after and not before[:i].rstrip().endswith("="):
            return True
    return False


def _text_context(node: ast.Constant, up: dict) -> bool:
    """The literal is a dict key, text for people (``description=``, ``{"placeholder": ...}``)
    or the argument of a translation function."""
    parent = up.get(id(node))
    if isinstance(parent, ast.Dict):
        if any(k is node for k in parent.keys):
            return True
        for k, v in zip(parent.keys, parent.values):
            if v is node and isinstance(k, ast.Constant) and str(k.value).lower() in TEXT_KEYS:
                return True
    holder = parent
    while isinstance(holder, CONTAINERS):  # examples=["https://hooks.example.com/XXX"]
        holder = up.get(id(holder))
    if isinstance(holder, ast.keyword) and (holder.arg or "").lower() in TEXT_KEYS:
        return True
    if isinstance(parent, ast.keyword) and parent.arg == "default" and isinstance(up.get(id(parent)), ast.Call) \
            and dotted(up.get(id(parent)).func).split(".")[-1] in PROMPT_CALLS:
        return True  # prompt("Enter the API URL", default="http://127.0.0.1:4200/api"): shown, editable
    if isinstance(parent, ast.Call) and node in parent.args and dotted(parent.func).split(".")[-1] in I18N:
        return True
    return False


def _compared_literals(sources) -> set[str]:
    """String literals the app compares values against (``if key == "YOUR_KEY_HERE":``):
    a placeholder the code itself recognises as "not configured" is a sentinel, not a leak."""
    out: set[str] = set()
    for src in sources:
        if src.tree is None:
            continue
        for n in ast.walk(src.tree):
            if isinstance(n, ast.Compare) and any(isinstance(o, (ast.Eq, ast.NotEq, ast.In, ast.NotIn)) for o in n.ops):
                out.update(c.value for c in [n.left, *n.comparators]
                           if isinstance(c, ast.Constant) and isinstance(c.value, str))
    return out


def _loopback(node: ast.Constant, value: str, m: re.Match, up: dict) -> bool:
    """A local URL the code itself talks to on purpose: its port is computed
    (``f"http://localhost:{port}"``: the code knows which local process it addresses), or the
    literal is the address handed to a client or request call (``base_url="http://127.0.0.1"``)."""
    parent = up.get(id(node))
    if isinstance(parent, ast.JoinedStr) and value.endswith(":") and m.end() == len(value) - 1:
        i = next(i for i, v in enumerate(parent.values) if v is node)
        if i + 1 < len(parent.values):
            nxt = parent.values[i + 1]
            if isinstance(nxt, ast.FormattedValue) and not isinstance(nxt.value, ast.Constant):
                return True
    holder = up.get(id(parent)) if isinstance(parent, ast.JoinedStr) else None
    expr = parent if holder is None else holder
    if isinstance(expr, ast.keyword) and (expr.arg or "") in CLIENT_ARGS:
        return True
    return False


def _dummy_credential(node: ast.Constant, up: dict) -> bool:
    """The literal stands in for a credential handed to a client inside a function: the
    value (or the fallback, ``api_key or "sk-placeholder"``) of a credential keyword
    (``api_key=``), assigned to a function-local credential variable (``api_key =
    "sk-placeholder"``), or returned by a function that otherwise returns a credential
    (``if api_key: return api_key`` ... ``return "sk-placeholder"``). Libraries that
    require a key get a dummy one for endpoints that need none; a remote that does need
    one rejects it at the first call, loudly. A module-level constant or a setting's
    default is not this (it may be what the app checks callers against)."""
    cur, parent = node, up.get(id(node))
    while isinstance(parent, (ast.BoolOp, ast.IfExp, ast.JoinedStr)):
        cur, parent = parent, up.get(id(parent))
    if isinstance(parent, ast.keyword):
        return bool(parent.arg) and bool(CREDENTIAL.search(parent.arg))
    fn = parent
    while fn is not None and not isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
        fn = up.get(id(fn))
    if fn is None:
        return False
    if isinstance(parent, (ast.Assign, ast.AnnAssign)):
        targets = parent.targets if isinstance(parent, ast.Assign) else [parent.target]
        return any(isinstance(t, ast.Name) and CREDENTIAL.search(t.id) for t in targets)
    if isinstance(parent, ast.Return):
        return any(isinstance(r, ast.Return) and isinstance(r.value, ast.Name) and CREDENTIAL.search(r.value.id)
                   for r in ast.walk(fn))
    return False


def _cli_tool(src) -> bool:
    """The module parses a command line (imports argparse, click or typer) and serves
    nothing (imports no ASGI/WSGI server nor web framework): a developer tool or client
    whose local default points at a local instance and is overridden by a flag."""
    mods = set()
    for n in ast.walk(src.tree):
        if isinstance(n, ast.Import):
            mods |= {a.name.split(".")[0] for a in n.names}
        elif isinstance(n, ast.ImportFrom) and n.module and not n.level:
            mods.add(n.module.split(".")[0])
    return bool(mods & CLI_LIBS) and not mods & SERVER_LIBS


def _native_redirect(value: str, m: re.Match) -> bool:
    """``http://127.0.0.1/callback`` without a port: the loopback redirect
    of a native or command-line OAuth client (RFC 8252 7.3: the port is chosen at
    authorisation time), correct in production, not a development leftover."""
    return m.group(0).lower().endswith("127.0.0.1") and not value[m.end():].startswith(":")


def _container_name(container: ast.AST, up: dict) -> str:
    """The name a list literal is given: the keyword or variable it is assigned to, the
    dict key it is the value of, or the function that returns it."""
    parent = up.get(id(container))
    if isinstance(parent, ast.keyword):
        return parent.arg or ""
    if isinstance(parent, (ast.Assign, ast.AnnAssign)):
        targets = parent.targets if isinstance(parent, ast.Assign) else [parent.target]
        return " ".join(dotted(t) for t in targets)
    if isinstance(parent, ast.Dict):
        for k, v in zip(parent.keys, parent.values):
            if v is container and isinstance(k, ast.Constant):
                return str(k.value)
    if isinstance(parent, ast.Return):
        cur = parent
        while cur is not None and not isinstance(cur, (ast.FunctionDef, ast.AsyncFunctionDef)):
            cur = up.get(id(cur))
        return cur.name if cur is not None else ""
    return ""


def _default_of(node: ast.AST, up: dict, src, settings: dict) -> str | None:
    """The setting whose default the literal is (a field of a settings class, an
    ``os.getenv`` / ``environ.get`` read; the settings model knows them by file and line)."""
    cur = node
    while cur is not None and not isinstance(cur, ast.stmt):
        cur = up.get(id(cur))
    if cur is None:
        return None
    for line in range(cur.lineno, (cur.end_lineno or cur.lineno) + 1):
        s = settings.get((src.path, line))
        if s is not None:
            return s.env or s.name
    return None


@check("FUNC-003", "functional", "Hard-coded placeholders and local URLs")
def placeholders(ctx):
    """String literals in application code (settings defaults included) that hold a
    placeholder: ``example.com`` addresses, ``placeholder``, ``CHANGEME``,
    ``YOUR_..._HERE``, or a URL to localhost / 127.0.0.1 / 0.0.0.0.

    Why: such values reach production whenever the environment does not override
    them: e-mails sent from ``noreply@example.com``, links in e-mails pointing at a
    developer's localhost. Reported as WARNING; one finding per value: the same literal
    at several places, or the local URLs of one list (an allow-list of origins), is one
    finding with every location. The message says whether the literal is a setting's
    default (production uses it unless the environment sets it) or hard-coded (every
    environment uses it). Local URLs judged by use: entries of an allow-list (a list
    named for CORS origins, OAuth redirect or callback URIs, allowed or trusted
    entries: ``allow_origins=[...]``, ``redirect_uris=[...]``, a function
    ``default_redirect_uris()`` returning it) are a RECOMMENDATION (they admit the user's
    own machine, not a remote host); the default of a setting that addresses a service
    (``elasticsearch = "http://localhost:9200"``, ``redis_url``: a name about no link,
    sender, redirect or public URL) is INFO (a missing override fails at connection,
    loudly). INFO too: a local URL hard-coded in a command-line tool (the module imports
    argparse / click / typer and no ASGI/WSGI server or web framework: a client or load
    generator whose default points at a local instance, overridden by a flag); a dummy
    credential handed to a client that requires one (``api_key=key or "sk-placeholder"``,
    a function-local ``api_key = "..."``, or returned by a function that otherwise returns
    the credential; a module constant or a setting's default stays a WARNING).
    Not flagged: docstrings and bare string statements (attribute docstrings after an
    assignment), comments, tests, migrations, other absolute URLs (public API
    endpoints are legitimately hard-coded); prose that mentions a value rather than
    being it (five words or more): the word ``placeholder`` in a sentence ("must contain a
    '%s' placeholder"), a value introduced as an example on its line ("for example
    http://localhost:11434", "e.g.", "Example: 'ldap.example.com'", "a fill-in
    (user@example.com)") or quoted inside the sentence (an example in an LLM prompt;
    ``href="..."`` is an attribute, not a quotation); the loopback redirect URI of a
    native or CLI OAuth client (``http://127.0.0.1/callback`` with no port in a redirect
    list, RFC 8252 7.3); text for people: dict keys, ``description=`` /
    ``help=`` / ``examples=`` / ``placeholder=`` arguments (also the items of a list given
    to them: ``examples=["https://hooks.example.com/XXX"]``) and ``{"placeholder": ...}``
    form attributes, arguments of translation functions (``_``, ``gettext``, ``t``), and the
    word ``placeholder`` used as markup (``placeholder="..."`` in HTML, ``{placeholder}`` /
    ``%(placeholder)s``, ``form.x.placeholder`` message ids); local URLs the code talks to on
    purpose (a computed port, ``f"http://localhost:{port}"``, or the ``url=`` / ``base_url=``
    of a client or request); the ``default=`` of an interactive prompt (``prompt(...)``,
    ``Prompt.ask(...)``: shown to the person typing, who edits it); a placeholder value the
    app compares against (``if key == "YOUR_KEY_HERE": disable``): a sentinel the code
    recognises as "not configured", both where it is assigned and where it is checked.
    """
    chk = placeholders.check
    by_value: dict[tuple, object] = {}
    by_container: dict[int, object] = {}
    out = []
    settings = {(s.file, s.line): s for s in settings_model(ctx).settings}
    sentinels = None
    for src in ctx.layout.app_sources(ctx.index):
        if src.tree is None:
            continue
        up = cli = None
        seen = set()
        for node, value in string_constants(src):
            for label, rx in PATTERNS:
                m = rx.search(value)
                if not m:
                    continue
                if up is None:
                    up = parent_map(src.tree)
                if _documentation(node, up) or _text_context(node, up) \
                        or (label == "placeholder value" and _word_is_markup(value, m)) \
                        or (label == "local URL" and _loopback(node, value, m, up)) or _mentioned(node, value, m, up):
                    continue
                if label == "placeholder value":
                    if sentinels is None:
                        sentinels = _compared_literals(ctx.layout.app_sources(ctx.index))
                    if value in sentinels:
                        continue  # a sentinel the code checks for ("not configured"), never used as the value
                line = node.lineno + value[: m.start()].count("\n") if node.end_lineno != node.lineno else node.lineno
                if line in seen:
                    break
                seen.add(line)
                parent = up.get(id(node))
                container = parent if isinstance(parent, CONTAINERS) else None
                setting = _default_of(node, up, src, settings)
                kind = "value"
                if label == "local URL":
                    listed = _container_name(container, up) if container is not None else ""
                    if ALLOW_LIST.search(listed):
                        if REDIRECT_LIST.search(listed) and _native_redirect(value, m):
                            continue
                        kind = "allowed"
                    elif setting and not LINK_SETTING.search(setting):
                        kind = "service"
                    elif not setting:
                        if cli is None:
                            cli = _cli_tool(src)
                        kind = "cli" if cli else kind
                elif label == "placeholder value" and not setting and _dummy_credential(node, up):
                    kind = "credential"
                existing = by_container.get(id(container)) if container is not None else None
                existing = existing or by_value.get((value, setting, kind))
                if existing is not None:
                    existing.locations.append(Location(src.path, line, line, src.line(line)[:300]))
                    if container is not None:
                        by_container.setdefault(id(container), existing)
                    break
                lit = m.group(0)
                if kind == "allowed":
                    severity = Severity.RECOMMENDATION
                    message = (f"The literal `{lit}` is hard-coded in `{listed}`, an allow-list, so every "
                               "environment, production included, admits an address on the user's own machine "
                               "(a local development server, any local app), not a remote host; development "
                               "entries do not belong in what production allows.")
                    fix = ("Read the list from settings (development values in the development environment "
                           "only), or drop the local entries in production.")
                elif kind == "cli":
                    severity = Severity.INFO
                    message = (f"The literal `{lit}` is a default of a command-line tool (the module parses "
                               "arguments and serves nothing): it points the tool at a local instance unless a "
                               "flag or the environment says otherwise, which is the usual default for a "
                               "developer tool, not a value the deployed server uses.")
                    fix = "Nothing to do unless the tool runs against production by default."
                elif kind == "credential":
                    severity = Severity.INFO
                    message = (f"The literal `{lit}` is a dummy credential handed to a client that requires "
                               "one (for endpoints that need none); an endpoint that needs a real key rejects "
                               "it at the first call, loudly.")
                    fix = "Nothing to do; make sure real endpoints still require a configured key."
                elif kind == "service":
                    severity = Severity.INFO
                    message = (f"The literal `{lit}` is the default of `{setting}`, the address of a service the "
                               "app connects to: unless the environment sets it, production connects to its own "
                               "host, which works when the service runs there and otherwise fails at the first "
                               "connection (loudly, not a wrong link or sender).")
                    fix = "Make the setting required in production, or document the default."
                else:
                    severity = Severity.WARNING
                    if setting:
                        how = (f"is the default of `{setting}`: production uses it unless the environment "
                               "sets it")
                    else:
                        how = "is hard-coded in application code: every environment, production included, uses it"
                    message = (f"The literal `{lit}` (a {label}) {how} (wrong sender addresses, links to "
                               "a developer machine, for instance).")
                    fix = ("Read the value from settings with no placeholder default, and make production "
                           "config validation reject placeholder values.")
                title = {"cli": f"Local URL `{lit}` as a command-line tool's default",
                         "credential": f"Dummy credential `{value}` for a client"}.get(kind, f"Hard-coded {label} `{lit}`")
                f = chk.finding(ctx, severity, title, message, fix, src.path, line)
                by_value[(value, setting, kind)] = f
                if container is not None:
                    by_container[id(container)] = f
                out.append(f)
                break
    for f in out:
        if len(f.locations) > 1:
            f.message += f" It occurs at {len(f.locations)} places (one finding)."
    yield from out
