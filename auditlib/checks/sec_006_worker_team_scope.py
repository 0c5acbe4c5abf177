"""SEC-006: worker endpoints loading jobs/bookings without the worker's team."""
from __future__ import annotations

import re

from ..findings import Severity
from ..tenancy.scoping import CALLER, endpoint_verdicts
from . import check

DEFAULT_TABLES = ["bookings", "jobs", "job_assignments", "assignments", "visits"]
DEFAULT_COLUMNS = ["team_id", "worker_id", "assigned_worker_id", "assignee_id"]
WORKER = re.compile(r"worker", re.IGNORECASE)


def is_worker_route(route) -> bool:
    auth = " ".join(d.name for d in route.dependencies if d.authenticates)
    return bool(WORKER.search(route.path) or WORKER.search(route.router) or WORKER.search(auth))


@check("SEC-006", "security", "Worker endpoints without team scoping")
def worker_team_scope(ctx):
    """Routes of the worker portal (path, router or auth dependency named worker) that
    read jobs / bookings (``worker_job_tables``) without constraining them to the
    worker: no condition on a team / assignee column (``worker_scope_columns``: team_id,
    worker_id, assigned_worker_id, assignee_id) of the table or a joined table equal to a
    value from the worker's identity, and no comparison of the fetched row's team with
    the worker's.

    Why: org scoping is not enough inside a tenant: a worker of team A can read team B's
    jobs, customer addresses and access codes. BLOCKER at the query line. Not flagged:
    unauthenticated routes (SEC-004/SEC-005), other tables, non-worker routes.
    """
    chk = worker_team_scope.check
    tables = set(ctx.config.get("worker_job_tables", DEFAULT_TABLES))
    cols = set(ctx.config.get("worker_scope_columns", DEFAULT_COLUMNS))
    seen = {}
    for v in endpoint_verdicts(ctx):
        r = v.route
        if r.auth == "none" or not is_worker_route(r):
            continue
        by_key = {a.access.query.key: a for a in v.accesses}

        def team_scoped(a, depth=0) -> bool:
            q = a.access.query
            linked = {a.table, *q.joined}
            if any(c.table in linked and c.column in cols and c.taint and c.taint <= {CALLER} for c in q.conds):
                return True
            if any(k == q.key and attr in cols for k, attr in v.checks):  # fetched, then its team compared
                return True
            src = by_key.get(a.source)  # by the id of a row already fetched (and checked) for this worker
            return src is not None and src is not a and depth < 5 and team_scoped(src, depth + 1)

        for a in v.accesses:
            q = a.access.query
            if a.table not in tables or a.write and q.kind == "insert" or a.derived:
                continue
            if not team_scoped(a):
                seen.setdefault((q.key, a.table), []).append((a, r))
    for (_k, table), items in seen.items():
        a, r = items[0]
        q = a.access.query
        yield chk.finding(
            ctx, Severity.BLOCKER, f"Worker route loads `{table}` without the worker's team",
            f"{q.kind} on {table} at {q.file}:{q.line} (via {' -> '.join(a.access.chain)}) has no condition on "
            f"{'/'.join(sorted(cols))} from the worker's identity: a worker can see other teams' work.",
            f"Add `.where({table}.team_id == worker.team_id)` (or the assignee column), taking the team from "
            "the authenticated worker.", q.file, q.line,
            routes=[d for _, rr in items for d in rr.as_dicts()], tables=[table])
