"""Decorator routes (``@router.get("/path")``, ``@app.post(...)``, ``@x.api_route(...,
methods=[...])``) with the ``APIRouter(prefix=...)`` of the same module.

A small local helper for FUNC-001, PERF-002 and the TEST checks. It does not follow
``include_router(..., prefix=...)`` nor ``add_api_route``: the shared route inventory
(``auditlib/routes.py``, written separately) should replace it once available.
"""
from __future__ import annotations

import ast
from dataclasses import dataclass, field

from .pyast import dotted, literal, walk

METHODS = {"get", "post", "put", "patch", "delete", "head", "options"}


@dataclass
class Route:
    method: str
    path: str  # with the module's router prefix
    file: str
    line: int  # the decorator's line
    func: ast.FunctionDef | ast.AsyncFunctionDef
    response_model: ast.AST | None = None
    path_params: list[str] = field(default_factory=list)

    @property
    def label(self) -> str:
        return f"{self.method} {self.path}"


def _prefixes(tree: ast.Module) -> dict[str, str]:
    out = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Call) \
                and dotted(node.value.func).rsplit(".", 1)[-1] in ("APIRouter", "FastAPI"):
            prefix = next((literal(k.value) for k in node.value.keywords if k.arg == "prefix"), "")
            for t in node.targets:
                if isinstance(t, ast.Name):
                    out[t.id] = prefix if isinstance(prefix, str) else ""
    return out


def file_routes(src, nodes=None) -> list[Route]:
    """Routes declared in one file (``nodes``: its pre-walked AST nodes, if at hand)."""
    if src.tree is None:
        return []
    prefixes = _prefixes(src.tree)
    out = []
    for node in nodes if nodes is not None else walk(src.tree):
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        for dec in node.decorator_list:
            if not (isinstance(dec, ast.Call) and isinstance(dec.func, ast.Attribute)):
                continue
            verb = dec.func.attr
            if verb not in METHODS and verb != "api_route":
                continue
            base = dotted(dec.func.value)
            if base not in prefixes and not base.endswith(("router", "app", "api")):
                continue
            path = literal(dec.args[0]) if dec.args else next(
                (literal(k.value) for k in dec.keywords if k.arg == "path"), None)
            if not isinstance(path, str):
                continue
            methods = [verb.upper()]
            if verb == "api_route":
                m = next((literal(k.value) for k in dec.keywords if k.arg == "methods"), None)
                methods = [x.upper() for x in m] if isinstance(m, (list, tuple)) else ["GET"]
            full = (prefixes.get(base, "") + path) or "/"
            rm = next((k.value for k in dec.keywords if k.arg == "response_model"), None)
            params = [p.split(":")[0] for p in _params(full)]
            out += [Route(m, full, src.path, dec.lineno, node, rm, params) for m in methods]
    return out


def _params(path: str) -> list[str]:
    out, depth, cur = [], 0, ""
    for ch in path:
        if ch == "{":
            depth, cur = depth + 1, ""
        elif ch == "}" and depth:
            depth -= 1
            out.append(cur)
        elif depth:
            cur += ch
    return out


def decorator_routes(ctx) -> list[Route]:
    """Routes of the application code (tests and migrations excluded), shared per audit."""
    from .callgraph import app_graph, shared

    def build():
        graph = app_graph(ctx)
        return [r for src in graph.files for r in file_routes(src, graph.nodes(src.path))]
    return shared(ctx, "decorator_routes", build)
