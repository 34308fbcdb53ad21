"""Daily counters (services.metrics): an upsert per increment that adds up under racing
writers on both engines and never touches the audit chain."""
from __future__ import annotations

import datetime as dt
import threading

from sqlalchemy import func, select
from sqlmodel import Session

from returnprog.models import AuditEvent, AuditHead
from returnprog.services import metrics


def test_counters_add_up_per_name_and_day(session):
    day = dt.date(2026, 12, 1)
    metrics.bump(session, "verify.web.valid", day=day)
    metrics.bump(session, "verify.web.valid", day=day, by=2)
    metrics.bump(session, "verify.web.invalid", day=day)
    metrics.bump(session, "verify.web.valid", day=day + dt.timedelta(days=1))
    metrics.bump(session, "other_thing", day=day)
    metrics.bump(session, "otherwise", day=day)
    assert metrics.counts(session, prefix="verify.") == [
        (day + dt.timedelta(days=1), "verify.web.valid", 1),
        (day, "verify.web.invalid", 1),
        (day, "verify.web.valid", 3),
    ]
    assert metrics.counts(session, prefix="verify.", since=day + dt.timedelta(days=1)) == [
        (day + dt.timedelta(days=1), "verify.web.valid", 1)]
    # "_" in a prefix is a character, not LIKE's wildcard
    assert metrics.counts(session, prefix="other_") == [(day, "other_thing", 1)]
    assert session.execute(select(func.count()).select_from(AuditEvent)).scalar_one() == 0
    assert session.get(AuditHead, 1) is None or session.get(AuditHead, 1).seq == 0


def test_racing_increments_are_all_counted(engine):
    errors = []

    def worker():
        try:
            with Session(engine) as own:
                for _ in range(25):
                    metrics.bump(own, "verify.web.invalid")
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    with Session(engine) as s:
        assert metrics.counts(s) == [(metrics.today(), "verify.web.invalid", 100)]
