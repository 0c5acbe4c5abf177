"""Ruff as a rule engine: bandit's rules (``S``), async pitfalls (``ASYNC``) and FastAPI
rules (``FAST``) over the target's Python files, in well under a second.

Checks map Ruff codes to checklist ids and add what Ruff cannot know. Ruff runs with
``--isolated`` so no configuration in the target can switch rules off silently, on the
exact file list of the code index (same exclusions as every other check), in a
subprocess with a timeout. Results are cached on disk by the content hashes of those
files, so the notebooks of one batch share one run.
"""
from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

DEFAULT_SELECT = ("S", "ASYNC", "FAST")
TIMEOUT_S = 120


@dataclass(frozen=True)
class RuffHit:
    code: str
    file: str  # relative to the target root
    line: int
    end_line: int
    column: int
    message: str


class RuffUnavailable(RuntimeError):
    """Ruff could not run; the message is the reason for a "not verified" WARNING."""


def ruff_binary() -> str | None:
    """The ruff executable beside this interpreter (the package depends on ruff), else PATH."""
    here = Path(sys.executable).parent / "ruff"
    return str(here) if here.exists() else shutil.which("ruff")


def ruff_hits(ctx, select: tuple[str, ...] = DEFAULT_SELECT) -> list[RuffHit]:
    """Every hit of the ``select``ed rule families on the target's parseable Python files.

    Raises :class:`RuffUnavailable` when Ruff is missing, fails or times out.
    """
    files = sorted(f.path for f in ctx.index.select("*.py") if f.tree is not None)
    key = hashlib.sha256(json.dumps([list(select)] + [(p, ctx.index.get(p).sha256) for p in files])
                         .encode()).hexdigest()[:20]
    memo = _MEMO.get(key)
    if memo is not None:
        return memo
    cache = ctx.cache_dir / f"ruff-{key}.json"
    if cache.is_file():
        try:
            hits = [RuffHit(**h) for h in json.loads(cache.read_text())]
            _MEMO[key] = hits
            return hits
        except (ValueError, TypeError):
            pass
    hits = _run(ctx.root, files, select)
    cache.parent.mkdir(parents=True, exist_ok=True)
    cache.write_text(json.dumps([asdict(h) for h in hits]))
    _MEMO[key] = hits
    return hits


_MEMO: dict[str, list[RuffHit]] = {}


def _run(root: Path, files: list[str], select: tuple[str, ...]) -> list[RuffHit]:
    exe = ruff_binary()
    if exe is None:
        raise RuffUnavailable("the ruff executable was not found (pip install ruff)")
    if not files:
        return []
    cmd = [exe, "check", "--isolated", "--no-cache", "--exit-zero", "--output-format", "json",
           "--target-version", "py312", "--select", ",".join(select), "--", *files]
    try:
        proc = subprocess.run(cmd, cwd=root, capture_output=True, text=True, timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired:
        raise RuffUnavailable(f"ruff did not finish within {TIMEOUT_S} s") from None
    except OSError as exc:
        raise RuffUnavailable(f"ruff could not start: {exc.strerror}") from None
    if proc.returncode not in (0, 1) or not proc.stdout.strip():
        # exit 2 = ruff itself failed (bad selector, crash): never a silent "no hits"
        tail = (proc.stderr or "").strip().splitlines()[-1:] or ["no output"]
        raise RuffUnavailable(f"ruff failed (exit {proc.returncode}): {tail[0][:200]}")
    try:
        raw = json.loads(proc.stdout)
    except ValueError:
        raise RuffUnavailable(f"ruff failed (exit {proc.returncode}): "
                              f"{(proc.stderr or '').strip().splitlines()[-1:] or ['no output']}") from None
    out = []
    for d in raw:
        if not d.get("code") or not d["code"][0].isupper():  # syntax errors: AUDIT-001's business
            continue
        rel = Path(d["filename"]).resolve().relative_to(root.resolve()).as_posix()
        out.append(RuffHit(d["code"], rel, d["location"]["row"], d["end_location"]["row"],
                           d["location"]["column"], d["message"]))
    return sorted(out, key=lambda h: (h.file, h.line, h.code))
