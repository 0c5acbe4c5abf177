"""Configuration values the compliance and observability checks ask about: a setting by
name pattern (pydantic ``BaseSettings`` fields, with ``Field(env=/alias=/validation_alias=)``,
and ``os.getenv("X", default)`` / ``os.environ.get`` / ``os.environ["X"]`` in app code),
its env var, its literal default, and whether production validation requires it.
"""
from __future__ import annotations

import ast
import re
from dataclasses import dataclass

from .pyast import NOT_LITERAL, dotted, literal
from .pyresolve import Project, field_default, kwarg

PROD = re.compile(r"prod", re.I)


@dataclass
class Setting:
    name: str  # the field or env var name as written
    env: str  # the environment variable
    default: object  # literal default; NOT_LITERAL when required or computed
    file: str
    line: int

    @property
    def required(self) -> bool:
        return self.default is NOT_LITERAL

    @property
    def empty(self) -> bool:
        return self.default in (None, "", False) and self.default is not NOT_LITERAL


def _env_name(stmt: ast.AnnAssign) -> str:
    if isinstance(stmt.value, ast.Call) and dotted(stmt.value.func).split(".")[-1] == "Field":
        for key in ("validation_alias", "alias", "env"):
            v = literal(kwarg(stmt.value, key))
            if isinstance(v, str):
                return v.upper()
    return stmt.target.id.upper()


def all_settings(ctx) -> list[Setting]:
    if "_settings_lookup" in ctx.__dict__:
        return ctx.__dict__["_settings_lookup"]
    out = []
    for path, cls_name, _ in ctx.layout.settings_classes:
        src = ctx.index.get(path)
        cls = next((n for n in ast.walk(src.tree) if isinstance(n, ast.ClassDef) and n.name == cls_name),
                   None) if src and src.tree else None
        for stmt in cls.body if cls else []:
            if isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name):
                default = field_default(stmt.value) if stmt.value is not None else NOT_LITERAL
                out.append(Setting(stmt.target.id, _env_name(stmt), default, path, stmt.lineno))
    for src in ctx.layout.app_sources(ctx.index):
        for n in ast.walk(src.tree) if src.tree else ():
            if isinstance(n, ast.Call) and dotted(n.func) in ("os.getenv", "os.environ.get", "getenv", "environ.get") \
                    and n.args and isinstance(literal(n.args[0]), str):
                default = literal(n.args[1]) if len(n.args) > 1 else None
                out.append(Setting(n.args[0].value, n.args[0].value.upper(), default, src.path, n.lineno))
            elif isinstance(n, ast.Subscript) and dotted(n.value) in ("os.environ", "environ") \
                    and isinstance(literal(n.slice), str):
                out.append(Setting(n.slice.value, n.slice.value.upper(), NOT_LITERAL, src.path, n.lineno))
    ctx.__dict__["_settings_lookup"] = out
    return out


def find_settings(ctx, pattern: str) -> list[Setting]:
    """Settings whose field or env name matches ``pattern`` (case-insensitive)."""
    rx = re.compile(pattern, re.I)
    return [s for s in all_settings(ctx) if rx.search(s.name) or rx.search(s.env)]


def prod_requirement(ctx, setting: Setting) -> str | None:
    """``file:line`` where production-only validation refers to ``setting`` (a function
    or validator that mentions "prod", raises or collects errors, and names the field);
    None when no such rule exists."""
    names = {setting.name.lower(), setting.env.lower()}
    proj = Project.of(ctx)
    for src in proj.files:
        if not ctx.layout.is_app(src.path):
            continue
        for fn in ast.walk(src.tree):
            if not isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            nodes = list(ast.walk(fn))
            is_prod = PROD.search(fn.name) or any(
                isinstance(n, ast.Constant) and isinstance(n.value, str) and PROD.search(n.value) for n in nodes) \
                or any(isinstance(n, (ast.Attribute, ast.Name)) and PROD.search(dotted(n)) for n in nodes)
            rejects = any(isinstance(n, ast.Raise) for n in nodes) or any(
                isinstance(n, ast.Call) and dotted(n.func).endswith(".append") for n in nodes)
            if not (is_prod and rejects):
                continue
            for n in nodes:
                ref = n.attr if isinstance(n, ast.Attribute) else n.id if isinstance(n, ast.Name) else \
                    n.value if isinstance(n, ast.Constant) and isinstance(n.value, str) else None
                if isinstance(ref, str) and ref.lower() in names:
                    return f"{src.path}:{n.lineno}"
    return None
