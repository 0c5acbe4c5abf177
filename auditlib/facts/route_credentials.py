"""How each FastAPI route is authenticated and what body it takes, from the AST: the
facts CSRF analysis needs.

A route is a function decorated with ``@<router>.post/put/patch/delete/get(...)`` or
``api_route(..., methods=[...])``. Its dependencies are ``Depends(f)`` / ``Security(f)``
in parameter defaults, in ``Annotated[T, Depends(f)]`` (also through a module-level
alias such as ``User = Annotated[CurrentUser, Depends(get_current_user)]``), in the
decorator's ``dependencies=[...]`` and in ``APIRouter(dependencies=[...])`` of the same
module. Dependencies are followed through the project (imports resolved, three levels)
to the credential they read:

- ``header``: ``HTTPBearer``, ``OAuth2PasswordBearer``, ``APIKeyHeader``,
  ``Header()`` parameters, ``request.headers[...]``: browsers never attach these by
  themselves, so such routes are not CSRF-prone;
- ``basic``: ``HTTPBasic``: browsers cache Basic credentials and re-send them;
- ``cookie``: ``APIKeyCookie``, ``Cookie()`` parameters, ``request.cookies``,
  ``request.session`` (a signed session cookie): attached by the browser to
  cross-site requests too (subject to SameSite).
"""
from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field

from ..code.pyast import dotted, flat, literal, of_type
from ..code.pyresolve import Project

ROUTE_HINT = re.compile(r"@\s*[\w.]+\.(get|post|put|patch|delete|head|options|api_route)\(")
STATE_CHANGING = {"POST", "PUT", "PATCH", "DELETE"}
HTTP_METHODS = {"get", "post", "put", "patch", "delete", "head", "options"}
SCHEME_KIND = {"HTTPBearer": "header", "OAuth2PasswordBearer": "header", "OAuth2AuthorizationCodeBearer": "header",
               "OAuth2": "header", "APIKeyHeader": "header", "APIKeyQuery": "header", "HTTPDigest": "header",
               "OpenIdConnect": "header", "HTTPBasic": "basic", "APIKeyCookie": "cookie"}


@dataclass
class Route:
    file: str
    line: int  # the decorator line
    method: str
    path: str
    handler: str
    credentials: set[str] = field(default_factory=set)  # header | basic | cookie
    body: str = "none"  # none | json | form
    dependencies: list[str] = field(default_factory=list)  # dependency names seen


def routes(ctx) -> list[Route]:
    """Every route of the application code, with credentials and body kind (cached)."""
    cached = ctx.__dict__.get("_route_credentials")
    if cached is None:
        cached = _build(ctx)
        ctx.__dict__["_route_credentials"] = cached
    return cached


def _build(ctx) -> list[Route]:
    project = Project.of(ctx)
    out = []
    memo: dict = {}  # what a followed dependency contributes, shared by the routes (see _follow)
    for src in ctx.layout.app_sources(ctx.index):
        if src.tree is None or not ROUTE_HINT.search(src.text or ""):
            continue
        aliases = _aliases(src)
        routers = {name: v for name, v in aliases.items() if isinstance(v, ast.Call)
                   and dotted(v.func).rsplit(".", 1)[-1] in ("APIRouter", "FastAPI")}
        for fn in of_type(src.tree, (ast.FunctionDef, ast.AsyncFunctionDef)):
            for dec in fn.decorator_list:
                if not (isinstance(dec, ast.Call) and isinstance(dec.func, ast.Attribute)):
                    continue
                verb = dec.func.attr
                if verb == "api_route":
                    listed = literal(_kw(dec, "methods"))  # NOT_LITERAL when computed
                    listed = listed if isinstance(listed, (list, tuple, set)) else ["GET"]
                    methods = [m.upper() for m in listed if isinstance(m, str)]
                elif verb in HTTP_METHODS:
                    methods = [verb.upper()]
                else:
                    continue
                owner = dotted(dec.func.value)
                router = routers.get(owner)
                prefix = literal(_kw(router, "prefix")) if router is not None else ""
                path = literal(dec.args[0]) if dec.args else literal(_kw(dec, "path"))
                deps = _dep_nodes(_kw(dec, "dependencies"), aliases) + (
                    _dep_nodes(_kw(router, "dependencies"), aliases) if router is not None else [])
                for m in methods:
                    r = Route(src.path, dec.lineno, m, f"{prefix if isinstance(prefix, str) else ''}"
                              f"{path if isinstance(path, str) else ''}", fn.name)
                    _analyse_params(project, src, fn, aliases, r, 3, memo, top=True)
                    for d in deps:
                        _analyse_dep(project, src, d, r, 3, memo)
                    out.append(r)
    return out


def _kw(call, name):
    if call is None:
        return None
    return next((k.value for k in call.keywords if k.arg == name), None)


def _dep_nodes(node, aliases=None, depth: int = 0) -> list[ast.AST]:
    """The callables inside ``[Depends(f), Security(g)]``, also through a module-level list
    (``dependencies=_limits``), ``a + b`` and ``x if c else y`` (both branches)."""
    if depth > 6 or node is None:
        return []
    if isinstance(node, ast.Name) and aliases and node.id in aliases:
        return _dep_nodes(aliases[node.id], aliases, depth + 1)
    if isinstance(node, ast.IfExp):
        return _dep_nodes(node.body, aliases, depth + 1) + _dep_nodes(node.orelse, aliases, depth + 1)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        return _dep_nodes(node.left, aliases, depth + 1) + _dep_nodes(node.right, aliases, depth + 1)
    if not isinstance(node, (ast.List, ast.Tuple)):
        return []
    return [d.args[0] for d in node.elts if isinstance(d, ast.Call) and d.args
            and dotted(d.func).rsplit(".", 1)[-1] in ("Depends", "Security")]


def _annotation_parts(ann, aliases) -> list[ast.AST]:
    if isinstance(ann, ast.Name) and ann.id in aliases:
        ann = aliases[ann.id]
    if isinstance(ann, ast.Subscript) and dotted(ann.value).rsplit(".", 1)[-1] == "Annotated":
        elts = ann.slice.elts if isinstance(ann.slice, ast.Tuple) else [ann.slice]
        return list(elts)
    return [ann] if ann is not None else []


def _follow(project, target, r: Route, depth: int, memo: dict) -> None:
    """Add to ``r`` what the project function ``target`` (a dependency, or a function one
    calls) contributes at ``depth``. Away from the route itself (``top``) the analysis
    reads nothing of the route and only adds credentials and dependency names, so it is
    made once per (function, depth) and shared by every route that reaches it."""
    key = (id(target.func), depth)
    hit = memo.get(key)
    if hit is None:
        scratch = Route("", 0, "", "", "")
        _analyse_params(project, target.src, target.func, _aliases(target.src), scratch, depth, memo)
        hit = memo[key] = (scratch.credentials, scratch.dependencies)
    r.credentials |= hit[0]
    r.dependencies.extend(hit[1])


def _analyse_params(project, src, fn, aliases, r: Route, depth: int, memo: dict, top: bool = False) -> None:
    a = fn.args
    params = [*a.posonlyargs, *a.args, *a.kwonlyargs]
    defaults = [None] * (len(a.posonlyargs) + len(a.args) - len(a.defaults)) + list(a.defaults) + list(a.kw_defaults)
    for p, default in zip(params, defaults):
        parts = _annotation_parts(p.annotation, aliases)
        markers = [x for x in [default, *parts[1:]] if isinstance(x, ast.Call)]
        for m in markers:
            name = dotted(m.func).rsplit(".", 1)[-1]
            if name in ("Depends", "Security") and m.args:
                _analyse_dep(project, src, m.args[0], r, depth, memo)
            elif name == "Cookie":
                r.credentials.add("cookie")
            elif name == "Header" and "auth" in p.arg.lower() or name == "Header" and "key" in p.arg.lower():
                r.credentials.add("header")
            elif name in ("Form", "File") and top:
                r.body = "form"
            elif name == "Body" and top and r.body == "none":
                r.body = "json"
        core = parts[0] if parts else None
        cname = dotted(core).rsplit(".", 1)[-1] if core is not None else ""
        if top and cname == "UploadFile":
            r.body = "form"
        elif top and not markers and cname and cname[0].isupper() and cname not in (
                "Request", "Response", "BackgroundTasks", "WebSocket", "AsyncSession", "Session", "Optional",
                "Literal", "UUID", "Decimal") and r.body == "none" and not _is_path_param(p.arg, r.path):
            r.body = "json"  # a pydantic model parameter
    for n in of_type(fn, ast.Attribute):
        if n.attr in ("cookies", "session") and dotted(n.value).endswith(("request", "req")):
            r.credentials.add("cookie")
        elif n.attr == "headers" and dotted(n.value).endswith(("request", "req")):
            r.credentials.add("header")
    if not top and depth > 0:
        for n in of_type(fn, ast.Call):
            target = project.resolve_call(src, n.func)
            if target is not None and target.func is not fn:
                _follow(project, target, r, depth - 1, memo)


def _is_path_param(name: str, path: str) -> bool:
    return "{" + name + "}" in path or "{" + name + ":" in path


def _aliases(src) -> dict:
    """Module-level ``name = value`` assignments (memoised per tree; callers only read it)."""
    f, i = flat(src.tree)
    hit = f.memo.get(("route_credentials.aliases", i))
    if hit is None:
        hit = f.memo[("route_credentials.aliases", i)] = {
            t.id: st.value for st in src.tree.body if isinstance(st, ast.Assign)
            for t in st.targets if isinstance(t, ast.Name)}
    return hit


def _analyse_dep(project, src, node, r: Route, depth: int, memo: dict) -> None:
    """Follow a dependency (a function, or a security scheme instance) to its credential."""
    name = dotted(node)
    r.dependencies.append(name)
    if isinstance(node, ast.Call):  # Depends(HTTPBearer())
        kind = SCHEME_KIND.get(dotted(node.func).rsplit(".", 1)[-1])
        if kind:
            r.credentials.add(kind)
        return
    if depth <= 0:
        return
    aliases = _aliases(src)
    inst = aliases.get(name)
    if isinstance(inst, ast.Call):
        kind = SCHEME_KIND.get(dotted(inst.func).rsplit(".", 1)[-1])
        if kind:
            r.credentials.add(kind)
            return
    target = project.resolve_call(src, node)
    if target is not None:
        _follow(project, target, r, depth - 1, memo)
        return
    q = project.qualify(src, node)  # an imported scheme instance: module.attr
    mod, _, attr = q.rpartition(".")
    other = project.by_module.get(mod)
    if other is not None:
        inst = _aliases(other).get(attr)
        if isinstance(inst, ast.Call) and SCHEME_KIND.get(dotted(inst.func).rsplit(".", 1)[-1]):
            r.credentials.add(SCHEME_KIND[dotted(inst.func).rsplit(".", 1)[-1]])
