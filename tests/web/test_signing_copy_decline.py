"""The participant's copy and the right to decline (issue 12 items 3 and 5).

A copy to keep: after signing through a personal link the browser that signed can download
the sealed PDF for a short while (nobody else, and not later), and the same sealed PDF is
e-mailed to the signer — received here by a real SMTP server (aiosmtpd) — in their language
first. Both verify with the project's verifier and with poppler's ``pdfsig``. After a tablet
signature the counsellor can queue the same e-mail or print the copy.

Decline: the participant can refuse to sign with a reason; the link is closed, the case is
unchanged, the audit chain holds the event (the reason's digest, not its words), and the
counsellor sees it on the case page and the dashboard.

Also the permissions of these public routes (the permission matrix defers to this file).
"""
from __future__ import annotations

import base64
import datetime as dt
import email
import email.policy
import hashlib
import json
import re
import shutil
import subprocess

import pytest
import time_machine
from sqlalchemy import select
from sqlmodel import Session

from returnprog.models import AccessEvent, AuditEvent, Case, OutboxMessage, SigningRequest
from returnprog.services import cases as case_service
from returnprog.services import outbox
from returnprog.web.signing_link import COPY_COOKIE

from ..conftest import intake
from ..integration.test_reminders_delivery import RETRY, SmtpServer, settings
from ..web_client import PASSWORD, csrf_token, text, web_for
from .test_signing_support import (adults_of, assert_verifies_everywhere, create_link,
                                   drawn_png, last_document, public_form, set_language,
                                   snapshot)

ID_CHECK = {"id_type": "passport", "id_number": "FX123456", "id_confirmed": "yes"}


def _open_case(staff, ctx_for, adults=1, minors=0, **over):
    return case_service.open_case(ctx_for(staff.counsellor), intake(adults, minors, **over)).reference


def _engine(app):
    return app.extensions["returnprog.engine"]


def _outbox(app) -> list[OutboxMessage]:
    with Session(_engine(app), expire_on_commit=False) as s:
        return list(s.execute(select(OutboxMessage).order_by(OutboxMessage.id)).scalars())


def _deliver(app, port: int) -> outbox.DeliveryReport:
    s = settings(port)
    with Session(_engine(app)) as session:
        return outbox.deliver_due(session, outbox.SmtpMailer(s), s, RETRY)


def assert_pdfsig_valid(tmp_path, pdf: bytes, name: str) -> None:
    """poppler's pdfsig, a verifier independent of ours, finds one intact signature over
    the whole document (the development seal's issuer is, rightly, not trusted there)."""
    if shutil.which("pdfsig") is None:
        pytest.fail("pdfsig is missing: run scripts/system-deps.sh (poppler-utils)")
    path = tmp_path / name
    path.write_bytes(pdf)
    out = subprocess.run(["pdfsig", str(path)], capture_output=True, text=True, timeout=60)
    assert "Signature #1" in out.stdout and "Signature #2" not in out.stdout, out.stdout
    assert "Signature Validation: Signature is Valid." in out.stdout, out.stdout
    assert "Total document signed" in out.stdout, out.stdout


def _sign_through_link(app, web, reference, signer_id, client, kind="commitment"):
    path = create_link(web, reference, signer_id, kind)
    resp = public_form(client, path, consent="yes", method="typed",
                       typed_name="Olena Kovalenko")
    assert resp.status_code == 303, resp.get_data(as_text=True)[:2000]
    return path, resp


# --- a copy to keep -----------------------------------------------------------------------------

def test_the_signer_downloads_and_receives_the_same_sealed_copy_and_both_verify(
        app, staff, ctx_for, tmp_path):
    reference = _open_case(staff, ctx_for)
    (signer,) = adults_of(app, reference)
    web = web_for(app, staff.counsellor)
    participant = app.test_client()
    _path, resp = _sign_through_link(app, web, reference, signer.id, participant)
    doc = last_document(app)

    # The done page, in Ukrainian: the download, the e-mail, and what happens next.
    assert COPY_COOKIE in resp.headers.get("Set-Cookie", "")
    cookie = resp.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/s/" in cookie
    done = participant.get(resp.headers["Location"])
    body = done.get_data(as_text=True)
    assert 'href="/s/copy"' in body and "Завантажити підписану копію (PDF)" in body
    assert "Копію також буде надіслано на вашу адресу електронної пошти." in body
    assert "Що буде далі:" in body and "Max-Age=1800" in cookie
    assert signer.email not in body and str(doc.id) not in resp.headers["Location"]

    # The download: the sealed PDF itself, as an attachment, never cached or sniffed.
    copy = participant.get("/s/copy")
    assert copy.status_code == 200
    assert copy.mimetype == "application/pdf" and copy.data == doc.pdf
    assert copy.headers["Content-Disposition"] == \
        f'attachment; filename="{reference}-commitment-v1.pdf"'
    assert copy.headers["Cache-Control"] == "no-store"
    assert copy.headers["X-Content-Type-Options"] == "nosniff"
    with Session(_engine(app)) as s:
        look = s.execute(select(AccessEvent).where(AccessEvent.view == "document")).scalar_one()
        assert (look.actor, look.subject, look.channel) == (
            f"participant:{signer.id}", str(doc.id), "link")

    # The e-mail: queued with the document's id (not its bytes), delivered over SMTP with
    # the sealed PDF attached, the participant's language first.
    (queued,) = [m for m in _outbox(app) if m.kind == "signed_copy"]
    assert (queued.document_id, queued.recipient, queued.language) == (doc.id, signer.email, "uk")
    assert "%PDF" not in queued.body_text and "%PDF" not in queued.body_html
    server = SmtpServer().start()
    try:
        report = _deliver(app, server.port)
    finally:
        server.stop()
    assert report.sent == 1, report.errors
    (mail,) = server.handler.messages
    assert mail["To"] == signer.email
    assert str(mail["Subject"]).startswith("Ваш підписаний документ: Декларація про участь")
    assert "Uw ondertekende document" in str(mail["Subject"])
    plain = mail.get_body(("plain",)).get_content()
    assert plain.index("Що буде далі:") < plain.index("Wat er nu gebeurt:")
    assert plain.index("У вкладенні") < plain.index("In de bijlage")
    (attachment,) = list(mail.iter_attachments())
    assert attachment.get_content_type() == "application/pdf"
    assert attachment.get_filename() == f"{reference}-commitment-v1.pdf"
    mailed = attachment.get_content()
    assert mailed == copy.data == doc.pdf

    for name, pdf in (("downloaded.pdf", copy.data), ("mailed.pdf", mailed)):
        assert_verifies_everywhere(app, tmp_path, pdf, reference=reference, kind="commitment",
                                   version=1, signer=signer.full_name)
        assert_pdfsig_valid(tmp_path, pdf, name)


def test_the_copy_is_refused_to_another_browser_to_a_forged_cookie_and_after_the_window(
        app, staff, ctx_for):
    reference = _open_case(staff, ctx_for)
    (signer,) = adults_of(app, reference)
    web = web_for(app, staff.counsellor)
    participant = app.test_client()
    _path, resp = _sign_through_link(app, web, reference, signer.id, participant)
    value = re.search(rf"{COPY_COOKIE}=([^;]+)", resp.headers["Set-Cookie"]).group(1)

    # Another browser: no cookie, nothing to download (the page says so in every language).
    stranger = app.test_client()
    refused = stranger.get("/s/copy")
    assert refused.status_code == 410 and refused.mimetype == "text/html"
    assert "Копію тут неможливо завантажити" in refused.get_data(as_text=True)
    assert "Het afschrift" not in refused.get_data(as_text=True)
    # The done page there offers no download either.
    assert 'href="/s/copy"' not in stranger.get("/s/done?lang=uk&kind=commitment").get_data(
        as_text=True)

    # A cookie naming another document, or altered, is not accepted.
    payload, rest = value.split(".", 1)
    doc_id = last_document(app).id
    other_payload = base64.urlsafe_b64encode(
        json.dumps({"d": doc_id + 1, "l": 1}, separators=(",", ":")).encode()).decode().rstrip("=")
    assert other_payload != payload
    forged = app.test_client()
    forged.set_cookie(COPY_COOKIE, other_payload + "." + rest, path="/s/")
    assert forged.get("/s/copy").status_code == 410
    with app.app_context():
        from returnprog.web.signing_link import _copy_serializer

        other = _copy_serializer().dumps({"d": last_document(app).id, "l": 999})
    forged.set_cookie(COPY_COOKIE, other, path="/s/")
    assert forged.get("/s/copy").status_code == 410

    # The genuine cookie works now, and no longer after the window, even if it is kept.
    assert participant.get("/s/copy").status_code == 200
    with time_machine.travel(dt.datetime.now(dt.timezone.utc) + dt.timedelta(minutes=31),
                             tick=False):
        late = app.test_client()
        late.set_cookie(COPY_COOKIE, value, path="/s/")
        assert late.get("/s/copy").status_code == 410
        assert 'href="/s/copy"' not in late.get("/s/done?lang=uk").get_data(as_text=True)


def test_a_participant_without_e_mail_gets_the_download_and_no_mail(app, staff, ctx_for):
    data = intake(1, 0)
    data["principal"]["email"] = None
    data["principal"]["language"] = "ru"
    reference = case_service.open_case(ctx_for(staff.counsellor), data).reference
    (signer,) = adults_of(app, reference)
    web = web_for(app, staff.counsellor)
    participant = app.test_client()
    _path, resp = _sign_through_link(app, web, reference, signer.id, participant)
    body = participant.get(resp.headers["Location"]).get_data(as_text=True)
    assert "Скачать подписанную копию (PDF)" in body
    assert "Ваш консультант может дать вам распечатанную копию." in body
    assert [m for m in _outbox(app) if m.kind == "signed_copy"] == []
    assert participant.get("/s/copy").status_code == 200


@pytest.mark.parametrize("lang,first,second", [
    ("en", "Your signed document", "Uw ondertekende document"),
    ("nl", "Uw ondertekende document", "Your signed document"),
    ("ru", "Ваш подписанный документ", "Uw ondertekende document"),
], ids=["en", "nl", "ru"])
def test_the_copy_mail_speaks_the_signers_language_first(app, staff, ctx_for, lang, first,
                                                         second):
    reference = _open_case(staff, ctx_for)
    (signer,) = adults_of(app, reference)
    set_language(app, signer.id, lang)
    web = web_for(app, staff.counsellor)
    _sign_through_link(app, web, reference, signer.id, app.test_client())
    (queued,) = [m for m in _outbox(app) if m.kind == "signed_copy"]
    assert queued.subject.startswith(first) and second in queued.subject
    assert queued.body_text.index("What happens next" if lang == "en" else {
        "nl": "Wat er nu gebeurt", "ru": "Что будет дальше"}[lang]) < len(queued.body_text) // 2


def test_after_a_tablet_signature_the_counsellor_e_mails_or_prints_the_copy(
        app, staff, ctx_for):
    reference = _open_case(staff, ctx_for, adults=2)
    signer, spouse = adults_of(app, reference)
    web = web_for(app, staff.counsellor)
    resp = web.post(f"/cases/{reference}/tablet/sign", {
        "participant_id": signer.id, "kind": "commitment", "method": "drawn",
        "signature": drawn_png(), "consent": "yes", **ID_CHECK})
    assert resp.status_code == 303
    doc = last_document(app)
    # The participant's done page first (kiosk); the password hands the tablet back to
    # the counsellor's page offering the copy.
    assert resp.headers["Location"].endswith("/tablet/done")
    back = web.post("/tablet/hand-back", {"password": PASSWORD})
    assert back.headers["Location"].endswith(f"/cases/{reference}/documents/{doc.id}/copy")
    page = web.get(back.headers["Location"])
    body = text(page.get_data(as_text=True))
    assert page.status_code == 200 and signer.email in body
    assert f'href="/cases/{reference}/documents/{doc.id}.pdf"' in page.get_data(as_text=True)
    # Signing on the tablet queues nothing by itself: the counsellor offers it.
    assert [m for m in _outbox(app) if m.kind == "signed_copy"] == []

    before = snapshot(app)
    sent = web.post(f"/cases/{reference}/documents/{doc.id}/copy/email")
    assert sent.status_code == 303
    (queued,) = [m for m in _outbox(app) if m.kind == "signed_copy"]
    assert (queued.document_id, queued.recipient) == (doc.id, signer.email)
    assert queued.subject.startswith("Ваш підписаний документ")
    assert snapshot(app).audit_events == before.audit_events + 1
    # Asked twice, it is still one message (and one audit event).
    again = web.post(f"/cases/{reference}/documents/{doc.id}/copy/email")
    assert again.status_code == 303
    assert len([m for m in _outbox(app) if m.kind == "signed_copy"]) == 1
    assert snapshot(app).audit_events == before.audit_events + 1
    with Session(_engine(app)) as s:
        event = s.execute(select(AuditEvent).where(AuditEvent.action == "email_signed_copy")
                          ).scalar_one()
        assert json.loads(event.details)["document_id"] == doc.id

    # The printable download is the case's own document download.
    pdf = web.get(f"/cases/{reference}/documents/{doc.id}.pdf")
    assert pdf.status_code == 200 and pdf.data == doc.pdf

    # Without an e-mail address the page says to print, and e-mailing is refused.
    with Session(_engine(app)) as s:
        from returnprog.models import Participant

        person = s.get(Participant, spouse.id)
        person.email = None
        s.add(person)
        s.commit()
    resp = web.post(f"/cases/{reference}/tablet/sign", {
        "participant_id": spouse.id, "kind": "commitment", "method": "drawn",
        "signature": drawn_png(), "consent": "yes", **ID_CHECK})
    doc2 = last_document(app)
    back = web.post("/tablet/hand-back", {"password": PASSWORD})
    assert "geen e-mailadres" in text(web.get(back.headers["Location"]).get_data(as_text=True))
    refused = web.post(f"/cases/{reference}/documents/{doc2.id}/copy/email")
    assert refused.status_code == 422
    assert len([m for m in _outbox(app) if m.kind == "signed_copy"]) == 1

    # Another team's counsellor does not see the case; a supervisor does not take signatures.
    from ..web_client import web_for as signed_in

    assert signed_in(app, staff.other_counsellor).get(
        f"/cases/{reference}/documents/{doc.id}/copy").status_code == 404
    assert signed_in(app, staff.supervisor).post(
        f"/cases/{reference}/documents/{doc.id}/copy/email").status_code == 403


# --- decline ------------------------------------------------------------------------------------

def test_a_participant_declines_with_a_reason_and_the_counsellor_sees_it(
        app, staff, ctx_for):
    reference = _open_case(staff, ctx_for)
    (signer,) = adults_of(app, reference)
    web = web_for(app, staff.counsellor)
    path = create_link(web, reference, signer.id, "commitment")
    participant = app.test_client()
    assert f'href="{path}/decline"' in participant.get(path).get_data(as_text=True)

    page = participant.get(f"{path}/decline")
    assert page.status_code == 200
    body = page.get_data(as_text=True)
    assert '<html lang="uk">' in body and "Чому ви не хочете підписувати?" in body
    assert "У мене є запитання" in body
    token = csrf_token(body)
    with Session(_engine(app)) as s:
        state_before = s.execute(select(Case.state).where(Case.reference == reference)).scalar_one()

    # Refusals change nothing and say why in Ukrainian.
    before = snapshot(app)
    cases = [
        ({"decline_code": "questions"}, "Підтвердьте, що ви не хочете підписувати"),
        ({"confirm": "yes"}, "Вкажіть, чому ви не хочете підписувати"),
        ({"confirm": "yes", "decline_code": "other"}, "Вкажіть, чому ви не хочете підписувати"),
        ({"confirm": "yes", "decline_reason": "   "}, "Вкажіть, чому ви не хочете підписувати"),
        ({"confirm": "yes", "decline_code": "nonsense", "decline_reason": "x"},
         "Вкажіть, чому ви не хочете підписувати"),
        ({"confirm": "yes", "decline_reason": "bad\x07bell"}, "керівний символ"),
        ({"confirm": "yes", "decline_reason": "x" * 1001}, "не більше 1000 символів"),
    ]
    for data, says in cases:
        resp = participant.post(f"{path}/decline", data={"csrf_token": token, **data})
        assert resp.status_code == 422, data
        assert says in resp.get_data(as_text=True), data
        assert snapshot(app) == before
    assert participant.post(f"{path}/decline", data={
        "confirm": "yes", "decline_reason": "no token"}).status_code == 400

    reason = "Хочу спершу поговорити з консультантом про дату."
    resp = participant.post(f"{path}/decline", data={
        "csrf_token": token, "confirm": "yes", "decline_code": "questions",
        "decline_reason": reason})
    assert resp.status_code == 303 and resp.headers["Location"].startswith("/s/declined")
    assert "Ви відмовилися від підписання" in participant.get(resp.headers["Location"]).get_data(
        as_text=True)

    # The link is closed: neither the page nor a signature nor a second decline.
    gone = participant.get(path)
    assert gone.status_code == 410
    assert "declined to sign through this link" in gone.get_data(as_text=True)
    assert public_form(participant, path, consent="yes", method="typed",
                       typed_name="Olena Kovalenko").status_code == 410
    assert participant.get(f"{path}/decline").status_code == 410

    after = snapshot(app)
    assert after.documents == before.documents
    assert after.audit_events == before.audit_events + 1
    with Session(_engine(app)) as s:
        link = s.execute(select(SigningRequest)).scalar_one()
        assert link.declined_at is not None and link.revoked_at is not None
        assert link.used_at is None and link.document_id is None
        assert (link.decline_code, link.decline_reason) == ("questions", reason)
        assert s.execute(select(Case.state).where(Case.reference == reference)
                         ).scalar_one() == state_before
        event = s.execute(select(AuditEvent).where(AuditEvent.action == "signing_declined")
                          ).scalar_one()
        assert event.actor == f"participant:{signer.id}"
        details = json.loads(event.details)
        assert details["reason_sha256"] == hashlib.sha256(reason.encode()).hexdigest()
        assert details["reason_length"] == len(reason) and details["decline_code"] == "questions"
        assert reason not in event.details and "поговорити" not in event.details

    # The counsellor sees it on the case page (with the reason) and on the dashboard.
    case_page = text(web.get(f"/cases/{reference}").get_data(as_text=True))
    assert "geweigerd" in case_page and "Geweigerd op" in case_page and reason in case_page
    assert "Ik heb vragen en wil eerst met mijn regievoerder praten." in case_page
    assert "Ondertekening geweigerd door de deelnemer" in case_page  # the timeline
    dashboard = text(web.get("/").get_data(as_text=True))
    assert "Geweigerde ondertekeningen" in dashboard and reference in dashboard
    supervisor = text(web_for(app, staff.supervisor).get("/").get_data(as_text=True))
    assert "Geweigerde ondertekeningen" in supervisor
    assert "Geweigerde ondertekeningen" not in text(
        web_for(app, staff.other_counsellor).get("/").get_data(as_text=True))

    # A declined link cannot be withdrawn; the counsellor creates a new one, which works.
    with Session(_engine(app)) as s:
        link_id = s.execute(select(SigningRequest.id)).scalar_one()
    assert web.post(f"/cases/{reference}/signing-links/revoke",
                    {"link_id": link_id}).status_code == 409
    fresh = create_link(web, reference, signer.id, "commitment")
    assert participant.get(fresh).status_code == 200


def test_a_standard_reason_alone_is_enough(app, staff, ctx_for):
    reference = _open_case(staff, ctx_for)
    (signer,) = adults_of(app, reference)
    set_language(app, signer.id, "ru")
    web = web_for(app, staff.counsellor)
    path = create_link(web, reference, signer.id, "commitment")
    participant = app.test_client()
    page = participant.get(f"{path}/decline").get_data(as_text=True)
    assert "Почему вы не хотите подписывать?" in page
    resp = participant.post(f"{path}/decline", data={
        "csrf_token": csrf_token(page), "confirm": "yes", "decline_code": "not_now"})
    assert resp.status_code == 303
    assert "Вы отказались от подписания" in participant.get(resp.headers["Location"]).get_data(
        as_text=True)
    with Session(_engine(app)) as s:
        link = s.execute(select(SigningRequest)).scalar_one()
        assert (link.decline_code, link.decline_reason) == ("not_now", None)


def test_the_decline_and_copy_routes_answer_unknown_tokens_as_the_link_pages_do(app):
    client = app.test_client()
    bogus = "/s/" + "A" * 43
    assert client.get(f"{bogus}/decline").status_code == 410
    page = client.get("/verify").get_data(as_text=True)
    assert client.post(f"{bogus}/decline", data={"csrf_token": csrf_token(page),
                                                 "confirm": "yes"}).status_code == 410
    assert client.get("/s/copy").status_code == 410
    assert client.get("/s/declined?lang=en").status_code == 200
