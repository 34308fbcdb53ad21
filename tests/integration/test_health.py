"""Readiness, the scheduler heartbeat, delivery health and the release of a dead
scheduler's claims — the service functions on both databases (issue 10)."""
from __future__ import annotations

import datetime as dt

from alembic import command
from sqlalchemy import select
from sqlalchemy.engine import make_url

from returnprog import db as dbmod
from returnprog import reminders as plan
from returnprog.models import OutboxMessage
from returnprog.services import health, outbox

from .test_reminders_delivery import FakeClock, RETRY, deliver, free_port, smtp  # noqa: F401

NOW = dt.datetime(2026, 6, 1, 9, 0, tzinfo=dt.timezone.utc)
LIMITS = health.Thresholds(heartbeat_max_age=120, outbox_max_due=5, outbox_max_due_age=900)


def message(n: int, recipient: str = "olena@example.org") -> plan.Message:
    return plan.Message(key=f"test|{n}", case_id=None, kind="test", recipient=recipient,
                        language="nl", subject=f"Test {n}", body_text="Hallo", body_html="<p>Hallo</p>")


def queue(session, count: int, at: dt.datetime) -> None:
    start = session.execute(select(OutboxMessage.id)).scalars().all()
    outbox.enqueue(session, [message(len(start) + i) for i in range(count)], now=at)
    session.commit()


def checks(engine, now=NOW, limits=LIMITS) -> dict[str, health.Check]:
    return {c.name: c for c in health.readiness(engine, now, limits)}


def failing(engine, now=NOW, limits=LIMITS) -> set[str]:
    return {name for name, c in checks(engine, now, limits).items() if not c.ok}


def test_a_migrated_database_with_a_fresh_heartbeat_and_no_backlog_is_ready(engine, session):
    health.beat(session, "host:1", NOW - dt.timedelta(seconds=30), started=True)
    result = checks(engine)
    assert list(result) == list(health.CHECKS)
    assert all(c.ok for c in result.values()), result
    assert result["migrations"].reason == f"at {', '.join(dbmod.migration_heads())}"


def test_without_any_heartbeat_the_scheduler_check_fails(engine):
    result = checks(engine)
    assert failing(engine) == {"scheduler"}
    assert "no heartbeat" in result["scheduler"].reason


def test_a_stale_heartbeat_fails_and_a_new_beat_recovers(engine, session):
    health.beat(session, "host:1", NOW - dt.timedelta(seconds=121), started=True)
    assert failing(engine) == {"scheduler"}
    assert "121 s ago" in checks(engine)["scheduler"].reason
    health.beat(session, "host:2", NOW - dt.timedelta(seconds=5))
    assert failing(engine) == set()
    beat = health.heartbeat(session)
    # A beat keeps the start of the current holder's term; a takeover starts a new one.
    assert beat.holder == "host:2" and beat.started_at == NOW - dt.timedelta(seconds=121)
    health.beat(session, "host:3", NOW, started=True)
    assert health.heartbeat(session).started_at == NOW


def test_a_database_behind_the_code_head_is_not_ready(engine, session, db_url):
    health.beat(session, "host:1", NOW, started=True)
    session.close()
    command.downgrade(dbmod.alembic_config(db_url), "-1")
    result = checks(engine)
    assert not result["migrations"].ok
    assert "run flask init-db" in result["migrations"].reason
    # Tables of an unknown schema are not read; those checks say why they did not run.
    assert {c.reason for n, c in result.items() if n in ("scheduler", "outbox")} == {
        "not checked: migrations not current"}
    dbmod.upgrade(db_url)
    assert checks(engine)["migrations"].ok


def test_a_backlog_over_the_count_or_age_limit_is_not_ready(engine, session):
    health.beat(session, "host:1", NOW, started=True)
    queue(session, 5, NOW - dt.timedelta(seconds=60))
    assert failing(engine) == set()
    assert checks(engine)["outbox"].reason == "5 messages due, oldest waiting 60 s"
    queue(session, 1, NOW)
    assert failing(engine) == {"outbox"}
    assert checks(engine)["outbox"].reason == "6 messages due (limit 5)"
    roomy = health.Thresholds(outbox_max_due=100, outbox_max_due_age=59)
    assert failing(engine, limits=roomy) == {"outbox"}
    assert "waiting 60 s (limit 59 s)" in checks(engine, limits=roomy)["outbox"].reason
    # Messages waiting for a later retry are not a backlog the scheduler is behind on.
    assert failing(engine, now=NOW - dt.timedelta(seconds=61), limits=roomy) == set()


def test_an_unreachable_database_fails_every_check_without_raising(db_url):
    url = make_url(db_url)
    if url.get_backend_name() == "sqlite":
        bad = "sqlite:////nonexistent-dir/returnprog.sqlite"
    else:
        bad = url.set(port=free_port()).render_as_string(hide_password=False)
    engine = dbmod.make_engine(bad)
    try:
        result = checks(engine)
    finally:
        engine.dispose()
    assert not any(c.ok for c in result.values())
    assert result["database"].reason == "unreachable (OperationalError)"
    assert bad.rsplit("/", 1)[-1] not in result["database"].reason


def test_delivery_health_reports_the_backlog_and_the_last_error_without_addresses(session):
    empty = outbox.delivery_health(session, NOW)
    assert (empty.unsent, empty.due, empty.oldest_due_age, empty.last_error) == (0, 0, None, None)
    assert not empty.failing(dt.timedelta(minutes=10))
    health.beat(session, "host:1", NOW, started=True)
    queue(session, 3, NOW - dt.timedelta(minutes=20))
    queue(session, 2, NOW + dt.timedelta(minutes=5))  # a retry scheduled for later
    state = outbox.delivery_health(session, NOW)
    assert (state.unsent, state.due, state.oldest_due_age) == (5, 3, dt.timedelta(minutes=20))
    assert state.failing(dt.timedelta(minutes=10)) and not state.last_attempt_failed
    assert not state.failing(dt.timedelta(minutes=30))

    health.record_delivery(session, sent_at=NOW - dt.timedelta(minutes=3),
                           error="recipient refused: {'olena@example.org': (550, b'No such "
                                 "mailbox <olena@example.org>')}",
                           error_at=NOW - dt.timedelta(minutes=2))
    state = outbox.delivery_health(session, NOW)
    assert state.last_attempt_failed and state.failing(dt.timedelta(minutes=30))
    assert "@" not in state.last_error and "[address]" in state.last_error
    assert "550" in state.last_error
    health.record_delivery(session, sent_at=NOW - dt.timedelta(minutes=1), error=None,
                           error_at=None)
    state = outbox.delivery_health(session, NOW)
    assert not state.last_attempt_failed and state.last_error_at == NOW - dt.timedelta(minutes=2)


def test_a_new_scheduler_releases_its_dead_predecessors_claims_at_once(session, smtp):  # noqa: F811
    """Claims left by a crashed sender are due again at takeover, not after the lease;
    each message is still sent once, and the dead sender cannot record an outcome."""
    clock = FakeClock(dt.datetime.now(dt.timezone.utc))
    queue(session, 4, clock())
    claims, _ = outbox.claim_due(session, clock(), limit=3,
                                 lease=dt.timedelta(seconds=RETRY.lease_seconds))
    assert len(claims) == 3  # ... and the sender dies here
    sent = session.execute(select(OutboxMessage).where(OutboxMessage.id.not_in(
        [c.id for c in claims]))).scalar_one()
    sent.status, sent.sent_at = "sent", clock()
    session.commit()
    assert deliver(session, smtp.port, clock).claimed == 0  # still leased for 300 s

    clock.advance(1)
    assert outbox.release_orphaned_claims(session, clock()) == 3
    state = outbox.delivery_health(session, clock())
    assert (state.unsent, state.due) == (3, 3)
    report = deliver(session, smtp.port, clock)
    assert report.sent == 3
    session.rollback()
    assert sorted(session.execute(select(OutboxMessage.status)).scalars()) == ["sent"] * 4
    assert sorted(smtp.handler.keys()) == sorted(c.key for c in claims)
    assert not outbox._finish(session, claims[0], status="failed")
    assert outbox.release_orphaned_claims(session, clock()) == 0


def test_a_sender_that_lost_the_lock_stops_before_its_next_message(session, smtp):  # noqa: F811
    clock = FakeClock(dt.datetime.now(dt.timezone.utc))
    queue(session, 3, clock())

    def holding() -> bool:
        return len(smtp.handler.raw) < 1  # the lock is lost once the first one is out

    report = deliver(session, smtp.port, clock, holding=holding)
    assert report.sent == 1 and report.released == 2
    session.rollback()
    assert sorted(session.execute(select(OutboxMessage.status)).scalars()) == [
        "pending", "pending", "sent"]
