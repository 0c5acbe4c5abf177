"""DOC-002: the OpenAPI schema, read from the live app (static fallback: the code)."""
from __future__ import annotations

import ast

from ..findings import Severity
from ..code.pyast import literal, walk
from . import check

DEFAULT_TITLE, DEFAULT_VERSION = "FastAPI", "0.1.0"  # FastAPI's own defaults


@check("DOC-002", "documentation", "OpenAPI schema", source="live")
def openapi_schema(ctx):
    """Reads ``/openapi.json`` of the booted app (or of ``--base-url``): title, version,
    operation count against the app's own route table, and the routes hidden from the
    schema (``include_in_schema=False``). Without the live stage it falls back to the code:
    the ``FastAPI(...)`` call's ``title`` / ``version`` / ``openapi_url`` (literals only)
    and, when present, the static route inventory, and says so.

    Why: the schema is the API's contract for clients and generated SDKs; FastAPI's default
    title and version 0.1.0 tell readers nothing about what they are integrating with.

    Severity: no schema served (or ``openapi_url=None``) is a RECOMMENDATION; the default
    title or version is a RECOMMENDATION; all at the ``FastAPI(...)`` call. The summary and
    the hidden routes are INFO.

    Not flagged: hidden routes themselves (``/metrics`` and internal probes are usually
    hidden on purpose); non-literal titles in the static fallback.
    """
    from ..stages.live import app_location, live_run

    chk = openapi_schema.check
    res = live_run(ctx)
    where = app_location(ctx)
    if not (res.requested and not res.error and not res.boot_failure):
        yield from _static(ctx, chk, where, res)
        return
    spec = res.openapi
    if spec is None:
        yield chk.finding(ctx, Severity.RECOMMENDATION, "No OpenAPI schema served",
                          f"GET /openapi.json answered {res.probes['openapi'].status}: clients have no "
                          "machine-readable contract.", "Serve the schema (at least to authenticated users) or "
                          "publish it with each release.", *where, key="no-schema")
        return
    info = spec.get("info") or {}
    yield from _defaults(ctx, chk, where, info.get("title"), info.get("version"), "served")
    ops = sum(1 for p in (spec.get("paths") or {}).values() for m in p if m in
              ("get", "post", "put", "patch", "delete", "head", "options"))
    app_routes = [r for r in res.routes if r.kind == "APIRoute"]
    hidden = sorted({f"{r.method} {r.path}" for r in res.routes if not r.in_schema and r.file})
    yield chk.finding(ctx, Severity.INFO, f"OpenAPI: {info.get('title')} {info.get('version')}, {ops} operations",
                      f"The served schema documents {ops} operation(s); the app has {len(app_routes)} API route(s) "
                      f"({res.routes_source or 'route table unavailable'}). Hidden from the schema: "
                      f"{', '.join(hidden) or 'none'}.", "", *where, excerpt="", key="summary")


def _defaults(ctx, chk, where, title, version, how):
    if title == DEFAULT_TITLE:
        yield chk.finding(ctx, Severity.RECOMMENDATION, "OpenAPI title is FastAPI's default",
                          f"The {how} schema is titled \"FastAPI\": readers cannot tell which API it describes.",
                          "Pass `title=` (and `description=`) to FastAPI(...).", *where, key="title")
    if version == DEFAULT_VERSION:
        yield chk.finding(ctx, Severity.RECOMMENDATION, "OpenAPI version is FastAPI's default 0.1.0",
                          f"The {how} schema says version 0.1.0 whatever is deployed: clients cannot tell "
                          "releases apart.", "Pass `version=` (the release's version) to FastAPI(...).", *where,
                          key="version")


def _static(ctx, chk, where, res):
    src = ctx.index.get(where[0])
    call = next((n for n in walk(src.tree) if isinstance(n, ast.Call) and getattr(n, "lineno", 0) == where[1]
                 and getattr(n.func, "id", getattr(n.func, "attr", "")) == "FastAPI"), None) \
        if src is not None and src.tree is not None and where[1] else None
    if call is None:
        return
    kw = {k.arg: k.value for k in call.keywords if k.arg}
    if "openapi_url" in kw and isinstance(kw["openapi_url"], ast.Constant) and kw["openapi_url"].value is None:
        yield chk.finding(ctx, Severity.RECOMMENDATION, "OpenAPI schema disabled (openapi_url=None)",
                          "The app serves no schema: clients have no machine-readable contract.",
                          "Serve the schema (at least to authenticated users) or publish it with each release.",
                          *where, key="no-schema")
    title = literal(kw["title"]) if "title" in kw else DEFAULT_TITLE
    version = literal(kw["version"]) if "version" in kw else DEFAULT_VERSION
    title, version = (v if isinstance(v, str) else "(not a literal)" for v in (title, version))
    yield from _defaults(ctx, chk, where, title, version, "generated")
    why = "the live stage was not requested" if not res.requested else "the app could not be probed live"
    yield chk.finding(ctx, Severity.INFO, "OpenAPI schema read statically (fallback)",
                      f"Static fallback ({why}): title {title}, version {version} from the FastAPI(...) call "
                      "(non-literal values are unknown); operations and hidden routes need --live.", "",
                      *where, excerpt="", key="static")
