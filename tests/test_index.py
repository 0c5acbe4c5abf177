"""The code index, grep, discovery and configuration layering."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from auditlib.target.config import ConfigError, load_config
from auditlib.target.context import AuditContext, TargetError, validate_target
from auditlib.target.discovery import discover
from auditlib.target.index import CodeIndex

REPO = Path(__file__).resolve().parent.parent
DEMO = REPO / "examples" / "bookly"
BROKEN = REPO / "tests" / "fixtures" / "targets" / "broken_app"


def make_tree(root: Path, files: dict[str, str | bytes]) -> Path:
    for rel, content in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(content if isinstance(content, bytes) else content.encode())
    return root


def test_walk_respects_gitignore_and_skips_environments(tmp_path):
    make_tree(tmp_path, {
        ".gitignore": "generated/\n*.log.py\n.env\n",
        "svc/main.py": "from fastapi import FastAPI\napp = FastAPI()\n",
        "generated/junk.py": "x = 1\n",
        "svc/debug.log.py": "x = 1\n",
        ".env": "SECRET=real\n",
        ".env.example": "SECRET=\n",
        "myenv/pyvenv.cfg": "home = /usr\n",
        "myenv/lib/site.py": "x = 1\n",
        "node_modules/pkg/index.js": "x\n",
        "image.png": b"\x89PNG\r\n",
    })
    index = CodeIndex.build(tmp_path)
    assert sorted(index.files) == [".env.example", ".gitignore", "svc/main.py"]


def test_problems_are_recorded_not_fatal():
    index = CodeIndex.build(BROKEN)
    problems = {f.path: (f.error.split(":")[0], f.error_line) for f in index.problems}
    assert problems == {"app/broken.py": ("syntax error", 8), "app/latin1.py": ("not UTF-8", 2)}
    assert index.get("app/main.py").tree is not None


def test_cache_is_reused_and_invalidated_by_content(tmp_path):
    root = make_tree(tmp_path / "t", {"a.py": "x = 1\n", "b.py": "y = 2\n"})
    cache = tmp_path / "cache"
    (root / "c.py").write_text("def broken(:\n")
    first = CodeIndex.build(root, cache)
    assert first.cache_hits == 0
    first.save_cache()
    second = CodeIndex.build(root, cache)
    assert second.cache_hits == 3
    # the known-bad file is not parsed again; the good ones parse on first use
    assert [(p.path, p.error_line) for p in second.problems] == [("c.py", 1)]
    assert second.get("c.py")._tree is None and second.get("a.py")._tree is None
    assert second.get("a.py").tree is not None
    (root / "b.py").write_text("y = 3\n")
    third = CodeIndex.build(root, cache)
    assert third.cache_hits == 2 and "3" in third.get("b.py").text and not third.get("b.py").parsed


def test_grep_returns_a_frame_with_locations():
    index = CodeIndex.build(DEMO)
    df = index.grep(r"\b(TODO|FIXME)\b", include="*.py", exclude="tests/*")
    assert list(df.columns) == ["file", "line", "column", "text"]
    assert sorted(zip(df.file, df.line)) == [("app/services/bookings.py", 64), ("app/services/email.py", 48)]
    fixed = index.grep("noreply@example.com", include="*.py", fixed=True)
    assert list(zip(fixed.file, fixed.line)) == [("app/settings.py", 24)]
    assert len(index.grep("NOREPLY@", include="*.py", fixed=True)) == 0
    assert len(index.grep("NOREPLY@", include="*.py", fixed=True, ignore_case=True)) == 1


def test_discovery_of_the_demo():
    lay = discover(CodeIndex.build(DEMO))
    assert lay.app_paths == ["app"]
    assert lay.app_files == ["app/main.py"]
    assert [(f, c) for f, c, _ in lay.settings_classes] == [("app/settings.py", "Settings")]
    assert (lay.alembic_ini, lay.alembic_dir) == ("alembic.ini", "alembic")
    assert len(lay.migration_files) == 2
    assert lay.test_paths == ["tests"]
    assert (lay.dockerfiles, lay.compose_files, lay.env_examples) == (
        ["Dockerfile"], ["docker-compose.yml"], [".env.example"])
    assert lay.is_app("app/services/email.py") and not lay.is_app("tests/test_bookings.py")
    assert not lay.is_app("alembic/versions/0001_initial.py")


def test_discovery_is_not_tied_to_the_reference_layout(tmp_path):
    make_tree(tmp_path, {
        "src/shop/__init__.py": "",
        "src/shop/web/__init__.py": "",
        "src/shop/web/factory.py": "import fastapi\n\ndef create():\n    return fastapi.FastAPI()\n",
        "src/shop/conf.py": "from pydantic_settings import BaseSettings as B\n\nclass Conf(B):\n    x: int = 1\n",
        "db/migrations/env.py": "",
        "db/migrations/versions/001_a.py": 'revision = "a"\ndown_revision = None\n',
        "db/alembic.ini": "[alembic]\nscript_location = %(here)s/migrations\n",
    })
    lay = discover(CodeIndex.build(tmp_path))
    assert lay.app_paths == ["src/shop"]
    assert [c for _, c, _ in lay.settings_classes] == ["Conf"]
    assert (lay.alembic_ini, lay.alembic_dir) == ("db/alembic.ini", "db/migrations")
    assert lay.migration_files == ["db/migrations/versions/001_a.py"]


def test_config_layers_and_overrides(tmp_path):
    root = make_tree(tmp_path / "t", {
        "pyproject.toml": '[tool.auditlib]\norg_column = "tenant_id"\napp_paths = ["svc"]\n',
        "svc/main.py": "x = 1\n", "other/main.py": "y = 2\n",
    })
    cfg = load_config(root)
    assert cfg["org_column"] == "tenant_id" and cfg["tenant_tables"] == []  # derived by default
    extra = make_tree(tmp_path, {"c.toml": '[tool.auditlib]\norg_column = "organization_id"\n'}) / "c.toml"
    assert load_config(root, extra)["org_column"] == "organization_id"
    lay = discover(CodeIndex.build(root), load_config(root))
    assert lay.is_app("svc/main.py") and not lay.is_app("other/main.py")
    (tmp_path / "bad.toml").write_text("= nope")
    with pytest.raises(ConfigError, match="invalid TOML"):
        load_config(root, tmp_path / "bad.toml")


def test_broken_target_pyproject_is_a_warning_not_fatal(tmp_path):
    root = make_tree(tmp_path, {"pyproject.toml": "[tool.auditlib\n", "a.py": "x = 1\n"})
    assert "invalid TOML" in load_config(root)["_warnings"][0]


def test_validate_target(tmp_path):
    with pytest.raises(TargetError, match="does not exist"):
        validate_target(tmp_path / "nope")
    (tmp_path / "f.py").write_text("")
    with pytest.raises(TargetError, match="not a directory"):
        validate_target(tmp_path / "f.py")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(TargetError, match="not a Python project"):
        validate_target(empty)


def test_context_cache_lives_outside_the_output(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    target = shutil.copytree(DEMO, tmp_path / "demo")
    ctx = AuditContext.open(target, tmp_path / "out")
    assert len(ctx.index.files) > 10
    ctx.index.save_cache()
    assert (ctx.cache_dir / "index.pickle").is_file()
    assert not (tmp_path / "out" / "index.pickle").exists()
    assert str(ctx.cache_dir).startswith(str(tmp_path / "xdg"))
