"""The role names and groups of ``returnprog.roles`` are the only definition (issue 9)."""
from __future__ import annotations

from returnprog import auth, roles, workflow


def test_every_role_a_workflow_action_names_is_a_known_role():
    named = set().union(*(action.roles for action in workflow.ACTIONS.values()))
    assert named <= set(roles.ROLES)


def test_the_groups_are_made_of_known_roles_and_cases_are_not_for_administrators():
    for group in (roles.CASE_ROLES, roles.FIGURE_ROLES, roles.PAYMENT_OVERVIEW_ROLES,
                  roles.PAYMENT_FOLLOW_UP_ROLES):
        assert set(group) <= set(roles.ROLES)
    assert roles.ADMIN not in roles.CASE_ROLES


def test_accounts_and_the_workflow_use_the_same_list():
    assert auth.ROLES is roles.ROLES and workflow.ROLES is roles.ROLES
