"""DEP-007 (extends the checklist): the app boots on a migrated PostgreSQL and serves."""
from __future__ import annotations

from ..findings import Location, Severity, not_verified
from . import check


@check("DEP-007", "deployment", "The app boots and serves", source="live")
def app_boots(ctx):
    """Extends the checklist's deployment section: starts the app the way production does
    (uvicorn, the target's interpreter, a database migrated with its own Alembic, an
    environment built from its env example files with throwaway secrets; see
    :mod:`auditlib.stages.live`) and, when ``[tool.auditlib.live] auth`` gives
    credentials, GETs every list and detail route.

    Why: an app whose import chain is circular passes its tests (the test configuration
    imports modules in another order) yet cannot start; a suite on SQLite never sees
    PostgreSQL-only errors. Only running it shows either.

    Severity: an app that does not start (import error, circular import, missing
    setting, a lifespan that fails, no answer within the boot timeout) is a BLOCKER at the
    last frame of the traceback inside the target, with the import chain; any 5xx answer
    of the authenticated smoke is a BLOCKER at the route's handler, with the server's log.
    A stage that could not run (no PostgreSQL, no target environment, no app found, no
    uvicorn) is a "not verified" WARNING. The boot itself (time, app, environment used) is
    INFO.

    Not flagged: with ``--base-url`` nothing is booted (INFO); without ``--live`` the stage
    did not run by choice (INFO).
    """
    from ..stages.live import app_location, live_run, route_location

    chk = app_boots.check
    res = live_run(ctx)
    where = app_location(ctx)
    if not res.requested:
        yield chk.finding(ctx, Severity.INFO, "App not booted (the live stage was not requested)",
                          "The audit did not start the app; pass --live (or --base-url URL) to probe it.",
                          "Re-run with `auditlib run --live` (with --target-python or --provision).", *where,
                          excerpt="", key="not-requested")
        return
    if res.error:
        yield not_verified(chk.id, chk.area, "the app was not booted", res.error, source="live",
                           location=Location(where[0], where[1], where[1], ""),
                           fix="Provide what is missing (PostgreSQL, --target-python/--provision, uvicorn in the "
                               "target's requirements, [tool.auditlib] live_app) and re-run with --live.")
        return
    if res.boot_failure:
        bf = res.boot_failure
        file, line = (bf.frames[-1][0], bf.frames[-1][1]) if bf.frames else where
        chain = " -> ".join(f"{f}:{n} `{code}`" for f, n, code in bf.chain) or "(no module-level frames)"
        yield chk.finding(ctx, Severity.BLOCKER, f"The app does not start: {bf.error[:160]}",
                          f"`{res.app.spec}` ({res.app.why}) fails to boot: {bf.error}\n\nImport chain: {chain}\n\n"
                          "Last frames in the target:\n" + "\n".join(f"  {f}:{n} {code}" for f, n, code in bf.frames)
                          + "\n\n" + " ".join(res.notes) + " The deployment would crash-loop whatever the tests "
                          "say (full log: logs/live.log).",
                          "Fix the error shown; for a circular import move the shared object (settings, "
                          "limiter, constants) into a module both sides import, or import inside the function.",
                          file, line, key="boot")
        return
    if res.mode == "boot":
        yield chk.finding(ctx, Severity.INFO, f"The app booted in {res.boot_seconds:.1f} s",
                          f"`{res.app.spec}` ({res.app.why}) started with uvicorn on a loopback port. "
                          + " ".join(res.notes), "", *where, key="booted")
    for err in res.smoke_errors:
        r = err["route"]
        yield chk.finding(ctx, Severity.BLOCKER, f"GET {r.path} answers {err['status']} (server error)",
                          f"An authenticated GET {err['path']} as {err['as']} against the migrated PostgreSQL "
                          f"failed with {err['status']}: a real user hits this error. Server log:\n{err['log']}",
                          "Reproduce against PostgreSQL (not SQLite), fix the query or handler, and add a test "
                          "that runs on PostgreSQL.", *route_location(ctx, res, r.path, "GET"),
                          routes=[{"method": "GET", "path": r.path}], key=f"5xx:{r.path}")
