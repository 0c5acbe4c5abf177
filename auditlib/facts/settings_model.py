"""The target's settings model: every setting the code reads, mapped to its env var name.

Read statically (nothing is imported). Two kinds of source:

- pydantic settings classes (``BaseSettings`` subclasses found by discovery, fields of
  project base classes included): ``x: str = "v"``, ``x: str = Field("v")``,
  ``Field(default="v")``, ``Field(default_factory=...)``, ``Field(..., env="X")``
  (pydantic v1 only: pydantic-settings v2 ignores ``env=``, the field name is used and
  :attr:`Setting.note` says so), ``validation_alias="X"`` / ``alias="X"`` /
  ``AliasChoices("A", "B")`` (no prefix applied, as pydantic-settings does), and
  ``env_prefix`` from ``model_config = SettingsConfigDict(env_prefix=...)`` or
  ``class Config: env_prefix = ...``. pydantic-settings is case-insensitive by
  default, so env names are given upper-case.
- direct reads anywhere in application code (and the Alembic ``env.py``):
  ``os.getenv("X", "d")``, ``os.environ.get("X", "d")``, ``os.environ["X"]`` (required),
  ``os.environ.setdefault``, through any import alias (``from os import getenv as g``).

API (other checks reuse it)::

    model = settings_model(ctx)          # cached on the context
    model.settings                       # [Setting] in file/line order
    model.get("auth_secret_key")         # by field name or env var name (any case)
    model.find(r"^email_from$")          # [Setting] whose field or env name matches a regex
    find_settings(ctx, r"^email_from$")  # the same, from the context
    model.env_names()                    # {"AUTH_SECRET_KEY", ...}
    model.secrets()                      # settings whose name says secret/password/token
    model.frame()                        # pandas DataFrame, one row per setting

``Setting.default`` is the literal default, :data:`REQUIRED` (no default: the app fails
to start without it) or :data:`~auditlib.code.pyast.NOT_LITERAL` (computed).
"""
from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field

from ..code.pyast import NOT_LITERAL, dotted, literal, of_type, parent_map
from ..code.pyresolve import import_map

SECRET_NAME = re.compile(r"secret|passw(or)?d|pwd|passphrase|token|api_?key|private_?key|credential|signing_?key",
                         re.IGNORECASE)
# names that mention a secret but hold something else (a URL, a lifetime, a header name...)
NOT_SECRET = re.compile(
    r"(_url|_uri|_endpoint|_host|_port|_ttl|_seconds|_minutes|_hours|_days|_length|_len|_header|_name|_prefix|"
    r"_field|_algorithm|_alg|_path|_file|_dir|_enabled|_expires?(_\w+)?|_lifetime|_type|_min|_max|_rounds|"
    r"_iterations|_cookie|_scheme|_location|_audience|_issuer)$", re.IGNORECASE)


class _Required:
    def __repr__(self) -> str:
        return "REQUIRED"


REQUIRED = _Required()


@dataclass
class Setting:
    name: str  # field name, or the env var name for direct reads
    env: str  # the env var name that sets it (upper-case)
    file: str
    line: int
    owner: str  # settings class name, or "os.environ"
    default: object = REQUIRED  # literal, REQUIRED or NOT_LITERAL
    annotation: str = ""
    env_names: list[str] = field(default_factory=list)  # every accepted name (AliasChoices)
    note: str = ""
    function: str = ""  # direct reads: the function that reads it ("" at module level)

    @property
    def required(self) -> bool:
        return self.default is REQUIRED

    @property
    def optional(self) -> bool:
        """Declared optional (``X | None``) or defaulting to None."""
        return self.default is None or "None" in self.annotation or "Optional" in self.annotation

    @property
    def secret(self) -> bool:
        return is_secret_name(self.name) or "SecretStr" in self.annotation

    @property
    def literal_default(self) -> bool:
        return self.default is not REQUIRED and self.default is not NOT_LITERAL

    @property
    def empty(self) -> bool:
        """Defaults to None, "" or False (the setting is effectively unset)."""
        return self.default in (None, "", False)


def is_secret_name(name: str) -> bool:
    return bool(SECRET_NAME.search(name)) and not NOT_SECRET.search(name)


@dataclass
class SettingsModel:
    settings: list[Setting] = field(default_factory=list)

    def get(self, name: str) -> Setting | None:
        low = name.lower()
        return next((s for s in self.settings if s.name.lower() == low
                     or low in (e.lower() for e in s.env_names)), None)

    def find(self, pattern: str) -> list[Setting]:
        """Settings whose field name or one of whose env names matches ``pattern``
        (a regular expression, case-insensitive), in file/line order."""
        rx = re.compile(pattern, re.IGNORECASE)
        return [s for s in self.settings if rx.search(s.name) or any(rx.search(e) for e in s.env_names)]

    def env_names(self) -> set[str]:
        return {e for s in self.settings for e in s.env_names}

    def secrets(self) -> list[Setting]:
        return [s for s in self.settings if s.secret]

    def frame(self):
        import pandas as pd

        rows = [{"setting": s.name, "env": s.env, "default": _show(s), "required": s.required,
                 "secret": s.secret, "owner": s.owner, "file": s.file, "line": s.line, "note": s.note}
                for s in self.settings]
        return pd.DataFrame(rows, columns=["setting", "env", "default", "required", "secret", "owner",
                                           "file", "line", "note"])


def _show(s: Setting) -> str:
    from ..redact import mask

    if s.default is REQUIRED:
        return "(required)"
    if s.default is NOT_LITERAL:
        return "(computed)"
    if s.secret and isinstance(s.default, str) and s.default:
        return mask(s.default, 2)  # never print a secret default
    return repr(s.default)


def settings_model(ctx) -> SettingsModel:
    """The settings model of the audited target (built once per context)."""
    cached = ctx.__dict__.get("_settings_model")
    if cached is None:
        cached = build(ctx.index, ctx.layout)
        ctx.__dict__["_settings_model"] = cached
    return cached


def find_settings(ctx, pattern: str) -> list[Setting]:
    """``settings_model(ctx).find(pattern)``."""
    return settings_model(ctx).find(pattern)


def build(index, layout) -> SettingsModel:
    model = SettingsModel()
    classes = _class_nodes(index, layout)
    for src, cls in classes.values():
        model.settings += _class_settings(src, cls, classes)
    seen = {(s.file, s.line, s.env) for s in model.settings}
    for src in _environ_sources(index, layout):
        for s in _environ_reads(src):
            if (s.file, s.line, s.env) not in seen:
                seen.add((s.file, s.line, s.env))
                model.settings.append(s)
    model.settings.sort(key=lambda s: (s.file, s.line))
    return model


def _class_nodes(index, layout) -> dict[tuple[str, str], tuple]:
    out = {}
    for path, name, line in layout.settings_classes:
        src = index.get(path)
        if src is None or src.tree is None:
            continue
        cls = next((n for n in of_type(src.tree, ast.ClassDef) if n.name == name and n.lineno == line), None)
        if cls is not None:
            out[(path, name)] = (src, cls)
    return out


def _pydantic_v1(src) -> bool:
    imports = import_map(src.tree)
    return any(v in ("pydantic.BaseSettings", "pydantic.v1.BaseSettings") for v in imports.values())


def _class_settings(src, cls: ast.ClassDef, classes) -> list[Setting]:
    v1 = _pydantic_v1(src)
    prefix = env_prefix(cls, classes)
    out, names = [], set()
    for owner_src, node in _mro(src, cls, classes):
        for stmt in node.body:
            if not (isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name)):
                continue
            name = stmt.target.id
            ann = ast.unparse(stmt.annotation)
            if name in names or name.startswith("_") or "ClassVar" in ann or name == "model_config":
                continue
            names.add(name)
            default, aliases, note = _field_info(stmt.value, v1)
            env_names = [a.upper() for a in aliases] or [(prefix + name).upper()]
            out.append(Setting(name, env_names[0], owner_src.path, stmt.lineno, cls.name, default, ann,
                               env_names, note))
    return out


def _mro(src, cls, classes):
    """The class and its project settings bases (nearest first)."""
    yield src, cls
    for b in cls.bases:
        base = dotted(b).rsplit(".", 1)[-1]
        for (_path, name), (bsrc, bnode) in classes.items():
            if name == base and bnode is not cls:
                yield from _mro(bsrc, bnode, classes)
                break


def env_prefix(cls: ast.ClassDef, classes=None) -> str:
    """``env_prefix`` of ``model_config = SettingsConfigDict(...)`` or ``class Config``."""
    for stmt in cls.body:
        if isinstance(stmt, (ast.Assign, ast.AnnAssign)):
            targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
            if any(isinstance(t, ast.Name) and t.id == "model_config" for t in targets):
                value = stmt.value
                if isinstance(value, ast.Call):
                    for kw in value.keywords:
                        if kw.arg == "env_prefix" and isinstance(literal(kw.value), str):
                            return literal(kw.value)
                elif isinstance(value, ast.Dict):
                    for k, v in zip(value.keys, value.values):
                        if literal(k) == "env_prefix" and isinstance(literal(v), str):
                            return literal(v)
        if isinstance(stmt, ast.ClassDef) and stmt.name == "Config":
            for s in stmt.body:
                if isinstance(s, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "env_prefix"
                                                     for t in s.targets) and isinstance(literal(s.value), str):
                    return literal(s.value)
    for b in cls.bases:  # inherited configuration
        base = dotted(b).rsplit(".", 1)[-1]
        for (_p, name), (_s, node) in (classes or {}).items():
            if name == base and node is not cls:
                return env_prefix(node, classes)
    return ""


def _value(node: ast.AST):
    """A literal, looking through ``SecretStr("x")`` / ``SecretBytes(b"x")``."""
    if isinstance(node, ast.Call) and dotted(node.func).rsplit(".", 1)[-1] in ("SecretStr", "SecretBytes") \
            and len(node.args) == 1:
        node = node.args[0]
    return REQUIRED if _is_ellipsis(node) else literal(node)


def _field_info(value: ast.AST | None, v1: bool) -> tuple[object, list[str], str]:
    """(default, explicit env names, note) of a field's right-hand side."""
    if value is None:
        return REQUIRED, [], ""
    if not (isinstance(value, ast.Call) and dotted(value.func).rsplit(".", 1)[-1] == "Field"):
        return _value(value), [], ""
    default: object = REQUIRED
    if value.args:
        default = _value(value.args[0])
    aliases: list[str] = []
    note = ""
    for kw in value.keywords:
        if kw.arg == "default":
            default = _value(kw.value)
        elif kw.arg == "default_factory":
            default = NOT_LITERAL
        elif kw.arg in ("validation_alias", "alias") and not aliases:
            aliases = _alias_names(kw.value)
        elif kw.arg == "env":
            names = _alias_names(kw.value)
            if v1:
                aliases = names or aliases
            elif names:
                note = (f"Field(env={names[0]!r}) is ignored by pydantic-settings v2: the variable "
                        "read is the field name (use validation_alias)")
    return default, aliases, note


def _is_ellipsis(node: ast.AST) -> bool:
    return isinstance(node, ast.Constant) and node.value is Ellipsis


def _alias_names(node: ast.AST) -> list[str]:
    v = literal(node)
    if isinstance(v, str):
        return [v]
    if isinstance(v, (list, tuple)):
        return [x for x in v if isinstance(x, str)]
    if isinstance(node, ast.Call) and dotted(node.func).endswith("AliasChoices"):
        return [a for a in (literal(x) for x in node.args) if isinstance(a, str)]
    return []


def _environ_sources(index, layout):
    for src in layout.app_sources(index):
        if src.tree is not None:
            yield src
    env = index.get(f"{layout.alembic_dir}/env.py") if layout.alembic_dir else None
    if env is not None and env.tree is not None and not layout.is_app(env.path):
        yield env


def _environ_reads(src) -> list[Setting]:
    """``os.getenv`` / ``os.environ.get`` / ``os.environ[...]`` / ``setdefault`` reads."""
    if "environ" not in (src.text or "") and "getenv" not in (src.text or ""):
        return []
    imports = import_map(src.tree)

    def q(node):
        name = dotted(node)
        head, _, rest = name.partition(".")
        return imports.get(head, head) + ("." + rest if rest else "") if name else ""

    out = []
    up = None
    for node in of_type(src.tree, (ast.Call, ast.Subscript)):
        key = default = None
        if isinstance(node, ast.Call) and node.args:
            callee = q(node.func)
            if callee in ("os.getenv", "os.environ.get", "os.environ.setdefault"):
                key = literal(node.args[0])
                if len(node.args) > 1:
                    default = literal(node.args[1])
                else:
                    kw = next((k.value for k in node.keywords if k.arg == "default"), None)
                    default = literal(kw) if kw is not None else None
        elif isinstance(node, ast.Subscript) and isinstance(node.ctx, ast.Load) and q(node.value) == "os.environ":
            key, default = literal(node.slice), REQUIRED
            if isinstance(key, str) and key:
                up = up if up is not None else parent_map(src.tree)
                if _guarded(node, key, up, q):
                    default = None  # read only when set: optional
        if isinstance(key, str) and key:
            up = up if up is not None else parent_map(src.tree)
            fn = _enclosing_def(node, up)
            out.append(Setting(key, key.upper(), src.path, node.lineno, "os.environ", default, "", [key.upper()],
                               function=fn.name if fn is not None else ""))
    return out


def _enclosing_def(node, up):
    p = up.get(id(node))
    while p is not None and not isinstance(p, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
        p = up.get(id(p))
    return p if isinstance(p, (ast.FunctionDef, ast.AsyncFunctionDef)) else None


def _guarded(node: ast.AST, key: str, up: dict, q) -> bool:
    """``os.environ[key]`` read only when the variable is set: inside ``if key in os.environ``
    / ``if os.getenv(key)`` (the body, or a conditional expression's value), or inside a
    ``try`` that catches ``KeyError`` (or everything)."""
    def tests_key(test: ast.AST) -> bool:
        for n in of_type(test, (ast.Compare, ast.Call)):
            if isinstance(n, ast.Compare) and literal(n.left) == key and any(
                    isinstance(op, ast.In) for op in n.ops) and any(q(c) == "os.environ" for c in n.comparators):
                return True
            if isinstance(n, ast.Call) and n.args and literal(n.args[0]) == key \
                    and q(n.func) in ("os.getenv", "os.environ.get"):
                return True
        return False

    cur, p = node, up.get(id(node))
    while p is not None and not isinstance(p, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        if isinstance(p, ast.If) and cur in p.body and tests_key(p.test):
            return True
        if isinstance(p, ast.IfExp) and cur is p.body and tests_key(p.test):
            return True
        if isinstance(p, ast.BoolOp) and isinstance(p.op, ast.And) and cur in p.values \
                and any(tests_key(v) for v in p.values[:p.values.index(cur)]):
            return True
        if isinstance(p, ast.Try) and cur in p.body and any(
                h.type is None or dotted(h.type) in ("KeyError", "Exception", "LookupError")
                or isinstance(h.type, ast.Tuple) and any(dotted(e) in ("KeyError", "LookupError") for e in h.type.elts)
                for h in p.handlers):
            return True
        cur, p = p, up.get(id(p))
    return False
