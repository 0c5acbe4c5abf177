"""The code index: the target tree walked once, each file read once, each ``.py`` parsed
at most once per process (lazily, on first use of :attr:`SourceFile.tree`).

Checks query the index instead of touching the disk. Files that cannot be decoded or
parsed are recorded in :attr:`CodeIndex.problems` (reported by the AUDIT-001 check),
never fatal.

The on-disk cache, keyed by file content hashes, holds each file's parse *outcome*
(ok, or the error and its line), not the syntax trees: measured here, unpickling ASTs
is slower than re-parsing them (sqlalchemy's 259 files: parse 2.8 s, unpickle 3.6 s),
so notebooks of one batch share the outcomes and parse only the files their checks
actually read.
"""
from __future__ import annotations

import ast
import hashlib
import os
import pickle
import re
from dataclasses import dataclass, field
from fnmatch import fnmatch
from pathlib import Path
from typing import Iterable, Iterator

import pathspec

# Directories never worth auditing: environments, caches, build output, VCS metadata.
SKIP_DIRS = {
    ".git", ".hg", ".svn", "node_modules", "__pycache__", ".mypy_cache", ".pytest_cache",
    ".ruff_cache", ".tox", ".nox", ".venv", "venv", "env", ".env", "build", "dist",
    ".eggs", "site-packages", ".ipynb_checkpoints", ".idea", ".vscode", "htmlcov",
}
# Text files worth indexing (by suffix or by exact name).
TEXT_SUFFIXES = {
    ".py", ".pyi", ".toml", ".cfg", ".ini", ".txt", ".md", ".rst", ".yml", ".yaml", ".json",
    ".html", ".htm", ".jinja", ".jinja2", ".j2", ".sql", ".sh", ".mako", ".env", ".example",
    ".conf", ".dockerfile", ".js", ".ts", ".css", ".pem", ".key",
}
TEXT_NAMES = {"Dockerfile", "Makefile", "Procfile", "Containerfile", ".env", ".gitignore",
              ".dockerignore", "requirements.txt"}
MAX_FILE_BYTES = 2_000_000
CACHE_VERSION = 3  # 3: files in newer syntax parse (modern_syntax)


@dataclass
class SourceFile:
    path: str  # relative to the root, POSIX separators
    sha256: str
    text: str | None  # None when the file could not be decoded
    error: str = ""  # decode or parse error, one line
    error_line: int | None = None
    parsed: bool = False  # whether the parse outcome (tree or error) is known
    # newer constructs rewritten so this interpreter could parse the file (lines kept)
    lowered: tuple[str, ...] = ()
    _parse_text: str | None = field(default=None, repr=False)
    _tree: ast.Module | None = field(default=None, repr=False)
    _lines: list[str] | None = field(default=None, repr=False)

    @property
    def is_python(self) -> bool:
        return self.path.endswith((".py", ".pyi"))

    @property
    def tree(self) -> ast.Module | None:
        """The module's AST (parsed on first use), or None if it does not parse."""
        if self._tree is None and self.is_python and self.text is not None and not self.error:
            try:
                self._tree = self._parse()
                from ..code.pyast import Flat  # one flattening per parse, shared by every walk

                Flat(self._tree)
            except SyntaxError as exc:
                self.error, self.error_line = f"syntax error: {exc.msg}", exc.lineno
            except (ValueError, RecursionError, MemoryError) as exc:
                self.error = f"could not parse: {type(exc).__name__}"
            self.parsed = True
        return self._tree

    def _parse(self) -> ast.Module:
        """``ast.parse`` of the text; a file in syntax newer than this interpreter reads is
        parsed after :func:`~auditlib.code.modern_syntax.lower` rewrote it (same lines)."""
        try:
            return ast.parse(self.text, filename=self.path)
        except SyntaxError as first:
            from ..code.modern_syntax import lower

            done = lower(self.text)
            if done is None:
                raise first
            try:
                tree = ast.parse(done[0], filename=self.path)
            except SyntaxError:
                raise first from None
            self._parse_text, self.lowered = done[0], tuple(done[1])
            return tree

    @property
    def parse_text(self) -> str | None:
        """The text the tree was parsed from: the file's own, or its rewrite in older
        syntax (same lines) when the file uses syntax newer than this interpreter."""
        return self._parse_text if self._parse_text is not None else self.text

    def may_name(self, *words: str) -> bool:
        """False only when no identifier of this file can be one of ``words`` (or hold
        one, as a part of a dotted name): the text prefilter of the checks.

        An ASCII text spells its identifiers as written, and a relative import names the
        packages of the path; a non-ASCII text is always read (the parser NFKC-normalises
        identifiers), and so is an undecodable one. Strings are not covered: escapes and
        concatenation can spell a word that the text does not hold. Exactness is tested
        by ``tests/test_prefilters.py``."""
        text = self.text
        if text is None or not text.isascii():
            return True
        return any(w in text or w in self.path for w in words)

    @property
    def lines(self) -> list[str]:
        """The text's lines (split once; callers only read the list)."""
        if self._lines is None:
            self._lines = (self.text or "").splitlines()
        return self._lines

    def line(self, n: int | None) -> str:
        """Line ``n`` (1-based) stripped, or ''."""
        if not n:
            return ""
        lines = self.lines
        return lines[n - 1].strip() if 0 < n <= len(lines) else ""


@dataclass
class CodeIndex:
    root: Path
    files: dict[str, SourceFile] = field(default_factory=dict)
    cache_hits: int = 0
    _cache_path: Path | None = field(default=None, repr=False)
    _select_memo: dict = field(default_factory=dict, repr=False)

    # -- building -----------------------------------------------------------------
    @classmethod
    def build(cls, root: Path | str, cache_dir: Path | str | None = None,
              exclude: Iterable[str] = ()) -> "CodeIndex":
        root = Path(root).resolve()
        cache: dict[str, tuple] = {}
        cache_path = Path(cache_dir) / "index.pickle" if cache_dir else None
        if cache_path and cache_path.is_file():
            try:
                with cache_path.open("rb") as fh:
                    version, cached_root, cache = pickle.load(fh)
                if version != CACHE_VERSION or cached_root != str(root):
                    cache = {}
            except Exception:  # a corrupt cache is just a miss
                cache = {}
        index = cls(root)
        for rel in walk(root, exclude):
            try:
                data = (root / rel).read_bytes()
            except OSError as exc:
                index.files[rel] = SourceFile(rel, "", None, error=f"unreadable: {exc.strerror}", parsed=True)
                continue
            digest = hashlib.sha256(data).hexdigest()
            src = _decode(rel, digest, data)
            hit = cache.get(digest)
            if hit is not None and src.is_python and src.text is not None:
                src.error, src.error_line, src.lowered = hit
                src.parsed = True
                index.cache_hits += 1
            index.files[rel] = src
        index._cache_path = cache_path
        return index

    def save_cache(self) -> None:
        """Parse every Python file (if not yet) and store the outcomes by content hash."""
        if not self._cache_path:
            return
        self.problems  # noqa: B018 - forces the parse outcome of every file
        payload = {f.sha256: (f.error, f.error_line, f.lowered) for f in self.files.values()
                   if f.is_python and f.text is not None and f.parsed}
        self._cache_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self._cache_path.with_suffix(f".tmp{os.getpid()}")
        with tmp.open("wb") as fh:
            pickle.dump((CACHE_VERSION, str(self.root), payload), fh, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(tmp, self._cache_path)

    # -- querying -----------------------------------------------------------------
    def __iter__(self) -> Iterator[SourceFile]:
        return iter(self.files.values())

    def get(self, rel: str) -> SourceFile | None:
        return self.files.get(rel)

    def select(self, include: str | Iterable[str] | None = None,
               exclude: str | Iterable[str] | None = None,
               under: Iterable[str] | None = None) -> list[SourceFile]:
        """Files matching glob patterns (``*`` crosses directories) and prefixes (a new
        list; the answers are memoised, the index does not change once built)."""
        inc = [include] if isinstance(include, str) else list(include or [])
        exc = [exclude] if isinstance(exclude, str) else list(exclude or [])
        under = None if under is None else list(under)
        key = (tuple(inc), tuple(exc), None if under is None else tuple(under))
        hit = self._select_memo.get(key)
        if hit is None:
            hit = self._select_memo[key] = self._select(inc, exc, under)
        return list(hit)

    def _select(self, inc: list[str], exc: list[str], under) -> list[SourceFile]:
        prefixes = [p.rstrip("/") + "/" for p in (under or []) if p not in ("", ".")]
        has_under = under is not None and not any(p in ("", ".") for p in under)
        out = []
        for f in self.files.values():
            if has_under and not any(f.path.startswith(p) for p in prefixes):
                continue
            if inc and not any(_match(f.path, p) for p in inc):
                continue
            if exc and any(_match(f.path, p) for p in exc):
                continue
            out.append(f)
        return out

    def python_files(self, under: Iterable[str] | None = None) -> list[SourceFile]:
        return [f for f in self.select("*.py", under=under) if f.tree is not None]

    @property
    def problems(self) -> list[SourceFile]:
        """Files that could not be read, decoded or parsed (parses what is not yet known)."""
        for f in self.files.values():
            if not f.parsed:
                f.tree  # noqa: B018 - parse to learn the outcome
        return [f for f in self.files.values() if f.error]

    def grep(self, pattern: str, include=None, exclude=None, *, fixed: bool = False,
             ignore_case: bool = False, under=None):
        """Search indexed text like ``grep -rn``; returns a DataFrame (file, line, column, text)."""
        import pandas as pd

        flags = re.IGNORECASE if ignore_case else 0
        rx = re.compile(re.escape(pattern) if fixed else pattern, flags)
        rows = []
        for f in self.select(include, exclude, under):
            if f.text is None:
                continue
            for n, text in enumerate(f.text.splitlines(), 1):
                m = rx.search(text)
                if m:
                    rows.append((f.path, n, m.start() + 1, text.strip()))
        return pd.DataFrame(rows, columns=["file", "line", "column", "text"])


def _match(path: str, pattern: str) -> bool:
    return fnmatch(path, pattern) or fnmatch(path.rsplit("/", 1)[-1], pattern)


def _decode(rel: str, digest: str, data: bytes) -> SourceFile:
    if len(data) > MAX_FILE_BYTES:
        return SourceFile(rel, digest, None, error=f"skipped: larger than {MAX_FILE_BYTES} bytes", parsed=True)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        return SourceFile(rel, digest, None, error=f"not UTF-8: {exc.reason} at byte {exc.start}",
                          error_line=line, parsed=True)
    return SourceFile(rel, digest, text, parsed=not rel.endswith((".py", ".pyi")))


def _is_text_candidate(name: str) -> bool:
    if name in TEXT_NAMES or name.startswith((".env", "Dockerfile", "docker-compose", "compose")):
        return True
    return Path(name).suffix.lower() in TEXT_SUFFIXES


def _is_env_example(name: str) -> bool:
    return name.startswith(".env") and any(w in name for w in ("example", "sample", "template", "dist"))


def _gitignore_spec(root: Path) -> pathspec.PathSpec | None:
    gi = root / ".gitignore"
    if not gi.is_file():
        return None
    try:
        return pathspec.GitIgnoreSpec.from_lines(gi.read_text(errors="replace").splitlines())
    except Exception:
        return None


def walk(root: Path, exclude: Iterable[str] = ()) -> Iterator[str]:
    """Relative POSIX paths of the text files worth auditing, in a stable order.

    Honours the root ``.gitignore`` (via pathspec, git's own wildmatch rules) and skips
    virtualenvs (any dir holding ``pyvenv.cfg``), VCS/cache/build dirs and ``exclude`` globs.
    ``.env.example``-style files are kept even when ignored (they are audit evidence);
    an ignored plain ``.env`` is a local file, not part of the project, and is skipped.
    """
    spec = _gitignore_spec(root)
    exclude = list(exclude)
    for dirpath, dirnames, filenames in os.walk(root):
        rel_dir = os.path.relpath(dirpath, root).replace(os.sep, "/")
        rel_dir = "" if rel_dir == "." else rel_dir + "/"
        keep = []
        for d in sorted(dirnames):
            rel = rel_dir + d
            if d in SKIP_DIRS or d.endswith(".egg-info") or (Path(dirpath, d) / "pyvenv.cfg").exists():
                continue
            if spec and spec.match_file(rel + "/"):
                continue
            if any(_match(rel, p) for p in exclude):
                continue
            keep.append(d)
        dirnames[:] = keep
        for name in sorted(filenames):
            rel = rel_dir + name
            if not _is_text_candidate(name):
                continue
            if spec and spec.match_file(rel) and not _is_env_example(name):
                continue
            if any(_match(rel, p) for p in exclude):
                continue
            if os.path.islink(os.path.join(dirpath, name)):
                continue
            yield rel
