"""How does the target run its own tests? Read from its CI workflows, Makefile, tox.ini and
noxfile.py (text and AST only), falling back to ``python -m pytest``.

The result is the pytest *arguments* the project passes (paths, ``-m`` markers, ``-k``),
the environment its CI sets for that step, whether that environment expects PostgreSQL,
and where it was found (for the report). The interpreter and the reporting options
(JUnit XML, coverage, timeouts) are auditlib's, so they are dropped from the arguments.
"""
from __future__ import annotations

import ast
import configparser
import re
import shlex
from dataclasses import dataclass, field

import yaml

from ..code.pyast import walk

# Options auditlib sets itself (reporting, coverage, timeouts, caching, parallelism).
_DROP_PREFIXES = ("--cov", "--junitxml", "--junit-xml", "--timeout", "--html", "--json-report", "--numprocesses",
                  "--dist", "--basetemp", "--lf", "--ff", "--sw")
_DROP_WITH_VALUE = {"-n", "-p", "--cov", "--timeout", "--junitxml", "--numprocesses", "--dist", "--basetemp"}
_SHELL_OPS = {"&&", "||", ";", "|", ">", ">>", "2>&1"}
_WORKFLOW_SECRET = re.compile(r"\$\{\{\s*secrets\.")


@dataclass
class TestCommand:
    args: list[str] = field(default_factory=list)  # pytest arguments of the project
    env: dict[str, str] = field(default_factory=dict)  # environment its CI gives that step
    source: str = ""  # file (and job/target) the command came from; "" for the default
    line: str = ""  # the command line as written there
    expects_postgres: bool = False

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
            rest = tokens[i + (2 if tok == "-m" else 1):]
            out: list[str] = []
            skip = False
            for t in rest:
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
    return None


def _postgres_value(value: str) -> bool:
    return bool(re.match(r"postgres(ql)?(\+\w+)?://", str(value)))


def _from_workflows(ctx) -> TestCommand | None:
    for f in ctx.index.select(".github/workflows/*.yml") + ctx.index.select(".github/workflows/*.yaml") \
            + ctx.index.select(".gitlab-ci.yml"):
        try:
            data = yaml.safe_load(f.text or "") or {}
        except yaml.YAMLError:
            continue
        if not isinstance(data, dict):
            continue
        top_env = data.get("env") or data.get("variables") or {}
        jobs = data.get("jobs") if isinstance(data.get("jobs"), dict) else \
            {k: v for k, v in data.items() if isinstance(v, dict) and "script" in v}
        for job_name, job in (jobs or {}).items():
            if not isinstance(job, dict):
                continue
            services = job.get("services") or {}
            svc_pg = any("postgres" in str(v) for v in (services.values() if isinstance(services, dict) else services))
            job_env = {**_env_dict(top_env), **_env_dict(job.get("env") or job.get("variables"))}
            steps = job.get("steps") or [{"run": s} for s in (job.get("script") or [])]
            for step in steps:
                run = step.get("run") if isinstance(step, dict) else None
                if not isinstance(run, str):
                    continue
                for line in run.splitlines():
                    args = pytest_args(line)
                    if args is not None:
                        env = {**job_env, **_env_dict(step.get("env"))}
                        return TestCommand(args, env, f"{f.path} (job {job_name})", line,
                                           svc_pg or any(_postgres_value(v) for v in env.values()))
    return None


def _env_dict(value) -> dict[str, str]:
    if not isinstance(value, dict):
        return {}
    return {str(k): ("" if v is None else str(v)) for k, v in value.items()}


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
