"""Tenant isolation, statically, part 2: the scoping rules. Whether one data access is
constrained to the caller's organisation (``scoped (org)``), to the caller's own rows
(``scoped (owner)``), reached through a capability (signed token, unguessable token
column) or a signed webhook, only through a debug-only override (``test-only bypass``), or
not at all (``unscoped``, ``id-substitution``, ``unknown``); session-level mechanisms
(row-level security set per request, ``with_loader_criteria``); tenant data without an
org column (judged through its parent row) and global tables written by tenant routes;
accesses that only reuse the id of a row already fetched (they inherit its verdict).
"""
from __future__ import annotations

import ast
import re

from ..facts.orm_schema import Schema, schema
from ..code.pyast import dotted, walk
from ..code.pymodules import Project, project
from ..facts.routes import _orgish
from .accesses import (BYPASS, CALLER, COLUMN, CONST, IDENTITY_ATTR, VALIDATED, OTHER, SIGNED, TOKEN, TOKEN_COLUMN, UNTRUSTED, Access,
                       Query)

_MEMO: dict = {}

def global_mechanisms(ctx) -> dict[str, str]:
    """Session-level tenant filters: {table or "*": evidence}."""
    s, proj = schema(ctx), project(ctx)
    out: dict[str, str] = {}
    for mod in proj.by_path.values():
        text = ctx.index.get(mod.path).text or ""
        if "with_loader_criteria" in text and "do_orm_execute" in text:
            for n in walk(mod.tree):
                if isinstance(n, ast.Call) and dotted(n.func).endswith("with_loader_criteria") and n.args:
                    sym = proj.resolve(mod, n.args[0])
                    covered = []
                    if sym is not None and sym.kind == "class":
                        if sym.qualname in s.by_class:
                            covered = [s.by_class[sym.qualname]]
                        else:  # a mixin / base class: every model deriving from it
                            covered = [t for q, t in s.by_class.items() if _derives(proj, q, sym.qualname)]
                    for t in covered or ["*"]:
                        out.setdefault(t, f"global ORM filter (do_orm_execute + with_loader_criteria) at {mod.path}:{n.lineno}")
    setter = None
    for f in ctx.index.select("*.py"):
        if ctx.layout.is_test(f.path) or ctx.layout.is_migration(f.path) or not f.text:
            continue
        m = re.search(r"set_config\(\s*['\"][\w.]*(org|tenant)|SET\s+(LOCAL\s+)?[\w.]*(org|tenant)", f.text, re.IGNORECASE)
        if m:
            setter = f"{f.path}:{f.text[:m.start()].count(chr(10)) + 1}"
            break
    if setter:
        for f in ctx.index.select(["*.py", "*.sql"]):
            for m in re.finditer(r"CREATE\s+POLICY\s+\w+\s+ON\s+\"?(\w+)", f.text or "", re.IGNORECASE):
                line = f.text[:m.start()].count("\n") + 1
                out.setdefault(m.group(1), f"row-level security policy at {f.path}:{line}, org set per request at {setter}")
    return out


def _derives(proj: Project, cls_qual: str, base_qual: str) -> bool:
    modname, _, cname = cls_qual.partition(":")
    mod = proj.modules.get(modname)
    node = mod.defs.get(cname) if mod else None
    return isinstance(node, ast.ClassDef) and base_qual in proj.class_bases(mod, node)


def _trusted(taint: frozenset) -> bool:
    """From the caller's identity, or read from a stored row (whose own access is judged)."""
    rest = taint - {CONST}  # a constant fallback (``x or DEFAULT_ORG``) is not the request's choice
    return bool(rest) and all(a == CALLER or a.startswith(("access:", BYPASS)) for a in rest)


def _bypass(taint: frozenset) -> str:
    return next((a[len(BYPASS):] for a in taint if a.startswith(BYPASS)), "")


def _judge(s: Schema, acc: Access, table: str, checks: set, mech: dict, tokens: bool) -> tuple[str, str]:
    """The verdict of one access; a statement built differently by branches is judged by its worst branch."""
    if not acc.query.alts:
        return _judge_one(s, acc, table, checks, mech, tokens)
    cols = s.tables[table].columns if table in s.tables else {}
    alts = [q for q in (Query(**{**{k: getattr(acc.query, k) for k in acc.query.__dataclass_fields__}, "alts": ()}),
                        *acc.query.alts)
            # a branch filtering on a column this table lacks is not the one taken for it
            if not cols or all(c.column in cols or c.column.startswith("<") for c in q.conds if c.table == table)]
    out = [_judge_one(s, Access(q, acc.func, acc.chain), table, checks, mech, tokens) for q in alts or [acc.query]]
    rank = ORDER + ["org-from-request", SERVER_KEY, "identity", "fixed row"]
    worst = min(out, key=lambda x: rank.index(x[0]) if x[0] in rank else 0)
    reasons = list(dict.fromkeys(r for _, r in out))
    if worst[0] not in BAD and len(reasons) > 1:  # every branch is safe: say what each one does
        return worst[0], "depending on the branch taken: " + "; or ".join(reasons)
    return worst


def _judge_one(s: Schema, acc: Access, table: str, checks: set, mech: dict, tokens: bool) -> tuple[str, str]:
    q = acc.query
    org = s.org_col(table)
    where = f"{q.kind} on {table} at {q.file}:{q.line}"
    how = mech.get(table) or mech.get("*")
    if how and (q.kind != "text" or how.startswith("row-level")):  # ORM filters do not touch raw SQL
        return "scoped (org)", f"{where}: {how}"
    if (q.key, "<identity>") in checks:
        return "identity", f"{where}: the logging-in user's own row, checked against the password"
    org_conds = [c for c in q.conds if c.table == table and c.column in (org, "<org-via-subquery>")]
    org_conds += [c for c in q.conds if c.table in q.joined and c.table != table and c.column == s.org_col(c.table)]
    # the org table joined and filtered (``.join(Job.project).where(Project.name == project_name)``)
    org_conds += [c for c in q.conds if c.table == s.org_table and c.table in q.joined and s.org_table and (
        c.column in s.tables[s.org_table].pk or c.column in ORG_KEYS)]
    org_conds = [c for c in org_conds if not _is_column(c)]  # join conditions: see _membership_join
    validated = {a for k, a in checks if k == VALIDATED}
    checked = [c for c in org_conds if UNTRUSTED in c.taint and any(a in validated for a in c.taint)]
    if checked and not any(_trusted(c.taint) for c in org_conds):
        return "scoped (org)", (f"{where}: the org named by the request ({checked[0].via or checked[0].column}) passes "
                                f"a membership check that refuses other callers")
    trusted = [c for c in org_conds if _trusted(c.taint)]
    pk = s.tables[table].pk
    if q.kind in ("select", "get", "query") and not org_conds and (
            any(c.table == table and c.column in pk and c.taint and c.taint <= {CONST} for c in q.conds)
            or q.kind == "get" and q.id_taint and q.id_taint <= {CONST}):
        return "fixed row", f"{where}: one row chosen by a constant key in the code (not by the request)"
    if trusted:
        bypass = next((_bypass(c.taint) for c in trusted if _bypass(c.taint)), "")
        if bypass and not any(_trusted(c.taint) and not _bypass(c.taint) for c in org_conds):
            return "test-only bypass", (f"{where}: org from the caller's identity, except in the debug-only branch at "
                                        f"{bypass}, where a request header chooses it")
        how = "via a join" if all(c.table != table for c in trusted) else "directly"
        return "scoped (org)", f"{where}: org constrained to the caller's org {how}"
    member = _membership_join(s, q, table)
    if member:
        return "scoped (org)", f"{where}: {member}"
    if any(k == q.key and a == "<authorized>" for k, a in checks):
        return "scoped (org)", f"{where}: fetched, then passed with the caller to an authorization call that raises on refusal"
    if any(k == q.key and (a == org or _orgish(a)) for k, a in checks):
        return "scoped (org)", f"{where}: fetched, then its {org} compared to the caller's"
    cols = s.tables[table].columns
    own = [c for c in q.conds if c.table == table and _trusted(c.taint) and not _bypass(c.taint) and (
        IDENTITY_ATTR.search(c.via) if c.via else IDENTITY_ATTR.search(c.column)) and c.column not in s.tables[table].pk
        and (c.column in cols or not cols)]
    if own:
        return "scoped (owner)", f"{where}: {table}.{own[0].column} equals the caller's own {own[0].via or 'identity'}"
    by_pk = [c for c in q.conds if c.table == table and c.column in s.tables[table].pk and c.taint and c.taint <= {CALLER}]
    if by_pk:
        if IDENTITY_ATTR.search(by_pk[0].via or "") and not (by_pk[0].via or "").endswith(("_id", "_ids")) or \
                by_pk[0].via in ("user_id", "customer_id", "account_id", "member_id"):
            return "scoped (owner)", f"{where}: the caller's own row ({by_pk[0].via})"
        return "scoped (org)", f"{where}: loaded by an id held by the caller's own record ({by_pk[0].via or 'identity'})"
    if q.kind == "get" and q.id_taint and q.id_taint <= {CALLER}:
        return "scoped (owner)", f"{where}: loaded by the caller's own id"
    owner_checks = [a for k, a in checks if k == q.key and a != "<identity>" and IDENTITY_ATTR.search(a)]
    if owner_checks:
        return "scoped (owner)", f"{where}: fetched, then its {owner_checks[0]} compared to the caller's"
    values = frozenset().union(q.id_taint, *(c.taint for c in q.conds if c.table in (table, *q.joined)))
    if SIGNED in values and UNTRUSTED not in values:
        return "signed webhook", f"{where}: looked up by a value of a signature-verified payload"
    if TOKEN in values and UNTRUSTED not in values:
        return "capability token", f"{where}: looked up by an id from a signed token"
    tok = [c for c in q.conds if c.table == table and TOKEN_COLUMN.search(c.column) and UNTRUSTED in c.taint]
    if tok and tokens:
        return "capability token", f"{where}: looked up by its unguessable `{tok[0].column}` (the app generates tokens with `secrets`)"
    if org_conds:
        t = frozenset().union(*(c.taint for c in org_conds))
        if UNTRUSTED in t:
            return "org-from-request", f"{where}: org value comes from the request (path/query/body), not the identity"
        if t <= {CONST}:
            if q.kind == "insert":
                return "unknown", f"{where}: the row is created in a fixed organisation"
            return "unscoped", f"{where}: org compared to a constant"
        return "unknown", f"{where}: org value of unknown origin"
    wrong = [c for c in q.conds if c.column == s.org_col(c.table) and c.table not in (table, *q.joined)]
    path_ids = [c for c in q.conds if c.table == table and c.column in s.tables[table].pk and any(
        a.startswith("path:") for a in c.taint)]
    if (q.kind == "get" or (q.kind == "query" and q.id_taint)) and any(a.startswith("path:") for a in q.id_taint) \
            or path_ids:
        return "id-substitution", f"{where}: loaded by a path id with no org check"
    if wrong:
        return "unscoped", f"{where}: org filter on {wrong[0].table}, which is not joined to {table}"
    if q.kind == "text":
        return "unscoped", f"{where}: raw SQL without an {org} condition"
    if q.kind == "insert":
        return "scoped (org)", where
    if _server_keyed(s, q, table):
        return SERVER_KEY, f"{where}: keyed by an id the code holds, not one the request sent (its origin was not traced)"
    return "unscoped", f"{where}: no {org} condition"


ORG_KEYS = ("id", "name", "slug", "uuid")  # columns naming one organisation row


def _is_column(c) -> bool:
    return any(a.startswith(COLUMN) for a in c.taint)


def _membership_join(s: Schema, q: Query, table: str) -> str:
    """``select(Dataset).join(WorkspaceUser, and_(WorkspaceUser.workspace_id == Dataset.workspace_id,
    WorkspaceUser.user_id == user.id))``: joined on the org column to a table whose rows are
    restricted to the caller's own (a membership): only orgs the caller belongs to. Evidence, or ""."""
    org = s.org_col(table)
    for c in q.conds:
        if c.table != table or c.column != org or not _is_column(c):
            continue
        for a in c.taint:
            other, _, col = a[len(COLUMN):].partition(".")
            if other == table or other not in (*q.joined, *q.models) or col != s.org_col(other):
                continue
            ot = s.tables.get(other)
            own = [x for x in q.conds if x.table == other and _trusted(x.taint) and not _bypass(x.taint) and x.taint
                   <= {CALLER, CONST} and IDENTITY_ATTR.search(x.via or x.column) and ot and x.column not in ot.pk]
            if own:
                return (f"joined to {other} on {org}, whose rows are restricted to the caller's own "
                        f"({other}.{own[0].column}): only organisations the caller belongs to")
    return ""


def _server_keyed(s: Schema, q: Query, table: str) -> bool:
    """Bound by its primary key or a foreign key to a value whose every origin is server-side
    (a row or object the code already holds, ``dataset.id`` of a record being processed) and
    nothing the request sent: the request cannot choose the row through this query. Where
    that value came from was not traced (a helper's result, an attribute of an unresolved
    object), so the query is judged with the endpoint's other accesses."""
    t = s.tables.get(table)
    if t is None:
        return False
    keys = [c.taint or frozenset({OTHER}) for c in q.conds if c.table == table and not _is_column(c) and (
        c.column in t.pk or c.column in t.fks())]
    if q.kind in ("get", "query") and q.id_taint:
        keys.append(q.id_taint)
    return bool(keys) and all(OTHER in k and k <= {OTHER, CONST} for k in keys)


PASSWORD_COLUMN = re.compile(r"(?i)password|passwd|pwd_hash")
# a standalone account table (no foreign key, no org) authenticated by a token it stores: the global
# accounts of the callers (``users.token_hash``), not data shared by every organisation
CREDENTIAL_COLUMN = re.compile(r"(?i)^(hashed_)?(api_)?(token|api_key)(_hash(ed)?)?$")


def _identity_tables(s: Schema) -> set:
    """Tables of the logging-in principal (they hold a password column, or are standalone
    accounts holding their access token)."""
    key = ("identity-tables", id(s))
    if key not in _MEMO:
        _MEMO[key] = {n for n, t in s.tables.items() if any(PASSWORD_COLUMN.search(c) for c in t.columns) or (
            not t.fks() and not s.org_col(n) and n != s.org_table and any(CREDENTIAL_COLUMN.match(c) for c in t.columns))}
    return _MEMO[key]


def _tenant_parents(s: Schema, table: str) -> dict:
    """{fk column: parent table} of a table without an org column whose rows belong to a tenant
    row (``job_notes.job_id -> jobs``); identity tables' children (sessions, tokens) excluded."""
    t = s.tables.get(table)
    if t is None or table == s.org_table or s.org_col(table):
        return {}
    ident = _identity_tables(s)
    return {c: p for c, p in t.fks().items() if p in s.tables and s.org_col(p) and p not in ident}


def _global_table(s: Schema, table: str) -> bool:
    """Shared by every organisation: no org column and no foreign key at all."""
    t = s.tables.get(table)
    return t is not None and table != s.org_table and not s.org_col(table) and not t.fks() and bool(
        s.org_table) and table not in _identity_tables(s)


def _judge_orgless(s: Schema, acc: Access, table: str, checks: set, mech: dict, route) -> tuple[str, str] | None:
    """Tenant data without an org column (a child of a tenant row), and global tables
    written by tenant roles; None when the table holds no tenant data."""
    q = acc.query
    where = f"{q.kind} on {table} at {q.file}:{q.line}"
    if table == s.org_table:
        return _judge_org_row(s, acc, table, checks, route)
    parents = _tenant_parents(s, table)
    if not parents:
        if _global_table(s, table) and q.kind in ("insert", "update", "delete") and route.auth != "none" \
                and not s.tenancy_inferred:
            return "unscoped", (f"{where}: `{table}` has no org column and is shared by every organisation, "
                                f"yet a tenant route ({route.auth}) writes it")
        return None
    if mech.get(table) or mech.get("*"):
        return "scoped (org)", f"{where}: {mech.get(table) or mech.get('*')}"
    # a relationship keyword (``Record(dataset=dataset)``) names the parent row as its foreign key does
    parents.update({c.column: s.relationship_table(table, c.column) for c in q.conds if c.table == table and c.column
                    not in parents and s.relationship_table(table, c.column) in parents.values()})
    fk = [c for c in q.conds if c.table == table and c.column in parents]
    if any(c.taint and c.taint <= {CALLER} for c in fk):
        return "scoped (org)", f"{where}: its parent id comes from the caller's identity"
    joined = [c for c in q.conds if c.table in q.joined and c.table in parents.values() and c.column == s.org_col(c.table)]
    if any(_trusted(c.taint) for c in joined):
        return "scoped (org)", f"{where}: joined to its parent {joined[0].table}, whose org is the caller's"
    # fetched, then checked: ``authorize(user, FieldPolicy.update(field))`` (the policy reads
    # ``field.dataset.workspace_id``), or ``if field.dataset.org_id != user.org_id: raise``
    if any(k == q.key and a == "<authorized>" for k, a in checks):
        return "scoped (org)", f"{where}: fetched, then passed with the caller to an authorization call that raises on refusal"
    if any(k == q.key and _orgish(a) for k, a in checks):
        return "scoped (org)", f"{where}: fetched, then its parent's org compared to the caller's"
    parent = "/".join(sorted(set(parents.values())))
    pk = s.tables[table].pk
    if (q.kind == "get" and any(a.startswith("path:") for a in q.id_taint)) or any(
            c.table == table and c.column in pk and any(a.startswith("path:") for a in c.taint) for c in q.conds):
        return "id-substitution", f"{where}: loaded by a path id; `{table}` has no org column and its {parent} row is never checked"
    if _server_keyed(s, q, table):
        return SERVER_KEY, f"{where}: keyed by an id the code holds, not one the request sent (its origin was not traced)"
    return "unscoped", f"{where}: `{table}` has no org column and is not constrained through its {parent} row"


def _judge_org_row(s: Schema, acc: Access, table: str, checks: set, route) -> tuple[str, str] | None:
    """A read / update / delete of one organisation row chosen by its key (``GET /workspaces/{id}``,
    ``DELETE /orgs/?org_id=``): the org must be the caller's (from the identity, or a request
    value that passed a membership / authorization check); a request value that did not is
    another organisation's row (``platform`` when only platform operators reach the route).
    Listings, creations, keys the code holds, and reads resolving the tenant a request names by
    its slug / name rather than its primary key (``/{tenant_slug}/login``: routing, the tenant's data are judged by the
    queries that follow) are not judged here (None)."""
    q = acc.query
    where = f"{q.kind} on {table} at {q.file}:{q.line}"
    pk = s.tables[table].pk if table in s.tables else set()
    keys = [c.taint for c in q.conds if c.table == table and not _is_column(c) and (c.column in pk or c.column in ORG_KEYS)]
    if q.kind in ("get", "query") and q.id_taint:
        keys.append(q.id_taint)
    keys = [k for k in keys if k]
    if q.kind == "insert" or not keys or (q.kind in ("select", "get", "query") and route.auth == "none"):
        return None
    validated = {a for k, a in checks if k == VALIDATED}
    if any(k == q.key and a == "<authorized>" for k, a in checks):
        return "scoped (org)", f"{where}: the organisation row, fetched then passed with the caller to an authorization call"
    if all(k <= {CALLER, CONST} and CALLER in k for k in keys):
        return "scoped (org)", f"{where}: the caller's own organisation row (or one whose membership was checked)"
    if any(UNTRUSTED in k for k in keys):
        if all(any(a in validated for a in k) for k in keys if UNTRUSTED in k):
            return "scoped (org)", f"{where}: the organisation named by the request passes a membership check"
        if q.kind in ("select", "get", "query"):
            # resolving the organisation a request names (``/{tenant_slug}/...``, ``projects_names``) is
            # routing, its data are judged by the queries that follow; only a read by the row's own
            # primary key taken from the request is the org row's IDOR
            by_pk = (q.kind != "select" and UNTRUSTED in q.id_taint) or any(
                c.table == table and c.column in pk and UNTRUSTED in c.taint for c in q.conds)
            if not by_pk:
                return None
        if any(a.startswith("path:") for k in keys for a in k):
            return "id-substitution", (f"{where}: the organisation row itself, chosen by a path id with no check "
                                       f"that the caller belongs to it")
        return "unscoped", f"{where}: the organisation row itself, chosen by a request value with no membership check"
    return None


def _derived_from(s: Schema, q: Query, table: str) -> set:
    """Keys of the accesses whose row ids this query is bound to (``Job.id == job.id`` after
    ``job`` was fetched, ``session.get(Job, job.id)``, ``JobNote.job_id == job.id``)."""
    out = set()
    t = s.tables.get(table)
    if t is None:
        return out
    keyed = [q.id_taint] if q.kind in ("get", "query") and q.id_taint else []
    org = s.org_col(table)
    keyed += [(c.taint, c.via) for c in q.conds if c.table == table and c.column != org and (
        c.column in t.pk or c.column in t.fks() or (q.kind == "insert" and s.relationship_table(table, c.column)))]
    for item in keyed:
        taint, via = item if isinstance(item, tuple) else (item, "")
        rest = taint - {OTHER, CONST}
        fetched = {a[7:] for a in rest if a.startswith("access:")}
        # ``repo.id`` of a row that one branch fetched and another created: the other origins are
        # those of the row's other fields (its name from the request), not of its id
        if fetched and (len(fetched) == len(rest) or via in t.pk or via == "id"):
            out |= fetched
    return out


SEVERE = ("id-substitution", "unscoped")
BAD = ("id-substitution", "unscoped", "unknown")
# worst first; among the safe classes the broadest scope an endpoint reaches wins (owner-scoped rows
# beside org-scoped ones make an org-scoped endpoint)
VERDICTS = ORDER = ["id-substitution", "unscoped", "unknown", "test-only bypass", "capability token", "signed webhook",
                    "scoped (org)", "scoped (owner)", "platform", "no tenant data"]
_QUIET = ("identity", "fixed row")  # statuses that are not tenant data at the endpoint
# a query keyed by a server-held id of untraced origin: judged with the endpoint's other accesses
# (the endpoint is "unknown" when it has no other)
SERVER_KEY = "server key"


def _tokens_generated(ctx) -> bool:
    """The app mints unguessable tokens (``secrets.token_urlsafe`` / ``token_hex`` / ``token_bytes``)."""
    for f in ctx.index.select("*.py"):
        if f.text and "token_" in f.text and not ctx.layout.is_test(f.path) and re.search(
                r"\btoken_(urlsafe|hex|bytes)\(", f.text):
            return True
    return False


def _fold_derived(s: Schema, avs: list) -> None:
    """A query bound to the id of a row this endpoint already fetched inherits that row's
    verdict: scoped when the row was validated; when it was not, the defect is the first
    query (``derived`` marks the follower so that it is not reported again)."""
    by_key = {}
    for a in avs:
        by_key.setdefault(a.access.query.key, a)
    for _ in range(3):
        changed = False
        for a in avs:
            if a.derived or a.status == "identity":
                continue
            src = [by_key[k] for k in _derived_from(s, a.access.query, a.table) if k in by_key and by_key[k] is not a]
            if src and all(x.status == "identity" for x in src):  # the logging-in user's memberships
                a.status, a.source, changed = "identity", src[0].access.query.key, True
                a.reason = f"{a.access.query.kind} on {a.table} at {a.access.query.file}:{a.access.query.line}: rows of the logging-in user"
                continue
            if not src or a.status not in BAD:
                continue
            first = min(src, key=lambda x: ORDER.index(x.status) if x.status in ORDER else len(ORDER))
            q0 = first.access.query
            a.source = q0.key
            if first.status in BAD:
                a.derived = f"{q0.file}:{q0.line}"
                a.status = first.status
            else:
                a.status = first.status
                a.reason = (f"{a.access.query.kind} on {a.table} at {a.access.query.file}:{a.access.query.line}: by the "
                            f"id of the row fetched at {q0.file}:{q0.line} ({first.status})")
            changed = True
        if not changed:
            break
