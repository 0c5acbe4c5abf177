"""The tests stage: the target's own test suite, run once per audit process.

:func:`suite_run` runs ``python -m pytest`` in the target's interpreter (``--target-python``
or ``--provision``), in a subprocess with an overall timeout, on a *copy* of the target
(tests write caches, coverage data and SQLite files: the audited tree is never modified),
with the project's own arguments and CI environment (:mod:`.test_command`: read as the CI
reads it, every ``env:`` value a string), database URLs and the CI's PostgreSQL service
variables pointed at a throwaway PostgreSQL database (with the parts of an address the CI
leaves to the settings' defaults, nested ``DATABASE__PORT`` included), the CI's migration steps replayed
first (``alembic ... upgrade``; other steps before the tests are listed as not replayed),
and:

- JUnit XML (outcomes, durations, failure text and locations);
- pytest-cov's JSON report of the application packages, when pytest-cov is available;
- pytest-timeout's per-test timeout, when available;
- auditlib's probe plugin (:mod:`.probe_plugin`): database dialects connected to,
  warnings, ``async def`` tests.

With ``--provision`` the missing test tools (pytest, pytest-cov, pytest-timeout) are
installed into the provisioned environment; a ``--target-python`` interpreter is used
as is and the report says what it lacked. Nothing here raises for target problems:
``SuiteRun.error`` says why the stage could not run.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

from ..redact import redact_text
from ..target.targetenv import DB_PART_RE, PART_KIND
from .test_command import TestCommand, discover_test_command

DEFAULT_SUITE_TIMEOUT = 600  # [tool.auditlib.timeouts] tests
DEFAULT_TEST_TIMEOUT = 120  # [tool.auditlib.timeouts] test (per test, with pytest-timeout)
TOOLS = {"pytest": "pytest", "pytest_cov": "pytest-cov", "pytest_timeout": "pytest-timeout"}
_COPY_IGNORE = shutil.ignore_patterns(".git", ".venv", "venv", "env", "node_modules", "__pycache__", ".tox",
                                      ".nox", ".pytest_cache", ".mypy_cache", ".ruff_cache", "*.egg-info",
                                      ".coverage", "htmlcov")
_SQLITE_SUFFIXES = (".db", ".sqlite", ".sqlite3")
_ASYNC_UNSUPPORTED = "async def functions are not natively supported"


@dataclass
class TestCase:
    nodeid: str
    file: str  # relative to the target root
    line: int | None  # 1-based: the test's def (or first decorator) line
    outcome: str  # passed | failed | error | skipped | xfailed | not-run
    duration: float
    message: str = ""
    details: str = ""
    where: tuple[str, int | None] = ("", None)  # where it failed / was skipped


@dataclass
class SuiteRun:
    requested: bool = False
    error: str = ""  # why the suite could not run ("" when it ran)
    command: list[str] = field(default_factory=list)  # as shown (redacted, relative)
    test_command: TestCommand | None = None
    env_shown: dict[str, str] = field(default_factory=dict)
    database: str = ""  # what database the run was given ("PostgreSQL (throwaway)" / "none" ...)
    tools: dict[str, bool] = field(default_factory=dict)
    tools_note: str = ""
    returncode: int | None = None
    timed_out: bool = False
    duration: float = 0.0
    cases: list[TestCase] = field(default_factory=list)
    coverage: dict | None = None  # {"total": pct, "packages": {pkg: pct}}
    probe: dict = field(default_factory=dict)  # from the probe plugin
    sqlite_files: list[str] = field(default_factory=list)
    pg_sessions: int | None = None  # sessions opened on the throwaway database
    output_tail: str = ""
    replayed: list[str] = field(default_factory=list)  # CI steps run before the suite, with outcome
    not_replayed: list[str] = field(default_factory=list)  # CI steps before the tests that were not run
    first_error: str = ""  # the first error of a suite that could not start

    def ci_context(self) -> str:
        """The environment and CI steps behind this run, for the report (secrets masked)."""
        env = ", ".join(f"{k}={v}" for k, v in self.env_shown.items()) or "(none added)"
        out = f"Environment used: {env}."
        if self.replayed:
            out += " CI steps replayed first: " + "; ".join(self.replayed) + "."
        if self.not_replayed:
            out += " CI steps before the tests NOT replayed: " + "; ".join(self.not_replayed) + "."
        return out

    @property
    def ran(self) -> bool:
        return self.requested and not self.error

    def count(self, *outcomes: str) -> int:
        return sum(c.outcome in outcomes for c in self.cases)

    def stats(self) -> dict:
        """The sidecar stats the report reads (``tests_passed`` ...)."""
        if not self.ran:
            return {"stage_tests": self.stage_status()}
        return {"tests_passed": self.count("passed"), "tests_failed": self.count("failed", "error"),
                "tests_skipped": self.count("skipped", "not-run"), "tests_xfailed": self.count("xfailed"),
                "tests_duration_s": round(self.duration, 2),
                "coverage": self.coverage["total"] if self.coverage else None,
                "stage_tests": self.stage_status()}

    def stage_status(self) -> str:
        if not self.requested:
            return "skipped: not requested (run with --tests)"
        if self.error:
            return f"failed: {self.error}"
        return (f"ran: {self.count('passed')} passed, {self.count('failed', 'error')} failed, "
                f"{self.count('skipped', 'not-run')} skipped in {self.duration:.1f}s")


_RUNS: dict[int, tuple[object, SuiteRun]] = {}
_LOCK = threading.Lock()


def configure(ctx, tests: bool = False) -> None:
    """Switch the tests stage on for ``ctx`` (the notebook's ``tests`` parameter)."""
    ctx.stages["tests"] = bool(tests)


def suite_run(ctx) -> SuiteRun:
    """The tests stage for ``ctx``: run on first use, memoised for the process."""
    with _LOCK:
        if id(ctx) not in _RUNS:
            _RUNS[id(ctx)] = (ctx, _run(ctx))
        return _RUNS[id(ctx)][1]


def _run(ctx) -> SuiteRun:
    run = SuiteRun(requested=bool(ctx.stages.get("tests")))
    if not run.requested:
        return run
    try:
        _execute(ctx, run)
    except Exception as exc:  # auditlib's own failure: say so, keep the audit going
        run.error = f"the tests stage crashed: {type(exc).__name__}: {redact_text(str(exc))}"
    return run


def _target_python(ctx) -> tuple[Path | None, str]:
    from ..target.targetenv import resolve_target_python

    timeouts = ctx.config.get("timeouts", {})
    return resolve_target_python(ctx.root, ctx.target_python, ctx.provision,
                                 timeout=timeouts.get("provision", 900))


def _probe_tools(python: Path) -> dict[str, bool]:
    code = ("import importlib.util as u, json; print(json.dumps({m: u.find_spec(m) is not None "
            f"for m in {list(TOOLS)!r}}}))")
    r = subprocess.run([str(python), "-c", code], capture_output=True, text=True, timeout=60)
    return json.loads(r.stdout) if r.returncode == 0 else {m: False for m in TOOLS}


def _ensure_tools(ctx, python: Path, run: SuiteRun) -> None:
    run.tools = _probe_tools(python)
    missing = [TOOLS[m] for m, ok in run.tools.items() if not ok]
    if missing and ctx.provision:
        # the provisioned environment is auditlib's own cache: adding test tools is fine
        r = subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "-q",
                            "--disable-pip-version-check", *missing], capture_output=True, text=True, timeout=600)
        run.tools = _probe_tools(python)
        if r.returncode != 0:
            run.tools_note = f"installing {', '.join(missing)} failed: {redact_text(r.stderr.strip()[-300:])}"
    missing = [TOOLS[m] for m, ok in run.tools.items() if not ok]
    if missing and not run.tools_note:
        run.tools_note = f"not available in the target environment: {', '.join(missing)}"


def _execute(ctx, run: SuiteRun) -> None:
    from ..target.targetenv import database_env, detect_driver_scheme

    lay = ctx.layout
    if not any(lay.is_test(f.path) for f in ctx.index.python_files()):
        run.error = "no test files found (test_*.py, *_test.py, tests/)"
        return
    python, why = _target_python(ctx)
    if python is None:
        run.error = why
        return
    _ensure_tools(ctx, python, run)
    if not run.tools.get("pytest"):
        run.error = "pytest is not installed in the target environment " + \
                    "(add it to the target's test requirements, or use --provision)"
        return
    cmd = run.test_command = discover_test_command(ctx)
    timeouts = ctx.config.get("timeouts", {})
    limit = float(timeouts.get("tests", DEFAULT_SUITE_TIMEOUT))
    with tempfile.TemporaryDirectory(prefix="auditlib-tests-") as tmp:
        tmp = Path(tmp)
        work = tmp / "target"
        shutil.copytree(ctx.root, work, ignore=_COPY_IGNORE, symlinks=True)
        before = {p for p in work.rglob("*") if p.suffix in _SQLITE_SUFFIXES}
        shutil.copy(Path(__file__).with_name("probe_plugin.py"), tmp / "auditlib_probe.py")
        env, secrets, db_name, server, ci_env = _environment(ctx, cmd, tmp, run, database_env,
                                                             detect_driver_scheme)
        cwd = work / cmd.cwd if cmd.cwd and (work / cmd.cwd).is_dir() else work
        args = [str(python), "-m", "pytest", *cmd.args, "-p", "auditlib_probe", "-p", "no:cacheprovider",
                "-o", "junit_family=xunit1", f"--junitxml={tmp / 'junit.xml'}", "-rN", "-q", "--color=no"]
        if run.tools.get("pytest_timeout"):
            args.append(f"--timeout={int(timeouts.get('test', DEFAULT_TEST_TIMEOUT))}")
        if run.tools.get("pytest_cov"):
            for p in lay.app_paths or ["."]:
                args.append(f"--cov={work / p}")
            args += [f"--cov-report=json:{tmp / 'coverage.json'}"]
        run.command = [a.replace(str(work) + "/", "").replace(str(tmp), "<tmp>") for a in args]
        run.command[0] = "python" if python == Path(sys.executable) else str(python)
        try:
            replay_log = _replay(ctx, cmd, python, work, tmp, ci_env, bool(db_name), run, secrets)
            _spawn(args, cwd, env, limit, tmp / "output.txt", run)
            out = (tmp / "output.txt").read_text(encoding="utf-8", errors="replace")
            run.output_tail = redact_text("\n".join(out.splitlines()[-60:]), secrets).replace(str(work) + "/", "")
            _log(ctx, run, replay_log + out, secrets, work)
            out_text = redact_text(out, secrets).replace(str(work) + "/", "")  # pytest's own output
            run.cases = parse_junit(tmp / "junit.xml", work, ctx.root) if (tmp / "junit.xml").is_file() else []
            run.coverage = parse_coverage(tmp / "coverage.json", work) if (tmp / "coverage.json").is_file() else None
            probe = tmp / "probe.json"
            run.probe = json.loads(probe.read_text()) if probe.is_file() else {}
            _mark_not_run(run)
            run.sqlite_files = sorted(str(p.relative_to(work)) for p in work.rglob("*")
                                      if p.suffix in _SQLITE_SUFFIXES and p not in before)
            if db_name:
                run.pg_sessions = _sessions(server, db_name)
        finally:
            if db_name:
                _drop(server, db_name)
    if run.timed_out:
        run.error = f"the suite did not finish within {limit:g} s (killed)"
    elif run.returncode in (2, 3, 4) and not run.cases:
        run.first_error = first_error(out_text) or _last_lines(run.output_tail, 3) or "no output"
        run.error = f"pytest exited {run.returncode} (interrupted, internal or usage error): {run.first_error}"
    elif run.returncode == 5:
        run.error = "pytest collected no tests"


_WORKFLOW_SECRET = re.compile(r"\$\{\{\s*secrets\.[^}]*\}\}")
# a variable that holds one part of the CI's PostgreSQL address: DB_HOST, POSTGRES_PORT, PGUSER,
# DATABASE_NAME, APP_DB_PASSWORD, and nested settings' DATABASE__HOSTNAME (env_nested_delimiter="__") ...
_LOCAL_HOSTS = {"localhost", "127.0.0.1", "::1", "0.0.0.0"}


class _CIEnvironment:
    """Turns a CI environment into the audit's: CI secrets get throwaway values (the same
    one for the same expression in every step), and what points at the CI's PostgreSQL
    (URLs, and host/port/user/password/database variables aimed at the service container
    or localhost) points at the throwaway database instead.

    A CI often sets only some parts of an address and lets the application's defaults
    supply the rest (``DATABASE__HOSTNAME: localhost`` and ``DATABASE__PASSWORD``, with the
    port, user and database name left to the settings' defaults, which match the service
    container's). Those defaults do not reach the throwaway database, so the other parts
    the application's settings read under the same prefix (``known``: the settings'
    environment names) are set too (:attr:`completed`)."""

    def __init__(self, base: dict[str, str], url: str, service: dict, known: set[str] | None = None):
        from sqlalchemy.engine import make_url

        self.base, self.url, self.service = base, make_url(url) if url else None, service
        self.known = {k.upper() for k in known or ()}
        self.throwaway: dict[str, str] = {}
        self.completed: set[str] = set()

    @property
    def secrets(self) -> list[str]:
        return list(self.throwaway.values())

    def _secret(self, value: str) -> str:
        import secrets as _s

        return self.throwaway.setdefault(value, "audit-" + _s.token_urlsafe(18))

    def _hosts(self) -> set[str]:
        return _LOCAL_HOSTS | ({self.service["name"]} if self.service else set())

    def _ports(self) -> set[str]:
        ports = {"5432"}
        for p in (self.service or {}).get("ports", []):
            ports.add(str(p).split(":", 1)[0].strip())
        return ports

    def _part(self, key: str, value: str) -> str | None:
        m = DB_PART_RE.match(key.upper())
        if self.url is None or not m:
            return None
        part = m.group("part")
        if part in ("HOST", "HOSTNAME", "SERVER"):
            return self.url.host if value in self._hosts() else None
        if part == "PORT":
            return str(self.url.port or 5432) if value in self._ports() else None
        if part in ("USER", "USERNAME"):
            return self.url.username or value
        if part in ("PASSWORD", "PASS"):  # a passwordless (trust) server accepts any
            return self.url.password or value
        return self.url.database

    def _url(self, value: str) -> str:
        from sqlalchemy.engine import make_url

        try:
            ci = make_url(value)
        except Exception:
            return value
        new = ci.set(host=self.url.host, port=self.url.port, database=self.url.database,
                     username=self.url.username, password=self.url.password or ci.password)
        return new.render_as_string(hide_password=False)

    def build(self, ci: dict[str, str]) -> dict[str, str]:
        env = dict(self.base)
        for k, v in ci.items():
            v = _WORKFLOW_SECRET.sub(lambda m: self._secret(m.group(0)), v)
            if self.url is not None and re.match(r"postgres(ql)?(\+\w+)?://", v):
                v = self._url(v)
            else:
                v = self._part(k, v) or v
            env[k] = v
        env.update(self._complete(ci))
        return env

    def _complete(self, ci: dict[str, str]) -> dict[str, str]:
        """The parts of a CI database address left to the application's defaults, pointed at
        the throwaway database: for each prefix under which the CI sets a part (``DATABASE__``
        of ``DATABASE__HOSTNAME``) and whose host, when set, is the CI's database, the other
        parts the settings read under that prefix."""
        if self.url is None:
            return {}
        groups: dict[str, dict[str, tuple[str, str]]] = {}
        for k, v in ci.items():
            if m := DB_PART_RE.match(k.upper()):
                groups.setdefault(k.upper()[:m.start("part")], {})[PART_KIND[m.group("part")]] = (k, v)
        given = {k.upper() for k in ci}
        out: dict[str, str] = {}
        for prefix, parts in groups.items():
            if "host" in parts and parts["host"][1] not in self._hosts():
                continue  # an address elsewhere: not the CI's database
            for name in sorted(self.known - given):
                m = DB_PART_RE.match(name)
                if not m or name[:m.start("part")] != prefix:
                    continue
                value = {"host": self.url.host, "port": str(self.url.port or 5432), "user": self.url.username,
                         "password": self.url.password, "dbname": self.url.database}[PART_KIND[m.group("part")]]
                if value:  # no password: a trust server accepts the application's default
                    out[name] = value
                    self.completed.add(name)
        return out


def _environment(ctx, cmd: TestCommand, tmp: Path, run: SuiteRun, database_env, detect_driver_scheme):
    """(env, secret values, throwaway db name, server url, the CI environment mapper)."""
    from .live_boot import base_env
    from .test_command import masked_env

    base = base_env()
    base.update({"PYTHONDONTWRITEBYTECODE": "1", "AUDITLIB_PROBE_OUT": str(tmp / "probe.json"),
                 "COVERAGE_FILE": str(tmp / ".coverage"),
                 "PYTHONPATH": os.pathsep.join([str(tmp)] + [p for p in [base.get("PYTHONPATH")] if p])})
    db_name = server = url = ""
    secrets: list[str] = []
    sqlite_env = any(str(v).startswith("sqlite") for v in cmd.env.values())
    server_url = ctx.database_url()
    if server_url and not sqlite_env:
        from .database import create_database

        url, db_name = create_database(server_url)
        server = server_url
        base.update(database_env(url, detect_driver_scheme(ctx.root)))  # the usual variables
        from sqlalchemy.engine import make_url

        pw = make_url(url).password
        secrets += [pw] if pw else []
        # asked of the server, not of the throwaway database: TEST-003 counts that database's sessions
        version = _server_version(make_url(server_url).set(drivername="postgresql").render_as_string(hide_password=False))
        run.database = f"a throwaway PostgreSQL{' ' + version if version else ''} database (DATABASE_URL and the usual " \
                       "variables point at it" + \
                       (f"; it stands in for the CI's `{cmd.pg_service['image']}` service" if cmd.pg_service else "") + ")"
    elif sqlite_env:
        run.database = "the SQLite database its CI configuration names"
    else:
        run.database = "none (no PostgreSQL available: the suite used its own defaults)"
    ci_env = _CIEnvironment(base, url, cmd.pg_service, settings_env_names(ctx))
    env = ci_env.build(cmd.env)
    secrets += ci_env.secrets
    shown = {k: env[k] for k in set(cmd.env) | {"DATABASE_URL"} | ci_env.completed if k in env}
    run.env_shown = masked_env({k: redact_text(v, ci_env.secrets) for k, v in shown.items()})
    return env, secrets, db_name, server, ci_env


def settings_env_names(ctx) -> set[str]:
    """The environment names the application's settings read (upper-case): those of the
    settings model, and the nested ones of pydantic-settings' ``env_nested_delimiter``
    (``database: Database`` whose ``port`` field is set by ``DATABASE__PORT``)."""
    import ast

    from ..facts.settings_model import _class_nodes, settings_model

    try:
        model = settings_model(ctx)
        owners = {name: node for (_p, name), (_s, node) in _class_nodes(ctx.index, ctx.layout).items()}
    except Exception:  # a settings model that cannot be read: no completion
        return set()
    names = {e.upper() for s in model.settings for e in s.env_names}
    classes: dict[str, ast.ClassDef] = {}
    for src in ctx.index.python_files():
        for node in ast.walk(src.tree):
            if isinstance(node, ast.ClassDef):
                classes.setdefault(node.name, node)
    for s in model.settings:
        delim = _nested_delimiter(owners.get(s.owner))
        if not delim or not s.annotation:
            continue
        try:
            ann = ast.parse(s.annotation, mode="eval")
        except SyntaxError:
            continue
        for ref in ast.walk(ann):
            sub = classes.get(ref.id if isinstance(ref, ast.Name) else ref.attr
                              if isinstance(ref, ast.Attribute) else "")
            if sub is None or sub.name in owners:
                continue
            for stmt in sub.body:
                if isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name) \
                        and not stmt.target.id.startswith("_"):
                    names |= {f"{e}{delim}{stmt.target.id}".upper() for e in s.env_names}
    return names


def _nested_delimiter(cls) -> str:
    """``env_nested_delimiter`` of a settings class (``model_config`` or ``class Config``)."""
    import ast

    if cls is None:
        return ""
    for stmt in ast.walk(cls):
        pairs = []
        if isinstance(stmt, ast.Call):
            pairs = [(kw.arg, kw.value) for kw in stmt.keywords]
        elif isinstance(stmt, ast.Dict):
            pairs = [(k.value if isinstance(k, ast.Constant) else None, v) for k, v in zip(stmt.keys, stmt.values)]
        elif isinstance(stmt, ast.Assign):
            pairs = [(t.id, stmt.value) for t in stmt.targets if isinstance(t, ast.Name)]
        for key, value in pairs:
            if key == "env_nested_delimiter" and isinstance(value, ast.Constant) and isinstance(value.value, str):
                return value.value
    return ""


def _server_version(url: str) -> str:
    import psycopg

    try:
        with psycopg.connect(url, connect_timeout=10) as conn:
            return str(conn.execute("SHOW server_version").fetchone()[0]).split()[0]
    except Exception:
        return ""


def _replay(ctx, cmd: TestCommand, python: Path, work: Path, tmp: Path, ci_env: "_CIEnvironment",
            has_db: bool, run: SuiteRun, secrets: list[str]) -> str:
    """Run what the CI runs before its tests when it is safe (``alembic ... upgrade`` against
    the throwaway database); the rest is listed as not replayed. Returns the log text."""
    log = []
    limit = float(ctx.config.get("timeouts", {}).get("alembic", 300))
    others: dict[str, list] = {}
    for step in cmd.before:
        if step.kind == "other":  # one entry per CI step: its first command, and how many more
            if step.name not in others:
                others[step.name] = [step, 0, len(run.not_replayed)]
                run.not_replayed.append(step.shown)
            else:
                others[step.name][1] += 1
                first, more, at = others[step.name]
                run.not_replayed[at] = f"{first.shown} and {more} more command(s)"
        elif step.kind == "migrate" and not has_db:
            run.not_replayed.append(f"{step.shown} (no throwaway PostgreSQL database for the audit)")
        elif step.kind == "migrate":
            env = ci_env.build(step.env)
            secrets += [v for v in ci_env.secrets if v not in secrets]
            cwd = work / step.cwd if step.cwd and (work / step.cwd).is_dir() else work
            r = SuiteRun()
            _spawn([str(python), "-m", "alembic", *step.args], cwd, env, limit, tmp / "replay.txt", r)
            out = redact_text((tmp / "replay.txt").read_text(encoding="utf-8", errors="replace"), secrets)
            log.append(f"$ {step.line.strip()}  (CI step replayed, rc={r.returncode}, {r.duration:.1f}s)\n{out}\n")
            if r.timed_out:
                run.replayed.append(f"{step.shown}: did not finish within {limit:g} s (killed)")
            elif r.returncode != 0:
                run.replayed.append(f"{step.shown}: FAILED (exit {r.returncode}): "
                                    + (first_error(out) or _last_lines(out, 3) or "no output"))
            else:
                run.replayed.append(f"{step.shown}: ok in {r.duration:.1f} s")
    return "".join(log)


_ERROR_LINE = re.compile(r"^(E\s{2,}|\w*(Error|Exception|Exit)\b|ERROR\b|Traceback|[\w.]+(Error|Exception):)")


def first_error(output: str, lines: int = 4) -> str:
    """The first error of a run's output, on one line: pytest's ``E   `` lines (with the line
    before them when it names the error, e.g. "ImportError while loading conftest"), else the
    first line that names an error."""
    text = output.splitlines()
    for i, line in enumerate(text):
        if line.startswith("E   "):
            block = [ln[1:].strip() for ln in text[i:i + lines] if ln.startswith("E ")
                     and not ln[1:].strip().startswith("For further information")]
            head = next((ln.strip() for ln in reversed(text[max(0, i - 12):i])
                         if re.search(r"\b\w*(Error|Exception)\b", ln) and not ln.startswith(" ")), "")
            return " | ".join(([head] if head else []) + [b for b in block if b])
    for i, line in enumerate(text):
        if _ERROR_LINE.match(line.strip()) and not line.strip().startswith("Traceback"):
            return " | ".join(ln.strip() for ln in text[i:i + 2] if ln.strip())
    return ""


def _spawn(args, cwd: Path, env: dict, limit: float, out_path: Path, run: SuiteRun) -> None:
    t0 = time.monotonic()
    with open(out_path, "wb") as out:
        proc = subprocess.Popen(args, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)
        try:
            run.returncode = proc.wait(timeout=limit)
        except subprocess.TimeoutExpired:
            run.timed_out = True
        finally:
            if proc.poll() is None or run.timed_out:
                _kill_group(proc)
            # children the suite left behind (servers, workers) go with their session
            _kill_group(proc, quiet=True)
    run.duration = time.monotonic() - t0


def _kill_group(proc, quiet: bool = False) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    if not quiet:
        proc.wait()


def parse_junit(path: Path, work: Path, root: Path) -> list[TestCase]:
    """Test cases of a JUnit XML report (xunit1: with file and line)."""
    cases = []
    for tc in ET.parse(path).getroot().iter("testcase"):
        file = tc.get("file") or tc.get("classname", "").replace(".", "/") + ".py"
        line = int(tc.get("line")) + 1 if (tc.get("line") or "").isdigit() else None
        nodeid = f"{file}::{tc.get('name')}"
        if "." in tc.get("classname", "") and not tc.get("classname", "").replace(".", "/").endswith(file[:-3]):
            nodeid = f"{file}::{tc.get('classname').rsplit('.', 1)[-1]}::{tc.get('name')}"
        outcome, message, details = "passed", "", ""
        for child in tc:
            kind = child.tag
            if kind in ("failure", "error", "skipped"):
                message = (child.get("message") or "").strip()
                details = (child.text or "").strip()
                if kind == "skipped":
                    outcome = "xfailed" if child.get("type") == "pytest.xfail" else "skipped"
                else:
                    outcome = "failed" if kind == "failure" else "error"
        details = details.replace(str(work) + "/", "")
        case = TestCase(nodeid, file, line, outcome, float(tc.get("time") or 0), redact_text(message),
                        redact_text(details))
        case.where = _where(case, root)
        cases.append(case)
    return cases


_LOC = re.compile(r"^(?P<f>[^\s:][^:\n]*\.py):(?P<l>\d+):", re.M)


def _where(case: TestCase, root: Path) -> tuple[str, int | None]:
    """The failing line (last ``file.py:N:`` of the report inside the target) or the test's line."""
    hits = [(m.group("f"), int(m.group("l"))) for m in _LOC.finditer(case.details)]
    hits = [(f, ln) for f, ln in hits if not f.startswith("/") and (root / f).is_file()]
    if hits and case.outcome in ("failed", "error", "skipped"):
        return hits[-1]
    return case.file, case.line


def parse_coverage(path: Path, work: Path) -> dict:
    """pytest-cov's JSON report: total percent and percent per package (directory)."""
    data = json.loads(path.read_text())
    pkgs: dict[str, list[int]] = {}
    for fname, info in data.get("files", {}).items():
        rel = fname.replace(str(work) + "/", "")
        pkg = rel.rsplit("/", 1)[0] if "/" in rel else "."
        s = info.get("summary", {})
        acc = pkgs.setdefault(pkg, [0, 0])
        acc[0] += s.get("covered_lines", 0)
        acc[1] += s.get("num_statements", 0)
    return {"total": round(data.get("totals", {}).get("percent_covered", 0.0), 1),
            "packages": {p: round(100.0 * c / n, 1) if n else 100.0 for p, (c, n) in sorted(pkgs.items())}}


def _mark_not_run(run: SuiteRun) -> None:
    """``async def`` tests that no plugin ran: skipped/failed with pytest's "not natively supported"."""
    async_ids = set(run.probe.get("async_tests", []))
    for c in run.cases:
        if _ASYNC_UNSUPPORTED in c.message or _ASYNC_UNSUPPORTED in c.details or \
                (c.nodeid in async_ids and c.outcome == "skipped" and "coroutine" in c.message.lower()):
            c.outcome = "not-run"


def _sessions(server: str, name: str) -> int | None:
    import psycopg
    from sqlalchemy.engine import make_url

    url = make_url(server).set(drivername="postgresql").render_as_string(hide_password=False)
    try:
        with psycopg.connect(url, autocommit=True, connect_timeout=10) as conn:
            for _ in range(10):  # backends flush their statistics when they exit
                n = conn.execute("SELECT sessions FROM pg_stat_database WHERE datname = %s", (name,)).fetchone()
                if n and n[0]:
                    return int(n[0])
                conn.execute("SELECT pg_stat_clear_snapshot()")
                time.sleep(0.1)
            return 0
    except Exception:
        return None


def _drop(server: str, name: str) -> None:
    from .database import drop_database

    try:
        drop_database(server, name)
    except Exception:
        pass  # the embedded server is thrown away anyway


def _last_lines(text: str, n: int) -> str:
    return " | ".join([ln for ln in text.strip().splitlines() if ln.strip()][-n:])


def _log(ctx, run: SuiteRun, out: str, secrets: list[str], work: Path) -> None:
    log = ctx.out_dir / "logs" / "tests.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    text = f"$ {' '.join(run.command)}\n# why: {run.test_command.why}\n# env: {run.env_shown}\n" \
           f"# rc={run.returncode} {run.duration:.1f}s\n" + out
    log.write_text(redact_text(text, secrets).replace(str(work) + "/", ""), encoding="utf-8")


def results_frame(run: SuiteRun):
    """One row per test (for the notebook)."""
    import pandas as pd

    return pd.DataFrame([{"test": c.nodeid, "outcome": c.outcome, "seconds": round(c.duration, 3),
                          "where": f"{c.where[0]}:{c.where[1]}" if c.where[1] else c.where[0],
                          "message": c.message[:200]} for c in run.cases],
                        columns=["test", "outcome", "seconds", "where", "message"])


def coverage_frame(run: SuiteRun):
    import pandas as pd

    cov = run.coverage or {"packages": {}}
    return pd.DataFrame([{"package": p, "coverage %": v} for p, v in cov["packages"].items()]
                        + ([{"package": "TOTAL", "coverage %": cov["total"]}] if run.coverage else []),
                        columns=["package", "coverage %"])


def plot_durations(run: SuiteRun, top: int = 15):
    """Horizontal bars: the slowest tests (None when nothing ran)."""
    import matplotlib.pyplot as plt

    cases = sorted(run.cases, key=lambda c: c.duration, reverse=True)[:top]
    if not cases:
        return None
    fig, ax = plt.subplots(figsize=(8, 0.35 * len(cases) + 1.2))
    colors = {"passed": "#27ae60", "failed": "#c0392b", "error": "#c0392b"}
    ax.barh([c.nodeid[-60:] for c in cases][::-1], [c.duration for c in cases][::-1],
            color=[colors.get(c.outcome, "#95a5a6") for c in cases][::-1])
    ax.set_xlabel("seconds")
    ax.set_title("Slowest tests")
    fig.tight_layout()
    return fig
