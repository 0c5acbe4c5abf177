"""DEP-006 (extends the checklist): PostgreSQL enum labels vs what the ORM writes."""
from __future__ import annotations

from ..findings import Location, Severity
from ..facts.orm_enums import migration_enum_labels, orm_enums
from . import check


@check("DEP-006", "deployment", "Enum labels match what the ORM writes", source="db")
def enum_consistency_db(ctx):
    """Not in the checklist: it extends DEP-002's "migrations build the schema the code
    needs" to enum types, a classic PostgreSQL-only production failure. For every ORM
    enum column (``Enum(PyEnum, name=...)`` or ``Mapped[PyEnum]``; see
    :mod:`auditlib.facts.orm_enums`: the ORM writes member *names* unless ``values_callable``
    is given) the PostgreSQL enum of that name (``pg_enum`` in the migrated database) must
    accept what the ORM writes. BLOCKER: a label the ORM writes is missing from the
    PostgreSQL enum (every insert/update with it fails with "invalid input value for
    enum"; SQLite-based tests do not notice). WARNING: the PostgreSQL enum has labels the
    ORM does not know (reading such a row raises LookupError). Not flagged: enums created
    with ``native_enum=False`` (VARCHAR), enum types the schema does not have (created
    elsewhere), Python enums whose members are not literals. One finding per enum type:
    every column mapped on it is named in the message and is a location. When the stage cannot run:
    a WARNING, and the same comparison against the labels the migrations declare
    (``sa.Enum("a", "b", name=...)``) as the static fallback.
    """
    from ..stages.database import migrated_database

    chk = enum_consistency_db.check
    st = migrated_database(ctx)
    orm = orm_enums(ctx)
    if st.ok:
        labels, how = {k.rsplit(".", 1)[-1]: v for k, v in st.schema.enums.items()}, "the migrated database"
    else:
        if orm:
            yield st.not_verified(chk, "enum labels in the migrated database",
                                  "enum labels compared with those the migrations declare")
        labels, how = migration_enum_labels(ctx), "the migrations (static fallback)"
    by_type: dict[str, list] = {}
    for e in orm:  # one finding per enum type, every column mapped on it listed and located
        if labels.get(e.type_name) is not None:
            by_type.setdefault(e.type_name, []).append(e)
    source = "db" if st.ok else "static"
    for type_name, cols in by_type.items():
        pg = labels[type_name]
        bad = [(e, [x for x in e.writes if x not in pg]) for e in cols]
        bad = [(e, m) for e, m in bad if m]
        if bad:
            writers = "; ".join(dict.fromkeys(
                f"{e.py_class} is stored by its {_written(e)}: {', '.join(e.writes)}" for e, _m in bad))
            missing = list(dict.fromkeys(x for _e, m in bad for x in m))
            f = chk.finding(ctx, Severity.BLOCKER, f"Enum {type_name}: the ORM writes labels PostgreSQL rejects",
                            f"{writers}; the PostgreSQL type {type_name} in {how} has {', '.join(pg)}. Writing "
                            f"{', '.join(missing)} fails with 'invalid input value for enum' on PostgreSQL only, "
                            f"on {_columns(e for e, _m in bad)}.",
                            "Make both agree: pass values_callable=lambda e: [m.value for m in e] to Enum(...) "
                            "if the database holds the values, or migrate the type's labels "
                            "(ALTER TYPE ... RENAME VALUE).", bad[0][0].file, bad[0][0].line,
                            source=source, key=f"enum:{type_name}")
            yield _located(ctx, f, [e for e, _m in bad])
            continue
        extra = list(dict.fromkeys(x for x in pg if any(x not in e.writes for e in cols)))
        if extra:
            classes = ", ".join(dict.fromkeys(e.py_class for e in cols))
            f = chk.finding(ctx, Severity.WARNING, f"Enum {type_name} has labels the ORM does not know",
                            f"PostgreSQL's {type_name} ({how}) also allows {', '.join(extra)}, which {classes} "
                            f"cannot represent: loading such a row from {_columns(cols)} raises LookupError.",
                            f"Add the members to {classes} or remove the labels with a migration.",
                            cols[0].file, cols[0].line, source=source, key=f"enum-extra:{type_name}")
            yield _located(ctx, f, cols)


def _written(e) -> str:
    return "values" if e.by_values else "member names (no values_callable)"


def _columns(cols) -> str:
    cols = list(cols)
    names = list(dict.fromkeys(e.column or f"{e.file}:{e.line}" for e in cols))
    return ("column " if len(names) == 1 else "columns ") + ", ".join(names)


def _located(ctx, f, cols):
    for e in cols[1:]:
        f.locations.append(Location(e.file, e.line, e.line, ctx.index.get(e.file).line(e.line)[:300]))
    f.tables = sorted({e.column.split(".", 1)[0] for e in cols if "." in e.column})
    return f
