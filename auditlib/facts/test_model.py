"""The target's test suite read statically: test functions with the words that say what
they test, the strings they use (URL paths, headers) and the HTTP statuses they assert.

Tests are ``test_*`` functions (and methods of ``Test*`` classes) in the files the
layout classifies as tests (``test_*.py``, ``*_test.py``, ``conftest.py``, test dirs).
"""
from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field
from http import HTTPStatus

from ..code.keywords import split_words
from ..code.callgraph import shared
from ..code.pyast import dotted, of_type

HTTP_STATUS = re.compile(r"HTTP_(\d{3})_")


@dataclass
class TestFunc:
    __test__ = False  # not a pytest test class
    file: str
    name: str
    line: int
    cls: str = ""
    words: set[str] = field(default_factory=set)  # name, class, file name, docstring
    body_words: set[str] = field(default_factory=set)  # identifiers and strings used in the body
    strings: list[str] = field(default_factory=list)
    statuses: set[int] = field(default_factory=set)  # HTTP statuses compared in the body
    calls: set[str] = field(default_factory=set)

    @property
    def label(self) -> str:
        return f"{self.file}::{self.cls + '::' if self.cls else ''}{self.name}"

    @property
    def all_words(self) -> set[str]:
        return self.words | self.body_words


def test_files(ctx) -> list:
    return [f for f in ctx.index.python_files() if ctx.layout.is_test(f.path)]


def test_functions(ctx) -> list[TestFunc]:
    """Every test function of the target (memoised per audit; callers only read it)."""
    return shared(ctx, "test_functions", lambda: _test_functions(ctx))


_BODY_TYPES = (ast.Name, ast.Attribute, ast.Constant, ast.Call, ast.Compare)


def _test_functions(ctx) -> list[TestFunc]:
    out = []
    for src in test_files(ctx):
        stem = set(split_words(src.path.rsplit("/", 1)[-1][:-3])) - {"test", "tests", "py"}
        for node, cls in _tests(src.tree):
            t = TestFunc(src.path, node.name, node.lineno, cls)
            t.words = set(split_words(node.name)) | set(split_words(cls)) | stem
            t.words |= set(split_words(ast.get_docstring(node) or ""))
            t.words -= {"test"}
            for n in of_type(node, _BODY_TYPES):
                if isinstance(n, ast.Name):
                    t.body_words.update(split_words(n.id))
                elif isinstance(n, ast.Attribute):
                    t.body_words.update(split_words(n.attr))
                    if m := HTTP_STATUS.match(n.attr):
                        t.statuses.add(int(m.group(1)))
                elif isinstance(n, ast.Constant) and isinstance(n.value, str):
                    t.strings.append(n.value)
                    t.body_words.update(split_words(n.value))
                elif isinstance(n, ast.Call):
                    t.calls.add(dotted(n.func))
                elif isinstance(n, ast.Compare):
                    t.statuses |= _compared_statuses(n)
            for arg in node.args.args:  # fixtures: a test using `other_org_client` says so
                t.body_words.update(split_words(arg.arg))
            out.append(t)
    return out


def _tests(tree: ast.Module):
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name.startswith("test"):
            yield node, ""
        elif isinstance(node, ast.ClassDef) and node.name.startswith("Test"):
            for sub in node.body:
                if isinstance(sub, (ast.FunctionDef, ast.AsyncFunctionDef)) and sub.name.startswith("test"):
                    yield sub, node.name


def _compared_statuses(cmp: ast.Compare) -> set[int]:
    """``r.status_code == 404``, ``resp.status in (403, 404)``: the HTTP statuses compared."""
    sides = [cmp.left, *cmp.comparators]
    if not any("status" in dotted(s).lower() for s in sides):
        return set()
    out = set()
    for s in sides:
        for k in [s, *getattr(s, "elts", [])]:
            if isinstance(k, ast.Constant) and isinstance(k.value, int) and 100 <= k.value < 600:
                out.add(k.value)
            elif isinstance(k, ast.Attribute) and k.attr in HTTPStatus.__members__:  # HTTPStatus.NOT_FOUND
                out.add(HTTPStatus[k.attr].value)
    return out


test_files.__test__ = False  # type: ignore[attr-defined]  # helpers named test_*, not tests
test_functions.__test__ = False  # type: ignore[attr-defined]
