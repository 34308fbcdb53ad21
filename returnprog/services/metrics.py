"""Use case: count operational events per day (``metric_counter``) without touching the
audit chain — e.g. anonymous verifications by verdict.

Each increment is one upsert (``INSERT … ON CONFLICT (name, day) DO UPDATE SET count =
count + n``) in a transaction of its own: on PostgreSQL it locks only that counter's row;
on SQLite it takes the write lock for one statement, never the audit head row, so a burst
of anonymous requests never queues behind (or ahead of) case work for longer than that.
"""
from __future__ import annotations

import datetime as dt

from sqlalchemy import select
from sqlmodel import Session

from ..db import upsert_into
from ..models import MetricCounter
from ..policy import TIMEZONE
from .uow import atomic, begin_write


def today() -> dt.date:
    """The counting day: the calendar day in the Netherlands."""
    return dt.datetime.now(TIMEZONE).date()


@atomic
def bump(session: Session, name: str, *, by: int = 1, day: dt.date | None = None) -> None:
    """Add ``by`` to counter ``name`` for ``day`` (today) and commit, on its own."""
    day = day or today()
    table = MetricCounter.__table__
    statement = upsert_into(session, table).values(name=name, day=day, count=by)
    statement = statement.on_conflict_do_update(
        index_elements=[table.c.name, table.c.day],
        set_={"count": table.c.count + statement.excluded.count})
    begin_write(session)
    session.execute(statement)
    session.commit()


def counts(session: Session, *, prefix: str = "", since: dt.date | None = None
           ) -> list[tuple[dt.date, str, int]]:
    """The counters (day, name, count) whose name starts with ``prefix``, from ``since``
    on, newest day first."""
    query = select(MetricCounter.day, MetricCounter.name, MetricCounter.count)
    if prefix:
        query = query.where(MetricCounter.name.startswith(prefix, autoescape=True))
    if since is not None:
        query = query.where(MetricCounter.day >= since)
    rows = session.execute(query.order_by(MetricCounter.day.desc(), MetricCounter.name))
    return [(row.day, row.name, row.count) for row in rows]
