"""SEC-021: cross-site scripting: unescaped templates and HTML built from strings."""
from __future__ import annotations

import ast
import re

from ..engines.ruff import RuffUnavailable, ruff_hits
from ..findings import Severity, not_verified
from ..code.pyast import NOT_LITERAL, dotted, literal, of_type, walk
from ..code.pyresolve import Project, import_map, qualify
from ..code.value_origin import Tracer, function_of, tracer_for
from ..facts.prod_validation import _negated
from ..facts.settings_model import settings_model
from . import check

TEMPLATE_EXT = (".html", ".htm", ".jinja", ".jinja2", ".j2", ".xml")
SAFE_FILTER = re.compile(r"\|\s*safe\b")
AUTOESCAPE_OFF = re.compile(r"{%-?\s*autoescape\s+(false|False)\s*-?%}")
HTML_TAG = re.compile(r"<\s*(html|body|div|p|a|span|table|form|script|h[1-6])(?=[\s/>])", re.IGNORECASE)
# select_autoescape() defaults: html, htm, xml (Starlette's Jinja2Templates uses it)
SELECT_DEFAULT = ("html", "htm", "xml")
MARKUP = {"markupsafe.Markup", "jinja2.Markup", "flask.Markup"}
HTML_RESPONSE = {"fastapi.responses.HTMLResponse", "starlette.responses.HTMLResponse"}
SEVERITY = {"param": Severity.BLOCKER, "unknown": Severity.WARNING}


@check("SEC-021", "security", "Cross-site scripting (XSS)", engines=("ruff",))
def xss(ctx):
    """Where HTML output escapes nothing:

    - Jinja ``Environment(...)`` without ``autoescape`` (Jinja's default is off) or with
      ``autoescape=False``, and ``jinja2.Template(...)`` (always unescaped); Ruff S701
      (the engine part) catches the same through aliases. ``select_autoescape()`` and
      Starlette's ``Jinja2Templates`` (which uses it) escape only ``.html/.htm/.xml``:
      HTML templates named ``.jinja``/``.j2`` under such an environment are reported.
    - ``|safe`` filters and ``{% autoescape false %}`` blocks in template files (not a
      ``{{ icon | safe }}`` of a macro parameter that every call of the macro fills with
      a string literal or another macro's output: markup written by the developers);
    - ``Markup(...)`` of a string built from non-constant values, and ``HTMLResponse``
      content built by formatting, with values traced to their origin.

    Why: user-controlled text rendered as HTML runs script in other users' browsers
    (session theft, actions on their behalf, admin portal takeover).
    Severity: HTML built from a request/handler parameter: BLOCKER; from values of
    unknown origin, autoescape off, ``|safe``, autoescape blocks: WARNING (whether
    user data reaches them cannot be told statically). A route whose handler is declared
    under a condition of the code that registers it (``if not settings.enable_share:
    return`` before ``@app.get(...)``, or inside ``if settings.enable_share:``) that does
    not hold with the settings' defaults (or cannot be evaluated) is a WARNING, the
    condition and the setting's default named: exploitable only where a deployment turns
    the feature on (a flag on by default keeps the BLOCKER).
    HTML built by a project helper (``HTMLResponse(render_page(name))``) is traced into
    the helper's ``return`` with its parameters bound to the call's arguments, so a
    helper that escapes (``html.escape``, ``markupsafe.escape``, returning
    ``Markup("...{}").format(x)``, rendering an autoescaping template) makes the call
    safe; the message names the values that can carry markup (a str request parameter,
    an uploaded file's name), never ints, UUIDs, enums or ``Literal`` values.
    Not flagged: ``Markup`` of literals, ``Markup("<b>{}</b>").format(x)`` (escapes
    ``x``, whether assigned first, returned by a helper or passed as the content), values passed through ``html.escape``/``markupsafe.escape`` or ``urlencode``
    (percent-encoded: no markup left), numbers,
    ``autoescape=True`` / ``select_autoescape`` for ``.html`` templates, the output of a
    Jinja template's ``render()`` (its environment is judged where it is created), a file
    read from a constant path (a page shipped with the app), ``json.dumps(x)`` with ``<``
    replaced (``.replace("<", "\\u003c")``: cannot close the ``<script>`` it is written
    into), and a Jinja environment or ``Template`` whose templates are all found and none
    contains an HTML tag: nginx or other config files, LLM prompts, a terminal banner,
    a CLI help text, generated Python source. An environment assigned to a local name is
    also judged by the files its ``env.from_string(...)`` / ``env.get_template(...)`` calls
    name (``files(pkg).joinpath("sdk.py.jinja").read_text()``). Templates are found in the tree from the loader's folder (a path
    literal, or relative to the module: ``Path(__file__).parent / "prompts"``,
    ``os.path.dirname(__file__)``) or written in the code (``Template("...")``,
    ``Environment(...).from_string("...")``). ``<text>`` or ``<A,B>`` in a usage line is
    not an HTML tag. One finding per environment: a Ruff S701 hit inside the
    ``Environment(...)`` call the check judged (its ``autoescape=False`` line) is the
    same defect and is not reported again.
    """
    chk = xss.check
    project = Project.of(ctx)
    sources = [s for s in ctx.layout.app_sources(ctx.index) if s.tree is not None]
    handled: set[tuple[str, int]] = set()
    partial_env = False  # an environment that escapes .html only
    for src in sources:
        if not re.search(r"jinja|Markup|HTMLResponse", src.text or ""):
            continue
        imports = {k: project.absolute(src, v) for k, v in import_map(src.tree).items()}
        tracer = tracer_for(src, project, sources, html=True)
        for call in of_type(src.tree, ast.Call):
            q = qualify(call.func, imports)
            if q in ("jinja2.Environment", "jinja2.Template", "jinja2.environment.Environment"):
                # the whole call: Ruff S701 reports the `autoescape=False` line of the same environment
                handled.update((src.path, n) for n in range(call.lineno, (call.end_lineno or call.lineno) + 1))
                ae = next((k.value for k in call.keywords if k.arg == "autoescape"), None)
                if (ae is None or literal(ae) is False) and _renders_html(ctx, src, call, tracer) is False:
                    continue  # every template it renders is found and none is HTML (config files, text)
                if ae is None or literal(ae) is False:
                    what = "without autoescape (Jinja's default is off)" if ae is None else "with autoescape=False"
                    yield chk.finding(
                        ctx, Severity.WARNING, f"Jinja {q.rsplit('.', 1)[-1]} {what}",
                        "Every `{{ value }}` is inserted into the HTML as is: any user-controlled value "
                        "becomes script in the reader's browser.",
                        "Pass `autoescape=select_autoescape([\"html\", \"htm\", \"xml\", \"jinja\"])` (or True) "
                        "and mark trusted HTML explicitly.", src.path, call.lineno, key="autoescape")
                elif isinstance(ae, ast.Call) and qualify(ae.func, imports).endswith("select_autoescape"):
                    exts = literal(ae.args[0]) if ae.args else SELECT_DEFAULT
                    partial_env = partial_env or isinstance(exts, (list, tuple)) and not {"jinja", "j2"} & set(exts)
            elif q.endswith("templating.Jinja2Templates") and not any(k.arg == "env" for k in call.keywords):
                partial_env = True
            elif q in MARKUP or q in HTML_RESPONSE:
                content = call.args[0] if call.args else next((k.value for k in call.keywords if k.arg == "content"), None)
                if content is None:
                    continue
                built, parts = tracer.string_parts(content, call)
                risky = list({p.text: p for p in sorted(parts, key=lambda p: p.kind != "param")
                              if p.kind in SEVERITY}.values())  # one mention per value, request data first
                if built and risky:
                    sev = max((SEVERITY[p.kind] for p in risky), key=lambda s: s.rank)
                    kind = "Markup()" if q in MARKUP else "HTMLResponse"
                    gate = _registration_gate(ctx, call, tracer.up)
                    if gate and sev is Severity.BLOCKER:
                        sev = Severity.WARNING  # the route exists only where the deployment opts in
                    yield chk.finding(
                        ctx, sev, f"{kind} built from unescaped values",
                        f"HTML for {kind} is assembled from "
                        + "; ".join(f"`{p.text}` ({p.detail or p.kind})" for p in risky[:4])
                        + " without escaping: markup in those values is rendered (XSS)."
                        + (f" The route is registered only when {gate}: exploitable wherever that is "
                           "enabled." if gate else ""),
                        "Render a template with autoescape, or escape each value with `markupsafe.escape` / "
                        "`html.escape` (`Markup(\"<b>{}</b>\").format(value)` escapes for you).",
                        src.path, call.lineno, key=f"{kind}:{ast.unparse(content)[:60]}")
    templates = [f for f in ctx.index if f.text is not None and f.path.endswith(TEMPLATE_EXT)
                 and not ctx.layout.is_test(f.path)]
    for f in templates:
        for n, line in enumerate(f.text.splitlines(), 1):
            if SAFE_FILTER.search(line) and not _constant_macro_argument(f, n, line, templates):
                yield chk.finding(ctx, Severity.WARNING, "`|safe` disables escaping in a template",
                                  "The value is inserted as raw HTML; if any part of it comes from a user it "
                                  "runs as script.", "Drop `|safe`, or sanitise the value (e.g. with `nh3`) "
                                  "before it reaches the template.", f.path, n, key="safe")
            if AUTOESCAPE_OFF.search(line):
                yield chk.finding(ctx, Severity.WARNING, "`{% autoescape false %}` block in a template",
                                  "Everything inside the block is rendered unescaped.",
                                  "Remove the block; mark individual trusted values instead.", f.path, n,
                                  key="autoescape-block")
        if partial_env and f.path.endswith((".jinja", ".jinja2", ".j2")) and HTML_TAG.search(f.text):
            yield chk.finding(ctx, Severity.WARNING, "HTML template not covered by select_autoescape",
                              "`select_autoescape()` (also used by Starlette's Jinja2Templates) escapes only "
                              ".html/.htm/.xml templates: this HTML template is rendered unescaped.",
                              "Rename it to .html, or list its extension in select_autoescape([...]).",
                              f.path, 1, key="extension")
    try:
        hits = [h for h in ruff_hits(ctx, ("S701",)) if h.code == "S701"]
    except RuffUnavailable as exc:
        yield not_verified(chk.id, chk.area, "Jinja autoescape through aliases (Ruff S701)", str(exc))
        return
    app_paths = {s.path for s in sources}
    for h in hits:
        if h.file in app_paths and (h.file, h.line) not in handled:
            yield chk.finding(ctx, Severity.WARNING, "Jinja environment without autoescape (Ruff S701)",
                              f"Ruff S701: {h.message}.", "Enable autoescape.", h.file, h.line, key="S701")


UNKNOWN = object()


def _registration_gate(ctx, call: ast.Call, up: dict) -> str:
    """How the route serving ``call`` is registered conditionally: its handler is declared
    under ``if <test>:`` or after ``if <test>: return`` in the function that registers it
    (``def configure_share(app): if not settings.enable_share: return; @app.get(...)``).
    Returns the condition as a reader would say it, with the setting's default when it
    leaves the route out (``settings.enable_share is not False`` (ENABLE_SHARE defaults
    to False, settings.py:12)); "" when the route is registered unconditionally or every
    condition holds under the defaults (the route exists in a default deployment)."""
    handler = call
    while handler is not None and not (isinstance(handler, (ast.FunctionDef, ast.AsyncFunctionDef))
                                       and Tracer.is_route(handler)):
        handler = up.get(id(handler))
    if handler is None:
        return ""
    conds: list[tuple[ast.AST, bool]] = []  # (test, the route exists when the test is ...)
    cur, parent = handler, up.get(id(handler))
    while parent is not None:
        if isinstance(parent, ast.If) and cur is not parent.test:
            conds.append((parent.test, any(cur is n for n in parent.body)))
        for attr in ("body", "orelse"):
            block = getattr(parent, attr, None)
            if isinstance(block, list) and any(cur is n for n in block):
                for st in block[:[id(n) for n in block].index(id(cur))]:
                    if isinstance(st, ast.If) and not st.orelse and st.body \
                            and all(isinstance(b, (ast.Return, ast.Raise)) for b in st.body):
                        conds.append((st.test, False))
        cur, parent = parent, up.get(id(parent))
    if not conds:
        return ""
    model = settings_model(ctx)
    out = []
    for test, sense in conds:
        value = _evaluate(test, model)
        exists = UNKNOWN if value is UNKNOWN else bool(value) == sense
        if exists is True:
            continue
        text = ast.unparse(test) if sense else _negated(test)
        defaults = [f"{s.env} defaults to {s.default!r}, {s.file}:{s.line}" for s in _settings_in(test, model)
                    if s.literal_default]
        out.append(f"`{text}`" + (f" ({'; '.join(defaults)})" if defaults else ""))
    return " and ".join(out)


def _settings_in(test: ast.AST, model) -> list:
    found = []
    for n in walk(test):
        name = n.attr if isinstance(n, ast.Attribute) else None
        if isinstance(n, ast.Call) and n.args and dotted(n.func).endswith(("getenv", "environ.get")):
            name = literal(n.args[0]) if isinstance(literal(n.args[0]), str) else None
        s = model.get(name) if name else None
        if s is not None and s not in found:
            found.append(s)
    return found


def _evaluate(node: ast.AST, model):
    """The value of a registration condition in a default deployment: settings at their
    literal defaults, ``os.getenv("X", d)`` at ``d``; UNKNOWN when it cannot be told."""
    if isinstance(node, ast.BoolOp):
        vals = [_evaluate(v, model) for v in node.values]
        if isinstance(node.op, ast.And):
            return False if any(v is not UNKNOWN and not v for v in vals) else \
                UNKNOWN if any(v is UNKNOWN for v in vals) else True
        return True if any(v is not UNKNOWN and v for v in vals) else \
            UNKNOWN if any(v is UNKNOWN for v in vals) else False
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
        v = _evaluate(node.operand, model)
        return v if v is UNKNOWN else not v
    if isinstance(node, ast.Compare) and len(node.ops) == 1:
        a, b = _evaluate(node.left, model), _evaluate(node.comparators[0], model)
        if a is UNKNOWN or b is UNKNOWN:
            return UNKNOWN
        op = node.ops[0]
        try:
            return {ast.Eq: lambda: a == b, ast.NotEq: lambda: a != b, ast.Is: lambda: a is b,
                    ast.IsNot: lambda: a is not b, ast.In: lambda: a in b,
                    ast.NotIn: lambda: a not in b}.get(type(op), lambda: UNKNOWN)()
        except TypeError:
            return UNKNOWN
    v = literal(node)
    if v is not NOT_LITERAL:
        return v
    if isinstance(node, ast.Call) and node.args and dotted(node.func).endswith(("getenv", "environ.get")):
        return literal(node.args[1]) if len(node.args) > 1 else None
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) \
            and node.func.attr in ("lower", "strip", "casefold", "upper"):
        v = _evaluate(node.func.value, model)
        return getattr(v, node.func.attr)() if isinstance(v, str) else UNKNOWN
    if isinstance(node, (ast.Attribute, ast.Name)):
        s = model.get(node.attr if isinstance(node, ast.Attribute) else node.id)
        if s is not None and s.literal_default:
            return s.default
    return UNKNOWN


PATH_PIECE = re.compile(r"[\w.-]+(?:/[\w.-]+)+/?|\.[A-Za-z0-9]+$")


def _renders_html(ctx, src, call: ast.Call, tracer) -> bool | None:
    """Whether the templates a Jinja ``Environment``/``Template`` renders are HTML: False
    when the files named by the string pieces of its arguments (a loader directory,
    ``read_resource(f"{kind}.jinja2")`` followed one call down) are found in the tree and
    none contains an HTML tag; None when they cannot be found."""
    inline = _inline_source(call, tracer)
    if inline is not None:  # Template("...") / Environment(...).from_string("..."): the template is right here
        return bool(HTML_TAG.search(inline))
    named = _named_templates(ctx, call, tracer)
    if named is not None:  # env = Environment(...); env.from_string(files(...).joinpath("sdk.py.jinja").read_text())
        return named
    pieces: list[str] = []
    roots: list[str] = []  # folders named relative to the module (Path(__file__).parent / "templates")

    def collect(node, depth):
        here = _module_relative(node, src.path, tracer, 3)
        if here is not None:
            roots.append(here)
            return
        for n in walk(node):
            if isinstance(n, ast.Constant) and isinstance(n.value, str):
                pieces.extend(PATH_PIECE.findall(n.value))
            elif isinstance(n, ast.Call) and depth > 0:
                found = tracer.callee(n)
                if found is not None:
                    collect(found[1], depth - 1)
            elif isinstance(n, ast.Name) and depth > 0:
                fn = function_of(call, tracer.up)
                values = tracer.assignments(n.id, fn, call)
                if not values and tracer.param(n.id, fn) is None and n.id in tracer.consts:
                    values = [tracer.consts[n.id]]  # a module constant (_TEMPLATES_DIR = "app/templates")
                for v in values:
                    collect(v, depth - 1)

    for a in [*call.args, *(k.value for k in call.keywords if k.arg == "loader")]:
        collect(a, 2)
    dirs = [p.strip("/") for p in pieces if "/" in p]
    exts = tuple(p for p in pieces if p.startswith(".") and "/" not in p)
    if not dirs and not roots:
        return None
    files = [f for f in ctx.index if f.text is not None and not f.path.endswith(".py")
             and (any(d in f.path for d in dirs) or any(f.path.startswith(r + "/") for r in roots))
             and (not exts or f.path.endswith(exts))]
    if not files:
        return None
    return any(HTML_TAG.search(f.text) for f in files)


TEMPLATE_FILE = re.compile(r"^[\w.-]+\.[A-Za-z0-9]+$")


def _named_templates(ctx, call: ast.Call, tracer) -> bool | None:
    """For an environment assigned to a local name (``env = Environment(...)``), whether
    the templates its ``env.from_string(x)`` / ``env.get_template(x)`` calls in the same
    function use are HTML, when ``x`` names template files by a literal file name (directly
    or through a local assignment, ``files(pkg).joinpath("sdk.py.jinja").read_text()``)
    that are all found in the tree; None when that cannot be told."""
    stmt = tracer.up.get(id(call))
    if not (isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Name)):
        return None
    name, fn = stmt.targets[0].id, function_of(call, tracer.up)
    uses = [c for c in of_type(fn if fn is not None else tracer.tree, ast.Call)
            if isinstance(c.func, ast.Attribute) and c.func.attr in ("from_string", "get_template")
            and isinstance(c.func.value, ast.Name) and c.func.value.id == name and c.args]
    if not uses:
        return None
    html = False
    for use in uses:
        arg = use.args[0]
        text = literal(arg)
        if isinstance(text, str) and use.func.attr == "from_string":
            html = html or bool(HTML_TAG.search(text))
            continue
        values = [arg] + (tracer.assignments(arg.id, fn, use) if isinstance(arg, ast.Name) else [])
        names = {n.value for v in values for n in walk(v) if isinstance(n, ast.Constant)
                 and isinstance(n.value, str) and TEMPLATE_FILE.match(n.value)}
        files = [f for f in ctx.index if f.text is not None and not f.path.endswith(".py")
                 and any(f.path == n or f.path.endswith("/" + n) for n in names)]
        if not files:
            return None
        html = html or any(HTML_TAG.search(f.text) for f in files)
    return html


def _inline_source(call: ast.Call, tracer) -> str | None:
    """The template text written in the code: ``Template("...")``, or
    ``Environment(...).from_string("...")`` (a literal or a module constant)."""
    arg = None
    if dotted(call.func).rsplit(".", 1)[-1] == "Template" and call.args:
        arg = call.args[0]
    else:
        attr = tracer.up.get(id(call))
        outer = tracer.up.get(id(attr))
        if isinstance(attr, ast.Attribute) and attr.attr == "from_string" and isinstance(outer, ast.Call) \
                and outer.func is attr and outer.args:
            arg = outer.args[0]
    if isinstance(arg, ast.Name) and arg.id in tracer.consts:
        arg = tracer.consts[arg.id]
    value = literal(arg) if arg is not None else None
    return value if isinstance(value, str) else None


def _module_relative(node, path: str, tracer, depth: int) -> str | None:
    """A folder given relative to the module's own file, as a path in the tree:
    ``Path(__file__).parent / "templates"``, ``os.path.join(os.path.dirname(__file__), "t")``
    (through module constants); None for anything else."""
    if depth < 0:
        return None
    if isinstance(node, ast.Name):
        if node.id == "__file__":
            return path
        value = tracer.consts.get(node.id)
        return _module_relative(value, path, tracer, depth - 1) if value is not None else None
    if isinstance(node, ast.Attribute) and node.attr == "parent":
        inner_path = _module_relative(node.value, path, tracer, depth)
        return inner_path.rpartition("/")[0] if inner_path is not None else None
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div) and isinstance(literal(node.right), str):
        inner_path = _module_relative(node.left, path, tracer, depth)
        return f"{inner_path}/{literal(node.right).strip('/')}".lstrip("/") if inner_path is not None else None
    if isinstance(node, ast.Call):
        name = dotted(node.func).rsplit(".", 1)[-1]
        if name in ("Path", "PurePath", "abspath", "realpath", "normpath", "str", "fspath") and node.args:
            return _module_relative(node.args[0], path, tracer, depth)
        if name in ("resolve", "absolute") and isinstance(node.func, ast.Attribute):
            return _module_relative(node.func.value, path, tracer, depth)
        if name == "dirname" and node.args:
            inner_path = _module_relative(node.args[0], path, tracer, depth)
            return inner_path.rpartition("/")[0] if inner_path is not None else None
        if name == "join" and node.args and all(isinstance(literal(a), str) for a in node.args[1:]):
            inner_path = _module_relative(node.args[0], path, tracer, depth)
            return "/".join([inner_path, *(literal(a).strip("/") for a in node.args[1:])]).lstrip("/") \
                if inner_path is not None else None
    return None


SAFE_VALUE = re.compile(r"{{-?\s*(\w+)\s*\|\s*safe\b")
MACRO = re.compile(r"{%-?\s*macro\s+(\w+)\s*\(([^)]*)\)")


def _constant_macro_argument(f, n: int, line: str, templates) -> bool:
    """``{{ icon | safe }}`` inside ``{% macro item(title, icon) %}`` where every call of
    ``item(...)`` in the templates passes a string literal or a macro call as ``icon``."""
    m = SAFE_VALUE.search(line)
    if not m:
        return False
    before = "\n".join(f.text.splitlines()[:n])
    macros = list(MACRO.finditer(before))
    if not macros or before.rfind("endmacro") > macros[-1].start():
        return False
    name, params = macros[-1].group(1), [p.split("=")[0].strip() for p in macros[-1].group(2).split(",")]
    if m.group(1) not in params:
        return False
    pos = params.index(m.group(1))
    defined = {x.group(1) for t in templates for x in MACRO.finditer(t.text)}
    aliases = {x.group(1) for t in templates for x in re.finditer(r"{%-?\s*import\s+\S+\s+as\s+(\w+)", t.text)}
    calls = 0
    for t in templates:
        for c in re.finditer(r"(?<![\w.])" + name + r"\s*\(", t.text):
            if re.search(r"macro\s+$", t.text[max(0, c.start() - 30):c.start()]):
                continue  # the macro's own definition
            call = _call_text(t.text, c.start())
            try:
                node = ast.parse(call.replace(" ~ ", " + "), mode="eval").body
            except SyntaxError:
                return False
            if not isinstance(node, ast.Call):
                return False
            arg = next((k.value for k in node.keywords if k.arg == m.group(1)), None)
            if arg is None and pos < len(node.args):
                arg = node.args[pos]
            if arg is None:
                continue  # the parameter's default
            literal_str = isinstance(arg, ast.Constant) and isinstance(arg.value, str)
            macro_out = isinstance(arg, ast.Call) and (
                dotted(arg.func) in defined or dotted(arg.func).split(".")[0] in aliases)
            if not (literal_str or macro_out):
                return False
            calls += 1
    return calls > 0


def _call_text(text: str, start: int) -> str:
    """``name(...)`` from ``start``, parentheses balanced outside string literals."""
    depth, quote, i = 0, "", start
    while i < len(text):
        ch = text[i]
        if quote:
            quote = "" if ch == quote and text[i - 1] != "\\" else quote
        elif ch in "'\"":
            quote = ch
        elif ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth == 0:
                return text[start:i + 1]
        i += 1
    return text[start:]
