"""The operator's commands and persons: ``create-user --person`` (the way to make the first
administrators), ``set-person`` for existing accounts, and the password policy there too."""
from __future__ import annotations

from sqlalchemy import select
from sqlmodel import Session

from returnprog.models import AuditEvent, User

PASSWORD = "a long enough passphrase"


def run(app, *args, input=PASSWORD + "\n"):
    return app.test_cli_runner().invoke(args=list(args), input=input)


def user(app, email) -> User | None:
    with Session(app.extensions["returnprog.engine"]) as s:
        return s.execute(select(User).where(User.email == email)).scalar_one_or_none()


def test_the_operator_makes_the_first_admins_with_their_personnel_numbers(app):
    result = run(app, "create-user", "ad@dtenv.example", "--role", "admin", "--person", "p-1")
    assert result.exit_code == 0, result.output
    assert user(app, "ad@dtenv.example").person == "P-1"
    assert user(app, "ad@dtenv.example").role == "admin"  # at once: no second admin yet
    with Session(app.extensions["returnprog.engine"]) as s:
        event = s.execute(select(AuditEvent).where(AuditEvent.action == "create_user")).scalar_one()
    assert event.actor == "operator" and event.actor_id is None and "P-1" in event.details
    # Without a number the account is a person of its own.
    assert run(app, "create-user", "kim@dtenv.example", "--role", "counsellor").exit_code == 0
    assert user(app, "kim@dtenv.example").person == "@kim@dtenv.example"


def test_the_operator_cannot_give_an_admins_person_a_case_role(app):
    assert run(app, "create-user", "ad@dtenv.example", "--role", "admin", "--person", "P-1"
               ).exit_code == 0
    result = run(app, "create-user", "ad.sup@dtenv.example", "--role", "supervisor",
                 "--person", "P-1")
    assert result.exit_code == 1 and "administrators do no case work" in result.output
    assert user(app, "ad.sup@dtenv.example") is None
    bad = run(app, "create-user", "x@dtenv.example", "--role", "counsellor", "--person", "P 1")
    assert bad.exit_code == 1 and "person" in bad.output


def test_set_person_records_the_number_of_an_existing_account_audited(app):
    assert run(app, "create-user", "kim@dtenv.example", "--role", "counsellor").exit_code == 0
    result = run(app, "set-person", "KIM@dtenv.example", "p-77", input=None)
    assert result.exit_code == 0, result.output
    assert user(app, "kim@dtenv.example").person == "P-77"
    with Session(app.extensions["returnprog.engine"]) as s:
        event = s.execute(select(AuditEvent).where(AuditEvent.action == "set_person")).scalar_one()
    assert event.actor == "operator" and "@kim@dtenv.example" in event.details
    assert run(app, "set-person", "nobody@dtenv.example", "P-78", input=None).exit_code == 1
    assert run(app, "set-person", "kim@dtenv.example", "not valid!", input=None).exit_code == 1


def test_create_user_refuses_common_and_own_address_passwords(app):
    for password in ("password1234", "kim@dtenv.example", "returnprog2026"):
        result = run(app, "create-user", "kim@dtenv.example", "--role", "counsellor",
                     input=password + "\n")
        assert result.exit_code == 1 and "password" in result.output.lower()
    assert user(app, "kim@dtenv.example") is None
    spaced = "  " + PASSWORD + "  "
    assert run(app, "create-user", "kim@dtenv.example", "--role", "counsellor",
               input=spaced + "\n").exit_code == 0
    from returnprog import auth
    assert auth.check_password(user(app, "kim@dtenv.example"), spaced)
