from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, BackgroundTasks, Depends, HTTPException, Query, status
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth import CurrentUser, get_current_user
from app.db import get_session
from app.schemas import BookingCreate, BookingOut
from app.services import bookings as svc
from app.services.email import send_booking_confirmation
from app.settings import Settings, get_settings

router = APIRouter(prefix="/v1/bookings", tags=["bookings"])

Session = Annotated[AsyncSession, Depends(get_session)]
User = Annotated[CurrentUser, Depends(get_current_user)]


@router.get("", response_model=list[BookingOut])
async def list_bookings(
    session: Session,
    user: User,
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
):
    return await svc.list_bookings(session, user.org_id, limit=limit, offset=offset)


@router.post("", response_model=BookingOut, status_code=status.HTTP_201_CREATED)
async def create_booking(
    body: BookingCreate,
    session: Session,
    user: User,
    background: BackgroundTasks,
    settings: Annotated[Settings, Depends(get_settings)],
):
    try:
        booking = await svc.create_booking(session, user.org_id, body)
    except svc.BookingError as exc:
        raise HTTPException(422, str(exc)) from exc
    background.add_task(send_booking_confirmation, booking, settings)
    return booking


@router.get("/{booking_id}", response_model=BookingOut)  # expect: TEST-004
async def get_booking(booking_id: int, session: Session, user: User):
    booking = await svc.get_booking(session, user.org_id, booking_id)
    if booking is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "Booking not found")
    return booking


@router.post("/{booking_id}/{action}", response_model=BookingOut)
async def update_status(
    booking_id: int,
    action: Literal["confirm", "complete", "cancel"],
    session: Session,
    user: User,
):
    booking = await svc.get_booking(session, user.org_id, booking_id)
    if booking is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "Booking not found")
    new_status = {"confirm": "confirmed", "complete": "completed", "cancel": "cancelled"}[action]
    try:
        return await svc.change_status(session, booking, new_status)
    except svc.BookingError as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from exc
