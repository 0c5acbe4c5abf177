"""PERF-002: N+1 queries (queries and lazy loads inside loops, list endpoints without
eager loading)."""
from __future__ import annotations

import ast

from ..code.callgraph import app_graph
from ..findings import Location, Severity
from ..redact import redact_text
from ..facts.orm_scan import db_read_call, eager_loaded, is_session_receiver, models, query_functions, uses_asyncio
from ..code.pyast import NOT_LITERAL, SCOPES, dotted, flat, inner, literal, of_type, parent_map
from ..facts.routes import source_routes
from . import check

LOOPS = (ast.For, ast.AsyncFor, ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)
LAZY = ("select", "True")  # SQLAlchemy's default loader, and lazy=True
LIST_TYPES = {"list", "List", "Sequence", "set", "Set", "Iterable", "tuple", "Tuple"}


def _bounded(it: ast.AST) -> bool:
    """A loop over a literal collection or ``range(<constant>)``: N is fixed and small."""
    if isinstance(it, (ast.List, ast.Tuple, ast.Set, ast.Dict)):
        return True
    if isinstance(it, ast.Call) and dotted(it.func) in ("range", "enumerate", "zip"):
        return all(_bounded(a) or isinstance(literal(a), int) for a in it.args)
    return False


CHUNKERS = {"batched", "chunked", "chunks", "batches", "iter_batches", "iter_chunks", "grouper", "partition_all"}


def _chunked(it: ast.AST) -> bool:
    """``for i in range(0, len(ids), size)`` (a step other than 1) or ``for batch in
    batched(ids, 500)``: each iteration handles a chunk of items (one ``IN (...)`` query
    per chunk is the batching itself, not N+1)."""
    if not isinstance(it, ast.Call):
        return False
    name = dotted(it.func).rsplit(".", 1)[-1]
    if name == "range" and len(it.args) == 3:
        return literal(it.args[2]) not in (1, -1)
    return name in CHUNKERS or name.endswith(("_chunks", "_batches"))


def _opt_in_flags(handler: ast.AST) -> set[str]:
    """Parameters of a route handler that default to False (``sync: bool =
    Query(default=False)``, ``full: bool = False``): behaviour the client opts into."""
    args = handler.args
    pos = args.posonlyargs + args.args
    pairs = list(zip(pos[len(pos) - len(args.defaults):], args.defaults)) + list(zip(args.kwonlyargs, args.kw_defaults))
    out = set()
    for a, d in pairs:
        v = literal(d)
        if isinstance(d, ast.Call):  # Query(False) / Query(default=False)
            v = literal(d.args[0]) if d.args else next((literal(k.value) for k in d.keywords if k.arg == "default"),
                                                         NOT_LITERAL)
        if v is False:
            out.add(a.arg)
    return out


def _opt_in_guard(loop: ast.AST, handler: ast.AST, tree: ast.AST, flags: set[str]) -> str | None:
    """The opt-in flag ``loop`` runs under: inside ``if flag:``, or after an
    ``if not flag: ... return`` of an enclosing block of the handler."""
    up = parent_map(tree)
    child, parent = loop, up.get(id(loop))
    while parent is not None and child is not handler:
        if isinstance(parent, ast.If) and child in parent.body and isinstance(parent.test, ast.Name) \
                and parent.test.id in flags:
            return parent.test.id
        for body in ("body", "orelse", "finalbody"):
            block = getattr(parent, body, None)
            if isinstance(block, list) and child in block:
                for st in block[:block.index(child)]:
                    t = st.test if isinstance(st, ast.If) else None
                    if isinstance(t, ast.UnaryOp) and isinstance(t.op, ast.Not) and isinstance(t.operand, ast.Name) \
                            and t.operand.id in flags and st.body and isinstance(st.body[-1], (ast.Return, ast.Raise)):
                        return t.operand.id
        child, parent = parent, up.get(id(parent))
    return None


def _optional_list(ann: ast.AST | None) -> bool:
    """``Optional[list[X]]`` / ``list[X] | None`` / ``Union[List[X], None]``."""
    if isinstance(ann, ast.BinOp) and isinstance(ann.op, ast.BitOr):
        parts = [ann.left, ann.right]
    elif isinstance(ann, ast.Subscript) and dotted(ann.value).rsplit(".", 1)[-1] in ("Optional", "Union"):
        parts = list(ann.slice.elts) if isinstance(ann.slice, ast.Tuple) else [ann.slice, ast.Constant(None)]
    else:
        return False
    return any(literal(p) is None for p in parts) and any(
        isinstance(p, ast.Subscript) and dotted(p.value).rsplit(".", 1)[-1] in LIST_TYPES for p in parts)


def _request_sublist(it: ast.AST, handler: ast.AST, classes: dict) -> str | None:
    """``body.tags`` (or ``body.tags or []``) where ``body`` is a handler parameter
    annotated with a request model, ``tags`` an optional list field of it (default
    None) and the model has other, non-list fields: the few children the client sends
    with the one object it submits. Returns ``body.tags``."""
    expr = it.values[0] if isinstance(it, ast.BoolOp) and isinstance(it.op, ast.Or) else it
    if not (isinstance(expr, ast.Attribute) and isinstance(expr.value, ast.Name)):
        return None
    ann = next((a.annotation for a in handler.args.posonlyargs + handler.args.args + handler.args.kwonlyargs
                if a.arg == expr.value.id), None)
    cls = classes.get(dotted(ann).rsplit(".", 1)[-1]) if ann is not None else None
    if cls is None:
        return None
    fields = {st.target.id: st for st in cls.body if isinstance(st, ast.AnnAssign) and isinstance(st.target, ast.Name)}
    f = fields.get(expr.attr)
    if f is None or not _optional_list(f.annotation):
        return None
    default = f.value
    if isinstance(default, ast.Call) and dotted(default.func).rsplit(".", 1)[-1] == "Field":
        default = default.args[0] if default.args else next((k.value for k in default.keywords if k.arg == "default"),
                                                             None)
    others = [st for name, st in fields.items() if name != expr.attr and not _optional_list(st.annotation)
              and not (isinstance(st.annotation, ast.Subscript)
                       and dotted(st.annotation.value).rsplit(".", 1)[-1] in LIST_TYPES)]
    if default is None or literal(default) is not None or not others:
        return None
    return dotted(expr)


def _request_classes(graph) -> dict[str, ast.ClassDef]:
    """Class name -> its definition, for names defined once in the application."""
    seen: dict[str, list] = {}
    for src in graph.files:
        for cls in of_type(src.tree, ast.ClassDef):
            seen.setdefault(cls.name, []).append(cls)
    return {name: defs[0] for name, defs in seen.items() if len(defs) == 1}


def _runs_once(it: ast.AST, target: ast.AST, fn, graph) -> bool:
    """``for db in get_session():`` / ``async for session in get_db():``: the iterable is
    a call to a generator that yields once, outside any loop (a session provider, like
    a FastAPI dependency), so the body runs at most once. An unresolved callee counts
    when the loop variable is named like a session."""
    if not isinstance(it, ast.Call):
        return False
    callee = graph.resolve(fn.file, it)
    if callee is None:
        return isinstance(target, ast.Name) and is_session_receiver(target)
    yields = [n for n in inner(callee.node) if isinstance(n, (ast.Yield, ast.YieldFrom))]
    if len(yields) != 1 or isinstance(yields[0], ast.YieldFrom):
        return False
    loops = [n for n in inner(callee.node) if isinstance(n, (ast.For, ast.AsyncFor, ast.While))]
    return not any(yields[0] in of_type(lp, ast.Yield) for lp in loops)


def _loop_parts(loop) -> tuple[ast.AST, list[ast.AST], ast.AST]:
    """(iterable, nodes executed once per iteration, loop target)."""
    if isinstance(loop, (ast.For, ast.AsyncFor)):
        return loop.iter, list(loop.body), loop.target
    gens = loop.generators
    body = [x for g in gens for x in g.ifs] + [g.iter for g in gens[1:]]
    body += [loop.key, loop.value] if isinstance(loop, ast.DictComp) else [loop.elt]
    return gens[0].iter, body, gens[0].target


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
        item = ann.slice
        return dotted(item).rsplit(".", 1)[-1] or None
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
      ``joinedload``) loads it eagerly; the item's model is the target of the
      relationship iterated (``for m in project.members``) or the model the query
      selects, else the only model with a relationship of that name (when several
      models have one and the loop does not say which, nothing is reported);
    - a list endpoint (``GET`` with ``response_model=list[Schema]``) whose schema has a
      field named like a lazy relationship of the model the handler selects, without an
      eager-loading option: serialising each row triggers a lazy load;
    - ``relationship(lazy="dynamic")`` in an asyncio app (not supported by AsyncSession).

    Why: N+1 turns one query into N+1 round trips, the classic cause of list pages that
    get slower as data grows. With async SQLAlchemy an implicit lazy load does not even
    query: it raises ``MissingGreenlet`` and the request fails (500). Severity: WARNING.
    One finding per function for the queries in its loops (one fix: load or write the
    items in bulk), located at every query. RECOMMENDATION when the loop is in the
    route handler and runs only when the client opts in (inside ``if flag:`` or after
    ``if not flag: return``, ``flag`` a handler parameter defaulting to False such as
    ``sync: bool = Query(default=False)``), or iterates an optional list field
    (``Optional[list[X]] = None``) of the request model next to its other fields
    (``for tag in body.tags or []``): the few children sent with the one object the
    request submits — N+1 there is bounded by the request, good practice to batch.
    Not flagged: loops over literal collections or ``range(<constant>)``, chunked loops
    (``range(0, n, size)`` with a step, ``batched(ids, k)``: one query per chunk is the
    batching), ``.get()`` on a dict of the function named like a session
    (``rows_by_session.get(k)``), the iterable
    of a loop or the first ``for`` of a comprehension (evaluated once), writes
    (``execute(update(...))``, ``execute(stmt)`` with ``stmt = insert(...)``, and helpers
    that only queue writes: ``session.add`` in a loop and one ``commit`` is one flush),
    code in a branch that never runs (``if False:``, ``if TYPE_CHECKING:``, after a
    ``return``/``raise``/``continue``/``break`` of its block), ``for``/``async for`` over a
    call to a generator that yields once outside any loop (``async for db in
    get_session():``, a session provider: the body runs once; an unresolved callee
    counts when the loop variable is named like a session), assignments to a
    relationship in a loop (``row.rel = x`` loads nothing), ``while`` loops (pagination / batching), and loops in
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
    rels_by_name: dict[str, list] = {}  # relationship name -> [(model, rel)] over every model
    for m in all_models:
        for name, r in m.relationships.items():
            rels_by_name.setdefault(name, []).append((m, r))
    lazy_rels = {name for name, pairs in rels_by_name.items() if any(r.lazy in LAZY for _m, r in pairs)}
    by_name = {m.name: m for m in all_models}

    reach: dict[int, tuple] = {}  # id(func node) -> (Func, method, route) for functions on request paths
    for r in routes:
        handler = graph.enclosing(r.file, r.handler_line)
        for fn in graph.reach(handler) if handler else []:
            reach.setdefault(id(fn.node), (fn, r.methods[0], r))

    handlers = {id(h.node) for r in routes if (h := graph.enclosing(r.file, r.handler_line)) is not None}
    classes = _request_classes(graph)
    reported: set[tuple[str, int]] = set()
    for fn, method, route in reach.values():
        derived = None
        in_loops: dict[Severity, list] = {}  # severity -> [(query line, loop line, what it calls, why milder)]
        is_handler = id(fn.node) in handlers
        flags = _opt_in_flags(fn.node) if is_handler else set()
        tree = ctx.index.get(fn.file).tree
        for loop in reversed(of_type(fn.node, LOOPS)):  # innermost first: the message names the loop that repeats
            it, inner_nodes, target = _loop_parts(loop)
            if _bounded(it) or _chunked(it) or _runs_once(it, target, fn, graph):
                continue
            milder = ""
            flag = _opt_in_guard(loop, fn.node, tree, flags) if flags else None
            if flag:
                milder = (f"it runs only when the client opts in with `{flag}=true` (the parameter defaults to "
                          "False)")
            elif is_handler and (sub := _request_sublist(it, fn.node, classes)):
                milder = (f"N is the number of entries the client sends in `{sub}`, an optional list of the one "
                          "object the request submits")
            for node in _walk_inner(inner_nodes, ast.Call):
                why = None
                if _unreachable(node, fn.node, tree):
                    continue
                if db_read_call(node, fn.node):
                    why = f"`{dotted(node.func)}`"
                else:
                    callee = graph.resolve(fn.file, node)
                    if callee is not None and id(callee.node) in qf:
                        why = f"`{callee.qualname}`, which queries the database ({qf[id(callee.node)]})"
                if why and (fn.file, node.lineno) not in reported:
                    reported.add((fn.file, node.lineno))
                    sev = Severity.RECOMMENDATION if milder else Severity.WARNING
                    in_loops.setdefault(sev, []).append((node.lineno, loop.lineno, why, milder))
            reads = [n for n in _walk_inner(inner_nodes, ast.Attribute)
                     if isinstance(target, ast.Name) and isinstance(n.value, ast.Name) and n.value.id == target.id
                     and isinstance(n.ctx, ast.Load) and n.attr in lazy_rels]  # `row.rel = x` loads nothing
            if not reads:
                continue
            derived = _query_derived_names(fn, graph, qf) if derived is None else derived
            if not _is_query_derived(it, derived, fn, graph, qf):
                continue
            eager = eager_loaded(graph, graph.reach(fn))
            item_models = _item_models(it, fn, rels_by_name, by_name)
            for node in reads:
                model, rel = _lazy_relationship(node.attr, item_models, rels_by_name)
                if model is not None and node.attr not in eager and (fn.file, node.lineno) not in reported:
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
        for sev, sites in in_loops.items():
            yield _query_in_loop(ctx, chk, sev, fn, method, route, sorted(sites))

    fields = _schema_fields(graph)
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
                          if m.relationships[n].lazy in LAZY and n not in eager)
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


def _query_in_loop(ctx, chk, sev, fn, method, route, sites):
    """One finding for the queries in loops of one function (one fix: load or write the
    items in bulk), located at each query."""
    line, loop_line, why, milder = sites[0]
    msg = (f"Each iteration of the loop at line {loop_line} of `{fn.qualname}` calls {why}: one database round "
           f"trip per item on the request path of {method} {route.path}; latency grows linearly with the number "
           "of items.")
    if len(sites) > 1:
        msg += (" The same function also queries once per item at " + ", ".join(
            f"line {ln} (loop at line {lp}, {w.split(',')[0]})" for ln, lp, w, _m in sites[1:]) + ".")
    if milder:
        msg += f" Not a launch risk: {milder}; batching it is good practice."
    f = chk.finding(
        ctx, sev, "Database query inside a loop (N+1)", msg,
        "Load the data for all items in one query before the loop (`where(X.id.in_(ids))`, a join, or "
        "`selectinload`/`joinedload` on the parent query) and look items up in a dict; write rows with one "
        "bulk `insert(...).values([...])` / `session.add_all`.",
        fn.file, line, routes=[{"method": method, "path": route.path}])
    src = ctx.index.get(fn.file)
    f.locations += [Location(fn.file, ln, ln, redact_text(src.line(ln))[:300]) for ln, *_rest in sites[1:]]
    return f


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


def _selected_models_in(node: ast.AST, by_name) -> list:
    """Models named first in ``select(M)`` / ``session.get(M, ...)`` / ``query(M)`` calls under ``node``."""
    out = []
    for call in of_type(node, ast.Call):
        if dotted(call.func).rsplit(".", 1)[-1] in ("select", "get", "query") \
                and call.args and isinstance(call.args[0], ast.Name) and call.args[0].id in by_name:
            m = by_name[call.args[0].id]
            if m not in out:
                out.append(m)
    return out


def _selected_models(graph, funcs, by_name) -> list:
    out = []
    for fn in funcs:
        for m in _selected_models_in(fn.node, by_name):
            if m not in out:
                out.append(m)
    return out


def _item_models(it: ast.AST, fn, rels_by_name, by_name) -> list:
    """The models a loop's items can be: the target of the relationship iterated
    (``for m in project.members``), else the models its query selects (``select(M)``
    in the iterable or in the assignment of the name it iterates); [] when unknown."""
    if isinstance(it, ast.Attribute) and it.attr in rels_by_name:
        targets = {r.target.rsplit(".", 1)[-1] for _m, r in rels_by_name[it.attr]}
        return [by_name[t] for t in sorted(targets) if t in by_name] if len(targets) == 1 else []
    exprs = [it]
    names = {n.id for n in of_type(it, ast.Name)}
    for node in of_type(fn.node, (ast.Assign, ast.AnnAssign)):
        targets = node.targets if isinstance(node, ast.Assign) else [node.target]
        if node.value is not None and any(isinstance(t, ast.Name) and t.id in names for t in targets):
            exprs.append(node.value)
    out = []
    for e in exprs:
        for m in _selected_models_in(e, by_name):
            if m not in out:
                out.append(m)
    return out


def _lazy_relationship(attr: str, item_models: list, rels_by_name):
    """(model, relationship) that ``item.attr`` lazily loads, or (None, None) when the
    item's model does not load it lazily or cannot be told (several models name a
    relationship ``attr`` and the loop's query does not say which)."""
    pairs = rels_by_name.get(attr, [])
    if item_models:
        pairs = [(m, r) for m, r in pairs if m in item_models]
    if len(pairs) != 1:
        return None, None
    m, r = pairs[0]
    return (m, r) if r.lazy in LAZY else (None, None)
