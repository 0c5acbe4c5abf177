"""What Alembic's ``env.py`` registers as ``target_metadata``, read statically.

Autogenerate and ``alembic check`` only see the models whose modules were imported by
the time ``env.py`` runs, on the declarative base(s) whose metadata ``target_metadata``
names. A model in a module nobody imports is invisible: autogenerate proposes to drop
its table. This module resolves ``env.py``'s imports transitively through the target's
own files (no import of the target), finds every ORM model (classes with
``__tablename__`` deriving from a declarative base) and says which ones are covered.
"""
from __future__ import annotations

import ast
from dataclasses import dataclass, field
from pathlib import PurePosixPath

from ..code.pyast import dotted, literal, of_type

_BASE_CLASSES = {"DeclarativeBase", "DeclarativeBaseNoMeta"}
_BASE_FACTORIES = {"declarative_base", "generate_base"}


@dataclass
class Model:
    file: str
    name: str
    line: int
    table: str
    base: tuple[str, str] | None  # (file, name) of its declarative base


@dataclass
class MetadataCoverage:
    env_file: str
    status: str  # ok | none | absent | unresolved | dynamic
    line: int | None = None  # the target_metadata assignment
    bases: set[tuple[str, str]] = field(default_factory=set)
    imported: set[str] = field(default_factory=set)  # files loaded when env.py runs
    models: list[Model] = field(default_factory=list)

    def missing(self) -> list[tuple[Model, str]]:
        """(model, why) for models that target_metadata will not contain."""
        if self.status != "ok":
            return []
        out = []
        for m in self.models:
            if m.base is not None and m.base not in self.bases:
                out.append((m, f"its declarative base {m.base[1]} ({m.base[0]}) is not the one target_metadata uses"))
            elif m.file not in self.imported:
                out.append((m, f"{m.file} is never imported (directly or indirectly) by env.py"))
        return out


class _Resolver:
    def __init__(self, index, roots: list[str]):
        self.index, self.roots = index, roots
        self._imports: dict[str, tuple] = {}

    def file_of(self, module: str) -> str | None:
        rel = module.replace(".", "/")
        for r in self.roots:
            for cand in (f"{rel}.py", f"{rel}/__init__.py"):
                path = str(PurePosixPath(r) / cand) if r not in ("", ".") else cand
                if self.index.get(path) is not None:
                    return path
        return None

    def module_of(self, path: str) -> str:
        for r in self.roots:
            prefix = "" if r in ("", ".") else r.rstrip("/") + "/"
            if path.startswith(prefix):
                mod = path[len(prefix):].removesuffix(".py").removesuffix("/__init__").replace("/", ".")
                return mod
        return path.removesuffix(".py").replace("/", ".")

    def imports(self, path: str) -> tuple[dict[str, tuple[str, str]], set[str], bool]:
        """(local name -> (module, attr)), imported module names, dynamic-import flag
        (memoised per file; callers only read it)."""
        if path not in self._imports:
            self._imports[path] = self._read_imports(path)
        return self._imports[path]

    def _read_imports(self, path: str) -> tuple[dict[str, tuple[str, str]], set[str], bool]:
        src = self.index.get(path)
        names, mods, dynamic = {}, set(), False
        if src is None or src.tree is None:
            return names, mods, dynamic
        me = self.module_of(path)
        pkg = me if path.endswith("__init__.py") else me.rpartition(".")[0]
        for node in of_type(src.tree, (ast.Import, ast.ImportFrom, ast.Call, ast.Attribute)):
            if isinstance(node, ast.Import):
                for a in node.names:
                    mods.add(a.name)
                    names[a.asname or a.name.split(".")[0]] = (a.asname and a.name or a.name.split(".")[0], "")
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parts = pkg.split(".") if pkg else []
                    parts = parts[: len(parts) - (node.level - 1)] if node.level > 1 else parts
                    base = ".".join(p for p in parts + ([node.module] if node.module else []) if p)
                mods.add(base)
                for a in node.names:
                    if a.name == "*":
                        continue
                    mods.add(f"{base}.{a.name}")
                    names[a.asname or a.name] = (base, a.name)
            elif isinstance(node, ast.Call) and dotted(node.func).rsplit(".", 1)[-1] in ("import_module", "__import__"):
                arg = literal(node.args[0]) if node.args else None
                if isinstance(arg, str):
                    mods.add(arg)
                else:
                    dynamic = True
            elif isinstance(node, ast.Attribute) and node.attr in ("iter_modules", "walk_packages"):
                dynamic = True
        return names, mods, dynamic

    def closure(self, start: str) -> tuple[set[str], bool]:
        seen, todo, dynamic = {start}, [start], False
        while todo:
            _names, mods, dyn = self.imports(todo.pop())
            dynamic |= dyn
            for m in mods:
                parts = m.split(".")
                for i in range(1, len(parts) + 1):  # importing a.b.c runs a/__init__ and a/b/__init__
                    f = self.file_of(".".join(parts[:i]))
                    if f and f not in seen:
                        seen.add(f)
                        todo.append(f)
        return seen, dynamic


def _roots(ctx) -> list[str]:
    ini = ctx.layout.alembic_ini
    base = str(PurePosixPath(ini).parent) if ini else "."
    roots = [base]
    src = ctx.index.get(ini) if ini else None
    for line in (src.text or "").splitlines() if src else []:
        if line.strip().startswith("prepend_sys_path"):
            for p in line.split("=", 1)[1].replace(":", " ").split():
                roots.append(str(PurePosixPath(base) / p) if base != "." else p)
    return [r.removesuffix("/.") if r != "." else "." for r in dict.fromkeys(roots + ["."])]


def _models(ctx, res: _Resolver) -> list[Model]:
    classes: dict[str, list[tuple[str, ast.ClassDef]]] = {}
    factories: set[tuple[str, str]] = set()
    for src in ctx.index.python_files():
        lay = ctx.layout
        if lay.is_test(src.path) or lay.is_migration(src.path):
            continue
        for node in src.tree.body:
            if isinstance(node, ast.ClassDef):
                classes.setdefault(node.name, []).append((src.path, node))
            elif isinstance(node, ast.Assign) and dotted(node.value).rsplit(".", 1)[-1] in _BASE_FACTORIES:
                for t in node.targets:
                    if isinstance(t, ast.Name):
                        factories.add((src.path, t.id))

    def root_of(path: str, cls: ast.ClassDef, depth: int = 0) -> tuple[str, str] | None:
        names = res.imports(path)[0]
        for b in cls.bases:
            bname = dotted(b).rsplit(".", 1)[-1]
            if bname in _BASE_CLASSES:
                return (path, cls.name)
            origin = names.get(bname)
            for fpath, fname in factories:
                if fname == bname and (fpath == path or (origin and res.file_of(origin[0]) == fpath)):
                    return (fpath, fname)
            for cpath, cnode in classes.get(bname, []):
                if depth < 20 and (cpath == path or (origin and res.file_of(origin[0]) in (cpath, None))):
                    found = root_of(cpath, cnode, depth + 1)
                    if found:
                        return found
        return None

    out = []
    for name, defs in classes.items():
        for path, node in defs:
            table = next((literal(st.value) for st in node.body if isinstance(st, (ast.Assign, ast.AnnAssign))
                          and any(isinstance(t, ast.Name) and t.id == "__tablename__"
                                  for t in (st.targets if isinstance(st, ast.Assign) else [st.target]))), None)
            if isinstance(table, str):
                out.append(Model(path, name, node.lineno, table, root_of(path, node)))
    return out


def metadata_coverage(ctx) -> MetadataCoverage | None:
    """How env.py's target_metadata covers the project's models (None: no env.py)."""
    lay = ctx.layout
    env = f"{lay.alembic_dir}/env.py" if lay.alembic_dir else ""
    src = ctx.index.get(env) if env else None
    if src is None or src.tree is None:
        return None
    cov = MetadataCoverage(env, "absent")
    value = None
    for node in src.tree.body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "target_metadata"
                                                for t in node.targets):
            value, cov.line = node.value, node.lineno
    if value is None:
        return cov
    if isinstance(value, ast.Constant) and value.value is None:
        cov.status = "none"
        return cov
    res = _Resolver(ctx.index, _roots(ctx))
    names = res.imports(env)[0]
    cov.imported, dynamic = res.closure(env)
    cov.models = _models(ctx, res)
    exprs = value.elts if isinstance(value, (ast.List, ast.Tuple)) else [value]
    for e in exprs:
        holder = dotted(e.value) if isinstance(e, ast.Attribute) and e.attr == "metadata" else ""
        origin = names.get(holder.split(".")[0]) if holder and "." not in holder else None
        file = res.file_of(origin[0]) if origin else None
        if not (origin and file and origin[1]):
            cov.status = "unresolved"
            return cov
        cov.bases.add((file, origin[1]))
    # a base re-exported through another module: map it to where the class is defined
    by_name = {}
    for m in cov.models:
        if m.base:
            by_name.setdefault(m.base[1], set()).add(m.base)
    cov.bases = {b2 for b in cov.bases for b2 in (by_name.get(b[1], {b}) if len(by_name.get(b[1], ())) == 1 else {b})}
    cov.status = "dynamic" if dynamic else "ok"
    return cov
