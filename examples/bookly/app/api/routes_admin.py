"""Platform administration: tenant management and cross-tenant lead review."""
from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query, status
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth import require_admin
from app.db import get_session
from app.models import Lead, Organization
from app.schemas import LeadOut, OrganizationCreate, OrganizationOut

router = APIRouter(prefix="/v1/admin", tags=["admin"], dependencies=[Depends(require_admin)])

# Counters for the public status page.
stats_router = APIRouter(prefix="/v1/admin", tags=["admin"])

Session = Annotated[AsyncSession, Depends(get_session)]


@stats_router.get("/stats")  # expect: SEC-004, SEC-005
async def platform_stats(session: Session) -> dict[str, int]:
    organizations = await session.scalar(select(func.count(Organization.id)))
    return {"organizations": organizations or 0}


@router.get("/organizations", response_model=list[OrganizationOut])
async def list_organizations(
    session: Session,
    limit: Annotated[int, Query(ge=1, le=200)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
):
    stmt = select(Organization).order_by(Organization.id).limit(limit).offset(offset)
    return list(await session.scalars(stmt))


@router.post("/organizations", response_model=OrganizationOut, status_code=status.HTTP_201_CREATED)
async def create_organization(body: OrganizationCreate, session: Session):
    org = Organization(name=body.name, slug=body.slug)
    session.add(org)
    try:
        await session.commit()
    except IntegrityError as exc:
        await session.rollback()
        raise HTTPException(status.HTTP_409_CONFLICT, "Slug already in use") from exc
    await session.refresh(org)
    return org


@router.get("/organizations/{org_id}/leads", response_model=list[LeadOut])
async def list_leads(
    org_id: int,
    session: Session,
    limit: Annotated[int, Query(ge=1, le=200)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
):
    stmt = (
        select(Lead)
        .where(Lead.org_id == org_id)
        .order_by(Lead.created_at.desc(), Lead.id.desc())
        .limit(limit)
        .offset(offset)
    )
    return list(await session.scalars(stmt))
