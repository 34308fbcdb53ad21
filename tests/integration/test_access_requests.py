"""Access requests and the processing log against real SQLite and PostgreSQL (issue 16
items 4 and 5): a request is registered with the identity check, is due in a month and can
be extended once by at most two months with a reason; the package of a household member
holds all of their data and none of the other members' identifiers (searched in every file
of the ZIP, PDF text and streams included); delivery is audited with the package's hash and
the chain still verifies; the processing log shows a read and a change per participant and
per staff member, without another member's events."""
from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import re
import zipfile
import zlib

import pytest
from pypdf import PdfReader
from sqlalchemy import select

from returnprog import audit, documents, processing_log, workflow
from returnprog.models import AccessEvent, AccessRequest, AuditEvent, Document, Participant
from returnprog.services import Conflict, Forbidden, Invalid
from returnprog.services import access_requests as service
from returnprog.services import case_files as case_file_service
from returnprog.services import batches as batch_service
from returnprog.services import case_views, corrections
from returnprog.services import cases as case_service
from returnprog.services import payment as payment_service
from returnprog.services import signing
from returnprog.services.access import record_look

from ..conftest import confirm_ind, fake_sign, person
from ..web_client import tiny_pdf

TODAY = dt.date.today()


def _bsn(seed: int) -> str:
    """A BSN that passes the 11-check."""
    for n in range(seed, seed + 1000):
        digits = f"{n:09d}"
        total = sum(int(d) * w for d, w in zip(digits, (9, 8, 7, 6, 5, 4, 3, 2, -1)))
        if total % 11 == 0 and digits[0] != "0":
            return digits
    raise AssertionError


def household_case(ctx_for, staff, session):
    """Principal, spouse and child, every identifier distinct (Cyrillic names too)."""
    principal = person(given_names_latin="Taras", family_name_latin="Shevchuk",
                       given_names_cyrillic="Тарас", family_name_cyrillic="Шевчук",
                       date_of_birth=dt.date(1980, 3, 14), bsn=_bsn(111222333),
                       phone="+31611112222", email="taras.shevchuk@example.org",
                       travel_document_number="FT100001", language="uk")
    spouse = dict(person(given_names_latin="Oksana", family_name_latin="Melnyk",
                         given_names_cyrillic="Оксана", family_name_cyrillic="Мельник",
                         date_of_birth=dt.date(1983, 7, 22), bsn=_bsn(222333444),
                         phone="+31633334444", email="oksana.melnyk@example.org",
                         travel_document_number="FM200002", language="ru"),
                  relationship="spouse")
    child = dict(person(adult=False, given_names_latin="Bohdan", family_name_latin="Shevchuk",
                        given_names_cyrillic="Богдан", family_name_cyrillic="Шевчук",
                        date_of_birth=dt.date(TODAY.year - 8, 2, 9), bsn=_bsn(333444555),
                        email=None, travel_document_number="FC300003"),
                 relationship="child")
    case = case_service.open_case(ctx_for(staff.counsellor), {
        "principal": principal, "household": [spouse, child], "destination_oblast": "UA-30",
        "destination_place": "Kyiv", "intake_notes": "Taras Shevchuk asked for help with the "
        "travel documents of Bohdan (FC300003)."})
    fake_sign(session, case, workflow.COMMITMENT)
    case_service.perform(ctx_for(staff.counsellor), case.reference, "confirm_commitment", {})
    fake_sign(session, case, workflow.WITHDRAWAL_DECLARATION)
    confirm_ind(ctx_for(staff.counsellor), case)
    case_service.perform(ctx_for(staff.counsellor), case.reference, "record_withdrawal", {})
    deadline = TODAY + dt.timedelta(days=30)
    fake_sign(session, case, workflow.DEPARTURE_AGREEMENT,
              {"departure_deadline": deadline.isoformat()})
    case_service.perform(ctx_for(staff.counsellor), case.reference, "agree_departure",
                         {"departure_deadline": deadline})
    payment_service.propose(ctx_for(staff.counsellor), case.reference, {
        "method": "transfer", "iban": "NL91ABNA0417164300", "account_holder": "T. Shevchuk"})
    case_file_service.add_note(ctx_for(staff.counsellor), case.reference, {
        "body": "Oksana phoned: Bohdan Shevchuk (born %s) needs a new passport."
                % child["date_of_birth"].strftime("%d-%m-%Y")})
    case_file_service.upload_evidence(ctx_for(staff.counsellor), case.reference, "other",
                                      tiny_pdf("boarding"), "proof.pdf", None)
    members = {p.relationship: p for p in session.execute(
        select(Participant).where(Participant.case_id == case.id)).scalars()}
    return case, members


def real_pdf(ctx, case, member, kind, only_self: bool) -> bytes:
    data = signing.document_data(ctx, case, member, kind, {})
    if only_self:
        data["participants"] = [p for p in data["participants"]
                                if p["given_names_latin"] == member.given_names_latin]
    return documents.render_pdf(kind, data, member.language)


def store(session, case, member, kind, pdf: bytes, version: int = 50) -> Document:
    doc = Document(case_id=case.id, participant_id=member.id, kind=kind, version=version,
                   signer_name=member.full_name, signature_method="typed",
                   signing_channel="tablet", signed_at=dt.datetime.now(dt.timezone.utc),
                   pdf=pdf, sha256=hashlib.sha256(pdf).hexdigest())
    session.add(doc)
    session.commit()
    return doc


def identifiers(p: Participant) -> list[str]:
    """What must not appear of another member (their shared family name aside)."""
    values = [p.given_names_latin, p.full_name, p.given_names_cyrillic,
              f"{p.given_names_cyrillic} {p.family_name_cyrillic}", p.v_number, p.bsn,
              p.email, p.phone, p.travel_document_number, p.date_of_birth.isoformat(),
              p.date_of_birth.strftime("%d-%m-%Y")]
    return [v for v in values if v]


def texts_of(name: str, blob: bytes) -> list[str]:
    """Every readable form of one file of the package: bytes as text, and for a PDF its
    decompressed streams, page text and attachments."""
    out = [blob.decode("utf-8", "ignore"), blob.decode("latin-1")]
    if name.endswith(".pdf") and blob.startswith(b"%PDF"):
        for raw in re.findall(rb"stream\r?\n(.*?)endstream", blob, re.S):
            try:
                out.append(zlib.decompress(raw).decode("latin-1"))
            except zlib.error:
                pass
        reader = PdfReader(io.BytesIO(blob))
        out += [page.extract_text() or "" for page in reader.pages]
        out += [b.decode("utf-8", "ignore") for bodies in reader.attachments.values()
                for b in bodies]
    return out


def register(ctx, case, member, **over):
    data = {"reference": case.reference, "participant_id": member.id,
            "received_on": TODAY, "received_via": "letter",
            "identity_document_type": "passport", "identity_document_last4": "0002"}
    data.update(over)
    return service.register(ctx, data)


def test_a_request_is_registered_with_the_identity_check_and_a_term(ctx_for, staff, session):
    case, members = household_case(ctx_for, staff, session)
    with pytest.raises(Forbidden):
        register(ctx_for(staff.counsellor), case, members["spouse"])
    with pytest.raises(Forbidden):
        register(ctx_for(staff.owner), case, members["spouse"])
    with pytest.raises(Invalid):
        register(ctx_for(staff.records), case, members["spouse"],
                 received_on=TODAY + dt.timedelta(days=1))
    with pytest.raises(Invalid):
        register(ctx_for(staff.records), case, members["spouse"], participant_id=10**6)
    received = dt.date(2027, 1, 31)
    ctx = ctx_for(staff.records, today=dt.date(2027, 2, 10))
    row = register(ctx, case, members["spouse"], received_on=received,
                   identity_document_last4="fm02")
    assert (row.status, row.received_on, row.due_on) == ("open", received, dt.date(2027, 2, 28))
    assert (row.identity_document_type, row.identity_document_last4) == ("passport", "FM02")
    assert row.identity_checked_by == staff.records.id and row.identity_checked_at
    [event] = session.execute(select(AuditEvent).where(
        AuditEvent.action == "register_access_request")).scalars().all()
    details = json.loads(event.details)
    assert details["participant_id"] == members["spouse"].id and event.case_id == case.id
    assert "FM200002" not in event.details  # never the whole document number


def test_the_term_is_extended_once_by_at_most_two_months_with_a_reason(ctx_for, staff,
                                                                      session):
    case, members = household_case(ctx_for, staff, session)
    ctx = ctx_for(staff.records, today=dt.date(2027, 3, 1))
    row = register(ctx, case, members["spouse"], received_on=dt.date(2027, 2, 15))
    assert row.due_on == dt.date(2027, 3, 15)
    with pytest.raises(Invalid):
        service.extend(ctx, row.id, 2, "  ", row.version)
    with pytest.raises(Invalid):
        service.extend(ctx, row.id, 3, "Many documents", row.version)
    late = ctx_for(staff.records, today=dt.date(2027, 3, 16))
    with pytest.raises(Conflict):
        service.extend(late, row.id, 1, "Many documents", row.version)
    with pytest.raises(Conflict):
        service.extend(ctx, row.id, 2, "Many documents", row.version + 5)
    row = service.extend(ctx, row.id, 2, "Many documents to gather", row.version)
    assert (row.status, row.due_on, row.original_due_on) == (
        "extended", dt.date(2027, 5, 15), dt.date(2027, 3, 15))
    with pytest.raises(Conflict):
        service.extend(ctx, row.id, 1, "Again", row.version)
    with pytest.raises(Invalid):
        service.refuse(ctx, row.id, "", row.version)
    row = service.refuse(ctx, row.id, "Identity could not be established", row.version)
    assert row.status == "refused"
    with pytest.raises(Conflict):
        service.deliver(ctx, row.id, "post", row.version)
    assert [e.action for e in session.execute(select(AuditEvent).where(
        AuditEvent.action.like("%access_request")).order_by(AuditEvent.seq)).scalars()] == [
        "register_access_request", "extend_access_request", "refuse_access_request"]


def test_add_months_keeps_to_the_calendar():
    assert service.add_months(dt.date(2027, 1, 31), 1) == dt.date(2027, 2, 28)
    assert service.add_months(dt.date(2027, 11, 30), 3) == dt.date(2028, 2, 29)
    assert service.add_months(dt.date(2027, 12, 15), 1) == dt.date(2028, 1, 15)


def test_the_package_holds_all_of_a_members_data_and_none_of_the_others(ctx_for, staff,
                                                                        session):
    case, members = household_case(ctx_for, staff, session)
    spouse, principal, child = members["spouse"], members["principal"], members["child"]
    c = ctx_for(staff.counsellor)
    own = store(session, case, spouse, workflow.WITHDRAWAL_DECLARATION,
                real_pdf(c, case, spouse, workflow.WITHDRAWAL_DECLARATION, only_self=True))
    shared = store(session, case, spouse, workflow.COMMITMENT,
                   real_pdf(c, case, spouse, workflow.COMMITMENT, only_self=False), 51)
    # A read and a change of the case before the request.
    case_views.case_page(ctx_for(staff.supervisor), case.reference)
    ctx = ctx_for(staff.records)
    row = register(ctx, case, spouse)
    with pytest.raises(Forbidden):
        service.download_package(ctx_for(staff.owner), row.id)
    with pytest.raises(Conflict):  # delivery records a package downloaded first
        service.deliver(ctx, row.id, "post", row.version)
    body, filename = service.download_package(ctx, row.id)
    assert filename.endswith(".zip") and case.reference in filename
    archive = zipfile.ZipFile(io.BytesIO(body))
    files = {name: archive.read(name) for name in archive.namelist()}
    data = json.loads(files["data.json"])

    # All of their data.
    for field in service.PARTICIPANT_FIELDS:
        value = getattr(spouse, field)
        value = value.isoformat() if isinstance(value, dt.date) else value
        assert data["participant"][field] == value, field
        if isinstance(value, str):
            assert value in files["data.json"].decode()
    assert data["ind_confirmation"]["ind_reference"] == f"IND-{spouse.id:06d}"
    assert data["case"]["reference"] == case.reference
    assert data["case"]["destination_place"] == "Kyiv"
    # Their own signed PDFs: byte-identical when they name nobody else; listed otherwise.
    assert files[f"documents/withdrawal_declaration-v50-{own.id}.pdf"] == own.pdf
    kinds = {(d["kind"], d["version"]): d for d in data["documents"]}
    assert kinds[("commitment", 51)]["file"] is None and kinds[("commitment", 51)]["withheld"]
    assert kinds[("commitment", 51)]["sha256"] == shared.sha256
    assert not any(shared.pdf == blob for blob in files.values())
    # (the search below does find names in a PDF: the withheld one names the principal)
    assert any(principal.given_names_latin in t for t in texts_of("c.pdf", shared.pdf))
    # The payment is the principal's account: no IBAN for the spouse.
    [pay] = data["payments"]
    assert pay["amount_cents"] > 0 and pay["iban"] is None and pay["account_holder"] is None
    # Others only as numbered members.
    assert [m["label"] for m in data["household"]] == [
        "household member 1 (principal)", "household member 2 (spouse)",
        "household member 3 (child)"]
    # The notes are there, with the others' identifiers replaced.
    assert any("[household member 3 (child)]" in n["text"] for n in data["case_notes"])
    assert [f["filename"] for f in data["evidence_files"]] == ["proof.pdf"]
    # Their processing log: the supervisor's read and the counsellor's changes.
    log = data["processing_log"]
    assert any(e["kind"] == "read" and e["what"] == "case" and e["who_role"] == "supervisor"
               and "identity" in e["categories"] and e["purpose"] == "case_handling"
               and e["channel"] == "web" for e in log)
    assert any(e["kind"] == "change" and e["what"] == "open_case" for e in log)
    assert any(e["what"] == "register_access_request" for e in log)
    # The summary opens and names them, in Dutch and Russian.
    summary = PdfReader(io.BytesIO(files["summary.pdf"]))
    text = " ".join(page.extract_text() for page in summary.pages)
    assert spouse.given_names_latin in text and spouse.v_number in text
    assert "Overzicht van uw persoonsgegevens" in text
    assert "Обзор ваших персональных данных" in text

    # None of the others' identifiers, anywhere.
    for other in (principal, child):
        for name, blob in files.items():
            for form in texts_of(name, blob):
                for value in identifiers(other):
                    assert value.casefold() not in form.casefold(), (name, value)

    # Delivery: audited with the package's hash; the chain still verifies.
    digest = hashlib.sha256(body).hexdigest()
    session.expire_all()
    row = session.get(AccessRequest, row.id)
    assert row.package_sha256 == digest
    delivered = service.deliver(ctx, row.id, "post", row.version)
    assert (delivered.status, delivered.delivered_sha256, delivered.delivery_channel) == (
        "delivered", digest, "post")
    events = {e.action: json.loads(e.details) for e in session.execute(select(AuditEvent).where(
        AuditEvent.action.in_(("download_access_package", "deliver_access_request"))))
        .scalars()}
    assert events["download_access_package"]["package_sha256"] == digest
    assert events["deliver_access_request"]["package_sha256"] == digest
    assert events["deliver_access_request"]["delivery_channel"] == "post"
    assert audit.verify(session).ok
    with pytest.raises(Conflict):
        service.download_package(ctx, row.id)


def test_the_processing_log_per_participant_and_per_staff_member(ctx_for, staff, session):
    case, members = household_case(ctx_for, staff, session)
    spouse, principal = members["spouse"], members["principal"]
    case_views.case_page(ctx_for(staff.supervisor), case.reference)
    # A look at the principal's signed document names the principal only.
    [doc] = session.execute(select(Document).where(
        Document.participant_id == principal.id,
        Document.kind == workflow.COMMITMENT)).scalars().all()
    record_look(ctx_for(staff.counsellor), case.id, "document", subject=str(doc.id))
    session.expire_all()
    looks = session.execute(select(AccessEvent)).scalars().all()
    assert {(look.view, look.purpose) for look in looks} >= {("case", "case_handling"),
                                                             ("document", "case_handling")}

    # A correction of the principal's phone names the principal only; one of the case's
    # notes is about the whole household.
    session.expire_all()
    version = case_service.load_case(ctx_for(staff.counsellor), case.reference).version
    corrections.correct_case(ctx_for(staff.counsellor), case.reference,
                             {"participants": [{"id": principal.id, "phone": "+31699990000"}]},
                             version)
    corrections.correct_case(ctx_for(staff.counsellor), case.reference,
                             {"intake_notes": "Needs an interpreter."}, version + 1)
    # The payment goes out in a batch (an event about several cases, without a case id).
    payment_service.approve(ctx_for(staff.supervisor), case.reference)
    payment_service.disburse(ctx_for(staff.finance), case.reference,
                             {"idempotency_key": f"pay-{case.reference}"})
    batch_service.create_batch(ctx_for(staff.finance))
    mine = processing_log.for_participant(session, spouse, per_page=None).items
    theirs = processing_log.for_participant(session, principal, per_page=None).items
    assert any(e.kind == "read" and e.what == "case" and e.who_id == staff.supervisor.id
               and e.channel == "web" and e.ip == "127.0.0.1" for e in mine)
    assert any(e.kind == "change" and e.what == "open_case" and e.who_role == "counsellor"
               and e.purpose == "case_handling" and set(e.categories) >= {"identity", "contact"}
               and e.channel == "web" and e.ip == "127.0.0.1" for e in mine)
    # Their own IND confirmation, not the others'.
    ind_mine = [e for e in mine if e.what == "record_ind_confirmation"]
    assert len(ind_mine) == 1 and ind_mine[0].participant_ids == (spouse.id,)
    assert all(e.participant_ids in ((), (spouse.id,)) for e in mine)
    assert not any(e.what == "document" for e in mine)
    assert any(e.what == "document" and e.participant_ids == (principal.id,) for e in theirs)
    assert any(e.what == "propose_payment" and e.purpose == "payment" for e in mine)
    fixes = [e for e in mine if e.what == "correct_case"]
    assert len(fixes) == 1 and fixes[0].participant_ids == ()
    assert [e.participant_ids for e in theirs if e.what == "correct_case"] == [
        (), (principal.id,)]
    [batch] = [e for e in mine if e.what == "create_batch"]
    assert batch.case_reference == case.reference and batch.categories == ("payment",)

    staff_log = processing_log.for_staff(session, staff.counsellor.id, per_page=500).items
    assert {e.kind for e in staff_log} == {"read", "change"}
    assert all(e.who_id == staff.counsellor.id for e in staff_log)
    assert any(e.case_reference == case.reference for e in staff_log)
    sup = processing_log.for_staff(session, staff.supervisor.id).items
    assert [e.what for e in sup if e.kind == "read"] == ["case"]
    # Paging and the date range.
    first = processing_log.for_staff(session, staff.counsellor.id, per_page=2)
    second = processing_log.for_staff(session, staff.counsellor.id, page=2, per_page=2)
    assert first.more and len(first.items) == 2
    assert [e.source_id for e in first.items + second.items] == \
        [e.source_id for e in staff_log[:4]]
    later = dt.datetime.now(dt.timezone.utc) + dt.timedelta(hours=1)
    assert processing_log.for_staff(session, staff.counsellor.id, since=later).items == []
    # Reading the log wrote nothing to the chain.
    before = session.execute(select(AuditEvent.seq).order_by(AuditEvent.seq.desc())).first()
    processing_log.for_participant(session, spouse)
    assert session.execute(select(AuditEvent.seq).order_by(AuditEvent.seq.desc())).first() \
        == before


def test_a_change_records_the_channel_it_came_through(ctx_for, staff, session):
    from returnprog import services

    assert services.CHANNEL_KEY == audit.CHANNEL_KEY
    case, members = household_case(ctx_for, staff, session)
    api = ctx_for(staff.records)
    api.channel = "api"
    api = services.Context(**{**api.__dict__})
    register(api, case, members["child"])
    [entry] = [e for e in processing_log.for_participant(session, members["child"]).items
               if e.what == "register_access_request"]
    assert entry.channel == "api"


def test_a_looks_purpose_follows_the_readers_role_and_channel():
    assert processing_log.look_purpose("counsellor", "case") == "case_handling"
    assert processing_log.look_purpose("counsellor", "payment") == "payment"
    assert processing_log.look_purpose("finance", "case") == "payment"
    assert processing_log.look_purpose("records_manager", "case") == "records_management"
    assert processing_log.look_purpose(None, "document", "link") == "signing"


def test_every_literal_audit_action_is_declared():
    from pathlib import Path

    root = Path(processing_log.__file__).resolve().parent
    found = set()
    for path in root.rglob("*.py"):
        found |= set(re.findall(r'action="([a-z_]+)"', path.read_text()))
    found |= {"activate_user", "deactivate_user", "approve_account_request",
              "reject_account_request"}
    undeclared = sorted(a for a in found if processing_log.action_kind(a) is
                        processing_log.UNDECLARED and a not in processing_log.ACTIONS)
    assert not undeclared


def test_the_cli_lists_due_and_overdue_requests(app, staff, ctx_for, session):
    case, members = household_case(ctx_for, staff, session)
    ctx = ctx_for(staff.records)
    runner = app.test_cli_runner()
    result = runner.invoke(args=["access-requests"])
    assert result.exit_code == 0 and "no access requests" in result.output
    late = register(ctx, case, members["spouse"], received_on=TODAY - dt.timedelta(days=70))
    soon = register(ctx, case, members["principal"], received_on=TODAY - dt.timedelta(days=27))
    register(ctx, case, members["child"])
    result = runner.invoke(args=["access-requests", "--within", "7"])
    assert result.exit_code == 1, result.output
    lines = result.output.splitlines()
    assert f"#{late.id}" in lines[0] and "OVERDUE" in lines[0]
    assert f"#{soon.id}" in lines[1] and "due in" in lines[1]
    assert len(lines) == 2


def test_the_redactor_replaces_whole_values_of_others_only():
    me = Participant(case_id=1, given_names_latin="Oksana", family_name_latin="Shevchuk",
                     date_of_birth=dt.date(1983, 7, 22), v_number="1111111111",
                     email="home@example.org")
    other = Participant(case_id=1, given_names_latin="Taras", family_name_latin="Shevchuk",
                        given_names_cyrillic="Тарас", family_name_cyrillic="Шевчук",
                        date_of_birth=dt.date(1980, 3, 14), v_number="2222222222",
                        phone="+31611112222", email="home@example.org")
    redact = service.redactor(me, [(other, "household member 1 (principal)")])
    text = ("Taras Shevchuk (2222222222, born 14-03-1980, +31611112222) and Тарас; "
            "Mr Tarasenko; Oksana Shevchuk; home@example.org")
    assert redact(text) == (
        "[household member 1 (principal)] ([household member 1 (principal)], born "
        "[household member 1 (principal)], [household member 1 (principal)]) and "
        "[household member 1 (principal)]; Mr Tarasenko; Oksana Shevchuk; home@example.org")
