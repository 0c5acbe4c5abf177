"""The operational HTTP surface (health, readiness, metrics, admin maintenance routes) and
whether a route is protected, read from the AST only.

A deliberately small route finder for the observability and compliance checks: path
decorators (``@app.get("/readyz")``, ``@router.post(...)``, ``api_route``),
``add_api_route`` / ``add_route`` and ``mount`` calls, with the ``prefix`` and
``dependencies`` of ``APIRouter(...)`` and ``include_router(...)`` resolved through imports.
The full route inventory (every route, its roles) is SEC-004's; this module answers "is
there a ``/readyz``, which function handles it, and does anything authenticate it?".
"""
from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field

from .index import SourceFile
from .pyast import dotted, walk
from .pyresolve import Project, kwarg

FuncDef = ast.FunctionDef | ast.AsyncFunctionDef
VERBS = {"get", "post", "put", "patch", "delete", "head", "options", "api_route", "websocket"}
AUTH_NAME = re.compile(r"auth|user|admin|token|require|verify|current|permission|role|scope|login|"
                       r"basic|bearer|api_?key|principal|identity|guard|protect|staff|owner", re.I)
NOT_AUTH_NAME = re.compile(r"^(get_)?(db|session|settings|config|pagination|paginate|limit)", re.I)
SECURITY_CLASSES = {"HTTPBearer", "HTTPBasic", "HTTPDigest", "OAuth2PasswordBearer", "OAuth2",
                    "APIKeyHeader", "APIKeyQuery", "APIKeyCookie", "OpenIdConnect",
                    "OAuth2AuthorizationCodeBearer", "compare_digest"}


@dataclass
class Route:
    method: str  # GET / POST / ... / MOUNT
    path: str  # with the statically known router prefixes
    file: str
    line: int  # the decorator / add_route / mount line
    handler: FuncDef | None = None
    src: SourceFile | None = None  # the file defining the handler
    deps: list[ast.AST] = field(default_factory=list)  # route-, router- and include-level dependencies
    target: ast.AST | None = None  # the mounted app / endpoint expression


def _str(node) -> str | None:
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None


def _deps(call: ast.Call | None) -> list[ast.AST]:
    val = kwarg(call, "dependencies") if call is not None else None
    return list(val.elts) if isinstance(val, (ast.List, ast.Tuple)) else []


def _module_functions(src: SourceFile) -> dict[str, FuncDef]:
    return {n.name: n for n in src.tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))}


def find_routes(ctx) -> list[Route]:
    """Every route of the application code (cached on the context)."""
    cached = ctx.__dict__.get("_ops_routes")
    if cached is not None:
        return cached
    proj = Project.of(ctx)
    files = [f for f in proj.files if ctx.layout.is_app(f.path)]
    routers: dict[tuple[str, str], tuple[str, list]] = {}  # (file, var) -> (prefix, deps)
    for f in files:
        for node in walk(f.tree):
            if isinstance(node, ast.Assign) and isinstance(node.value, ast.Call) and len(node.targets) == 1 \
                    and isinstance(node.targets[0], ast.Name) \
                    and dotted(node.value.func).split(".")[-1] in ("APIRouter", "FastAPI"):
                routers[(f.path, node.targets[0].id)] = (_str(kwarg(node.value, "prefix")) or "",
                                                         _deps(node.value))
    parent: dict[tuple[str, str], tuple[tuple[str, str], str, list]] = {}
    for f in files:
        for node in walk(f.tree):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) \
                    and node.func.attr == "include_router" and node.args:
                child = _router_ref(proj, f, node.args[0])
                owner = (f.path, dotted(node.func.value))
                if child:
                    parent.setdefault(child, (owner, _str(kwarg(node, "prefix")) or "", _deps(node)))

    def chain(key, seen=()):
        prefix, deps = routers.get(key, ("", []))
        if key in parent and key not in seen:
            owner, inc_prefix, inc_deps = parent[key]
            up_prefix, up_deps = chain(owner, (*seen, key))
            return up_prefix + inc_prefix + prefix, up_deps + inc_deps + deps
        return prefix, deps

    out: list[Route] = []
    for f in files:
        funcs = _module_functions(f)
        for node in walk(f.tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                for dec in node.decorator_list:
                    if isinstance(dec, ast.Call) and isinstance(dec.func, ast.Attribute) \
                            and dec.func.attr in VERBS and dec.args and _str(dec.args[0]) is not None:
                        prefix, deps = chain((f.path, dotted(dec.func.value)))
                        method = dec.func.attr.upper() if dec.func.attr != "api_route" else "ANY"
                        out.append(Route(method, prefix + _str(dec.args[0]), f.path, dec.lineno, node, f,
                                         deps + _deps(dec)))
            elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) \
                    and node.func.attr in ("add_api_route", "add_route", "mount", "add_websocket_route") \
                    and node.args and _str(node.args[0]) is not None:
                prefix, deps = chain((f.path, dotted(node.func.value)))
                target = node.args[1] if len(node.args) > 1 else kwarg(node, "endpoint") or kwarg(node, "app")
                handler, hsrc = None, None
                if target is not None and not isinstance(target, ast.Call):
                    res = proj.resolve_call(f, target)
                    handler, hsrc = (res.func, res.src) if res else (funcs.get(dotted(target)), f)
                method = "MOUNT" if node.func.attr == "mount" else "ANY"
                out.append(Route(method, prefix + _str(node.args[0]), f.path, node.lineno, handler,
                                 hsrc if handler else None, deps + _deps(node), target))
    ctx.__dict__["_ops_routes"] = out
    return out


def _router_ref(proj: Project, src: SourceFile, node: ast.AST) -> tuple[str, str] | None:
    """(file, variable) of the router an ``include_router`` argument names."""
    name = dotted(node)
    if not name:
        return None
    if "." not in name and name not in proj.imports.get(src.path, {}):
        return (src.path, name)
    q = proj.qualify(src, node)
    mod, _, var = q.rpartition(".")
    target = proj.by_module.get(mod)
    return (target.path, var) if target else None


def routes_matching(ctx, paths) -> list[Route]:
    """Routes whose path (trailing slash ignored) is one of ``paths``."""
    wanted = {p.rstrip("/") or "/" for p in paths}
    return [r for r in find_routes(ctx) if (r.path.rstrip("/") or "/") in wanted]


# -- protection ---------------------------------------------------------------------
def _has_auth_signal(node: ast.AST) -> bool:
    for n in walk(node):
        if isinstance(n, ast.Constant) and n.value in (401, 403):
            return True
        if isinstance(n, ast.Attribute) and n.attr.startswith(("HTTP_401", "HTTP_403")):
            return True
        if isinstance(n, (ast.Name, ast.Attribute)) and dotted(n).split(".")[-1] in SECURITY_CLASSES:
            return True
    return False


def _depends_targets(func: FuncDef, src: SourceFile) -> list[ast.AST]:
    """The callables of ``Depends(x)`` / ``Security(x)`` in a function's parameters
    (defaults, ``Annotated[...]`` metadata and module-level ``Annotated`` aliases)."""
    aliases = {n.targets[0].id: n.value for n in src.tree.body
               if isinstance(n, ast.Assign) and len(n.targets) == 1 and isinstance(n.targets[0], ast.Name)}
    out = []
    args = func.args.posonlyargs + func.args.args + func.args.kwonlyargs
    defaults = list(func.args.defaults) + [d for d in func.args.kw_defaults if d is not None]
    nodes = [a.annotation for a in args if a.annotation is not None] + defaults
    for node in nodes:
        if isinstance(node, ast.Name) and node.id in aliases:
            node = aliases[node.id]
        for n in walk(node):
            if isinstance(n, ast.Call) and dotted(n.func).split(".")[-1] in ("Depends", "Security"):
                out.append(n.args[0] if n.args else n)
    return out


def auth_dependency(proj: Project, src: SourceFile, dep: ast.AST, depth: int = 2) -> str | None:
    """The name of ``dep`` when it authenticates (by its name, or because its body or
    its own dependencies raise 401/403 or use a FastAPI security scheme)."""
    if isinstance(dep, ast.Call) and dotted(dep.func).split(".")[-1] in ("Depends", "Security"):
        dep = dep.args[0] if dep.args else dep
    name = dotted(dep)
    last = name.split(".")[-1]
    if isinstance(dep, ast.Call) and last in SECURITY_CLASSES:
        return last
    res = proj.resolve_call(src, dep) if name else None
    if res is not None:
        if _has_auth_signal(res.func):
            return name
        if depth > 0 and any(auth_dependency(proj, res.src, d, depth - 1)
                             for d in _depends_targets(res.func, res.src)):
            return name
    if last and AUTH_NAME.search(last) and not NOT_AUTH_NAME.search(last):
        return name
    return None


def _checks_header(func: ast.AST) -> bool:
    """The body reads a credential (Authorization header, token) and answers 401/403."""
    text_hits = any(isinstance(n, ast.Constant) and isinstance(n.value, str)
                    and n.value.lower() in ("authorization", "x-api-key", "x-metrics-token")
                    for n in walk(func))
    token_hits = any(isinstance(n, (ast.Attribute, ast.Name)) and re.search(r"token|credentials", dotted(n), re.I)
                     for n in walk(func))
    return (text_hits or token_hits) and _has_auth_signal(func)


def middlewares(ctx) -> list[tuple[SourceFile, ast.AST]]:
    """HTTP middlewares of the app: ``@app.middleware("http")`` functions and classes with
    a ``dispatch`` method or an ASGI ``__call__``."""
    out = []
    for f in Project.of(ctx).files:
        if not ctx.layout.is_app(f.path):
            continue
        for n in walk(f.tree):
            if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) and any(
                    isinstance(d, ast.Call) and dotted(d.func).endswith("middleware") for d in n.decorator_list):
                out.append((f, n))
            elif isinstance(n, ast.ClassDef) and any(
                    isinstance(m, (ast.FunctionDef, ast.AsyncFunctionDef)) and m.name in ("dispatch", "__call__")
                    for m in n.body) and "middleware" in (n.name + " ".join(dotted(b) for b in n.bases)).lower():
                out.append((f, n))
    return out


def protection(ctx, route: Route) -> str | None:
    """What authenticates ``route`` (a short description), or None when nothing does."""
    proj = Project.of(ctx)
    src = ctx.index.get(route.file)
    for dep in route.deps:
        if (name := auth_dependency(proj, src, dep)):
            return f"dependency {name}"
    if route.handler is not None and route.src is not None:
        for dep in _depends_targets(route.handler, route.src):
            if (name := auth_dependency(proj, route.src, dep)):
                return f"dependency {name}"
        if _checks_header(route.handler):
            return f"credential check in {route.handler.name}"
    for msrc, node in middlewares(ctx):
        prefixes = [n.value for n in walk(node) if isinstance(n, ast.Constant) and isinstance(n.value, str)
                    and n.value.startswith("/") and len(n.value) > 1]
        if any(route.path.startswith(p.rstrip("/")) for p in prefixes) and _checks_header(node):
            return f"middleware {getattr(node, 'name', '')} ({msrc.path}:{node.lineno})"
    return None


def callees(ctx, src: SourceFile, func: FuncDef, depth: int = 3) -> list[tuple[SourceFile, FuncDef]]:
    """``func`` and the project functions it calls, transitively (imports resolved),
    breadth-first to ``depth`` levels: what a handler actually does."""
    proj = Project.of(ctx)
    out, seen, frontier = [(src, func)], {id(func)}, [(src, func)]
    for _ in range(depth):
        nxt = []
        for s, fn in frontier:
            for n in walk(fn):
                if isinstance(n, ast.Call):
                    res = proj.resolve_call(s, n.func)
                    if res is not None and id(res.func) not in seen:
                        seen.add(id(res.func))
                        nxt.append((res.src, res.func))
        out += nxt
        frontier = nxt
    return out


def app_anchor(ctx) -> tuple[str, int | None]:
    """Where the application is created (``FastAPI(...)`` call), for findings about
    something the app lacks; ``(".", None)`` when no app was found."""
    for path in ctx.layout.app_files:
        src = ctx.index.get(path)
        if src is None or src.tree is None or not ctx.layout.is_app(path):
            continue
        for n in walk(src.tree):
            if isinstance(n, ast.Call) and dotted(n.func).split(".")[-1] == "FastAPI":
                return path, n.lineno
    return ".", None
