"""The flattened trees behind every walk: each helper equals its plain-``ast`` definition
on real code (auditlib's own modules and the demo target), subtree by subtree."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

from auditlib.code.pyast import (
    FUNCS,
    SCOPES,
    Flat,
    by_scope,
    dotted,
    inner,
    of_type,
    parent_map,
    walk,
)
from auditlib.code.pyresolve import calls

REPO = Path(__file__).resolve().parent.parent
FILES = sorted([*(p for p in (REPO / "auditlib").rglob("*.py") if "checks" not in p.parts),
                *(REPO / "examples" / "bookly").rglob("*.py")])


def _preorder(node):
    out = [node]
    for child in ast.iter_child_nodes(node):
        out.extend(_preorder(child))
    return out


def _inner(node, scopes, keep):
    out = []
    for child in ast.iter_child_nodes(node):
        if isinstance(child, scopes):
            if keep:
                out.append(child)
            continue
        out.append(child)
        out.extend(_inner(child, scopes, keep))
    return out


def _trees():
    for path in FILES:
        tree = ast.parse(path.read_text())
        Flat(tree)
        yield path.name, tree


@pytest.mark.parametrize("name,tree", list(_trees()), ids=lambda v: v if isinstance(v, str) else "")
def test_each_helper_equals_its_plain_ast_definition(name, tree):
    assert walk(tree) == _preorder(tree)
    assert sorted(map(id, walk(tree))) == sorted(map(id, ast.walk(tree)))  # same nodes as ast.walk
    up = parent_map(tree)
    for parent in ast.walk(tree):
        for child in ast.iter_child_nodes(parent):
            if child._fields:  # not the Load()/Add() singletons every tree shares
                assert up[id(child)] is parent
    for node in [tree, *(n for n in ast.walk(tree) if isinstance(n, (*SCOPES, ast.If, ast.Call)))]:
        assert walk(node) == _preorder(node)
        for types in (ast.Call, (ast.Assign, ast.AnnAssign), ast.stmt, ast.expr):
            assert of_type(node, types) == [n for n in _preorder(node) if isinstance(n, types)]
        assert inner(node) == _inner(node, SCOPES, True)
        assert inner(node, FUNCS, keep_scopes=False) == _inner(node, FUNCS, False)
        plain = sorted((n for n in _inner(node, FUNCS, False) if isinstance(n, ast.Call)),
                       key=lambda c: (c.lineno, c.col_offset))
        assert list(calls(node)) == plain
        assert list(calls(node, nested=True)) == sorted(
            (n for n in _preorder(node)[1:] if isinstance(n, ast.Call)), key=lambda c: (c.lineno, c.col_offset))


@pytest.mark.parametrize("name,tree", list(_trees())[:12], ids=lambda v: v if isinstance(v, str) else "")
def test_by_scope_groups_what_inner_gives_per_scope(name, tree):
    types = (ast.Assign, ast.Call, ast.FunctionDef, ast.AsyncFunctionDef)
    scopes = [None, *(n for n in _preorder(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)))]
    expected = [(s, [n for n in _inner(s or tree, SCOPES, True) if isinstance(n, types)]) for s in scopes]
    assert by_scope(tree, types) == expected


def test_memoised_answers_are_stable_and_dotted_is_exact():
    tree = ast.parse("import a.b as c\n\ndef f():\n    c.d.e(x.y)\n    lambda: g()\n")
    assert of_type(tree, ast.Call) is of_type(tree, ast.Call)  # memoised: one list per question
    call = of_type(tree, ast.Call)[0]
    assert dotted(call) == "c.d.e" and dotted(call.args[0]) == "x.y" and dotted(call) == "c.d.e"
    assert [dotted(c) for c in calls(tree.body[1])] == ["c.d.e"]  # the lambda's call runs later
    assert dotted(ast.Constant(1)) == ""


def test_a_tree_flattened_from_a_subtree_still_answers():
    tree = ast.parse("def f():\n    if x:\n        g(1)\n")
    func = tree.body[0]
    assert [type(n).__name__ for n in of_type(func, ast.Call)] == ["Call"]  # never flattened: done on use
    assert walk(func)[0] is func
    assert len(walk(tree)) > len(walk(func))  # the module is still flattened as a whole


def test_a_synthetic_wrapper_does_not_steal_the_nodes_of_its_tree():
    tree = ast.parse("try:\n    pass\nexcept E:\n    log(x)\n    raise\n")
    Flat(tree)  # as the index does on parse
    handler = tree.body[0].handlers[0]
    own = walk(handler.body[0])
    wrapped = ast.Module(body=handler.body, type_ignores=[])  # what a check may build
    assert [type(n).__name__ for n in of_type(wrapped, ast.Call)] == ["Call"]
    assert walk(handler.body[0]) == own and handler.body[0]._flat is tree._flat
    assert walk(ast.Load()) and of_type(ast.Pass(), ast.stmt) and not inner(ast.Pass())  # field-less leaves
