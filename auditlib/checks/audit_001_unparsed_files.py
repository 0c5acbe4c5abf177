"""AUDIT-001: files the audit could not read or parse."""
from __future__ import annotations

import platform

from ..findings import Location, Severity
from . import check


@check("AUDIT-001", "audit", "Files that could not be decoded or parsed")
def unparsed_files(ctx):
    """Every indexed file that failed to decode (not UTF-8) or, for Python, to parse.

    Why: static checks cannot see inside such files, so whatever they contain was not
    verified. The audit continues without them (never fatal) and says so as a WARNING
    at the file and line where decoding or parsing stopped. Not flagged: non-Python
    files skipped for their size (bundled assets such as minified JavaScript), and files
    written in Python newer than the interpreter running the audit: those are read after
    a rewrite into older syntax that keeps every line (``auditlib/code/modern_syntax.py``)
    and listed in one INFO finding that names the interpreter, so the reader knows.
    """
    chk = unparsed_files.check
    newer = [f for f in ctx.index.python_files() if f.lowered]
    if newer:
        used = sorted({c for f in newer for c in f.lowered})
        first = chk.finding(
            ctx, Severity.INFO,
            f"{len(newer)} file(s) in Python syntax newer than the auditing interpreter (Python {platform.python_version()})",
            f"These files use {', '.join(used)}, which Python {platform.python_version()} (the interpreter running "
            "this audit) does not parse. They were analysed after a rewrite into older syntax with the same "
            "meaning for a static reader, every line kept in place, so their findings point at the real lines.",
            "Nothing to fix in the target; run auditlib on the target's own Python version to read the files as they are.",
            newer[0].path, 1, key="newer-syntax")
        first.locations += [Location(f.path, 1, 1, "") for f in newer[1:]]
        yield first
    for src in ctx.index.problems:
        if not src.is_python and src.error.startswith("skipped"):
            continue  # a huge bundled asset (minified JS, data): no static check reads those
        yield chk.finding(
            ctx, Severity.WARNING, f"Not verified: {src.path} could not be read ({src.error})",
            f"not verified: {src.error}; no static check looked inside this file, so defects "
            "in it would go unreported.",
            "Fix the file (valid UTF-8, valid Python syntax for the interpreter the project "
            "targets) or exclude it in [tool.auditlib] exclude if it is not part of the app.",
            src.path, src.error_line, key=src.error)
