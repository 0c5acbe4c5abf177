"""SEC-030: secrets committed to the repository (code, config, env example files)."""
from __future__ import annotations

import re

from ..findings import Severity
from ..redact import SECRET_PATTERNS, is_placeholder
from . import check

ENV_LINE = re.compile(r"^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*?)\s*$")
SECRET_KEY = re.compile(r"SECRET|PASSW(OR)?D|PWD|TOKEN|API_?KEY|PRIVATE_?KEY|CREDENTIAL", re.I)
TEST_KEY = re.compile(r"\b[sr]k_test_")
# Per pattern, a necessary condition checked once on a file's whole text: the pattern
# without its leading ``\b`` (a word boundary only narrows where it matches, and a
# ``\b``-first regex cannot use the engine's fast prefix scan: 3 ms a pattern on a 200-file
# tree against 0.1 ms); for the PEM block, which looks at two lines, its marker.
PREFILTER = {name: re.compile(r"-----BEGIN (?:[A-Z]+ )?PRIVATE KEY-----") if name == "private key block"
             else re.compile(rx.pattern[2:], rx.flags) if rx.pattern.startswith(r"\b") else rx
             for name, rx, _keep in SECRET_PATTERNS}


@check("SEC-030", "security", "Secrets committed to the repository")
def committed_secrets(ctx):
    """Provider-format secrets anywhere in the indexed tree (Stripe ``sk_live_`` /
    ``rk_live_`` / ``whsec_``, AWS ``AKIA…``, SendGrid ``SG.…``, GitHub, Slack, Google
    keys, private key blocks), and, in env example files (``.env.example``,
    ``.env.production.example``...), secret-like keys whose value is not a placeholder.

    Why: anything committed is readable by everyone with repository access, forever
    (git history). Live-format keys are BLOCKERs; Stripe test-mode keys and
    non-placeholder example values are WARNINGs. The value is never printed: excerpts
    keep the recognisable prefix only.
    Not flagged: placeholders (empty, ``change-me``, ``<...>``, ``your-...``), keys
    referenced through the environment, and too-short strings that cannot be keys.
    """
    chk = committed_secrets.check
    env_examples = set(ctx.layout.env_examples)
    for src in ctx.index:
        if src.text is None:
            continue
        # one search of the whole text decides which patterns can hit a line: a line is a
        # substring of the text and the separators splitlines() drops are non-word
        # characters, so a line match is a text match at the same place (``\b`` included);
        # the PEM probe spans two lines, but its marker lies within one
        patterns = [(name, rx) for name, rx, _keep in SECRET_PATTERNS if PREFILTER[name].search(src.text)]
        is_example = src.path in env_examples
        if not patterns and not is_example:
            continue
        lines = src.text.splitlines()
        for n, text in enumerate(lines, 1):
            hit = False
            for name, rx in patterns:
                # a PEM block's body starts on the next line: look at both for that pattern
                probe = text + "\n" + lines[n] if name == "private key block" and n < len(lines) else text
                if not rx.search(probe):
                    continue
                hit = True
                test_mode = bool(TEST_KEY.search(text)) and name == "Stripe secret key"
                yield chk.finding(
                    ctx, Severity.WARNING if test_mode else Severity.BLOCKER,
                    f"{name} committed in {src.path.rsplit('/', 1)[-1]}",
                    f"A {name.lower()} is committed in plain text; anyone with read access to the "
                    "repository or its history can use it" + (" against the test-mode account." if test_mode else "."),
                    "Revoke/rotate the key at the provider now, remove it from the file and from git "
                    "history, and load it from the environment or a secret manager.",
                    src.path, n, key=name)
                break
            if hit or not is_example:
                continue
            m = ENV_LINE.match(text)
            if m and SECRET_KEY.search(m.group(1)) and not is_placeholder(m.group(2)):
                yield chk.finding(
                    ctx, Severity.WARNING, f"Env example sets {m.group(1)} to a non-placeholder value",
                    "Example env files are copied to real deployments; a real-looking value here "
                    "is either a leaked secret or a weak default that survives into production.",
                    f"Replace the value of {m.group(1)} with an empty value or an obvious placeholder "
                    "such as `change-me`.",
                    src.path, n, settings=[m.group(1)])
