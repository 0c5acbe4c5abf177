"""Authentication.

Staff users present an HMAC-signed bearer token that carries their user id and
organisation id. Platform administrators use HTTP Basic credentials configured
through the environment.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, HTTPException, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBasic, HTTPBasicCredentials, HTTPBearer
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import get_session
from app.models import User
from app.settings import Settings, get_settings

bearer_scheme = HTTPBearer(auto_error=False)
basic_scheme = HTTPBasic(auto_error=False)


class InvalidToken(Exception):
    """Raised when a bearer token is malformed, forged or expired."""


@dataclass(frozen=True)
class CurrentUser:
    id: int
    org_id: int
    role: str


def _b64encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _b64decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _sign(body: str, key: str) -> str:
    return _b64encode(hmac.new(key.encode(), body.encode("ascii"), hashlib.sha256).digest())


def issue_token(user_id: int, org_id: int, key: str, ttl_seconds: int, now: float | None = None) -> str:
    issued = int(now if now is not None else time.time())
    payload = {"sub": user_id, "org": org_id, "exp": issued + ttl_seconds}
    body = _b64encode(json.dumps(payload, separators=(",", ":")).encode())
    return f"{body}.{_sign(body, key)}"


def decode_token(token: str, key: str, now: float | None = None) -> dict:
    try:
        body, signature = token.split(".", 1)
    except ValueError as exc:
        raise InvalidToken("malformed token") from exc
    if not hmac.compare_digest(signature, _sign(body, key)):
        raise InvalidToken("bad signature")
    try:
        payload = json.loads(_b64decode(body))
    except (ValueError, json.JSONDecodeError) as exc:
        raise InvalidToken("malformed payload") from exc
    if payload.get("exp", 0) < (now if now is not None else time.time()):
        raise InvalidToken("token expired")
    return payload


async def get_current_user(
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)],
    settings: Annotated[Settings, Depends(get_settings)],
    session: Annotated[AsyncSession, Depends(get_session)],
) -> CurrentUser:
    unauthorized = HTTPException(
        status_code=status.HTTP_401_UNAUTHORIZED,
        detail="Not authenticated",
        headers={"WWW-Authenticate": "Bearer"},
    )
    if credentials is None:
        raise unauthorized
    try:
        payload = decode_token(credentials.credentials, settings.auth_secret_key)
    except InvalidToken:
        raise unauthorized from None

    user = await session.scalar(
        select(User).where(User.id == payload["sub"], User.org_id == payload["org"], User.is_active.is_(True))
    )
    if user is None:
        raise unauthorized
    return CurrentUser(id=user.id, org_id=user.org_id, role=user.role)


def require_admin(
    credentials: Annotated[HTTPBasicCredentials | None, Depends(basic_scheme)],
    settings: Annotated[Settings, Depends(get_settings)],
) -> str:
    denied = HTTPException(
        status_code=status.HTTP_401_UNAUTHORIZED,
        detail="Admin credentials required",
        headers={"WWW-Authenticate": "Basic"},
    )
    if credentials is None or not settings.admin_basic_password:
        raise denied
    user_ok = secrets.compare_digest(credentials.username.encode(), settings.admin_basic_username.encode())
    password_ok = secrets.compare_digest(credentials.password.encode(), settings.admin_basic_password.encode())
    if not (user_ok and password_ok):
        raise denied
    return credentials.username
