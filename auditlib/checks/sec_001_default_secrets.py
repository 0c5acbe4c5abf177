"""SEC-001: secret settings with an insecure literal default."""
from __future__ import annotations

from ..findings import Severity
from ..facts.prod_validation import bypass_on_by_default, env_default_text, prod_validation
from ..facts.settings_model import settings_model
from . import check


@check("SEC-001", "security", "Secret settings with insecure defaults")
def default_secrets(ctx):
    """Settings whose name says secret (secret, password, token, api_key, private_key,
    credential, signing_key; not ``*_url``, ``*_ttl``, ``*_header``...) or whose type is
    ``SecretStr``, and whose default is a non-empty string literal: pydantic settings
    fields (``auth_secret_key: str = "dev-auth-secret"``, ``Field("...")``) and direct
    reads (``os.getenv("AUTH_SECRET", "dev")``), from :mod:`auditlib.facts.settings_model`.

    Why: a deployment that forgets the environment variable silently runs with a secret
    everybody can read in the repository: forged tokens and sessions.
    Severity: BLOCKER, unless production config validation (SEC-002, see
    :mod:`auditlib.facts.prod_validation`) rejects that default at startup (a settings
    validator, a check in the app factory or the lifespan, ``if env == "local": warn()
    else: raise``): then a RECOMMENDATION whose message names the validator, says that a
    production deployment refuses to start with the default, that it only runs when the
    environment setting says production (and what that setting defaults to), and whether
    a testing/debug flag can bypass it. A bypass flag whose own default switches
    validation off keeps the BLOCKER.
    Not flagged: defaults of ``None``, ``""`` or an empty structure (``"{}"``, ``"[]"``) and fields without a default (the app
    must get a value from the environment; an optional admin password that disables
    the feature when unset fails closed), and non-secret names.
    """
    chk = default_secrets.check
    model = settings_model(ctx)
    pv = prod_validation(ctx)
    always_off = bypass_on_by_default(pv, model)
    for s in model.secrets():
        # "{}" / "[]" / "null" are empty structures (e.g. a JSON registry), not a secret value
        if not (isinstance(s.default, str) and s.default.strip(" {}[]\"'") and s.default.strip() != "null"):
            continue
        where = f"`{s.owner}.{s.name}`" if s.owner != "os.environ" else f"`os.environ[{s.env!r}]`"
        cover = pv.covering(s)
        severity = Severity.BLOCKER
        why = (f"{where} (env var {s.env}) falls back to a literal committed to the repository; a "
               "deployment that does not set it signs or authenticates with a publicly known secret.")
        if cover and not always_off:
            v, f, ln = cover
            severity = Severity.RECOMMENDATION
            why += (f" Production config validation `{v.name}` ({f}:{ln}) rejects it at startup when "
                    f"`{v.gate}`, so a production deployment refuses to start with it: a RECOMMENDATION "
                    "(remove the default anyway)")
            env_default = env_default_text(pv)
            why += f"; {env_default}, so a deployment that also forgets that setting is not protected" \
                if env_default else ""
            bypass = pv.bypass_text()
            why += f"; it can be bypassed by {bypass}." if bypass else "; no testing/debug flag bypasses it."
        elif cover:
            why += (f" Production validation exists but is switched off by default ({', '.join(always_off)}).")
        else:
            why += " No production config validation rejects this default (SEC-002)."
        yield chk.finding(
            ctx, severity, f"Secret setting `{s.name}` has a hard-coded default",
            why,
            f"Remove the default (declare `{s.name}: SecretStr` with no default) so the app refuses to "
            "start without it, and reject known dev values in production config validation.",
            s.file, s.line, settings=[s.env], key=s.env)
