"""The feature inventory read from the application itself (FUNC-001 without a profile).

When the auditor names no feature profile, nothing is known of what the product is
meant to offer, so nothing can be "missing". What the code does offer is listed instead:
its routes grouped into feature areas (the route's OpenAPI tag when the decorator gives
one, else the first path segment after API and version prefixes, with portal prefixes
such as ``admin`` kept: ``/api/v1/admin/users/{id}`` is area ``admin/users``), its
background jobs, and the features its README lists (a bullet list under a heading that
names features), each matched to the areas whose names share a word with it.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from ..code.keywords import split_words
from ..code.pyast import literal
from .app_facts import AppFacts
from .jobs_scan import find_jobs

_SKIP = re.compile(r"^(api|apis|rest|v\d+(\.\d+)*|latest)$", re.I)
_PORTALS = {"admin", "internal", "portal", "worker", "workers", "client", "clients", "partner", "partners",
            "public", "me", "staff", "ops", "manage", "management", "dashboard", "backoffice"}
_STOP = {"and", "or", "the", "a", "an", "of", "for", "to", "with", "in", "on", "by", "via", "your", "all", "api"}
_FEATURE_HEADING = re.compile(r"^#{1,4}\s+.*\b(features?|capabilities|what it does|functionality)\b", re.I)
_BULLET = re.compile(r"^\s{0,3}[-*+]\s+(.+)$")


@dataclass
class Area:
    name: str
    routes: list = field(default_factory=list)  # Route
    jobs: list = field(default_factory=list)  # Job

    @property
    def words(self) -> set[str]:
        out = set(split_words(self.name))
        for r in self.routes:
            out |= set(split_words(r.path)) | set(split_words(r.handler.rsplit(":", 1)[-1]))
        for j in self.jobs:
            out |= set(split_words(j.name))
        return {w for w in out if w not in _STOP and len(w) > 2}

    @property
    def files(self) -> list[str]:
        return sorted({r.file for r in self.routes} | {j.file for j in self.jobs})


@dataclass
class Documented:
    text: str
    file: str
    line: int
    areas: list[str]


def _tag(route) -> str:
    for dec in getattr(route.node, "decorator_list", ()):
        if getattr(dec, "lineno", None) != route.line or not hasattr(dec, "keywords"):
            continue
        for kw in dec.keywords:
            if kw.arg == "tags":
                tags = literal(kw.value)
                if isinstance(tags, (list, tuple)) and tags and isinstance(tags[0], str):
                    return tags[0]
    return ""


def area_of(route) -> str:
    """The feature area of a route: its first decorator tag, else its path's first
    meaningful segment (API/version prefixes skipped, a portal prefix kept)."""
    tag = _tag(route)
    if tag:
        return tag
    segs = [s for s in route.path.split("/") if s and not s.startswith("{") and not _SKIP.match(s)]
    if not segs:
        return "/"
    if segs[0].lower() in _PORTALS and len(segs) > 1:
        return f"{segs[0]}/{segs[1]}"
    return segs[0]


def derived_areas(ctx) -> list[Area]:
    """Feature areas of the application's routes, then its background jobs (one area)."""
    areas: dict[str, Area] = {}
    for r in AppFacts.of(ctx).routes:
        areas.setdefault(area_of(r), Area(area_of(r))).routes.append(r)
    out = sorted(areas.values(), key=lambda a: a.name)
    jobs = find_jobs(ctx)
    if jobs:
        out.append(Area("background jobs", jobs=list(jobs)))
    return out


def documented_features(ctx, areas: list[Area]) -> list[Documented]:
    """Bullets under the README's features heading(s), each with the areas it names."""
    readme = next((f for f in ctx.index.select(["README*", "readme*"]) if "/" not in f.path and f.text), None)
    if readme is None:
        return []
    out, inside, level = [], False, 0
    words = [(a.name, a.words) for a in areas]
    for n, line in enumerate(readme.text.splitlines(), 1):
        if line.startswith("#"):
            depth = len(line) - len(line.lstrip("#"))
            if _FEATURE_HEADING.match(line):
                inside, level = True, depth
            elif inside and depth <= level:
                inside = False
            continue
        m = _BULLET.match(line) if inside else None
        if not m:
            continue
        text = re.sub(r"[*_`\[\]]|\(http[^)]*\)", "", m.group(1)).strip()
        mine = {w for w in split_words(text) if w not in _STOP and len(w) > 2}
        hits = [name for name, ws in words if mine & ({w for w in ws} | {w.rstrip("s") for w in ws})
                or {w.rstrip("s") for w in mine} & ws]
        out.append(Documented(text[:120], readme.path, n, hits))
    return out
