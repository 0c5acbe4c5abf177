"""DEP-006 (extends the checklist): PostgreSQL enum labels vs what the ORM writes."""
from __future__ import annotations

from ..findings import Severity
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
    elsewhere), Python enums whose members are not literals. When the stage cannot run:
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
    for e in orm:
        pg = labels.get(e.type_name)
        if pg is None:
            continue
        written = "values" if e.by_values else "member names (no values_callable)"
        if missing := [x for x in e.writes if x not in pg]:
            yield chk.finding(ctx, Severity.BLOCKER, f"Enum {e.type_name}: the ORM writes labels PostgreSQL rejects",
                              f"{e.py_class} is stored by its {written}: {', '.join(e.writes)}; the PostgreSQL type "
                              f"{e.type_name} in {how} has {', '.join(pg)}. Writing {', '.join(missing)} fails "
                              "with 'invalid input value for enum' on PostgreSQL only.",
                              "Make both agree: pass values_callable=lambda e: [m.value for m in e] to Enum(...) "
                              "if the database holds the values, or migrate the type's labels "
                              "(ALTER TYPE ... RENAME VALUE).", e.file, e.line,
                              source="db" if st.ok else "static", key=f"enum:{e.type_name}")
        elif extra := [x for x in pg if x not in e.writes]:
            yield chk.finding(ctx, Severity.WARNING, f"Enum {e.type_name} has labels the ORM does not know",
                              f"PostgreSQL's {e.type_name} ({how}) also allows {', '.join(extra)}, which "
                              f"{e.py_class} cannot represent: loading such a row raises LookupError.",
                              f"Add the members to {e.py_class} or remove the labels with a migration.",
                              e.file, e.line, source="db" if st.ok else "static", key=f"enum-extra:{e.type_name}")
