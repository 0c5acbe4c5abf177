"""SEC-012: every auth path carries or sets the caller's organisation."""
from __future__ import annotations

from ..findings import Severity
from ..facts.orm_schema import cap_inferred, schema
from ..tenancy.scoping import BYPASS, auth_paths, endpoint_verdicts
from . import check


@check("SEC-012", "security", "Org context set by every auth path")
def org_context(ctx):
    """Each dependency or middleware that identifies a caller (a ``fastapi.security``
    scheme or a 401/403 rejection; role gates wrapping another auth dependency are the
    same path) must give the request its organisation: return an identity with the org
    (a dataclass / model with ``org_id``, a model row of a tenant table, a mapping with
    the org key), or set ``request.state.<...org...>``.

    Why: without the caller's org, handlers cannot scope queries (SEC-011/SEC-013) and
    fall back to ids from the request. Severity: BLOCKER per auth path without org
    context, at its definition. Deliberately not a BLOCKER: a platform-operator
    credential (compared to configured settings, no tenant user loaded) guarding routes
    that manage the organisation table itself, which is cross-tenant by design (INFO;
    force with ``platform_auth``). Not flagged: auth paths whose routes reach no tenant
    data or whose every tenant access is already scoped to the caller's org, or get the
    org from another auth path (a middleware beside an org-carrying dependency). A
    dependency that takes the org from the request path, loads it, rejects (raises) a
    caller whose membership / role lookup on it fails and returns the org row carries
    the org (the caller's, checked). A dependency admitting only a platform-wide role
    (``user.global_role == ADMIN``, ``is_superuser``) is a platform-operator path, as is
    a configured token guarding only whole-platform reads that nothing in the request
    aims (``/metrics``). A dependency returning a global account (a row without an org
    column that a membership table links to several organisations) cannot carry one org
    by design: its routes resolve the org themselves and SEC-011 judges each of their
    queries. Skipped when the target has no tenant tables. When tenancy is only inferred
    from a table's name, the auth paths without an org are one WARNING to verify.

    Also one WARNING per debug-only org override: a branch taken under a debug / test
    flag (``if settings.debug: request.headers.get("X-Debug-Tenant")``) whose value
    becomes the org of the routes' queries, at the branch, with every route it reaches
    (verdict "test-only bypass"): harmless while the flag is off in production, a full
    cross-tenant bypass when it is not.
    """
    chk = org_context.check
    s = schema(ctx)
    if not s.tenant_tables:
        return
    found = list(_auth_path_findings(ctx, chk))
    loose = [f for f in found if f.severity is not Severity.INFO]
    if s.tenancy_inferred and len(loose) > 1:  # one question to settle, not one finding per path
        first = loose[0]
        f = chk.finding(
            ctx, Severity.WARNING, f"{len(loose)} auth paths carry no org of `{s.org_table}`, whose role as the "
            "tenant is inferred",
            f"No table has the `{s.org_column}` column; `{s.org_table}` was recognised as the organisation table by "
            "its name only. If it is the tenant boundary, these auth paths give handlers no org to scope by: "
            + "; ".join(f"{x.title.split('`')[1]} ({x.locations[0].file}:{x.locations[0].line})" for x in loose)
            + ". If it is a product feature administered by the platform, they are fine.",
            "Confirm the tenancy model: set [tool.auditlib] org_column / org_table to judge each auth path.",
            first.locations[0].file, first.locations[0].line,
            routes=[r for x in loose for r in x.routes], key="inferred-tenancy")
        f.locations += [x.locations[0] for x in loose[1:]]
        found = [x for x in found if x.severity is Severity.INFO] + [f]
    yield from found
    yield from _debug_overrides(ctx, chk)


def _auth_path_findings(ctx, chk):
    paths = auth_paths(ctx)
    with_org = {id(r) for ap in paths if ap.carries_org for r in ap.routes}
    # a route whose every tenant access is constrained to the caller's org resolved the org itself
    # (``if project_name not in <the caller's memberships>: raise``): it does not need it from the auth path
    verdicts = {id(v.route): v.verdict for v in endpoint_verdicts(ctx)}
    for ap in paths:
        short = ap.name.rsplit(":", 1)[-1]
        if ap.carries_org or ap.multi_org:
            continue
        # only where it matters: routes reaching tenant data with no other auth path giving the org
        # (an org row returned unchecked makes the routes' "scoped (org)" hollow: they need it too)
        ok = ("no tenant data",) if ap.returns_org else ("no tenant data", "scoped (org)")
        needy = [r for r in ap.routes if verdicts.get(id(r), "no tenant data") not in ok and id(r) not in with_org]
        if not needy:
            continue
        routes = [d for r in needy for d in r.as_dicts()]
        if ap.platform:
            yield chk.finding(
                ctx, Severity.INFO, f"Platform-operator auth `{short}` has no org (cross-tenant by design)",
                f"`{ap.name}` checks a configured credential and guards organisation management; it "
                f"carries no org, so its {len(needy)} route(s) act across tenants. Confirm only platform "
                "operators hold it.", "", ap.file, ap.line, routes=routes)
            continue
        sev, caveat = cap_inferred(ctx, Severity.BLOCKER)
        if ap.returns_org:
            yield chk.finding(
                ctx, sev, f"Auth path `{short}` returns an organisation without checking the caller's membership",
                f"`{ap.name}` ({ap.kind}) authenticates the caller and returns an organisation row it loads from the "
                f"request, but no membership / role lookup on that org rejects a caller who does not belong to it: "
                f"the {len(needy)} route(s) behind it scope their queries to an org any caller can name." + caveat,
                "Look up the caller's membership of the requested org in the dependency and raise 403 when there is "
                "none (or fall back to the caller's own org).", ap.file, ap.line, routes=routes)
            continue
        yield chk.finding(
            ctx, sev, f"Auth path `{short}` does not set the caller's organisation",
            f"`{ap.name}` ({ap.kind}) identifies the caller but returns no identity with an org and sets no "
            f"`request.state` org: the {len(needy)} route(s) behind it cannot scope data to the caller's "
            "tenant." + caveat,
            "Resolve the caller's org in the auth dependency (from the token / user row) and return it "
            "(e.g. `CurrentUser(id, org_id, role)`) or set `request.state.current_org_id`; use it in every query.",
            ap.file, ap.line, routes=routes)


def _debug_overrides(ctx, chk):
    found: dict[str, list] = {}
    for v in endpoint_verdicts(ctx):
        for a in v.accesses:
            for c in a.access.query.conds:
                for x in c.taint:
                    if x.startswith(BYPASS) and v.route not in found.setdefault(x[len(BYPASS):], []):
                        found[x[len(BYPASS):]].append(v.route)
    for where, routes in found.items():
        file, _, line = where.rpartition(":")
        yield chk.finding(
            ctx, Severity.WARNING, "Debug-only branch lets the request choose the organisation",
            f"Under the flag tested at {where}, the org used by the queries of {len(routes)} route(s) comes from "
            "the request (a header or parameter) instead of the caller's identity: with the flag on in "
            "production, any caller can read another organisation's data.",
            "Remove the override or restrict it to the test settings class; make production startup refuse the "
            "flag (SEC-002).", file, int(line), routes=[d for r in routes for d in r.as_dicts()])
