"""ASGI entry point: ``uvicorn app.main:app``."""
from __future__ import annotations

import logging
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from app.api import routes_admin, routes_bookings, routes_invoices
from app.db import engine
from app.metrics import REQUESTS, metrics_response
from app.settings import get_settings

logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")  # expect: OBS-005
log = logging.getLogger("bookly")


@asynccontextmanager
async def lifespan(_: FastAPI):
    log.info("starting")
    yield
    await engine.dispose()
    log.info("stopped")


settings = get_settings()

app = FastAPI(title=settings.app_name, version="1.4.0", lifespan=lifespan)

if settings.cors_origins:
    app.add_middleware(
        CORSMiddleware,
        allow_origins=settings.cors_origins,
        allow_methods=["GET", "POST"],
        allow_headers=["Authorization", "Content-Type"],
    )

app.include_router(routes_bookings.router)
app.include_router(routes_invoices.router)
app.include_router(routes_admin.router)
app.include_router(routes_admin.stats_router)


@app.middleware("http")
async def count_requests(request: Request, call_next):
    response = await call_next(request)
    REQUESTS.labels(request.method, request.url.path, str(response.status_code)).inc()  # ok: OBS-002 (second location of the finding at app/metrics.py:7: one defect)
    return response


@app.get("/metrics", include_in_schema=False)  # expect: OBS-003
async def metrics():
    return metrics_response()


@app.get("/healthz", tags=["health"])
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@app.get("/readyz", tags=["health"])  # expect: OBS-001
async def readyz():
    try:
        async with engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
    except (SQLAlchemyError, OSError):
        log.warning("readiness check failed", exc_info=True)
        return JSONResponse({"status": "unavailable"}, status_code=503)
    return {"status": "ok"}
