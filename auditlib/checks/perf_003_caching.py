"""PERF-003: caching of hot read paths (pricing configuration, slots)."""
from __future__ import annotations

import ast

from ..code.callgraph import app_graph
from ..findings import Severity
from ..code.keywords import first_phrase, split_words
from ..facts.orm_scan import query_functions
from ..code.pyast import dotted, of_type
from . import check

# Names of read paths worth caching (config key `hot_read_paths`): keyword phrases.
HOT_READ_PATHS = ["pric*", "quote*", "estimat*", "tariff*", "rate card*", "slot*", "availab*"]
CACHE_DECORATORS = {"lru_cache", "cache", "cached", "alru_cache", "ttl_cache", "memoize", "cached_property",
                    "async_cached", "cache_response", "cache_result"}
FUNCTOOLS_CACHES = {"lru_cache", "cache"}
CACHE_METHODS = {"get", "set", "setex", "mget", "hget", "hgetall", "get_or_set"}


def _decorators(fn) -> set[str]:
    return {dotted(d).rsplit(".", 1)[-1] for d in fn.node.decorator_list}


def _uses_cache_store(graph, funcs) -> bool:
    """A Redis / cache-client read or write (``redis.get``, ``cache.set``) in ``funcs``."""
    for fn in funcs:
        for node in of_type(fn.node, ast.Call):
            if isinstance(node.func, ast.Attribute) and node.func.attr in CACHE_METHODS:
                recv = dotted(node.func.value).lower()
                if "redis" in recv or "cache" in recv:
                    return True
    return False


@check("PERF-003", "performance", "Caching of hot read paths")
def caching(ctx):
    """Read paths that every quote or booking page hits (pricing configuration, price
    estimates, slot availability; names configurable with ``hot_read_paths``) and that
    query the database on every call (directly or through the functions they call)
    without a cache: no ``functools.lru_cache``/``cache``, ``cachetools``/``aiocache``/
    ``async_lru`` decorator, and no Redis or cache-client ``get``/``set`` around the read.

    Why: the same rows are read on every request; a short-lived cache cuts latency and
    database load on the busiest endpoints. RECOMMENDATION (optional by the checklist),
    reported on the innermost uncached function that reads. Also a WARNING for
    ``functools.lru_cache``/``cache`` on an ``async def``: it caches the coroutine
    object, so the second call with the same arguments raises ``RuntimeError: cannot
    reuse already awaited coroutine``.
    Not flagged: pure computations (a price computed from constants needs no cache),
    functions that are not on a hot path by name.
    """
    chk = caching.check
    graph = app_graph(ctx)
    phrases = ctx.config.get("hot_read_paths", HOT_READ_PATHS)
    qf = query_functions(graph)
    for fn in graph.all_funcs:
        bad = _decorators(fn) & FUNCTOOLS_CACHES
        if fn.is_async and bad:
            yield chk.finding(
                ctx, Severity.WARNING, f"`functools.{min(bad)}` on async function `{fn.qualname}`",
                "functools caches the coroutine object, not its result: the second call with the same "
                "arguments returns an already-awaited coroutine and raises RuntimeError.",
                "Use `async_lru.alru_cache` or `aiocache.cached`, or cache the awaited value explicitly.",
                fn.file, fn.line, key=f"async-cache:{fn.qualname}")
    candidates = []
    for fn in graph.all_funcs:
        if id(fn.node) not in qf or not first_phrase(phrases, set(split_words(fn.name))):
            continue
        reach = graph.reach(fn)
        if _decorators(fn) & CACHE_DECORATORS or _uses_cache_store(graph, reach):
            continue
        candidates.append((fn, reach))
    inner = {id(fn.node) for fn, _ in candidates}
    for fn, reach in candidates:
        if any(id(other.node) in inner for other in reach if other is not fn):
            continue  # report the innermost reader only
        yield chk.finding(
            ctx, Severity.RECOMMENDATION, f"Hot read path `{fn.qualname}` is not cached",
            f"`{fn.qualname}` reads the database on every call ({qf[id(fn.node)]}); pricing and availability "
            "reads are on the busiest request paths and change rarely.",
            "Cache the result for a short TTL (Redis `get`/`setex` keyed by org and inputs, or "
            "`aiocache.cached(ttl=...)` / `cachetools.TTLCache` in-process) and invalidate it when the "
            "configuration changes.", fn.file, fn.line, key=f"hot:{fn.qualname}")
