"""Payment use cases against real SQLite and PostgreSQL: proposal rules, four eyes over
every pair of users, cancel, exactly-once disbursement, re-entry, and the finance export."""
from __future__ import annotations

import datetime as dt
import json

import pytest
from sqlalchemy import select, update

from returnprog import workflow
from returnprog.models import AccessEvent, AuditEvent, Case, Payment, User
from returnprog.policy import DEFAULT_POLICY
from returnprog.services import Conflict, Forbidden, Invalid, NotFound
from returnprog.services import payment as payment_service
from returnprog.services.signing import SIGNING_STATES

from ..conftest import drive_to, fake_sign

TODAY = dt.date.today()
NL = "NL91ABNA0417164300"
UA = "UA213223130000026007233566001"
USERS = ("counsellor", "counsellor2", "supervisor", "supervisor2", "finance", "admin",
         "other_counsellor", "other_supervisor")


def expected_cents(adults, minors):
    tariff = DEFAULT_POLICY.tariff_on(TODAY)
    return adults * tariff.adult_cents + minors * tariff.minor_cents


def transfer(iban=NL, holder="Olena Kovalenko"):
    return {"method": "transfer", "iban": iban, "account_holder": holder}


@pytest.fixture
def agreed(ctx_for, staff, session):
    """A household of two adults and a child with the departure agreed."""
    return drive_to(ctx_for, staff, session, "departure_agreed", adults=2, minors=1)


def payments_of(session, case):
    session.expire_all()
    return session.execute(select(Payment).where(Payment.case_id == case.id)
                           .order_by(Payment.id)).scalars().all()


def events(session, action):
    return session.execute(select(AuditEvent).where(AuditEvent.action == action)
                           .order_by(AuditEvent.seq)).scalars().all()


# --- proposing ------------------------------------------------------------------------------

def test_a_proposal_stores_the_tariff_amount_in_cents_with_its_breakdown(agreed, ctx_for,
                                                                          staff, session):
    p = payment_service.propose(ctx_for(staff.counsellor), agreed.reference,
                                transfer(iban="nl91 abna 0417 1643 00", holder=" Olena K "))
    assert p.status == "proposed" and p.version == 1
    assert p.amount_cents == expected_cents(2, 1) and isinstance(p.amount_cents, int)
    assert (p.adults, p.minors, p.currency) == (2, 1, "EUR")
    assert p.iban == NL and p.account_holder == "Olena K"
    breakdown = json.loads(p.breakdown)
    assert breakdown["adults"] == 2 and breakdown["minors"] == 1
    assert breakdown["amount_cents"] == p.amount_cents
    assert breakdown["adults_cents"] + breakdown["minors_cents"] == p.amount_cents
    assert "EXAMPLE" in breakdown["tariff_label"]
    [ev] = events(session, "propose_payment")
    details = json.loads(ev.details)
    assert details["payment_id"] == p.id and details["iban"] == "NL** **** 4300"
    assert NL not in ev.details  # the audit trail keeps no full bank details


def test_no_payment_before_the_departure_agreement_nor_after_it_was_paid(ctx_for, staff,
                                                                       session):
    for state in ("intake", "committed", "asylum_withdrawn", "support_paid"):
        case = drive_to(ctx_for, staff, session, state)
        before = len(payments_of(session, case))
        with pytest.raises(Conflict) as err:
            payment_service.propose(ctx_for(staff.counsellor), case.reference, {"method": "cash"})
        assert err.value.details[0]["code"] in ("wrong_state",), state
        assert len(payments_of(session, case)) == before


BAD_DETAILS = [
    (transfer(iban="NL92ABNA0417164300"), {"iban"}),                  # wrong checksum
    (transfer(iban="NL91ABNA041716430"), {"iban"}),                   # wrong length
    (transfer(iban=UA[:-1] + "2"), {"iban"}),                         # UA, wrong checksum
    (transfer(iban=UA[:-1]), {"iban"}),                               # UA, wrong length
    (transfer(holder=""), {"account_holder"}),
    (transfer(holder="   "), {"account_holder"}),
    ({"method": "transfer"}, {"iban", "account_holder"}),
    ({"method": "cash", "iban": NL}, {"iban"}),
    ({"method": "bitcoin"}, {"method"}),
]


def test_bank_details_are_checked_and_normalised(agreed, ctx_for, staff, session):
    for data, fields in BAD_DETAILS:
        with pytest.raises(Invalid) as err:
            payment_service.propose(ctx_for(staff.counsellor), agreed.reference, data)
        assert set(err.value.details) == fields, data
    assert payments_of(session, agreed) == []
    # Valid Dutch and Ukrainian accounts, typed with spaces and in lower case.
    for typed, stored in ((NL, NL), (UA, UA), ("ua21 3223 1300 0002 6007 2335 6600 1", UA),
                          ("nl91 abna 0417 1643 00", NL)):
        p = payment_service.propose(ctx_for(staff.counsellor), agreed.reference,
                                    transfer(iban=typed))
        assert p.iban == stored
        payment_service.cancel(ctx_for(staff.counsellor), agreed.reference, "next", p.id)


def test_one_live_payment_per_case_in_code_and_in_the_database(agreed, ctx_for, staff, session):
    first = payment_service.propose(ctx_for(staff.counsellor), agreed.reference, {"method": "cash"})
    with pytest.raises(Conflict) as err:
        payment_service.propose(ctx_for(staff.counsellor2), agreed.reference, {"method": "card"})
    assert err.value.details[0]["code"] == "payment_exists"
    # The database refuses a second live payment even when code is bypassed.
    session.add(Payment(case_id=agreed.id, status="approved", amount_cents=1, adults=1, minors=0,
                        tariff_effective_from=TODAY, method="cash", proposed_by=staff.counsellor.id))
    with pytest.raises(Exception) as db_err:
        session.commit()
    assert "unique" in str(db_err.value).lower()
    session.rollback()
    assert [p.id for p in payments_of(session, agreed)] == [first.id]


# --- four eyes ---------------------------------------------------------------------------------

# Expected outcome per user: who may propose (counsellors of the case's team), who may
# decide (supervisors of the team who did not propose). Team Zuid cannot even see the case.
PROPOSE = {"counsellor": None, "counsellor2": None, "supervisor": Forbidden,
           "supervisor2": Forbidden, "finance": Forbidden, "admin": Forbidden,
           "other_counsellor": NotFound, "other_supervisor": Forbidden}
DECIDE = {"counsellor": Forbidden, "counsellor2": Forbidden, "supervisor": None,
          "supervisor2": None, "finance": Forbidden, "admin": Forbidden,
          "other_counsellor": Forbidden, "other_supervisor": NotFound}


def test_four_eyes_over_every_pair_of_users(ctx_for, staff, session):
    """Every user tries to propose; for each proposal every user tries to reject and to
    approve it. Only a supervisor of the team who is not the proposer decides."""
    who = lambda name: ctx_for(getattr(staff, name))  # noqa: E731
    for proposer in USERS:
        case = drive_to(ctx_for, staff, session, "departure_agreed", adults=1, minors=0)
        ref = case.reference
        if PROPOSE[proposer] is not None:
            with pytest.raises(PROPOSE[proposer]):
                payment_service.propose(who(proposer), ref, {"method": "cash"})
            assert payments_of(session, case) == []
            continue
        for decider in USERS:
            for decision in ("reject", "approve"):
                p = payment_service.propose(who(proposer), ref, {"method": "cash"})
                expected = DECIDE[decider]
                if decider == proposer:
                    expected = Forbidden  # the proposer never decides
                if expected is None:
                    if decision == "approve":
                        done = payment_service.approve(who(decider), ref, p.id)
                    else:
                        done = payment_service.reject(who(decider), ref, "documents unclear", p.id)
                    assert done.status == ("approved" if decision == "approve" else "rejected")
                    assert done.approved_by == getattr(staff, decider).id != done.proposed_by
                else:
                    with pytest.raises(expected):
                        if decision == "approve":
                            payment_service.approve(who(decider), ref, p.id)
                        else:
                            payment_service.reject(who(decider), ref, "no", p.id)
                    [still] = [x for x in payments_of(session, case) if x.id == p.id]
                    assert (still.status, still.version, still.approved_by) == ("proposed", 1, None)
                live = [x for x in payments_of(session, case) if x.status in ("proposed", "approved")]
                if live:
                    payment_service.cancel(who("counsellor"), ref, "next pair", live[0].id)
        assert {x.status for x in payments_of(session, case)} <= {"cancelled", "rejected"}
    approvals = events(session, "approve_payment") + events(session, "reject_payment")
    assert len(approvals) == 2 * 2 * 2  # 2 proposers x 2 supervisors x (approve, reject)
    for e in approvals:
        assert e.actor_id != json.loads(e.details)["proposed_by"]
        assert e.actor_id in (staff.supervisor.id, staff.supervisor2.id)


def test_self_approval_is_refused_whatever_role_the_proposer_has_now(ctx_for, staff, session):
    """Roles change (a counsellor is promoted, moves to finance): for every user, the
    proposer still never decides on or pays out their own proposal."""
    noord = staff.counsellor.team_id
    originals = {name: (getattr(staff, name).role, getattr(staff, name).team_id) for name in USERS}

    def become(me, role):
        session.execute(update(User).where(User.id == me.id).values(role=role, team_id=noord))
        session.commit()
        session.refresh(me)

    for user in USERS:
        me = getattr(staff, user)
        case = drive_to(ctx_for, staff, session, "departure_agreed", adults=1, minors=0)
        become(me, "counsellor")
        p = payment_service.propose(ctx_for(me), case.reference, {"method": "cash"})
        become(me, "supervisor")
        for attempt in (lambda: payment_service.approve(ctx_for(me), case.reference, p.id),
                        lambda: payment_service.approve(ctx_for(me), case.reference),
                        lambda: payment_service.reject(ctx_for(me), case.reference, "mine", p.id)):
            with pytest.raises(Forbidden) as err:
                attempt()
            assert err.value.details[0]["code"] == "payment_four_eyes", user
        [still] = payments_of(session, case)
        assert (still.status, still.approved_by) == ("proposed", None)
        other = staff.supervisor2 if user == "supervisor" else staff.supervisor
        assert payment_service.approve(ctx_for(other), case.reference, p.id).status == "approved"
        become(me, "finance")  # the former proposer now pays out: still not their own
        with pytest.raises(Forbidden):
            payment_service.disburse(ctx_for(me), case.reference,
                                     {"idempotency_key": f"self-pay-{user}"})
        session.expire_all()
        assert session.get(Case, case.id).state == "departure_agreed"
        assert payments_of(session, case)[0].status == "approved"
        role, team = originals[user]
        session.execute(update(User).where(User.id == me.id).values(role=role, team_id=team))
        session.commit()
        session.refresh(me)


def test_an_approval_names_the_proposal_that_was_reviewed(agreed, ctx_for, staff, session):
    ref = agreed.reference
    seen = payment_service.propose(ctx_for(staff.counsellor), ref, transfer())
    payment_service.cancel(ctx_for(staff.counsellor), ref, "wrong account", seen.id)
    swapped = payment_service.propose(ctx_for(staff.counsellor), ref,
                                      transfer(iban=UA, holder="Someone Else"))
    with pytest.raises(Conflict) as err:
        payment_service.approve(ctx_for(staff.supervisor), ref, seen.id)
    assert err.value.details[0]["code"] == "payment_replaced"
    with pytest.raises(Conflict):
        payment_service.approve(ctx_for(staff.supervisor), ref, swapped.id, expected_version=7)
    assert payment_service.approve(ctx_for(staff.supervisor), ref, swapped.id, 1).version == 2


def test_a_rejection_needs_a_reason_and_frees_the_case_for_a_new_proposal(agreed, ctx_for, staff):
    ref = agreed.reference
    p = payment_service.propose(ctx_for(staff.counsellor), ref, {"method": "cash"})
    with pytest.raises(Invalid):
        payment_service.reject(ctx_for(staff.supervisor), ref, "  ", p.id)
    rejected = payment_service.reject(ctx_for(staff.supervisor), ref, "household changed", p.id)
    assert (rejected.status, rejected.decision_reason) == ("rejected", "household changed")
    again = payment_service.propose(ctx_for(staff.counsellor), ref, {"method": "card"})
    assert again.id != p.id and again.status == "proposed"


# --- cancel -----------------------------------------------------------------------------------------

def test_cancel_with_a_reason_before_disbursement_only(agreed, ctx_for, staff, session):
    ref = agreed.reference
    p = payment_service.propose(ctx_for(staff.counsellor), ref, {"method": "cash"})
    with pytest.raises(Invalid):
        payment_service.cancel(ctx_for(staff.counsellor), ref, "")
    with pytest.raises(Forbidden):
        payment_service.cancel(ctx_for(staff.finance), ref, "finance may not")
    payment_service.approve(ctx_for(staff.supervisor), ref, p.id)
    cancelled = payment_service.cancel(ctx_for(staff.supervisor2), ref, "travel plan changed")
    assert cancelled.status == "cancelled"
    p2 = payment_service.propose(ctx_for(staff.counsellor), ref, {"method": "cash"})
    payment_service.approve(ctx_for(staff.supervisor), ref, p2.id)
    payment_service.disburse(ctx_for(staff.finance), ref, {"idempotency_key": "pay-cancel-01"})
    with pytest.raises(Conflict) as err:
        payment_service.cancel(ctx_for(staff.counsellor), ref, "too late")
    assert err.value.details[0]["code"] == "payment_already_disbursed"
    assert [x.status for x in payments_of(session, agreed)] == ["cancelled", "disbursed"]
    assert len(events(session, "cancel_payment")) == 1


# --- disbursement ------------------------------------------------------------------------------------

def approved(ctx_for, staff, case, data=None):
    p = payment_service.propose(ctx_for(staff.counsellor), case.reference, data or {"method": "cash"})
    return payment_service.approve(ctx_for(staff.supervisor), case.reference, p.id)


def test_disbursement_moves_the_case_to_support_paid_once(agreed, ctx_for, staff, session):
    p = approved(ctx_for, staff, agreed)
    ref = agreed.reference
    case = payment_service.disburse(ctx_for(staff.finance), ref, {"idempotency_key": "pay-once-001"})
    assert case.state == "support_paid"
    [paid] = payments_of(session, agreed)
    assert (paid.id, paid.status, paid.disbursed_by) == (p.id, "disbursed", staff.finance.id)
    # Replay: the first result, not a second payment or a second audit event.
    again = payment_service.disburse(ctx_for(staff.finance), ref, {"idempotency_key": "pay-once-001"})
    assert (again.state, again.version) == (case.state, case.version)
    # A new key on a paid case is a different request: refused.
    with pytest.raises(Conflict):
        payment_service.disburse(ctx_for(staff.finance), ref, {"idempotency_key": "pay-once-002"})
    assert len(events(session, "pay_support")) == 1
    assert [x.status for x in payments_of(session, agreed)] == ["disbursed"]


def test_the_same_key_with_a_different_request_is_refused(ctx_for, staff, session):
    a = drive_to(ctx_for, staff, session, "departure_agreed")
    b = drive_to(ctx_for, staff, session, "departure_agreed")
    approved(ctx_for, staff, a)
    approved(ctx_for, staff, b)
    payment_service.disburse(ctx_for(staff.finance), a.reference, {"idempotency_key": "shared-key-1"})
    with pytest.raises(Conflict) as err:
        payment_service.disburse(ctx_for(staff.finance), b.reference,
                                 {"idempotency_key": "shared-key-1"})
    assert err.value.details[0]["code"] == "idempotency_key_reused"
    with pytest.raises(Conflict) as err:  # same key and case, but a different body
        payment_service.disburse(ctx_for(staff.finance), a.reference,
                                 {"idempotency_key": "shared-key-1", "note": "other"})
    assert err.value.details[0]["code"] == "idempotency_key_reused"
    session.expire_all()
    assert session.get(Case, b.id).state == "departure_agreed"
    # b can still be paid with its own key.
    assert payment_service.disburse(ctx_for(staff.finance), b.reference,
                                    {"idempotency_key": "own-key-b"}).state == "support_paid"


def test_only_finance_pays_out_and_only_an_approved_payment(agreed, ctx_for, staff, session):
    ref = agreed.reference
    with pytest.raises(Conflict) as err:  # no payment yet: the reason, not "not found"
        payment_service.disburse(ctx_for(staff.finance), ref, {"idempotency_key": "too-early-1"})
    assert err.value.details[0]["code"] == "payment_not_approved"
    p = payment_service.propose(ctx_for(staff.counsellor), ref, {"method": "cash"})
    with pytest.raises(Conflict) as err:
        payment_service.disburse(ctx_for(staff.finance), ref, {"idempotency_key": "too-early-2"})
    assert err.value.details[0]["code"] == "payment_not_approved"
    payment_service.approve(ctx_for(staff.supervisor), ref, p.id)
    for name in ("counsellor", "supervisor", "admin"):
        with pytest.raises((Forbidden, NotFound)):
            payment_service.disburse(ctx_for(getattr(staff, name)), ref,
                                     {"idempotency_key": f"not-finance-{name}"})
    # A failed attempt leaves no key behind: the same key works once allowed.
    assert payment_service.disburse(ctx_for(staff.finance), ref,
                                    {"idempotency_key": "too-early-2"}).state == "support_paid"


def test_a_cash_disbursement_asks_for_a_signed_receipt(agreed, ctx_for, staff, session):
    approved(ctx_for, staff, agreed)
    payment_service.disburse(ctx_for(staff.finance), agreed.reference,
                             {"idempotency_key": "cash-receipt-1"})
    [ev] = events(session, "pay_support")
    assert json.loads(ev.details)["receipt_required"] is True
    # The receipt is signed through the documents flow while the case is support_paid.
    assert workflow.State.SUPPORT_PAID in SIGNING_STATES[workflow.PAYMENT_RECEIPT]
    data = payment_service.read_payment(ctx_for(staff.counsellor), agreed.reference)
    assert (data["receipt_required"], data["receipt_signed"]) == (True, False)
    fake_sign(session, agreed, workflow.PAYMENT_RECEIPT)  # documents are built elsewhere
    data = payment_service.read_payment(ctx_for(staff.counsellor), agreed.reference)
    assert data["receipt_signed"] is True
    # Both looks at the bank details are in the access log (one entry per quarter of an
    # hour), not in the audit chain.
    assert events(session, "view_payment") == []
    looks = session.execute(select(AccessEvent).where(AccessEvent.view == "payment")).scalars().all()
    assert [(x.actor, x.case_id) for x in looks] == [(staff.counsellor.email, agreed.id)]


def test_the_amount_must_still_match_the_tariff_when_paying(agreed, ctx_for, staff, session):
    p = approved(ctx_for, staff, agreed)
    session.execute(update(Payment).where(Payment.id == p.id).values(amount_cents=1))
    session.commit()
    with pytest.raises(Conflict) as err:
        payment_service.disburse(ctx_for(staff.finance), agreed.reference,
                                 {"idempotency_key": "tampered-1"})
    assert "payment_amount_mismatch" in [d["code"] for d in err.value.details]


# --- after departure -----------------------------------------------------------------------------------

def test_a_reentry_records_the_reclaim_once(ctx_for, staff, session):
    case = drive_to(ctx_for, staff, session, "departed", adults=1, minors=0)
    ref = case.reference
    paid = expected_cents(1, 0)
    with pytest.raises(Invalid) as err:
        payment_service.record_reentry(ctx_for(staff.counsellor), ref,
                                       {"reentry_on": TODAY, "reclaim_cents": paid + 1})
    assert set(err.value.details) == {"reclaim_cents"}
    with pytest.raises(Invalid):
        payment_service.record_reentry(ctx_for(staff.counsellor), ref,
                                       {"reentry_on": TODAY, "reclaim_cents": 10.5})
    with pytest.raises(Forbidden):
        payment_service.record_reentry(ctx_for(staff.finance), ref,
                                       {"reentry_on": TODAY, "reclaim_cents": paid})
    p = payment_service.record_reentry(ctx_for(staff.counsellor), ref,
                                       {"reentry_on": TODAY, "reclaim_cents": paid, "note": "KMar"})
    assert (p.reentry_on, p.reclaim_cents, p.status) == (TODAY, paid, "disbursed")
    with pytest.raises(Conflict) as err:
        payment_service.record_reentry(ctx_for(staff.supervisor), ref,
                                       {"reentry_on": TODAY, "reclaim_cents": 0})
    assert err.value.details[0]["code"] == "reentry_exists"
    [ev] = events(session, "record_reentry")
    assert json.loads(ev.details)["reclaim_cents"] == paid


def test_no_reentry_before_departure(ctx_for, staff, session):
    case = drive_to(ctx_for, staff, session, "support_paid")
    with pytest.raises(Conflict) as err:
        payment_service.record_reentry(ctx_for(staff.counsellor), case.reference,
                                       {"reentry_on": TODAY, "reclaim_cents": 0})
    assert err.value.details[0]["code"] == "wrong_state"


# --- finance export ---------------------------------------------------------------------------------------

def paid_transfer(ctx_for, staff, session, iban=NL, holder="Olena Kovalenko", disburse=True):
    case = drive_to(ctx_for, staff, session, "departure_agreed", adults=1, minors=1)
    approved(ctx_for, staff, case, transfer(iban=iban, holder=holder))
    if disburse:
        payment_service.disburse(ctx_for(staff.finance), case.reference,
                                 {"idempotency_key": f"pay-{case.reference}"})
    return case


def test_payments_are_listed_by_visibility_with_masked_ibans(ctx_for, staff, session):
    paid_transfer(ctx_for, staff, session)
    agreed = drive_to(ctx_for, staff, session, "departure_agreed")
    payment_service.propose(ctx_for(staff.counsellor), agreed.reference, {"method": "cash"})
    everything = payment_service.list_payments(ctx_for(staff.finance), {})
    assert everything["total"] == 2
    assert {i["iban"] for i in everything["items"]} == {"NL** **** 4300", None}
    only = payment_service.list_payments(ctx_for(staff.finance), {"status": "proposed"})
    assert [i["case_reference"] for i in only["items"]] == [agreed.reference]
    assert payment_service.list_payments(ctx_for(staff.supervisor), {"exported": False})["total"] == 2
    assert payment_service.list_payments(ctx_for(staff.other_counsellor), {})["total"] == 0
    assert payment_service.list_payments(ctx_for(staff.admin), {})["total"] == 0


