"""DEP-001: env example files document every critical variable and every setting read."""
from __future__ import annotations

import re

from ..findings import Location, Severity, not_verified
from ..facts.settings_model import settings_model
from . import check

CRITICAL_ENV = ["DATABASE_URL", "AUTH_SECRET_KEY", "STRIPE_SECRET_KEY", "STRIPE_WEBHOOK_SECRET", "REDIS_URL",
                "S3_BUCKET", "S3_REGION", "EMAIL_FROM", "SENDGRID_API_KEY", "CORS_ORIGINS", "METRICS_TOKEN"]
# Variables read by libraries, servers and images rather than by the app's own code.
IMPLICIT_ENV = ["AWS_", "SENTRY_", "OTEL_", "UVICORN_", "GUNICORN_", "WEB_CONCURRENCY", "PYTHON", "TZ",
                "LANG", "PG", "POSTGRES_", "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "PORT", "HOST",
                "FORWARDED_ALLOW_IPS", "COMPOSE_", "DOCKER_", "MINIO_", "REDIS_PASSWORD"]
ENV_LINE = re.compile(r"^\s*#?\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=")
TEST_EXAMPLE = re.compile(r"test|\bci\b|\.ci\.", re.IGNORECASE)


def documented(text: str) -> dict[str, int]:
    """KEY -> line of ``KEY=...`` (commented-out ``# KEY=`` counts: documented, optional).

    Not python-dotenv's ``dotenv_values``: it drops line numbers and commented-out keys,
    both of which this check needs; only key names are read here, never values."""
    out: dict[str, int] = {}
    for n, line in enumerate(text.splitlines(), 1):
        m = ENV_LINE.match(line)
        if m:
            out.setdefault(m.group(1).upper(), n)
    return out


@check("DEP-001", "deployment", "Environment variables documented in env example files")
def env_documentation(ctx):
    """Env example files (``.env.example``, ``.env.production.example``...) against the
    variables the code reads (the settings model: pydantic settings fields with their
    env prefix / aliases, ``os.getenv`` / ``os.environ``) and the profile's
    ``critical_env`` list.

    Why: operators configure production from the example file; an undocumented
    required variable is a failed deploy, an undocumented secret or CORS list a
    production running on a development default.
    Severity, per example file (test/CI examples excepted): a critical variable the
    code reads, or a required setting (no default), that the file does not mention is
    a WARNING (one finding per variable, located at the example file, with the line
    that reads it as second location); optional settings documented in no example are
    one grouped RECOMMENDATION; a variable an example documents that nothing in the
    project reads (a stale or misspelt name) is a RECOMMENDATION on its line. No env
    example at all is a WARNING (INFO when the code reads no setting). Commented-out ``# KEY=`` lines count as documented.
    Not flagged as missing: critical variables the code never reads (that feature is
    absent: INFO), variables read implicitly by libraries and images (``AWS_*``,
    ``SENTRY_*``, ``POSTGRES_*``...: ``env_implicit_prefixes``).
    """
    chk = env_documentation.check
    model = settings_model(ctx)
    critical = [c.upper() for c in ctx.config.get("critical_env", CRITICAL_ENV)]
    implicit = tuple(p.upper() for p in ctx.config.get("env_implicit_prefixes", IMPLICIT_ENV))
    by_env = {}
    for s in model.settings:
        for e in s.env_names:
            by_env.setdefault(e, s)
    examples = [p for p in ctx.layout.env_examples if ctx.index.get(p) and ctx.index.get(p).text is not None]
    must = [e for e in dict.fromkeys(critical + [e for e, s in by_env.items() if s.required]) if e in by_env]
    if not examples:
        yield chk.finding(
            ctx, Severity.WARNING if model.settings else Severity.INFO, "No env example file",
            "No `.env.example` (or `.env.production.example`) documents the configuration; operators "
            f"must read the code to learn that {', '.join(must) or 'the settings'} must be set.",
            "Add a `.env.example` listing every variable the app reads, with placeholders for secrets.",
            ".", None, excerpt="", settings=must, key="no-example")
        return
    if not model.settings:
        yield not_verified(chk.id, chk.area, "variables read by the code",
                           "no pydantic settings class and no os.getenv/os.environ read was found; only the "
                           "critical variable list was compared",
                           location=Location(examples[0], None, None, ""))
    docs = {p: documented(ctx.index.get(p).text) for p in examples}
    union = {k for d in docs.values() for k in d}

    def is_documented(keys, env):
        s = by_env.get(env)
        names = s.env_names if s else [env]
        return any(n in keys or any(k.startswith(n + "__") for k in keys) for n in names)

    for path in examples:
        if TEST_EXAMPLE.search(path.rsplit("/", 1)[-1]):
            continue
        for env in must:
            if is_documented(docs[path], env):
                continue
            s = by_env[env]
            kind = "critical variable" if env in critical else "required setting"
            f = chk.finding(
                ctx, Severity.WARNING, f"{env} is not documented in {path.rsplit('/', 1)[-1]}",
                f"The code reads {env} ({s.file}:{s.line}), a {kind}"
                + (" with no default: the app does not start without it" if s.required else "")
                + f", but {path} does not mention it: a deployment configured from this file "
                + ("fails at startup." if s.required else "runs on the code's default."),
                f"Add `{env}=` with a placeholder value and a comment to {path}.",
                path, None, excerpt="", settings=[env], key=f"missing:{env}")
            f.locations.append(Location(s.file, s.line, s.line, ctx.index.get(s.file).line(s.line)[:300]))
            yield f
    unused = [env for env in critical if env not in by_env and env not in union]
    if unused:
        yield chk.finding(ctx, Severity.INFO, f"{len(unused)} critical variable(s) not used by the app",
                          f"{', '.join(unused)} are in the critical variable list (`critical_env`) but no code "
                          "reads them and no env example mentions them: the features they configure seem absent.",
                          "", examples[0], None, excerpt="", settings=unused, key="unused")
    optional = sorted({s.env for e, s in by_env.items() if e not in must and not is_documented(union, e)
                       and not any(is_documented(union, n) for n in s.env_names)})
    if optional:
        yield chk.finding(
            ctx, Severity.RECOMMENDATION, f"{len(optional)} optional setting(s) not documented",
            f"The code reads {', '.join(optional)} (with defaults) but no env example mentions them: "
            "operators cannot discover what can be tuned.",
            f"Add them to {examples[0]} (commented out with their default is enough).",
            examples[0], None, excerpt="", settings=optional, key="optional")
    referenced = _referenced_text(ctx, set(examples))
    for path in examples:
        for env, line in docs[path].items():
            if env in by_env or env.startswith(implicit) or env in critical or any(
                    env.startswith(n + "__") for n in by_env) or re.search(rf"\b{env}\b", referenced, re.IGNORECASE):
                continue
            yield chk.finding(
                ctx, Severity.RECOMMENDATION, f"{env} is documented but nothing reads it",
                f"{path} documents {env}, but neither the settings model nor any other file of the project "
                "refers to it: a stale or misspelt name that operators will set in vain.",
                f"Remove {env} from {path}, or fix its name to the one the code reads.",
                path, line, settings=[env], key=f"stale:{env}")


def _referenced_text(ctx, skip: set[str]) -> str:
    """The text of every indexed file except the env examples (compose, Dockerfile, scripts...)."""
    return "\n".join(f.text for f in ctx.index if f.text is not None and f.path not in skip
                     and not f.path.endswith((".md", ".rst")))
