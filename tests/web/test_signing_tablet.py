"""The office tablet: the counsellor picks an adult and a document on the case page, the
participant reads it in their language, ticks that they understood and signs, the
counsellor confirms the identity document checked — and the case page then offers the
sealed PDF, which verifies."""
from __future__ import annotations

import datetime as dt
import json
import re

from sqlalchemy import select
from sqlmodel import Session

from returnprog.models import AuditEvent, Participant

from ..conftest import drive_to, intake
from .test_signing_support import (adults_of, assert_verifies_everywhere, drawn_png,
                                   last_document, set_language, snapshot, verify_service)
from ..web_client import PASSWORD, text, web_for

ID_CHECK = {"id_type": "passport", "id_number": "FX123456", "id_confirmed": "yes"}


def hand_back(web, reference: str) -> str:
    """The counsellor takes the tablet back with their password: after a signature, the
    page offering the signer's copy; otherwise the case's signatures again. Returns where."""
    resp = web.post("/tablet/hand-back", {"password": PASSWORD})
    assert resp.status_code == 303, text(resp.get_data(as_text=True))[:1000]
    where = resp.headers["Location"]
    assert re.search(rf"/cases/{reference}/(documents/\d+/copy|signatures)$", where), where
    return where


def _open_case(staff, ctx_for, adults=2, minors=1):
    from returnprog.services import cases as case_service

    return case_service.open_case(ctx_for(staff.counsellor), intake(adults, minors)).reference


def test_a_drawn_signature_on_the_tablet_ends_as_a_sealed_pdf_that_verifies(
        app, staff, ctx_for, session, tmp_path):
    reference = _open_case(staff, ctx_for)
    signer = adults_of(app, reference)[0]
    web = web_for(app, staff.counsellor)

    # The case page offers the tablet for each adult and the documents of this stage.
    case_page = web.get(f"/cases/{reference}").get_data(as_text=True)
    form = case_page[case_page.index(f'action="/cases/{reference}/tablet"'):]
    form = form[:form.index("</form>")]
    assert f'<option value="{signer.id}"' in form
    assert 'value="commitment"' in form and 'value="withdrawal_declaration"' in form
    assert 'name="csrf_token"' in form

    # The tablet page: in the participant's language (Ukrainian), the document itself,
    # the consent box, the drawing pad with its script and the typed alternative.
    tablet = web.post(f"/cases/{reference}/tablet",
                      {"participant_id": signer.id, "kind": "commitment"})
    assert tablet.status_code == 200
    assert tablet.headers["Cache-Control"] == "no-store"
    assert tablet.headers["Referrer-Policy"] == "no-referrer"
    page = tablet.get_data(as_text=True)
    assert '<html lang="uk">' in page
    assert "Декларація про участь" in page and "Deelnameverklaring" in page
    assert reference in page and signer.full_name in page
    assert 'name="consent"' in page and "<canvas" in page and 'name="typed_name"' in page
    assert 'src="/signing/static/signature.js"' in page
    assert 'name="csrf_token"' in page and 'name="id_number"' in page
    script = app.test_client().get("/signing/static/signature.js")
    assert script.status_code == 200 and b"toDataURL" in script.data
    assert b"http" not in script.data  # nothing fetched from anywhere

    # Missing consent and identity check: nothing happens, every problem is named.
    before = snapshot(app)
    sign = {"participant_id": signer.id, "kind": "commitment", "method": "drawn",
            "signature": drawn_png()}
    resp = web.post(f"/cases/{reference}/tablet/sign", sign)
    assert resp.status_code == 422
    body = text(resp.get_data(as_text=True))
    assert "Поставте позначку" in body  # the participant's consent, in Ukrainian
    assert "identiteitsbewijs" in body  # the counsellor's check, in the staff language
    assert snapshot(app) == before

    resp = web.post(f"/cases/{reference}/tablet/sign", {**sign, "consent": "yes", **ID_CHECK})
    assert resp.status_code == 303, text(resp.get_data(as_text=True))[:2000]
    # The tablet shows the participant's done page, not the staff case page (kiosk).
    assert resp.headers["Location"].endswith("/tablet/done")
    done = web.get("/tablet/done").get_data(as_text=True)
    assert "Документ підписано" in done and reference not in done
    # Handed back, the counsellor is offered the signer's copy (issue 12 item 3).
    assert hand_back(web, reference).endswith("/copy")
    after = snapshot(app)
    assert after.documents == before.documents + 1

    doc = last_document(app)
    assert (doc.participant_id, doc.kind, doc.version) == (signer.id, "commitment", 1)
    assert (doc.signature_method, doc.signing_channel) == ("drawn", "tablet")
    assert doc.identity_document == "paspoort FX123456"
    assert doc.created_by == staff.counsellor.id and doc.signed_user_agent is not None
    with Session(app.extensions["returnprog.engine"]) as s:
        event = s.execute(select(AuditEvent).where(AuditEvent.action == "sign_document")
                          ).scalar_one()
        assert event.actor == staff.counsellor.email and event.ip == "127.0.0.1"
        assert json.loads(event.details)["method"] == "drawn"

    # The case page lists the signed document; the download is the sealed PDF.
    shown = web.get(f"/cases/{reference}").get_data(as_text=True)
    link = re.search(rf'href="(/cases/{reference}/documents/{doc.id}\.pdf)"', shown)
    assert link, "the signed document is offered for download"
    download = web.get(link.group(1))
    assert download.status_code == 200 and download.mimetype == "application/pdf"
    assert download.headers["Cache-Control"] == "no-store"
    assert "attachment" in download.headers["Content-Disposition"]
    assert download.data == doc.pdf
    assert_verifies_everywhere(app, tmp_path, download.data, reference=reference,
                               kind="commitment", version=1, signer=signer.full_name)

    # Signing again makes a new version; the first never changes.
    again = web.post(f"/cases/{reference}/tablet/sign",
                     {"participant_id": signer.id, "kind": "commitment", "consent": "yes",
                      "method": "typed", "typed_name": signer.full_name, **ID_CHECK})
    assert again.status_code == 303
    newer = last_document(app)
    assert (newer.version, newer.signature_method) == (2, "typed")
    with Session(app.extensions["returnprog.engine"]) as s:
        from returnprog.models import Document
        assert s.get(Document, doc.id).sha256 == doc.sha256


def test_the_departure_agreement_on_the_tablet_carries_the_agreed_deadline(
        app, staff, ctx_for, session, tmp_path):
    case = drive_to(ctx_for, staff, session, "asylum_withdrawn", adults=1, minors=1)
    signer = adults_of(app, case.reference)[0]
    set_language(app, signer.id, "en")
    web = web_for(app, staff.counsellor)
    deadline = dt.date.today() + dt.timedelta(days=21)
    choice = {"participant_id": signer.id, "kind": "departure_agreement",
              "departure_deadline": deadline.strftime("%d-%m-%Y")}  # as typed in Dutch

    # A deadline outside the policy's bounds is refused before anything is shown.
    too_soon = dict(choice, departure_deadline=(dt.date.today() + dt.timedelta(days=2))
                    .isoformat())
    resp = web.post(f"/cases/{case.reference}/tablet", too_soon)
    assert resp.status_code == 422
    assert 'id="error-summary"' in resp.get_data(as_text=True)

    page = web.post(f"/cases/{case.reference}/tablet", choice)
    assert page.status_code == 200
    body = page.get_data(as_text=True)
    assert '<html lang="en">' in body and "Departure agreement" in body
    assert deadline.strftime("%d-%m-%Y") in body
    assert f'name="departure_deadline" value="{deadline.isoformat()}"' in body

    # The deadline, the amount and the reclaim on re-entry each need their own tick box:
    # with one missing, nothing is signed and that box is named.
    form = {**choice, "consent": "yes", "method": "typed", "typed_name": signer.full_name,
            **ID_CHECK, "id_type": "residence"}
    before = snapshot(app)
    resp = web.post(f"/cases/{case.reference}/tablet/sign",
                    {**form, "ack": ["cond_deadline", "cond_support"]})
    assert resp.status_code == 422
    body = text(resp.get_data(as_text=True))
    assert "confirm that the travel support is reclaimed" in body
    assert "confirm the departure deadline" not in body
    assert snapshot(app) == before
    resp = web.post(f"/cases/{case.reference}/tablet/sign",
                    {**form, "ack": ["cond_deadline", "cond_support", "cond_reclaim"]})
    assert resp.status_code == 303, text(resp.get_data(as_text=True))[:2000]
    doc = last_document(app)
    assert doc.kind == "departure_agreement"
    assert json.loads(doc.terms) == {"departure_deadline": deadline.isoformat()}
    assert doc.identity_document == "verblijfsdocument FX123456"
    with Session(app.extensions["returnprog.engine"]) as s:
        event = s.execute(select(AuditEvent).where(AuditEvent.action == "sign_document")
                          .order_by(AuditEvent.id.desc())).scalars().first()
        assert json.loads(event.details)["acknowledged"] == [
            "cond_deadline", "cond_support", "cond_reclaim"]
    answer = verify_service(app, doc.pdf)
    assert answer.valid, answer.reasons


def test_the_tablet_refuses_what_is_not_this_cases_adult_or_not_signable_now(
        app, staff, ctx_for, session):
    reference = _open_case(staff, ctx_for, adults=1, minors=1)
    other = _open_case(staff, ctx_for, adults=1, minors=0)
    adult = adults_of(app, reference)[0]
    stranger = adults_of(app, other)[0]
    with Session(app.extensions["returnprog.engine"]) as s:
        minor = s.execute(select(Participant).where(
            Participant.case_id == adult.case_id, Participant.id != adult.id)).scalar_one()
    web = web_for(app, staff.counsellor)
    sanne = web_for(app, staff.supervisor)
    olga = web_for(app, staff.other_counsellor)
    full = {"consent": "yes", "method": "drawn", "signature": drawn_png(), **ID_CHECK}
    before = snapshot(app)

    for choice, status in (
            ({"participant_id": stranger.id, "kind": "commitment"}, 422),
            ({"participant_id": minor.id, "kind": "commitment"}, 422),
            ({"participant_id": adult.id, "kind": "departure_agreement",
              "departure_deadline": (dt.date.today() + dt.timedelta(days=30)).isoformat()}, 409),
            ({"participant_id": adult.id, "kind": "../../etc/passwd"}, 422),
            ({"participant_id": "1 OR 1=1", "kind": "commitment"}, 422),
            ({}, 422)):
        for route in ("tablet", "tablet/sign"):
            resp = web.post(f"/cases/{reference}/{route}", {**choice, **full})
            assert resp.status_code == status, (choice, route, resp.status_code)
            assert 'id="error-summary"' in resp.get_data(as_text=True)

    ok = {"participant_id": adult.id, "kind": "commitment", **full}
    assert sanne.post(f"/cases/{reference}/tablet/sign", ok).status_code == 403
    assert olga.post(f"/cases/{reference}/tablet/sign", ok).status_code == 404
    assert olga.post(f"/cases/{reference}/tablet", ok).status_code == 404
    assert web.post(f"/cases/{reference}/tablet/sign", ok, token=False).status_code == 400
    assert app.test_client().post(f"/cases/{reference}/tablet/sign",
                                  data=ok).status_code in (302, 303, 400)
    for bad_id in ({"id_type": "library card"}, {"id_number": ""},
                   {"id_number": "<script>"}, {"id_confirmed": ""}):
        resp = web.post(f"/cases/{reference}/tablet/sign", {**ok, **bad_id})
        assert resp.status_code == 422, bad_id
    assert snapshot(app) == before


def test_on_the_tablet_a_typed_name_must_be_the_signers_own(app, staff, ctx_for, session):
    """The typed alternative on the tablet takes the signer's registered name only (either
    script), says which name it expects in the signer's language, and signs nothing else."""
    reference = _open_case(staff, ctx_for, adults=2, minors=0)
    signer, other = adults_of(app, reference)[:2]
    web = web_for(app, staff.counsellor)
    base = {"participant_id": signer.id, "kind": "commitment", "consent": "yes",
            "method": "typed", **ID_CHECK}
    with Session(app.extensions["returnprog.engine"]) as s:
        before = s.execute(select(AuditEvent)).all()
    for typed, expected in (
            (other.full_name, "Введіть своє ім’я так, як його зареєстровано: Олена Коваленко / "
                              f"{signer.full_name}."),
            ("Олена 😀 <b>", "Ім’я може містити лише літери, пробіли, дефіси та апострофи.")):
        resp = web.post(f"/cases/{reference}/tablet/sign", {**base, "typed_name": typed})
        assert resp.status_code == 422
        assert expected in text(resp.get_data(as_text=True)), typed
    with Session(app.extensions["returnprog.engine"]) as s:
        assert s.execute(select(AuditEvent)).all() == before
    resp = web.post(f"/cases/{reference}/tablet/sign",
                    {**base, "typed_name": "коваленко " + signer.given_names_latin})
    assert resp.status_code == 303
