"""FUNC-001: feature inventory against the feature profile."""
from __future__ import annotations

from ..facts.derived_features import derived_areas, documented_features
from ..facts.features import inventory, profile_chosen
from ..findings import Severity, not_verified
from ..facts.profile_data import ProfileError
from ..facts.routes import app_anchor
from . import check

CORE_GROUPS = {"core"}  # config key `features_core_groups`: groups whose gaps are WARNINGs


@check("FUNC-001", "functional", "Feature inventory")
def feature_inventory(ctx):
    """Without a feature profile (the default): the features the application offers,
    read from itself (:mod:`auditlib.facts.derived_features`): its routes grouped into
    feature areas (OpenAPI tag, else first path segment), its background jobs, and the
    features its README lists, matched to those areas. All INFO: with no profile
    nothing is known to be missing, so nothing is reported missing; an application
    whose routes and jobs cannot be found at all is a "not verified" WARNING.

    With a profile (``--profile cleaning``, ``profile = "..."`` or ``features_file``):
    maps each feature of the profile (core business, admin portal, worker portal,
    client portal, background jobs) to the routes, service functions, jobs and models
    that implement it, found by keywords, route patterns, calls and string literals.

    Why: the release decision needs to know what is actually built; a missing core
    feature (payments, bookings) is a gap in the product, not only in the code.
    Severity: INFO per implemented feature with its evidence (first route / function);
    a missing core-business feature is a WARNING; the missing features of another group
    are one RECOMMENDATION per group, listing them. Never a BLOCKER: the profile
    describes an expected product, the target may legitimately differ; when no core
    feature at all is found, the profile does not fit the product and one WARNING says
    so instead of one per feature. Missing-feature
    findings point at the ``FastAPI(...)`` line. Not judged: whether an implementation
    is complete or correct (the other checks do that); a model without code is
    supporting evidence only.
    """
    chk = feature_inventory.check
    if not profile_chosen(ctx):
        yield from _derived(ctx, chk)
        return
    try:
        rows, where = inventory(ctx)
    except ProfileError as exc:
        yield not_verified(chk.id, chk.area, "feature inventory", str(exc))
        return
    core = set(ctx.config.get("features_core_groups", CORE_GROUPS))
    file, line = app_anchor(ctx)
    core_rows = [r for r in rows if r.spec.get("group") in core]
    if core_rows and not any(r.implemented for r in core_rows):
        yield chk.finding(
            ctx, Severity.WARNING, f"None of the {len(core_rows)} core features of the profile was found",
            f"The feature profile ({where}) does not describe this application: none of its core features ("
            + "; ".join(r.name for r in core_rows) + ") matches a route, function or job. The feature "
            "inventory cannot say what is implemented until the profile fits the product.",
            "Write a feature profile for this product (same TOML shape as auditlib/profiles/features.toml) "
            "and point the `features_file` config key at it.",
            file, line, excerpt=None if line else "", key="profile-mismatch")
        return
    missing_by_group: dict[str, list] = {}
    for r in rows:
        if r.implemented:
            ev = r.evidence[0]
            parts = [f"{k}: {', '.join(f.name for f in getattr(r, k)[:4])}" for k in ("routes", "services", "jobs", "models")
                     if getattr(r, k)]
            yield chk.finding(ctx, Severity.INFO, f"Implemented: {r.name}",
                              f"{r.group}. " + "; ".join(parts) + f". Files: {', '.join(r.files)}.", "",
                              ev.file, ev.line, key=r.id)
        elif r.spec.get("group") in core:
            model = f" (a `{r.models[0].name}` model exists, but no code uses it)" if r.models else ""
            yield chk.finding(
                ctx, Severity.WARNING, f"Core feature not found: {r.name}",
                f"No route, service function or job of the application matches this core-business feature "
                f"of the profile ({where}){model}. Either the product lacks it or it is named differently.",
                "Confirm with the product owner whether the feature is required for this release; if it exists "
                "under another name, add its keywords/routes to the feature profile (`features_file`).",
                file, line, excerpt=None if line else "", key=r.id)
        else:
            missing_by_group.setdefault(r.group, []).append(r)
    for group, missing in missing_by_group.items():
        total = sum(1 for r in rows if r.group == group)
        yield chk.finding(
            ctx, Severity.RECOMMENDATION, f"{group}: {len(missing)} of {total} features not found",
            f"Not found in the code ({where}): " + "; ".join(r.name for r in missing) + ".",
            "Confirm which of these the release needs; add the implementations, or adjust the feature profile.",
            file, line, excerpt=None if line else "", key=f"group:{group}")


def _derived(ctx, chk):
    areas = derived_areas(ctx)
    if not areas:
        yield not_verified(chk.id, chk.area, "feature inventory",
                           "no route and no background job of the application was found, so what it offers "
                           "could not be read from it; name a feature profile (--profile NAME or features_file)")
        return
    file, line = app_anchor(ctx)
    n_routes = sum(len(a.routes) for a in areas)
    n_jobs = sum(len(a.jobs) for a in areas)
    docs = documented_features(ctx, areas)
    yield chk.finding(
        ctx, Severity.INFO, f"Feature inventory read from the application: {len(areas)} area{'s' * (len(areas) > 1)}",
        f"No feature profile was chosen, so the inventory lists what the code offers: {n_routes} routes in "
        f"{len(areas) - (1 if n_jobs else 0)} areas, {n_jobs} background jobs"
        + (f", {len(docs)} features listed in the README" if docs else "")
        + ". Nothing is reported missing: only a profile says what the product must offer.",
        "To check the product against what it must offer, choose a profile (`--profile NAME`, e.g. "
        "`cleaning`) or write one and name it with `features_file`.",
        file, line, excerpt=None if line else "", key="derived")
    for a in areas:
        if a.routes:
            first = a.routes[0]
            labels = [r.key for r in a.routes[:8]]
            more = f" (+{len(a.routes) - 8} more)" if len(a.routes) > 8 else ""
            yield chk.finding(ctx, Severity.INFO, f"Feature area: {a.name} ({len(a.routes)} route{'s' * (len(a.routes) > 1)})",
                              f"Routes: {', '.join(labels)}{more}. Files: {', '.join(a.files[:6])}.", "",
                              first.file, first.line, key=f"area:{a.name}")
        else:
            first = a.jobs[0]
            yield chk.finding(ctx, Severity.INFO, f"Background jobs ({len(a.jobs)})",
                              f"Jobs: {', '.join(f'{j.name} ({j.kind})' for j in a.jobs[:8])}. "
                              f"Files: {', '.join(a.files[:6])}.", "", first.file, first.line, key="area:jobs")
    for d in docs:
        found = (f"the route areas {', '.join(d.areas)} share its words" if d.areas else
                 "no route area or job shares a word with it: it is named differently in the code, or not built")
        yield chk.finding(ctx, Severity.INFO, f"Documented feature: {d.text[:60]}",
                          f"The README lists \"{d.text}\"; {found}.", "", d.file, d.line, key=f"doc:{d.line}")
