"""Prometheus metrics: request counts by method, path and status."""
from __future__ import annotations

from fastapi import Response
from prometheus_client import CONTENT_TYPE_LATEST, Counter, generate_latest

REQUESTS = Counter("bookly_http_requests", "HTTP requests by method, path and status",  # expect: OBS-002, OBS-004
                   ["method", "path", "status"])


def metrics_response() -> Response:
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
