"""Signer verification by one-time code (issue 12, item 1), through the real services on
SQLite and PostgreSQL: right code, wrong code ×5 (locked), expired code, a code of another
link, hashed storage, the sealed e-mail delivered over real SMTP, SMS through the sink, the
audit events, and the signed document recording how its signer was verified."""
from __future__ import annotations

import dataclasses
import datetime as dt
import re

import pytest
from sqlalchemy import select

from returnprog import documents, workflow
from returnprog.models import AuditEvent, OutboxMessage, Participant, SigningCode
from returnprog.services import outbox, signing, signing_codes
from returnprog.sms import FileSmsSink

from ..conftest import drive_to
from .test_reminders_delivery import SmtpServer, settings, RETRY

SECRET = "a-test-secret-of-enough-length-for-codes"


@pytest.fixture
def seal(tmp_path):
    return documents.ensure_dev_seal(tmp_path)

# The withdrawal declaration's separate acknowledgement (issue 12 item 6).
ACK = ("cond_irreversible",)


def _link(ctx_for, staff, session, kind=workflow.WITHDRAWAL_DECLARATION, phone=None):
    case = drive_to(ctx_for, staff, session, "committed", adults=1, minors=0)
    person = session.execute(select(Participant).where(Participant.case_id == case.id)).scalar_one()
    if phone:
        person.phone = phone
        session.add(person)
        session.commit()
    link, token = signing.create_signing_link(ctx_for(staff.counsellor), case.reference,
                                              person.id, kind, {})
    return link, token, person


def _public(ctx_for, **over):
    ctx = ctx_for(None)
    return dataclasses.replace(ctx, **over) if over else ctx


def _mailed_code(session, link) -> str:
    """The code of ``link``'s latest e-mail, opened the way the delivery opens it."""
    row = session.execute(select(OutboxMessage).where(
        OutboxMessage.signing_request_id == link.id, OutboxMessage.kind == "signing_code")
        .order_by(OutboxMessage.id.desc()).limit(1)).scalar_one()
    return re.search(r"\b(\d{6})\b", signing_codes.revealer(SECRET)(row.body_text)).group(1)


def _events(session, action):
    return session.execute(select(AuditEvent).where(AuditEvent.action == action)
                           .order_by(AuditEvent.id)).scalars().all()


def test_the_right_code_opens_the_link_and_the_document_records_the_verification(
        ctx_for, staff, session, seal):
    link, token, person = _link(ctx_for, staff, session)
    ctx = _public(ctx_for)
    assert signing_codes.required(ctx, link)
    # Without a verified code the signature is refused and nothing is signed.
    with pytest.raises(signing_codes.VerificationRequired):
        signing.sign_with_link(ctx, token, method="typed", typed_name=person.full_name,
                               consent=True, acknowledged=ACK)
    row, masked = signing_codes.send_code(ctx, link, "email", secret=SECRET)
    assert masked == "p" + "***@example.org" and masked != person.email
    code = _mailed_code(session, link)
    verified = signing_codes.check_code(ctx, link, code, secret=SECRET)
    assert verified.id == row.id and verified.used_at is not None
    # Single use: the same code again finds nothing to check.
    with pytest.raises(signing_codes.CodeRefused) as again:
        signing_codes.check_code(ctx, link, code, secret=SECRET)
    assert again.value.reason == "none"
    ctx.seal = seal
    doc = signing.sign_with_link(ctx, token, method="typed", typed_name=person.full_name,
                                 consent=True, acknowledged=ACK, verified_code_id=verified.id)
    assert doc.signer_verification == "email_code"
    assert '"verification": "email_code"' in _events(session, "sign_document")[-1].details


def test_five_wrong_codes_lock_the_code_even_against_the_right_one(ctx_for, staff, session):
    link, token, person = _link(ctx_for, staff, session)
    ctx = _public(ctx_for)
    signing_codes.send_code(ctx, link, "email", secret=SECRET)
    code = _mailed_code(session, link)
    wrong = f"{(int(code) + 1) % 10 ** 6:06d}"
    left = []
    for _ in range(4):
        with pytest.raises(signing_codes.CodeRefused) as err:
            signing_codes.check_code(ctx, link, wrong, secret=SECRET)
        assert err.value.reason == "wrong"
        left.append(err.value.tries_left)
    assert left == [4, 3, 2, 1]
    with pytest.raises(signing_codes.CodeRefused) as err:
        signing_codes.check_code(ctx, link, wrong, secret=SECRET)
    assert err.value.reason == "locked"
    with pytest.raises(signing_codes.CodeRefused) as err:
        signing_codes.check_code(ctx, link, code, secret=SECRET)
    assert err.value.reason == "locked"
    assert signing_codes.verification(ctx, link, None) is None
    failed = _events(session, "signing_code_failed")
    assert [f'"attempt": {n}' in e.details for n, e in zip(range(1, 6), failed)] == [True] * 5
    # A new code can be asked for and works.
    signing_codes.send_code(ctx, link, "email", secret=SECRET)
    assert signing_codes.check_code(ctx, link, _mailed_code(session, link), secret=SECRET)


def test_a_malformed_code_is_refused_without_counting_a_try(ctx_for, staff, session):
    link, _, _ = _link(ctx_for, staff, session)
    ctx = _public(ctx_for)
    signing_codes.send_code(ctx, link, "email", secret=SECRET)
    for entered in ("", "12345", "1234567", "abcdef", "١٢٣٤٥٦"):
        with pytest.raises(signing_codes.CodeRefused) as err:
            signing_codes.check_code(ctx, link, entered, secret=SECRET)
        assert err.value.reason == "format"
    assert signing_codes.latest_code(ctx, link).attempts == 0


def test_an_expired_code_is_refused(ctx_for, staff, session):
    link, _, _ = _link(ctx_for, staff, session)
    ctx = _public(ctx_for)
    signing_codes.send_code(ctx, link, "email", secret=SECRET)
    code = _mailed_code(session, link)
    later = dt.datetime.now(dt.timezone.utc) + dt.timedelta(minutes=10, seconds=1)
    with pytest.raises(signing_codes.CodeRefused) as err:
        signing_codes.check_code(_public(ctx_for, now=lambda: later), link, code, secret=SECRET)
    assert err.value.reason == "expired"
    # Just before the end it still works.
    almost = dt.datetime.now(dt.timezone.utc) + dt.timedelta(minutes=9, seconds=50)
    assert signing_codes.check_code(_public(ctx_for, now=lambda: almost), link, code,
                                    secret=SECRET)


def test_a_code_of_another_link_is_refused(ctx_for, staff, session, seal):
    first, token_a, person_a = _link(ctx_for, staff, session)
    second, token_b, person_b = _link(ctx_for, staff, session)
    ctx = _public(ctx_for)
    signing_codes.send_code(ctx, first, "email", secret=SECRET)
    signing_codes.send_code(ctx, second, "email", secret=SECRET)
    code_a = _mailed_code(session, first)
    with pytest.raises(signing_codes.CodeRefused) as err:
        signing_codes.check_code(ctx, second, code_a, secret=SECRET)
    assert err.value.reason == "wrong"
    verified_a = signing_codes.check_code(ctx, first, code_a, secret=SECRET)
    # A verification of one link opens no other link.
    assert signing_codes.verification(ctx, second, verified_a.id) is None
    ctx.seal = seal
    with pytest.raises(signing_codes.VerificationRequired):
        signing.sign_with_link(ctx, token_b, method="typed", typed_name=person_b.full_name,
                               consent=True, acknowledged=ACK, verified_code_id=verified_a.id)
    # The same digits stored for two links hash differently (the link is in the HMAC).
    assert signing_codes.code_hash(SECRET, first.id, "123456") != \
        signing_codes.code_hash(SECRET, second.id, "123456")


def test_a_verification_lapses_after_its_time(ctx_for, staff, session):
    link, _, _ = _link(ctx_for, staff, session)
    ctx = _public(ctx_for)
    signing_codes.send_code(ctx, link, "email", secret=SECRET)
    row = signing_codes.check_code(ctx, link, _mailed_code(session, link), secret=SECRET)
    assert signing_codes.verification(ctx, link, row.id) == "email_code"
    later = dt.datetime.now(dt.timezone.utc) + dt.timedelta(minutes=31)
    assert signing_codes.verification(_public(ctx_for, now=lambda: later), link, row.id) is None


def test_only_a_hash_of_the_code_is_stored_anywhere_in_the_database(
        ctx_for, staff, session, engine):
    link, _, person = _link(ctx_for, staff, session)
    ctx = _public(ctx_for)
    signing_codes.send_code(ctx, link, "email", secret=SECRET)
    code = _mailed_code(session, link)
    row = signing_codes.latest_code(ctx, link)
    assert row.code_hash == signing_codes.code_hash(SECRET, link.id, code)
    assert len(row.code_hash) == 64 and code not in row.code_hash
    # Every text column of every table: the clear code is in none (the outbox holds it
    # sealed), and the audit names the channel and a masked address only.
    with engine.connect() as conn:
        for table in SigningCode.metadata.sorted_tables:
            for values in conn.execute(table.select()):
                for value in values:
                    if isinstance(value, (str, bytes)):
                        text = value.decode("latin-1") if isinstance(value, bytes) else value
                        assert code not in text, (table.name, text[:200])
    sent = _events(session, "signing_code_sent")[-1]
    assert '"channel": "email"' in sent.details and "***@example.org" in sent.details
    assert person.email not in sent.details
    assert f'"signing_request_id": {link.id}' in sent.details


def test_the_code_email_arrives_over_smtp_in_the_participants_language_first(
        ctx_for, staff, session):
    link, _, person = _link(ctx_for, staff, session)
    person.language = "ru"
    session.add(person)
    session.commit()
    ctx = _public(ctx_for)
    signing_codes.send_code(ctx, link, "email", secret=SECRET)
    server = SmtpServer().start()
    try:
        s = settings(server.port)
        report = outbox.deliver_due(session, outbox.SmtpMailer(s), s, RETRY,
                                    reveal=signing_codes.revealer(SECRET))
    finally:
        server.stop()
    assert report.sent == 1
    (mail,) = server.handler.messages
    assert mail["To"] == person.email
    body = mail.get_body(("plain",)).get_content()
    code = re.search(r"\b(\d{6})\b", body).group(1)
    assert signing_codes.check_code(ctx, link, code, secret=SECRET).used_at is not None
    # Russian first (subject and body), Dutch after it.
    assert str(mail["Subject"]).startswith("Ваш код")
    assert body.index("Ваш код") < body.index("Uw code")
    assert "[[sealed:" not in body and "[[sealed:" not in mail.get_body(("html",)).get_content()


def test_a_text_message_goes_through_the_sink(ctx_for, staff, session, tmp_path):
    link, _, person = _link(ctx_for, staff, session, phone="+31 6 12345678")
    ctx = _public(ctx_for)
    sink = FileSmsSink(tmp_path / "sms")
    row, masked = signing_codes.send_code(ctx, link, "sms", secret=SECRET, sms=sink)
    assert masked == "+31 ****5678"
    (message,) = sink.messages()
    assert message["to"] == "+31 6 12345678"
    code = re.search(r"\b(\d{6})\b", message["text"]).group(1)
    assert "код" in message["text"]  # the participant's language (Ukrainian)
    assert (tmp_path / "sms").stat().st_mode & 0o777 == 0o700
    verified = signing_codes.check_code(ctx, link, code, secret=SECRET)
    assert signing_codes.verification(ctx, link, verified.id) == "sms_code"
    assert '"channel": "sms"' in _events(session, "signing_code_verified")[-1].details
    assert "12345678" not in _events(session, "signing_code_sent")[-1].details


def test_a_channel_without_a_contact_is_refused_and_nothing_is_sent(ctx_for, staff, session):
    link, _, _ = _link(ctx_for, staff, session)
    ctx = _public(ctx_for)
    with pytest.raises(signing_codes.NoSuchChannel):
        signing_codes.send_code(ctx, link, "sms", secret=SECRET, sms=None)
    with pytest.raises(signing_codes.NoSuchChannel):
        signing_codes.send_code(ctx, link, "pigeon", secret=SECRET)
    assert signing_codes.latest_code(ctx, link) is None
    assert _events(session, "signing_code_sent") == []


def test_a_commitment_link_needs_no_code_and_records_none(ctx_for, staff, session, seal):
    case = drive_to(ctx_for, staff, session, "intake", adults=1, minors=0)
    person = session.execute(select(Participant).where(Participant.case_id == case.id)).scalar_one()
    link, token = signing.create_signing_link(ctx_for(staff.counsellor), case.reference,
                                              person.id, workflow.COMMITMENT, {})
    ctx = _public(ctx_for)
    assert not signing_codes.required(ctx, link)
    ctx.seal = seal
    doc = signing.sign_with_link(ctx, token, method="typed", typed_name=person.full_name,
                                 consent=True, acknowledged=ACK)
    assert doc.signer_verification == "none"


def test_replacing_the_intake_drops_the_codes_of_the_links_it_cancels(ctx_for, staff, session):
    from returnprog.services import cases as case_service
    from ..conftest import intake

    case = case_service.open_case(ctx_for(staff.counsellor), intake())
    pid = session.execute(select(Participant.id).where(Participant.case_id == case.id)).scalar_one()
    link, _ = signing.create_signing_link(ctx_for(staff.counsellor), case.reference, pid,
                                          workflow.COMMITMENT, {})
    # A policy that wants a code for the commitment, so that a code exists for the link.
    strict = dataclasses.replace(ctx_for(None), policy=dataclasses.replace(
        ctx_for(None).policy, signer_verification=(("commitment", "code"),)))
    signing_codes.send_code(strict, link, "email", secret=SECRET)
    case_service.update_intake(ctx_for(staff.counsellor), case.reference, intake(2))
    assert session.execute(select(SigningCode)).first() is None
    # The code mail still waiting is not sent for a link that no longer exists.
    mail = session.execute(select(OutboxMessage).where(
        OutboxMessage.kind == "signing_code")).scalar_one()
    assert (mail.status, mail.signing_request_id) == ("cancelled", None)


def test_racing_tries_never_exceed_five_and_a_code_is_spent_once(ctx_for, staff, session,
                                                                  engine, policy):
    from sqlmodel import Session as DbSession

    from returnprog.services import Context
    from returnprog.models import SigningRequest
    from .test_concurrency import run_together

    link, _, _ = _link(ctx_for, staff, session)
    signing_codes.send_code(_public(ctx_for), link, "email", secret=SECRET)
    code = _mailed_code(session, link)
    wrong = f"{(int(code) + 3) % 10 ** 6:06d}"

    def attempt(entered):
        def work(i):
            with DbSession(engine, expire_on_commit=False) as s:
                ctx = Context(session=s, policy=policy, actor=None, ip="10.0.0.1")
                mine = s.get(SigningRequest, link.id)
                try:
                    return signing_codes.check_code(ctx, mine, entered, secret=SECRET).id
                except signing_codes.CodeRefused as exc:
                    return exc.reason
                except Exception as exc:  # a lost lock race is a refusal, not a try
                    return type(exc).__name__
        return work

    outcomes = [r for _, r in run_together(12, attempt(wrong))]
    session.rollback()
    assert signing_codes.latest_code(_public(ctx_for), link).attempts == 5
    assert len(_events(session, "signing_code_failed")) == 5
    assert outcomes.count("wrong") + outcomes.count("locked") + outcomes.count("Conflict") == 12
    # A fresh code spent by racing right answers: exactly one wins.
    signing_codes.send_code(_public(ctx_for), link, "email", secret=SECRET)
    code = _mailed_code(session, link)
    outcomes = [r for _, r in run_together(8, attempt(code))]
    assert sum(isinstance(r, int) for r in outcomes) == 1, outcomes
    session.rollback()
    assert len(_events(session, "signing_code_verified")) == 1
