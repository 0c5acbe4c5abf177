"""Tenant checks judge the schema's tenancy before raising BLOCKERs:
- no org column and no organisation table: single-tenant, SEC-010 says so (INFO);
- an organisation table recognised only by its name (no `org_id` anywhere): scoping
  findings are WARNINGs with a note, never BLOCKERs (found auditing fief-server,
  an identity server whose `tenants` are a product feature with per-workspace databases);
- configuring org_table makes the tenancy explicit again (BLOCKERs are back)."""
from __future__ import annotations

from auditlib.checks import run_checks
from auditlib.target.context import AuditContext

MODELS = '''from sqlalchemy import ForeignKey, Integer, String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


class Tenant(Base):
    __tablename__ = "tenants"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)


class Client(Base):
    __tablename__ = "clients"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id"))
    name: Mapped[str] = mapped_column(String)
'''
MAIN = '''from fastapi import Depends, FastAPI, HTTPException
from fastapi.security import HTTPBearer
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine

from app.models import Client

app = FastAPI()
bearer = HTTPBearer()
SessionLocal = async_sessionmaker(create_async_engine("postgresql+asyncpg://db/app"))


async def get_session():
    async with SessionLocal() as session:
        yield session


async def admin(creds=Depends(bearer)):
    if creds.credentials != "x":
        raise HTTPException(401)
    return creds


@app.get("/clients/{client_id}")
async def get_client(client_id: int, session: AsyncSession = Depends(get_session), who=Depends(admin)):
    return await session.scalar(select(Client).where(Client.id == client_id))
'''


def target(tmp_path, files):
    root = tmp_path / "t"
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return root


def severities(root, tmp_path, ids):
    ctx = AuditContext.open(root, tmp_path / "out")
    return sorted({(f.check, f.severity.value) for f in run_checks(ctx, ids=ids, source="static")
                   if f.severity.value != "INFO"})


def test_single_tenant_schema_is_not_a_tenant_blocker(tmp_path):
    root = target(tmp_path, {"app/main.py": "from fastapi import FastAPI\napp = FastAPI()\n",
                             "app/models.py": MODELS.replace("tenant_id", "owner_id").replace(
                                 '"tenants"', '"owners"').replace("Tenant", "Owner")
                             .replace('ForeignKey("owners.id")', "Integer")})
    ctx = AuditContext.open(root, tmp_path / "out")
    found = [(f.severity.value, f.title) for f in run_checks(ctx, ids=["SEC-010"], source="static")]
    assert found == [("INFO", "No organisation concept in the schema: single-tenant")]


def test_inferred_tenancy_caps_scoping_findings_at_warning(tmp_path):
    root = target(tmp_path, {"app/__init__.py": "", "app/main.py": MAIN, "app/models.py": MODELS})
    assert severities(root, tmp_path, ["SEC-011", "SEC-013"]) == [("SEC-011", "WARNING")]  # SEC-013 never repeats a SEC-011 defect


def test_configured_org_table_restores_blockers(tmp_path):
    root = target(tmp_path, {"app/__init__.py": "", "app/main.py": MAIN, "app/models.py": MODELS,
                             "pyproject.toml": '[tool.auditlib]\norg_table = "tenants"\n'})
    assert severities(root, tmp_path, ["SEC-011", "SEC-013"]) == [("SEC-011", "BLOCKER")]


def test_inferred_tenancy_findings_are_one_question_to_settle(tmp_path):
    two = MAIN + '''

@app.delete("/clients/{client_id}")
async def delete_client(client_id: int, session: AsyncSession = Depends(get_session), who=Depends(admin)):
    await session.delete(await session.get(Client, client_id))
'''
    root = target(tmp_path, {"app/__init__.py": "", "app/main.py": two, "app/models.py": MODELS})
    ctx = AuditContext.open(root, tmp_path / "out")
    (f,) = [f for f in run_checks(ctx, ids=["SEC-011"], source="static") if f.severity.value != "INFO"]
    assert (f.severity.value, f.title) == ("WARNING", "2 queries not scoped to `tenants`, whose role as the tenant "
                                                      "is inferred")
    assert sorted(loc.line for loc in f.locations) == [26, 31]
    assert sorted(r["method"] for r in f.routes) == ["DELETE", "GET"]
    configured = target(tmp_path / "c", {"app/__init__.py": "", "app/main.py": two, "app/models.py": MODELS,
                                         "pyproject.toml": '[tool.auditlib]\norg_table = "tenants"\n'})
    ctx = AuditContext.open(configured, tmp_path / "out2")
    got = sorted((f.severity.value, f.locations[0].line) for f in run_checks(ctx, ids=["SEC-011"], source="static")
                 if f.severity.value != "INFO")
    assert got == [("BLOCKER", 26), ("BLOCKER", 31)]  # each query its own finding once the tenant is known
