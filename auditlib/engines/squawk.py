"""Squawk (PyPI ``squawk-cli``), the PostgreSQL migration linter, run per revision.

The input is the target's offline SQL (``alembic upgrade head --sql``) split at Alembic's
``-- Running upgrade A -> B`` markers: one file per revision, linted in one Squawk run.
Linting the whole history as one file would hide lints (Squawk treats every table
created earlier in the same file as new). We use Squawk rather than our own regexes:
it parses PostgreSQL's grammar and knows which statements take which locks.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

# Style / per-statement-boilerplate rules left out by default (config: squawk_exclude).
DEFAULT_EXCLUDE = ["prefer-robust-stmts", "prefer-bigint-over-int", "prefer-bigint-over-smallint",
                   "prefer-identity", "prefer-text-field", "prefer-timestamptz", "require-lock-timeout",
                   "require-statement-timeout"]


class SquawkUnavailable(RuntimeError):
    pass


@dataclass
class Lint:
    revision: str
    rule: str
    message: str
    help: str
    statement: str  # the SQL line the lint points at


def squawk_binary() -> str | None:
    local = Path(sys.executable).parent / "squawk"
    return str(local) if local.exists() else shutil.which("squawk")


def lint_revisions(sql_by_revision: dict[str, str], exclude: list[str], timeout: float = 60,
                   pg_version: int = 0) -> list[Lint]:
    """Lint each revision's SQL; raises :class:`SquawkUnavailable` when Squawk cannot run."""
    exe = squawk_binary()
    if exe is None:
        raise SquawkUnavailable("squawk is not installed (pip install squawk-cli)")
    if not sql_by_revision:
        return []
    with tempfile.TemporaryDirectory(prefix="auditlib-squawk-") as tmp:
        files = {}
        for i, (rev, sql) in enumerate(sql_by_revision.items()):
            p = Path(tmp) / f"{i:05d}.sql"
            p.write_text(sql + "\n", encoding="utf-8")
            files[p.name] = (rev, sql.splitlines())
        cmd = [exe, "--reporter", "json", "--assume-in-transaction", *files]
        if exclude:
            cmd[1:1] = ["--exclude", ",".join(exclude)]
        if pg_version:
            cmd[1:1] = ["--pg-version", f"{pg_version // 10000}.0"]
        try:
            r = subprocess.run(cmd, cwd=tmp, capture_output=True, text=True, timeout=timeout,
                               env={**os.environ, "NO_COLOR": "1"})
        except subprocess.TimeoutExpired:
            raise SquawkUnavailable(f"squawk did not finish within {timeout:g} s") from None
        except OSError as exc:
            raise SquawkUnavailable(f"squawk could not start: {exc}") from None
    try:
        if r.returncode not in (0, 1):
            raise ValueError
        items = json.loads(r.stdout or "[]")
    except ValueError:
        raise SquawkUnavailable(f"squawk failed (exit {r.returncode}): {(r.stderr or r.stdout)[-200:]}") from None
    out = []
    for it in items:
        rev, lines = files.get(Path(it.get("file", "")).name, (None, []))
        n = it.get("line", 0)
        if rev is not None:
            out.append(Lint(rev, it.get("rule_name", ""), it.get("message", ""), it.get("help") or "",
                            lines[n].strip() if 0 <= n < len(lines) else ""))
    return out
