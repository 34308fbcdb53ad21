"""Corrections after signing (issue 13 item 1): contact data at any state before a final
one; stated data only by superseding the signed documents that state it, which the guards
then want signed again; compare-and-set on the version; audited old → new; the search
index kept in step."""
from __future__ import annotations

import datetime as dt
import json

import pytest
from sqlalchemy import select, update

from returnprog import audit, documents, workflow
from returnprog.models import (AuditEvent, Document, OutboxMessage, Participant,
                               SigningRequest)
from returnprog.services import Conflict, Forbidden, Invalid
from returnprog.services import cases as case_service
from returnprog.services import corrections, signing

from ..conftest import drive_to, fake_sign, intake

NON_FINAL = ("intake", "committed", "asylum_withdrawn", "departure_agreed", "support_paid")
CONTACT_VALUES = {"email": "corrected@example.org", "phone": "+31 6 1234 5678", "language": "ru"}


def _people(session, case):
    return session.execute(select(Participant).where(Participant.case_id == case.id)
                           .order_by(Participant.id)).scalars().all()


def _principal(session, case):
    return next(p for p in _people(session, case) if p.is_principal)


def _live(session, case, kind=None):
    query = select(Document).where(Document.case_id == case.id, Document.superseded_at.is_(None))
    if kind:
        query = query.where(Document.kind == kind)
    return session.execute(query).scalars().all()


def _last_event(session, case):
    return session.execute(select(AuditEvent).where(AuditEvent.case_id == case.id)
                           .order_by(AuditEvent.seq.desc()).limit(1)).scalar_one()


def _correct(ctx, case, data, **kw):
    return corrections.correct_case(ctx, case.reference, data, case.version, **kw)


@pytest.mark.parametrize("state", NON_FINAL)
@pytest.mark.parametrize("field", sorted(CONTACT_VALUES))
def test_contact_data_can_be_corrected_in_every_state_before_a_final_one(
        ctx_for, staff, session, state, field):
    case = drive_to(ctx_for, staff, session, state)
    principal = _principal(session, case)
    docs_before = {d.id for d in _live(session, case)}
    plan = _correct(ctx_for(staff.counsellor), case,
                    {"participants": [{"id": principal.id, field: CONTACT_VALUES[field]}]})
    session.expire_all()
    assert getattr(_principal(session, case), field) == CONTACT_VALUES[field]
    assert plan["reissue"] == [] and plan["kept"] == []
    # Contact data is stated by no document: nothing is superseded, nothing to sign again.
    assert {d.id for d in _live(session, case)} == docs_before
    event = _last_event(session, case)
    change = json.loads(event.details)["changes"][0]
    assert event.action == "correct_case" and change["field"] == field
    if field == "language":
        assert (change["old"], change["new"]) == ("uk", "ru")
    else:
        # e-mail and phone are personal data: the chain keeps digests, not the values.
        assert CONTACT_VALUES[field] not in event.details
        assert change["new_sha256"] == corrections._digest(CONTACT_VALUES[field])
    assert audit.verify(session).ok


@pytest.mark.parametrize("state", NON_FINAL)
def test_notes_can_be_corrected_in_every_state_before_a_final_one(ctx_for, staff, session, state):
    case = drive_to(ctx_for, staff, session, state)
    _correct(ctx_for(staff.counsellor), case, {"intake_notes": "Needs an interpreter."})
    session.expire_all()
    assert case_service.load_case(ctx_for(staff.counsellor), case.reference).intake_notes == \
        "Needs an interpreter."
    assert "interpreter" not in _last_event(session, case).details


@pytest.mark.parametrize("state", ("departed", "left_programme", "rejected"))
def test_a_case_in_a_final_state_is_not_corrected(ctx_for, staff, session, state):
    if state == "departed":
        case = drive_to(ctx_for, staff, session, "departed")
    else:
        case = case_service.open_case(ctx_for(staff.counsellor), intake(1, 0))
        action, who = ("leave_programme", staff.counsellor) if state == "left_programme" \
            else ("reject", staff.supervisor)
        case = case_service.perform(ctx_for(who), case.reference, action, {"reason": "test"})
    principal = _principal(session, case)
    with pytest.raises(Conflict) as refused:
        _correct(ctx_for(staff.counsellor), case,
                 {"participants": [{"id": principal.id, "email": "new@example.org"}]})
    assert refused.value.message_code == "correction.case_closed"
    session.expire_all()
    assert _principal(session, case).email != "new@example.org"


def test_a_stale_version_is_refused_and_changes_nothing(ctx_for, staff, session):
    case = drive_to(ctx_for, staff, session, "committed")
    principal = _principal(session, case)
    with pytest.raises(Conflict) as refused:
        corrections.correct_case(ctx_for(staff.counsellor), case.reference,
                                 {"participants": [{"id": principal.id, "phone": "+31 20 123456"}]},
                                 case.version - 1)
    assert refused.value.details[0]["code"] == "stale_version"
    session.expire_all()
    assert _principal(session, case).phone is None


def test_only_counsellors_correct_and_an_unchanged_value_is_no_correction(ctx_for, staff, session):
    case = drive_to(ctx_for, staff, session, "committed")
    principal = _principal(session, case)
    with pytest.raises(Forbidden):
        _correct(ctx_for(staff.supervisor), case, {"intake_notes": "x"})
    with pytest.raises(Invalid) as same:
        _correct(ctx_for(staff.counsellor), case,
                 {"participants": [{"id": principal.id, "email": principal.email}]})
    assert same.value.message_code == "correction.nothing_changed"


def test_an_adult_keeps_a_way_to_be_reached(ctx_for, staff, session):
    case = drive_to(ctx_for, staff, session, "committed")
    principal = _principal(session, case)
    with pytest.raises(Invalid) as refused:
        _correct(ctx_for(staff.counsellor), case,
                 {"participants": [{"id": principal.id, "email": None}]})
    assert refused.value.message_code == "correction.contact_missing"
    # Another adult without any contact (a child come of age) does not block the others'.
    child = next(p for p in _people(session, case) if p.relationship == "child")
    session.execute(update(Participant).where(Participant.id == child.id)
                    .values(date_of_birth=dt.date(2000, 1, 1)))
    session.commit()
    _correct(ctx_for(staff.counsellor), case,
             {"participants": [{"id": principal.id, "phone": "+31 6 9999 0000"}]})


def test_a_name_correction_supersedes_the_declaration_and_blocks_the_withdrawal_until_signed_again(
        ctx_for, staff, session, tmp_path):
    case = drive_to(ctx_for, staff, session, "committed")
    fake_sign(session, case, workflow.WITHDRAWAL_DECLARATION)
    c = ctx_for(staff.counsellor)
    from ..conftest import confirm_ind
    confirm_ind(c, case)
    assert "record_withdrawal" in case_service.read_case(c, case.reference)["allowed_actions"]
    principal = _principal(session, case)
    declaration = next(d for d in _live(session, case, workflow.WITHDRAWAL_DECLARATION)
                       if d.participant_id == principal.id)
    commitments = {d.id for d in _live(session, case, workflow.COMMITMENT)}

    preview = _correct(c, case, {"participants": [{"id": principal.id,
                                                   "family_name_latin": "Kovalenko-Shevchenko"}]},
                       dry_run=True)
    session.expire_all()
    assert _principal(session, case).family_name_latin == "Kovalenko"  # a preview changes nothing
    # The principal's own declaration names them; the other adult's does not (only the
    # signer and the minors are on it). The commitment is history once committed.
    assert [d["document_id"] for d in preview["reissue"]] == [declaration.id]
    assert {d["document_id"] for d in preview["kept"]} == commitments

    case = case_service.load_case(c, case.reference)
    done = _correct(c, case, {"participants": [{"id": principal.id,
                                                "family_name_latin": "Kovalenko-Shevchenko"}]})
    assert done["reissue"] == preview["reissue"]
    session.expire_all()
    old = session.get(Document, declaration.id)
    assert old.superseded_at is not None and old.pdf  # kept, marked, still downloadable
    data = case_service.read_case(c, case.reference)
    assert "record_withdrawal" not in data["allowed_actions"]
    refusals = workflow.check("record_withdrawal", case_service.gather_facts(c, case_service.load_case(c, case.reference)),
                              "counsellor", {}, c.policy)
    assert [r.code for r in refusals] == ["withdrawal_declaration_unsigned"]
    assert "Kovalenko-Shevchenko" in refusals[0].params["names"]
    assert {d.id for d in _live(session, case, workflow.COMMITMENT)} == commitments

    # The new version, really signed, lifts the block and names what it replaces.
    c.seal = documents.ensure_dev_seal(tmp_path)
    new = signing.sign_document(c, case.reference, principal.id, workflow.WITHDRAWAL_DECLARATION,
                                {}, method="typed",
                                typed_name=f"{principal.given_names_latin} Kovalenko-Shevchenko",
                                acknowledged=("cond_irreversible",),
                                channel="tablet", identity_document="passport", consent=True)
    session.expire_all()
    assert session.get(Document, declaration.id).superseded_by == new.id
    assert new.signer_name.endswith("Kovalenko-Shevchenko")
    assert "record_withdrawal" in case_service.read_case(c, case.reference)["allowed_actions"]
    assert audit.verify(session).ok


def test_an_ind_confirmation_recorded_before_a_correction_still_confirms_the_withdrawal(
        ctx_for, staff, session):
    # Declared three days ago, confirmed by the IND (for the adult and the minor the
    # declaration covers) two days ago; today a typo in the name is corrected and the
    # declaration signed again. The IND confirmed the declaration of three days ago: the
    # withdrawal must not be stranded as "confirmed before it was declared", since a
    # second confirmation is refused.
    case = drive_to(ctx_for, staff, session, "committed", adults=1, minors=1)
    fake_sign(session, case, workflow.WITHDRAWAL_DECLARATION)
    now = dt.datetime.now(dt.timezone.utc)
    session.execute(update(Document).where(Document.case_id == case.id,
                                           Document.kind == workflow.WITHDRAWAL_DECLARATION)
                    .values(signed_at=now - dt.timedelta(days=3)))
    session.commit()
    c = ctx_for(staff.counsellor)
    for p in _people(session, case):
        case_service.record_ind_confirmation(c, case.reference, {
            "participant_id": p.id, "ind_reference": f"IND-{p.id}",
            "confirmed_on": dt.date.today() - dt.timedelta(days=2)})
    principal = _principal(session, case)
    done = _correct(c, case_service.load_case(c, case.reference),
                    {"participants": [{"id": principal.id, "family_name_latin": "Kovalenko-Bondar"}]})
    assert [d["kind"] for d in done["reissue"]] == [workflow.WITHDRAWAL_DECLARATION]
    assert "record_withdrawal" not in case_service.read_case(c, case.reference)["allowed_actions"]
    fake_sign(session, case, workflow.WITHDRAWAL_DECLARATION)  # the new version, today
    assert "record_withdrawal" in case_service.read_case(c, case.reference)["allowed_actions"]
    moved = case_service.perform(c, case.reference, "record_withdrawal", {})
    assert moved.state == "asylum_withdrawn"


def test_a_minor_added_later_is_confirmed_against_the_declarations_that_name_them(
        ctx_for, staff, session):
    # The adult declared ten days ago (before the child was on the case). A correction
    # adds a child with a pending application: the adult signs again today, and only that
    # declaration names the child. An IND date for the child before today is implausible.
    case = drive_to(ctx_for, staff, session, "committed", adults=1, minors=0)
    fake_sign(session, case, workflow.WITHDRAWAL_DECLARATION)
    session.execute(update(Document).where(Document.case_id == case.id,
                                           Document.kind == workflow.WITHDRAWAL_DECLARATION)
                    .values(signed_at=dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=10)))
    session.commit()
    c = ctx_for(staff.counsellor)
    adult = _principal(session, case)
    case_service.record_ind_confirmation(c, case.reference, {
        "participant_id": adult.id, "ind_reference": "IND-A",
        "confirmed_on": dt.date.today() - dt.timedelta(days=9)})
    child = dict(intake(1, 1)["household"][0], asylum_application_pending=True)
    done = _correct(c, case_service.load_case(c, case.reference), {"add_members": [child]})
    child_id = done["added"][0]["participant_id"]
    session.expire_all()
    assert session.get(Participant, child_id).joined_on == dt.date.today()
    assert session.get(Participant, adult.id).joined_on is None  # came with the intake
    fake_sign(session, case, workflow.WITHDRAWAL_DECLARATION)  # names the child, today
    five_days_ago = {"participant_id": child_id, "ind_reference": "IND-C",
                     "confirmed_on": dt.date.today() - dt.timedelta(days=5)}
    with pytest.raises(Invalid) as caught:
        case_service.record_ind_confirmation(c, case.reference, five_days_ago)
    assert [m.code for m in caught.value.details["confirmed_on"]] == [
        "ind_before_declaration:date"]
    case_service.record_ind_confirmation(c, case.reference, dict(
        five_days_ago, confirmed_on=dt.date.today()))
    # The adult's confirmation of nine days ago still confirms their first declaration.
    assert "record_withdrawal" in case_service.read_case(c, case.reference)["allowed_actions"]


def test_a_minor_s_name_is_on_every_adult_s_declaration(ctx_for, staff, session):
    case = drive_to(ctx_for, staff, session, "committed", adults=2, minors=1)
    fake_sign(session, case, workflow.WITHDRAWAL_DECLARATION)
    minor = next(p for p in _people(session, case) if p.relationship == "child")
    plan = _correct(ctx_for(staff.counsellor), case,
                    {"participants": [{"id": minor.id, "given_names_cyrillic": "Марія"}]})
    declarations = {d.id for d in session.execute(select(Document).where(
        Document.case_id == case.id, Document.kind == workflow.WITHDRAWAL_DECLARATION)).scalars()}
    assert {d["document_id"] for d in plan["reissue"]} == declarations and len(declarations) == 2


def test_in_intake_a_correction_supersedes_the_signed_commitment(ctx_for, staff, session):
    case = case_service.open_case(ctx_for(staff.counsellor), intake(2, 0))
    fake_sign(session, case, workflow.COMMITMENT)
    c = ctx_for(staff.counsellor)
    # The intake form stays refused once something is signed; the correction is the way.
    with pytest.raises(Conflict):
        case_service.update_intake(c, case.reference, intake(2, 0), case.version)
    principal = _principal(session, case)
    plan = _correct(c, case, {"participants": [{"id": principal.id,
                                                "date_of_birth": dt.date(1985, 6, 1)}]})
    assert len(plan["reissue"]) == 2  # both adults' commitments list the principal
    assert "confirm_commitment" not in case_service.read_case(c, case.reference)["allowed_actions"]


def test_destination_supersedes_the_agreement_before_it_is_agreed_and_is_fixed_after(
        ctx_for, staff, session):
    case = drive_to(ctx_for, staff, session, "asylum_withdrawn")
    deadline = (dt.date.today() + dt.timedelta(days=30)).isoformat()
    fake_sign(session, case, workflow.DEPARTURE_AGREEMENT, {"departure_deadline": deadline})
    c = ctx_for(staff.counsellor)
    agreements = {d.id for d in _live(session, case, workflow.DEPARTURE_AGREEMENT)}
    plan = _correct(c, case, {"destination_oblast": "UA-46", "destination_place": "Lviv"})
    assert {d["document_id"] for d in plan["reissue"]} == agreements
    # Commitment and declarations do not state the destination.
    assert plan["kept"] == []
    assert _last_event(session, case).details.count("UA-46") == 1  # not personal: in clear

    later = drive_to(ctx_for, staff, session, "departure_agreed")
    with pytest.raises(Conflict) as refused:
        _correct(c, later, {"destination_place": "Lviv"})
    assert refused.value.message_code == "correction.destination_agreed"


def test_a_birth_date_that_changes_adulthood_is_refused_once_signed(ctx_for, staff, session):
    case = drive_to(ctx_for, staff, session, "committed", adults=1, minors=1)
    minor = next(p for p in _people(session, case) if p.relationship == "child")
    with pytest.raises(Conflict) as refused:
        _correct(ctx_for(staff.counsellor), case,
                 {"participants": [{"id": minor.id, "date_of_birth": dt.date(1990, 1, 1)}]})
    assert refused.value.message_code == "correction.adulthood_changes"


def test_open_links_are_revoked_when_their_document_changes_or_the_address_does(
        ctx_for, staff, session):
    case = drive_to(ctx_for, staff, session, "committed", adults=2, minors=0)
    c = ctx_for(staff.counsellor)
    first, second = [p for p in _people(session, case)]
    link_first, _ = signing.create_signing_link(c, case.reference, first.id,
                                                workflow.WITHDRAWAL_DECLARATION, {})
    link_second, _ = signing.create_signing_link(c, case.reference, second.id,
                                                 workflow.WITHDRAWAL_DECLARATION, {})
    session.add(OutboxMessage(idempotency_key="k1", case_id=case.id, kind="signing_link",
                              recipient=second.email.upper(), subject="s", body_text="t",
                              body_html="h"))
    session.commit()
    case = case_service.load_case(c, case.reference)
    # The first adult's name changes what their declaration says; the second adult's
    # address changes where their link went.
    plan = _correct(c, case, {"participants": [
        {"id": first.id, "given_names_latin": "Olha"},
        {"id": second.id, "email": "right@example.org"}]})
    assert plan["links_revoked"] == sorted([link_first.id, link_second.id])
    session.expire_all()
    assert all(session.get(SigningRequest, i).revoked_at for i in plan["links_revoked"])
    assert session.execute(select(OutboxMessage.status).where(
        OutboxMessage.idempotency_key == "k1")).scalar_one() == "cancelled"
    # The next reminder goes to the corrected address.
    from returnprog.services.reminders import _participant_recipients
    people = _people(session, case)
    assert "right@example.org" in [r.email for r in _participant_recipients(
        people, dt.date.today(), c.policy)]


def test_the_search_index_follows_a_corrected_name(ctx_for, staff, session):
    case = drive_to(ctx_for, staff, session, "committed")
    c = ctx_for(staff.counsellor)
    principal = _principal(session, case)
    old_given = principal.given_names_latin
    assert case_service.list_cases(c, {"q": f"{old_given} Kovalenko"})["total"] == 1
    _correct(c, case, {"participants": [{"id": principal.id, "given_names_latin": "Zlata",
                                         "family_name_cyrillic": "Шевченко"}]})
    found = lambda q: [i["reference"] for i in case_service.list_cases(c, {"q": q})["items"]]  # noqa: E731
    assert found("Zlata Kovalenko") == [case.reference]
    assert found("Шевченко") == [case.reference]
    assert found(f"{old_given} Kovalenko") == []


STATED_VALUES = {"given_names_latin": "Zoriana", "family_name_latin": "Kovalenko-Bondar",
                 "given_names_cyrillic": "Зоряна", "family_name_cyrillic": "Коваленко-Бондар",
                 "date_of_birth": dt.date(1985, 6, 2)}
# DESIGN §3 written out: where each kind may (still) be signed.
SIGNABLE = {"commitment": {"intake"}, "withdrawal_declaration": {"intake", "committed"},
            "departure_agreement": {"committed", "asylum_withdrawn"},
            "addendum": {"departure_agreed"}, "payment_receipt": {"departure_agreed", "support_paid"}}


@pytest.mark.parametrize("state", NON_FINAL)
@pytest.mark.parametrize("field", sorted(STATED_VALUES))
def test_stated_data_can_be_corrected_in_every_state_before_a_final_one(
        ctx_for, staff, session, state, field):
    case = drive_to(ctx_for, staff, session, state, adults=2, minors=1)
    if state == "intake":
        fake_sign(session, case, workflow.COMMITMENT)
    for kind in SIGNABLE:  # something signed of every kind that may still be signed now
        if state in SIGNABLE[kind] and not _live(session, case, kind):
            deadline = (dt.date.today() + dt.timedelta(days=40)).isoformat()
            fake_sign(session, case, kind, {"departure_deadline": deadline, "reason": "r"}
                      if kind in ("departure_agreement", "addendum") else None)
    case = case_service.load_case(ctx_for(staff.counsellor), case.reference)
    principal = _principal(session, case)
    live = _live(session, case)
    plan = _correct(ctx_for(staff.counsellor), case,
                    {"participants": [{"id": principal.id, field: STATED_VALUES[field]}]})
    session.expire_all()
    assert getattr(_principal(session, case), field) == STATED_VALUES[field]
    # The principal is on every document but another adult's withdrawal declaration.
    on_it = {d.id for d in live if d.kind != workflow.WITHDRAWAL_DECLARATION
             or d.participant_id == principal.id}
    expected = {d.id for d in live if d.id in on_it and state in SIGNABLE[d.kind]}
    assert {d["document_id"] for d in plan["reissue"]} == expected and expected
    assert {d["document_id"] for d in plan["kept"]} == on_it - expected
    assert {d.id for d in _live(session, case)} == {d.id for d in live} - expected
    change = json.loads(_last_event(session, case).details)["changes"][0]
    assert change["field"] == field and change["new_sha256"] == corrections._digest(
        STATED_VALUES[field])
