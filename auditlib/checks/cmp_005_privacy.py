"""CMP-005: GDPR basics: data export, erasure, privacy link in e-mails, cookie consent."""
from __future__ import annotations

import ast
import os
import re

from ..facts.email_model import email_text, emails
from ..findings import Severity
from ..code.pyast import dotted, of_type
from ..facts.routes import source_routes
from . import check

# the field *is* the personal datum (``email``, ``account_email``, ``phone_number``,
# ``address_line1``), not something about it (``email_provider``, ``email_verified``,
# ``address_id``)
PERSONAL = re.compile(r"(^|_)(e_?mails?|phones?|mobile|address(es)?|street|post_?code|zip_?code|date_of_birth|"
                      r"birth_?date)(_(address|number|no|lower|normali[sz]ed|canonical|line_?\d*|\d+))?$", re.I)
NOT_PERSONAL = re.compile(r"^(ip|remote|email_from|from_email|sender)", re.I)
EXPORT = re.compile(r"dsar|gdpr|subject_?access|right_?to|personal_?data|"
                    r"(export|download|dump)\w*(user|customer|client|person|account|my|me|subject|contact|data)|"
                    r"(user|customer|client|person|account|my|me|contact)\w*(export|download|dump)", re.I)
ERASE = re.compile(r"anonymi[sz]|erase|erasure|forget|right_?to_?be|gdpr_?delet|"
                   r"(delete|purge|remove|redact)_?(my_?)?(user|customer|client|account|person|contact|personal|profile)",
                   re.I)
PERSON_PATH = re.compile(r"/(users|customers|clients|accounts|me|persons|people|contacts|profiles?)(/|$)", re.I)
TRACKERS = re.compile(r"googletagmanager|google-analytics|\bgtag\(|analytics\.js|cdn\.segment|hotjar|"
                      r"connect\.facebook\.net|fbevents|\bmixpanel\b|clarity\.ms|\bamplitude\b", re.I)
MINIFIED_LINE = 2000  # a line this long is a bundle (vendor code), not the app's own markup or script
CUSTOMER = re.compile(r"customer|client|lead|contact|person|patient|guest|booking|subscriber", re.I)
WEB_SUFFIXES = (".html", ".htm", ".jinja", ".jinja2", ".j2", ".js", ".ts")
CONSENT = re.compile(r"consent|cookiebot|onetrust|klaro|cookieconsent|cookie-banner|cookie_banner", re.I)


def _personal_models(ctx):
    """(file, line, class, fields) of ORM models holding personal data."""
    for src in ctx.layout.app_sources(ctx.index):
        for cls in of_type(src.tree, ast.ClassDef) if src.tree else ():
            names = [dotted(s.target if isinstance(s, ast.AnnAssign) else s.targets[0])
                     for s in cls.body if isinstance(s, (ast.AnnAssign, ast.Assign))]
            if "__tablename__" not in names:
                continue
            fields = [n for n in names if PERSONAL.search(n) and not NOT_PERSONAL.search(n)]
            if fields:
                yield src.path, cls.lineno, cls.name, fields


def _person_read(ctx, models):
    """A GET route returning one record of a personal-data model (``GET /users/{id}``
    for ``User``: the resource segment names the model), or None."""
    names = {_norm(cls) for _p, _l, cls, _f in models}
    for r in source_routes(ctx):
        if "GET" in r.methods and "{" in r.path:
            static = [p for p in r.path.split("{", 1)[0].split("/") if p]
            if static and _norm(static[-1]) in names:
                return r
    return None


def _norm(name: str) -> str:
    """``users`` / ``oauth-accounts`` / ``OAuthAccount`` -> ``user`` / ``oauthaccount``."""
    low = re.sub(r"[-_]", "", name.lower())
    return low[:-3] + "y" if low.endswith("ies") else low[:-1] if low.endswith("s") else low


def _named(ctx, rx: re.Pattern, person_delete: bool = False) -> str | None:
    """``file:line`` of a route or app function whose path/name matches ``rx`` (or, for
    erasure, a DELETE route on a person resource)."""
    for r in source_routes(ctx):
        name = r.node.name if r.node is not None else ""
        if rx.search(r.path.replace("-", "_")) or rx.search(name) \
                or (person_delete and "DELETE" in r.methods and PERSON_PATH.search(r.path)):
            return f"{r.file}:{r.line}"
    for src in ctx.layout.app_sources(ctx.index):
        for fn in of_type(src.tree, (ast.FunctionDef, ast.AsyncFunctionDef)) if src.tree else ():
            if rx.search(fn.name):
                return f"{src.path}:{fn.lineno}"
    return None


@check("CMP-005", "compliance", "Privacy / GDPR basics")
def privacy(ctx):
    """When ORM models hold personal data (email, phone, address ... columns): a way to
    export a person's data (route or function named export/download of user/customer
    data, DSAR, GDPR) and to erase it (anonymise/erase/forget/delete_customer ..., or a
    DELETE route on a users/customers/contacts resource); e-mails that mention a privacy
    policy (a ``privacy`` link in the composer, its callers/callees or templates); and,
    where the web UI loads tracking scripts (Google Analytics/Tag Manager, Segment,
    Hotjar, Facebook pixel, Mixpanel ...), a cookie-consent mechanism.

    Why: GDPR Art. 15/20 (access, portability) and 17 (erasure) requests must be answered
    within a month; without tooling they are ad-hoc SQL against production. Missing
    export or erasure: WARNING at the first personal-data model. E-mails without a
    privacy link: RECOMMENDATION at the first composer. Tracking without consent
    (ePrivacy): WARNING at the script. A missing export is a RECOMMENDATION when a
    ``GET`` route returns one record of a personal-data model (``/users/{id}`` for
    ``User``): requests can be answered from it, a complete export is the good practice.
    Personal fields are those that *are* the datum (``email``, ``account_email``,
    ``phone_number``, ``address_line1``, ``date_of_birth``), not those about it
    (``email_provider``, ``email_verified``, ``address_id``).
    Not flagged: apps without personal data; strictly necessary cookies (sessions, CSRF)
    need no consent, so a web UI without trackers is not asked for a banner; tracker
    names inside bundled vendor code (minified lines of 2,000+ characters) or inside
    longer words (``JacobiAmplitude`` in a syntax highlighter's keyword list).
    """
    chk = privacy.check
    models = sorted(_personal_models(ctx), key=lambda m: not CUSTOMER.search(m[2]))  # customers' data first
    if models:
        file, line, cls, fields = models[0]
        holders = ", ".join(f"{c} ({', '.join(f)})" for _p, _l, c, f in models[:4])
        if not _named(ctx, re.compile(ctx.config.get("gdpr_export_names", EXPORT.pattern), re.I)):
            read = _person_read(ctx, models)
            yield chk.finding(ctx, Severity.RECOMMENDATION if read else Severity.WARNING,
                              "No personal-data export (GDPR access / portability)",
                              f"Personal data is stored in {holders} but no export route or function was found: " + (
                                  f"`GET {read.path}` ({read.file}:{read.line}) returns one person's record, but "
                                  "an access or portability request (one month deadline) also needs their rows in "
                                  "the other tables, gathered by hand." if read else
                                  "subject access requests (one month deadline) need hand-written SQL on production."),
                              "Add an admin-only export of everything held about one person (JSON), covering "
                              "every table that references them.", file, line, key="export")
        if not _named(ctx, re.compile(ctx.config.get("gdpr_erase_names", ERASE.pattern), re.I), person_delete=True):
            yield chk.finding(ctx, Severity.WARNING, "No personal-data erasure (right to be forgotten)",
                              f"Personal data is stored in {holders} but no erase/anonymise routine or DELETE route "
                              "for a person was found: erasure requests cannot be honoured consistently.",
                              "Add an admin-only erase that deletes or anonymises a person's rows everywhere "
                              "(keeping invoices as legally required, with personal fields blanked).",
                              file, line, key="erase")
    composers = emails(ctx)
    if composers and not any(re.search(r"privacy", t, re.I) for e in composers for _f, _l, t in email_text(ctx, e)):
        first = composers[0]
        yield chk.finding(ctx, Severity.RECOMMENDATION, "E-mails carry no privacy-policy link",
                          "None of the e-mails links the privacy policy: recipients are not told how their data "
                          "is processed (GDPR Art. 13 transparency).",
                          "Add a PRIVACY_POLICY_URL setting and link it in every e-mail footer.",
                          first.src.path, first.func.lineno, key="privacy-link")
    # index.select(["*.html", ...]) without a glob match per file and pattern: "*.x" is a suffix test
    web = [f for f in ctx.index if os.path.normcase(f.path).endswith(WEB_SUFFIXES)
           and f.text and not ctx.layout.is_test(f.path)]
    if web and not any(CONSENT.search(f.text) for f in web):
        for f in web:
            for i, text in enumerate(f.lines, 1):
                if len(text) < MINIFIED_LINE and TRACKERS.search(text):
                    yield chk.finding(ctx, Severity.WARNING, "Tracking script without cookie consent",
                                      "The web UI loads an analytics/tracking script but no consent mechanism was "
                                      "found: ePrivacy/GDPR require opt-in before non-essential cookies are set.",
                                      "Load trackers only after consent (a consent banner such as Klaro or "
                                      "Cookiebot), or switch to a cookieless analytics setup.", f.path, i,
                                      key=f"tracker:{f.path}")
                    break
