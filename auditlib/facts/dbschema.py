"""A snapshot of a migrated database's schema, read from ``pg_catalog`` with psycopg.

``information_schema`` cannot show what the db checks need (index key order, partial
predicates, ``NULLS NOT DISTINCT``, row-level security), so everything comes from
``pg_catalog`` plus ``pg_get_indexdef`` / ``pg_get_constraintdef``. One query per
object kind; the result is plain dataclasses the checks and the notebook read.
Tables outside ``public`` are named ``schema.table``.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

_USER_NS = "n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_toast%%'"


@dataclass
class Column:
    name: str
    type: str  # format_type(), e.g. "character varying(320)"
    nullable: bool
    default: str | None = None
    enum_type: str | None = None  # the enum's type name when the column is a PostgreSQL enum


@dataclass
class ForeignKey:
    name: str
    table: str
    columns: list[str]
    ref_table: str
    ref_columns: list[str]
    definition: str
    validated: bool = True


@dataclass
class Index:
    name: str
    table: str
    columns: list[str | None]  # key columns in order; None for an expression
    unique: bool
    primary: bool
    valid: bool
    method: str
    predicate: str | None  # WHERE of a partial index
    nulls_not_distinct: bool
    definition: str
    constraint: str | None = None  # the UNIQUE / PRIMARY KEY constraint it backs

    @property
    def signature(self) -> str:
        """The definition without the index's own name (identical signatures = duplicates)."""
        return re.sub(r"^CREATE (UNIQUE )?INDEX \S+ ON ", r"CREATE \1INDEX ON ", self.definition)


@dataclass
class Table:
    name: str
    columns: list[Column] = field(default_factory=list)
    rls: bool = False
    force_rls: bool = False
    policies: list[str] = field(default_factory=list)

    def column(self, name: str) -> Column | None:
        return next((c for c in self.columns if c.name == name), None)


@dataclass
class Schema:
    tables: dict[str, Table] = field(default_factory=dict)
    foreign_keys: list[ForeignKey] = field(default_factory=list)
    indexes: list[Index] = field(default_factory=list)
    enums: dict[str, list[str]] = field(default_factory=dict)
    server_version: int = 0

    def indexes_of(self, table: str) -> list[Index]:
        return [i for i in self.indexes if i.table == table]

    def fks_of(self, table: str) -> list[ForeignKey]:
        return [f for f in self.foreign_keys if f.table == table]

    def referencing(self, table: str) -> list[ForeignKey]:
        return [f for f in self.foreign_keys if f.ref_table == table]


def _qual(schema: str, name: str) -> str:
    return name if schema == "public" else f"{schema}.{name}"


def read_schema(url: str) -> Schema:
    """Read the schema of the database at ``url`` (a libpq / postgresql:// URL)."""
    import psycopg

    with psycopg.connect(url, connect_timeout=10, autocommit=True) as conn:
        return read_schema_from(conn)


def read_schema_from(conn) -> Schema:
    s = Schema(server_version=int(conn.execute("SHOW server_version_num").fetchone()[0]))
    rows = conn.execute(f"""
        SELECT c.oid, n.nspname, c.relname, c.relrowsecurity, c.relforcerowsecurity
        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition AND {_USER_NS}
        ORDER BY n.nspname, c.relname""").fetchall()
    by_oid: dict[int, str] = {}
    for oid, ns, name, rls, force in rows:
        q = _qual(ns, name)
        by_oid[oid] = q
        s.tables[q] = Table(q, rls=rls, force_rls=force)
    attnames: dict[tuple[int, int], str] = {}
    for relid, attnum, name, typ, notnull, typtype, typname, default in conn.execute("""
            SELECT a.attrelid, a.attnum, a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull,
                   t.typtype, t.typname, pg_get_expr(d.adbin, d.adrelid)
            FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid
            LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
            WHERE a.attnum > 0 AND NOT a.attisdropped AND a.attrelid = ANY(%s)
            ORDER BY a.attrelid, a.attnum""", (list(by_oid),)).fetchall():
        attnames[(relid, attnum)] = name
        s.tables[by_oid[relid]].columns.append(
            Column(name, typ, not notnull, default, typname if typtype == "e" else None))
    for name, relid, refid, keys, refkeys, validated, definition in conn.execute("""
            SELECT conname, conrelid, confrelid, conkey, confkey, convalidated, pg_get_constraintdef(oid)
            FROM pg_constraint WHERE contype = 'f' AND conrelid = ANY(%s) ORDER BY conrelid, conname""",
            (list(by_oid),)).fetchall():
        if refid not in by_oid:
            continue
        s.foreign_keys.append(ForeignKey(
            name, by_oid[relid], [attnames[(relid, k)] for k in keys], by_oid[refid],
            [attnames[(refid, k)] for k in refkeys], definition, validated))
    nnd = "i.indnullsnotdistinct" if s.server_version >= 150000 else "false"
    for name, relid, keys, nkeys, unique, primary, valid, pred, definition, method, nulls_nd, con in conn.execute(f"""
            SELECT ic.relname, i.indrelid, i.indkey::int2[], i.indnkeyatts, i.indisunique, i.indisprimary,
                   i.indisvalid, pg_get_expr(i.indpred, i.indrelid), pg_get_indexdef(i.indexrelid),
                   am.amname, {nnd}, con.conname
            FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid JOIN pg_am am ON am.oid = ic.relam
            LEFT JOIN pg_constraint con ON con.conindid = i.indexrelid AND con.contype IN ('p', 'u', 'x')
            WHERE i.indrelid = ANY(%s) ORDER BY i.indrelid, ic.relname""", (list(by_oid),)).fetchall():
        cols = [attnames.get((relid, k)) if k else None for k in list(keys)[:nkeys]]
        s.indexes.append(Index(name, by_oid[relid], cols, unique, primary, valid, method, pred,
                               bool(nulls_nd), definition, con))
    for ns, table, policy, cmd in conn.execute(
            "SELECT schemaname, tablename, policyname, cmd FROM pg_policies ORDER BY 1, 2, 3").fetchall():
        t = s.tables.get(_qual(ns, table))
        if t is not None:
            t.policies.append(f"{policy} ({cmd})")
    for ns, name, labels in conn.execute(f"""
            SELECT n.nspname, t.typname, array_agg(e.enumlabel ORDER BY e.enumsortorder)
            FROM pg_type t JOIN pg_enum e ON e.enumtypid = t.oid JOIN pg_namespace n ON n.oid = t.typnamespace
            WHERE {_USER_NS} GROUP BY n.nspname, t.typname ORDER BY 1, 2""").fetchall():
        s.enums[_qual(ns, name)] = list(labels)
    return s


def supporting_index(schema: Schema, table: str, columns: list[str]) -> Index | None:
    """A valid, non-partial index whose leading key columns are ``columns`` (any order):
    what PostgreSQL can use to look rows up by those columns (FK checks, ON DELETE)."""
    want = set(columns)
    for ix in schema.indexes_of(table):
        lead = ix.columns[:len(columns)]
        if ix.valid and ix.predicate is None and len(lead) == len(columns) and set(lead) == want:
            return ix
    return None
