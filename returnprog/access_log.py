"""The access log: who looked at which personal data, when, from where and through which
view — kept apart from the audit chain of changes (DESIGN §5).

The chain serialises its appends on one head row, right for changes and wrong for reads:
every case view in the country would queue on it. A look is instead one row per reader,
case, view and subject per interval, written with an insert that ignores a row already
there. Readers never wait for each other; a page read again within the interval writes
nothing at all (an indexed read finds the row first). The log answers "who looked at this
case" and is what the records lifecycle's processing log is built from.

Flask-free: callers pass the session, the actor and the clock.
"""
from __future__ import annotations

import datetime as dt
import threading
import weakref
from collections import OrderedDict
from dataclasses import dataclass

from sqlalchemy import bindparam, select
from sqlmodel import Session

from .db import upsert_into
from .models import AccessEvent, User
from .processing_log import look_purpose

# Length of one interval: a reader's repeated looks at the same thing within it are one row.
INTERVAL_SECONDS = 15 * 60
VIEWS = ("case", "document", "payment", "trail", "notes", "evidence", "access_request")


@dataclass(frozen=True)
class Look:
    """One look to record: ``view`` is one of :data:`VIEWS`, ``subject`` narrows it (the
    document id of a download), ``channel`` is web, api or cli."""

    case_id: int
    view: str
    subject: str = ""
    channel: str = "web"
    # Why (processing_log.PURPOSES); by default from the reader's role and the view.
    purpose: str | None = None


def _key(actor, look: Look, now: dt.datetime, interval_seconds: int) -> dict:
    return {"actor": getattr(actor, "email", None) or str(actor),
            "actor_id": getattr(actor, "id", None), "case_id": look.case_id,
            "view": look.view, "subject": str(look.subject or ""),
            "interval": int(now.timestamp()) // interval_seconds}


# How many looks a process remembers per database (see :class:`_Known`): a worker serving
# a busy office sees a few thousand distinct looks an interval; a key is ~200 bytes.
KNOWN_LOOKS = 20_000


class _Known:
    """The looks this process knows are in the log (it found or wrote their row), per
    database, newest last, at most :data:`KNOWN_LOOKS`: a reader who opens the same case
    again within the interval then costs no statement at all. Sound because the log is
    append-only: nothing deletes its rows (a retention rule, when one comes, must spare
    the current interval), and a key is only added once its row is committed.

    Kept per connection pool, not per engine: ``engine.dispose()`` — what swapping or
    restoring the database under a running process must do anyway — starts a new pool
    and so forgets everything known about the old database."""

    def __init__(self):
        self._lock = threading.Lock()
        self._by_pool: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()

    def has(self, pool, key: tuple) -> bool:
        with self._lock:
            known = self._by_pool.get(pool)
            if known is None or key not in known:
                return False
            known.move_to_end(key)
            return True

    def add(self, pool, key: tuple) -> None:
        with self._lock:
            known = self._by_pool.setdefault(pool, OrderedDict())
            known[key] = None
            known.move_to_end(key)
            while len(known) > KNOWN_LOOKS:
                known.popitem(last=False)


_known = _Known()


def _pool_of(session: Session):
    bind = session.get_bind()
    return bind.engine.pool  # an Engine's .engine is itself; a Connection's, its engine


# What makes a look one row (the table's unique key), in that order.
_LOOK_KEY = ("actor", "case_id", "view", "subject", "interval")


def _known_key(key: dict) -> tuple:
    return tuple(key[name] for name in _LOOK_KEY)


# Every read asks: built once, with the look's key as parameters.
_LOGGED = (select(AccessEvent.id).where(
    AccessEvent.actor == bindparam("actor"), AccessEvent.case_id == bindparam("case_id"),
    AccessEvent.view == bindparam("view"), AccessEvent.subject == bindparam("subject"),
    AccessEvent.interval == bindparam("interval")).limit(1))


def already_logged(session: Session, actor, look: Look, now: dt.datetime,
                   interval_seconds: int = INTERVAL_SECONDS) -> bool:
    """True when this look is already in the log for the current interval (a plain read:
    the caller can then skip the write entirely). A look this process has seen in the log
    (:func:`remember`) is answered without asking the database."""
    key = _key(actor, look, now, interval_seconds)
    pool = _pool_of(session)
    if _known.has(pool, _known_key(key)):
        return True
    params = {name: key[name] for name in _LOOK_KEY}
    found = session.execute(_LOGGED, params).first() is not None
    if found:
        _known.add(pool, _known_key(key))
    return found


def remember(session: Session, actor, look: Look, now: dt.datetime,
             interval_seconds: int = INTERVAL_SECONDS) -> None:
    """Note that this look's row is committed (after :func:`record` and the commit), so
    that :func:`already_logged` answers it from memory for the rest of the interval."""
    _known.add(_pool_of(session), _known_key(_key(actor, look, now, interval_seconds)))


def record(session: Session, actor, look: Look, now: dt.datetime, ip: str | None = None,
           interval_seconds: int = INTERVAL_SECONDS) -> None:
    """Write the look in the caller's transaction unless the interval already has it.

    An insert that ignores the unique key: two workers recording the same look at once
    both succeed and leave one row. No audit head, no row lock shared with other readers.
    """
    key = _key(actor, look, now, interval_seconds)
    purpose = look.purpose or look_purpose(getattr(actor, "role", None), look.view,
                                           look.channel)
    values = {**key, "first_at": now, "channel": look.channel, "ip": ip, "purpose": purpose}
    session.execute(upsert_into(session, AccessEvent).values(**values).on_conflict_do_nothing(
        index_elements=list(_LOOK_KEY)))


def for_case(session: Session, case_id: int, *, limit: int = 50,
             before_id: int | None = None, with_names: bool = False) -> list:
    """The looks at one case, newest first, a page at a time (``before_id`` continues).
    With ``with_names`` each row is ``(look, name, email)`` of the reader's account,
    joined in the same statement (None, None for a reader without one)."""
    query = select(AccessEvent).where(AccessEvent.case_id == case_id)
    if with_names:
        query = (select(AccessEvent, User.name, User.email)
                 .outerjoin(User, User.id == AccessEvent.actor_id)
                 .where(AccessEvent.case_id == case_id))
    if before_id is not None:
        query = query.where(AccessEvent.id < before_id)
    result = session.execute(query.order_by(AccessEvent.id.desc()).limit(limit))
    return list(result.all() if with_names else result.scalars())
