"""Everything under the instance folder is 0600 (files) / 0700 (folders), made so by the
code that creates it, not by a lucky umask: the commands run here under umask 022.

The real commands and writers: ``init-db`` (instance folder, secret key, SQLite database),
a write through the engine (WAL and shared-memory files), ``seed-demo`` (demo credentials,
the development seal and its lock), a scheduler run (the scheduler lock) and the mail
sink (mail folder, ``.eml`` files). ``init-db`` also repairs files left loose by an older
version.
"""
from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from sqlalchemy import text

from returnprog import create_app, seed
from returnprog.mailsink import SinkHandler
from returnprog.scheduler import ReminderScheduler

MESSAGE = (b"From: returnprog@dtenv.example\r\nTo: olena@example.org\r\n"
           b"Message-ID: <modes-1@dtenv.example>\r\nSubject: test\r\n\r\nbody\r\n")


@pytest.fixture
def loose_umask():
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


@pytest.fixture
def instance_app(tmp_path, monkeypatch):
    """An app on the embedded default: SQLite in its own instance folder."""
    for key in [k for k in os.environ if k.startswith("RETURNPROG_")]:
        monkeypatch.delenv(key)
    instance = tmp_path / "instance"
    monkeypatch.setenv("RETURNPROG_INSTANCE_PATH", str(instance))
    app = create_app({"TESTING": True})
    assert app.instance_path == str(instance)
    yield app
    app.extensions["returnprog.engine"].dispose()


def modes(root: Path) -> dict[str, int]:
    out = {".": stat.S_IMODE(root.stat().st_mode)}
    for path in root.rglob("*"):
        out[str(path.relative_to(root))] = stat.S_IMODE(path.lstat().st_mode)
    return out


def invoke(app, *args):
    result = app.test_cli_runner().invoke(args=list(args))
    assert result.exit_code == 0, result.output
    return result


def test_everything_under_instance_is_private_whatever_the_umask(instance_app, loose_umask,
                                                                 monkeypatch):
    app = instance_app
    instance = Path(app.instance_path)
    invoke(app, "init-db")

    # SQLite's WAL and shared-memory files exist while a connection is open.
    engine = app.extensions["returnprog.engine"]
    with engine.connect() as conn:
        conn.execute(text("CREATE TABLE modes_probe (x INTEGER)"))
        conn.commit()
        assert (instance / "returnprog.sqlite-wal").exists()
        assert (instance / "returnprog.sqlite-shm").exists()
        wal_modes = {name: stat.S_IMODE((instance / name).stat().st_mode)
                     for name in ("returnprog.sqlite-wal", "returnprog.sqlite-shm")}
    assert wal_modes == {"returnprog.sqlite-wal": 0o600, "returnprog.sqlite-shm": 0o600}

    # One demo case with a signed document: the development seal is made on the way.
    monkeypatch.setattr(seed, "PLAN", [("committed", 1, 0, 0, None)])
    invoke(app, "seed-demo")
    with app.app_context():  # what `flask scheduler --once` runs (no signal handlers here)
        assert ReminderScheduler(app).run_once() == 0
    SinkHandler(instance / "mail").store(MESSAGE, rcpt_tos=["olena@example.org"])

    found = modes(instance)
    for expected in ("secret_key", "returnprog.sqlite", "demo-credentials.txt", "seal-key.pem",
                     "seal-cert.pem", ".seal.lock", "returnprog.sqlite.scheduler-lock", "mail"):
        assert expected in found, sorted(found)
    assert len([n for n in found if n.startswith("mail/") and n.endswith(".eml")]) == 1
    loose = {name: oct(mode) for name, mode in found.items()
             if mode != (0o700 if (instance / name).is_dir() else 0o600)}
    assert loose == {}


def test_init_db_repairs_an_instance_folder_left_loose(instance_app, loose_umask):
    app = instance_app
    instance = Path(app.instance_path)
    (instance / "mail").mkdir(parents=True)
    old_mail = instance / "mail" / "20260101T000000000000Z-0123456789abcdef.eml"
    old_mail.write_bytes(MESSAGE)
    (instance / "secret_key").write_text("an old key")
    os.chmod(instance, 0o755)
    assert stat.S_IMODE(old_mail.stat().st_mode) == 0o644
    invoke(app, "init-db")
    assert (instance / "secret_key").read_text() == "an old key"  # kept, only tightened
    found = modes(instance)
    assert found["."] == 0o700 and found["mail"] == 0o700
    assert {n: m for n, m in found.items() if not (instance / n).is_dir()} == {
        "secret_key": 0o600, "returnprog.sqlite": 0o600, "mail/" + old_mail.name: 0o600}
