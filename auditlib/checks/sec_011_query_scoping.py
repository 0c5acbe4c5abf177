"""SEC-011: tenant isolation defects, one finding per defect (the query site)."""
from __future__ import annotations

from ..findings import Severity
from ..facts.orm_schema import cap_inferred, schema
from ..tenancy.scoping import BAD, endpoint_verdicts
from . import check

MAX_CHAINS = 4


@check("SEC-011", "security", "Queries without tenant scoping")
def query_scoping(ctx):
    """Every data access on a tenant table (``select`` / ``update`` / ``delete`` /
    ``session.get`` / ``session.query`` / ``text()`` SQL / ``exists()`` / a model built with
    an org from the request, or a model class method given column keywords) reached from a
    route, in the handler, its dependencies (``Depends(get_x_or_404)``) or any function,
    method, repository object (typed by annotations, ``__init__`` parameters, a
    dependency's declared return class; an abstract method runs every project
    implementation) or nested function it calls across modules, whose conditions never
    constrain the org column to the caller's org (directly, through a joined table, a
    subquery, filters built as lists, mappings or ``**conditions``, a join to a membership
    table restricted to the caller), with no org comparison after the fetch, no
    authorization call given the caller and the row (``authorize(user, Policy.get(row))``,
    also for child tables without an org column), no membership check refusing the caller
    for the org named in the path, no owner scoping (a condition or check against the
    caller's own id), no capability (a signed token, a signature-verified webhook, an
    unguessable token column) and no session-level mechanism (row-level security set per
    request, a ``with_loader_criteria`` global filter). A query keyed only by an id the code
    holds (a row it processes, a search service's result), never by one the request sent,
    is judged with the endpoint's other accesses. Analysis and verdict classes in
    :mod:`auditlib.tenancy.scoping`.

    One finding per defect: the query site, with every route reaching it in ``routes``
    and the call chains in the message; a query that only reuses the id of a row an
    unscoped query fetched is the same defect. SEC-013 gives the per-endpoint table and
    never repeats these.

    Why: one unscoped query leaks or modifies another organisation's rows. Severity:
    BLOCKER at the query line when an authenticated tenant route reaches it; WARNING
    when only unauthenticated routes reach it (confirm the lookup key is an unguessable
    token), when the org value's origin could not be decided, or when it is a read whose
    rows reach no response (a global existence / uniqueness check, ids used internally). Not flagged: queries
    on non-tenant tables, code no route reaches (jobs, scripts), routes of a
    platform-operator credential or of an authorization policy admitting only a
    platform-wide role (``return actor.is_owner``, a role that elsewhere bypasses the
    membership check) (cross-tenant by design, see SEC-012), a login's lookup of its own
    user (identity plumbing). When tenancy is only inferred from a
    table's name (no table has the org column), the queries are one WARNING to verify,
    listing every site: whether they leak depends on a tenancy model the audit could not
    confirm.
    """
    chk = query_scoping.check
    found = list(_findings(ctx, chk))
    s = schema(ctx)
    if s.tenancy_inferred and len(found) > 1:
        yield _inferred_summary(ctx, chk, s, found)
    else:
        yield from found


def _inferred_summary(ctx, chk, s, found):
    """Tenancy only guessed from a table's name: whether these queries leak depends on a
    tenancy model the audit could not confirm, so they are one finding to verify."""
    first = found[0]
    sites = [f"{f.locations[0].file}:{f.locations[0].line} ({f.title})" for f in found]
    f = chk.finding(
        ctx, Severity.WARNING, f"{len(found)} queries not scoped to `{s.org_table}`, whose role as the tenant is inferred",
        f"No table has the `{s.org_column}` column; `{s.org_table}` was recognised as the organisation table by its name "
        f"only. If it is the tenant boundary, these queries are not scoped to the caller's: " + "; ".join(sites[:8])
        + (f"; and {len(sites) - 8} more" if len(sites) > 8 else "") + ". If it is a product feature (user pools, "
        "a catalogue) administered by the platform, they are fine.",
        "Confirm the tenancy model: set [tool.auditlib] org_column / org_table to make each query a finding of its "
        "own (a BLOCKER where a tenant route reaches it), or name another org column.",
        first.locations[0].file, first.locations[0].line,
        routes=[r for x in found for r in x.routes], tables=sorted({t for x in found for t in x.tables}),
        key="inferred-tenancy")
    f.locations += [loc for x in found[1:] for loc in x.locations[:1]]
    return f


def _findings(ctx, chk):
    seen: dict[tuple, list] = {}
    for v in endpoint_verdicts(ctx):
        if v.platform:
            continue
        for a in v.accesses:
            if a.status in BAD and not a.derived:
                seen.setdefault((a.access.query.key, a.table), []).append((a, v))
    for (_key, table), items in seen.items():
        a = items[0][0]
        q = a.access.query
        authed = [v for _, v in items if v.route.auth != "none"]
        routes = [d for _, v in dict((id(v), (x, v)) for x, v in items).values() for d in v.route.as_dicts()]
        severe = authed and any(x.status != "unknown" for x, v in items if v.route.auth != "none")
        internal = all(v.internal(x) for x, v in items)
        sev, caveat = cap_inferred(ctx, Severity.BLOCKER if severe and not internal else Severity.WARNING)
        if internal and severe:
            caveat = (" Its rows do not reach any of these routes' responses (an existence or uniqueness check, "
                      "ids used internally): confirm that nothing about other organisations' rows is revealed, "
                      "e.g. by an error message." + caveat)
        what = {"id-substitution": "loaded by a request-supplied id without an org check",
                "unknown": "org constraint of undecidable origin"}.get(a.status, "not scoped to the caller's org")
        chains = list(dict.fromkeys(" -> ".join(x.access.chain) for x, _ in items))
        shown = "; ".join(chains[:MAX_CHAINS]) + (f"; and {len(chains) - MAX_CHAINS} more" if len(chains) > MAX_CHAINS else "")
        n = len(routes)
        yield chk.finding(
            ctx, sev, f"{q.kind} on tenant table `{table}` {what}",
            f"{a.reason}. Reached from {n} route{'s' if n != 1 else ''} via {shown}"
            + ("" if authed else "; only unauthenticated routes reach it") + "." + caveat,
            f"Constrain the query to the caller's org (`.where({table.title().rstrip('s')}.{ctx.config.get('org_column', 'org_id')} "
            "== current_user.org_id)` or through a join to a scoped table), taking the org from the "
            "authenticated identity, never from the request; add a test where a user of another org gets 404.",
            q.file, q.line, routes=routes, tables=[table], key=f"{a.access.func}:{table}")
