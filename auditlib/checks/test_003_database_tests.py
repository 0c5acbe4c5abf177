"""TEST-003 at run time: which database the test suite actually used."""
from __future__ import annotations

import re

from ..findings import Severity
from . import check
from .test_001_suite_tests import test_location


@check("TEST-003", "testing", "Database used by the test suite (run time)", source="tests")
def suite_database(ctx):
    """What the suite really connected to while it ran (tests stage): SQLAlchemy
    connections by dialect (auditlib's probe plugin listens to every ``Engine``), sessions
    opened on the throwaway PostgreSQL database (``pg_stat_database``) and SQLite files the
    run created.

    Why: a suite that runs on SQLite or only on mocks never sees PostgreSQL-only failures
    (enum labels, JSON operators, ``SET LOCAL``, strict typing) that break production.

    Severity: SQLite only is a WARNING at the test line that configures it; no database
    connection at all is a WARNING (integration paths are only mocked); PostgreSQL used is
    INFO with the evidence.

    Not flagged: when the stage did not run (TEST-001 says why); a suite that uses both
    SQLite and PostgreSQL is INFO (it does exercise PostgreSQL); an application whose
    code imports no database library (INFO: nothing to integrate with).
    """
    from ..stages.tests_stage import suite_run

    chk = suite_database.check
    run = suite_run(ctx)
    if not run.ran:
        return
    if not _app_uses_database(ctx):
        yield chk.finding(ctx, Severity.INFO, "The application uses no database",
                          "No database library (SQLAlchemy, SQLModel, asyncpg, psycopg, databases, Tortoise) is "
                          "imported by the application code: there is no database to integrate with.", "",
                          *test_location(ctx), excerpt="", key="no-db")
        return
    dialects = run.probe.get("dialects", {})
    pg = any(d.startswith("postgresql") for d in dialects) or bool(run.pg_sessions)
    sqlite = any(d.startswith("sqlite") for d in dialects) or bool(run.sqlite_files)
    evidence = (f"SQLAlchemy connections by dialect: {dialects or 'none'}; sessions on the throwaway "
                f"PostgreSQL database: {run.pg_sessions if run.pg_sessions is not None else 'n/a'}; SQLite files "
                f"created: {', '.join(run.sqlite_files) or 'none'}.")
    if pg:
        yield chk.finding(ctx, Severity.INFO, "The test suite used PostgreSQL", evidence, "",
                          *test_location(ctx), excerpt="", key="pg")
    elif sqlite:
        yield chk.finding(ctx, Severity.WARNING, "The test suite ran on SQLite only",
                          "Tests never touched PostgreSQL, so PostgreSQL-only failures (enum labels, JSON "
                          "operators, SET LOCAL, type strictness) ship untested. " + evidence,
                          "Run the suite against PostgreSQL (a service container in CI, or testcontainers).",
                          *_configuring_line(ctx, r"sqlite"), key="sqlite")
    else:
        yield chk.finding(ctx, Severity.WARNING, "No test opened a database connection",
                          "The suite passed without ever connecting to a database: queries, migrations and "
                          "transactions are only mocked or not tested at all. " + evidence,
                          "Add integration tests that run the API against a real PostgreSQL database.",
                          *_configuring_line(ctx, r"DATABASE_URL|postgres(ql)?(\+\w+)?://"), key="none")


_DB_IMPORT = re.compile(r"^\s*(?:from|import)\s+(?:sqlalchemy|sqlmodel|asyncpg|psycopg2?|databases|tortoise|piccolo)\b",
                        re.MULTILINE)


def _app_uses_database(ctx) -> bool:
    return any(_DB_IMPORT.search(f.text or "") for f in ctx.layout.app_sources(ctx.index))


def _configuring_line(ctx, pattern: str) -> tuple[str, int | None]:
    rx = re.compile(pattern)
    for f in ctx.index.python_files():
        if ctx.layout.is_test(f.path) and f.text:
            for n, line in enumerate(f.text.splitlines(), 1):
                if rx.search(line) and not line.lstrip().startswith("#"):
                    return f.path, n
    return test_location(ctx)
