"""DEP-002's database half: findings from the migrated database stage (upgrade, current,
offline SQL, downgrade round trip, ``alembic check`` drift); the database helpers the
stage shares live in :mod:`.database`."""
from __future__ import annotations

import re

from ..findings import Severity, not_verified
from .database import _tail, current_revisions, migrated_database


def _rev_loc(stage, lay, rev_id):
    r = stage.graph.by_id.get(rev_id) if (stage.graph and rev_id) else None
    return (r.file, r.revision_line) if r else (lay.alembic_ini, None)


def upgrade_findings(ctx, chk):
    st = migrated_database(ctx)
    lay = ctx.layout
    what = "migrations were not applied to a real PostgreSQL"
    if st.status == "unavailable":
        fix = ("Re-run with --target-python PATH (an interpreter with the target's dependencies) or --provision."
               if "target" in st.reason else "")
        yield not_verified(chk.id, chk.area, what, st.reason, source="db", fix=fix)
        return
    up = st.runs.get("upgrade")
    if st.status == "timeout":
        yield chk.finding(ctx, Severity.WARNING, "Not verified: `alembic upgrade head` timed out",
                          f"not verified: {st.reason}"
                          + (f" (last revision started: {st.failing_revision})" if st.failing_revision else "") + ".",
                          "Check the migrations for long data migrations or lock waits; raise "
                          "[tool.auditlib.timeouts] alembic if the history is legitimately slow.",
                          *_rev_loc(st, lay, st.failing_revision), excerpt=_tail(up.stderr, 4),
                          source="db", key="timeout")
        return
    if st.status == "failed":
        if up is None or up.ok:  # the auditor's side failed after a successful upgrade
            yield not_verified(chk.id, chk.area, what, st.reason, source="db")
            return
        yield chk.finding(ctx, Severity.BLOCKER,
                          "`alembic upgrade head` fails on an empty database"
                          + (f" at revision {up.failing_revision}" if up.failing_revision else ""),
                          "The deploy's migration step cannot create the schema from scratch "
                          "(new environments, disaster recovery, CI)."
                          + (f" Server: {st.server_text()}." if st.server_text() else ""),
                          "Reproduce with `alembic upgrade head` on an empty PostgreSQL, fix the "
                          "failing revision, and run migrations in CI.",
                          *_rev_loc(st, lay, up.failing_revision), excerpt=_tail(up.output),
                          source="db", key="upgrade")
        return
    heads = [h.revision for h in st.graph.heads]
    current = current_revisions(st)
    loc = _rev_loc(st, lay, heads[0] if len(heads) == 1 else None)
    cur = st.runs.get("current")
    if heads and not set(heads) <= current:
        yield chk.finding(ctx, Severity.BLOCKER, "Database is not at head after `alembic upgrade head`",
                          f"`alembic current` reports {sorted(current) or 'nothing'}, the history's "
                          f"head is {', '.join(heads)}.",
                          "Check env.py: it must run migrations against the configured URL and commit.",
                          *loc, excerpt=_tail(cur.output if cur else ""), source="db", key="current")
    else:
        yield chk.finding(ctx, Severity.INFO, f"`alembic upgrade head` succeeded in {up.duration:.1f} s",
                          f"All {len(st.graph.revisions)} migration(s) applied to an empty PostgreSQL; "
                          f"`alembic current` = {', '.join(sorted(current)) or '?'} (head)."
                          + (f" Server: {st.server_text()}." if st.server_text() else ""), "",
                          *loc, source="db", key="upgrade-ok")
    sql = st.runs.get("sql")
    if sql is not None and not sql.ok:
        yield chk.finding(ctx, Severity.WARNING, "Offline migration SQL (`upgrade head --sql`) does not render",
                          "DBAs cannot review the SQL before it runs, and migrations that depend "
                          "on a live connection break offline/generated deploy scripts.",
                          "Make env.py's run_migrations_offline() work (context.configure(url=..., "
                          "literal_binds=True)) and avoid reading data inside migrations.",
                          *_rev_loc(st, lay, sql.failing_revision), excerpt=_tail(sql.output, 4),
                          source="db", key="offline-sql")
    yield from _roundtrip(ctx, chk, st)
    yield from drift_findings(ctx, chk, st)


def _roundtrip(ctx, chk, st):
    lay = ctx.layout
    down, again = st.runs.get("downgrade"), st.runs.get("reupgrade")
    if down is not None and not down.ok:
        yield chk.finding(ctx, Severity.WARNING,
                          "`alembic downgrade base` fails" + (f" at revision {down.failing_revision}"
                                                              if down.failing_revision else ""),
                          "A release cannot be rolled back through its migrations: the downgrade path is broken.",
                          "Fix the revision's downgrade() so it undoes exactly what upgrade() did; test "
                          "`downgrade base` + `upgrade head` in CI.",
                          *_rev_loc(st, lay, down.failing_revision), excerpt=_tail(down.output, 6),
                          source="db", key="downgrade")
    elif again is not None and not again.ok:
        yield chk.finding(ctx, Severity.WARNING,
                          "`upgrade head` fails after `downgrade base`"
                          + (f" at revision {again.failing_revision}" if again.failing_revision else ""),
                          "A downgrade leaves objects behind (types, tables, rows), so re-applying the "
                          "migration after a rollback fails.",
                          "Make downgrade() drop everything upgrade() creates (enum types included).",
                          *_rev_loc(st, lay, again.failing_revision), excerpt=_tail(again.output, 6),
                          source="db", key="reupgrade")


# ``alembic check`` prints the autogenerate diff as a Python repr; these pick the kind and
# the object names out of it (robust to the target's logging configuration).
_DIFF = {
    "table": re.compile(r"\('(add|remove)_table', Table\('([^']+)'"),
    "column": re.compile(r"\('(add|remove)_column', (?:None|'[^']*'), '([^']+)', Column\('([^']+)'"),
    "modify": re.compile(r"\('modify_(\w+)', (?:None|'[^']*'), '([^']+)', '([^']+)'"),
    "index": re.compile(r"\('(add|remove)_index', Index\('([^']+)'.*?table=<([^>]+)>"),
    "other": re.compile(r"\('((?:add|remove)_(?:constraint|fk))', (\w+)\((?:'([^']+)')?"),
}


def parse_check_output(text: str) -> list[dict]:
    """The differences ``alembic check`` reports, as [{"op", "table", "column", "name"}]."""
    m = re.search(r"New upgrade operations detected: (.*)", text or "")
    if not m:
        return []
    body, out = m.group(1), []
    for kind, rx in _DIFF.items():
        for g in rx.finditer(body):
            if kind == "table":
                out.append({"op": f"{g[1]}_table", "table": g[2], "column": None, "name": None})
            elif kind == "column":
                out.append({"op": f"{g[1]}_column", "table": g[2], "column": g[3], "name": None})
            elif kind == "modify":
                out.append({"op": f"modify_{g[1]}", "table": g[2], "column": g[3], "name": None})
            elif kind == "index":
                out.append({"op": f"{g[1]}_index", "table": g[3], "column": None, "name": g[2]})
            else:
                out.append({"op": g[1], "table": None, "column": None, "name": g[3] or g[2]})
    return out


_DRIFT_RULES = {  # op -> (severity, title, why)
    "add_table": (Severity.BLOCKER, "Model table {t} does not exist after the migrations",
                  "The ORM maps a table no migration creates: every query on it fails in production."),
    "add_column": (Severity.BLOCKER, "Model column {t}.{c} does not exist after the migrations",
                   "The ORM selects a column no migration creates: every query on the model fails."),
    "remove_table": (Severity.WARNING, "Table {t} is not in env.py's target_metadata",
                     "The schema has a table the metadata does not know: the next `alembic revision "
                     "--autogenerate` generates `op.drop_table` (DROP TABLE) for it (data loss if applied "
                     "unreviewed)."),
    "remove_column": (Severity.WARNING, "Column {t}.{c} exists in the database but not in the model",
                      "The next autogenerate drops it; or the model lost a column the code still needs."),
}


def drift_findings(ctx, chk, st):
    """``alembic check`` (autogenerate compare) of target_metadata with the migrated schema."""
    from ..facts.alembic_env import metadata_coverage
    from ..facts.schema_sources import schema_sources

    run = st.runs.get("check")
    if run is None or run.ok:
        return
    text = run.output
    if "does not provide a MetaData object" in text:
        yield chk.finding(ctx, Severity.INFO, "Model/migration drift not compared: env.py has no target_metadata",
                          "`alembic check` needs env.py's target_metadata to compare the models with the schema.",
                          "Set target_metadata = Base.metadata in env.py.", ctx.layout.alembic_ini, None,
                          source="db", key="check-no-metadata")
        return
    diffs = parse_check_output(text)
    if not diffs:
        yield not_verified(chk.id, chk.area, "model/migration drift (`alembic check`)",
                           "`alembic check` failed: " + _tail(text, 2).replace("\n", " | "), source="db")
        return
    src = schema_sources(ctx)
    whole = {d["table"] for d in diffs if d["op"] in ("add_table", "remove_table")}
    # a table of a model that env.py never imports: DEP-002's static half reports it at the
    # model, with the fix (import it into the metadata); one finding per table, not per side
    cov = metadata_coverage(ctx)
    static_missing = {m.table for m, _why in cov.missing()} if cov is not None else set()
    for d in diffs:
        if d["table"] in whole and not d["op"].endswith("_table"):
            continue  # implied by the table's own finding
        if d["op"] == "remove_table" and d["table"] in static_missing:
            continue
        t, c = d["table"], d["column"]
        sev, title, why = _DRIFT_RULES.get(d["op"], (
            Severity.WARNING if d["op"].startswith("modify") else Severity.RECOMMENDATION,
            "Model and schema differ: {op} {n}", "`alembic check` reports a difference between the models "
            "and the migrated schema; the next autogenerate would emit it."))
        if d["op"].startswith("add_") and t in src.models:
            file, line = (src.model_columns.get((t, c)) if c else None) or src.models[t][:2]
        else:
            file, line = src.where(table=t, column=c, name=d["name"])
        yield chk.finding(ctx, sev, title.format(t=t, c=c, op=d["op"], n=".".join(x for x in (t, c or d["name"]) if x)),
                          why + f" (`alembic check`: {d['op']})",
                          "Write the missing migration (`alembic revision --autogenerate`, then review it) "
                          "or fix the model / env.py's target_metadata so both agree; run `alembic check` in CI.",
                          file, line, source="db", tables=[t] if t else [], key=f"drift:{d['op']}:{t}:{c or d['name']}")
