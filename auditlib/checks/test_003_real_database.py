"""TEST-003: integration tests use a real database."""
from __future__ import annotations

import ast
import re
from pathlib import Path

from ..findings import Severity
from ..code.pyast import dotted, literal, walk
from ..facts.test_model import test_files
from . import check

ENGINE_CALLS = {"create_async_engine", "create_engine"}
SCHEMA_CALLS = re.compile(r"(^|\.)(create_all|upgrade|run_sync)$")
SESSION_CALLS = re.compile(r"(^|\.)(AsyncSession|Session|sessionmaker|async_sessionmaker|connect|begin)$")
PG_FIXTURES = re.compile(r"^(testcontainers\.postgres|pytest_postgresql|pytest_pgsql|testing\.postgresql)")
MOCKS = {"AsyncMock", "MagicMock", "Mock", "create_autospec"}
DB_WORDS = re.compile(r"session|db|database|engine|conn", re.IGNORECASE)
CI_PG = re.compile(r"image:\s*['\"]?(postgres|postgis)|alembic\s+upgrade", re.IGNORECASE)


def _url_kind(value) -> str:
    if isinstance(value, str):
        low = value.lower()
        if low.startswith("sqlite"):
            return "sqlite"
        if low.startswith(("postgres", "postgresql")):
            return "postgresql"
    return ""


def _scan(src) -> dict[str, list[int]]:
    """Evidence lines in one test file: sqlite / postgresql URLs, real-PG fixtures,
    schema creation, sessions, mocks of the session."""
    ev: dict[str, list[int]] = {k: [] for k in ("sqlite", "postgresql", "pg_fixture", "schema", "session", "mock")}
    for node in walk(src.tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            mods = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
            if any(PG_FIXTURES.match(m) for m in mods):
                ev["pg_fixture"].append(node.lineno)
        elif isinstance(node, ast.Constant) and (kind := _url_kind(node.value)):
            ev[kind].append(node.lineno)
        elif isinstance(node, ast.Call):
            name = dotted(node.func)
            last = name.rsplit(".", 1)[-1]
            if last in ("PostgresContainer", "postgresql_proc", "postgresql_noproc"):
                ev["pg_fixture"].append(node.lineno)
            elif SCHEMA_CALLS.search(name) and ("metadata" in name or "command" in name or last == "run_sync"):
                ev["schema"].append(node.lineno)
            elif SESSION_CALLS.search(name) or last in ENGINE_CALLS:
                ev["session"].append(node.lineno)
            elif last in MOCKS and _mocks_db(node) or last in ("patch", "object") and any(DB_WORDS.search(str(literal(a))) for a in node.args[:2]
                                                      if isinstance(literal(a), str)):
                ev["mock"].append(node.lineno)
    return ev


def _is_sdist(ctx) -> bool:
    """The tree is a source distribution: ``PKG-INFO`` at its root (a file without a
    suffix, which the code index does not hold, so asked of the file system)."""
    return ctx.index.get("PKG-INFO") is not None or (Path(ctx.root) / "PKG-INFO").is_file()


def _mocks_db(call: ast.Call) -> bool:
    spec = [k.value for k in call.keywords if k.arg in ("spec", "spec_set")] + list(call.args[:1])
    return any(DB_WORDS.search(dotted(s)) for s in spec)


@check("TEST-003", "testing", "Integration tests use a real database")
def real_database(ctx):
    """Reads the test suite (conftest.py, fixtures, test modules) and the CI files:
    where do tests get their database? PostgreSQL evidence: testcontainers'
    ``PostgresContainer``, pytest-postgresql, a ``postgresql://`` URL used by an engine
    or ``DATABASE_URL``, together with schema creation (``metadata.create_all``,
    ``alembic upgrade``) or sessions; or a CI service running ``postgres`` / ``alembic
    upgrade``. SQLite URLs and mocked sessions (``AsyncMock(spec=AsyncSession)``,
    ``patch("...session...")``) are the alternatives.

    Why: PostgreSQL behaviour the app relies on (constraints, ``NULLS NOT DISTINCT``,
    JSONB, row locks, timezone-aware timestamps, transactional DDL) is absent from
    SQLite and from mocks: tests pass, production fails. Severity: WARNING when the
    tests run on SQLite, only on mocks, or never reach a database (a PostgreSQL URL set
    but no schema and no session created anywhere in the test code or CI); no test
    suite at all is a WARNING on the project root, saying "not verified" when the tree is
    a source distribution (``PKG-INFO`` at the root: release archives usually leave the
    tests out, so their absence describes the artefact, not the project). Real
    PostgreSQL is reported as INFO
    with its evidence. Not flagged: SQLite used next to a real PostgreSQL setup (e.g.
    for a unit-test subset).
    """
    chk = real_database.check
    files = test_files(ctx)
    if not files:
        sdist = _is_sdist(ctx)
        yield chk.finding(ctx, Severity.WARNING,
                          "Not verified: no tests in this source distribution" if sdist else "No test suite found",
                          ("not verified: this tree is a source distribution (PKG-INFO), which often leaves the "
                           "tests out; whether the suite exercises a real database could not be checked."
                           if sdist else
                           "No test files (test_*.py, *_test.py, conftest.py, tests/) were found, so nothing "
                           "exercises the database, migrations or queries before production."),
                          "Add a pytest suite whose fixtures create a PostgreSQL test database (testcontainers "
                          "or a CI service) and run the migrations.", ".", None, excerpt="", key="no-tests")
        return
    found: dict[str, list[tuple[str, int]]] = {}
    for src in files:
        for kind, lines in _scan(src).items():
            found.setdefault(kind, []).extend((src.path, n) for n in lines)
    ci = [(f.path, n) for f in ctx.index.select(["*.yml", "*.yaml"]) if f.text and (
        f.path.startswith(".github/") or ".gitlab-ci" in f.path or "ci" in f.path.split("/")[0].lower())
          for n, line in enumerate(f.text.splitlines(), 1) if CI_PG.search(line)]
    exercised = found["schema"] or found["session"]
    real = found["pg_fixture"] or (found["postgresql"] and exercised) or ci
    if real:
        file, line = real[0]
        yield chk.finding(ctx, Severity.INFO, "Tests use PostgreSQL",
                          f"Integration tests get a real PostgreSQL ({file}:{line}).", "", file, line, key="real")
        return
    if found["sqlite"]:
        file, line = found["sqlite"][0]
        yield chk.finding(
            ctx, Severity.WARNING, "Tests run on SQLite, production on PostgreSQL",
            "The test database is SQLite: PostgreSQL-specific behaviour the app relies on (constraint and "
            "NULL semantics, JSONB, row locking, timezone-aware timestamps, server defaults, migrations) is "
            "never exercised, so tests pass where production fails.",
            "Run integration tests against PostgreSQL: a testcontainers `PostgresContainer` fixture or a CI "
            "service, with `alembic upgrade head` before the session.", file, line, key="sqlite")
    elif found["mock"]:
        file, line = found["mock"][0]
        yield chk.finding(
            ctx, Severity.WARNING, "The database is only mocked in tests",
            "Tests replace the session with a mock and no test reaches a real database: queries, tenant "
            "filters, constraints and transactions are never executed.",
            "Keep mocks for unit tests, and add integration tests on a real PostgreSQL (testcontainers or a "
            "CI service) that run the queries.", file, line, key="mock")
    elif found["postgresql"]:
        file, line = found["postgresql"][0]
        yield chk.finding(
            ctx, Severity.WARNING, "No test exercises the database schema",
            "A PostgreSQL URL is configured for the tests, but no fixture creates the schema (`create_all`, "
            "`alembic upgrade`) or a session, and no CI file starts PostgreSQL: the suite runs without a "
            "database, so no query is tested.",
            "Add a session-scoped fixture that creates the test database and runs the migrations, and "
            "integration tests that go through the API to the database.", file, line, key="no-db")
    else:
        yield chk.finding(
            ctx, Severity.WARNING, "No test uses a database",
            f"None of the {len(files)} test file(s) configures a database URL, creates an engine or session, "
            "or starts a PostgreSQL container: the queries are untested.",
            "Add integration tests on a real PostgreSQL (testcontainers or a CI service) with migrations applied.",
            ctx.layout.test_paths[0] if ctx.layout.test_paths else files[0].path, None, excerpt="", key="no-db")
