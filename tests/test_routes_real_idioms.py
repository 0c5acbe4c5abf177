"""The route inventory on idioms of real applications (fixtures ``tests/fixtures/route_apps``):
routers built from the project's own router classes, prefixes from settings and constants,
routers listed in modules and included in loops inside functions that receive the app,
apps built in factories, sub-apps mounted from another module; and the SEC-004 finding
listing the handlers no application reaches.

Every route is annotated where it is declared: ``# route: METHODS PATH auth=A`` (several
separated by ``;`` when the router is included twice); ``# unreached`` marks handlers the
inventory sees declared but not served."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from auditlib.checks import run_checks
from auditlib.facts.routes import route_inventory, routes_frame, unreached_handlers
from auditlib.target.context import AuditContext

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "route_apps"
CASES = ["router_class", "settings_prefix", "mounted_subapp", "dependency_lists", "settings_factory"]
ROUTE = re.compile(r"(\S+)\s+(/\S*)\s+auth=(\S+)")


def annotations(root: Path):
    routes, unreached = set(), set()
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root).as_posix()
        for no, line in enumerate(path.read_text().splitlines(), 1):
            if "# route:" in line:
                for part in line.split("# route:", 1)[1].split(";"):
                    m = ROUTE.search(part)
                    assert m, f"bad annotation {rel}:{no}"
                    routes.add((m.group(1), m.group(2), m.group(3), rel, no))
            elif line.rstrip().endswith("# unreached"):
                unreached.add((rel, no))
    return routes, unreached


@pytest.fixture(scope="module")
def ctxs(tmp_path_factory):
    return {c: AuditContext.open(FIXTURES / c, tmp_path_factory.mktemp(c)) for c in CASES}


@pytest.mark.parametrize("case", CASES)
def test_inventory_is_exactly_the_annotated_routes(ctxs, case):
    expected, unreached = annotations(FIXTURES / case)
    assert expected, "fixture without annotations"
    found = {("|".join(r.methods), r.path, r.auth, r.file, r.line) for r in route_inventory(ctxs[case])}
    assert sorted(found) == sorted(expected)
    assert {(h.file, h.line) for h in unreached_handlers(ctxs[case])} == unreached


def test_settings_and_constant_prefixes_keep_their_source(ctxs):
    routes = {("|".join(r.methods), r.path): r for r in route_inventory(ctxs["settings_prefix"])}
    me = routes[("GET", "/api/v1/users/me")]
    assert me.written_path == "{settings.API_V1_STR}/users/me"
    assert me.notes == ("settings.API_V1_STR = '/api/v1' by default (api/config.py:8); env API_V1_STR overrides it",)
    admin = routes[("GET", "/api/v1/admin/stats")]
    assert admin.written_path == "{settings.API_V1_STR}{get_settings().ADMIN_PATH}/stats"
    assert len(admin.notes) == 2 and "env ADMIN_PATH overrides it" in admin.notes[1]
    internal = routes[("GET", "/internal/v2/status")]
    assert internal.written_path == "{INTERNAL_PREFIX}/{constants.VERSION}/status"
    assert internal.notes == ("os.getenv('INTERNAL_PREFIX', '/internal'): env INTERNAL_PREFIX overrides the "
                              "default '/internal'",)
    assert routes[("GET", "/legacy/stats")].notes == ()  # a plain module constant: nothing overrides it
    frame = routes_frame(ctxs["settings_prefix"])
    assert "env API_V1_STR overrides it" in frame.set_index("path").loc["/api/v1/users/me", "notes"]


def test_settings_from_a_factory_resolve_by_their_declared_type(ctxs):
    """``settings: BaseAppSettings = get_settings()`` where get_settings() returns what a
    factory object picks per environment: the declared settings class gives the default;
    an object of a class that is not a settings class stays unresolved."""
    routes = {("|".join(r.methods), r.path): r for r in route_inventory(ctxs["settings_factory"])}
    accounts = routes[("GET", "/api/accounts")]
    assert accounts.written_path == "{settings.API_PREFIX}/accounts"
    assert accounts.notes == ("settings.API_PREFIX = '/api' by default (app/settings.py:8); env API_PREFIX overrides it",)
    assert routes[("GET", "/x{paths.ADMIN}/stats")].notes == ()


def test_router_class_routes_carry_their_router(ctxs):
    routes = {r.path: r for r in route_inventory(ctxs["router_class"])}
    assert routes["/v1/items/"].router == "svc.api.v1.items:router"
    assert routes["/v1/reports/daily"].router == "svc.api.v1.reports:reports"
    assert routes["/v1/items/"].mechanism == "require_user (router)"


def test_dependency_lists_keep_their_conditions(ctxs):
    """Dependencies held in variables: each carries the condition it is added under, and
    where that condition is set (the ``append``; a dependency's early ``return``)."""
    routes = {("|".join(r.methods), r.path): r for r in route_inventory(ctxs["dependency_lists"])}

    def auth(key):
        return [(d.name.rsplit(":", 1)[-1], d.level, d.condition, d.condition_at)
                for d in routes[key].dependencies if d.authenticates]
    assert auth(("GET", "/items")) == [("is_authenticated", "router", "auth", ("web/main.py", 15))]
    assert auth(("POST", "/items/{iid}/purge"))[1] == (
        "require_admin", "decorator", "request.app.state.auth_on", ("web/deps.py", 26))
    assert auth(("GET", "/reports/daily")) == [
        ("is_authenticated", "include", "os.getenv('AUTH') == 'on'", ("web/main.py", 8))]
    gated = routes[("GET", "/gated/status")]  # a feature gate and a viewer restriction: listed, not authentication
    assert [d.name.rsplit(":", 1)[-1] for d in gated.dependencies] == ["maintenance_gate", "restrict_viewers"]
    assert routes[("POST", "/inbox/read")].mechanism.startswith("handler: 401/403 when session_user(request)")
    [f] = [f for f in run_checks(ctxs["dependency_lists"], ids=["SEC-004"], source="static")
           if f.severity.value == "WARNING"]
    assert f.title == "Authentication of 3 routes depends on a condition"
    assert "`auth` (`is_authenticated`)" in f.message and "`request.app.state.auth_on` (`require_admin`)" in f.message


def test_sec004_lists_the_unreached_handlers(ctxs):
    found = [f for f in run_checks(ctxs["router_class"], ids=["SEC-004"], source="static") if "not reached" in f.title]
    assert len(found) == 1
    f = found[0]
    assert f.severity.value == "WARNING"
    assert f.title == "SEC-004 not verified for 2 route handlers: not reached from any application"
    assert [(loc.file, loc.line) for loc in f.locations] == [("svc/api/v1/reports.py", 17), ("svc/main.py", 20)]
    assert "`svc.api.v1.reports:list_drafts` (svc/api/v1/reports.py:17)" in f.message
    for case in ("settings_prefix", "mounted_subapp"):
        assert not [f for f in run_checks(ctxs[case], ids=["SEC-004"], source="static") if "not reached" in f.title]


def test_router_below_a_namespace_package_is_reached(tmp_path):
    """``routers/openai/`` has no ``__init__.py``: the module is imported by its full path."""
    root = tmp_path / "t"
    for d in ("app", "app/api", "app/api/openai/chat"):
        (root / d).mkdir(parents=True, exist_ok=True)
        (root / d / "__init__.py").write_text("")
    (root / "app/api/openai/chat/chat.py").write_text(
        "from fastapi import APIRouter\n\nrouter = APIRouter(prefix='/chat')\n\n\n"
        "@router.post('/completions')\nasync def complete():\n    return {}\n")
    (root / "app/main.py").write_text(
        "from fastapi import FastAPI\n\nfrom app.api.openai.chat.chat import router as chat_router\n\n"
        "app = FastAPI()\napp.include_router(chat_router, prefix='/openai')\n")
    ctx = AuditContext.open(root, tmp_path / "out")
    assert [(r.methods, r.path) for r in route_inventory(ctx)] == [(("POST",), "/openai/chat/completions")]
    assert unreached_handlers(ctx) == []
