"""Four eyes between people, on both databases: accounts belong to persons (personnel
numbers); an administrator cannot make himself case staff or grant roles alone; payment
proposer, approver and payer are three different people, not only three accounts."""
from __future__ import annotations

import pytest
from alembic import command
from sqlalchemy import create_engine, select, text, update

from returnprog import auth
from returnprog import db as dbmod
from returnprog.models import AccountRequest, AuditEvent, Payment, User
from returnprog.services import Conflict, Forbidden, Invalid
from returnprog.services import accounts
from returnprog.services import payment as payment_service

from ..conftest import drive_to

PASSWORD = "correct horse battery"
TRANSFER = {"method": "transfer", "iban": "NL91ABNA0417164300", "account_holder": "O. K."}


def mk(session, email, role, person, team="Team Noord"):
    return auth.create_user(session, email=email, role=role, password=PASSWORD,
                            person=person, team=team)


@pytest.fixture
def admins(session):
    """Two administrators who are two different people."""
    return mk(session, "adam@dtenv.example", "admin", "P-0001"), \
        mk(session, "bea@dtenv.example", "admin", "P-0002")


def new(email, role, person, password=PASSWORD):
    return {"email": email, "role": role, "person": person, "password": password,
            "team": "Team Noord", "name": ""}


def actions(session, *names) -> list[str]:
    return list(session.execute(select(AuditEvent.action).where(
        AuditEvent.action.in_(names)).order_by(AuditEvent.seq)).scalars())


def field_codes(exc, field):
    return [m.code for m in exc.value.details[field]]


# --- administrators cannot escalate alone ----------------------------------------------------

def test_an_admin_cannot_create_case_accounts_for_his_own_personnel_number(
        session, ctx_for, admins):
    adam, _ = admins
    for role in ("counsellor", "supervisor", "finance", "admin"):
        with pytest.raises(Invalid) as err:
            accounts.create_user(ctx_for(adam), new(f"adam.{role}@dtenv.example", role, "p-0001"))
        assert field_codes(err, "person") == ["account.own_person"]
    assert session.execute(select(User).where(User.email.like("adam.%"))).first() is None
    assert session.execute(select(AccountRequest)).first() is None


def test_self_escalation_under_an_invented_number_stops_at_the_privileged_account(
        session, ctx_for, admins):
    """Adam makes a counsellor and a supervisor account for himself under a made-up
    number: the counsellor exists (it can only propose), the supervisor stays a request
    he cannot approve himself — so he cannot do four eyes alone."""
    adam, bea = admins
    counsellor = accounts.create_user(ctx_for(adam), new("adam.c@dtenv.example", "counsellor", "P-9"))
    assert isinstance(counsellor, User) and counsellor.role == "counsellor"
    request = accounts.create_user(ctx_for(adam), new("adam.s@dtenv.example", "supervisor", "P-9"))
    assert isinstance(request, AccountRequest) and request.status == "pending"
    assert session.execute(select(User).where(User.email == "adam.s@dtenv.example")).first() is None
    assert PASSWORD not in request.password_hash and request.password_hash
    with pytest.raises(Forbidden) as err:
        accounts.decide_request(ctx_for(adam), request.id, approve=True)
    assert err.value.message_code == "account.request_own"
    # Nor from another administrator account of his own person (made by the operator).
    adam2 = mk(session, "adam.two@dtenv.example", "admin", "P-0001")
    with pytest.raises(Forbidden):
        accounts.decide_request(ctx_for(adam2), request.id, approve=True)
    assert session.get(AccountRequest, request.id).status == "pending"
    # Bea, another person, checks the number and rejects it.
    accounts.decide_request(ctx_for(bea), request.id, approve=False, reason="not a staff number")
    assert session.get(AccountRequest, request.id).status == "rejected"
    assert session.get(AccountRequest, request.id).password_hash == ""
    assert session.execute(select(User).where(User.email == "adam.s@dtenv.example")).first() is None
    assert actions(session, "create_user", "request_create_user", "reject_account_request") \
        == ["create_user"] * 3 + ["request_create_user", "create_user", "reject_account_request"]


def test_a_privileged_account_takes_effect_when_a_second_admin_approves(session, ctx_for, admins):
    adam, bea = admins
    request = accounts.create_user(ctx_for(adam), new("sup@dtenv.example", "supervisor", "P-10"))
    with pytest.raises(Invalid) as err:  # no second request for the same address
        accounts.create_user(ctx_for(adam), new("sup@dtenv.example", "supervisor", "P-10"))
    assert field_codes(err, "email") == ["account.email_taken"]
    done = accounts.decide_request(ctx_for(bea), request.id, approve=True)
    user = session.execute(select(User).where(User.email == "sup@dtenv.example")).scalar_one()
    assert done.status == "approved" and done.user_id == user.id and done.decided_by == bea.id
    assert user.role == "supervisor" and user.person == "P-10"
    assert auth.check_password(user, PASSWORD)
    with pytest.raises(Conflict) as err:
        accounts.decide_request(ctx_for(bea), request.id, approve=True)
    assert err.value.message_code == "account.request_decided"
    event = session.execute(select(AuditEvent).where(
        AuditEvent.action == "approve_account_request")).scalar_one()
    assert event.actor_id == bea.id and "sup@dtenv.example" in event.details
    assert "adam@dtenv.example" in event.details  # who asked


def test_a_role_change_needs_a_second_admin_and_ends_the_users_sessions(
        session, ctx_for, admins):
    adam, bea = admins
    anna = mk(session, "anna@dtenv.example", "counsellor", "P-20")
    epoch = anna.session_epoch
    request = accounts.request_role_change(ctx_for(adam), anna.id, "supervisor")
    session.refresh(anna)
    assert anna.role == "counsellor" and request.old_role == "counsellor"
    with pytest.raises(Forbidden):
        accounts.decide_request(ctx_for(adam), request.id, approve=True)
    accounts.decide_request(ctx_for(bea), request.id, approve=True)
    session.refresh(anna)
    assert anna.role == "supervisor" and anna.session_epoch == epoch + 1
    with pytest.raises(Invalid) as err:
        accounts.request_role_change(ctx_for(adam), anna.id, "supervisor")
    assert field_codes(err, "role") == ["account.role_unchanged"]
    assert actions(session, "request_role_change", "approve_account_request") \
        == ["request_role_change", "approve_account_request"]


def test_a_stale_role_request_is_not_applied(session, ctx_for, admins):
    adam, bea = admins
    anna = mk(session, "anna@dtenv.example", "counsellor", "P-20")
    request = accounts.request_role_change(ctx_for(adam), anna.id, "finance")
    session.execute(update(User).where(User.id == anna.id).values(role="supervisor"))
    session.commit()
    with pytest.raises(Conflict) as err:
        accounts.decide_request(ctx_for(bea), request.id, approve=True)
    assert err.value.message_code == "account.request_stale"
    assert session.get(User, anna.id).role == "supervisor"


def test_an_admin_never_grants_a_role_to_an_account_of_his_own_person(session, ctx_for, admins):
    adam, bea = admins
    with pytest.raises(Forbidden) as err:
        accounts.request_role_change(ctx_for(adam), adam.id, "supervisor")
    assert err.value.message_code == "account.own_person"
    # Bea asks to make Adam's second account a supervisor: refused (admins do no case work)…
    adam2 = mk(session, "adam.two@dtenv.example", "admin", "P-0001")
    with pytest.raises(Invalid) as err:
        accounts.request_role_change(ctx_for(bea), adam2.id, "supervisor")
    assert field_codes(err, "role") == ["account.admin_no_case_role"]
    # …and a request about Adam's person is never Adam's to approve.
    carl = mk(session, "carl@dtenv.example", "admin", "P-0003")
    request = accounts.create_user(ctx_for(carl), new("adam.three@dtenv.example", "admin",
                                                      "P-0001"))
    with pytest.raises(Forbidden) as err:
        accounts.decide_request(ctx_for(adam), request.id, approve=True)
    assert err.value.message_code == "account.request_own_person"
    accounts.decide_request(ctx_for(bea), request.id, approve=True)


def test_admins_hold_no_case_role_and_case_staff_no_admin_role(session, ctx_for, admins):
    adam, bea = admins
    with pytest.raises(Invalid) as err:  # Bea makes a counsellor account for Adam
        accounts.create_user(ctx_for(bea), new("adam.c@dtenv.example", "counsellor", "P-0001"))
    assert field_codes(err, "role") == ["account.admin_no_case_role"]
    mk(session, "sanne@dtenv.example", "supervisor", "P-30")
    with pytest.raises(Invalid) as err:
        accounts.create_user(ctx_for(adam), new("sanne.admin@dtenv.example", "admin", "P-30"))
    assert field_codes(err, "role") == ["account.case_person_no_admin"]
    with pytest.raises(ValueError):  # the operator's command keeps to the same rule
        mk(session, "sanne.admin@dtenv.example", "admin", "P-30")


def test_a_new_password_for_someone_elses_privileged_account_needs_a_second_admin(
        session, ctx_for, admins):
    adam, bea = admins
    sanne = mk(session, "sanne@dtenv.example", "supervisor", "P-30")
    anna = mk(session, "anna@dtenv.example", "counsellor", "P-20")
    request = accounts.reset_password(ctx_for(adam), sanne.id, "adam knows this one")
    assert isinstance(request, AccountRequest)
    session.refresh(sanne)
    assert auth.check_password(sanne, PASSWORD)  # unchanged until approved
    accounts.decide_request(ctx_for(bea), request.id, approve=True)
    session.refresh(sanne)
    assert auth.check_password(sanne, "adam knows this one")
    # A counsellor's, and the admin's own, take effect at once.
    assert isinstance(accounts.reset_password(ctx_for(adam), anna.id, "tulpen langs de dijk"), User)
    assert isinstance(accounts.reset_password(ctx_for(adam), adam.id, "tulpen langs de dijk"), User)


def test_weak_passwords_are_refused_wherever_they_are_set(session, ctx_for, admins):
    adam, _ = admins
    anna = mk(session, "anna@dtenv.example", "counsellor", "P-20")
    for password, code in (("password1234", "validate.password_common"),
                           ("anna@dtenv.example", "validate.password_context"),
                           ("short", "validate.password_length")):
        with pytest.raises(Invalid) as err:
            accounts.reset_password(ctx_for(adam), anna.id, password)
        assert field_codes(err, "password") == [code]
        with pytest.raises(Invalid) as err:
            accounts.create_user(ctx_for(adam), new("kim@dtenv.example", "counsellor", "P-40",
                                                    password.replace("anna@", "kim@")))
        assert field_codes(err, "password") == [code]
        with pytest.raises(ValueError):
            auth.create_user(session, email="kim@dtenv.example", role="counsellor",
                             password=password.replace("anna@", "kim@"))
    session.refresh(anna)
    assert auth.check_password(anna, PASSWORD)


def test_a_personnel_number_is_required_in_the_admin_pages(session, ctx_for, admins):
    adam, _ = admins
    with pytest.raises(Invalid) as err:
        accounts.create_user(ctx_for(adam), {**new("kim@dtenv.example", "counsellor", None)})
    assert field_codes(err, "person") == ["account.person_required"]


# --- payments: three different people ----------------------------------------------------------

def _approved_case(ctx_for, staff, session, proposer, approver):
    case = drive_to(ctx_for, staff, session, "departure_agreed", adults=1, minors=0)
    payment_service.propose(ctx_for(proposer), case.reference, TRANSFER)
    if approver is not None:
        payment_service.approve(ctx_for(approver), case.reference)
    return case


def test_one_person_cannot_propose_and_approve_under_two_accounts(session, ctx_for, staff):
    twin = mk(session, "anna.sup@dtenv.example", "supervisor", "P-50")
    session.execute(update(User).where(User.id == staff.counsellor.id).values(person="P-50"))
    session.commit()
    session.refresh(staff.counsellor)
    case = _approved_case(ctx_for, staff, session, staff.counsellor, None)
    with pytest.raises(Forbidden) as err:
        payment_service.approve(ctx_for(twin), case.reference)
    assert err.value.message_code == "payment.own_proposal:person"
    assert "another account of yours" in str(err.value)
    payment_service.approve(ctx_for(staff.supervisor), case.reference)  # another person may


def test_the_payer_is_a_third_person_not_only_a_third_account(session, ctx_for, staff):
    case = _approved_case(ctx_for, staff, session, staff.counsellor, staff.supervisor)
    auth.set_person(session, staff.supervisor.email, "P-70")
    twin = mk(session, "sanne.fin@dtenv.example", "finance", "P-70")
    with pytest.raises(Forbidden) as err:
        payment_service.disburse(ctx_for(twin), case.reference, {"idempotency_key": "pay-twin-1"})
    assert err.value.message_code == "payment.disburse_four_eyes:person"
    assert session.execute(select(Payment.status).where(Payment.case_id == case.id)
                           ).scalar_one() == "approved"
    paid = payment_service.disburse(ctx_for(staff.finance), case.reference,
                                    {"idempotency_key": "pay-other-1"})
    assert paid.state == "support_paid"


def test_pay_support_refuses_an_approval_by_the_proposers_other_account(session, ctx_for, staff):
    """Even a row that reached 'approved' some other way (an old approval, a person number
    recorded later) is not paid: the workflow guard compares people too."""
    case = _approved_case(ctx_for, staff, session, staff.counsellor, staff.supervisor)
    auth.set_person(session, staff.supervisor.email, "P-60")
    auth.set_person(session, staff.counsellor.email, "P-60")
    with pytest.raises(Conflict) as err:
        payment_service.disburse(ctx_for(staff.finance), case.reference,
                                 {"idempotency_key": "pay-late-1"})
    assert "payment_four_eyes" in [d["code"] for d in err.value.details]
    assert actions(session, "set_person") == ["set_person", "set_person"]


def test_the_case_page_offers_no_decision_on_a_proposal_of_ones_own_person(
        session, ctx_for, staff):
    from returnprog.services import case_views

    auth.set_person(session, staff.counsellor.email, "P-80")
    twin = mk(session, "anna.sup@dtenv.example", "supervisor", "P-80")
    case = _approved_case(ctx_for, staff, session, staff.counsellor, None)
    assert case_views.outlook(ctx_for(twin), case.reference)["payment_steps"]["own_proposal"]
    assert not case_views.outlook(ctx_for(staff.supervisor),
                                  case.reference)["payment_steps"]["own_proposal"]
    reader = payment_service.read_payment
    assert reader(ctx_for(twin), case.reference)["own_proposal"]
    assert not reader(ctx_for(staff.supervisor), case.reference)["own_proposal"]


# --- the migration -------------------------------------------------------------------------------

def test_0005_makes_every_existing_account_a_person_of_its_own(db_url, session):
    session.close()
    command.downgrade(dbmod.alembic_config(db_url), "0003")
    engine = create_engine(db_url)
    with engine.begin() as conn:
        for email in ("old1@dtenv.example", "old2@dtenv.example"):
            conn.execute(text(
                "INSERT INTO \"user\" (email, name, role, password_hash, active, failed_logins, "
                "session_epoch, created_at) VALUES (:e, 'Old', 'counsellor', '', true, 0, 0, "
                "CURRENT_TIMESTAMP)"), {"e": email})
    dbmod.upgrade(db_url)
    with engine.connect() as conn:
        rows = dict(conn.execute(text("SELECT email, person FROM \"user\"")).all())
    engine.dispose()
    assert rows == {"old1@dtenv.example": "@old1@dtenv.example",
                    "old2@dtenv.example": "@old2@dtenv.example"}


# --- racing administrators ----------------------------------------------------------------------

def test_racing_approvals_of_one_request_create_one_account(engine, session, policy, ctx_for,
                                                            admins):
    from .test_concurrency import as_actor, run_together

    adam, _ = admins
    deciders = [mk(session, f"admin{i}@dtenv.example", "admin", f"P-09{i}") for i in range(4)]
    request = accounts.create_user(ctx_for(adam), new("sup@dtenv.example", "supervisor", "P-10"))
    contexts = [as_actor(engine, policy, d.id) for d in deciders]
    try:
        results = run_together(len(contexts), lambda i: accounts.decide_request(
            contexts[i], request.id, approve=i % 2 == 0))
    finally:
        for c in contexts:
            c.session.close()
    won = [r for kind, r in results if kind == "ok"]
    lost = [r for kind, r in results if kind == "error"]
    assert len(won) == 1 and all(isinstance(e, Conflict) for e in lost), results
    session.rollback()  # read what the racers committed, not an older snapshot
    users = session.execute(select(User).where(User.email == "sup@dtenv.example")).all()
    assert len(users) == (1 if won[0].status == "approved" else 0)
    assert len(actions(session, "approve_account_request", "reject_account_request")) == 1
