"""The e-mails an application sends, from the AST: which functions send mail (smtplib,
aiosmtplib, SendGrid, fastapi-mail, SES, ``email.message``), which functions compose a
message (they set its subject), what kind of message each is (marketing-type: surveys,
reminders, announcements; or transactional), and the text an e-mail is made of (its
composer, the functions around it, and the templates they name).
"""
from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field

from .index import SourceFile
from .pyast import dotted, walk
from .pyresolve import Project, callees_upto

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
    return " ".join(n.value for n in walk(node) if isinstance(n, ast.Constant) and isinstance(n.value, str))


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


def sends_mail(ctx) -> list[tuple[SourceFile, int]]:
    """(file, line) of every mail-sending or message-building call in application code."""
    proj, out = Project.of(ctx), []
    for src in proj.files:
        if not ctx.layout.is_app(src.path):
            continue
        for n in walk(src.tree):
            if isinstance(n, ast.Call) and (SEND_QUALIFIED.match(proj.qualify(src, n.func))
                                            or (isinstance(n.func, ast.Attribute) and n.func.attr in SEND_ATTRS)):
                out.append((src, n.lineno))
    return out


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
            for fn in walk(src.tree):
                if not isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    continue
                subj = next((s for n in walk(fn) if (s := _subject(n)) is not None), None)
                if subj is None:
                    continue
                names = [n.value for n in walk(fn) if isinstance(n, ast.Constant) and isinstance(n.value, str)
                         and TEMPLATE.search(n.value)]
                templates = [f.path for name in names for f in ctx.index.select(f"*{name.lstrip('./')}")
                             if not f.path.endswith(".py")]
                out.append(Email(src, fn, _literal_text(subj).strip(), subj.lineno, templates))
    ctx.__dict__["_email_model"] = out
    return out


def callers(ctx, func: ast.AST) -> list[tuple[SourceFile, ast.AST]]:
    """Project functions that call ``func`` directly (imports resolved)."""
    proj, out = Project.of(ctx), []
    for src in proj.files:
        for fn in walk(src.tree):
            if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)) and fn is not func:
                for n in walk(fn):
                    if isinstance(n, ast.Call):
                        res = proj.resolve_call(src, n.func)
                        if res is not None and res.func is func:
                            out.append((src, fn))
                            break
    return out


def email_text(ctx, email: Email) -> list[tuple[str, int, str]]:
    """(file, line, text) of every string and identifier that makes up ``email``: its
    composer and callees, the functions that call the composer and their callees, and
    the templates they name."""
    proj = Project.of(ctx)
    funcs = callees_upto(proj, email.src, email.func)
    for src, fn in callers(ctx, email.func):
        funcs += callees_upto(proj, src, fn, depth=2)
    out, seen = [], set()
    for src, fn in funcs:
        if id(fn) in seen:
            continue
        seen.add(id(fn))
        for n in walk(fn):
            if isinstance(n, ast.Constant) and isinstance(n.value, str):
                out.append((src.path, n.lineno, n.value))
                if TEMPLATE.search(n.value):
                    out += [(f.path, i, line) for f in ctx.index.select(f"*{n.value.lstrip('./')}")
                            if not f.path.endswith(".py") for i, line in enumerate(f.lines, 1)]
            elif isinstance(n, (ast.Name, ast.Attribute)):
                out.append((src.path, n.lineno, dotted(n)))
    return out
