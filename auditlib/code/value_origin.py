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
  ``quote_ident``...);
- ``param``: request data: a route handler's parameter, or a parameter that a
  caller (up to three calls away) fills with one;
- ``unknown``: anything else (a call result, an attribute of an object, a parameter
  whose callers pass values of unknown origin or that has no caller in the project).
"""
from __future__ import annotations

import ast
from dataclasses import dataclass

from .pyast import NOT_LITERAL, dotted, literal, of_type, parent_map

NUMERIC_CALLS = {"int", "float", "len", "bool", "round", "abs", "uuid.UUID", "UUID"}
NUMERIC_TYPES = {"int", "float", "bool", "UUID", "uuid.UUID", "date", "datetime", "Decimal", "PositiveInt",
                 "NonNegativeInt", "conint", "datetime.date", "datetime.datetime"}
ESCAPE_CALLS = ("escape", "quote", "quote_ident", "quote_plus", "Identifier", "Literal", "quoted_name",
                "bindparam", "literal", "sanitize", "clean", "secure_filename")
ROUTE_METHODS = {"get", "post", "put", "patch", "delete", "api_route", "websocket", "route"}
SETTINGS_BASES = ("settings", "config", "conf", "cfg")


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

    def __init__(self, src, up: dict, project=None, app_sources=()):
        self.src, self.tree, self.up, self.project = src, src.tree, up, project
        self.app_sources = list(app_sources)
        self.consts = {t.id: st.value for st in self.tree.body if isinstance(st, ast.Assign)
                       for t in st.targets if isinstance(t, ast.Name)}

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
            if last in ESCAPE_CALLS or last.startswith(("escape", "quote")):
                return [Origin("escaped", text, line)]
            if isinstance(node.func, ast.Attribute) and node.func.attr == "get" and self._const(node.func.value):
                return [Origin("constant", text, line, "whitelist lookup")]
            if isinstance(node.func, ast.Attribute) and node.func.attr in ("strip", "lower", "upper", "title"):
                return self._origins(node.func.value, at, fn, depth)
            return [Origin("unknown", text, line, f"result of `{name or 'a call'}()`")]
        if isinstance(node, ast.Subscript) and self._const(node.value):
            return [Origin("constant", text, line, "whitelist lookup")]
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
            param = self.param(node.id, fn)
            if param is not None:
                return [self.param_origin(param, fn, text, line, depth)]
        return [Origin("unknown", text, line)]

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
        core = ann.replace("Annotated[", "").split("[")[0].split(",")[0].split("|")[0].strip()
        if core in NUMERIC_TYPES:
            return Origin("numeric", text, line, f"parameter `{p.arg}: {ann}`")
        if any(isinstance(d, ast.Call) and isinstance(d.func, ast.Attribute) and d.func.attr in ROUTE_METHODS
               for d in fn.decorator_list):
            return Origin("param", text, line, f"request parameter `{p.arg}` of route handler `{fn.name}()`")
        args = [x.arg for x in [*fn.args.posonlyargs, *fn.args.args]]
        sites = []
        for src in self.app_sources:
            if src.tree is None or fn.name not in (src.text or ""):
                continue
            tracer = self if src is self.src else Tracer(src, _parents(src), self.project)
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


def _parents(src) -> dict[int, ast.AST]:
    """child id -> parent in the module (memoised per tree; shared, read only)."""
    return parent_map(src.tree)


def tracer_for(src, project=None, app_sources=()) -> Tracer:
    return Tracer(src, _parents(src), project, app_sources)
