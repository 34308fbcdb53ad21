"""Throwaway PostgreSQL server for the test suite.

Usage::

    from pgserver import PostgresServer   # or: from tests.pgserver import ...

    with PostgresServer() as pg:
        pg.create_database("app_template")
        engine = sqlalchemy.create_engine(pg.url("app_template"))
        ...
        engine.dispose()
        pg.create_database("app_test_1", template="app_template")
        pg.drop_database("app_test_1")

The server runs from the local PostgreSQL installation (Debian:
/usr/lib/postgresql/<ver>/bin) in a fresh temporary directory, listens on
127.0.0.1:<free port> plus a unix socket inside that directory, trusts all
local connections (superuser ``postgres``, no password) and is tuned for
speed, not durability (fsync/synchronous_commit/full_page_writes off).

When running as root (CI, containers) initdb and pg_ctl are run as the
unprivileged ``postgres`` system user (or ``returnprog-pg``, created on
demand) via ``runuser``/``setpriv``, because PostgreSQL refuses to run as
root.

Clean-up: ``stop()`` (also via the context manager and an ``atexit`` hook)
shuts the server down with ``pg_ctl stop -m immediate`` and deletes the
temporary directory.  Because ``atexit`` does not run when the test process
is SIGKILLed (CI timeouts, ``kill -9``, pytest-timeout's thread method), each
server also gets a tiny watchdog process that does the same clean-up as soon
as the process that started the server dies without calling ``stop()``.

If no server binaries are installed, ``RuntimeError`` is raised (never a
silent skip): run ``scripts/system-deps.sh``.
"""

from __future__ import annotations

import atexit
import glob
import json
import os
import pwd
import re
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import quote

import psycopg
from psycopg import sql
from psycopg.conninfo import make_conninfo

__all__ = ["PostgresServer", "find_pg_bindir", "BINARIES_NOT_FOUND"]

BINARIES_NOT_FOUND = (
    "PostgreSQL server binaries not found: "
    "run scripts/system-deps.sh (apt-get install postgresql)"
)

#: Environment variable that may point at a bin directory containing
#: pg_ctl/initdb/postgres; takes precedence over auto-detection.
BINDIR_ENV = "RETURNPROG_PG_BINDIR"
#: Glob for Debian/Ubuntu versioned installs; the highest version wins.
DEBIAN_BINDIR_GLOB = "/usr/lib/postgresql/*/bin"
#: System user created (when running as root) if ``postgres`` does not exist.
FALLBACK_USER = "returnprog-pg"
SUPERUSER = "postgres"
HOST = "127.0.0.1"

_REQUIRED_BINARIES = ("pg_ctl", "initdb", "postgres")
_SBIN_DIRS = ("/usr/sbin", "/sbin", "/usr/bin", "/bin")


# --------------------------------------------------------------------------
# Locating binaries
# --------------------------------------------------------------------------


def _has_server_binaries(bindir: str | os.PathLike[str] | None) -> bool:
    if not bindir:
        return False
    return all(os.access(os.path.join(bindir, b), os.X_OK) for b in _REQUIRED_BINARIES)


def _version_key(bindir: str) -> tuple[int, ...]:
    # /usr/lib/postgresql/15/bin -> (15,), /usr/lib/postgresql/9.6/bin -> (9, 6)
    version = os.path.basename(os.path.dirname(bindir))
    return tuple(int(p) for p in re.findall(r"\d+", version)) or (-1,)


def find_pg_bindir() -> str:
    """Return a directory containing pg_ctl, initdb and postgres.

    Order: ``$RETURNPROG_PG_BINDIR``, highest ``/usr/lib/postgresql/*/bin``,
    ``pg_config --bindir``, ``pg_ctl`` on ``$PATH``.
    """
    env_dir = os.environ.get(BINDIR_ENV)
    if env_dir:
        if _has_server_binaries(env_dir):
            return env_dir
        raise RuntimeError(
            f"${BINDIR_ENV}={env_dir!r} does not contain {', '.join(_REQUIRED_BINARIES)}"
        )

    for bindir in sorted(glob.glob(DEBIAN_BINDIR_GLOB), key=_version_key, reverse=True):
        if _has_server_binaries(bindir):
            return bindir

    pg_config = shutil.which("pg_config")
    if pg_config:
        try:
            out = subprocess.run(
                [pg_config, "--bindir"],
                capture_output=True,
                text=True,
                timeout=30,
                check=False,
            ).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            out = ""
        if _has_server_binaries(out):
            return out

    pg_ctl = shutil.which("pg_ctl")
    if pg_ctl:
        bindir = os.path.dirname(os.path.realpath(pg_ctl))
        if _has_server_binaries(bindir):
            return bindir

    raise RuntimeError(BINARIES_NOT_FOUND)


# --------------------------------------------------------------------------
# Running as an unprivileged user when we are root
# --------------------------------------------------------------------------

_user_lock = threading.Lock()


def _ensure_service_user() -> pwd.struct_passwd:
    """``postgres`` if it exists, else the ``returnprog-pg`` system user."""
    for name in (SUPERUSER, FALLBACK_USER):
        try:
            return pwd.getpwnam(name)
        except KeyError:
            pass
    with _user_lock:
        useradd = _find_tool("useradd")
        if useradd is None:
            raise RuntimeError(
                "running as root, no 'postgres' user and no useradd to create "
                f"{FALLBACK_USER!r}; run scripts/system-deps.sh"
            )
        last = None
        for attempt in range(10):  # parallel workers may race on /etc/passwd
            try:
                return pwd.getpwnam(FALLBACK_USER)
            except KeyError:
                pass
            last = subprocess.run(
                [useradd, "--system", "--no-create-home", "--home-dir", "/nonexistent",
                 "--shell", "/usr/sbin/nologin", FALLBACK_USER],
                capture_output=True,
                text=True,
                check=False,
            )
            if last.returncode == 0:
                break
            time.sleep(0.1 * (attempt + 1))
        try:
            return pwd.getpwnam(FALLBACK_USER)
        except KeyError:
            raise RuntimeError(
                f"could not create system user {FALLBACK_USER!r}: "
                f"{(last.stderr or last.stdout).strip() if last else ''}"
            ) from None


def _find_tool(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    for d in _SBIN_DIRS:
        candidate = os.path.join(d, name)
        if os.access(candidate, os.X_OK):
            return candidate
    return None


def _run_as_prefix(user: pwd.struct_passwd) -> list[str]:
    runuser = _find_tool("runuser")
    if runuser:
        return [runuser, "-u", user.pw_name, "--"]
    setpriv = _find_tool("setpriv")
    if setpriv:
        return [setpriv, f"--reuid={user.pw_uid}", f"--regid={user.pw_gid}",
                "--init-groups", "--"]
    raise RuntimeError("running as root but neither runuser nor setpriv is available")


def _traversable_by(path: Path, uid: int, gid: int) -> bool:
    """Can ``uid`` reach entries below ``path`` (x permission on every ancestor)?"""
    for p in [path, *path.parents]:
        try:
            st = p.stat()
        except OSError:
            return False
        if st.st_uid == uid:
            ok = st.st_mode & stat.S_IXUSR
        elif st.st_gid == gid:
            ok = st.st_mode & stat.S_IXGRP
        else:
            ok = st.st_mode & stat.S_IXOTH
        if not ok:
            return False
    return True


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


# Watchdog: blocks reading stdin; the pipe hits EOF when the owning process
# exits for any reason (including SIGKILL).  If the owner did not announce a
# clean stop, it stops the server and deletes the temp dir.  Runs with -I -S,
# stdlib only; ignores terminal signals so Ctrl-C cannot kill it before it
# has cleaned up.
_WATCHDOG_SRC = r"""
import json, shutil, signal, subprocess, sys
for s in (signal.SIGINT, signal.SIGHUP, signal.SIGQUIT, signal.SIGTSTP):
    signal.signal(s, signal.SIG_IGN)
stop_cmd, tmpdir = json.loads(sys.argv[1]), sys.argv[2]
for line in sys.stdin.buffer:  # line by line: forked children may hold the pipe
    if line == b"stopped\n":
        sys.exit(0)
try:
    subprocess.run(stop_cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL, cwd="/", timeout=60)
except Exception:
    pass
shutil.rmtree(tmpdir, ignore_errors=True)
"""


# --------------------------------------------------------------------------
# The server
# --------------------------------------------------------------------------


class PostgresServer:
    """A private PostgreSQL cluster in a temp dir; see module docstring."""

    def __init__(
        self,
        *,
        bindir: str | None = None,
        port: int | None = None,
        max_connections: int = 200,
        extra_config: dict[str, object] | None = None,
        startup_timeout: int = 60,
        watchdog: bool = True,
    ) -> None:
        if max_connections < 100:
            raise ValueError("max_connections must be >= 100")
        self._requested_bindir = bindir
        self._requested_port = port
        self.max_connections = max_connections
        self.extra_config = dict(extra_config or {})
        self.startup_timeout = startup_timeout
        self.use_watchdog = watchdog

        self.bindir: str | None = None
        self.port: int | None = None
        self.host = HOST
        self.tmpdir: Path | None = None
        self._user: pwd.struct_passwd | None = None
        self._prefix: list[str] = []
        self._watchdog: subprocess.Popen[bytes] | None = None
        self._owner_pid: int | None = None
        self._started = False
        self._lock = threading.RLock()

    # -- paths ------------------------------------------------------------

    @property
    def data_dir(self) -> Path:
        assert self.tmpdir is not None, "server not started"
        return self.tmpdir / "data"

    @property
    def socket_dir(self) -> Path:
        assert self.tmpdir is not None, "server not started"
        return self.tmpdir / "sock"

    @property
    def log_path(self) -> Path:
        assert self.tmpdir is not None, "server not started"
        return self.tmpdir / "postgres.log"

    @property
    def running(self) -> bool:
        return self._started

    def log_tail(self, max_chars: int = 6000) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except (OSError, AssertionError):
            return "<no server log>"
        return text[-max_chars:]

    # -- connection helpers ---------------------------------------------------

    def url(self, dbname: str = "postgres") -> str:
        """SQLAlchemy URL (psycopg 3 driver) for ``dbname``."""
        self._require_started()
        return f"postgresql+psycopg://{SUPERUSER}@{self.host}:{self.port}/{quote(dbname, safe='')}"

    def dsn(self, dbname: str = "postgres") -> str:
        """libpq conninfo string for ``dbname`` (for psycopg.connect)."""
        self._require_started()
        return make_conninfo(host=self.host, port=self.port, user=SUPERUSER, dbname=dbname)

    def connect(self, dbname: str = "postgres", **kwargs: object) -> psycopg.Connection:
        """Plain psycopg connection (autocommit unless overridden)."""
        kwargs.setdefault("autocommit", True)
        kwargs.setdefault("connect_timeout", 10)
        return psycopg.connect(self.dsn(dbname), **kwargs)

    # -- database management ------------------------------------------------

    def create_database(self, name: str, template: str | None = None) -> None:
        """CREATE DATABASE ``name`` [TEMPLATE ``template``].

        The template must have no open connections (dispose engines first);
        PostgreSQL itself waits up to 5 s for closing sessions to go away.
        """
        query = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
        if template is not None:
            query = sql.SQL("{} TEMPLATE {}").format(query, sql.Identifier(template))
        with self.connect() as conn:
            conn.execute(query)

    def drop_database(self, name: str) -> None:
        """Terminate all sessions on ``name`` and drop it (no error if missing)."""
        with self.connect() as conn:
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = %s AND pid <> pg_backend_pid()",
                (name,),
            )
            query = sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name))
            if conn.info.server_version >= 130000:
                query = sql.SQL("{} WITH (FORCE)").format(query)
            conn.execute(query)

    # -- lifecycle ----------------------------------------------------------

    def __enter__(self) -> PostgresServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> PostgresServer:
        with self._lock:
            if self._started:
                return self
            self.bindir = self._requested_bindir or find_pg_bindir()
            if not _has_server_binaries(self.bindir):
                raise RuntimeError(f"{BINARIES_NOT_FOUND} (looked in {self.bindir})")
            self._owner_pid = os.getpid()
            self._started = True  # so that stop() cleans up partial starts
            atexit.register(self._atexit_stop)
            try:
                self._setup_dirs()
                self._start_watchdog()
                self._initdb()
                self._start_postmaster()
                # pg_ctl -w said "ready"; prove that TCP + pg_hba work too.
                with self.connect() as conn:
                    conn.execute("SELECT 1")
            except BaseException:
                self.stop()
                raise
            return self

    def stop(self) -> None:
        """Stop immediately (no checkpoint) and delete the temp dir. Idempotent."""
        with self._lock:
            if not self._started:
                return
            self._started = False
            try:
                atexit.unregister(self._atexit_stop)
            except Exception:
                pass
            try:
                if self.tmpdir is not None and (self.data_dir / "postmaster.pid").exists():
                    self._pg_ctl_stop()
            finally:
                if self.tmpdir is not None:
                    shutil.rmtree(self.tmpdir, ignore_errors=True)
                self._stop_watchdog(clean=True)

    # -- internals ----------------------------------------------------------

    def _require_started(self) -> None:
        if not self._started or self.port is None:
            raise RuntimeError("PostgresServer is not running; call start() first")

    def _atexit_stop(self) -> None:
        # A forked child (multiprocessing) inherits atexit hooks: only the
        # process that started the server may stop it.
        if os.getpid() == self._owner_pid:
            self.stop()

    def _setup_dirs(self) -> None:
        if os.geteuid() == 0:
            self._user = _ensure_service_user()
            self._prefix = _run_as_prefix(self._user)
        else:
            self._user = None
            self._prefix = []

        bases = [None]
        if self._user is not None:
            bases += ["/tmp", "/var/tmp"]  # in case $TMPDIR is root-only
        for base in bases:
            tmp = Path(tempfile.mkdtemp(prefix="returnprog-pg-", dir=base))
            if self._user is None or _traversable_by(tmp.parent, self._user.pw_uid, self._user.pw_gid):
                break
            tmp.rmdir()
        else:
            raise RuntimeError(f"no temp directory accessible to user {self._user.pw_name!r}")
        self.tmpdir = tmp
        self.socket_dir.mkdir(mode=0o700)
        if self._user is not None:
            for p in (tmp, self.socket_dir):
                os.chown(p, self._user.pw_uid, self._user.pw_gid)

    def _env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        env["LC_ALL"] = "C"
        env.pop("LANG", None)
        env.pop("LANGUAGE", None)
        return env

    def _run(self, args: list[str], what: str, timeout: float) -> subprocess.CompletedProcess[str]:
        assert self.bindir is not None and self.tmpdir is not None
        cmd = [*self._prefix, os.path.join(self.bindir, args[0]), *args[1:]]
        try:
            proc = subprocess.run(
                cmd,
                cwd=self.tmpdir,  # root's cwd may not be readable by postgres
                env=self._env(),
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=timeout,
                check=False,
            )
        except subprocess.TimeoutExpired as e:
            raise RuntimeError(
                f"{what} timed out after {timeout}s: {' '.join(cmd)}\n"
                f"--- server log ({self.log_path}) ---\n{self.log_tail()}"
            ) from e
        return proc

    def _initdb(self) -> None:
        proc = self._run(
            ["initdb", "-D", str(self.data_dir), "-U", SUPERUSER, "--auth=trust",
             "--encoding=UTF8", "--locale=C", "--no-sync"],
            "initdb",
            timeout=300,
        )
        if proc.returncode != 0:
            raise RuntimeError(
                f"initdb failed (exit {proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
            )
        (self.data_dir / "pg_hba.conf").write_text(
            "# generated by tests/pgserver.py: trust local connections only\n"
            "local all         all              trust\n"
            "host  all         all 127.0.0.1/32 trust\n"
            "host  all         all ::1/128      trust\n"
            "local replication all              trust\n"
            "host  replication all 127.0.0.1/32 trust\n"
        )
        settings: dict[str, object] = {
            "listen_addresses": HOST,
            "unix_socket_directories": str(self.socket_dir),
            "max_connections": self.max_connections,
            "fsync": "off",
            "synchronous_commit": "off",
            "full_page_writes": "off",
            "logging_collector": "off",
            **self.extra_config,
        }
        with open(self.data_dir / "postgresql.conf", "a") as f:
            f.write("\n# --- tests/pgserver.py ---\n")
            for key, value in settings.items():
                if isinstance(value, str):
                    value = "'" + value.replace("'", "''") + "'"
                f.write(f"{key} = {value}\n")

    def _start_postmaster(self) -> None:
        attempts = 1 if self._requested_port else 5
        for attempt in range(attempts):
            self.port = self._requested_port or _free_port()
            proc = self._run(
                ["pg_ctl", "start", "-w", "-t", str(self.startup_timeout),
                 "-D", str(self.data_dir), "-l", str(self.log_path),
                 "-o", f"-p {self.port}"],
                "pg_ctl start",
                timeout=self.startup_timeout + 30,
            )
            if proc.returncode == 0:
                return
            log = self.log_tail()
            port_taken = "could not bind" in log or "Address already in use" in log
            if port_taken and attempt + 1 < attempts:
                self._pg_ctl_stop()  # paranoia: make sure nothing is half-up
                self.log_path.unlink(missing_ok=True)
                continue
            raise RuntimeError(
                f"PostgreSQL failed to start on {HOST}:{self.port} "
                f"(pg_ctl exit {proc.returncode}):\n{proc.stdout}{proc.stderr}"
                f"--- server log ({self.log_path}) ---\n{log}"
            )

    def _pg_ctl_stop(self) -> None:
        try:
            self._run(
                ["pg_ctl", "stop", "-w", "-t", "30", "-m", "immediate", "-D", str(self.data_dir)],
                "pg_ctl stop",
                timeout=60,
            )
        except Exception:
            pass
        # Last resort: if our postmaster is somehow still alive, kill it
        # (checking its command line so a recycled pid is never hit).
        try:
            pid = int((self.data_dir / "postmaster.pid").read_text().split("\n", 1)[0])
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
        except (OSError, ValueError):
            return
        if str(self.data_dir) in cmdline:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass

    def _stop_command(self) -> list[str]:
        assert self.bindir is not None
        return [*self._prefix, os.path.join(self.bindir, "pg_ctl"), "stop", "-w", "-t", "30",
                "-m", "immediate", "-D", str(self.data_dir)]

    def _start_watchdog(self) -> None:
        if not self.use_watchdog:
            return
        self._watchdog = subprocess.Popen(
            [sys.executable, "-I", "-S", "-c", _WATCHDOG_SRC,
             json.dumps(self._stop_command()), str(self.tmpdir)],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            cwd="/",
            env=self._env(),
            start_new_session=True,
        )

    def _stop_watchdog(self, clean: bool) -> None:
        wd, self._watchdog = self._watchdog, None
        if wd is None:
            return
        try:
            assert wd.stdin is not None
            if clean:
                wd.stdin.write(b"stopped\n")
                wd.stdin.flush()
            wd.stdin.close()
        except (OSError, ValueError):
            pass
        try:
            wd.wait(timeout=90)
        except subprocess.TimeoutExpired:
            wd.kill()
            wd.wait()

    def __repr__(self) -> str:
        state = f"{self.host}:{self.port}" if self._started else "stopped"
        return f"<PostgresServer {state} bindir={self.bindir} tmpdir={self.tmpdir}>"
