"""Speed of the security core on a generated ~2,000-file FastAPI tree (printed, not
asserted): route inventory, tenant-scoping verdicts and the SEC-004..013 checks.

    .venv/bin/python bench/bench_security.py [N_AREAS]   # default 400 areas x 5 files
"""
from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from auditlib.checks import run_checks
from auditlib.target.context import AuditContext
from auditlib.facts.routes import route_inventory
from auditlib.tenancy.scoping import endpoint_verdicts

MODELS = '''from sqlalchemy import ForeignKey
from sqlalchemy.orm import Mapped, mapped_column
from app.base import Base


class Thing{i}(Base):
    __tablename__ = "things_{i}"
    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organizations.id"))
    name: Mapped[str]
'''
SERVICE = '''from sqlalchemy import select
from app.a{i}.models import Thing{i}
from app.a{i}.helpers import scoped


async def list_things(session, org_id):
    return list(await session.scalars(scoped(select(Thing{i}), org_id)))


async def get_thing(session, thing_id):
    return await session.get(Thing{i}, thing_id)
'''
HELPERS = '''from app.a{i}.models import Thing{i}


def scoped(stmt, org_id):
    return stmt.where(Thing{i}.org_id == org_id)
'''
ROUTES = '''from typing import Annotated
from fastapi import APIRouter, Depends
from app.auth import User, get_session
from app.a{i} import service as svc

router = APIRouter(prefix="/a{i}")


@router.get("/things")
async def things(user: User, session=Depends(get_session)):
    return await svc.list_things(session, user.org_id)


@router.get("/things/{{thing_id}}")
async def thing(thing_id: int, user: User, session=Depends(get_session)):
    return await svc.get_thing(session, thing_id)
'''
AUTH = '''from dataclasses import dataclass
from typing import Annotated
from fastapi import Depends, HTTPException
from fastapi.security import HTTPBearer

bearer = HTTPBearer()


@dataclass
class Identity:
    id: int
    org_id: int


def current_user(token=Depends(bearer)) -> Identity:
    if token is None:
        raise HTTPException(401)
    return Identity(1, 1)


async def get_session():
    yield None

User = Annotated[Identity, Depends(current_user)]
'''
BASE = '''from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


class Organization(Base):
    __tablename__ = "organizations"
    id: Mapped[int] = mapped_column(primary_key=True)
'''


def generate(root: Path, n: int) -> int:
    app = root / "app"
    app.mkdir(parents=True)
    (app / "__init__.py").write_text("")
    (app / "auth.py").write_text(AUTH)
    (app / "base.py").write_text(BASE)
    imports, includes = [], []
    for i in range(n):
        d = app / f"a{i}"
        d.mkdir()
        (d / "__init__.py").write_text("")
        (d / "models.py").write_text(MODELS.format(i=i))
        (d / "service.py").write_text(SERVICE.format(i=i))
        (d / "helpers.py").write_text(HELPERS.format(i=i))
        (d / "routes.py").write_text(ROUTES.format(i=i))
        imports.append(f"from app.a{i}.routes import router as r{i}")
        includes.append(f"app.include_router(r{i})")
    (app / "main.py").write_text("from fastapi import FastAPI\n" + "\n".join(imports)
                                 + "\n\napp = FastAPI()\n" + "\n".join(includes) + "\n")
    return sum(1 for _ in root.rglob("*.py"))


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 400
    with tempfile.TemporaryDirectory() as tmp:
        files = generate(Path(tmp) / "target", n)
        t0 = time.perf_counter()
        ctx = AuditContext.open(Path(tmp) / "target", Path(tmp) / "out")
        ctx.index  # noqa: B018
        t1 = time.perf_counter()
        routes = route_inventory(ctx)
        t2 = time.perf_counter()
        verdicts = endpoint_verdicts(ctx)
        t3 = time.perf_counter()
        findings = run_checks(ctx, ids=["SEC-004", "SEC-005", "SEC-006", "SEC-010", "SEC-011", "SEC-012",
                                        "SEC-013"], source="static")
        t4 = time.perf_counter()
        idor = sum(v.verdict == "id-substitution" for v in verdicts)
        print(f"{files} Python files, {len(routes)} routes ({idor} id-substitution expected {n})")
        print(f"index {t1 - t0:.2f} s, route inventory {t2 - t1:.2f} s, scoping verdicts {t3 - t2:.2f} s, "
              f"checks {t4 - t3:.2f} s; total analysis {t4 - t1:.2f} s ({len(findings)} findings)")


if __name__ == "__main__":
    main()
