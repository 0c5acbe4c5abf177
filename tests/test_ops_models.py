"""The helper models behind OBS-00x / CMP-00x / SEC-040 / SEC-050: route finder and
protection, metrics, e-mails, settings lookup; and findings that have no line."""
from __future__ import annotations

import textwrap
from pathlib import Path

from auditlib.checks import run_checks
from auditlib.target.context import AuditContext
from auditlib.facts.email_model import emails, sends_mail
from auditlib.facts.metrics_model import exporters, label_calls, metrics
from auditlib.facts.prod_validation import prod_requirement
from auditlib.facts.routes import mounted_apps, protection, routes_at, source_routes
from auditlib.facts.settings_model import find_settings


def make(tmp_path: Path, files: dict[str, str]) -> AuditContext:
    root = tmp_path / "target"
    for rel, text in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(textwrap.dedent(text))
    return AuditContext.open(root, tmp_path / "out")


def test_routes_resolve_prefixes_and_router_dependencies(tmp_path):
    ctx = make(tmp_path, {
        "app/__init__.py": "",
        "app/main.py": """
            from fastapi import FastAPI
            from app.api import admin
            app = FastAPI()
            app.include_router(admin.router, prefix="/v1")
            app.mount("/metrics", object())
        """,
        "app/api/__init__.py": "",
        "app/api/admin.py": """
            from fastapi import APIRouter, Depends
            from app.auth import require_admin
            router = APIRouter(prefix="/admin", dependencies=[Depends(require_admin)])
            @router.post("/retention/cleanup")
            async def cleanup(): ...
        """,
        "app/auth.py": """
            from fastapi import HTTPException
            def require_admin():
                raise HTTPException(status_code=403)
        """,
    })
    paths = {(m, r.path) for r in [*source_routes(ctx), *mounted_apps(ctx)] for m in r.methods}
    assert ("POST", "/v1/admin/retention/cleanup") in paths and ("MOUNT", "/metrics") in paths
    (cleanup,) = routes_at(ctx, ["/v1/admin/retention/cleanup/"])
    assert protection(ctx, cleanup) == "dependency require_admin"
    (mount,) = routes_at(ctx, ["/metrics"])
    assert protection(ctx, mount) is None


def test_protection_by_middleware_guarding_the_path(tmp_path):
    ctx = make(tmp_path, {"app/main.py": """
        from fastapi import FastAPI, Request
        from fastapi.responses import Response
        from prometheus_client import make_asgi_app
        app = FastAPI()
        app.mount("/metrics", make_asgi_app())

        @app.middleware("http")
        async def metrics_guard(request: Request, call_next):
            if request.url.path.startswith("/metrics"):
                if request.headers.get("authorization") != "Bearer t":
                    return Response(status_code=401)
            return await call_next(request)
    """})
    (mount,) = routes_at(ctx, ["/metrics"])
    assert protection(ctx, mount).startswith("middleware metrics_guard")
    assert [f.severity.value for f in run_checks(ctx, ids=["OBS-003"])] == ["INFO"]


def test_metrics_model_through_module_alias(tmp_path):
    ctx = make(tmp_path, {"app/main.py": """
        import prometheus_client as prom
        from fastapi import FastAPI
        from prometheus_fastapi_instrumentator import Instrumentator
        app = FastAPI()
        Instrumentator().instrument(app)
        HITS = prom.Counter("hits_total", "Hits", labelnames=["route"])
        NOT_A_METRIC = dict(a=1)
        def f(): HITS.labels(route="/x").inc()
    """})
    (m,) = metrics(ctx)
    assert (m.var, m.name, m.kind, m.labels) == ("HITS", "hits_total", "Counter", ["route"])
    (lc,) = label_calls(ctx)
    assert set(lc.values) == {"route"}
    assert [e.library for e in exporters(ctx)] == ["prometheus-fastapi-instrumentator"]


def test_email_model_classifies_by_name_subject_and_template(tmp_path):
    ctx = make(tmp_path, {"app/mail.py": """
        from email.message import EmailMessage
        def confirmation():
            m = EmailMessage(); m["Subject"] = "Booking confirmed"
        def weekly():
            m = EmailMessage(); m["Subject"] = "This week at Acme"; tpl = "emails/newsletter.html"
        def nps_request():
            m = EmailMessage(); m["Subject"] = "Quick question"
    """, "app/templates/emails/newsletter.html": "<p>news</p>"})
    assert sends_mail(ctx)
    kinds = {e.func.name: e.marketing for e in emails(ctx)}
    assert kinds == {"confirmation": False, "weekly": True, "nps_request": True}


def test_settings_lookup_aliases_getenv_and_prod_rule(tmp_path):
    ctx = make(tmp_path, {"app/settings.py": """
        import os
        from pydantic import Field
        from pydantic_settings import BaseSettings
        class Settings(BaseSettings):
            sender: str = Field("noreply@example.com", validation_alias="EMAIL_FROM")
            metrics_token: str | None = None
        def validate_production(s: Settings) -> None:
            if os.getenv("APP_ENV") == "production" and not s.metrics_token:
                raise RuntimeError("METRICS_TOKEN required")
        REDIS = os.getenv("REDIS_URL", "redis://localhost")
    """})
    (sender,) = find_settings(ctx, r"^email_from$")
    assert (sender.name, sender.env, sender.default) == ("sender", "EMAIL_FROM", "noreply@example.com")
    (token,) = find_settings(ctx, r"^metrics_token$")
    assert token.empty and not token.required
    assert prod_requirement(ctx, token) == "app/settings.py:9"
    assert prod_requirement(ctx, sender) is None
    (redis,) = find_settings(ctx, r"^REDIS_URL$")
    assert redis.default == "redis://localhost"


def test_findings_without_an_app_point_at_the_project_root(tmp_path):
    """No FastAPI() call at all: OBS-001/OBS-004 still report, on "." without a line (the
    readiness finding because the project uses a database)."""
    ctx = make(tmp_path, {"worker.py": "import logging\nimport sqlalchemy\nlogging.getLogger(__name__).info('x')\n"})
    found = {(f.check, f.locations[0].file, f.locations[0].line, f.key)
             for f in run_checks(ctx, ids=["OBS-001", "OBS-004"])}
    assert found == {("OBS-001", ".", None, "no-healthz"), ("OBS-001", ".", None, "no-readyz"),
                     ("OBS-004", ".", None, "none")}


def test_compliance_checks_are_silent_without_mail_or_personal_data(tmp_path):
    ctx = make(tmp_path, {"app/main.py": """
        from fastapi import FastAPI
        app = FastAPI()
        @app.get("/healthz")
        def h(): return "ok"
    """})
    assert run_checks(ctx, ids=["CMP-001", "CMP-002", "CMP-003", "CMP-004", "CMP-005", "SEC-040", "SEC-050"]) == []
