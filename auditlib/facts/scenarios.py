"""Critical test scenarios (TEST-002) and negative security tests (TEST-004): which ones
the application needs, and which of the target's tests cover them.

The scenario list is data (``auditlib/profiles/test_scenarios.toml``, overridable with
the config key ``test_scenarios_file``); see that file for the keys.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from .app_facts import AppFacts, Fact
from ..code.callgraph import shared
from ..code.keywords import first_phrase, split_words, word_match
from .profile_data import load_profile
from .test_model import TestFunc, test_functions

DEFAULT_FILE = "test_scenarios.toml"
DEFAULT_ORG_COLUMN = "org_id"


@dataclass
class Coverage:
    spec: dict
    needed_by: Fact | None  # the app evidence that makes the scenario relevant; None: skipped
    tests: list[TestFunc] = field(default_factory=list)

    @property
    def id(self) -> str:
        return self.spec["id"]

    @property
    def title(self) -> str:
        return self.spec.get("title", self.id)


def load(ctx, section: str) -> tuple[list[dict], str]:
    data, where = shared(ctx, "test_scenarios_profile",
                         lambda: load_profile(ctx, "test_scenarios_file", DEFAULT_FILE))
    return list(data.get(section, [])), where


def app_evidence(ctx, facts: AppFacts, spec: dict) -> Fact | None:
    """The first place in the app that makes ``spec`` relevant, or None."""
    req = dict(spec.get("requires", {}))
    column = ctx.config.get("org_column", DEFAULT_ORG_COLUMN)
    hits: list[Fact] = []
    if req.pop("org_column", False):
        hits += facts.org_columns(column)
    if req:
        hits += facts.find(req)
    if not hits:
        return None
    resource = spec.get("resource")
    if resource:  # a tenant table of that name, reachable through a tenant-scoped route
        if not any(word_match(resource, h.words) for h in hits if h.kind == "model"):
            return None
        routes = [r for r in facts.routes if word_match(resource, set(split_words(r.path)))
                  and column not in r.path_params]
        if not routes:
            return None
        r = min(routes, key=lambda r: not r.path_params)  # by-id routes first: the IDOR target
        return Fact("route", f"{r.methods[0]} {r.path}", r.file, r.line)
    return min(hits, key=lambda f: (f.file, f.line))


def covering_tests(spec: dict, tests: list[TestFunc]) -> list[TestFunc]:
    phrases = spec.get("tests", [])
    strings = [re.compile(p) for p in spec.get("test_strings", [])]
    statuses = set(spec.get("statuses", []))
    resource = spec.get("resource")
    out = []
    for t in tests:
        ok = bool(first_phrase(phrases, t.all_words)) or any(rx.search(s) for rx in strings for s in t.strings)
        if ok and resource:
            ok = word_match(resource, t.all_words)
        if ok and statuses:
            ok = bool(statuses & t.statuses)
        if ok:
            out.append(t)
    return out


def org_noun(ctx) -> str:
    """The tenant's own word, for test phrases: ``workspace`` for ``workspace_id`` /
    ``workspaces``, ``organization`` for ``organization_id``, ``org`` by default."""
    table = ctx.config.get("org_table") or ""
    word = table[:-1] if table.endswith("s") else table
    return word or ctx.config.get("org_column", DEFAULT_ORG_COLUMN).removesuffix("_id") or "org"


def _expand(spec: dict, noun: str) -> dict:
    """``{org}`` in a scenario's test phrases stands for the tenant's word (``org``,
    ``workspace``, ``project``...): "another {org}*" finds test_..._from_another_workspace."""
    phrases = spec.get("tests", [])
    if not any("{org}" in p for p in phrases):
        return spec
    return {**spec, "tests": list(dict.fromkeys(p.replace("{org}", noun) for p in phrases))}


def coverage(ctx, section: str) -> tuple[list[Coverage], str]:
    specs, where = load(ctx, section)
    facts = AppFacts.of(ctx)
    tests = test_functions(ctx)
    noun = org_noun(ctx)
    out = []
    for spec in specs:
        spec = _expand(spec, noun)
        need = app_evidence(ctx, facts, spec)
        out.append(Coverage(spec, need, covering_tests(spec, tests) if need else []))
    return out, where


def coverage_frame(ctx, section: str = "scenario"):
    """A DataFrame: scenario -> needed? (app evidence) -> covering tests."""
    import pandas as pd

    rows, _ = coverage(ctx, section)
    return pd.DataFrame([{"scenario": c.title, "needed": c.needed_by is not None,
                          "because": c.needed_by.where + " " + c.needed_by.name if c.needed_by else "",
                          "tests": ", ".join(t.label for t in c.tests)} for c in rows],
                        columns=["scenario", "needed", "because", "tests"])
