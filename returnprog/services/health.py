"""Is the service fit to take traffic? The scheduler's heartbeat and the readiness checks
behind ``/readyz`` (issue 10). No Flask: the scheduler writes the heartbeat, the web reads
it, and tests call both without an app.

The heartbeat is one row (``scheduler_heartbeat``, id 1) that whichever scheduler holds the
lock upserts: when it takes the lock, then every ``SCHEDULER_HEARTBEAT_SECONDS``. Being in
the database, web workers on any machine read the same answer. Clocks: the scheduler
stamps with its own clock and the web compares with its own, so machines need NTP — the
staleness limit (default 120 s) is far above any skew NTP leaves.

Readiness (:func:`readiness`) only reads: one short transaction, rolled back.
"""
from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Sequence

from sqlalchemy import select, text, update
from sqlalchemy.engine import Engine
from sqlmodel import Session

from ..db import begin_write, migration_heads, upsert_into
from ..models import SchedulerHeartbeat
from .outbox import delivery_health
from .uow import atomic

HEARTBEAT_ID = 1

# Anything shaped like an e-mail address: SMTP errors quote recipients ("550 <x@y>: no
# such user"), and neither the dashboard nor the heartbeat row may show them.
_ADDRESS = re.compile(r"[^\s<>()\[\],;:\"']+@[^\s<>()\[\],;:\"']+")


def without_addresses(message: str) -> str:
    """``message`` with every e-mail address replaced by ``[address]``."""
    return _ADDRESS.sub("[address]", message)


def _aware(value: dt.datetime | None) -> dt.datetime | None:
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=dt.timezone.utc)
    return value


@dataclass(frozen=True)
class Thresholds:
    """When readiness and the dashboard call something wrong (config keys in brackets)."""

    heartbeat_max_age: float = 120.0  # READY_HEARTBEAT_MAX_AGE_SECONDS
    outbox_max_due: int = 1000  # READY_OUTBOX_MAX_DUE
    outbox_max_due_age: float = 900.0  # READY_OUTBOX_MAX_DUE_AGE_SECONDS
    delivery_warning_age: float = 600.0  # DELIVERY_WARNING_AGE_SECONDS

    @classmethod
    def from_config(cls, config) -> "Thresholds":
        """Read the thresholds from a Flask config (or any mapping); defaults above."""
        d = cls()
        return cls(
            heartbeat_max_age=float(config.get("READY_HEARTBEAT_MAX_AGE_SECONDS")
                                    or d.heartbeat_max_age),
            outbox_max_due=int(config.get("READY_OUTBOX_MAX_DUE") or d.outbox_max_due),
            outbox_max_due_age=float(config.get("READY_OUTBOX_MAX_DUE_AGE_SECONDS")
                                     or d.outbox_max_due_age),
            delivery_warning_age=float(config.get("DELIVERY_WARNING_AGE_SECONDS")
                                       or d.delivery_warning_age))


# --- the heartbeat (written by the scheduler) ---------------------------------------------------

@atomic
def beat(session: Session, holder: str, now: dt.datetime, *, started: bool = False) -> None:
    """Record that ``holder`` (host and pid of the active scheduler) is alive at ``now``;
    ``started`` when it has just taken the lock. Commits."""
    begin_write(session)
    values = {"holder": holder[:200], "beat_at": now}
    if started:
        values["started_at"] = now
    stmt = upsert_into(session, SchedulerHeartbeat.__table__).values({"id": HEARTBEAT_ID, "started_at": now, **values})
    session.execute(stmt.on_conflict_do_update(index_elements=["id"], set_=values))
    session.commit()


@atomic
def record_delivery(session: Session, *, sent_at: dt.datetime | None,
                    error: str | None, error_at: dt.datetime | None) -> None:
    """Remember the latest successful hand-over and the latest SMTP error (addresses
    removed) of a delivery run, for the dashboard. Commits; nothing to do without either."""
    values: dict = {}
    if sent_at is not None:
        values["last_sent_at"] = sent_at
    if error is not None and error_at is not None:
        values.update(last_error=without_addresses(error)[:500], last_error_at=error_at)
    if not values:
        return
    begin_write(session)
    session.execute(update(SchedulerHeartbeat).where(SchedulerHeartbeat.id == HEARTBEAT_ID)
                    .values(**values).execution_options(synchronize_session=False))
    session.commit()


@dataclass(frozen=True)
class Heartbeat:
    """The heartbeat row as read by the web."""

    holder: str
    started_at: dt.datetime
    beat_at: dt.datetime
    last_sent_at: dt.datetime | None
    last_error: str | None
    last_error_at: dt.datetime | None


def heartbeat(session: Session) -> Heartbeat | None:
    """The latest heartbeat, or None when no scheduler ever ran on this database."""
    row = session.execute(select(SchedulerHeartbeat).where(
        SchedulerHeartbeat.id == HEARTBEAT_ID)).scalars().first()
    if row is None:
        return None
    return Heartbeat(row.holder, _aware(row.started_at), _aware(row.beat_at),
                     _aware(row.last_sent_at), row.last_error, _aware(row.last_error_at))


# --- readiness -------------------------------------------------------------------------------

@dataclass(frozen=True)
class Check:
    """One readiness check: its name, whether it passes and a short reason (no personal
    data: counts, ages, revision ids)."""

    name: str
    ok: bool
    reason: str


CHECKS = ("database", "migrations", "scheduler", "outbox")


def _seconds(delta: dt.timedelta) -> str:
    return f"{max(0, int(delta.total_seconds()))} s"


def _migrations(session: Session, heads: Sequence[str]) -> Check:
    try:
        current = set(session.execute(text("SELECT version_num FROM alembic_version")).scalars())
    except Exception:
        session.rollback()
        return Check("migrations", False, "no migration applied (alembic_version missing)")
    code = set(heads)
    if current == code:
        return Check("migrations", True, f"at {', '.join(sorted(code))}")
    have = ", ".join(sorted(current)) or "none"
    return Check("migrations", False,
                 f"database at {have}, code at {', '.join(sorted(code))}: run flask init-db")


def _scheduler(session: Session, now: dt.datetime, limits: Thresholds) -> Check:
    beat_row = heartbeat(session)
    if beat_row is None:
        return Check("scheduler", False, "no heartbeat: no scheduler has run")
    age = now - beat_row.beat_at
    if age.total_seconds() > limits.heartbeat_max_age:
        return Check("scheduler", False, f"last heartbeat {_seconds(age)} ago "
                                         f"(limit {int(limits.heartbeat_max_age)} s)")
    return Check("scheduler", True, f"heartbeat {_seconds(age)} ago")


def _outbox(session: Session, now: dt.datetime, limits: Thresholds) -> Check:
    state = delivery_health(session, now)
    if state.due > limits.outbox_max_due:
        return Check("outbox", False, f"{state.due} messages due (limit {limits.outbox_max_due})")
    if state.oldest_due_age is not None and \
            state.oldest_due_age.total_seconds() > limits.outbox_max_due_age:
        return Check("outbox", False, f"oldest due message waiting {_seconds(state.oldest_due_age)}"
                                      f" (limit {int(limits.outbox_max_due_age)} s)")
    waiting = f", oldest waiting {_seconds(state.oldest_due_age)}" if state.due else ""
    return Check("outbox", True, f"{state.due} messages due{waiting}")


def readiness(engine: Engine, now: dt.datetime, limits: Thresholds,
              heads: Sequence[str] | None = None) -> list[Check]:
    """Every readiness check, in :data:`CHECKS` order: the database answers, its schema is
    at the code's migration head(s), the scheduler's heartbeat is recent and the outbox
    backlog is within bounds. Reads only; when the database does not answer, the other
    checks fail as "not checked"."""
    heads = migration_heads() if heads is None else heads
    with Session(engine, autoflush=False) as session:
        try:
            session.execute(text("SELECT 1"))
        except Exception as exc:
            reason = f"unreachable ({type(exc).__name__})"
            return [Check("database", False, reason)] + [
                Check(name, False, "not checked: database unreachable") for name in CHECKS[1:]]
        checks = [Check("database", True, "reachable"), _migrations(session, heads)]
        if not checks[1].ok:
            # Tables may be missing or different: reading them would only add noise.
            return checks + [Check(name, False, "not checked: migrations not current")
                             for name in CHECKS[2:]]
        checks += [_scheduler(session, now, limits), _outbox(session, now, limits)]
        session.rollback()
        return checks
