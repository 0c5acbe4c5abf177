"""Severities, messages and grouping of the checks judged against real code (issue 10):
DEP-001, SEC-001/002, SEC-003, FUNC-003, OBS-005, REL-004. The fixture test compares
(file, line) only; these tests pin what a reviewer reads: the severity, what the message
claims, and one finding per defect with every location."""
from __future__ import annotations

from pathlib import Path

from auditlib.checks import run_checks
from auditlib.facts.settings_model import REQUIRED, settings_model
from auditlib.target.context import AuditContext

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "checks"
MAIN = "from fastapi import FastAPI\napp = FastAPI()\n"


def _run(case: str, check: str, tmp_path) -> list:
    ctx = AuditContext.open(FIXTURES / check / case, tmp_path)
    return [f for f in run_checks(ctx, ids=[check], source="static") if f.check == check]


def _make(tmp_path: Path, files: dict[str, str]) -> AuditContext:
    root = tmp_path / "target"
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return AuditContext.open(root, tmp_path / "out")


def _by_line(findings) -> dict:
    return {(f.locations[0].file, f.locations[0].line): f for f in findings}


def test_sec001_startup_validation_makes_a_recommendation(tmp_path):
    got = _by_line(_run("local_else_raise", "SEC-001", tmp_path))
    assert {k: f.severity.value for k, f in got.items()} == {
        ("app/config.py", 11): "RECOMMENDATION", ("app/config.py", 12): "RECOMMENDATION",
        ("app/config.py", 13): "BLOCKER"}
    msg = got[("app/config.py", 11)].message
    assert "`self.ENVIRONMENT != 'local'`" in msg and "refuses to start with it: a RECOMMENDATION" in msg
    got = _by_line(_run("lifespan_check", "SEC-001", tmp_path / "l"))
    assert {k: f.severity.value for k, f in got.items()} == {
        ("app/settings.py", 6): "RECOMMENDATION", ("app/settings.py", 7): "BLOCKER"}
    assert "`check_production_config`" in got[("app/settings.py", 6)].message


def test_startup_validation_in_the_app_factory_counts(tmp_path):
    got = _by_line(_run("app_factory", "SEC-001", tmp_path))
    assert {k: f.severity.value for k, f in got.items()} == {
        ("app/settings.py", 6): "RECOMMENDATION", ("app/settings.py", 7): "BLOCKER"}
    msg = got[("app/settings.py", 6)].message
    assert "`validate_settings` (app/main.py:10) rejects it at startup" in msg and "a RECOMMENDATION" in msg
    got = _by_line(_run("app_factory", "SEC-002", tmp_path / "f"))
    assert got[("app/main.py", 9)].title == "Production validation misses: rejects default secrets"
    assert [f.severity.value for f in _run("lifespan_validator", "SEC-002", tmp_path / "l")] == ["INFO"]


def test_sec002_feature_switch_is_not_validation(tmp_path):
    [f] = [f for f in _run("feature_gate_only", "SEC-002", tmp_path) if f.severity.value != "INFO"]
    assert (f.severity.value, f.title) == ("WARNING", "No production config validation")


def test_sec003_legacy_migration_is_a_recommendation(tmp_path):
    got = {k: f.severity.value for k, f in _by_line(_run("legacy_and_tokens", "SEC-003", tmp_path)).items()
           if f.severity.value != "INFO"}
    assert got == {("app/legacy.py", 6): "RECOMMENDATION", ("app/main.py", 18): "RECOMMENDATION",
                   ("app/main.py", 33): "BLOCKER"}


def test_func003_one_finding_per_value_and_per_list(tmp_path):
    got = _by_line(_run("text_and_loopback", "FUNC-003", tmp_path))
    origins = got[("app/main.py", 34)]
    assert [loc.line for loc in origins.locations] == [34, 35] and "hard-coded" in origins.message
    redirect = got[("app/main.py", 40)]
    assert [loc.line for loc in redirect.locations] == [40, 44]
    # allow-list entries admit the user's own machine: RECOMMENDATIONs, not WARNINGs
    assert (origins.severity.value, redirect.severity.value) == ("RECOMMENDATION", "RECOMMENDATION")
    assert "`ALLOWED_ORIGINS`, an allow-list" in origins.message
    assert got[("app/main.py", 48)].severity.value == "WARNING"  # a link built on localhost
    assert "default of `PUBLIC_URL`" in got[("app/main.py", 13)].message


def test_rel004_one_finding_per_client_class(tmp_path):
    got = _by_line(_run("single_use_and_clients", "REL-004", tmp_path))
    runner = got[("app/main.py", 44)]
    assert "`RunnerClient`" in runner.title and [loc.line for loc in runner.locations] == [44, 47]
    assert runner.message.startswith("2 calls in `healthcheck`, `metrics` (one finding).")


def test_obs005_masking_layer_covers_personal_data_only(tmp_path):
    kinds = {f.title.split(" (")[0] for f in _run("redaction_filter", "OBS-005", tmp_path)
             if f.severity.value == "WARNING"}
    assert kinds == {"Log call writes raw request body"}
    kinds = {f.title.split(" (")[0] for f in _run("filter_not_attached", "OBS-005", tmp_path / "n")
             if f.severity.value == "WARNING"}
    assert kinds == {"Log call writes raw request body", "Log call writes personal data"}


def test_dep001_frontend_example_and_refusal_messages(tmp_path):
    got = {f.title: f for f in _run("frontend_example", "DEP-001", tmp_path)}
    assert not any("web/" in loc.file for f in got.values() for loc in f.locations)
    (missing,) = [f for f in got.values() if f.title.endswith("not documented in .env.example")]
    assert missing.title == "2 variables are not documented in .env.example"  # one finding per file
    assert sorted(missing.settings) == ["JWT_SECRET", "REDIS_URL"]
    assert "REDIS_URL (critical variable, backend/app/main.py:11) refuses to start" in missing.message
    assert "runs on the code's default" not in missing.message
    assert missing.message.count("refuses to start") == 2


def test_dep001_only_a_frontend_example(tmp_path):
    settings = ("from pydantic_settings import BaseSettings\n\nclass S(BaseSettings):\n"
                "    database_url: str\n")
    ctx = _make(tmp_path, {"app/main.py": MAIN, "app/settings.py": settings,
                           "web/.env.example": "NEXT_PUBLIC_API_URL=https://api.acme.io\n"})
    [f] = [f for f in run_checks(ctx, ids=["DEP-001"]) if f.check == "DEP-001"]
    assert (f.severity.value, f.title) == ("RECOMMENDATION", "No env example file")
    assert "`web/.env.example` documents another application" in f.message


def test_environ_subscript_guarded_is_optional(tmp_path):
    code = ("import os\n\nif 'A' in os.environ:\n    a = os.environ['A']\n"
            "b = os.environ['B'] if os.getenv('B') else ''\n"
            "def f():\n    return os.environ['C']\n")
    ctx = _make(tmp_path, {"app/main.py": MAIN + code})
    env = {s.env: s for s in settings_model(ctx).settings}
    assert env["A"].default is None and env["B"].default is None
    assert env["C"].default is REQUIRED and env["C"].function == "f"
