"""CMP-002: sender identity (EMAIL_FROM / EMAIL_FROM_NAME) configured, no placeholder in production."""
from __future__ import annotations

import ast
import re

from ..facts.email_model import sends_mail
from ..findings import Severity
from ..facts.prod_validation import prod_requirement
from ..code.pyast import dotted, literal, of_type, parent_map
from ..code.pyresolve import Project
from ..facts.settings_model import Setting, find_settings
from . import check

# the name's last words (``PHOENIX_SMTP_MAIL_FROM``, ``app_email_from``: a prefix is the app's or the transport's)
SENDER = r"(^|_)(email_from|mail_from|from_email|default_from_email|smtp_from|sender_email|email_sender|" \
         r"sendgrid_from(_email)?|email_from_address)$"
SENDER_NAME = r"(^|_)(email_from_name|mail_from_name|from_name|sender_name|email_sender_name)$"
ENV_READS = ("getenv", "environ.get", "environ.setdefault")
PLACEHOLDER = re.compile(r"@((\w+\.)*(example\.(com|org|net)|localhost|test|invalid|local))$|^(|noreply|no-reply)$", re.I)


def _literal_from(ctx):
    """``msg["From"] = "x@y"`` / ``from_email="x@y"`` with a literal address in app code."""
    for src in Project.of(ctx).files:
        if not ctx.layout.is_app(src.path):
            continue
        for n in of_type(src.tree, (ast.Assign, ast.keyword)):
            value = None
            # a literal "From" key is a Constant (literal_eval gives a str for nothing else)
            if isinstance(n, ast.Assign) and any(isinstance(t, ast.Subscript) and isinstance(t.slice, ast.Constant)
                                                 and t.slice.value in ("From", "from") for t in n.targets):
                value = n.value
            elif isinstance(n, ast.keyword) and n.arg in ("from_email", "sender", "from_addr", "mail_from"):
                value = n.value
            v = literal(value) if value is not None else None
            if isinstance(v, str) and "@" in v:
                yield src, value.lineno, v


def _constant_env_reads(ctx, pattern: str) -> list[Setting]:
    """Environment reads whose variable name is a module constant (``ENV_MAIL_FROM =
    "APP_SMTP_MAIL_FROM"`` then ``getenv(ENV_MAIL_FROM) or "noreply@acme.io"``), for names
    matching ``pattern``: settings the settings model (literal names only) does not list.
    The default is the second argument or the ``or`` fallback when literal."""
    rx = re.compile(pattern, re.I)
    consts: dict[str, str] = {}
    files = [s for s in ctx.layout.app_sources(ctx.index) if s.tree is not None]
    for src in files:
        for stmt in src.tree.body:
            if isinstance(stmt, ast.Assign) and isinstance(stmt.value, ast.Constant) \
                    and isinstance(stmt.value.value, str):
                for t in stmt.targets:
                    if isinstance(t, ast.Name):
                        consts[t.id] = stmt.value.value
    wanted = {k for k, v in consts.items() if rx.search(v)}
    out = []
    if not wanted:
        return out
    for src in files:
        up = None
        for c in of_type(src.tree, ast.Call):
            if not (c.args and isinstance(c.args[0], ast.Name) and c.args[0].id in wanted
                    and dotted(c.func).endswith(ENV_READS)):
                continue
            env = consts[c.args[0].id]
            default = literal(c.args[1]) if len(c.args) > 1 else None
            if default is None:
                up = up if up is not None else parent_map(src.tree)
                parent = up.get(id(c))
                if isinstance(parent, ast.BoolOp) and isinstance(parent.op, ast.Or) and parent.values[0] is c:
                    default = literal(parent.values[-1])
            out.append(Setting(env, env.upper(), src.path, c.lineno, "os.environ", default, "", [env.upper()]))
    return out


@check("CMP-002", "compliance", "E-mail sender identity")
def sender_identity(ctx):
    """In an app that sends mail: the sender address comes from a setting
    (``EMAIL_FROM``-like: a name ending in email_from, mail_from, default_from_email ...,
    whatever its prefix: ``PHOENIX_SMTP_MAIL_FROM``; a settings-class field, a literal
    ``os.getenv("X")`` read, or a read through a module constant holding the variable's
    name, ``getenv(ENV_SMTP_MAIL_FROM) or "noreply@acme.io"``) whose default is
    not a placeholder (``noreply@example.com``, ``@localhost``, ``@test``, empty) unless
    production validation rejects it; a display-name setting (``EMAIL_FROM_NAME``) exists;
    no literal ``From`` address is hard-coded in the sending code.

    Why: mail from an example.com or unconfigured sender fails SPF/DKIM/DMARC alignment
    and lands in spam (or is rejected), and CAN-SPAM requires accurate sender
    identification. A placeholder default not rejected in production, a hard-coded
    From, or no sender setting at all: WARNING. No display-name setting: RECOMMENDATION.
    Not flagged: a required sender field (no default), a real-domain default, apps that
    send no e-mail. (FUNC-003 also reports the example.com literal as a placeholder.)
    """
    chk = sender_identity.check
    sends = sends_mail(ctx)
    if not sends:
        return
    sender_rx = ctx.config.get("email_sender_setting", SENDER)
    name_rx = ctx.config.get("email_sender_name_setting", SENDER_NAME)
    senders = find_settings(ctx, sender_rx) or _constant_env_reads(ctx, sender_rx)
    names = find_settings(ctx, name_rx) or _constant_env_reads(ctx, name_rx)
    for src, line, value in _literal_from(ctx):
        yield chk.finding(ctx, Severity.WARNING, "Sender address hard-coded in the sending code",
                          f"The From address `{value}` is a literal: it cannot differ per environment and is "
                          "easily a placeholder in production.",
                          "Read the sender from an EMAIL_FROM setting (with EMAIL_FROM_NAME).", src.path, line,
                          key=f"literal:{value}")
    if not senders:
        src, line = sends[0]
        yield chk.finding(ctx, Severity.WARNING, "No sender address setting (EMAIL_FROM)",
                          "The app sends mail but no EMAIL_FROM-like setting was found: the sender is implicit "
                          "(SMTP account default) or hard-coded.",
                          "Add `email_from: str` (required) and `email_from_name: str` to the settings and use "
                          "them for every message.", src.path, line, key="no-sender")
        return
    for s in senders:
        if isinstance(s.default, str) and PLACEHOLDER.search(s.default.strip()) and not prod_requirement(ctx, s):
            yield chk.finding(ctx, Severity.WARNING, f"{s.env} defaults to a placeholder sender ({s.default or 'empty'})",
                              f"`{s.name}` defaults to `{s.default}` and production validation does not reject it: "
                              "a deployment that forgets EMAIL_FROM sends from an address whose domain you do not "
                              "control (SPF/DMARC failures, spam folder, CAN-SPAM sender identification).",
                              f"Make `{s.name}` required, or reject placeholder domains when APP_ENV is production; "
                              "use an address on your own authenticated domain.", s.file, s.line,
                              settings=[s.env], key="placeholder")
    if not names:
        s = senders[0]
        yield chk.finding(ctx, Severity.RECOMMENDATION, "No sender display name setting (EMAIL_FROM_NAME)",
                          "Messages show a bare address as sender: recipients recognise (and trust) a brand name "
                          "better, which helps deliverability.",
                          "Add `email_from_name` and send `formataddr((name, address))` as From.", s.file, s.line,
                          settings=[s.env], key="no-name")
