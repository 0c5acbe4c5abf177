"""Whether a table's unindexed org column matters, from the application's queries: shared by
PERF-001's static half (indexes replayed from the migrations, plus the ORM's declared ones)
and its db half (the migrated database's catalogue), so both judge the same evidence with
the same rule and report the same defect under the same fingerprint.

- :func:`orm_indexes`: the indexes each ORM model declares (``__table_args__`` ``Index`` /
  ``UniqueConstraint``, ``mapped_column(index=True)``, mixins included) and its enum /
  boolean columns;
- :class:`OrgIndexRule`: the reads of each table by the org column (``Model.org_id == x``,
  ``filter_by``, a join through the org relationship, SQL text, a base class's generic
  ``cls.org_id``), each classified as the query's access path or an extra predicate, and
  the finding at the severity they justify (the rule is in PERF-001's docstring). Which
  columns are indexed comes from the caller: the schema source of its half.

AST only; the target is never imported.
"""
from __future__ import annotations

import ast
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from ..code.pyast import dotted, literal, of_type, parent_map, string_constants, walk
from ..code.pymodules import project
from ..findings import Finding, Location, Severity
from .migration_schema import on_postgres, schema_for
from .orm_schema import schema as orm_schema


def org_column_at(ctx, table: str, org: str) -> tuple[str, int] | None:
    """Where the migrations define ``table``'s org column for PostgreSQL (else the table):
    the location of the org-column finding in both halves, so they fingerprint alike."""
    t = schema_for(ctx).table(table)
    if t is None:
        return None
    col = t.columns.get(org)
    return (col.file or t.file, col.line or t.line) if col is not None else (t.file, t.line)


class OrgIndexRule:
    """The severity of ``table``'s org column lacking an index led by it, from the queries.

    ``indexed_of(table)``: the columns that lead some usable index of the table (the
    caller's schema source); ``unique_keys_of(table)``: its unique keys (columns);
    ``small_of(table)``: columns the schema knows to hold a handful of values (enum,
    boolean), added to those the ORM model declares so.
    """

    def __init__(self, ctx, org: str, indexed_of: Callable[[str], set[str]],
                 unique_keys_of: Callable[[str], Iterable[tuple[str, ...]]],
                 small_of: Callable[[str], set[str]] | None = None):
        self.ctx, self.org = ctx, org
        self.indexed_of, self.unique_keys_of = indexed_of, unique_keys_of
        self.small_of = small_of or (lambda table: set())
        self._reads: dict[str, _Reads] | None = None

    def reads(self, table: str) -> _Reads:
        """How the app reads ``table`` by the org column (computed once, on first use)."""
        if self._reads is None:
            self._reads = _org_reads(self.ctx, self.org, self.indexed_of)
        return self._reads.get(table, _Reads(known=False))

    def bounded(self, table: str) -> tuple[str, ...] | None:
        """A unique key (org, enum or boolean columns): at most a handful of rows per org."""
        small = orm_indexes(self.ctx)[1].get(table, set()) | self.small_of(table)
        org = self.org
        return next((tuple(k) for k in self.unique_keys_of(table)
                     if org in k and len(k) > 1 and set(k) - {org} <= small), None)

    def finding(self, chk, table: str, where: tuple[str, int | None], basis: str, **kw) -> Finding | None:
        """The finding for ``table``'s unindexed org column at ``where`` (``basis``: where the
        index list was read), or None when the app reads the table but never by the org column."""
        r = self.reads(table)
        if r.known and not r.sites:
            return None
        return _org_finding(self.ctx, chk, table, where, self.org, r, self.bounded(table), basis, **kw)


def _org_finding(ctx, chk, table: str, where: tuple[str, int | None], org: str, r: _Reads,
                 bounded: tuple[str, ...] | None, basis: str, **extra) -> Finding:
    """The finding for ``table``'s unindexed org column, at the severity the queries justify."""
    base = f"No index on {table} starts with {org} ({basis})"
    fix = (f"Add `op.create_index('ix_{table}_{org}', '{table}', ['{org}'])` (or a composite index led by "
           f"{org}, e.g. ({org}, created_at) for a paginated listing); on a table that already holds rows, build "
           "it with `postgresql_concurrently=True` inside `op.get_context().autocommit_block()`.")
    kw = {"tables": [table], "key": f"org:{table}", **extra}  # one key for both halves: one defect
    selective = sorted((s for s in r.sites if s.selective), key=lambda s: -s.listing)
    if selective and bounded:
        s = selective[0]
        return chk.finding(ctx, Severity.RECOMMENDATION, f"Tenant column {table}.{org} is not indexed",
                           f"{base}; {s.text} reads {table} by {org}, but the unique key ({', '.join(bounded)}) "
                           f"allows only a handful of rows per org (its other columns are enums or booleans): the "
                           "scan stays small until the number of orgs is large.", fix, *where, **kw)
    if selective:
        s = selective[0]
        more = f" (and {len(selective) - 1} more such place{'s' if len(selective) > 2 else ''})" \
            if len(selective) > 1 else ""
        f = chk.finding(ctx, Severity.WARNING, f"Tenant column {table}.{org} is not indexed",
                        f"{base}, and {s.text}{more} reads {table} by {org} with no other indexed predicate: each "
                        f"such query scans the whole table (every tenant's rows) and slows down as the table "
                        "grows.", fix, *where, **kw)
        src = ctx.index.get(s.file)
        f.locations.append(Location(s.file, s.line, s.line, (src.line(s.line) if src is not None else "")[:300]))
        return f
    if not r.known:
        how = ("whether queries filter it by the org column could not be told (no ORM model or SQL text of the app "
               "names the table)")
    else:
        whys = list(dict.fromkeys(s.why for s in r.sites))
        how = ("no query was found that reads it by the org column as its access path: "
               + "; ".join(whys[:3]) + (f"; {len(whys) - 3} more" if len(whys) > 3 else ""))
    return chk.finding(ctx, Severity.RECOMMENDATION, f"Tenant column {table}.{org} is not indexed",
                       f"{base}; {how}. An index led by {org} becomes necessary once a query lists or searches "
                       f"{table} by {org} alone.", fix, *where, **kw)



# --- ORM-declared indexes -------------------------------------------------------------

_INDEX_CALLS = {"Index", "UniqueConstraint", "PrimaryKeyConstraint"}
_COLUMN_CALLS = {"mapped_column", "Column", "Field"}


def _col_name(node) -> str | None:
    """The column an ``Index(...)`` argument names: ``"org_id"``, ``org_id``,
    ``Model.org_id``, ``created_at.desc()``; None for an expression."""
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in ("desc", "asc"):
        node = node.func.value
    v = literal(node)
    if isinstance(v, str):
        return v
    if isinstance(node, (ast.Name, ast.Attribute)):
        return dotted(node).rsplit(".", 1)[-1]
    return None


def _pg_nodes(stmts) -> list[ast.AST]:
    """Every node of ``stmts`` that PostgreSQL sees: the other dialect's branch of an
    ``if`` on the dialect (``if settings.engine is Choice.POSTGRES: ... else: ...``) left out."""
    out: list[ast.AST] = []
    for st in stmts:
        if isinstance(st, ast.If):
            pg = on_postgres(st.test)
            if pg is not False:
                out += _pg_nodes(st.body)
            if pg is not True:
                out += _pg_nodes(st.orelse)
        elif isinstance(st, (ast.FunctionDef, ast.AsyncFunctionDef)):
            out += _pg_nodes(st.body)  # a declared_attr ``__table_args__``
        else:
            out += walk(st)
    return out


def _class_indexes(proj, mod, cls: ast.ClassDef, depth: int = 0) -> list[tuple[tuple[str, ...], bool, int]]:
    """(columns, unique, line) of every index the model declares: ``__table_args__``
    ``Index`` / ``UniqueConstraint`` / ``PrimaryKeyConstraint``, and columns declared with
    ``index=True`` / ``unique=True`` / ``primary_key=True`` (mixins and bases included)."""
    out = []
    for b in cls.bases:
        sym = proj.resolve(mod, b.value if isinstance(b, ast.Subscript) else b)
        if sym is not None and sym.kind == "class" and sym.module is not None and depth < 6:
            out += _class_indexes(proj, sym.module, sym.node, depth + 1)
    for st in cls.body:
        target = None
        if isinstance(st, ast.AnnAssign) and isinstance(st.target, ast.Name):
            target = st.target.id
        elif isinstance(st, ast.Assign) and len(st.targets) == 1 and isinstance(st.targets[0], ast.Name):
            target = st.targets[0].id
        for n in _pg_nodes([st]):
            if not isinstance(n, ast.Call):
                continue
            kind = dotted(n.func).rsplit(".", 1)[-1]
            if kind in _INDEX_CALLS:
                args = n.args[1:] if kind == "Index" else n.args
                cols = tuple(c for c in (_col_name(a) for a in args) if c)
                kw = next((k.value for k in n.keywords if k.arg in ("postgresql_where", "sqlite_where")), None)
                if cols and kw is None:
                    out.append((cols, kind != "Index" or literal(next((k.value for k in n.keywords
                                                                        if k.arg == "unique"), None)) is True,
                                n.lineno))
            elif kind in _COLUMN_CALLS and target and not target.startswith("__") and n is getattr(st, "value", None):
                flags = {k.arg for k in n.keywords if k.arg in ("index", "unique", "primary_key")
                         and literal(k.value) is True}
                if flags:
                    out.append(((target,), bool(flags & {"unique", "primary_key"}), n.lineno))
    return out


def _class_small_domain(proj, mod, cls: ast.ClassDef, depth: int = 0) -> set[str]:
    """Columns of the model (bases included) whose type has a handful of values: an enum
    (``Enum(...)``, ``SqlEnum(Kind)``, ``EnumAsString(...)``) or a boolean."""
    out: set[str] = set()
    for b in cls.bases:
        sym = proj.resolve(mod, b.value if isinstance(b, ast.Subscript) else b)
        if sym is not None and sym.kind == "class" and sym.module is not None and depth < 6:
            out |= _class_small_domain(proj, sym.module, sym.node, depth + 1)
    for st in cls.body:
        if isinstance(st, ast.AnnAssign) and isinstance(st.target, ast.Name) and isinstance(st.value, ast.Call):
            name, call = st.target.id, st.value
        elif isinstance(st, ast.Assign) and len(st.targets) == 1 and isinstance(st.targets[0], ast.Name) \
                and isinstance(st.value, ast.Call):
            name, call = st.targets[0].id, st.value
        else:
            continue
        if dotted(call.func).rsplit(".", 1)[-1] not in _COLUMN_CALLS:
            continue
        types = [dotted(a).rsplit(".", 1)[-1] for a in call.args if isinstance(a, (ast.Call, ast.Name, ast.Attribute))]
        if any("Enum" in t or t == "Boolean" for t in types):
            out.add(name)
    return out


def orm_indexes(ctx) -> tuple[dict[str, list[tuple[tuple[str, ...], bool, int]]], dict[str, set[str]]]:
    """table -> (columns, unique, line) of the indexes its ORM model declares; table -> its
    enum / boolean columns (computed once per context)."""
    cached = ctx.__dict__.get("_orm_indexes")
    if cached is not None:
        return cached
    orm = orm_schema(ctx)
    proj = project(ctx)
    out: dict[str, list] = {}
    small: dict[str, set[str]] = {}
    for qual, table in orm.by_class.items():
        modname, _, clsname = qual.rpartition(":")
        mod = proj.module(modname)
        node = mod.defs.get(clsname) if mod is not None else None
        if isinstance(node, ast.ClassDef):
            out.setdefault(table, []).extend(_class_indexes(proj, mod, node))
            small.setdefault(table, set()).update(_class_small_domain(proj, mod, node))
    ctx.__dict__["_orm_indexes"] = out, small
    return out, small


# --- queries that filter a table by the org column --------------------------------

_COMPOUND = (ast.If, ast.For, ast.AsyncFor, ast.While, ast.With, ast.AsyncWith, ast.Try, ast.FunctionDef,
             ast.AsyncFunctionDef, ast.ClassDef, ast.Match)
_WRITE_CALLS = {"delete", "update", "insert"}
_FILTER_METHODS = {"in_", "is_", "__eq__", "any_"}


@dataclass
class _Site:
    """One place the app reads a table by the org column."""
    text: str  # `expr` at file:line
    file: str
    line: int
    selective: bool  # the org column is the only indexed-worthy predicate: the access path
    why: str  # for a non-selective site, why an index on the org column would not be used
    listing: int = 0  # 1: the query pages or orders rows (a list endpoint), 3: rows of this very model


@dataclass
class _Reads:
    known: bool = True  # the app's code names the table
    sites: list[_Site] = field(default_factory=list)


def _compared(n: ast.AST, model: str) -> list[tuple[str, ast.AST, ast.AST | None]]:
    """(column, node, other side) for every predicate on ``Model.<column>`` in ``n``:
    ``Model.c == x``, ``Model.c.in_(...)``, ``Model.c.is_(x)``."""
    out = []
    for c in of_type(n, (ast.Compare, ast.Call)):
        if isinstance(c, ast.Compare) and len(c.ops) == 1 and isinstance(c.ops[0], (ast.Eq, ast.In, ast.Is)):
            for a, b in ((c.left, c.comparators[0]), (c.comparators[0], c.left)):
                if isinstance(a, ast.Attribute) and isinstance(a.value, ast.Name) and a.value.id == model:
                    out.append((a.attr, a, b))
        elif isinstance(c, ast.Call) and isinstance(c.func, ast.Attribute) and c.func.attr in _FILTER_METHODS:
            a = c.func.value
            if isinstance(a, ast.Attribute) and isinstance(a.value, ast.Name) and a.value.id == model:
                out.append((a.attr, a, c.args[0] if c.args else None))
    return out


def _query_scope(node: ast.AST, parents: dict[int, ast.AST]) -> list[ast.stmt]:
    """The statement holding ``node`` and the statements that build the same query
    unconditionally: siblings in the enclosing blocks (up to the function) that assign or
    extend a variable the statement uses (``q = select(M).where(M.id == x)`` then
    ``q = q.where(M.org_id == y)``; ``filters = [...]`` then ``filters.append(...)``).
    Conditional additions (inside an ``if``) are optional filters and are left out."""
    stmt = node
    while stmt is not None and not isinstance(stmt, ast.stmt):
        stmt = parents.get(id(stmt))
    if stmt is None:
        return []

    def names(st) -> set[str]:
        out = set()
        for n in walk(st):
            if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store):
                out.add(n.id)
            elif isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute) and isinstance(n.func.value, ast.Name):
                out.add(n.func.value.id)  # q.where(...), filters.append(...)
            elif isinstance(n, ast.Starred) and isinstance(n.value, ast.Name):
                out.add(n.value.id)
        return out

    scope, want = [stmt], names(stmt)
    cur = stmt
    while True:
        parent = parents.get(id(cur))
        if parent is None:
            break
        for attr in ("body", "orelse", "finalbody"):
            block = getattr(parent, attr, None)
            if isinstance(block, list) and cur in block:
                for sib in block:  # simple statements only: a compound one is an ancestor or conditional
                    if sib is not stmt and not isinstance(sib, _COMPOUND) and names(sib) & want:
                        scope.append(sib)
        if isinstance(parent, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Module)):
            break
        cur = parent
    return scope


def _classify(src, node, model: str, table: str, org: str, indexed: set[str], parents,
              fk_cols: set[str] = frozenset()) -> _Site:
    """How the query holding ``node`` (a predicate on ``model``'s org column, or a join to
    the org table) reads ``table``: selective by org, or org as an extra predicate."""
    where = f"{src.path}:{node.lineno}"
    text = f"`{ast.unparse(node)[:60]}` at {where}"
    scope = _query_scope(node, parents)
    calls = {dotted(c.func).rsplit(".", 1)[-1] for st in scope for c in of_type(st, ast.Call)}
    other = {c for st in scope for c, _, _ in _compared(st, model)}
    for st in scope:  # select(Model).filter_by(col=...)
        for c in of_type(st, ast.Call):
            if isinstance(c.func, ast.Attribute) and c.func.attr == "filter_by":
                other |= {k.arg for k in c.keywords if k.arg}
    other.discard(org)
    hit = sorted(other & indexed)
    if hit:
        return _Site(text, src.path, node.lineno, False,
                     f"{org} is an extra predicate next to indexed {', '.join(hit)} ({where})")
    keys = sorted(c for c in other if c in fk_cols or c == "id" or c.endswith("_id"))
    if keys:  # the rows are those of another key (a user, a parent): that key's index is the fix
        return _Site(text, src.path, node.lineno, False,
                     f"{org} is an extra predicate next to {', '.join(keys)} ({where}), a narrower key of its "
                     "own: an index on that key, not on the org column, is what this query needs")
    if calls & _WRITE_CALLS and not calls & {"select", "query"}:
        return _Site(text, src.path, node.lineno, False, f"a bulk write by {org} ({where}), not a read path")
    own = any(dotted(c.func).rsplit(".", 1)[-1] in ("select", "query") and c.args and isinstance(c.args[0], ast.Name)
              and c.args[0].id == model for st in scope for c in of_type(st, ast.Call))
    fn = node
    while fn is not None and not isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
        fn = parents.get(id(fn))
    pages = any(isinstance(c.func, ast.Attribute) and c.func.attr in ("limit", "offset", "order_by", "paginate")
                for c in of_type(fn if fn is not None else scope[0], ast.Call))  # a list endpoint's query
    return _Site(text, src.path, node.lineno, True, "", 2 * (pages and own) + pages)


def _org_reads(ctx, org: str, indexed_of) -> dict[str, _Reads]:
    """table -> how the app's code reads it by ``org`` (``indexed_of(table)``: the columns
    that lead some index of that table)."""
    orm = orm_schema(ctx)

    def fks_of(table: str) -> set[str]:
        t = orm.tables.get(table)
        return set(t.fks()) if t is not None else set()

    classes: dict[str, str] = {q.rsplit(":", 1)[-1]: t for q, t in orm.by_class.items()}
    sources = [s for s in ctx.layout.app_sources(ctx.index) if s.tree is not None
               and s.path not in ctx.layout.migration_files]
    out: dict[str, _Reads] = {t: _Reads() for t in classes.values()}

    def add(table, site: _Site):
        r = out.get(table)
        if r is not None and len(r.sites) < 200:
            r.sites.append(site)

    bases: dict[str, list[str]] = {}  # class name -> bare names of its bases
    model_bases: dict[tuple[str, str], list[str]] = {}  # (file, class) -> its bases
    generic: dict[str, str] = {}  # class -> where its methods filter cls.<org> (access predicates)
    org_rels = {attr: target for t in orm.tables.values() if t.name == orm.org_table
                for attr, target in t.relationships.items()}
    proj = project(ctx)
    for src in sources:
        parents = parent_map(src.tree)
        local = dict(classes)  # names of models in this file, import aliases included (Tool as ToolModel)
        mod = proj.by_path.get(src.path)
        for name in (mod.imports if mod is not None else {}):
            sym = proj.resolve_name(mod, name)
            if sym is not None and sym.kind == "class" and sym.qualname in orm.by_class:
                local[name] = orm.by_class[sym.qualname]
        for cls in of_type(src.tree, ast.ClassDef):
            names = [dotted(b).rsplit(".", 1)[-1] for b in cls.bases]
            bases.setdefault(cls.name, []).extend(names)  # base classes: every class of that name
            model_bases[(src.path, cls.name)] = names
            own = next((n for n in of_type(cls, ast.Attribute) if n.attr == org and isinstance(n.value, ast.Name)
                        and n.value.id in ("cls", "self") and isinstance(n.ctx, ast.Load)), None)
            dynamic = next((c for c in of_type(cls, ast.Call) if isinstance(c.func, ast.Name) and c.func.id == "getattr"
                            and len(c.args) > 1 and getattr(c.args[1], "value", None) == org), None)
            if own is not None or dynamic is not None:
                generic.setdefault(cls.name, f"{src.path}:{(own or dynamic).lineno}")
        funcs = (ast.FunctionDef, ast.AsyncFunctionDef)
        tops = [m for st in src.tree.body for m in ([st] if isinstance(st, funcs) else
                                                    st.body if isinstance(st, ast.ClassDef) else [])
                if isinstance(m, funcs)]
        for f in tops:  # code, not model declarations
            for col, n, other in (x for m in {n.value.id for n in of_type(f, ast.Attribute)
                                              if n.attr == org and isinstance(n.value, ast.Name)
                                              and n.value.id in local} for x in _compared(f, m)):
                if col != org:
                    continue
                model, table = n.value.id, local[n.value.id]
                if isinstance(other, ast.Attribute) and isinstance(other.value, ast.Name) and other.value.id in local:
                    add(table, _Site(f"`{ast.unparse(n)}` at {src.path}:{n.lineno}", src.path, n.lineno, False,
                                     f"a join condition ({src.path}:{n.lineno})"))
                    continue
                add(table, _classify(src, n, model, table, org, indexed_of(table), parents, fks_of(table)))
            for n in of_type(f, ast.Attribute):
                if n.attr in org_rels and org_rels[n.attr] in classes and isinstance(n.value, ast.Name) \
                        and local.get(n.value.id) == orm.org_table and isinstance(n.ctx, ast.Load):
                    where = f"{src.path}:{n.lineno}"  # selectinload(Org.runs): SELECT ... WHERE org_id IN
                    add(classes[org_rels[n.attr]], _Site(f"`{ast.unparse(n)}` at {where}", src.path, n.lineno, False,
                                                         f"the org's whole collection is loaded through its "
                                                         f"relationship ({where}): a per-org set loaded whole is "
                                                         "usually small"))
        for c in of_type(src.tree, ast.Call):
            if isinstance(c.func, ast.Attribute) and c.func.attr in ("join", "outerjoin") and c.args \
                    and isinstance(c.args[0], ast.Attribute) and isinstance(c.args[0].value, ast.Name):
                model = c.args[0].value.id
                table = local.get(model)  # select(Job).join(Job.project).where(Project.x == ...)
                rel = orm.tables[table].relationships.get(c.args[0].attr) if table in orm.tables else None
                if rel is not None and classes.get(rel) == orm.org_table:
                    add(table, _classify(src, c.args[0], model, table, org, indexed_of(table), parents, fks_of(table)))
            if isinstance(c.func, ast.Attribute) and c.func.attr == "filter_by" \
                    and any(k.arg == org for k in c.keywords):
                for inner in of_type(c.func.value, ast.Call):
                    if dotted(inner.func).rsplit(".", 1)[-1] in ("select", "query") and inner.args \
                            and isinstance(inner.args[0], ast.Name) and inner.args[0].id in local:
                        model = inner.args[0].id
                        add(local[model], _classify(src, c, model, local[model], org,
                                                    indexed_of(local[model]), parents, fks_of(local[model])))
        for node, text in string_constants(src):
            low = text.lower()
            if org in low and "where" in low:
                tables = [m.group(1) for m in re.finditer(r"\b(?:from|join|update)\s+\"?(\w+)", low)]
                for t in tables:
                    if t not in orm.tables and t not in classes.values():
                        continue
                    out.setdefault(t, _Reads())
                    where = f"{src.path}:{node.lineno}"
                    cond = low.split("where", 1)[1]
                    cols = set(re.findall(r"\b(\w+)\s*(?:=|\bin\b|\bis\b)", cond)) - {org}
                    hit = sorted(cols & indexed_of(t))
                    if len(set(tables)) > 1 or " join " in low:
                        add(t, _Site(f"SQL text at {where}", src.path, node.lineno, False,
                                     f"SQL text joining several tables ({where}); its access path could not be told"))
                    elif re.search(rf"\b{re.escape(org)}\s*(?:=|\bin\b)", cond) is None:
                        continue
                    elif hit:
                        add(t, _Site(f"SQL text at {where}", src.path, node.lineno, False,
                                     f"{org} is an extra predicate next to indexed {', '.join(hit)} ({where})"))
                    else:
                        add(t, _Site(f"SQL text at {where}", src.path, node.lineno, True, ""))
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
                where = generic[b]
                file, _, line = where.rpartition(":")
                add(table, _Site(f"`cls.{org}` filtered in base class `{b}` ({where})", file, int(line), False,
                                 f"a generic access predicate of base class `{b}` ({where}) adds {org} to its "
                                 "queries, whether they read by id or list"))
                break
            todo += bases.get(b, [])
    return out
