"""CMP-003: an e-mail preference centre (a table or model recording opt-outs)."""
from __future__ import annotations

import ast
import re

from ..facts.email_model import emails
from ..findings import Severity
from ..code.pyast import dotted, literal, walk
from . import check

STORE = (r"email_?pref|notification_?pref|communication_?pref|subscription_?pref|mailing_?pref|"
         r"unsubscri|opt_?outs?\b|suppression|marketing_?consent|email_?consent|"
         r"marketing_?opt_?in|email_?opt_?(in|out)|receive_?marketing|email_?notifications_?enabled")


def _stores(ctx, rx: re.Pattern):
    """(file, line, name) of models, tables and columns that record e-mail preferences:
    class names, ``__tablename__``, ``op.create_table`` / ``sa.Table`` names and
    annotated or ``Column`` attributes, in app code and migrations."""
    for src in ctx.index.python_files():
        if ctx.layout.is_test(src.path):
            continue
        for n in walk(src.tree):
            if isinstance(n, ast.ClassDef) and rx.search(n.name):
                yield src.path, n.lineno, n.name
            elif isinstance(n, ast.Call) and dotted(n.func).split(".")[-1] in ("create_table", "Table", "add_column") \
                    and n.args and isinstance(literal(n.args[0]), str) and rx.search(n.args[0].value):
                yield src.path, n.lineno, n.args[0].value
            elif isinstance(n, ast.Call) and dotted(n.func).split(".")[-1] == "Column" and n.args \
                    and isinstance(literal(n.args[0]), str) and rx.search(n.args[0].value):
                yield src.path, n.lineno, n.args[0].value
            for stmt in n.body if isinstance(n, ast.ClassDef) else ():  # model columns / __tablename__
                if not isinstance(stmt, (ast.AnnAssign, ast.Assign)):
                    continue
                for t in [stmt.target] if isinstance(stmt, ast.AnnAssign) else stmt.targets:
                    v = literal(stmt.value) if dotted(t) == "__tablename__" else None
                    if isinstance(v, str) and rx.search(v):
                        yield src.path, stmt.lineno, v
                    elif isinstance(t, ast.Name) and rx.search(t.id) and t.id != t.id.upper():
                        yield src.path, stmt.lineno, t.id


@check("CMP-003", "compliance", "E-mail preference centre")
def preference_centre(ctx):
    """When the app sends marketing-type e-mail (see CMP-001's classification), a place
    that records each recipient's choices must exist: a model or table named like
    email_preferences / notification_preferences / unsubscribes / suppressions, or
    opt-in/opt-out columns (``marketing_opt_in``, ``unsubscribed_at`` ...), in models or
    migrations.

    Why: an unsubscribe link is only compliant if the opt-out is recorded and honoured
    (CAN-SPAM: within 10 business days; GDPR: withdrawal of consent); without a store,
    opted-out people keep receiving surveys and reminders. Missing: WARNING at the first
    marketing-type e-mail. Found: INFO with its location.
    Not flagged: apps that send only transactional mail (no opt-out applies). Whether
    the send path consults the store is left to review; the database stage may confirm
    the table exists after migrations.
    """
    chk = preference_centre.check
    marketing = [e for e in emails(ctx) if e.marketing]
    if not marketing:
        return
    rx = re.compile(ctx.config.get("email_preference_names", STORE), re.I)
    found = next(iter(_stores(ctx, rx)), None)
    if found:
        file, line, name = found
        yield chk.finding(ctx, Severity.INFO, f"E-mail preferences stored in `{name}`",
                          f"`{name}` records recipients' e-mail choices.", "", file, line, key="store")
        return
    first = marketing[0]
    yield chk.finding(ctx, Severity.WARNING, "No e-mail preference centre (opt-out store)",
                      f"The app sends marketing-type e-mail ({', '.join(e.func.name for e in marketing)}) but no "
                      "table, model or column records opt-outs: unsubscribe requests cannot be honoured.",
                      "Add an `email_preferences` (or `email_suppressions`) table keyed by recipient and "
                      "e-mail category, set it from the unsubscribe endpoint, and check it before every "
                      "marketing send.", first.src.path, first.func.lineno, key="no-store")
