"""The target's Python modules as a static symbol table: module names, imports (aliases and
relative imports included) and top-level definitions, so analyses can follow a name from
one module to the function, class or assignment it denotes, without importing anything.

Used by :mod:`auditlib.facts.routes` and :mod:`auditlib.tenancy.scoping`. Nothing here is specific to
FastAPI or SQLAlchemy. (Jedi / astroid could resolve names too, but both import or infer
far more than needed and are slow on large trees; plain AST lookups suffice here.)
"""
from __future__ import annotations

import ast
import hashlib
from dataclasses import dataclass, field
from pathlib import PurePosixPath

from .pyast import dotted, inner

FuncNode = (ast.FunctionDef, ast.AsyncFunctionDef)


@dataclass
class Module:
    name: str  # dotted, e.g. "app.api.routes_admin"
    path: str  # file relative to the target root
    tree: ast.Module
    is_package: bool = False
    imports: dict[str, tuple[str, str | None]] = field(default_factory=dict)  # local -> (module, attr)
    defs: dict[str, ast.AST] = field(default_factory=dict)  # top-level def / class
    assigns: dict[str, ast.AST] = field(default_factory=dict)  # top-level NAME = value (last one)
    stars: list[str] = field(default_factory=list)  # modules re-exported by ``from x import *``

    @property
    def package(self) -> str:
        return self.name if self.is_package else self.name.rpartition(".")[0]


@dataclass(frozen=True)
class Symbol:
    """What a name denotes: a project def/class/assignment/module, or an external dotted name."""
    kind: str  # "func" | "class" | "assign" | "module" | "external"
    module: Module | None
    node: ast.AST | None
    qualname: str  # "pkg.mod:name" for project symbols, "fastapi.Depends" for externals

    @property
    def short(self) -> str:
        return self.qualname.rsplit(":", 1)[-1].rsplit(".", 1)[-1]


class Project:
    """Every parseable, non-test, non-migration Python module of the target."""

    def __init__(self, files, is_excluded=lambda p: False):
        self.modules: dict[str, Module] = {}
        self.by_path: dict[str, Module] = {}
        paths = {f.path for f in files}
        for f in files:
            if is_excluded(f.path) or f.tree is None:
                continue
            name, is_pkg = module_name(f.path, paths)
            mod = Module(name, f.path, f.tree, is_pkg)
            self.modules.setdefault(name, mod)
            self.by_path[f.path] = mod
        self._suffix: dict[str, list[str]] = {}
        for name in self.modules:
            parts = name.split(".")
            for i in range(1, len(parts)):
                self._suffix.setdefault(".".join(parts[i:]), []).append(name)
        # modules below a directory without __init__.py (a namespace package) are named from
        # their nearest package; imports name them by the full path: index those names too
        self._namespaced: dict[str, list[Module]] = {}
        for mod in self.by_path.values():
            full = PurePosixPath(mod.path).with_suffix("").parts
            full = full[:-1] if mod.is_package else full
            if ".".join(full[-len(mod.name.split(".")):]) == mod.name and len(full) > len(mod.name.split(".")):
                for i in range(0, len(full) - len(mod.name.split("."))):
                    self._namespaced.setdefault(".".join(full[i:]), []).append(mod)
        for mod in self.by_path.values():
            _fill(mod)

    # -- lookups --------------------------------------------------------------------
    def module(self, name: str) -> Module | None:
        mod = self.modules.get(name)
        if mod is None and len(self._suffix.get(name, [])) == 1:
            mod = self.modules[self._suffix[name][0]]
        if mod is None and len(self._namespaced.get(name, [])) == 1:
            mod = self._namespaced[name][0]
        return mod

    def resolve_name(self, mod: Module, name: str, depth: int = 0) -> Symbol | None:
        """The symbol a module-level ``name`` denotes in ``mod`` (following imports)."""
        if depth > 12:
            return None
        if name in mod.defs:
            node = mod.defs[name]
            kind = "class" if isinstance(node, ast.ClassDef) else "func"
            return Symbol(kind, mod, node, f"{mod.name}:{name}")
        if name in mod.assigns:
            return Symbol("assign", mod, mod.assigns[name], f"{mod.name}:{name}")
        if name in mod.imports:
            target, attr = mod.imports[name]
            tmod = self.module(target)
            if attr is None:
                return Symbol("module", tmod, None, target) if tmod else Symbol("external", None, None, target)
            if tmod is not None:
                sym = self.resolve_name(tmod, attr, depth + 1)
                if sym is not None:
                    return sym
            sub = self.module(f"{target}.{attr}")
            if sub is not None:
                return Symbol("module", sub, None, sub.name)
            return Symbol("external", None, None, f"{target}.{attr}")
        for target in mod.stars:  # ``from .database import *`` (a package re-exporting its models)
            tmod = self.module(target)
            if tmod is not None and tmod is not mod and _exported(tmod, name):
                sym = self.resolve_name(tmod, name, depth + 1)
                if sym is not None:
                    return sym
        return None

    def resolve(self, mod: Module, expr: ast.AST, local: dict | None = None) -> Symbol | None:
        """The symbol of a Name / Attribute chain (``svc.get_booking``, ``fastapi.Depends``)."""
        if isinstance(expr, ast.Name):
            if local and expr.id in local:
                return None  # a local variable shadows the module-level name
            return self.resolve_name(mod, expr.id)
        if isinstance(expr, ast.Attribute):
            base = self.resolve(mod, expr.value, local)
            if base is None:
                return None
            if base.kind == "module" and base.module is not None:
                sym = self.resolve_name(base.module, expr.attr)
                if sym is None and (sub := self.module(f"{base.module.name}.{expr.attr}")):
                    return Symbol("module", sub, None, sub.name)
                return sym
            if base.kind == "external":
                return Symbol("external", None, None, f"{base.qualname}.{expr.attr}")
            if base.kind == "class" and base.module is not None:
                meth = next((n for n in base.node.body if isinstance(n, FuncNode) and n.name == expr.attr), None)
                if meth is not None:
                    return Symbol("func", base.module, meth, f"{base.qualname}.{expr.attr}")
        return None

    def external_name(self, mod: Module, expr: ast.AST) -> str:
        """Dotted external name of ``expr`` (``sqlalchemy.select``), or its plain dotted text."""
        sym = self.resolve(mod, expr)
        if sym is not None and sym.kind == "external":
            return sym.qualname
        return dotted(expr)

    def class_bases(self, mod: Module, cls: ast.ClassDef, depth: int = 0) -> list[str]:
        """Qualified names of every base class, transitively through project classes."""
        out = []
        for b in cls.bases:
            target = b.value if isinstance(b, ast.Subscript) else b
            sym = self.resolve(mod, target)
            if sym is None:
                out.append(dotted(target))
            elif sym.kind == "class" and depth < 10:
                out.append(sym.qualname)
                out += self.class_bases(sym.module, sym.node, depth + 1)
            else:
                out.append(sym.qualname)
        return out

    def fingerprint(self) -> str:
        h = hashlib.sha256()
        for path in sorted(self.by_path):
            h.update(path.encode())
        return h.hexdigest()


def module_name(path: str, paths: set[str]) -> tuple[str, bool]:
    """Dotted module name from the package structure (``__init__.py`` up the tree)."""
    p = PurePosixPath(path)
    parts = list(p.parts[:-1])
    is_pkg = p.name in ("__init__.py", "__init__.pyi")
    top = len(parts)
    while top > 0 and ("/".join(parts[:top]) + "/__init__.py") in paths:
        top -= 1
    pkg_parts = parts[top:]
    if not pkg_parts and parts and top == len(parts):
        pkg_parts = []  # a plain module in a non-package directory: top-level name
    name_parts = pkg_parts + ([] if is_pkg else [p.stem])
    return ".".join(name_parts) or p.stem, is_pkg


def _fill(mod: Module) -> None:
    for node in mod.tree.body:
        _collect(mod, node)


def _collect(mod: Module, node: ast.AST) -> None:
    if isinstance(node, ast.Import):
        for a in node.names:
            if a.asname:
                mod.imports[a.asname] = (a.name, None)
            else:
                top = a.name.split(".")[0]
                mod.imports[top] = (top, None)
    elif isinstance(node, ast.ImportFrom):
        base = node.module or ""
        if node.level:
            pkg = mod.package.split(".") if mod.package else []
            pkg = pkg[: len(pkg) - (node.level - 1)] if node.level > 1 else pkg
            base = ".".join([*pkg, *([node.module] if node.module else [])])
        for a in node.names:
            if a.name != "*":
                mod.imports[a.asname or a.name] = (base, a.name)
            elif base not in mod.stars:
                mod.stars.append(base)
    elif isinstance(node, (*FuncNode, ast.ClassDef)):
        mod.defs[node.name] = node
    elif isinstance(node, ast.Assign):
        for t in node.targets:
            if isinstance(t, ast.Name):
                mod.assigns[t.id] = node.value
    elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.value is not None:
        mod.assigns[node.target.id] = node.value
    elif isinstance(node, (ast.If, ast.Try)):  # `if TYPE_CHECKING:` / try-import fallbacks
        for child in [*node.body, *getattr(node, "orelse", []), *getattr(node, "finalbody", []),
                      *[s for h in getattr(node, "handlers", []) for s in h.body]]:
            _collect(mod, child)


def _exported(mod: Module, name: str) -> bool:
    """Whether ``from mod import *`` binds ``name``: listed in its ``__all__`` when it has a
    literal one, else any public name."""
    names = mod.assigns.get("__all__")
    if isinstance(names, (ast.List, ast.Tuple)):
        return any(isinstance(e, ast.Constant) and e.value == name for e in names.elts)
    return not name.startswith("_")


_MEMO: dict[tuple, Project] = {}


def project(ctx) -> Project:
    """The project of ``ctx`` (application code: tests and migrations left out), memoised
    per audit context and, across contexts, per target root and file contents."""
    mine = ctx.__dict__.get("_auditlib_project")
    if mine is not None:
        return mine
    lay = ctx.layout
    files = [f for f in ctx.index.select("*.py") if not lay.is_test(f.path) and not lay.is_migration(f.path)]
    key = (str(ctx.root), hashlib.sha256("".join(f"{f.path}:{f.sha256}" for f in files).encode()).hexdigest())
    if key not in _MEMO:
        if len(_MEMO) > 8:
            _MEMO.clear()
        _MEMO[key] = Project(files)
    ctx.__dict__["_auditlib_project"] = _MEMO[key]
    return _MEMO[key]


def functions(mod: Module):
    """Every function of a module with its qualified name (methods as ``Class.method``)."""
    def walk(body, prefix):
        for node in body:
            if isinstance(node, FuncNode):
                yield f"{prefix}{node.name}", node
                yield from walk(node.body, f"{prefix}{node.name}.")
            elif isinstance(node, ast.ClassDef):
                yield from walk(node.body, f"{prefix}{node.name}.")
            elif isinstance(node, (ast.If, ast.Try, ast.With)):
                yield from walk([*node.body, *getattr(node, "orelse", [])], prefix)
    yield from walk(mod.tree.body, "")


def own_nodes(func: ast.AST) -> list[ast.AST]:
    """Nodes of a function's body, not descending into nested functions or classes."""
    return inner(func)
