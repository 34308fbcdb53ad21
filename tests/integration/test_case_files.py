"""Case notes and evidence files through the real services, on SQLite and PostgreSQL:
notes are append-only with author and time and audited by digest; uploads are stored with
a SHA-256 that matches their bytes; only counsellors and supervisors of the case's team
handle them; the IND confirmation and the departure can rely on an uploaded file."""
from __future__ import annotations

import datetime as dt
import hashlib
import json

import pytest
from sqlalchemy import select

from returnprog import audit
from returnprog.models import AccessEvent, AuditEvent, CaseNote, EvidenceFile, IndConfirmation, Participant
from returnprog.services import Forbidden, Invalid, NotFound
from returnprog.services import case_files
from returnprog.services import cases as case_service
from returnprog.services import payment as payment_service
from returnprog import workflow

from ..conftest import drive_to, fake_sign, intake
from ..web_client import tiny_pdf

PDF = tiny_pdf("IND letter")


def events(session, action):
    return session.execute(select(AuditEvent).where(AuditEvent.action == action)
                           .order_by(AuditEvent.seq)).scalars().all()


def test_notes_are_appended_with_author_and_time_and_audited_by_digest(staff, ctx_for, session):
    case = case_service.open_case(ctx_for(staff.counsellor), intake(1, intake_notes="Came with sister."))
    first = case_files.add_note(ctx_for(staff.counsellor), case.reference,
                                {"body": "Called the IND; letter expected next week."})
    fix = case_files.add_note(ctx_for(staff.supervisor), case.reference,
                              {"body": "Correction: the letter is expected in two weeks.",
                               "corrects_id": first["id"]})
    session.expire_all()
    rows = session.execute(select(CaseNote).order_by(CaseNote.id)).scalars().all()
    assert [(r.author_id, r.corrects_id) for r in rows] == [
        (staff.counsellor.id, None), (staff.supervisor.id, first["id"])]
    # The corrected note is kept exactly as written.
    assert rows[0].body == "Called the IND; letter expected next week."
    assert rows[0].created_at <= rows[1].created_at
    assert fix["author"] == staff.supervisor.name
    trail = events(session, "add_case_note")
    assert len(trail) == 2 and all(e.case_id == case.id for e in trail)
    details = json.loads(trail[1].details)
    assert details == {"note_id": rows[1].id, "length": len(rows[1].body), "corrects": first["id"],
                       "sha256": hashlib.sha256(rows[1].body.encode()).hexdigest(),
                       "channel": "web"}
    # The text itself is not in the chain (it may have to be erased with the case).
    assert "two weeks" not in trail[1].details
    assert audit.verify(session).ok
    page = case_files.read_notes(ctx_for(staff.counsellor), case.reference)
    assert [n["id"] for n in page["notes"]] == [rows[1].id, rows[0].id]  # newest first
    assert page["intake_notes"] == "Came with sister."


def test_a_note_cannot_correct_a_note_of_another_case(staff, ctx_for, session):
    one = case_service.open_case(ctx_for(staff.counsellor), intake(1))
    two = case_service.open_case(ctx_for(staff.counsellor), intake(1))
    note = case_files.add_note(ctx_for(staff.counsellor), one.reference, {"body": "x"})
    with pytest.raises(Invalid) as exc:
        case_files.add_note(ctx_for(staff.counsellor), two.reference,
                            {"body": "fix", "corrects_id": note["id"]})
    assert "corrects_id" in exc.value.details
    assert session.execute(select(CaseNote).where(CaseNote.case_id == two.id)).first() is None


def test_notes_and_files_are_for_the_team_counsellors_and_supervisors_only(staff, ctx_for, session):
    case = drive_to(ctx_for, staff, session, "departure_agreed", adults=1, minors=0)
    payment_service.propose(ctx_for(staff.counsellor), case.reference, {"method": "cash"})
    for user in (staff.other_counsellor, staff.other_supervisor, staff.admin):
        with pytest.raises(NotFound):
            case_files.add_note(ctx_for(user), case.reference, {"body": "x"})
        with pytest.raises(NotFound):
            case_files.upload_evidence(ctx_for(user), case.reference, "other", PDF, "a.pdf", None)
    # Finance sees the case (it has a payment) but needs neither notes nor evidence.
    with pytest.raises(Forbidden):
        case_files.add_note(ctx_for(staff.finance), case.reference, {"body": "x"})
    with pytest.raises(Forbidden):
        case_files.read_notes(ctx_for(staff.finance), case.reference)
    with pytest.raises(Forbidden):
        case_files.upload_evidence(ctx_for(staff.finance), case.reference, "other", PDF, "a.pdf", None)
    row = case_files.upload_evidence(ctx_for(staff.counsellor), case.reference, "other", PDF,
                                     "a.pdf", None)
    with pytest.raises(Forbidden):
        case_files.evidence_for_download(ctx_for(staff.finance), case.reference, row["id"])
    with pytest.raises(NotFound):
        case_files.evidence_for_download(ctx_for(staff.other_counsellor), case.reference, row["id"])


def test_an_upload_is_stored_with_a_sha256_that_matches_and_audited(staff, ctx_for, session):
    case = case_service.open_case(ctx_for(staff.counsellor), intake(1))
    row = case_files.upload_evidence(ctx_for(staff.counsellor), case.reference, "ind_letter",
                                     PDF, "../Brief IND Kovalenko.pdf", "application/pdf")
    stored = session.get(EvidenceFile, row["id"])
    assert stored.content == PDF and stored.size == len(PDF)
    assert stored.sha256 == hashlib.sha256(stored.content).hexdigest() == row["sha256"]
    assert stored.content_type == "application/pdf" and stored.filename == "Brief IND Kovalenko.pdf"
    [event] = events(session, "upload_evidence")
    assert json.loads(event.details) == {"evidence_id": stored.id, "evidence_kind": "ind_letter",
                                         "content_type": "application/pdf", "size": len(PDF),
                                         "sha256": stored.sha256, "channel": "web"}
    assert "Kovalenko" not in event.details  # the file name is not in the chain
    # Downloading is a look (access log), not a change (chain).
    got = case_files.evidence_for_download(ctx_for(staff.supervisor), case.reference, stored.id)
    assert got.content == PDF
    looks = session.execute(select(AccessEvent).where(AccessEvent.view == "evidence")).scalars().all()
    assert [(l.actor_id, l.subject) for l in looks] == [(staff.supervisor.id, str(stored.id))]
    assert len(events(session, "upload_evidence")) == 1 and audit.verify(session).ok


def test_a_refused_upload_stores_nothing(staff, ctx_for, session):
    case = case_service.open_case(ctx_for(staff.counsellor), intake(1))
    for data, name, code in ((b"", "a.pdf", "evidence.empty"),
                             (PDF, "a.png", "evidence.type_mismatch"),
                             (b"plain text", "a.txt", "evidence.wrong_type")):
        with pytest.raises(Invalid) as exc:
            case_files.upload_evidence(ctx_for(staff.counsellor), case.reference, "other",
                                       data, name, None)
        assert exc.value.message_code == code and "file" in exc.value.details
    with pytest.raises(Invalid):
        case_files.upload_evidence(ctx_for(staff.counsellor), case.reference, "selfie", PDF,
                                   "a.pdf", None)
    assert session.execute(select(EvidenceFile)).first() is None
    assert events(session, "upload_evidence") == []


def _committed(ctx_for, staff, session):
    case = case_service.open_case(ctx_for(staff.counsellor), intake(2))
    fake_sign(session, case, workflow.COMMITMENT)
    case_service.perform(ctx_for(staff.counsellor), case.reference, "confirm_commitment", {})
    people = session.execute(select(Participant).where(Participant.case_id == case.id)
                             .order_by(Participant.id)).scalars().all()
    return case, people


def test_an_ind_confirmation_can_rely_on_an_uploaded_letter(staff, ctx_for, session):
    case, people = _committed(ctx_for, staff, session)
    letter = case_files.upload_evidence(ctx_for(staff.counsellor), case.reference, "ind_letter",
                                        PDF, "letter.pdf", None)
    # One household letter confirms both withdrawals.
    for p in people:
        case_service.record_ind_confirmation(ctx_for(staff.counsellor), case.reference, {
            "participant_id": p.id, "ind_reference": f"IND-{p.id}", "confirmed_on": dt.date.today(),
            "evidence_file_id": letter["id"]})
    session.expire_all()
    confs = session.execute(select(IndConfirmation)).scalars().all()
    assert {c.evidence_file_id for c in confs} == {letter["id"]}
    assert all(json.loads(e.details)["evidence_file_id"] == letter["id"]
               for e in events(session, "record_ind_confirmation"))


def test_an_ind_confirmation_refuses_a_file_of_another_case_or_kind(staff, ctx_for, session):
    case, people = _committed(ctx_for, staff, session)
    elsewhere = case_service.open_case(ctx_for(staff.counsellor), intake(1))
    theirs = case_files.upload_evidence(ctx_for(staff.counsellor), elsewhere.reference,
                                        "ind_letter", PDF, "l.pdf", None)
    boarding = case_files.upload_evidence(ctx_for(staff.counsellor), case.reference,
                                          "boarding_pass", PDF, "b.pdf", None)
    for file_id, message in ((theirs["id"], "not a file of this case"),
                             (boarding["id"], "another kind")):
        with pytest.raises(Invalid) as exc:
            case_service.record_ind_confirmation(ctx_for(staff.counsellor), case.reference, {
                "participant_id": people[0].id, "ind_reference": "IND-1",
                "confirmed_on": dt.date.today(), "evidence_file_id": file_id})
        assert message in str(exc.value.details["evidence_file_id"][0])
    assert session.execute(select(IndConfirmation)).first() is None


def test_a_departure_can_rely_on_an_uploaded_boarding_pass(staff, ctx_for, session):
    case = drive_to(ctx_for, staff, session, "support_paid", adults=1, minors=0)
    fake_sign(session, case, workflow.PAYMENT_RECEIPT)  # paid in cash: receipt first
    session.commit()
    boarding = case_files.upload_evidence(ctx_for(staff.counsellor), case.reference,
                                          "boarding_pass", PDF, "bp.pdf", None)
    letter = case_files.upload_evidence(ctx_for(staff.counsellor), case.reference,
                                        "ind_letter", PDF, "l.pdf", None)
    payload = {"departed_on": dt.date.today(), "evidence": "boarding"}
    # The IND letter is no proof of departure: refused, and the case has not moved.
    with pytest.raises(Invalid):
        case_service.perform(ctx_for(staff.counsellor), case.reference, "confirm_departure",
                             {**payload, "evidence_file_id": letter["id"]})
    session.expire_all()
    assert case_service.load_case(ctx_for(staff.counsellor), case.reference).state == "support_paid"
    done = case_service.perform(ctx_for(staff.counsellor), case.reference, "confirm_departure",
                                {**payload, "evidence_file_id": boarding["id"]})
    assert done.state == "departed"
    session.expire_all()
    assert session.get(EvidenceFile, boarding["id"]).proves_departure
    assert not session.get(EvidenceFile, letter["id"]).proves_departure
    [event] = events(session, "confirm_departure")
    details = json.loads(event.details)
    assert details["evidence_file_id"] == boarding["id"]
    assert details["evidence_sha256"] == boarding["sha256"]


def test_a_departure_without_a_file_is_recorded_as_before(staff, ctx_for, session):
    case = drive_to(ctx_for, staff, session, "departed", adults=1, minors=0)
    [event] = events(session, "confirm_departure")
    assert "evidence_file_id" not in json.loads(event.details)
    assert case.departure_evidence == "boarding"


def test_the_case_page_reads_the_newest_notes_and_files_in_one_statement(staff, ctx_for, session):
    from returnprog.services import case_views

    case = case_service.open_case(ctx_for(staff.counsellor), intake(1))
    for n in range(8):
        case_files.add_note(ctx_for(staff.counsellor), case.reference, {"body": f"note {n}"})
    case_files.upload_evidence(ctx_for(staff.counsellor), case.reference, "other", PDF, "a.pdf", None)
    page = case_views.case_page(ctx_for(staff.supervisor), case.reference)["case_files"]
    assert [n["body"] for n in page["notes"]] == [f"note {n}" for n in range(7, 2, -1)]
    assert page["more_notes"] and not page["more_files"]
    assert [f["filename"] for f in page["files"]] == ["a.pdf"]
