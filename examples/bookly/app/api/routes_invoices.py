from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query, status
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth import CurrentUser, get_current_user
from app.db import get_session
from app.schemas import InvoiceCreate, InvoiceOut
from app.services import invoices as svc
from app.services.bookings import BookingError

router = APIRouter(prefix="/v1/invoices", tags=["invoices"])

Session = Annotated[AsyncSession, Depends(get_session)]
User = Annotated[CurrentUser, Depends(get_current_user)]


@router.get("", response_model=list[InvoiceOut])
async def list_invoices(
    session: Session,
    user: User,
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
):
    return await svc.list_invoices(session, user.org_id, limit=limit, offset=offset)


@router.post("", response_model=InvoiceOut, status_code=status.HTTP_201_CREATED)
async def issue_invoice(body: InvoiceCreate, session: Session, user: User):
    try:
        return await svc.issue_invoice(session, user.org_id, body.booking_id)
    except LookupError as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "Booking not found") from exc
    except BookingError as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from exc


@router.get("/{invoice_id}", response_model=InvoiceOut)  # expect: TEST-004
async def get_invoice(invoice_id: int, session: Session, user: User):
    invoice = await svc.get_invoice(session, user.org_id, invoice_id)
    if invoice is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "Invoice not found")
    return invoice
