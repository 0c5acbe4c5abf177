"""Follow calls across the target's modules by resolving imports (AST only, no import).

``CallGraph(ctx)`` knows every function (top-level and methods) of the parseable Python
files; :meth:`CallGraph.resolve` maps a call to the function it names through
``from x import f``, ``from x import mod as m`` + ``m.f(...)``, ``import x.y as m`` and
same-module definitions; :meth:`CallGraph.reach` walks callees breadth-first. Method
calls on arbitrary objects (``obj.f()``) are not resolved (no type inference).
"""
from __future__ import annotations

import ast
from collections import deque
from dataclasses import dataclass
from functools import cached_property

from .pyast import dotted, of_type

FuncNode = (ast.FunctionDef, ast.AsyncFunctionDef)


@dataclass(eq=False)
class Func:
    file: str
    module: str
    qualname: str  # "f" or "Class.f"
    node: ast.FunctionDef | ast.AsyncFunctionDef

    @property
    def name(self) -> str:
        return self.node.name

    @property
    def line(self) -> int:
        return self.node.lineno

    @property
    def is_async(self) -> bool:
        return isinstance(self.node, ast.AsyncFunctionDef)

    def __repr__(self) -> str:
        return f"{self.file}:{self.line} {self.qualname}"


def module_name(path: str) -> str:
    mod = path.removesuffix(".py")
    mod = mod.removesuffix("/__init__").replace("/", ".")
    return mod.removeprefix("src.")


class CallGraph:
    def __init__(self, ctx, files=None):
        self.ctx = ctx
        files = files if files is not None else ctx.index.python_files()
        self.files = [f for f in files if f.path.endswith(".py") and f.tree is not None]
        self.modules = {module_name(f.path): f for f in self.files}
        self.funcs: dict[tuple[str, str], Func] = {}
        self.by_file: dict[str, list[Func]] = {}
        self.imports: dict[str, dict[str, tuple[str, str | None]]] = {}
        self._callees: dict[int, list] = {}
        for f in self.files:
            mod = module_name(f.path)
            funcs = []
            for node in f.tree.body:
                if isinstance(node, FuncNode):
                    funcs.append(Func(f.path, mod, node.name, node))
                elif isinstance(node, ast.ClassDef):
                    funcs += [Func(f.path, mod, f"{node.name}.{n.name}", n)
                              for n in node.body if isinstance(n, FuncNode)]
            self.by_file[f.path] = funcs
            for fn in funcs:
                self.funcs[(mod, fn.qualname)] = fn
            self.imports[f.path] = _imports(of_type(f.tree, (ast.Import, ast.ImportFrom)), mod,
                                            f.path.endswith("__init__.py"))

    @cached_property
    def all_funcs(self) -> list[Func]:
        return [fn for funcs in self.by_file.values() for fn in funcs]

    def enclosing(self, file: str, line: int) -> Func | None:
        """The innermost known function of ``file`` containing ``line``."""
        best = None
        for fn in self.by_file.get(file, []):
            if fn.node.lineno <= line <= (fn.node.end_lineno or fn.node.lineno):
                if best is None or fn.node.lineno >= best.node.lineno:
                    best = fn
        return best

    def resolve_name(self, file: str, name: str) -> Func | None:
        """The function a dotted name (``f``, ``svc.f``, ``pkg.mod.f``) refers to in ``file``."""
        mod = module_name(file)
        parts = name.split(".")
        if len(parts) == 1 and (mod, name) in self.funcs:
            return self.funcs[(mod, name)]
        imp = self.imports.get(file, {}).get(parts[0])
        if imp is None:
            return None
        target_mod, attr = imp
        rest = parts[1:]
        if attr is not None:  # from target_mod import attr
            if not rest and (target_mod, attr) in self.funcs:
                return self.funcs[(target_mod, attr)]
            if len(rest) == 1 and (target_mod, f"{attr}.{rest[0]}") in self.funcs:  # Class.method
                return self.funcs[(target_mod, f"{attr}.{rest[0]}")]
            target_mod = f"{target_mod}.{attr}"  # it was a submodule
        while len(rest) > 1 and f"{target_mod}.{rest[0]}" in self.modules:
            target_mod, rest = f"{target_mod}.{rest[0]}", rest[1:]
        if len(rest) == 1:
            return self.funcs.get((target_mod, rest[0]))
        if len(rest) == 2:  # Class.method
            return self.funcs.get((target_mod, f"{rest[0]}.{rest[1]}"))
        return None

    def resolve(self, file: str, call: ast.Call) -> Func | None:
        name = dotted(call.func)
        return self.resolve_name(file, name) if name else None

    def callees(self, fn: Func) -> list[tuple[ast.Call, Func]]:
        memo = self._callees.get(id(fn.node))
        if memo is not None:
            return memo
        out = []
        for node in of_type(fn.node, ast.Call):
            target = self.resolve(fn.file, node)
            if target is not None and target is not fn:
                out.append((node, target))
            # functions passed by name (add_task(f), run_in_executor(None, f), Depends(f))
            for arg in list(node.args) + [k.value for k in node.keywords]:
                if isinstance(arg, (ast.Name, ast.Attribute)):
                    ref = self.resolve_name(fn.file, dotted(arg))
                    if ref is not None and ref is not fn:
                        out.append((node, ref))
        self._callees[id(fn.node)] = out
        return out

    def reach(self, fn: Func, depth: int = 4) -> list[Func]:
        """``fn`` and every function it calls, up to ``depth`` calls away (BFS order)."""
        seen = {id(fn): fn}
        queue = deque([(fn, 0)])
        while queue:
            cur, d = queue.popleft()
            if d >= depth:
                continue
            for _call, nxt in self.callees(cur):
                if id(nxt) not in seen:
                    seen[id(nxt)] = nxt
                    queue.append((nxt, d + 1))
        return list(seen.values())


def shared(ctx, key: str, factory):
    """A per-audit memo (stored on the context) so checks share one analysis."""
    store = ctx.__dict__.setdefault("_auditlib_shared", {})
    if key not in store:
        store[key] = factory()
    return store[key]


def app_graph(ctx) -> CallGraph:
    """The call graph of the application code (tests and migrations excluded), shared."""
    return shared(ctx, "app_graph", lambda: CallGraph(ctx, ctx.layout.app_sources(ctx.index)))


def _imports(nodes, mod: str, is_pkg: bool) -> dict[str, tuple[str, str | None]]:
    """local name -> (module, attribute or None) for the module's imports."""
    out: dict[str, tuple[str, str | None]] = {}
    pkg = mod if is_pkg else mod.rpartition(".")[0]
    for node in nodes:
        if isinstance(node, ast.Import):
            for a in node.names:
                if a.asname:
                    out[a.asname] = (a.name, None)
                else:
                    out[a.name.split(".")[0]] = (a.name.split(".")[0], None)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = pkg.split(".") if pkg else []
                parts = parts[: len(parts) - (node.level - 1)] if node.level > 1 else parts
                base = ".".join(p for p in parts + ([node.module] if node.module else []) if p)
            for a in node.names:
                if a.name != "*":
                    out[a.asname or a.name] = (base, a.name)
    return out
