"""Helpers shared by FUNC-001, PERF-002/003, DEP-005 and the TEST checks: keyword
phrases, call resolution across modules, decorator routes and background jobs."""
from __future__ import annotations

from pathlib import Path

from auditlib.code.callgraph import CallGraph, module_name
from auditlib.target.context import AuditContext
from auditlib.facts.jobs_scan import find_jobs
from auditlib.code.keywords import phrase_match, split_words
from auditlib.facts.routes import source_routes


def _ctx(tmp_path, files):
    root = tmp_path / "t"
    for rel, text in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
    return AuditContext.open(root, tmp_path / "o")


def test_words_and_phrases():
    assert split_words("HTTPBasicCredentials") == ["http", "basic", "credentials"]
    assert split_words("/v1/admin/{org_id}/leads") == ["v", "1", "admin", "org", "id", "leads"]
    words = set(split_words("test_other_org_cannot_read_leads"))
    assert phrase_match("other org", words) and phrase_match("lead", words)
    assert phrase_match("estimat*", {"estimation"}) and not phrase_match("lead", {"leader"})


def test_module_names():
    assert module_name("app/services/__init__.py") == "app.services"
    assert module_name("src/app/db.py") == "app.db"


def test_calls_resolve_through_imports(tmp_path):
    ctx = _ctx(tmp_path, {
        "app/__init__.py": "", "app/services/__init__.py": "",
        "app/services/bookings.py": "def get_booking():\n    return 1\n\nclass Repo:\n    def find(self):\n        return 2\n",
        "app/api.py": ("from app.services import bookings as svc\nfrom .services.bookings import Repo, get_booking\n"
                       "import app.services.bookings\n\n"
                       "def a():\n    svc.get_booking()\n    get_booking()\n    app.services.bookings.get_booking()\n"
                       "    Repo.find(None)\n"),
    })
    g = CallGraph(ctx)
    a = g.funcs[("app.api", "a")]
    assert sorted(f.qualname for _c, f in g.callees(a)) == ["Repo.find", "get_booking", "get_booking", "get_booking"]
    assert [f.qualname for f in g.reach(a)] == ["a", "get_booking", "Repo.find"]


def test_source_routes_with_router_prefix(tmp_path):
    ctx = _ctx(tmp_path, {"app/main.py": (
        "from fastapi import APIRouter, FastAPI\napp = FastAPI()\nr = APIRouter(prefix='/x')\n"
        "@r.get('/{x_id}')\nasync def one(x_id: int): ...\n"
        "@r.api_route('', methods=['GET', 'POST'])\nasync def many(): ...\n"
        "@app.get('/healthz')\nasync def h(): ...\n"
        "app.include_router(r, prefix='/v1')\n")})
    routes = source_routes(ctx)
    assert [r.node.name for r in routes] == ["one", "many", "h"]  # source order
    assert sorted((f"{m} {r.path}", list(r.path_params)) for r in routes for m in r.methods) == [
        ("GET /healthz", []), ("GET /v1/x", []), ("GET /v1/x/{x_id}", ["x_id"]), ("POST /v1/x", [])]


def test_jobs_found_by_shape(tmp_path):
    ctx = _ctx(tmp_path, {
        "app/main.py": "from fastapi import FastAPI\napp = FastAPI()\n",
        "app/jobs.py": ("import asyncio\nfrom celery import shared_task\n"
                        "@shared_task\ndef purge(): ...\n"
                        "async def heartbeat():\n    while True:\n        await asyncio.sleep(5)\n"
                        "def remind(): ...\n"
                        "def setup(scheduler):\n    scheduler.add_job(remind, 'interval', hours=1)\n"
                        "if __name__ == '__main__':\n    asyncio.run(heartbeat())\n")})
    kinds = {(j.name, j.kind) for j in find_jobs(ctx)}
    assert {("purge", "@shared_task"), ("heartbeat", "loop"), ("remind", "scheduler"), ("jobs", "__main__ runner")} <= kinds


def test_bookly_routes(tmp_path):
    ctx = AuditContext.open(Path(__file__).parent.parent / "examples" / "bookly", tmp_path)
    labels = {f"{m} {r.path}" for r in source_routes(ctx) for m in r.methods}
    assert {"GET /v1/bookings", "POST /v1/bookings/{booking_id}/{action}", "GET /healthz"} <= labels
