"""SEC-040: rate limiter implementation (in-memory races, locks, Redis fail-open/closed)."""
from __future__ import annotations

import ast
import re

from ..findings import Severity
from ..code.pyast import FUNCS, dotted, flat, inner, literal, of_type, walk
from ..code.pyresolve import Project, kwarg
from . import check

LIMITER = re.compile(r"rate|limit|throttl", re.I)
BLOCK_MEANS_TRUE = re.compile(r"limited|exceeded|blocked|over_?limit|throttled|too_many", re.I)
CONTAINERS = {"dict", "defaultdict", "OrderedDict", "deque", "Counter", "list"}
WRITES = {"append", "appendleft", "setdefault", "pop", "popleft", "clear", "update", "remove", "__setitem__"}
REDIS_OPS = {"incr", "incrby", "expire", "pexpire", "zadd", "zremrangebyscore", "zcard", "zcount", "execute",
             "eval", "evalsha", "get", "set", "setex", "ttl", "pipeline", "hit", "script_load"}
FuncDef = (ast.FunctionDef, ast.AsyncFunctionDef)


def _own_nodes(fn: ast.AST) -> list[ast.AST]:
    """Nodes of ``fn`` not inside nested functions/lambdas, in the order of a depth-first
    walk that takes the children last to first (each node before its descendants, the
    later of two unrelated nodes first): the order in which the Redis ``try`` blocks are
    reported and the first lock held across an await is chosen."""
    f, i = flat(fn)
    order, end = f.order, f.end
    own, j, stop = [], i + 1, end[i]
    while j < stop:  # indices of the nodes under fn, nested functions/lambdas skipped
        if isinstance(order[j], FUNCS):
            j = end[j]
        else:
            own.append(j)
            j += 1
    own.sort(key=lambda j: (-end[j], j))  # preorder positions into last-child-first order
    return [order[j] for j in own]


def _state_names(scope: ast.AST, attr: bool) -> dict[str, str]:
    """Mutable containers held as shared state: ``self.x = {}`` (attr) or module-level
    ``x = defaultdict(list)``; name -> kind."""
    out = {}
    for n in of_type(scope, (ast.Assign, ast.AnnAssign)) if attr else scope.body:
        if isinstance(n, (ast.Assign, ast.AnnAssign)) and n.value is not None:
            v = n.value
            kind = "dict" if isinstance(v, ast.Dict) else dotted(v.func).split(".")[-1] \
                if isinstance(v, ast.Call) else ""
            if kind not in CONTAINERS and not isinstance(v, ast.Dict):
                continue
            for t in (n.targets if isinstance(n, ast.Assign) else [n.target]):
                name = dotted(t)
                if attr and name.startswith("self."):
                    out[name] = kind
                elif not attr and isinstance(t, ast.Name):
                    out[name] = kind
    return out


def _lock_names(proj: Project, src, scope: ast.AST) -> dict[str, str]:
    """Lock objects: name -> 'threading' | 'asyncio'."""
    out = {}
    for n in of_type(scope, (ast.Assign, ast.AnnAssign)):
        if isinstance(n.value, ast.Call):
            q = proj.qualify(src, n.value.func)
            kind = "threading" if q.startswith(("threading.", "multiprocessing.")) else \
                "asyncio" if q.startswith(("asyncio.", "anyio.")) else ""
            if kind and q.rsplit(".", 1)[-1] in ("Lock", "RLock", "Semaphore", "BoundedSemaphore", "Condition"):
                for t in (n.targets if isinstance(n, ast.Assign) else [n.target]):
                    out[dotted(t)] = kind
    return out


def _pos(n):
    return (n.lineno, n.col_offset)


def _race(fn: ast.AsyncFunctionDef, state: dict[str, str], locks: dict[str, str]):
    """(name, read node, await node, write node) when ``fn`` reads shared state, awaits,
    then writes it, outside an ``async with <lock>``."""
    guarded = set()
    own = _own_nodes(fn)
    for n in own:
        if isinstance(n, ast.AsyncWith) and any(dotted(i.context_expr) in locks or re.search(
                r"lock|mutex|semaphore", dotted(i.context_expr), re.I) for i in n.items):
            guarded |= {id(x) for x in walk(n)}
    nodes = [n for n in own if id(n) not in guarded] if guarded else own
    awaits = sorted((n for n in nodes if isinstance(n, ast.Await)), key=_pos)
    for name in state:
        reads, writes = [], []
        for n in nodes:
            if isinstance(n, ast.Subscript) and dotted(n.value) == name:
                (writes if isinstance(n.ctx, (ast.Store, ast.Del)) else reads).append(n)
            elif isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute):
                base = n.func.value
                owner = dotted(base.value) if isinstance(base, ast.Subscript) else dotted(base)
                if owner == name:
                    (writes if n.func.attr in WRITES else reads).append(n)
            elif isinstance(n, ast.Compare) and any(dotted(c) == name for c in n.comparators):
                reads.append(n)
        for r in sorted(reads, key=_pos):
            for w in sorted(writes, key=_pos):
                a = next((a for a in awaits if _pos(r) <= _pos(a) < _pos(w)), None)
                if a is not None:
                    return name, r, a, w
    return None


def _threading_lock_across_await(fn, locks):
    for n in _own_nodes(fn):
        if isinstance(n, ast.With) and any(locks.get(dotted(i.context_expr)) == "threading" for i in n.items):
            if of_type(n, ast.Await):
                return n
    return None


def _fail_mode(handler: ast.ExceptHandler, fn) -> str:
    """What happens to the request when the Redis call raises: open / closed / fallback."""
    in_handler = {id(y) for y in of_type(handler, ast.Raise)}
    limit_raises = any(isinstance(x, ast.Raise) and id(x) not in in_handler
                       for x in inner(fn, FUNCS, keep_scopes=False))
    block_true = bool(BLOCK_MEANS_TRUE.search(fn.name))
    for n in of_type(handler, ast.Call):
        if re.search(r"memory|fallback|local", dotted(n.func), re.I):
            return "fallback"
    if of_type(handler, ast.Raise) or any(n.value in (429, 503) for n in of_type(handler, ast.Constant)):
        return "closed"
    for n in of_type(handler, ast.Return):
        v = literal(n.value) if n.value is not None else None
        if v is True:
            return "closed" if block_true else "open"
        if v is False:
            return "open" if block_true else "closed"
        if v is None:
            return "open" if (block_true or limit_raises) else "closed"
        if isinstance(n.value, (ast.Await, ast.Call)) and "call_next" in ast.unparse(n.value):
            return "open"
        if isinstance(n.value, ast.Constant) and isinstance(n.value.value, int):
            return "open" if n.value.value == 0 and not block_true else "closed"
    return "open"  # the handler logs or passes and the request carries on


@check("SEC-040", "security", "Rate limiter implementation")
def rate_limiter(ctx):
    """Rate limiter code in the app (classes and functions named rate/limit/throttle,
    slowapi ``Limiter``): (1) an in-memory limiter whose shared dict/deque is read, then
    ``await`` runs, then it is written, outside an ``async with lock`` (say which
    container and lines); (2) a ``threading.Lock`` held across an ``await`` in a coroutine;
    (3) each Redis call's ``except`` branch, reported as fail-open (returns "allowed",
    passes, or calls ``call_next``), fail-closed (raises, returns 429/503 or "limited") or
    falling back to an in-memory limiter; (4) an in-memory-only limiter, and slowapi
    without ``storage_uri``.

    Why: the race lets concurrent requests all pass the check (a brute-force burst beats
    the limit); a threading lock held across an await deadlocks the event loop; a
    fail-open limiter silently stops limiting (login brute force) whenever Redis is
    down. Race, lock across await and fail-open: WARNING. Per-process (in-memory only)
    limiting: RECOMMENDATION (limits multiply by workers/replicas and reset on deploy).
    Fail-closed, fallback and unguarded Redis calls (errors become 500s): INFO.
    Not flagged: read-modify-write with no ``await`` in between (atomic on one event
    loop), a threading lock not held across an await. Whether routes are rate limited at
    all is SEC-005.
    """
    chk = rate_limiter.check
    proj = Project.of(ctx)
    for src in proj.files:
        if not ctx.layout.is_app(src.path):
            continue
        classes = [c for c in of_type(src.tree, ast.ClassDef) if LIMITER.search(c.name)]
        limit_funcs = [f for f in src.tree.body if isinstance(f, FuncDef) and LIMITER.search(f.name)]
        scopes = []
        if classes or limit_funcs:
            mod_state = _state_names(src.tree, False)
            mod_locks = _lock_names(proj, src, src.tree)
            scopes = [(c, {**mod_state, **_state_names(c, True)}, {**mod_locks, **_lock_names(proj, src, c)})
                      for c in classes]
            scopes += [(f, mod_state, mod_locks) for f in limit_funcs]
        uses_redis = any(q.split(".")[0] in ("redis", "aioredis", "coredis", "limits")
                         for q in proj.imports.get(src.path, {}).values())
        for scope, state, locks in scopes:
            funcs = [scope] if isinstance(scope, FuncDef) else [f for f in scope.body if isinstance(f, FuncDef)]
            redis_seen = False
            for fn in funcs:
                if isinstance(fn, ast.AsyncFunctionDef):
                    race = _race(fn, state, locks)
                    if race:
                        name, r, a, w = race
                        yield chk.finding(ctx, Severity.WARNING, f"Rate limiter races on `{name}`",
                                          f"`{fn.name}` reads `{name}` (line {r.lineno}), awaits (line {a.lineno}), "
                                          f"then writes it (line {w.lineno}) without an asyncio lock: concurrent "
                                          "requests interleave at the await and all pass the check, so bursts "
                                          "exceed the limit.",
                                          "Do the check-and-update without an await in between, or under an "
                                          "`asyncio.Lock` (`async with self._lock:`); better, use Redis with an "
                                          "atomic INCR/EXPIRE or a Lua script.", src.path, a.lineno,
                                          key=f"race:{fn.name}:{name}")
                    held = _threading_lock_across_await(fn, locks)
                    if held:
                        yield chk.finding(ctx, Severity.WARNING, "threading.Lock held across an await",
                                          f"`{fn.name}` holds a threading lock while awaiting: another coroutine "
                                          "that tries to take it blocks the whole event loop, which then never "
                                          "resumes the holder (deadlock).",
                                          "Use `asyncio.Lock` with `async with` in coroutines.", src.path,
                                          held.lineno, key=f"threadlock:{fn.name}")
                for t in (n for n in _own_nodes(fn) if isinstance(n, ast.Try)):
                    calls = [c for b in t.body for c in of_type(b, ast.Call)
                             if isinstance(c.func, ast.Attribute) and c.func.attr in REDIS_OPS]
                    if not calls or not uses_redis or not t.handlers:
                        continue
                    redis_seen = True
                    h = t.handlers[0]
                    mode = _fail_mode(h, fn)
                    sev = Severity.WARNING if mode == "open" else Severity.INFO
                    text = {"open": "fails open: while Redis is unavailable every request is allowed",
                            "closed": "fails closed: while Redis is unavailable requests are refused",
                            "fallback": "falls back to an in-memory limiter while Redis is unavailable"}[mode]
                    yield chk.finding(ctx, sev, f"Redis rate limiter {text.split(':')[0]}",
                                      f"`{fn.name}`: the `except` around `{dotted(calls[0].func)}` {text}"
                                      + (" - login and public endpoints lose brute-force protection exactly "
                                         "when an attacker can knock Redis over." if mode == "open" else "."),
                                      "Fail closed for authentication endpoints (429/503), or fall back to a "
                                      "per-process limiter; alert on Redis errors." if mode == "open" else "",
                                      src.path, h.lineno, key=f"redis:{fn.name}")
                if not redis_seen and uses_redis and any(
                        isinstance(c, ast.Call) and isinstance(c.func, ast.Attribute) and c.func.attr in REDIS_OPS
                        and isinstance(c.func.value, (ast.Name, ast.Attribute)) and re.search(
                            r"redis|_r$|client|pipe", dotted(c.func.value), re.I) for c in _own_nodes(fn)):
                    redis_seen = True
                    yield chk.finding(ctx, Severity.INFO, "Redis rate limiter: errors propagate",
                                      f"`{fn.name}` calls Redis without an except branch: while Redis is "
                                      "unavailable requests fail with 500 (effectively fail-closed).", "",
                                      src.path, fn.lineno, key=f"redis-raw:{fn.name}")
            used = {dotted(n) for n in of_type(scope, (ast.Name, ast.Attribute))}
            if not uses_redis and used & set(state):
                yield chk.finding(ctx, Severity.RECOMMENDATION, f"In-memory rate limiter `{scope.name}`",
                                  "The limiter keeps its counters in process memory: each worker and replica "
                                  "counts separately (the effective limit is N x workers) and restarts reset it.",
                                  "Use a shared store (Redis) in production, and require REDIS_URL in production "
                                  "config validation.", src.path, scope.lineno, key=f"memory:{scope.name}")
        for n in of_type(src.tree, ast.Call):
            if proj.qualify(src, n.func) in ("slowapi.Limiter", "slowapi.extension.Limiter") \
                    and kwarg(n, "storage_uri") is None:
                yield chk.finding(ctx, Severity.RECOMMENDATION, "slowapi Limiter without storage_uri (in memory)",
                                  "Without `storage_uri` slowapi counts in process memory: limits multiply by "
                                  "workers/replicas and reset on restart.",
                                  "Pass `storage_uri=settings.redis_url` (redis://...).", src.path, n.lineno,
                                  key="slowapi")
