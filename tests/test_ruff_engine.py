"""The Ruff engine: runs isolated from the target's config, on the index's files."""
from __future__ import annotations

from auditlib.target.context import AuditContext
from auditlib.engines.ruff import ruff_hits


def test_target_config_cannot_switch_rules_off(tmp_path):
    root = tmp_path / "t"
    (root / "app").mkdir(parents=True)
    (root / "pyproject.toml").write_text('[tool.ruff.lint]\nignore = ["S"]\n')
    (root / "app" / "run.py").write_text("import subprocess\n\n\ndef go(cmd):\n"
                                         "    subprocess.run(cmd, shell=True)\n")
    (root / "app" / "broken.py").write_text("def oops(:\n")
    ctx = AuditContext.open(root, tmp_path / "out")
    hits = ruff_hits(ctx, ("S",))
    assert [(h.code, h.file, h.line) for h in hits] == [("S602", "app/run.py", 5)]
    # second call in a fresh process-like state comes from the disk cache
    from auditlib.engines import ruff as engine

    engine._MEMO.clear()
    assert ruff_hits(ctx, ("S",)) == hits


def test_ruff_failure_is_never_a_silent_pass(tmp_path):
    import pytest

    from auditlib.engines.ruff import RuffUnavailable

    root = tmp_path / "t"
    root.mkdir()
    (root / "a.py").write_text("x = 1\n")
    ctx = AuditContext.open(root, tmp_path / "out")
    with pytest.raises(RuffUnavailable, match="exit 2"):
        ruff_hits(ctx, ("NOSUCHRULE999",))
