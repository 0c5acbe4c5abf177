"""The audit context a notebook (or the CLI) opens once: target, config, index, layout,
and the switches of the stages that run the target's code."""
from __future__ import annotations

import atexit
import hashlib
import os
import subprocess
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from .config import load_config
from .discovery import Layout, discover
from .index import CodeIndex

REPO_ROOT = Path(__file__).resolve().parents[2]


class TargetError(ValueError):
    """The target cannot be audited at all (bad path, not a Python project)."""


def validate_target(path: Path | str) -> Path:
    root = Path(path).expanduser()
    if not root.exists():
        raise TargetError(f"target path does not exist: {root}")
    if not root.is_dir():
        raise TargetError(f"target path is not a directory: {root}")
    root = root.resolve()
    from .index import walk

    if not any(p.endswith(".py") for p in walk(root)):
        raise TargetError(f"not a Python project (no .py files found): {root}")
    return root


@dataclass
class AuditContext:
    root: Path
    out_dir: Path
    config: dict
    db: str = "none"  # "none" | "auto" (embedded server, started on first use) | a URL
    target_python: str | None = None
    provision: bool = False
    stages: dict[str, bool] = field(default_factory=dict)

    @classmethod
    def open(cls, target: Path | str, out_dir: Path | str | None = None, *, config_file=None,
             db: str = "none", target_python: str | None = None, provision: bool = False,
             stages: dict | None = None, profile: str | None = None) -> "AuditContext":
        root = validate_target(target)
        out = Path(out_dir) if out_dir else REPO_ROOT / "output" / root.name
        out.mkdir(parents=True, exist_ok=True)
        return cls(root=root, out_dir=out.resolve(), config=load_config(root, config_file or None, profile=profile),
                   db=db or "none", target_python=target_python or None, provision=provision,
                   stages=dict(stages or {}))

    def __post_init__(self) -> None:
        self.db_requested = self.db  # what the notebook was given, before any resolution

    def db_stage_owns(self) -> bool:
        """Whether a database stage was requested for this audit, so static fallbacks of
        db checks stay silent (the db half reports, or runs them itself if it fails)."""
        return self.db_requested not in ("", "none", None) and not self.stages.get("db_fallback")

    def database_url(self) -> str | None:
        """The server URL for db-source checks, or None (reason in ``stages['db_reason']``).

        ``auto`` starts a private embedded PostgreSQL owned by this process on first use
        and stops it at exit (interactive notebooks); the batch runner passes a URL.
        """
        if self.db.startswith("env:"):  # the batch runner passes the URL out of band
            name = self.db[4:]
            self.db = os.environ.get(name, "none")
            if self.db == "none":
                self.stages.setdefault("db_reason", f"the database URL variable {name} is not set")
        if self.db == "auto":
            from .pg import EmbeddedPostgres, PostgresUnavailable

            try:
                server = EmbeddedPostgres().start()
            except PostgresUnavailable as exc:
                self.db, self.stages["db_reason"] = "none", f"embedded PostgreSQL unavailable: {exc}"
            else:
                atexit.register(server.stop)
                self.db = server.url(driver="")
        return None if self.db in ("", "none", None) else self.db

    @property
    def name(self) -> str:
        return self.root.name

    @property
    def cache_dir(self) -> Path:
        """Per-target cache (index, kernelspec), outside the output directory: the index
        holds the target's raw text, which must not travel with the shareable report."""
        base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "auditlib" / "targets"
        return base / hashlib.sha256(str(self.root).encode()).hexdigest()[:16]

    @cached_property
    def index(self) -> CodeIndex:
        return CodeIndex.build(self.root, self.cache_dir, exclude=self.config.get("exclude", []))

    @cached_property
    def layout(self) -> Layout:
        return discover(self.index, self.config)

    def grep(self, pattern: str, include=None, exclude=None, **kw):
        """``grep -rn`` over the index, as a DataFrame (file, line, column, text)."""
        return self.index.grep(pattern, include, exclude, **kw)

    @cached_property
    def commit(self) -> str | None:
        try:
            out = subprocess.run(["git", "-C", str(self.root), "rev-parse", "HEAD"],
                                 capture_output=True, text=True, timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            return None
        return out.stdout.strip() or None if out.returncode == 0 else None
