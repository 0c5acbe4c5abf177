"""The migration part of the database stage: the target's own ``alembic upgrade head``
into a fresh database of the audit's PostgreSQL, then ``current`` and offline ``--sql``."""
from __future__ import annotations

import re
import uuid
from pathlib import Path

from ..alembic_graph import read_graph
from ..findings import Severity, not_verified
from ..redact import redact_text, redact_url


def _tail(text: str, n: int = 12) -> str:
    lines = [ln for ln in (text or "").strip().splitlines() if ln.strip()]
    return redact_text("\n".join(lines[-n:]))


def create_database(server_url: str) -> tuple[str, str]:
    """Create a uniquely named database on the server of ``server_url``; (libpq url, name)."""
    import psycopg
    from sqlalchemy.engine import make_url

    url = make_url(server_url).set(drivername="postgresql")
    name = f"audit_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(url.render_as_string(hide_password=False), autocommit=True, connect_timeout=10) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return url.set(database=name).render_as_string(hide_password=False), name


def drop_database(server_url: str, name: str) -> None:
    import psycopg
    from sqlalchemy.engine import make_url

    url = make_url(server_url).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(url, autocommit=True, connect_timeout=10) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def db_unavailable_reason(ctx) -> str | None:
    if ctx.database_url():
        return None
    return ctx.stages.get("db_reason") or "the database stage is disabled (--db none)"


def upgrade_findings(ctx, chk):
    from ..targetenv import resolve_target_python, run_alembic

    what = "migrations were not applied to a real PostgreSQL"
    reason = db_unavailable_reason(ctx)
    if reason:
        yield not_verified(chk.id, chk.area, what, reason, source="db")
        return
    lay = ctx.layout
    if not lay.alembic_ini:
        yield not_verified(chk.id, chk.area, what, "no alembic.ini found in the target", source="db")
        return
    timeouts = ctx.config.get("timeouts", {})
    python, why = resolve_target_python(ctx.root, ctx.target_python, ctx.provision,
                                        timeout=timeouts.get("provision", 900))
    if python is None:
        yield not_verified(chk.id, chk.area, what, why, source="db",
                           fix="Re-run with --target-python PATH (an interpreter with the target's "
                               "dependencies) or --provision.")
        return
    try:
        db_url, db_name = create_database(ctx.db)
    except Exception as exc:
        yield not_verified(chk.id, chk.area, what,
                           f"could not create a database on {redact_url(ctx.db)}: {type(exc).__name__}",
                           source="db")
        return
    ini = ctx.root / lay.alembic_ini
    graph = read_graph(ctx.index, lay.migration_files)
    files = {r.revision: r for r in graph.revisions if r.revision}
    heads = [h.revision for h in graph.heads]
    limit = timeouts.get("alembic", 300)
    try:
        up = run_alembic(Path(python), ini, db_url, ["upgrade", "head"], timeout=limit)
        _log(ctx, "upgrade head", up)
        if up.timed_out:
            yield chk.finding(ctx, Severity.WARNING, "Not verified: `alembic upgrade head` timed out",
                              f"not verified: the upgrade did not finish within {limit} s.",
                              "Check the migrations for long data migrations or lock waits; raise "
                              "[tool.auditlib.timeouts] alembic if the history is legitimately slow.",
                              lay.alembic_ini, None, excerpt=_tail(up.stderr), source="db", key="timeout")
            return
        if not up.ok:
            rev = files.get(up.failing_revision)
            file, line = (rev.file, rev.revision_line) if rev else (lay.alembic_ini, None)
            yield chk.finding(ctx, Severity.BLOCKER,
                              "`alembic upgrade head` fails on an empty database"
                              + (f" at revision {up.failing_revision}" if up.failing_revision else ""),
                              "The deploy's migration step cannot create the schema from scratch "
                              "(new environments, disaster recovery, CI).",
                              "Reproduce with `alembic upgrade head` on an empty PostgreSQL, fix the "
                              "failing revision, and run migrations in CI.",
                              file, line, excerpt=_tail(up.stderr or up.stdout), source="db", key="upgrade")
            return
        cur = run_alembic(Path(python), ini, db_url, ["current"], timeout=limit)
        _log(ctx, "current", cur)
        current = set(re.findall(r"^([0-9A-Za-z_]+) \(head\)", cur.stdout, re.M))
        head_rev = files.get(heads[0]) if len(heads) == 1 else None
        loc = (head_rev.file, head_rev.revision_line) if head_rev else (lay.alembic_ini, None)
        if heads and not set(heads) <= current:
            yield chk.finding(ctx, Severity.BLOCKER, "Database is not at head after `alembic upgrade head`",
                              f"`alembic current` reports {sorted(current) or 'nothing'}, the history's "
                              f"head is {', '.join(heads)}.",
                              "Check env.py: it must run migrations against the configured URL and commit.",
                              *loc, excerpt=_tail(cur.stdout + cur.stderr), source="db", key="current")
        else:
            yield chk.finding(ctx, Severity.INFO,
                              f"`alembic upgrade head` succeeded in {up.duration:.1f} s",
                              f"All migrations applied to an empty PostgreSQL; `alembic current` = "
                              f"{', '.join(sorted(current)) or '?'} (head).", "",
                              *loc, source="db", key="upgrade-ok")
        sql = run_alembic(Path(python), ini, db_url, ["upgrade", "head", "--sql"], timeout=limit)
        _log(ctx, "upgrade head --sql", sql)
        if not sql.ok:
            yield chk.finding(ctx, Severity.WARNING, "Offline migration SQL (`upgrade head --sql`) does not render",
                              "DBAs cannot review the SQL before it runs, and migrations that depend "
                              "on a live connection break offline/generated deploy scripts.",
                              "Make env.py's run_migrations_offline() work (context.configure(url=..., "
                              "literal_binds=True)) and avoid reading data inside migrations.",
                              lay.alembic_ini, None, excerpt=_tail(sql.stderr), source="db", key="offline-sql")
    finally:
        try:
            drop_database(ctx.db, db_name)
        except Exception:
            pass  # the embedded server is thrown away anyway


def _log(ctx, what: str, run) -> None:
    """Append what was run and its output (redacted) to the run log, for the report."""
    log = ctx.out_dir / "logs" / "alembic.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("a", encoding="utf-8") as fh:
        fh.write(f"$ alembic {what}  (rc={run.returncode}, {run.duration:.2f}s"
                 f"{', timed out' if run.timed_out else ''})\n")
        fh.write(redact_text(run.stdout or ""))
        fh.write(redact_text(run.stderr or ""))
        fh.write("\n")
