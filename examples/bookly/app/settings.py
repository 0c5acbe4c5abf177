"""Runtime configuration, read from the environment (and an optional .env file)."""
from __future__ import annotations

from functools import lru_cache

from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):  # expect: SEC-002
    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    app_name: str = "Bookly"
    environment: str = "development"
    database_url: str
    db_pool_size: int = 5
    db_max_overflow: int = 10

    auth_secret_key: str = "dev-auth-secret"  # expect: SEC-001
    auth_session_ttl_seconds: int = 3600

    admin_basic_username: str = "admin"
    admin_basic_password: str | None = None

    email_from: str = "noreply@example.com"  # expect: FUNC-003, CMP-002
    smtp_host: str | None = None
    smtp_port: int = 587
    smtp_username: str | None = None
    smtp_password: str | None = None

    stripe_secret_key: str = ""
    stripe_webhook_secret: str = ""

    cors_origins: list[str] = []


@lru_cache
def get_settings() -> Settings:
    return Settings()
