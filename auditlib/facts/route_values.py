"""Values the route inventory reads from code it does not run (helpers of :mod:`.routes`).

- :class:`Strings`: a path or prefix expression as the string it has by default:
  literals, f-strings, ``+``, module constants (also imported, ``constants.API_PREFIX``),
  fields of pydantic settings classes (``settings.API_V1_STR``, ``get_settings().prefix``,
  resolved by :mod:`.settings_model` to their default) and ``os.getenv("X", "d")``. A value
  an environment variable can override is recorded as a note (``settings.API_V1_STR =
  '/api/v1' by default; env API_V1_STR overrides it``); what cannot be resolved stays
  ``{expression}`` in the path. :meth:`Strings.written` is the expression as written.
- :func:`iter_rows`: the elements a ``for`` loop iterates over (list / tuple literals,
  module-level lists, imported ones, concatenations, ``*starred``), each with the module
  and scope to resolve it in.
"""
from __future__ import annotations

import ast

from ..code.pyast import NOT_LITERAL, dotted, literal
from ..code.pymodules import Module, own_nodes

GETENV = {"os.getenv", "os.environ.get", "getenv", "environ.get"}


class Strings:
    def __init__(self, builder, settings=lambda: None):
        self.b = builder
        self.p = builder.p
        self._settings = settings  # () -> SettingsModel | None, built on first use
        self._model = NOT_LITERAL

    @property
    def model(self):
        if self._model is NOT_LITERAL:
            self._model = self._settings()
        return self._model

    def value(self, mod: Module, expr: ast.AST, scope=None, env=None, notes=None, depth=0) -> str:
        """The string ``expr`` has by default; ``notes`` (a list) receives the overridable parts."""
        if depth > 12 or expr is None:
            return "{?}"
        val = literal(expr)
        if isinstance(val, str):
            return val
        if isinstance(expr, ast.JoinedStr):
            return "".join(v.value if isinstance(v, ast.Constant) else
                           self.value(mod, v.value, scope, env, notes, depth + 1) for v in expr.values)
        if isinstance(expr, ast.BinOp) and isinstance(expr.op, ast.Add):
            return (self.value(mod, expr.left, scope, env, notes, depth + 1)
                    + self.value(mod, expr.right, scope, env, notes, depth + 1))
        if isinstance(expr, ast.Name):
            if env and expr.id in env:
                emod, eexpr, escope = env[expr.id]
                return self.value(emod, eexpr, escope, None, notes, depth + 1)
            local = self.b.scope_assigns.get(id(scope) if scope else id(mod.tree), {})
            if expr.id in local and local[expr.id] is not expr:
                return self.value(mod, local[expr.id], scope, None, notes, depth + 1)
        if isinstance(expr, (ast.Name, ast.Attribute)):
            sym = self.p.resolve(mod, expr)
            if sym is not None and sym.kind == "assign" and sym.module is not None:
                return self.value(sym.module, sym.node, None, None, notes, depth + 1)
        if isinstance(expr, ast.Attribute) and (found := self._setting(mod, expr, scope)) is not None:
            s = found
            default = s.default
            text = ast.unparse(expr)
            if isinstance(default, str) or default is None:
                got = default or ""
                if notes is not None:
                    read = ", read as ''" if default is None else ""
                    notes.append(f"{text} = {default!r} by default ({s.file}:{s.line}){read}; env {s.env} overrides it")
                return got
        if isinstance(expr, ast.Call) and dotted(expr.func) in GETENV and expr.args:
            name = literal(expr.args[0])
            default = literal(expr.args[1]) if len(expr.args) > 1 else next(
                (literal(k.value) for k in expr.keywords if k.arg == "default"), None)
            if isinstance(name, str) and (isinstance(default, str) or default is None):
                if notes is not None:
                    notes.append(f"{ast.unparse(expr)}: env {name} overrides the default {default!r}")
                return default or ""
        return "{" + (dotted(expr) or "?") + "}"

    def written(self, expr: ast.AST | None, env=None) -> str:
        """The path expression as written (literal parts kept, the rest as ``{expr}``; a
        loop variable as the element it is bound to)."""
        if expr is None:
            return ""
        if isinstance(expr, ast.Name) and env and expr.id in env:
            return self.written(env[expr.id][1])
        val = literal(expr)
        if isinstance(val, str):
            return val
        if isinstance(expr, ast.JoinedStr):
            return "".join(v.value if isinstance(v, ast.Constant) else self.written(v.value, env)
                           for v in expr.values)
        if isinstance(expr, ast.BinOp) and isinstance(expr.op, ast.Add):
            return self.written(expr.left, env) + self.written(expr.right, env)
        return "{" + ast.unparse(expr) + "}"

    # -- settings --------------------------------------------------------------------
    def _setting(self, mod, expr: ast.Attribute, scope):
        """The settings-model field ``expr`` reads (``settings.X``, ``get_settings().X``,
        ``config.settings.X``), when the object is an instance of a settings class."""
        model = self.model
        if model is None:
            return None
        cls = self.instance_class(mod, expr.value, scope, 0)
        if cls is None:
            return None
        cmod, cnode = cls
        names = {cnode.name} | {b.rsplit(":", 1)[-1].rsplit(".", 1)[-1] for b in self.p.class_bases(cmod, cnode)}
        for s in model.settings:
            if s.name == expr.attr and s.owner in names:
                return s
        return None

    def instance_class(self, mod, expr, scope=None, depth=0):
        """(module, ClassDef) of the project class ``expr`` is an instance of: ``Cls()``,
        ``make()`` / ``Cls.new_instance()`` returning one (``cls(...)`` included), or a
        variable assigned one. When the returned value cannot be followed (a settings
        factory choosing a class per environment), the declared type stands for it: the
        function's return annotation (``def get_settings() -> BaseSettingsCls``) or the
        module variable's (``settings: BaseSettingsCls = get_settings()``)."""
        if depth > 6 or expr is None:
            return None
        if isinstance(expr, ast.Call):
            sym = self.p.resolve(mod, expr.func)
            if sym is None or sym.module is None:
                return None
            if sym.kind == "class":
                return sym.module, sym.node
            if sym.kind == "func":
                owner = self._owner(sym)
                for ret in own_nodes(sym.node):
                    if isinstance(ret, ast.Return) and ret.value is not None:
                        if owner is not None and isinstance(ret.value, ast.Call) \
                                and dotted(ret.value.func) in ("cls", "self.__class__"):
                            return owner
                        found = self.instance_class(sym.module, ret.value, sym.node, depth + 1)
                        if found:
                            return found
                return self._declared(sym.module, sym.node.returns)
            return None
        if isinstance(expr, ast.Name) and scope is not None:
            local = self.b.scope_assigns.get(id(scope), {})
            if expr.id in local:
                return self.instance_class(mod, local[expr.id], scope, depth + 1)
        if isinstance(expr, (ast.Name, ast.Attribute)):
            sym = self.p.resolve(mod, expr)
            if sym is not None and sym.kind == "assign" and sym.module is not None:
                return self.instance_class(sym.module, sym.node, None, depth + 1) or \
                    self._declared(sym.module, next((st.annotation for st in sym.module.tree.body
                                                     if isinstance(st, ast.AnnAssign) and st.value is sym.node), None))
        return None

    def _declared(self, mod, ann):
        """(module, ClassDef) of the project class an annotation names (``Cls``,
        ``Cls | None``, ``Optional[Cls]``, ``"Cls"``); None for anything else."""
        if ann is None:
            return None
        if isinstance(ann, ast.Constant) and isinstance(ann.value, str):
            try:
                ann = ast.parse(ann.value, mode="eval").body
            except SyntaxError:
                return None
        for node in ast.walk(ann):
            if isinstance(node, (ast.Name, ast.Attribute)):
                sym = self.p.resolve(mod, node)
                if sym is not None and sym.kind == "class" and sym.module is not None:
                    return sym.module, sym.node
        return None


    def _owner(self, sym):
        """(module, ClassDef) of the class a method symbol (``mod:Cls.meth``) belongs to."""
        qual = sym.qualname.rsplit(":", 1)[-1]
        if "." not in qual:
            return None
        cls = sym.module.defs.get(qual.split(".", 1)[0])
        return (sym.module, cls) if isinstance(cls, ast.ClassDef) else None

    def method(self, mod, expr: ast.AST, scope=None):
        """``instance.method`` (``auth.get_current_user`` where ``auth = Provider()``) as a
        Symbol of the method, looked up in the class and its project bases."""
        from ..code.pymodules import FuncNode, Symbol
        if not isinstance(expr, ast.Attribute):
            return None
        found = self.instance_class(mod, expr.value, scope)
        seen = 0
        while found is not None and seen < 8:
            cmod, cls = found
            meth = next((n for n in cls.body if isinstance(n, FuncNode) and n.name == expr.attr), None)
            if meth is not None:
                return Symbol("func", cmod, meth, f"{cmod.name}:{cls.name}.{expr.attr}")
            base = next((b for b in cls.bases if (bs := self.p.resolve(cmod, b)) is not None and bs.kind == "class"), None)
            bs = self.p.resolve(cmod, base) if base is not None else None
            found = (bs.module, bs.node) if bs is not None else None
            seen += 1
        return None


def iter_rows(builder, mod: Module, expr: ast.AST, scope, depth: int = 0) -> list[tuple]:
    """(module, element expression, scope) of every element ``for x in expr`` iterates over,
    when ``expr`` is a literal sequence, a variable holding one (local, module-level or
    imported) or a concatenation of those; ``[]`` when unknown."""
    if depth > 8 or expr is None:
        return []
    if isinstance(expr, (ast.List, ast.Tuple, ast.Set)):
        out = []
        for e in expr.elts:
            if isinstance(e, ast.Starred):
                out += iter_rows(builder, mod, e.value, scope, depth + 1)
            else:
                out.append((mod, e, scope))
        return out
    if isinstance(expr, ast.BinOp) and isinstance(expr.op, ast.Add):
        return iter_rows(builder, mod, expr.left, scope, depth + 1) + iter_rows(builder, mod, expr.right, scope, depth + 1)
    if isinstance(expr, ast.Name) and scope is not None:
        local = builder.scope_assigns.get(id(scope), {})
        if expr.id in local:
            return iter_rows(builder, mod, local[expr.id], scope, depth + 1)
    if isinstance(expr, (ast.Name, ast.Attribute)):
        sym = builder.p.resolve(mod, expr)
        if sym is not None and sym.kind == "assign" and sym.module is not None:
            return iter_rows(builder, sym.module, sym.node, None, depth + 1)
    return []


def bind(target: ast.AST, row: tuple, env: dict) -> None:
    """Bind a loop target (``router`` or ``(prefix, router)``) to one element."""
    mod, expr, scope = row
    if isinstance(target, ast.Name):
        env[target.id] = row
    elif isinstance(target, (ast.Tuple, ast.List)) and isinstance(expr, (ast.Tuple, ast.List)) \
            and len(target.elts) == len(expr.elts):
        for t, e in zip(target.elts, expr.elts):
            bind(t, (mod, e, scope), env)
