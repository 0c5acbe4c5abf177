"""Which app or router an expression denotes (the object resolution of :mod:`.routes`).

Apps and routers are recognised by what they are built from, never by a variable's name:
``FastAPI`` / ``Starlette`` / ``APIRouter``, project subclasses of them at any depth, and
names bound to a class a project function returns (``APIRouter =
get_api_router_class(CustomRoute)``, ``partial(APIRouter, ...)``). An expression is followed
through local and module variables, imports (``__init__`` re-exports included), functions
returning one (``create_app()``), functions returning the router they were given
(``include_routers(APIRouter())``), parameters (every app or router any call passes to
``def register_routes(app)``, along call chains) and loop variables (one binding per
element of ``for router in ROUTERS`` when the sequence is known: :func:`.route_values.iter_rows`).
"""
from __future__ import annotations

import ast
from typing import TYPE_CHECKING

from ..code.pyast import dotted, walk
from ..code.pymodules import FuncNode, Module, Symbol, own_nodes
from .route_values import bind, iter_rows

if TYPE_CHECKING:
    from .routes import _Obj

HTTP_METHODS = ("get", "post", "put", "patch", "delete", "options", "head", "trace")
_OPERATIONS = {"include_router", "add_api_route", "mount", "add_middleware", "add_api_websocket_route"}
_KINDS = (ast.Assign, ast.AnnAssign, ast.For, ast.AsyncFor, ast.FunctionDef, ast.AsyncFunctionDef, ast.Call,
          ast.Return)
APP_CLASSES = {"FastAPI", "Starlette"}
ROUTER_CLASSES = {"APIRouter"}


class ObjectResolver:
    """Mixin of the route builder: needs ``p`` (Project), ``objs``, ``inline``,
    ``scope_assigns``, ``loops``, ``params``, ``kind_memo`` and :meth:`scopes`."""

    def ctor_kind(self, mod: Module, call: ast.Call) -> str | None:
        """"app" / "router" when ``call`` builds a FastAPI / Starlette app or an APIRouter:
        the class itself, a project subclass at any depth, or a name bound to what a
        project function returns (``APIRouter = get_api_router_class(CustomRoute)``)."""
        sym = self.p.resolve(mod, call.func)
        kind = self._class_kind(sym, 0) if sym is not None else None
        if kind is None and (sym is None or sym.kind == "external"):
            return _named_kind(dotted(call.func).rsplit(".", 1)[-1])
        return kind

    def _class_kind(self, sym: Symbol | None, depth: int) -> str | None:
        if sym is None or depth > 6:
            return None
        if sym.kind == "external":
            return _named_kind(sym.short)
        if sym.kind == "class":
            key = id(sym.node)
            if key not in self.kind_memo:
                self.kind_memo[key] = None
                names = [sym.short, *(b.rsplit(":", 1)[-1].rsplit(".", 1)[-1]
                                      for b in self.p.class_bases(sym.module, sym.node))]
                self.kind_memo[key] = next((k for k in map(_named_kind, names) if k), None)
            return self.kind_memo[key]
        if sym.kind == "assign" and sym.module is not None:
            return self._value_kind(sym.module, sym.node, None, depth + 1)
        return None

    def _value_kind(self, mod, expr, func, depth) -> str | None:
        """The kind of the class a value denotes (``X``, ``factory(...)``, ``partial(X, ...)``)."""
        if depth > 6 or expr is None:
            return None
        if isinstance(expr, ast.Name) and func is not None:
            nested = next((n for n in func.body if isinstance(n, ast.ClassDef) and n.name == expr.id), None)
            if nested is not None:
                return self._class_kind(Symbol("class", mod, nested, f"{mod.name}:{nested.name}"), depth + 1)
        if isinstance(expr, (ast.Name, ast.Attribute)):
            return self._class_kind(self.p.resolve(mod, expr), depth + 1)
        if isinstance(expr, ast.Call):
            if dotted(expr.func).rsplit(".", 1)[-1] == "partial" and expr.args:
                return self._value_kind(mod, expr.args[0], func, depth + 1)
            sym = self.p.resolve(mod, expr.func)
            if sym is not None and sym.kind == "func":
                for ret in own_nodes(sym.node):
                    if isinstance(ret, ast.Return) and ret.value is not None:
                        k = self._value_kind(sym.module, ret.value, sym.node, depth + 1)
                        if k:
                            return k
        return None

    # -- functions that receive an app or a router -----------------------------------------
    def _bind_params(self) -> None:
        """Which apps/routers each function parameter receives (``register_routes(app)``
        called from a factory or a module), for the functions that operate on a parameter
        (``app.include_router``, ``@router.get``, ``app.mount``...) or pass it on to one."""
        ops = {"include_router", "mount", "add_api_route", "add_middleware", "middleware", "api_route",
               "add_api_websocket_route", *HTTP_METHODS}
        cands: dict[int, set[str]] = {}
        funcs: dict[int, ast.AST] = {}
        calls: dict[str, list] = {}  # callee name -> (module, scope, call) with arguments
        for mod in self.p.by_path.values():
            for scope, nodes in self.scopes(mod):
                receivers = []
                for n in nodes:
                    if isinstance(n, ast.Call):
                        if n.args or n.keywords:
                            f = n.func
                            name = f.id if type(f) is ast.Name else f.attr if type(f) is ast.Attribute else ""
                            calls.setdefault(name, []).append((mod, scope, n))
                        receivers.append(n.func)
                    elif isinstance(n, FuncNode):
                        receivers += [d.func if isinstance(d, ast.Call) else d for d in n.decorator_list]
                if scope is None:
                    continue
                params = _param_names(scope)
                used = {a.value.id for a in receivers if isinstance(a, ast.Attribute) and a.attr in ops
                        and isinstance(a.value, ast.Name) and a.value.id in params}
                if used:
                    cands[id(scope)], funcs[id(scope)] = used, scope
        for _ in range(4):  # functions passing their parameter on to a candidate
            names = {funcs[k].name for k in cands}
            grew = False
            for mod, scope, call in (c for name in names for c in calls.get(name, ())):
                if scope is None:
                    continue
                params = _param_names(scope)
                passed = {a.id for a in [*call.args, *(k.value for k in call.keywords)]
                          if isinstance(a, ast.Name) and a.id in params} - cands.get(id(scope), set())
                if passed and self._callee_func(mod, call, scope, cands) is not None:
                    cands.setdefault(id(scope), set()).update(passed)
                    funcs[id(scope)] = scope
                    grew = True
            if not grew:
                break
        names = {funcs[k].name for k in cands}
        sites = [(mod, scope, call, f) for name in names for mod, scope, call in calls.get(name, ())
                 if (f := self._callee_func(mod, call, scope, cands)) is not None]
        for _ in range(4):  # bindings flow down call chains: main -> create_app -> register(app)
            changed = False
            for mod, scope, call, func in sites:
                for pname, arg in _arguments(func, call):
                    if pname not in cands[id(func)]:
                        continue
                    bound = self.params.setdefault(id(func), {}).setdefault(pname, [])
                    for o in self.objs_of(mod, arg, scope):
                        if all(o is not b for b in bound):
                            bound.append(o)
                            changed = True
            if not changed:
                break

    def _router_param(self, mod, expr, scope) -> bool:
        """``expr`` is a parameter annotated as an app or a router (``def setup(app: FastAPI)``)."""
        if not isinstance(expr, ast.Name) or scope is None:
            return False
        a = scope.args
        ann = next((x.annotation for x in [*a.posonlyargs, *a.args, *a.kwonlyargs] if x.arg == expr.id), None)
        if isinstance(ann, ast.Constant) and isinstance(ann.value, str):
            return _named_kind(ann.value.rsplit(".", 1)[-1]) is not None
        return ann is not None and self._value_kind(mod, ann, None, 0) is not None

    def _callee_func(self, mod, call, scope, cands):
        local = self.scope_assigns.get(id(scope)) if scope is not None else None
        sym = self.p.resolve(mod, call.func, local)
        if sym is not None and sym.kind == "func" and id(sym.node) in cands:
            return sym.node
        return None

    # -- object resolution ---------------------------------------------------------------
    def objs_of(self, mod: Module, expr: ast.AST, scope=None, env=None) -> list[_Obj]:
        """Every app/router ``expr`` may denote: a parameter may receive several."""
        if isinstance(expr, ast.Name) and not (env and expr.id in env) and scope is not None \
                and expr.id in self.params.get(id(scope), {}):
            return list(self.params[id(scope)][expr.id])
        o = self.obj_of(mod, expr, scope, env=env)
        return [o] if o is not None else []

    def obj_of(self, mod: Module, expr: ast.AST, scope=None, depth=0, env=None) -> _Obj | None:
        if depth > 10 or expr is None:
            return None
        if isinstance(expr, ast.Await):
            expr = expr.value
        if isinstance(expr, ast.Name):
            if env and expr.id in env:
                emod, eexpr, escope = env[expr.id]
                return self.obj_of(emod, eexpr, escope, depth + 1)
            if scope is not None:
                o = self.objs.get((mod.name, id(scope), expr.id))
                if o is not None:
                    return o
                if bound := self.params.get(id(scope), {}).get(expr.id):
                    return bound[0]
                if isinstance(scope, FuncNode) and expr.id in _param_names(scope):
                    return None  # a parameter no call passes an app or router to shadows the module's names
            o = self.objs.get((mod.name, 0, expr.id))
            if o is not None:
                return o
            local = self.scope_assigns.get(id(scope), {}) if scope is not None else {}
            if expr.id in local:
                return self.obj_of(mod, local[expr.id], scope, depth + 1)
            sym = self.p.resolve(mod, expr)
            return self._obj_of_symbol(sym, depth)
        if isinstance(expr, ast.Attribute):
            sym = self.p.resolve(mod, expr)
            return self._obj_of_symbol(sym, depth)
        if isinstance(expr, ast.Call):
            if id(expr) in self.inline:
                return self.inline[id(expr)]
            sym = self.p.resolve(mod, expr.func, self.scope_assigns.get(id(scope)) if scope else None)
            if sym is not None and sym.kind == "func":
                for ret in own_nodes(sym.node):
                    if isinstance(ret, ast.Return) and ret.value is not None:
                        if isinstance(ret.value, ast.Name) and ret.value.id in _param_names(sym.node):
                            arg = dict(_arguments(sym.node, expr)).get(ret.value.id)  # returns what it was given
                            o = self.obj_of(mod, arg, scope, depth + 1) if arg is not None else None
                        else:
                            o = self.obj_of(sym.module, ret.value, sym.node, depth + 1)
                        if o is not None:
                            return o
        return None

    def _obj_of_symbol(self, sym: Symbol | None, depth: int) -> _Obj | None:
        if sym is None or sym.module is None:
            return None
        name = sym.qualname.rsplit(":", 1)[-1]
        o = self.objs.get((sym.module.name, 0, name))
        if o is not None:
            return o
        if sym.kind == "assign":
            return self.obj_of(sym.module, sym.node, None, depth + 1)
        return None

    def envs(self, mod, node, scope) -> list[dict | None]:
        """One binding of the loop variables ``node`` uses per iteration of the enclosing
        ``for`` loops over known sequences (``for router in ROUTERS: app.include_router(router)``);
        ``[None]`` outside loops."""
        line = node.lineno
        loops = [f for f in self.loops.get(id(scope) if scope else id(mod.tree), ())
                 if f.body[0].lineno <= line <= f.end_lineno]  # the loops around it, outermost first
        if not loops:
            return [None]
        used = {n.id for n in walk(node) if isinstance(n, ast.Name)}
        binders: dict[str, ast.AST] = {}
        for f in loops:  # an inner loop rebinding a name wins
            for t in walk(f.target):
                if isinstance(t, ast.Name) and t.id in used:
                    binders[t.id] = f
        if not binders:
            return [None]
        envs: list[dict] = [{}]
        for loop in {id(f): f for f in binders.values()}.values():
            rows = iter_rows(self, mod, loop.iter, scope)
            envs = [{**e, **b} for e in envs for row in rows for b in [_bound(loop.target, row)]][:500]
        return envs or [None]


def _named_kind(name: str) -> str | None:
    return "app" if name in APP_CLASSES else "router" if name in ROUTER_CLASSES else None


def _param_names(func) -> set[str]:
    a = func.args
    return {x.arg for x in [*a.posonlyargs, *a.args, *a.kwonlyargs]}


def _arguments(func, call: ast.Call) -> list[tuple[str, ast.AST]]:
    """(parameter, argument) pairs of ``call`` to ``func`` (``self`` skipped for a method call)."""
    a = func.args
    positional = [x.arg for x in [*a.posonlyargs, *a.args]]
    if positional and positional[0] in ("self", "cls") and isinstance(call.func, ast.Attribute):
        positional = positional[1:]
    pairs = [(name, arg) for name, arg in zip(positional, call.args) if not isinstance(arg, ast.Starred)]
    return pairs + [(k.arg, k.value) for k in call.keywords if k.arg]


def _bound(target, row) -> dict:
    env: dict = {}
    bind(target, row, env)
    return env
