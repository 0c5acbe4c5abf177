"""Transactional email (booking confirmations)."""
from __future__ import annotations

import asyncio
import logging
import smtplib
from email.message import EmailMessage

from app.models import Booking
from app.settings import Settings

log = logging.getLogger(__name__)

FRONTEND_URL = "http://localhost:3000"  # expect: FUNC-003


def booking_link(booking_id: int) -> str:
    return f"{FRONTEND_URL}/bookings/{booking_id}"


def build_confirmation(booking: Booking, sender: str) -> EmailMessage:  # expect: CMP-005
    message = EmailMessage()
    message["From"] = sender
    message["To"] = booking.customer_email
    message["Subject"] = "Your cleaning visit is booked"
    when = booking.starts_at.strftime("%A %d %B %Y at %H:%M")
    message.set_content(
        f"Hello {booking.customer_name},\n\n"
        f"Your visit on {when} ({booking.duration_minutes} minutes) is confirmed.\n"
        f"Manage it here: {booking_link(booking.id)}\n"
    )
    return message


def _deliver(message: EmailMessage, settings: Settings) -> None:
    with smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=10) as smtp:  # expect: REL-005
        smtp.starttls()
        if settings.smtp_username and settings.smtp_password:
            smtp.login(settings.smtp_username, settings.smtp_password)
        smtp.send_message(message)


async def send_booking_confirmation(booking: Booking, settings: Settings) -> bool:
    if not settings.smtp_host:
        log.info("SMTP not configured; confirmation for booking %s not sent", booking.id)
        return False
    message = build_confirmation(booking, settings.email_from)
    # TODO: retry on transient SMTP errors instead of giving up  expect: FUNC-002
    try:
        await asyncio.to_thread(_deliver, message, settings)
    except (OSError, smtplib.SMTPException):
        log.exception("sending confirmation for booking %s failed", booking.id)
        return False
    return True
