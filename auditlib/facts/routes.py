"""The static route inventory of a FastAPI target (no import of the target).

For every endpoint: HTTP methods, the full path (every ``include_router(prefix=...)``,
``APIRouter(prefix=...)`` and ``mount`` on the way), the handler (module:function,
file:line), ``include_in_schema``, every dependency that applies to it (app, router,
include, decorator and parameter level: ``Depends`` / ``Security`` / ``Annotated``
aliases, followed through dependency functions and factories), the auth-enforcing
path-prefix middlewares, and a protection verdict (``none`` / ``authenticated`` /
``role``) with the mechanism.

Handles ``@router.<method>``, ``@router.api_route(methods=...)``, ``add_api_route``,
routers built and returned by functions, routers imported under aliases, and mounted
sub-apps; apps and routers are recognised by what they are built from (``FastAPI`` /
``APIRouter``, project subclasses at any depth, classes returned by project factories such
as ``APIRouter = get_api_router_class(CustomRoute)``), followed into functions that receive
them (``def register_routes(app): app.include_router(...)`` called from a factory or a
module) and through ``for router in ROUTERS: app.include_router(router, prefix=...)`` over
known lists (:mod:`.route_values`). Prefixes from settings fields, module constants and
``os.getenv`` take their default; :attr:`Route.notes` says what an environment variable
can override and :attr:`Route.written_path` keeps the path as written.
``dependencies=`` values held in variables (module-level or local lists, built with
``append`` / ``extend`` / ``+=``) are followed (:mod:`.route_deps`); a dependency listed
only under a condition, or one that returns early on application state or configuration
(``if not request.app.state.auth_enabled: return``), keeps it in
:attr:`Dependency.condition`. A 401/403 that does not depend on the caller (a feature
gate on application state or configuration; a restriction of ``isinstance(user, U) and
user.flag`` callers that lets an unidentified one through) is not authentication; a
handler that turns away a caller without a session itself (``if get_user(request) is
None: raise HTTPException(401)`` or a redirect) is.
:func:`unreached_handlers` lists the handlers declared on routers no app reaches.
Public API (stable, used by other checks and notebooks):

- :func:`route_inventory` ``(ctx) -> list[Route]`` (memoised per target contents);
- :func:`source_routes` ``(ctx) -> list[Route]``: those whose handler is application code
  (tests and migrations excluded), in source order, for the checks that walk handlers;
- :func:`routes_frame` ``(ctx) -> DataFrame`` (one row per route, for display);
- :func:`unreached_handlers` ``(ctx) -> list[Handler]`` (reported by SEC-004);
- :class:`Route`, :class:`Dependency`, :class:`Middleware`.
"""
from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field

from ..code.pyast import by_scope, dotted, literal, of_type, parent_map, walk
from ..code.pymodules import FuncNode, Module, Project, Symbol, own_nodes, project
from .route_deps import dep_rows
from .route_objects import APP_CLASSES, HTTP_METHODS, ROUTER_CLASSES, ObjectResolver, _KINDS, _OPERATIONS  # noqa: F401
from .route_values import Strings

# fastapi.security classes: a dependency on an instance of one reads credentials.
SECURITY_SCHEMES = {"HTTPBearer", "HTTPBasic", "HTTPDigest", "HTTPBase", "OAuth2PasswordBearer",
                    "OAuth2AuthorizationCodeBearer", "OAuth2", "APIKeyHeader", "APIKeyCookie",
                    "APIKeyQuery", "OpenIdConnect"}
DENIED_STATUS = {401, 403}
REDIRECT_STATUS = {301, 302, 303, 307, 308}
LOGIN_LOCATION = re.compile(r"(?i)['\"]Location['\"]\s*:[^}]*\blogin\b")
ROLE_ATTRS = {"role", "roles", "scopes", "scope", "permissions", "permission", "groups", "group", "kind", "type"}
ROLE_FLAGS = {"is_admin": "admin", "is_superuser": "superuser", "is_staff": "staff", "is_owner": "owner"}


@dataclass
class Dependency:
    """One dependency applying to a route (the top of a chain; ``chain`` lists the rest)."""
    name: str  # "module:function", or the external / scheme name
    level: str  # app | include | router | decorator | param
    file: str = ""
    line: int | None = None
    param: str = ""  # the handler parameter receiving it (level "param")
    kind: str = "depends"  # depends | security | scheme | class
    authenticates: bool = False  # reads credentials or rejects with 401/403 (itself or below)
    roles: tuple[str, ...] = ()
    chain: tuple[str, ...] = ()  # every dependency below it, flattened
    evidence: str = ""  # why it counts as authentication
    written: str = ""  # the callable as written in ``Depends(...)`` (``require_admin``; ``name`` may be its factory)
    condition: str = ""  # the test it is added to a dependency list under (``authentication_enabled``), "" = always
    condition_at: tuple = ()  # (file, line) where that condition is set (the ``append``, the early ``return``)


@dataclass
class Middleware:
    name: str
    file: str
    line: int
    prefixes: tuple[str, ...]  # () = every path
    enforces_auth: bool
    sets_org: bool = False
    rate_limits: bool = False
    exempt: tuple[str, ...] = ()  # prefixes it lets through untouched
    condition: str = ""  # the ``if`` test it is added under (``os.getenv("SECURE") == "true"``), "" = always

    def applies_to(self, path: str) -> bool:
        if any(path.startswith(p) for p in self.exempt):
            return False
        return not self.prefixes or any(path.startswith(p) for p in self.prefixes)


@dataclass
class Route:
    methods: tuple[str, ...]
    path: str
    handler: str  # "module:function"
    file: str
    line: int  # the decorator (or add_api_route call) line
    handler_line: int
    include_in_schema: bool = True
    dependencies: list[Dependency] = field(default_factory=list)
    middlewares: list[Middleware] = field(default_factory=list)
    router: str = ""  # "module:variable" of the router (or app) declaring it
    app: str = ""  # "module:variable" of the app serving it ("" when not mounted)
    decorators: tuple[str, ...] = ()  # other decorators of the handler (e.g. limiter.limit)
    path_params: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()  # parts of the path an environment variable can override
    written_path: str = ""  # the path as written (prefix expressions unresolved)
    auth: str = "none"  # none | authenticated | role
    roles: tuple[str, ...] = ()
    mechanism: str = ""
    # for analyses: the handler's module and function node (not part of the frame)
    module: Module | None = field(default=None, repr=False, compare=False)
    node: ast.AST | None = field(default=None, repr=False, compare=False)
    response_model: ast.AST | None = field(default=None, repr=False, compare=False)  # its expression

    @property
    def key(self) -> str:
        return f"{'|'.join(self.methods)} {self.path}"

    def as_dicts(self) -> list[dict]:
        return [{"method": m, "path": self.path} for m in self.methods]


# ---------------------------------------------------------------------------------------
@dataclass
class _Obj:
    kind: str  # app | router
    module: Module
    name: str
    line: int
    call: ast.Call
    scope: ast.AST | None
    prefix: str = ""
    prefix_written: str = ""
    prefix_notes: tuple = ()
    deps: list = field(default_factory=list)  # (expr, module, level)
    include_in_schema: bool = True
    routes: list = field(default_factory=list)  # (methods, path, func node, module, line, deco deps, iis)
    includes: list = field(default_factory=list)  # (child, prefix, deps, iis, written, notes)
    mounts: list = field(default_factory=list)  # (child, prefix, written, notes)
    foreign_mounts: list = field(default_factory=list)  # (prefix, target expr, module, line): other ASGI apps
    middlewares: list = field(default_factory=list)

    @property
    def qualname(self) -> str:
        return f"{self.module.name}:{self.name}"


class _Builder(ObjectResolver):
    def __init__(self, proj: Project, settings=lambda: None):
        self.p = proj
        self.objs: dict[tuple, _Obj] = {}  # (module name, id(scope) or 0, var) -> obj
        self.inline: dict[int, _Obj] = {}  # id(constructor call) -> obj, for ``f(APIRouter())``
        self.scope_assigns: dict[int, dict[str, ast.AST]] = {}
        self.loops: dict[int, list[ast.AST]] = {}  # scope -> its ``for`` loops, in source order
        self.params: dict[int, dict[str, list[_Obj]]] = {}  # id(function) -> parameter -> objs passed to it
        self.dep_memo: dict[tuple, tuple] = {}
        self.dep_conditions: dict[int, str] = {}  # id(Depends expression) -> condition it is listed under
        self.kind_memo: dict[int, str | None] = {}
        self.mounted: list[Route] = []  # foreign ASGI apps mounted on a served path (see mounted_apps)
        self.orphans: list[tuple] = []  # (module, func, line): handlers on a parameter no call passes an app to
        self.strings = Strings(self, settings)

    # -- pass 1: constructors ------------------------------------------------------------
    def scopes(self, mod: Module) -> list:
        """The nodes of every kind this builder reads, by scope (one ``by_scope`` per module)."""
        return by_scope(mod.tree, _KINDS)

    def scan(self) -> None:
        ctor_names = {"FastAPI", "Starlette", "APIRouter"}
        for mod in self.p.by_path.values():
            for scope, nodes in self.scopes(mod):
                assigns, loops = {}, []
                for node in nodes:
                    if isinstance(node, (ast.Call, ast.Return, *FuncNode)):
                        continue
                    if isinstance(node, (ast.For, ast.AsyncFor)):
                        loops.append(node)
                        continue
                    if node.value is not None:
                        targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                        for t in targets:
                            if isinstance(t, ast.Name):
                                assigns[t.id] = node.value
                                if isinstance(node.value, ast.Call) and (k := self.ctor_kind(mod, node.value)):
                                    self.objs[(mod.name, id(scope) if scope else 0, t.id)] = self._new(
                                        k, mod, t.id, node.value, scope)
                                    ctor_names.add(dotted(node.value.func).rsplit(".", 1)[-1])
                self.scope_assigns[id(scope) if scope else id(mod.tree)] = assigns
                if loops:
                    self.loops[id(scope) if scope else id(mod.tree)] = loops
        # constructors passed straight to a call (include_routers(APIRouter(prefix=...)), mount("/x", FastAPI()))
        # or returned (def make_router(): return APIRouter(prefix=...))
        for mod in self.p.by_path.values():
            for scope, nodes in self.scopes(mod):
                for call in nodes:
                    if isinstance(call, ast.Return):
                        values = [call.value] if isinstance(call.value, ast.Call) and scope is not None else []
                    elif isinstance(call, ast.Call) and (call.args or call.keywords):
                        values = [*call.args, *(k.value for k in call.keywords)]
                    else:
                        continue
                    for arg in values:
                        if isinstance(arg, ast.Call) and dotted(arg.func).rsplit(".", 1)[-1] in ctor_names \
                                and (k := self.ctor_kind(mod, arg)):
                            self.inline[id(arg)] = self._new(k, mod, dotted(arg.func) + "()", arg, scope)
        self._bind_params()

    def _new(self, kind, mod, name, call, scope) -> _Obj:
        obj = _Obj(kind, mod, name, call.lineno, call, scope)
        for kw in call.keywords:
            if kw.arg == "prefix":
                notes = []
                obj.prefix = self.string(mod, kw.value, scope, notes=notes)
                obj.prefix_written, obj.prefix_notes = self.strings.written(kw.value), tuple(notes)
            elif kw.arg == "dependencies":
                obj.deps = self._dep_list(mod, kw.value, scope, "app" if kind == "app" else "router", call)
            elif kw.arg == "include_in_schema":
                obj.include_in_schema = literal(kw.value) is not False
        return obj

    def string(self, mod: Module, expr: ast.AST, scope=None, env=None, notes=None) -> str:
        return self.strings.value(mod, expr, scope, env, notes)

    # -- pass 2: operations on apps and routers --------------------------------------------
    def operations(self) -> None:
        for mod in self.p.by_path.values():
            for scope, nodes in self.scopes(mod):
                for node in nodes:
                    if isinstance(node, FuncNode):
                        if node.decorator_list:
                            self._decorated(mod, node, scope)
                    elif isinstance(node, ast.Call):
                        if isinstance(node.func, ast.Attribute) and node.func.attr in _OPERATIONS:
                            self._call(mod, node, scope)

    def _decorated(self, mod, func, scope) -> None:
        others = []
        for deco in func.decorator_list:
            call = deco if isinstance(deco, ast.Call) else None
            target = call.func if call else deco
            if not isinstance(target, ast.Attribute):
                others.append(dotted(target))
                continue
            objs = self.objs_of(mod, target.value, scope)
            meth = target.attr
            if not objs:
                if (meth in HTTP_METHODS or meth == "api_route") and self._router_param(mod, target.value, scope):
                    self.orphans.append((mod, func, deco.lineno))
                others.append(dotted(target))
                continue
            if meth in HTTP_METHODS or meth == "api_route":
                methods = (meth.upper(),) if meth != "api_route" else self._methods(call)
                pexpr = call.args[0] if call and call.args else _kw(call, "path")
                notes = []
                path = self.string(mod, pexpr, scope, notes=notes) if pexpr is not None else ""
                for obj in objs:
                    obj.routes.append({"methods": methods, "path": path, "func": func, "module": mod, "line": deco.lineno,
                                       "deps": self._kw_deps(mod, call, scope), "iis": _iis(call),
                                       "decorators": others,  # the same list: later decorators show up
                                       "response_model": _kw(call, "response_model"),
                                       "written": self.strings.written(pexpr), "notes": tuple(notes)})
            elif meth == "middleware":
                for obj in objs:
                    mw = self._middleware(mod, func, func.name, func.lineno, ())
                    mw.condition = _condition(mod, func)  # @app.middleware("http") defined under `if auth_string:`
                    obj.middlewares.append(mw)
            else:
                others.append(dotted(target))

    def _methods(self, call) -> tuple[str, ...]:
        for kw in (call.keywords if call else []):
            if kw.arg == "methods":
                val = literal(kw.value)
                if isinstance(val, (list, tuple, set)):
                    return tuple(sorted(str(m).upper() for m in val))
        return ("GET",)

    def _kw_deps(self, mod, call, scope, level="decorator") -> list:
        for kw in (call.keywords if call else []):
            if kw.arg == "dependencies":
                return self._dep_list(mod, kw.value, scope, level, call)
        return []

    def _dep_list(self, mod, value, scope, level, call) -> list:
        """(expr, module, level, scope) of every dependency a ``dependencies=`` value lists
        (also a variable built with ``append`` / ``extend``, :mod:`.route_deps`); the
        condition each is added under goes to :attr:`dep_conditions`."""
        out = []
        for emod, e, escope, cond in dep_rows(self, mod, value, scope, call.lineno):
            if cond:
                self.dep_conditions[id(e)] = cond
            out.append((e, emod, level, escope))
        return out

    def _call(self, mod, call, scope) -> None:
        meth = call.func.attr
        objs = self.objs_of(mod, call.func.value, scope)
        if not objs:
            return
        for env in self.envs(mod, call, scope):
            for obj in objs:
                self._operation(mod, call, scope, obj, meth, env)

    def _operation(self, mod, call, scope, obj, meth, env) -> None:
        kw = {k.arg: k.value for k in call.keywords if k.arg}
        if meth == "include_router":
            for child in self.objs_of(mod, call.args[0] if call.args else kw.get("router"), scope, env):
                notes = []
                prefix = self.string(mod, kw["prefix"], scope, env, notes) if "prefix" in kw else ""
                written = self.strings.written(kw.get("prefix"), env)
                obj.includes.append((child, prefix, self._kw_deps(mod, call, scope, "include"), _iis(call),
                                     written, tuple(notes)))
        elif meth == "add_api_route":
            pexpr = call.args[0] if call.args else kw.get("path")
            notes = []
            path = self.string(mod, pexpr, scope, env, notes)
            ep = call.args[1] if len(call.args) > 1 else kw.get("endpoint")
            sym = self.p.resolve(mod, ep) if ep is not None else None
            if sym is not None and sym.kind == "func":
                obj.routes.append({"methods": self._methods(call), "path": path, "func": sym.node, "module": sym.module,
                                   "line": call.lineno, "deps": self._kw_deps(mod, call, scope), "iis": _iis(call),
                                   "decorators": (), "response_model": kw.get("response_model"),
                                   "written": self.strings.written(pexpr), "notes": tuple(notes)})
        elif meth == "mount":
            target = call.args[1] if len(call.args) > 1 else kw.get("app")
            children = self.objs_of(mod, target, scope, env)
            pexpr = call.args[0] if call.args else kw.get("path")
            notes = []
            path = self.string(mod, pexpr, scope, env, notes)
            for child in children:
                obj.mounts.append((child, path, self.strings.written(pexpr, env), tuple(notes)))
            if not children and target is not None:  # make_asgi_app(), StaticFiles(...): not a route inventory of ours
                obj.foreign_mounts.append((path, target, mod, call.lineno))
        elif meth == "add_middleware" and call.args:
            sym = self.p.resolve(mod, call.args[0])
            prefixes = tuple(v for v in (literal(k.value) for k in call.keywords)
                             if isinstance(v, str) and v.startswith("/"))
            if sym is not None and sym.kind == "class":
                body = [n for n in sym.node.body if isinstance(n, FuncNode)]
                mw = self._middleware(sym.module, body, sym.node.name, call.lineno, prefixes, where=mod)
                mw.condition = _condition(mod, call)
                obj.middlewares.append(mw)
            else:
                name = sym.qualname if sym else dotted(call.args[0])
                obj.middlewares.append(Middleware(name, mod.path, call.lineno, prefixes, False,
                                                  rate_limits=bool(re.search(r"rate.?limit|slowapi|throttl", name, re.IGNORECASE))))

    def _middleware(self, mod, funcs, name, line, prefixes, where=None) -> Middleware:
        funcs = funcs if isinstance(funcs, list) else [funcs]
        nodes = [n for f in funcs for n in walk(f)]
        found, exempt = list(prefixes), []
        for n in nodes:  # `if path.startswith("/v1/admin"): <deny>` protects; `...: return await call_next` exempts
            if isinstance(n, ast.If):
                lits = _startswith_literals(n.test)
                if lits and any(_denial(x) for s in n.body for x in walk(s)):
                    found += lits
                elif lits and any(isinstance(x, ast.Return) for x in n.body):
                    exempt += lits
        gated = _unsafe_method_gated(funcs)
        denies = any(_denial(n) and id(n) not in gated for n in nodes)
        sets_org = any(isinstance(n, ast.Attribute) and isinstance(n.ctx, ast.Store) and ".state" in dotted(n)
                       and _orgish(n.attr) for n in nodes)
        rate = bool(re.search(r"rate.?limit|throttl", name, re.IGNORECASE)) or any(
            isinstance(n, ast.Name) and re.search(r"limiter|rate_?limit", n.id, re.IGNORECASE) for n in nodes)
        file = (where or mod).path
        return Middleware(f"{mod.name}:{name}", file, line, tuple(found) if denies else (), denies, sets_org, rate,
                          tuple(exempt) if denies else ())

    # -- dependencies ---------------------------------------------------------------------
    def dependency(self, mod: Module, expr: ast.AST, level: str, scope=None, param: str = "") -> Dependency | None:
        """A ``Depends(x)`` / ``Security(x, scopes=...)`` expression as a Dependency."""
        if not isinstance(expr, ast.Call):
            return None
        fname = dotted(expr.func).rsplit(".", 1)[-1]
        if fname not in ("Depends", "Security"):
            return None
        target = expr.args[0] if expr.args else next((k.value for k in expr.keywords if k.arg == "dependency"), None)
        scopes = ()
        for k in expr.keywords:
            if k.arg == "scopes" and isinstance(literal(k.value), (list, tuple)):
                scopes = tuple(literal(k.value))
        if target is None:
            return None
        info = self.dep_target(mod, target)
        roles = tuple(dict.fromkeys(info["roles"] + scopes))
        return Dependency(info["name"], level, mod.path, expr.lineno, param,
                          "security" if fname == "Security" else info["kind"],
                          info["auth"] or bool(scopes), roles, info["chain"], info["evidence"],
                          dotted(target), info.get("condition", ""), info.get("condition_at", ()))

    def dep_target(self, mod: Module, target: ast.AST, depth: int = 0) -> dict:
        """Analyse what a dependency callable does (memoised)."""
        key = (mod.name, ast.dump(target))
        if key in self.dep_memo:
            return self.dep_memo[key]
        self.dep_memo[key] = info = {"name": dotted(target), "kind": "depends", "auth": False, "roles": (), "chain": (),
                                         "evidence": "", "node": None, "module": None, "scheme": "", "condition": ""}
        call_args: list = []
        called, orig = isinstance(target, ast.Call), target
        if called:  # a factory call or a class instance: require_role("admin")
            call_args = [literal(a) for a in target.args] + [literal(k.value) for k in target.keywords]
            target = target.func
        sym = self.p.resolve(mod, target) or self.strings.method(mod, target)
        if sym is None:
            return info
        info["name"] = sym.qualname
        node, fmod = sym.node, sym.module
        if sym.kind == "assign" and isinstance(node, ast.Call):  # bearer = HTTPBearer()
            cname = dotted(node.func).rsplit(".", 1)[-1]
            if cname in SECURITY_SCHEMES:
                # HTTPBearer(auto_error=False) reads a credential but lets a request without one through
                # (None): the dependency using it authenticates only if it rejects itself (tenancy, issue 14)
                optional = any(k.arg == "auto_error" and literal(k.value) is False for k in node.keywords)
                info.update(kind="scheme", auth=not optional, scheme=cname,
                            evidence=f"fastapi.security.{cname}" + (" (auto_error=False: optional)" if optional else ""))
                return info
            target_sym = self.p.resolve(fmod, node.func)
            if target_sym is not None and target_sym.kind in ("func", "class"):
                call_args += [literal(a) for a in node.args] + [literal(k.value) for k in node.keywords]
                sym, node, fmod = target_sym, target_sym.node, target_sym.module
                info["name"] = sym.qualname
            else:
                return info
        if sym.kind == "external":
            short = sym.short
            if short in SECURITY_SCHEMES:  # Security(HTTPBearer(auto_error=False)): optional, see above
                optional = False in call_args[len(call_args) - len(getattr(orig, "keywords", [])):] and any(
                    k.arg == "auto_error" and literal(k.value) is False for k in getattr(orig, "keywords", []))
                info.update(kind="scheme", auth=not optional, scheme=short,
                            evidence=f"fastapi.security.{short}" + (" (auto_error=False: optional)" if optional else ""))
            return info
        if sym.kind == "class":
            if sym.short in SECURITY_SCHEMES or {b.rsplit(".", 1)[-1] for b in self.p.class_bases(fmod, node)} & SECURITY_SCHEMES:
                info.update(kind="scheme", auth=True, evidence="subclass of a fastapi.security scheme")
                return info
            call = next((n for n in node.body if isinstance(n, FuncNode) and n.name == "__call__"), None)
            if call is None:
                return info
            info["kind"], node = "class", call
        elif sym.kind == "func" and (call_args or called):  # factory (``current_user()`` too): the function it returns
            inner = _returned_function(node)
            if inner is not None:
                node = inner
        if not isinstance(node, FuncNode):
            return info
        info["node"], info["module"] = node, fmod
        chain, auth, evidence, roles = [], False, "", [str(a) for a in call_args if isinstance(a, str)]
        roles += [str(x) for a in call_args if isinstance(a, (list, tuple, set)) for x in a if isinstance(x, str)]
        for pname, dexpr, _ann, dmod in handler_params(node, self.p, fmod):
            if dexpr is None or depth > 8:
                continue
            sub = self.dependency(dmod, dexpr, "param", param=pname) if isinstance(dexpr, ast.Call) else None
            if sub is None:
                continue
            chain += [sub.name, *sub.chain]
            if sub.authenticates:
                auth, evidence = True, evidence or f"depends on {sub.name}"
            roles += list(sub.roles)
        body = list(own_nodes(node))
        if any(_denial(n) and not _not_the_caller(fmod, node, n) for n in body):
            auth, evidence = True, evidence or "rejects with 401/403"
            info["condition"], line = _skipped_unless(fmod, node)
            info["condition_at"] = (fmod.path, line) if line else ()
        elif not auth and (helper := _delegated_denial(self.p, fmod, node, off=frozenset(
                k.arg.lstrip("_") for k in getattr(orig, "keywords", []) if k.arg and literal(k.value) is False))):
            auth, evidence = True, f"calls {helper}, which rejects with 401/403"
        roles += _role_literals(body)
        if auth and not roles:
            m = re.match(r"(?:require|ensure|only|is|check)_(\w+?)(?:_user|_role|_access)?$", sym.short)
            if m and m.group(1) not in ("user", "auth", "authenticated", "login", "token", "current_user", "active"):
                roles.append(m.group(1))
        info.update(auth=auth, evidence=evidence, roles=tuple(dict.fromkeys(roles)), chain=tuple(dict.fromkeys(chain)))
        return info

    # -- pass 3: assemble -----------------------------------------------------------------
    def assemble(self) -> list[Route]:
        objs = self.all_objs()
        mounted = {id(c) for o in objs for c, *_ in o.mounts}
        included = {id(c) for o in objs for c, *_ in o.includes}
        roots = [o for o in objs if o.kind == "app" and id(o) not in mounted]
        out: list[Route] = []
        for app in roots:
            self._walk(app, app, "", [], [], True, out, set(), "", ())
        if not roots:  # a package of routers without an app: list them as declared
            for o in objs:
                if id(o) not in included and id(o) not in mounted:
                    self._walk(o, None, "", [], [], True, out, set(), "", ())
        seen, uniq = set(), []
        for r in out:
            k = (r.methods, r.path, r.handler, r.line)
            if k not in seen:
                seen.add(k)
                uniq.append(r)
        return uniq

    def all_objs(self) -> list[_Obj]:
        return [*self.objs.values(), *self.inline.values()]

    def _walk(self, obj, app, prefix, deps, mws, iis, out, stack, written, notes) -> None:
        if id(obj) in stack:
            return
        stack = stack | {id(obj)}
        base = prefix + obj.prefix
        wbase, notes = written + (obj.prefix_written or obj.prefix), notes + obj.prefix_notes
        deps = deps + obj.deps
        mws = mws + [(m, prefix) for m in obj.middlewares]
        iis = iis and obj.include_in_schema
        for r in obj.routes:
            route = self._route(obj, app, base + r["path"], r, deps + r["deps"], mws, iis and r["iis"])
            route.written_path = wbase + r.get("written", r["path"])
            route.notes = tuple(dict.fromkeys(notes + r.get("notes", ())))
            out.append(route)
        for child, pfx, ideps, i_iis, w, n in obj.includes:
            self._walk(child, app, base + pfx, deps + ideps, mws, iis and i_iis, out, stack, wbase + w, notes + n)
        for child, pfx, w, n in obj.mounts:  # Starlette's Mount strips the trailing "/" ("/" mounts at the root)
            self._walk(child, app, base + pfx.rstrip("/"), [], mws, iis, out, stack, wbase + w.rstrip("/"), notes + n)
        for pfx, target, mod, line in obj.foreign_mounts:  # router/app dependencies do not reach them
            path = base + pfx.rstrip("/")
            mount = Route(methods=("MOUNT",), path=path or "/", handler=dotted(target) or ast.unparse(target),
                          file=mod.path, line=line, handler_line=line, include_in_schema=False,
                          middlewares=[m for m, _pre in mws if m.applies_to(path)], router=obj.qualname,
                          app=app.qualname if app else "", module=mod, node=None)
            _classify(mount)
            if all((m.path, m.file, m.line) != (path or "/", mod.path, line) for m in self.mounted):
                self.mounted.append(mount)

    def _route(self, obj, app, path, r, dep_exprs, mws, iis) -> Route:
        func, fmod = r["func"], r["module"]
        deps = []
        for expr, dmod, level, scope in dep_exprs:
            d = self.dependency(dmod, expr, level, scope)
            if d is not None:
                listed = self.dep_conditions.get(id(expr), "")
                if listed:
                    d.condition = f"{listed} and {d.condition}" if d.condition else listed
                    d.condition_at = (d.file, d.line)
                deps.append(d)
        for pname, dexpr, _ann, dmod in handler_params(func, self.p, fmod):
            if dexpr is not None:
                d = self.dependency(dmod, dexpr, "param", param=pname)
                if d is not None:
                    deps.append(d)
        applicable = [m for m, _pre in mws if m.applies_to(path)]
        route = Route(methods=r["methods"], path=path or "/", handler=f"{fmod.name}:{func.name}", file=fmod.path,
                      line=r["line"], handler_line=func.lineno, include_in_schema=iis, dependencies=deps,
                      middlewares=applicable, router=obj.qualname, app=app.qualname if app else "",
                      decorators=tuple(r["decorators"]), path_params=tuple(_path_params(path)),
                      module=fmod, node=func, response_model=r["response_model"])
        _classify(route, _handler_guard(self.p, fmod, func))
        return route


def _condition(mod: Module, node: ast.AST) -> str:
    """The test of the innermost ``if`` around ``node`` in its function (or module), ``""``
    when none: an auth middleware added only ``if os.getenv("SECURE") == "true"``."""
    parents = parent_map(mod.tree)
    child, cur = node, parents.get(id(node))
    while cur is not None and not isinstance(cur, (*FuncNode, ast.Module)):
        if isinstance(cur, ast.If) and child is not cur.test:
            test = ast.unparse(cur.test)
            return test if any(child is n for n in cur.body) else f"not ({test})"
        child, cur = cur, parents.get(id(cur))
    return ""


def _classify(route: Route, guard: str = "") -> None:
    auth_deps = [d for d in route.dependencies if d.authenticates]
    auth_mw = [m for m in route.middlewares if m.enforces_auth]
    roles = tuple(dict.fromkeys(r for d in auth_deps for r in d.roles))
    if not auth_deps and not auth_mw and guard:
        route.auth, route.mechanism = "authenticated", guard
        return
    if auth_deps or auth_mw:
        route.auth = "role" if roles else "authenticated"
        route.roles = roles
        route.mechanism = ", ".join([f"{d.name.rsplit(':', 1)[-1]} ({d.level}"
                                     + (f"; only if {d.condition})" if d.condition else ")") for d in auth_deps]
                                    + [f"middleware {m.name.rsplit(':', 1)[-1]} ({', '.join(m.prefixes) or '*'}"
                                       + (f"; only if {m.condition})" if m.condition else ")")
                                       for m in auth_mw])


CALLER_ATTRS = {"cookies", "headers", "user", "session", "auth"}
REQUEST_TYPES = {"Request", "HTTPConnection", "WebSocket"}


def _handler_guard(proj: Project, mod: Module, func) -> str:
    """How a handler turns away an unidentified caller itself, first thing ("" when it
    does not): ``user = get_cookie_user(request)`` (a call on the request only, to a helper
    reading its cookies, headers or ``user``; or ``request.cookies.get(...)``) then ``if
    user is None:`` (or ``if get_cookie_user(request) is None:``) raising 401/403 or
    returning a redirect (to the login page), within its first statements."""
    a = func.args
    req = {x.arg for x in [*a.posonlyargs, *a.args, *a.kwonlyargs]
           if x.arg == "request" or dotted(x.annotation).rsplit(".", 1)[-1] in REQUEST_TYPES}
    if not req:
        return ""
    body = list(func.body)
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
        body = body[1:]
    who: dict[str, ast.Call] = {}

    def caller_call(e):
        e = e.value if isinstance(e, ast.Await) else e
        if isinstance(e, ast.Name):
            return who.get(e.id)
        return e if isinstance(e, ast.Call) and _reads_caller(proj, mod, e, req) else None

    for st in body[:4]:
        if isinstance(st, ast.Assign) and len(st.targets) == 1 and isinstance(st.targets[0], ast.Name):
            call = st.value.value if isinstance(st.value, ast.Await) else st.value
            if isinstance(call, ast.Call) and _reads_caller(proj, mod, call, req):
                who[st.targets[0].id] = call
        elif isinstance(st, ast.If):
            test = st.test
            subject = test.operand if isinstance(test, ast.UnaryOp) and isinstance(test.op, ast.Not) else \
                test.left if isinstance(test, ast.Compare) and len(test.ops) == 1 and isinstance(test.ops[0], ast.Is) \
                and literal(test.comparators[0]) is None else None
            call = caller_call(subject) if subject is not None else None
            if call is None:
                continue
            if any(_denial(n) for b in st.body for n in walk(b)):
                return f"handler: 401/403 when {ast.unparse(call)} finds no caller (line {st.lineno})"
            last = st.body[-1]
            if isinstance(last, ast.Return) and isinstance(last.value, ast.Call) \
                    and re.search(r"redirect|login", dotted(last.value.func), re.IGNORECASE):
                return f"handler: redirects to log in when {ast.unparse(call)} finds no caller (line {st.lineno})"
    return ""


def _reads_caller(proj: Project, mod: Module, call: ast.Call, req: set) -> bool:
    """``call`` takes only the request and reads who is calling: ``request.cookies.get(...)``,
    or a project function reading its parameter's cookies, headers, ``user`` or session."""
    args = [*call.args, *(k.value for k in call.keywords)]
    if isinstance(call.func, ast.Attribute):
        chain = dotted(call.func).split(".")
        if chain[0] in req and len(chain) > 1 and chain[1] in CALLER_ATTRS:
            return True
    if not args or not all(isinstance(x, ast.Name) and x.id in req for x in args):
        return False
    sym = proj.resolve(mod, call.func)
    if sym is None or sym.kind != "func":
        return False
    fa = sym.node.args
    params = {x.arg for x in [*fa.posonlyargs, *fa.args, *fa.kwonlyargs]}
    return any(isinstance(n, ast.Attribute) and n.attr in CALLER_ATTRS and isinstance(n.value, ast.Name)
               and n.value.id in params for n in own_nodes(sym.node))


def handler_params(func, proj: Project, mod: Module):
    """(name, Depends/Security call or None, annotation, module to resolve the call in) of
    every parameter of ``func``, reading defaults and ``Annotated[...]`` (also through
    type aliases defined in other modules)."""
    args = func.args
    positional = [*args.posonlyargs, *args.args]
    defaults = [None] * (len(positional) - len(args.defaults)) + list(args.defaults)
    pairs = list(zip(positional, defaults)) + list(zip(args.kwonlyargs, args.kw_defaults))
    for arg, default in pairs:
        dep = default if isinstance(default, ast.Call) and dotted(default.func).rsplit(".", 1)[-1] in (
            "Depends", "Security") else None
        dmod = mod
        ann = arg.annotation
        if dep is None and ann is not None:
            dep, dmod = _annotated_dep(ann, proj, mod, 0) or (None, mod)
        if dep is not None and isinstance(dep, ast.Call) and not dep.args and not dep.keywords and ann is not None:
            dep = ast.Call(func=dep.func, args=[_ann_type(ann)], keywords=[])  # Depends() -> the annotation's class
            ast.copy_location(dep, default or ann)
        yield arg.arg, dep, ann, dmod


def _ann_type(ann):
    if isinstance(ann, ast.Subscript) and dotted(ann.value).endswith("Annotated"):
        elts = ann.slice.elts if isinstance(ann.slice, ast.Tuple) else [ann.slice]
        return elts[0]
    return ann


def _annotated_dep(ann, proj, mod, depth):
    if depth > 5:
        return None
    if isinstance(ann, ast.Subscript) and dotted(ann.value).endswith("Annotated"):
        elts = ann.slice.elts if isinstance(ann.slice, ast.Tuple) else [ann.slice]
        for e in elts[1:]:
            if isinstance(e, ast.Call) and dotted(e.func).rsplit(".", 1)[-1] in ("Depends", "Security"):
                return e, mod
        return None
    if isinstance(ann, ast.BinOp):  # X | None
        return _annotated_dep(ann.left, proj, mod, depth + 1) or _annotated_dep(ann.right, proj, mod, depth + 1)
    if isinstance(ann, (ast.Name, ast.Attribute)):
        sym = proj.resolve(mod, ann)
        if sym is not None and sym.kind == "assign":
            return _annotated_dep(sym.node, proj, sym.module, depth + 1)
    if isinstance(ann, ast.Constant) and isinstance(ann.value, str):  # string annotation
        try:
            return _annotated_dep(ast.parse(ann.value, mode="eval").body, proj, mod, depth + 1)
        except SyntaxError:
            return None
    return None


def _returned_function(func):
    inner = {n.name: n for n in func.body if isinstance(n, FuncNode)}
    for n in own_nodes(func):
        if isinstance(n, ast.Return) and isinstance(n.value, ast.Name) and n.value.id in inner:
            return inner[n.value.id]
    return None


def _status_of(expr) -> int | None:
    v = literal(expr)
    if isinstance(v, int):
        return v
    m = re.search(r"HTTP_(\d{3})", dotted(expr))
    return int(m.group(1)) if m else None


UNSAFE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}


def _unsafe_method_test(test, names) -> bool:
    """``request.method in {"POST", "PUT", ...}`` / ``== "POST"`` (only state-changing
    methods), directly, in an ``and``, or through a local name assigned such a test."""
    for n in walk(test):
        if isinstance(n, ast.Name) and n.id in names:
            return True
        if isinstance(n, ast.Compare) and len(n.ops) == 1 and dotted(n.left).endswith(".method") \
                and isinstance(n.ops[0], (ast.In, ast.Eq)):
            val = literal(n.comparators[0])
            vals = {val} if isinstance(val, str) else set(val) if isinstance(val, (list, tuple, set, frozenset)) else set()
            if vals and {str(v).upper() for v in vals} <= UNSAFE_METHODS:
                return True
    return False


def _unsafe_method_gated(funcs) -> set[int]:
    """ids of the nodes of a middleware that run only for state-changing methods (inside
    an ``if request.method in {"POST", ...}``): a CSRF check rejects there, but every read
    passes unchecked, so such a rejection is not authentication."""
    names: set[str] = set()
    for f in funcs:
        for n in walk(f):
            if isinstance(n, ast.Assign) and len(n.targets) == 1 and isinstance(n.targets[0], ast.Name) \
                    and _unsafe_method_test(n.value, set()):
                names.add(n.targets[0].id)
    out: set[int] = set()
    for f in funcs:
        for n in walk(f):
            if isinstance(n, ast.If) and _unsafe_method_test(n.test, names):
                out.update(id(x) for s in n.body for x in walk(s))
    return out


def _denial(node) -> bool:
    """``raise HTTPException(401/403)`` or a response built with status 401/403."""
    if isinstance(node, ast.Raise) and isinstance(node.exc, ast.Call):
        call = node.exc
        # the status as the first argument, ``status_code=``, or any argument given as a status constant
        # (``ProxyError("...", status.HTTP_403_FORBIDDEN)``)
        args = list(call.args[:1]) + [k.value for k in call.keywords if k.arg == "status_code"] + [
            a for a in [*call.args[1:], *(k.value for k in call.keywords)] if re.search(r"HTTP_40[13]", dotted(a))]
        if any(_status_of(a) in DENIED_STATUS for a in args):
            return True
        name = dotted(call.func).lower()
        if any(w in name for w in ("unauthori", "forbidden", "permissiondenied", "notauthenticated")):
            return True
        # a session app's refusal: a redirect to the login page (``HTTPException(307, headers={"Location":
        # url_for("auth:login")})``) when the session is missing or invalid (tenancy, issue 14)
        return any(_status_of(a) in REDIRECT_STATUS for a in args) and bool(LOGIN_LOCATION.search(ast.unparse(call)))
    if isinstance(node, ast.Call):
        for k in node.keywords:
            if k.arg == "status_code" and _status_of(k.value) in DENIED_STATUS:
                return True
    return False


def _state_only(func, test: ast.AST) -> bool:
    """``test`` reads application state or configuration only, nothing of the caller:
    ``request.app.state.read_only``, ``settings.feature_enabled``, ``get_env_flag()``, a
    module constant (a parameter only through its ``.app``; no local variable)."""
    a = func.args
    params = {x.arg for x in [*a.posonlyargs, *a.args, *a.kwonlyargs]}
    local = {n.id for n in own_nodes(func) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}
    parents = parent_map(test)
    names = [n for n in walk(test) if isinstance(n, ast.Name)]
    if not names:
        return False
    for n in names:
        if n.id in local:
            return False
        if n.id in params:
            up = parents.get(id(n))
            if not (isinstance(up, ast.Attribute) and up.value is n and up.attr == "app"):
                return False
    return True


def _guard_of(mod: Module, func, node) -> ast.If | None:
    """The innermost ``if`` of ``func`` whose body (or ``else``) holds ``node``."""
    parents = parent_map(mod.tree)
    child, cur = node, parents.get(id(node))
    while cur is not None and cur is not func:
        if isinstance(cur, ast.If) and child is not cur.test:
            return cur
        child, cur = cur, parents.get(id(cur))
    return None


def _not_the_caller(mod: Module, func, denial) -> bool:
    """A 401/403 that does not depend on who calls: a feature gate (``if
    request.app.state.read_only: raise HTTPException(403)``, a test of application state or
    configuration only), or a restriction of one kind of identified caller that lets a
    caller without identity through (``if isinstance(user, AppUser) and user.is_viewer:
    raise HTTPException(403)``)."""
    guard = _guard_of(mod, func, denial)
    if guard is None:
        return False
    if _state_only(func, guard.test):
        return True
    test = guard.test
    if isinstance(test, ast.BoolOp) and isinstance(test.op, ast.And):
        for v in test.values:
            if isinstance(v, ast.Call) and dotted(v.func) == "isinstance" and v.args \
                    and isinstance(v.args[0], ast.Name):
                subject = v.args[0].id
                if any(isinstance(o, ast.Attribute) and dotted(o.value) == subject
                       for o in test.values if o is not v for o in walk(o)):
                    return True
    return False


def _skipped_unless(mod: Module, func) -> tuple[str, int | None]:
    """The condition under which a dependency checks anything: ``not (<test>)`` when its body
    starts with ``if <test>: return`` on application state or configuration only
    (``if not request.app.state.authentication_enabled: return`` -> auth only if
    ``request.app.state.authentication_enabled``), with the line of that ``if``; ("", None)
    when it always checks."""
    body = list(func.body)
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
        body = body[1:]
    for st in body[:3]:
        if isinstance(st, ast.If) and not st.orelse and len(st.body) == 1 and isinstance(st.body[0], ast.Return) \
                and (st.body[0].value is None or literal(st.body[0].value) is None):
            parts = st.test.values if isinstance(st.test, ast.BoolOp) and isinstance(st.test.op, ast.Or) else [st.test]
            gates = [p for p in parts if _state_only(func, p)]
            if gates:
                return " and ".join(_negated(g) for g in gates), st.lineno
    return "", None


def _negated(test: ast.AST) -> str:
    if isinstance(test, ast.UnaryOp) and isinstance(test.op, ast.Not):
        return ast.unparse(test.operand)
    text = ast.unparse(test)
    return f"not {text}" if isinstance(test, (ast.Name, ast.Attribute, ast.Call)) else f"not ({text})"


def _delegated_denial(proj: Project, mod: Module, func, depth: int = 0, off: frozenset = frozenset()) -> str:
    """A project function called by ``func`` (two levels) that rejects with 401/403: a
    dependency delegating authentication to a helper (``return await _check_api_key(...)``), or
    to a method of an object it builds (``ctx = AuthContext(...); await ctx.enforce()``). Calls
    under ``if self.<flag>:`` are skipped when the dependency instance was built with that flag
    False (``ProxyAuth(auto_enforce=False)``: ``off``)."""
    skipped = {id(x) for n in own_nodes(func) if isinstance(n, ast.If) and dotted(n.test).startswith("self.")
               and dotted(n.test)[5:].lstrip("_") in off for st in n.body for x in walk(st)}
    built = {t.id: n.value for n in own_nodes(func) if isinstance(n, ast.Assign) and isinstance(n.value, ast.Call)
             for t in n.targets if isinstance(t, ast.Name)}
    for n in own_nodes(func):
        if isinstance(n, ast.Call) and id(n) not in skipped:
            sym = proj.resolve(mod, n.func)
            if sym is None and isinstance(n.func, ast.Attribute) and isinstance(n.func.value, ast.Name) and \
                    n.func.value.id in built:  # a method of an object built here
                cls = proj.resolve(mod, built[n.func.value.id].func)
                meth = next((m for m in cls.node.body if isinstance(m, FuncNode) and m.name == n.func.attr),
                            None) if cls is not None and cls.kind == "class" else None
                sym = Symbol("func", cls.module, meth, f"{cls.qualname}.{n.func.attr}") if meth is not None else None
            if sym is not None and sym.kind == "func" and sym.node is not func:
                if any(_denial(x) for x in own_nodes(sym.node)):
                    return sym.qualname
                if depth < 1 and (deeper := _delegated_denial(proj, sym.module, sym.node, depth + 1)):
                    return deeper
    return ""


def _role_literals(nodes) -> list[str]:
    out = []
    for n in nodes:
        if isinstance(n, ast.Compare):
            sides = [n.left, *n.comparators]
            if any(isinstance(s, (ast.Attribute, ast.Name)) and dotted(s).rsplit(".", 1)[-1] in ROLE_ATTRS
                   for s in sides):
                for s in sides:
                    v = literal(s)
                    vals = [v] if isinstance(v, str) else list(v) if isinstance(v, (set, list, tuple, frozenset)) else []
                    out += [x for x in vals if isinstance(x, str)]
        elif isinstance(n, ast.Attribute) and n.attr in ROLE_FLAGS:
            out.append(ROLE_FLAGS[n.attr])
    return out


def _startswith_literals(test) -> list[str]:
    out = []
    for n in walk(test):
        if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute) and n.func.attr == "startswith":
            for a in n.args:
                v = literal(a)
                out += [v] if isinstance(v, str) else [x for x in (v if isinstance(v, tuple) else ()) if isinstance(x, str)]
    return out


def _orgish(name: str) -> bool:
    return bool(re.search(r"org|tenant|company|account_id|workspace", name, re.IGNORECASE))


def _path_params(path: str) -> list[str]:
    return [m.split(":", 1)[0] for m in re.findall(r"{([^}]+)}", path)]


def _elts(expr) -> list:
    return list(expr.elts) if isinstance(expr, (ast.List, ast.Tuple, ast.Set)) else []


def _kw(call, name: str) -> ast.AST | None:
    return next((k.value for k in call.keywords if k.arg == name), None) if call is not None else None


def _iis(call) -> bool:
    for kw in (call.keywords if call is not None else []):
        if kw.arg == "include_in_schema":
            return literal(kw.value) is not False
    return True


# ---------------------------------------------------------------------------------------
_MEMO: dict[tuple, tuple] = {}


def _build(ctx) -> tuple[list[Route], _Builder]:
    from ..target.discovery import is_example

    proj = project(ctx)
    key = (str(ctx.root), id(proj))
    if key not in _MEMO:
        if len(_MEMO) > 8:
            _MEMO.clear()

        def settings():
            from .settings_model import settings_model
            return settings_model(ctx)
        b = _Builder(proj, settings)
        b.scan()
        b.operations()
        routes = b.assemble()
        # an app in an example, docs or benchmark folder shows how to use the project: its
        # routes are not the deployed backend's (unless the project serves nothing else)
        routes = [r for r in routes if not is_example(r.file)] or routes
        routes.sort(key=lambda r: (r.path, r.methods, r.file, r.line))
        _MEMO[key] = (routes, b)
    return _MEMO[key]


@dataclass
class Handler:
    """A route handler the inventory saw declared but not served by any app."""
    handler: str  # "module:function"
    file: str
    line: int  # the decorator line
    router: str  # "module:variable" of its router, or the parameter it is declared on
    path: str


def unreached_handlers(ctx) -> list[Handler]:
    """Handlers declared on a router (or app) that no application found reaches
    (``@router.get`` on a router never included, or included in a way the inventory does
    not follow; ``@app.get`` in a function whose app parameter no call supplies): what the
    inventory may have missed. Empty when no app was found (every router is then listed).
    Handlers in example, docs or benchmark folders are left out when the inventory leaves
    their apps out (the project serves something else)."""
    from ..target.discovery import is_example

    routes, b = _build(ctx)
    served = {(r.file, r.line) for r in routes}
    # the inventory leaves example apps out when the project serves anything else: so does this
    examples_out = any(not is_example(r.file) for r in routes)
    seen = {(r["module"].path, r["line"]) for o in b.all_objs() for r in o.routes
            if examples_out and is_example(r["module"].path)}
    out = []
    for o in b.all_objs():
        for r in o.routes:
            key = (r["module"].path, r["line"])
            if key not in served and key not in seen:
                seen.add(key)
                out.append(Handler(f"{r['module'].name}:{r['func'].name}", key[0], key[1], o.qualname, r["path"]))
    for mod, func, line in b.orphans:
        if (mod.path, line) not in served and (mod.path, line) not in seen:
            seen.add((mod.path, line))
            out.append(Handler(f"{mod.name}:{func.name}", mod.path, line, "(parameter)", ""))
    return sorted(out, key=lambda h: (h.file, h.line))


def route_inventory(ctx) -> list[Route]:
    """Every route of the target, sorted by path and method (memoised per target contents)."""
    return _build(ctx)[0]


def source_routes(ctx) -> list[Route]:
    """The routes whose handler is application code (tests and migrations excluded), in
    source order (file, then handler, then decorator line), shared per audit: the order
    in which the checks that follow handlers (FUNC-001, PERF-002, TEST-*) report."""
    from ..code.callgraph import app_graph, shared

    def build():
        graph = app_graph(ctx)
        fidx = {src.path: i for i, src in enumerate(graph.files)}
        pos = {id(n): i for src in graph.files for i, n in enumerate(of_type(src.tree, FuncNode))}
        routes = [r for r in route_inventory(ctx) if r.file in fidx]
        return sorted(routes, key=lambda r: (fidx[r.file], pos.get(id(r.node), 0), r.line))
    return shared(ctx, "source_routes", build)


def mounted_apps(ctx) -> list[Route]:
    """ASGI apps the inventory cannot look into (``app.mount("/metrics", make_asgi_app())``,
    ``StaticFiles``) mounted on a served path: pseudo-routes with method ``MOUNT``, the
    mounted expression as ``handler``, no handler ``node``, and the path-prefix
    middlewares (app/router dependencies do not reach a mounted app). Not part of
    :func:`route_inventory`."""
    return _build(ctx)[1].mounted


def routes_at(ctx, paths) -> list[Route]:
    """The application routes (:func:`source_routes`), then the :func:`mounted_apps`, whose
    full path is one of ``paths`` (a trailing slash ignored): "is there a ``/readyz``?"."""
    wanted = {p.rstrip("/") or "/" for p in paths}
    files = {src.path for src in ctx.layout.app_sources(ctx.index)}
    return [r for r in [*source_routes(ctx), *(m for m in mounted_apps(ctx) if m.file in files)]
            if (r.path.rstrip("/") or "/") in wanted]


# Fallbacks of :func:`protection` where the inventory finds no evidence: a dependency the
# project does not define (an unresolved import) counts by its name.
AUTH_NAME = re.compile(r"auth|user|admin|token|require|verify|current|permission|role|scope|login|"
                       r"basic|bearer|api_?key|principal|identity|guard|protect|staff|owner", re.I)
NOT_AUTH_NAME = re.compile(r"^(get_)?(db|session|settings|config|pagination|paginate|limit)", re.I)


def _checks_credentials(func: ast.AST) -> bool:
    """The handler itself reads a credential (Authorization header, token) and rejects
    with 401/403 (or compares with ``secrets.compare_digest``)."""
    nodes = list(walk(func))
    reads = any(isinstance(n, ast.Constant) and isinstance(n.value, str)
                and n.value.lower() in ("authorization", "x-api-key", "x-metrics-token") for n in nodes) or any(
        isinstance(n, (ast.Attribute, ast.Name)) and re.search(r"token|credentials", dotted(n), re.I) for n in nodes)
    rejects = any(_denial(n) or (isinstance(n, ast.Constant) and n.value in DENIED_STATUS)
                  or (isinstance(n, ast.Attribute) and n.attr.startswith(("HTTP_401", "HTTP_403")))
                  or (isinstance(n, (ast.Name, ast.Attribute))
                      and dotted(n).rsplit(".", 1)[-1] in SECURITY_SCHEMES | {"compare_digest"}) for n in nodes)
    return reads and rejects


def _short(name: str) -> str:
    return name.rsplit(":", 1)[-1].rsplit(".", 1)[-1]


def protection(ctx, route: Route) -> str | None:
    """What authenticates ``route`` (a short description), or None when nothing does: the
    inventory's verdict (an authenticating dependency at any level, an auth-enforcing
    middleware on its path); else a dependency that is not project code but is named like
    authentication (``verify_token`` from a missing module); else a credential check in
    the handler body (``Authorization`` compared, 401 raised)."""
    for d in route.dependencies:
        if d.authenticates:
            return f"dependency {d.written or _short(d.name)}"
    for m in route.middlewares:
        if m.enforces_auth:
            when = f", only if {m.condition}" if m.condition else ""
            return f"middleware {_short(m.name)} ({m.file}:{m.line}{when})"
    for d in route.dependencies:
        last = _short(d.name)
        if ":" not in d.name and d.kind != "scheme" and AUTH_NAME.search(last) and not NOT_AUTH_NAME.search(last):
            return f"dependency {d.written or last}"
    if route.node is not None and _checks_credentials(route.node):
        return f"credential check in {route.node.name}"
    return None


def library_route(ctx, file: str, line: int, path: str, dependencies=(), method: str = "GET") -> Route:
    """A route a library call adds at ``file:line`` (``Instrumentator().expose(app,
    endpoint=..., dependencies=[...])``), its ``Depends(...)`` expressions and the apps'
    path middlewares analysed like an inventory route's, then classified."""
    b = builder(ctx)
    mod = b.p.by_path.get(file)
    deps = [d for d in (b.dependency(mod, e, "decorator") for e in dependencies) if d is not None] if mod else []
    mws = [m for o in b.objs.values() if o.kind == "app" for m in o.middlewares if m.applies_to(path)]
    route = Route(methods=(method,), path=path, handler="", file=file, line=line, handler_line=line,
                  dependencies=deps, middlewares=mws, module=mod)
    _classify(route)
    return route


def app_anchor(ctx) -> tuple[str, int | None]:
    """Where the application is created (the first app constructor, by discovered app
    file then line), for findings about something the app lacks; ``(".", None)`` when
    no app was found."""
    order = {p: i for i, p in enumerate(ctx.layout.app_files)}
    found = sorted((order[o.module.path], o.line, o.module.path) for o in _build(ctx)[1].objs.values()
                   if o.kind == "app" and o.module.path in order and ctx.layout.is_app(o.module.path))
    return (found[0][2], found[0][1]) if found else (".", None)


def apps(ctx) -> list[str]:
    """``module:variable`` of every FastAPI app found."""
    return [o.qualname for o in _build(ctx)[1].objs.values() if o.kind == "app"]


def builder(ctx) -> _Builder:
    """The inventory's internals (dependency analysis), for other analyses of this package."""
    return _build(ctx)[1]


def routes_frame(ctx):
    """The inventory as a DataFrame: method, path, handler, file, line, auth, roles,
    mechanism, dependencies, middlewares, include_in_schema, router, notes (the parts of
    the path an environment variable can override)."""
    import pandas as pd

    rows = []
    for r in route_inventory(ctx):
        for m in r.methods:
            rows.append({"method": m, "path": r.path, "handler": r.handler, "file": r.file, "line": r.line,
                         "auth": r.auth, "roles": ", ".join(r.roles), "mechanism": r.mechanism,
                         "dependencies": ", ".join(dict.fromkeys(d.name.rsplit(":", 1)[-1] for d in r.dependencies)),
                         "middlewares": ", ".join(m.name.rsplit(":", 1)[-1] for m in r.middlewares),
                         "include_in_schema": r.include_in_schema, "router": r.router,
                         "notes": "; ".join(r.notes)})
    cols = ["method", "path", "handler", "file", "line", "auth", "roles", "mechanism", "dependencies",
            "middlewares", "include_in_schema", "router", "notes"]
    return pd.DataFrame(rows, columns=cols)
