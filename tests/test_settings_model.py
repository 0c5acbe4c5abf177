"""The settings model (env var names of every setting) and what is built on it:
production validation analysis, SEC-001 severities, DEP-001 findings that have no line,
value origins and route credentials."""
from __future__ import annotations

from pathlib import Path

from auditlib.checks import run_checks
from auditlib.target.context import AuditContext
from auditlib.code.pyast import NOT_LITERAL
from auditlib.facts.route_credentials import routes
from auditlib.facts.settings_model import REQUIRED, settings_model

REPO = Path(__file__).resolve().parent.parent
FIXTURES = REPO / "tests" / "fixtures" / "checks"


def make(tmp_path: Path, files: dict[str, str]) -> AuditContext:
    root = tmp_path / "target"
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return AuditContext.open(root, tmp_path / "out")


MAIN = "from fastapi import FastAPI\napp = FastAPI()\n"
SETTINGS_V2 = '''
import os
from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Base(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SHOP_")
    database_url: str


class Settings(Base):
    api_key: SecretStr = SecretStr("dev-key")
    redis_url: str = Field(validation_alias="REDIS_URL")
    region: str = Field("eu", validation_alias=AliasChoices("S3_REGION", "AWS_REGION"))
    legacy: str = Field("x", env="LEGACY_NAME")
    tags: list[str] = Field(default_factory=list)
    port: int = Field(..., alias="PORT")


TOKEN = os.getenv("GITHUB_TOKEN", "ghp-dev")
HOME = os.environ["APP_HOME"]
DEBUG = os.environ.get("APP_DEBUG")
'''


def test_settings_model_resolves_env_names(tmp_path):
    ctx = make(tmp_path, {"app/__init__.py": "", "app/main.py": MAIN, "app/settings.py": SETTINGS_V2})
    m = settings_model(ctx)
    env = {s.name: (s.env, s.default) for s in m.settings}
    assert env["database_url"] == ("SHOP_DATABASE_URL", REQUIRED)  # inherited, prefix of the base config
    assert env["api_key"] == ("SHOP_API_KEY", "dev-key")  # SecretStr("...") unwrapped
    assert env["redis_url"] == ("REDIS_URL", REQUIRED)  # alias: no prefix
    assert env["region"] == ("S3_REGION", "eu")
    assert m.get("AWS_REGION").name == "region"  # any AliasChoices name
    assert env["legacy"] == ("SHOP_LEGACY", "x")  # env= is ignored by pydantic-settings v2...
    assert "ignored by pydantic-settings v2" in m.get("legacy").note  # ...and the model says so
    assert env["tags"][1] is NOT_LITERAL
    assert env["port"] == ("PORT", REQUIRED)
    assert env["GITHUB_TOKEN"] == ("GITHUB_TOKEN", "ghp-dev")
    assert env["APP_HOME"] == ("APP_HOME", REQUIRED)
    assert env["APP_DEBUG"] == ("APP_DEBUG", None)
    assert {s.name for s in m.secrets()} == {"api_key", "GITHUB_TOKEN"}
    frame = m.frame()
    assert list(frame.columns)[:3] == ["setting", "env", "default"]
    assert "dev-key" not in frame.to_string()  # secret defaults are masked


def test_pydantic_v1_env_and_config_class_prefix(tmp_path):
    text = ("from pydantic import BaseSettings, Field\n\nclass S(BaseSettings):\n"
            "    secret: str = Field('x', env='MY_SECRET')\n    level: str = 'INFO'\n\n"
            "    class Config:\n        env_prefix = 'APP_'\n")
    ctx = make(tmp_path, {"app/main.py": MAIN, "app/config.py": text})
    env = {s.name: s.env for s in settings_model(ctx).settings}
    assert env == {"secret": "MY_SECRET", "level": "APP_LEVEL"}


def _sev(case: str, check: str, tmp_path) -> list[tuple[str, int, str]]:
    ctx = AuditContext.open(FIXTURES / check / case, tmp_path)
    return [(f.severity.value, f.locations[0].line, f.message) for f in run_checks(ctx, ids=[check])
            if f.check == check and f.severity.value != "INFO"]


def test_sec001_blocker_without_validation_recommendation_with(tmp_path):
    assert {s for s, _l, _m in _sev("unvalidated", "SEC-001", tmp_path)} == {"BLOCKER"}
    validated = _sev("validated", "SEC-001", tmp_path / "v")
    assert {s for s, _l, _m in validated} == {"RECOMMENDATION"}
    msg = validated[0][2]
    assert "refuses to start with it: a RECOMMENDATION" in msg
    assert "_prod_checks" in msg and "bypassed by `self.testing`" in msg and "`APP_ENV` defaults to 'dev'" in msg


def test_sec001_bypass_flag_on_by_default_keeps_blocker(tmp_path):
    text = (FIXTURES / "SEC-001" / "validated" / "app" / "settings.py").read_text()
    ctx = make(tmp_path, {"app/__init__.py": "", "app/main.py": MAIN,
                          "app/settings.py": text.replace("testing: bool = False", "testing: bool = True")})
    sev = {f.severity.value for f in run_checks(ctx, ids=["SEC-001"])}
    assert sev == {"BLOCKER"}


def test_prod_validation_rules_table(tmp_path):
    from auditlib.facts.prod_validation import prod_validation

    ctx = AuditContext.open(FIXTURES / "SEC-002" / "partial", tmp_path)
    table = prod_validation(ctx).frame().set_index("rule")
    assert table.loc["rejects default secrets", "present"]
    assert table.loc["explicit CORS_ORIGINS", "present"]
    assert not table.loc["STRIPE_SECRET_KEY must start with sk_live_", "present"]
    assert not table.loc["METRICS_TOKEN required", "present"]


ENV_SETTINGS = ("from pydantic_settings import BaseSettings\n\nclass S(BaseSettings):\n"
                "    database_url: str\n    cors_origins: list[str] = []\n    page_size: int = 20\n")


def test_dep001_missing_variables_point_at_the_example_and_the_code(tmp_path):
    ctx = make(tmp_path, {"app/main.py": MAIN, "app/settings.py": ENV_SETTINGS,
                          ".env.example": "DATABASE_URL=postgresql://db/app\n"})
    out = {(f.severity.value, f.title): f for f in run_checks(ctx, ids=["DEP-001"])}
    miss = out[("WARNING", "CORS_ORIGINS is not documented in .env.example")]
    assert [(loc.file, loc.line) for loc in miss.locations] == [(".env.example", None), ("app/settings.py", 5)]
    assert miss.settings == ["CORS_ORIGINS"]
    # a default exists: the app starts on it (the required DATABASE_URL is documented)
    assert "runs on the code's default" in miss.message and "refuses to start" not in miss.message
    opt = out[("RECOMMENDATION", "1 optional setting(s) not documented")]
    assert opt.settings == ["PAGE_SIZE"] and opt.locations[0].line is None
    assert not any(s == "WARNING" and "DATABASE_URL" in t for s, t in out)


def test_dep001_no_example_file(tmp_path):
    ctx = make(tmp_path, {"app/main.py": MAIN, "app/settings.py": ENV_SETTINGS})
    [f] = run_checks(ctx, ids=["DEP-001"])  # a documentation gap: no file misleads, a missing one fails loudly
    assert (f.severity.value, f.locations[0].file, f.locations[0].line) == ("RECOMMENDATION", ".", None)
    assert "DATABASE_URL" in f.settings
    assert "DATABASE_URL must be set (the app refuses to start without it)" in f.message
    assert "CORS_ORIGINS (secrets, where data lives, who may call the app) have defaults" in f.message
    ctx = make(tmp_path / "docs", {"app/main.py": MAIN, "app/settings.py": ENV_SETTINGS,
                                   "README.md": "# App\n\nSet `DATABASE_URL` and `CORS_ORIGINS`.\n"})
    [f] = run_checks(ctx, ids=["DEP-001"])  # the docs name every variable: documented, no example needed
    assert (f.severity.value, f.title) == ("INFO", "No env example file (variables documented in the docs)")
    ctx = make(tmp_path / "empty", {"app/main.py": MAIN})
    assert [f.severity.value for f in run_checks(ctx, ids=["DEP-001"])] == ["INFO"]


def test_value_origin_traces_assignments_and_callers(tmp_path):
    import ast

    from auditlib.code.pyresolve import Project
    from auditlib.code.value_origin import tracer_for

    code = ("COLS = {'a': 'x'}\n\ndef f(q, n: int):\n    col = COLS.get(q, 'x')\n"
            "    s = 'SELECT ' + col\n    s += f' LIMIT {n} {q}'\n    return run(s)\n\n"
            "def g(t):\n    return run(f'SELECT {t}')\n\ndef h():\n    return g('users')\n")
    ctx = make(tmp_path, {"app/main.py": MAIN, "app/q.py": code})
    src = ctx.index.get("app/q.py")
    tracer = tracer_for(src, Project.of(ctx), [src])
    calls = [n for n in ast.walk(src.tree) if isinstance(n, ast.Call) and getattr(n.func, "id", "") == "run"]
    built, parts = tracer.string_parts(calls[0].args[0], calls[0])
    assert built and {(p.text, p.kind) for p in parts} == {("n", "numeric"), ("q", "unknown")}  # no caller
    _built, parts = tracer.string_parts(calls[1].args[0], calls[1])
    assert [p.kind for p in parts] == ["constant"] or parts == []  # every caller passes a constant


def test_route_credentials_on_the_demo(tmp_path):
    ctx = AuditContext.open(REPO / "examples" / "bookly", tmp_path)
    creds = {(r.method, r.path): (r.credentials, r.body) for r in routes(ctx)}
    assert creds[("POST", "/v1/bookings/{booking_id}/{action}")] == ({"header"}, "none")
    assert creds[("POST", "/v1/admin/organizations")] == ({"basic"}, "json")
    assert creds[("GET", "/healthz")] == (set(), "none")
