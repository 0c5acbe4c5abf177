"""Small AST/token helpers shared by the checks (one parse per file, from the index)."""
from __future__ import annotations

import ast
import io
from bisect import bisect_left
from itertools import chain
import tokenize
from typing import TYPE_CHECKING, Iterator

if TYPE_CHECKING:  # the AST toolkit sits below the index: types only
    from ..target.index import SourceFile

SCOPES = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)
FUNCS = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)  # bodies that run later, elsewhere


class Flat:
    """A module's nodes in source order (depth-first preorder), flattened once.

    ``order[i]`` is a node, ``end[i]`` the index just past its subtree, so every
    subtree is the slice ``order[i:end[i]]``; ``parent[i]`` is its parent's index. Each
    node with fields carries ``_flat`` and ``_fi`` (its Flat and index); field-less nodes
    are left alone, as CPython shares one ``Load()``, ``Add()``... between all trees. Some fifty checks walk the
    same trees: measured on a 200-file target, Python-level ``ast.walk`` generators
    were most of the static audit's time; a slice is a C-level copy. Trees from the
    index are never mutated, so the flattening stays valid.
    """
    __slots__ = ("order", "end", "parent", "memo", "by_type")

    def __init__(self, tree: ast.AST, mark: bool = True):
        order: list[ast.AST] = []
        parent: list[int] = []
        by_type: dict[type, list[int]] = {}  # exact class -> ascending indices
        stack: list[tuple[ast.AST, int]] = [(tree, -1)]
        pop, push, add, add_parent, AST = stack.pop, stack.append, order.append, parent.append, ast.AST
        while stack:  # the hot loop of the whole static audit: kept tight on purpose
            node, up = pop()
            i = len(order)
            add(node)
            add_parent(up)
            same = by_type.get(node.__class__)
            if same is None:
                by_type[node.__class__] = [i]
            else:
                same.append(i)
            fields = node._fields
            if not fields:  # Load/Store, operators: shared singletons (and leaves like Pass)
                continue
            d = node.__dict__  # a parsed node keeps its fields in its __dict__
            if mark:
                d["_flat"] = self
                d["_fi"] = i
            for name in reversed(fields):  # pushed in reverse, so popped in source order
                v = d.get(name)
                if v.__class__ is list:
                    for x in reversed(v):
                        if isinstance(x, AST):
                            push((x, i))
                elif isinstance(v, AST):
                    push((v, i))
        end = [j + 1 for j in range(len(order))]
        for j in range(len(order) - 1, 0, -1):  # descendants come after their ancestor
            p = parent[j]
            if end[j] > end[p]:
                end[p] = end[j]
        self.order, self.end, self.parent, self.memo, self.by_type = order, end, parent, {}, by_type

    def indices(self, types) -> list[int]:
        """Ascending indices of the nodes that are instances of ``types`` (memoised; a
        tuple of types in any order shares one entry)."""
        if isinstance(types, tuple):
            types = tuple(sorted(set(types), key=lambda t: t.__name__))
        hit = self.memo.get(("indices", types))
        if hit is None:
            by = self.by_type
            lists = [lst for cls, lst in by.items() if issubclass(cls, types)]
            hit = lists[0] if len(lists) == 1 else sorted(chain.from_iterable(lists))
            self.memo[("indices", types)] = hit
        return hit


def flat(node: ast.AST) -> tuple[Flat, int]:
    """(the Flat holding ``node``, its index); a node of no flattened tree is flattened
    on the spot (the index flattens each module when it parses it)."""
    f = getattr(node, "_flat", None)
    if f is None:
        # A fresh tree is flattened for good; anything else (a subtree, or a synthetic
        # node wrapping nodes of a flattened tree) gets a throw-away flattening that
        # leaves the nodes' own marks alone.
        mark = isinstance(node, ast.Module) and not (node.body and "_flat" in node.body[0].__dict__)
        f = Flat(node, mark=mark)
        if not mark or not node._fields:  # a field-less leaf is not marked (see Flat)
            return f, 0
    return f, node._fi


def walk(node: ast.AST) -> list[ast.AST]:
    """Every node of ``node``'s subtree, itself first, in source (preorder) order: the
    ``ast.walk`` of the checks, as a slice of the flattened tree."""
    f, i = flat(node)
    return f.order[i:f.end[i]]


def inner(node: ast.AST, scopes: tuple = SCOPES, *, keep_scopes: bool = True) -> list[ast.AST]:
    """The nodes under ``node`` (not itself), in source order, without descending into
    nested ``scopes`` (functions, classes, lambdas by default); the nested scope nodes
    themselves are kept unless ``keep_scopes`` is false."""
    f, i = flat(node)
    key = ("inner", i, scopes, keep_scopes)
    hit = f.memo.get(key)
    if hit is None:
        order, end = f.order, f.end
        hit, j, stop = [], i + 1, end[i]
        while j < stop:
            n = order[j]
            if isinstance(n, scopes):
                if keep_scopes:
                    hit.append(n)
                j = end[j]
            else:
                hit.append(n)
                j += 1
        f.memo[key] = hit
    return hit


def of_type(node: ast.AST, types) -> list[ast.AST]:
    """The nodes of ``types`` in ``node``'s subtree (itself included), in source order:
    a range of the tree's per-type index, so asking any function for its calls costs a
    bisection, not a walk. Memoised per node; callers only read the list."""
    f, i = flat(node)
    key = ("type", i, types)
    hit = f.memo.get(key)
    if hit is None:
        idx, order = f.indices(types), f.order
        lo, hi = (0, len(idx)) if i == 0 else (bisect_left(idx, i), bisect_left(idx, f.end[i]))
        hit = f.memo[key] = [order[j] for j in idx[lo:hi]]
    return hit


def by_scope(tree: ast.AST, types) -> list[tuple[ast.AST | None, list[ast.AST]]]:
    """The nodes of ``types`` grouped by the scope that owns them: ``(None, nodes)`` for
    the module, then ``(function, nodes)`` for every function in source order. A node
    belongs to its innermost enclosing function, class or lambda; nodes owned by a class
    body or a lambda are in no group. Within a group, nodes are in source order: each
    group is what ``inner(scope)`` filtered by ``types`` gives, for a fraction of the cost.
    Memoised per tree; callers only read it."""
    f, i = flat(tree)
    key = ("by_scope", i, types)
    hit = f.memo.get(key)
    if hit is None:
        order, parent = f.order, f.parent
        funcs = of_type(tree, (ast.FunctionDef, ast.AsyncFunctionDef))
        groups: dict[int, list[ast.AST]] = {-1: []}
        for fn in funcs:
            groups[fn._fi] = []
        for node in of_type(tree, types):
            p = parent[node._fi]
            while p > i and not isinstance(order[p], SCOPES):
                p = parent[p]
            owner = groups.get(p if p > i else -1)
            if owner is not None:  # None: a class body or a lambda owns it
                owner.append(node)
        hit = f.memo[key] = [(None, groups[-1]), *((fn, groups[fn._fi]) for fn in funcs)]
    return hit


def parent_map(tree: ast.AST) -> dict[int, ast.AST]:
    """id(node) -> parent node within ``tree``'s subtree, memoised (callers only read it)."""
    f, i = flat(tree)
    hit = f.memo.get(("parents", i))
    if hit is None:
        order, parent = f.order, f.parent
        hit = {id(order[j]): order[parent[j]] for j in range(i + 1, f.end[i])}
        f.memo[("parents", i)] = hit
    return hit


def comments(src: SourceFile) -> Iterator[tuple[int, str]]:
    """(line, text) of every ``#`` comment; tokenize, so ``#`` inside strings is not one."""
    text = src.parse_text
    if text is None:
        return
    try:
        for tok in tokenize.generate_tokens(io.StringIO(text).readline):
            if tok.type == tokenize.COMMENT:
                yield tok.start[0], tok.string
    except (tokenize.TokenError, IndentationError, SyntaxError):
        return


def docstring_nodes(tree: ast.AST) -> set[int]:
    """ids of the Constant nodes that are docstrings (module, class, function); memoised."""
    f, i = flat(tree)
    out = f.memo.get(("docstrings", i))
    if out is None:
        out = f.memo[("docstrings", i)] = set()
        for node in of_type(tree, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
                    and isinstance(body[0].value.value, str):
                out.add(id(body[0].value))
    return out


def string_constants(src: SourceFile, *, docstrings: bool = False) -> Iterator[tuple[ast.Constant, str]]:
    """Every ``str`` constant (f-string parts included) with its value."""
    if src.tree is None:
        return
    skip = set() if docstrings else docstring_nodes(src.tree)
    for node in of_type(src.tree, ast.Constant):
        if isinstance(node.value, str) and id(node) not in skip:
            yield node, node.value


def dotted(node: ast.AST) -> str:
    """``a.b.c`` for Name/Attribute chains, the callee's name for calls, else ''.

    The most called helper of the checks (some 170,000 calls on a 200-file target):
    exact type tests and the chain memoised on its Attribute node."""
    cls = type(node)
    if cls is ast.Name:
        return node.id
    if cls is ast.Attribute:
        d = node.__dict__
        hit = d.get("_dotted")
        if hit is None:
            base = dotted(node.value)
            hit = d["_dotted"] = f"{base}.{node.attr}" if base else node.attr
        return hit
    if cls is ast.Call:
        return dotted(node.func)
    return ""


def source(node: ast.AST) -> str:
    """``ast.unparse(node)``, memoised on the node (checks unparse the same annotations
    and functions for every route that reaches them); a bare name is its id."""
    if type(node) is ast.Name:
        return node.id
    d = node.__dict__
    text = d.get("_source")
    if text is None:
        text = d["_source"] = ast.unparse(node)
    return text


def literal(node: ast.AST | None):
    """The Python value of a literal node, or a sentinel ``NOT_LITERAL``."""
    if node is None:
        return NOT_LITERAL
    try:
        return ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return NOT_LITERAL


class _NotLiteral:
    def __repr__(self) -> str:
        return "NOT_LITERAL"


NOT_LITERAL = _NotLiteral()
