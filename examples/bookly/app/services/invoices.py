"""Invoice issuing and tenant-scoped invoice queries."""
from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.models import Booking, Invoice
from app.services.bookings import BookingError, get_booking


def format_invoice_number(org_id: int, sequence: int) -> str:
    return f"INV-{org_id:04d}-{sequence:06d}"


async def list_invoices(session: AsyncSession, org_id: int, *, limit: int, offset: int) -> list[Invoice]:
    stmt = (
        select(Invoice)
        .where(Invoice.org_id == org_id)
        .order_by(Invoice.issued_at.desc(), Invoice.id.desc())
        .limit(limit)
        .offset(offset)
    )
    return list(await session.scalars(stmt))


async def get_invoice(session: AsyncSession, org_id: int, invoice_id: int) -> Invoice | None:
    return await session.scalar(select(Invoice).where(Invoice.org_id == org_id, Invoice.id == invoice_id))


async def issue_invoice(session: AsyncSession, org_id: int, booking_id: int) -> Invoice:
    booking: Booking | None = await get_booking(session, org_id, booking_id)
    if booking is None:
        raise LookupError("booking not found")
    if booking.status != "completed":
        raise BookingError("only completed bookings can be invoiced")
    existing = await session.scalar(
        select(Invoice).where(Invoice.org_id == org_id, Invoice.booking_id == booking_id)
    )
    if existing is not None:
        return existing

    count = await session.scalar(select(func.count(Invoice.id)).where(Invoice.org_id == org_id))
    invoice = Invoice(
        org_id=org_id,
        booking_id=booking.id,
        number=format_invoice_number(org_id, (count or 0) + 1),
        amount_cents=booking.price_cents,
        status="issued",
    )
    session.add(invoice)
    await session.commit()
    await session.refresh(invoice)
    return invoice
