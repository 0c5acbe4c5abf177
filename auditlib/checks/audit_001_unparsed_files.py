"""AUDIT-001: files the audit could not read or parse."""
from __future__ import annotations

from ..findings import Severity
from . import check


@check("AUDIT-001", "audit", "Files that could not be decoded or parsed")
def unparsed_files(ctx):
    """Every indexed file that failed to decode (not UTF-8) or, for Python, to parse.

    Why: static checks cannot see inside such files, so whatever they contain was not
    verified. The audit continues without them (never fatal) and says so as a WARNING
    at the file and line where decoding or parsing stopped. Not flagged: non-Python
    files skipped for their size (bundled assets such as minified JavaScript).
    """
    chk = unparsed_files.check
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
