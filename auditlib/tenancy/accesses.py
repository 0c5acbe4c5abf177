"""Tenant isolation, statically, part 1: extracting data accesses. For a function under one
binding of its parameters, follow it into the functions, methods and objects it calls
(across modules, through imports, ``self``, repository / manager objects, module-level
singletons, dependency return types) and collect each data access (``select`` /
``update`` / ``delete`` / ``session.get`` / ``session.query`` / ``text()`` / model
construction) with its conditions.

Values are tracked by origin: ``caller`` (the authenticated identity, ``request.state``,
an org context variable), ``untrusted`` (path, query, body, headers), ``path:<name>``
(a path parameter), ``const``, ``access:<key>`` (a row fetched by a data access),
``signed-webhook`` / ``capability`` (a signature-verified payload, a signed token),
``bypass:<file:line>`` (a request value read only under a debug flag). Filters built as
data travel as :class:`CondSet`. The rules deciding whether an access is scoped are in
:mod:`.rules`; the per-endpoint roll-up in :mod:`.scoping`.
"""
from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field

from ..facts.orm_schema import Schema, schema
from ..code.pyast import dotted, literal, source, walk
from ..code.pymodules import FuncNode, Module, Project, own_nodes, project
from ..facts.routes import Route, _denial, _orgish, builder, handler_params

CALLER, UNTRUSTED, CONST, OTHER, REQUEST = "caller", "untrusted", "const", "other", "request"
SIGNED, TOKEN, BYPASS = "signed-webhook", "capability", "bypass:"  # verified payload, signed token, debug-only
PLATFORM_POLICY = "<platform-policy>"  # a check: the caller passed a policy admitting only a platform-wide role
# role flags of a platform operator (whatever the organisation)
GLOBAL_ROLE_ATTR = re.compile(r"^(is_superuser|is_superadmin|is_super_admin|is_platform_admin|superuser|is_staff_admin)$")
MEMBERSHIP_CALL = re.compile(r"(?i)member|belongs")
MEMBERSHIP_CHECK = re.compile(r"(?i)member|belongs|permission|authori[sz]|can_access|has_access|has_role")
VALIDATED = "<validated>"  # a check (VALIDATED, "path:<name>"): that path parameter passed a membership check
COLUMN = "column:"  # compared to another table's column (a join condition): ``column:<table>.<column>``
UNSET = " unset"  # env entry: parameters left at a falsy default (not a valid identifier: no clash)
PASSTHROUGH = {"int", "str", "UUID", "uuid", "cast", "Decimal", "float", "list", "tuple", "set", "sorted",
               "reversed", "next", "iter", "frozenset"}
DEBUG_FLAG = re.compile(r"(?i)\b\w*(debug|testing|test_mode|dev_mode)\w*\b|[=!]=\s*['\"](test|testing|dev|development|local)['\"]")
IDENTITY_ATTR = re.compile(r"(?i)(^|_)(id|ids|uid|sub|email|username|login)$")
PASSWORD_ATTR = re.compile(r"(?i)pass|pwd")
PASSWORD_COLUMN = re.compile(r"(?i)password|passwd|pwd_hash")  # a table of logging-in principals
STR_METHODS = {"get", "getlist", "get_all", "strip", "lower", "upper", "encode", "decode", "casefold"}
TOKEN_COLUMN = re.compile(r"(?i)token|secret")
EXEC_METHODS = {"execute", "scalars", "scalar", "stream", "stream_scalars", "exec", "execute_one"}
QUERY_TERMINALS = {"all", "first", "one", "one_or_none", "scalar", "count", "delete", "update", "get", "exists"}
MAX_DEPTH = 10
# an authorization call that raises on refusal (its result unused): ``authorize(user, policy)``
AUTHZ_CALL = re.compile(r"(?i)^(authori[sz]e|check_(permission|access|authori[sz]ation)s?|ensure_(permission|access|can)\w*|"
                        r"require_(permission|access)\w*|enforce(_\w+)?|assert_(can|permission|access)\w*)$")
REQUEST_TYPES = re.compile(r"\b(Request|HTTPConnection|WebSocket)\b")  # parameter annotations
OTHER_TYPES = re.compile(r"\b(AsyncSession|Session|BackgroundTasks|Response)\b")


@dataclass(frozen=True)
class Cond:
    table: str
    column: str
    taint: frozenset
    line: int
    via: str = ""  # the compared value's last name (``principal.customer_id`` -> customer_id)


class CondSet(frozenset):
    """Filters built as data (``conds = [A.x == v]``, ``{"org_id": v}``): the union of the
    values' origins, and the conditions themselves for ``where(*conds)`` / ``filter_by(**kw)``."""
    conds: tuple = ()
    own: str = ""  # "instance:<class>" of an object built with these fields (its fields may hold others)

    @classmethod
    def of(cls, conds, extra=frozenset(), own: str = "") -> CondSet:
        out = cls(frozenset().union(extra, *(c.taint for c in conds)))
        out.conds = tuple(conds)
        out.own = own
        return out

    def field(self, name: str) -> frozenset | None:
        """The origin of one field of a row / record built with keywords (``run.project_id``)."""
        for c in self.conds:
            if c.column in (name, f"{name}_id", name.lstrip("_")):  # self._project_name = project_name
                return c.taint or frozenset({CONST})
        return None

    def __eq__(self, other):
        return frozenset.__eq__(self, other) and (not isinstance(other, CondSet) or self.conds == other.conds)

    def __hash__(self):
        return hash((frozenset(self), self.conds))


@dataclass(frozen=True)
class Query:
    kind: str  # select | update | delete | get | query | text | insert
    models: tuple  # tables selected / updated / deleted
    joined: tuple = ()
    conds: tuple = ()
    id_taint: frozenset = frozenset()
    file: str = ""
    line: int = 0
    col: int = 0
    sql: str = ""
    alts: tuple = ()  # the same statement as other branches of a helper return it (``if org: ... else: ...``)

    @property
    def key(self) -> str:
        return f"{self.file}:{self.line}:{self.col}"

    def add(self, **kw) -> Query:
        d = {k: getattr(self, k) for k in self.__dataclass_fields__}
        for k, v in kw.items():
            d[k] = d[k] + tuple(v) if k in ("joined", "conds") else v
        if self.alts and "alts" not in kw:
            d["alts"] = tuple(a.add(**kw) for a in self.alts)
        return Query(**d)


class TupleVal(tuple):
    """A function's ``return query, extra``: unpacked by ``q, extra = helper(...)``."""


@dataclass
class Access:
    query: Query
    func: str  # module:function holding the query
    chain: tuple = ()  # functions from the handler down to ``func``


@dataclass
class Result:
    accesses: list = field(default_factory=list)
    ret: object = frozenset()
    checks: set = field(default_factory=set)  # (access key, attribute) compared to a caller value


# ---------------------------------------------------------------------------------------
class Analyzer:
    def __init__(self, ctx):
        self.ctx = ctx
        self.p: Project = project(ctx)
        self.s: Schema = schema(ctx)
        self.b = builder(ctx)
        self.memo: dict = {}
        self.active: set = set()
        self.model_tables = self.s.by_class

    # -- helpers -------------------------------------------------------------------------
    def model_table(self, mod: Module, expr, env) -> str | None:
        """The table of a model-class expression (``Booking``, ``models.Booking``, an alias)."""
        if isinstance(expr, ast.Name) and expr.id in env:
            v = env[expr.id]
            if isinstance(v, frozenset):
                return next((a[6:] for a in v if a.startswith("model:")), None)
            return None
        sym = self.p.resolve(mod, expr)
        if sym is not None and sym.kind == "class":
            return self.model_tables.get(sym.qualname)
        return None

    def column_ref(self, mod, expr, env) -> tuple[str, str] | None:
        """``Model.col`` -> (table, column)."""
        if isinstance(expr, ast.Attribute):
            t = self.model_table(mod, expr.value, env)
            if t:
                return t, expr.attr
        return None

    def tables_in(self, mod, exprs, env) -> list[str]:
        out = []
        for e in exprs:
            for n in walk(e):
                if isinstance(n, (ast.Name, ast.Attribute)):
                    t = self.model_table(mod, n, env)
                    if t and t not in out:
                        out.append(t)
        return out

    # -- function analysis ---------------------------------------------------------------
    def analyze(self, mod: Module, func, env: dict, cls=None, depth: int = 0) -> Result:
        try:
            key = (id(func), tuple(sorted(env.items(), key=lambda kv: kv[0])))
            hash(key)
        except TypeError:
            key = (id(func), repr(sorted(env.items(), key=lambda kv: kv[0])))
        if key in self.memo:
            return self.memo[key]
        if key in self.active or depth > MAX_DEPTH:
            return Result()
        self.active.add(key)
        fa = _Frame(self, mod, func, dict(env), cls, depth)
        fa.run()
        self.active.discard(key)
        res = Result(fa.accesses, fa.ret, fa.checks)
        self.memo[key] = res
        return res

    def attr_instance(self, cls_qual: str, attr: str, depth: int = 0) -> str | None:
        """The project class of ``obj.attr`` for an instance of ``cls_qual``: from ``attr: Cls``
        in the class body, or ``self.attr = Cls(...)`` / ``self.attr: Cls = ...`` in a method."""
        key = ("attr", cls_qual, attr)
        if key in self.memo:
            return self.memo[key]
        self.memo[key] = None
        modname, _, cname = cls_qual.partition(":")
        mod = self.p.modules.get(modname)
        cls = mod.defs.get(cname.split(".")[0]) if mod else None
        if not isinstance(cls, ast.ClassDef) or depth > 4:
            return None
        found = None
        for n in walk(cls):
            target = value = ann = None
            if isinstance(n, ast.AnnAssign):
                target, value, ann = n.target, n.value, n.annotation
            elif isinstance(n, ast.Assign) and len(n.targets) == 1:
                target, value = n.targets[0], n.value
            if target is None:
                continue
            name = target.id if isinstance(target, ast.Name) else (
                target.attr if isinstance(target, ast.Attribute) and dotted(target.value) in ("self", "cls") else None)
            if name != attr:
                continue
            if ann is None and isinstance(value, ast.Name):  # self.repo = repo, with ``repo: UserRepository``
                ann = next((a.annotation for f in walk(cls) if isinstance(f, FuncNode) and f.name == "__init__"
                            for a in [*f.args.posonlyargs, *f.args.args, *f.args.kwonlyargs]
                            if a.arg == value.id and a.annotation is not None), None)
            for expr in (ann, value.func if isinstance(value, ast.Call) else None):
                sym = self.p.resolve(mod, _unquote(expr)) if expr is not None else None
                if sym is not None and sym.kind == "class" and sym.qualname not in self.model_tables:
                    found = sym.qualname
                    break
            if found:
                break
        if found is None:
            for b in cls.bases:
                sym = self.p.resolve(mod, b)
                if sym is not None and sym.kind == "class":
                    found = self.attr_instance(sym.qualname, attr, depth + 1)
                    if found:
                        break
        self.memo[key] = found
        return found

    def class_bases(self, cls_qual: str) -> list:
        modname, _, cname = cls_qual.partition(":")
        mod = self.p.modules.get(modname)
        node = mod.defs.get(cname) if mod else None
        return self.p.class_bases(mod, node) if isinstance(node, ast.ClassDef) else []

    def implementations(self, cls_qual: str, meth: str) -> list:
        """(module, method, class) of the concrete ``meth`` of every project subclass of ``cls_qual``."""
        key = ("impl", cls_qual, meth)
        if key not in self.memo:
            if "subclasses" not in self.memo:  # one pass: base class -> its project subclasses
                subs: dict = {}
                for mod in self.p.by_path.values():
                    for node in mod.tree.body:
                        if isinstance(node, ast.ClassDef) and node.bases:
                            for b in self.p.class_bases(mod, node):
                                subs.setdefault(b, []).append((mod, node))
                self.memo["subclasses"] = subs
            out = []
            for mod, node in self.memo["subclasses"].get(cls_qual, []):
                fn = next((n for n in node.body if isinstance(n, FuncNode) and n.name == meth), None)
                if fn is not None and not _abstract(fn):
                    out.append((mod, fn, f"{mod.name}:{node.name}"))
            self.memo[key] = out[:6]
        return self.memo[key]

    def wraps_auth(self, info) -> bool:
        """A dependency authenticating only through another project dependency it depends on
        (``get_dataset_checked(dataset_id, user=Depends(get_current_user))``, a role gate): it is
        analysed like any dependency, its data accesses are the route's, and it returns what it
        returns (the caller for a role gate)."""
        if not info or info.get("node") is None or not info.get("chain"):
            return False
        nodes = own_nodes(info["node"])
        if any(_denial(n) for n in nodes) and not any(isinstance(n, ast.Call) and dotted(n.func).rsplit(
                ".", 1)[-1] in ("execute", "scalar", "scalars", "get", "get_or_raise", "query") for n in nodes):
            return False  # it checks credentials itself
        b = self.b
        for name in info["chain"]:
            sub = next((x for x in b.dep_memo.values() if x.get("name") == name), None)
            if sub and sub.get("auth") and sub.get("kind") != "scheme":
                return True
        return False

    def auth_checks(self, mod, dexpr, path_params) -> None:
        """An authenticating dependency that also checks the caller's membership of the org named
        in the path (``ProxyAuth``: ``is_project_member(project_name, token)`` or 403): its
        VALIDATED checks are the route's (its own queries are identity plumbing, not counted)."""
        info = self.b.dep_target(mod, dexpr.args[0]) if dexpr is not None and dexpr.args else None
        self.auth_checks_info(info, path_params)

    def auth_checks_info(self, info, path_params) -> None:
        if not info or info.get("node") is None or not path_params:
            return
        denv = {p2: frozenset({UNTRUSTED, f"path:{p2}"}) if p2 in path_params else frozenset({OTHER})
                for p2, _d, _a, _m in handler_params(info["node"], self.p, info["module"])}
        r = self.analyze(info["module"], info["node"], denv, depth=2)
        validated = {(k, a) for k, a in r.checks if k == VALIDATED}
        if validated:
            self.__dict__.setdefault("dep_results", []).append(
                (f"{info['module'].name}:{info['node'].name}", Result([], frozenset(), validated)))

    def platform_roles(self) -> set:
        """Role flags that bypass organisation membership: ``actor.is_owner or (actor.is_admin and
        await actor.is_member(dataset.workspace_id))`` makes ``is_owner`` a platform-wide role
        (it admits without any membership), as do the superuser flags."""
        if "platform-roles" not in self.memo:
            roles = set()
            for mod in self.p.by_path.values():
                for n in walk(mod.tree):
                    if not isinstance(n, ast.BoolOp) or not isinstance(n.op, ast.Or):
                        continue
                    if not any(isinstance(x, ast.Call) and MEMBERSHIP_CALL.search(dotted(x.func).rsplit(".", 1)[-1])
                               for v in n.values for x in walk(v)):
                        continue
                    roles |= {v.attr for v in n.values if isinstance(v, ast.Attribute) and v.attr.startswith("is_")}
            self.memo["platform-roles"] = roles
        return self.memo["platform-roles"]

    def platform_policy(self, mod, expr) -> bool:
        """``UserPolicy.list`` / ``WebhookPolicy.create`` (or a call returning such a function): a
        policy whose every ``return`` admits a platform-wide role only (``return actor.is_owner``)."""
        func = None
        sym = self.p.resolve(mod, expr.func if isinstance(expr, ast.Call) else expr)
        if sym is not None and sym.kind == "func":
            func = sym.node
            inner = {n.name: n for n in func.body if isinstance(n, FuncNode)}
            ret = next((n.value.id for n in own_nodes(func) if isinstance(n, ast.Return) and isinstance(n.value, ast.Name)
                        and n.value.id in inner), None)
            if ret:
                func = inner[ret]
            elif isinstance(expr, ast.Call):
                return False
        if func is None:
            return False
        roles = self.platform_roles()
        rets = [n.value for n in own_nodes(func) if isinstance(n, ast.Return)]

        def role(e) -> bool:
            if isinstance(e, ast.Await):
                e = e.value
            if isinstance(e, ast.BoolOp) and isinstance(e.op, ast.Or):
                return all(role(v) for v in e.values)
            return isinstance(e, ast.Attribute) and (e.attr in roles or bool(GLOBAL_ROLE_ATTR.match(e.attr)))
        return bool(rets) and all(r is not None and role(r) for r in rets)

    def annotated_instance(self, mod, ann) -> frozenset | None:
        """A parameter annotated with a project class (``repo: OrderRepository``)."""
        if ann is None:
            return None
        for n in walk(ann):
            if isinstance(n, (ast.Name, ast.Attribute, ast.Constant)):
                sym = self.p.resolve(mod, _unquote(n))
                if sym is not None and sym.kind == "class" and sym.qualname not in self.model_tables and not \
                        REQUEST_TYPES.search(sym.short) and not OTHER_TYPES.search(sym.short):
                    if any(isinstance(x, FuncNode) for x in sym.node.body):
                        return frozenset({f"instance:{sym.qualname}"})
        return None

    def handler_env(self, route: Route) -> dict:
        """The origins of the handler's parameters. The data accesses of the (non-authenticating)
        dependencies that compute them (``job = Depends(get_job_or_404)``) are the route's too: they
        are left in :attr:`dep_results` as (dependency, Result)."""
        env = {}
        self.dep_results = []
        deps = {d.param: d for d in route.dependencies if d.level == "param"}
        for pname, dexpr, ann, dmod in handler_params(route.node, self.p, route.module):
            env[pname] = self.param_value(dmod, pname, dexpr, ann, deps.get(pname), route.path_params)
        return env

    def param_value(self, mod, pname, dexpr, ann, dep, path_params, depth: int = 0):
        if dep is not None:
            info = self.b.dep_target(mod, dexpr.args[0]) if dexpr is not None and dexpr.args else None
            if dep.authenticates and not self.wraps_auth(info):
                self.auth_checks(mod, dexpr, path_params)
                return frozenset({CALLER})
            if info and info.get("node") is not None:
                sym = self.p.resolve(mod, dexpr.args[0]) if not isinstance(dexpr.args[0], ast.Call) else None
                if sym is not None and sym.kind == "class":
                    return frozenset({f"instance:{sym.qualname}"})
                denv = {}
                for p2, d2, a2, m2 in handler_params(info["node"], self.p, info["module"]):
                    sub = self.b.dependency(m2, d2, "param", param=p2) if d2 is not None and depth < 4 else None
                    denv[p2] = self.param_value(m2, p2, d2, a2, sub, path_params, depth + 1)
                r = self.analyze(info["module"], info["node"], denv, depth=2)
                if dep.authenticates and (not r.ret or r.ret == {OTHER} or not isinstance(r.ret, frozenset)):
                    r = Result(r.accesses, frozenset({CALLER}), r.checks)
                if r.accesses or r.checks:
                    self.__dict__.setdefault("dep_results", []).append((f"{info['module'].name}:{info['node'].name}", r))
                if isinstance(r.ret, frozenset) and r.ret:
                    v = r.ret if r.accesses or isinstance(r.ret, CondSet) else frozenset(
                        a for a in r.ret if not a.startswith("access:"))
                    # ``-> GatewayProxyRepo`` narrowing a ``BaseProxyRepo`` (isinstance check): the declared class
                    declared = self.annotated_instance(info["module"], info["node"].returns)
                    inst = next((a for a in v if a.startswith("instance:")), None)
                    if declared and inst and inst not in declared and inst[9:] in self.class_bases(next(iter(declared))[9:]):
                        v = (v - {inst}) | declared
                    if v and v != {OTHER}:
                        return v
            return self.annotated_instance(mod, ann) or frozenset({OTHER})
        text = source(ann) if ann is not None else ""
        if REQUEST_TYPES.search(text):
            return frozenset({REQUEST})
        if OTHER_TYPES.search(text):
            return frozenset({OTHER})
        if pname in path_params:
            return frozenset({UNTRUSTED, f"path:{pname}"})
        return frozenset({UNTRUSTED})


class _Frame:
    """One function analysed under one binding of its parameters."""

    def __init__(self, an: Analyzer, mod: Module, func, env: dict, cls, depth: int):
        self.an, self.mod, self.func, self.cls, self.depth = an, mod, func, cls, depth
        self.vars = env
        self.accesses: list[Access] = []
        self.ret = frozenset()
        self.checks: set = set()
        self.recorded: set = set()
        self.pending: dict[str, Query] = {}
        self.qual = f"{mod.name}:{func.name}"
        self.debug = ""  # "file:line" while inside a branch taken only under a debug / test flag
        self.tuple_call = None  # the call whose result a tuple target unpacks
        self.local_syms: dict = {}  # names imported inside the function
        self.signs = any(dotted(n.func).endswith(("hmac.new", "hmac.digest", "HMAC")) for n in own_nodes(func)
                         if isinstance(n, ast.Call))

    def nested(self) -> dict:
        if not hasattr(self, "_nested"):
            self._nested = {n.name: n for n in own_nodes(self.func) if isinstance(n, FuncNode) and n is not self.func}
        return self._nested

    def containers(self) -> set:
        """Local names bound to a set / list / dict built in this function (``hosts = set()``):
        their ``.add(row.x)`` collects values, it does not write a row."""
        if not hasattr(self, "_containers"):
            self._containers = {t.id for n in own_nodes(self.func) if isinstance(n, (ast.Assign, ast.AnnAssign))
                                and n.value is not None and (isinstance(n.value, (ast.Set, ast.List, ast.Dict, ast.SetComp,
                                                                                    ast.ListComp, ast.DictComp))
                                                             or isinstance(n.value, ast.Call) and dotted(n.value.func) in (
                                    "set", "list", "dict", "defaultdict", "collections.defaultdict"))
                                for t in (n.targets if isinstance(n, ast.Assign) else [n.target]) if isinstance(t, ast.Name)}
        return self._containers

    def run(self) -> None:
        for stmt in self.func.body:
            self.visit(stmt)
        for q in list(self.pending.values()):  # built but never seen executed: count it as read
            self.record(q)

    # -- statements ----------------------------------------------------------------------
    def visit(self, st) -> None:
        if isinstance(st, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
            if st.value is None:
                return
            targets = st.targets if isinstance(st, ast.Assign) else [st.target]
            value = st.value.value if isinstance(st.value, ast.Await) else st.value
            self.tuple_call = value if isinstance(targets[0], (ast.Tuple, ast.List)) else None
            v = self.eval(st.value)
            self.tuple_call = None
            for t in targets:
                self.bind(t, v, aug=isinstance(st, ast.AugAssign))
        elif isinstance(st, ast.Expr):
            self.eval(st.value)
            self.authorized(st.value.value if isinstance(st.value, ast.Await) else st.value)
        elif isinstance(st, ast.Return):
            if isinstance(st.value, ast.Tuple):
                vals = [self.eval(e) for e in st.value.elts]
                if any(isinstance(x, Query) or isinstance(x, CondSet) and x.conds for x in vals):
                    for x in vals:
                        if isinstance(x, Query):
                            self.pending.pop(x.key, None)
                    self.ret = TupleVal(vals)
                    return
            if st.value is not None:
                v = self.eval(st.value)
                if isinstance(v, Query):
                    self.pending.pop(v.key, None)
                    old = self.ret
                    if isinstance(old, Query) and old.key == v.key and old != v:
                        v = Query(**{**{k: getattr(v, k) for k in v.__dataclass_fields__},
                                     "alts": tuple(dict.fromkeys((*v.alts, old, *old.alts)))})
                    self.ret = v
                elif isinstance(v, CondSet) and not self.ret:
                    self.ret = v
                elif isinstance(self.ret, frozenset):
                    self.ret = self.ret | v
        elif isinstance(st, ast.If) and _falsy_test(st.test, self.vars.get(UNSET, ())) is not None:
            taken = st.orelse if _falsy_test(st.test, self.vars[UNSET]) else st.body  # decided by a default
            for s in taken:
                self.visit(s)
        elif isinstance(st, (ast.If, ast.While)):
            self.test(st.test)
            if isinstance(st, ast.If):
                self.membership_checked(st)
            outer = self.debug
            if isinstance(st, ast.If) and not outer and DEBUG_FLAG.search(source(st.test)):
                self.debug = f"{self.mod.path}:{st.lineno}"
            for s in st.body:
                self.visit(s)
            self.debug = outer
            for s in st.orelse:
                self.visit(s)
            if self.signs and any(dotted(n.func).endswith("compare_digest") for n in walk(st.test)
                                  if isinstance(n, ast.Call)) and any(_denial(n) for s in st.body for n in walk(s)):
                self.signature_verified()
        elif isinstance(st, (ast.Import, ast.ImportFrom)):
            self.local_import(st)
        elif isinstance(st, ast.Assert):
            self.test(st.test)
        elif isinstance(st, (ast.For, ast.AsyncFor)):
            v = self.eval(st.iter)
            if isinstance(v, Query):
                self.record(v)
                v = frozenset({f"access:{v.key}"})
            self.bind(st.target, v)
            for s in st.body + st.orelse:
                self.visit(s)
        elif isinstance(st, (ast.With, ast.AsyncWith)):
            for item in st.items:
                v = self.eval(item.context_expr)
                if item.optional_vars is not None:
                    self.bind(item.optional_vars, v)
            for s in st.body:
                self.visit(s)
        elif isinstance(st, ast.Try) or type(st).__name__ == "TryStar":
            for s in st.body + [x for h in st.handlers for x in h.body] + st.orelse + st.finalbody:
                self.visit(s)
        elif isinstance(st, ast.Raise) and st.exc is not None:
            self.eval(st.exc)
        elif isinstance(st, ast.Match):
            self.eval(st.subject)
            for case in st.cases:
                for s in case.body:
                    self.visit(s)

    def bind(self, target, v, aug=False) -> None:
        if isinstance(target, ast.Name):
            if isinstance(v, Query):  # stmt = stmt.where(...): supersedes the pending root
                self.pending[v.key] = v
            old = self.vars.get(target.id)
            self.vars[target.id] = (old | v) if aug and isinstance(old, frozenset) and isinstance(v, frozenset) else v
        elif isinstance(target, (ast.Tuple, ast.List)) and isinstance(v, TupleVal) and len(v) == len(target.elts):
            for e, x in zip(target.elts, v):
                self.bind(e, x)
        elif isinstance(target, (ast.Tuple, ast.List)):
            for e in target.elts:
                self.bind(e, v if isinstance(v, frozenset) else frozenset({OTHER}))
        elif isinstance(target, ast.Attribute):  # row.status = ...: the fetched row is modified
            self.checks |= {(a[7:], "<written>") for a in self.taint(target.value) if a.startswith("access:")}
        elif isinstance(target, ast.Subscript) and isinstance(target.value, ast.Name) and isinstance(
                self.vars.get(target.value.id), CondSet) and isinstance(literal(target.slice), str):
            old = self.vars[target.value.id]  # filters["org_id"] = value
            self.vars[target.value.id] = CondSet.of([*old.conds, Cond("", literal(target.slice), v, target.lineno)], old)

    def authorized(self, c) -> None:
        """``await authorize(current_user, DatasetPolicy.get(dataset))`` as a statement: an
        authorization call given the caller's identity and an object, whose result is discarded
        (it raises on refusal). The object is the caller's to use: a fetched row counts as
        checked against the caller's org, a request-supplied value as validated."""
        if not isinstance(c, ast.Call) or not AUTHZ_CALL.search(dotted(c.func).rsplit(".", 1)[-1]):
            return
        args = [*c.args, *(k.value for k in c.keywords)]
        if not any(isinstance(a, (ast.Name, ast.Attribute)) and self.taint(a) <= {CALLER} and self.taint(a) for a in args):
            return
        if any(self.an.platform_policy(self.mod, a) for a in args):
            self.checks.add(("", PLATFORM_POLICY))  # authorize(user, UserPolicy.list): platform operators only
        for a in args:
            for n in walk(a):
                if not isinstance(n, ast.Name) or n.id not in self.vars:
                    continue
                t = self.taint(n)
                if not t or t <= {CALLER}:
                    continue
                fetched = {x[7:] for x in t if x.startswith("access:")}
                if fetched:
                    self.checks |= {(k, "<authorized>") for k in fetched}
                elif UNTRUSTED in t:
                    self.vars[n.id] = frozenset({CALLER})

    def membership_checked(self, st: ast.If) -> None:
        """``if not await provider.is_project_member(self._project_name, token): raise ProxyError(..., 403)``:
        a membership / permission lookup on a request value, refused with 401/403/404, validates the
        path parameters it was given: a query on the org they name is the caller's (VALIDATED check)."""
        calls = [n for n in walk(st.test) if isinstance(n, ast.Call) and MEMBERSHIP_CHECK.search(
            dotted(n.func).rsplit(".", 1)[-1])]
        if not calls or not any(_refusal(n) for s in st.body for n in walk(s)):
            return
        for n in calls:
            for a in [*n.args, *(k.value for k in n.keywords)]:
                self.checks |= {(VALIDATED, x) for x in self.taint(a) if x.startswith("path:")}

    def signature_verified(self) -> None:
        """``if not hmac.compare_digest(expected, sig): raise``: what the request sent is now verified."""
        for k, v in list(self.vars.items()):
            if isinstance(v, frozenset) and not isinstance(v, CondSet) and UNTRUSTED in v and not any(
                    a.startswith("path:") for a in v):
                self.vars[k] = (v - {UNTRUSTED}) | {SIGNED}
        self.signs = "verified"

    def local_import(self, st) -> None:
        p = self.an.p
        for a in st.names:
            if isinstance(st, ast.ImportFrom) and a.name != "*":
                mod = p.modules.get(st.module or "") if not st.level else None
                sym = p.resolve_name(mod, a.name) if mod is not None else None
                if sym is not None:
                    self.local_syms[a.asname or a.name] = sym
                    if sym.kind == "class" and sym.qualname in self.an.model_tables:
                        self.vars[a.asname or a.name] = frozenset({f"model:{self.an.model_tables[sym.qualname]}"})

    def test(self, test) -> None:
        """Conditions: org comparisons validate fetched objects and request-supplied org ids."""
        self.eval(test)
        for n in walk(test):
            if not isinstance(n, ast.Compare):
                continue
            sides = [n.left, *n.comparators]
            taints = [self.taint(s) for s in sides]
            caller_side = any(t and t <= {CALLER} for t in taints)
            if not caller_side:
                # obj.org_id != actor.org_id where actor is a row fetched before obj (its own fetch is judged)
                if sum(1 for s, u in zip(sides, taints) if isinstance(s, ast.Attribute) and _orgish(s.attr) and any(
                        a.startswith("access:") for a in u)) < 2:
                    continue
                order = {a.query.key: i for i, a in reversed(list(enumerate(self.accesses)))}
                def when(u):  # noqa: E306 - position of the latest fetch a value comes from (-1: from the caller)
                    return max((order.get(a[7:], -1) for a in u if a.startswith("access:")), default=-1)
                for i, (s, t) in enumerate(zip(sides, taints)):
                    others = [(o, u) for j, (o, u) in enumerate(zip(sides, taints)) if j != i]
                    if isinstance(s, ast.Attribute) and _orgish(s.attr) and any(
                            isinstance(o, ast.Attribute) and _orgish(o.attr) and u and all(
                                a.startswith("access:") for a in u) and not (u & t) and when(u) < when(t)
                            for o, u in others):
                        self.checks |= {(a[7:], s.attr) for a in t if a.startswith("access:")}
                        self.checks |= {(a[7:], "<reference>") for _, u in others for a in u if a.startswith("access:")}
                continue
            for s, t in zip(sides, taints):
                if isinstance(s, ast.Attribute):  # obj.org_id != user.org_id (or obj.team_id ...)
                    self.checks |= {(a[7:], s.attr) for a in t if a.startswith("access:")}
                if isinstance(s, ast.Name) and UNTRUSTED in t:  # `if org_id not in user.org_ids: raise`
                    self.vars[s.id] = frozenset({CALLER})

    # -- expressions ---------------------------------------------------------------------
    def taint(self, expr) -> frozenset:
        v = self.eval(expr)
        if isinstance(v, Query):
            return frozenset({f"access:{v.key}"})
        return v

    def eval(self, e):  # -> frozenset | Query
        if e is None:
            return frozenset()
        if isinstance(e, ast.Constant):
            return frozenset({CONST})
        if isinstance(e, ast.Await):
            return self.eval(e.value)
        if isinstance(e, ast.Name):
            if e.id in self.vars:
                return self.vars[e.id]
            t = self.an.model_table(self.mod, e, {})
            if t:
                return frozenset({f"model:{t}"})
            return self.instance(e) or (frozenset({CONST}) if self.module_constant(e) else frozenset({OTHER}))
        if isinstance(e, ast.Attribute):
            base = self.eval(e.value)
            if isinstance(base, Query):
                return base
            if REQUEST in base:
                if dotted(e.value).endswith("state"):
                    return frozenset({CALLER})
                return base if e.attr == "state" else self.untrusted()
            if isinstance(base, CondSet) and base.conds and (f := base.field(e.attr)) is not None:
                return f
            if isinstance(e.value, ast.Name) and e.value.id not in self.vars and base == {OTHER}:
                return self.instance(e) or base  # module.singleton
            inst = _own_instance(base)
            if inst is not None:  # server.agent_manager
                t = self.an.attr_instance(inst[9:], e.attr)
                if t:
                    return frozenset({f"instance:{t}"})
                if e.attr.isupper() and base == {inst}:  # self.DEFAULT_USER_ID: a class constant
                    return frozenset({CONST})
                # an attribute of unknown type (``self.db``): not the instance itself, whose methods
                # would then be called on it (``self.db.execute`` is not ``UseCase.execute``)
                rest = frozenset(a for a in base if not a.startswith("instance:"))
                return rest or frozenset({OTHER})
            if any(a.startswith("model:") for a in base):
                return frozenset({OTHER})
            return base
        if isinstance(e, ast.Subscript):
            self.eval(e.slice)
            return self.eval(e.value)
        if isinstance(e, ast.Call):
            return self.call(e)
        if isinstance(e, (ast.BoolOp,)):
            out = frozenset()
            for v in e.values:
                t = self.taint(v)
                out |= t
            return out
        if isinstance(e, ast.IfExp) and _falsy_test(e.test, self.vars.get(UNSET, ())) is not None:
            return self.eval(e.orelse if _falsy_test(e.test, self.vars[UNSET]) else e.body)
        if isinstance(e, ast.IfExp):
            self.test(e.test)
            return self.taint(e.body) | self.taint(e.orelse)
        if isinstance(e, (ast.List, ast.Tuple)) and all(_looks_cond(x) for x in e.elts):
            return CondSet.of([c for x in e.elts for c in self.conds(x)])
        if isinstance(e, ast.Dict) and e.keys and all(isinstance(literal(k), str) for k in e.keys):
            return CondSet.of([Cond("", literal(k), self.taint(v), e.lineno) for k, v in zip(e.keys, e.values)])
        if isinstance(e, (ast.JoinedStr, ast.FormattedValue, ast.BinOp, ast.UnaryOp, ast.Compare,
                          ast.Tuple, ast.List, ast.Set, ast.Dict, ast.Starred, ast.NamedExpr)):
            out = frozenset()
            for c in ast.iter_child_nodes(e):
                if isinstance(c, ast.expr):
                    out |= self.taint(c)
            if isinstance(e, ast.NamedExpr):
                self.bind(e.target, out)
            return out or frozenset({CONST})
        if isinstance(e, (ast.ListComp, ast.SetComp, ast.GeneratorExp, ast.DictComp)):
            for g in e.generators:
                v = self.eval(g.iter)
                if isinstance(v, Query):
                    self.record(v)
                    v = frozenset({f"access:{v.key}"})
                self.bind(g.target, v)
            return self.taint(e.elt if not isinstance(e, ast.DictComp) else e.value)
        return frozenset({OTHER})

    def untrusted(self) -> frozenset:
        """What the request sends: the caller's own choice, except inside a debug-only branch."""
        if self.debug:
            return frozenset({BYPASS + self.debug})
        return frozenset({SIGNED if self.signs == "verified" else UNTRUSTED})

    def module_constant(self, e) -> bool:
        """``DEFAULT_ORG_ID = "org-0000"`` (imported or local): a literal, not a request value."""
        sym = self.an.p.resolve(self.mod, e)
        return sym is not None and sym.kind == "assign" and isinstance(sym.node, (ast.Constant, ast.JoinedStr))

    def instance(self, e) -> frozenset | None:
        """A module-level object of a project class (``store = SecretStore()``)."""
        sym = self.an.p.resolve(self.mod, e)
        if sym is not None and sym.kind == "assign" and isinstance(sym.node, ast.Call):
            cls = self.an.p.resolve(sym.module, sym.node.func)
            if cls is not None and cls.kind == "class" and cls.qualname not in self.an.model_tables:
                return frozenset({f"instance:{cls.qualname}"})
        return None

    def call(self, c: ast.Call):
        an, mod = self.an, self.mod
        f = c.func
        name = dotted(f).rsplit(".", 1)[-1]
        if isinstance(f, ast.Name) and f.id == "getattr" and len(c.args) >= 2 and isinstance(literal(c.args[1]), str):
            attr = ast.copy_location(ast.Attribute(value=c.args[0], attr=literal(c.args[1]), ctx=ast.Load()), c)
            default = self.taint(c.args[2]) - {CONST} if len(c.args) > 2 else frozenset()
            return self.taint(attr) | default
        if isinstance(f, ast.Attribute) and f.attr in ("append", "extend", "update") and isinstance(
                f.value, ast.Name) and isinstance(self.vars.get(f.value.id), CondSet) and c.args and not (
                self.vars[f.value.id].own and self.method_of(self.vars[f.value.id].own[9:], f.attr)):
            # (an object built with keywords whose class defines the method, ``manager.update(...)``, is called)
            old = self.vars[f.value.id]
            arg = c.args[0]
            new = [x for e in (arg.elts if f.attr == "extend" and isinstance(arg, (ast.List, ast.Tuple)) else [arg])
                   for x in self.conds(e)] if f.attr != "update" else list(getattr(self.eval(arg), "conds", ()))
            self.vars[f.value.id] = CondSet.of([*old.conds, *new], old)
            return frozenset({CONST})
        if isinstance(f, ast.Attribute) and f.attr in ("delete", "merge", "add", "add_all", "refresh", "expunge") \
                and not (isinstance(f.value, ast.Name) and f.value.id in self.containers()):
            for a in c.args:  # session.delete(row): the fetched row is written
                self.checks |= {(x[7:], "<written>") for x in self.taint(a) if x.startswith("access:")}
            if f.attr in ("add", "merge", "delete") and len(c.args) == 1:
                self.own_row_written(c, f.attr)
        signed = self.signed_value(f)
        if signed:
            for a in [*c.args, *[k.value for k in c.keywords]]:
                self.eval(a)
            return frozenset({signed})
        if name in ("verify", "verify_password", "check_password", "checkpw", "check_password_hash", "verify_and_update"):
            for a in c.args:  # a password check against a fetched row: the login's own user
                if isinstance(a, ast.Attribute) and PASSWORD_ATTR.search(a.attr):
                    self.checks |= {(x[7:], "<identity>") for x in self.taint(a) if x.startswith("access:")}
        if isinstance(f, ast.Name) and f.id in self.local_syms and f.id not in self.vars:
            sym = self.local_syms[f.id]
            if sym.kind == "func":
                return self.invoke(sym.module, sym.node, c)
        if isinstance(f, ast.Name) and f.id not in self.vars and f.id in self.nested():
            # a function defined in this one (``async def stream(): ...; StreamingResponse(stream())``):
            # it runs with this frame's variables (its closure) and its own parameters
            return self.invoke(self.mod, self.nested()[f.id], c, closure=True)
        # methods on a query value: where / filter / join ...
        if isinstance(f, ast.Attribute):
            base = self.eval(f.value)
            if isinstance(base, Query):
                return self.query_method(base, f.attr, c)
            if f.attr in ("get", "get_one") and c.args and an.model_table(mod, c.args[0], self.vars):
                t = an.model_table(mod, c.args[0], self.vars)
                q = Query("get", (t,), id_taint=self.taint(c.args[1]) if len(c.args) > 1 else frozenset(),
                          file=mod.path, line=c.lineno, col=c.col_offset)
                self.record(q)
                return frozenset({f"access:{q.key}"})
            if f.attr == "query" and c.args and an.tables_in(mod, c.args, self.vars):
                return Query("query", tuple(an.tables_in(mod, c.args, self.vars)), file=mod.path, line=c.lineno,
                             col=c.col_offset)
            if f.attr in EXEC_METHODS and c.args:
                q = self.eval(c.args[0])
                if isinstance(q, Query):
                    if q.kind == "text" and len(c.args) > 1:
                        q = self.text_params(q, c.args[1])
                    self.record(q)
                    for a in c.args[1:]:
                        self.eval(a)
                    return frozenset({f"access:{q.key}"})
            if f.attr == "get" and not c.args and isinstance(base, frozenset):  # contextvar.get()
                sym = an.p.resolve(mod, f.value)
                if sym is not None and sym.kind == "assign" and "ContextVar" in dotted(sym.node) and _orgish(
                        sym.qualname.rsplit(":", 1)[-1] + " " + source(sym.node)):
                    return frozenset({CALLER})
            inst = _own_instance(base) if isinstance(base, frozenset) else None
            if inst is not None:
                sym = self.method_of(inst[9:], f.attr)
                if sym is not None and _abstract(sym[1]):
                    # an interface (``repo: BaseProxyRepo``) whose implementation is chosen at run time:
                    # every project implementation may run
                    impls = self.an.implementations(inst[9:], f.attr)
                    if impls:
                        out = frozenset()
                        for m2, fn2, cq in impls:
                            r = self.invoke(m2, fn2, c, self_value=frozenset({f"instance:{cq}"}), cls=cq)
                            out |= r if isinstance(r, frozenset) else frozenset({OTHER})
                        return out
                if sym is not None:
                    return self.invoke(sym[0], sym[1], c, self_value=base, cls=sym[2])
            if isinstance(base, frozenset) and REQUEST in base and f.attr in ("json", "form", "body"):
                return self.untrusted()
            if isinstance(base, frozenset) and f.attr in STR_METHODS and base & {UNTRUSTED, SIGNED, TOKEN, CALLER} | {
                    a for a in base if a.startswith(BYPASS)}:
                for a in [*c.args, *[k.value for k in c.keywords]]:
                    self.eval(a)
                return frozenset(base)  # headers.get("X-Org"), value.strip(): the same origin
        # constructors of queries
        ext = an.p.external_name(mod, f)
        if name in ("select", "update", "delete", "insert") and ("sqlalchemy" in ext or "sqlmodel" in ext
                                                                  or ext == name or ext.startswith("sa.")):
            tables = an.tables_in(mod, c.args, self.vars)
            inner = [v for v in (self.eval(a) for a in c.args) if isinstance(v, Query) and v.kind == "exists"]
            if name == "insert":
                return frozenset({OTHER})
            if name == "select" and inner:  # select(exists().where(Record.dataset_id == ...))
                q = inner[0]
                self.pending.pop(q.key, None)
                models = tuple(dict.fromkeys(c2.table for c2 in q.conds if c2.table)) or tuple(tables)
                return Query("select", models, q.joined, q.conds, file=mod.path, line=c.lineno, col=c.col_offset)
            return Query(name, tuple(tables), file=mod.path, line=c.lineno, col=c.col_offset)
        if name == "exists" and not c.args and ("sqlalchemy" in ext or ext == name):
            return Query("exists", (), file=mod.path, line=c.lineno, col=c.col_offset)
        if name == "text" and c.args and isinstance(literal(c.args[0]), str):
            return self.text_query(literal(c.args[0]), c)
        if name == "aliased" and c.args:
            t = an.model_table(mod, c.args[0], self.vars)
            return frozenset({f"model:{t}"}) if t else frozenset({OTHER})
        # project functions, methods and classes
        local = self.vars if isinstance(f, ast.Name) and f.id in self.vars else None
        sym = an.p.resolve(mod, f, local) if local is None else None
        if sym is None and isinstance(f, ast.Attribute) and isinstance(f.value, ast.Name) and f.value.id in ("self", "cls") \
                and self.cls is not None:
            sym_t = self.method_of(self.cls, f.attr)
            if sym_t is not None:
                return self.invoke(sym_t[0], sym_t[1], c, self_value=self.vars.get(f.value.id), cls=sym_t[2])
        if sym is None and isinstance(f, ast.Attribute) and not (isinstance(f.value, ast.Name) and f.value.id in self.vars):
            owner = an.p.resolve(mod, f.value)  # Model.classmethod(...) defined on a base class
            found = self.method_of(owner.qualname, f.attr) if owner is not None and owner.kind == "class" else None
            if found is not None:
                return self.invoke(found[0], found[1], c, self_value=self.class_value(owner.qualname), cls=found[2])
        if sym is not None and sym.kind == "func":
            cls = sym.qualname.rsplit(".", 1)[0] if "." in sym.qualname.rsplit(":", 1)[-1] else None
            return self.invoke(sym.module, sym.node, c, cls=cls,
                               self_value=self.class_value(cls) if cls and cls in an.model_tables else None)
        if sym is not None and sym.kind == "class":
            table = an.model_tables.get(sym.qualname)
            if table:
                org = an.s.org_col(table)
                made = None
                for k in c.keywords:
                    if org and k.arg == org:
                        made = Query("insert", (table,), conds=(Cond(table, org, self.taint(k.value), c.lineno),),
                                     file=mod.path, line=c.lineno, col=c.col_offset)
                        self.record(made)
                if org and made is None and any(k.arg is None for k in c.keywords):
                    # ``Model(**payload.model_dump())``: the row's org is whatever the unpacked mapping holds
                    taint = frozenset()
                    for k in c.keywords:
                        if k.arg is None:
                            v = self.eval(k.value)
                            fv = v.field(org) if isinstance(v, CondSet) else None
                            taint |= fv if fv is not None else frozenset(
                                a for a in self.taint(k.value) if not a.startswith(("instance:", "model:")))
                    made = Query("insert", (table,), conds=(Cond(table, org, taint or frozenset({OTHER}), c.lineno),),
                                 file=mod.path, line=c.lineno, col=c.col_offset)
                    self.record(made)
                if not org:  # a row of a table without an org column: judged by its parent, or as global
                    made = Query("insert", (table,), conds=tuple(
                        Cond(table, k.arg, self.taint(k.value), c.lineno, _last_name(k.value)) for k in c.keywords
                        if k.arg), file=mod.path, line=c.lineno, col=c.col_offset)
                    self.record(made)
                fields = [Cond(table, k.arg, self.taint(k.value), c.lineno) for k in c.keywords if k.arg]
                if made is not None and fields:  # the new row's generated id is that of the row this insert creates
                    given = {k.arg for k in c.keywords}
                    fields += [Cond(table, pk, frozenset({f"access:{made.key}"}), c.lineno)
                               for pk in an.s.tables[table].pk if pk not in given] if table in an.s.tables else []
                if not fields:
                    return frozenset({OTHER})
                row = CondSet.of(fields)  # a new row: each column keeps its value's origin
                return row if row - {CONST} else CondSet.of(fields, {CONST})
            if not any(isinstance(n, FuncNode) for n in sym.node.body) and (c.args or c.keywords):
                # a plain record (dataclass, pydantic model): its fields carry its arguments' origins
                fields = [Cond("", k.arg, self.taint(k.value), c.lineno) for k in c.keywords if k.arg]
                extra = frozenset().union(*(self.taint(a) for a in c.args))
                for k in c.keywords:  # ``Record(**payload.model_dump())``: the mapping's fields and origins
                    if k.arg is None:
                        v = self.eval(k.value)
                        fields += list(v.conds) if isinstance(v, CondSet) else []
                        extra |= self.taint(k.value) if not isinstance(v, CondSet) else frozenset()
                out = CondSet.of(fields, extra)
                return out if out - {CONST} else CondSet.of(fields, {CONST})
            init = self.method_of(sym.qualname, "__init__")
            if init is not None:
                self.invoke(init[0], init[1], c, self_value=frozenset({f"instance:{sym.qualname}"}), cls=init[2])
                # the object keeps what it was built with (``ProxyAuthContext(project_name=...)``: its
                # ``self._project_name`` has the path's origin); positional arguments by parameter name
                names = [a.arg for a in [*init[1].args.posonlyargs, *init[1].args.args]][1:]
                fields = [Cond("", n, self.taint(a), c.lineno) for n, a in zip(names, c.args)
                          if not isinstance(a, ast.Starred)]
                fields += [Cond("", k.arg, self.taint(k.value), c.lineno) for k in c.keywords if k.arg]
                if fields:
                    return CondSet.of(fields, frozenset({f"instance:{sym.qualname}"}), own=f"instance:{sym.qualname}")
            elif c.args or c.keywords:  # an external base's constructor (a pydantic model with methods,
                # ``CustomJSONResponse(await svc.list(...))``): its arguments run, its fields keep their origins
                vals = []
                for a in c.args:
                    v = self.eval(a)
                    if isinstance(v, Query):
                        self.record(v)
                        v = frozenset({f"access:{v.key}"})
                    vals.append(v)
                fields = [Cond("", k.arg, self.taint(k.value), c.lineno) for k in c.keywords if k.arg]
                return CondSet.of(fields, frozenset().union(*vals) | {f"instance:{sym.qualname}"},
                                  own=f"instance:{sym.qualname}")
            return frozenset({f"instance:{sym.qualname}"})
        if isinstance(f, ast.Attribute) and not c.args and not c.keywords:
            base = self.eval(f.value)  # user.to_pydantic(), row.model_dump(): a view of the same object
            if isinstance(base, frozenset) and (base - {OTHER, CONST} or base == {CONST}):
                return frozenset(base)
        # anything else: evaluate the arguments (side effects), pass their origin through
        out = frozenset()
        for a in [*c.args, *[k.value for k in c.keywords]]:
            v = self.eval(a)
            if isinstance(v, Query):  # handed to an external helper (paginate(...)): executed there
                self.record(v)
                v = frozenset({f"access:{v.key}"})
            out |= v
        if isinstance(f, ast.Attribute):
            b = self.eval(f.value)
            if isinstance(b, frozenset) and b and b <= {OTHER, CONST} and f.attr not in STR_METHODS and not (
                    isinstance(f.value, ast.Name) and f.value.id not in self.vars):
                # a method of an external object (``self.client.search(body=query)``, an HTTP / search / cache
                # client): what it returns is that service's data, not a value the request chose
                return frozenset({OTHER})
            out |= b if isinstance(b, frozenset) else frozenset()
        if name in PASSTHROUGH and isinstance(f, ast.Name):
            return out or frozenset({OTHER})
        return (out - {CONST}) | frozenset({OTHER}) if out - {CONST} else frozenset({OTHER})

    def model_method(self, table: str, meth: str, c: ast.Call) -> Query | None:
        """A class method of a model whose body the analysis could not follow to a statement
        (``WorkspaceUser.create(db, workspace_id=w.id, user_id=u.id)`` building ``cls()`` then
        filling it): its keywords naming columns are the row's values (a write) or the filter (a
        read), recorded at the call."""
        cols = self.an.s.tables[table].columns if table in self.an.s.tables else {}
        kws = [k for k in c.keywords if k.arg and k.arg in cols]
        if not kws:
            return None
        kind = "insert" if re.match(r"(?i)(create|insert|add|new|build|upsert|save)", meth) else "select"
        q = Query(kind, (table,), conds=tuple(Cond(table, k.arg, self.taint(k.value), c.lineno, _last_name(k.value))
                                              for k in kws), file=self.mod.path, line=c.lineno, col=c.col_offset)
        self.record(q)
        return q

    def class_value(self, qual: str) -> frozenset:
        t = self.an.model_tables.get(qual)
        return frozenset({f"model:{t}"}) if t else frozenset({f"instance:{qual}"})

    def signed_value(self, f) -> str:
        """Calls whose result is verified by a signature: webhook SDKs (Stripe's
        ``construct_event``), ``jwt.decode``, an itsdangerous serializer's ``loads``."""
        ext = self.an.p.external_name(self.mod, f) or dotted(f)
        if ext.endswith(("construct_event", "Webhook.verify", "webhook.verify", "verify_webhook")):
            return SIGNED
        if re.search(r"(^|\.)(jwt|jose\.jwt|jws)\.decode$", ext):
            return TOKEN
        if isinstance(f, ast.Attribute) and f.attr in ("loads", "unsign"):
            sym = self.an.p.resolve(self.mod, f.value)
            if sym is not None and sym.kind == "assign" and isinstance(sym.node, ast.Call) and "itsdangerous" in (
                    self.an.p.external_name(sym.module, sym.node.func) or ""):
                return TOKEN
        return ""

    def method_of(self, cls_qual: str, meth: str):
        modname, _, cname = cls_qual.partition(":")
        mod = self.an.p.modules.get(modname)
        cls = mod.defs.get(cname.split(".")[0]) if mod else None
        if not isinstance(cls, ast.ClassDef):
            return None
        for n in cls.body:
            if isinstance(n, FuncNode) and n.name == meth:
                return mod, n, cls_qual
        for b in cls.bases:
            sym = self.an.p.resolve(mod, b.value if isinstance(b, ast.Subscript) else b)  # Base[Model]: Base
            if sym is not None and sym.kind == "class":
                found = self.method_of(sym.qualname, meth)
                if found:
                    return found
        return None

    def invoke(self, mod, func, c: ast.Call, self_value=None, cls=None, closure: bool = False):
        args = func.args
        params = [a.arg for a in [*args.posonlyargs, *args.args]]
        env: dict = {k: v for k, v in self.vars.items() if k != UNSET} if closure else {}
        is_method = cls is not None and params and params[0] in ("self", "cls")
        if is_method:
            env[params[0]] = self_value if self_value is not None else frozenset({f"instance:{cls}"})
            params = params[1:]
        for p, a in zip(params, c.args):
            env[p] = self.eval(a)
        kwonly = [a.arg for a in args.kwonlyargs]
        extra = []
        for k in c.keywords:
            if k.arg in params or k.arg in kwonly:
                env[k.arg] = self.eval(k.value)
            elif k.arg and args.kwarg is not None:  # get_by(db, name=..., dataset_id=...) into **conditions
                extra.append(Cond("", k.arg, self.taint(k.value), c.lineno, _last_name(k.value)))
            elif k.arg is None and isinstance(v := self.eval(k.value), CondSet):  # cls.get_by(db, **conditions)
                for x in v.conds:
                    if x.column in params or x.column in kwonly:
                        env.setdefault(x.column, x.taint)
                    elif args.kwarg is not None:
                        extra.append(x)
        if args.kwarg is not None and extra:
            env[args.kwarg.arg] = CondSet.of(extra)
        defaults = dict(zip(params[len(params) - len(args.defaults):] if args.defaults else [], args.defaults))
        defaults.update({a.arg: d for a, d in zip(args.kwonlyargs, args.kw_defaults) if d is not None})
        mine = self.vars.get(UNSET, ())
        unset = [p for p, a in zip(params, c.args) if isinstance(a, ast.Name) and a.id in mine]
        unset += [k.arg for k in c.keywords if k.arg and isinstance(k.value, ast.Name) and k.value.id in mine]
        for p in params + kwonly:
            if p not in env and isinstance(defaults.get(p), ast.Constant) and not defaults[p].value:
                unset.append(p)  # left at its default None / False / 0 / "": `if p:` is not taken
            env.setdefault(p, frozenset({CONST}))
        if unset:
            env[UNSET] = frozenset(unset)
        # validation helpers: check_member(user, org_id) raising 403/404 vouches for the org id
        denies = self.an.memo.get(("denies", id(func)))
        if denies is None:
            denies = self.an.memo[("denies", id(func))] = any(_denial(n) or _not_found(n) for n in own_nodes(func))
        if denies:
            vals = [(a, self.taint(a)) for a in c.args]
            if any(t <= {CALLER} for _, t in vals if t):
                for a, t in vals:
                    if isinstance(a, ast.Name) and UNTRUSTED in t:
                        self.vars[a.id] = frozenset({CALLER})
        for v in env.values():
            if isinstance(v, Query):
                self.pending.pop(v.key, None)
        res = self.an.analyze(mod, func, env, cls, self.depth + 1)
        qual = f"{mod.name}:{func.name}"
        for acc in res.accesses:
            self.accesses.append(Access(acc.query, acc.func, (qual, *acc.chain)))
            self.recorded.add(acc.query.key)
        self.checks |= res.checks
        model = next((a[6:] for a in self_value if a.startswith("model:")), None) if isinstance(
            self_value, frozenset) else None
        if model and c.keywords and not any(model in a.query.models for a in res.accesses):
            made = self.model_method(model, func.name, c)
            if made is not None:
                return frozenset({f"access:{made.key}"})
        if isinstance(res.ret, TupleVal):
            if c is self.tuple_call:
                return res.ret
            out = frozenset()
            for x in res.ret:  # not unpacked: the statement is executed by whoever gets it
                if isinstance(x, Query):
                    self.record(x)
                    x = frozenset({f"access:{x.key}"})
                out |= x
            return out or frozenset({OTHER})
        return res.ret if res.ret else frozenset({OTHER})

    # -- queries --------------------------------------------------------------------------
    def query_method(self, q: Query, meth: str, c: ast.Call):
        an, mod = self.an, self.mod
        if meth in ("where", "filter", "having"):
            conds = []
            for a in c.args:
                conds += self.conds(a)
            return q.add(conds=conds)
        if meth == "filter_by":
            target = (q.joined or q.models or ("",))[-1]
            conds = [Cond(target, k.arg, self.taint(k.value), c.lineno, _last_name(k.value)) for k in c.keywords if k.arg]
            for k in c.keywords:
                v = self.eval(k.value) if k.arg is None else None
                if isinstance(v, CondSet):  # filter_by(**filters)
                    conds += [Cond(target, x.column, x.taint, x.line, x.via) for x in v.conds]
            return q.add(conds=conds)
        if meth in ("join", "outerjoin", "join_from", "select_from"):
            joined = []
            for a in c.args:
                ref = an.column_ref(mod, a, self.vars)
                if ref and an.s.relationship_table(*ref):
                    joined.append(an.s.relationship_table(*ref))
                elif (t := an.model_table(mod, a, self.vars)) is not None:
                    joined.append(t)
            conds = [x for a in c.args[1:] for x in self.conds(a)]
            if meth == "select_from" and not q.models:
                return q.add(models=tuple(joined))
            return q.add(joined=joined, conds=conds)
        if meth == "get" and q.kind == "query" and c.args:
            q = q.add(id_taint=self.taint(c.args[0]))
            self.record(q)
            return frozenset({f"access:{q.key}"})
        if meth == "bindparams":
            return q.add(conds=tuple(self.text_bound(q, {k.arg: self.taint(k.value) for k in c.keywords if k.arg})))
        if meth in QUERY_TERMINALS and q.kind == "query":
            self.record(q)
            return frozenset({f"access:{q.key}"})
        for a in [*c.args, *[k.value for k in c.keywords]]:
            self.eval(a)
        return q

    def conds(self, e) -> list[Cond]:
        an, mod = self.an, self.mod
        if isinstance(e, ast.BoolOp) or (isinstance(e, ast.Call) and dotted(e.func).rsplit(".", 1)[-1] in ("and_", "or_")):
            parts = e.values if isinstance(e, ast.BoolOp) else e.args
            is_or = isinstance(getattr(e, "op", None), ast.Or) or dotted(getattr(e, "func", e)).endswith("or_")
            lists = [self.conds(p) for p in parts]
            if not is_or:
                return [c for lst in lists for c in lst]
            keys = set.intersection(*[{(c.table, c.column) for c in lst} for lst in lists]) if lists else set()
            return [c for lst in lists for c in lst if (c.table, c.column) in keys]
        if isinstance(e, ast.Starred):  # where(*conds)
            v = self.eval(e.value)
            return list(v.conds) if isinstance(v, CondSet) else []
        if isinstance(e, ast.Compare) and len(e.comparators) == 1 and isinstance(e.ops[0], (ast.Eq, ast.In, ast.Is)):
            left, right = e.left, e.comparators[0]
            for a, b in ((left, right), (right, left)):
                ref = an.column_ref(mod, a, self.vars)
                if ref and not an.column_ref(mod, b, self.vars):
                    return [Cond(ref[0], ref[1], self.taint(b), e.lineno, _last_name(b))]
            ra, rb = an.column_ref(mod, left, self.vars), an.column_ref(mod, right, self.vars)
            if ra and rb and ra[0] != rb[0]:  # a join condition: A.org_id == B.org_id (both directions)
                return [Cond(ra[0], ra[1], frozenset({f"{COLUMN}{rb[0]}.{rb[1]}"}), e.lineno),
                        Cond(rb[0], rb[1], frozenset({f"{COLUMN}{ra[0]}.{ra[1]}"}), e.lineno)]
            return []
        if isinstance(e, ast.Call) and isinstance(e.func, ast.Attribute) and e.func.attr in ("in_", "is_", "__eq__", "any_"):
            ref = an.column_ref(mod, e.func.value, self.vars)
            if ref and e.args:
                v = self.eval(e.args[0])
                if isinstance(v, Query):
                    self.pending.pop(v.key, None)
                    via = self.subquery_scope(v)
                    return [Cond(ref[0], "<org-via-subquery>", via, e.lineno)] if via else []
                return [Cond(ref[0], ref[1], v, e.lineno, _last_name(e.args[0]))]
        if isinstance(e, ast.Call):  # a helper returning a condition: tenant_filter(Model, org_id)
            v = self.eval(e)
            return list(v.conds) if isinstance(v, Query) else []
        self.eval(e)
        return []

    def subquery_scope(self, q: Query) -> frozenset:
        for t in q.models:
            org = self.an.s.org_col(t)
            for c in q.conds:
                if c.table == t and c.column in (org, "<org-via-subquery>"):
                    return c.taint
        for t in q.models:  # select(Member.org_id).where(Member.user_id == user.id): the caller's memberships
            if self.an.s.org_col(t) and any(c.table == t and c.taint and c.taint <= {CALLER} and IDENTITY_ATTR.search(
                    c.column) and c.column not in self.an.s.tables[t].pk for c in q.conds):
                return frozenset({CALLER})
        return frozenset()

    def text_query(self, sql: str, c: ast.Call) -> Query:
        tables = [t for t in self.an.s.tables if re.search(rf"\b(from|join|update|into)\s+\"?{re.escape(t)}\b", sql, re.IGNORECASE)]
        q = Query("text", tuple(tables), file=self.mod.path, line=c.lineno, col=c.col_offset, sql=sql)
        return q

    def text_bound(self, q: Query, values: dict) -> list[Cond]:
        out = []
        for t in q.models:
            org = self.an.s.org_col(t)
            if not org:
                continue
            m = re.search(rf"\b(?:\w+\.)?{re.escape(org)}\s*(?:=|in|=\s*any)\s*\(?\s*:(\w+)", q.sql, re.IGNORECASE)
            if m:
                out.append(Cond(t, org, values.get(m.group(1), frozenset({OTHER})), q.line))
        return out

    def text_params(self, q: Query, arg) -> Query:
        if isinstance(arg, ast.Dict):
            vals = {literal(k): self.taint(v) for k, v in zip(arg.keys, arg.values) if isinstance(literal(k), str)}
            return q.add(conds=tuple(self.text_bound(q, vals)))
        return q

    def own_row_written(self, c: ast.Call, how: str) -> None:
        """``user.email = ...; session.add(user)`` where ``user`` is the authenticated principal:
        a write of the caller's own row (its primary key is the caller's identity). The table is
        that of the variable's annotation, else the app's only table holding a password."""
        a = c.args[0]
        t = self.taint(a)
        if not t or not t <= {CALLER} or not isinstance(a, ast.Name):
            return
        an = self.an
        table = None
        ann = next((x.annotation for x in [*self.func.args.posonlyargs, *self.func.args.args, *self.func.args.kwonlyargs]
                    if x.arg == a.id and x.annotation is not None), None)
        for n in walk(ann) if ann is not None else ():
            if isinstance(n, (ast.Name, ast.Attribute, ast.Constant)):
                sym = an.p.resolve(self.mod, _unquote(n))
                if sym is not None and sym.kind == "class" and sym.qualname in an.model_tables:
                    table = an.model_tables[sym.qualname]
                    break
        if table is None:
            ident = [n for n, tb in an.s.tables.items() if any(PASSWORD_COLUMN.search(col) for col in tb.columns)]
            table = ident[0] if len(ident) == 1 else None
        if table is None or table not in an.s.tables or not an.s.tables[table].pk:
            return
        pk = sorted(an.s.tables[table].pk)[0]
        self.record(Query("delete" if how == "delete" else "update", (table,),
                          conds=(Cond(table, pk, frozenset({CALLER}), c.lineno, "id"),),
                          file=self.mod.path, line=c.lineno, col=c.col_offset))

    def record(self, q: Query) -> None:
        self.pending.pop(q.key, None)
        if q.kind == "exists":  # exists().where(Model.col == v) executed: a read of the tables it names
            q = Query("select", tuple(dict.fromkeys(c.table for c in q.conds if c.table)), q.joined, q.conds,
                      file=q.file, line=q.line, col=q.col)
        if q.key in self.recorded and q.kind != "text":
            # the same root executed again with more conditions: keep the richer one
            for i, a in enumerate(self.accesses):
                if a.query.key == q.key and a.func == self.qual and len(q.conds) > len(a.query.conds):
                    self.accesses[i] = Access(q, self.qual)
            return
        self.recorded.add(q.key)
        self.accesses.append(Access(q, self.qual))


def _falsy_test(test, unset) -> bool | None:
    """True when ``test`` is false for a parameter left at a falsy default (``if actor:``,
    ``if actor is not None:``), False when it is then true (``if not actor:``), None otherwise."""
    if not unset:
        return None
    if isinstance(test, ast.Name) and test.id in unset:
        return True
    if isinstance(test, ast.UnaryOp) and isinstance(test.op, ast.Not) and isinstance(test.operand, ast.Name) \
            and test.operand.id in unset:
        return False
    if isinstance(test, ast.Compare) and isinstance(test.left, ast.Name) and test.left.id in unset and len(test.ops) == 1 \
            and isinstance(test.comparators[0], ast.Constant) and test.comparators[0].value is None:
        return isinstance(test.ops[0], ast.IsNot)
    return None


def _own_instance(v) -> str | None:
    """The class of the object a value is (``instance:<class>``): a built object's own, else the first."""
    if isinstance(v, CondSet) and v.own:
        return v.own
    return next((a for a in sorted(v) if a.startswith("instance:")), None)


def _abstract(func) -> bool:
    """``@abstractmethod``, or a body that only documents or refuses (``...``, ``pass``,
    ``raise NotImplementedError``)."""
    if any(dotted(d).rsplit(".", 1)[-1] == "abstractmethod" for d in func.decorator_list):
        return True
    body = [s for s in func.body if not (isinstance(s, ast.Expr) and isinstance(s.value, ast.Constant))]
    return not body or all(isinstance(s, ast.Pass) or isinstance(s, ast.Expr) and isinstance(s.value, ast.Constant)
                           or isinstance(s, ast.Raise) and "NotImplemented" in dotted(
        s.exc.func if isinstance(s.exc, ast.Call) else s.exc) for s in body)


def _unquote(expr):
    """``"Cls"`` (a string annotation) as a Name."""
    if isinstance(expr, ast.Constant) and isinstance(expr.value, str) and expr.value.isidentifier():
        return ast.copy_location(ast.Name(id=expr.value, ctx=ast.Load()), expr)
    return expr


def _looks_cond(e) -> bool:
    """An element of a filter list: ``Model.col == v``, ``Model.col.in_(...)``, ``and_(...)``."""
    if isinstance(e, ast.Compare):
        return any(isinstance(s, ast.Attribute) for s in (e.left, *e.comparators))
    if isinstance(e, ast.Call):
        return dotted(e.func).rsplit(".", 1)[-1] in ("in_", "is_", "and_", "or_", "any_", "between", "like", "ilike")
    return isinstance(e, ast.BoolOp)


def _last_name(e) -> str:
    if isinstance(e, (ast.ListComp, ast.SetComp, ast.GeneratorExp)):  # [r.id for r in rows]
        e = e.elt
    d = dotted(e) if isinstance(e, (ast.Name, ast.Attribute)) else ""
    return d.rsplit(".", 1)[-1]


def _refusal(node) -> bool:
    """A raise refusing the request: 401/403 (``_denial``), or any exception given such a status
    or 404 among its arguments (``raise ProxyError("...", status.HTTP_403_FORBIDDEN)``)."""
    if _denial(node) or _not_found(node):
        return True
    if isinstance(node, ast.Raise) and isinstance(node.exc, ast.Call):
        vals = [*node.exc.args, *(k.value for k in node.exc.keywords)]
        return any(literal(a) in (401, 403, 404) or re.search(r"HTTP_40[134]", dotted(a)) for a in vals
                   if isinstance(a, (ast.Constant, ast.Attribute, ast.Name)))
    return False


def _not_found(node) -> bool:
    return isinstance(node, ast.Raise) and isinstance(node.exc, ast.Call) and any(
        literal(a) == 404 or "404" in dotted(a) for a in [*node.exc.args[:1], *[k.value for k in node.exc.keywords]])


# ---------------------------------------------------------------------------------------
