"""DEP-008 (extends the checklist): lock-heavy statements in migrations, linted by Squawk."""
from __future__ import annotations

import re

from ..findings import Severity, not_verified
from ..engines.squawk import DEFAULT_EXCLUDE, SquawkUnavailable, lint_revisions
from . import check

_NAME = re.compile(r"\b(?:INDEX|TABLE|CONSTRAINT|COLUMN|TYPE)\s+(?:IF\s+(?:NOT\s+)?EXISTS\s+)?\"?(\w+)", re.I)


def _line_of(ctx, rev, statement: str) -> int | None:
    """The revision line whose string literals name an object of the statement."""
    src = ctx.index.get(rev.file)
    names = [n for n in _NAME.findall(statement) if n.upper() not in ("ONLY", "CONCURRENTLY")]
    for name in reversed(names):  # the most specific name comes last (INDEX ix ON TABLE t)
        for n, text in enumerate(src.lines if src else [], 1):
            if rev.upgrade_line and n > rev.upgrade_line and re.search(rf"[\"']{re.escape(name)}[\"']", text):
                if rev.downgrade_line is None or n < rev.downgrade_line or rev.downgrade_line < rev.upgrade_line:
                    return n
    return rev.upgrade_line or rev.revision_line


@check("DEP-008", "deployment", "Migration safety: long locks on big tables", source="db")
def migration_safety_db(ctx):
    """Extends the checklist (DEP-002 covers whether migrations run, not how they lock).
    The target's offline SQL (``upgrade head --sql``, rendered by its own Alembic in the
    database stage) is split per revision and linted by Squawk (see
    :mod:`auditlib.engines.squawk`; the engine does the SQL analysis). Each lint is a
    RECOMMENDATION at the revision line that names the object: non-concurrent index
    creation, a NOT NULL column without default, foreign keys / constraints without NOT
    VALID, column type changes, ... take locks that block writes (or reads) for as long as
    a big table takes to scan or rewrite; harmless on an empty table, so not a WARNING.
    Not flagged: statements on tables created in the same revision (Squawk's own rule),
    style rules in ``squawk_exclude`` (default: robust statements, bigint/text/identity
    preferences, per-statement timeouts). WARNING when it cannot run (no stage, no
    offline SQL, Squawk missing or timing out).
    """
    from ..stages.database import migrated_database

    chk = migration_safety_db.check
    st = migrated_database(ctx)
    what = "migration locking (Squawk on the offline SQL)"
    sql = st.offline_sql_by_revision()
    if not sql:
        reason = st.reason if st.status == "unavailable" else "the offline SQL (`upgrade head --sql`) did not render"
        yield not_verified(chk.id, chk.area, what, reason, source="db")
        return
    try:
        lints = lint_revisions(sql, ctx.config.get("squawk_exclude", DEFAULT_EXCLUDE),
                               timeout=ctx.config.get("timeouts", {}).get("squawk", 60),
                               pg_version=st.schema.server_version if st.schema else 0)
    except SquawkUnavailable as exc:
        yield not_verified(chk.id, chk.area, what, str(exc), source="db",
                           fix="Install squawk-cli in the auditor's environment and re-run.")
        return
    ids, seen = st.graph.by_id, set()
    for lint in lints:
        rev = ids.get(lint.revision)
        if rev is None or (lint.revision, lint.rule, lint.statement) in seen:
            continue
        seen.add((lint.revision, lint.rule, lint.statement))
        yield chk.finding(ctx, Severity.RECOMMENDATION, f"Revision {lint.revision}: {lint.rule}",
                          f"{lint.message} Statement: {lint.statement[:200]}",
                          lint.help or "See https://squawkhq.com/docs/rules for the safe pattern.",
                          rev.file, _line_of(ctx, rev, lint.statement), source="db",
                          key=f"squawk:{lint.revision}:{lint.rule}:{lint.statement[:80]}")
