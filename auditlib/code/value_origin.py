"""Where the pieces of a built string come from: the data-flow half of the injection
checks (SQL, HTML, shell commands), read from the AST.

:func:`string_parts` takes the expression passed to a sink (``text(q)``,
``os.system(cmd)``, ``HTMLResponse(body)``) and returns the non-constant values
interpolated into it (f-strings, ``%``, ``.format``, ``+``, ``"".join``), tracing local
variables back to their assignments in the function, loop variables to what they
iterate, module constants to their literal, and function parameters to the arguments
of the project's call sites (one level up). Each value gets an :class:`Origin`:

- ``constant``: literals, module constants, ``CONST[key]`` / ``CONST.get(key)`` lookups
  (a whitelist mapping), loop variables over literals;
- ``numeric``: ``int(x)`` / ``float(x)`` / ``len(x)`` / parameters annotated int,
  float, bool, UUID, date...: cannot carry SQL or shell syntax;
- ``settings``: ``settings.x`` / ``config.x`` attributes (operator-controlled);
- ``escaped``: passed through an escaping function (``html.escape``, ``shlex.quote``,
  ``quote_ident``...; for HTML sinks also ``urlencode``, whose output holds no markup);
- ``param``: request data: a route handler's parameter (or a field of one, e.g. an
  uploaded file's ``file.filename``), or a parameter that a caller (up to three calls
  away) fills with one;
- ``unknown``: anything else (a call result, an attribute of an object, a parameter
  whose callers pass values of unknown origin or that has no caller in the project).

A call to a project function that builds a string (``render_page(name)``) is looked
into: its ``return`` values are traced with its parameters bound to the call's
arguments (:meth:`Tracer.inline`). Parameters annotated with an enum, a ``Literal``, a
number or a UUID are ``numeric``/``constant`` (they cannot carry markup or syntax); the
content of a file read from a constant path (``files("pkg").joinpath("x.html").read_text()``)
is ``constant`` (shipped with the app).
"""
from __future__ import annotations

import ast
from dataclasses import dataclass

from .pyast import NOT_LITERAL, dotted, inner, literal, of_type, parent_map

NUMERIC_CALLS = {"int", "float", "len", "bool", "round", "abs", "uuid.UUID", "UUID", "uuid4", "uuid1", "uuid7"}
NUMERIC_TYPES = {"int", "float", "bool", "UUID", "uuid.UUID", "date", "datetime", "Decimal", "PositiveInt",
                 "NonNegativeInt", "conint", "datetime.date", "datetime.datetime"}
ESCAPE_CALLS = ("escape", "quote", "quote_ident", "quote_plus", "Identifier", "Literal", "quoted_name",
                "bindparam", "literal", "sanitize", "clean", "secure_filename")
ROUTE_METHODS = {"get", "post", "put", "patch", "delete", "api_route", "websocket", "route"}
SETTINGS_BASES = ("settings", "config", "conf", "cfg")
PASSTHROUGH_CALLS = ("dedent", "str", "indent")  # f(x) has the pieces of x
READ_CALLS = ("read_text", "read_bytes", "read")
# HTML sinks only: output made of [A-Za-z0-9_.~%+=&-] carries no markup (not shell-safe: ``&``)
HTML_SAFE_CALLS = ("urlencode",)
UPLOAD_TYPES = {"UploadFile", "fastapi.UploadFile", "starlette.datastructures.UploadFile"}
ENUM_BASES = {"Enum", "IntEnum", "StrEnum", "enum.Enum", "enum.IntEnum", "enum.StrEnum", "IntFlag", "Flag"}


@dataclass
class Origin:
    kind: str  # constant | numeric | settings | escaped | param | unknown
    text: str  # the value's source text
    line: int
    detail: str = ""  # e.g. "parameter `sort` of list_rows(); callers at a.py:12"

    @property
    def dangerous(self) -> bool:
        return self.kind in ("param", "unknown")


def function_of(node, up):
    """The function definition enclosing ``node`` (``up``: child id -> parent)."""
    return _function_of(node, up)


def _function_of(node, up):
    p = up.get(id(node))
    while p is not None and not isinstance(p, (ast.FunctionDef, ast.AsyncFunctionDef)):
        p = up.get(id(p))
    return p


class Tracer:
    """Traces values inside one module (``tree``); ``project`` (a
    :class:`~auditlib.code.pyresolve.Project`) lets parameters be followed to call sites."""

    def __init__(self, src, up: dict, project=None, app_sources=(), html: bool = False):
        self.src, self.tree, self.up, self.project, self.html = src, src.tree, up, project, html
        self.app_sources = list(app_sources)
        self.consts = {t.id: st.value for st in self.tree.body if isinstance(st, ast.Assign)
                       for t in st.targets if isinstance(t, ast.Name)}
        # id(function being inlined) -> {parameter: (caller's tracer, argument, call, caller)}
        self.bindings: dict[int, dict[str, tuple]] = {}
        self.level = 0  # how many helpers deep this tracer was opened by inline()

    # -- strings ----------------------------------------------------------------
    def string_parts(self, expr: ast.AST, at: ast.AST, depth: int = 3) -> tuple[bool, list[Origin]]:
        """(is_built, non-constant parts) of a string expression used at node ``at``.

        ``is_built`` says the string is assembled (formatting/concatenation) or opaque
        (a parameter, a call); a plain literal gives (False, [])."""
        try:
            return self._parts(expr, at, depth)
        except RecursionError:  # a pathologically deep expression: say so rather than guess
            return True, [Origin("unknown", "(expression too deep to trace)", getattr(at, "lineno", 0))]

    def _parts(self, expr: ast.AST, at: ast.AST, depth: int = 3) -> tuple[bool, list[Origin]]:
        fn = _function_of(at, self.up)
        if isinstance(expr, ast.Constant):
            return False, []
        if isinstance(expr, ast.JoinedStr):
            return True, [o for v in expr.values if isinstance(v, ast.FormattedValue)
                          for o in self.origins(v.value, at, fn, depth)]
        if isinstance(expr, ast.BinOp) and isinstance(expr.op, (ast.Add, ast.Mod)):
            _, left = self._parts(expr.left, at, depth)
            if isinstance(expr.op, ast.Mod):
                vals = expr.right.elts if isinstance(expr.right, ast.Tuple) else [expr.right]
                right = [o for v in vals for o in self.origins(v, at, fn, depth)]
            else:
                right = self._parts(expr.right, at, depth)[1]
            return True, left + right
        if isinstance(expr, ast.Call) and isinstance(expr.func, ast.Attribute) and expr.func.attr == "format":
            if "Markup" in dotted(expr.func):  # Markup("<b>{}</b>").format(x) escapes x (as _origins says)
                return True, self._origins(expr, at, fn, depth)
            _, base = self._parts(expr.func.value, at, depth)
            args = [*expr.args, *(k.value for k in expr.keywords)]
            return True, base + [o for a in args for o in self.origins(a, at, fn, depth)]
        if isinstance(expr, ast.Call) and isinstance(expr.func, ast.Attribute) and expr.func.attr == "join" \
                and expr.args:
            items = expr.args[0]
            elts = items.elts if isinstance(items, (ast.List, ast.Tuple)) else [items]
            return True, [o for e in elts for o in self.origins(e, at, fn, depth)]
        if isinstance(expr, ast.IfExp):
            a, pa = self._parts(expr.body, at, depth)
            b, pb = self._parts(expr.orelse, at, depth)
            return a or b, pa + pb
        if isinstance(expr, ast.Call) and expr.args and dotted(expr.func).rsplit(".", 1)[-1] in PASSTHROUGH_CALLS:
            return self._parts(expr.args[0], at, depth)
        if isinstance(expr, ast.Call) and depth > 0 and not self._static_read(expr, at, fn, depth):
            inlined = self.inline(expr, at, fn, depth)
            if inlined is not None:
                return inlined
        if isinstance(expr, ast.Name) and depth > 0:
            values = self.assignments(expr.id, fn, at)
            if values:
                built, parts = False, []
                for v in values:
                    b, p = self._parts(v, v, depth - 1)
                    built, parts = built or b, parts + p
                return built, parts
        origins = self.origins(expr, at, fn, depth)
        return any(o.kind != "constant" for o in origins), [o for o in origins if o.kind != "constant"]

    # -- single values ---------------------------------------------------------------
    def origins(self, node: ast.AST, at: ast.AST, fn, depth: int = 3) -> list[Origin]:
        """The origins of one value (several when it is assigned on several paths)."""
        try:
            return self._origins(node, at, fn, depth)
        except RecursionError:
            return [Origin("unknown", "(expression too deep to trace)", getattr(at, "lineno", 0))]

    def _origins(self, node: ast.AST, at: ast.AST, fn, depth: int) -> list[Origin]:
        text, line = ast.unparse(node)[:80], getattr(node, "lineno", getattr(at, "lineno", 0))
        if literal(node) is not NOT_LITERAL:
            return [Origin("constant", text, line)]
        if isinstance(node, ast.Call) and "Markup" in dotted(node.func):  # Markup(...) / Markup(...).format()
            return [Origin("escaped", text, line, "Markup (escapes what it formats)")]
        if isinstance(node, (ast.JoinedStr, ast.BinOp)) or (
                isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                and node.func.attr in ("format", "join")):
            return self._parts(node, at, depth)[1] or [Origin("constant", text, line)]
        if isinstance(node, ast.IfExp):
            return self._origins(node.body, at, fn, depth) + self._origins(node.orelse, at, fn, depth)
        if isinstance(node, ast.Call):
            name = dotted(node.func)
            last = name.rsplit(".", 1)[-1]
            if name in NUMERIC_CALLS or last in NUMERIC_CALLS:
                return [Origin("numeric", text, line)]
            if last in ESCAPE_CALLS or last.startswith(("escape", "quote")) or (self.html and last in HTML_SAFE_CALLS):
                return [Origin("escaped", text, line)]
            if isinstance(node.func, ast.Attribute) and node.func.attr == "get" and self._const(node.func.value):
                return [Origin("constant", text, line, "whitelist lookup")]
            if isinstance(node.func, ast.Attribute) and node.func.attr in ("strip", "lower", "upper", "title"):
                return self._origins(node.func.value, at, fn, depth)
            if self.html and _json_lt_escaped(node):
                return [Origin("escaped", text, line, "JSON with `<` escaped (cannot close a <script>)")]
            if self.html and last == "render" and isinstance(node.func, ast.Attribute) \
                    and "template" in ast.unparse(node.func.value).lower():
                # Jinja output: its environment's autoescape decides (SEC-021 checks environments)
                return [Origin("escaped", text, line, "rendered by a Jinja template")]
            if self._static_read(node, at, fn, depth):
                return [Origin("constant", text, line, "a file read from a constant path")]
            if last in PASSTHROUGH_CALLS and node.args:
                return self._origins(node.args[0], at, fn, depth)
            inlined = self.inline(node, at, fn, depth) if depth > 0 else None
            if inlined is not None:
                return inlined[1] or [Origin("constant", text, line)]
            return [Origin("unknown", text, line, f"result of `{name or 'a call'}()`")]
        if isinstance(node, ast.Subscript) and self._const(node.value):
            return [Origin("constant", text, line, "whitelist lookup")]
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and fn is not None \
                and not self.assignments(node.value.id, fn, at):
            p = self.param(node.value.id, fn)
            if p is not None and self.is_route(fn) and node.value.id not in self.bindings.get(id(fn), {}):
                return [self.field_origin(p, node, fn, text, line)]
        if isinstance(node, ast.Attribute) and self._class_constant(node):
            return [Origin("constant", text, line, "class constant")]
        if isinstance(node, ast.Attribute):
            base = dotted(node).lower()
            if any(part in SETTINGS_BASES for part in base.split(".")[:-1]) or base.startswith("get_settings"):
                return [Origin("settings", text, line)]
            if isinstance(node.value, ast.Call) and dotted(node.value.func).endswith("settings"):
                return [Origin("settings", text, line)]
            return [Origin("unknown", text, line, "an attribute")]
        if isinstance(node, ast.Name):
            if node.id in self.consts and literal(self.consts[node.id]) is not NOT_LITERAL:
                return [Origin("constant", text, line)]
            loop = self.loop_iter(node.id, fn, at)
            if loop is not None:
                inner = self._origins(loop, at, fn, depth - 1) if depth > 0 else []
                if loop is not None and (self._const(loop) or all(o.kind == "constant" for o in inner) and inner):
                    return [Origin("constant", text, line, "loop over constants")]
            values = self.assignments(node.id, fn, at) if depth > 0 else []
            if values:
                return [o for v in values for o in self._origins(v, v, fn, depth - 1)]
            bound = self.bindings.get(id(fn), {}) if fn is not None else {}
            if node.id in bound:
                tracer, arg, call, caller, caller_depth = bound[node.id]
                if arg is None:  # the parameter's default
                    return [Origin("constant", text, line)]
                return tracer._origins(arg, call, caller, caller_depth)  # in the caller, with its budget
            param = self.param(node.id, fn)
            if param is not None:
                return [self.param_origin(param, fn, text, line, depth)]
            if node.id in self.consts and depth > 0:  # a module constant built from other values
                value = self.consts[node.id]
                return self._parts(value, value, depth - 1)[1] or [Origin("constant", text, line)]
        return [Origin("unknown", text, line)]

    # -- calls into the project --------------------------------------------------------
    def callee(self, call: ast.Call):
        """(source, definition) of the project function ``call`` runs: a function of this
        module (nested ones included) by its bare name, else what the imports resolve to."""
        name = dotted(call.func)
        if name and "." not in name:
            fn = next((d for d in of_type(self.tree, (ast.FunctionDef, ast.AsyncFunctionDef)) if d.name == name),
                      None)
            if fn is not None:
                return self.src, fn
        if self.project is not None and name:
            r = self.project.resolve_call(self.src, call.func)
            if r is not None and r.func is not None and r.src.tree is not None:
                return r.src, r.func
        return None

    def inline(self, call: ast.Call, at: ast.AST, fn, depth: int):
        """(is_built, parts) of what a project function returns for this call, its
        parameters bound to the call's arguments; None when the callee is not known."""
        found = self.callee(call)
        if found is None:
            return None
        src, callee = found
        kind = self.annotation_kind(callee.returns)
        if kind is not None:  # `def remaining_ms() -> int`: no text can come out of it
            return False, [Origin(kind, ast.unparse(call)[:80], call.lineno,
                                  f"`{callee.name}()` returns {ast.unparse(callee.returns)}")]
        if callee is fn or id(callee) in self.bindings or self.level + len(self.bindings) >= 2:
            return None  # two helpers deep at most
        returns = [n.value for n in inner(callee) if isinstance(n, ast.Return) and n.value is not None]
        if not returns:
            return None
        a = callee.args
        names = [x.arg for x in [*a.posonlyargs, *a.args]]
        if names and names[0] in ("self", "cls") and isinstance(call.func, ast.Attribute):
            names = names[1:]
        bound: dict[str, tuple] = {x.arg: (self, None, call, fn, depth)
                                   for x in [*a.posonlyargs, *a.args, *a.kwonlyargs]}
        for i, arg in enumerate(call.args):
            if isinstance(arg, ast.Starred):
                return None
            if i < len(names):
                bound[names[i]] = (self, arg, call, fn, depth)
        for k in call.keywords:
            if k.arg is None:
                return None
            bound[k.arg] = (self, k.value, call, fn, depth)
        if src is self.src:
            tracer = self
        else:
            tracer = Tracer(src, _parents(src), self.project, self.app_sources, self.html)
            tracer.level = self.level + len(self.bindings) + 1
        tracer.bindings[id(callee)] = bound
        try:
            built, parts = False, []
            for r in returns:  # the callee's own budget: its locals are traced as deep as the caller's
                b, p = tracer._parts(r, r, 3)
                built, parts = built or b, parts + p
        finally:
            del tracer.bindings[id(callee)]
        where = f"{callee.name}() at {src.path}:{callee.lineno}"
        for o in parts:
            o.detail = (o.detail + "; " if o.detail else "") + f"via {where}"
        return built, parts

    def _static_read(self, node: ast.AST, at, fn, depth: int) -> bool:
        """``files("pkg").joinpath("x.html").read_text()`` / ``open("x").read()``: every
        call in the chain takes constants only, and at least one names the file."""
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in READ_CALLS):
            return False
        n, named = node.func.value, False
        while isinstance(n, (ast.Call, ast.Attribute)):
            if isinstance(n, ast.Call):
                args = [*n.args, *(k.value for k in n.keywords)]
                if any(literal(x) is NOT_LITERAL and not self._const(x) for x in args):
                    return False
                named = named or bool(args)
                n = n.func
            else:
                n = n.value
        return named and isinstance(n, ast.Name)

    # -- request data ------------------------------------------------------------------
    @staticmethod
    def is_route(fn) -> bool:
        return any(isinstance(d, ast.Call) and isinstance(d.func, ast.Attribute) and d.func.attr in ROUTE_METHODS
                   for d in fn.decorator_list)

    def classes(self) -> dict[str, ast.ClassDef]:
        """Class name -> definition over the project's app sources (memoised)."""
        memo = getattr(self, "_classes", None)
        if memo is None:
            memo = {}
            for src in [self.src, *self.app_sources]:
                if src.tree is not None:
                    for c in of_type(src.tree, ast.ClassDef):
                        memo.setdefault(c.name, c)
            self._classes = memo
        return memo

    def annotation_kind(self, ann: ast.AST | None) -> str | None:
        """"numeric" / "constant" for a type that cannot carry text (numbers, UUIDs,
        enums, ``Literal[...]``), else None."""
        if ann is None:
            return None
        text = ast.unparse(ann)
        core = text.replace("Annotated[", "").replace("Optional[", "").split("[")[0].split(",")[0].split("|")[0].strip()
        if core in NUMERIC_TYPES:
            return "numeric"
        if core in ("Literal", "typing.Literal"):
            return "constant"
        cls = self.classes().get(core.rsplit(".", 1)[-1])
        if cls is not None and any(dotted(b) in ENUM_BASES for b in cls.bases):
            return "numeric"
        return None

    def field_origin(self, p: ast.arg, node: ast.Attribute, fn, text: str, line: int) -> Origin:
        """``x.attr`` where ``x`` is a route handler's parameter."""
        ann = ast.unparse(p.annotation) if p.annotation is not None else ""
        core = ann.replace("Annotated[", "").split("[")[0].split(",")[0].split("|")[0].strip()
        if core in UPLOAD_TYPES:
            if node.attr == "size":
                return Origin("numeric", text, line)
            what = "uploaded file name" if node.attr == "filename" else "upload attribute"
            return Origin("param", text, line, f"{what} `{text}` (request parameter `{p.arg}` of `{fn.name}()`)")
        cls = self.classes().get(core.rsplit(".", 1)[-1])
        field = next((s for s in (cls.body if cls is not None else []) if isinstance(s, ast.AnnAssign)
                      and isinstance(s.target, ast.Name) and s.target.id == node.attr), None)
        kind = self.annotation_kind(field.annotation) if field is not None else None
        if kind is not None:
            return Origin(kind, text, line, f"field `{node.attr}: {ast.unparse(field.annotation)}`")
        if cls is None:
            return Origin("unknown", text, line, "an attribute")
        return Origin("param", text, line, f"field `{text}` of request body `{core}` (`{fn.name}()`)")

    def _class_constant(self, node: ast.Attribute) -> bool:
        """``Cls.attr`` / ``module.Cls.attr`` where ``Cls`` is a project class whose body
        assigns ``attr`` a literal (``__tablename__ = "projects"``)."""
        base, cls = node.value, None
        if isinstance(base, ast.Name):
            cls = next((c for c in self.tree.body if isinstance(c, ast.ClassDef) and c.name == base.id), None)
        if cls is None and self.project is not None and isinstance(base, (ast.Name, ast.Attribute)):
            mod, _, name = self.project.qualify(self.src, base).rpartition(".")
            src = self.project.by_module.get(mod) if mod else None
            if src is not None and src.tree is not None:
                cls = next((c for c in src.tree.body if isinstance(c, ast.ClassDef) and c.name == name), None)
        for st in cls.body if cls is not None else []:
            targets = st.targets if isinstance(st, ast.Assign) else [st.target] if isinstance(st, ast.AnnAssign) else []
            if st.value is not None and any(isinstance(t, ast.Name) and t.id == node.attr for t in targets):
                return literal(st.value) is not NOT_LITERAL
        return False

    def _const(self, node: ast.AST) -> bool:
        if literal(node) is not NOT_LITERAL:
            return True
        return isinstance(node, ast.Name) and node.id in self.consts and literal(self.consts[node.id]) is not NOT_LITERAL

    def assignments(self, name: str, fn, at: ast.AST) -> list[ast.AST]:
        """Values assigned to local ``name`` in ``fn`` before ``at`` (``+=`` included)."""
        if fn is None:
            return []
        out = []
        line = getattr(at, "lineno", 10**9)
        for n in of_type(fn, (ast.Assign, ast.AnnAssign, ast.AugAssign, ast.NamedExpr)):
            if n.lineno >= line and n is not at:
                continue
            if isinstance(n, ast.Assign):
                targets = n.targets
            elif isinstance(n, (ast.AnnAssign, ast.AugAssign, ast.NamedExpr)):
                targets = [n.target]
            else:
                continue
            if n.value is not None and any(isinstance(t, ast.Name) and t.id == name for t in targets):
                out.append(n.value)
        return out

    def loop_iter(self, name: str, fn, at) -> ast.AST | None:
        for n in of_type(fn, (ast.For, ast.AsyncFor, ast.comprehension)) if fn is not None else []:
            if isinstance(n.target, ast.Name) and n.target.id == name:
                return n.iter
        return None

    @staticmethod
    def param(name: str, fn) -> ast.arg | None:
        if fn is None:
            return None
        a = fn.args
        return next((p for p in [*a.posonlyargs, *a.args, *a.kwonlyargs] if p.arg == name), None)

    def param_origin(self, p: ast.arg, fn, text: str, line: int, depth: int) -> Origin:
        ann = ast.unparse(p.annotation) if p.annotation is not None else ""
        kind = self.annotation_kind(p.annotation)
        if kind is not None:
            return Origin(kind, text, line, f"parameter `{p.arg}: {ann}`")
        if self.is_route(fn):
            return Origin("param", text, line, f"request parameter `{p.arg}` of route handler `{fn.name}()`")
        args = [x.arg for x in [*fn.args.posonlyargs, *fn.args.args]]
        sites = []
        for src in self.app_sources:
            if src.tree is None or fn.name not in (src.text or ""):
                continue
            tracer = self if src is self.src else Tracer(src, _parents(src), self.project, (), self.html)
            for call in of_type(src.tree, ast.Call):
                if dotted(call.func).rsplit(".", 1)[-1] != fn.name:
                    continue
                arg = next((k.value for k in call.keywords if k.arg == p.arg), None)
                if arg is None and p.arg in args:
                    i = args.index(p.arg) - (1 if args and args[0] in ("self", "cls") else 0)
                    arg = call.args[i] if 0 <= i < len(call.args) else None
                if arg is not None:
                    caller = _function_of(call, tracer.up)
                    kinds = tracer._origins(arg, call, caller, depth - 1) if depth > 0 else \
                        [Origin("unknown", ast.unparse(arg), call.lineno)]
                    sites.append((src.path, call.lineno, kinds))
        where = ", ".join(f"{f}:{ln}" for f, ln, _ in sites[:3])
        kinds = [o.kind for _f, _l, ks in sites for o in ks]
        if sites and all(k in ("constant", "numeric", "settings", "escaped") for k in kinds):
            return Origin("constant", text, line, f"parameter `{p.arg}`; every caller passes a constant ({where})")
        if "param" in kinds:  # request data reaches it through a caller
            tainted = [f"{f}:{ln}" for f, ln, ks in sites if any(o.kind == "param" for o in ks)]
            return Origin("param", text, line, f"parameter `{p.arg}` of `{fn.name}()`, given request data "
                                               f"at {', '.join(tainted[:3])}")
        detail = f"parameter `{p.arg}` of `{fn.name}()`" + (f"; callers at {where}" if sites else "; no caller in the project")
        return Origin("unknown", text, line, detail)


def _json_lt_escaped(node: ast.Call) -> bool:
    """``json.dumps(x).replace("<", "\\u003c")...``: a JSON literal whose ``<`` is
    escaped, so it cannot close the ``<script>`` it is written into (HTML sinks only)."""
    replaced = set()
    while isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "replace":
        old, new = (literal(a) for a in node.args[:2]) if len(node.args) >= 2 else (None, None)
        if isinstance(old, str) and isinstance(new, str) and "<" not in new:
            replaced.add(old)
        node = node.func.value
    return "<" in replaced and isinstance(node, ast.Call) and dotted(node.func).rsplit(".", 1)[-1] == "dumps"


def _parents(src) -> dict[int, ast.AST]:
    """child id -> parent in the module (memoised per tree; shared, read only)."""
    return parent_map(src.tree)


def tracer_for(src, project=None, app_sources=(), html: bool = False) -> Tracer:
    """``html``: the sink is HTML, so a Jinja template's ``render()`` output counts as
    escaped (whether its environment autoescapes is checked where it is created)."""
    return Tracer(src, _parents(src), project, app_sources, html)
