"""Racing requests on one case (DESIGN §3): one wins, the others get a clear conflict; never
a second payment, never a half-applied transition, never "database is locked" — on SQLite
and on PostgreSQL, through the services and through the HTTP API."""
from __future__ import annotations

import datetime as dt
import threading

import pytest
from sqlalchemy import func, select
from sqlmodel import Session

from returnprog import audit, workflow
from returnprog.models import AuditEvent, Case, Payment, User
from returnprog.services import Conflict, Context
from returnprog.services import cases as case_service
from returnprog.services import payment as payment_service

from ..conftest import drive_to, fake_sign, intake, person

N = 20
TODAY = dt.date.today()


def run_together(n, work, timeout=120):
    """Run ``work(i)`` in ``n`` threads released at the same moment by a barrier.
    Returns, per thread, ("ok", result) or ("error", exception)."""
    barrier = threading.Barrier(n)
    results: list = [None] * n

    def target(i):
        try:
            barrier.wait(timeout=60)
            results[i] = ("ok", work(i))
        except BaseException as exc:  # noqa: BLE001 - every outcome is inspected
            results[i] = ("error", exc)

    threads = [threading.Thread(target=target, args=(i,), daemon=True) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout)
    assert not any(t.is_alive() for t in threads), "a racing thread hung"
    return results


def as_actor(engine, policy, user_id):
    """A worker's own session and context for the user ``user_id``."""
    session = Session(engine, expire_on_commit=False)
    actor = session.get(User, user_id)
    session.rollback()
    return Context(session=session, policy=policy, actor=actor, ip="10.0.0.1", user_agent="race")


def race(engine, policy, user, call, n=N):
    """``n`` threads, each with its own session and context for ``user``, run ``call(ctx, i)``."""
    contexts = [as_actor(engine, policy, user.id) for _ in range(n)]

    def work(i):
        try:
            return call(contexts[i], i)
        finally:
            contexts[i].session.close()  # like the end of a web request
    return run_together(n, work)


def split(results):
    ok = [r for kind, r in results if kind == "ok"]
    conflicts = [r for kind, r in results if kind == "error" and isinstance(r, Conflict)]
    other = [r for kind, r in results if kind == "error" and not isinstance(r, Conflict)]
    return ok, conflicts, other


def transitions(session, case_id, action):
    session.rollback()  # end any read transaction begun before the race (SQLite snapshots)
    return session.execute(select(func.count()).select_from(AuditEvent).where(
        AuditEvent.case_id == case_id, AuditEvent.action == action)).scalar_one()


def fresh_case(session, case_id) -> Case:
    session.rollback()
    return session.get(Case, case_id)


# --- services -----------------------------------------------------------------------------------

def test_racing_the_same_transition_lets_exactly_one_win(engine, policy, ctx_for, staff, session):
    case = case_service.open_case(ctx_for(staff.counsellor), intake(2, 1))
    fake_sign(session, case, workflow.COMMITMENT)
    results = race(engine, policy, staff.counsellor, lambda ctx, i: case_service.perform(
        ctx, case.reference, "confirm_commitment", {}).state)
    ok, conflicts, other = split(results)
    assert other == [], other
    assert ok == ["committed"]
    assert len(conflicts) == N - 1
    assert all(c.message for c in conflicts)
    assert transitions(session, case.id, "confirm_commitment") == 1
    assert (fresh_case(session, case.id).state, fresh_case(session, case.id).version) == ("committed", 2)
    assert audit.verify(session).ok


def test_racing_a_deadline_extension_to_the_same_date_applies_it_once(
        engine, policy, ctx_for, staff, session):
    # departure_agreed -> departure_agreed: the state alone cannot tell the racers apart.
    case = drive_to(ctx_for, staff, session, "departure_agreed")
    new = case.departure_deadline + dt.timedelta(days=14)
    fake_sign(session, case, workflow.ADDENDUM, {"departure_deadline": new.isoformat()})
    version = case.version
    results = race(engine, policy, staff.supervisor, lambda ctx, i: case_service.perform(
        ctx, case.reference, "extend_deadline",
        {"departure_deadline": new, "reason": f"request {i}"}).departure_deadline)
    ok, conflicts, other = split(results)
    assert other == [], other
    assert ok == [new] and len(conflicts) == N - 1
    assert transitions(session, case.id, "extend_deadline") == 1
    assert fresh_case(session, case.id).version == version + 1
    assert audit.verify(session).ok


def test_racing_different_closing_actions_closes_the_case_once(engine, policy, ctx_for, staff, session):
    case = case_service.open_case(ctx_for(staff.counsellor), intake())
    users = {"leave_programme": staff.counsellor, "reject": staff.supervisor}
    contexts = [as_actor(engine, policy, (users["leave_programme"] if i % 2 else users["reject"]).id)
                for i in range(N)]

    def work(i):
        try:
            return case_service.perform(contexts[i], case.reference,
                                        "leave_programme" if i % 2 else "reject",
                                        {"reason": f"racer {i}"}).state
        finally:
            contexts[i].session.close()
    results = run_together(N, work)
    ok, conflicts, other = split(results)
    assert other == [], other
    assert len(ok) == 1 and len(conflicts) == N - 1
    final = fresh_case(session, case.id)
    assert final.state == ok[0] and final.state in ("left_programme", "rejected")
    closing = session.execute(select(AuditEvent).where(
        AuditEvent.case_id == case.id, AuditEvent.from_state == "intake")).scalars().all()
    assert [(e.to_state, e.details.count("racer")) for e in closing] == [(final.state, 1)]
    assert final.closing_reason.startswith("racer") and final.version == 2


@pytest.mark.parametrize("same_key", [False, True])
def test_racing_disbursements_pay_exactly_once(engine, policy, ctx_for, staff, session, same_key):
    case = drive_to(ctx_for, staff, session, "departure_agreed")
    payment_service.propose(ctx_for(staff.counsellor), case.reference, {"method": "cash"})
    payment_service.approve(ctx_for(staff.supervisor), case.reference)
    results = race(engine, policy, staff.finance, lambda ctx, i: payment_service.disburse(
        ctx, case.reference,
        {"idempotency_key": "race-key-same" if same_key else f"race-key-{i:04d}"}).state)
    ok, conflicts, other = split(results)
    assert other == [], other
    if same_key:
        # One request, sent 20 times: every replay answers like the first, none pays again.
        assert ok == ["support_paid"] * N
    else:
        assert ok == ["support_paid"] and len(conflicts) == N - 1
    session.rollback()
    paid = session.execute(select(Payment.status, Payment.idempotency_key)
                           .where(Payment.case_id == case.id)).all()
    assert [p.status for p in paid] == ["disbursed"]
    assert transitions(session, case.id, "pay_support") == 1
    assert audit.verify(session).ok


def test_racing_ind_confirmations_for_one_person_record_one(engine, policy, ctx_for, staff, session):
    case = drive_to(ctx_for, staff, session, "committed", adults=1, minors=0)
    pid = session.execute(select(case_service.Participant.id)
                          .where(case_service.Participant.case_id == case.id)).scalar_one()
    results = race(engine, policy, staff.counsellor, lambda ctx, i: case_service.record_ind_confirmation(
        ctx, case.reference, {"participant_id": pid, "ind_reference": f"IND-{i:04d}",
                              "confirmed_on": TODAY}).ind_reference)
    ok, conflicts, other = split(results)
    assert other == [], other
    assert len(ok) == 1 and len(conflicts) == N - 1
    assert transitions(session, case.id, "record_ind_confirmation") == 1


def test_two_counsellors_opening_a_case_for_the_same_person_get_one_case(
        engine, policy, staff, session):
    v = person()["v_number"]
    results = race(engine, policy, staff.counsellor, lambda ctx, i: case_service.open_case(
        ctx, intake(principal=dict(person(), v_number=v))).reference, n=2)
    ok, conflicts, other = split(results)
    assert other == [], other
    assert len(ok) == 1 and len(conflicts) == 1
    session.rollback()
    assert session.execute(select(func.count()).select_from(Case)).scalar_one() == 1
    assert audit.verify(session).ok


def test_many_cases_opened_at_once_all_succeed_with_distinct_references(
        engine, policy, staff, session):
    # Also the very first cases of the year: the reference counter does not exist yet.
    results = race(engine, policy, staff.counsellor, lambda ctx, i: case_service.open_case(
        ctx, intake()).reference)
    ok, conflicts, other = split(results)
    assert other == [] and conflicts == [], (other, conflicts)
    assert sorted(int(r[-6:]) for r in ok) == list(range(1, N + 1))
    assert audit.verify(session).ok


# --- HTTP API ------------------------------------------------------------------------------------

def _json_person(**over):
    p = person(**over)
    p["date_of_birth"] = p["date_of_birth"].isoformat()
    return p


def _post_together(app, n, path, headers, bodies):
    def work(i):
        with app.test_client() as client:
            resp = client.post(path, headers=headers, json=bodies(i))
            return resp.status_code, resp.get_json()
    return run_together(n, work)


def _app_case(app, api_staff):
    engine = app.extensions["returnprog.engine"]
    session = Session(engine, expire_on_commit=False)
    policy = app.extensions["returnprog.policy"]
    ctx = Context(session=session, policy=policy,
                  actor=session.get(User, api_staff.counsellor.id))
    return session, ctx


def test_racing_api_requests_get_one_200_and_the_rest_409(app, api_staff):
    session, ctx = _app_case(app, api_staff)
    try:
        case = case_service.open_case(ctx, intake(2, 1))
        fake_sign(session, case, workflow.COMMITMENT)
        results = _post_together(app, N, f"/api/v1/cases/{case.reference}/actions/confirm_commitment",
                                 api_staff.headers["counsellor"], lambda i: {})
        assert all(kind == "ok" for kind, _ in results), results
        statuses = sorted(status for _, (status, _) in results)
        assert statuses == [200] + [409] * (N - 1), statuses
        bodies = [body for _, (status, body) in results]
        winner = next(b for _, (s, b) in results if s == 200)
        assert winner["state"] == "committed"
        assert all(b["error"]["code"] == "conflict" and b["error"]["message"]
                   for _, (s, b) in results if s == 409), bodies
        assert transitions(session, case.id, "confirm_commitment") == 1
        assert audit.verify(session).ok
    finally:
        session.close()


def test_two_api_requests_opening_a_case_for_the_same_person_give_one_201_and_one_409(app, api_staff):
    principal = _json_person()
    body = {"principal": principal, "destination_oblast": "UA-30", "destination_place": "Kyiv",
            "household": []}
    results = _post_together(app, 2, "/api/v1/cases", api_staff.headers["counsellor"],
                             lambda i: body)
    assert all(kind == "ok" for kind, _ in results), results
    assert sorted(status for _, (status, _) in results) == [201, 409], results
    session, _ = _app_case(app, api_staff)
    try:
        assert session.execute(select(func.count()).select_from(Case)).scalar_one() == 1
        assert audit.verify(session).ok
    finally:
        session.close()


def test_racing_api_disbursements_never_pay_twice_and_never_fail_with_500(app, api_staff):
    session, ctx = _app_case(app, api_staff)
    try:
        case = case_service.open_case(ctx, intake(1))
        policy = ctx.policy
        # Drive it to departure_agreed through the services with this app's database.
        fake_sign(session, case, workflow.COMMITMENT)
        case_service.perform(ctx, case.reference, "confirm_commitment", {})
        fake_sign(session, case, workflow.WITHDRAWAL_DECLARATION)
        for p in session.execute(select(case_service.Participant)
                                 .where(case_service.Participant.case_id == case.id)).scalars():
            case_service.record_ind_confirmation(ctx, case.reference, {
                "participant_id": p.id, "ind_reference": f"IND-{p.id}", "confirmed_on": TODAY})
        case_service.perform(ctx, case.reference, "record_withdrawal", {})
        deadline = TODAY + dt.timedelta(days=30)
        fake_sign(session, case, workflow.DEPARTURE_AGREEMENT,
                  {"departure_deadline": deadline.isoformat()})
        case_service.perform(ctx, case.reference, "agree_departure", {"departure_deadline": deadline})
        payment_service.propose(ctx, case.reference, {"method": "cash"})
        sup = Context(session=session, policy=policy, actor=session.get(User, api_staff.supervisor.id))
        payment_service.approve(sup, case.reference)
        results = _post_together(app, N, f"/api/v1/cases/{case.reference}/actions/pay_support",
                                 api_staff.headers["finance"],
                                 lambda i: {"idempotency_key": f"api-race-{i:04d}"})
        assert all(kind == "ok" for kind, _ in results), results
        statuses = sorted(status for _, (status, _) in results)
        assert statuses == [200] + [409] * (N - 1), statuses
        session.rollback()
        assert session.execute(select(Payment.status).where(Payment.case_id == case.id)
                               ).scalars().all() == ["disbursed"]
        assert transitions(session, case.id, "pay_support") == 1
    finally:
        session.close()
