"""The work-queue rules (returnprog.queues) on hand-made facts: pure, no database."""
from __future__ import annotations

import datetime as dt

from returnprog import queues as rules
from returnprog import workflow
from returnprog.policy import DEFAULT_POLICY
from returnprog.services.lookups import display_name
from returnprog.workflow import CaseFacts, ParticipantFacts, PaymentFacts, State

TODAY = dt.date(2026, 6, 1)
NOW = dt.datetime(2026, 6, 1, 12, tzinfo=dt.timezone.utc)


def _adult(pid, *signed, **kw):
    return ParticipantFacts(id=pid, name=f"P{pid}", is_adult=True, signed=frozenset(signed), **kw)


def _facts(state, *people, **kw):
    kw.setdefault("destination_oblast", "UA-30")
    kw.setdefault("destination_place", "Kyiv")
    return CaseFacts(state=state, today=TODAY, participants=people, **kw)


def _entries(facts, links=(), **kw):
    return [(e.queue, e.step) for e in rules.counsellor_entries(facts, links, NOW, DEFAULT_POLICY, **kw)]


def test_the_main_line_is_read_off_the_workflow_table():
    assert rules.MAIN_LINE == {
        State.INTAKE: "confirm_commitment", State.COMMITTED: "record_withdrawal",
        State.ASYLUM_WITHDRAWN: "agree_departure", State.DEPARTURE_AGREED: "pay_support",
        State.SUPPORT_PAID: "confirm_departure"}


def test_signing_links_decide_between_me_and_the_participant():
    facts = _facts(State.INTAKE, _adult(1), _adult(2))
    assert _entries(facts) == [("mine", "sign")]
    one = rules.LinkFacts(1, workflow.COMMITMENT, NOW + dt.timedelta(days=5))
    # One adult has a link, the other none: waiting on both.
    assert _entries(facts, [one]) == [("participant", "sign"), ("mine", "sign")]
    two = rules.LinkFacts(2, workflow.COMMITMENT, NOW + dt.timedelta(days=5))
    assert _entries(facts, [one, two]) == [("participant", "sign")]


def test_expiring_soon_and_expired_flags():
    facts = _facts(State.INTAKE, _adult(1))

    def entry(expires_at):
        return rules.counsellor_entries(facts, [rules.LinkFacts(1, workflow.COMMITMENT, expires_at)],
                                        NOW, DEFAULT_POLICY)
    later = entry(NOW + rules.EXPIRES_SOON + dt.timedelta(minutes=1))
    assert [(e.queue, e.expiring_soon, e.expired) for e in later] == [("participant", False, False)]
    soon = entry(NOW + rules.EXPIRES_SOON)
    assert [(e.queue, e.expiring_soon, e.expired) for e in soon] == [("participant", True, False)]
    gone = entry(NOW)
    assert [(e.queue, e.expiring_soon, e.expired) for e in gone] == [
        ("participant", False, True), ("mine", False, False)]
    # SQLite gives the expiry back without its zone (stored in UTC).
    naive = entry((NOW + dt.timedelta(hours=1)).replace(tzinfo=None))
    assert naive[0].expiring_soon and not naive[0].expired


def test_a_link_for_a_document_already_signed_is_not_waiting():
    facts = _facts(State.INTAKE, _adult(1, workflow.COMMITMENT))
    link = rules.LinkFacts(1, workflow.COMMITMENT, NOW + dt.timedelta(days=1))
    assert _entries(facts, [link]) == [("mine", "confirm_commitment")]


def test_withdrawal_waits_on_the_ind_once_the_declarations_are_signed():
    signed = dt.datetime(2026, 5, 20, tzinfo=dt.timezone.utc)
    facts = _facts(State.COMMITTED, _adult(1, workflow.WITHDRAWAL_DECLARATION))
    out = rules.counsellor_entries(facts, (), NOW, DEFAULT_POLICY,
                                   {workflow.WITHDRAWAL_DECLARATION: signed})
    assert [(e.queue, e.step, e.since) for e in out] == [("ind", "record_ind", signed)]
    assert _entries(_facts(State.COMMITTED, _adult(1))) == [("mine", "sign")]
    confirmed = _facts(State.COMMITTED, _adult(1, workflow.WITHDRAWAL_DECLARATION, ind_confirmed=True))
    assert _entries(confirmed) == [("mine", "record_withdrawal")]


def test_intake_problems_come_before_signatures():
    facts = _facts(State.INTAKE, _adult(1), destination_place=None)
    out = rules.counsellor_entries(facts, (), NOW, DEFAULT_POLICY)
    assert [(e.queue, e.step) for e in out] == [("mine", "complete_intake")]
    assert [r.code for r in out[0].reasons] == ["intake_place"]


def test_payment_steps_and_closed_cases():
    agreed = _facts(State.DEPARTURE_AGREED, _adult(1), departure_deadline=TODAY + dt.timedelta(days=20))
    assert _entries(agreed) == [("mine", "propose_payment")]
    proposed = _facts(State.DEPARTURE_AGREED, _adult(1), payment=PaymentFacts("proposed", 7, None, 100, 100))
    assert _entries(proposed) == []
    assert _entries(_facts(State.SUPPORT_PAID, _adult(1))) == [("mine", "confirm_departure")]
    for state in workflow.FINAL_STATES:
        assert _entries(_facts(state, _adult(1))) == []


def test_an_extension_waits_for_the_supervisor_only_when_every_adult_signed():
    deadline = TODAY + dt.timedelta(days=10)
    later = TODAY + dt.timedelta(days=30)
    both = _facts(State.DEPARTURE_AGREED, _adult(1, addendum_deadlines=frozenset({later})),
                  _adult(2, addendum_deadlines=frozenset({later})), departure_deadline=deadline)
    entry = rules.extension_entry(both, DEFAULT_POLICY)
    assert entry.step == "extend_deadline" and entry.extra["deadline"] == later
    assert entry.reasons == ()
    half = _facts(State.DEPARTURE_AGREED, _adult(1, addendum_deadlines=frozenset({later})),
                  _adult(2), departure_deadline=deadline)
    assert rules.extension_entry(half, DEFAULT_POLICY) is None
    earlier = _facts(State.DEPARTURE_AGREED, _adult(1, addendum_deadlines=frozenset({deadline})),
                     departure_deadline=deadline)
    assert rules.extension_entry(earlier, DEFAULT_POLICY) is None
    too_far = TODAY + dt.timedelta(days=DEFAULT_POLICY.max_term_days + 5)
    far = _facts(State.DEPARTURE_AGREED, _adult(1, addendum_deadlines=frozenset({too_far})),
                 departure_deadline=deadline)
    assert "deadline_too_far" in [r.code for r in rules.extension_entry(far, DEFAULT_POLICY).reasons]


def test_four_eyes_and_names():
    assert rules.own_proposal(5, "P1", 5, "P2")
    assert rules.own_proposal(6, "P1", 5, "P1")
    assert not rules.own_proposal(6, "P1", 5, "P2")
    assert not rules.own_proposal(6, None, 5, None)
    assert rules.overdue_step(State.DEPARTURE_AGREED) == "lapse"
    assert rules.overdue_step(State.SUPPORT_PAID) == "case"
    assert display_name("Anna de Vries", "anna@x") == "Anna de Vries"
    assert display_name("  ", "anna@x") == "anna@x"
