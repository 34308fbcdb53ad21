"""The plausibility rules of the core (issue 13 item 6), on the pure guards: relationships
against age, the IND's date against the declaration, the departure date against the
agreement, and the cash receipt before the departure is confirmed."""
from __future__ import annotations

import datetime as dt

import pytest

from returnprog import workflow
from returnprog.policy import DEFAULT_POLICY, Policy
from returnprog.workflow import CaseFacts, ParticipantFacts, PaymentFacts, State

TODAY = dt.date(2026, 6, 15)
PRINCIPAL = dt.date(1985, 5, 1)


def codes(refusals) -> list[str]:
    return [r.code for r in refusals]


def household(*members, principal=PRINCIPAL, policy=DEFAULT_POLICY):
    return workflow.household_problems(principal, list(members), TODAY, policy)


# --- relationships against age ----------------------------------------------------------------

def test_an_eleven_year_old_partner_or_spouse_is_refused_on_the_relationship_field():
    eleven = dt.date(2015, 3, 1)
    for relationship in ("partner", "spouse"):
        refusals = household(("child", dt.date(2016, 1, 1)), (relationship, eleven))
        assert codes(refusals) == ["partner_not_adult"]
        assert refusals[0].field == "household.1.relationship"
        assert refusals[0].params == {"age": 18}
        assert "18 or older" in refusals[0].message


def test_adulthood_follows_the_policy_and_the_birthday():
    eighteen_today = dt.date(2008, 6, 15)
    eighteen_tomorrow = dt.date(2008, 6, 16)
    assert household(("partner", eighteen_today)) == []
    assert codes(household(("partner", eighteen_tomorrow))) == ["partner_not_adult"]
    # An operator who sets another age of majority gets it here too.
    assert codes(household(("partner", eighteen_today),
                           policy=Policy(adult_age=21))) == ["partner_not_adult"]


def test_a_child_or_grandchild_must_be_younger_than_the_principal_no_gap_needed():
    assert household(("child", PRINCIPAL + dt.timedelta(days=1))) == []
    for relationship in ("child", "grandchild"):
        for born in (PRINCIPAL, dt.date(1960, 1, 1)):
            refusals = household(("sibling", dt.date(1990, 1, 1)), (relationship, born))
            assert codes(refusals) == ["child_not_younger"]
            assert refusals[0].field == "household.1.relationship"
            assert refusals[0].params == {"date": PRINCIPAL}


def test_a_parent_or_grandparent_must_be_older_than_the_principal():
    assert household(("parent", PRINCIPAL - dt.timedelta(days=1))) == []
    for relationship in ("parent", "grandparent"):
        refusals = household((relationship, dt.date(2000, 1, 1)))
        assert codes(refusals) == ["parent_not_older"]
        assert refusals[0].field == "household.0.relationship"


def test_siblings_and_others_may_be_any_age_and_every_problem_is_named():
    assert household(("sibling", dt.date(2020, 1, 1)), ("other", dt.date(1930, 1, 1))) == []
    refusals = household(("spouse", dt.date(2016, 1, 1)), ("child", dt.date(1950, 1, 1)),
                         ("parent", dt.date(2010, 1, 1)))
    assert [(r.code, r.field) for r in refusals] == [
        ("partner_not_adult", "household.0.relationship"),
        ("child_not_younger", "household.1.relationship"),
        ("parent_not_older", "household.2.relationship")]


# --- the IND's date ---------------------------------------------------------------------------

def adult(pid, **kw):
    return ParticipantFacts(id=pid, name=f"Adult {pid}", is_adult=True, **kw)


def minor(pid, **kw):
    return ParticipantFacts(id=pid, name=f"Minor {pid}", is_adult=False, **kw)


def signed(**days):
    return {"withdrawal_declaration": days["declaration"]} if "declaration" in days else {}


def test_an_ind_date_before_the_declaration_or_in_the_future_is_refused():
    declared = dt.date(2026, 6, 10)
    assert workflow.ind_date_problems(declared, declared, TODAY) == []
    assert workflow.ind_date_problems(TODAY, declared, TODAY) == []
    before = workflow.ind_date_problems(dt.date(2026, 6, 9), declared, TODAY)
    assert codes(before) == ["ind_before_declaration"]
    assert before[0].field == "confirmed_on"
    assert "2026-06-09" in before[0].message and "2026-06-10" in before[0].message
    future = workflow.ind_date_problems(TODAY + dt.timedelta(days=1), declared, TODAY)
    assert codes(future) == ["ind_date_future"]
    # No declaration signed yet: the withdrawal's guard judges it once there is one.
    assert workflow.ind_date_problems(dt.date(2020, 1, 1), None, TODAY) == []


def test_a_minors_declaration_is_the_first_an_adult_signed():
    a = adult(1, first_signed_on=signed(declaration=dt.date(2026, 6, 12)))
    b = adult(2, first_signed_on=signed(declaration=dt.date(2026, 6, 11)))
    child = minor(3)
    facts = CaseFacts(state=State.COMMITTED, today=TODAY, participants=(a, b, child))
    assert workflow.declaration_signed_on(facts, child) == dt.date(2026, 6, 11)
    assert workflow.declaration_signed_on(facts, a) == dt.date(2026, 6, 12)
    nobody = CaseFacts(state=State.COMMITTED, today=TODAY, participants=(adult(1), child))
    assert workflow.declaration_signed_on(nobody, child) is None


def test_a_minor_added_by_a_correction_is_covered_by_the_declarations_signed_since():
    first, again = dt.date(2026, 6, 1), dt.date(2026, 6, 14)
    a = adult(1, first_signed_on=signed(declaration=first),
              declaration_days=frozenset({first, again}))
    joined = minor(2, joined_on=dt.date(2026, 6, 10))
    there = minor(3)
    facts = CaseFacts(state=State.COMMITTED, today=TODAY, participants=(a, joined, there))
    assert workflow.declaration_signed_on(facts, joined) == again
    assert workflow.declaration_signed_on(facts, there) == first
    # Joined, and nobody has signed a declaration since: nothing to judge an IND date by.
    alone = CaseFacts(state=State.COMMITTED, today=TODAY, participants=(
        adult(1, first_signed_on=signed(declaration=first), declaration_days=frozenset({first})),
        joined))
    assert workflow.declaration_signed_on(alone, joined) is None


def _committed(ind_on):
    declared = dt.date(2026, 6, 12)
    people = (adult(1, signed=frozenset({workflow.WITHDRAWAL_DECLARATION}),
                    first_signed_on=signed(declaration=declared), ind_confirmed=True,
                    ind_confirmed_on=ind_on),)
    return CaseFacts(state=State.COMMITTED, today=TODAY, participants=people)


def test_record_withdrawal_is_refused_while_a_confirmation_predates_its_declaration():
    ok = workflow.check("record_withdrawal", _committed(dt.date(2026, 6, 12)), "counsellor", {},
                        DEFAULT_POLICY)
    assert ok == []
    refused = workflow.check("record_withdrawal", _committed(dt.date(2026, 6, 1)), "counsellor",
                             {}, DEFAULT_POLICY)
    assert codes(refused) == ["ind_before_declaration"]
    assert "Adult 1" in refused[0].message
    assert "record_withdrawal" not in workflow.allowed_actions(
        _committed(dt.date(2026, 6, 1)), "counsellor", DEFAULT_POLICY)


# --- departure date and cash receipt ----------------------------------------------------------

def _paid(method="transfer", receipt=False, agreed=(dt.date(2026, 6, 1), dt.date(2026, 6, 3))):
    people = tuple(adult(i + 1, first_signed_on={workflow.DEPARTURE_AGREEMENT: day})
                   for i, day in enumerate(agreed))
    payment = PaymentFacts("disbursed", 1, 2, 150_000, 150_000, method=method)
    return CaseFacts(state=State.SUPPORT_PAID, today=TODAY, participants=people,
                     payment=payment, receipt_signed=receipt)


def depart(facts, on):
    return workflow.check("confirm_departure", facts, "counsellor",
                          {"departed_on": on, "evidence": "boarding"}, DEFAULT_POLICY)


def test_a_departure_before_the_agreement_was_signed_is_refused():
    facts = _paid()
    # The agreement was complete when the last adult signed it (3 June).
    assert workflow.agreement_signed_on(facts) == dt.date(2026, 6, 3)
    assert depart(facts, dt.date(2026, 6, 3)) == []
    assert depart(facts, TODAY) == []
    for early in (dt.date(2020, 1, 1), dt.date(2026, 6, 2)):
        refused = depart(facts, early)
        assert codes(refused) == ["departure_before_agreement"]
        assert refused[0].field == "departed_on"
        assert refused[0].params == {"date": dt.date(2026, 6, 3)}
    assert codes(depart(facts, TODAY + dt.timedelta(days=1))) == ["departure_date_future"]


def test_a_cash_payment_needs_its_signed_receipt_before_departure():
    unsigned = _paid(method="cash")
    assert codes(depart(unsigned, TODAY)) == ["payment_receipt_unsigned"]
    assert "confirm_departure" not in workflow.allowed_actions(unsigned, "counsellor",
                                                               DEFAULT_POLICY)
    assert depart(_paid(method="cash", receipt=True), TODAY) == []
    assert depart(_paid(method="transfer"), TODAY) == []
    assert depart(_paid(method="card"), TODAY) == []


@pytest.mark.parametrize("code", ["partner_not_adult", "child_not_younger", "parent_not_older",
                                  "ind_before_declaration", "ind_before_declaration:date",
                                  "ind_date_future", "departure_before_agreement",
                                  "payment_receipt_unsigned"])
def test_each_new_refusal_has_dutch_words(code):
    from pathlib import Path

    from babel.messages.pofile import read_po

    from returnprog.messages import MESSAGES

    po = Path(workflow.__file__).parent / "translations/nl/LC_MESSAGES/messages.po"
    with po.open("rb") as f:
        catalogue = read_po(f)
    assert catalogue[MESSAGES[code]].string
