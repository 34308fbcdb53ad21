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


def test_no_module_compares_a_role_with_a_spelled_out_role_name():
    """Role names are spelled once, in roles.py: a rule elsewhere that compares a role
    with a literal "counsellor" is a second copy of who may do what."""
    import ast
    from pathlib import Path

    import returnprog
    from returnprog import roles

    package = Path(returnprog.__file__).resolve().parent
    names = set(roles.ROLES)
    found = []
    for path in sorted(package.rglob("*.py")):
        if path.name == "roles.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.Compare):
                continue
            sides = [node.left, *node.comparators]
            about_a_role = any(getattr(s, "attr", getattr(s, "id", "")) == "role" for s in sides)
            literals = [c.value for s in sides for c in ast.walk(s)
                        if isinstance(c, ast.Constant) and c.value in names]
            if about_a_role and literals:
                found.append(f"{path.relative_to(package)}:{node.lineno} {literals}")
    assert not found, f"roles spelled out instead of named from roles.py: {found}"
