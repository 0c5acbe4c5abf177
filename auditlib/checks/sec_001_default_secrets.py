"""SEC-001: secret settings with an insecure literal default."""
from __future__ import annotations

import ast
import re

from ..findings import Severity
from ..pyast import NOT_LITERAL, dotted, literal
from . import check

SECRET_NAME = re.compile(r"secret|passw(or)?d|pwd|token|api_?key|private_?key|credential", re.I)


def field_default(value: ast.AST | None):
    """The literal default of a settings field: ``x: str = "v"`` or ``Field("v")`` /
    ``Field(default="v")``; NOT_LITERAL when there is none or it is computed."""
    if isinstance(value, ast.Call) and dotted(value.func).split(".")[-1] == "Field":
        if value.args:
            return literal(value.args[0])
        for kw in value.keywords:
            if kw.arg == "default":
                return literal(kw.value)
        return NOT_LITERAL
    return literal(value)


@check("SEC-001", "security", "Secret settings with insecure defaults")
def default_secrets(ctx):
    """Fields of pydantic ``BaseSettings`` classes whose name says secret (secret,
    password, token, api_key, private_key, credential) and whose default is a non-empty
    string literal, e.g. ``auth_secret_key: str = "dev-auth-secret"``.

    Why: a deployment that forgets the environment variable silently runs with a
    secret everybody can read in the repository: forged JWTs and sessions. BLOCKER.
    Not flagged: defaults of ``None`` or ``""`` (the app must get a value from the
    environment; whether production validation demands it is SEC-002's question),
    fields without a default, and non-secret names.
    """
    chk = default_secrets.check
    for path, cls_name, _line in ctx.layout.settings_classes:
        src = ctx.index.get(path)
        cls = next((n for n in ast.walk(src.tree) if isinstance(n, ast.ClassDef)
                    and n.name == cls_name), None) if src and src.tree else None
        for stmt in cls.body if cls else []:
            if not (isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name)):
                continue
            name = stmt.target.id
            if not SECRET_NAME.search(name):
                continue
            default = field_default(stmt.value)
            if not isinstance(default, str) or not default.strip():
                continue
            yield chk.finding(
                ctx, Severity.BLOCKER, f"Secret setting `{name}` has a hard-coded default",
                f"`{cls_name}.{name}` (env var {name.upper()}) falls back to a literal that is "
                "committed to the repository; a deployment that does not set it signs or "
                "authenticates with a publicly known secret.",
                f"Remove the default (declare `{name}: str` or `SecretStr` with no default) so the "
                "app refuses to start without it, and reject known dev values in production "
                "config validation.",
                path, stmt.lineno, settings=[name.upper()])
