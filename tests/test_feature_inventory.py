"""FUNC-001's feature profile, inventory table and the findings without a line."""
from __future__ import annotations

import tomllib
from pathlib import Path

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
    data = tomllib.loads((PROFILES / "features.toml").read_text())
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
    found = [f for f in run_checks(AuditContext.open(clean, tmp_path), ids=["FUNC-001"]) if f.severity.value != "INFO"]
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
    assert where == "auditlib/profiles/features.toml"
    assert {"slots-booking", "booking-lifecycle", "invoices", "admin-health"} <= done
    assert not {"checkout", "payment-webhook", "photos", "worker-login"} & done
