"""Plain HTTP for the live stage: one request at a time, no proxies, no redirects followed
(a redirect must never take a probe off the loopback interface or the given host), and
the Prometheus exposition format parsed with prometheus_client's own parser."""
from __future__ import annotations

import http.client
import json
import re
from dataclasses import dataclass
from urllib.parse import urlsplit

SAFE_METHODS = ("GET", "HEAD", "OPTIONS")


@dataclass
class Response:
    status: int  # 0 when the request failed
    body: bytes = b""
    content_type: str = ""
    error: str = ""

    def json(self):
        try:
            return json.loads(self.body)
        except ValueError:
            return None

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


class Client:
    """Requests to one base URL only. ``safe_only`` (a user's deployment): GET/HEAD/OPTIONS."""

    def __init__(self, base_url: str, safe_only: bool = False, timeout: float = 10):
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {base_url}")
        self.scheme, self.host, self.port = parts.scheme, parts.hostname, parts.port
        self.prefix = parts.path.rstrip("/")
        self.safe_only, self.timeout = safe_only, timeout
        self.sent = 0

    def request(self, method: str, path: str, headers: dict | None = None, body: bytes | None = None) -> Response:
        if self.safe_only and method.upper() not in SAFE_METHODS:
            raise PermissionError(f"{method} is not sent to a deployment given with --base-url")
        if not path.startswith("/"):
            raise ValueError("a probe path must start with /")
        cls = http.client.HTTPSConnection if self.scheme == "https" else http.client.HTTPConnection
        conn = cls(self.host, self.port, timeout=self.timeout)
        hdrs = {"Accept": "application/json, text/plain, */*", "User-Agent": "auditlib-live-probe"}
        if body is not None:
            hdrs["Content-Type"] = "application/json"
        hdrs.update(headers or {})
        self.sent += 1
        try:
            conn.request(method.upper(), self.prefix + path, body=body, headers=hdrs)
            resp = conn.getresponse()
            data = resp.read(2_000_000)
            return Response(resp.status, data, resp.getheader("Content-Type") or "")
        except (OSError, http.client.HTTPException) as exc:
            return Response(0, error=f"{type(exc).__name__}: {exc}")
        finally:
            conn.close()


def fill_path(template: str, value: str = "1") -> str:
    """``/items/{item_id}`` -> ``/items/1`` (path converters such as ``{p:path}`` too)."""
    return re.sub(r"\{[^}]+\}", value, template)


def path_params(template: str) -> list[str]:
    return re.findall(r"\{([^}:]+)(?::[^}]*)?\}", template)


@dataclass
class Sample:
    family: str
    name: str
    labels: dict
    value: float


def parse_metrics(text: str) -> list[Sample]:
    """Samples of a Prometheus text exposition (raises ValueError when it is not one)."""
    from prometheus_client.parser import text_string_to_metric_families

    out = []
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            out.append(Sample(base_family(fam.name), s.name, dict(s.labels), s.value))
    return out


def base_family(name: str) -> str:
    """A counter's ``_created`` series (parsed as a family of its own from the text format)
    belong to the counter: ``x_created`` -> ``x``."""
    return name.removesuffix("_created")
