"""How does the target run its own tests? Read from its CI workflows, Makefile, tox.ini and
noxfile.py (text and AST only), falling back to ``python -m pytest``.

The result is the pytest *arguments* the project passes (paths, ``-m`` markers, ``-k``),
the environment its CI sets for that step, whether that environment expects PostgreSQL,
and where it was found (for the report). The interpreter and the reporting options
(JUnit XML, coverage, timeouts) are auditlib's, so they are dropped from the arguments.

Workflows are read the way the CI reads them: every scalar is kept as its source text
(GitHub Actions gives ``env:`` values as strings, so ``EXPORT_MODE: off`` is ``"off"``,
where a YAML 1.1 loader would say ``False``); ``env`` is merged workflow < job <
``$GITHUB_ENV`` written by earlier steps < step, with ``${{ matrix.X }}`` (first
combination) and ``${{ env.X }}`` substituted. The steps before the test step are
classified (:class:`CIStep`): ``alembic ... upgrade`` is replayed against the throwaway
database, literal ``echo "X=1" >> $GITHUB_ENV`` is applied, installs and checks are not
needed, and anything else is reported as not replayed. A ``services:`` container whose
image is PostgreSQL is noted (:attr:`TestCommand.pg_service`): the throwaway database
stands in for it, and so does a compose service with a PostgreSQL image started by a step
(``docker compose up -d db``). A step that runs one of the project's shell scripts
(``bash scripts/prestart.sh``, ``./scripts/test.sh``, through ``uv run`` or ``poetry run``)
is read as the script's commands (scripts it runs included, three levels deep): the test
command and the migration often live there.
"""
from __future__ import annotations

import ast
import configparser
import os
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from ..code.pyast import walk

# Options auditlib sets itself (reporting, coverage, timeouts, caching, parallelism).
_DROP_PREFIXES = ("--cov", "--junitxml", "--junit-xml", "--timeout", "--html", "--json-report", "--numprocesses",
                  "--dist", "--basetemp", "--lf", "--ff", "--sw")
_DROP_WITH_VALUE = {"-n", "-p", "--cov", "--timeout", "--junitxml", "--numprocesses", "--dist", "--basetemp"}
_SHELL_OPS = {"&&", "||", ";", "|", ">", ">>", "2>&1"}
_WORKFLOW_SECRET = re.compile(r"\$\{\{\s*secrets\.")
# what may stand before ``pytest`` on a line that runs it: `poetry run`, `python -m`,
# `coverage run -m`, `timeout 600`, `FOO=1` ...
_WRAPPER = re.compile(r"^([A-Za-z_]\w*=.*|poetry|uv|pipenv|pdm|hatch|rye|run|exec|env|sudo|-E|time|timeout|nice|"
                      r"xvfb-run|-a|\d+[smh]?|coverage|--[\w-]+=\S+|-m|\S*/?python(\d(\.\d+)?)?)$")


@dataclass
class CIStep:
    """A command of a CI step that runs before the tests."""

    name: str  # the step's name (or its first line)
    line: str  # the command as written
    kind: str  # "migrate" (replayed) | "env" (applied) | "service" (stood in for) | "other" (not replayed)
    args: list[str] = field(default_factory=list)  # migrate: alembic's arguments
    env: dict[str, str] = field(default_factory=dict)  # migrate: the environment at that step
    cwd: str = ""  # working directory, relative to the root
    service: dict = field(default_factory=dict)  # service: the PostgreSQL service it starts

    @property
    def shown(self) -> str:
        return f"step '{self.name}': `{self.line.strip()}`" if self.name != self.line.strip() \
            else f"`{self.line.strip()}`"


@dataclass
class TestCommand:
    args: list[str] = field(default_factory=list)  # pytest arguments of the project
    env: dict[str, str] = field(default_factory=dict)  # environment its CI gives that step
    source: str = ""  # file (and job/target) the command came from; "" for the default
    line: str = ""  # the command line as written there
    expects_postgres: bool = False
    cwd: str = ""  # the test step's working directory, relative to the root
    before: list[CIStep] = field(default_factory=list)  # what the CI does first (see CIStep)
    pg_service: dict = field(default_factory=dict)  # {"name", "image", "env", "ports"} of a PostgreSQL service

    @property
    def replayed(self) -> list[CIStep]:
        return [s for s in self.before if s.kind == "migrate"]

    @property
    def not_replayed(self) -> list[CIStep]:
        return [s for s in self.before if s.kind == "other"]

    @property
    def why(self) -> str:
        if not self.source:
            return "no test command found in CI workflows, Makefile, tox.ini or noxfile.py: default `python -m pytest`"
        return f"the project's own test command from {self.source}: `{self.line.strip()}`"


def pytest_args(command: str) -> list[str] | None:
    """The arguments following ``pytest`` in a shell command line (None: no pytest)."""
    try:
        tokens = shlex.split(command, comments=True)
    except ValueError:
        return None
    for i, tok in enumerate(tokens):
        name = tok.rsplit("/", 1)[-1]
        if name in ("pytest", "py.test") or (tok == "-m" and i + 1 < len(tokens) and tokens[i + 1] == "pytest"):
            break
    else:
        return None
    if not all(_WRAPPER.match(t) for t in tokens[:i]):  # `pip install pytest`: not a test run
        return None
    out: list[str] = []
    skip = False
    for t in tokens[i + (2 if tok == "-m" else 1):]:
        if t in _SHELL_OPS:
            break
        if skip:
            skip = False
            continue
        if t in _DROP_WITH_VALUE:
            skip = True
            continue
        if t.startswith(_DROP_PREFIXES) or "{" in t or "$" in t:
            continue
        out.append(t)
    return out


def _postgres_value(value: str) -> bool:
    return bool(re.match(r"postgres(ql)?(\+\w+)?://", str(value)))


class _CILoader(yaml.SafeLoader):
    """YAML as CI reads it: every plain scalar stays its source text (no YAML 1.1
    booleans, numbers or nulls); merge keys (``<<: *anchor``) still work."""


_CILoader.yaml_implicit_resolvers = {}
_CILoader.add_implicit_resolver("tag:yaml.org,2002:merge", re.compile(r"^(?:<<)$"), ["<"])


def load_ci_yaml(text: str):
    """A CI file's YAML with every scalar a string (None when it does not parse)."""
    try:
        return yaml.load(text or "", Loader=_CILoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError:
        return None


_EXPR = re.compile(r"\$\{\{\s*(matrix|env)\.([\w-]+)\s*\}\}")
_GITHUB_ENV = re.compile(r"""^\s*echo\s+(?:-e\s+)?(["']?)([A-Za-z_]\w*)=(.*?)\1\s*>>\s*["']?\$\{?GITHUB_ENV\}?["']?\s*$""")
# commands a CI runs before its tests that the audit does not need: the target environment
# is auditlib's (installs), and linters/type checkers do not change what the tests see
_NOT_NEEDED = re.compile(
    r"^(sudo\s+)?(pip3?|python3?\s+-m\s+pip|(uv|poetry|pipenv|pdm|hatch|rye)(?!\s+run\b)|conda|apt(-get)?|brew|npm|yarn|pnpm|"
    r"pre-commit|ruff|black|isort|flake8|mypy|pyright|pylint|bandit|echo|printf|cat|ls|pwd|env|which|"
    r"python3?\s+(-V|--version)|git|curl\s+-sSL\s+https://install|export\s+PATH|source|\.|"
    r"docker[\s-]compose(\s+-f\s+\S+)*\s+(down|pull|ps|logs|build|config)|docker\s+(ps|logs|pull|network))(\s|$)")
# shell syntax of a script: not a command of its own
_SHELL_SYNTAX = re.compile(r"^(set|shift|exit|return|true|false|:|then|else|elif|fi|do|done|esac|;;|[{}]|"
                           r"if|while|until|for|case|function|local|declare|readonly|\[\[?)(\s|$)|"
                           r"^[A-Za-z_]\w*=|^[^\s()]+\)$|^\w+\s*\(\)")
_SCRIPT_RUNNER = re.compile(r"^(?:(?:uv|poetry|pipenv|pdm|hatch|rye)\s+run\s+|exec\s+)?"
                            r"(?:(?:bash|sh|zsh)\s+(?:-[a-z]+\s+)*)?(?P<path>(?:\./)?[\w./-]+\.sh|\./[\w./-]+)(?:\s|$)")


def _first_matrix(job: dict) -> dict[str, str]:
    strategy = job.get("strategy") if isinstance(job.get("strategy"), dict) else {}
    matrix = strategy.get("matrix") if isinstance(strategy.get("matrix"), dict) else {}
    out = {str(k): str(v[0]) for k, v in matrix.items()
           if k not in ("include", "exclude") and isinstance(v, list) and v and not isinstance(v[0], (dict, list))}
    include = matrix.get("include")
    if isinstance(include, list) and include and isinstance(include[0], dict):
        out.update({str(k): str(v) for k, v in include[0].items() if not isinstance(v, (dict, list))})
    return out


def _substitute(value: str, matrix: dict[str, str], env: dict[str, str]) -> str:
    def repl(m: re.Match) -> str:
        table = matrix if m.group(1) == "matrix" else env
        return table.get(m.group(2), m.group(0))

    return _EXPR.sub(repl, value)


def _layer(value, matrix: dict[str, str], below: dict[str, str]) -> dict[str, str]:
    """One ``env:`` level over ``below`` (``${{ env.X }}`` sees the levels below)."""
    out = dict(below)
    for k, v in _env_dict(value).items():
        out[k] = _substitute(v, matrix, below)
    return out


def _pg_service(job: dict) -> dict:
    """The job's PostgreSQL service container: GitHub's ``services: {name: {image, env, ports}}``,
    GitLab's ``services: [image | {name: image, alias}]`` (host: the alias, else the image's name)."""
    services = job.get("services")
    if isinstance(services, dict):
        items = [(str(k), v if isinstance(v, dict) else {"image": v}) for k, v in services.items()]
    elif isinstance(services, list):
        items = []
        for v in services:
            v = v if isinstance(v, dict) else {"name": v}
            image = str(v.get("name") or "")
            items.append((str(v.get("alias") or image.split(":", 1)[0].rsplit("/", 1)[-1]),
                          {"image": image, "env": v.get("variables")}))
    else:
        items = []
    for name, svc in items:
        image = str(svc.get("image") or "")
        if re.search(r"(^|/)(postgres|postgresql|postgis|pgvector|timescaledb[\w-]*)(:|$)", image):
            return {"name": name, "image": image, "env": _env_dict(svc.get("env")),
                    "ports": [str(p) for p in svc.get("ports") or [] if not isinstance(p, (dict, list))]}
    return {}


def _commands(run: str) -> list[str]:
    """A ``run:`` block as single commands (continuations joined, ``&&``/``;`` split)."""
    text = re.sub(r"\\\n\s*", " ", run)
    out = []
    for line in text.splitlines():
        if not line.strip() or line.strip().startswith("#"):
            continue
        out += [c.strip() for c in re.split(r"\s*(?:&&|;)\s*", line) if c.strip()]
    return out


def _alembic_args(command: str) -> list[str] | None:
    """``alembic [-c ini] upgrade REV`` (bare, ``python -m``, or through poetry/uv/pipenv/pdm run;
    a ``|| fallback`` after it is what the CI does when it fails)."""
    try:
        tokens = shlex.split(command, comments=True)
    except ValueError:
        return None
    while tokens and tokens[0] in ("poetry", "uv", "pipenv", "pdm", "hatch") and tokens[1:2] == ["run"]:
        tokens = tokens[2:]
    if len(tokens) >= 3 and tokens[0].rsplit("/", 1)[-1].startswith("python") and tokens[1:3] == ["-m", "alembic"]:
        tokens = tokens[2:]
    if not tokens or tokens[0] != "alembic":
        return None
    if "||" in tokens:  # `alembic upgrade head || echo ...`: the fallback runs only when it fails
        tokens = tokens[:tokens.index("||")]
    rest = tokens[1:]
    if any(t in _SHELL_OPS for t in rest) or "upgrade" not in rest:
        return None
    return rest


def _subdir(base: str, path: str) -> str:
    """``base/path`` normalised, relative to the root ("" = the root; None-like "" when it leaves it)."""
    if path.startswith("/"):
        return base
    norm = os.path.normpath(os.path.join(base or ".", path))
    return "" if norm == "." or norm.startswith("..") else norm


def _compose_pg(ctx, command: str, cwd: str) -> dict | None:
    """``docker compose up [-d] [SERVICE...]``: the started PostgreSQL service of the compose
    file (``{"name", "image", "env", "ports", "others"}``), None when it starts none."""
    m = re.match(r"^(?:sudo\s+)?docker[\s-]compose\b(?P<opts>(?:\s+-f\s+\S+|\s+-p\s+\S+)*)\s+up\b(?P<rest>.*)$", command)
    if ctx is None or not m:
        return None
    files = re.findall(r"-f\s+(\S+)", m.group("opts")) or \
        ["compose.yaml", "compose.yml", "docker-compose.yml", "docker-compose.yaml"]
    data = None
    for name in files:
        src = ctx.index.get(_subdir(cwd, name)) or ctx.index.get(name)
        if src is not None and isinstance(data := load_ci_yaml(src.text), dict):
            break
    services = data.get("services") if isinstance(data, dict) else None
    if not isinstance(services, dict):
        return None
    wanted = [t for t in shlex.split(m.group("rest"), comments=True) if not t.startswith("-") and t in services] \
        or list(services)
    for svc in wanted:
        spec = services.get(svc)
        image = str(spec.get("image") or "") if isinstance(spec, dict) else ""
        if re.search(r"(^|/)(postgres|postgresql|postgis|pgvector|timescaledb[\w-]*)(:|$)", image):
            env = spec.get("environment")
            if isinstance(env, list):
                env = dict(str(e).split("=", 1) for e in env if "=" in str(e))
            return {"name": svc, "image": image, "env": _env_dict(env),
                    "ports": [str(p) for p in spec.get("ports") or [] if not isinstance(p, (dict, list))],
                    "others": [o for o in wanted if o != svc]}
    return None


def _script_commands(ctx, command: str, cwd: str, depth: int = 0) -> list[tuple[str, str]] | None:
    """The commands of the project's shell script that ``command`` runs, each with the
    script it is written in (scripts it runs expanded in place, three levels deep); None
    when it runs none."""
    m = _SCRIPT_RUNNER.match(command)
    if ctx is None or depth > 2 or not m:
        return None
    path = _subdir(cwd, m.group("path"))
    src = ctx.index.get(path)
    if src is None or not src.text:
        return None
    out = []
    for line in _commands(src.text):
        if _SHELL_SYNTAX.match(line) or line.startswith("#!"):
            continue
        out += _script_commands(ctx, line, cwd, depth + 1) or [(line, path)]
    return out


def _expand(ctx, commands: list[str], cwd: str) -> list[tuple[str, str]]:
    """Commands with the project's scripts read in place: ``(command, script path or "")``."""
    out = []
    for command in commands:
        out += _script_commands(ctx, command, cwd) or [(command, "")]
    return out


def _classify(name: str, commands: list[str], env: dict[str, str], cwd: str,
              ctx=None) -> tuple[list[CIStep], dict[str, str]]:
    """(steps, literal ``$GITHUB_ENV`` assignments) of commands that run before the tests."""
    steps, written, here = [], {}, cwd
    for command in [c for c, _ in _expand(ctx, commands, cwd)]:
        if m := _GITHUB_ENV.match(command):
            if "$" in m.group(3) or "`" in m.group(3):  # computed: not a literal
                steps.append(CIStep(name, command, "other"))
            else:
                written[m.group(2)] = m.group(3)
                steps.append(CIStep(name, command, "env"))
            continue
        if m := re.match(r"^cd\s+([\w./-]+)$", command):
            here = _subdir(here, m.group(1))
            continue
        args = _alembic_args(command)
        service = _compose_pg(ctx, command, here)
        if args is not None:
            steps.append(CIStep(name, command, "migrate", args, {**env, **written}, here))
        elif service is not None:
            steps.append(CIStep(name, command, "service", cwd=here, service=service))
            if service["others"]:  # the other services it starts are not stood in for
                steps.append(CIStep(name, command, "other"))
        elif not _NOT_NEEDED.match(command) or re.search(r">(?!\s*&?[12]\b|\s*/dev/null|>?\s*[\"']?\$\{?GITHUB_)",
                                                             command):
            steps.append(CIStep(name, command, "other"))  # writes a file, or something else: not replayed
    return steps, written


def _from_workflows(ctx) -> TestCommand | None:
    for f in ctx.index.select(".github/workflows/*.yml") + ctx.index.select(".github/workflows/*.yaml") \
            + ctx.index.select(".gitlab-ci.yml"):
        data = load_ci_yaml(f.text)
        if not isinstance(data, dict):
            continue
        gitlab = f.path.endswith(".gitlab-ci.yml")
        jobs = {k: v for k, v in data.items() if isinstance(v, dict) and "script" in v} if gitlab else \
            data.get("jobs") if isinstance(data.get("jobs"), dict) else {}
        for job_name, job in jobs.items():
            if not isinstance(job, dict):
                continue
            matrix = _first_matrix(job)
            env = _layer(data.get("variables" if gitlab else "env"), matrix, {})
            env = _layer(job.get("variables" if gitlab else "env"), matrix, env)
            defaults = job.get("defaults") if isinstance(job.get("defaults"), dict) else {}
            job_cwd = str((defaults.get("run") or {}).get("working-directory") or "") \
                if isinstance(defaults.get("run"), dict) else ""
            service = _pg_service(job)
            steps = job.get("steps") if isinstance(job.get("steps"), list) else \
                [{"run": "\n".join(map(str, job.get(k) or []))} for k in ("before_script", "script")
                 if isinstance(job.get(k), list)]
            before: list[CIStep] = []
            written: dict[str, str] = {}
            for step in steps:
                run = step.get("run") if isinstance(step, dict) else None
                if not isinstance(run, str):
                    continue
                step_env = _layer(step.get("env"), matrix, {**env, **written})
                cwd = _subdir("", str(step.get("working-directory") or job_cwd or "."))
                name = str(step.get("name") or run.strip().splitlines()[0])
                commands = _commands(run)
                expanded = _expand(ctx, commands, cwd)
                for i, (line, script) in enumerate(expanded):
                    args = pytest_args(line)
                    if args is not None:
                        earlier = [c for c, _ in expanded[:i]]
                        here = _classify(name, earlier, step_env, cwd, ctx)[0]
                        for c in earlier:  # `cd backend && pytest`
                            if m := re.match(r"^cd\s+([\w./-]+)$", c):
                                cwd = _subdir(cwd, m.group(1))
                        steps_before = before + here
                        service = service or next((s.service for s in steps_before if s.kind == "service"), {})
                        via = f" via {script}" if script else ""
                        return TestCommand(args, step_env, f"{f.path} (job {job_name}){via}", line,
                                           bool(service) or any(_postgres_value(v) for v in step_env.values()),
                                           cwd, steps_before, service)
                found, wrote = _classify(name, commands, step_env, cwd, ctx)
                before += found
                written.update(wrote)
    return None


def _env_dict(value) -> dict[str, str]:
    if not isinstance(value, dict):
        return {}
    return {str(k): ("" if v is None else str(v)) for k, v in value.items() if not isinstance(v, (dict, list))}


def _from_makefile(ctx) -> TestCommand | None:
    src = ctx.index.get("Makefile")
    if src is None or not src.text:
        return None
    target = None
    for n, line in enumerate(src.text.splitlines(), 1):
        if m := re.match(r"^([\w.-]+)\s*:(?!=)", line):
            target = m.group(1)
        elif line.startswith("\t") and target and target.startswith("test"):
            args = pytest_args(line.strip().lstrip("@-"))
            if args is not None:
                return TestCommand(args, {}, f"Makefile:{n} (target {target})", line.strip())
    return None


def _from_tox(ctx) -> TestCommand | None:
    src = ctx.index.get("tox.ini")
    if src is None or not src.text:
        return None
    parser = configparser.ConfigParser(interpolation=None)
    try:
        parser.read_string(src.text)
    except configparser.Error:
        return None
    if not parser.has_section("testenv"):
        return None
    env = {}
    for line in parser.get("testenv", "setenv", fallback="").splitlines():
        if "=" in line:
            k, v = line.split("=", 1)
            env[k.strip()] = v.strip()
    for line in parser.get("testenv", "commands", fallback="").splitlines():
        args = pytest_args(line)
        if args is not None:
            return TestCommand(args, env, "tox.ini [testenv] commands", line,
                               any(_postgres_value(v) for v in env.values()))
    return None


def _from_nox(ctx) -> TestCommand | None:
    src = ctx.index.get("noxfile.py")
    if src is None or src.tree is None:
        return None
    for node in walk(src.tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "run":
            words = [a.value for a in node.args if isinstance(a, ast.Constant) and isinstance(a.value, str)]
            if words and words[0] in ("pytest", "py.test"):
                line = " ".join(words)
                return TestCommand(pytest_args(line) or [], {}, f"noxfile.py:{node.lineno}", line)
    return None


def discover_test_command(ctx) -> TestCommand:
    """The project's test command (first of CI workflow, Makefile, tox, nox) or the default.

    Overridable with ``[tool.auditlib] tests_args = [...]`` and ``tests_env = {...}``.
    """
    cmd = _from_workflows(ctx) or _from_makefile(ctx) or _from_tox(ctx) or _from_nox(ctx) or TestCommand()
    if ctx.config.get("tests_args") is not None:
        cmd.args, cmd.source = list(ctx.config["tests_args"]), "[tool.auditlib] tests_args"
        cmd.line = "pytest " + " ".join(cmd.args)
    cmd.env.update({str(k): str(v) for k, v in (ctx.config.get("tests_env") or {}).items()})
    if not cmd.expects_postgres:
        cmd.expects_postgres = _tests_mention_postgres(ctx)
    return cmd


def _tests_mention_postgres(ctx) -> bool:
    """Test code or settings that name a PostgreSQL URL: the suite expects PostgreSQL."""
    lay = ctx.layout
    for f in ctx.index.python_files():
        if lay.is_test(f.path) and f.text and re.search(r"postgres(ql)?(\+\w+)?://", f.text):
            return True
    return False


def masked_env(env: dict[str, str]) -> dict[str, str]:
    """The environment for display: URL passwords and secret-like values masked."""
    from ..redact import redact_text, redact_url

    secret_name = re.compile(r"secret|passw|pwd|token|key|credential", re.I)
    out = {}
    for k, v in sorted(env.items()):
        if secret_name.search(k) or _WORKFLOW_SECRET.search(v):
            out[k] = "****" if v else ""
        else:
            out[k] = redact_url(redact_text(v)) if v else v
    return out
