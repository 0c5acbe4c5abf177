"""DEP-001 / DEP-004 / DEP-005 beyond the fixture comparison: what the findings say and
at which severity (the fixture tests compare only where findings are)."""
from __future__ import annotations

from pathlib import Path

from auditlib.checks import run_checks
from auditlib.target.context import AuditContext

MAIN = "from fastapi import FastAPI\n\napp = FastAPI()\n"


def _tree(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
    return root


def _run(root: Path, tmp_path: Path, check: str):
    ctx = AuditContext.open(root, tmp_path / "out")
    return [f for f in run_checks(ctx, ids=[check], source="static") if f.check == check]


def test_dep004_source_distribution_is_not_verified_not_absent(tmp_path):
    root = _tree(tmp_path / "sdist", {"app/__init__.py": "", "app/main.py": MAIN,
                                      "PKG-INFO": "Metadata-Version: 2.1\nName: shop\n"})
    [f] = _run(root, tmp_path, "DEP-004")
    assert f.title == "Not verified: no Dockerfile in this source distribution"
    assert f.message.startswith("not verified:")
    root = _tree(tmp_path / "repo", {"app/__init__.py": "", "app/main.py": MAIN})
    [f] = _run(root, tmp_path / "r", "DEP-004")
    assert (f.title, f.severity.value) == ("No Dockerfile", "WARNING")


FIX = Path(__file__).resolve().parent / "fixtures" / "checks"


def test_dep001_example_is_compared_with_the_settings_it_documents(tmp_path):
    got = {f.title: f for f in _run(FIX / "DEP-001" / "class_scope", tmp_path, "DEP-001")}
    missing = got["SHOP_DATABASE_URL is not documented in .env.example"]
    assert missing.severity.value == "WARNING" and "refuses to start" in missing.message
    assert "runs on the code's default" not in missing.message
    other = got["2 critical setting(s) documented in no env example"]
    assert other.severity.value == "RECOMMENDATION"
    assert other.settings == ["SHOP_SECRET_KEY", "SHOP_CORS_ORIGINS"] and "`Settings`" in other.message
    assert not any("PASSWORD_MIN_SCORE" in f.settings and f.severity.value == "WARNING" for f in got.values())
    assert [f.severity.value for f in got.values()].count("WARNING") == 1
