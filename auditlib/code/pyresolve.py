"""Name resolution across the target's modules, from the AST only (nothing is imported).

What the reliability and performance checks need to "follow calls across modules":

- :func:`qualify` turns a call target into the fully qualified name it refers to through
  the module's imports (``SMTP(...)`` after ``from smtplib import SMTP`` is
  ``smtplib.SMTP``; ``r.get`` after ``import requests as r`` is ``requests.get``);
- :class:`Project` maps module names to index files and resolves a called name to the
  project function it runs (local def, ``from m import f``, ``import m; m.f``,
  ``from pkg import mod; mod.f``), and a ``settings.x`` attribute to the literal default
  of the settings field ``x``.

Jedi (installed with IPython) could infer more, but it works per cursor position and
costs tens of milliseconds per lookup; import-based resolution answers the call-shape
questions the checks ask at the cost of one dictionary per module.
"""
from __future__ import annotations

import ast
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Iterator

from .pyast import FUNCS, NOT_LITERAL, dotted, flat, inner, literal, of_type, parent_map, walk

if TYPE_CHECKING:  # the resolvers read the index through the audit context: types only
    from ..target.index import SourceFile

FuncDef = ast.FunctionDef | ast.AsyncFunctionDef


def import_map(tree: ast.Module) -> dict[str, str]:
    """Local name -> fully qualified name, for every import of the module (any depth).

    ``import a.b`` binds ``a`` -> ``a``; ``import a.b as c`` binds ``c`` -> ``a.b``;
    ``from a import b as c`` binds ``c`` -> ``a.b``. Relative imports keep their dots
    (resolved by :meth:`Project.absolute`). Memoised per tree; callers only read it.
    """
    f, i = flat(tree)
    out = f.memo.get(("import_map", i))
    if out is not None:
        return out
    out = f.memo[("import_map", i)] = {}
    for node in of_type(tree, (ast.Import, ast.ImportFrom)):
        if isinstance(node, ast.Import):
            for a in node.names:
                out[a.asname or a.name.split(".")[0]] = a.name if a.asname else a.name.split(".")[0]
        elif isinstance(node, ast.ImportFrom):
            mod = "." * node.level + (node.module or "")
            for a in node.names:
                if a.name != "*":
                    out[a.asname or a.name] = f"{mod}.{a.name}" if mod and not mod.endswith(".") else mod + a.name
    return out


def qualify(node: ast.AST, imports: dict[str, str]) -> str:
    """The qualified dotted name of a Name/Attribute chain (or a call's callee)."""
    name = dotted(node)
    if not name:
        return ""
    head, _, rest = name.partition(".")
    if head in imports:
        return imports[head] + ("." + rest if rest else "")
    return name


def functions(tree: ast.AST) -> Iterator[FuncDef]:
    return iter(of_type(tree, (ast.FunctionDef, ast.AsyncFunctionDef)))


def calls(node: ast.AST, *, nested: bool = False) -> Iterator[ast.Call]:
    """Calls inside ``node`` in source order; without ``nested``, not those inside nested
    function definitions or lambdas (they run later, elsewhere). Memoised per node: the
    index's trees are never mutated and many checks ask for the same function's calls."""
    f, i = flat(node)
    hit = f.memo.get(("calls", i, nested))
    if hit is None:
        found = [n for n in (walk(node)[1:] if nested else inner(node, FUNCS, keep_scopes=False))
                 if isinstance(n, ast.Call)]
        hit = f.memo[("calls", i, nested)] = sorted(found, key=lambda c: (c.lineno, c.col_offset))
    return iter(hit)


def parents(tree: ast.AST) -> dict[int, ast.AST]:
    """id(node) -> parent node, for walking outwards (enclosing with/try/def); memoised
    per tree (callers only read it)."""
    return parent_map(tree)


def enclosing_function(node: ast.AST, up: dict[int, ast.AST]) -> FuncDef | None:
    p = up.get(id(node))
    while p is not None and not isinstance(p, (ast.FunctionDef, ast.AsyncFunctionDef)):
        if isinstance(p, ast.Lambda):  # runs later, wherever it is handed to
            return None
        p = up.get(id(p))
    return p


def kwarg(call: ast.Call, name: str) -> ast.AST | None:
    return next((k.value for k in call.keywords if k.arg == name), None)


@dataclass
class Resolved:
    src: SourceFile
    func: FuncDef


@dataclass
class SettingValue:
    name: str
    value: object  # literal default, or NOT_LITERAL (required / computed)
    file: str
    line: int


@dataclass
class Project:
    """The target's Python modules, by dotted module name."""
    files: list[SourceFile]
    settings_classes: list[tuple[str, str, int]] = field(default_factory=list)

    @classmethod
    def of(cls, ctx) -> "Project":
        cache = ctx.__dict__.setdefault("_pyresolve_project", None)
        if cache is None:
            cache = cls(ctx.index.python_files(), list(ctx.layout.settings_classes))
            ctx.__dict__["_pyresolve_project"] = cache
        return cache

    @cached_property
    def by_module(self) -> dict[str, SourceFile]:
        out = {}
        for f in self.files:
            parts = f.path[:-3].split("/")
            if parts[-1] == "__init__":
                parts = parts[:-1]
            for start in range(len(parts)):  # "src/app/x.py" answers to app.x and src.app.x
                out.setdefault(".".join(parts[start:]), f)
        return out

    @cached_property
    def imports(self) -> dict[str, dict[str, str]]:
        return {f.path: {k: self.absolute(f, v) for k, v in import_map(f.tree).items()} for f in self.files}

    def module_name(self, src: SourceFile) -> str:
        parts = src.path[:-3].split("/")
        return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)

    def absolute(self, src: SourceFile, name: str) -> str:
        if not name.startswith("."):
            return name
        level = len(name) - len(name.lstrip("."))
        base = self.module_name(src).split(".")
        if not src.path.endswith("__init__.py"):
            base = base[:-1]
        base = base[: len(base) - (level - 1)] if level > 1 else base
        rest = name[level:]
        return ".".join([*base, rest] if rest else base)

    @cached_property
    def defs(self) -> dict[str, dict[str, FuncDef]]:
        """file -> {name: def} for module-level functions and methods (methods by name)."""
        out: dict[str, dict[str, FuncDef]] = {}
        for f in self.files:
            table: dict[str, FuncDef] = {}
            for node in f.tree.body:
                if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    table[node.name] = node
                elif isinstance(node, ast.ClassDef):
                    for m in node.body:
                        if isinstance(m, (ast.FunctionDef, ast.AsyncFunctionDef)):
                            table.setdefault(m.name, m)
            out[f.path] = table
        return out

    def qualify(self, src: SourceFile, node: ast.AST) -> str:
        return qualify(node, self.imports.get(src.path, {}))

    def lookup(self, qualified: str) -> Resolved | None:
        """The project function a qualified name points at (``app.services.email._deliver``)."""
        mod, _, name = qualified.rpartition(".")
        while mod:
            src = self.by_module.get(mod)
            if src is not None:
                fn = self.defs.get(src.path, {}).get(name)
                return Resolved(src, fn) if fn is not None else None
            mod, _, name = mod.rpartition(".")  # a class method: module.Class.method
        return None

    def resolve_call(self, src: SourceFile, func: ast.AST) -> Resolved | None:
        """The project function that a call's callee runs, if it can be told statically."""
        name = dotted(func)
        if not name:
            return None
        if "." not in name and name in self.defs.get(src.path, {}):
            return Resolved(src, self.defs[src.path][name])
        if name.startswith(("self.", "cls.")) and name.count(".") == 1:
            fn = self.defs.get(src.path, {}).get(name.split(".")[1])
            return Resolved(src, fn) if fn is not None else None
        q = self.qualify(src, func)
        return self.lookup(q) if q != name or "." in q else None

    # -- settings -----------------------------------------------------------------
    @cached_property
    def settings_fields(self) -> dict[str, SettingValue]:
        """field name -> its default, over every pydantic settings class of the project."""
        out: dict[str, SettingValue] = {}
        files = {f.path: f for f in self.files}
        for path, cls_name, _ in self.settings_classes:
            src = files.get(path)
            cls = next((n for n in walk(src.tree) if isinstance(n, ast.ClassDef) and n.name == cls_name),
                       None) if src else None
            for stmt in cls.body if cls else []:
                if isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name):
                    out.setdefault(stmt.target.id, SettingValue(
                        stmt.target.id, field_default(stmt.value), path, stmt.lineno))
        return out

    def setting(self, node: ast.AST) -> SettingValue | None:
        """``settings.db_pool_size`` / ``get_settings().x`` -> that field's default."""
        if isinstance(node, ast.Attribute):
            return self.settings_fields.get(node.attr)
        return None

    def value(self, node: ast.AST | None):
        """A literal value, or a settings field's literal default; NOT_LITERAL otherwise."""
        v = literal(node)
        if v is NOT_LITERAL and node is not None:
            s = self.setting(node)
            if s is not None:
                return s.value
        return v


def field_default(value: ast.AST | None):
    """The default of a settings field: ``x: int = 5``, ``Field(5)``, ``Field(default=5)``."""
    if value is None:
        return NOT_LITERAL
    if isinstance(value, ast.Call) and dotted(value.func).split(".")[-1] == "Field":
        if value.args:
            return literal(value.args[0])
        d = kwarg(value, "default")
        return literal(d) if d is not None else NOT_LITERAL
    return literal(value)


def _referenced_functions(proj: "Project", src: SourceFile, fn: FuncDef) -> Iterator[tuple[ast.AST, Resolved]]:
    """Project functions that ``fn`` calls directly, or hands to another call as an
    argument (``asyncio.to_thread(f, ...)``, ``background.add_task(f)``): (site, target)."""
    for call in calls(fn):
        r = proj.resolve_call(src, call.func)
        if r is not None:
            yield call, r
        for a in call.args:
            if isinstance(a, (ast.Name, ast.Attribute)):
                r = proj.resolve_call(src, a)
                if r is not None:
                    yield call, r


def callers(proj: "Project", fn: FuncDef) -> list[Resolved]:
    """Project functions that call (or hand over) ``fn``, in file and source order.

    A call or reference resolves to ``fn`` only through a name part equal to ``fn.name``
    (the callee as written, or its qualified name through the imports: written in the
    calling file, or a package of its path), so only files whose text or path contains
    the name are read. Non-ASCII files are always read (the parser NFKC-normalises
    identifiers). Memoised on the project, as are the references of each function read."""
    memo = proj.__dict__.setdefault("_callers", {})
    hit = memo.get(id(fn))
    if hit is None:
        hit = memo[id(fn)] = []
        refs = proj.__dict__.setdefault("_references", {})
        name = fn.name
        for src in proj.files:
            if not src.may_name(name):
                continue
            for g in functions(src.tree):
                targets = refs.get(id(g))
                if targets is None:
                    targets = refs[id(g)] = {id(t.func) for _site, t in _referenced_functions(proj, src, g)}
                if id(fn) in targets:
                    hit.append(Resolved(src, g))
    return hit


def callers_upto(proj: "Project", fn: FuncDef, depth: int = 2) -> list[Resolved]:
    """Transitive callers of ``fn``, ``depth`` levels up."""
    out: list[Resolved] = []
    frontier = [fn]
    for _ in range(depth):
        nxt = []
        for f in frontier:
            for c in callers(proj, f):
                if all(c.func is not o.func for o in out) and c.func is not fn:
                    out.append(c)
                    nxt.append(c.func)
        frontier = nxt
    return out


def callees(proj: "Project", src: SourceFile, fn: FuncDef) -> Iterator[tuple[ast.Call, Resolved]]:
    """(call site, target) for the project functions ``fn`` calls directly."""
    for call in calls(fn):
        r = proj.resolve_call(src, call.func)
        if r is not None and r.func is not fn:
            yield call, r


def callees_upto(proj: "Project", src: SourceFile, fn: FuncDef, depth: int = 3) -> list[tuple[SourceFile, FuncDef]]:
    """``fn`` and the project functions it calls, transitively (nested definitions
    included), breadth-first to ``depth`` levels: what a handler actually does."""
    out, seen, frontier = [(src, fn)], {id(fn)}, [(src, fn)]
    for _ in range(depth):
        nxt = []
        for s, f in frontier:
            for n in of_type(f, ast.Call):
                res = proj.resolve_call(s, n.func)
                if res is not None and id(res.func) not in seen:
                    seen.add(id(res.func))
                    nxt.append((res.src, res.func))
        out += nxt
        frontier = nxt
    return out
