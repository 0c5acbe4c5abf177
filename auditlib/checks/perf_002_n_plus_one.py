"""PERF-002: N+1 queries (queries and lazy loads inside loops, list endpoints without
eager loading)."""
from __future__ import annotations

import ast

from ..code.callgraph import app_graph
from ..findings import Severity
from ..facts.orm_scan import db_read_call, eager_loaded, models, query_functions, uses_asyncio
from ..code.pyast import NOT_LITERAL, SCOPES, dotted, flat, literal, of_type, parent_map
from ..facts.routes import source_routes
from . import check

LOOPS = (ast.For, ast.AsyncFor, ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)
LIST_TYPES = {"list", "List", "Sequence", "set", "Set", "Iterable", "tuple", "Tuple"}


def _bounded(it: ast.AST) -> bool:
    """A loop over a literal collection or ``range(<constant>)``: N is fixed and small."""
    if isinstance(it, (ast.List, ast.Tuple, ast.Set, ast.Dict)):
        return True
    if isinstance(it, ast.Call) and dotted(it.func) in ("range", "enumerate", "zip"):
        return all(_bounded(a) or isinstance(literal(a), int) for a in it.args)
    return False


def _loop_parts(loop) -> tuple[ast.AST, list[ast.AST], ast.AST]:
    """(iterable, nodes executed once per iteration, loop target)."""
    if isinstance(loop, (ast.For, ast.AsyncFor)):
        return loop.iter, list(loop.body), loop.target
    gens = loop.generators
    inner = [x for g in gens for x in g.ifs] + [g.iter for g in gens[1:]]
    inner += [loop.key, loop.value] if isinstance(loop, ast.DictComp) else [loop.elt]
    return gens[0].iter, inner, gens[0].target


def _walk_inner(nodes, types) -> list[ast.AST]:
    """The nodes of ``types`` among ``nodes`` and under them, without entering nested
    functions, lambdas or classes, in the order of a depth-first stack walk (the one
    these checks always used): the given nodes last to first, in each subtree a node
    before its children and the children last to first, i.e. by (-end, index) in the
    flattened tree."""
    out: list[ast.AST] = []
    for top in reversed(nodes):
        f, i = flat(top)
        order, end = f.order, f.end
        sub = [(-end[i], i, top)] if isinstance(top, types) else []
        j, stop = i + 1, end[i]
        while j < stop:
            n = order[j]
            if isinstance(n, SCOPES):
                j = end[j]
                continue
            if isinstance(n, types):
                sub.append((-end[j], j, n))
            j += 1
        sub.sort(key=lambda t: t[:2])
        out += [n for _e, _j, n in sub]
    return out


TERMINAL = (ast.Return, ast.Raise, ast.Continue, ast.Break)


def _unreachable(node: ast.AST, fn: ast.AST, tree: ast.AST) -> bool:
    """Whether ``node`` sits in a branch that never runs: under ``if False:`` /
    ``if TYPE_CHECKING:`` (or the ``else`` of ``if True:``), or after a ``return`` /
    ``raise`` / ``continue`` / ``break`` of the same block."""
    up = parent_map(tree)
    child, parent = node, up.get(id(node))
    while parent is not None and child is not fn:
        if isinstance(parent, (ast.If, ast.While)):
            test = literal(parent.test)
            if test is NOT_LITERAL and dotted(parent.test).rsplit(".", 1)[-1] == "TYPE_CHECKING":
                test = False
            if test is not NOT_LITERAL and (child in parent.body and not test or
                                            child in parent.orelse and test and isinstance(parent, ast.If)):
                return True
        for body in ("body", "orelse", "finalbody"):
            block = getattr(parent, body, None)
            if isinstance(block, list) and child in block:
                if any(isinstance(st, TERMINAL) for st in block[:block.index(child)]):
                    return True
        child, parent = parent, up.get(id(parent))
    return False


def _response_item(route) -> str | None:
    """``X`` of ``response_model=list[X]`` (or a ``-> list[X]`` return annotation)."""
    ann = route.response_model or route.node.returns
    if isinstance(ann, ast.Subscript) and dotted(ann.value).rsplit(".", 1)[-1] in LIST_TYPES:
        inner = ann.slice
        return dotted(inner).rsplit(".", 1)[-1] or None
    return None


def _schema_fields(graph) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for src in graph.files:
        for cls in of_type(src.tree, ast.ClassDef):
            out.setdefault(cls.name, set()).update(
                s.target.id for s in cls.body if isinstance(s, ast.AnnAssign) and isinstance(s.target, ast.Name))
    return out


@check("PERF-002", "performance", "N+1 queries")
def n_plus_one(ctx):
    """N+1 query patterns on request paths (route handlers and every function they call,
    followed across modules by resolving imports):

    - a database read (``session.execute/scalar/scalars/get/refresh``, or a call to a
      function that performs one, however deep) inside a ``for`` loop or comprehension:
      one round trip per item;
    - a lazy relationship attribute read on the loop variable of a loop over query
      results (``for b in await session.scalars(...): b.team``) when neither the
      relationship (``lazy="selectin"/"joined"``) nor the query (``selectinload`` /
      ``joinedload``) loads it eagerly;
    - a list endpoint (``GET`` with ``response_model=list[Schema]``) whose schema has a
      field named like a lazy relationship of the model the handler selects, without an
      eager-loading option: serialising each row triggers a lazy load;
    - ``relationship(lazy="dynamic")`` in an asyncio app (not supported by AsyncSession).

    Why: N+1 turns one query into N+1 round trips, the classic cause of list pages that
    get slower as data grows. With async SQLAlchemy an implicit lazy load does not even
    query: it raises ``MissingGreenlet`` and the request fails (500). Severity: WARNING.
    Not flagged: loops over literal collections or ``range(<constant>)``, the iterable
    of a loop or the first ``for`` of a comprehension (evaluated once), writes
    (``execute(update(...))``, ``execute(stmt)`` with ``stmt = insert(...)``, and helpers
    that only queue writes: ``session.add`` in a loop and one ``commit`` is one flush),
    code in a branch that never runs (``if False:``, ``if TYPE_CHECKING:``, after a
    ``return``/``raise``/``continue``/``break`` of its block), ``while`` loops (pagination / batching), and loops in
    background jobs not reachable from a route (per-item processing there is usually
    deliberate).
    """
    chk = n_plus_one.check
    graph = app_graph(ctx)
    qf = query_functions(graph)
    routes = source_routes(ctx)
    is_async = uses_asyncio(ctx)
    lazy_effect = ("with AsyncSession the implicit lazy load raises `MissingGreenlet` instead "
                   "(a 500 on this path)" if is_async else "one SELECT per row")
    all_models = models(ctx, graph)
    lazy_rels = {name: (m, r) for m in all_models for name, r in m.relationships.items()
                 if r.lazy in ("select", "True")}

    reach: dict[int, tuple] = {}  # id(func node) -> (Func, method, route) for functions on request paths
    for r in routes:
        handler = graph.enclosing(r.file, r.handler_line)
        for fn in graph.reach(handler) if handler else []:
            reach.setdefault(id(fn.node), (fn, r.methods[0], r))

    reported: set[tuple[str, int]] = set()
    for fn, method, route in reach.values():
        derived = None
        for loop in of_type(fn.node, LOOPS):
            it, inner, target = _loop_parts(loop)
            if _bounded(it):
                continue
            for node in _walk_inner(inner, ast.Call):
                why = None
                if _unreachable(node, fn.node, ctx.index.get(fn.file).tree):
                    continue
                if db_read_call(node, fn.node):
                    why = f"`{dotted(node.func)}`"
                else:
                    callee = graph.resolve(fn.file, node)
                    if callee is not None and id(callee.node) in qf:
                        why = f"`{callee.qualname}`, which reads the database ({qf[id(callee.node)]})"
                if why and (fn.file, node.lineno) not in reported:
                    reported.add((fn.file, node.lineno))
                    yield chk.finding(
                        ctx, Severity.WARNING, "Database query inside a loop (N+1)",
                        f"Each iteration of the loop at line {loop.lineno} of `{fn.qualname}` calls {why}: "
                        f"one database round trip per item on the request path of {method} {route.path}; "
                        "latency grows linearly with the number of rows.",
                        "Load the data for all items in one query before the loop (`where(X.id.in_(ids))`, "
                        "a join, or `selectinload`/`joinedload` on the parent query) and look items up in a dict.",
                        fn.file, node.lineno, routes=[{"method": method, "path": route.path}])
            if not (isinstance(target, ast.Name) and any(n.attr in lazy_rels
                                                         for n in _walk_inner(inner, ast.Attribute))):
                continue
            derived = _query_derived_names(fn, graph, qf) if derived is None else derived
            if not _is_query_derived(it, derived, fn, graph, qf):
                continue
            eager = eager_loaded(graph, graph.reach(fn))
            for node in _walk_inner(inner, ast.Attribute):
                if isinstance(node.value, ast.Name) \
                        and node.value.id == target.id and node.attr in lazy_rels and node.attr not in eager \
                        and (fn.file, node.lineno) not in reported:
                    model, rel = lazy_rels[node.attr]
                    reported.add((fn.file, node.lineno))
                    yield chk.finding(
                        ctx, Severity.WARNING, f"Lazy relationship `{node.attr}` read in a loop (N+1)",
                        f"`{target.id}.{node.attr}` is the lazily loaded relationship `{model.name}.{node.attr}` "
                        f"({model.file}:{rel.line}); the query feeding the loop does not eager-load it, so every "
                        f"iteration triggers a lazy load: {lazy_effect}.",
                        f"Add `.options(selectinload({model.name}.{node.attr}))` to the query (or "
                        "`joinedload` for a many-to-one), or set `lazy=\"raise\"` on the relationship to "
                        "make such accesses fail in tests.", fn.file, node.lineno,
                        routes=[{"method": method, "path": route.path}])

    fields = _schema_fields(graph)
    by_name = {m.name: m for m in all_models}
    for r in routes:
        item = _response_item(r) if "GET" in r.methods else None
        handler = graph.enclosing(r.file, r.handler_line)
        if not item or item not in fields or handler is None:
            continue
        reached = graph.reach(handler)
        eager = eager_loaded(graph, reached)
        selected = _selected_models(graph, reached, by_name)
        for m in selected:
            rels = sorted(n for n in fields[item] & set(m.relationships)
                          if m.relationships[n].lazy in ("select", "True") and n not in eager)
            if rels and (r.file, r.line) not in reported:
                reported.add((r.file, r.line))
                yield chk.finding(
                    ctx, Severity.WARNING, f"List endpoint GET {r.path} serialises lazy relationships",
                    f"`{item}` includes {', '.join(f'`{n}`' for n in rels)}, lazily loaded relationship(s) of "
                    f"`{m.name}` ({m.file}:{m.relationships[rels[0]].line}); the handler's query has no "
                    f"eager-loading option for them, so serialising each row loads them one by one: {lazy_effect}.",
                    f"Add `.options(selectinload({m.name}.{rels[0]}))` to the list query.",
                    r.file, r.line, routes=[{"method": "GET", "path": r.path}])

    if is_async:
        for m in all_models:
            for rel in m.relationships.values():
                if rel.lazy == "dynamic":
                    yield chk.finding(
                        ctx, Severity.WARNING, f"`{m.name}.{rel.name}` uses lazy=\"dynamic\" in an asyncio app",
                        "Dynamic relationships are not supported by SQLAlchemy's asyncio extension: "
                        "accessing them through an AsyncSession fails.",
                        "Use `WriteOnlyMapped` / `lazy=\"write_only\"` and query the collection "
                        "explicitly with `session.scalars(rel.select())`.", m.file, rel.line, key=f"dynamic:{m.name}.{rel.name}")


def _query_expr(expr, fn, graph, qf) -> bool:
    for node in of_type(expr, ast.Call):
        if db_read_call(node):
            return True
        callee = graph.resolve(fn.file, node)
        if callee is not None and id(callee.node) in qf:
            return True
    return False


def _query_derived_names(fn, graph, qf) -> set[str]:
    """Local names assigned from a query (``rows = await session.scalars(...)``)."""
    out = set()
    for node in of_type(fn.node, (ast.Assign, ast.AnnAssign)):
        if node.value is not None and _query_expr(node.value, fn, graph, qf):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            out |= {t.id for t in targets if isinstance(t, ast.Name)}
    return out


def _is_query_derived(it, derived, fn, graph, qf) -> bool:
    if any(n.id in derived for n in of_type(it, ast.Name)):
        return True
    return _query_expr(it, fn, graph, qf)


def _selected_models(graph, funcs, by_name) -> list:
    out = []
    for fn in funcs:
        for node in of_type(fn.node, ast.Call):
            if dotted(node.func).rsplit(".", 1)[-1] in ("select", "get", "query") \
                    and node.args and isinstance(node.args[0], ast.Name) and node.args[0].id in by_name:
                m = by_name[node.args[0].id]
                if m not in out:
                    out.append(m)
    return out
