"""Background work found in the code: scheduled / queued task functions, tasks started
from the app, long-running loops and standalone runner modules (AST only).

Recognised shapes: task decorators (Celery ``@app.task`` / ``@shared_task``, Dramatiq
``@actor``, Huey ``@periodic_task``, APScheduler ``@scheduled_job``,
fastapi-utils ``@repeat_every``), registrations (``scheduler.add_job(f)``,
``background.add_task(f)``, ``asyncio.create_task(f())``, ``schedule.every().do(f)``,
arq ``cron(f)`` / ``functions=[f]``), ``while True`` loops that sleep, and modules with
an ``if __name__ == "__main__":`` block.
"""
from __future__ import annotations

import ast
from dataclasses import dataclass

from ..code.callgraph import CallGraph, Func, app_graph, shared
from ..code.pyast import dotted, of_type

TASK_DECORATORS = {"task", "shared_task", "scheduled_job", "periodic_task", "actor", "repeat_every",
                   "cron_job", "db_periodic_task", "job"}
REGISTER_CALLS = {"add_job": "scheduler", "add_task": "background task", "create_task": "asyncio task",
                  "ensure_future": "asyncio task", "start_soon": "task group", "do": "schedule",
                  "cron": "arq cron", "enqueue": "queue", "delay": "queue", "apply_async": "queue",
                  "send": None}
SLEEPS = {"sleep"}


@dataclass
class Job:
    file: str
    line: int  # where the job is declared or registered
    name: str
    kind: str
    func: Func | None


def _is_loop_forever(node: ast.While) -> bool:
    test = node.test
    forever = isinstance(test, ast.Constant) and bool(test.value)
    forever |= isinstance(test, ast.UnaryOp) and isinstance(test.op, ast.Not)  # while not stop
    forever |= isinstance(test, (ast.Name, ast.Attribute, ast.Call))  # while running / not event.is_set()
    sleeps = any(dotted(n.func).rsplit(".", 1)[-1] in SLEEPS | {"wait"} for n in of_type(node, ast.Call))
    return forever and sleeps


def loops_forever(fn: Func) -> ast.While | None:
    """The first forever-loop of ``fn`` (nested definitions included)."""
    return next((n for n in of_type(fn.node, ast.While) if _is_loop_forever(n)), None)


def find_jobs(ctx) -> list[Job]:
    """Background jobs of the application code (shared per audit)."""
    return shared(ctx, "jobs", lambda: _find_jobs(app_graph(ctx)))


def _find_jobs(graph: CallGraph) -> list[Job]:
    jobs: dict[tuple[str, str], Job] = {}

    def add(job: Job):
        jobs.setdefault((job.func.file, job.func.qualname) if job.func else (job.file, job.name), job)

    for fn in graph.all_funcs:
        for dec in fn.node.decorator_list:
            name = dotted(dec).rsplit(".", 1)[-1]
            if name in TASK_DECORATORS:
                add(Job(fn.file, dec.lineno, fn.qualname, f"@{name}", fn))
    for src in graph.files:
        for node in of_type(src.tree, (ast.While, ast.Call, ast.If)):
            if isinstance(node, ast.While) and _is_loop_forever(node):
                fn = graph.enclosing(src.path, node.lineno)
                if fn is not None:
                    add(Job(fn.file, fn.line, fn.qualname, "loop", fn))
            elif isinstance(node, ast.Call):
                attr = _last_name(node.func)
                kind = REGISTER_CALLS.get(attr)
                if not kind:
                    continue
                for arg in node.args[:2]:
                    ref = arg.func if isinstance(arg, ast.Call) else arg
                    target = graph.resolve_name(src.path, dotted(ref)) if isinstance(ref, (ast.Name, ast.Attribute)) else None
                    if target is not None:
                        add(Job(src.path, node.lineno, target.qualname, kind, target))
                        break
            elif isinstance(node, ast.If) and _is_main_guard(node.test):
                add(Job(src.path, node.lineno, src.path.rsplit("/", 1)[-1][:-3], "__main__ runner", None))
    return sorted(jobs.values(), key=lambda j: (j.file, j.line))


def _last_name(node: ast.AST) -> str:
    """``dotted(node).rsplit(".", 1)[-1]`` without building the dotted name."""
    while isinstance(node, ast.Call):
        node = node.func
    if isinstance(node, ast.Attribute):
        return node.attr
    return node.id if isinstance(node, ast.Name) else ""


def _is_main_guard(test: ast.AST) -> bool:
    return (isinstance(test, ast.Compare) and isinstance(test.left, ast.Name) and test.left.id == "__name__"
            and any(isinstance(c, ast.Constant) and c.value == "__main__" for c in test.comparators))
