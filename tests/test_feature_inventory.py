"""FUNC-001's feature profile, inventory table and the findings without a line."""
from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from auditlib.checks import run_checks
from auditlib.target.context import AuditContext
from auditlib.facts.features import feature_frame, inventory
from auditlib.facts.profile_data import PROFILES

FIXTURES = Path(__file__).parent / "fixtures"
SHOP = FIXTURES / "checks" / "FUNC-001" / "custom_profile"


def _write(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
    return root


def test_packaged_profile_covers_the_five_groups():
    data = tomllib.loads((PROFILES / "cleaning" / "features.toml").read_text())
    groups = {f["group"] for f in data["feature"]}
    assert groups == set(data["groups"]) == {"core", "admin", "worker", "client", "jobs"}
    ids = [f["id"] for f in data["feature"]]
    assert len(ids) == len(set(ids))
    assert all(f.get("keywords") or f.get("routes") or f.get("calls") for f in data["feature"])


def test_inventory_table_and_evidence(tmp_path):
    ctx = AuditContext.open(SHOP, tmp_path)
    df = feature_frame(ctx)
    assert list(df.columns) == ["group", "feature", "implemented", "routes", "services", "jobs", "models", "files"]
    row = df.set_index("feature")
    assert row.loc["Product catalogue", "implemented"] and "GET /v1/products" in row.loc["Product catalogue", "routes"]
    assert row.loc["Card payments", "services"].startswith("pay (shop/main.py:13)")
    assert not row.loc["Wishlists", "implemented"] and row.loc["Wishlists", "models"] == "Wishlist"
    assert not row.loc["Nightly export", "implemented"]  # a plain function is not a job


def test_missing_features_findings(tmp_path):
    ctx = AuditContext.open(SHOP, tmp_path)
    found = {f.title: f for f in run_checks(ctx, ids=["FUNC-001"])}
    wish = found["Core feature not found: Wishlists"]
    assert wish.severity.value == "WARNING" and "`Wishlist` model exists" in wish.message
    assert found["Admin portal: 1 of 1 features not found"].severity.value == "RECOMMENDATION"
    assert not any(f.severity.value == "BLOCKER" for f in found.values())


def test_missing_feature_without_fastapi_app_has_no_line(tmp_path):
    root = _write(tmp_path / "t", {"lib/jobs.py": "def run():\n    return 1\n",
                                   "pyproject.toml": '[tool.auditlib]\nfeatures_file = "f.toml"\n',
                                   "f.toml": '[[feature]]\nid = "x"\ngroup = "core"\nname = "X"\nkeywords = ["nothing"]\n'})
    (f,) = run_checks(AuditContext.open(root, tmp_path / "o"), ids=["FUNC-001"])
    assert (f.locations[0].file, f.locations[0].line, f.locations[0].excerpt) == (".", None, "")
    assert f.severity.value == "WARNING"


def test_profile_that_does_not_fit_is_one_warning(tmp_path):
    clean = FIXTURES / "targets" / "clean_app"
    found = [f for f in run_checks(AuditContext.open(clean, tmp_path, profile="cleaning"), ids=["FUNC-001"])
             if f.severity.value != "INFO"]
    assert [(f.severity.value, f.locations[0].file) for f in found] == [("WARNING", "app/main.py")]
    assert found[0].title == "None of the 12 core features of the profile was found"


def test_unreadable_profile_is_not_verified(tmp_path):
    root = _write(tmp_path / "t", {"app/main.py": "from fastapi import FastAPI\napp = FastAPI()\n",
                                   "pyproject.toml": '[tool.auditlib]\nfeatures_file = "missing.toml"\n'})
    (f,) = run_checks(AuditContext.open(root, tmp_path / "o"), ids=["FUNC-001"])
    assert f.severity.value == "WARNING" and f.message.startswith("not verified: cannot read features_file")


def test_bookly_inventory(tmp_path):
    rows, where = inventory(AuditContext.open(Path(__file__).parent.parent / "examples" / "bookly", tmp_path))
    done = {r.id for r in rows if r.implemented}
    assert where == "auditlib/profiles/cleaning/features.toml"
    assert {"slots-booking", "booking-lifecycle", "invoices", "admin-health"} <= done
    assert not {"checkout", "payment-webhook", "photos", "worker-login"} & done


BOOKLY = Path(__file__).parent.parent / "examples" / "bookly"
# FUNC-001 on the demo with the cleaning profile, as it was when that profile was the default
CLEANING_ON_BOOKLY = [('INFO', 'Implemented: Booking lifecycle (pending, confirmed, done / cancelled)', 'app/api/routes_bookings.py', 55), ('INFO', 'Implemented: Email notifications (confirmed, 24 h reminder, completed)', 'app/services/email.py', 40), ('INFO', 'Implemented: Invoice generation and payment', 'app/api/routes_invoices.py', 20), ('INFO', 'Implemented: Lead capture and pipeline', 'app/api/routes_admin.py', 53), ('INFO', 'Implemented: Lead list with status filter', 'app/api/routes_admin.py', 53), ('INFO', 'Implemented: Metrics dashboard (conversion, estimate accuracy)', 'app/api/routes_admin.py', 24), ('INFO', 'Implemented: Price estimate (pricing calculator endpoint)', 'app/services/bookings.py', 29), ('INFO', 'Implemented: Slot search and booking creation', 'app/api/routes_bookings.py', 31), ('INFO', 'Implemented: System health pages', 'app/main.py', 60), ('RECOMMENDATION', 'Admin portal: 7 of 10 features not found', 'app/main.py', 32), ('RECOMMENDATION', 'Background jobs: 5 of 5 features not found', 'app/main.py', 32), ('RECOMMENDATION', 'Client portal: 5 of 6 features not found', 'app/main.py', 32), ('RECOMMENDATION', 'Worker portal: 10 of 10 features not found', 'app/main.py', 32), ('WARNING', 'Core feature not found: Chat sessions', 'app/main.py', 32), ('WARNING', 'Core feature not found: Deposit rules (weekend, deep clean, new client)', 'app/main.py', 32), ('WARNING', 'Core feature not found: NPS surveys and support tickets', 'app/main.py', 32), ('WARNING', 'Core feature not found: Payment checkout session creation', 'app/main.py', 32), ('WARNING', 'Core feature not found: Payment webhook handling (checkout completed, payment intents)', 'app/main.py', 32), ('WARNING', 'Core feature not found: Photo upload, download and delete with signed URLs', 'app/main.py', 32), ('WARNING', 'Core feature not found: Referral codes and credits', 'app/main.py', 32)]


def test_cleaning_profile_reproduces_the_former_default(tmp_path):
    found = run_checks(AuditContext.open(BOOKLY, tmp_path, profile="cleaning"), ids=["FUNC-001"])
    got = sorted((f.severity.value, f.title, f.locations[0].file, f.locations[0].line) for f in found)
    assert got == sorted(tuple(x) for x in CLEANING_ON_BOOKLY)


def test_without_profile_the_inventory_comes_from_the_routes(tmp_path):
    found = run_checks(AuditContext.open(BOOKLY, tmp_path), ids=["FUNC-001"])
    assert {f.severity.value for f in found} == {"INFO"}
    got = [(f.title, f.locations[0].file, f.locations[0].line) for f in found]
    assert got == [
        ("Feature inventory read from the application: 7 areas", "app/main.py", 32),
        ("Feature area: admin/organizations (3 routes)", "app/api/routes_admin.py", 30),
        ("Feature area: admin/stats (1 route)", "app/api/routes_admin.py", 24),
        ("Feature area: bookings (4 routes)", "app/api/routes_bookings.py", 21),
        ("Feature area: health (2 routes)", "app/main.py", 60),
        ("Feature area: invoices (3 routes)", "app/api/routes_invoices.py", 20),
        ("Feature area: metrics (1 route)", "app/main.py", 55),
        ("Background jobs (1)", "app/api/routes_bookings.py", 43),
    ]


def test_readme_features_are_matched_to_route_areas(tmp_path):
    root = _write(tmp_path / "t", {
        "app/main.py": "from fastapi import FastAPI\napp = FastAPI()\n\n\n"
                       "@app.get('/api/v1/invoices/{invoice_id}', tags=['billing'])\ndef get_invoice(invoice_id: int):\n"
                       "    return {}\n\n\n@app.post('/api/v1/orders')\ndef create_order():\n    return {}\n",
        "README.md": "# Shop\n\n## Features\n\n- Order placement\n- Invoice download\n- Loyalty points\n\n## Setup\n\n- not a feature\n"})
    found = run_checks(AuditContext.open(root, tmp_path / "o"), ids=["FUNC-001"])
    got = {f.title: (f.locations[0].file, f.locations[0].line, f.message) for f in found}
    assert set(got) == {"Feature inventory read from the application: 2 areas", "Feature area: billing (1 route)",
                        "Feature area: orders (1 route)", "Documented feature: Order placement",
                        "Documented feature: Invoice download", "Documented feature: Loyalty points"}
    assert got["Documented feature: Order placement"][:2] == ("README.md", 5)
    assert "the route areas orders share its words" in got["Documented feature: Order placement"][2]
    assert "the route areas billing share its words" in got["Documented feature: Invoice download"][2]
    assert "no route area or job shares a word" in got["Documented feature: Loyalty points"][2]


def test_no_routes_is_not_verified(tmp_path):
    root = _write(tmp_path / "t", {"lib/util.py": "def helper():\n    return 1\n"})
    (f,) = run_checks(AuditContext.open(root, tmp_path / "o"), ids=["FUNC-001"])
    assert f.severity.value == "WARNING" and f.message.startswith("not verified: no route")


def test_profiles_are_chosen_by_flag_env_or_config(tmp_path, monkeypatch):
    from auditlib.target.config import ConfigError, load_config

    assert not load_config(BOOKLY).get("features_file") and load_config(BOOKLY)["profile"] == ""
    cfg = load_config(BOOKLY, profile="cleaning")
    assert cfg["profile"] == "cleaning" and cfg["features_file"].endswith("profiles/cleaning/features.toml")
    assert "chat_sessions" in cfg["tenant_tables"]
    monkeypatch.setenv("AUDITLIB_PROFILE", "cleaning")
    assert load_config(BOOKLY)["profile"] == "cleaning"
    monkeypatch.delenv("AUDITLIB_PROFILE")
    with pytest.raises(ConfigError, match="unknown profile 'nope'"):
        load_config(BOOKLY, profile="nope")
    root = _write(tmp_path / "t", {"app.py": "x = 1\n", "pyproject.toml": '[tool.auditlib]\nprofile = "nope"\n'})
    cfg = load_config(root)  # the target's own pyproject is what we audit: not fatal
    assert cfg.get("profile", "") == "" and any("unknown profile 'nope'" in w for w in cfg["_warnings"])
    own = _write(tmp_path / "u", {"app.py": "x = 1\n", "pyproject.toml": '[tool.auditlib]\nprofile = "cleaning"\n'
                                                                        'tenant_tables = ["mine"]\n'})
    cfg = load_config(own)  # the target's keys override the profile's
    assert cfg["profile"] == "cleaning" and cfg["tenant_tables"] == ["mine"]


def test_cli_rejects_an_unknown_profile(capsys):
    from auditlib.cli import main

    assert main(["run", str(BOOKLY), "--profile", "nope", "--no-progress"]) == 2
    assert "unknown profile 'nope' (available: cleaning)" in capsys.readouterr().err
