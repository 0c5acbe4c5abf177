"""SEC-030: secrets committed to the repository (code, config, env example files)."""
from __future__ import annotations

import ast
import math
import re
from collections import Counter

from ..code.pyast import docstring_nodes, literal, of_type
from ..findings import Location, Severity
from ..redact import SECRET_PATTERNS, is_placeholder, redact_text
from . import check

ENV_LINE = re.compile(r"^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*?)\s*$")
SECRET_KEY = re.compile(r"SECRET|PASSW(OR)?D|PWD|TOKEN|API_?KEY|PRIVATE_?KEY|CREDENTIAL", re.I)
TEST_KEY = re.compile(r"^[sr]k_test_")
PEM = "private key block"
# Per pattern, a necessary condition checked once on a file's whole text: the pattern
# without its leading ``\b`` (a word boundary only narrows where it matches, and a
# ``\b``-first regex cannot use the engine's fast prefix scan: 3 ms a pattern on a 200-file
# tree against 0.1 ms); for the PEM block, which looks at two lines, its marker.
PREFILTER = {name: re.compile(r"-----BEGIN (?:[A-Z]+ )?PRIVATE KEY-----") if name == PEM
             else re.compile(rx.pattern[2:], rx.flags) if rx.pattern.startswith(r"\b") else rx
             for name, rx, _keep in SECRET_PATTERNS}

# The fixed prefix of each provider format; what follows is the random part whose
# randomness decides whether the value can be a real key.
PREFIX = re.compile(r"^(?:[sr]k_(?:live|test)_|whsec_|AKIA|ASIA|SG\.|gh[pousr]_|xox[a-z]-|AIza)")
# Structure a real token has beyond the redaction pattern. Slack: every token kind
# (bot, user, legacy, workspace) has a numeric team/user segment right after the prefix
# (after gitleaks' slack-bot-token / slack-user-token / slack-legacy-* rules,
# github.com/gitleaks/gitleaks, cmd/generate/config/rules/slack.go, MIT licence).
STRUCTURE = {"Slack token": re.compile(r"^xox[a-z]-\d{8,14}-")}
# Words that make a value an obvious stand-in when the random part starts or ends with
# them (``xoxb-test-...``, ``whsec_test...``, AWS's documented ``AKIAIOSFODNN7EXAMPLE``),
# after detect-secrets' and gitleaks' allowlists of placeholder stopwords.
MARKER = r"(?:test|testing|fake|dummy|example|sample|placeholder|changeme|change_?me|replace_?me|your|mock|" \
         r"redacted|invalid|xxx+|todo|demo)"
MARKED = re.compile(rf"^{MARKER}|{MARKER}$", re.I)
# Shannon entropy (bits a character) below which a provider-format value is a pattern,
# not a random key: 20+ random base62 characters score above 4; ``a1a1a1...`` scores 1,
# ``test1234test1234`` under 3 (gitleaks' per-rule ``entropy`` thresholds are 2 to 3.5).
MIN_ENTROPY = 3.0
# ``0123456789abcdef`` / ``ABCDEFGH...`` (detect-secrets' is_sequential_string filter)
SEQUENTIAL_SHARE = 0.5
TEST_DIRS = {"tests", "test", "testing", "fixtures", "fixture", "testdata", "test_data", "__tests__", "spec",
             "mocks", "conftest.py"}
# documentation formats (not notebooks or .txt: those hold working values as often as examples)
DOC_SUFFIXES = (".md", ".rst", ".adoc", ".mdx")
DOC_DIRS = {"docs", "doc", "documentation"}
EXAMPLE_KEYS = {"example", "examples", "openapi_examples", "json_schema_extra", "schema_extra"}
DEV_KEY_WORDS = {"localhost", "dev", "development", "local", "selfsigned", "snakeoil", "example", "sample",
                 "dummy", "fake", "demo", "insecure"}
B64_LINE = re.compile(r"^[A-Za-z0-9+/=]+$")
PEM_HEADER = re.compile(r"^[A-Za-z-]+:\s")  # Proc-Type: / DEK-Info: lines of an encrypted PEM


def entropy(s: str) -> float:
    counts = Counter(s)
    return -sum(c / len(s) * math.log2(c / len(s)) for c in counts.values()) if s else 0.0


def _sequential(s: str) -> bool:
    steps = sum(1 for a, b in zip(s, s[1:]) if ord(b) - ord(a) in (0, 1))
    return len(s) > 1 and steps / (len(s) - 1) >= SEQUENTIAL_SHARE


def stand_in(name: str, value: str) -> str:
    """Why a provider-format ``value`` is a placeholder rather than a key, or ''."""
    if (rx := STRUCTURE.get(name)) and not rx.match(value):
        return "not the provider's token structure"
    body = PREFIX.sub("", value).strip("-_.")
    if MARKED.search(body) or any(re.fullmatch(MARKER, part, re.I) for part in re.split(r"[-_.]", body)):
        return "a placeholder word"
    if entropy(body) < MIN_ENTROPY:
        return "low entropy"
    if _sequential(body):
        return "a character sequence"
    return ""


def _path_kind(ctx, path: str) -> str:
    """'test' (tests, fixtures, test helpers), 'docs' (documentation) or ''."""
    parts = path.lower().split("/")
    if ctx.layout.is_test(path) or TEST_DIRS & set(parts[:-1]) or parts[-1] in TEST_DIRS:
        return "test"
    if path.lower().endswith(DOC_SUFFIXES) or DOC_DIRS & set(parts[:-1]):
        return "docs"
    return ""


def _example_lines(src) -> set[int]:
    """Lines of a Python file that hold documentation: docstrings and the values of
    ``example=`` / ``examples=[...]`` / ``json_schema_extra=`` keywords and dict keys."""
    tree = src.tree
    if tree is None:
        return set()
    spans = []
    doc_ids = docstring_nodes(tree)
    for node in of_type(tree, ast.Constant):
        if id(node) in doc_ids:
            spans.append(node)
    for kw in of_type(tree, ast.keyword):
        if kw.arg in EXAMPLE_KEYS:
            spans.append(kw.value)
    for d in of_type(tree, ast.Dict):
        for k, v in zip(d.keys, d.values):
            if k is not None and literal(k) in EXAMPLE_KEYS:
                spans.append(v)
    return {n for node in spans for n in range(node.lineno, (node.end_lineno or node.lineno) + 1)}


def _pem_body(lines: list[str], n: int) -> tuple[str, bool]:
    """(the base64 body, whether the block is truncated or elided) of the PEM block whose
    BEGIN marker is on line ``n`` (1-based). A body on the marker's own line (JSON-escaped
    ``\\n``) counts too."""
    text = lines[n - 1]
    after = text[text.index("PRIVATE KEY-----") + len("PRIVATE KEY-----"):]
    chunks = [c for c in re.split(r"\\n", after)] + lines[n:n + 200]
    body, truncated, ended = [], False, False
    for raw in chunks:
        if "-----END" in raw:
            head = raw.split("-----END", 1)[0]
            chunks_end = head.replace("\\n", "").strip(" \t'\",")
            if chunks_end:
                body.append(chunks_end)
            ended = True
            break
        line = raw.strip().strip("'\",").replace("\\n", "").strip()
        if not line or PEM_HEADER.match(line):
            continue
        if B64_LINE.match(line):
            body.append(line)
        else:  # "[...]", "...", "<your key>": an elided example
            truncated = True
    return "".join(body), truncated or not ended


@check("SEC-030", "security", "Secrets committed to the repository")
def committed_secrets(ctx):
    """Provider-format secrets anywhere in the indexed tree (Stripe ``sk_live_`` /
    ``rk_live_`` / ``whsec_``, AWS ``AKIA…``, SendGrid ``SG.…``, GitHub, Slack, Google
    keys, private key blocks), and, in env example files (``.env.example``,
    ``.env.production.example``...), secret-like keys whose value is not a placeholder.

    Why: anything committed is readable by everyone with repository access, forever
    (git history). Severity by what the value is and where it sits:

    - a real-looking key (random enough, the provider's structure) in application code,
      configuration or a committed env file: BLOCKER; a Stripe test-mode key there:
      WARNING (it reaches the test-mode account only);
    - the same in tests / fixtures / test helpers (a ``tests``, ``testing``, ``fixtures``
      folder, ``test_*.py``, ``conftest.py``) or documentation (Markdown/reST files, a
      ``docs`` folder, docstrings, ``example=`` / ``examples=[...]`` /
      ``json_schema_extra`` values): INFO (confirm it is fake or revoked);
    - a private key block: BLOCKER in application code or a key file; RECOMMENDATION for a
      ``.pem`` / ``.key`` file whose path names it a local-development key (``localhost``,
      ``dev``, ``selfsigned``, ``snakeoil``...: public by design, it must simply never
      serve production; the message names the certificate beside it, if any); INFO in tests or documentation, or when its body is elided
      (``[...]``, ``...``) so it is not a usable key;
    - env example files: WARNING for a secret-like key with a non-placeholder value.

    One finding per distinct value per file, every line it appears on as a location. The
    value is never printed: excerpts keep the recognisable prefix only.
    Not flagged: stand-ins (a Slack token without the numeric team segment every real
    token has, after gitleaks' rules; values whose random part starts or ends with a
    placeholder word such as ``test``, ``fake``, ``example``, ``your``, ``xxx``; values of
    Shannon entropy under 3 bits a character, repeated characters, ``0123…``/``abcd…``
    sequences, after detect-secrets' filters), placeholders in env examples (empty,
    ``change-me``, ``<...>``, ``${VAR}``, ``your-...``), keys referenced through the
    environment, and too-short strings that cannot be keys.
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
        kind = _path_kind(ctx, src.path)
        examples = _example_lines(src) if patterns and src.is_python and not kind else set()
        groups: dict[tuple[str, str], list[int]] = {}
        for n, text in enumerate(lines, 1):
            hit = False
            for name, rx in patterns:
                if name == PEM:
                    # a PEM block's body starts on the next line: look at both for that pattern
                    probe = text + "\n" + lines[n] if n < len(lines) else text
                    if PREFILTER[PEM].search(text) and rx.search(probe):
                        body, _trunc = _pem_body(lines, n)
                        groups.setdefault((name, body[:80]), []).append(n)
                        hit = True
                    continue
                for m in rx.finditer(text):
                    hit = True
                    if not stand_in(name, m.group(0)):
                        groups.setdefault((name, m.group(0)), []).append(n)
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
        for (name, value), at in groups.items():
            where = kind or ("docs" if all(n in examples for n in at) else "")
            if name == PEM:
                f = _pem_finding(ctx, chk, src, at[0], where)
            else:
                f = _token_finding(ctx, chk, src, name, value, at[0], where)
            for n in at[1:]:
                f.locations.append(Location(src.path, n, n, redact_text(src.line(n))[:300]))
            yield f


def _token_finding(ctx, chk, src, name, value, line, where):
    file = src.path.rsplit("/", 1)[-1]
    test_mode = bool(TEST_KEY.match(value))
    if where:
        place = "test code" if where == "test" else "documentation"
        return chk.finding(
            ctx, Severity.INFO, f"{name} format in {place} ({file})",
            f"A value in the format of a {name}{' (test mode)' if test_mode else ''} sits in {place}; "
            "values there are not production secrets, but if this one was ever a real key it is public now.",
            "Confirm the value is fake or revoked; prefer an obvious stand-in (`xoxb-test`, `sk_test_...`).",
            src.path, line, key=f"{name}:{where}")
    return chk.finding(
        ctx, Severity.WARNING if test_mode else Severity.BLOCKER, f"{name} committed in {file}",
        f"This {name} is committed in plain text; anyone with read access to the "
        "repository or its history can use it" + (" against the test-mode account." if test_mode else "."),
        "Revoke/rotate the key at the provider now, remove it from the file and from git "
        "history, and load it from the environment or a secret manager.",
        src.path, line, key=name)


def _pem_finding(ctx, chk, src, line, where):
    lines = src.text.splitlines()
    body, truncated = _pem_body(lines, line)
    marker = re.search(r"-----BEGIN ((?:[A-Z]+ )?)PRIVATE KEY-----", lines[line - 1])
    algo = (marker.group(1).strip() + " ") if marker and marker.group(1) else ""
    what = f"{algo}private key block"
    file = src.path.rsplit("/", 1)[-1]
    tokens = set(re.split(r"[/._-]+", src.path.lower()))
    if truncated:
        return chk.finding(
            ctx, Severity.INFO, f"Elided {what} in {file}",
            f"An {what} whose body is elided (`[...]` / `...` or no END line) is an illustration, "
            "not a usable key.", "", src.path, line, key=f"{PEM}:elided")
    if where:
        place = "test code or test fixtures" if where == "test" else "documentation"
        return chk.finding(
            ctx, Severity.INFO, f"{what[0].upper() + what[1:]} in {place} ({file})",
            f"A complete {what} is committed in {place}: a key for tests or examples, not a production "
            "secret, unless the same key is also authorised somewhere real (an `authorized_keys`, a "
            "TLS endpoint, a cloud service account).",
            "Confirm the key is used by tests/examples only; generate test keys at test time where practical.",
            src.path, line, key=f"{PEM}:{where}")
    if tokens & DEV_KEY_WORDS and src.path.lower().endswith((".pem", ".key")):
        folder = src.path.rsplit("/", 1)[0] + "/" if "/" in src.path else ""
        certs = [f.path for f in ctx.index if f.path.startswith(folder) and "/" not in f.path[len(folder):]
                 and f.text and "-----BEGIN CERTIFICATE-----" in f.text]
        tls = f" (a TLS key: its certificate {certs[0]} is beside it)" if certs else ""
        return chk.finding(
            ctx, Severity.RECOMMENDATION, f"Local-development private key committed ({file})",
            f"{src.path} is a {what}{tls} whose path names it a local-development key "
            f"({', '.join(sorted(tokens & DEV_KEY_WORDS))}): anyone with the repository has it, so it can "
            "only serve local development; it is not a production secret as long as no deployed server "
            "loads it.",
            "Generate such keys on each developer machine (e.g. `mkcert localhost`) and ignore them in git; "
            "make sure production loads its own key from a secret store.",
            src.path, line, key=f"{PEM}:dev")
    return chk.finding(
        ctx, Severity.BLOCKER, f"{what[0].upper() + what[1:]} committed in {file}",
        f"A complete {what} is committed in plain text; anyone with read access to the repository or "
        "its history can use it.",
        "Revoke/rotate the key (re-issue the certificate / deploy key), remove it from the file and from "
        "git history, and load it from a secret manager.",
        src.path, line, key=PEM)
