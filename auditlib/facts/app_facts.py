"""Named facts about the application code, queried by keyword profiles (FUNC-001's
features, the TEST checks' scenarios): routes, functions, classes, ORM models, jobs,
imports, dotted calls and string literals, each with its file and line.

A profile entry asks with keyword phrases (see :mod:`auditlib.code.keywords`) for names and
with regular expressions for route labels (``"POST /v1/bookings"``), dotted calls
(``stripe.checkout.Session.create``), imported modules and string literals.
"""
from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field
from functools import cached_property

from ..code.callgraph import app_graph, shared
from .jobs_scan import find_jobs
from ..code.keywords import first_phrase, split_words
from .orm_scan import models
from ..code.pyast import docstring_nodes, dotted, of_type
from .routes import Route, source_routes


@dataclass
class Fact:
    kind: str  # route | function | class | model | job | import | call | string
    name: str
    file: str
    line: int
    words: set[str] = field(default_factory=set)
    func: str = ""  # routes: the handler's name

    @property
    def where(self) -> str:
        return f"{self.file}:{self.line}"


class AppFacts:
    def __init__(self, ctx):
        self.ctx = ctx
        self.graph = app_graph(ctx)
        self.files = self.graph.files

    @classmethod
    def of(cls, ctx) -> AppFacts:
        """The audit's shared instance."""
        return shared(ctx, "app_facts", lambda: cls(ctx))

    @cached_property
    def routes(self) -> list[Route]:
        """The route inventory's routes with an application-code handler, in source order
        (full paths through every router prefix; see :func:`auditlib.facts.routes.source_routes`)."""
        return source_routes(self.ctx)

    @cached_property
    def models(self):
        return models(self.ctx, self.graph)

    @cached_property
    def facts(self) -> dict[str, list[Fact]]:
        out: dict[str, list[Fact]] = {k: [] for k in
                                      ("route", "function", "class", "model", "job", "import", "call", "string")}
        handlers = set()
        for r in self.routes:
            handlers.add((r.file, r.handler_line))
            words = set(split_words(r.path)) | set(split_words(r.node.name))
            out["route"] += [Fact("route", f"{m} {r.path}", r.file, r.line, set(words), r.node.name) for m in r.methods]
        model_names = {m.name for m in self.models}
        for m in self.models:
            out["model"].append(Fact("model", m.name, m.file, m.line, set(split_words(m.name)) | set(split_words(m.table))))
        for job in find_jobs(self.ctx):
            fn = job.func
            out["job"].append(Fact("job", job.name, fn.file if fn else job.file, fn.line if fn else job.line,
                                   set(split_words(job.name)) | set(split_words(job.file.rsplit("/", 1)[-1][:-3]))))
        calls, strings, funcs, classes, imports = (out[k] for k in ("call", "string", "function", "class", "import"))
        for src in self.files:
            path, tree = src.path, src.tree
            if tree is None:
                continue
            for node in of_type(tree, ast.Call):
                if name := dotted(node.func):
                    calls.append(Fact("call", name, path, node.lineno))
            docs = docstring_nodes(tree)  # docstrings are not string facts
            for node in of_type(tree, ast.Constant):
                if type(node.value) is str and id(node) not in docs:
                    strings.append(Fact("string", node.value, path, node.lineno))
            for node in of_type(tree, (ast.FunctionDef, ast.AsyncFunctionDef)):
                if (path, node.lineno) not in handlers:
                    funcs.append(Fact("function", node.name, path, node.lineno, set(split_words(node.name))))
            for node in of_type(tree, ast.ClassDef):
                if node.name not in model_names:
                    classes.append(Fact("class", node.name, path, node.lineno, set(split_words(node.name))))
            for node in of_type(tree, (ast.Import, ast.ImportFrom)):
                if type(node) is ast.Import:
                    imports += [Fact("import", a.name, path, node.lineno) for a in node.names]
                elif node.module and not node.level:
                    imports.append(Fact("import", node.module, path, node.lineno))
                    imports += [Fact("import", f"{node.module}.{a.name}", path, node.lineno) for a in node.names]
        return out

    def enclosing_name(self, fact: Fact) -> str:
        """The function containing a call or string fact ('' at module level)."""
        fn = self.graph.enclosing(fact.file, fact.line)
        return fn.qualname if fn else ""

    def find(self, spec: dict, kinds=("route", "function", "class", "model", "job")) -> list[Fact]:
        """Facts matching a profile entry: ``keywords`` (phrases over the names of
        ``kinds``), ``routes`` (regexes over "METHOD /path"), ``calls``, ``imports`` and
        ``strings`` (regexes over dotted callee names, module names, string literals)."""
        hits: list[Fact] = []
        phrases = spec.get("keywords", [])
        if phrases:
            for kind in kinds:
                hits += [f for f in self._candidates(kind, phrases) if first_phrase(phrases, f.words)]
        for key, kind in (("routes", "route"), ("calls", "call"), ("imports", "import"), ("strings", "string")):
            pats = spec.get(key, [])
            if pats:
                names = set().union(*(self._names_matching(kind, p) for p in pats))
                if kind == "import":
                    names = {n for n in names if _module_match(n, pats)}
                hits += [f for f in self.facts[kind] if f.name in names]
        seen, out = set(), []
        for f in hits:
            k = (f.kind, f.name, f.file, f.line)
            if k not in seen:
                seen.add(k)
                out.append(f)
        return out

    @cached_property
    def _names(self) -> dict[str, list[str]]:
        """kind -> the distinct names of its facts (far fewer than the facts: one call
        name is called in many places)."""
        return {kind: list(dict.fromkeys(f.name for f in facts)) for kind, facts in self.facts.items()}

    def _names_matching(self, kind: str, pattern: str) -> set[str]:
        """The names of ``kind`` facts that ``pattern`` searches into (memoised: profiles
        repeat patterns, and every fact of a name gives the same answer)."""
        memo = self.__dict__.setdefault("_name_hits", {})
        hit = memo.get((kind, pattern))
        if hit is None:
            rx = re.compile(pattern)
            hit = memo[(kind, pattern)] = {n for n in self._names[kind] if rx.search(n)}
        return hit

    @cached_property
    def _word_index(self) -> dict[str, dict[str, list[int]]]:
        """kind -> word -> positions of the facts whose names contain that word."""
        out: dict[str, dict[str, list[int]]] = {}
        for kind, facts in self.facts.items():
            idx: dict[str, list[int]] = {}
            for i, f in enumerate(facts):
                for w in f.words:
                    idx.setdefault(w, []).append(i)
            out[kind] = idx
        return out

    def _candidates(self, kind: str, phrases) -> list[Fact]:
        """Facts that contain the first word of one of ``phrases`` (a cheap pre-filter)."""
        idx, facts, pos = self._word_index[kind], self.facts[kind], set()
        for phrase in phrases:
            first = phrase.lower().split()[0] if phrase.split() else ""
            if first.endswith("*"):
                for w, ids in idx.items():
                    if w.startswith(first[:-1]):
                        pos.update(ids)
            else:
                for w in (first, f"{first}s", f"{first}es"):
                    pos.update(idx.get(w, ()))
        return [facts[i] for i in sorted(pos)]

    def org_columns(self, column: str) -> list[Fact]:
        """Models carrying the tenant column (``org_id`` by default)."""
        return [Fact("model", f"{m.name}.{column}", m.file, m.columns[column], {m.table})
                for m in self.models if column in m.columns]


def _module_match(name: str, pats) -> bool:
    return any(re.fullmatch(f"(?:{p})(\\..*)?", name) for p in pats)
