"""CMP-001: marketing-type e-mails carry an unsubscribe link and a List-Unsubscribe header."""
from __future__ import annotations

import re

from ..facts.email_model import email_text, emails
from ..findings import Severity
from . import check

HEADER = re.compile(r"^list-unsubscribe(-post)?$", re.I)
LINK = re.compile(r"unsubscribe|opt[-_ ]?out|email[-_ ]?preferences|manage[-_ ]?preferences", re.I)


@check("CMP-001", "compliance", "Unsubscribe in marketing e-mails")
def unsubscribe(ctx):
    """Functions that compose an e-mail (they set its subject) in an app that sends mail,
    classified by function name, subject and template names: marketing-type (NPS or
    review surveys, feedback requests, reminders, newsletters, announcements, promotions,
    referral invitations) or transactional. For each marketing-type e-mail, the text it is
    made of (the composer, what it calls, the functions that call it and what they call,
    the templates named there) must contain an unsubscribe link (``unsubscribe`` /
    ``opt-out`` / preferences URL) and the ``List-Unsubscribe`` header.

    Why: CAN-SPAM, CASL and the GDPR/ePrivacy rules require an easy opt-out in commercial
    e-mail, and Gmail/Yahoo reject or spam-folder bulk mail without one-click
    ``List-Unsubscribe`` since 2024. Missing link or header: WARNING at the composing
    function (one finding, saying which is missing).
    Not flagged: transactional e-mails (confirmations, receipts, password resets, magic
    links), which need no opt-out; apps that send no e-mail.
    """
    chk = unsubscribe.check
    for email in emails(ctx):
        if not email.marketing:
            yield chk.finding(ctx, Severity.INFO, f"Transactional e-mail {email.label}",
                              "Classified as transactional (no opt-out required).", "",
                              email.src.path, email.func.lineno, key=f"tx:{email.func.name}")
            continue
        text = email_text(ctx, email)
        has_header = any(HEADER.match(t.strip()) for _f, _l, t in text)
        has_link = any(LINK.search(t) and not HEADER.match(t.strip()) for _f, _l, t in text)
        missing = [w for w, ok in (("an unsubscribe link", has_link), ("a List-Unsubscribe header", has_header))
                   if not ok]
        if not missing:
            continue
        yield chk.finding(ctx, Severity.WARNING, f"Marketing-type e-mail {email.label} lacks {' and '.join(missing)}",
                          f"`{email.func.name}` composes a marketing-type message (survey, reminder, announcement) without "
                          f"{' and '.join(missing)}: CAN-SPAM/CASL/GDPR require an easy opt-out, and mailbox "
                          "providers junk bulk mail without one-click unsubscribe.",
                          "Add a signed per-recipient unsubscribe URL to the body and the headers "
                          "`List-Unsubscribe: <https://.../unsubscribe?token=...>` and "
                          "`List-Unsubscribe-Post: List-Unsubscribe=One-Click`; honour opt-outs before sending.",
                          email.src.path, email.func.lineno, key=f"unsub:{email.func.name}")
