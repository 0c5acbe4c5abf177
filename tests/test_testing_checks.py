"""TEST-002/003/004 helpers (the target's test model, scenarios) and TEST-003's
findings without a line."""
from __future__ import annotations

from pathlib import Path

from auditlib.facts import test_model
from auditlib.checks import run_checks
from auditlib.target.context import AuditContext
from auditlib.facts.scenarios import coverage_frame

APP = "from fastapi import FastAPI\napp = FastAPI()\n"


def _target(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
    return root


def test_test_model_reads_names_statuses_and_strings(tmp_path):
    root = _target(tmp_path / "t", {"app/main.py": APP, "tests/test_api.py": '''
from http import HTTPStatus
from fastapi import status

class TestOrders:
    def test_other_org_order(self, client, other_org_token):
        """Org B cannot read org A's order."""
        r = client.get("/v1/orders/1")
        assert r.status_code in (403, 404)

def test_price(quote):
    assert quote(180) == 10500

def test_named(client):
    assert client.get("/x").status_code == status.HTTP_429_TOO_MANY_REQUESTS
    assert client.get("/y").status_code != HTTPStatus.UNAUTHORIZED
'''})
    tests = {t.name: t for t in test_model.test_functions(AuditContext.open(root, tmp_path / "o"))}
    t = tests["test_other_org_order"]
    assert t.cls == "TestOrders" and {"other", "org", "order"} <= t.words
    assert "token" in t.body_words and "/v1/orders/1" in t.strings and t.statuses == {403, 404}
    assert tests["test_price"].statuses == set()  # 180 and 10500 are not HTTP statuses
    assert tests["test_named"].statuses == {429, 401}


def test_no_test_suite_is_a_warning_on_the_root(tmp_path):
    root = _target(tmp_path / "t", {"app/main.py": APP})
    (f,) = run_checks(AuditContext.open(root, tmp_path / "o"), ids=["TEST-003"])
    assert (f.severity.value, f.title, f.locations[0].file, f.locations[0].line) == (
        "WARNING", "No test suite found", ".", None)


def test_no_tests_in_a_source_distribution_is_not_verified(tmp_path):
    """A release archive (PKG-INFO at the root, a file the code index does not hold)
    usually leaves the tests out: their absence is 'not verified', not 'no test suite'."""
    root = _target(tmp_path / "t", {"app/main.py": APP, "PKG-INFO": "Metadata-Version: 2.1\nName: app\n"})
    (f,) = run_checks(AuditContext.open(root, tmp_path / "o"), ids=["TEST-003"])
    assert (f.severity.value, f.title, f.locations[0].file) == (
        "WARNING", "Not verified: no tests in this source distribution", ".")
    assert "source distribution (PKG-INFO)" in f.message


def test_tests_without_any_database_point_at_the_test_dir(tmp_path):
    root = _target(tmp_path / "t", {"app/main.py": APP, "tests/test_x.py": "def test_x():\n    assert 1\n"})
    (f,) = run_checks(AuditContext.open(root, tmp_path / "o"), ids=["TEST-003"])
    assert (f.title, f.locations[0].file, f.locations[0].line) == ("No test uses a database", "tests", None)


def test_ci_postgres_service_counts_as_real_database(tmp_path):
    root = _target(tmp_path / "t", {
        "app/main.py": APP, "tests/test_x.py": "def test_x():\n    assert 1\n",
        ".github/workflows/ci.yml": "jobs:\n  t:\n    services:\n      db:\n        image: postgres:16\n"})
    (f,) = run_checks(AuditContext.open(root, tmp_path / "o"), ids=["TEST-003"])
    assert (f.severity.value, f.locations[0].file) == ("INFO", ".github/workflows/ci.yml")


def test_scenario_table_on_bookly(tmp_path):
    df = coverage_frame(AuditContext.open(Path(__file__).parent.parent / "examples" / "bookly", tmp_path))
    row = df.set_index("scenario")
    assert row.loc["Multi-tenant data isolation", "needed"] and row.loc["Multi-tenant data isolation", "tests"] == ""
    assert "test_admin_requires_basic_auth" in row.loc["HTTP Basic authentication", "tests"]
    assert not row.loc["Payment webhook signature validation", "needed"]  # no Stripe code in bookly


def test_scenario_profile_override(tmp_path):
    root = _target(tmp_path / "t", {
        "app/main.py": APP + "def export_report():\n    pass\n",
        "tests/test_health.py": "def test_health():\n    assert True\n",
        "pyproject.toml": '[tool.auditlib]\ntest_scenarios_file = "s.toml"\n',
        "s.toml": '[[scenario]]\nid = "exports"\ntitle = "Exports"\nseverity = "RECOMMENDATION"\n'
                  'requires = { keywords = ["export*"] }\ntests = ["export*"]\n'})
    (f,) = run_checks(AuditContext.open(root, tmp_path / "o"), ids=["TEST-002"])
    assert (f.severity.value, f.title, f.locations[0].line) == ("RECOMMENDATION", "No test for: Exports", 3)


def test_no_suite_is_one_info_not_a_warning_per_scenario(tmp_path):
    root = _target(tmp_path / "t", {
        "app/main.py": APP + "def export_report():\n    pass\n",
        "pyproject.toml": '[tool.auditlib]\ntest_scenarios_file = "s.toml"\n',
        "s.toml": '[[scenario]]\nid = "exports"\ntitle = "Exports"\nseverity = "WARNING"\n'
                  'requires = { keywords = ["export*"] }\ntests = ["export*"]\n'})
    (f,) = run_checks(AuditContext.open(root, tmp_path / "o"), ids=["TEST-002"])
    assert (f.severity.value, f.title) == ("INFO", "No test suite: 1 critical scenarios untested")
    assert "Exports (app/main.py:3)" in f.message


def test_tenant_isolation_phrases_use_the_tenant_word(tmp_path):
    from auditlib.facts.scenarios import _expand, org_noun

    ctx = AuditContext.open(_target(tmp_path / "t", {"app/main.py": APP, "pyproject.toml":
                            '[tool.auditlib]\norg_column = "workspace_id"\norg_table = "workspaces"\n'}), tmp_path / "o")
    assert org_noun(ctx) == "workspace"
    assert "another workspace*" in _expand({"tests": ["another {org}*"]}, org_noun(ctx))["tests"]
