"""One row per action: everything the rest of the code needs to know about an action is
read off the workflow table, so adding an action means editing the workflow module, one
form partial and the catalogues (issue 9)."""
from __future__ import annotations

import datetime as dt

from returnprog import schemas, workflow
from returnprog.policy import DEFAULT_POLICY, age_on
from returnprog.workflow import ACTIONS, CASE_ACTIONS, State


def test_the_action_schemas_cover_exactly_the_case_actions():
    assert set(schemas.ACTION_SCHEMAS) == set(CASE_ACTIONS)


def test_every_case_action_has_its_own_url_slug():
    slugs = [ACTIONS[name].slug for name in CASE_ACTIONS]
    assert all(slugs) and len(set(slugs)) == len(slugs)
    assert ACTIONS["open_case"].slug is None


def test_an_actions_effects_are_the_case_columns_it_declares():
    day = dt.date(2027, 1, 10)
    assert ACTIONS["agree_departure"].effects({"departure_deadline": day}) == {
        "departure_deadline": day}
    assert ACTIONS["confirm_departure"].effects({"departed_on": day, "evidence": "boarding"}) == {
        "departed_on": day, "departure_evidence": "boarding"}
    for name in ("leave_programme", "reject", "lapse"):
        assert ACTIONS[name].effects({"reason": "moved"}) == {"closing_reason": "moved"}
    assert ACTIONS["confirm_commitment"].effects({}) == {}


def test_every_effect_column_is_a_case_column_and_every_key_is_in_the_actions_schema():
    from returnprog.models import Case

    for name in CASE_ACTIONS:
        fields = schemas.ACTION_SCHEMAS[name]().fields
        for column, key in ACTIONS[name].sets:
            assert column in Case.model_fields, (name, column)
            assert key in fields, (name, key)


def test_each_document_is_signable_in_its_actions_source_state_and_never_once_past_it():
    for action in ACTIONS.values():
        if not action.document:
            continue
        # Signing is possible in the state the action starts from...
        assert action.sources & action.signable_in, action.name
        # ...and never in a final state.
        assert not action.signable_in & workflow.FINAL_STATES, action.name
    assert workflow.SIGNING_STATES[workflow.COMMITMENT] == {State.INTAKE}
    assert workflow.SIGNING_STATES[workflow.PAYMENT_RECEIPT] == {State.DEPARTURE_AGREED,
                                                                 State.SUPPORT_PAID}
    assert set(workflow.SIGNABLE_KINDS) == {workflow.COMMITMENT, workflow.WITHDRAWAL_DECLARATION,
                                            workflow.DEPARTURE_AGREEMENT, workflow.ADDENDUM,
                                            workflow.PAYMENT_RECEIPT}


def test_the_signing_service_and_the_case_outlook_read_the_same_table():
    from returnprog.services import signing

    assert signing.SIGNING_STATES is workflow.SIGNING_STATES


def test_payment_roles_keep_four_eyes_apart_from_paying_out():
    assert workflow.PAYMENT_PROPOSERS.isdisjoint(workflow.PAYMENT_DECIDERS)
    assert ACTIONS["pay_support"].roles.isdisjoint(workflow.PAYMENT_PROPOSERS
                                                   | workflow.PAYMENT_DECIDERS)


def test_adulthood_is_decided_on_the_day_itself():
    born = dt.date(2009, 3, 1)
    assert age_on(born, dt.date(2027, 2, 28)) == 17
    assert not DEFAULT_POLICY.is_adult_on(born, dt.date(2027, 2, 28))
    assert DEFAULT_POLICY.is_adult_on(born, dt.date(2027, 3, 1))
    # Born on 29 February: an adult on 1 March of a non-leap year.
    leap = dt.date(2008, 2, 29)
    assert not DEFAULT_POLICY.is_adult_on(leap, dt.date(2026, 2, 28))
    assert DEFAULT_POLICY.is_adult_on(leap, dt.date(2026, 3, 1))
