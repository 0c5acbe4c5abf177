"""FUNC-003: hard-coded placeholder values and local URLs in application code."""
from __future__ import annotations

import re

from ..findings import Severity
from ..code.pyast import string_constants
from . import check

PATTERNS = [
    ("placeholder domain", re.compile(r"\b(?:[\w-]+\.)*example\.(?:com|org|net)\b", re.I)),
    ("local URL", re.compile(r"\bhttps?://(?:localhost|127\.0\.0\.1|0\.0\.0\.0)\b", re.I)),
    ("placeholder value", re.compile(r"\bplaceholder\b|\bchange[-_]?me\b|\bYOUR_\w+_HERE\b", re.I)),
]


@check("FUNC-003", "functional", "Hard-coded placeholders and local URLs")
def placeholders(ctx):
    """String literals in application code (settings defaults included) that hold a
    placeholder: ``example.com`` addresses, ``placeholder``, ``CHANGEME``,
    ``YOUR_..._HERE``, or a URL to localhost / 127.0.0.1 / 0.0.0.0.

    Why: such values reach production whenever the environment does not override
    them: e-mails sent from ``noreply@example.com``, links in e-mails pointing at a
    developer's localhost. Reported as WARNING, one finding per line.
    Not flagged: docstrings, comments, tests, migrations, and other absolute URLs
    (public API endpoints are legitimately hard-coded).
    """
    chk = placeholders.check
    for src in ctx.layout.app_sources(ctx.index):
        seen = set()
        for node, value in string_constants(src):
            for label, rx in PATTERNS:
                m = rx.search(value)
                if not m:
                    continue
                line = node.lineno + value[: m.start()].count("\n") if node.end_lineno != node.lineno else node.lineno
                if line in seen:
                    break
                seen.add(line)
                yield chk.finding(
                    ctx, Severity.WARNING, f"Hard-coded {label} `{m.group(0)}`",
                    f"The literal `{m.group(0)}` is a {label}: unless every environment overrides "
                    "it, production uses it (wrong sender addresses, links to a developer machine).",
                    "Read the value from settings with no placeholder default, and make production "
                    "config validation reject placeholder values.",
                    src.path, line)
                break
