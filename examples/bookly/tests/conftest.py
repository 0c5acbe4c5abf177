"""Test configuration: the app is imported with a test environment.

The engine is created lazily by SQLAlchemy, so these tests never open a
database connection.
"""
from __future__ import annotations

import os

os.environ.setdefault("DATABASE_URL", "postgresql+psycopg://bookly@db:5432/bookly_test")  # expect: TEST-003
os.environ.setdefault("AUTH_SECRET_KEY", "test-signing-key")
os.environ.setdefault("ADMIN_BASIC_PASSWORD", "test-admin-pass")

import pytest  # noqa: E402
from fastapi.testclient import TestClient  # noqa: E402

from app.main import app  # noqa: E402


@pytest.fixture
def client():
    with TestClient(app) as test_client:
        yield test_client
