"""Feature inventory (FUNC-001): the features of a profile mapped to the routes,
functions (services), jobs, models and files that implement them.

The profile is data: the TOML file named by the config key ``features_file``, set by a
named profile (``--profile cleaning``: ``auditlib/profiles/cleaning/features.toml``) or
by the auditor. Without one, the inventory is read from the application itself
(:mod:`.derived_features`). :func:`feature_frame` is the table the functional notebook
shows, in either mode.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from .app_facts import AppFacts, Fact
from .profile_data import load_profile

DEFAULT_FILE = "cleaning/features.toml"  # when inventory() is asked without a configured profile
COUNTS = ("routes", "services", "jobs")


@dataclass
class FeatureResult:
    spec: dict
    group: str  # the group's display name
    routes: list[Fact] = field(default_factory=list)
    services: list[Fact] = field(default_factory=list)
    jobs: list[Fact] = field(default_factory=list)
    models: list[Fact] = field(default_factory=list)

    @property
    def id(self) -> str:
        return self.spec["id"]

    @property
    def name(self) -> str:
        return self.spec.get("name", self.id)

    @property
    def implemented(self) -> bool:
        return any(getattr(self, k) for k in self.spec.get("counts", COUNTS))

    @property
    def evidence(self) -> list[Fact]:
        return [f for k in self.spec.get("counts", COUNTS) for f in getattr(self, k)]

    @property
    def files(self) -> list[str]:
        return sorted({f.file for f in self.routes + self.services + self.jobs + self.models})


def inventory(ctx, facts: AppFacts | None = None) -> tuple[list[FeatureResult], str]:
    """Every feature of the profile with its evidence, and where the profile came from."""
    data, where = load_profile(ctx, "features_file", DEFAULT_FILE)
    groups = data.get("groups", {})
    facts = facts or AppFacts.of(ctx)
    out = []
    for spec in data.get("feature", []):
        res = FeatureResult(spec, groups.get(spec.get("group", ""), spec.get("group", "")))
        hits = facts.find(spec, kinds=("route", "function", "model", "job"))
        jobs_at = {(f.file, f.line) for f in hits if f.kind == "job"}
        seen_services = set()
        for f in hits:
            if f.kind == "route":
                res.routes.append(f)
            elif f.kind == "job":
                res.jobs.append(f)
            elif f.kind == "model":
                res.models.append(f)
            elif (f.file, f.line) not in jobs_at:
                name = f.name if f.kind == "function" else (facts.enclosing_name(f) or f.name)
                if (f.file, name) not in seen_services:  # one entry per function for calls/strings
                    seen_services.add((f.file, name))
                    res.services.append(f if f.kind == "function" else Fact("function", name, f.file, f.line))
        out.append(res)
    return out, where


def _names(facts: list[Fact]) -> str:
    return ", ".join(f"{f.name} ({f.where})" for f in facts)


def profile_chosen(ctx) -> bool:
    """Whether a feature profile says what the product must offer (else: derived)."""
    return bool(ctx.config.get("features_file"))


def feature_frame(ctx):
    """A DataFrame: group, feature, implemented?, routes, services, jobs, models, files."""
    import pandas as pd

    cols = ["group", "feature", "implemented", "routes", "services", "jobs", "models", "files"]
    if not profile_chosen(ctx):
        from .derived_features import derived_areas

        return pd.DataFrame([{"group": "Background jobs" if a.jobs else "Routes by area", "feature": a.name,
                              "implemented": True,
                              "routes": ", ".join(f"{r.key} ({r.file}:{r.line})" for r in a.routes),
                              "services": "", "jobs": ", ".join(f"{j.name} ({j.file}:{j.line})" for j in a.jobs),
                              "models": "", "files": ", ".join(a.files)} for a in derived_areas(ctx)], columns=cols)
    rows, _ = inventory(ctx)
    return pd.DataFrame([{"group": r.group, "feature": r.name, "implemented": r.implemented,
                          "routes": _names(r.routes), "services": _names(r.services), "jobs": _names(r.jobs),
                          "models": ", ".join(f.name for f in r.models), "files": ", ".join(r.files)}
                         for r in rows], columns=cols)
