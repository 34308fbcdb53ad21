"""The reminder sweep against a real database (SQLite and PostgreSQL), travelling in time:
each reminder fires on its day, once; extensions re-plan and state changes cancel; after an
outage only the most recent reminder goes out; signing links remind and expire."""
import datetime as dt
import threading
from zoneinfo import ZoneInfo

import pytest
import time_machine
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from returnprog import workflow
from returnprog.models import OutboxMessage, Participant, SigningRequest
from returnprog.services import cases as case_service
from returnprog.services import reminders as service

from ..conftest import drive_to, fake_sign

AMS = ZoneInfo("Europe/Amsterdam")
START = dt.date(2027, 1, 4)


def at(day: dt.date, hour: int = 9) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hour), AMS)


def days(n: int) -> dt.timedelta:
    return dt.timedelta(days=n)


def outbox(session, **where):
    session.rollback()  # a fresh snapshot: other sessions may have written meanwhile
    query = select(OutboxMessage).order_by(OutboxMessage.id)
    for name, value in where.items():
        query = query.where(getattr(OutboxMessage, name) == value)
    rows = session.execute(query).scalars().all()
    session.rollback()
    return rows


class Clock:
    """Walk the calendar day by day, sweeping as the scheduler would."""

    def __init__(self, traveller, session, policy):
        self.traveller, self.session, self.policy = traveller, session, policy
        self.last = None

    def sweep_on(self, day: dt.date, *, last_swept="auto", twice=True):
        self.traveller.move_to(at(day))
        last = self.last if last_swept == "auto" else last_swept
        before = {m.idempotency_key for m in outbox(self.session)}
        service.sweep(self.session, self.policy, day, last_swept=last)
        if twice:  # a second sweep the same day adds nothing
            service.sweep(self.session, self.policy, day, last_swept=day)
        self.last = day
        return [m for m in outbox(self.session) if m.idempotency_key not in before]


@pytest.fixture
def travel():
    with time_machine.travel(at(START), tick=False) as traveller:
        yield traveller


def recipients(messages):
    return sorted(m.recipient for m in messages)


def test_each_reminder_fires_on_its_day_once_and_the_supervisors_hear_of_an_overdue_case(
        travel, ctx_for, staff, session, policy):
    deadline = START + days(20)
    case = drive_to(ctx_for, staff, session, "departure_agreed", adults=2, minors=1,
                    deadline=deadline)
    adults = [p.email for p in session.execute(select(Participant).where(
        Participant.case_id == case.id)).scalars() if p.email]
    assert len(adults) == 2  # the minor has no address and is not written to anyway
    clock = Clock(travel, session, policy)
    fired = {}
    for n in range(0, 25):
        day = START + days(n)
        new = clock.sweep_on(day)
        if new:
            fired[(deadline - day).days] = new
    assert sorted(fired) == [-1, 1, 2, 7, 14]
    for offset in (14, 7, 2, 1):
        msgs = fired[offset]
        assert {m.kind for m in msgs} == {f"deadline_reminder_{offset}d"}
        assert recipients(msgs) == sorted(adults + [staff.counsellor.email])
        assert all(m.case_id == case.id and m.status == "pending" for m in msgs)
        assert all(m.idempotency_key.endswith(f"|{deadline.isoformat()}|{m.recipient}")
                   for m in msgs)
    alerts = fired[-1]
    assert {m.kind for m in alerts} == {"overdue_alert"}
    # Both supervisors of Team Noord; not the other team's supervisor.
    assert recipients(alerts) == sorted([staff.supervisor.email, staff.supervisor2.email])
    assert len(outbox(session)) == 4 * 3 + 2


def test_the_case_counts_as_overdue_from_the_day_after_its_deadline(
        travel, ctx_for, staff, session, policy):
    deadline = START + days(10)
    case = drive_to(ctx_for, staff, session, "departure_agreed", deadline=deadline)
    other = drive_to(ctx_for, staff, session, "departure_agreed", deadline=START + days(30))
    assert service.overdue_cases(session, deadline) == []
    travel.move_to(at(deadline + days(1)))
    overdue = service.overdue_cases(session, deadline + days(1))
    assert [c.id for c in overdue] == [case.id]
    assert service.overdue_cases(session, deadline + days(1),
                                 team_id=staff.other_counsellor.team_id) == []
    assert service.is_case_overdue(overdue[0], deadline + days(1))
    assert not service.is_case_overdue(other, deadline + days(1))
    case_service.perform(ctx_for(staff.supervisor), case.reference, "lapse",
                         {"reason": "did not leave"})
    assert service.overdue_cases(session, deadline + days(1)) == []


def test_an_extension_cancels_the_old_dates_and_plans_the_new_ones(
        travel, ctx_for, staff, session, policy):
    old = START + days(20)
    case = drive_to(ctx_for, staff, session, "departure_agreed", adults=1, minors=0, deadline=old)
    clock = Clock(travel, session, policy)
    for n in range(0, 14):  # up to old - 7: the 14- and 7-day reminders are written
        clock.sweep_on(START + days(n))
    assert {m.kind for m in outbox(session, status="pending")} == {
        "deadline_reminder_14d", "deadline_reminder_7d"}
    # The 14-day ones went out; the 7-day ones are still waiting when the deadline moves.
    for m in outbox(session, kind="deadline_reminder_14d"):
        session.execute(OutboxMessage.__table__.update().where(OutboxMessage.id == m.id)
                        .values(status="sent"))
    session.commit()
    today = old - days(5)
    travel.move_to(at(today))
    new = old + days(10)
    fake_sign(session, case, workflow.ADDENDUM, {"departure_deadline": new.isoformat(),
                                                 "reason": "flight cancelled"}, today=today)
    case_service.perform(ctx_for(staff.supervisor), case.reference, "extend_deadline",
                         {"departure_deadline": new, "reason": "flight cancelled"})
    cancelled = outbox(session, status="cancelled")
    assert {m.kind for m in cancelled} == {"deadline_reminder_7d"}
    assert all("deadline is now" in m.last_error for m in cancelled)
    assert {m.status for m in outbox(session, kind="deadline_reminder_14d")} == {"sent"}
    fired = {}
    for n in range(0, 16):  # up to the new deadline
        day = today + days(n)
        msgs = clock.sweep_on(day)
        if msgs:
            fired[day] = {(m.kind, m.idempotency_key.split("|")[2]) for m in msgs}
    assert fired == {
        new - days(14): {("deadline_reminder_14d", new.isoformat())},
        new - days(7): {("deadline_reminder_7d", new.isoformat())},
        new - days(2): {("deadline_reminder_2d", new.isoformat())},
        new - days(1): {("deadline_reminder_1d", new.isoformat())},
    }  # and nothing for the old date: not on old-2, old-1, nor an overdue alert at old+1


def test_leaving_the_state_cancels_pending_reminders(travel, ctx_for, staff, session, policy):
    deadline = START + days(14)
    case = drive_to(ctx_for, staff, session, "departure_agreed", adults=1, minors=0,
                    deadline=deadline)
    clock = Clock(travel, session, policy)
    assert {m.kind for m in clock.sweep_on(START)} == {"deadline_reminder_14d"}
    from returnprog.services import payment as payment_service

    c = staff.counsellor
    payment_service.propose(ctx_for(c), case.reference, {"method": "cash"})
    payment_service.approve(ctx_for(staff.supervisor), case.reference)
    payment_service.disburse(ctx_for(staff.finance), case.reference,
                             {"idempotency_key": f"pay-{case.reference}"})
    assert {m.status for m in outbox(session)} == {"cancelled"}
    assert all("support_paid" in m.last_error for m in outbox(session))
    for n in range(1, 16):
        assert clock.sweep_on(START + days(n)) == []


def test_lapsing_an_overdue_case_cancels_its_pending_alert(travel, ctx_for, staff, session,
                                                         policy):
    deadline = START + days(8)
    case = drive_to(ctx_for, staff, session, "departure_agreed", adults=1, minors=0,
                    deadline=deadline)
    clock = Clock(travel, session, policy)
    assert {m.kind for m in clock.sweep_on(deadline + days(1), last_swept=deadline)} == {
        "overdue_alert"}
    case_service.perform(ctx_for(staff.supervisor), case.reference, "lapse",
                         {"reason": "did not leave"})
    assert {m.status for m in outbox(session, kind="overdue_alert")} == {"cancelled"}


def test_after_an_outage_only_the_most_recent_reminder_is_sent(travel, ctx_for, staff, session,
                                                              policy):
    deadline = START + days(20)
    drive_to(ctx_for, staff, session, "departure_agreed", adults=1, minors=0, deadline=deadline)
    clock = Clock(travel, session, policy)
    clock.sweep_on(START)  # then the scheduler is down from START+1 ...
    back = deadline - days(4)  # ... until after the 14- and 7-day reminder days
    new = clock.sweep_on(back)
    assert {m.kind for m in new} == {"deadline_reminder_7d"}
    assert len(new) == 2  # participant + counsellor; not the stale 14-day series
    assert "over 4 dagen" in new[0].body_text  # and it tells the true number of days left
    # A fresh scheduler process (no memory of its last sweep) adds nothing more today.
    assert clock.sweep_on(back, last_swept=None) == []
    assert {m.kind for m in clock.sweep_on(deadline - days(2))} == {"deadline_reminder_2d"}


def test_a_fresh_start_after_the_deadline_alerts_the_supervisors_not_the_participants(
        travel, ctx_for, staff, session, policy):
    deadline = START + days(8)
    drive_to(ctx_for, staff, session, "departure_agreed", adults=1, minors=0, deadline=deadline)
    clock = Clock(travel, session, policy)
    new = clock.sweep_on(deadline + days(3), last_swept=None)
    assert {m.kind for m in new} == {"overdue_alert"}
    assert "3 dagen geleden" in new[0].body_text


def test_racing_sweeps_never_store_a_reminder_twice(travel, ctx_for, staff, session, policy,
                                                    engine):
    deadline = START + days(14)
    for _ in range(3):
        drive_to(ctx_for, staff, session, "departure_agreed", adults=2, minors=0,
                 deadline=deadline)
    errors = []
    barrier = threading.Barrier(4)

    def run():
        try:
            with Session(engine, expire_on_commit=False) as s:
                barrier.wait()
                service.sweep(s, policy, START, last_swept=None)
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    keys = [m.idempotency_key for m in outbox(session)]
    assert len(keys) == 3 * 3 and len(set(keys)) == len(keys)
    # And the database itself refuses a duplicate key, whoever writes it.
    dup = outbox(session)[0]
    session.add(OutboxMessage(idempotency_key=dup.idempotency_key, kind=dup.kind,
                              recipient=dup.recipient, subject="x", body_text="x", body_html="x"))
    with pytest.raises(IntegrityError):
        session.commit()
    session.rollback()


def _link(session, case, person, created, *, days_valid=7, **extra):
    req = SigningRequest(case_id=case.id, participant_id=person.id, kind=workflow.COMMITMENT,
                         channel="link", token_hash=f"{person.id}-{created.isoformat()}-{extra}"[:64],
                         expires_at=created + days(days_valid), created_by=case.counsellor_id,
                         created_at=created, **extra)
    session.add(req)
    session.commit()
    return req


def test_an_unused_signing_link_reminds_its_signer_and_tells_the_counsellor_when_it_expires(
        travel, ctx_for, staff, session, policy):
    case = drive_to(ctx_for, staff, session, "intake", adults=2, minors=0)
    people = session.execute(select(Participant).where(Participant.case_id == case.id)
                             .order_by(Participant.id)).scalars().all()
    created = at(START, 10)
    link = _link(session, case, people[0], created)
    _link(session, case, people[1], created, used_at=created + days(1))  # signed: silent
    _link(session, case, people[1], created + dt.timedelta(seconds=1),
          revoked_at=created + days(1))  # withdrawn: silent
    fired = {}
    for n in range(0, 10):
        day = START + days(n)
        travel.move_to(at(day, 11))
        before = {m.id for m in outbox(session)}
        service.sweep(session, policy, day, now=at(day, 11).astimezone(dt.timezone.utc),
                      last_swept=day - days(1))
        new = [m for m in outbox(session) if m.id not in before]
        if new:
            fired[n] = [(m.kind, m.recipient, m.language) for m in new]
    assert fired == {
        2: [("signing_link_reminder", people[0].email, "uk")],
        7: [("signing_link_expired", staff.counsellor.email, "nl")],
    }
    reminder = outbox(session, kind="signing_link_reminder")[0]
    assert "Deelnameverklaring" in reminder.body_text and "«Декларація про участь»" in reminder.body_text
    assert reminder.idempotency_key.endswith(f"~link{link.id}|{people[0].email}")


def test_a_link_for_a_step_already_passed_is_not_reminded(travel, ctx_for, staff, session,
                                                          policy):
    case = drive_to(ctx_for, staff, session, "committed", adults=1, minors=0)
    person = session.execute(select(Participant).where(Participant.case_id == case.id)).scalars().first()
    _link(session, case, person, at(START, 8))  # a commitment link, but the case is committed
    day = START + days(3)
    travel.move_to(at(day, 11))
    service.sweep(session, policy, day)
    assert outbox(session) == []
