"""One analysis per audit, presented by many notebooks.

Every static check needs the same shared models (routes, ORM schema, settings, call
graph, tenant verdicts); built in each notebook process, they were built thirteen
times. :func:`of` runs every static check once and computes the tables the notebooks
show, and keeps the result in a store keyed by what it was built from: the content hash
of every indexed file, the effective configuration, whether a database stage owns the
db checks, the interpreter, and auditlib's version and code (the hash of its files). The batch runner builds it before
the notebooks start and hands its path to them (``$AUDITLIB_ANALYSIS``); a notebook
opened on its own builds the same store on first use, or loads it when it exists.
Notebooks then present their area's findings and tables and compute nothing twice.
"""
from __future__ import annotations

import hashlib
import json
import os
import pickle
import platform
import time
from dataclasses import dataclass, field, replace as dc_replace
from pathlib import Path

from . import __version__
from .checks import run_checks
from .findings import Finding, assign_fingerprints

ANALYSIS_ENV = "AUDITLIB_ANALYSIS"
FORMAT = 1  # bump when the store's shape changes


def _tables():
    """name -> function(ctx) of every table a notebook shows (imported lazily: pandas)."""
    from .facts.features import feature_frame
    from .facts.routes import routes_frame
    from .tenancy.scoping import scoping_frame

    return {"routes": routes_frame, "scoping": scoping_frame, "features": feature_frame}


@dataclass
class Analysis:
    key: str
    findings: list[dict]  # every static finding, fingerprinted, in check order
    root: str = ""  # the target it describes
    db_owned: bool = False  # whether a database stage owned the db checks (their static halves silent)
    tables: dict[str, object] = field(default_factory=dict)  # name -> DataFrame, or the error text
    stats: dict = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)  # check id -> seconds, tables, total
    layout: object = None  # the discovered Layout (plain data), so notebooks need not rediscover

    def area(self, area: str) -> list[Finding]:
        return [Finding.from_dict(d) for d in self.findings if d["area"] == area]


_CODE_HASH: list[str] = []


def code_hash() -> str:
    """The content hash of auditlib's own files: the version string does not change with every
    edit, and a store pickled by other code (a Layout without a field the new code reads) must
    not be loaded into it."""
    if not _CODE_HASH:
        h = hashlib.sha256()
        pkg = Path(__file__).resolve().parent
        for f in sorted(pkg.rglob("*")):
            if f.suffix in (".py", ".toml") and f.is_file() and "__pycache__" not in f.parts:
                h.update(f"\0{f.relative_to(pkg)}\0".encode())
                h.update(f.read_bytes())
        _CODE_HASH.append(h.hexdigest()[:16])
    return _CODE_HASH[0]


def key_of(ctx) -> str:
    """What the analysis was built from, hashed."""
    h = hashlib.sha256()
    config = {k: v for k, v in ctx.config.items() if not k.startswith("_")}
    h.update(json.dumps([FORMAT, __version__, code_hash(), platform.python_version(), str(ctx.root), config,
                         ctx.db_stage_owns(), sorted(ctx.stages.items(), key=str)],
                        sort_keys=True, default=str).encode())
    for path in sorted(ctx.index.files):
        h.update(f"\0{path}\0{ctx.index.files[path].sha256}".encode())
    return h.hexdigest()[:24]


def build(ctx, key: str | None = None) -> Analysis:
    t0 = time.perf_counter()
    timings: dict[str, float] = {}
    found = assign_fingerprints(run_checks(ctx, source="static", timings=timings))
    result = Analysis(key or key_of(ctx), [f.to_dict() for f in found], str(ctx.root), ctx.db_stage_owns(),
                      timings=timings)
    for name, fn in _tables().items():
        t = time.perf_counter()
        try:
            result.tables[name] = fn(ctx)
        except Exception as exc:  # one broken table must not lose the others
            result.tables[name] = f"this table could not be built: {type(exc).__name__}: {exc}"
        result.timings[f"table:{name}"] = time.perf_counter() - t
    from .facts.routes import route_inventory

    result.stats["endpoints_reviewed"] = len(route_inventory(ctx))
    result.layout = dc_replace(ctx.layout, _memo=None)  # its memo holds the index's files: not stored
    result.timings["total"] = time.perf_counter() - t0
    return result


def store_path(ctx, key: str) -> Path:
    return ctx.cache_dir / f"analysis-{key}.pickle"


def save(result: Analysis, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    with tmp.open("wb") as fh:
        pickle.dump(result, fh, protocol=pickle.HIGHEST_PROTOCOL)
    os.replace(tmp, path)
    return path


def load(path: Path) -> Analysis | None:
    try:
        with Path(path).open("rb") as fh:
            got = pickle.load(fh)
    except Exception:  # missing, partial or from another version: rebuilt
        return None
    return got if isinstance(got, Analysis) else None


def attach(ctx) -> None:
    """In a batch run, give ``ctx`` the runner's analysis and its discovered layout, so
    a notebook neither rediscovers the target (parsing every file) nor re-runs a check."""
    given = os.environ.get(ANALYSIS_ENV)
    if not given or "_analysis" in ctx.__dict__:
        return
    result = load(Path(given))
    if result is None or (result.root, result.db_owned) != (str(ctx.root), ctx.db_stage_owns()):
        return
    ctx.__dict__["_analysis"] = result
    if result.layout is not None and "layout" not in ctx.__dict__:
        ctx.__dict__["layout"] = dc_replace(result.layout, _memo={})  # complete: memoise from here on


def of(ctx) -> Analysis:
    """The audit's analysis: the runner's store, else this context's own (loaded from
    the cache when it exists, built and saved otherwise), memoised on the context."""
    hit = ctx.__dict__.get("_analysis")
    if hit is not None:
        return hit
    given = os.environ.get(ANALYSIS_ENV)
    result = load(Path(given)) if given else None
    if result is not None and (result.root, result.db_owned) != (str(ctx.root), ctx.db_stage_owns()):
        result = None  # another target's, or built for another database setting
    if result is None:
        key = key_of(ctx)
        path = store_path(ctx, key)
        result = load(path)
        if result is None or result.key != key:
            result = build(ctx, key)
            save(result, path)
    ctx.__dict__["_analysis"] = result
    return result
