"""Household corrections after signing (issue 13 item 1): adding and removing members by a
correction supersedes the documents that print the participants table and can still be
signed; who may join or leave when, and why (see services/corrections.py)."""
from __future__ import annotations

import datetime as dt
import json

import pytest
from sqlalchemy import select

from returnprog import audit, workflow
from returnprog.models import (AuditEvent, Document, OpenVNumber, OutboxMessage, Participant,
                               SigningRequest)
from returnprog.services import Conflict, Invalid
from returnprog.services import cases as case_service
from returnprog.services import corrections, signing

from ..conftest import confirm_ind, drive_to, fake_sign, intake, person


def _people(session, case):
    return session.execute(select(Participant).where(Participant.case_id == case.id)
                           .order_by(Participant.id)).scalars().all()


def _live(session, case, kind=None):
    query = select(Document).where(Document.case_id == case.id, Document.superseded_at.is_(None))
    if kind:
        query = query.where(Document.kind == kind)
    return session.execute(query).scalars().all()


def _event(session, case):
    return session.execute(select(AuditEvent).where(AuditEvent.case_id == case.id)
                           .order_by(AuditEvent.seq.desc()).limit(1)).scalar_one()


def _fresh(ctx, case):
    return case_service.load_case(ctx, case.reference)


def _correct(ctx, case, data, **kw):
    return corrections.correct_case(ctx, case.reference, data, _fresh(ctx, case).version, **kw)


def _child(**over):
    return {**person(adult=False, email=None), "relationship": "child", **over}


def _refused(ctx, case, data, exc=Conflict):
    with pytest.raises(exc) as refused:
        _correct(ctx, case, data)
    return refused.value.message_code


def test_a_minor_added_in_committed_supersedes_the_declarations_and_blocks_until_signed(
        ctx_for, staff, session):
    case = drive_to(ctx_for, staff, session, "committed", adults=2, minors=0)
    fake_sign(session, case, workflow.WITHDRAWAL_DECLARATION)
    c = ctx_for(staff.counsellor)
    confirm_ind(c, case)
    assert "record_withdrawal" in case_service.read_case(c, case.reference)["allowed_actions"]
    declarations = {d.id for d in _live(session, case, workflow.WITHDRAWAL_DECLARATION)}
    commitments = {d.id for d in _live(session, case, workflow.COMMITMENT)}
    child = _child(given_names_latin="Maryna")

    preview = _correct(c, case, {"add_members": [child]}, dry_run=True)
    assert len(_people(session, case)) == 2  # a preview adds nobody
    # The participants table changes on every document; the commitment is a step taken.
    assert {d["document_id"] for d in preview["reissue"]} == declarations
    assert {d["document_id"] for d in preview["kept"]} == commitments
    assert [(a["relationship"], a["is_adult"]) for a in preview["added"]] == [("child", False)]

    done = _correct(c, case, {"add_members": [child]})
    assert done["reissue"] == preview["reissue"]
    session.expire_all()
    new = next(p for p in _people(session, case) if p.given_names_latin == "Maryna")
    assert done["added"][0]["participant_id"] == new.id
    assert session.get(OpenVNumber, child["v_number"]).case_id == case.id
    assert _live(session, case, workflow.WITHDRAWAL_DECLARATION) == []
    refusals = workflow.check("record_withdrawal", case_service.gather_facts(c, _fresh(c, case)),
                              "counsellor", {}, c.policy)
    assert "withdrawal_declaration_unsigned" in [r.code for r in refusals]
    details = json.loads(_event(session, case).details)
    assert details["members_added"] == [{"participant_id": new.id, "relationship": "child",
                                         "is_adult": False}]
    assert set(details["superseded_documents"]) == declarations
    assert "Maryna" not in _event(session, case).details
    assert child["v_number"] not in _event(session, case).details
    found = case_service.list_cases(c, {"q": "Maryna"})["items"]
    assert [i["reference"] for i in found] == [case.reference]

    # Signed again by both adults (the new version names the child), the step opens.
    fake_sign(session, case, workflow.WITHDRAWAL_DECLARATION)
    case_service.record_ind_confirmation(c, case.reference, {
        "participant_id": new.id, "ind_reference": "IND-NEW-1", "confirmed_on": dt.date.today()})
    assert "record_withdrawal" in case_service.read_case(c, case.reference)["allowed_actions"]
    assert audit.verify(session).ok


def test_an_adult_added_in_intake_supersedes_the_commitments_and_must_sign_too(
        ctx_for, staff, session):
    c = ctx_for(staff.counsellor)
    case = case_service.open_case(c, intake(1, 1))
    fake_sign(session, case, workflow.COMMITMENT)
    assert "confirm_commitment" in case_service.read_case(c, case.reference)["allowed_actions"]
    commitments = {d.id for d in _live(session, case, workflow.COMMITMENT)}
    adult = dict(person(given_names_latin="Taras"), relationship="spouse")
    plan = _correct(c, case, {"add_members": [adult]})
    assert {d["document_id"] for d in plan["reissue"]} == commitments and plan["kept"] == []
    session.expire_all()
    assert _live(session, case, workflow.COMMITMENT) == []
    refusals = workflow.check("confirm_commitment", case_service.gather_facts(c, _fresh(c, case)),
                              "counsellor", {}, c.policy)
    unsigned = next(r for r in refusals if r.code == "commitment_unsigned")
    assert "Taras" in str(unsigned.params["names"])
    fake_sign(session, case, workflow.COMMITMENT)
    assert "confirm_commitment" in case_service.read_case(c, case.reference)["allowed_actions"]


@pytest.mark.parametrize("state", ("committed", "asylum_withdrawn"))
def test_an_adult_may_join_only_in_intake(ctx_for, staff, session, state):
    case = drive_to(ctx_for, staff, session, state, adults=1, minors=0)
    c = ctx_for(staff.counsellor)
    code = _refused(c, case, {"add_members": [dict(person(), relationship="sibling")]})
    assert code == "correction.adult_joins_late"
    assert len(_people(session, case)) == 1


def test_a_child_with_a_pending_application_joins_only_until_the_withdrawal(
        ctx_for, staff, session):
    case = drive_to(ctx_for, staff, session, "asylum_withdrawn", adults=1, minors=0)
    c = ctx_for(staff.counsellor)
    assert _refused(c, case, {"add_members": [_child()]}) == "correction.minor_joins_late"
    # A child born here later has no application to withdraw: they may join.
    plan = _correct(c, case, {"add_members": [_child(asylum_application_pending=False)]})
    assert plan["added"] and len(_people(session, case)) == 2


def test_no_household_change_once_a_payment_exists(ctx_for, staff, session):
    from returnprog.services import payment as payment_service
    case = drive_to(ctx_for, staff, session, "departure_agreed", adults=1, minors=1)
    c = ctx_for(staff.counsellor)
    payment_service.propose(c, case.reference, {"method": "cash"})
    minor = next(p for p in _people(session, case) if p.relationship == "child")
    born_here = _child(asylum_application_pending=False)
    assert _refused(c, case, {"add_members": [born_here]}) == "correction.household_paid"
    assert _refused(c, case, {"remove_members": [minor.id]}) == "correction.household_paid"
    # The payment cancelled, the household may change again (the tariff is worked anew).
    payment_service.cancel(c, case.reference, "household changes")
    assert _correct(c, case, {"add_members": [born_here]})["added"]


def test_removing_a_minor_releases_the_v_number_and_the_name_from_search(
        ctx_for, staff, session):
    case = drive_to(ctx_for, staff, session, "committed", adults=2, minors=1)
    fake_sign(session, case, workflow.WITHDRAWAL_DECLARATION)
    c = ctx_for(staff.counsellor)
    minor = next(p for p in _people(session, case) if p.relationship == "child")
    name, v_number, minor_id = minor.given_names_latin, minor.v_number, minor.id
    # A link the minor was never meant to use (created directly): it goes with them.
    link = SigningRequest(case_id=case.id, participant_id=minor.id, kind="commitment",
                          token_hash="f" * 64, created_by=staff.counsellor.id,
                          expires_at=dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=3))
    session.add(link)
    session.flush()
    session.add(OutboxMessage(idempotency_key="minor-link", case_id=case.id, kind="signing_link",
                              recipient="x@example.org", subject="s", body_text="t",
                              body_html="h", signing_request_id=link.id))
    session.commit()
    assert [i["reference"] for i in case_service.list_cases(c, {"q": name})["items"]] == [
        case.reference]
    declarations = {d.id for d in _live(session, case, workflow.WITHDRAWAL_DECLARATION)}

    plan = _correct(c, case, {"remove_members": [minor_id]})
    assert {d["document_id"] for d in plan["reissue"]} == declarations
    assert plan["removed"] == [{"participant_id": minor_id, "relationship": "child",
                                "is_adult": False}]
    session.expire_all()
    assert minor_id not in {p.id for p in _people(session, case)}
    assert session.get(OpenVNumber, v_number) is None
    message = session.execute(select(OutboxMessage).where(
        OutboxMessage.idempotency_key == "minor-link")).scalar_one()
    assert (message.status, message.signing_request_id) == ("cancelled", None)
    assert case_service.list_cases(c, {"q": name})["total"] == 0
    assert json.loads(_event(session, case).details)["members_removed"] == [minor_id]
    # The same person can now be registered on another case.
    other = case_service.open_case(c, intake(1, 0, principal=person(v_number=v_number)))
    assert session.get(OpenVNumber, v_number).case_id == other.id
    assert audit.verify(session).ok


def test_a_member_who_signed_or_was_confirmed_and_the_principal_stay(ctx_for, staff, session):
    c = ctx_for(staff.counsellor)
    case = case_service.open_case(c, intake(2, 0))
    principal, spouse = _people(session, case)
    assert _refused(c, case, {"remove_members": [principal.id]}) == "correction.principal_stays"
    fake_sign(session, case, workflow.COMMITMENT)
    assert _refused(c, case, {"remove_members": [spouse.id]}) == "correction.member_signed"
    assert _refused(c, case, {"remove_members": [10**9]}, Invalid) == "case.unknown_participant"
    session.expire_all()
    assert len(_people(session, case)) == 2

    # A minor whose withdrawal the IND confirmed is part of the record too.
    later = drive_to(ctx_for, staff, session, "asylum_withdrawn", adults=1, minors=1)
    minor = next(p for p in _people(session, later) if p.relationship == "child")
    assert _refused(c, later, {"remove_members": [minor.id]}) == "correction.member_confirmed"


def test_an_adult_who_signed_nothing_is_removed_in_intake(ctx_for, staff, session):
    c = ctx_for(staff.counsellor)
    case = case_service.open_case(c, intake(2, 0))
    principal, spouse = _people(session, case)
    link, _token = signing.create_signing_link(c, case.reference, spouse.id,
                                               workflow.COMMITMENT, {})
    session.add(OutboxMessage(idempotency_key="to-spouse", case_id=case.id, kind="reminder",
                              recipient=spouse.email, subject="s", body_text="t", body_html="h"))
    session.commit()
    plan = _correct(c, case, {"remove_members": [spouse.id]})
    assert plan["removed"][0]["is_adult"] is True
    session.expire_all()
    assert session.get(SigningRequest, link.id) is None
    assert session.execute(select(OutboxMessage.status).where(
        OutboxMessage.idempotency_key == "to-spouse")).scalar_one() == "cancelled"
    assert json.loads(_event(session, case).details)["signing_links_deleted"] == 1
    assert [p.id for p in _people(session, case)] == [principal.id]


def test_an_added_member_is_checked_as_at_intake(ctx_for, staff, session):
    c = ctx_for(staff.counsellor)
    case = case_service.open_case(c, intake(1, 0))
    principal = _people(session, case)[0]
    with pytest.raises(Invalid) as implausible:
        _correct(c, case, {"add_members": [_child(relationship="spouse")]})
    assert "add_members" in implausible.value.details
    with pytest.raises(Invalid) as twice:
        _correct(c, case, {"add_members": [_child(v_number=principal.v_number)]})
    assert twice.value.details["add_members"]["0"]["v_number"]
    elsewhere = case_service.open_case(c, intake(1, 0))
    taken = _people(session, elsewhere)[0].v_number
    with pytest.raises(Conflict) as held:
        _correct(c, case, {"add_members": [_child(v_number=taken)]})
    assert held.value.message_code == "case.person_has_open_case"
    session.expire_all()
    assert len(_people(session, case)) == 1


def test_a_stale_version_changes_no_household(ctx_for, staff, session):
    case = drive_to(ctx_for, staff, session, "committed", adults=1, minors=1)
    c = ctx_for(staff.counsellor)
    minor = next(p for p in _people(session, case) if p.relationship == "child")
    with pytest.raises(Conflict) as refused:
        corrections.correct_case(c, case.reference, {"remove_members": [minor.id],
                                                     "add_members": [_child()]},
                                 _fresh(c, case).version - 1)
    assert refused.value.details[0]["code"] == "stale_version"
    session.expire_all()
    assert len(_people(session, case)) == 2
