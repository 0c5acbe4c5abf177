"""REL-008: order of the database delete/commit and the object-store delete."""
from __future__ import annotations

import ast
import re

from ..findings import Severity
from ..code.pyast import dotted, of_type
from ..code.pyresolve import Project, calls, functions
from . import check
from .rel_002_transactions import is_write

STORE_RECEIVER = re.compile(r"storage|backend|bucket|blob|s3|media|object_store|files?_store", re.I)
STORE_METHODS = {"delete", "delete_object", "delete_objects", "delete_file", "remove", "delete_blob"}


def _is_store(proj: Project, src, call: ast.Call) -> bool:
    """An object-store delete (``storage.delete(key)``, ``s3.delete_object(...)``)."""
    if not isinstance(call.func, ast.Attribute) or call.func.attr not in STORE_METHODS:
        return False
    recv = dotted(call.func.value)
    return bool(recv) and bool(STORE_RECEIVER.search(recv)) and not is_write(proj, src, call)


def _any_store_call(proj: Project) -> bool:
    """Whether any call of the project is an object-store delete: without one no function
    (callees inlined or not) has a store event. Every method name in STORE_METHODS
    contains "delete" or "remove", so an ASCII file without either word has none (the
    parser NFKC-normalises non-ASCII identifiers: such files are read)."""
    for src in proj.files:
        if not src.may_name("delete", "remove"):
            continue
        if any(_is_store(proj, src, c) for c in of_type(src.tree, ast.Call)):
            return True
    return False


def _events(proj: Project, src, fn, depth: int, memo: dict):
    """Events of ``fn`` in execution order, callees inlined ``depth`` levels: (kind,
    (file, line)) with kind store (object-store delete), dbdel (database delete) or
    commit, and (file, line) where the operation itself is. ``memo`` keeps the answer
    per (function, depth) for the check's run: helpers are inlined into many callers."""
    key = (id(fn), depth)
    hit = memo.get(key)
    if hit is None:
        hit = memo[key] = _events_of(proj, src, fn, depth, memo)
    return hit


def _events_of(proj: Project, src, fn, depth: int, memo: dict):
    out = []  # (position in fn, order, kind, where)
    for call in calls(fn):
        here = (src.path, call.lineno)
        if isinstance(call.func, ast.Attribute):
            if _is_store(proj, src, call):
                out.append((call.lineno, len(out), "store", here))
                continue
            if call.func.attr == "commit":
                out.append((call.lineno, len(out), "commit", here))
                continue
        if is_write(proj, src, call):
            if "delete" in ast.unparse(call)[:300]:
                out.append((call.lineno, len(out), "dbdel", here))
            continue
        if depth > 0:
            r = proj.resolve_call(src, call.func)
            if r is not None and r.func is not fn:
                out += [(call.lineno, len(out) + i, k, w) for i, (k, w) in enumerate(_events(proj, r.src, r.func, depth - 1, memo))]
    for node in of_type(fn, (ast.With, ast.AsyncWith)):  # `async with session.begin():` commits when the block ends
        if any(
                isinstance(i.context_expr, ast.Call) and dotted(i.context_expr.func).endswith(".begin")
                for i in node.items):
            out.append((node.end_lineno + 0.5, len(out), "commit", (src.path, node.end_lineno)))
    return [(k, w) for _, _, k, w in sorted(out)]


@check("REL-008", "reliability", "Storage consistency on delete")
def storage_delete_order(ctx):
    """Functions that delete both a database row and its object-store object (boto3
    ``delete_object(s)``, a storage backend's ``.delete(...)``), directly or through the
    functions they call (two levels, across modules), and the order of the operations:
    the database delete must be committed before the object is deleted.

    Why: if the object goes first and the commit then fails (constraint, deadlock,
    timeout), the row survives pointing at a file that no longer exists: broken
    downloads and photos. The other order can only leave an orphaned object, which a
    cleanup job can collect. WARNING when the object-store delete runs before the
    database delete, or before the commit that makes it durable (including when the
    commit only happens after the function returns). Not flagged: object deletes with
    no database delete in the same flow, and the correct order (reported as INFO).
    """
    chk = storage_delete_order.check
    proj = Project.of(ctx)
    if not _any_store_call(proj):
        return
    reported: set[tuple[str, int]] = set()
    memo: dict = {}
    for src in ctx.layout.app_sources(ctx.index):
        for fn in functions(src.tree) if src.tree else []:
            ev = _events(proj, src, fn, 2, memo)
            kinds = [k for k, _ in ev]
            if "store" not in kinds or "dbdel" not in kinds:
                continue
            first_store = kinds.index("store")
            first_del = kinds.index("dbdel")
            commit_after_del = next((i for i, k in enumerate(kinds) if k == "commit" and i > first_del), None)
            where = ev[first_store][1]
            if where in reported:
                continue
            reported.add(where)
            if first_store < first_del or commit_after_del is None or first_store < commit_after_del:
                why = ("before the database delete" if first_store < first_del else
                       "before the database delete is committed" if commit_after_del is not None else
                       "before the database delete is committed (the commit happens after this function returns)")
                yield chk.finding(
                    ctx, Severity.WARNING, f"Object deleted from storage {why.split(' (')[0]} in `{fn.name}`",
                    f"In `{fn.name}` the object-store delete runs {why}: if the database step then fails, the "
                    "row survives and points at a file that no longer exists.",
                    "Delete and commit the database row first, then delete the object (log and sweep orphans "
                    "if the object delete fails).", where[0], where[1], key=f"order:{fn.name}")
            else:
                yield chk.finding(ctx, Severity.INFO, f"Storage delete after the database commit in `{fn.name}`",
                                  "The row is deleted and committed before the object: at worst an orphaned "
                                  "object remains.", "", where[0], where[1], key=f"ok:{fn.name}")
