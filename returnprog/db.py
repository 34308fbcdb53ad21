"""Database engine and sessions: one session per request or job.

SQLite (the embedded default) and PostgreSQL run the same code. SQLite ignores
``SELECT … FOR UPDATE``; writers instead take the write lock at the start of their
transaction (``BEGIN IMMEDIATE``) so a racing writer waits for ``busy_timeout`` rather
than failing half-way with "database is locked" (DESIGN §7).
"""
from __future__ import annotations

import functools
import os
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import create_engine, event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine
from sqlmodel import Session

SQLITE_BUSY_TIMEOUT_MS = 30_000
SQLITE_CACHE_KIB = 32 * 1024  # per connection


def make_engine(url: str, **kwargs) -> Engine:
    """Create the engine for ``url`` with the per-dialect settings the service relies on."""
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False,
                                                  "timeout": SQLITE_BUSY_TIMEOUT_MS / 1000},
                               **kwargs)
        _configure_sqlite(engine)
        return engine
    # A blackholed database host must not hang a request (or /readyz) for the operating
    # system's connect timeout of minutes.
    kwargs.setdefault("connect_args", {"connect_timeout": 10})
    kwargs.setdefault("pool_size", 10)
    kwargs.setdefault("max_overflow", 20)
    kwargs.setdefault("pool_pre_ping", True)
    return create_engine(url, **kwargs)


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn, _record):
        # Hand transaction control to SQLAlchemy's "begin" event below.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cur.execute("PRAGMA synchronous=NORMAL")
        # SQLite's default page cache (2 MB) is smaller than what a name search reads of
        # the FTS5 index at national scale (the doclists of trigrams like "enk"), so every
        # search read them again from the operating system: 5.2 → 3.5 ms at 150,000
        # cases with 32 MB (bench/README.md). The cache fills only as pages are read and
        # is kept across transactions until another connection writes.
        cur.execute(f"PRAGMA cache_size=-{SQLITE_CACHE_KIB}")
        # Deleted and overwritten content is zeroed in the file, not left in free space:
        # a destroyed case's names must not survive in the database file's bytes (issue 16),
        # nor a corrected name in the page it was corrected in.
        cur.execute("PRAGMA secure_delete=ON")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn):
        immediate = conn.get_execution_options().get("sqlite_immediate")
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def begin_write(session: Session) -> None:
    """Start the session's transaction as a writer.

    Anything read so far in this session (e.g. the signed-in user) was read-only, so it is
    released first; then SQLite takes its write lock up front. PostgreSQL needs nothing:
    compare-and-set updates and row locks do the work there.
    """
    if session.in_transaction():
        session.rollback()
    # Objects loaded before (even in an earlier, committed transaction) may be stale: the
    # services change rows by compare-and-set UPDATEs that do not touch loaded objects.
    session.expire_all()
    if session.get_bind().dialect.name == "sqlite":
        session.connection(execution_options={"sqlite_immediate": True})


def end_read(session: Session) -> None:
    """End the read-only start of a request (the bearer-token check) before its use case
    runs, where the database needs that.

    SQLite: the reader's snapshot must not stay pinned into a use case that may become the
    writer, so the read is committed (nothing was written; the loaded user stays loaded).
    PostgreSQL: nothing. Under READ COMMITTED every statement takes a fresh snapshot, so
    the open transaction pins nothing; ending it gave the connection back to the pool and
    the use case's first statement took one out again, with a ping and a new BEGIN: three
    round trips, 9-10% of an API case read at 150,000 cases. A use case that writes still
    starts afresh (:func:`begin_write` rolls the read back first).
    """
    if session.in_transaction() and is_sqlite(session):
        session.commit()


def upsert_into(bind, table):
    """``INSERT INTO table`` in the dialect of ``bind`` (a session, connection or engine),
    so that the ON CONFLICT clauses both databases share (``on_conflict_do_nothing`` /
    ``on_conflict_do_update``) can follow."""
    dialect = (bind.get_bind() if isinstance(bind, Session) else bind).dialect.name
    if dialect == "postgresql":
        return postgresql.insert(table)
    if dialect == "sqlite":
        return sqlite.insert(table)
    raise ValueError(f"the service runs on SQLite and PostgreSQL, not {dialect}")


def is_sqlite(session: Session) -> bool:
    """True when the session talks to SQLite."""
    return session.get_bind().dialect.name == "sqlite"


@contextmanager
def session_scope(engine: Engine):
    """A session for a job or command; closed (and rolled back if uncommitted) at the end."""
    session = Session(engine, expire_on_commit=False)
    try:
        yield session
    finally:
        session.close()


def make_sqlite_file_private(url: str) -> None:
    """For a SQLite file database: create the file as 0600 before SQLite does (it would
    follow the umask), and tighten an existing one with its ``-wal``/``-shm``. SQLite gives
    the WAL and shared-memory files the database file's own mode."""
    from sqlalchemy.engine import make_url

    from .files import FILE_MODE, open_private

    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return
    path = Path(parsed.database)
    path.parent.mkdir(parents=True, exist_ok=True)
    os.close(open_private(path, os.O_RDWR | os.O_CREAT))
    for extra in (Path(f"{path}-wal"), Path(f"{path}-shm")):
        if extra.exists():
            os.chmod(extra, FILE_MODE)


def upgrade(url: str) -> None:
    """Bring the schema at ``url`` to the newest Alembic migration."""
    from alembic import command

    command.upgrade(alembic_config(url), "head")


@functools.cache
def migration_heads() -> tuple[str, ...]:
    """The head revision(s) of this code's migrations (read from the migration files once
    per process): a database whose ``alembic_version`` differs is behind or ahead."""
    from alembic.script import ScriptDirectory

    return tuple(sorted(ScriptDirectory.from_config(alembic_config("sqlite://")).get_heads()))


def alembic_config(url: str):
    """Alembic configuration pointing at this package's migrations and ``url``."""
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(Path(__file__).parent / "migrations"))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg
