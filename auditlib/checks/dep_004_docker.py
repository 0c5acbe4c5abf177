"""DEP-004: Docker image and compose readiness."""
from __future__ import annotations

import io
import re

import yaml
from dockerfile_parse import DockerfileParser

from ..findings import Severity
from . import check

STATEFUL_IMAGE = re.compile(r"(^|/)(postgres|postgis|pgvector|timescaledb|mysql|mariadb|redis|mongo|valkey|rabbitmq|minio|"
                            r"elasticsearch)\b")
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
    own probes); compose services without healthcheck/restart, and a stateful service
    without a volume (it loses its data on re-creation), follow the compose file's
    severity below. Dockerfile
    findings point at the final stage's ``FROM`` line, compose findings at the
    service's key. Variants of one image (Dockerfiles whose final stage has the same
    ``FROM`` line, e.g. a release and a staging build) with the same defect are one
    finding, every Dockerfile a location. No Dockerfile at all is a WARNING on the project root; in a source
    distribution (a ``PKG-INFO`` at the root) it is a "not verified" WARNING instead (no
    claim that the project has none: such archives usually leave deployment files out).

    Which files are the app's: a Dockerfile is the app's image when its instructions
    (comments left out) name the app's package or an ASGI server (uvicorn, gunicorn,
    hypercorn, ``fastapi run``); when some do, the others (a docker-in-docker runner, GPU
    tool images) are listed in one INFO and not judged. A Dockerfile whose final stage
    extends a database image (``FROM postgres``, ``ankane/pgvector``, ``redis``...) and
    sets no CMD / ENTRYPOINT runs that database, never the app, even when its init SQL
    names the project (the official images drop to their own user); one that extends a
    database image but starts the app (``CMD ./app/startup.sh``) is the app's image. Compose files for development or tests (named
    ``*dev*``, ``*test*``, ``*local*``, ``*ci*`` or under ``scripts/``) are not judged;
    compose files named for production keep WARNINGs, the others (quick-start stacks,
    which production rarely runs as they are) get RECOMMENDATIONs. Dockerfiles and
    compose files in example folders are never the deployment (discovery).
    """
    chk = docker.check
    if not ctx.layout.dockerfiles:
        # PKG-INFO has no text suffix, so it is not in the index: ask the tree
        sdist = ctx.index.get("PKG-INFO") is not None or (ctx.root / "PKG-INFO").is_file()
        yield chk.finding(ctx, Severity.WARNING, "Not verified: no Dockerfile in this source distribution" if sdist
                          else "No Dockerfile",
                          ("not verified: this tree is a source distribution (PKG-INFO), which usually leaves the "
                           "deployment files out; the production image could not be reviewed." if sdist else
                           "No Dockerfile or Containerfile was found: how the app is packaged "
                           "for production is undocumented and unreviewable."),
                          "Audit the repository with its Dockerfile, or add a multi-stage Dockerfile that runs "
                          "the app as a non-root user with a HEALTHCHECK.", ".", None, excerpt="")
    images = _app_images(ctx)
    others = [p for p in ctx.layout.dockerfiles if p not in images]
    if others:
        dbs = [p for p in others if _database_image(ctx, p)]
        yield chk.finding(ctx, Severity.INFO, f"{len(others)} Dockerfile(s) judged not to be the app's image",
                          f"They name neither the app's package nor an ASGI server in their instructions, or they run "
                          f"a database image's own server: {', '.join(others[:10])}"
                          + (f" (database images: {', '.join(dbs[:10])})" if dbs else "")
                          + f". The app's image: {', '.join(images) or 'none found'}.", "", others[0], 1,
                          key="other-images")
    same: dict[tuple[str, str], object] = {}  # (defect, final FROM line) -> the one finding
    for path in images:
        for f in _image_findings(ctx, chk, path):
            base = (f.key, " ".join(f.locations[0].excerpt.split()))
            if base in same:  # a variant of the same image (release / staging): one finding
                same[base].locations += f.locations
                continue
            same[base] = f
    for f in same.values():
        if len(f.locations) > 1:
            f.message += (f" The {len(f.locations)} Dockerfiles whose runtime stage starts from this same "
                          f"`{f.locations[0].excerpt.strip()}` all have it "
                          f"({', '.join(loc.file for loc in f.locations)}): one finding.")
        yield f
    for path in ctx.layout.compose_files:
        yield from _compose(ctx, chk, path)


def _image_findings(ctx, chk, path: str):
    """The findings of one app image (Dockerfile), at its final stage's ``FROM`` line."""
    src = ctx.index.get(path)
    stages = dockerfile_stages(src.text or "")
    if not stages:
        return
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


ASGI = r"uvicorn|gunicorn|hypercorn|granian|fastapi\s+run"
DEV_COMPOSE = re.compile(r"(^|[/._-])(dev|develop|development|test|tests|testing|local|ci|e2e)([/._-]|$)", re.I)
PROD_COMPOSE = re.compile(r"(^|[/._-])(prod|production|deploy)([/._-]|$)", re.I)


GENERIC_NAMES = {"app", "src", "api", "server", "backend", "service", "main", "web"}


def _app_images(ctx) -> list[str]:
    """The Dockerfiles that run the app (name its package or an ASGI server), else all.
    A distinctive package name counts anywhere (``dstack``); a generic one (``app``)
    only as a module or file path (``app.main:app``, ``-m app``, ``app/worker.py``), as
    ``WORKDIR /app`` is in every image; copying the app's folder (``COPY app ./app``,
    ``COPY src/ ...``) counts too."""
    names = {p.rstrip("/").rsplit("/", 1)[-1].removesuffix(".py") for p in ctx.layout.app_paths} - {"", "."}
    words = [rf"\b{re.escape(n)}\b" for n in sorted(names) if n not in GENERIC_NAMES]
    words += [rf"\b{re.escape(n.replace('_', '-'))}\b" for n in sorted(names) if "_" in n]
    words += [rf"\b{re.escape(n)}\.\w|-m\s+{re.escape(n)}\b|[\s\"'./]{re.escape(n)}/\w" for n in sorted(names)
              if n in GENERIC_NAMES]
    copies = sorted({p.split("/")[0] for p in ctx.layout.app_paths if p not in ("", ".")})  # COPY of the app's folder
    if copies:
        words.append(rf"^\s*(COPY|ADD)\s+(--\S+\s+)*({'|'.join(re.escape(c) for c in copies)})/?\s")
    pattern = re.compile("|".join([rf"\b({ASGI})\b", *words]), re.I | re.M)
    candidates = [p for p in ctx.layout.dockerfiles if not _database_image(ctx, p)]
    found = [p for p in candidates if pattern.search(_instructions(ctx, p))]
    return found or candidates


def _instructions(ctx, path: str) -> str:
    """The Dockerfile's instructions without its comments (a comment naming the project,
    ``# docker build -t myapp-db``, says nothing about what the image runs)."""
    src = ctx.index.get(path)
    text = (src.text or "") if src else ""
    return "".join(ins["content"] for st in dockerfile_stages(text) for ins in [st["from"], *st["instructions"]])


def _database_image(ctx, path: str) -> bool:
    """The final stage extends a database image (postgres, pgvector, redis...) and sets no
    CMD / ENTRYPOINT of its own: the container runs that database's server (an init SQL
    or an extension added to it), not the app."""
    src = ctx.index.get(path)
    stages = dockerfile_stages((src.text or "") if src else "")
    if not stages:
        return False
    final = stages[-1]
    image = next((w for w in final["from"]["value"].split() if not w.startswith("--")), "")  # FROM --platform=.. img
    return bool(STATEFUL_IMAGE.search(image)) and not any(i["instruction"] in ("CMD", "ENTRYPOINT") for i in final["instructions"])


def _compose(ctx, chk, path):
    if DEV_COMPOSE.search(path) or path.startswith("scripts/"):
        return  # a development or test stack, not a deployment
    sev = Severity.WARNING if PROD_COMPOSE.search(path) else Severity.RECOMMENDATION
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
            yield chk.finding(ctx, sev, f"Compose service `{name}` has no healthcheck",
                              "Without a healthcheck, `depends_on: condition: service_healthy` and "
                              "restarts cannot react to a hung service.",
                              f"Add a `healthcheck:` to `{name}` (e.g. curl /healthz, pg_isready).",
                              path, line, key=f"{name}:healthcheck")
        if "restart" not in body:
            yield chk.finding(ctx, sev, f"Compose service `{name}` has no restart policy",
                              "A crashed container stays down until someone notices.",
                              f"Add `restart: unless-stopped` (or `always`) to `{name}`.",
                              path, line, key=f"{name}:restart")
        image = body.get("image")
        if image is not None and STATEFUL_IMAGE.search(str(getattr(image, "value", ""))) and "volumes" not in body:
            yield chk.finding(ctx, sev, f"Stateful service `{name}` has no volume",
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
