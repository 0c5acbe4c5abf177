"""FUNC-002: unfinished work markers (TODO, FIXME, XXX, HACK) in application code."""
from __future__ import annotations

import re

from ..findings import Severity
from ..code.pyast import comments
from . import check

WORDS = ("TODO", "FIXME", "XXX", "HACK")
MARKER = re.compile(r"\b(" + "|".join(WORDS) + r")\b")


@check("FUNC-002", "functional", "Unfinished work in application code")
def unfinished_work(ctx):
    """``# TODO`` / ``FIXME`` / ``XXX`` / ``HACK`` comments in application code.

    Why: each marks behaviour the authors knew to be incomplete or wrong; before a
    release an auditor wants the list, with locations. FIXME, XXX and HACK admit a known
    defect or shortcut (WARNING); TODO is pending work (RECOMMENDATION).
    Not flagged: markers in tests and migrations, lower-case words, and words inside
    string literals (only real comments, found with ``tokenize``, count).
    """
    chk = unfinished_work.check
    for src in ctx.layout.app_sources(ctx.index):
        text = src.text
        if text is None or not any(w in text for w in WORDS) or not MARKER.search(text):
            continue  # no marker anywhere in the file, so none in a comment: skip tokenizing
        for line, text in comments(src):
            m = MARKER.search(text)
            if not m:
                continue
            word = m.group(1)
            sev = Severity.RECOMMENDATION if word == "TODO" else Severity.WARNING
            yield chk.finding(
                ctx, sev, f"{word} left in application code",
                f"A {word} comment marks work the authors knew to be unfinished"
                + (" or wrong" if word != "TODO" else "") + "; it ships to production as is.",
                f"Finish the work described by the {word} or track it in the issue tracker "
                "and remove the marker.",
                src.path, line)
