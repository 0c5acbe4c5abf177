"""DEP-001: env example files document every critical variable and every setting read."""
from __future__ import annotations

import ast
import re

from ..findings import Location, Severity, not_verified
from ..code.pyast import dotted, literal, of_type, parent_map
from ..facts.settings_model import settings_model
from . import check

# Without a configured `critical_env` (a named profile sets one), the critical variables
# are read from the app: the secrets it uses, where its data lives (database, cache,
# broker, bucket URLs/DSNs) and who may call it (CORS origins, allowed hosts).
INFRA_NAME = re.compile(r"(^|_)(DATABASE|DB|POSTGRES|REDIS|BROKER|AMQP|RABBIT|MONGO|CACHE|ELASTIC\w*|S3|BUCKET|STORAGE)"
                        r"(_\w+)?_(URL|URI|DSN|HOST|BUCKET|NAME)$|(^|_)(CORS\w*|ALLOWED_HOSTS|TRUSTED_HOSTS|ALLOWED_ORIGINS)$",
                        re.I)


def critical_variables(ctx, model) -> list[str]:
    """``critical_env`` when configured, else the secrets and infrastructure settings the
    code reads (their environment names), leaving out optional integrations (default
    None or empty) and test settings classes."""
    configured = ctx.config.get("critical_env")
    if configured:
        return [c.upper() for c in configured]
    names = []
    for s in model.settings:
        if re.search(r"test", s.owner, re.I):
            continue  # a test settings class configures the suite, not a deployment
        if s.empty and not s.required and not _startup_refusal(ctx, s):
            continue  # an optional integration (default None/empty): off until set, listed as optional
        if s.secret and not _scalar(s) or any(INFRA_NAME.search(e) for e in s.env_names):
            names += [e.upper() for e in s.env_names[:1]]
    return list(dict.fromkeys(names))


def _scalar(s) -> bool:
    """A number or a flag (``password_min_score: int = 3``, ``token_expiration = 86400``,
    ``desired_memory_token_pressure: float``): its name mentions a secret, its value is not one."""
    ann = re.sub(r"\b(Optional|Annotated|typing)\b|[\[\]\s]|\|\s*None|None\s*\|", "", s.annotation or "")
    if ann.split(",")[0] in ("int", "float", "bool", "PositiveInt", "NonNegativeInt", "PositiveFloat", "conint",
                             "confloat", "timedelta"):
        return True
    return not s.annotation and s.literal_default and isinstance(s.default, (int, float, bool))
# Variables read by libraries, servers and images rather than by the app's own code.
IMPLICIT_ENV = ["AWS_", "SENTRY_", "OTEL_", "UVICORN_", "GUNICORN_", "WEB_CONCURRENCY", "PYTHON", "TZ",
                "LANG", "PG", "POSTGRES_", "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "PORT", "HOST",
                "FORWARDED_ALLOW_IPS", "COMPOSE_", "DOCKER_", "MINIO_", "REDIS_PASSWORD"]
ENV_LINE = re.compile(r"^\s*#?\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=")
TEST_EXAMPLE = re.compile(r"test|\bci\b|\.ci\.", re.IGNORECASE)
# variables a browser bundle reads (build-time public variables of JS frameworks)
FRONTEND_PREFIXES = ("NEXT_PUBLIC_", "VITE_", "REACT_APP_", "NUXT_PUBLIC_", "NUXT_", "EXPO_PUBLIC_",
                     "GATSBY_", "VUE_APP_", "PUBLIC_", "STORYBOOK_")
STARTUP_FN = re.compile(r"lifespan|startup|create_app|app_factory|get_settings|validate|check|verify|ensure|main$",
                        re.IGNORECASE)


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
    Severity, per example file (test/CI examples excepted): a required setting (no
    default, or one a start-up check refuses to run without) that the file does not
    mention is a WARNING, and so is a critical variable with a default (a secret, where
    data lives, CORS / allowed hosts) of a settings class the file documents (one
    finding per example file naming every such variable, located at the file, with each
    line that reads one as a further location). An example is matched to the settings it
    documents: a file whose keys all belong to one class (the LLM providers' keys, say)
    does not claim to configure another class, so that class's critical variables with
    defaults are one RECOMMENDATION ("documented in no env example") instead; a file that
    matches no class is compared with all of them. Optional settings documented in no
    example are one grouped RECOMMENDATION; a variable an example documents that nothing
    in the project reads (a stale or misspelt name) is a RECOMMENDATION on its line.
    No env example at all is a documentation gap, a RECOMMENDATION (nothing misleads
    operators, a required setting stops the app with an error naming it, development
    defaults of secrets are SEC-001's): its message says which variables must be set and
    which have development defaults; variables the project's docs (README, ``docs/``)
    name are documented there, and when the docs name all of them it is INFO; INFO too
    when the code reads no setting. Commented-out ``# KEY=`` lines count as documented.
    Critical variables are the secrets and infrastructure settings the code reads;
    a number or a flag is never a secret, whatever its name (``password_min_score: int``,
    ``token_expiration``).
    Only the backend's own examples are compared: an example documents the backend when
    one of its keys is a variable the settings read, or when it sits beside the backend's
    code and is not made of a browser bundle's public variables (``web/.env.example`` with
    ``NEXT_PUBLIC_*`` keys documents the frontend: neither compared nor reported stale).
    The message of a missing variable says what happens: a required setting (or one a
    start-up check refuses to run without, ``if not settings.x: raise`` in a validator,
    the lifespan or at import) makes the app refuse to start; an ``os.environ[...]`` read
    inside a function fails when that function runs; otherwise the app runs on the
    code's default. ``os.environ["X"]`` guarded by ``if "X" in os.environ`` (or a ``try``
    catching ``KeyError``) is optional.
    Not flagged as missing: critical variables the code never reads (that feature is
    absent: INFO), variables read implicitly by libraries and images (``AWS_*``,
    ``SENTRY_*``, ``POSTGRES_*``...: ``env_implicit_prefixes``).
    """
    chk = env_documentation.check
    model = settings_model(ctx)
    critical = critical_variables(ctx, model)
    implicit = tuple(p.upper() for p in ctx.config.get("env_implicit_prefixes", IMPLICIT_ENV))
    by_env = {}
    for s in model.settings:
        for e in s.env_names:
            by_env.setdefault(e, s)
    found = [p for p in ctx.layout.env_examples if ctx.index.get(p) and ctx.index.get(p).text is not None]
    must = [e for e in dict.fromkeys(critical + [e for e, s in by_env.items() if s.required]) if e in by_env]
    examples, others = _backend_examples(ctx, found, by_env)
    if not examples:
        yield from _no_example(ctx, chk, model, by_env, must, others)
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

    def owners(keys) -> set[str]:
        """The settings classes a file documents: those one of its keys sets."""
        return {s.owner for e, s in by_env.items() if s.owner != "os.environ" and is_documented(keys, e)}

    configured = bool(ctx.config.get("critical_env"))
    elsewhere: dict[str, object] = {}  # critical settings with a default, of a class no example documents
    for path in examples:
        if TEST_EXAMPLE.search(path.rsplit("/", 1)[-1]):
            continue
        mine = owners(docs[path]) or {s.owner for s in by_env.values()}  # no class matched: all in scope
        missing = []  # (env, setting, what it does without it)
        for env in must:
            if is_documented(docs[path], env):
                continue
            s = by_env[env]
            kind = "critical variable" if env in critical else "required setting"
            refusal = None if s.required else _startup_refusal(ctx, s)
            if s.required and s.owner == "os.environ" and s.function:
                what = (f"with no default: `{s.function}()` raises KeyError without it",
                        f"fails when `{s.function}()` runs")
            elif s.required:
                what = ("with no default: the app refuses to start without it", "refuses to start")
            elif refusal:
                what = (f"that the app checks at startup ({refusal}): it refuses to start without it",
                        "refuses to start")
            elif not configured and s.owner != "os.environ" and s.owner not in mine:
                # the file documents other settings classes (e.g. the LLM providers' keys), not this one:
                # it does not claim to configure it, and the code's default runs either way
                if not is_documented(union, env):
                    elsewhere.setdefault(env, s)
                continue
            else:
                what = ("", "runs on the code's default")
            missing.append((env, s, kind, what))
        if not missing:
            continue
        name = path.rsplit("/", 1)[-1]
        if len(missing) == 1:
            env, s, kind, what = missing[0]
            title = f"{env} is not documented in {name}"
            message = (f"The code reads {env} ({s.file}:{s.line}), a {kind}{' ' + what[0] if what[0] else ''}, "
                       f"but {path} does not mention it: a deployment configured from this file {what[1]}.")
        else:
            title = f"{len(missing)} variables are not documented in {name}"
            message = (f"{path} does not mention these variables the code reads; a deployment configured from "
                       "this file: " + "; ".join(f"{env} ({kind}, {s.file}:{s.line}) {what[1]}"
                                                   for env, s, kind, what in missing) + ".")
        f = chk.finding(ctx, Severity.WARNING, title, message,
                        f"Add {', '.join(f'`{env}=`' for env, *_ in missing[:8])}{' ...' if len(missing) > 8 else ''} "
                        f"with placeholder values and a comment to {path}.",
                        path, None, excerpt="", settings=[env for env, *_ in missing], key="missing")
        f.locations += [Location(s.file, s.line, s.line, ctx.index.get(s.file).line(s.line)[:300])
                        for _env, s, *_ in missing]
        yield f
    if elsewhere:
        classes = sorted({s.owner for s in elsewhere.values()})
        f = chk.finding(
            ctx, Severity.RECOMMENDATION, f"{len(elsewhere)} critical setting(s) documented in no env example",
            f"The code reads {', '.join(elsewhere)}, critical setting{'s' if len(elsewhere) > 1 else ''} (a secret, "
            f"where data lives or who may call the app) with {'defaults' if len(elsewhere) > 1 else 'a default'} in "
            f"the code; the env example(s) ({', '.join(examples)}) document other settings, not "
            f"{', '.join(f'`{c}`' for c in classes)}: operators do not learn from them that the defaults are to "
            "be replaced in production.",
            f"Document them in {examples[0]} (or an example of their own) with placeholder values.",
            examples[0], None, excerpt="", settings=list(elsewhere), key="critical-elsewhere")
        f.locations += [Location(s.file, s.line, s.line, ctx.index.get(s.file).line(s.line)[:300])
                        for s in elsewhere.values()]
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


def _no_example(ctx, chk, model, by_env, must, others):
    """No env example of the backend: a documentation gap (RECOMMENDATION). No example
    misleads operators, a required setting stops the app with an error naming it, and
    development defaults of secrets are SEC-001's. Variables the project's docs name
    (README, ``docs/``) are documented there; when all are, INFO."""
    elsewhere = (f" ({', '.join(f'`{p}`' for p in others)} document"
                 f"{'s' if len(others) == 1 else ''} another application: no variable in common with "
                 "the settings, not beside the backend's code)") if others else ""
    docs_text = "\n".join(ctx.index.get(p).text or "" for p in ctx.layout.docs if ctx.index.get(p))
    in_docs = [e for e in must if any(re.search(rf"\b{re.escape(n)}\b", docs_text) for n in by_env[e].env_names)]
    todo = [e for e in must if e not in in_docs]
    required = [e for e in todo if by_env[e].required or _startup_refusal(ctx, by_env[e])]
    defaults = [e for e in todo if e not in required]
    fix = "Add a `.env.example` beside the backend listing every variable the app reads, with placeholders for secrets."
    if must and not todo:
        yield chk.finding(
            ctx, Severity.INFO, "No env example file (variables documented in the docs)",
            f"No `.env.example` documents the backend's configuration{elsewhere}, but the project's documentation "
            f"names {', '.join(must)}.", fix, ".", None, excerpt="", settings=must, key="no-example")
        return
    if todo:
        parts = []
        if required:
            parts.append(f"{', '.join(required)} must be set (the app refuses to start without "
                         f"{'it' if len(required) == 1 else 'them'})")
        if defaults:
            parts.append(f"{', '.join(defaults)} (secrets, where data lives, who may call the app) have defaults "
                         "meant for development, to be replaced in production")
        docs = f" ({', '.join(in_docs)} {'is' if len(in_docs) == 1 else 'are'} in the docs)" if in_docs else ""
        yield chk.finding(
            ctx, Severity.RECOMMENDATION, "No env example file",
            f"No `.env.example` (or `.env.production.example`) documents the backend's configuration{elsewhere}, "
            f"and neither do the project's docs{docs}; operators must read the code to learn that "
            + "; and that ".join(parts) + ".",
            fix, ".", None, excerpt="", settings=todo, key="no-example")
        return
    yield chk.finding(
        ctx, Severity.RECOMMENDATION if model.settings else Severity.INFO, "No env example file",
        f"No `.env.example` (or `.env.production.example`) documents the backend's configuration{elsewhere}; "
        f"operators must read the code to learn which of its {len({s.env for s in model.settings})} settings "
        "(all with defaults) to tune.", fix, ".", None, excerpt="", settings=[], key="no-example")


def _backend_examples(ctx, paths: list[str], by_env: dict) -> tuple[list[str], list[str]]:
    """(the env examples of the audited backend, the examples of other applications).

    An example documents the backend when one of its keys is a variable the settings
    read, or when it sits beside the backend's code (its directory holds an app path) and
    is not made of a browser bundle's public variables (``NEXT_PUBLIC_*``, ``VITE_*``...).
    A ``web/.env.example`` of ``NEXT_PUBLIC_*`` keys documents the frontend."""
    names = set(by_env)
    app_dirs = [p.rsplit("/", 1)[0] if p.endswith(".py") else p for p in ctx.layout.app_paths] or [""]
    mine, others = [], []
    for path in paths:
        keys = set(documented(ctx.index.get(path).text))
        overlap = any(k in names or any(k.startswith(n + "__") for n in names) for k in keys)
        folder = path.rsplit("/", 1)[0] if "/" in path else ""
        beside = any(folder == "" or d == folder or d.startswith(folder + "/") for d in app_dirs)
        frontend = bool(keys) and sum(k.startswith(FRONTEND_PREFIXES) for k in keys) * 2 > len(keys)
        (mine if overlap or (beside and not frontend) else others).append(path)
    return mine, others


def _startup_refusal(ctx, s) -> str | None:
    """``file:line`` of a start-up check that refuses to start when the setting is unset:
    ``if not settings.x: raise`` / ``if settings.x is None: sys.exit(...)`` / ``assert
    settings.x`` at module level, in a settings validator, or in a start-up function
    (lifespan, app factory, ``get_settings``, ``validate_*``)."""
    names = {s.name.lower(), s.env.lower()}

    def names_it(node) -> bool:
        for n in of_type(node, (ast.Attribute, ast.Name, ast.Call)):
            if isinstance(n, ast.Attribute) and n.attr.lower() in names or isinstance(n, ast.Name) and n.id.lower() in names:
                return True
            if isinstance(n, ast.Call) and n.args and isinstance(literal(n.args[0]), str) \
                    and literal(n.args[0]).lower() in names and dotted(n.func).endswith(("getenv", "environ.get")):
                return True
        return False

    def missing_test(test) -> bool:
        if isinstance(test, ast.UnaryOp) and isinstance(test.op, ast.Not):
            return names_it(test.operand)
        if isinstance(test, ast.Compare) and len(test.ops) == 1 and isinstance(test.ops[0], (ast.Is, ast.Eq)) \
                and literal(test.comparators[0]) in (None, ""):
            return names_it(test.left)
        if isinstance(test, ast.BoolOp) and isinstance(test.op, ast.Or):
            return any(missing_test(v) for v in test.values)
        return False

    def at_startup(node, up) -> bool:
        p = up.get(id(node))
        while p is not None:
            if isinstance(p, (ast.FunctionDef, ast.AsyncFunctionDef)):
                decos = " ".join(dotted(d) for d in p.decorator_list)
                return bool(STARTUP_FN.search(p.name) or re.search(r"validator|on_event", decos))
            p = up.get(id(p))
        return True  # module level: runs at import

    for src in ctx.layout.app_sources(ctx.index):
        text = src.text or ""
        if src.tree is None or text.isascii() and not any(n in text.lower() for n in names):
            continue
        up = None
        for node in of_type(src.tree, (ast.If, ast.Assert)):
            if isinstance(node, ast.Assert):
                hit = names_it(node.test) and not missing_test(node.test)
            else:
                hit = missing_test(node.test) and any(
                    isinstance(x, ast.Raise) or isinstance(x, ast.Call) and dotted(x.func) in ("sys.exit", "exit")
                    for st in node.body for x in of_type(st, (ast.Raise, ast.Call)))
            if hit:
                up = up if up is not None else parent_map(src.tree)
                if at_startup(node, up):
                    return f"{src.path}:{node.lineno}"
    return None


def _referenced_text(ctx, skip: set[str]) -> str:
    """The text of every indexed file except the env examples (compose, Dockerfile, scripts...)."""
    return "\n".join(f.text for f in ctx.index if f.text is not None and f.path not in skip
                     and not f.path.endswith((".md", ".rst")))
