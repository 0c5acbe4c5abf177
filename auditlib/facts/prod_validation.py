"""Production config validation, read statically: which code runs only when the app is
configured for production (``APP_ENV`` / ``ENVIRONMENT`` equals ``prod``/``production``),
what it rejects, and whether a flag can switch it off.

A *gate* is a comparison of an environment setting with a production value
(``settings.app_env == "prod"``, ``self.environment in ("prod", "production")``,
``os.getenv("APP_ENV") != "prod"``, ``settings.is_production``). A *validator* is the
code a gate guards: the ``if`` (test and body) or, after ``if not prod: return``, the
rest of the block, together with the project functions called from there (resolved
through imports, two levels deep) and the module constants it names. It counts as
validation when it can refuse to start (``raise``, ``sys.exit``, ``assert``).

Used by SEC-002 (rules present / missing) and SEC-001 (a default secret that the
validator rejects is a WARNING, not a BLOCKER).

:func:`prod_requirement` is a looser, per-function reading used by CMP-002 and OBS-003
(is a setting demanded in production at all?): any function that mentions "prod",
can reject (``raise`` or collecting errors with ``.append``) and names the setting,
whether or not anything calls it.
"""
from __future__ import annotations

import ast
import re
from bisect import bisect_left
from dataclasses import dataclass, field

from ..code.callgraph import shared
from ..code.keywords import mentions_any
from ..code.pyast import NOT_LITERAL, dotted, flat, literal, of_type
from ..code.pyresolve import Project, parents
from .settings_model import Setting, settings_model

ENV_SETTING_NAMES = ["app_env", "environment", "env", "stage", "deploy_env", "app_environment",
                     "environment_name", "runtime_env", "app_mode", "mode"]
PROD_VALUES = ["prod", "production", "live"]
# values that name a development environment: ``if env == "local": warn() else: raise``
# guards production with its ``else`` (config key ``dev_env_values``)
DEV_VALUES = ["local", "dev", "development", "test", "testing"]
PROD_PROPERTY = re.compile(r"^(is_)?(prod|production)$|^in_production$", re.IGNORECASE)
BYPASS_NAME = re.compile(r"test|debug|skip|bypass|disable|local|dev\b|insecure", re.IGNORECASE)
PROD_WORD = re.compile(r"prod", re.IGNORECASE)

# The production rules of the checklist (SEC-002), as data: a rule applies when the
# settings model has a setting matching ``settings`` (with ``unsafe_default``, only one
# whose default, read through a module constant, matches it or cannot be read; with
# ``requires: "rate_limiter"``, only when the app rate-limits at all); it is present when
# the validator refers to such a setting (and, with ``evidence``, holds a string matching it).
DEFAULT_RULES = [
    {"id": "default-secrets", "title": "rejects default secrets"},
    {"id": "stripe-live-key", "title": "STRIPE_SECRET_KEY must start with sk_live_",
     "settings": r"^stripe_(secret_|api_)?key$", "evidence": r"sk_live"},
    # only a permissive default needs the rule: an empty list (no cross-origin access) or
    # a list of localhost development origins opens nothing to other sites
    {"id": "cors-origins", "title": "explicit CORS_ORIGINS", "settings": r"cors", "unsafe_default": r"\*|^null$"},
    # Redis matters here as the shared store of a rate limiter (an in-memory one is per
    # process and resets on restart); an app that limits nothing does not need the rule
    {"id": "redis-url", "title": "REDIS_URL required (no in-memory rate limiter)", "settings": r"redis",
     "requires": "rate_limiter"},
    # a storage switch that defaults to the local disk; an optional bucket next to another
    # durable store (the database) is not a development default
    {"id": "s3-storage", "title": "S3 object storage (no local storage)",
     "settings": r"storage_backend|storage_kind|storage_type|^storage$",
     "unsafe_default": r"^(local|fs|file|files|filesystem|disk|memory|tmp)$"},
    {"id": "metrics-token", "title": "METRICS_TOKEN required", "settings": r"metrics_token"},
]
# rate limiting libraries (an import of one means the app limits something)
LIMITER_LIBS = ("slowapi", "fastapi_limiter", "limits", "starlette_limiter", "fastapi_throttle", "ratelimit")
LIMITER_NAME = re.compile(r"rate.?limit|limiter|throttl", re.IGNORECASE)


@dataclass
class Validator:
    file: str
    line: int  # the enclosing def (or the gate) line
    name: str
    gate: str  # the gate's source text
    gate_line: int
    refs: list[tuple[str, str, int]] = field(default_factory=list)  # (token, file, line)
    bypass: list[tuple[str, str, int]] = field(default_factory=list)  # (flag text, file, line)
    can_fail: bool = False
    origin: str = ""  # the function holding the gate (``name`` moves to the callee that validates)
    called: bool = True  # False: a plain function holding the gate that nothing refers to

    def find(self, rx: re.Pattern) -> tuple[str, int] | None:
        return next(((f, ln) for tok, f, ln in self.refs if rx.search(tok)), None)


@dataclass
class RuleStatus:
    id: str
    title: str
    applies: bool
    present: bool
    settings: list[Setting]
    where: tuple[str, int] | None = None  # evidence location when present
    missing: list[Setting] = field(default_factory=list)  # default-secrets: uncovered fields


@dataclass
class ProdValidation:
    validators: list[Validator]
    env_settings: list[Setting]  # the settings that gates compare
    rules: list[RuleStatus] = field(default_factory=list)

    def covering(self, s: Setting) -> tuple[Validator, str, int] | None:
        """The validator that rejects the literal default of setting ``s``, if any."""
        names = {s.name.lower(), s.env.lower()}
        default = s.default if isinstance(s.default, str) else None
        for v in self.validators:
            if not v.can_fail or not v.called:
                continue
            for tok, f, ln in v.refs:
                t = tok.lower()
                if t in names or t in ("model_fields", "__fields__") or (default and tok == default):
                    return v, f, ln
        return None

    def bypass_text(self) -> str:
        flags = [f"`{t}` ({f}:{ln})" for v in self.validators for t, f, ln in v.bypass]
        return ", ".join(dict.fromkeys(flags))

    def frame(self):
        import pandas as pd

        rows = [{"rule": r.title, "applies": r.applies, "present": r.present,
                 "settings": ", ".join(s.env for s in r.settings),
                 "evidence": f"{r.where[0]}:{r.where[1]}" if r.where else ""} for r in self.rules]
        return pd.DataFrame(rows, columns=["rule", "applies", "present", "settings", "evidence"])


def prod_validation(ctx) -> ProdValidation:
    cached = ctx.__dict__.get("_prod_validation")
    if cached is None:
        cached = analyse(ctx)
        ctx.__dict__["_prod_validation"] = cached
    return cached


def analyse(ctx) -> ProdValidation:
    cfg = ctx.config
    env_names = {n.lower() for n in cfg.get("env_setting_names", ENV_SETTING_NAMES)}
    prod_values = {v.lower() for v in cfg.get("prod_env_values", PROD_VALUES)}
    model = settings_model(ctx)
    project = Project.of(ctx)
    validators: list[Validator] = []
    gated_envs: set[str] = set()
    dev_values = {v.lower() for v in cfg.get("dev_env_values", DEV_VALUES)}
    hints = (*sorted(prod_values), *sorted(dev_values), "is_prod", "in_prod")
    setting_names = {n.lower() for st in model.settings for n in (st.name, st.env, *st.env_names)}
    for src in ctx.layout.app_sources(ctx.index):
        if src.tree is None or not mentions_any(src.text or "", hints):
            continue
        up = None
        for node in of_type(src.tree, (ast.If, ast.Assert)):
            sense, env = _gate(node.test, env_names, prod_values, dev_values)
            if sense is None:
                continue
            up = up or parents(src.tree)
            if isinstance(node, ast.Assert):
                scope, can_fail = [node], True
            elif sense and not _only_returns(node.body):
                scope = [node.test, *node.body]
                can_fail = False
            elif not sense and _only_returns(node.body):
                block = _block_of(node, up)
                scope = block[block.index(node) + 1:] if block else []
                can_fail = False
            elif not sense and node.orelse:  # if env == "local": warn(...) else: raise ...
                scope = [node.test, *node.orelse]
                can_fail = False
            else:
                continue
            gated_envs.add(env)
            fn = _enclosing(node, up)
            gate = ast.unparse(node.test) if sense or isinstance(node, ast.Assert) else _negated(node.test)
            v = Validator(src.path, fn.lineno if fn else node.lineno, fn.name if fn else "<module>",
                          gate[:120], node.lineno, can_fail=can_fail)
            v.origin = v.name
            # what the gate is reached under (``if value == DEFAULT:`` around it) and, for a
            # helper, the arguments its callers pass (``_check("SECRET_KEY", self.SECRET_KEY)``)
            scope += _enclosing_tests(node, up, fn)
            if fn is not None:
                scope += _call_args(src, fn)
            _collect(v, src, scope, project, depth=2)
            if not _names_setting(v, setting_names, env):
                continue  # a production-only code path (a feature switched off), not config validation
            _bypass(v, src, node.test, fn)
            if not v.can_fail and fn is not None:  # errors collected, raised after the gate
                v.can_fail = any(n.lineno > node.lineno for n in of_type(fn, ast.Raise))
            if v.can_fail:
                v.called = fn is None or bool(fn.decorator_list) or _referenced(ctx, fn.name)
                validators.append(v)
    pv = ProdValidation(_merge(validators), [s for s in model.settings if s.name.lower() in gated_envs
                                     or s.env.lower() in gated_envs])
    pv.rules = _rules(pv, model, cfg.get("prod_validation_rules", DEFAULT_RULES), ctx)
    return pv


def _negated(test: ast.AST) -> str:
    """The source of ``not test``, as a reader would write it (``a != 'local'``)."""
    flip = {ast.Eq: ast.NotEq, ast.NotEq: ast.Eq, ast.In: ast.NotIn, ast.NotIn: ast.In,
            ast.Is: ast.IsNot, ast.IsNot: ast.Is}
    if isinstance(test, ast.Compare) and len(test.ops) == 1 and type(test.ops[0]) in flip:
        return ast.unparse(ast.Compare(test.left, [flip[type(test.ops[0])]()], test.comparators))
    if isinstance(test, ast.UnaryOp) and isinstance(test.op, ast.Not):
        return ast.unparse(test.operand)
    return f"not ({ast.unparse(test)})"


def _enclosing_tests(node: ast.AST, up: dict, fn) -> list[ast.AST]:
    """The tests of the ``if`` statements, inside ``fn``, whose body holds ``node``."""
    out, cur = [], node
    p = up.get(id(cur))
    while p is not None and p is not fn:
        if isinstance(p, ast.If) and cur in p.body:
            out.append(p.test)
        cur, p = p, up.get(id(p))
    return out


def _call_args(src, fn) -> list[ast.AST]:
    """The arguments of the calls of ``fn`` (``fn(...)``, ``self.fn(...)``) in its file."""
    out = []
    for call in of_type(src.tree, ast.Call):
        if dotted(call.func).rsplit(".", 1)[-1] == fn.name and call.func is not fn:
            out += [*call.args, *(k.value for k in call.keywords)]
    return out


def _names_setting(v: Validator, setting_names: set[str], env: str) -> bool:
    """The validator refers to a setting other than the environment setting of its gate
    (an attribute, name or string naming a field or its env var), or rejects a whole
    settings object (``model_fields``); a production-only branch that refers to no setting
    (``if settings.environment == "PRODUCTION": raise RuntimeError("not allowed")``)
    restricts a feature, it does not validate the configuration. Without a settings model
    the reading is kept (nothing to compare with)."""
    if not setting_names:
        return True
    for tok, _f, _ln in v.refs:
        t = tok.lower()
        if t != env and (t in setting_names or t in ("model_fields", "__fields__")):
            return True
    return False


def _referenced(ctx, name: str) -> bool:
    """Whether any application module refers to ``name`` other than by defining it."""
    for src in ctx.layout.app_sources(ctx.index):
        if src.tree is None or name not in (src.text or ""):
            continue
        for n in of_type(src.tree, (ast.Name, ast.Attribute)):
            if isinstance(n, ast.Name) and n.id == name or isinstance(n, ast.Attribute) and n.attr == name:
                return True
    return False


def _merge(validators: list[Validator]) -> list[Validator]:
    """One validator per validating function (several gated ``if``s in one function)."""
    out: dict[tuple[str, int], Validator] = {}
    for v in validators:
        first = out.setdefault((v.file, v.line), v)
        if first is not v:
            first.refs += v.refs
            first.bypass += [b for b in v.bypass if b not in first.bypass]
    return list(out.values())


def _norm(node: ast.AST) -> ast.AST:
    """``x.lower()`` / ``x.strip().casefold()`` -> ``x``."""
    while isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) \
            and node.func.attr in ("lower", "strip", "casefold", "upper"):
        node = node.func.value
    return node


def _env_ref(node: ast.AST, env_names: set[str]) -> str | None:
    node = _norm(node)
    if isinstance(node, ast.Call) and node.args and dotted(node.func).endswith(("getenv", "environ.get")):
        key = literal(node.args[0])
        return key.lower() if isinstance(key, str) and key.lower() in env_names else None
    if isinstance(node, ast.Subscript) and dotted(node.value).endswith("environ"):
        key = literal(node.slice)
        return key.lower() if isinstance(key, str) and key.lower() in env_names else None
    last = dotted(node).rsplit(".", 1)[-1].lower()
    return last if last in env_names else None


def _gate(test: ast.AST, env_names: set[str], prod_values: set[str],
          dev_values: frozenset | set = frozenset()) -> tuple[bool | None, str]:
    """(True, env) for a production gate, (False, env) for a "not production" gate; a
    comparison with development values counts the other way round (``env == "local"`` is
    a "not production" gate, ``env != "local"`` a production one)."""
    if isinstance(test, ast.BoolOp) and isinstance(test.op, ast.And):
        for v in test.values:
            sense, env = _gate(v, env_names, prod_values, dev_values)
            if sense:
                return sense, env
        return None, ""
    if isinstance(test, ast.UnaryOp) and isinstance(test.op, ast.Not):
        sense, env = _gate(test.operand, env_names, prod_values, dev_values)
        return (None if sense is None else not sense), env
    if isinstance(test, ast.Compare) and len(test.ops) == 1:
        left, right, op = test.left, test.comparators[0], test.ops[0]
        for a, b in ((left, right), (right, left)):
            env = _env_ref(a, env_names)
            val = literal(b)
            vals = {val} if isinstance(val, str) else set(val) if isinstance(val, (tuple, list, set, frozenset)) else set()
            if env and {str(x).lower() for x in vals} & prod_values:
                if isinstance(op, (ast.Eq, ast.In, ast.Is)):
                    return True, env
                if isinstance(op, (ast.NotEq, ast.NotIn, ast.IsNot)):
                    return False, env
            if env and vals and {str(x).lower() for x in vals} <= dev_values:
                if isinstance(op, (ast.Eq, ast.In, ast.Is)):
                    return False, env
                if isinstance(op, (ast.NotEq, ast.NotIn, ast.IsNot)):
                    return True, env
    if isinstance(test, (ast.Attribute, ast.Name)) and PROD_PROPERTY.search(dotted(test).rsplit(".", 1)[-1]):
        return True, dotted(test).rsplit(".", 1)[-1].lower()
    return None, ""


def _only_returns(body: list[ast.stmt]) -> bool:
    return all(isinstance(s, (ast.Return, ast.Pass, ast.Continue)) for s in body)


def _block_of(node: ast.AST, up: dict) -> list[ast.stmt] | None:
    p = up.get(id(node))
    for attr in ("body", "orelse", "finalbody"):
        block = getattr(p, attr, None)
        if isinstance(block, list) and node in block:
            return block
    return None


def _enclosing(node, up):
    p = up.get(id(node))
    while p is not None and not isinstance(p, (ast.FunctionDef, ast.AsyncFunctionDef)):
        p = up.get(id(p))
    return p


_COLLECTED = (ast.Raise, ast.Assert, ast.Attribute, ast.Name, ast.Constant, ast.Call)  # what _collect reads


def _collect(v: Validator, src, scope: list[ast.AST], project: Project, depth: int, seen=None) -> None:
    """Tokens (attribute names, names, strings) the validator refers to, with where."""
    seen = seen if seen is not None else set()
    consts = _module_constants(src.tree)
    for root in scope:
        for n in of_type(root, _COLLECTED):
            if isinstance(n, (ast.Raise, ast.Assert)):
                v.can_fail = True
            elif isinstance(n, ast.Attribute):
                v.refs.append((n.attr, src.path, n.lineno))
            elif isinstance(n, ast.Name):
                v.refs.append((n.id, src.path, n.lineno))
                if n.id in consts and (src.path, n.id) not in seen:
                    seen.add((src.path, n.id))
                    for c in of_type(consts[n.id], ast.Constant):
                        if isinstance(c.value, str):
                            v.refs.append((c.value, src.path, n.lineno))
            elif isinstance(n, ast.Constant) and isinstance(n.value, str):
                v.refs.append((n.value, src.path, n.lineno))
            elif isinstance(n, ast.Call):
                if dotted(n.func) in ("sys.exit", "exit", "os._exit"):
                    v.can_fail = True
                if depth > 0:
                    target = project.resolve_call(src, n.func)
                    if target is not None and id(target.func) not in seen:
                        seen.add(id(target.func))
                        if v.name == v.origin and of_type(target.func, ast.Raise):
                            # the gate calls the validating function: point at it
                            v.file, v.line, v.name = target.src.path, target.func.lineno, target.func.name
                        _collect(v, target.src, target.func.body, project, depth - 1, seen)


def _module_constants(tree: ast.Module) -> dict[str, ast.AST]:
    out = {}
    for stmt in tree.body:
        if isinstance(stmt, ast.Assign):
            for t in stmt.targets:
                if isinstance(t, ast.Name):
                    out[t.id] = stmt.value
        elif isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name) and stmt.value is not None:
            out[stmt.target.id] = stmt.value
    return out


def _bypass(v: Validator, src, test: ast.AST, fn) -> None:
    """Flags that switch the validation off, recorded as the condition that skips it:
    ``and not settings.testing`` in the gate gives ``settings.testing``; ``if self.debug:
    return`` before the gate in the validating function gives ``self.debug``."""
    operands = test.values if isinstance(test, ast.BoolOp) and isinstance(test.op, ast.And) else []
    for o in operands:
        negated = isinstance(o, ast.UnaryOp) and isinstance(o.op, ast.Not)
        inner = _norm(o.operand if negated else o)
        name = dotted(inner)
        if name and BYPASS_NAME.search(name.rsplit(".", 1)[-1]):
            v.bypass.append((name if negated else f"not {name}", src.path, o.lineno))
    for stmt in (fn.body if fn else []):
        if getattr(stmt, "lineno", 0) >= v.gate_line:
            break
        if isinstance(stmt, ast.If) and _only_returns(stmt.body):
            name = dotted(_norm(stmt.test))
            if name and BYPASS_NAME.search(name.rsplit(".", 1)[-1]):
                v.bypass.append((name, src.path, stmt.lineno))


def rate_limiter(ctx) -> bool:
    """Whether the app rate-limits anything: a rate-limiting library is imported
    (slowapi, fastapi-limiter, limits...), or a route has a limiter decorator or
    dependency, or a rate-limiting middleware applies to it."""
    for src in ctx.layout.app_sources(ctx.index):
        if src.tree is None:
            continue
        for n in of_type(src.tree, (ast.Import, ast.ImportFrom)):
            mods = [a.name for a in n.names] if isinstance(n, ast.Import) else [n.module or ""]
            if any(m.split(".")[0] in LIMITER_LIBS for m in mods):
                return True
    from .routes import route_inventory

    for r in route_inventory(ctx):
        if any(LIMITER_NAME.search(d) for d in r.decorators) or any(m.rate_limits for m in r.middlewares) \
                or any(LIMITER_NAME.search(n.rsplit(":", 1)[-1]) for d in r.dependencies for n in (d.name, *d.chain)):
            return True
    return False


def default_value(ctx, s: Setting):
    """The default of setting ``s``, read through a module-level constant when the field
    names one (``cors_origins: list = DEFAULT_ORIGINS``); NOT_LITERAL when unknown."""
    if s.default is not NOT_LITERAL:
        return s.default
    src = ctx.index.get(s.file)
    if src is None or src.tree is None:
        return NOT_LITERAL
    node = next((n for n in of_type(src.tree, (ast.AnnAssign, ast.Assign)) if n.lineno == s.line), None)
    value = getattr(node, "value", None)
    if isinstance(value, ast.Name):
        const = _module_constants(src.tree).get(value.id)
        return literal(const) if const is not None else NOT_LITERAL
    return NOT_LITERAL


def _unsafe_default(ctx, s: Setting, rx: re.Pattern) -> bool:
    """The setting's default matches ``rx`` (any element of a list), or cannot be read."""
    if s.required:
        return False  # no default: the deployment has to choose
    value = default_value(ctx, s)
    if value is NOT_LITERAL:
        return True
    values = value if isinstance(value, (list, tuple, set, frozenset)) else [value]
    return any(isinstance(v, str) and rx.search(v) for v in values)


def _rules(pv: ProdValidation, model, rules: list[dict], ctx=None) -> list[RuleStatus]:
    out = []
    limiter = None
    for r in rules:
        if r["id"] == "default-secrets":
            targets = [s for s in model.secrets() if isinstance(s.default, str) and s.default.strip()]
            missing = [s for s in targets if pv.covering(s) is None]
            cover = next((pv.covering(s) for s in targets if pv.covering(s)), None)
            out.append(RuleStatus(r["id"], r["title"], bool(targets), bool(targets) and not missing, targets,
                                  (cover[1], cover[2]) if cover else None, missing))
            continue
        rx = re.compile(r["settings"], re.IGNORECASE)
        targets = [s for s in model.settings if rx.search(s.name) or rx.search(s.env)]
        if r.get("safe_default") == "empty":
            targets = [s for s in targets if not (s.required or s.default in (None, "", [], (), {}))]
        if r.get("unsafe_default") and ctx is not None:
            unsafe = re.compile(r["unsafe_default"], re.IGNORECASE)
            targets = [s for s in targets if _unsafe_default(ctx, s, unsafe)]
        if r.get("requires") == "rate_limiter" and targets and ctx is not None:
            limiter = rate_limiter(ctx) if limiter is None else limiter
            targets = targets if limiter else []
        where = None
        for v in pv.validators:
            if not v.called:
                continue
            hit = v.find(rx)
            ev = r.get("evidence")
            if hit and (not ev or v.find(re.compile(ev, re.IGNORECASE))):
                where = hit
                break
        out.append(RuleStatus(r["id"], r["title"], bool(targets), where is not None, targets, where))
    return out


def env_default(pv: ProdValidation) -> tuple[Setting | None, str]:
    """(setting, "`APP_ENV` defaults to 'dev'") when the gates' environment setting has a
    non-production default; (None, "") when it is required somewhere (the app cannot
    start without it) or defaults to production."""
    by_env: dict[str, list[Setting]] = {}
    for s in pv.env_settings:
        by_env.setdefault(s.env, []).append(s)
    for env, group in by_env.items():
        if any(s.required for s in group):
            continue
        s = group[0]
        if isinstance(s.default, str) and s.default.lower() in PROD_VALUES:
            continue
        return s, f"`{env}` defaults to {s.default!r}"
    return None, ""


def env_default_text(pv: ProdValidation) -> str:
    return env_default(pv)[1]


def bypass_on_by_default(pv: ProdValidation, model) -> list[str]:
    """Bypass flags whose own default already switches validation off (``testing = True``)."""
    out = []
    for v in pv.validators:
        for text, _f, _ln in v.bypass:
            negated = text.lstrip().startswith("not ")
            name = re.findall(r"[A-Za-z_]\w*", text)[-1]
            s = model.get(name)
            if s is not None and s.literal_default and bool(s.default) != negated:  # skip holds by default
                out.append(text)
    return out


def _prod_functions(ctx) -> list[tuple]:
    """(file, function) of every app function that mentions "prod" (its name, a string,
    a name or attribute chain anywhere in its body, nested definitions included) and can
    reject (a ``raise`` or an ``.append(...)`` call in it), in file and source order.
    One pass per file over those node kinds, then a bisection per function; built once
    per audit (CMP-002 and OBS-003 ask it per setting)."""
    def build():
        out = []
        for src in Project.of(ctx).files:
            if not ctx.layout.is_app(src.path):
                continue
            fns = of_type(src.tree, (ast.FunctionDef, ast.AsyncFunctionDef))
            if not fns:
                continue
            # identifiers of an ASCII file are spelled in its text: without "append" no
            # ``.append`` call, without "prod" no name or attribute chain holding it
            # (strings can still hold it: escapes, concatenation)
            text = src.text or ""
            ascii_text = text.isascii()
            rejects = [n._fi for n in of_type(src.tree, ast.Raise)]
            if not ascii_text or "append" in text:
                rejects = sorted(rejects + [n._fi for n in of_type(src.tree, ast.Call)
                                            if dotted(n.func).endswith(".append")])
            if not rejects:
                continue
            idents = not ascii_text or "prod" in text.lower()
            kinds = (ast.Constant, ast.Attribute, ast.Name) if idents else ast.Constant
            marks = [n._fi for n in of_type(src.tree, kinds) if _says_prod(n)]
            end = flat(src.tree)[0].end
            for fn in fns:
                i, stop = fn._fi, end[fn._fi]
                if not _within(rejects, i, stop):
                    continue
                if (idents and PROD_WORD.search(fn.name)) or _within(marks, i, stop):
                    out.append((src, fn))
        return out
    return shared(ctx, "prod_validation.prod_functions", build)


def _says_prod(n: ast.AST) -> bool:
    if isinstance(n, ast.Constant):
        return isinstance(n.value, str) and bool(PROD_WORD.search(n.value))
    return bool(PROD_WORD.search(dotted(n)))


def _within(positions: list[int], lo: int, hi: int) -> bool:
    k = bisect_left(positions, lo)
    return k < len(positions) and positions[k] < hi


def prod_requirement(ctx, setting: Setting) -> str | None:
    """``file:line`` where production-only validation refers to ``setting`` (a function
    or validator that mentions "prod", raises or collects errors, and names the field);
    None when no such rule exists."""
    names = {setting.name.lower(), setting.env.lower()}
    for src, fn in _prod_functions(ctx):
        for n in of_type(fn, (ast.Attribute, ast.Name, ast.Constant)):
            ref = n.attr if isinstance(n, ast.Attribute) else n.id if isinstance(n, ast.Name) else \
                n.value if isinstance(n.value, str) else None
            if isinstance(ref, str) and ref.lower() in names:
                return f"{src.path}:{n.lineno}"
    return None
