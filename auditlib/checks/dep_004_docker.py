"""DEP-004: Docker image and compose readiness."""
from __future__ import annotations

import io
import re

import yaml
from dockerfile_parse import DockerfileParser

from ..findings import Severity
from . import check

STATEFUL_IMAGE = re.compile(r"(^|/)(postgres|postgis|mysql|mariadb|redis|mongo|valkey|rabbitmq|minio|elasticsearch)\b")
ROOT_USERS = {"root", "0", "0:0", "root:root"}


def dockerfile_stages(text: str) -> list[dict]:
    """Stages of a Dockerfile: [{"from": instr, "instructions": [...]}] (dockerfile-parse
    handles continuation lines, comments and parser directives)."""
    # in memory: DockerfileParser's default path is ./Dockerfile and setting
    # ``.content`` would write it into the working directory
    parser = DockerfileParser(fileobj=io.BytesIO(text.encode("utf-8")))
    stages: list[dict] = []
    for ins in parser.structure:
        if ins["instruction"] == "FROM":
            stages.append({"from": ins, "instructions": []})
        elif stages:
            stages[-1]["instructions"].append(ins)
    return stages


@check("DEP-004", "deployment", "Docker image and compose configuration")
def docker(ctx):
    """Dockerfiles: the final (runtime) stage should come from a multi-stage build,
    switch to a non-root ``USER`` and declare a ``HEALTHCHECK``. Compose files: every
    service should have a ``healthcheck`` and a ``restart`` policy, and stateful services
    (postgres, mysql, redis, mongo, ...) a volume for their data.

    Severities: running as root is a WARNING (a container escape or RCE gets root in
    the container); a single-stage build and a missing HEALTHCHECK are
    RECOMMENDATIONs (bigger attack surface; orchestrators such as Kubernetes use their
    own probes); compose services without healthcheck/restart are WARNINGs, a stateful
    service without a volume loses its data on re-creation: WARNING. Dockerfile
    findings point at the final stage's ``FROM`` line, compose findings at the
    service's key. No Dockerfile at all is a WARNING on the project root.
    """
    chk = docker.check
    if not ctx.layout.dockerfiles:
        yield chk.finding(ctx, Severity.WARNING, "No Dockerfile",
                          "No Dockerfile or Containerfile was found: how the app is packaged "
                          "for production is undocumented and unreviewable.",
                          "Add a multi-stage Dockerfile that runs the app as a non-root user "
                          "with a HEALTHCHECK.", ".", None, excerpt="")
    for path in ctx.layout.dockerfiles:
        src = ctx.index.get(path)
        stages = dockerfile_stages(src.text or "")
        if not stages:
            continue
        final = stages[-1]
        line = final["from"]["startline"] + 1
        user = None
        for ins in final["instructions"]:
            if ins["instruction"] == "USER":
                user = ins["value"].strip()
        if user is None or user in ROOT_USERS:
            yield chk.finding(ctx, Severity.WARNING, "Container runs as root",
                              "The runtime stage never switches to a non-root USER, so the app "
                              "process runs as root inside the container.",
                              "Create an unprivileged user (`RUN useradd -r app`) and add `USER app` "
                              "after installing dependencies.", path, line, key="root")
        if len(stages) < 2:
            yield chk.finding(ctx, Severity.RECOMMENDATION, "Single-stage Docker build",
                              "Build tools and caches end up in the production image: larger image, "
                              "larger attack surface.",
                              "Use a builder stage for dependencies and copy only the installed "
                              "packages and app code into a slim runtime stage.", path, line, key="single-stage")
        if not any(i["instruction"] == "HEALTHCHECK" for s in stages for i in s["instructions"]):
            yield chk.finding(ctx, Severity.RECOMMENDATION, "No HEALTHCHECK in the image",
                              "Docker and compose cannot tell a hung app from a healthy one.",
                              "Add `HEALTHCHECK CMD curl -fsS http://localhost:8000/healthz || exit 1` "
                              "(or rely on orchestrator probes and say so).", path, line, key="healthcheck")
    for path in ctx.layout.compose_files:
        yield from _compose(ctx, chk, path)


def _compose(ctx, chk, path):
    src = ctx.index.get(path)
    try:
        root = yaml.compose(src.text or "")
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        yield chk.finding(ctx, Severity.WARNING, f"Not verified: {path} is not valid YAML",
                          f"not verified: {exc.__class__.__name__}; compose services were not checked.",
                          "Fix the YAML syntax.", path, mark.line + 1 if mark else None, key="yaml")
        return
    services = _mapping(root).get("services")
    for key_node, svc in _mapping_items(services):
        name = key_node.value
        body = _mapping(svc)
        line = key_node.start_mark.line + 1
        if "healthcheck" not in body:
            yield chk.finding(ctx, Severity.WARNING, f"Compose service `{name}` has no healthcheck",
                              "Without a healthcheck, `depends_on: condition: service_healthy` and "
                              "restarts cannot react to a hung service.",
                              f"Add a `healthcheck:` to `{name}` (e.g. curl /healthz, pg_isready).",
                              path, line, key=f"{name}:healthcheck")
        if "restart" not in body:
            yield chk.finding(ctx, Severity.WARNING, f"Compose service `{name}` has no restart policy",
                              "A crashed container stays down until someone notices.",
                              f"Add `restart: unless-stopped` (or `always`) to `{name}`.",
                              path, line, key=f"{name}:restart")
        image = body.get("image")
        if image is not None and STATEFUL_IMAGE.search(str(getattr(image, "value", ""))) and "volumes" not in body:
            yield chk.finding(ctx, Severity.WARNING, f"Stateful service `{name}` has no volume",
                              "Its data lives in the container's writable layer and is lost when the "
                              "container is re-created (upgrade, `docker compose down`).",
                              f"Mount a named volume for `{name}`'s data directory.",
                              path, line, key=f"{name}:volume")


def _mapping_items(node):
    if isinstance(node, yaml.MappingNode):
        return [(k, v) for k, v in node.value if isinstance(k, yaml.ScalarNode)]
    return []


def _mapping(node) -> dict:
    return {k.value: v for k, v in _mapping_items(node)}
