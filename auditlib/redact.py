"""Redaction: secret values found in a target never reach any output.

Every excerpt passes through :func:`redact_text` when a finding is made, and the report
writers run it again over everything they print. A value is replaced by its first few
characters (enough to recognise the kind: ``sk_live_``) followed by ``****``.
"""
from __future__ import annotations

import re
from typing import Iterable
from urllib.parse import quote, unquote

# Provider formats: (name, regex of the whole token, how many leading chars to keep).
SECRET_PATTERNS: list[tuple[str, re.Pattern, int]] = [
    ("Stripe secret key", re.compile(r"\b[sr]k_(?:live|test)_[0-9A-Za-z]{16,}"), 8),
    ("Stripe webhook secret", re.compile(r"\bwhsec_[0-9A-Za-z+/=]{16,}"), 6),
    ("AWS access key id", re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"), 4),
    ("SendGrid API key", re.compile(r"\bSG\.[\w-]{16,32}\.[\w-]{30,64}"), 3),
    ("GitHub token", re.compile(r"\bgh[pousr]_[0-9A-Za-z]{30,}"), 4),
    ("Slack token", re.compile(r"\bxox[abposr]-[0-9A-Za-z-]{10,}"), 5),
    ("Google API key", re.compile(r"\bAIza[0-9A-Za-z_-]{35}"), 4),
    # the marker alone is documentation ("in the format -----BEGIN PRIVATE KEY-----\n...");
    # a committed key has base64 body right after it (real or JSON-escaped newline)
    ("private key block", re.compile(r"-----BEGIN (?:[A-Z]+ )?PRIVATE KEY-----(?:\\n|\s)*[A-Za-z0-9+/=]{40,}"), 11),
]
_SECRET_NAME = r"(?i:[\w.-]*(?:secret|passw(?:or)?d|pwd|token|api_?key|private_?key|credential)s?[\w.-]*)"
# name = "value" / name: str = "value" / name = Field("value") (quoted literal values)
_ASSIGNED_SECRET = re.compile(
    r"(?P<head>" + _SECRET_NAME + r"['\"]?\s*(?::\s*[\w\[\]| .]+)?\s*(?:=|:)\s*(?:[a-zA-Z_][\w.]*\(\s*)?['\"])"
    r"(?P<val>[^'\"\n]{4,})(?=['\"])")
# KEY=value lines of env files (unquoted values)
_ENV_SECRET = re.compile(r"^(?P<head>\s*(?:export\s+)?" + _SECRET_NAME + r"\s*=\s*)(?P<val>[^\s'\"#]{4,})\s*$",
                         re.MULTILINE)

_SECRET_KEYS = r"password|passwd|pwd|sslpassword"
# Userinfo grammar of SQLAlchemy's URL parser (user without ':' or '/',
# password up to '@', possibly containing '/', ':', '?'), widened to swallow
# further '@'-separated chunks before the host: an unencoded '@' in a
# password is a common mistake and must not leak the rest of the password.
_URL_USERINFO_RE = re.compile(
    r"(?P<pre>\b[A-Za-z][A-Za-z0-9+.\-]*://[^\s:/@]*):(?P<pw>[^\s@]*(?:@[^\s@/]*(?=@))*)@"
)
_QUERY_SECRET_RE = re.compile(
    rf"(?P<pre>[?&;](?:{_SECRET_KEYS})=)(?P<val>[^&#;\s]*)", re.IGNORECASE
)
_KV_SECRET_RE = re.compile(
    rf"(?P<pre>(?<![\w.])(?:{_SECRET_KEYS})\s*=\s*)"
    r"(?P<val>'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"|[^\s&;,'\"]+)",
    re.IGNORECASE,
)


# libpq-style pairs in free text (``password=secret``), but not code that passes a
# reference (``password=settings.smtp_password``, ``password=os.environ["X"]``).
_KV_FREE_RE = re.compile(
    rf"(?P<pre>(?<![\w.])(?:{_SECRET_KEYS})=)(?![\w]*[.(\[])(?P<val>'[^']*'|\"[^\"]*\"|[^\s&;,'\")]+)",
    re.IGNORECASE)
PLACEHOLDER_RX = re.compile(
    r"^(?:|none|null|changeme|change[-_]?me|replace[-_]?me|todo|xxx+|\*+|\.\.\.|<[^>]*>|\$\{[^}]*\}|\{\{[^}]*\}\}|"
    r"(?:your|my|example|sample|dummy|placeholder|fake|test|dev|local)[\w-]*|[\w-]*(?:here|placeholder|example)[\w-]*)$",
    re.IGNORECASE)


def mask(value: str, keep: int = 4) -> str:
    keep = min(keep, max(len(value) // 4, 0))
    return value[:keep] + "****"


def redact_text(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` with secrets masked: the literal ``secrets`` given (and their
    percent-encoded forms), provider tokens, URL passwords, ``password=...`` pairs and
    values assigned to secret-like names. When in doubt it over-redacts."""
    if not text:
        return text
    forms: set[str] = set()
    for s in secrets:
        if s:
            forms.update({s, quote(s, safe=""), unquote(s)})
    # Literals shorter than 3 chars would shred the text and protect nothing.
    for form in sorted((f for f in forms if len(f) >= 3), key=len, reverse=True):
        text = text.replace(form, "***")
    for _name, rx, keep in SECRET_PATTERNS:
        text = rx.sub(lambda m, k=keep: m.group(0)[:k] + "****", text)
    text = _URL_USERINFO_RE.sub(lambda m: m.group("pre") + ":***@", text)
    text = _QUERY_SECRET_RE.sub(lambda m: m.group("pre") + "***", text)

    def _assigned(m: re.Match) -> str:
        val = m.group("val")
        if val.endswith("****") or val == "***" or is_placeholder(val):
            return m.group(0)
        return m.group("head") + mask(val, 2)

    text = _ASSIGNED_SECRET.sub(_assigned, text)
    text = _ENV_SECRET.sub(_assigned, text)
    return _KV_FREE_RE.sub(lambda m: m.group("pre") + "***", text)


def is_placeholder(value: str) -> bool:
    """Whether an example/default value is an obvious placeholder rather than a secret."""
    v = value.strip().strip("'\"")
    return bool(PLACEHOLDER_RX.match(v)) or v.lower() in {"secret", "password", "token", "key"}


def redact_url(url: str) -> str:
    """Return *url* with any password replaced by ``***``.

    Handles ``scheme://user:pass@host/db`` (parsed like SQLAlchemy does: the
    password runs to the first ``@``), URLs without a password (returned
    unchanged), ``?password=...``-style query parameters, and libpq
    ``key=value`` strings (``host=x password=secret``).  When in doubt it
    over-redacts rather than leak.
    """
    if "://" not in url:
        return _KV_SECRET_RE.sub(lambda m: m.group("pre") + "***", url)
    url = _URL_USERINFO_RE.sub(lambda m: m.group("pre") + ":***@", url, count=1)
    return _QUERY_SECRET_RE.sub(lambda m: m.group("pre") + "***", url)
