"""Newer Python read by an older interpreter, so that no file goes unaudited for its syntax.

A target may be written for a newer CPython than the one running the audit. Its files
then fail ``ast.parse`` here although they are fine, and whatever they hold (models,
authorization dependencies) would drop out of every check. :func:`lower` parses such a
file with libcst (whose parser reads Python 3.0 to 3.15 on any interpreter) and rewrites
each newer construct into older syntax with the same meaning for a static reader,
keeping every line where it was, so locations and excerpts stay those of the file:

- ``type X[T] = v`` (3.12) becomes ``X = v``; type parameter lists of functions and
  classes (3.12, defaults 3.13) are dropped: ``def f[T](x: T)`` reads as ``def f(x: T)``;
- ``except A, B:`` (3.14) becomes ``except (A, B):``; ``except*`` (3.11) becomes
  ``except`` for a 3.10 interpreter;
- an f-string that only 3.12 accepts (PEP 701: the outer quote reused inside, nesting)
  gets other quotes (``'``, ``\"\"\"``, ``'''``), innermost first; one that no quoting
  makes valid (a backslash or comment inside ``{}``) keeps its text but not its
  expressions;
- a template string ``t"..."`` (3.14) becomes a plain string of its text: a template is
  not a ``str``, so reading it as an f-string would make injection checks see string
  formatting where the library receives the parts separately.

Files that libcst cannot parse either are really broken: :func:`lower` returns None and
the index reports them (AUDIT-001).
"""
from __future__ import annotations

import ast
import re

_QUOTES = ('"', "'", '"""', "'''")


def lower(text: str) -> tuple[str, list[str]] | None:
    """(text in older syntax, the newer constructs it held), or None when libcst cannot
    parse it either or the rewrite would move a line."""
    try:
        import libcst as cst
    except ImportError:  # pragma: no cover - libcst is a dependency
        return None
    try:
        module = cst.parse_module(text)
    except Exception:  # libcst's ParserSyntaxError and friends: really broken
        return None
    lowering = _lowering(cst, module)
    try:
        code = module.visit(lowering).code
    except Exception:
        return None
    if code.count("\n") != text.count("\n"):
        return None
    return code, sorted(lowering.used)


def _parses(code: str) -> bool:
    try:
        ast.parse(code, mode="eval")
    except (SyntaxError, ValueError):
        return False
    return True


def _plain(prefix: str, start: str, inner: str) -> str:
    """A raw string literal holding ``inner`` with quotes, backslashes and braces blanked
    (same newlines; a valid literal whatever ``inner`` held)."""
    quote = '"""' if start.endswith(('"""', "'''")) else '"'
    body = re.sub(r"[\"'\\{}]", " ", inner)
    if quote == '"':
        body = body.replace("\n", " ")
    return "r" + quote + body + quote


def _lowering(cst, module):
    class Lowering(cst.CSTTransformer):
        def __init__(self):
            super().__init__()
            self.used: set[str] = set()

        # 3.12: type aliases and type parameters
        def leave_TypeAlias(self, original, updated):
            self.used.add("type alias statement (3.12)")
            return cst.Assign(targets=[cst.AssignTarget(target=updated.name)], value=updated.value)

        def _untyped(self, updated):
            if getattr(updated, "type_parameters", None) is None:
                return updated
            self.used.add("type parameters (3.12)")
            return updated.with_changes(type_parameters=None,
                                        whitespace_after_type_parameters=cst.SimpleWhitespace(""))

        def leave_FunctionDef(self, original, updated):
            return self._untyped(updated)

        def leave_ClassDef(self, original, updated):
            return self._untyped(updated)

        # 3.14: except A, B  /  3.11: except*
        def _parenthesised(self, updated):
            t = updated.type
            if isinstance(t, cst.Tuple) and not t.lpar:
                self.used.add("except without parentheses (3.14)")
                return updated.with_changes(type=t.with_changes(lpar=[cst.LeftParen()], rpar=[cst.RightParen()]))
            return updated

        def leave_ExceptHandler(self, original, updated):
            return self._parenthesised(updated)

        def leave_ExceptStarHandler(self, original, updated):
            updated = self._parenthesised(updated)
            if not _STAR_SUPPORTED:
                self.used.add("except* (3.11)")
                return cst.ExceptHandler(body=updated.body, type=updated.type, name=updated.name,
                                         leading_lines=updated.leading_lines,
                                         whitespace_after_except=cst.SimpleWhitespace(" "),
                                         whitespace_before_colon=updated.whitespace_before_colon)
            return updated

        # 3.12 f-strings (PEP 701) and 3.14 template strings (PEP 750)
        def leave_FormattedString(self, original, updated):
            code = module.code_for_node(updated)
            if _parses(code):
                return updated
            self.used.add("f-string quoting (3.12)")
            prefix = updated.start.rstrip("'\"")
            old = updated.start[len(prefix):]
            inner = code[len(updated.start):len(code) - len(updated.end)]
            for q in _QUOTES:
                if q != old and _parses(prefix + q + inner + q):
                    return updated.with_changes(start=prefix + q, end=q)
            return cst.SimpleString(_plain(prefix, updated.start, inner))

        def leave_TemplatedString(self, original, updated):
            self.used.add("template string (3.14)")
            code = module.code_for_node(updated)
            prefix = updated.start.rstrip("'\"")
            inner = code[len(updated.start):len(code) - len(updated.end)]
            return cst.SimpleString(_plain(prefix, updated.start, inner))

    return Lowering()


try:  # 3.11 reads except*, 3.10 does not
    ast.parse("try:\n    pass\nexcept* E:\n    pass\n")
    _STAR_SUPPORTED = True
except SyntaxError:
    _STAR_SUPPORTED = False
