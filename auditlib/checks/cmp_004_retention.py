"""CMP-004: data retention settings, a cleanup job, and a protected cleanup endpoint."""
from __future__ import annotations

import ast
import re
from bisect import bisect_left

from ..findings import Severity
from ..code.callgraph import shared
from ..code.pyast import dotted, flat, literal, of_type
from ..facts.routes import protection, source_routes
from ..facts.settings_model import find_settings
from . import check

# category -> (table name pattern, [(setting pattern, expected default)])
POLICIES = {
    "chat": (r"chat|conversation", [(r"retention.*(chat|conversation)|(chat|conversation).*retention", 30)]),
    "lead": (r"(^|_)leads?($|_)", [(r"retention.*lead.*days|lead.*retention.*days", 365),
                                   (r"retention.*enable.*lead|enable.*lead.*retention", False)]),
}
CUTOFF = re.compile(r"timedelta|interval|days|retention|cutoff|older|expire", re.I)
CLEANUP_PATH = re.compile(r"retention|cleanup|purge", re.I)


def _tables(ctx) -> dict[str, tuple[str, int, str]]:
    """table name -> (file, line, model class or '') from models and migrations."""
    out: dict[str, tuple[str, int, str]] = {}
    for src in ctx.index.python_files():
        if ctx.layout.is_test(src.path) or not src.may_name("_table", "Table"):  # create_table, __tablename__
            continue
        for n in of_type(src.tree, (ast.ClassDef, ast.Call)):
            if isinstance(n, ast.ClassDef):
                for stmt in n.body:
                    if isinstance(stmt, (ast.Assign, ast.AnnAssign)) and dotted(
                            stmt.targets[0] if isinstance(stmt, ast.Assign) else stmt.target) == "__tablename__" \
                            and isinstance(literal(stmt.value), str):
                        out[stmt.value.value] = (src.path, n.lineno, n.name)
            elif dotted(n.func).split(".")[-1] in ("create_table", "Table") and n.args \
                    and isinstance(literal(n.args[0]), str):
                out.setdefault(n.args[0].value, (src.path, n.lineno, ""))
    return out


DELETE_SQL = re.compile(r"delete\s+from\s", re.I)  # what every ``DELETE FROM <table>`` string holds


def _deletions(ctx) -> list[tuple]:
    """Per app file with a possible deletion: (file, its functions, flat indices and nodes
    of the candidates in source order): calls whose callee ends in ``delete`` and strings
    holding ``DELETE FROM``, the only nodes :func:`_cleanup` can take as its hit."""
    def build():
        out = []
        for src in ctx.layout.app_sources(ctx.index):
            if not src.tree:
                continue
            cands = [n for n in of_type(src.tree, ast.Constant) if isinstance(n.value, str) and DELETE_SQL.search(n.value)]
            if src.may_name("delete"):
                cands += [n for n in of_type(src.tree, ast.Call) if dotted(n.func).endswith("delete")]
                cands.sort(key=lambda n: n._fi)
            if cands:
                out.append((src, of_type(src.tree, (ast.FunctionDef, ast.AsyncFunctionDef)),
                            [n._fi for n in cands], cands, flat(src.tree)[0].end))
        return out
    return shared(ctx, "cmp004.deletions", build)


def _has_cutoff(fn: ast.AST) -> bool:
    """Whether ``fn`` names a date cutoff (timedelta, interval, days, retention ...)."""
    return any(CUTOFF.search(dotted(x) if isinstance(x, (ast.Name, ast.Attribute)) else str(x.value))
               for x in of_type(fn, (ast.Name, ast.Attribute, ast.Constant)))


def _cleanup(ctx, table: str, model: str) -> str | None:
    """``file:line`` of a function deleting old rows of ``table`` (``delete(Model)``,
    ``DELETE FROM table``, ``session.delete`` of the model) with a date cutoff."""
    sql = re.compile(rf"delete\s+from\s+\"?{re.escape(table)}\b", re.I)
    named = re.compile(rf"\b{model}\b") if model else None

    def deletes(n: ast.AST) -> bool:
        if isinstance(n, ast.Constant):
            return bool(sql.search(n.value))
        return bool(model and (dotted(n.func).split(".")[-1] == "delete" and any(dotted(a) == model for a in n.args)
                               or named.search(ast.unparse(n.func))))

    for src, fns, at, cands, end in _deletions(ctx):
        for fn in fns:
            k, stop = bisect_left(at, fn._fi), end[fn._fi]
            hit = None
            while k < len(at) and at[k] < stop:  # the first deletion in the function
                if deletes(cands[k]):
                    hit = cands[k]
                    break
                k += 1
            if hit is not None and _has_cutoff(fn):
                return f"{src.path}:{hit.lineno}"
    return None


@check("CMP-004", "compliance", "Data retention")
def retention(ctx):
    """For each category of short-lived personal data the app stores (tables found in
    models and migrations: chat sessions/messages, leads; categories and patterns are
    ``retention_policies``-configurable): a retention setting (``RETENTION_CHAT_DAYS``
    default 30, ``RETENTION_LEAD_DAYS`` 365, ``RETENTION_ENABLE_LEADS`` false; other
    defaults are reported as INFO), and a cleanup function that deletes rows of that
    table older than a cutoff. Routes whose path says retention/cleanup/purge must be
    authenticated.

    Why: GDPR's storage-limitation principle: chat transcripts and unconverted leads
    kept forever are liability without purpose. No cleanup job for a category: WARNING
    at its model; a cleanup job with the period hard-coded (no setting): RECOMMENDATION.
    An unauthenticated cleanup endpoint lets anyone trigger mass deletion: BLOCKER.
    Not flagged: categories the app does not store; whether the job is scheduled
    (REL-006 reads the jobs runner).
    """
    chk = retention.check
    policies = ctx.config.get("retention_policies", POLICIES)
    tables = _tables(ctx)
    for category, (table_rx, settings) in policies.items():
        hits = sorted((t, loc) for t, loc in tables.items() if re.search(table_rx, t, re.I))
        if not hits:
            continue
        found = {rx: find_settings(ctx, rx) for rx, _ in settings}
        for rx, expected in settings:
            for s in found[rx]:
                if s.default != expected:
                    yield chk.finding(ctx, Severity.INFO, f"{s.env} defaults to {s.default!r} (checklist: {expected!r})",
                                      f"Retention setting `{s.name}` = {s.default!r}.", "", s.file, s.line,
                                      settings=[s.env], key=f"default:{s.env}")
        has_setting = any(found[rx] for rx, _ in settings[:1])
        for table, (file, line, model) in hits:
            job = _cleanup(ctx, table, model)
            if job and has_setting:
                continue
            missing = ([] if job else ["a cleanup job"]) + ([] if has_setting else ["a retention setting"])
            yield chk.finding(ctx, Severity.WARNING if not job else Severity.RECOMMENDATION,
                              f"No retention for `{table}`: missing {' and '.join(missing)}",
                              f"`{table}` ({category} data) lacks {' and '.join(missing)}"
                              f"{f' (cleanup found at {job})' if job else ''}: personal data is kept indefinitely, "
                              "against GDPR's storage limitation.",
                              f"Add a setting such as RETENTION_{category.upper()}_DAYS and a scheduled job deleting "
                              f"`{table}` rows older than it (leads: only when RETENTION_ENABLE_LEADS).",
                              file, line, tables=[table], key=f"retention:{table}")
    for route in source_routes(ctx):
        if not CLEANUP_PATH.search(route.path) or set(route.methods) <= {"GET", "HEAD"}:
            continue
        how, method = protection(ctx, route), "|".join(route.methods)
        if how:
            yield chk.finding(ctx, Severity.INFO, f"{method} {route.path} is authenticated ({how})",
                              "The cleanup endpoint requires credentials.", "", route.file, route.line,
                              routes=route.as_dicts(), key="endpoint")
            continue
        yield chk.finding(ctx, Severity.BLOCKER, f"Cleanup endpoint {method} {route.path} has no authentication",
                          "Anyone can trigger the retention cleanup: mass deletion of data (and a heavy "
                          "database job) on demand.",
                          "Protect it with the admin dependency (router-level `dependencies=[Depends(require_admin)]`) "
                          "or remove it in favour of the scheduled job.", route.file, route.line,
                          routes=route.as_dicts(), key="endpoint")
