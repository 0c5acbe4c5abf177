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
