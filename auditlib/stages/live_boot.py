"""Booting the target app for the live stage: which ASGI app, with which environment, and
what a failed boot says (traceback tail, import chain).

The app runs in the target's interpreter, from a private copy of the tree (a local
``.env`` is left behind: it may hold real credentials), with uvicorn on a free loopback
port, in its own process group that dies with the audit (``PR_SET_PDEATHSIG``).
"""
from __future__ import annotations

import ast
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from ..code.pyast import walk
from ..redact import is_placeholder

SECRET_NAME = re.compile(r"secret|passw|pwd|token|api_?key|private_?key|credential|signing|_key$", re.I)
MODE_VARS = ("APP_ENV", "ENVIRONMENT", "ENV", "APP_ENVIRONMENT", "RUN_ENV")
PROD_VALUES = {"prod", "production", "live"}
# a Jupyter kernel forces colours on its children; tracebacks must stay parseable
_NOT_INHERITED = {"PYTHONHOME", "FORCE_COLOR", "CLICOLOR_FORCE", "PY_COLORS", "TERM"}
# Same rule as targetenv: the audit's own database settings never leak into the target.
_DBLIKE = re.compile(r"^(?:PG[A-Z]+|POSTGRES_[A-Z_]+|DB_[A-Z_]+|.*(?:DATABASE|DB|POSTGRES|SQLALCHEMY)[A-Z_]*(?:URL|URI|DSN))$")
_COPY_IGNORE = shutil.ignore_patterns(".git", ".venv", "venv", "node_modules", "__pycache__", ".tox", ".nox",
                                      ".pytest_cache", ".mypy_cache", ".ruff_cache", "*.egg-info", ".env",
                                      ".env.local", ".env.prod*", ".env.dev*", "htmlcov")
_SERVER_CMD = re.compile(r"(?:uvicorn|gunicorn|hypercorn|granian)\b[^\n]*?[\s\"'\[,]+\"?([A-Za-z_][\w.]*:[A-Za-z_][\w.]*(?:\(\))?)")

# Runs in the target's interpreter: import the app with uvicorn's importer (the same
# errors as `uvicorn module:app`), write the route table, then serve.
WRAPPER = r'''
import inspect, json, os, sys
sys.path.insert(0, os.getcwd())
from uvicorn.importer import import_from_string
app = import_from_string(os.environ["AUDITLIB_APP"])
if os.environ.get("AUDITLIB_FACTORY") == "1":
    app = app()
def item(path, methods, ep, in_schema, kind):
    try:
        ep = inspect.unwrap(ep) if ep is not None else None
    except Exception:
        pass
    code = getattr(ep, "__code__", None)
    return {"path": path, "methods": sorted(methods or []), "in_schema": bool(in_schema), "kind": kind,
            "file": code.co_filename if code else None, "line": code.co_firstlineno if code else None}
def walk(routes, prefix=""):
    for r in routes:
        if hasattr(r, "effective_route_contexts"):  # FastAPI >= 0.16x keeps included routers as nodes
            for c in r.effective_route_contexts():
                o = getattr(c, "original_route", c)
                yield item(prefix + (getattr(c, "path", "") or getattr(o, "path", "")), getattr(o, "methods", None),
                           getattr(c, "endpoint", None) or getattr(o, "endpoint", None),
                           getattr(c, "include_in_schema", True), type(o).__name__)
            continue
        ep = getattr(r, "endpoint", None)
        sub = getattr(r, "routes", None) if type(r).__name__ == "Mount" else None
        yield item(prefix + getattr(r, "path", ""), getattr(r, "methods", None), ep,
                   getattr(r, "include_in_schema", True), type(r).__name__)
        if sub:
            yield from walk(sub, prefix + r.path)
with open(os.environ["AUDITLIB_ROUTES_OUT"], "w") as fh:
    json.dump(list(walk(getattr(app, "routes", []))), fh)
import uvicorn
uvicorn.run(app, host="127.0.0.1", port=int(os.environ["AUDITLIB_PORT"]), log_level="info", lifespan="auto")
'''


@dataclass
class AppSpec:
    spec: str = ""  # module:attribute
    app_dir: str = "."  # directory (relative to the root) put on sys.path
    factory: bool = False
    why: str = ""


def base_env() -> dict[str, str]:
    """os.environ without the audit's database settings (the target gets its own)."""
    env = {k: v for k, v in os.environ.items() if not _DBLIKE.match(k.upper()) and k not in _NOT_INHERITED}
    env.update(NO_COLOR="1", PY_COLORS="0")  # plain text: outputs are parsed and shown in reports
    return env


def _module_of(path: str, index) -> tuple[str, str]:
    """(dotted module, sys.path dir) of a file: walk up while packages have __init__.py."""
    parts = path[:-3].split("/")
    top = len(parts) - 1
    while top > 0 and index.get("/".join(parts[:top]) + "/__init__.py"):
        top -= 1
    return ".".join(parts[top:]), "/".join(parts[:top]) or "."


def discover_app(ctx) -> AppSpec:
    """The ASGI app: ``[tool.auditlib] live_app``, else the server command of the project's
    Dockerfile / compose / Procfile / Makefile, else a module-level ``X = FastAPI(...)``
    (or a ``create_app``-style factory returning one)."""
    if ctx.config.get("live_app"):
        return AppSpec(ctx.config["live_app"], ctx.config.get("live_app_dir", "."),
                       bool(ctx.config.get("live_factory")), "[tool.auditlib] live_app")
    lay = ctx.layout
    for rel in lay.dockerfiles + lay.compose_files + ["Procfile", "Makefile"]:
        src = ctx.index.get(rel)
        for n, line in enumerate((src.text or "").splitlines() if src else [], 1):
            m = _SERVER_CMD.search(line)
            if not m:
                continue
            module, attr = m.group(1).split(":", 1)
            app_dir = ctx.config.get("live_app_dir", ".")
            prefix = "" if app_dir == "." else app_dir.rstrip("/") + "/"
            if ctx.index.get(prefix + module.replace(".", "/") + ".py") or \
                    ctx.index.get(prefix + module.replace(".", "/") + "/__init__.py"):
                factory = attr.endswith("()") or "--factory" in line
                return AppSpec(f"{module}:{attr.rstrip('()')}", app_dir, factory, f"the server command in {rel}:{n}")
    for path in lay.app_files:
        src = ctx.index.get(path)
        if src is None or src.tree is None or lay.is_test(path):
            continue
        module, app_dir = _module_of(path, ctx.index)
        for node in src.tree.body:
            if isinstance(node, ast.Assign) and isinstance(node.value, ast.Call) and \
                    _name(node.value.func) == "FastAPI" and isinstance(node.targets[0], ast.Name):
                return AppSpec(f"{module}:{node.targets[0].id}", app_dir, False,
                               f"`{node.targets[0].id} = FastAPI(...)` at {path}:{node.lineno}")
        for node in src.tree.body:
            if isinstance(node, ast.FunctionDef) and any(
                    isinstance(n, ast.Call) and _name(n.func) == "FastAPI" for n in walk(node)):
                return AppSpec(f"{module}:{node.name}", app_dir, True, f"the factory `{node.name}()` at {path}:{node.lineno}")
    return AppSpec(why="no FastAPI application found (set [tool.auditlib] live_app = \"module:app\")")


def _name(node) -> str:
    return node.id if isinstance(node, ast.Name) else node.attr if isinstance(node, ast.Attribute) else ""


def parse_env_file(text: str) -> dict[str, str]:
    out = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        k, v = line.removeprefix("export ").split("=", 1)
        v = v.strip()
        if len(v) >= 2 and v[0] == v[-1] and v[0] in "'\"":
            v = v[1:-1]
        elif " #" in v:
            v = v.split(" #", 1)[0].strip()
        out[k.strip()] = v
    return out


@dataclass
class AppEnv:
    env: dict[str, str]
    notes: list[str] = field(default_factory=list)
    secrets: list[str] = field(default_factory=list)  # generated values, redacted from every output


def assemble_env(ctx, db_env: dict[str, str]) -> AppEnv:
    """The app's environment: the env example files' variables (secret-like ones replaced by
    generated throwaway values, placeholders and empty values left unset so the app's
    defaults apply), the throwaway database, then ``[tool.auditlib.live] env``."""
    values: dict[str, str] = {}
    for rel in ctx.layout.env_examples:
        src = ctx.index.get(rel)
        values.update(parse_env_file(src.text or "") if src else {})
    out, generated, unset = {}, [], []
    for k, v in values.items():
        if _DBLIKE.match(k.upper()):
            continue
        if SECRET_NAME.search(k) and v:
            out[k] = "audit-" + secrets.token_urlsafe(18)
            generated.append(k)
        elif v == "" or is_placeholder(v):
            unset.append(k)
        else:
            out[k] = v
    app = AppEnv(env={**base_env(), **out, **db_env, "PYTHONDONTWRITEBYTECODE": "1", "PYTHONUNBUFFERED": "1"})
    app.secrets = [out[k] for k in generated]
    live_cfg = ctx.config.get("live") or {}
    for k, v in (live_cfg.get("env") or {}).items():
        app.env[str(k)] = expand(str(v), app.env)
    app.notes.append(f"environment from {', '.join(ctx.layout.env_examples) or 'no env example file'}: "
                     f"{len(out)} variable(s) set, throwaway secrets generated for {', '.join(generated) or 'none'}, "
                     f"left unset (empty or placeholder): {', '.join(unset) or 'none'}; database: a migrated "
                     "throwaway PostgreSQL database")
    return app


def expand(value: str, env: dict[str, str]) -> str:
    """``${VAR}`` references to the app's environment (config values may use them)."""
    return re.sub(r"\$\{(\w+)\}", lambda m: env.get(m.group(1), ""), value)


def dev_mode_retry(env: dict[str, str]) -> str | None:
    """The mode variable set to a production value, which a retry switches to development."""
    for k in MODE_VARS:
        if env.get(k, "").lower() in PROD_VALUES:
            return k
    return None


def copy_tree(root: Path, dest: Path) -> None:
    shutil.copytree(root, dest, ignore=_COPY_IGNORE, symlinks=True)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class AppProcess:
    """``python -c WRAPPER`` in its own session; :meth:`stop` ends the whole group."""

    def __init__(self, python: Path, cwd: Path, env: dict, log_path: Path):
        from ..target.pg import _make_preexec

        self.port = free_port()
        env = {**env, "AUDITLIB_PORT": str(self.port)}
        self.log_path = log_path
        self._log = open(log_path, "wb")
        self.proc = subprocess.Popen([str(python), "-c", WRAPPER], cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                                     stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True,
                                     preexec_fn=_make_preexec(_main_thread()))

    def wait_ready(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return True
            except OSError:
                time.sleep(0.05)
        return False

    def log_text(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace") if self.log_path.exists() else ""

    def stop(self) -> None:
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
            except (ProcessLookupError, PermissionError):
                pass
        try:  # whatever is left of the group (reloaders, workers)
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        self.proc.wait()
        self._log.close()


def _main_thread() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()


_FRAME = re.compile(r'^\s*File "(?P<file>[^"]+)", line (?P<line>\d+), in (?P<func>\S+)\n(?P<code>[^\n]*)', re.M)


@dataclass
class BootFailure:
    error: str  # the exception line
    chain: list[tuple[str, int, str]]  # (file, line, code) of module-level frames inside the target
    frames: list[tuple[str, int, str]]  # the last frames inside the target
    tail: str  # the last lines of the log


def parse_boot_failure(log: str, work: Path) -> BootFailure:
    """What a failed boot says: the exception, the import chain (``<module>`` frames
    inside the target, in order), the last frames in the target and the log's tail."""
    prefix = str(work) + "/"
    tb = log[log.rfind("Traceback (most recent call last):"):] if "Traceback" in log else log
    frames, chain = [], []
    for m in _FRAME.finditer(tb):
        if not m.group("file").startswith(prefix):
            continue
        item = (m.group("file")[len(prefix):], int(m.group("line")), m.group("code").strip())
        frames.append(item)
        if m.group("func") == "<module>":
            chain.append(item)
    lines = [ln for ln in log.strip().splitlines() if ln.strip()]
    error = next((ln for ln in reversed(lines) if re.match(r"^[\w.]+(Error|Exception|Exit|Interrupt)\b", ln)),
                 lines[-1] if lines else "the process exited without output")
    return BootFailure(error.replace(prefix, ""), chain, frames[-5:], "\n".join(lines[-15:]).replace(prefix, ""))
