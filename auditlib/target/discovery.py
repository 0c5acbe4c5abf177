"""Target discovery: where the app, settings, migrations, tests, Docker files and docs are.

Everything is found from code and file names (``FastAPI()`` calls, ``APIRouter``,
``BaseSettings`` bases, ``alembic.ini``), never from a fixed layout, and every location
can be overridden in the configuration (``app_paths``, ``alembic_ini``, ``test_paths``).
Apps and env examples inside example, sample, docs or benchmark folders are left out
when the project has others, Dockerfiles and compose files there always: they show how
to use the project, they are not what it deploys.
"""
from __future__ import annotations

import ast
import configparser
import re
from dataclasses import dataclass, field
from pathlib import PurePosixPath

from .index import CodeIndex, SourceFile
from ..code.pyast import of_type


@dataclass
class Layout:
    app_paths: list[str] = field(default_factory=list)  # package dirs (or files) of the app
    app_files: list[str] = field(default_factory=list)  # where FastAPI() is instantiated
    router_files: list[str] = field(default_factory=list)
    settings_classes: list[tuple[str, str, int]] = field(default_factory=list)  # (file, class, line)
    alembic_ini: str = ""
    alembic_dir: str = ""  # the script_location
    migration_files: list[str] = field(default_factory=list)
    version_dirs: list[str] = field(default_factory=list)  # where the revision files are read from
    migration_note: str = ""  # e.g. revisions split per dialect: which set is read
    test_paths: list[str] = field(default_factory=list)
    dockerfiles: list[str] = field(default_factory=list)
    compose_files: list[str] = field(default_factory=list)
    env_examples: list[str] = field(default_factory=list)
    docs: list[str] = field(default_factory=list)
    sql_libraries: list[str] = field(default_factory=list)  # SQL database libraries the app imports
    # (path, kind) -> answer, once discovery is complete (the checks ask per file, often)
    _memo: dict | None = field(default=None, repr=False, compare=False)

    def _cached(self, kind: str, path: str, fn) -> bool:
        if self._memo is None:
            return fn(path)
        key = (kind, path)
        hit = self._memo.get(key)
        if hit is None:
            hit = self._memo[key] = fn(path)
        return hit

    def is_test(self, path: str) -> bool:
        return self._cached("test", path, self._is_test)

    def is_migration(self, path: str) -> bool:
        return self._cached("migration", path, self._is_migration)

    def is_app(self, path: str) -> bool:
        """Application code: inside the app paths, and neither tests nor migrations."""
        return self._cached("app", path, self._is_app)

    def _is_test(self, path: str) -> bool:
        name = path.rsplit("/", 1)[-1]
        if name.startswith("test_") or name.endswith("_test.py") or name == "conftest.py":
            return True
        return any(path == t or path.startswith(t.rstrip("/") + "/") for t in self.test_paths)

    def _is_migration(self, path: str) -> bool:
        return any(d and d != "." and path.startswith(d.rstrip("/") + "/")
                   for d in [self.alembic_dir, *self.version_dirs])

    def _is_app(self, path: str) -> bool:
        if not path.endswith(".py") or self.is_test(path) or self.is_migration(path):
            return False
        if not self.app_paths:
            return True
        return any(path == p or path.startswith(p.rstrip("/") + "/") for p in self.app_paths)

    def app_sources(self, index: CodeIndex) -> list[SourceFile]:
        """The application's files (a new list; memoised per index once discovery is done)."""
        if self._memo is None:
            return [f for f in index if self.is_app(f.path)]
        key = ("app_sources", id(index))
        hit = self._memo.get(key)
        if hit is None or hit[0] is not index:
            hit = self._memo[key] = (index, [f for f in index if self.is_app(f.path)])
        return list(hit[1])

    def as_rows(self) -> list[dict]:
        """One row per discovered item, for display."""
        rows = []
        for kind, values in [
            ("app package", self.app_paths), ("FastAPI app", self.app_files),
            ("routers", self.router_files),
            ("settings", [f"{f}:{line} {cls}" for f, cls, line in self.settings_classes]),
            ("alembic.ini", [self.alembic_ini] if self.alembic_ini else []),
            ("migrations", ([self.alembic_dir] if self.alembic_dir else [])
             + [d for d in self.version_dirs if d != f"{self.alembic_dir}/versions"]
             + ([f"({self.migration_note})"] if self.migration_note else [])),
            ("tests", self.test_paths), ("Dockerfiles", self.dockerfiles),
            ("compose files", self.compose_files), ("env examples", self.env_examples),
            ("docs", self.docs),
        ]:
            rows.append({"what": kind, "count": len(values), "where": ", ".join(values) or "(none found)"})
        return rows


def _call_name(node: ast.AST) -> str:
    if isinstance(node, ast.Call):
        node = node.func
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return ""


def _package_root(path: str, index: CodeIndex) -> str:
    """The outermost package directory containing ``path`` (walks up while __init__.py exists)."""
    parts = PurePosixPath(path).parts[:-1]
    if not parts:
        return path  # a top-level module is its own "package"
    top = len(parts)
    while top > 0 and index.get("/".join(parts[:top]) + "/__init__.py"):
        top -= 1
    # top is now the index of the first package level (or len(parts) if no __init__ at all)
    return "/".join(parts[: top + 1]) if top < len(parts) else "/".join(parts)


# Folders of examples, samples and docs: an app, Dockerfile or compose file in them shows
# how to use the project, it is not the deployed backend (unless nothing else is found).
EXAMPLE_DIRS = {"examples", "example", "samples", "sample", "demo", "demos", "docs", "doc", "tutorial",
                "tutorials", "cookbook", "cookbooks", "benchmarks", "benchmark"}


def is_example(path: str) -> bool:
    return any(part.lower() in EXAMPLE_DIRS for part in path.split("/")[:-1])


def _deployed(paths: list[str]) -> list[str]:
    """``paths`` without those in example folders, when any path is left."""
    kept = [p for p in paths if not is_example(p)]
    return kept if kept else paths


def discover(index: CodeIndex, config: dict | None = None) -> Layout:
    config = config or {}
    lay = Layout()
    for f in index.python_files():
        for node in of_type(f.tree, ast.Call):
            name = _call_name(node)
            if name == "FastAPI" and f.path not in lay.app_files:
                lay.app_files.append(f.path)
            elif name == "APIRouter" and f.path not in lay.router_files:
                lay.router_files.append(f.path)
    lay.app_files, lay.router_files = _deployed(lay.app_files), _deployed(lay.router_files)
    lay.settings_classes = _settings_classes(index)

    _discover_tests(index, lay, config)
    _discover_alembic(index, lay, config)
    lay.sql_libraries = _sql_libraries(index, lay)

    if config.get("app_paths"):
        lay.app_paths = [p.rstrip("/") for p in config["app_paths"]]
    else:
        roots = []
        for path in lay.app_files or lay.router_files:
            if lay.is_test(path) or lay.is_migration(path):
                continue
            r = _package_root(path, index)
            if r not in roots:
                roots.append(r)
        lay.app_paths = roots

    for f in index:
        name = f.path.rsplit("/", 1)[-1]
        low = name.lower()
        if low.startswith(("dockerfile", "containerfile")) or low.endswith(".dockerfile"):
            lay.dockerfiles.append(f.path)
        elif re.fullmatch(r"(docker-)?compose[\w.-]*\.ya?ml", low):
            lay.compose_files.append(f.path)
        elif low.startswith(".env") and any(w in low for w in ("example", "sample", "template", "dist")) \
                or low in ("env.example", "example.env"):
            lay.env_examples.append(f.path)
        elif low.endswith((".md", ".rst")) and ("/" not in f.path or f.path.startswith(("docs/", "doc/"))):
            lay.docs.append(f.path)
    # an example's container files are never what the project deploys
    lay.dockerfiles = [p for p in lay.dockerfiles if not is_example(p)]
    lay.compose_files = [p for p in lay.compose_files if not is_example(p)]
    lay.env_examples = _deployed(lay.env_examples)
    lay._memo = {}  # complete: answers per path may be memoised from now on
    return lay


SQL_LIBRARIES = {"sqlalchemy", "sqlmodel", "alembic", "databases", "asyncpg", "psycopg", "psycopg2",
                 "aiopg", "tortoise", "peewee", "piccolo", "ormar", "pony", "django", "sqlite3", "aiosqlite"}


def _sql_libraries(index: CodeIndex, lay: Layout) -> list[str]:
    """Top-level SQL database libraries imported anywhere outside the tests: an app with
    none has nothing for the database checks to verify (they say "not applicable")."""
    found = set()
    for f in index.python_files():
        if lay.is_test(f.path):
            continue
        for node in f.tree.body if f.tree else []:
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                names = [node.module]
            found |= {n.split(".")[0] for n in names} & SQL_LIBRARIES
    if lay.alembic_dir:
        found.add("alembic")
    return sorted(found)


def _import_aliases(tree: ast.Module) -> dict[str, str]:
    """Local name -> imported name (``from x import BaseSettings as B`` gives B -> BaseSettings)."""
    out = {}
    for node in of_type(tree, (ast.Import, ast.ImportFrom)):
        for a in node.names:
            out[a.asname or a.name.split(".")[0]] = a.name.rsplit(".", 1)[-1]
    return out


def _settings_classes(index: CodeIndex) -> list[tuple[str, str, int]]:
    """Classes deriving from pydantic's ``BaseSettings`` (through import aliases and
    through other settings classes of the project, to a fixpoint)."""
    classes = []  # (file, node, aliases)
    for f in index.python_files():
        aliases = _import_aliases(f.tree)
        classes += [(f.path, n, aliases) for n in of_type(f.tree, ast.ClassDef)]
    known: set[str] = set()
    found: dict[tuple[str, str], int] = {}
    changed = True
    while changed:
        changed = False
        for path, node, aliases in classes:
            if (path, node.name) in found:
                continue
            for b in node.bases:
                name = _call_name(b)
                name = aliases.get(name, name)
                if name.endswith("BaseSettings") or name in known:
                    found[(path, node.name)] = node.lineno
                    known.add(node.name)
                    changed = True
                    break
    return sorted((p, c, line) for (p, c), line in found.items())


def _discover_tests(index: CodeIndex, lay: Layout, config: dict) -> None:
    if config.get("test_paths"):
        lay.test_paths = [p.rstrip("/") for p in config["test_paths"]]
        return
    dirs = []
    for f in index.select("*.py"):
        parts = f.path.split("/")
        for i, part in enumerate(parts[:-1]):
            if part in ("tests", "test"):
                d = "/".join(parts[: i + 1])
                if d not in dirs:
                    dirs.append(d)
                break
    lay.test_paths = dirs


def _discover_alembic(index: CodeIndex, lay: Layout, config: dict) -> None:
    """The Alembic ini, script_location and revision files.

    ``script_location`` is read in all the forms Alembic accepts: a path relative to the
    ini (or with ``%(here)s``), ``package:path`` / ``pkg.mod:path`` (the package's folder
    in the tree), or a literal given in code (``Config.set_main_option("script_location",
    "...")``) when the ini has none. ``version_locations`` (ini or literal in code;
    separated as ``version_path_separator`` / ``path_separator`` says, else by spaces or
    commas) replaces the default ``<script_location>/versions``. When the revisions sit in
    per-dialect sub-folders (``versions/postgresql``, ``versions/sqlite``...), the
    PostgreSQL set is the migration history read; the others are ignored (``migration_note``
    says so)."""
    ini = config.get("alembic_ini") or ""
    if not ini:
        candidates = [f for f in index.select("alembic.ini")]
        candidates.sort(key=lambda f: (f.path.count("/"), f.path))
        ini = candidates[0].path if candidates else ""
    options: dict[str, str] = {}
    base = "."
    if ini and (src := index.get(ini)) and src.text is not None:
        lay.alembic_ini = ini
        base = str(PurePosixPath(ini).parent)
        parser = configparser.ConfigParser(interpolation=None)
        try:
            parser.read_string(src.text)
            if parser.has_section("alembic"):
                options = {k: v for k, v in parser.items("alembic")}
        except configparser.Error:
            options = {}
    in_code = _alembic_options_in_code(index, lay)
    dirs = _existing_dirs(index)
    loc = options.get("script_location", "").strip()
    if loc:
        lay.alembic_dir = _resolve_location(loc, base, index, dirs)
    if not lay.alembic_dir and (code := in_code.get("script_location")):
        lay.alembic_dir = _resolve_location(code[0], code[1], index, dirs, also=(base, "."))
    if not lay.alembic_dir:
        # no ini: a directory holding env.py and versions/
        for f in index.select("env.py"):
            d = str(PurePosixPath(f.path).parent)
            if any(g.path.startswith(f"{d}/versions/") for g in index.select("*.py")):
                lay.alembic_dir = d
                break
    if not lay.alembic_dir:
        return
    locations: list[str] = []
    raw = options.get("version_locations", "").strip()
    raw_base = base
    if not raw and (code := in_code.get("version_locations")):
        raw, raw_base = code
    if raw:
        sep = (options.get("version_path_separator") or options.get("path_separator") or "").strip()
        for part in _split_locations(raw, sep):
            d = _resolve_location(part, raw_base, index, dirs)
            if d and d not in locations:
                locations.append(d)
    if not locations:
        locations = [f"{lay.alembic_dir}/versions" if lay.alembic_dir != "." else "versions"]
    recursive = options.get("recursive_version_locations", "").strip().lower() in ("true", "1", "yes", "on")
    py = [f.path for f in index.select("*.py")]
    files: list[str] = []
    for loc_dir in locations:
        prefix = f"{loc_dir}/"
        under = [p for p in py if p.startswith(prefix)]
        direct = [p for p in under if "/" not in p[len(prefix):]]
        if recursive or not [p for p in direct if not p.endswith("/__init__.py")]:
            files += under  # sub-folders: recursive_version_locations, or set in code (per dialect)
        else:
            files += direct
    files = sorted(set(files))
    lay.version_dirs = locations
    lay.migration_files, lay.migration_note = _pick_dialect(files, locations)


# Folder names of per-dialect revision sets (``versions/postgresql``, ``versions/sqlite``)
DIALECT_DIRS = {"postgresql": "postgresql", "postgres": "postgresql", "pg": "postgresql", "psql": "postgresql",
                "sqlite": "sqlite", "mysql": "mysql", "mariadb": "mysql", "mssql": "mssql", "oracle": "oracle"}


def _pick_dialect(files: list[str], locations: list[str]) -> tuple[list[str], str]:
    """Keep the PostgreSQL set when the revisions are split into per-dialect folders."""
    by_dialect: dict[str, list[str]] = {}
    for p in files:
        loc = max((d for d in locations if p.startswith(d + "/")), key=len, default="")
        parts = p[len(loc) + 1 if loc else 0:].split("/")[:-1]  # the folders below the location
        if not parts and loc:
            parts = loc.split("/")[-1:]  # a location that is itself a per-dialect folder
        dialect = next((DIALECT_DIRS[x.lower()] for x in parts if x.lower() in DIALECT_DIRS), "")
        by_dialect.setdefault(dialect, []).append(p)
    named = sorted(d for d in by_dialect if d)
    if "postgresql" not in named or len(named) < 2:
        return files, ""  # one history (or no PostgreSQL set to prefer): read them all
    kept = by_dialect["postgresql"] + by_dialect.get("", [])
    ignored = [d for d in named if d != "postgresql"]
    note = (f"revisions are split per dialect ({', '.join(named)}): the PostgreSQL set is read, "
            f"the {', '.join(ignored)} set{'s are' if len(ignored) > 1 else ' is'} ignored")
    return sorted(kept), note


def _split_locations(raw: str, sep: str) -> list[str]:
    if sep in ("space", ""):
        parts = re.split(r"[\s,]+" if not sep else r"\s+", raw)
    elif sep == "newline":
        parts = raw.splitlines()
    elif sep == "os":
        parts = raw.split(":")
    else:
        parts = raw.split(sep)
    return [p.strip() for p in parts if p.strip()]


def _existing_dirs(index: CodeIndex) -> set[str]:
    out = set()
    for f in index:
        parts = f.path.split("/")[:-1]
        for i in range(1, len(parts) + 1):
            out.add("/".join(parts[:i]))
    return out


def _join(base: str, rel: str) -> str:
    rel = rel.strip().replace("\\", "/")
    out = str(PurePosixPath(base) / rel) if base not in ("", ".") else str(PurePosixPath(rel))
    parts: list[str] = []
    for part in out.split("/"):  # normalise ./ and ../ (the tree is relative)
        if part in ("", "."):
            continue
        if part == ".." and parts and parts[-1] != "..":
            parts.pop()
        else:
            parts.append(part)
    return "/".join(parts) or "."


def _resolve_location(loc: str, base: str, index: CodeIndex, dirs: set[str], also: tuple = ()) -> str:
    """A ``script_location`` / version location as a folder of the tree ("" when not found).

    ``package:path`` (Alembic's resource form: ``importlib.resources.files(package)`` then
    the ``:``-separated parts) resolves to the package's folder in the tree; a relative path
    is taken from ``base`` (the ini's folder), then from each of ``also``."""
    loc = loc.strip().strip("\"'")
    if not loc:
        return ""
    if loc.startswith("%(here)s"):
        loc = "." + loc[len("%(here)s"):]
        also = ()
    if ":" in loc and not loc.startswith("/") and not re.match(r"^[A-Za-z]:[\\/]", loc):
        pkg, *rest = loc.split(":")
        for root in _package_dirs(pkg.strip(), index, dirs):
            d = _join(root, "/".join(r.strip() for r in rest))
            if d in dirs:
                return d
        return ""
    if loc.startswith("/"):
        return ""  # an absolute path of the deployment host: not in the tree
    for b in (base, *also):
        d = _join(b, loc)
        if d in dirs:
            return d
    return _join(base, loc) if not also else ""  # the ini names it: keep it even if empty here


def _package_dirs(dotted: str, index: CodeIndex, dirs: set[str]) -> list[str]:
    """Folders of the tree that ``import dotted`` would load (a module: its folder), shortest first."""
    rel = dotted.replace(".", "/")
    found = []
    for d in dirs:
        if d == rel or d.endswith("/" + rel):
            found.append(d)
    for f in index.select(f"*{rel.rsplit('/', 1)[-1]}.py"):
        if f.path == rel + ".py" or f.path.endswith("/" + rel + ".py"):
            found.append(str(PurePosixPath(f.path).parent) if "/" in f.path else ".")
    pkgs = [d for d in found if index.get(f"{d}/__init__.py")]
    rest = [d for d in found if d not in pkgs]
    return sorted(set(pkgs), key=lambda d: (d.count("/"), d)) + sorted(set(rest), key=lambda d: (d.count("/"), d))


def _alembic_options_in_code(index: CodeIndex, lay: Layout) -> dict[str, tuple[str, str]]:
    """``<config>.set_main_option("script_location" | "version_locations", "<literal>")``
    outside tests: option -> (value, folder of the file)."""
    out: dict[str, tuple[str, str]] = {}
    for f in index.python_files():
        if lay.is_test(f.path) or "set_main_option" not in (f.text or ""):
            continue
        for node in of_type(f.tree, ast.Call):
            if (_call_name(node) == "set_main_option" and len(node.args) == 2
                    and all(isinstance(a, ast.Constant) and isinstance(a.value, str) for a in node.args)):
                key = node.args[0].value
                if key in ("script_location", "version_locations") and key not in out:
                    folder = str(PurePosixPath(f.path).parent)
                    out[key] = (node.args[1].value, folder)
    return out
