"""Smoke tests for the throwaway PostgreSQL server helper (tests/pgserver.py)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

try:  # tests/ as a package (tests/__init__.py) or as a plain rootdir
    from tests import pgserver
except ImportError:  # pragma: no cover - depends on pytest import mode
    import pgserver  # type: ignore[no-redef]

PostgresServer = pgserver.PostgresServer


@pytest.fixture(scope="module")
def pg():
    with PostgresServer() as server:
        yield server


def _port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex(("127.0.0.1", port)) == 0


def test_version_and_create_from_template(pg):
    pg.create_database("pgs_template")
    engine = sa.create_engine(pg.url("pgs_template"))
    try:
        with engine.begin() as conn:
            version = conn.execute(sa.text("select version()")).scalar_one()
            assert version.startswith("PostgreSQL ")
            assert conn.execute(sa.text("show fsync")).scalar_one() == "off"
            assert int(conn.execute(sa.text("show max_connections")).scalar_one()) >= 100
            conn.execute(sa.text("create table item (id int primary key, name text)"))
            conn.execute(sa.text("insert into item values (1, 'from template')"))
    finally:
        engine.dispose()  # a template must have no open connections

    pg.create_database("pgs_copy", template="pgs_template")
    copy_engine = sa.create_engine(pg.url("pgs_copy"))
    try:
        with copy_engine.connect() as conn:
            assert conn.execute(sa.text("select name from item")).scalar_one() == "from template"
        # drop_database must succeed even with a session still open on it.
        held = copy_engine.connect()
        pg.drop_database("pgs_copy")
        held.invalidate()
    finally:
        copy_engine.dispose()

    with pg.connect() as conn:
        names = {r[0] for r in conn.execute("select datname from pg_database")}
    assert "pgs_template" in names and "pgs_copy" not in names
    pg.drop_database("pgs_copy")  # dropping a missing database is a no-op


def test_stop_removes_server_and_tempdir():
    server = PostgresServer()
    with server:
        port, tmpdir = server.port, server.tmpdir
        assert server.url("x") == f"postgresql+psycopg://postgres@127.0.0.1:{port}/x"
        assert (server.socket_dir / f".s.PGSQL.{port}").exists()
        assert _port_open(port)
    assert not server.running
    assert not tmpdir.exists()
    assert not _port_open(port)
    server.stop()  # idempotent


def test_killed_owner_does_not_leak_server(tmp_path):
    """SIGKILL skips atexit; the watchdog must still stop the server."""
    script = (
        "import sys, time\n"
        f"sys.path.insert(0, {str(Path(pgserver.__file__).parent)!r})\n"
        "import pgserver\n"
        "pg = pgserver.PostgresServer().start()\n"
        "print(pg.port, pg.tmpdir, flush=True)\n"
        "time.sleep(600)\n"
    )
    child = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        line = child.stdout.readline()
        assert line, "child failed to start a server"
        port_s, tmpdir_s = line.split()
        port, tmpdir = int(port_s), Path(tmpdir_s)
        assert _port_open(port)
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
        child.stdout.close()

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and (tmpdir.exists() or _port_open(port)):
        time.sleep(0.1)
    assert not tmpdir.exists()
    assert not _port_open(port)


def test_missing_binaries_raise(monkeypatch, tmp_path):
    monkeypatch.delenv(pgserver.BINDIR_ENV, raising=False)
    monkeypatch.setattr(pgserver, "DEBIAN_BINDIR_GLOB", str(tmp_path / "*" / "bin"))
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(RuntimeError, match="PostgreSQL server binaries not found"):
        PostgresServer().start()
