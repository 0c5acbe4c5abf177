"""Tables and plots of the database notebook (``notebooks/10_database.ipynb``)."""
from __future__ import annotations

import pandas as pd

from ..facts.alembic_graph import RevisionGraph
from ..facts.dbschema import supporting_index


def stage_summary(stage) -> pd.DataFrame:
    rows = [{"what": "status", "value": stage.status}, {"what": "reason", "value": stage.reason or ""},
            {"what": "revisions", "value": len(stage.graph.revisions) if stage.graph else 0},
            {"what": "heads", "value": ", ".join(h.revision for h in stage.graph.heads) if stage.graph else ""}]
    return pd.DataFrame(rows)


def index_coverage_frame(stage) -> pd.DataFrame:
    """One row per foreign key: is there an index led by its columns?"""
    if not stage.ok:
        return pd.DataFrame(columns=["table", "columns", "references", "index"])
    s = stage.schema
    rows = [{"table": fk.table, "columns": ", ".join(fk.columns), "references": fk.ref_table,
             "index": (ix.name if (ix := supporting_index(s, fk.table, fk.columns)) else "MISSING")}
            for fk in s.foreign_keys]
    return pd.DataFrame(rows, columns=["table", "columns", "references", "index"])


def indexes_frame(stage) -> pd.DataFrame:
    if not stage.ok:
        return pd.DataFrame()
    return pd.DataFrame([{"table": i.table, "index": i.name, "columns": ", ".join(map(str, i.columns)),
                          "unique": i.unique, "nulls_not_distinct": i.nulls_not_distinct,
                          "partial": i.predicate or ""} for i in stage.schema.indexes])


def plot_revision_graph(graph: RevisionGraph):
    """The revision DAG, base at the left, heads highlighted (None without revisions)."""
    import matplotlib.pyplot as plt

    order = graph.order()
    if not order:
        return None
    depth: dict[str, int] = {}
    for r in order:
        depth[r.revision] = 1 + max((depth.get(d, -1) for d in r.down_revisions), default=-1)
    lanes: dict[int, int] = {}
    pos = {}
    for r in order:
        d = depth[r.revision]
        pos[r.revision] = (d, lanes.get(d, 0))
        lanes[d] = lanes.get(d, 0) + 1
    heads = {h.revision for h in graph.heads}
    width = max(6.0, 0.5 * (max(depth.values()) + 1))
    fig, ax = plt.subplots(figsize=(min(width, 18), 1.2 + 0.6 * max(lanes.values())))
    for r in order:
        for d in r.down_revisions:
            if d in pos:
                ax.annotate("", xy=pos[r.revision], xytext=pos[d],
                            arrowprops={"arrowstyle": "->", "color": "#888"})
    for rid, (x, y) in pos.items():
        ax.scatter([x], [y], s=160, color="#c0392b" if rid in heads else "#2980b9", zorder=3)
        ax.annotate(rid[:12], (x, y), textcoords="offset points", xytext=(0, 9), ha="center", fontsize=7)
    ax.set_title(f"Alembic revisions ({len(order)}); heads in red: {', '.join(sorted(heads))}")
    ax.set_axis_off()
    fig.tight_layout()
    return fig


def stage_status(stage) -> str:
    """The database stage's line in the report (``stages["db"]``), recorded by the notebook.

    "ran" only when the target's migrations reached the head and the schema was read;
    otherwise "failed: <reason>" (with the Alembic steps that did finish). An application
    that imports no SQL database library has nothing to migrate: "ran: not applicable (...)".
    """
    if stage.ok:
        heads = ", ".join(h.revision for h in stage.graph.heads) if stage.graph else ""
        n = len(stage.graph.revisions) if stage.graph else 0
        return (f"ran: {n} revision{'s' if n != 1 else ''} migrated" + (f" to head {heads}" if heads else "")
                + f", schema read ({len(stage.schema.tables)} tables)")
    if not stage.sql_libraries:
        return "ran: not applicable (the application imports no SQL database library)"
    reason = " ".join((stage.reason or f"stage status {stage.status}").split())
    done = sorted(" ".join(["alembic", *run.args]) for run in stage.runs.values() if run.ok)
    return f"failed: {reason}" + (f" (finished: {', '.join(done)})" if done else "")
