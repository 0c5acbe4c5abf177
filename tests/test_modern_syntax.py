"""Files in Python newer than the auditing interpreter are analysed, not skipped.

``syntax_modern`` and ``syntax_legacy`` are the same app, line for line, in the syntax
of Python 3.12-3.14 and of 3.10: whatever interpreter runs the audit, the modern tree
has no unparsed file and exactly the legacy tree's findings (plus the INFO that names
the newer syntax and the interpreter)."""
from __future__ import annotations

import ast
import platform
import re
from pathlib import Path

import pytest

from auditlib.checks import run_checks
from auditlib.code.modern_syntax import lower
from auditlib.target.context import AuditContext

FIX = Path(__file__).parent / "fixtures" / "targets"


def _audit(name, tmp_path):
    ctx = AuditContext.open(FIX / name, tmp_path / name)
    return ctx, run_checks(ctx, source="static")


def _keys(findings):
    return sorted((f.check, f.severity.value, f.locations[0].file if f.locations else "",
                   f.locations[0].line if f.locations else None, f.title) for f in findings)


def test_modern_tree_has_the_legacy_findings(tmp_path):
    mctx, modern = _audit("syntax_modern", tmp_path)
    _, legacy = _audit("syntax_legacy", tmp_path)
    assert [f.path for f in mctx.index.problems] == []
    info = [f for f in modern if f.check == "AUDIT-001"]
    rest = [f for f in modern if f.check != "AUDIT-001"]
    assert _keys(rest) == _keys(legacy)
    # the planted defects are found in the modern tree, at their lines
    expected = set()
    for p in (FIX / "syntax_modern").rglob("*.py"):
        for n, line in enumerate(p.read_text().splitlines(), 1):
            for cid in re.findall(r"# expect: ([A-Z]+-\d+)", line):
                expected.add((cid, p.relative_to(FIX / "syntax_modern").as_posix(), n))
    found = {(f.check, loc.file, loc.line) for f in rest for loc in f.locations}
    assert expected and expected <= found
    # one INFO names the interpreter and every rewritten file
    native = {"app/__init__.py", "app/main.py"}
    newer = sorted(p.relative_to(FIX / "syntax_modern").as_posix()
                   for p in (FIX / "syntax_modern").rglob("*.py") if not _native(p))
    if not newer:  # this interpreter reads 3.14 syntax itself: nothing was rewritten
        assert info == []
        return
    assert newer == sorted({"app/auth.py", "app/db.py", "app/models.py", "app/notes.py"} - native)
    (one,) = info
    assert one.severity.value == "INFO" and platform.python_version() in one.title
    assert sorted(loc.file for loc in one.locations) == newer


def _native(path: Path) -> bool:
    try:
        ast.parse(path.read_text())
    except SyntaxError:
        return False
    return True


CASES = {
    "type alias": ("type Pair[K, V] = tuple[K, V]\nx: Pair = (1, 2)\n", "Pair = tuple[K, V]"),
    "generic def": ("def first[T](xs: list[T]) -> T:\n    return xs[0]\n", "def first(xs: list[T]) -> T:"),
    "generic class with default": ("class Box[T = int]:\n    item: T\n", "class Box:"),
    "except without parentheses": ("try:\n    pass\nexcept KeyError, ValueError:\n    pass\n",
                                   "except (KeyError, ValueError):"),
    "nested f-string quotes": ('d = {"a": 1}\ns = f"{d["a"]} and {f"{d["a"]}"}"\n', 'f"""{d["a"]} and {f\'{d["a"]}\'}"""'),
    "backslash inside f-string braces": ('s = f"{"\\n".join(["a", "b"])}"\n', 's = r"'),
    "template string": ('name = "x"\nq = t"SELECT {name}"\n', 'q = r"SELECT  name "'),
    "multi-line template string": ('q = t"""SELECT\n  {name}"""\nz = 1\n', 'q = r"""SELECT\n   name """'),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_each_newer_construct_is_rewritten_keeping_lines(case):
    text, want = CASES[case]
    if _native_text(text):
        pytest.skip(f"Python {platform.python_version()} reads this syntax natively")
    lowered = lower(text)
    assert lowered is not None
    code, used = lowered
    assert want in code and used
    assert code.count("\n") == text.count("\n")
    tree = ast.parse(code)
    assert max(getattr(n, "end_lineno", 0) or 0 for n in ast.walk(tree)) == len(text.splitlines())


def _native_text(text: str) -> bool:
    try:
        ast.parse(text)
    except SyntaxError:
        return False
    return True


def test_really_broken_files_stay_unparsed(tmp_path):
    assert lower("def broken(:\n    pass\n") is None
    ctx = AuditContext.open(FIX / "broken_app", tmp_path / "b")
    assert any(f.error.startswith("syntax error") for f in ctx.index.problems)
