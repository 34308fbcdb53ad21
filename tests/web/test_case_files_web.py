"""Case notes and evidence files in the staff pages and the JSON API: the case page shows
the intake notes and the newest notes (older on request), uploads are checked by content
and bounded in size before the body is read, downloads are attachments only for those
who may see the case, and the IND-confirmation and departure forms take the file."""
from __future__ import annotations

import datetime as dt
import hashlib
import io
import re

import pytest
from sqlalchemy import func, select
from sqlmodel import Session

from returnprog import workflow
from returnprog.models import AccessEvent, AuditEvent, Case, CaseNote, EvidenceFile, IndConfirmation, Participant
from returnprog.services import cases as case_service

from ..conftest import drive_to, fake_sign, intake
from ..web_client import text, tiny_pdf, web_for

PDF = tiny_pdf("boarding pass")
TODAY = dt.date.today()


def png() -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (30, 20), (0, 90, 200)).save(out, format="PNG")
    return out.getvalue()


def _db(app) -> Session:
    return Session(app.extensions["returnprog.engine"], expire_on_commit=False)


def _count(app, model, *where) -> int:
    with _db(app) as s:
        return s.execute(select(func.count()).select_from(model).where(*where)).scalar_one()


def _upload(web, ref, data, name="bewijs.pdf", mime="application/pdf", kind="boarding_pass",
            **extra):
    form = {"evidence-kind": kind, "evidence-file": (io.BytesIO(data), name, mime), **extra}
    return web.post(f"/cases/{ref}/evidence", form, content_type="multipart/form-data")


# --- notes --------------------------------------------------------------------------------

def test_the_case_page_shows_the_intake_notes_and_the_newest_notes(app, staff, ctx_for):
    case = case_service.open_case(ctx_for(staff.counsellor),
                                  intake(1, intake_notes="Komt met haar zus; spreekt Russisch."))
    web = web_for(app, staff.counsellor)
    page = text(web.get(f"/cases/{case.reference}").get_data(as_text=True))
    assert "Notities" in page and "Komt met haar zus; spreekt Russisch." in page
    assert "Intakenotities" in page
    for n in range(7):
        assert web.post(f"/cases/{case.reference}/notes",
                        {"note-body": f"Gesprek nummer {n}."}).status_code == 303
    html = web.get(f"/cases/{case.reference}").get_data(as_text=True)
    page = text(html)
    shown = [n for n in range(7) if f"Gesprek nummer {n}." in page]
    assert shown == [2, 3, 4, 5, 6]  # the newest five
    assert page.index("Gesprek nummer 6.") < page.index("Gesprek nummer 2.")  # newest first
    assert "Komt met haar zus" in page  # intake notes always shown
    assert f'href="/cases/{case.reference}/notes"' in html and "Oudere notities" in page
    everything = text(web.get(f"/cases/{case.reference}/notes").get_data(as_text=True))
    assert all(f"Gesprek nummer {n}." in everything for n in range(7))
    assert "Komt met haar zus" in everything


def test_a_note_is_never_edited_a_correction_is_a_new_note(app, staff, ctx_for):
    case = case_service.open_case(ctx_for(staff.counsellor), intake(1))
    web = web_for(app, staff.counsellor)
    web.post(f"/cases/{case.reference}/notes", {"note-body": "Vertrek op 12 mei."})
    with _db(app) as s:
        first = s.execute(select(CaseNote)).scalar_one()
    resp = web.post(f"/cases/{case.reference}/notes",
                    {"note-body": "Correctie: vertrek op 21 mei.", "note-corrects_id": str(first.id)})
    assert resp.status_code == 303
    with _db(app) as s:
        notes = s.execute(select(CaseNote).order_by(CaseNote.id)).scalars().all()
        assert [n.body for n in notes] == ["Vertrek op 12 mei.", "Correctie: vertrek op 21 mei."]
        assert notes[1].corrects_id == first.id and notes[1].author_id == staff.counsellor.id
        assert s.execute(select(func.count()).select_from(AuditEvent).where(
            AuditEvent.action == "add_case_note")).scalar_one() == 2
    page = text(web.get(f"/cases/{case.reference}").get_data(as_text=True))
    assert f"corrigeert notitie {first.id}" in page


@pytest.mark.parametrize("body,message", [
    ("x" * 5001, "Een notitie is ten hoogste 5000 tekens lang"),
    ("   ", "Dit veld is verplicht"),
    ("bel\x07 terug", "stuurteken"),
])
def test_a_bad_note_gets_a_clear_error_and_nothing_is_saved(app, staff, ctx_for, body, message):
    case = case_service.open_case(ctx_for(staff.counsellor), intake(1))
    web = web_for(app, staff.counsellor)
    resp = web.post(f"/cases/{case.reference}/notes", {"note-body": body})
    assert resp.status_code == 422
    assert message.lower() in text(resp.get_data(as_text=True)).lower()
    assert _count(app, CaseNote) == 0


def test_a_note_keeps_its_line_breaks(app, staff, ctx_for):
    case = case_service.open_case(ctx_for(staff.counsellor), intake(1))
    web = web_for(app, staff.counsellor)
    web.post(f"/cases/{case.reference}/notes", {"note-body": "regel een\r\nregel\ttwee"})
    with _db(app) as s:
        assert s.execute(select(CaseNote.body)).scalar_one() == "regel een\nregel\ttwee"


# --- uploads and downloads ------------------------------------------------------------------

def test_an_upload_is_stored_and_downloaded_as_an_attachment(app, staff, ctx_for):
    case = case_service.open_case(ctx_for(staff.counsellor), intake(1))
    web = web_for(app, staff.counsellor)
    resp = _upload(web, case.reference, PDF, name="../../Instapkaart <Олена>.pdf")
    assert resp.status_code == 303, text(resp.get_data(as_text=True))[:800]
    with _db(app) as s:
        row = s.execute(select(EvidenceFile)).scalar_one()
    assert row.sha256 == hashlib.sha256(PDF).hexdigest() and row.content == PDF
    assert row.filename == "Instapkaart _Олена_.pdf"
    page = web.get(f"/cases/{case.reference}").get_data(as_text=True)
    link = f"/cases/{case.reference}/evidence/{row.id}"
    assert link in page and "Instapkaart" in page  # the name is shown, never in a URL
    got = web_for(app, staff.supervisor).get(link)
    assert got.status_code == 200 and got.data == PDF
    assert got.mimetype == "application/pdf"
    assert got.headers["Content-Disposition"] == \
        f'attachment; filename="{case.reference}-evidence-{row.id}.pdf"'
    assert got.headers["Cache-Control"] == "no-store"
    assert got.headers["X-Content-Type-Options"] == "nosniff"
    with _db(app) as s:
        assert s.execute(select(AccessEvent.actor_id).where(
            AccessEvent.view == "evidence", AccessEvent.subject == str(row.id))).scalars().all() \
            == [staff.supervisor.id]
        assert s.execute(select(func.count()).select_from(AuditEvent).where(
            AuditEvent.action == "upload_evidence")).scalar_one() == 1


@pytest.mark.parametrize("data,name,mime,message", [
    (b"just some text", "brief.pdf", "application/pdf", "Alleen PDF-, JPEG- en PNG-bestanden"),
    (PDF, "instapkaart.png", "image/png", "PDF"),  # a PDF claiming to be a PNG
    (png(), "ind-brief.pdf", "application/pdf", "PNG"),  # a PNG claiming to be a PDF
    (b"", "leeg.pdf", "application/pdf", "Het bestand is leeg"),
])
def test_a_wrong_file_is_refused_with_its_reason_and_nothing_is_stored(app, staff, ctx_for,
                                                                       data, name, mime, message):
    case = case_service.open_case(ctx_for(staff.counsellor), intake(1))
    resp = _upload(web_for(app, staff.counsellor), case.reference, data, name, mime)
    assert resp.status_code == 422
    page = text(resp.get_data(as_text=True))
    assert message in page
    assert _count(app, EvidenceFile) == 0 and _count(app, AuditEvent, AuditEvent.action == "upload_evidence") == 0


def test_an_upload_without_a_file_or_kind_is_refused(app, staff, ctx_for):
    case = case_service.open_case(ctx_for(staff.counsellor), intake(1))
    web = web_for(app, staff.counsellor)
    resp = web.post(f"/cases/{case.reference}/evidence", {"evidence-kind": "other"},
                    content_type="multipart/form-data")
    assert resp.status_code == 422 and "Kies het bestand" in text(resp.get_data(as_text=True))
    resp = _upload(web, case.reference, PDF, kind="selfie")
    assert resp.status_code == 422 and _count(app, EvidenceFile) == 0


def test_an_oversize_upload_is_refused_by_its_length_before_the_body_is_read(app, staff, ctx_for):
    app.config["EVIDENCE_MAX_BYTES"] = 100_000
    case = case_service.open_case(ctx_for(staff.counsellor), intake(1))
    web = web_for(app, staff.counsellor)
    big = PDF + b"%" * 200_000
    # No CSRF token: had the body been parsed, CSRF would answer 400 first.
    resp = web.client.post(f"/cases/{case.reference}/evidence",
                           data={"evidence-kind": "other",
                                 "evidence-file": (io.BytesIO(big), "x.pdf", "application/pdf")},
                           content_type="multipart/form-data")
    assert resp.status_code == 413
    assert "ten hoogste 0 MB" not in text(resp.get_data(as_text=True))
    assert "Het bestand is te groot" in text(resp.get_data(as_text=True))
    assert _count(app, EvidenceFile) == 0


def test_an_oversize_file_within_the_request_bound_is_refused_by_its_body(app, staff, ctx_for):
    app.config["EVIDENCE_MAX_BYTES"] = 2 * 1024 * 1024
    case = case_service.open_case(ctx_for(staff.counsellor), intake(1))
    web = web_for(app, staff.counsellor)
    # Larger than the limit, but within the slack the request bound allows for form fields.
    data = PDF + b"%" * (2 * 1024 * 1024 + 1000 - len(PDF))
    resp = _upload(web, case.reference, data)
    assert resp.status_code == 413
    assert "ten hoogste 2 MB" in text(resp.get_data(as_text=True))
    assert _count(app, EvidenceFile) == 0


def test_an_upload_larger_than_the_apps_general_bound_but_within_the_evidence_limit(app, staff, ctx_for):
    """MAX_CONTENT_LENGTH (8 MB) bounds other requests; evidence routes have their own."""
    app.config["MAX_CONTENT_LENGTH"] = 200_000
    app.config["EVIDENCE_MAX_BYTES"] = 400_000
    case = case_service.open_case(ctx_for(staff.counsellor), intake(1))
    data = PDF + b"\n" * 300_000
    resp = _upload(web_for(app, staff.counsellor), case.reference, data)
    assert resp.status_code == 303
    assert _count(app, EvidenceFile) == 1


def test_downloads_are_refused_to_other_teams_and_to_finance(app, staff, ctx_for, session):
    case = drive_to(ctx_for, staff, session, "departure_agreed", adults=1, minors=0)
    from returnprog.services import payment as payment_service

    payment_service.propose(ctx_for(staff.counsellor), case.reference, {"method": "cash"})
    web = web_for(app, staff.counsellor)
    _upload(web, case.reference, PDF)
    with _db(app) as s:
        file_id = s.execute(select(EvidenceFile.id)).scalar_one()
    link = f"/cases/{case.reference}/evidence/{file_id}"
    assert web_for(app, staff.other_counsellor).get(link).status_code == 404
    assert web_for(app, staff.other_supervisor).get(link).status_code == 404
    finance = web_for(app, staff.finance)
    assert finance.get(link).status_code == 403
    # Finance's case page shows neither notes nor evidence.
    page = finance.get(f"/cases/{case.reference}").get_data(as_text=True)
    assert link not in page and 'id="notes-title"' not in page
    # A file of this case is not reachable through another case's reference.
    other = case_service.open_case(ctx_for(staff.counsellor), intake(1))
    assert web.get(f"/cases/{other.reference}/evidence/{file_id}").status_code == 404


# --- the IND-confirmation and departure forms ---------------------------------------------------

def test_the_ind_confirmation_form_takes_the_letter(app, staff, ctx_for, session):
    case = case_service.open_case(ctx_for(staff.counsellor), intake(2))
    fake_sign(session, case, workflow.COMMITMENT)
    case_service.perform(ctx_for(staff.counsellor), case.reference, "confirm_commitment", {})
    # The IND forms are offered once the withdrawal declarations are signed.
    fake_sign(session, case, workflow.WITHDRAWAL_DECLARATION)
    session.commit()
    with _db(app) as s:
        first, second = s.execute(select(Participant.id).where(Participant.case_id == case.id)
                                  .order_by(Participant.id)).scalars().all()
    web = web_for(app, staff.counsellor)
    page = web.get(f"/cases/{case.reference}/withdrawal").get_data(as_text=True)
    assert f'name="ind-{first}-file"' in page and 'enctype="multipart/form-data"' in page
    resp = web.post(f"/cases/{case.reference}/ind-confirmations", {
        "participant_id": str(first), f"ind-{first}-ind_reference": "IND-2026-0001",
        f"ind-{first}-confirmed_on": TODAY.isoformat(),
        f"ind-{first}-file": (io.BytesIO(PDF), "brief.pdf", "application/pdf")},
        content_type="multipart/form-data")
    assert resp.status_code == 303, text(resp.get_data(as_text=True))[:1000]
    with _db(app) as s:
        letter = s.execute(select(EvidenceFile)).scalar_one()
        assert letter.kind == "ind_letter"
        assert s.execute(select(IndConfirmation.evidence_file_id).where(
            IndConfirmation.participant_id == first)).scalar_one() == letter.id
    # The second person's form offers the letter already uploaded.
    page = web.get(f"/cases/{case.reference}/withdrawal").get_data(as_text=True)
    assert f'name="ind-{second}-evidence_file_id"' in page
    assert f'<option value="{letter.id}">' in page
    resp = web.post(f"/cases/{case.reference}/ind-confirmations", {
        "participant_id": str(second), f"ind-{second}-ind_reference": "IND-2026-0002",
        f"ind-{second}-confirmed_on": TODAY.isoformat(),
        f"ind-{second}-evidence_file_id": str(letter.id)})
    assert resp.status_code == 303
    with _db(app) as s:
        assert s.execute(select(IndConfirmation.evidence_file_id).where(
            IndConfirmation.participant_id == second)).scalar_one() == letter.id
        assert s.execute(select(func.count()).select_from(EvidenceFile)).scalar_one() == 1


def test_a_wrong_file_on_the_ind_form_is_shown_beside_it_and_nothing_is_recorded(app, staff, ctx_for, session):
    case = case_service.open_case(ctx_for(staff.counsellor), intake(1))
    fake_sign(session, case, workflow.COMMITMENT)
    case_service.perform(ctx_for(staff.counsellor), case.reference, "confirm_commitment", {})
    fake_sign(session, case, workflow.WITHDRAWAL_DECLARATION)
    session.commit()
    with _db(app) as s:
        pid = s.execute(select(Participant.id).where(Participant.case_id == case.id)).scalar_one()
    resp = web_for(app, staff.counsellor).post(f"/cases/{case.reference}/ind-confirmations", {
        "participant_id": str(pid), f"ind-{pid}-ind_reference": "IND-2026-0001",
        f"ind-{pid}-confirmed_on": TODAY.isoformat(),
        f"ind-{pid}-file": (io.BytesIO(PDF), "brief.png", "image/png")},
        content_type="multipart/form-data")
    assert resp.status_code == 422
    html = resp.get_data(as_text=True)
    assert f'id="ind-{pid}-file-error-1"' in html
    assert _count(app, IndConfirmation) == 0 and _count(app, EvidenceFile) == 0


def test_the_departure_form_takes_the_boarding_pass(app, staff, ctx_for, session):
    case = drive_to(ctx_for, staff, session, "support_paid", adults=1, minors=0)
    fake_sign(session, case, workflow.PAYMENT_RECEIPT)  # paid in cash: receipt first
    session.commit()
    web = web_for(app, staff.counsellor)
    page = web.get(f"/cases/{case.reference}/departure").get_data(as_text=True)
    assert 'name="confirm_departure-file"' in page
    resp = web.post(f"/cases/{case.reference}/departure", {
        "confirm_departure-departed_on": TODAY.isoformat(),
        "confirm_departure-evidence": "boarding",
        "confirm_departure-evidence_reference": "KL1385",
        "confirm_departure-file": (io.BytesIO(png()), "instapkaart.png", "image/png")},
        content_type="multipart/form-data")
    assert resp.status_code == 303, text(resp.get_data(as_text=True))[:1000]
    with _db(app) as s:
        row = s.execute(select(EvidenceFile)).scalar_one()
        assert (row.kind, row.content_type, row.proves_departure) == \
            ("boarding_pass", "image/png", True)
        c = s.execute(select(Case).where(Case.id == case.id)).scalar_one()
        assert (c.state, c.departure_evidence) == ("departed", "boarding")
    page = text(web.get(f"/cases/{case.reference}").get_data(as_text=True))
    assert "bewijs van het vertrek" in page
    # The timeline names the upload and the kind of evidence in words.
    assert re.search(r"Bewijsstuk geüpload \S+@dtenv\.example Instapkaart", page)


def test_the_upload_bound_applies_to_the_departure_form_too(app, staff, ctx_for, session):
    app.config["EVIDENCE_MAX_BYTES"] = 50_000
    case = drive_to(ctx_for, staff, session, "support_paid", adults=1, minors=0)
    resp = web_for(app, staff.counsellor).client.post(
        f"/cases/{case.reference}/departure",
        data={"confirm_departure-file": (io.BytesIO(b"%" * 200_000), "x.pdf", "application/pdf")},
        content_type="multipart/form-data")
    assert resp.status_code == 413
    with _db(app) as s:
        assert s.execute(select(Case.state).where(Case.id == case.id)).scalar_one() == "support_paid"


# --- the API ---------------------------------------------------------------------------------------

API = "/api/v1"


def test_notes_and_evidence_through_the_api(app, client, api_staff):
    h = api_staff.headers
    from ..conftest import intake as make_intake, jsonable

    ref = client.post(f"{API}/cases", json=jsonable(make_intake(1, intake_notes="Eerste gesprek.")),
                      headers=h["counsellor"]).get_json()["reference"]
    resp = client.post(f"{API}/cases/{ref}/notes", json={"body": "Belt maandag terug."},
                       headers=h["counsellor"])
    assert resp.status_code == 201
    note = resp.get_json()
    assert note["author"] and note["created_at"] and note["corrects_id"] is None
    fix = client.post(f"{API}/cases/{ref}/notes", json={"body": "Dinsdag.", "corrects_id": note["id"]},
                      headers=h["supervisor"])
    assert fix.status_code == 201 and fix.get_json()["corrects_id"] == note["id"]
    page = client.get(f"{API}/cases/{ref}/notes", headers=h["counsellor"]).get_json()
    assert [n["body"] for n in page["notes"]] == ["Dinsdag.", "Belt maandag terug."]
    assert page["intake_notes"] == "Eerste gesprek." and page["next_before_id"] is None
    too_long = client.post(f"{API}/cases/{ref}/notes", json={"body": "x" * 5001},
                           headers=h["counsellor"])
    assert too_long.status_code == 422 and "at most 5000" in str(too_long.get_json())

    resp = client.post(f"{API}/cases/{ref}/evidence", headers=h["counsellor"],
                       data={"kind": "boarding_pass", "file": (io.BytesIO(PDF), "bp.pdf")},
                       content_type="multipart/form-data")
    assert resp.status_code == 201, resp.get_json()
    entry = resp.get_json()
    assert entry["sha256"] == hashlib.sha256(PDF).hexdigest() and entry["size"] == len(PDF)
    assert resp.headers["Location"] == f"{API}/cases/{ref}/evidence/{entry['id']}"
    listed = client.get(f"{API}/cases/{ref}/evidence", headers=h["supervisor"]).get_json()
    assert [i["id"] for i in listed["items"]] == [entry["id"]]
    got = client.get(f"{API}/cases/{ref}/evidence/{entry['id']}", headers=h["counsellor"])
    assert got.status_code == 200 and got.data == PDF
    assert got.headers["Content-Disposition"].startswith("attachment;")
    assert got.headers["X-Content-Type-Options"] == "nosniff"
    assert "no-store" in got.headers["Cache-Control"]

    wrong = client.post(f"{API}/cases/{ref}/evidence", headers=h["counsellor"],
                        data={"kind": "other", "file": (io.BytesIO(PDF), "bp.png", "image/png")},
                        content_type="multipart/form-data")
    assert wrong.status_code == 422 and [
        d for d in wrong.get_json()["error"]["details"] if d.get("field") == "file"]
    as_json = client.post(f"{API}/cases/{ref}/evidence", headers=h["counsellor"], json={"kind": "other"})
    assert as_json.status_code == 415
    for role, status in (("other_counsellor", 404), ("finance", 404), ("admin", 404)):
        assert client.get(f"{API}/cases/{ref}/evidence/{entry['id']}",
                          headers=h[role]).status_code == status, role
        assert client.get(f"{API}/cases/{ref}/notes", headers=h[role]).status_code == status


def test_an_oversize_api_upload_is_refused_by_its_length(app, client, api_staff):
    app.config["EVIDENCE_MAX_BYTES"] = 10_000
    h = api_staff.headers
    from ..conftest import intake as make_intake, jsonable

    ref = client.post(f"{API}/cases", json=jsonable(make_intake(1)),
                      headers=h["counsellor"]).get_json()["reference"]
    resp = client.post(f"{API}/cases/{ref}/evidence", headers=h["counsellor"],
                       data={"kind": "other", "file": (io.BytesIO(b"%" * 100_000), "x.pdf")},
                       content_type="multipart/form-data")
    assert resp.status_code == 413 and resp.get_json()["error"]["code"] == "too_large"
    resp = client.post(f"{API}/cases/{ref}/evidence", headers=h["counsellor"],
                       data={"kind": "other", "file": (io.BytesIO(PDF + b"%" * 20_000), "x.pdf")},
                       content_type="multipart/form-data")
    assert resp.status_code == 413
