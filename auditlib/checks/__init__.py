"""The check registry: one small plugin per checklist id over one shared parse.

A check is a generator function decorated with :func:`check`; it receives the audit
:class:`~auditlib.target.context.AuditContext` and yields :class:`~auditlib.findings.Finding`s.
Modules are named after their id (``sec_030_committed_secrets.py`` holds SEC-030), so
"where is SEC-030?" is one ``ls`` away. :func:`run_checks` isolates failures: a check
that raises yields a "not verified" WARNING and the others still run.
"""
from __future__ import annotations

import gc
import importlib
import pkgutil
import time
import traceback
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Callable, Iterable, Iterator

from ..findings import Finding, Location, Severity, not_verified
from ..redact import redact_text


@dataclass
class Check:
    id: str
    area: str
    title: str
    source: str
    func: Callable[..., Iterable[Finding]]
    engines: tuple[str, ...] = ()  # external engines the check reads (started early by run_checks)

    @property
    def doc(self) -> str:
        return (self.func.__doc__ or "").strip()

    def finding(self, ctx, severity: Severity | str, title: str, message: str, fix: str,
                file: str, line: int | None = None, *, excerpt: str | None = None,
                end_line: int | None = None, **extra) -> Finding:
        """A finding of this check at ``file:line``; the excerpt defaults to that line."""
        if excerpt is None:
            src = ctx.index.get(file)
            excerpt = src.line(line) if src is not None else ""
        loc = Location(file, line, end_line or line, redact_text(excerpt)[:300])
        return Finding(check=self.id, area=self.area, severity=Severity(severity), title=title,
                       message=message, fix=fix, source=extra.pop("source", self.source),
                       locations=[loc], **extra)


REGISTRY: dict[str, Check] = {}


def check(id: str, area: str, title: str, source: str = "static", engines: tuple[str, ...] = ()):
    """Register a check function under its checklist id; ``engines`` names the external
    engines it reads (``"ruff"``), so a run can start them in the background first."""
    key = id if source == "static" else f"{id}/{source}"  # e.g. DEP-002 and DEP-002/db

    def deco(func):
        if key in REGISTRY:
            raise ValueError(f"check {key} registered twice")
        REGISTRY[key] = Check(id, area, title, source, func, tuple(engines))
        func.check = REGISTRY[key]
        return func
    return deco


def load_all() -> dict[str, Check]:
    for mod in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{mod.name}")
    return REGISTRY


def checks_for(area: str | None = None, ids: Iterable[str] | None = None,
               source: str | None = None) -> list[Check]:
    """Registered checks, filtered by area, ids and source (static / db / tests / live)."""
    load_all()
    wanted = set(ids or [])
    return [c for c in sorted(REGISTRY.values(), key=lambda c: (c.id, c.source))
            if (area is None or c.area == area) and (not wanted or c.id in wanted)
            and (source is None or c.source == source)]


def run_check(chk: Check, ctx) -> list[Finding]:
    try:
        return list(chk.func(ctx))
    except Exception as exc:  # one broken check must not lose the audit
        tb = traceback.extract_tb(exc.__traceback__)[-1]
        reason = f"the check crashed: {type(exc).__name__}: {exc} (at {tb.filename.rsplit('/', 1)[-1]}:{tb.lineno})"
        return [not_verified(chk.id, chk.area, chk.title, reason, source=chk.source)]


def run_checks(ctx, area: str | None = None, ids: Iterable[str] | None = None,
               source: str | None = None, timings: dict[str, float] | None = None) -> list[Finding]:
    """Run the selected checks in id order; ``timings`` (if given) receives each check's
    wall time in seconds, keyed like the registry (``DEP-002``, ``DEP-002/db``)."""
    out: list[Finding] = []
    selected = checks_for(area, ids, source)
    start_engines(ctx, selected)
    with _collector_paused():
        for chk in selected:
            t0 = time.perf_counter()
            out.extend(run_check(chk, ctx))
            if timings is not None:
                timings[chk.id if chk.source == "static" else f"{chk.id}/{chk.source}"] = time.perf_counter() - t0
    return out


@contextmanager
def _collector_paused():
    """CPython's cyclic garbage collector paused while checks run, and resumed after.

    The checks allocate many short-lived objects but make few garbage cycles, while the
    index holds some 100,000 long-lived AST nodes that each collection of the older
    generations walks again: measured on a 200-file target, collections took ~6 % of the
    static audit and landed on whichever check happened to run. Reference counting still
    frees everything acyclic; cycles made meanwhile are collected when it resumes."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def start_engines(ctx, checks: Iterable[Check]) -> None:
    """Start the external engines the ``checks`` read: Ruff runs in its own process, so
    started first it works while the Python checks do."""
    if not any("ruff" in c.engines for c in checks):
        return
    from ..engines.ruff import prefetch

    try:
        prefetch(ctx)
    except Exception:  # the checks that read Ruff report why it could not run
        pass


def static_fallback(ctx, check_id: str) -> list[Finding]:
    """Run the static half of a db check because the database stage could not run.

    Static halves stay silent while a database stage is requested (the db half is the
    better evidence); when that stage fails, the db half calls this so the static
    reading still reports, marked as the fallback it is.
    """
    chk = REGISTRY.get(check_id)
    if chk is None or not ctx.db_requested or ctx.db_requested == "none":
        return []
    ctx.stages["db_fallback"] = True
    try:
        found = run_check(chk, ctx)
    finally:
        ctx.stages.pop("db_fallback", None)
    for f in found:
        if "static fallback" not in f.message:
            f.message = "(static fallback: the database stage could not run) " + f.message
    return found


def iter_docs() -> Iterator[tuple[str, str, str, str]]:
    """(id, area, title, docstring) for every registered check: the catalogue."""
    for c in checks_for():
        yield c.id, c.area, c.title, c.doc
