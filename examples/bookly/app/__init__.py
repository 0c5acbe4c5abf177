"""Bookly: booking, invoicing and lead tracking for cleaning companies."""
