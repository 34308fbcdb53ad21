"""The one-time code pages of a personal signing link (issue 12, item 1), through the real
app: choose a channel, "we sent a code to o***@…", enter it, then the document — with the
refusals a participant can meet (wrong code with tries left, locked, expired, too many
sends, another link's verification, no CSRF token) and the policy per document kind.

Also the permissions of the code routes (the permission matrix defers to this file)."""
from __future__ import annotations

import datetime as dt
import json
import logging
import re

from sqlalchemy import select, update
from sqlmodel import Session

from returnprog import workflow
from returnprog.models import AuditEvent, Document, OutboxMessage, Participant, SigningCode
from returnprog.sms import FileSmsSink
from returnprog.web.signing_link import VERIFIED_COOKIE

from ..conftest import drive_to
from ..web_client import csrf_token, web_for
from .test_signing_support import create_link, last_document, mailed_code


def _engine(app):
    return app.extensions["returnprog.engine"]


def _declaration_link(app, staff, ctx_for, session, phone=None, language="uk"):
    case = drive_to(ctx_for, staff, session, "committed", adults=1, minors=0)
    person = session.execute(select(Participant).where(Participant.case_id == case.id)).scalar_one()
    person.phone, person.language = phone, language
    session.add(person)
    session.commit()
    path = create_link(web_for(app, staff.counsellor), case.reference, person.id,
                       kind=workflow.WITHDRAWAL_DECLARATION)
    return path, person


def _post(client, url, page_html, **data):
    return client.post(url, data={"csrf_token": csrf_token(page_html), **data})


def _ask_code(client, path, channel="email"):
    page = client.get(path)
    assert page.status_code == 200
    resp = _post(client, path + "/code", page.get_data(as_text=True), channel=channel)
    assert resp.status_code == 303, resp.get_data(as_text=True)[:2000]
    assert resp.headers["Location"].endswith(path + "/code")
    return client.get(path + "/code")


def test_a_participant_verifies_by_e_mail_code_then_reads_and_signs(
        app, staff, ctx_for, session, caplog):
    caplog.set_level(logging.DEBUG)
    path, person = _declaration_link(app, staff, ctx_for, session)
    client = app.test_client()

    # Before the code: where to send it; nothing of the document.
    first = client.get(path)
    body = first.get_data(as_text=True)
    assert first.status_code == 200 and '<html lang="uk">' in body
    assert "Підтвердьте, що це ви" in body and "p***@example.org" in body
    assert person.email not in body
    assert 'name="typed_name"' not in body and "doc-preview" not in body
    assert 'name="csrf_token"' in body

    enter = _ask_code(client, path)
    page = enter.get_data(as_text=True)
    assert "Ми надіслали код на p***@example.org" in page
    assert 'inputmode="numeric"' in page and 'autocomplete="one-time-code"' in page
    code = mailed_code(app)
    wrong = f"{(int(code) + 1) % 10 ** 6:06d}"
    resp = _post(client, path + "/code/check", page, code=wrong)
    assert resp.status_code == 422
    assert "Код неправильний" in resp.get_data(as_text=True)
    assert "залишилося 4 спроби" in resp.get_data(as_text=True)
    # Signing before the code is refused with the code page, nothing is signed.
    resp = _post(client, path, page, consent="yes", method="typed", typed_name=person.full_name)
    assert resp.status_code == 403 and "Підтвердьте, що це ви" in resp.get_data(as_text=True)

    resp = _post(client, path + "/code/check", page, code=f"{code[:3]} {code[3:]}")
    assert resp.status_code == 303 and resp.headers["Location"].endswith(path)
    cookie = resp.headers["Set-Cookie"]
    assert VERIFIED_COOKIE in cookie and "HttpOnly" in cookie and "SameSite=Strict" in cookie
    assert code not in cookie
    doc_page = client.get(path)
    assert 'name="typed_name"' in doc_page.get_data(as_text=True)
    resp = _post(client, path, doc_page.get_data(as_text=True), consent="yes", method="typed",
                 typed_name=person.full_name, ack="cond_irreversible")
    assert resp.status_code == 303, resp.get_data(as_text=True)[:2000]
    doc = last_document(app)
    assert (doc.kind, doc.signer_verification) == ("withdrawal_declaration", "email_code")

    with Session(_engine(app)) as s:
        events = {e.action: json.loads(e.details) for e in s.execute(
            select(AuditEvent).order_by(AuditEvent.id)).scalars()}
    assert events["signing_code_sent"]["to"] == "p***@example.org"
    assert events["signing_code_sent"]["channel"] == "email"
    assert events["signing_code_failed"]["attempt"] == 1
    assert events["signing_code_verified"]["channel"] == "email"
    assert events["sign_document"]["verification"] == "email_code"
    # Neither the code nor the address appears in the logs.
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert code not in logged and person.email not in logged


def test_another_links_verification_opens_nothing(app, staff, ctx_for, session):
    first, _ = _declaration_link(app, staff, ctx_for, session)
    second, person = _declaration_link(app, staff, ctx_for, session)
    client = app.test_client()
    page = _ask_code(client, first).get_data(as_text=True)
    code_of_first = mailed_code(app)
    assert _post(client, first + "/code/check", page, code=code_of_first).status_code == 303
    assert 'name="typed_name"' in client.get(first).get_data(as_text=True)
    # The same browser (its cookie names the first link) on the second link: the code page.
    other = client.get(second).get_data(as_text=True)
    assert "Підтвердьте, що це ви" in other and 'name="typed_name"' not in other
    resp = _post(client, second, other, consent="yes", method="typed", typed_name=person.full_name)
    assert resp.status_code == 403
    # The first link's code on the second link is a wrong code.
    page = _ask_code(client, second).get_data(as_text=True)
    if code_of_first != mailed_code(app):  # (one chance in a million they are equal)
        resp = _post(client, second + "/code/check", page, code=code_of_first)
        assert resp.status_code == 422 and "Код неправильний" in resp.get_data(as_text=True)
    # A forged cookie is ignored.
    client.set_cookie(VERIFIED_COOKIE, "eyJsIjoxLCJjIjoxfQ.forged.sig", path="/s/")
    assert 'name="typed_name"' not in client.get(second).get_data(as_text=True)


def test_five_wrong_codes_lock_and_the_right_one_no_longer_opens(app, staff, ctx_for, session):
    path, _ = _declaration_link(app, staff, ctx_for, session, language="ru")
    client = app.test_client()
    page = _ask_code(client, path).get_data(as_text=True)
    code = mailed_code(app)
    wrong = f"{(int(code) + 5) % 10 ** 6:06d}"
    for _ in range(4):
        assert _post(client, path + "/code/check", page, code=wrong).status_code == 422
    locked = _post(client, path + "/code/check", page, code=wrong)
    assert "слишком много раз" in locked.get_data(as_text=True)
    assert 'name="code"' not in locked.get_data(as_text=True)  # only "send a new code"
    right = _post(client, path + "/code/check", page, code=code)
    assert right.status_code == 422 and "слишком много раз" in right.get_data(as_text=True)
    assert 'name="typed_name"' not in client.get(path).get_data(as_text=True)


def test_an_expired_code_says_so(app, staff, ctx_for, session):
    path, _ = _declaration_link(app, staff, ctx_for, session)
    client = app.test_client()
    page = _ask_code(client, path).get_data(as_text=True)
    code = mailed_code(app)
    with Session(_engine(app)) as s:
        s.execute(update(SigningCode).values(
            expires_at=dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=1)))
        s.commit()
    resp = _post(client, path + "/code/check", page, code=code)
    assert resp.status_code == 422 and "Термін дії цього коду минув" in resp.get_data(as_text=True)


def test_at_most_three_codes_are_sent_per_link_in_fifteen_minutes(app, staff, ctx_for, session):
    path, _ = _declaration_link(app, staff, ctx_for, session)
    client = app.test_client()
    for _ in range(3):
        _ask_code(client, path)
    page = client.get(path).get_data(as_text=True)
    resp = _post(client, path + "/code", page, channel="email")
    assert resp.status_code == 429 and int(resp.headers["Retry-After"]) > 0
    with Session(_engine(app)) as s:
        assert len(s.execute(select(SigningCode)).scalars().all()) == 3
        assert len(s.execute(select(OutboxMessage).where(
            OutboxMessage.kind == "signing_code")).scalars().all()) == 3


def test_a_code_by_text_message_through_the_sink(app, staff, ctx_for, session):
    path, person = _declaration_link(app, staff, ctx_for, session, phone="+31 6 12345678")
    client = app.test_client()
    choose = client.get(path).get_data(as_text=True)
    assert 'value="email"' in choose and 'value="sms"' in choose and "+31 ****5678" in choose
    enter = _ask_code(client, path, channel="sms").get_data(as_text=True)
    assert "+31 ****5678" in enter
    (message,) = FileSmsSink(f"{app.instance_path}/sms").messages()
    assert message["to"] == "+31 6 12345678"
    code = re.search(r"\b(\d{6})\b", message["text"]).group(1)
    assert _post(client, path + "/code/check", enter, code=code).status_code == 303
    doc_page = client.get(path).get_data(as_text=True)
    _post(client, path, doc_page, consent="yes", method="typed", typed_name=person.full_name,
          ack="cond_irreversible")
    assert last_document(app).signer_verification == "sms_code"


def test_the_code_forms_need_their_csrf_token_and_a_known_channel(app, staff, ctx_for, session):
    path, _ = _declaration_link(app, staff, ctx_for, session)
    client = app.test_client()
    client.get(path)
    assert client.post(path + "/code", data={"channel": "email"}).status_code == 400
    page = client.get(path).get_data(as_text=True)
    resp = _post(client, path + "/code", page, channel="sms")  # no phone registered
    assert resp.status_code == 422 and "Виберіть, куди надіслати код" in resp.get_data(as_text=True)
    assert client.post(path + "/code/check", data={"code": "123456"}).status_code == 400
    with Session(_engine(app)) as s:
        assert s.execute(select(SigningCode)).first() is None
    # Unknown links are refused on the code routes as on the page.
    assert client.get("/s/" + "x" * 43 + "/code").status_code == 410


def test_without_any_contact_the_page_says_to_ask_the_counsellor(app, staff, ctx_for, session):
    case = drive_to(ctx_for, staff, session, "committed", adults=1, minors=0)
    person = session.execute(select(Participant).where(Participant.case_id == case.id)).scalar_one()
    person.email = None
    session.add(person)
    session.commit()
    path = create_link(web_for(app, staff.counsellor), case.reference, person.id,
                       kind=workflow.WITHDRAWAL_DECLARATION)
    body = app.test_client().get(path).get_data(as_text=True)
    assert "попросіть свого консультанта" in body and 'name="channel"' not in body


def test_the_policy_decides_per_kind_and_an_instance_can_override_it(
        db_url, tmp_path, staff, ctx_for, session):
    from returnprog import create_app
    from returnprog.policy import load_policy

    default = load_policy({})
    assert default.verification_for("withdrawal_declaration") == "code"
    assert default.verification_for("departure_agreement") == "code"
    assert default.verification_for("commitment") == "none"
    app = create_app({"TESTING": True, "DATABASE_URL": db_url, "SECRET_KEY": "test-secret",
                      "WTF_CSRF_ENABLED": True,
                      "POLICY": {"signer_verification": {"commitment": "code",
                                                         "withdrawal_declaration": "none"}}})
    app.instance_path = str(tmp_path / "instance")
    try:
        case = drive_to(ctx_for, staff, session, "intake", adults=1, minors=0)
        pid = session.execute(select(Participant.id).where(Participant.case_id == case.id)).scalar_one()
        web = web_for(app, staff.counsellor)
        commitment = create_link(web, case.reference, pid)
        body = app.test_client().get(commitment).get_data(as_text=True)
        assert "Підтвердьте, що це ви" in body and 'name="typed_name"' not in body
        committed = drive_to(ctx_for, staff, session, "committed", adults=1, minors=0)
        pid = session.execute(select(Participant.id).where(
            Participant.case_id == committed.id)).scalar_one()
        declaration = create_link(web, committed.reference, pid,
                                  kind=workflow.WITHDRAWAL_DECLARATION)
        assert 'name="typed_name"' in app.test_client().get(declaration).get_data(as_text=True)
        # The departure agreement keeps its default (the override is merged).
        assert app.extensions["returnprog.policy"].verification_for("departure_agreement") == "code"
    finally:
        app.extensions["returnprog.engine"].dispose()


def test_a_tablet_signature_records_the_identity_document_check(app, staff, ctx_for, session,
                                                                tmp_path):
    from returnprog.services import signing
    from returnprog import documents

    case = drive_to(ctx_for, staff, session, "committed", adults=1, minors=0)
    person = session.execute(select(Participant).where(Participant.case_id == case.id)).scalar_one()
    ctx = ctx_for(staff.counsellor)
    ctx.seal = documents.ensure_dev_seal(tmp_path)
    doc = signing.sign_document(ctx, case.reference, person.id, workflow.WITHDRAWAL_DECLARATION,
                                {}, method="typed", typed_name=person.full_name, consent=True,
                                identity_document="passport checked",
                                acknowledged=("cond_irreversible",))
    assert doc.signer_verification == "id_document"
    with Session(_engine(app)) as s:
        assert s.get(Document, doc.id).signer_verification == "id_document"


def test_no_code_is_asked_for_or_sent_for_a_document_the_case_has_left(
        app, staff, ctx_for, session):
    from ..conftest import confirm_ind, fake_sign
    from returnprog.services import cases as case_service

    from returnprog.models import Case

    path, person = _declaration_link(app, staff, ctx_for, session)
    client = app.test_client()
    page = client.get(path).get_data(as_text=True)
    # Meanwhile the declaration was signed on paper and the withdrawal recorded.
    session.rollback()
    case = session.get(Case, person.case_id)
    fake_sign(session, case, workflow.WITHDRAWAL_DECLARATION)
    confirm_ind(ctx_for(staff.counsellor), case)
    case_service.perform(ctx_for(staff.counsellor), case.reference, "record_withdrawal", {})
    assert client.get(path).status_code == 409
    assert _post(client, path + "/code", page, channel="email").status_code == 409
    with Session(_engine(app)) as s:
        assert s.execute(select(SigningCode)).first() is None
