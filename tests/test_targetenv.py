"""Tests for auditlib.target.targetenv: a real Alembic project migrated against the
embedded PostgreSQL, and offline venv provisioning from hand-built wheels."""

from __future__ import annotations

import base64
import hashlib
import os
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import psycopg
import pytest

from auditlib.target import targetenv
from auditlib.target.targetenv import (
    DB_URL_VARS,
    NO_TARGET_ENV,
    AlembicRun,
    database_env,
    detect_driver_scheme,
    environment_key,
    parse_failing_revision,
    resolve_target_python,
    run_alembic,
)

REV1 = "aaaa00000001"
REV2 = "bbbb00000002"
PASSWORD = "S3cr3t-Pa55-xyzzy"

ALEMBIC_INI = textwrap.dedent("""
    [alembic]
    script_location = migrations

    [loggers]
    keys = root,sqlalchemy,alembic

    [handlers]
    keys = console

    [formatters]
    keys = generic

    [logger_root]
    level = WARN
    handlers = console
    qualname =

    [logger_sqlalchemy]
    level = WARN
    handlers =
    qualname = sqlalchemy.engine

    [logger_alembic]
    level = INFO
    handlers =
    qualname = alembic

    [handler_console]
    class = StreamHandler
    args = (sys.stderr,)
    level = NOTSET
    formatter = generic

    [formatter_generic]
    format = %(levelname)-5.5s [%(name)s] %(message)s
""")

ENV_PY = textwrap.dedent("""
    import os, time
    from logging.config import fileConfig

    import sqlalchemy as sa
    from alembic import context

    config = context.config
    if config.config_file_name:
        fileConfig(config.config_file_name)

    # Targets often echo their settings; the audit must scrub them.
    print("connecting to", os.environ["DATABASE_URL"], "pw", os.environ.get("PGPASSWORD"))
    print("inherited AUDIT_SECRET_DB_DSN =", os.environ.get("AUDIT_SECRET_DB_DSN"))
    if os.environ.get("TEST_SLEEP"):
        time.sleep(float(os.environ["TEST_SLEEP"]))

    engine = sa.create_engine(os.environ["DATABASE_URL"])
    with engine.connect() as connection:
        context.configure(connection=connection, transaction_per_migration=True)
        with context.begin_transaction():
            context.run_migrations()
""")

REV1_PY = textwrap.dedent(f'''
    """create books"""
    from alembic import op
    import sqlalchemy as sa

    revision = "{REV1}"
    down_revision = None
    branch_labels = None
    depends_on = None

    def upgrade():
        op.create_table("books", sa.Column("id", sa.Integer, primary_key=True),
                        sa.Column("title", sa.Text, nullable=False))

    def downgrade():
        op.drop_table("books")
''')

REV2_OK = 'op.add_column("books", sa.Column("isbn", sa.Text))'
REV2_FAIL = 'op.execute("ALTER TABLE no_such_table ADD COLUMN isbn text")'


def _rev2_py(body: str) -> str:
    return textwrap.dedent(f'''
        """add isbn"""
        from alembic import op
        import sqlalchemy as sa

        revision = "{REV2}"
        down_revision = "{REV1}"
        branch_labels = None
        depends_on = None

        def upgrade():
            {body}

        def downgrade():
            pass
    ''')


def make_project(root: Path, failing: bool = False) -> Path:
    """A minimal Alembic project; returns the alembic.ini path."""
    versions = root / "migrations" / "versions"
    versions.mkdir(parents=True)
    (root / "alembic.ini").write_text(ALEMBIC_INI)
    (root / "migrations" / "env.py").write_text(ENV_PY)
    (root / "migrations" / "script.py.mako").write_text("")
    (versions / f"{REV1}_create_books.py").write_text(REV1_PY)
    (versions / f"{REV2}_add_isbn.py").write_text(_rev2_py(REV2_FAIL if failing else REV2_OK))
    return root / "alembic.ini"


@pytest.fixture
def password_db(pg):
    """A fresh database owned by a role with a password; yields its URL."""
    role = "auditor_" + os.urandom(4).hex()
    with psycopg.connect(pg.url(driver=""), autocommit=True) as conn:
        conn.execute(f"CREATE ROLE {role} LOGIN PASSWORD '{PASSWORD}'")
    name = pg.create_database().rsplit("/", 1)[1]
    with psycopg.connect(pg.url(driver=""), autocommit=True) as conn:
        conn.execute(f'ALTER DATABASE "{name}" OWNER TO {role}')
    yield f"postgresql://{role}:{PASSWORD}@{pg.host}:{pg.port}/{name}"
    pg.drop_database(name)
    with psycopg.connect(pg.url(driver=""), autocommit=True) as conn:
        conn.execute(f"DROP ROLE {role}")


def _all_text(run: AlembicRun) -> str:
    return "\n".join([run.stdout, run.stderr, *run.args, *run.command])


def _alembic_version(url: str) -> list[str]:
    with psycopg.connect(url) as conn:
        return [r[0] for r in conn.execute("select version_num from alembic_version")]


# -- run_alembic --------------------------------------------------------------


def test_upgrade_head_succeeds(tmp_path, password_db, monkeypatch):
    # The audit's own settings must not leak into (or redirect) the target.
    monkeypatch.setenv("DATABASE_URL", "postgresql://wrong:leaked@192.0.2.1/nope")
    monkeypatch.setenv("PGHOST", "192.0.2.1")
    monkeypatch.setenv("AUDIT_SECRET_DB_DSN", "postgresql://a:b@c/d")
    ini = make_project(tmp_path)

    run = run_alembic(Path(sys.executable), ini, password_db, ["upgrade", "head"], timeout=60)

    assert run.ok, run.output
    assert run.returncode == 0 and not run.timed_out
    assert run.failing_revision is None
    assert run.args == ["upgrade", "head"]
    assert f"Running upgrade  -> {REV1}" in run.stderr
    assert f"Running upgrade {REV1} -> {REV2}" in run.stderr
    assert "inherited AUDIT_SECRET_DB_DSN = None" in run.stdout
    assert _alembic_version(password_db) == [REV2]
    assert 0 < run.duration < 60
    # The password reached the target (connection worked) but not our output.
    assert "connecting to postgresql+psycopg://" in run.stdout
    assert PASSWORD not in _all_text(run)
    assert "***" in run.stdout
    assert not list(tmp_path.rglob("__pycache__")), "target tree was written to"


def test_failing_migration_reports_revision(tmp_path, password_db):
    ini = make_project(tmp_path, failing=True)

    run = run_alembic(Path(sys.executable), ini, password_db, ["upgrade", "head"], timeout=60)

    assert not run.ok
    assert run.returncode not in (0, None) and not run.timed_out
    assert run.failing_revision == REV2
    assert "no_such_table" in run.stderr
    assert PASSWORD not in _all_text(run)
    # transaction_per_migration: the first revision stays applied.
    assert _alembic_version(password_db) == [REV1]


def test_timeout_kills_and_flags(tmp_path, password_db):
    ini = make_project(tmp_path)
    run = run_alembic(Path(sys.executable), ini, password_db, ["upgrade", "head"],
                      timeout=1.5, env_extra={"TEST_SLEEP": "60"})
    assert run.timed_out and not run.ok
    assert run.duration < 15
    assert "timeout" in run.stderr
    assert PASSWORD not in _all_text(run)


def test_missing_interpreter_is_a_result_not_an_exception(tmp_path, pg):
    ini = make_project(tmp_path)
    run = run_alembic(tmp_path / "no-python", ini, pg.url(driver=""), ["current"])
    assert not run.ok and run.returncode is None
    assert "cannot start" in run.stderr


def test_parse_failing_revision():
    out = (
        "INFO  [alembic.runtime.migration] Running upgrade  -> 1a2b, init\n"
        "INFO  [alembic.runtime.migration] Running upgrade 1a2b -> 3c4d, add things\n"
        "Traceback (most recent call last):\n  ...\nsqlalchemy.exc.ProgrammingError: boom\n"
    )
    assert parse_failing_revision(out) == "3c4d"
    assert parse_failing_revision("Running upgrade a1, b2 -> c3, merge") == "c3"
    assert parse_failing_revision("Running downgrade 3c4d -> 1a2b, add things") == "3c4d"
    assert parse_failing_revision("ImportError: no module named app") is None


# -- environment ----------------------------------------------------------------


def test_database_env():
    env = database_env("postgresql://u:p%40w@127.0.0.1:5999/db1", "postgresql+asyncpg")
    for name in DB_URL_VARS:
        assert env[name] == "postgresql+asyncpg://u:p%40w@127.0.0.1:5999/db1"
    assert env["PGHOST"] == "127.0.0.1" and env["PGPORT"] == "5999"
    assert env["PGUSER"] == "u" and env["PGDATABASE"] == "db1"
    assert env["PGPASSWORD"] == "p@w"
    assert env["POSTGRES_DB"] == "db1" and env["POSTGRES_SERVER"] == "127.0.0.1"

    env = database_env("postgresql://auditlib@127.0.0.1:5432/x", "postgresql")
    assert env["DATABASE_URL"] == "postgresql://auditlib@127.0.0.1:5432/x"
    assert "PGPASSWORD" not in env


def test_detect_driver_scheme(tmp_path):
    assert detect_driver_scheme(tmp_path) == "postgresql+psycopg"  # default

    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "db.py").write_text(
        'URL = "postgresql+asyncpg://u@h/d"\n'
        'url = os.environ["DATABASE_URL"].replace("postgres://", "postgresql+asyncpg://")\n'
        '# a comment mentioning postgresql+psycopg2://x is not a string literal\n'
    )
    (tmp_path / ".env.example").write_text("DATABASE_URL=postgresql+asyncpg://u:p@localhost/app\n")
    # vendored / virtualenv code is ignored
    (tmp_path / ".venv" / "lib").mkdir(parents=True)
    (tmp_path / ".venv" / "lib" / "x.py").write_text('\n'.join(['"postgresql+psycopg2://a"'] * 10))
    assert detect_driver_scheme(tmp_path) == "postgresql+asyncpg"

    other = tmp_path / "other"
    other.mkdir()
    (other / "alembic.ini").write_text("[alembic]\nsqlalchemy.url = postgresql+psycopg2://u@h/d\n")
    assert detect_driver_scheme(other) == "postgresql+psycopg2"

    tie = tmp_path / "tie"
    tie.mkdir()
    (tie / "s.py").write_text('a = "postgresql://x"\nb = "postgresql+psycopg://y"\n')
    assert detect_driver_scheme(tie) == "postgresql+psycopg"  # explicit driver wins ties


# -- resolve_target_python --------------------------------------------------------


def test_resolve_explicit_and_missing(tmp_path):
    py, why = resolve_target_python(tmp_path, sys.executable, provision=False)
    assert py == Path(sys.executable)  # symlinks not resolved (venv python)
    assert "alembic" in why

    assert resolve_target_python(tmp_path, None, provision=False) == (None, NO_TARGET_ENV)

    py, why = resolve_target_python(tmp_path, str(tmp_path / "nope"), provision=False)
    assert py is None and "no such file" in why

    plain = tmp_path / "plain.txt"
    plain.write_text("x")
    py, why = resolve_target_python(tmp_path, str(plain), provision=False)
    assert py is None and "not an executable" in why

    # An interpreter without alembic is rejected up front.
    bare = tmp_path / "bare-venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(bare)], check=True)
    py, why = resolve_target_python(tmp_path, str(bare / "bin" / "python"), provision=False)
    assert py is None and "cannot import alembic" in why


def make_wheel(dest: Path, name: str, version: str, files: dict[str, str]) -> Path:
    """Build a minimal pure-Python wheel by hand (no network, no build tools)."""
    dist = f"{name}-{version}.dist-info"
    files = dict(files)
    files[f"{dist}/METADATA"] = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
    files[f"{dist}/WHEEL"] = ("Wheel-Version: 1.0\nGenerator: auditlib-tests\n"
                              "Root-Is-Purelib: true\nTag: py3-none-any\n")
    record = []
    for path, content in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(content.encode()).digest()).rstrip(b"=")
        record.append(f"{path},sha256={digest.decode()},{len(content.encode())}")
    record.append(f"{dist}/RECORD,,")
    files[f"{dist}/RECORD"] = "\n".join(record) + "\n"
    wheel = dest / f"{name}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        for path, content in files.items():
            zf.writestr(path, content)
    return wheel


@pytest.fixture
def wheelhouse(tmp_path):
    """Local index: the target's dependency and a stand-in ``alembic``."""
    d = tmp_path / "wheels"
    d.mkdir()
    make_wheel(d, "tinydep", "1.0", {"tinydep/__init__.py": "VALUE = 42\n"})
    make_wheel(d, "alembic", "0.0.1", {"alembic/__init__.py": "__version__ = '0.0.1'\n"})
    return d


def _offline(index: Path) -> list[str]:
    return ["--no-index", "--find-links", str(index)]


def _imports(python: Path, code: str) -> str:
    return subprocess.run([str(python), "-c", code], capture_output=True, text=True,
                          check=True).stdout.strip()


def test_provision_creates_then_reuses(tmp_path, wheelhouse):
    target = tmp_path / "target"
    target.mkdir()
    (target / "requirements.txt").write_text("tinydep==1.0\n")
    cache = tmp_path / "cache"

    py, why = resolve_target_python(target, None, provision=True, cache_dir=cache,
                                    extra_pip_args=_offline(wheelhouse), timeout=120)
    assert py is not None, why
    assert why.startswith("provisioned") and "requirements.txt" in why
    assert py.parent.parent.parent == cache
    assert (py.parent.parent / ".auditlib-complete").is_file()
    assert _imports(py, "import tinydep, alembic; print(tinydep.VALUE)") == "42"

    # Reuse: an empty index would make any pip install fail, so success
    # proves nothing was installed again.
    empty = tmp_path / "empty-index"
    empty.mkdir()
    py2, why2 = resolve_target_python(target, None, provision=True, cache_dir=cache,
                                      extra_pip_args=_offline(empty))
    assert py2 == py and why2.startswith("reused"), why2

    # Unrelated files don't change the key; a dependency change does.
    key = py.parent.parent.name
    (target / "README.md").write_text("docs")
    assert environment_key(target, sys.version) == key
    (target / "requirements").mkdir()
    (target / "requirements" / "extra.txt").write_text("tinydep\n")
    assert environment_key(target, sys.version) != key


def test_provision_failure_leaves_no_marker_and_retries(tmp_path, wheelhouse):
    target = tmp_path / "target"
    target.mkdir()
    (target / "pyproject.toml").write_text(textwrap.dedent("""
        [project]
        name = "target"
        version = "1"
        dependencies = ["tinydep==1.0", "not-in-index==9.9"]
    """))
    cache = tmp_path / "cache"
    py, why = resolve_target_python(target, None, provision=True, cache_dir=cache,
                                    extra_pip_args=_offline(wheelhouse), timeout=120)
    assert py is None
    assert why.startswith("provisioning failed") and "not-in-index" in why
    assert not list(cache.glob("*/.auditlib-complete"))
    assert not [p for p in cache.iterdir() if p.is_dir()]  # partial venv removed

    # Fix the declared dependencies: provisioning now works from pyproject
    # alone (the project itself is not installed).
    (target / "pyproject.toml").write_text(textwrap.dedent("""
        [project]
        name = "target"
        version = "1"
        dependencies = ["tinydep==1.0"]
    """))
    py, why = resolve_target_python(target, None, provision=True, cache_dir=cache,
                                    extra_pip_args=_offline(wheelhouse), timeout=120)
    assert py is not None, why
    assert "pyproject.toml [project].dependencies" in why
    assert _imports(py, "import tinydep; print(tinydep.VALUE)") == "42"
    assert _imports(py, "import importlib.util as u; print(u.find_spec('target'))") == "None"


def test_provision_without_outer_pip(tmp_path, wheelhouse, monkeypatch):
    """Fallback path: a venv with its own pip (ensurepip), e.g. when the
    auditor's environment has no pip >= 22.3."""
    monkeypatch.setattr(targetenv, "_outer_pip_supports_python_option", lambda: False)
    target = tmp_path / "target"
    target.mkdir()
    (target / "requirements-prod.txt").write_text("tinydep==1.0\n")
    py, why = resolve_target_python(target, None, provision=True, cache_dir=tmp_path / "c",
                                    extra_pip_args=_offline(wheelhouse), timeout=120)
    assert py is not None, why
    assert _imports(py, "import tinydep, alembic, pip; print(tinydep.VALUE)") == "42"
