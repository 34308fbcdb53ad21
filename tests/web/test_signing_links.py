"""Personal signing links: a counsellor creates one per signer and document, the address is
shown once, the participant signs on a public page in their language — and every link that
is expired, used, withdrawn, unknown or guessed is refused without changing anything.

Also the permissions of the public routes (the permission matrix defers to this file).
"""
from __future__ import annotations

import datetime as dt
import html
import json
import logging
import secrets
import threading
import urllib.error
import urllib.request

import time_machine
from sqlalchemy import select
from sqlmodel import Session
from werkzeug.serving import make_server

from returnprog.models import AuditEvent, Document, SigningRequest
from returnprog.web.redaction import TokenRedactingFilter, redact_tokens

from returnprog import workflow
from returnprog.services import cases as case_service

from ..conftest import confirm_ind, drive_to, fake_sign, intake
from .test_signing_support import (adults_of, assert_verifies_everywhere, blank_png,
                                   create_link, drawn_png, last_document, public_form,
                                   set_language, snapshot)
from ..web_client import csrf_token, text, web_for

PUBLIC_HEADERS = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"}


def _open_case(app, staff, ctx_for, adults=2, minors=1):
    return case_service.open_case(ctx_for(staff.counsellor), intake(adults, minors)).reference


def _assert_public_headers(resp):
    for name, value in PUBLIC_HEADERS.items():
        assert resp.headers.get(name) == value, (name, resp.headers.get(name))
    assert "default-src 'none'" in resp.headers["Content-Security-Policy"]


# --- the whole flow ------------------------------------------------------------------------------

def test_a_participant_signs_through_their_link_and_the_sealed_pdf_verifies(
        app, staff, ctx_for, session, tmp_path):
    reference = _open_case(app, staff, ctx_for)
    other = _open_case(app, staff, ctx_for)
    signer, spouse = adults_of(app, reference)
    stranger = adults_of(app, other)[0]
    web = web_for(app, staff.counsellor)

    # The case page offers the choice; creating the link shows its address once.
    case_page = web.get(f"/cases/{reference}").get_data(as_text=True)
    assert 'action="/cases/%s/tablet"' % reference in case_page
    assert 'formaction="/cases/%s/signing-links"' % reference in case_page
    path = create_link(web, reference, signer.id)
    token = path.rsplit("/", 1)[1]
    for page in (f"/cases/{reference}", f"/cases/{reference}/signatures"):
        shown = web.get(page).get_data(as_text=True)
        assert token not in shown
    assert "open" in text(web.get(f"/cases/{reference}/signatures").get_data(as_text=True))
    with Session(app.extensions["returnprog.engine"]) as s:
        link = s.execute(select(SigningRequest)).scalar_one()
        assert link.token_hash != token and len(link.token_hash) == 64
        assert link.expires_at - link.created_at == dt.timedelta(days=7)

    # The participant's page: their language, the document, no caching, no Referer.
    participant = app.test_client()
    page = participant.get(path)
    assert page.status_code == 200
    _assert_public_headers(page)
    body = page.get_data(as_text=True)
    assert '<html lang="uk">' in body
    assert "Декларація про участь" in body and "Deelnameverklaring" in body
    assert reference in body and signer.full_name in body
    assert 'name="referrer" content="no-referrer"' in body
    assert "/signing/static/signature.js" in body
    assert 'name="typed_name"' in body and "<canvas" in body

    # Sign with a typed name; fields smuggled into the form change nothing about whose
    # document it is.
    before = snapshot(app)
    resp = public_form(participant, path, consent="yes", method="typed",
                       typed_name="Olena Kovalenko", participant_id=str(stranger.id),
                       kind="withdrawal_declaration", reference=other)
    assert resp.status_code == 303, resp.get_data(as_text=True)[:2000]
    assert token not in resp.headers["Location"]
    done = participant.get(resp.headers["Location"])
    assert "Документ підписано" in done.get_data(as_text=True)
    after = snapshot(app)
    assert after.documents == before.documents + 1
    assert after.audit_events == before.audit_events + 1

    doc = last_document(app)
    assert (doc.participant_id, doc.kind, doc.version) == (signer.id, "commitment", 1)
    assert (doc.signature_method, doc.signing_channel) == ("typed", "link")
    assert doc.signed_ip == "127.0.0.1" and doc.created_by is None
    with Session(app.extensions["returnprog.engine"]) as s:
        link = s.execute(select(SigningRequest)).scalar_one()
        assert link.used_at is not None and link.document_id == doc.id
        event = s.execute(select(AuditEvent).where(AuditEvent.action == "sign_document")
                          ).scalar_one()
        assert event.actor == f"participant:{signer.id}"
        assert json.loads(event.details)["channel"] == "link"
        assert not s.execute(select(Document).where(
            Document.case_id != doc.case_id)).first()
    assert_verifies_everywhere(app, tmp_path, doc.pdf, reference=reference, kind="commitment",
                               version=1, signer=signer.full_name)

    # Single use: the link is spent; coming back changes nothing.
    settled = snapshot(app)
    again = participant.get(path)
    assert again.status_code == 410
    _assert_public_headers(again)
    assert "already been used" in again.get_data(as_text=True)
    resp = public_form(participant, path, consent="yes", method="typed", typed_name="Again")
    assert resp.status_code == 410
    assert snapshot(app) == settled
    assert "ondertekend" in text(web.get(f"/cases/{reference}/signatures").get_data(as_text=True))
    assert spouse.id != signer.id


# --- refusals --------------------------------------------------------------------------------------

def test_expired_withdrawn_unknown_and_used_links_are_refused_and_change_nothing(
        app, staff, ctx_for, session):
    reference = _open_case(app, staff, ctx_for, adults=2, minors=0)
    first, second = adults_of(app, reference)
    web = web_for(app, staff.counsellor)
    expiring = create_link(web, reference, first.id)
    withdrawn = create_link(web, reference, second.id)
    with Session(app.extensions["returnprog.engine"]) as s:
        withdrawn_id = max(s.execute(select(SigningRequest.id)).scalars())
    resp = web.post(f"/cases/{reference}/signing-links/revoke", {"link_id": withdrawn_id})
    assert resp.status_code == 303
    assert "ingetrokken" in text(web.get(resp.headers["Location"]).get_data(as_text=True))
    # Withdrawing twice is a clear conflict.
    assert web.post(f"/cases/{reference}/signing-links/revoke",
                    {"link_id": withdrawn_id}).status_code == 409

    before = snapshot(app)

    def refused(path, expect_text):
        # A fresh visitor each time (cookies made while travelling in time stay there).
        participant = app.test_client()
        signature = {"csrf_token": csrf_token(participant.get("/verify").get_data(as_text=True)),
                     "consent": "yes", "method": "drawn", "signature": drawn_png()}
        for resp in (participant.get(path), participant.post(path, data=signature)):
            assert resp.status_code == 410, (path, resp.status_code)
            _assert_public_headers(resp)
            body = html.unescape(resp.get_data(as_text=True))
            assert expect_text in body, body[:2000]
            # Said in every language the programme speaks.
            assert "Це посилання не можна використати" in body
            assert "Deze link kan niet worden gebruikt" in body

    refused(withdrawn, "Your counsellor has withdrawn this signing link.")
    refused("/s/" + secrets.token_urlsafe(32), "This signing link is not valid.")
    refused(expiring[:-1], "This signing link is not valid.")  # a truncated address
    # Expired: a week and a day later (the policy gives links 7 days).
    with time_machine.travel(dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=8),
                             tick=True):
        refused(expiring, "This signing link has expired.")
    assert snapshot(app) == before

    # Today it is still usable: the refusals did not spend it.
    assert app.test_client().get(expiring).status_code == 200


def test_thousands_of_guessed_tokens_over_two_instances_count_once_and_spare_the_valid_link(
        app, staff, ctx_for, session, db_url):
    """Two app instances on one database stand for two gunicorn workers (or machines): the
    2,000 guesses, spread over both from several threads, meet one shared counter."""
    from concurrent.futures import ThreadPoolExecutor

    from returnprog import create_app

    reference = _open_case(app, staff, ctx_for, adults=1, minors=0)
    web = web_for(app, staff.counsellor)
    genuine = create_link(web, reference, adults_of(app, reference)[0].id)
    limit = app.config["SIGNING_FAILURE_LIMIT"]
    second = create_app({"TESTING": True, "DATABASE_URL": db_url,
                         "SECRET_KEY": "test-secret", "WTF_CSRF_ENABLED": True})
    before = snapshot(app)

    def guess(n):
        client = (app if n % 2 else second).test_client()
        return client.get("/s/" + secrets.token_urlsafe(32)).status_code

    try:
        with ThreadPoolExecutor(max_workers=8) as pool:
            statuses = list(pool.map(guess, range(2000)))
        assert statuses.count(410) == limit, statuses.count(410)
        assert statuses.count(429) == 2000 - limit
        guesser = second.test_client()
        blocked = guesser.get("/s/" + secrets.token_urlsafe(32))
        assert blocked.status_code == 429 and int(blocked.headers["Retry-After"]) > 0
        _assert_public_headers(blocked)
        assert "Забагато спроб" in blocked.get_data(as_text=True)
        form_token = csrf_token(guesser.get("/verify").get_data(as_text=True))
        assert guesser.post("/s/" + secrets.token_urlsafe(32),
                            data={"csrf_token": form_token}).status_code == 429
        assert snapshot(app) == before

        # The participant behind the same address still opens their link, on either
        # instance: other people's failures never lock a valid link.
        assert app.test_client().get(genuine).status_code == 200
        assert guesser.get(genuine).status_code == 200
        # Another address is not affected by the penalty at all.
        elsewhere = app.test_client()
        elsewhere.environ_base["REMOTE_ADDR"] = "192.0.2.44"
        assert elsewhere.get("/s/" + secrets.token_urlsafe(32)).status_code == 410
    finally:
        second.extensions["returnprog.engine"].dispose()


def test_a_valid_link_has_its_own_request_limit_whoever_sends_them(app, staff, ctx_for):
    reference = _open_case(app, staff, ctx_for, adults=1, minors=0)
    web = web_for(app, staff.counsellor)
    adult = adults_of(app, reference)[0]
    genuine = create_link(web, reference, adult.id)
    app.config["SIGNING_TOKEN_LIMIT"] = 3
    first, other = app.test_client(), app.test_client()
    other.environ_base["REMOTE_ADDR"] = "192.0.2.45"
    assert [first.get(genuine).status_code for _ in range(3)] == [200, 200, 200]
    # The limit belongs to the link: another address does not get a fresh allowance ...
    refused = other.get(genuine)
    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) > 0
    # ... and it is not an address penalty: another participant's link opens from there.
    neighbour = _open_case(app, staff, ctx_for, adults=1, minors=0)
    theirs = create_link(web, neighbour, adults_of(app, neighbour)[0].id)
    assert first.get(theirs).status_code == 200


def test_a_link_belongs_to_one_case_and_one_adult(app, staff, ctx_for, session):
    reference = _open_case(app, staff, ctx_for, adults=1, minors=1)
    other = _open_case(app, staff, ctx_for, adults=1, minors=0)
    third = _open_case(app, staff, ctx_for, adults=1, minors=0)
    web = web_for(app, staff.counsellor)
    adult = adults_of(app, reference)[0]
    stranger = adults_of(app, other)[0]
    with Session(app.extensions["returnprog.engine"]) as s:
        from returnprog.models import Case, Participant
        case_id = s.execute(select(Case.id).where(Case.reference == reference)).scalar_one()
        minor = s.execute(select(Participant).where(
            Participant.case_id == case_id, Participant.id != adult.id)).scalar_one()
    path = create_link(web, reference, adult.id)
    olga = web_for(app, staff.other_counsellor)
    sanne = web_for(app, staff.supervisor)
    before = snapshot(app)

    # Not for a person of another case, not for a minor, not a document of a later step.
    for data in ({"participant_id": stranger.id, "kind": "commitment"},
                 {"participant_id": minor.id, "kind": "commitment"},
                 {"participant_id": adult.id, "kind": "departure_agreement",
                  "departure_deadline": (dt.date.today() + dt.timedelta(days=30)).isoformat()},
                 {"participant_id": adult.id, "kind": "no_such_document"}):
        resp = web.post(f"/cases/{reference}/signing-links", data)
        assert resp.status_code in (409, 422), (data, resp.status_code)
        assert "/s/" not in resp.get_data(as_text=True)
    # The links of one case cannot be withdrawn through another.
    with Session(app.extensions["returnprog.engine"]) as s:
        link_id = s.execute(select(SigningRequest.id)).scalar_one()
    assert web.post(f"/cases/{other}/signing-links/revoke",
                    {"link_id": link_id}).status_code == 404
    assert web.post(f"/cases/{third}/signing-links/revoke",
                    {"link_id": link_id}).status_code == 404
    # Another team's counsellor does not see the case at all; a supervisor may not.
    assert olga.post(f"/cases/{reference}/signing-links",
                     {"participant_id": adult.id, "kind": "commitment"}).status_code == 404
    assert olga.post(f"/cases/{reference}/signing-links/revoke",
                     {"link_id": link_id}).status_code == 404
    assert sanne.post(f"/cases/{reference}/signing-links",
                      {"participant_id": adult.id, "kind": "commitment"}).status_code == 403
    # Without the CSRF token nothing happens either.
    assert web.post(f"/cases/{reference}/signing-links",
                    {"participant_id": adult.id, "kind": "commitment"},
                    token=False).status_code == 400
    assert snapshot(app) == before

    # The link's page shows its own case and person only.
    body = app.test_client().get(path).get_data(as_text=True)
    assert reference in body and other not in body and stranger.full_name not in body


def test_the_signing_page_speaks_the_signers_language_and_explains_mistakes(
        app, staff, ctx_for, session):
    reference = _open_case(app, staff, ctx_for, adults=3, minors=0)
    english, russian, dutch = adults_of(app, reference)
    set_language(app, english.id, "en")
    set_language(app, russian.id, "ru")
    set_language(app, dutch.id, "nl")
    web = web_for(app, staff.counsellor)
    paths = {lang: create_link(web, reference, p.id)
             for lang, p in (("en", english), ("ru", russian), ("nl", dutch))}
    client = app.test_client()
    ru = client.get(paths["ru"]).get_data(as_text=True)
    assert '<html lang="ru">' in ru and "Декларация об участии" in ru
    nl = client.get(paths["nl"]).get_data(as_text=True)
    assert '<html lang="nl">' in nl and "Lees het document goed" in nl

    before = snapshot(app)
    mistakes = [
        ({"method": "typed", "typed_name": "Olena"}, "Tick the box to confirm"),
        ({"consent": "yes", "method": "drawn", "signature": ""}, "Draw your signature"),
        ({"consent": "yes", "method": "drawn", "signature": blank_png()}, "Draw your signature"),
        ({"consent": "yes", "method": "drawn", "signature": "data:image/png;base64,AAAA"},
         "Draw your signature"),
        ({"consent": "yes", "method": "typed", "typed_name": "  "}, "Type your full name."),
        ({"consent": "yes", "method": "typed", "typed_name": "x" * 201}, "at most 200"),
        ({"consent": "yes", "method": "typed", "typed_name": "Olena\x07"}, "only letters, spaces"),
        ({"consent": "yes", "method": "typed", "typed_name": "Виктор 😀 <b>"},
         "only letters, spaces"),
        # Somebody else's name: refused, naming the name expected in both scripts.
        ({"consent": "yes", "method": "typed", "typed_name": "Taras Bondar"},
         f"Type your own name as it is registered: Олена Коваленко / {english.full_name}."),
    ]
    for data, message in mistakes:
        resp = public_form(client, paths["en"], **data)
        assert resp.status_code == 422, (data, resp.status_code)
        body = html.unescape(resp.get_data(as_text=True))
        assert message in body, (message, text(body)[:1500])
        assert 'id="error-summary"' in body
    assert snapshot(app) == before
    assert client.get(paths["en"]).status_code == 200  # mistakes do not spend the link
    # In the signer's language, the same refusal (Russian here).
    resp = public_form(client, paths["ru"], consent="yes", method="typed", typed_name="Taras Bondar")
    assert resp.status_code == 422
    assert "Введите своё имя так, как оно зарегистрировано" in html.unescape(
        resp.get_data(as_text=True))
    # Their own name, typed in the Latin letters of the travel document: signed.
    resp = public_form(client, paths["ru"], consent="yes", method="typed",
                       typed_name=russian.full_name.upper())
    assert resp.status_code in (200, 303), text(resp.get_data(as_text=True))[:800]


def test_a_link_for_a_step_the_case_has_left_is_not_signable(app, staff, ctx_for, session):
    case = drive_to(ctx_for, staff, session, "intake", adults=1, minors=0)
    web = web_for(app, staff.counsellor)
    path = create_link(web, case.reference, adults_of(app, case.reference)[0].id,
                       kind="withdrawal_declaration")
    # Meanwhile the case moved past the withdrawal step (signed on paper, say).
    session.rollback()  # end the fixture session's read snapshot from before the link
    c = ctx_for(staff.counsellor)
    fake_sign(session, case, workflow.COMMITMENT)
    case_service.perform(c, case.reference, "confirm_commitment", {})
    fake_sign(session, case, workflow.WITHDRAWAL_DECLARATION)
    confirm_ind(c, case)
    case_service.perform(c, case.reference, "record_withdrawal", {})
    before = snapshot(app)
    client = app.test_client()
    assert client.get(path).status_code == 409
    resp = public_form(client, path, consent="yes", method="typed", typed_name="Olena")
    assert resp.status_code == 409
    assert "can no longer be signed" in html.unescape(resp.get_data(as_text=True)) or \
        "більше не можна підписати" in resp.get_data(as_text=True)
    assert snapshot(app) == before


def test_the_done_page_carries_no_token_and_no_personal_data(app):
    client = app.test_client()
    resp = client.get("/s/done?lang=en&kind=commitment")
    assert resp.status_code == 200
    _assert_public_headers(resp)
    assert "The document has been signed" in resp.get_data(as_text=True)
    assert client.get("/s/done?lang=xx&kind=<script>").status_code == 200


# --- tokens stay out of the logs ----------------------------------------------------------------------

def test_the_redacting_filter_hides_tokens_in_werkzeug_and_gunicorn_log_lines():
    token = secrets.token_urlsafe(32)
    wz = logging.LogRecord("werkzeug", logging.INFO, __file__, 1,
                           '127.0.0.1 - - [x] "%s" %s %s',
                           (f"GET /s/{token} HTTP/1.1", "200", "-"), None)
    TokenRedactingFilter().filter(wz)
    atoms = {"r": f"POST /s/{token} HTTP/1.1", "U": f"/s/{token}", "s": "303",
             "f": f"https://example.org/s/{token}"}
    gu = logging.LogRecord("gunicorn.access", logging.INFO, __file__, 1, '%(r)s %(s)s %(U)s',
                           (atoms,), None)
    TokenRedactingFilter().filter(gu)
    for record in (wz, gu):
        line = record.getMessage()
        assert token not in line
        assert "/s/[h:" in line
    import hashlib
    assert hashlib.sha256(token.encode()).hexdigest()[:12] in redact_tokens(f"/s/{token}")
    assert redact_tokens("/s/done?lang=uk") == "/s/done?lang=uk"


def test_a_served_request_for_a_link_logs_only_the_tokens_hash(app, staff, ctx_for, session,
                                                               caplog):
    reference = _open_case(app, staff, ctx_for, adults=1, minors=0)
    path = create_link(web_for(app, staff.counsellor), reference,
                       adults_of(app, reference)[0].id)
    token = path.rsplit("/", 1)[1]
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        with caplog.at_level(logging.INFO, logger="werkzeug"):
            base = f"http://127.0.0.1:{server.server_port}"
            with urllib.request.urlopen(base + path) as resp:
                assert resp.status == 200
                assert resp.headers["Referrer-Policy"] == "no-referrer"
            try:
                urllib.request.urlopen(base + "/s/" + secrets.token_urlsafe(32))
            except urllib.error.HTTPError as exc:
                assert exc.code == 410
    finally:
        server.shutdown()
        thread.join(5)
    lines = [r.getMessage() for r in caplog.records if r.name == "werkzeug"]
    assert any("/s/[h:" in line for line in lines), lines
    assert not any(token in line for line in lines), lines


def test_every_refusal_reason_of_the_documents_module_has_its_sentence():
    # That each sentence is translated is tests/web/test_signing_texts.py's business.
    from returnprog import documents, verifier
    from returnprog.web.verify import _REASON_TEXTS
    reasons = [getattr(documents, n) for n in documents.__all__ if n.startswith("REASON_")]
    reasons.append(verifier.REASON_UNCHECKED)  # a check stopped by its limits
    assert set(reasons) == set(_REASON_TEXTS)
    assert all(text.strip() for text in _REASON_TEXTS.values())
