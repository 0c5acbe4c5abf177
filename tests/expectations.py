"""Expected findings read from fixture files, semgrep-style: the expectation sits on the
line it is about.

- ``expect: ID[, ID...]`` in a comment: findings of those checks on this very line;
- ``expect-next-line: ID`` on a comment line: on the next line that is neither blank nor
  a comment (Dockerfiles, YAML and env files cannot carry trailing comments safely);
- ``expect-file: ID`` anywhere in a file: a finding about the file as a whole (no line).
"""
from __future__ import annotations

import re
from pathlib import Path

SAME = re.compile(r"\bexpect:\s*([A-Z]+-\d{3}(?:\s*,\s*[A-Z]+-\d{3})*)")
FILE = re.compile(r"\bexpect-file:\s*([A-Z]+-\d{3}(?:\s*,\s*[A-Z]+-\d{3})*)")
NEXT = re.compile(r"\bexpect-next-line:\s*([A-Z]+-\d{3}(?:\s*,\s*[A-Z]+-\d{3})*)")
COMMENT = re.compile(r"^\s*(#|<!--|//)")
SKIP_DIRS = {"__pycache__", ".pytest_cache", ".git"}


def _ids(group: str) -> list[str]:
    return [x.strip() for x in group.split(",")]


def expected_findings(root: Path) -> set[tuple[str, str, int]]:
    """{(check id, file relative to root, line)} annotated under ``root``."""
    out = set()
    for path in sorted(root.rglob("*")):
        if not path.is_file() or SKIP_DIRS & set(path.parts):
            continue
        try:
            lines = path.read_bytes().decode("utf-8", errors="replace").splitlines()
        except OSError:
            continue
        rel = path.relative_to(root).as_posix()
        pending: list[str] = []
        for n, text in enumerate(lines, 1):
            if m := FILE.search(text):
                out |= {(i, rel, None) for i in _ids(m.group(1))}
                continue
            if m := NEXT.search(text):
                pending += _ids(m.group(1))
                continue
            if pending and text.strip() and not COMMENT.match(text):
                out |= {(i, rel, n) for i in pending}
                pending = []
            if m := SAME.search(text):
                out |= {(i, rel, n) for i in _ids(m.group(1))}
    return out
