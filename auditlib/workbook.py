"""What the notebooks call: open the audit, run an area's checks, show and record them.

Notebooks stay thin: each cell calls one of these functions and displays the result.
Findings travel between processes as JSON sidecars in ``<out>/findings/<area>.json``
(scrapbook is unmaintained and fails to import on a fresh install).
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd

from .checks import checks_for, run_checks
from .target.context import AuditContext
from .findings import AREAS, Finding, assign_fingerprints, counts, findings_frame, verdict

# Evidence is shown in full: no truncated excerpts, no elided rows.
pd.set_option("display.max_colwidth", 400)
pd.set_option("display.max_rows", None)


def open_audit(target, out_dir: str = "", db: str = "none", config: str = "",
               target_python: str = "", provision: bool = False, db_reason: str = "") -> AuditContext:
    """The audit context for a notebook's parameters.

    ``db="auto"`` (interactive use) starts a private embedded PostgreSQL owned by this
    kernel when a check first needs it; the batch runner starts one for the whole run
    and passes its URL instead.
    """
    from . import analysis

    stages = {"db_reason": db_reason} if db_reason else {}
    ctx = AuditContext.open(target, out_dir or None, config_file=config or None, db=db,
                            target_python=target_python or None, provision=provision, stages=stages)
    analysis.attach(ctx)  # the batch run's one analysis, when there is one
    return ctx


# Notebooks that own the checks of a source other than "static": one migration of the
# database serves every db check, one test run every tests check.
STAGE_NOTEBOOKS = {"db": "database", "tests": "tests", "live": "live"}


def area_findings(ctx: AuditContext, area: str) -> list[Finding]:
    """The static findings of ``area`` (failures are WARNINGs), fingerprinted: read from
    the audit's one analysis (:mod:`auditlib.analysis`), which runs every static check
    once for all the notebooks."""
    from . import analysis

    return analysis.of(ctx).area(area)


def table(ctx: AuditContext, name: str) -> pd.DataFrame:
    """A table of the audit's analysis: ``routes`` (the route inventory), ``scoping``
    (tenant verdict per endpoint), ``features`` (the feature inventory)."""
    from . import analysis

    got = analysis.of(ctx).tables.get(name)
    if isinstance(got, pd.DataFrame):
        return got
    return pd.DataFrame({"note": [got or f"no table named {name!r}"]})


def analysis_stats(ctx: AuditContext) -> dict:
    from . import analysis

    return dict(analysis.of(ctx).stats)


MAX_ROUTERS_CHARTED = 40


def plot_verdicts(scoping: pd.DataFrame):
    """A stacked bar chart of the tenant-scoping verdicts per router (from ``table(ctx, "scoping")``).

    The chart grows 0.4 inch per router: past :data:`MAX_ROUTERS_CHARTED` routers it shows
    the routers with the most routes and one bar for the others (the table above it lists
    every route). Uncapped, a generated 2,000-router tree drew an 800-inch chart for 92 s
    (an 8.8 MB image in the notebook and the report)."""
    from .tenancy.scoping import plot_verdicts as plot

    if "router" in scoping and scoping["router"].nunique() > MAX_ROUTERS_CHARTED:
        counts = scoping["router"].value_counts()  # most routes first
        keep = set(counts.index[:MAX_ROUTERS_CHARTED - 1])
        rest = f"({len(counts) - len(keep)} more routers)"
        scoping = scoping.assign(router=[r if r in keep else rest for r in scoping["router"]])
    return plot(scoping)


def stage_findings(ctx: AuditContext, source: str) -> list[Finding]:
    """Run every check of a stage (``db``, ``tests``, ``live``), whatever its area."""
    return assign_fingerprints(run_checks(ctx, source=source))


def checks_table(area: str | None = None, source: str | None = "static") -> pd.DataFrame:
    """Checks of an area (or a stage) with what each detects (their docstrings' first line)."""
    rows = [{"check": c.id, "area": c.area, "source": c.source, "title": c.title,
             "detects": c.doc.split("\n\n")[0].replace("\n", " ")} for c in checks_for(area, source=source)]
    return pd.DataFrame(rows, columns=["check", "area", "source", "title", "detects"])


def show(findings: list[Finding]) -> pd.DataFrame:
    """A findings table for display (pandas escapes the HTML of every cell)."""
    return findings_frame(findings).drop(columns=["fingerprint"])


def record(ctx: AuditContext, area: str, findings: list[Finding], **stats) -> Path:
    """Write the area's sidecar for the batch runner and the summary notebook."""
    path = ctx.out_dir / "findings" / f"{area}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    data = {"area": area, "findings": [f.to_dict() for f in findings], "stats": stats}
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=1, ensure_ascii=False), encoding="utf-8")
    tmp.replace(path)
    return path


def load_recorded(out_dir: Path) -> tuple[dict[str, list[Finding]], dict]:
    """Sidecars found in ``out_dir/findings``: ({area: findings}, merged stats)."""
    by_area, stats = {}, {}
    for p in sorted((Path(out_dir) / "findings").glob("*.json")):
        try:
            data = json.loads(p.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        by_area[data["area"]] = [Finding.from_dict(d) for d in data.get("findings", [])]
        stats.update(data.get("stats", {}))
    return by_area, stats


REVIEW_ENV = "AUDITLIB_REVIEW"  # the batch run's review file ("" with --no-suppress), for the summary


def collect_all(ctx: AuditContext) -> list[Finding]:
    """Every area's findings: recorded sidecars, running the missing areas inline
    (so the summary notebook also works on its own, interactively), less those a review
    judged (the review file at the target root, or the batch run's; ``--no-suppress``
    keeps everything): the summary's verdict is the report's."""
    from . import review

    by_area, _ = load_recorded(ctx.out_dir)
    out = []
    for area in list(AREAS):
        out += by_area[area] if area in by_area else area_findings(ctx, area)
    for source, name in STAGE_NOTEBOOKS.items():
        if name in by_area:
            out += by_area[name]
        elif source == "db":  # the other stages need explicit switches (batch run)
            out += stage_findings(ctx, source)
    found = assign_fingerprints(out)
    given = os.environ.get(REVIEW_ENV)
    if given == "":  # --no-suppress
        return found
    judgements = review.load(review.review_path(ctx.root, given or None))
    return review.apply(found, judgements, ctx.index).kept


def summary_frame(findings: list[Finding]) -> pd.DataFrame:
    """Counts per area and severity (rows: areas, columns: severities)."""
    df = findings_frame(findings)
    df["area"] = [AREAS.get(f.area, f.area) for f in findings]
    table = pd.crosstab(df["area"], df["severity"]) if len(df) else pd.DataFrame()
    for sev in ["BLOCKER", "WARNING", "RECOMMENDATION", "INFO"]:
        if sev not in table:
            table[sev] = 0
    return table[["BLOCKER", "WARNING", "RECOMMENDATION", "INFO"]]


def verdict_line(findings: list[Finding]) -> str:
    c = counts(findings)
    return (f"VERDICT: {verdict(findings).value} - {c['BLOCKER']} blocker(s), {c['WARNING']} warning(s), "
            f"{c['RECOMMENDATION']} recommendation(s), {c['INFO']} info")


def plot_summary(findings: list[Finding]):
    """A stacked bar chart of findings per area and severity."""
    import matplotlib.pyplot as plt

    table = summary_frame(findings).drop(columns=["INFO"])
    fig, ax = plt.subplots(figsize=(8, 3.5))
    if len(table):
        table.plot.barh(stacked=True, ax=ax, color=["#c0392b", "#e67e22", "#2980b9"])
    ax.set_xlabel("findings")
    ax.set_ylabel("")
    ax.set_title("Findings by area and severity")
    fig.tight_layout()
    return fig


def plot_by_check(findings: list[Finding]):
    """Horizontal bars: findings per check id, stacked by severity (None when empty)."""
    import matplotlib.pyplot as plt

    df = findings_frame([f for f in findings if f.severity.value != "INFO"])
    if df.empty:
        return None
    table = pd.crosstab(df["check"], df["severity"])
    cols = [c for c in ["BLOCKER", "WARNING", "RECOMMENDATION"] if c in table]
    colors = {"BLOCKER": "#c0392b", "WARNING": "#e67e22", "RECOMMENDATION": "#2980b9"}
    fig, ax = plt.subplots(figsize=(7, 0.45 * len(table) + 1.2))
    table[cols].plot.barh(stacked=True, ax=ax, color=[colors[c] for c in cols])
    ax.set_xlabel("findings")
    ax.set_ylabel("")
    ax.set_title("Findings by check and severity")
    fig.tight_layout()
    return fig
