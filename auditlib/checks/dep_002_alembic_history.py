"""DEP-002: Alembic history (static graph) and `alembic upgrade head` on an empty database."""
from __future__ import annotations

from ..alembic_graph import read_graph
from ..findings import Severity, not_verified
from . import check


@check("DEP-002", "deployment", "Alembic revision history")
def alembic_history(ctx):
    """The revision graph read from the revision files (AST, no import): every file
    defines ``revision`` and ``down_revision``; revision ids are unique; every
    ``down_revision`` exists; there is exactly one head (else ``alembic upgrade head``
    fails with "Multiple head revisions"); no cycles. Each of those is a BLOCKER: the
    deploy's migration step fails. Several bases without branch labels are a WARNING.
    The head revision is reported as INFO. No Alembic directory at all is a WARNING
    (schema changes are not versioned, or could not be found: say which in config).
    """
    chk = alembic_history.check
    lay = ctx.layout
    if not lay.alembic_dir:
        yield not_verified(chk.id, chk.area, "Alembic history",
                           "no Alembic directory found (no alembic.ini with script_location, no "
                           "env.py beside versions/); set alembic_ini in [tool.auditlib] if it exists")
        return
    graph = read_graph(ctx.index, lay.migration_files)
    ids = graph.by_id
    for r in graph.revisions:
        if r.revision is None:
            yield chk.finding(ctx, Severity.BLOCKER, "Revision file without a literal `revision` id",
                              "Alembic cannot load a revision file whose `revision` is missing or computed.",
                              "Define `revision = \"<id>\"` at module level.", r.file, r.revision_line or 1,
                              key="no-revision")
            continue
        if not r.has_down:
            yield chk.finding(ctx, Severity.BLOCKER, f"Revision {r.revision} has no `down_revision`",
                              "Alembic needs `down_revision` (None for a base) to place the revision "
                              "in the history; the upgrade fails.",
                              "Add `down_revision = \"<parent id>\"` (or None for the first revision).",
                              r.file, r.revision_line, key="no-down")
        for d in r.down_revisions:
            if d not in ids:
                yield chk.finding(ctx, Severity.BLOCKER, f"Revision {r.revision} points to unknown revision {d}",
                                  f"`down_revision` names {d}, which no revision file defines: Alembic "
                                  "refuses to build the history.",
                                  "Point down_revision at an existing revision, or restore the missing file.",
                                  r.file, r.down_line, key=f"unknown:{d}")
    for r in graph.duplicates():
        yield chk.finding(ctx, Severity.BLOCKER, f"Duplicate revision id {r.revision}",
                          "Two revision files define the same id; Alembic keeps one arbitrarily.",
                          "Give one of them a new id (`alembic revision` generates one) and fix its children.",
                          r.file, r.revision_line, key="duplicate")
    for rid in graph.cycles():
        r = ids[rid]
        yield chk.finding(ctx, Severity.BLOCKER, f"Revision {rid} is part of a cycle",
                          "down_revision links form a loop; Alembic cannot order the history.",
                          "Break the loop so the history is a DAG.", r.file, r.down_line, key="cycle")
    heads = graph.heads
    if len(heads) > 1:
        names = ", ".join(h.revision for h in heads)
        for h in heads:
            yield chk.finding(ctx, Severity.BLOCKER, f"Multiple Alembic heads ({names})",
                              "`alembic upgrade head` fails with 'Multiple head revisions are present'; "
                              "the deploy's migration step cannot run.",
                              "Create a merge revision: `alembic merge -m 'merge heads' " + " ".join(
                                  x.revision for x in heads) + "`.", h.file, h.revision_line, key="multi-head")
    elif len(heads) == 1:
        h = heads[0]
        yield chk.finding(ctx, Severity.INFO, f"Alembic head is {h.revision}",
                          f"{len(graph.revisions)} revision(s); the single head is {h.revision}"
                          + (f" ({h.message})" if h.message else "") + ".",
                          "", h.file, h.revision_line, key="head")
    bases = graph.bases
    if len(bases) > 1 and not all(b.branch_labels for b in bases):
        for b in bases:
            yield chk.finding(ctx, Severity.WARNING, "Several base revisions",
                              "More than one revision has `down_revision = None` without branch labels: "
                              "independent histories that a single `upgrade head` may not order.",
                              "Give each base a branch label, or re-parent them onto one base.",
                              b.file, b.down_line, key="multi-base")


@check("DEP-002", "deployment", "alembic upgrade head on an empty database", source="db")
def alembic_upgrade(ctx):
    """Runs the target's own Alembic (in the target's interpreter, in a subprocess with a
    timeout) against a fresh database in the audit's PostgreSQL: ``alembic upgrade
    head``, then ``alembic current`` must equal the head, then ``upgrade head --sql``
    (offline rendering). A failed upgrade is a BLOCKER at the failing revision's file;
    the timing is reported as INFO. When the database stage cannot run (no PostgreSQL,
    no target environment, no alembic.ini) this yields a WARNING saying what was not
    verified and why.
    """
    from ..stages.migrations import upgrade_findings

    yield from upgrade_findings(ctx, alembic_upgrade.check)
