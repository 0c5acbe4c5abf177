"""Prometheus instrumentation of the target, from the AST: metric definitions
(prometheus_client ``Counter`` / ``Gauge`` / ``Histogram`` / ``Summary`` / ``Info`` /
``Enum``, found through the module's imports, so ``prom.Counter`` and aliases count), their
``.labels(...)`` calls, and the exporters that instrument every request
(prometheus-fastapi-instrumentator, starlette-exporter, starlette-prometheus).
"""
from __future__ import annotations

import ast
from dataclasses import dataclass, field

from ..target.index import SourceFile
from ..code.pyast import dotted, literal, of_type, parent_map
from ..code.pyresolve import Project, kwarg

KINDS = {"Counter", "Gauge", "Histogram", "Summary", "Info", "Enum"}
# Libraries that count every request by route template, method and status on their own.
EXPORTERS = {
    "prometheus_fastapi_instrumentator.Instrumentator": "prometheus-fastapi-instrumentator",
    "starlette_exporter.PrometheusMiddleware": "starlette-exporter",
    "starlette_prometheus.PrometheusMiddleware": "starlette-prometheus",
}


@dataclass
class Metric:
    var: str  # the module-level (or attribute) name it is bound to, '' if none
    name: str  # the metric name given to prometheus_client
    kind: str
    labels: list[str]
    file: str
    line: int


@dataclass
class LabelCall:
    metric: Metric | None
    call: ast.Call
    src: SourceFile
    func: ast.AST | None  # the enclosing function
    values: dict[str, ast.AST] = field(default_factory=dict)  # label name (or #i) -> value expression


@dataclass
class Exporter:
    library: str
    call: ast.Call
    src: SourceFile


def _labelnames(call: ast.Call) -> list[str]:
    node = kwarg(call, "labelnames")
    if node is None and len(call.args) > 2:
        node = call.args[2]
    val = literal(node) if node is not None else ()
    return [v for v in val if isinstance(v, str)] if isinstance(val, (list, tuple)) else []


def _app_files(ctx) -> list[SourceFile]:
    return [f for f in Project.of(ctx).files if ctx.layout.is_app(f.path)]


def metrics(ctx) -> list[Metric]:
    """Every prometheus_client metric defined in application code (cached)."""
    if "_metrics_model" in ctx.__dict__:
        return ctx.__dict__["_metrics_model"]
    proj, out = Project.of(ctx), []
    for f in _app_files(ctx):
        for node in of_type(f.tree, (ast.Assign, ast.AnnAssign)):
            value = node.value
            if not isinstance(value, ast.Call):
                continue
            q = proj.qualify(f, value.func)
            kind = q.rsplit(".", 1)[-1]
            if not (q.startswith("prometheus_client") and kind in KINDS):
                continue
            target = node.targets[0] if isinstance(node, ast.Assign) else node.target
            name = literal(value.args[0]) if value.args else literal(kwarg(value, "name"))
            out.append(Metric(dotted(target).split(".")[-1], name if isinstance(name, str) else "",
                              kind, _labelnames(value), f.path, value.lineno))
    ctx.__dict__["_metrics_model"] = out
    return out


def label_calls(ctx) -> list[LabelCall]:
    """``X.labels(...)`` calls on known metrics, with each label's value expression."""
    by_var = {m.var: m for m in metrics(ctx) if m.var}
    out = []
    if not by_var:
        return out
    for f in _app_files(ctx):
        up = None
        for call in of_type(f.tree, ast.Call):
            if not (isinstance(call.func, ast.Attribute) and call.func.attr == "labels"):
                continue
            metric = by_var.get(dotted(call.func.value).split(".")[-1])
            if metric is None:
                continue
            up = up or parent_map(f.tree)
            func = up.get(id(call))
            while func is not None and not isinstance(func, (ast.FunctionDef, ast.AsyncFunctionDef)):
                func = up.get(id(func))
            values = {metric.labels[i] if i < len(metric.labels) else f"#{i}": a
                      for i, a in enumerate(call.args)}
            values.update({k.arg: k.value for k in call.keywords if k.arg})
            out.append(LabelCall(metric, call, f, func, values))
    return out


def exporters(ctx) -> list[Exporter]:
    """Calls that construct a request-instrumenting exporter (``Instrumentator(...)``,
    ``PrometheusMiddleware`` passed to ``add_middleware`` or called; cached, callers
    only read the list)."""
    if "_metrics_exporters" in ctx.__dict__:
        return ctx.__dict__["_metrics_exporters"]
    proj, out = Project.of(ctx), []
    for f in _app_files(ctx):
        for node in of_type(f.tree, ast.Call):
            refs = [node.func] + (node.args[:1] if dotted(node.func).endswith("add_middleware") else [])
            for ref in refs:
                lib = EXPORTERS.get(proj.qualify(f, ref))
                if lib:
                    out.append(Exporter(lib, node, f))
    ctx.__dict__["_metrics_exporters"] = out
    return out
