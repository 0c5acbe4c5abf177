"""Mount paths join like Starlette's Mount: a sub-app mounted at "/" serves at the root."""
from __future__ import annotations

from auditlib.target.context import AuditContext
from auditlib.facts.routes import route_inventory


def test_root_mount_does_not_double_the_slash(tmp_path):
    root = tmp_path / "t"
    (root / "app").mkdir(parents=True)
    (root / "app" / "main.py").write_text(
        "from fastapi import FastAPI\n\n"
        "auth = FastAPI()\nadmin = FastAPI()\n\n\n"
        "@auth.get('/oauth/callback')\nasync def callback():\n    return {}\n\n\n"
        "@admin.get('/users')\nasync def users():\n    return []\n\n\n"
        "app = FastAPI()\napp.mount('/admin/', admin)\napp.mount('/', auth)\n")
    ctx = AuditContext.open(root, tmp_path / "out")
    assert sorted(r.path for r in route_inventory(ctx)) == ["/admin/users", "/oauth/callback"]
