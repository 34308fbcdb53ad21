"""Webhook deliveries through the outbox to a real HTTP receiver on 127.0.0.1: retries with
back-off, the attempt log, signatures checked by the independent ``standardwebhooks``
library and by our own recipe, who gets which event, the e-mail and webhook senders
keeping to their own rows, the link-expiry sweep, and redelivery. Both databases."""
from __future__ import annotations

import datetime as dt
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from sqlalchemy import select, update
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from returnprog import webhooks as core
from returnprog import workflow
from returnprog.models import (OutboxMessage, Participant, SigningRequest, WebhookAttempt,
                               WebhookSubscription)
from returnprog.services import cases as case_service
from returnprog.services import outbox
from returnprog.services import webhooks as service

from ..conftest import drive_to, fake_sign

SECRET_KEY = "test-secret"
LOOPBACK = service.WebhookSettings(timeout=5.0, allow_loopback=True)


class Receiver:
    """An HTTP server on 127.0.0.1 (port 0) in a thread that answers ``fail_first``
    requests with 500 and then 204, keeping every request's headers and body."""

    def __init__(self, fail_first: int = 0, status: int = 204):
        self.fail_first, self.status = fail_first, status
        self.requests: list[tuple[dict, str]] = []
        self.paths: list[str] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
                receiver.requests.append(({k.lower(): v for k, v in self.headers.items()}, body))
                receiver.paths.append(self.path)
                failing = len(receiver.requests) <= receiver.fail_first
                self.send_response(500 if failing else receiver.status)
                if receiver.status in (301, 302, 307, 308):
                    self.send_header("Location", receiver.url + "/elsewhere")
                payload = b"x" * 5000 if failing else b""
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


def subscribe(ctx, url, events=("case.state_changed",)):
    return service.create(ctx, url, list(events), secret_key=SECRET_KEY, allow_loopback=True)


def deliver(session, retry=None, now=outbox._utcnow, **kw):
    return service.deliver_due(session, service.HttpSender(5.0),
                               retry or outbox.RetryPolicy(max_attempts=5, base_seconds=0),
                               LOOPBACK, secret_key=SECRET_KEY, now=now, **kw)


def commit_case(ctx_for, staff, session, case):
    fake_sign(session, case, workflow.COMMITMENT)
    return case_service.perform(ctx_for(staff.counsellor), case.reference,
                                "confirm_commitment", {})


def webhook_rows(session, sub_id=None):
    query = select(OutboxMessage).where(OutboxMessage.channel == "webhook")
    if sub_id is not None:
        query = query.where(OutboxMessage.webhook_subscription_id == sub_id)
    session.expire_all()
    return session.execute(query.order_by(OutboxMessage.id)).scalars().all()


def test_a_receiver_that_fails_twice_gets_the_event_once_signed_and_three_attempts_are_logged(
        session, staff, ctx_for):
    case = drive_to(ctx_for, staff, session, "intake", adults=1, minors=0)
    with Receiver(fail_first=2) as receiver:
        sub, secret = subscribe(ctx_for(staff.counsellor), receiver.url)
        commit_case(ctx_for, staff, session, case)
        report = deliver(session)
    assert (report.sent, report.retried, report.failed) == (1, 2, 0)
    assert len(receiver.requests) == 3
    ids = {h["webhook-id"] for h, _ in receiver.requests}
    assert len(ids) == 1 and ids.pop().startswith("msg_")  # the same id on every retry
    headers, body = receiver.requests[-1]
    # The independent implementation of the specification accepts it ...
    assert Webhook(secret).verify(body, headers)["type"] == "case.state_changed"
    # ... and so does the documented recipe.
    event = core.verify(secret, headers, body)
    assert event["data"] == {"case": case.reference, "action": "confirm_commitment",
                             "from": "intake", "to": "committed"}
    [row] = webhook_rows(session, sub["id"])
    assert (row.status, row.attempts) == ("sent", 3)
    attempts = session.execute(select(WebhookAttempt).where(WebhookAttempt.message_id == row.id)
                               .order_by(WebhookAttempt.id)).scalars().all()
    assert [a.http_status for a in attempts] == [500, 500, 204]
    assert attempts[0].error.startswith("HTTP 500") and len(attempts[0].error) <= 200
    assert attempts[2].error is None
    log = service.deliveries(ctx_for(staff.counsellor), sub["id"])
    assert [(d["status"], d["attempt_count"]) for d in log] == [("delivered", 3)]
    assert [a["http_status"] for a in log[0]["attempts"]] == [500, 500, 204]


def test_a_replayed_delivery_with_an_old_timestamp_is_rejected(session, staff, ctx_for):
    case = drive_to(ctx_for, staff, session, "intake", adults=1, minors=0)
    with Receiver() as receiver:
        _, secret = subscribe(ctx_for(staff.counsellor), receiver.url)
        commit_case(ctx_for, staff, session, case)
        deliver(session)
    headers, body = receiver.requests[0]
    sent = dt.datetime.fromtimestamp(int(headers["webhook-timestamp"]), dt.timezone.utc)
    assert core.verify(secret, headers, body, now=sent + dt.timedelta(minutes=4))
    with pytest.raises(core.VerificationError, match="tolerance"):
        core.verify(secret, headers, body, now=sent + dt.timedelta(minutes=6))
    # The same delivery, genuinely signed ten minutes ago (as a replay would be), is
    # refused by both implementations; a changed body by both as well.
    old = dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=10)
    replay = {**headers, "webhook-timestamp": str(int(old.timestamp())),
              "webhook-signature": Webhook(secret).sign(headers["webhook-id"], old, body)}
    with pytest.raises(WebhookVerificationError, match="too old"):
        Webhook(secret).verify(body, replay)
    with pytest.raises(core.VerificationError):
        core.verify(secret, replay, body)
    tampered = body.replace("committed", "departed")
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(tampered, headers)
    with pytest.raises(core.VerificationError, match="signature"):
        core.verify(secret, headers, tampered)


def test_failures_back_off_exponentially_and_end_failed_at_the_last_attempt(
        session, staff, ctx_for):
    case = drive_to(ctx_for, staff, session, "intake", adults=1, minors=0)
    retry = outbox.RetryPolicy(max_attempts=3, base_seconds=60, max_seconds=3600)
    clock = [dt.datetime.now(dt.timezone.utc) + dt.timedelta(minutes=1)]
    with Receiver(fail_first=99) as receiver:
        sub, _ = subscribe(ctx_for(staff.counsellor), receiver.url)
        commit_case(ctx_for, staff, session, case)
        waits = []
        for _ in range(3):
            deliver(session, retry, now=lambda: clock[0])
            [row] = webhook_rows(session, sub["id"])
            waits.append((row.status, outbox._aware(row.next_attempt_at) - clock[0]))
            clock[0] += dt.timedelta(hours=2)
    assert waits == [("pending", dt.timedelta(seconds=60)),
                     ("pending", dt.timedelta(seconds=120)), ("failed", dt.timedelta(0))]
    assert len(receiver.requests) == 3


def test_a_state_change_reaches_subscribers_of_that_type_who_may_see_the_case_only(
        session, staff, ctx_for):
    case = drive_to(ctx_for, staff, session, "intake", adults=1, minors=0)
    mine, _ = subscribe(ctx_for(staff.supervisor), "http://127.0.0.1:9/a")
    other_type, _ = subscribe(ctx_for(staff.counsellor), "http://127.0.0.1:9/b",
                              events=("document.signed", "payment.approved"))
    other_team, _ = subscribe(ctx_for(staff.other_counsellor), "http://127.0.0.1:9/c",
                              events=core.EVENT_TYPES)
    admin, _ = subscribe(ctx_for(staff.admin), "http://127.0.0.1:9/d", events=core.EVENT_TYPES)
    commit_case(ctx_for, staff, session, case)
    rows = webhook_rows(session)
    assert [(r.webhook_subscription_id, r.subject) for r in rows] == [
        (mine["id"], "case.state_changed")]
    body = json.loads(rows[0].body_text)
    assert set(body) == {"id", "type", "timestamp", "data"}
    # No personal data: the reference, states and the action only.
    assert body["data"] == {"case": case.reference, "action": "confirm_commitment",
                            "from": "intake", "to": "committed"}
    assert other_type and other_team and admin


def test_payments_emit_approved_and_disbursed_in_the_same_transaction_as_the_change(
        session, staff, ctx_for):
    sub, _ = subscribe(ctx_for(staff.finance), "http://127.0.0.1:9/pay",
                       events=("payment.approved", "payment.disbursed", "case.state_changed"))
    case = drive_to(ctx_for, staff, session, "support_paid", adults=1, minors=0)
    got = [(r.subject, json.loads(r.body_text)["data"]) for r in webhook_rows(session, sub["id"])]
    payment_id = got[1][1].get("payment_id")
    assert isinstance(payment_id, int)
    # Finance sees the case from its payment stage on (agree_departure), as it reads it.
    assert got == [
        ("case.state_changed", {"case": case.reference, "action": "agree_departure",
                                "from": "asylum_withdrawn", "to": "departure_agreed"}),
        ("payment.approved", {"case": case.reference, "payment_id": payment_id}),
        ("case.state_changed", {"case": case.reference, "action": "pay_support",
                                "from": "departure_agreed", "to": "support_paid"}),
        ("payment.disbursed", {"case": case.reference, "payment_id": payment_id,
                               "method": "cash"})]


def test_a_refused_change_emits_nothing(session, staff, ctx_for):
    case = drive_to(ctx_for, staff, session, "intake", adults=1, minors=0)
    subscribe(ctx_for(staff.counsellor), "http://127.0.0.1:9/a")
    with pytest.raises(Exception):
        case_service.perform(ctx_for(staff.counsellor), case.reference,
                             "confirm_commitment", {})  # nobody signed: refused
    assert webhook_rows(session) == []


def test_the_email_sender_ignores_webhook_rows_and_the_webhook_sender_email_rows(
        session, staff, ctx_for):
    case = drive_to(ctx_for, staff, session, "intake", adults=1, minors=0)
    with Receiver() as receiver:
        sub, _ = subscribe(ctx_for(staff.counsellor), receiver.url)
        commit_case(ctx_for, staff, session, case)
        now = dt.datetime.now(dt.timezone.utc)
        outbox.enqueue(session, [outbox.plan.Message(
            key="test-mail", case_id=case.id, kind="test", recipient="p@example.org",
            deadline=None, signing_request_id=None, language="nl", subject="s",
            body_text="t", body_html="<p>t</p>")], now=now)
        session.commit()
        claims, _ = outbox.claim_due(session, now + dt.timedelta(seconds=1), limit=50,
                                     lease=dt.timedelta(minutes=10))
        assert [c.key for c in claims] == ["test-mail"]
        assert [r.status for r in webhook_rows(session, sub["id"])] == ["pending"]
        # Put the mail back; the webhook sender must not take it.
        session.execute(update(OutboxMessage).where(OutboxMessage.idempotency_key == "test-mail")
                        .values(status="pending", next_attempt_at=now))
        session.commit()
        report = deliver(session)
    assert (report.claimed, report.sent) == (1, 1) and len(receiver.requests) == 1
    mail = session.execute(select(OutboxMessage).where(
        OutboxMessage.idempotency_key == "test-mail")).scalar_one()
    assert (mail.status, mail.attempts) == ("pending", 0)
    # The mail dashboard's figures leave webhook deliveries out.
    assert outbox.delivery_health(session, now + dt.timedelta(seconds=1)).unsent == 1


def test_an_expired_link_emits_signing_link_expired_once(session, staff, ctx_for):
    case = drive_to(ctx_for, staff, session, "intake", adults=1, minors=0)
    person = session.execute(select(Participant).where(Participant.case_id == case.id)
                             ).scalars().first()
    now = dt.datetime.now(dt.timezone.utc)
    links = [SigningRequest(case_id=case.id, participant_id=person.id, kind="commitment",
                            token_hash=f"expiry-{i}", expires_at=now + offset,
                            created_by=staff.counsellor.id, **extra)
             for i, (offset, extra) in enumerate([
                 (dt.timedelta(hours=-1), {}),  # expired unused: the event
                 (dt.timedelta(hours=-1), {"used_at": now}),  # used: none
                 (dt.timedelta(hours=-1), {"revoked_at": now}),  # withdrawn: none
                 (dt.timedelta(hours=1), {})])]  # still open: none
    session.add_all(links)
    session.commit()
    sub, _ = subscribe(ctx_for(staff.counsellor), "http://127.0.0.1:9/x",
                       events=("signing_link.expired",))
    assert service.sweep_expired_links(session, now) == 1
    assert service.sweep_expired_links(session, now + dt.timedelta(minutes=5)) == 0
    [row] = webhook_rows(session, sub["id"])
    assert json.loads(row.body_text)["data"] == {
        "case": case.reference, "signing_request_id": links[0].id, "kind": "commitment",
        "participant_id": person.id}


def test_redelivery_sends_again_under_the_same_webhook_id(session, staff, ctx_for):
    case = drive_to(ctx_for, staff, session, "intake", adults=1, minors=0)
    with Receiver() as receiver:
        sub, secret = subscribe(ctx_for(staff.counsellor), receiver.url)
        commit_case(ctx_for, staff, session, case)
        deliver(session)
        [row] = webhook_rows(session, sub["id"])
        with pytest.raises(service.NotFound):
            service.redeliver(ctx_for(staff.other_counsellor), sub["id"], row.id)
        again = service.redeliver(ctx_for(staff.counsellor), sub["id"], row.id)
        assert again["status"] == "pending"
        with pytest.raises(service.Conflict):  # still queued
            service.redeliver(ctx_for(staff.counsellor), sub["id"], row.id)
        deliver(session)
    assert len(receiver.requests) == 2
    assert receiver.requests[0][0]["webhook-id"] == receiver.requests[1][0]["webhook-id"]
    assert Webhook(secret).verify(receiver.requests[1][1], receiver.requests[1][0])
    log = service.deliveries(ctx_for(staff.counsellor), sub["id"])
    assert [(d["status"], d["attempt_count"]) for d in log] == [("delivered", 2)]


def test_a_deleted_subscription_gets_nothing_more(session, staff, ctx_for):
    case = drive_to(ctx_for, staff, session, "intake", adults=1, minors=0)
    with Receiver() as receiver:
        sub, _ = subscribe(ctx_for(staff.counsellor), receiver.url)
        commit_case(ctx_for, staff, session, case)
        service.delete(ctx_for(staff.counsellor), sub["id"])
        report = deliver(session)
    assert report.claimed == 0 and receiver.requests == []
    assert [r.status for r in webhook_rows(session, sub["id"])] == ["cancelled"]


def test_the_secret_is_stored_encrypted_and_opens_with_the_server_key(session, staff, ctx_for):
    sub, secret = subscribe(ctx_for(staff.counsellor), "http://127.0.0.1:9/x")
    assert secret.startswith("whsec_")
    stored = session.execute(select(WebhookSubscription.secret_encrypted).where(
        WebhookSubscription.id == sub["id"])).scalar_one()
    assert secret not in stored and secret[len("whsec_"):] not in stored
    assert service.open_secret(SECRET_KEY, stored) == secret
    with pytest.raises(Exception):
        service.open_secret("another-key", stored)


def test_a_url_that_became_private_is_refused_at_delivery(session, staff, ctx_for):
    case = drive_to(ctx_for, staff, session, "intake", adults=1, minors=0)
    with Receiver() as receiver:
        sub, _ = subscribe(ctx_for(staff.counsellor), receiver.url)
        commit_case(ctx_for, staff, session, case)
        strict = service.WebhookSettings(timeout=5.0, allow_loopback=False)
        report = service.deliver_due(session, service.HttpSender(5.0), outbox.RetryPolicy(),
                                     strict, secret_key=SECRET_KEY)
    assert report.failed == 1 and receiver.requests == []
    [row] = webhook_rows(session, sub["id"])
    assert row.status == "failed" and "webhook.url_https" in row.last_error


def test_signing_a_document_and_declining_a_link_emit_their_events(session, staff, ctx_for,
                                                                    tmp_path):
    from returnprog import documents
    from returnprog.services import signing

    case = drive_to(ctx_for, staff, session, "intake", adults=2, minors=0)
    first, second = session.execute(select(Participant).where(Participant.case_id == case.id)
                                    .order_by(Participant.id)).scalars().all()
    sub, _ = subscribe(ctx_for(staff.counsellor), "http://127.0.0.1:9/s",
                       events=("document.signed", "signing_link.declined"))
    ctx = ctx_for(staff.counsellor)
    ctx.seal = documents.ensure_dev_seal(tmp_path)
    doc = signing.sign_document(ctx, case.reference, first.id, workflow.COMMITMENT, {},
                                method="typed", typed_name=first.full_name, channel="tablet",
                                identity_document="passport", consent=True)
    link, token = signing.create_signing_link(ctx_for(staff.counsellor), case.reference,
                                              second.id, workflow.COMMITMENT, {})
    signing.decline_signing_link(ctx_for(None), token, code="questions",
                                 reason="I want to ask my counsellor first")
    got = [(r.subject, json.loads(r.body_text)["data"]) for r in webhook_rows(session, sub["id"])]
    assert got == [
        ("document.signed", {"case": case.reference, "document_id": doc.id,
                             "kind": "commitment", "version": doc.version,
                             "participant_id": first.id, "channel": "tablet"}),
        ("signing_link.declined", {"case": case.reference, "signing_request_id": link.id,
                                   "kind": "commitment", "participant_id": second.id})]
    # The participant's own words and name stay out of the payloads.
    bodies = " ".join(r.body_text for r in webhook_rows(session, sub["id"]))
    assert "counsellor first" not in bodies and first.family_name_latin not in bodies


def test_a_redirect_is_not_followed_but_retried_as_a_failure(session, staff, ctx_for):
    case = drive_to(ctx_for, staff, session, "intake", adults=1, minors=0)
    with Receiver(status=307) as receiver:
        sub, _ = subscribe(ctx_for(staff.counsellor), receiver.url)
        commit_case(ctx_for, staff, session, case)
        report = deliver(session, outbox.RetryPolicy(max_attempts=2, base_seconds=0))
    # Two attempts, both at the subscribed address: the Location was never visited.
    assert receiver.paths == ["/hook", "/hook"]
    assert (report.sent, report.failed) == (0, 1)
    [row] = webhook_rows(session, sub["id"])
    assert row.status == "failed" and row.last_error.startswith("HTTP 307")
