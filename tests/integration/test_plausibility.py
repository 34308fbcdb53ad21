"""The plausibility rules through the real services on a real database (issue 13 item 6):
each refusal with its code, and nothing changed by a refused request."""
from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import func, select

from returnprog import workflow
from returnprog.models import AuditEvent, Case, Document, IndConfirmation, Participant
from returnprog.services import Conflict, Invalid
from returnprog.services import cases as case_service
from returnprog.services import payment as payment_service

from ..conftest import drive_to, fake_sign, intake, person

TODAY = dt.date.today()


def count(session, model) -> int:
    session.expire_all()
    return session.execute(select(func.count()).select_from(model)).scalar_one()


def field_codes(exc: Invalid) -> dict:
    """{(index, field): [codes]} of a household refusal."""
    return {(index, name): [m.code for m in messages]
            for index, fields in exc.details["household"].items()
            for name, messages in fields.items()}


def test_opening_a_case_with_an_eleven_year_old_partner_is_refused(ctx_for, staff, session):
    data = intake(1, 0)
    data["household"] = [dict(person(date_of_birth=TODAY.replace(year=TODAY.year - 11)),
                              relationship="partner"),
                         dict(person(date_of_birth=data["principal"]["date_of_birth"]),
                              relationship="child")]
    events = count(session, AuditEvent)
    with pytest.raises(Invalid) as caught:
        case_service.open_case(ctx_for(staff.counsellor), data)
    assert caught.value.status == 422
    assert field_codes(caught.value) == {("0", "relationship"): ["partner_not_adult"],
                                         ("1", "relationship"): ["child_not_younger"]}
    assert count(session, Case) == 0 and count(session, AuditEvent) == events


def test_editing_an_intake_into_an_implausible_household_changes_nothing(ctx_for, staff,
                                                                         session):
    case = case_service.open_case(ctx_for(staff.counsellor), intake(1, 1))
    data = intake(1, 0)
    data["household"] = [dict(person(date_of_birth=dt.date(2001, 1, 1)), relationship="parent")]
    with pytest.raises(Invalid) as caught:
        case_service.update_intake(ctx_for(staff.counsellor), case.reference, data)
    assert field_codes(caught.value) == {("0", "relationship"): ["parent_not_older"]}
    session.expire_all()
    assert session.get(Case, case.id).version == 1
    assert count(session, Participant) == 2
    # A plausible parent is fine.
    data["household"][0]["date_of_birth"] = dt.date(1950, 1, 1)
    assert case_service.update_intake(ctx_for(staff.counsellor), case.reference,
                                      data).version == 2


def _committed(ctx_for, staff, session, **kw):
    return drive_to(ctx_for, staff, session, "committed", **kw)


def test_an_ind_confirmation_dated_before_the_declaration_is_refused(ctx_for, staff, session):
    case = _committed(ctx_for, staff, session, adults=1, minors=1)
    fake_sign(session, case, workflow.WITHDRAWAL_DECLARATION)  # signed today
    people = session.execute(select(Participant).where(Participant.case_id == case.id)
                             .order_by(Participant.id)).scalars().all()
    for p in people:  # the adult's own declaration; the minor's is the adult's
        with pytest.raises(Invalid) as caught:
            case_service.record_ind_confirmation(ctx_for(staff.counsellor), case.reference, {
                "participant_id": p.id, "ind_reference": "IND-1",
                "confirmed_on": TODAY - dt.timedelta(days=1)})
        assert [m.code for m in caught.value.details["confirmed_on"]] == [
            "ind_before_declaration:date"]
    with pytest.raises(Invalid) as caught:
        case_service.record_ind_confirmation(ctx_for(staff.counsellor), case.reference, {
            "participant_id": people[0].id, "ind_reference": "IND-1",
            "confirmed_on": TODAY + dt.timedelta(days=1)})
    assert [m.code for m in caught.value.details["confirmed_on"]] == ["ind_date_future"]
    assert count(session, IndConfirmation) == 0


def test_a_confirmation_recorded_before_a_later_declaration_blocks_the_withdrawal(
        ctx_for, staff, session):
    case = _committed(ctx_for, staff, session, adults=1, minors=0)
    pid = session.execute(select(Participant.id).where(Participant.case_id == case.id)
                          ).scalar_one()
    # Nothing signed yet: the date cannot be judged, so it is recorded ...
    case_service.record_ind_confirmation(ctx_for(staff.counsellor), case.reference, {
        "participant_id": pid, "ind_reference": "IND-1",
        "confirmed_on": TODAY - dt.timedelta(days=3)})
    fake_sign(session, case, workflow.WITHDRAWAL_DECLARATION)
    # ... and the withdrawal then says why it cannot be recorded.
    with pytest.raises(Conflict) as caught:
        case_service.perform(ctx_for(staff.counsellor), case.reference, "record_withdrawal", {})
    assert [d["code"] for d in caught.value.details] == ["ind_before_declaration"]


def test_the_issues_departure_dated_2020_on_a_case_paid_today_is_refused(ctx_for, staff,
                                                                          session):
    case = drive_to(ctx_for, staff, session, "support_paid")
    fake_sign(session, case, workflow.PAYMENT_RECEIPT)
    with pytest.raises(Conflict) as caught:
        case_service.perform(ctx_for(staff.counsellor), case.reference, "confirm_departure",
                             {"departed_on": dt.date(2020, 1, 1), "evidence": "boarding"})
    assert [(d["code"], d.get("field")) for d in caught.value.details] == [
        ("departure_before_agreement", "departed_on")]
    session.expire_all()
    assert session.get(Case, case.id).state == "support_paid"


def test_a_cash_case_is_not_departed_while_its_receipt_is_unsigned(ctx_for, staff, session):
    case = drive_to(ctx_for, staff, session, "support_paid")  # paid in cash
    payload = {"departed_on": TODAY, "evidence": "boarding"}
    with pytest.raises(Conflict) as caught:
        case_service.perform(ctx_for(staff.counsellor), case.reference, "confirm_departure",
                             payload)
    assert [d["code"] for d in caught.value.details] == ["payment_receipt_unsigned"]
    fake_sign(session, case, workflow.PAYMENT_RECEIPT, adults_only=True)
    assert case_service.perform(ctx_for(staff.counsellor), case.reference, "confirm_departure",
                                payload).state == "departed"


def test_a_bank_transfer_needs_no_receipt(ctx_for, staff, session):
    case = drive_to(ctx_for, staff, session, "departure_agreed")
    payment_service.propose(ctx_for(staff.counsellor), case.reference, {
        "method": "transfer", "iban": "NL91ABNA0417164300", "account_holder": "O. Kovalenko"})
    payment_service.approve(ctx_for(staff.supervisor), case.reference)
    payment_service.disburse(ctx_for(staff.finance), case.reference, {"idempotency_key": "k-0001"})
    assert count(session, Document) > 0
    assert case_service.perform(ctx_for(staff.counsellor), case.reference, "confirm_departure",
                                {"departed_on": TODAY, "evidence": "boarding"}).state == "departed"
