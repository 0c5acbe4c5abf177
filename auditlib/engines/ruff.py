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
    """Every hit of the ``select``ed rules on the target's parseable Python files.

    Selectors inside the default families (``S``, ``ASYNC``, ``FAST``) are answered
    from one shared run of those families (rules are per file and independent, so a
    superset run filtered by code prefix gives the same hits), which
    :func:`prefetch` starts in the background while the Python checks work. Other
    selectors get a run of their own. Raises :class:`RuffUnavailable` when Ruff is
    missing, fails or times out.
    """
    shared = all(any(sel.startswith(fam) for fam in DEFAULT_SELECT) for sel in select)
    hits = _hits(ctx, DEFAULT_SELECT if shared else tuple(select))
    parseable = {f.path for f in ctx.index.select("*.py") if f.tree is not None}
    return [h for h in hits if h.file in parseable and (not shared or h.code.startswith(tuple(select)))]


def prefetch(ctx) -> None:
    """Start the shared run of the default families in the background (no-op when its
    result is memoised, cached on disk or already running)."""
    key, files = _key(ctx, DEFAULT_SELECT)
    if key in _MEMO or key in _PENDING or (ctx.cache_dir / f"ruff-{key}.json").is_file() or not files:
        return
    exe = ruff_binary()
    if exe is None:
        return  # _hits raises RuffUnavailable with the reason when a check asks
    try:
        _PENDING[key] = (subprocess.Popen(_cmd(exe, DEFAULT_SELECT, files), cwd=ctx.root, text=True,
                                          stdout=subprocess.PIPE, stderr=subprocess.PIPE), ctx.root)
    except OSError:
        pass


def _key(ctx, select: tuple[str, ...]) -> tuple[str, list[str]]:
    # every indexed .py file (no parse needed, so the run can start before any check);
    # hits in files that do not parse are dropped by ruff_hits
    files = sorted(f.path for f in ctx.index.select("*.py") if f.text is not None)
    key = hashlib.sha256(json.dumps([list(select)] + [(p, ctx.index.get(p).sha256) for p in files])
                         .encode()).hexdigest()[:20]
    return key, files


def _hits(ctx, select: tuple[str, ...]) -> list[RuffHit]:
    key, files = _key(ctx, select)
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
    pending = _PENDING.pop(key, None)
    hits = _collect(*pending) if pending else _run(ctx.root, files, select)
    cache.parent.mkdir(parents=True, exist_ok=True)
    cache.write_text(json.dumps([asdict(h) for h in hits]))
    _MEMO[key] = hits
    return hits


_MEMO: dict[str, list[RuffHit]] = {}
_PENDING: dict[str, tuple[subprocess.Popen, Path]] = {}


def _cmd(exe: str, select: tuple[str, ...], files: list[str]) -> list[str]:
    return [exe, "check", "--isolated", "--no-cache", "--exit-zero", "--output-format", "json",
            "--target-version", "py312", "--select", ",".join(select), "--", *files]


def _run(root: Path, files: list[str], select: tuple[str, ...]) -> list[RuffHit]:
    exe = ruff_binary()
    if exe is None:
        raise RuffUnavailable("the ruff executable was not found (pip install ruff)")
    if not files:
        return []
    try:
        proc = subprocess.Popen(_cmd(exe, select, files), cwd=root, text=True,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    except OSError as exc:
        raise RuffUnavailable(f"ruff could not start: {exc.strerror}") from None
    return _collect(proc, root)


def _collect(proc: subprocess.Popen, root: Path) -> list[RuffHit]:
    try:
        stdout, stderr = proc.communicate(timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        raise RuffUnavailable(f"ruff did not finish within {TIMEOUT_S} s") from None
    if proc.returncode not in (0, 1) or not stdout.strip():
        # exit 2 = ruff itself failed (bad selector, crash): never a silent "no hits"
        tail = (stderr or "").strip().splitlines()[-1:] or ["no output"]
        raise RuffUnavailable(f"ruff failed (exit {proc.returncode}): {tail[0][:200]}")
    try:
        raw = json.loads(stdout)
    except ValueError:
        raise RuffUnavailable(f"ruff failed (exit {proc.returncode}): "
                              f"{(stderr or '').strip().splitlines()[-1:] or ['no output']}") from None
    out = []
    for d in raw:
        if not d.get("code") or not d["code"][0].isupper():  # syntax errors: AUDIT-001's business
            continue
        rel = Path(d["filename"]).resolve().relative_to(root.resolve()).as_posix()
        out.append(RuffHit(d["code"], rel, d["location"]["row"], d["end_location"]["row"],
                           d["location"]["column"], d["message"]))
    return sorted(out, key=lambda h: (h.file, h.line, h.code))
