"""Dependency lists held in variables (a helper of :mod:`.routes`).

``APIRouter(dependencies=deps)``, ``@router.post(..., dependencies=_limits)`` and
``include_router(r, dependencies=deps)`` often name a list built elsewhere: a module-level
list (``_limits = [] if disabled() else [Depends(limiter)]``) or a local one in the
factory that builds the router::

    def create_router(authentication_enabled: bool) -> APIRouter:
        dependencies = [Depends(prevent_access_in_read_only_mode)]
        if authentication_enabled:
            dependencies.append(Depends(is_authenticated))
        return APIRouter(prefix="/v1", dependencies=dependencies)

:func:`dep_rows` gives every element such a value holds where it is used: literals,
``*starred`` parts, ``a + b``, ``x if c else y``, names bound in the same function or at
module level (also imported), followed by the ``.append`` / ``.extend`` / ``.insert`` /
``+=`` made to them before the use; each element carries the condition it is added under
(the ``if`` tests around the ``append``, the test of a conditional expression, ``""`` when
always), as a reader would say it: ``authentication_enabled``, ``not (disabled())``.
"""
from __future__ import annotations

import ast

from ..code.pyast import inner, parent_map
from ..code.pymodules import FuncNode, Module

_SCOPES = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)


def dep_rows(builder, mod: Module, expr: ast.AST | None, scope, at: int | None = None,
             cond: str = "", depth: int = 0) -> list[tuple[Module, ast.AST, object, str]]:
    """(module, element expression, scope, condition) of every element the dependencies
    value ``expr`` holds when used at line ``at`` of ``scope`` (a function, or None for the
    module); ``[]`` when unknown (a parameter, a call)."""
    if depth > 8 or expr is None:
        return []
    if isinstance(expr, (ast.List, ast.Tuple, ast.Set)):
        out = []
        for e in expr.elts:
            if isinstance(e, ast.Starred):
                out += dep_rows(builder, mod, e.value, scope, at, cond, depth + 1)
            else:
                out.append((mod, e, scope, cond))
        return out
    if isinstance(expr, ast.BinOp) and isinstance(expr.op, ast.Add):
        return (dep_rows(builder, mod, expr.left, scope, at, cond, depth + 1)
                + dep_rows(builder, mod, expr.right, scope, at, cond, depth + 1))
    if isinstance(expr, ast.IfExp):
        test = ast.unparse(expr.test)
        return (dep_rows(builder, mod, expr.body, scope, at, _and(cond, test), depth + 1)
                + dep_rows(builder, mod, expr.orelse, scope, at, _and(cond, _negate(expr.test)), depth + 1))
    if isinstance(expr, ast.Call) and isinstance(expr.func, ast.Name) and expr.func.id in ("list", "tuple") \
            and len(expr.args) == 1:
        return dep_rows(builder, mod, expr.args[0], scope, at, cond, depth + 1)
    if isinstance(expr, ast.Name) and isinstance(scope, FuncNode):
        if expr.id in _params(scope):
            return []  # what a caller passes: unknown here
        if _binds(scope, expr.id):
            return _built(builder, mod, scope, expr.id, at, cond, depth)
    if isinstance(expr, (ast.Name, ast.Attribute)):
        sym = builder.p.resolve(mod, expr)
        if sym is not None and sym.kind == "assign" and sym.module is not None:
            name = sym.qualname.rsplit(":", 1)[-1]
            same = sym.module is mod and isinstance(expr, ast.Name) and scope is None
            return _built(builder, sym.module, None, name, at if same else None, cond, depth)
    return []


def _built(builder, mod: Module, scope, name: str, at: int | None, cond: str, depth: int) -> list[tuple]:
    """The elements of the list ``name`` of ``scope`` (None: the module) as built by the
    statements before line ``at`` (every statement when ``at`` is None): an unconditional
    assignment starts it afresh, a conditional one or ``append`` / ``extend`` / ``insert``
    / ``+=`` adds under the conditions around it."""
    owner = scope if scope is not None else mod.tree
    parents = parent_map(mod.tree)
    rows: list[tuple] = []
    for node in inner(owner, _SCOPES, keep_scopes=False):
        if at is not None and getattr(node, "lineno", 0) >= at:
            break
        when = _conditions(node, owner, parents)
        value, add = None, True
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == name for t in node.targets) \
                or isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.target.id == name:
            value, add = node.value, bool(when)  # an AnnAssign without a value: None, skipped
        elif isinstance(node, ast.AugAssign) and isinstance(node.target, ast.Name) and node.target.id == name \
                and isinstance(node.op, ast.Add):
            value = node.value
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) \
                and isinstance(node.func.value, ast.Name) and node.func.value.id == name:
            meth, args = node.func.attr, node.args
            if meth == "append" and len(args) == 1:
                value = ast.List(elts=[args[0]], ctx=ast.Load())
            elif meth == "insert" and len(args) == 2:
                value = ast.List(elts=[args[1]], ctx=ast.Load())
            elif meth == "extend" and len(args) == 1:
                value = args[0]
        if value is None:
            continue
        got = dep_rows(builder, mod, value, scope, node.lineno, _and(cond, when), depth + 1)
        rows = rows + got if add else got
    return rows


def _conditions(node: ast.AST, owner: ast.AST, parents: dict) -> str:
    """The ``if`` tests (``not (...)`` in an ``else``) between ``node`` and ``owner``."""
    out, child, cur = [], node, parents.get(id(node))
    while cur is not None and cur is not owner:
        if isinstance(cur, ast.If) and child is not cur.test:
            out.append(ast.unparse(cur.test) if any(child is n for n in cur.body) else _negate(cur.test))
        child, cur = cur, parents.get(id(cur))
    return " and ".join(reversed(out))


def _and(a: str, b: str) -> str:
    return f"{a} and {b}" if a and b else a or b


def _negate(test: ast.AST) -> str:
    if isinstance(test, ast.UnaryOp) and isinstance(test.op, ast.Not):
        return ast.unparse(test.operand)
    text = ast.unparse(test)
    return f"not {text}" if isinstance(test, (ast.Name, ast.Attribute, ast.Call)) else f"not ({text})"


def _params(func) -> set[str]:
    a = func.args
    return {x.arg for x in [*a.posonlyargs, *a.args, *a.kwonlyargs]} | (
        {a.vararg.arg} if a.vararg else set()) | ({a.kwarg.arg} if a.kwarg else set())


def _binds(func, name: str) -> bool:
    return any(isinstance(n, (ast.Assign, ast.AnnAssign)) and any(
        isinstance(t, ast.Name) and t.id == name for t in (n.targets if isinstance(n, ast.Assign) else [n.target]))
        for n in inner(func, _SCOPES, keep_scopes=False))
