"""Tenant isolation, statically, part 3: the verdict of every route. Each handler is
analysed under its parameters' origins (:mod:`.accesses`), each access it reaches is
judged (:mod:`.rules`), and the endpoint gets the worst verdict with its evidence (the
query, the table, the call chain): scoped (org), scoped (owner), capability token, signed
webhook, platform (cross-tenant by design, behind a platform-operator credential), no
tenant data, unscoped, id-substitution, test-only bypass, unknown. Also the auth paths
(dependencies and middlewares identifying the caller) and whether they carry the org.

Public API: :func:`endpoint_verdicts`, :func:`scoping_frame`, :func:`auth_paths`,
:func:`global_mechanisms`, :func:`plot_verdicts_by_router`, :func:`analyzer`.
"""
from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field

from ..facts.orm_schema import Schema, schema
from ..code.pyast import dotted, literal, source
from ..code.pymodules import own_nodes, project
from ..facts.routes import Route, _orgish, builder, route_inventory
from .accesses import (BYPASS, CALLER, CONST, OTHER, PLATFORM_POLICY, SIGNED, TOKEN, UNTRUSTED, Access,  # noqa: F401
                       Analyzer, Query, Result)
from .rules import (BAD, ORDER, SERVER_KEY, SEVERE, VERDICTS, _QUIET, _fold_derived, _judge, _judge_orgless, _tenant_parents,  # noqa: F401
                    _tokens_generated, global_mechanisms)

@dataclass
class AccessVerdict:
    access: Access
    table: str
    status: str  # a verdict of VERDICTS, or "identity" (login / session plumbing)
    reason: str
    write: bool = False
    derived: str = ""  # "file:line" of the unscoped fetch whose row id this access reuses (same defect)
    source: str = ""  # key of the access whose (validated or not) row id this access reuses


@dataclass
class EndpointVerdict:
    route: Route
    verdict: str  # one of VERDICTS
    reason: str
    evidence: str
    accesses: list = field(default_factory=list)  # AccessVerdict
    platform: bool = False
    checks: set = field(default_factory=set)  # (access key, attribute) compared to the caller's after the fetch
    returned: frozenset = frozenset()  # keys of the accesses whose rows reach the handler's return value

    def internal(self, a) -> bool:
        """A read whose rows never reach the response (an existence / uniqueness check, ids to exclude)."""
        key = a.access.query.key
        return a.access.query.kind in ("select", "get", "query", "text") and key not in self.returned and (
            key, "<reference>") not in self.checks and (key, "<written>") not in self.checks and not any(
            x.source == key for x in self.accesses)


def endpoint_verdicts(ctx) -> list[EndpointVerdict]:
    """Every route with its tenant-scoping verdict, reason, evidence and data accesses."""
    key = ("verdicts", str(ctx.root), id(project(ctx)), ctx.config.get("org_column", "org_id"))
    if key in _MEMO:
        return _MEMO[key]
    an = analyzer(ctx)
    s = an.s
    mech = global_mechanisms(ctx)
    tokens = _tokens_generated(ctx)
    platform_deps = {a.name for a in auth_paths(ctx) if a.platform}
    out = []
    for r in route_inventory(ctx):
        res = an.analyze(r.module, r.node, an.handler_env(r))
        b = builder(ctx)
        for d in r.dependencies:  # router / app level: ``APIRouter(dependencies=[Depends(ProxyAuth(...))])``
            if d.level != "param" and d.authenticates:
                an.auth_checks_info(_dep_info(b, d.name), r.path_params)
        dep_accesses = [Access(a.query, a.func, (dep, *a.chain)) for dep, dr in an.dep_results for a in dr.accesses]
        checks = set(res.checks).union(*(dr.checks for _, dr in an.dep_results))
        res = Result(dep_accesses + list(res.accesses), res.ret, checks)
        avs = []
        for acc in res.accesses:
            chain = (r.handler, *acc.chain)
            acc = Access(acc.query, acc.func, chain)
            tables = list(acc.query.models)
            if not any(s.org_col(t) or _tenant_parents(s, t) for t in tables):
                # rows of the org table (or a global one) selected through a tenant table joined to them:
                # ``select(Workspace).join(WorkspaceUser).where(WorkspaceUser.user_id == user.id)``
                tables += [t for t in acc.query.joined if s.org_col(t) and t not in tables]
            for t in tables:
                if not s.org_col(t):
                    judged = _judge_orgless(s, acc, t, res.checks, mech, r)
                    if judged:
                        avs.append(AccessVerdict(acc, t, *judged, acc.query.kind in ("update", "delete", "insert")))
                    continue
                status, reason = _judge(s, acc, t, res.checks, mech, tokens)
                if status == "org-from-request":
                    status = "id-substitution" if acc.query.kind != "insert" and r.path_params and any(
                        a.startswith("path:") for c in acc.query.conds for a in c.taint) else "unscoped"
                avs.append(AccessVerdict(acc, t, status, reason, acc.query.kind in ("update", "delete", "insert")))
        _fold_derived(s, avs)
        auth_names = {d.name for d in r.dependencies if d.authenticates} | {
            c for d in r.dependencies if d.authenticates for c in d.chain} | {
            m.name for m in r.middlewares if m.enforces_auth}
        platform = bool(auth_names & platform_deps) and not (auth_names - platform_deps - _non_identifying(ctx, auth_names))
        platform = platform or ("", PLATFORM_POLICY) in res.checks
        counted = [a for a in avs if a.status not in _QUIET and a.status != SERVER_KEY]
        loose = [a for a in avs if a.status == SERVER_KEY]
        if not counted and loose:
            verdict, reason = "unknown", "; ".join(dict.fromkeys(a.reason for a in loose))
            evidence = " -> ".join(loose[0].access.chain) + f" ({loose[0].access.query.file}:{loose[0].access.query.line})"
        elif not counted:
            verdict, reason, evidence = "no tenant data", "no query on a tenant table is reached", ""
            if avs:
                reason = "identity plumbing only: " + "; ".join(dict.fromkeys(a.reason for a in avs))
        else:
            worst = min(counted, key=lambda a: ORDER.index(a.status))
            verdict = worst.status
            bad = [a for a in counted if a.status == verdict]
            reason = "; ".join(dict.fromkeys(a.reason for a in bad))
            evidence = " -> ".join(bad[0].access.chain) + f" ({bad[0].access.query.file}:{bad[0].access.query.line})"
            if platform and (verdict in BAD or ("", PLATFORM_POLICY) in res.checks):
                verdict, reason = "platform", "platform-operator credential (no org by design): " + reason
        out.append(EndpointVerdict(r, verdict, reason, evidence, avs, platform, set(res.checks), _returned(res.ret)))
    _MEMO[key] = out
    return out


def _returned(ret) -> frozenset:
    vals = ret if isinstance(ret, tuple) else [ret]
    out = set()
    for v in vals:
        if isinstance(v, Query):
            out.add(v.key)
        elif isinstance(v, frozenset):
            out |= {a[7:] for a in v if a.startswith("access:")}
    return frozenset(out)


def _non_identifying(ctx, names) -> set:
    return {n for n in names if n not in {a.name for a in auth_paths(ctx)}}


# ---------------------------------------------------------------------------------------
@dataclass
class AuthPath:
    """A dependency or middleware that identifies the caller."""
    name: str
    kind: str  # dependency | middleware
    file: str
    line: int
    carries_org: bool
    evidence: str
    platform: bool = False
    routes: list = field(default_factory=list)
    global_role: bool = False  # admits only a platform-wide role (a platform operator)
    returns_org: bool = False  # returns an org row it did not check the caller's membership of
    multi_org: bool = False  # returns a global account, member of several orgs (no org by design)


def auth_paths(ctx) -> list[AuthPath]:
    key = ("auth", str(ctx.root), id(project(ctx)))
    if key in _MEMO:
        return _MEMO[key]
    b, s, proj = builder(ctx), schema(ctx), project(ctx)
    forced = set(ctx.config.get("platform_auth", []))
    found: dict[str, AuthPath] = {}
    for r in route_inventory(ctx):
        for d in r.dependencies:
            for name in (d.name, *d.chain):
                info = _dep_info(b, name)
                if info is None or not info["auth"] or info["node"] is None:
                    continue
                sub_auth = [c for c in info["chain"] if (_dep_info(b, c) or {}).get("auth")
                            and (_dep_info(b, c) or {}).get("kind") != "scheme"]
                if sub_auth:  # a wrapper (role gate) around another auth dependency
                    continue
                ap = found.get(name)
                if ap is None:
                    carries, evidence = _carries_org(proj, s, info["module"], info["node"])
                    ap = found[name] = AuthPath(name, "dependency", info["module"].path, info["node"].lineno,
                                                carries, evidence)
                    ap.platform = not carries and (name.rsplit(":", 1)[-1] in forced or _shared_credential(
                        proj, s, info["module"], info["node"]))
                    ap.global_role = not carries and _global_role_gate(info["node"])
                    ap.returns_org = not carries and _org_in_annotation(proj, s, info["module"], info["node"].returns)
                    ap.multi_org = not carries and not ap.returns_org and _multi_org_account(
                        proj, s, info["module"], info["node"].returns)
                    ap.platform = ap.platform or ap.global_role
                if r not in ap.routes:
                    ap.routes.append(r)
        for m in r.middlewares:
            if m.enforces_auth:
                ap = found.get(m.name)
                if ap is None:
                    ap = found[m.name] = AuthPath(m.name, "middleware", m.file, m.line, m.sets_org,
                                                  "sets request.state.<org>" if m.sets_org else "")
                    modname, _, cname = m.name.partition(":")
                    mmod = proj.modules.get(modname)
                    node = mmod.defs.get(cname) if mmod else None
                    ap.platform = not m.sets_org and node is not None and (
                        cname in forced or _shared_credential(proj, s, mmod, node))
                if r not in ap.routes:
                    ap.routes.append(r)
    # a shared credential is a platform role only if what it guards is the org table itself
    for ap in found.values():
        if ap.platform and ap.name.rsplit(":", 1)[-1] not in forced and not ap.global_role:
            ap.platform = any(_touches_org_table(ctx, r, s) for r in ap.routes) or bool(ap.routes) and all(
                _reads_all_tenants(ctx, r, s) for r in ap.routes)
    out = sorted(found.values(), key=lambda a: (a.file, a.line))
    _MEMO[key] = out
    return out


def _dep_info(b, name: str):
    """The first dependency analysis named ``name`` (indexed by name as the builder's
    memo grows; entries are only ever added)."""
    by_name = b.__dict__.setdefault("_dep_by_name", {})
    seen = b.__dict__.get("_dep_seen", 0)
    if seen != len(b.dep_memo):
        for info in list(b.dep_memo.values())[seen:]:
            by_name.setdefault(info.get("name"), info)
        b._dep_seen = len(b.dep_memo)
    return by_name.get(name)


def _carries_org(proj, s: Schema, mod, func) -> tuple[bool, str]:
    org = s.org_column
    for n in own_nodes(func):
        if isinstance(n, ast.Attribute) and isinstance(n.ctx, ast.Store) and ".state" in dotted(n) and _orgish(n.attr):
            return True, f"sets {dotted(n)} (line {n.lineno})"
        if isinstance(n, ast.Return) and n.value is not None:
            v = n.value
            if isinstance(v, ast.Call) and any(k.arg and (k.arg == org or _orgish(k.arg)) for k in v.keywords):
                return True, f"returns {dotted(v.func)}(... {org}=...) (line {n.lineno})"
            if isinstance(v, ast.Dict) and any(isinstance(literal(k), str) and _orgish(literal(k)) for k in v.keys):
                return True, f"returns a mapping with the org (line {n.lineno})"
    checked = _member_checked_org(proj, s, mod, func)
    if checked:
        return True, checked
    ann = func.returns
    if ann is not None:
        sym = proj.resolve(mod, ann if not isinstance(ann, ast.Constant) else ast.Name(id=str(ann.value)))
        if sym is not None and sym.kind == "class":
            if s.by_class.get(sym.qualname) and s.org_col(s.by_class[sym.qualname]):
                return True, f"returns a {sym.short} row, which has {s.org_col(s.by_class[sym.qualname])}"
            if s.org_table and s.by_class.get(sym.qualname) == s.org_table:
                return True, f"returns the caller's {sym.short} row"
            fields = {t.target.id for t in sym.node.body if isinstance(t, ast.AnnAssign) and isinstance(t.target, ast.Name)}
            if any(f == org or _orgish(f) for f in fields):
                return True, f"returns {sym.short}, which carries the org"
    return False, ""


MEMBER_CHECK = re.compile(r"(?i)member|role|permission|access|authori[sz]|belongs")


def _org_in_annotation(proj, s: Schema, mod, ann) -> bool:
    """The annotation names the organisation model (``Tuple[UserModel, ProjectModel]``)."""
    if ann is None or not s.org_table:
        return False
    for n in ast.walk(ann):
        if isinstance(n, (ast.Name, ast.Attribute)) and not isinstance(getattr(n, "ctx", None), ast.Store):
            sym = proj.resolve(mod, n)
            if sym is not None and sym.kind == "class" and s.by_class.get(sym.qualname) == s.org_table:
                return True
    return False


def _multi_org_account(proj, s: Schema, mod, ann) -> bool:
    """The dependency returns a row of a global account table: no org column, and a tenant
    table (a membership) points to it, so one account belongs to several organisations and
    the org of a request can only come from the route (SEC-011 judges how it is resolved)."""
    if ann is None or isinstance(ann, ast.Constant) and not isinstance(ann.value, str):
        return False
    sym = proj.resolve(mod, ann if not isinstance(ann, ast.Constant) else ast.Name(id=str(ann.value)))
    table = s.by_class.get(sym.qualname) if sym is not None and sym.kind == "class" else None
    if not table or table == s.org_table or s.org_col(table):
        return False
    return any(s.org_col(n) and table in t.fks().values() and n != table for n, t in s.tables.items())


def _member_checked_org(proj, s: Schema, mod, func, depth: int = 0) -> str:
    """The dependency names the organisation from the request (a path parameter), loads it
    and rejects a caller who is not one of its members (a membership / role lookup taking
    both the caller and the org, then a ``raise``), and returns the org row: the org it
    returns is the caller's. Followed through one helper it delegates to
    (``return await get_project_member(...)``). Evidence, or ""."""
    if not _org_in_annotation(proj, s, mod, func.returns):
        return ""
    nodes = own_nodes(func)
    if depth < 2:
        for n in nodes:
            if isinstance(n, ast.Return) and n.value is not None:
                v = n.value.value if isinstance(n.value, ast.Await) else n.value
                if isinstance(v, ast.Call):
                    sym = proj.resolve(mod, v.func)
                    if sym is not None and sym.kind == "func":
                        ev = _member_checked_org(proj, s, sym.module, sym.node, depth + 1)
                        if ev:
                            return f"{ev} (in {sym.short})"
    returned = {x.id for n in nodes if isinstance(n, ast.Return) and n.value is not None
                for x in ast.walk(n.value) if isinstance(x, ast.Name)}
    if not any(isinstance(n, ast.Raise) for n in nodes):
        return ""
    for n in nodes:
        if not isinstance(n, ast.Call) or not MEMBER_CHECK.search(dotted(n.func).rsplit(".", 1)[-1]):
            continue
        names = {x.id for a in [*n.args, *(k.value for k in n.keywords)] for x in ast.walk(a) if isinstance(x, ast.Name)}
        if len(names & returned) >= 2 or (names & returned and len(names - {"session", "db"}) >= 2):
            return f"checks the caller's membership of the requested org ({dotted(n.func)}, line {n.lineno}) and rejects others"
    return ""


GLOBAL_ROLE = re.compile(r"\.(global_role|is_superuser|is_superadmin|is_platform_admin|superuser)\b")


def _global_role_gate(func) -> bool:
    """Admits only callers holding a platform-wide role (``user.global_role == ADMIN``,
    ``user.is_superuser``): a platform operator, not a member of one organisation."""
    text = source(func)
    return bool(GLOBAL_ROLE.search(text)) and any(isinstance(n, ast.Raise) for n in own_nodes(func))


def _shared_credential(proj, s: Schema, mod, func) -> bool:
    """Credentials compared to configured values (settings), no user row loaded."""
    text = source(func)
    loads_user = bool(re.search(r"\bselect\(|\.query\(|\.scalars?\(|\.execute\(|(session|db)\.get\(", text))
    compares_setting = re.search(r"compare_digest\(.*settings|[!=]=\s*settings\.|settings\.\w+\s*[!=]=", text) or re.search(
        r"(?i)headers.*[!=]=\s*f?[\"']?[^\n]*self\.\w*(password|secret|token|key)\b", text) or re.search(
        r"(?i)\.credentials\s*[!=]=\s*self\.\w*(password|secret|token|key)\b", text)  # a configured password / token
    return bool(compares_setting) and not loads_user


def _reads_all_tenants(ctx, r: Route, s: Schema) -> bool:
    """A whole-platform report (``/metrics`` behind a configured token): the route only reads
    tenant tables, and nothing from the request chooses what (no path parameter, no request
    value in any condition): it cannot be aimed at one organisation, it is an operator's view."""
    if r.path_params:
        return False
    an = analyzer(ctx)
    res = an.analyze(r.module, r.node, an.handler_env(r))
    accs = [a for a in res.accesses if any(s.org_col(t) for t in a.query.models)]
    return bool(accs) and all(a.query.kind in ("select", "query", "text") and not any(
        UNTRUSTED in c.taint for c in a.query.conds) for a in res.accesses)


def _touches_org_table(ctx, r: Route, s: Schema) -> bool:
    if not s.org_table:
        return False
    an = analyzer(ctx)
    res = an.analyze(r.module, r.node, an.handler_env(r))
    text = source(r.node)
    cls = next((q.rsplit(":", 1)[-1] for q, t in s.by_class.items() if t == s.org_table), None)
    return any(s.org_table in a.query.models for a in res.accesses) or bool(cls and re.search(rf"\b{cls}\(", text))


_MEMO: dict = {}


def analyzer(ctx) -> Analyzer:
    key = ("analyzer", str(ctx.root), id(project(ctx)), ctx.config.get("org_column", "org_id"))
    if key not in _MEMO:
        if len(_MEMO) > 40:
            _MEMO.clear()
        _MEMO[key] = Analyzer(ctx)
    return _MEMO[key]


# ---------------------------------------------------------------------------------------
def scoping_frame(ctx):
    """One row per route: method, path, auth, verdict, reason, evidence, router."""
    import pandas as pd

    rows = []
    for v in endpoint_verdicts(ctx):
        r = v.route
        rows.append({"method": "|".join(r.methods), "path": r.path,
                     "auth": r.auth + (f" ({', '.join(r.roles)})" if r.roles else ""),
                     "verdict": v.verdict, "reason": v.reason, "evidence": v.evidence,
                     "router": r.router})
    return pd.DataFrame(rows, columns=["method", "path", "auth", "verdict", "reason", "evidence", "router"])


def plot_verdicts_by_router(ctx):
    """A stacked bar chart: scoping verdicts per router."""
    return plot_verdicts(scoping_frame(ctx))


def plot_verdicts(df):
    """The chart of :func:`plot_verdicts_by_router` from a :func:`scoping_frame` (the
    notebooks pass the one the audit's analysis stored)."""
    import matplotlib.pyplot as plt
    import pandas as pd

    fig, ax = plt.subplots(figsize=(8, max(2.5, 0.4 * max(1, df["router"].nunique()) + 1)))
    if len(df):
        table = pd.crosstab(df["router"], df["verdict"])
        cols = [c for c in ORDER if c in table.columns]
        colors = {"id-substitution": "#8e44ad", "unscoped": "#c0392b", "unknown": "#e67e22",
                  "test-only bypass": "#d35400", "capability token": "#16a085", "signed webhook": "#1abc9c",
                  "scoped (owner)": "#2ecc71", "scoped (org)": "#27ae60", "no tenant data": "#95a5a6",
                  "platform": "#2980b9"}
        table[cols].plot.barh(stacked=True, ax=ax, color=[colors[c] for c in cols])
    ax.set_xlabel("routes")
    ax.set_ylabel("")
    ax.set_title("Tenant-scoping verdicts by router")
    fig.tight_layout()
    return fig
