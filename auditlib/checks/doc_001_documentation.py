"""DOC-001: README and operator documentation."""
from __future__ import annotations

import ast
import re

from ..findings import Severity
from ..code.pyast import dotted, walk
from . import check

# topic -> (pattern in README/docs text or doc file names, severity when missing, why)
TOPICS = {
    # a section on installing, or on running the server / its migrations ("Run development
    # server", "Running with uvicorn", "Start the server", "Development environment")
    "setup instructions": (r"\b(install(ation|ing)?|set ?up|getting started|quick ?start)\b|"
                           r"^#+\s*(run(ning)?|start(ing)?|launch(ing)?)\b.*\b(server|app|application|service|"
                           r"locally|uvicorn|development|dev|migrations?)\b|^#+\s*(local )?development environment",
                           Severity.WARNING,
                           "a new engineer or operator cannot bring the service up reproducibly"),
    "API documentation": (r"/docs\b|openapi|swagger|redoc|api reference|api documentation", Severity.RECOMMENDATION,
                          "API consumers have no reference of endpoints and payloads"),
    "deployment guide": (r"\bdeploy(ment|ing)?\b", Severity.RECOMMENDATION,
                         "the production deployment procedure lives in someone's head"),
    "security documentation": (r"\bsecurity\b", Severity.RECOMMENDATION,
                               "auth model, secret handling and vulnerability reporting are undocumented"),
    "operator runbook": (r"\brunbook\b|\bon[- ]call\b|\bincident\b|\btroubleshoot\w*|\boperations\b", Severity.RECOMMENDATION,
                         "on-call engineers have no procedure for alerts, failed migrations or restores"),
}


def _openapi_enabled(ctx) -> bool:
    """FastAPI serves /docs and /openapi.json unless the app sets them to None."""
    for path in ctx.layout.app_files:
        src = ctx.index.get(path)
        for node in walk(src.tree):
            if isinstance(node, ast.Call) and dotted(node.func).endswith("FastAPI"):
                for kw in node.keywords:
                    if kw.arg in ("openapi_url", "docs_url") and isinstance(kw.value, ast.Constant) \
                            and kw.value.value is None:
                        return False
                return True
    return False


@check("DOC-001", "documentation", "README and operator documentation")
def documentation(ctx):
    """A README with setup instructions, plus API documentation, a deployment guide,
    security documentation and an operator runbook, found in the README, in top-level
    Markdown files or under ``docs/`` (by headings, text and file names).

    Why: the service is operated by people who did not write it. A missing README is
    a WARNING (at ``README.md``); a README without setup instructions is a WARNING;
    each other missing topic is a RECOMMENDATION pointing at the README's first line.
    API documentation also counts as present when the FastAPI app serves its
    generated OpenAPI docs (``/docs``), which it does unless disabled.
    """
    chk = documentation.check
    docs = ctx.layout.docs
    readme = next((d for d in docs if "/" not in d and d.lower().startswith("readme")), None)
    if readme is None:
        yield chk.finding(ctx, Severity.WARNING, "No README",
                          "There is no README: nothing tells an engineer or operator how to set up, "
                          "run, deploy or operate the service.",
                          "Write a README.md with setup, configuration, API docs, deployment, security "
                          "and runbook sections.", "README.md", None, excerpt="", key="no-readme")
        return
    corpus = "\n".join([(ctx.index.get(d).text or "") for d in docs] + docs)
    for topic, (pattern, severity, why) in TOPICS.items():
        if re.search(pattern, corpus, re.I | re.M):
            continue
        if topic == "API documentation" and _openapi_enabled(ctx):
            continue
        yield chk.finding(ctx, severity, f"Documentation lacks {topic}",
                          f"No {topic} was found in {readme} or the other docs: {why}.",
                          f"Add a `{topic.title()}` section to {readme} (or a file under docs/).",
                          readme, 1, key=topic)
