"""The service layer on a real database (SQLite and PostgreSQL): who may do what, what is
refused, and that a refusal changes nothing at all."""
from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import func, select
from sqlmodel import Session

from returnprog import audit, workflow
from returnprog.models import (AccessEvent, AuditEvent, Case, Document, IndConfirmation, OpenVNumber,
                               Participant, Payment, User)
from returnprog.services import Conflict, Forbidden, Invalid, NotFound, ServiceError
from returnprog.services import cases as case_service
from returnprog.services import payment as payment_service

from ..conftest import confirm_ind, drive_to, fake_sign, intake, person

TODAY = dt.date.today()


def codes(exc: ServiceError) -> list[str]:
    details = exc.details if isinstance(exc.details, list) else []
    return [d.get("code") for d in details]


def world(session) -> dict:
    """Everything a refusal must leave alone, read through a fresh session so only
    committed data counts."""
    with Session(session.get_bind()) as s:
        return {
            "cases": s.execute(select(Case.id, Case.state, Case.version, Case.departure_deadline,
                                      Case.closing_reason, Case.departed_on,
                                      Case.destination_place).order_by(Case.id)).all(),
            "participants": s.execute(select(Participant.id, Participant.case_id,
                                             Participant.v_number).order_by(Participant.id)).all(),
            "open_v": s.execute(select(OpenVNumber.v_number, OpenVNumber.case_id)
                                .order_by(OpenVNumber.v_number)).all(),
            "payments": s.execute(select(Payment.id, Payment.status, Payment.version,
                                         Payment.idempotency_key).order_by(Payment.id)).all(),
            "ind": s.execute(select(IndConfirmation.id).order_by(IndConfirmation.id)).all(),
            "documents": s.execute(select(func.count()).select_from(Document)).scalar_one(),
            "audit": s.execute(select(func.count()).select_from(AuditEvent)).scalar_one(),
        }


def audit_count(session, case_id=None, **where) -> int:
    query = select(func.count()).select_from(AuditEvent)
    if case_id is not None:
        query = query.where(AuditEvent.case_id == case_id)
    for key, value in where.items():
        query = query.where(getattr(AuditEvent, key) == value)
    return session.execute(query).scalar_one()


def last_event(session, case_id) -> AuditEvent:
    return session.execute(select(AuditEvent).where(AuditEvent.case_id == case_id)
                           .order_by(AuditEvent.seq.desc()).limit(1)).scalar_one()


# --- opening a case ----------------------------------------------------------------------------

def test_opening_a_case_puts_it_in_intake_with_one_audit_event(ctx_for, staff, session):
    case = case_service.open_case(ctx_for(staff.counsellor), intake(2, 1))
    assert case.state == "intake" and case.version == 1
    assert case.reference.startswith(f"VRP-{TODAY.year}-")
    event = last_event(session, case.id)
    assert (event.action, event.from_state, event.to_state) == ("open_case", None, "intake")
    assert event.actor == staff.counsellor.email
    assert audit_count(session, case.id) == 1
    assert case.team_id == staff.counsellor.team_id and case.counsellor_id == staff.counsellor.id


def test_case_references_are_consecutive(ctx_for, staff):
    a = case_service.open_case(ctx_for(staff.counsellor), intake())
    b = case_service.open_case(ctx_for(staff.counsellor2), intake())
    assert int(b.reference[-6:]) == int(a.reference[-6:]) + 1


def test_a_v_number_already_in_an_open_case_is_refused(ctx_for, staff, session):
    first = intake(2)
    case_service.open_case(ctx_for(staff.counsellor), first)
    before = world(session)
    again = intake(1, principal=person(v_number=first["household"][0]["v_number"]))
    with pytest.raises(Conflict) as err:
        case_service.open_case(ctx_for(staff.counsellor2), again)
    assert codes(err.value) == ["open_case_exists"]
    # The field names the person; the message does not repeat the V-number.
    assert err.value.details[0]["field"] == "principal.v_number"
    assert first["household"][0]["v_number"] not in err.value.details[0]["message"]
    assert world(session) == before


def test_a_v_number_in_another_teams_open_case_is_refused_too(ctx_for, staff):
    first = intake()
    case_service.open_case(ctx_for(staff.counsellor), first)
    with pytest.raises(Conflict):
        case_service.open_case(ctx_for(staff.other_counsellor),
                               intake(principal=dict(person(), v_number=first["principal"]["v_number"])))


@pytest.mark.parametrize("closing", ["leave_programme", "reject"])
def test_a_v_number_is_free_again_once_its_case_is_closed(ctx_for, staff, session, closing):
    data = intake()
    case = case_service.open_case(ctx_for(staff.counsellor), data)
    actor = staff.counsellor if closing == "leave_programme" else staff.supervisor
    case_service.perform(ctx_for(actor), case.reference, closing, {"reason": "test"})
    again = case_service.open_case(ctx_for(staff.counsellor), intake(
        principal=dict(person(), v_number=data["principal"]["v_number"])))
    assert again.state == "intake" and again.id != case.id


def test_a_v_number_stays_taken_while_its_case_is_merely_advanced(ctx_for, staff, session):
    case = drive_to(ctx_for, staff, session, "asylum_withdrawn", adults=1, minors=0)
    v = session.execute(select(Participant.v_number).where(Participant.case_id == case.id)).scalar_one()
    with pytest.raises(Conflict):
        case_service.open_case(ctx_for(staff.counsellor), intake(principal=dict(person(), v_number=v)))


@pytest.mark.parametrize("role", ["supervisor", "finance", "admin"])
def test_only_a_counsellor_may_open_a_case(ctx_for, staff, session, role):
    before = world(session)
    with pytest.raises(Forbidden):
        case_service.open_case(ctx_for(getattr(staff, role)), intake())
    assert world(session) == before


def test_a_counsellor_without_a_team_cannot_open_a_case(ctx_for, staff, session):
    loner = User(email="loner@dtenv.example", name="Loner", role="counsellor", team_id=None)
    session.add(loner)
    session.commit()
    before = world(session)
    with pytest.raises(Forbidden):
        case_service.open_case(ctx_for(loner), intake())
    assert world(session) == before


# --- editing the intake -----------------------------------------------------------------------------

def test_the_intake_can_be_replaced_while_in_intake(ctx_for, staff, session):
    data = intake(2)
    case = case_service.open_case(ctx_for(staff.counsellor), data)
    new = intake(1, 2, destination_place="Lviv")
    updated = case_service.update_intake(ctx_for(staff.counsellor), case.reference, new, 1)
    assert updated.version == 2 and updated.destination_place == "Lviv"
    names = session.execute(select(Participant.v_number).where(Participant.case_id == case.id)).scalars().all()
    assert sorted(names) == sorted([new["principal"]["v_number"]] +
                                   [m["v_number"] for m in new["household"]])
    assert last_event(session, case.id).action == "update_intake"
    # The people dropped from the household no longer block a case of their own.
    case_service.open_case(ctx_for(staff.counsellor), intake(
        principal=dict(person(), v_number=data["household"][0]["v_number"])))


@pytest.mark.parametrize("state", ["committed", "asylum_withdrawn", "departed"])
def test_the_intake_cannot_be_changed_after_intake(ctx_for, staff, session, state):
    case = drive_to(ctx_for, staff, session, state)
    before = world(session)
    with pytest.raises(Conflict) as err:
        case_service.update_intake(ctx_for(staff.counsellor), case.reference, intake())
    assert codes(err.value) == ["wrong_state"]
    session.commit()
    assert world(session) == before


def test_the_intake_cannot_be_changed_once_documents_are_signed(ctx_for, staff, session):
    case = case_service.open_case(ctx_for(staff.counsellor), intake(2))
    fake_sign(session, case, workflow.COMMITMENT)
    before = world(session)
    with pytest.raises(Conflict) as err:
        case_service.update_intake(ctx_for(staff.counsellor), case.reference, intake(), 1)
    assert codes(err.value) == ["documents_signed"]
    session.commit()
    assert world(session) == before


def test_the_intake_can_be_replaced_after_a_signing_link_was_sent(ctx_for, staff, session):
    from returnprog.models import SigningRequest
    from returnprog.services import signing

    case = case_service.open_case(ctx_for(staff.counsellor), intake())
    pid = session.execute(select(Participant.id).where(Participant.case_id == case.id)).scalar_one()
    _, token = signing.create_signing_link(ctx_for(staff.counsellor), case.reference, pid,
                                           workflow.COMMITMENT, {})
    updated = case_service.update_intake(ctx_for(staff.counsellor), case.reference, intake(2))
    assert updated.version == 2
    # The link was for someone no longer on the case: it is gone, and says so in the trail.
    assert session.execute(select(func.count()).select_from(SigningRequest)
                           .where(SigningRequest.case_id == case.id)).scalar_one() == 0
    assert '"signing_links_cancelled": 1' in last_event(session, case.id).details
    with pytest.raises(NotFound):
        signing.open_signing_link(ctx_for(staff.counsellor), token)


def test_a_stale_intake_edit_is_refused(ctx_for, staff, session):
    case = case_service.open_case(ctx_for(staff.counsellor), intake())
    case_service.update_intake(ctx_for(staff.counsellor), case.reference, intake(), 1)
    before = world(session)
    with pytest.raises(Conflict) as err:
        case_service.update_intake(ctx_for(staff.counsellor2), case.reference, intake(), 1)
    assert codes(err.value) == ["stale_version"]
    assert world(session) == before


def test_only_a_counsellor_may_edit_the_intake(ctx_for, staff, session):
    case = case_service.open_case(ctx_for(staff.counsellor), intake())
    before = world(session)
    with pytest.raises(Forbidden):
        case_service.update_intake(ctx_for(staff.supervisor), case.reference, intake())
    session.commit()
    assert world(session) == before


def test_an_intake_edit_may_not_take_a_v_number_of_another_open_case(ctx_for, staff, session):
    other = intake()
    case_service.open_case(ctx_for(staff.counsellor), other)
    case = case_service.open_case(ctx_for(staff.counsellor), intake())
    before = world(session)
    with pytest.raises(Conflict) as err:
        case_service.update_intake(ctx_for(staff.counsellor), case.reference,
                                   intake(principal=dict(person(), v_number=other["principal"]["v_number"])))
    assert codes(err.value) == ["open_case_exists"]
    assert world(session) == before


# --- visibility ------------------------------------------------------------------------------------------

def test_a_counsellor_of_another_team_cannot_see_or_touch_the_case(ctx_for, staff, session):
    case = drive_to(ctx_for, staff, session, "committed")
    other = ctx_for(staff.other_counsellor)
    before = world(session)
    calls = [
        lambda: case_service.read_case(other, case.reference),
        lambda: case_service.perform(other, case.reference, "leave_programme", {"reason": "x"}),
        lambda: case_service.update_intake(other, case.reference, intake()),
        lambda: case_service.record_ind_confirmation(other, case.reference, {
            "participant_id": 1, "ind_reference": "IND-1", "confirmed_on": TODAY}),
    ]
    for call in calls:
        with pytest.raises(NotFound):
            call()
    session.commit()
    assert world(session) == before
    assert case.reference not in [c["reference"] for c in
                                  case_service.list_cases(other, {})["items"]]


def test_a_supervisor_of_another_team_cannot_approve_the_payment(ctx_for, staff, session):
    case = drive_to(ctx_for, staff, session, "departure_agreed")
    payment_service.propose(ctx_for(staff.counsellor), case.reference, {"method": "cash"})
    before = world(session)
    with pytest.raises(NotFound):
        payment_service.approve(ctx_for(staff.other_supervisor), case.reference)
    assert world(session) == before


def test_an_admin_sees_no_case(ctx_for, staff, session):
    case = case_service.open_case(ctx_for(staff.counsellor), intake())
    with pytest.raises(NotFound):
        case_service.read_case(ctx_for(staff.admin), case.reference)
    assert case_service.list_cases(ctx_for(staff.admin), {})["total"] == 0


def test_finance_sees_a_case_at_the_payment_stage_or_with_a_payment(ctx_for, staff, session):
    # Issue 13: a case waiting for its payment is finance's to see (narrowed), so paying it
    # out too early is refused with the reason; before that stage it is not theirs.
    committed = drive_to(ctx_for, staff, session, "committed")
    with pytest.raises(NotFound):
        case_service.read_case(ctx_for(staff.finance), committed.reference)
    case = drive_to(ctx_for, staff, session, "departure_agreed")
    assert case_service.read_case(ctx_for(staff.finance), case.reference)["state"] == "departure_agreed"
    payment_service.propose(ctx_for(staff.counsellor), case.reference, {"method": "cash"})
    assert case_service.read_case(ctx_for(staff.finance), case.reference)["state"] == "departure_agreed"


def test_an_unknown_reference_is_not_found(ctx_for, staff):
    with pytest.raises(NotFound):
        case_service.perform(ctx_for(staff.counsellor), "VRP-2026-999999", "reject", {"reason": "x"})


@pytest.mark.parametrize("action", ["open_case", "teleport", ""])
def test_an_unknown_action_is_not_found(ctx_for, staff, action):
    case = case_service.open_case(ctx_for(staff.counsellor), intake())
    with pytest.raises(NotFound):
        case_service.perform(ctx_for(staff.counsellor), case.reference, action, {})


# --- roles --------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("state, action, role, payload", [
    ("intake", "confirm_commitment", "supervisor", {}),
    ("intake", "reject", "counsellor", {"reason": "x"}),
    ("intake", "leave_programme", "supervisor", {"reason": "x"}),
    ("committed", "record_withdrawal", "supervisor", {}),
    ("departure_agreed", "extend_deadline", "counsellor",
     {"departure_deadline": TODAY + dt.timedelta(days=40), "reason": "x"}),
    ("departure_agreed", "lapse", "counsellor", {"reason": "x"}),
    ("support_paid", "confirm_departure", "supervisor",
     {"departed_on": TODAY, "evidence": "boarding"}),
    ("support_paid", "confirm_departure", "finance",
     {"departed_on": TODAY, "evidence": "boarding"}),
])
def test_a_role_that_may_not_act_is_forbidden_and_nothing_changes(
        ctx_for, staff, session, state, action, role, payload):
    case = drive_to(ctx_for, staff, session, state)
    before = world(session)
    with pytest.raises(Forbidden) as err:
        case_service.perform(ctx_for(getattr(staff, role)), case.reference, action, payload)
    assert codes(err.value) == ["role"]
    session.commit()
    assert world(session) == before


def test_finance_cannot_propose_and_a_counsellor_cannot_approve(ctx_for, staff, session):
    case = drive_to(ctx_for, staff, session, "departure_agreed")
    with pytest.raises(Forbidden):
        payment_service.propose(ctx_for(staff.finance), case.reference, {"method": "cash"})
    payment_service.propose(ctx_for(staff.counsellor), case.reference, {"method": "cash"})
    before = world(session)
    for who in (staff.counsellor, staff.counsellor2, staff.finance):
        with pytest.raises(Forbidden):
            payment_service.approve(ctx_for(who), case.reference)
    session.commit()
    assert world(session) == before


# --- every refusal leaves everything as it was ----------------------------------------------------------

def _refusals():
    d30 = TODAY + dt.timedelta(days=30)

    def unsigned_commitment(c, s, st):
        case = case_service.open_case(c(st.counsellor), intake(2))
        return lambda: case_service.perform(c(st.counsellor), case.reference, "confirm_commitment", {})

    def withdrawal_without_ind(c, s, st):
        case = drive_to(c, st, s, "committed")
        fake_sign(s, case, workflow.WITHDRAWAL_DECLARATION)
        return lambda: case_service.perform(c(st.counsellor), case.reference, "record_withdrawal", {})

    def deadline_too_soon(c, s, st):
        case = drive_to(c, st, s, "asylum_withdrawn")
        soon = TODAY + dt.timedelta(days=3)
        fake_sign(s, case, workflow.DEPARTURE_AGREEMENT, {"departure_deadline": soon.isoformat()})
        return lambda: case_service.perform(c(st.counsellor), case.reference, "agree_departure",
                                            {"departure_deadline": soon})

    def leave_after_withdrawal(c, s, st):
        case = drive_to(c, st, s, "asylum_withdrawn")
        return lambda: case_service.perform(c(st.counsellor), case.reference, "leave_programme",
                                            {"reason": "changed mind"})

    def lapse_before_deadline(c, s, st):
        case = drive_to(c, st, s, "departure_agreed")
        return lambda: case_service.perform(c(st.supervisor), case.reference, "lapse", {"reason": "x"})

    def pay_unapproved(c, s, st):
        case = drive_to(c, st, s, "departure_agreed")
        payment_service.propose(c(st.counsellor), case.reference, {"method": "cash"})
        return lambda: payment_service.disburse(c(st.finance), case.reference,
                                                {"idempotency_key": "key-unapproved-1"})

    def extend_without_addendum(c, s, st):
        case = drive_to(c, st, s, "departure_agreed")
        return lambda: case_service.perform(c(st.supervisor), case.reference, "extend_deadline",
                                            {"departure_deadline": d30 + dt.timedelta(days=10),
                                             "reason": "Flight cancelled"})

    def act_on_departed(c, s, st):
        case = drive_to(c, st, s, "departed")
        return lambda: case_service.perform(c(st.supervisor), case.reference, "lapse", {"reason": "x"})

    def ind_in_intake(c, s, st):
        case = case_service.open_case(c(st.counsellor), intake())
        pid = s.execute(select(Participant.id).where(Participant.case_id == case.id)).scalar_one()
        return lambda: case_service.record_ind_confirmation(c(st.counsellor), case.reference, {
            "participant_id": pid, "ind_reference": "IND-1", "confirmed_on": TODAY})

    def second_proposal(c, s, st):
        case = drive_to(c, st, s, "departure_agreed")
        payment_service.propose(c(st.counsellor), case.reference, {"method": "cash"})
        return lambda: payment_service.propose(c(st.counsellor2), case.reference, {"method": "cash"})

    def bad_iban(c, s, st):
        case = drive_to(c, st, s, "departure_agreed")
        return lambda: payment_service.propose(c(st.counsellor), case.reference, {
            "method": "transfer", "iban": "NL00BANK0123456789", "account_holder": "O. K."})

    def approve_nothing(c, s, st):
        case = drive_to(c, st, s, "departure_agreed")
        return lambda: payment_service.approve(c(st.supervisor), case.reference)

    def propose_too_early(c, s, st):
        case = drive_to(c, st, s, "asylum_withdrawn")
        return lambda: payment_service.propose(c(st.counsellor), case.reference, {"method": "cash"})

    def reused_key(c, s, st):
        paid = drive_to(c, st, s, "support_paid")
        case = drive_to(c, st, s, "departure_agreed")
        payment_service.propose(c(st.counsellor), case.reference, {"method": "cash"})
        payment_service.approve(c(st.supervisor), case.reference)
        return lambda: payment_service.disburse(c(st.finance), case.reference,
                                                {"idempotency_key": f"pay-{paid.reference}"})

    def departure_without_evidence(c, s, st):
        case = drive_to(c, st, s, "support_paid")
        return lambda: case_service.perform(c(st.counsellor), case.reference, "confirm_departure",
                                            {"departed_on": TODAY, "evidence": None})

    return {f.__name__: f for f in (
        unsigned_commitment, withdrawal_without_ind, deadline_too_soon, leave_after_withdrawal,
        lapse_before_deadline, pay_unapproved, extend_without_addendum, act_on_departed,
        ind_in_intake, second_proposal, bad_iban, approve_nothing, propose_too_early,
        reused_key, departure_without_evidence)}


REFUSALS = _refusals()


@pytest.mark.parametrize("scenario", sorted(REFUSALS))
def test_a_refusal_leaves_state_version_and_audit_trail_unchanged(ctx_for, staff, session, scenario):
    attempt = REFUSALS[scenario](ctx_for, session, staff)
    before = world(session)
    with pytest.raises(ServiceError) as err:
        attempt()
    assert isinstance(err.value, (Conflict, Invalid, Forbidden))
    assert err.value.message
    # Whatever the caller does next, nothing of the refused change may be committed.
    session.commit()
    assert world(session) == before
    assert audit.verify(session).ok


def test_a_guard_refusal_lists_every_unmet_condition(ctx_for, staff, session):
    case = drive_to(ctx_for, staff, session, "committed", adults=2, minors=1)
    with pytest.raises(Conflict) as err:
        case_service.perform(ctx_for(staff.counsellor), case.reference, "record_withdrawal", {})
    assert codes(err.value) == ["withdrawal_declaration_unsigned", "ind_confirmation_missing"]
    names = session.execute(select(Participant).where(Participant.case_id == case.id)).scalars().all()
    message = err.value.details[1]["message"]
    assert all(p.full_name in message for p in names)  # the minor too


# --- IND confirmations ---------------------------------------------------------------------------------------

def _committed(ctx_for, staff, session, **kw):
    case = drive_to(ctx_for, staff, session, "committed", **kw)
    people = session.execute(select(Participant).where(Participant.case_id == case.id)
                             .order_by(Participant.id)).scalars().all()
    return case, people


def test_an_ind_confirmation_is_recorded_with_an_audit_event(ctx_for, staff, session):
    case, people = _committed(ctx_for, staff, session)
    before = audit_count(session, case.id)
    conf = case_service.record_ind_confirmation(ctx_for(staff.counsellor), case.reference, {
        "participant_id": people[0].id, "ind_reference": "IND-2026-77", "confirmed_on": TODAY})
    assert conf.ind_reference == "IND-2026-77" and conf.recorded_by == staff.counsellor.id
    assert audit_count(session, case.id) == before + 1
    event = last_event(session, case.id)
    assert event.action == "record_ind_confirmation" and event.to_state is None
    session.expire_all()
    assert session.get(Case, case.id).state == "committed"


def test_an_ind_confirmation_cannot_be_recorded_twice(ctx_for, staff, session):
    case, people = _committed(ctx_for, staff, session)
    data = {"participant_id": people[0].id, "ind_reference": "IND-1", "confirmed_on": TODAY}
    case_service.record_ind_confirmation(ctx_for(staff.counsellor), case.reference, data)
    before = world(session)
    with pytest.raises(Conflict) as err:
        case_service.record_ind_confirmation(ctx_for(staff.counsellor2), case.reference,
                                             dict(data, ind_reference="IND-2"))
    assert codes(err.value) == ["ind_confirmation_exists"]
    assert "IND-1" in err.value.details[0]["message"]
    assert world(session) == before


def test_an_ind_confirmation_for_a_participant_of_another_case_is_invalid(ctx_for, staff, session):
    case, _ = _committed(ctx_for, staff, session)
    _, strangers = _committed(ctx_for, staff, session)
    before = world(session)
    with pytest.raises(Invalid) as err:
        case_service.record_ind_confirmation(ctx_for(staff.counsellor), case.reference, {
            "participant_id": strangers[0].id, "ind_reference": "IND-1", "confirmed_on": TODAY})
    assert "participant_id" in err.value.details
    with pytest.raises(Invalid):
        case_service.record_ind_confirmation(ctx_for(staff.counsellor), case.reference, {
            "participant_id": 10**6, "ind_reference": "IND-1", "confirmed_on": TODAY})
    session.commit()
    assert world(session) == before


def test_an_ind_confirmation_for_someone_without_a_pending_application_is_invalid(
        ctx_for, staff, session):
    data = intake(1)
    data["household"] = [dict(person(adult=False, email=None, asylum_application_pending=False),
                              relationship="child")]
    case = case_service.open_case(ctx_for(staff.counsellor), data)
    fake_sign(session, case, workflow.COMMITMENT)
    case_service.perform(ctx_for(staff.counsellor), case.reference, "confirm_commitment", {})
    child = session.execute(select(Participant).where(Participant.case_id == case.id,
                                                      Participant.is_principal == False)  # noqa: E712
                            ).scalar_one()
    with pytest.raises(Invalid):
        case_service.record_ind_confirmation(ctx_for(staff.counsellor), case.reference, {
            "participant_id": child.id, "ind_reference": "IND-1", "confirmed_on": TODAY})
    # ... and the withdrawal does not wait for one.
    fake_sign(session, case, workflow.WITHDRAWAL_DECLARATION)
    confirm_ind(ctx_for(staff.counsellor), case)
    done = case_service.perform(ctx_for(staff.counsellor), case.reference, "record_withdrawal", {})
    assert done.state == "asylum_withdrawn"


@pytest.mark.parametrize("state", ["intake", "asylum_withdrawn"])
def test_ind_confirmations_are_recorded_only_while_committed(ctx_for, staff, session, state):
    case = drive_to(ctx_for, staff, session, state, adults=1, minors=1)
    child = session.execute(select(Participant).where(Participant.case_id == case.id)
                            .order_by(Participant.id.desc()).limit(1)).scalar_one()
    with pytest.raises(Conflict) as err:
        case_service.record_ind_confirmation(ctx_for(staff.counsellor), case.reference, {
            "participant_id": child.id, "ind_reference": "IND-9", "confirmed_on": TODAY})
    assert codes(err.value) == ["wrong_state"]


def test_only_a_counsellor_records_an_ind_confirmation(ctx_for, staff, session):
    case, people = _committed(ctx_for, staff, session)
    with pytest.raises(Forbidden):
        case_service.record_ind_confirmation(ctx_for(staff.supervisor), case.reference, {
            "participant_id": people[0].id, "ind_reference": "IND-1", "confirmed_on": TODAY})


# --- the happy path and its audit trail --------------------------------------------------------------------

def test_the_whole_programme_writes_one_audit_event_per_transition(ctx_for, staff, session):
    case = drive_to(ctx_for, staff, session, "departed")
    moves = session.execute(select(AuditEvent.action, AuditEvent.from_state, AuditEvent.to_state)
                            .where(AuditEvent.case_id == case.id, AuditEvent.to_state.is_not(None))
                            .order_by(AuditEvent.seq)).all()
    assert [tuple(m) for m in moves] == [
        ("open_case", None, "intake"),
        ("confirm_commitment", "intake", "committed"),
        ("record_withdrawal", "committed", "asylum_withdrawn"),
        ("agree_departure", "asylum_withdrawn", "departure_agreed"),
        ("pay_support", "departure_agreed", "support_paid"),
        ("confirm_departure", "support_paid", "departed"),
    ]
    assert case.version == 6
    assert audit.verify(session).ok
    # A departed case no longer holds its people's V-numbers.
    assert session.execute(select(func.count()).select_from(OpenVNumber)
                           .where(OpenVNumber.case_id == case.id)).scalar_one() == 0


def test_the_payment_is_the_households_tariff_and_is_disbursed_once(ctx_for, staff, session, policy):
    case = drive_to(ctx_for, staff, session, "departure_agreed", adults=2, minors=1)
    proposed = payment_service.propose(ctx_for(staff.counsellor), case.reference, {"method": "cash"})
    tariff = policy.tariff_on(TODAY)
    assert proposed.amount_cents == 2 * tariff.adult_cents + tariff.minor_cents
    approved = payment_service.approve(ctx_for(staff.supervisor), case.reference)
    assert approved.status == "approved" and approved.approved_by == staff.supervisor.id
    key = {"idempotency_key": "disburse-once-0001"}
    paid = payment_service.disburse(ctx_for(staff.finance), case.reference, key)
    assert paid.state == "support_paid"
    events = audit_count(session)
    # A replay of the same request answers the same and writes nothing.
    again = payment_service.disburse(ctx_for(staff.finance), case.reference, key)
    assert again.state == "support_paid" and audit_count(session) == events
    # A new request cannot pay a second time.
    with pytest.raises(Conflict):
        payment_service.disburse(ctx_for(staff.finance), case.reference,
                                 {"idempotency_key": "disburse-once-0002"})
    statuses = session.execute(select(Payment.status).where(Payment.case_id == case.id)).scalars().all()
    assert statuses == ["disbursed"]


def test_a_rejected_payment_can_be_proposed_again(ctx_for, staff, session):
    case = drive_to(ctx_for, staff, session, "departure_agreed")
    payment_service.propose(ctx_for(staff.counsellor), case.reference, {"method": "cash"})
    payment_service.reject(ctx_for(staff.supervisor), case.reference, "wrong method")
    with pytest.raises(Conflict):  # a rejected payment cannot be paid
        payment_service.disburse(ctx_for(staff.finance), case.reference,
                                 {"idempotency_key": "after-reject-01"})
    again = payment_service.propose(ctx_for(staff.counsellor2), case.reference, {"method": "cash"})
    assert again.status == "proposed"


def test_an_extension_with_an_addendum_moves_the_deadline(ctx_for, staff, session):
    case = drive_to(ctx_for, staff, session, "departure_agreed")
    new = case.departure_deadline + dt.timedelta(days=20)
    version = case.version
    fake_sign(session, case, workflow.ADDENDUM, {"departure_deadline": new.isoformat(), "reason": "x"})
    done = case_service.perform(ctx_for(staff.supervisor), case.reference, "extend_deadline",
                                {"departure_deadline": new, "reason": "Flight cancelled"})
    assert done.state == "departure_agreed" and done.departure_deadline == new
    assert done.version == version + 1
    event = last_event(session, case.id)
    assert (event.action, event.from_state, event.to_state) == (
        "extend_deadline", "departure_agreed", "departure_agreed")


def test_a_case_lapses_the_day_after_its_deadline(ctx_for, staff, session):
    case = drive_to(ctx_for, staff, session, "departure_agreed")
    on_deadline = ctx_for(staff.supervisor, today=case.departure_deadline)
    with pytest.raises(Conflict) as err:
        case_service.perform(on_deadline, case.reference, "lapse", {"reason": "no show"})
    assert codes(err.value) == ["deadline_not_passed"]
    after = ctx_for(staff.supervisor, today=case.departure_deadline + dt.timedelta(days=1))
    lapsed = case_service.perform(after, case.reference, "lapse", {"reason": "no show"})
    assert lapsed.state == "lapsed" and lapsed.closing_reason == "no show"


def test_reading_a_case_is_logged_and_offers_the_allowed_actions(ctx_for, staff, session):
    case = case_service.open_case(ctx_for(staff.counsellor), intake(2))
    before = audit_count(session, case.id)
    data = case_service.read_case(ctx_for(staff.counsellor), case.reference)
    assert data["allowed_actions"] == ["leave_programme"]
    # The look is in the access log; the audit chain of changes is untouched.
    assert audit_count(session, case.id) == before
    looks = session.execute(select(AccessEvent).where(AccessEvent.case_id == case.id)).scalars().all()
    assert [(x.actor, x.view) for x in looks] == [(staff.counsellor.email, "case")]
    fake_sign(session, case, workflow.COMMITMENT)
    data = case_service.read_case(ctx_for(staff.counsellor), case.reference, log_view=False)
    assert data["allowed_actions"] == ["confirm_commitment", "leave_programme"]
    assert case_service.read_case(ctx_for(staff.supervisor), case.reference,
                                  log_view=False)["allowed_actions"] == ["reject"]
