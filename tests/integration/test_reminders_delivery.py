"""Outbox delivery over real SMTP (aiosmtpd): what arrives, retries while the server is
refusing or unreachable, failure after the last retry, leases after a crash.

The helpers at the top (``Recorder``, ``free_port``, ``Blackhole``) are also used by the
scheduler-process tests."""
from __future__ import annotations

import asyncio
import datetime as dt
import email
import email.policy
import re
import socket
import threading
from zoneinfo import ZoneInfo

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import select, update

from returnprog.models import Case, OutboxMessage, Participant
from returnprog.services import outbox
from returnprog.services import reminders as service

from ..conftest import drive_to

AMS = ZoneInfo("Europe/Amsterdam")


# --- helpers: a recording SMTP server, a port nobody answers on, a server that hangs ---------

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Recorder:
    """aiosmtpd handler that keeps every message it accepts (raw and parsed)."""

    def __init__(self, delay: float = 0.0, refuse: set[str] | None = None):
        self.delay = delay
        self.refuse = {a.lower() for a in (refuse or ())}
        self.messages: list[email.message.EmailMessage] = []
        self.raw: list[bytes] = []
        self.lock = threading.Lock()

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.lower() in self.refuse:
            return "550 5.1.1 No such mailbox"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        if self.delay:
            await asyncio.sleep(self.delay)
        raw = envelope.original_content or envelope.content
        with self.lock:
            self.raw.append(raw)
            self.messages.append(email.message_from_bytes(raw, policy=email.policy.default))
        return "250 OK"

    def keys(self) -> list[str]:
        with self.lock:
            return [str(m["X-Returnprog-Key"]) for m in self.messages]


class SmtpServer:
    """A real SMTP server on a fixed port that can be started and stopped."""

    def __init__(self, port: int | None = None, **handler_options):
        self.port = port or free_port()
        self.handler = Recorder(**handler_options)
        self.controller = None

    def start(self):
        self.controller = Controller(self.handler, hostname="127.0.0.1", port=self.port)
        self.controller.start()
        return self

    def stop(self):
        if self.controller is not None:
            self.controller.stop()
            self.controller = None


class Blackhole:
    """Accepts TCP connections in the kernel but never speaks: an unreachable server."""

    def __init__(self, port: int):
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", port))
        self.sock.listen(50)

    def close(self):
        self.sock.close()


@pytest.fixture
def smtp():
    server = SmtpServer().start()
    yield server
    server.stop()


def settings(port: int, **over) -> outbox.SmtpSettings:
    return outbox.SmtpSettings(host="127.0.0.1", port=port, timeout=over.pop("timeout", 5.0),
                                mail_from="returnprog@dtenv.example", **over)


RETRY = outbox.RetryPolicy(max_attempts=4, base_seconds=60, max_seconds=600, lease_seconds=300)


class FakeClock:
    """The delivery's notion of now; moved by hand instead of sleeping through back-offs."""

    def __init__(self, start: dt.datetime):
        self.t = start

    def __call__(self) -> dt.datetime:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += dt.timedelta(seconds=seconds)


def deliver(session, port, clock, retry=RETRY, **kw):
    s = settings(port, **{k: kw.pop(k) for k in ("timeout",) if k in kw})
    return outbox.deliver_due(session, outbox.SmtpMailer(s), s, retry, now=clock,
                               today=clock().astimezone(AMS).date(), **kw)


def due_case(ctx_for, staff, session, policy, adults=2, languages=("uk", "ru")):
    """A case whose 7-day reminders are written (participants + counsellor)."""
    today = dt.date.today()
    case = drive_to(ctx_for, staff, session, "departure_agreed", adults=adults, minors=1,
                    deadline=today + dt.timedelta(days=7))
    people = session.execute(select(Participant).where(Participant.case_id == case.id)
                             .order_by(Participant.id)).scalars().all()
    for p, lang in zip([p for p in people if p.email], languages):
        p.language = lang
        p.bsn = "123456782"
    session.commit()
    report = service.sweep(session, policy, today)
    assert report.inserted == adults + 1
    return case, people


def statuses(session):
    session.rollback()
    return sorted(session.execute(select(OutboxMessage.status)).scalars())


def now_utc():
    return dt.datetime.now(dt.timezone.utc)


# --- tests -------------------------------------------------------------------------------------

def test_a_real_smtp_server_receives_bilingual_reminders_without_identity_numbers(
        ctx_for, staff, session, policy, smtp):
    case, people = due_case(ctx_for, staff, session, policy)
    report = deliver(session, smtp.port, FakeClock(now_utc()))
    assert (report.sent, report.retried, report.failed) == (3, 0, 0)
    assert statuses(session) == ["sent"] * 3
    got = {str(m["To"]): m for m in smtp.handler.messages}
    uk_person, ru_person = [p for p in people if p.email]
    assert set(got) == {uk_person.email, ru_person.email, staff.counsellor.email}
    secrets = [p.v_number for p in people] + [p.bsn for p in people if p.bsn] + \
        [p.travel_document_number for p in people if p.travel_document_number]
    for raw in smtp.handler.raw:
        assert not any(s.encode() in raw for s in secrets)
    for to, msg in got.items():
        assert msg["From"] == "returnprog@dtenv.example"
        assert msg["Auto-Submitted"] == "auto-generated"
        assert re.fullmatch(r"<reminder\.[0-9a-f]{32}@dtenv\.example>", msg["Message-ID"])
        assert msg["X-Returnprog-Kind"] == "deadline_reminder_7d"
        assert msg.get_content_type() == "multipart/alternative"
        text = msg.get_body(("plain",)).get_content()
        html = msg.get_body(("html",)).get_content()
        assert "text/html" == msg.get_body(("html",)).get_content_type()
        assert case.reference in text and case.reference in html
        if to != staff.counsellor.email:
            assert "Dit is een herinnering van de Dienst Terugkeer en Vertrek" in text
        for part in (text, html, str(msg["Subject"])):
            assert not any(s in part for s in secrets)
            assert not re.search(r"(?<!\d)\d{9,10}(?!\d)", part)
    uk, ru = got[uk_person.email], got[ru_person.email]
    assert uk["Content-Language"] == "nl, uk" and ru["Content-Language"] == "nl, ru"
    # The participant's language first, Dutch after.
    assert str(uk["Subject"]).startswith("Нагадування: виїзд не пізніше")
    assert " / Herinnering: vertrek uiterlijk " in str(uk["Subject"])
    assert "Залишилося 7 днів" in uk.get_body(("plain",)).get_content()
    assert "Осталось 7 дней" in ru.get_body(("plain",)).get_content()
    assert '<div lang="uk">' in uk.get_body(("html",)).get_content()
    counsellor = got[staff.counsellor.email]
    assert counsellor["Content-Language"] == "nl"
    assert "The departure deadline of case" in counsellor.get_body(("plain",)).get_content()


def test_smtp_refusing_connections_for_a_while_is_retried_and_nothing_is_lost(
        ctx_for, staff, session, policy):
    due_case(ctx_for, staff, session, policy)
    port = free_port()  # nobody listens: connection refused
    clock = FakeClock(now_utc())
    report = deliver(session, port, clock)
    assert (report.claimed, report.retried, report.sent) == (3, 3, 0)
    assert "Connection refused" in report.errors[0] or "ConnectionRefused" in report.errors[0]
    rows = session.execute(select(OutboxMessage)).scalars().all()
    assert {(r.status, r.attempts) for r in rows} == {("pending", 1)}
    assert all("cannot reach SMTP server" in r.last_error for r in rows)
    assert deliver(session, port, clock).claimed == 0  # backing off: not due yet
    clock.advance(61)
    assert deliver(session, port, clock).retried == 3  # second attempt, still down
    session.rollback()
    assert {r.attempts for r in session.execute(select(OutboxMessage)).scalars()} == {2}
    clock.advance(119)
    assert deliver(session, port, clock).claimed == 0  # back-off doubled: 120 s
    server = SmtpServer(port).start()  # the server comes back
    try:
        clock.advance(2)
        report = deliver(session, port, clock)
        assert (report.sent, report.failed) == (3, 0)
        assert statuses(session) == ["sent"] * 3
        keys = server.handler.keys()
        assert len(keys) == 3 and len(set(keys)) == 3
    finally:
        server.stop()


def test_an_unreachable_server_times_out_and_delivery_resumes_after_recovery(
        ctx_for, staff, session, policy):
    due_case(ctx_for, staff, session, policy)
    port = free_port()
    hole = Blackhole(port)
    clock = FakeClock(now_utc())
    try:
        started = dt.datetime.now()
        report = deliver(session, port, clock, timeout=0.5)
        # One time-out for the whole batch, not one per message.
        assert (dt.datetime.now() - started).total_seconds() < 3
        assert (report.retried, report.sent) == (3, 0)
        assert "timed out" in report.errors[0]
    finally:
        hole.close()
    server = SmtpServer(port).start()
    try:
        clock.advance(61)
        assert deliver(session, port, clock, timeout=2).sent == 3
        assert len(set(server.handler.keys())) == 3
    finally:
        server.stop()


def test_permanently_down_marks_failed_after_the_last_retry_and_shows_it(
        ctx_for, staff, session, policy):
    case, _ = due_case(ctx_for, staff, session, policy)
    port = free_port()
    clock = FakeClock(now_utc())
    waits = []
    for attempt in range(1, RETRY.max_attempts + 1):
        report = deliver(session, port, clock)
        assert report.claimed == 3
        if attempt < RETRY.max_attempts:
            assert report.retried == 3
            session.rollback()
            nxt = session.execute(select(OutboxMessage.next_attempt_at)).scalars().first()
            waits.append(round((nxt - clock()).total_seconds()))
            clock.t = nxt
    assert waits == [60, 120, 240]  # exponential back-off
    assert report.failed == 3
    assert statuses(session) == ["failed"] * 3
    clock.advance(10_000)
    assert deliver(session, port, clock).claimed == 0  # failed is final
    failed = outbox.failed_messages(session, case_id=case.id)
    assert len(failed) == 3 and {f["reference"] for f in failed} == {case.reference}
    assert all(f["attempts"] == RETRY.max_attempts and "cannot reach" in f["last_error"]
               for f in failed)
    assert outbox.failed_counts(session) == {case.id: 3}
    assert outbox.outbox_counts(session) == {"failed": 3}
    page = service.case_reminders(ctx_for(staff.counsellor), case.reference)
    assert len(page["failed"]) == 3 and not page["overdue"]
    # Once mail works again an operator can put a message back in the queue.
    server = SmtpServer(port).start()
    try:
        assert outbox.retry_message(session, failed[0]["id"], now=clock())
        assert deliver(session, port, clock).sent == 1
    finally:
        server.stop()


def test_a_permanent_rejection_fails_that_message_at_once(ctx_for, staff, session, policy):
    _, people = due_case(ctx_for, staff, session, policy)
    bad = next(p.email for p in people if p.email)
    server = SmtpServer(refuse={bad}).start()
    try:
        report = deliver(session, server.port, FakeClock(now_utc()))
        assert (report.sent, report.failed) == (2, 1)
        session.rollback()
        failed = session.execute(select(OutboxMessage).where(
            OutboxMessage.status == "failed")).scalar_one()
        assert failed.recipient == bad and failed.attempts == 1
        assert "550" in failed.last_error
    finally:
        server.stop()


def test_a_crashed_senders_claims_are_taken_over_when_the_lease_expires(
        ctx_for, staff, session, policy, smtp):
    due_case(ctx_for, staff, session, policy)
    clock = FakeClock(now_utc())
    claims, _ = outbox.claim_due(session, clock(), limit=10,
                                  lease=dt.timedelta(seconds=RETRY.lease_seconds))
    assert len(claims) == 3  # ... and the sender dies here, before sending anything
    assert statuses(session) == ["sending"] * 3
    assert deliver(session, smtp.port, clock).claimed == 0  # still leased
    clock.advance(RETRY.lease_seconds + 1)
    report = deliver(session, smtp.port, clock)
    assert report.sent == 3 and statuses(session) == ["sent"] * 3
    # The late sender cannot overwrite the outcome: its lease token no longer matches.
    assert not outbox._finish(session, claims[0], status="failed")


def test_a_reminder_that_is_no_longer_meaningful_is_cancelled_at_delivery(
        ctx_for, staff, session, policy, smtp):
    case, _ = due_case(ctx_for, staff, session, policy)
    # The deadline moved under the sweep's feet (e.g. an extension racing the sweep).
    session.execute(update(Case).where(Case.id == case.id).values(
        departure_deadline=case.departure_deadline + dt.timedelta(days=3)))
    session.commit()
    report = deliver(session, smtp.port, FakeClock(now_utc()))
    assert (report.sent, report.cancelled) == (0, 3)
    session.rollback()
    assert {m.last_error for m in session.execute(select(OutboxMessage)).scalars()} == {
        "cancelled at delivery: the departure deadline has changed"}
    assert smtp.handler.messages == []


def test_a_reminder_held_up_past_the_deadline_is_not_sent(ctx_for, staff, session, policy, smtp):
    due_case(ctx_for, staff, session, policy)
    clock = FakeClock(now_utc() + dt.timedelta(days=8))  # the mail server was down a week
    report = deliver(session, smtp.port, clock)
    assert (report.sent, report.cancelled) == (0, 3)
    assert statuses(session) == ["cancelled"] * 3


def test_stopping_hands_unsent_claims_back_at_once(ctx_for, staff, session, policy, smtp):
    due_case(ctx_for, staff, session, policy)
    stop = threading.Event()

    class StopAfterOne(outbox.SmtpMailer):
        def send(self, message):
            super().send(message)
            stop.set()

    s = settings(smtp.port)
    clock = FakeClock(now_utc())
    report = outbox.deliver_due(session, StopAfterOne(s), s, RETRY, now=clock, stop=stop)
    assert (report.sent, report.released) == (1, 2)
    assert statuses(session) == ["pending", "pending", "sent"]
    assert deliver(session, smtp.port, clock).sent == 2  # due again at once, no lease wait
