"""50 concurrent disbursement attempts on one case, through the services and through the
HTTP API, on SQLite and on PostgreSQL: exactly one payment is disbursed, nothing crashes
(no 500), and replays of the winning request get the first result."""
from __future__ import annotations

import datetime as dt
import json
import threading

import pytest
from sqlalchemy import func, select
from sqlmodel import Session

from returnprog import audit, workflow
from returnprog.models import AuditEvent, Case, Payment, User
from returnprog.policy import DEFAULT_POLICY
from returnprog.services import Context, ServiceError
from returnprog.services import cases as case_service
from returnprog.services import batches as batch_service
from returnprog.services import payment as payment_service

from ..conftest import confirm_ind, drive_to, fake_sign, intake

N = 50
MODES = ("same_key", "mixed_keys")


def race(n, attempt):
    """Run ``attempt(i)`` in ``n`` threads released at the same moment; collect what each
    returned or raised (an unexpected exception is recorded, never swallowed)."""
    barrier = threading.Barrier(n)
    results = [None] * n

    def run(i):
        barrier.wait()
        try:
            results[i] = ("ok", attempt(i))
        except ServiceError as exc:
            results[i] = (exc.code, exc.message)
        except Exception as exc:  # noqa: BLE001 — a crash is a test failure, reported below
            results[i] = ("crash", repr(exc))

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads), "a disbursement attempt hung"
    return results


def keys_for(mode, ref):
    same = f"pay-{ref}-same"
    return [same if mode == "same_key" or i % 2 == 0 else f"pay-{ref}-{i:02d}" for i in range(N)]


def check_exactly_once(session, case_id, keys, outcomes):
    """Exactly one payment disbursed, one transition, and every attempt with the winning
    key answered as the first one was; every other attempt refused with a conflict."""
    session.rollback()  # end any old read snapshot (SQLite WAL) before looking
    paid = session.execute(select(Payment).where(Payment.case_id == case_id)).scalars().all()
    assert [p.status for p in paid] == ["disbursed"]
    winner = paid[0].idempotency_key
    assert session.get(Case, case_id).state == "support_paid"
    transitions = session.execute(select(func.count()).select_from(AuditEvent).where(
        AuditEvent.case_id == case_id, AuditEvent.action == "pay_support")).scalar_one()
    assert transitions == 1
    won = [o for k, o in zip(keys, outcomes) if k == winner]
    lost = [o for k, o in zip(keys, outcomes) if k != winner]
    assert won and all(o[0] == "ok" for o in won), won
    assert all(o[0] == "conflict" for o in lost), lost
    assert len({json.dumps(o[1], sort_keys=True, default=str) for o in won}) == 1, \
        "replays must return the first result"
    assert audit.verify(session).ok
    return winner


@pytest.mark.parametrize("mode", MODES)
def test_fifty_concurrent_disbursements_through_the_services(mode, engine, ctx_for, staff,
                                                             session):
    case = drive_to(ctx_for, staff, session, "departure_agreed")
    p = payment_service.propose(ctx_for(staff.counsellor), case.reference,
                                {"method": "transfer", "iban": "NL91ABNA0417164300",
                                 "account_holder": "Olena Kovalenko"})
    payment_service.approve(ctx_for(staff.supervisor), case.reference, p.id)
    keys = keys_for(mode, case.reference)
    finance_id = staff.finance.id

    def attempt(i):
        with Session(engine, expire_on_commit=False) as own:  # one session per thread
            ctx = Context(session=own, policy=DEFAULT_POLICY, actor=own.get(User, finance_id),
                          ip="127.0.0.1", user_agent="race")
            done = payment_service.disburse(ctx, case.reference, {"idempotency_key": keys[i]})
            return {"state": done.state, "version": done.version}

    outcomes = race(N, attempt)
    assert not [o for o in outcomes if o[0] == "crash"], outcomes
    winner = check_exactly_once(session, case.id, keys, outcomes)
    if mode == "same_key":
        assert all(o == ("ok", outcomes[0][1]) for o in outcomes)
    # A later replay of the winner still gets the first result; a loser's key is refused.
    with Session(engine, expire_on_commit=False) as own:
        ctx = Context(session=own, policy=DEFAULT_POLICY, actor=own.get(User, finance_id))
        again = payment_service.disburse(ctx, case.reference, {"idempotency_key": winner})
        assert {"state": again.state, "version": again.version} == next(
            o[1] for o in outcomes if o[0] == "ok")


@pytest.mark.parametrize("mode", MODES)
def test_fifty_concurrent_disbursements_through_the_http_api(mode, app, api_staff):
    engine = app.extensions["returnprog.engine"]
    boss = app.test_client()
    h = api_staff.headers
    created = boss.post("/api/v1/cases", headers=h["counsellor"],
                        json=json.loads(json.dumps(intake(2, 1), default=str)))
    assert created.status_code == 201, created.get_json()
    ref = created.get_json()["reference"]
    # The case reaches departure_agreed through the real services; the documents are
    # recorded with conftest's fake_sign because the documents flow is built elsewhere.
    with Session(engine, expire_on_commit=False) as s:
        counsellor = s.get(User, api_staff.counsellor.id)
        ctx = lambda: Context(session=s, policy=DEFAULT_POLICY, actor=counsellor)  # noqa: E731
        case = s.execute(select(Case).where(Case.reference == ref)).scalar_one()
        deadline = dt.date.today() + dt.timedelta(days=30)
        fake_sign(s, case, workflow.COMMITMENT)
        case_service.perform(ctx(), ref, "confirm_commitment", {})
        fake_sign(s, case, workflow.WITHDRAWAL_DECLARATION)
        confirm_ind(ctx(), case)
        case_service.perform(ctx(), ref, "record_withdrawal", {})
        fake_sign(s, case, workflow.DEPARTURE_AGREEMENT, {"departure_deadline": deadline.isoformat()})
        case_service.perform(ctx(), ref, "agree_departure", {"departure_deadline": deadline})
        case_id = case.id
    proposed = boss.post(f"/api/v1/cases/{ref}/payment", headers=h["counsellor"],
                         json={"method": "cash"})
    assert proposed.status_code == 201, proposed.get_json()
    approved = boss.post(f"/api/v1/cases/{ref}/payment/approve", headers=h["supervisor"],
                         json={"payment_id": proposed.get_json()["id"]})
    assert approved.status_code == 200, approved.get_json()
    keys = keys_for(mode, ref)

    def attempt(i):
        client = app.test_client()  # one client (and one request context) per thread
        r = client.post(f"/api/v1/cases/{ref}/actions/pay_support", headers=h["finance"],
                        json={"idempotency_key": keys[i]})
        if r.status_code == 200:
            return r.get_json()
        raise _HttpError(r.status_code, r.get_json())

    outcomes = race(N, attempt)
    statuses = sorted({o[0] for o in outcomes})
    assert "crash" not in statuses and "internal_error" not in statuses, outcomes
    assert set(statuses) <= {"ok", "conflict"}, outcomes
    with Session(engine, expire_on_commit=False) as s:
        winner = check_exactly_once(s, case_id, keys, outcomes)
    bodies = [o[1] for o in outcomes if o[0] == "ok"]
    assert all(b["state"] == "support_paid" for b in bodies)
    assert [p["status"] for p in bodies[0]["payments"]] == ["disbursed"]
    if mode == "same_key":
        assert len(bodies) == N
    replay = boss.post(f"/api/v1/cases/{ref}/actions/pay_support", headers=h["finance"],
                       json={"idempotency_key": winner})
    assert replay.status_code == 200 and replay.get_json() == bodies[0]
    other = boss.post(f"/api/v1/cases/{ref}/actions/pay_support", headers=h["finance"],
                      json={"idempotency_key": f"{winner}-different"})
    assert other.status_code == 409


class _HttpError(ServiceError):
    """An HTTP error answer, recorded by its error code ("conflict", "internal_error", …)."""

    def __init__(self, status, body):
        error = (body or {}).get("error", {})
        super().__init__(error.get("message", str(status)), error.get("details"))
        self.status, self.code = status, error.get("code", str(status))


def test_concurrent_exports_put_each_payment_in_one_batch(engine, ctx_for, staff, session):
    cases = []
    for _ in range(3):
        case = drive_to(ctx_for, staff, session, "departure_agreed", adults=1, minors=0)
        p = payment_service.propose(ctx_for(staff.counsellor), case.reference,
                                    {"method": "transfer", "iban": "NL91ABNA0417164300",
                                     "account_holder": "Olena Kovalenko"})
        payment_service.approve(ctx_for(staff.supervisor), case.reference, p.id)
        payment_service.disburse(ctx_for(staff.finance), case.reference,
                                 {"idempotency_key": f"pay-{case.reference}"})
        cases.append(case)
    finance_id = staff.finance.id

    def attempt(i):
        with Session(engine, expire_on_commit=False) as own:
            ctx = Context(session=own, policy=DEFAULT_POLICY, actor=own.get(User, finance_id))
            batch = batch_service.create_batch(ctx, "sepa" if i % 2 else None)
            return batch.id

    outcomes = race(10, attempt)
    assert not [o for o in outcomes if o[0] not in ("ok", "conflict")], outcomes
    won = [o[1] for o in outcomes if o[0] == "ok"]
    assert len(won) == 1, outcomes
    session.rollback()
    batches = {p.export_batch_id for p in session.execute(select(Payment)).scalars()}
    assert batches == {won[0]}
    assert session.execute(select(func.count()).select_from(AuditEvent).where(
        AuditEvent.action == "create_batch")).scalar_one() == 1


def test_concurrent_proposals_leave_one_live_payment(engine, ctx_for, staff, session):
    case = drive_to(ctx_for, staff, session, "departure_agreed")
    ids = [staff.counsellor.id, staff.counsellor2.id]

    def attempt(i):
        with Session(engine, expire_on_commit=False) as own:
            ctx = Context(session=own, policy=DEFAULT_POLICY, actor=own.get(User, ids[i % 2]))
            return payment_service.propose(ctx, case.reference, {"method": "cash"}).id

    outcomes = race(20, attempt)
    assert sorted({o[0] for o in outcomes}) == ["conflict", "ok"], outcomes
    assert len([o for o in outcomes if o[0] == "ok"]) == 1
    session.rollback()
    assert len(session.execute(select(Payment).where(Payment.case_id == case.id)).scalars().all()) == 1
