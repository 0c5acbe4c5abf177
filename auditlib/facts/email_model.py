"""The e-mails an application sends, from the AST: which functions send mail (smtplib,
aiosmtplib, SendGrid, fastapi-mail, SES, ``email.message``), which functions compose a
message (they set its subject), what kind of message each is (marketing-type: surveys,
reminders, announcements; or transactional), and the text an e-mail is made of (its
composer, the functions around it, and the templates they name).
"""
from __future__ import annotations

import ast
import re
from bisect import bisect_left
from dataclasses import dataclass, field

from ..code.callgraph import shared
from ..target.index import SourceFile
from ..code.pyast import dotted, flat, of_type
from ..code.pyresolve import Project, callees_upto

DEFS = (ast.FunctionDef, ast.AsyncFunctionDef)

SEND_QUALIFIED = re.compile(
    r"^(smtplib\.SMTP(_SSL)?|aiosmtplib(\.send|\.SMTP)|sendgrid\..*(SendGridAPIClient|Mail)|fastapi_mail\..*FastMail|"
    r"email\.message\.EmailMessage|email\.mime\..*MIME(Text|Multipart)|postmarker\..*|mailjet_rest\..*|"
    r"resend\.Emails\.send)")
SEND_ATTRS = {"send_message", "sendmail", "send_email", "send_mail", "send_raw_email"}
MARKETING = re.compile(
    r"\b(nps|surveys?|feedback|reviews?|remind\w*|newsletters?|announce\w*|marketing|promo\w*|campaigns?|"
    r"digest|offers?|referrals?|win ?back|re ?engage\w*|follow ?up|how did we do|rate (us|your)|we miss you)\b",
    re.I)
TEMPLATE = re.compile(r"[\w./-]+\.(html|htm|txt|j2|jinja2?|mjml)$")


@dataclass
class Email:
    src: SourceFile
    func: ast.FunctionDef | ast.AsyncFunctionDef
    subject: str  # the literal parts of the subject expression ('' when computed)
    subject_line: int
    templates: list[str] = field(default_factory=list)  # index paths of templates it names

    @property
    def label(self) -> str:
        return f"{self.func.name}" + (f" ({self.subject!r})" if self.subject else "")

    @property
    def marketing(self) -> bool:
        words = " ".join([self.func.name, self.subject, *self.templates]).replace("_", " ")
        return bool(MARKETING.search(re.sub(r"[/.-]", " ", words)))


def _literal_text(node: ast.AST) -> str:
    return " ".join(n.value for n in of_type(node, ast.Constant) if isinstance(n.value, str))


def _subject(node: ast.AST) -> ast.AST | None:
    """The subject expression a statement or call sets, if any."""
    if isinstance(node, ast.Assign):
        for t in node.targets:
            if isinstance(t, ast.Subscript) and isinstance(t.slice, ast.Constant) \
                    and str(t.slice.value).lower() == "subject":
                return node.value
            if isinstance(t, ast.Attribute) and t.attr == "subject":
                return node.value
    if isinstance(node, ast.Call):
        for k in node.keywords:
            if k.arg == "subject":
                return k.value
    if isinstance(node, ast.Dict):
        for k, v in zip(node.keys, node.values, strict=True):
            if isinstance(k, ast.Constant) and str(k.value).lower() == "subject":
                return v
    return None


# Every alternative of SEND_QUALIFIED needs one of these words in the qualified name. Its
# dotted parts are identifiers of the file (the callee and its import) or, through a
# relative import, directory names of the file's path; so where neither the (ASCII, no
# identifier normalisation) text nor the path holds one, no call of the file can match.
_SEND_WORDS = ("smtplib", "sendgrid", "fastapi_mail", "EmailMessage", "MIMEText", "MIMEMultipart",
               "postmarker", "mailjet_rest", "resend")


def sends_mail(ctx) -> list[tuple[SourceFile, int]]:
    """(file, line) of every mail-sending or message-building call in application code
    (memoised per audit; callers only read the list)."""
    hit = ctx.__dict__.get("_email_sends")
    if hit is not None:
        return hit
    proj, out = Project.of(ctx), []
    for src in proj.files:
        if not ctx.layout.is_app(src.path) or not src.may_name(*_SEND_WORDS, *SEND_ATTRS):
            continue
        for n in of_type(src.tree, ast.Call):
            if SEND_QUALIFIED.match(proj.qualify(src, n.func)) \
                    or (isinstance(n.func, ast.Attribute) and n.func.attr in SEND_ATTRS):
                out.append((src, n.lineno))
    ctx.__dict__["_email_sends"] = out
    return out


def _subject_nodes(src: SourceFile) -> tuple[list[int], list[ast.AST]]:
    """(flat indices, subject expressions) of the statements and calls in ``src`` that
    set a subject, in source order. A call sets it by a ``subject=`` keyword, an
    identifier: an ASCII text without the word has none (string keys can still be
    spelled with escapes or by concatenation)."""
    kinds = (ast.Assign, ast.Call, ast.Dict) if src.may_name("subject") else (ast.Assign, ast.Dict)
    at, subjects = [], []
    for n in of_type(src.tree, kinds):
        s = _subject(n)
        if s is not None:
            at.append(n._fi)
            subjects.append(s)
    return at, subjects


def emails(ctx) -> list[Email]:
    """One entry per function that composes an e-mail (sets a subject), in app code that
    sends mail at all (cached)."""
    if "_email_model" in ctx.__dict__:
        return ctx.__dict__["_email_model"]
    out: list[Email] = []
    if sends_mail(ctx):
        proj = Project.of(ctx)
        for src in proj.files:
            if not ctx.layout.is_app(src.path):
                continue
            at, subjects = _subject_nodes(src)
            if not at:
                continue
            end = flat(src.tree)[0].end
            for fn in of_type(src.tree, DEFS):
                # the first subject set anywhere in the function (nested definitions included)
                k = bisect_left(at, fn._fi)
                if k == len(at) or at[k] >= end[fn._fi]:
                    continue
                subj = subjects[k]
                names = [n.value for n in of_type(fn, ast.Constant) if isinstance(n.value, str)
                         and TEMPLATE.search(n.value)]
                templates = [f.path for name in names for f in ctx.index.select(f"*{name.lstrip('./')}")
                             if not f.path.endswith(".py")]
                out.append(Email(src, fn, _literal_text(subj).strip(), subj.lineno, templates))
    ctx.__dict__["_email_model"] = out
    return out


def _call_targets(ctx, src: SourceFile) -> dict[int, ast.AST]:
    """id(call) -> the project function it runs, for the calls of ``src`` that resolve
    (memoised per file)."""
    memo = shared(ctx, "email_model.call_targets", dict)
    out = memo.get(src.path)
    if out is None:
        proj, out = Project.of(ctx), {}
        for n in of_type(src.tree, ast.Call):
            res = proj.resolve_call(src, n.func)
            if res is not None:
                out[id(n)] = res.func
        memo[src.path] = out
    return out


def callers(ctx, func: ast.AST) -> list[tuple[SourceFile, ast.AST]]:
    """Project functions that call ``func`` directly (imports resolved)."""
    out = []
    for src in Project.of(ctx).files:
        if not src.may_name(func.name):  # resolution goes through a name part equal to it
            continue
        targets = None
        for fn in of_type(src.tree, DEFS):
            if fn is func:
                continue
            if targets is None:
                targets = _call_targets(ctx, src)
            if any(targets.get(id(n)) is func for n in of_type(fn, ast.Call)):
                out.append((src, fn))
    return out


def email_text(ctx, email: Email) -> list[tuple[str, int, str]]:
    """(file, line, text) of every string and identifier that makes up ``email``: its
    composer and callees, the functions that call the composer and their callees, and
    the templates they name (memoised per e-mail; callers only read the list)."""
    memo = ctx.__dict__.setdefault("_email_text", {})
    key = (id(email.src), id(email.func))
    if key in memo:
        return memo[key]
    proj = Project.of(ctx)
    funcs = callees_upto(proj, email.src, email.func)
    for src, fn in callers(ctx, email.func):
        funcs += callees_upto(proj, src, fn, depth=2)
    out, seen = [], set()
    for src, fn in funcs:
        if id(fn) in seen:
            continue
        seen.add(id(fn))
        for n in of_type(fn, (ast.Constant, ast.Name, ast.Attribute)):
            if isinstance(n, ast.Constant):
                if isinstance(n.value, str):
                    out.append((src.path, n.lineno, n.value))
                    if TEMPLATE.search(n.value):
                        out += [(f.path, i, line) for f in ctx.index.select(f"*{n.value.lstrip('./')}")
                                if not f.path.endswith(".py") for i, line in enumerate(f.lines, 1)]
            else:
                out.append((src.path, n.lineno, dotted(n)))
    memo[key] = out
    return out
