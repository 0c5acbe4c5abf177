"""The analysis store's key: what the store was built from, auditlib's own code included."""
from __future__ import annotations

from pathlib import Path

from auditlib import analysis
from auditlib.target.context import AuditContext

DEMO = Path(__file__).resolve().parent.parent / "examples" / "bookly"


def test_a_store_built_by_other_auditlib_code_is_not_reused(tmp_path, monkeypatch):
    """The version string stays 0.1.0 across edits; a store pickled by older code (a Layout
    without a field the new code reads) failed every notebook with an AttributeError."""
    ctx = AuditContext.open(DEMO, tmp_path)
    now = analysis.key_of(ctx)
    assert now == analysis.key_of(AuditContext.open(DEMO, tmp_path / "again"))  # stable
    monkeypatch.setattr(analysis, "_CODE_HASH", ["other-code"])
    assert analysis.key_of(AuditContext.open(DEMO, tmp_path / "other")) != now


def test_the_verdict_chart_of_many_routers_stays_readable():
    """Past MAX_ROUTERS_CHARTED routers the chart keeps the busiest ones and one bar for the
    rest (uncapped, a generated 2,000-router tree drew an 800-inch chart for 92 s)."""
    import matplotlib

    matplotlib.use("Agg")
    import pandas as pd

    from auditlib import workbook

    rows = [{"router": f"r{i:03}", "verdict": "scoped (org)"} for i in range(100) for _ in range(1 + (i < 5))]
    fig = workbook.plot_verdicts(pd.DataFrame(rows))
    labels = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    assert len(labels) == workbook.MAX_ROUTERS_CHARTED
    assert "(61 more routers)" in labels and {"r000", "r004"} <= set(labels)
    assert fig.get_size_inches()[1] <= 0.4 * workbook.MAX_ROUTERS_CHARTED + 1
