"""The text prefilters that let checks skip files are exact.

Several checks skip a file when a word they need cannot occur in it (``smtplib`` for a
mail client, a function's name for its callers): a name the AST resolves is spelled in
the file's text, except that Python NFKC-normalises non-ASCII identifiers, so every
prefilter reads a non-ASCII file in full. Hence this test: each fixture tree is audited
as it is (prefilters on) and with a non-ASCII comment appended to every Python file
(prefilters off, same lines, same excerpts); the findings must be identical.
"""
from __future__ import annotations

import shutil
from dataclasses import asdict
from pathlib import Path

import pytest

from auditlib.checks import run_checks
from auditlib.target.context import AuditContext

FIXTURES = Path(__file__).resolve().parent / "fixtures"
REPO = FIXTURES.parent.parent
TREES = [REPO / "examples" / "bookly", FIXTURES / "tenant_app",
         *sorted(p for p in (FIXTURES / "targets").iterdir() if p.is_dir()),
         *sorted(p for p in (FIXTURES / "checks").glob("*/*") if p.is_dir())]


def _findings(root: Path, out: Path) -> list[dict]:
    ctx = AuditContext.open(root, out)
    return sorted((asdict(f) for f in run_checks(ctx, source="static")), key=repr)


@pytest.mark.parametrize("tree", TREES, ids=lambda p: str(p.relative_to(REPO)))
def test_findings_are_the_same_with_every_prefilter_off(tree, tmp_path):
    copy = tmp_path / tree.name
    shutil.copytree(tree, copy, ignore=shutil.ignore_patterns("__pycache__"))
    plain = _findings(copy, tmp_path / "out1")
    touched = 0
    for py in copy.rglob("*.py"):
        data = py.read_bytes()
        if data.isascii():
            py.write_bytes(data + (b"" if data.endswith(b"\n") or not data else b"\n") + "# é\n".encode())
            touched += 1
    assert touched, "the tree has no ASCII Python file: nothing would be compared"
    assert _findings(copy, tmp_path / "out2") == plain
