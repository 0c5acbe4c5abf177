"""SEC-002: production config validation and the rules it enforces."""
from __future__ import annotations

from ..findings import Severity
from ..facts.prod_validation import bypass_on_by_default, env_default, prod_validation
from ..facts.settings_model import settings_model
from . import check


@check("SEC-002", "security", "Production config validation")
def prod_config_validation(ctx):
    """Finds the code that runs only in production (a comparison of ``APP_ENV`` /
    ``ENVIRONMENT`` / ``settings.is_production`` with ``prod``/``production``, in a
    pydantic ``model_validator``, a ``_validate_prod_config()`` called under such a gate,
    ``get_settings()``, the app factory (``create_app()``), the lifespan...) and can refuse to start (``raise``,
    ``sys.exit``, ``assert``), then reports each rule of the profile's
    ``prod_validation_rules`` (default: rejects default secrets, ``STRIPE_SECRET_KEY``
    starts with ``sk_live_``, explicit ``CORS_ORIGINS``, ``REDIS_URL`` required, S3
    storage, ``METRICS_TOKEN`` required) as present (INFO, at its evidence) or missing.

    Why: defaults that are convenient in development (dev secrets, Stripe test keys,
    wildcard CORS, in-memory rate limiting, local file storage, open metrics) must not
    survive into production; validation at startup turns a silent misconfiguration
    into a failed deploy.
    Severity: no validation at all while rules apply is one WARNING on the settings
    class that declares the first setting concerned, listing the rules; with validation, each missing rule is a WARNING on the
    validating function; a validating function that nothing calls is a WARNING. A testing/debug flag that can skip the validation is a
    RECOMMENDATION (WARNING when the flag's default already skips it); validation that
    only runs when the environment setting is set to production while that setting
    defaults to something else is a RECOMMENDATION (fail-open).
    Not flagged: rules that do not apply to the app (shown as not applicable in the
    notebook table): no setting for them; CORS origins whose default (read through a
    module constant) is empty or lists origins without a wildcard (localhost development
    origins open nothing to other sites); the REDIS_URL rule when the app rate-limits
    nothing (no limiter library, decorator, dependency or middleware: Redis as a job
    queue or cache is not what the rule guards); the S3 rule unless a storage switch
    (``storage_backend``...) defaults to the local disk (an optional bucket beside
    database storage is no development default).
    """
    chk = prod_config_validation.check
    model = settings_model(ctx)
    pv = prod_validation(ctx)
    applicable = [r for r in pv.rules if r.applies]
    if not pv.validators:
        if not applicable:
            return
        # the settings class that declares the first setting concerned (else the setting itself)
        first = min((s for r in applicable for s in (r.missing or r.settings)), key=lambda s: (s.file, s.line))
        anchor = next((c for c in ctx.layout.settings_classes if c[0] == first.file and c[1] == first.owner), None)
        file, line = (anchor[0], anchor[2]) if anchor else (first.file, first.line)
        envs = sorted({s.env for r in applicable for s in (r.missing or r.settings)})
        yield chk.finding(
            ctx, Severity.WARNING, "No production config validation",
            "Nothing checks the configuration when the app runs in production (no code guarded by "
            "APP_ENV/ENVIRONMENT == 'prod' that can refuse to start). Missing rules: "
            + "; ".join(f"{r.title} ({', '.join(s.env for s in (r.missing or r.settings))})" for r in applicable)
            + ". A deployment with development values starts and serves traffic.",
            "Add a pydantic `@model_validator(mode='after')` (or a `_validate_prod_config()` called at "
            "startup) that, when APP_ENV is prod, raises on each of those rules.",
            file, line, settings=envs, key="no-validation")
        return
    for v in pv.validators:
        if not v.called:
            yield chk.finding(
                ctx, Severity.WARNING, f"Production validation `{v.origin}` is never called",
                f"`{v.origin}` checks the production configuration, but no application code calls it: "
                "none of its rules runs.", f"Call `{v.origin}` at startup (settings factory or lifespan).",
                v.file, v.line, key=f"uncalled:{v.origin}")
    live = [v for v in pv.validators if v.called]
    if not live:
        return
    v0 = live[0]
    for r in pv.rules:
        if not r.applies:
            continue
        if r.present:
            yield chk.finding(ctx, Severity.INFO, f"Production validation: {r.title}",
                              "The production validation enforces this rule.", "", r.where[0], r.where[1],
                              settings=[s.env for s in r.settings], key=r.id)
            continue
        names = [s.env for s in (r.missing or r.settings)]
        yield chk.finding(
            ctx, Severity.WARNING, f"Production validation misses: {r.title}",
            f"`{v0.name}` validates the production configuration but does not enforce '{r.title}' "
            f"({', '.join(names)}): a production deployment can start with a development value.",
            f"Add the rule to `{v0.name}`: raise when APP_ENV is prod and {', '.join(names)} "
            "is missing or has a development value.",
            v0.file, v0.line, settings=names, key=r.id)
    always_off = set(bypass_on_by_default(pv, model))
    for v in pv.validators:
        for text, f, ln in v.bypass:
            yield chk.finding(
                ctx, Severity.WARNING if text in always_off else Severity.RECOMMENDATION,
                f"Production validation can be bypassed by `{text}`",
                f"The production checks of `{v.name}` are skipped when `{text}` holds"
                + (", which is the default" if text in always_off else "")
                + ": one stray environment variable disables every rule in production.",
                "Do not let test/debug flags disable production validation; tests should run with "
                "APP_ENV=test instead.", f, ln, key=f"bypass:{text}")
    s, opt_in = env_default(pv)
    if s is not None:
        yield chk.finding(
            ctx, Severity.RECOMMENDATION, f"Production validation is opt-in: {opt_in}",
            f"The validation runs only when {s.env} says production and {opt_in}: a deployment "
            "that forgets to set it skips every production rule (fail-open).",
            f"Make {s.env} required (no default) or default it to production and opt into "
            "development explicitly.", s.file, s.line, settings=[s.env], key="opt-in")
