"""PERF-001 (static fallback): indexes read from the Alembic migrations."""
from __future__ import annotations

import ast
import re

from ..findings import Severity, db_not_verified
from ..code.pyast import dotted, of_type, string_constants
from ..facts.migration_schema import schema_for
from ..facts.orm_schema import schema as orm_schema
from . import check

DEFAULT_REQUIRED = ["bookings(starts_at)", "email_events(booking_id, email_type)"]
SPEC = re.compile(r"^\s*(\w+)\s*\(([^)]*)\)\s*$")


def parse_required(items) -> list[tuple[str, tuple[str, ...]]]:
    out = []
    for item in items:
        m = SPEC.match(item or "")
        if m:
            out.append((m.group(1), tuple(c.strip() for c in m.group(2).split(",") if c.strip())))
    return out


@check("PERF-001", "performance", "Indexes on foreign keys, tenant column and hot queries")
def indexes(ctx):
    """Static fallback of the database check: the schema as the Alembic migrations build
    it (``auditlib.facts.migration_schema``: ``op.create_table`` / ``create_index`` /
    ``create_unique_constraint`` / raw ``CREATE INDEX`` replayed base to head), then:

    - every foreign key whose columns are not the leading columns of some index (a
      primary key and a unique constraint count) — RECOMMENDATION (joins and parent
      deletes scan the child table);
    - every table that has the org column (config ``org_column``, default ``org_id``)
      without an index led by it (a composite index or unique constraint led by it
      counts) — WARNING (every tenant-scoped query scans the table), when the app's code
      filters that table by the org column: ``Model.org_id == x`` / ``.in_()``,
      ``select(Model).filter_by(org_id=...)``, ``cls.org_id`` in a base class the model
      inherits (a generic access predicate), loading the org's relationship to it
      (``selectinload(Org.runs)``), joining it to the org table through its relationship
      (``select(Run).join(Run.project).where(Project.name == ...)``), or SQL text ``FROM t ... WHERE ...
      org_id``; the message names one such place. A table the app reads but never by
      the org column (an org's child reached through its parent, a log written by
      org) is not flagged; a table no model or SQL text names is flagged as "could not
      be told";
    - required indexes (config ``required_indexes``, default
      ``bookings(starts_at)``, ``email_events(booking_id, email_type)``) missing on
      tables that exist — RECOMMENDATION; an index led by the org column followed by
      the required columns counts (tenant-scoped queries use it).

    Not flagged: tables dropped by later revisions, partial indexes are not counted as
    covering, required indexes on tables that do not exist. No migrations found is a
    "not verified" WARNING. Findings say they come from the migrations, not the database;
    when the audit has a database (``--db``), this fallback stays silent and the db half
    reports.
    """
    chk = indexes.check
    if not ctx.layout.migration_files:
        yield db_not_verified(ctx, chk.id, chk.area, "indexes (static fallback)",
                           "no Alembic revision files found to read the schema from")
        return
    if ctx.db_stage_owns():
        return  # a database is available: the db-source half of this check reads the real catalogue
    schema = schema_for(ctx)
    org = ctx.config.get("org_column", "org_id")
    reads = None  # table -> (the app names it, where it filters it by org), computed on demand
    for t in schema.tables.values():
        for fk in t.foreign_keys:
            if fk.columns and t.covered(fk.columns) is None:
                cols = ", ".join(fk.columns)
                yield chk.finding(ctx, Severity.RECOMMENDATION, f"Foreign key {t.name}({cols}) is not indexed",
                                  f"No index on {t.name} starts with ({cols}) (read from the migrations): joins to "
                                  f"{fk.ref_table} and deletes of {fk.ref_table} rows scan {t.name}.",
                                  f"Add `op.create_index('ix_{t.name}_{'_'.join(fk.columns)}', '{t.name}', "
                                  f"{list(fk.columns)!r})` in a new revision.", fk.file, fk.line,
                                  tables=[t.name], key=f"fk:{t.name}:{cols}")
        if org in t.columns and t.covered((org,)) is None:
            col = t.columns[org]
            if reads is None:
                reads = _org_reads(ctx, org)
            known, where = reads.get(t.name, (False, None))
            if known and where is None:
                continue  # the app reads this table, never filtered by the org column
            how = (f"queries filter it by {org} (e.g. {where}), and each such query scans the whole table"
                   if where else "whether queries filter it by the org column could not be told (no ORM model "
                   "or SQL text of the app names the table); if they do, each one scans the whole table")
            yield chk.finding(ctx, Severity.WARNING, f"Tenant column {t.name}.{org} is not indexed",
                              f"No index on {t.name} starts with {org} (read from the migrations; PostgreSQL "
                              f"does not index foreign key columns by itself): {how}.",
                              f"Add `op.create_index('ix_{t.name}_{org}', '{t.name}', ['{org}'])` (or a composite "
                              f"index led by {org}).", col.file or t.file, col.line or t.line, tables=[t.name], key=f"org:{t.name}")
    for table, cols in parse_required(ctx.config.get("required_indexes", DEFAULT_REQUIRED)):
        t = schema.table(table)
        if t is None or not set(cols) <= set(t.columns):
            continue
        if t.covered(cols) is None and not (org in t.columns and _led_by_org(t, org, cols)):
            yield chk.finding(ctx, Severity.RECOMMENDATION, f"Required index {table}({', '.join(cols)}) is missing",
                              f"The audit profile expects an index on {table}({', '.join(cols)}) for a hot query; "
                              "the migrations create none with those leading columns.",
                              f"Add `op.create_index('ix_{table}_{'_'.join(cols)}', '{table}', {list(cols)!r})`.",
                              t.file, t.line, tables=[table], key=f"required:{table}")


def _led_by_org(t, org, cols) -> bool:
    want = set(cols)
    return any(ix.columns[:1] == (org,) and set(ix.columns[1:1 + len(want)]) == want and not ix.partial
               for ix in t.indexes)


def _org_reads(ctx, org: str) -> dict[str, tuple[bool, str | None]]:
    """table -> (the app's code names the table, one place that filters it by ``org``)."""
    orm = orm_schema(ctx)
    classes: dict[str, str] = {q.rsplit(":", 1)[-1]: t for q, t in orm.by_class.items()}
    sources = [s for s in ctx.layout.app_sources(ctx.index) if s.tree is not None
               and s.path not in ctx.layout.migration_files]
    out: dict[str, tuple[bool, str | None]] = {t: (True, None) for t in classes.values()}

    def hit(table, src, node):
        if table in out and out[table][1] is None:
            out[table] = (True, f"`{ast.unparse(node)[:60]}` at {src.path}:{node.lineno}")

    bases: dict[str, list[str]] = {}  # class name -> bare names of its bases
    model_bases: dict[tuple[str, str], list[str]] = {}  # (file, class) -> its bases
    generic: set[str] = set()  # classes whose methods filter cls.<org> (access predicates)
    org_rels = {attr: target for t in orm.tables.values() if t.name == orm.org_table
                for attr, target in t.relationships.items()}
    for src in sources:
        for cls in of_type(src.tree, ast.ClassDef):
            names = [dotted(b).rsplit(".", 1)[-1] for b in cls.bases]
            bases.setdefault(cls.name, []).extend(names)  # base classes: every class of that name
            model_bases[(src.path, cls.name)] = names
            own = any(n.attr == org and isinstance(n.value, ast.Name) and n.value.id in ("cls", "self")
                      and isinstance(n.ctx, ast.Load) for n in of_type(cls, ast.Attribute))
            dynamic = any(isinstance(c.func, ast.Name) and c.func.id == "getattr" and len(c.args) > 1
                          and getattr(c.args[1], "value", None) == org for c in of_type(cls, ast.Call))
            if own or dynamic:
                generic.add(cls.name)
        funcs = (ast.FunctionDef, ast.AsyncFunctionDef)
        tops = [m for st in src.tree.body for m in ([st] if isinstance(st, funcs) else
                                                    st.body if isinstance(st, ast.ClassDef) else [])
                if isinstance(m, funcs)]
        in_functions = [n for f in tops for n in of_type(f, ast.Attribute)]  # code, not model declarations
        for n in in_functions:
            if n.attr == org and isinstance(n.value, ast.Name) and n.value.id in classes \
                    and isinstance(n.ctx, ast.Load):
                hit(classes[n.value.id], src, n)  # Model.org_id in a filter (or select list)
            elif n.attr in org_rels and org_rels[n.attr] in classes and isinstance(n.value, ast.Name) \
                    and classes.get(n.value.id) == orm.org_table:
                hit(classes[org_rels[n.attr]], src, n)  # selectinload(Org.runs): SELECT ... WHERE org_id IN
        for c in of_type(src.tree, ast.Call):
            if isinstance(c.func, ast.Attribute) and c.func.attr in ("join", "outerjoin") and c.args \
                    and isinstance(c.args[0], ast.Attribute) and isinstance(c.args[0].value, ast.Name):
                table = classes.get(c.args[0].value.id)  # select(Job).join(Job.project).where(Project.x == ...)
                rel = orm.tables[table].relationships.get(c.args[0].attr) if table in orm.tables else None
                if rel is not None and classes.get(rel) == orm.org_table:
                    hit(table, src, c.args[0])
            if isinstance(c.func, ast.Attribute) and c.func.attr == "filter_by" \
                    and any(k.arg == org for k in c.keywords):
                for inner in of_type(c.func.value, ast.Call):
                    if dotted(inner.func).rsplit(".", 1)[-1] in ("select", "query") and inner.args \
                            and isinstance(inner.args[0], ast.Name) and inner.args[0].id in classes:
                        hit(classes[inner.args[0].id], src, c)
        for node, text in string_constants(src):
            low = text.lower()
            if org in low and "where" in low:
                for m in re.finditer(r"\b(?:from|join|update)\s+\"?(\w+)", low):
                    if m.group(1) in orm.tables or m.group(1) in classes.values():
                        out.setdefault(m.group(1), (True, None))
                        if out[m.group(1)][1] is None:
                            out[m.group(1)] = (True, f"SQL text at {src.path}:{node.lineno}")
    for qual, table in orm.by_class.items():  # models inheriting a generic org filter
        name = qual.rsplit(":", 1)[-1]
        t = orm.tables.get(table)
        seen, todo = set(), list(model_bases.get((t.file, name), []) if t is not None else [])
        while todo:
            b = todo.pop()
            if b in seen:
                continue
            seen.add(b)
            if b in generic:
                out[table] = out[table] if out[table][1] else (True, f"`cls.{org}` filtered in base class `{b}`")
                break
            todo += bases.get(b, [])
    return out
