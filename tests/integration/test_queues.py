"""The work queues (issue 13 item 4) against cases built through the real services, on
SQLite and PostgreSQL: each queue holds exactly the cases in its situation — of the
reader's own cases (counsellor) or team (supervisor), never another team's — and the
dashboard's counts are the queues' lengths."""
from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select, update

from returnprog import auth, workflow
from returnprog.models import Participant, SigningRequest
from returnprog.services import cases as case_service
from returnprog.services import figures
from returnprog.services import payment as payment_service
from returnprog.services import queues as queue_service
from returnprog.services import signing as signing_service

from ..conftest import confirm_ind, drive_to, fake_sign, intake


def _refs(rows) -> list[str]:
    return sorted(r["reference"] for r in rows)


def _adults(session, case) -> list[Participant]:
    today = dt.date.today()
    return [p for p in session.execute(select(Participant).where(
        Participant.case_id == case.id).order_by(Participant.id)).scalars() if p.age_on(today) >= 18]


def _link_all(ctx, session, case, kind, expires_in: dt.timedelta | None = None):
    """A signing link for every adult; ``expires_in`` moves their expiry (from now)."""
    ids = []
    for p in _adults(session, case):
        request, _token = signing_service.create_signing_link(ctx, case.reference, p.id, kind, {})
        ids.append(request.id)
    if expires_in is not None:
        session.execute(update(SigningRequest).where(SigningRequest.id.in_(ids)).values(
            expires_at=dt.datetime.now(dt.timezone.utc) + expires_in))
        session.commit()


@pytest.fixture
def world(staff, ctx_for, session):
    """A case in each situation for counsellor Anna (team Noord), a case of her colleague
    Bram, and the same situations on team Zuid's cases."""
    c = staff.counsellor
    w = {}
    w["unsigned"] = case_service.open_case(ctx_for(c), intake(2, 1))
    w["linked"] = case_service.open_case(ctx_for(c), intake(1))
    _link_all(ctx_for(c), session, w["linked"], workflow.COMMITMENT)
    w["soon"] = case_service.open_case(ctx_for(c), intake(1))
    _link_all(ctx_for(c), session, w["soon"], workflow.COMMITMENT, dt.timedelta(hours=20))
    w["expired"] = case_service.open_case(ctx_for(c), intake(1))
    _link_all(ctx_for(c), session, w["expired"], workflow.COMMITMENT, -dt.timedelta(hours=1))
    w["to_commit"] = case_service.open_case(ctx_for(c), intake(1))
    fake_sign(session, w["to_commit"], workflow.COMMITMENT)
    w["no_place"] = case_service.open_case(ctx_for(c), intake(1, destination_place=None))
    w["ind"] = drive_to(ctx_for, staff, session, "committed", adults=1, minors=0)
    fake_sign(session, w["ind"], workflow.WITHDRAWAL_DECLARATION)
    w["to_withdraw"] = drive_to(ctx_for, staff, session, "committed", adults=1, minors=0)
    fake_sign(session, w["to_withdraw"], workflow.WITHDRAWAL_DECLARATION)
    confirm_ind(ctx_for(c), w["to_withdraw"])
    w["agreement"] = drive_to(ctx_for, staff, session, "asylum_withdrawn", adults=1, minors=0)
    w["to_propose"] = drive_to(ctx_for, staff, session, "departure_agreed", adults=1, minors=0)
    w["proposed"] = drive_to(ctx_for, staff, session, "departure_agreed", adults=1, minors=0)
    payment_service.propose(ctx_for(c), w["proposed"].reference, {"method": "cash"})
    w["approved"] = drive_to(ctx_for, staff, session, "departure_agreed", adults=1, minors=0)
    payment_service.propose(ctx_for(c), w["approved"].reference, {
        "method": "transfer", "iban": "NL91ABNA0417164300", "account_holder": "O. Kovalenko"})
    payment_service.approve(ctx_for(staff.supervisor), w["approved"].reference)
    w["paid"] = drive_to(ctx_for, staff, session, "support_paid", adults=1, minors=0)
    fake_sign(session, w["paid"], workflow.PAYMENT_RECEIPT)  # paid in cash: receipt first
    session.commit()
    w["departed"] = drive_to(ctx_for, staff, session, "departed", adults=1, minors=0)
    w["overdue"] = drive_to(ctx_for, staff, session, "departure_agreed", adults=1, minors=0,
                            deadline=dt.date.today() + dt.timedelta(days=30))
    from returnprog.models import Case
    session.execute(update(Case).where(Case.id == w["overdue"].id).values(
        departure_deadline=dt.date.today() - dt.timedelta(days=3)))
    session.commit()
    w["extension"] = drive_to(ctx_for, staff, session, "departure_agreed", adults=2, minors=0,
                              deadline=dt.date.today() + dt.timedelta(days=20))
    later = dt.date.today() + dt.timedelta(days=40)
    fake_sign(session, w["extension"], workflow.ADDENDUM, {"departure_deadline": later.isoformat()})
    w["half_extension"] = drive_to(ctx_for, staff, session, "departure_agreed", adults=2,
                                   minors=0, deadline=dt.date.today() + dt.timedelta(days=20))
    # Only one of the two adults has signed the addendum: not the supervisor's turn yet.
    from returnprog.models import Document
    fake_sign(session, w["half_extension"], workflow.ADDENDUM,
              {"departure_deadline": later.isoformat()})
    first_adult = _adults(session, w["half_extension"])[0]
    session.execute(Document.__table__.delete().where(
        Document.case_id == w["half_extension"].id, Document.kind == workflow.ADDENDUM,
        Document.participant_id == first_adult.id))
    session.commit()
    # Bram's case (same team): not Anna's work. Bram will propose the payment on one of
    # Anna's cases (a colleague standing in).
    w["bram"] = case_service.open_case(ctx_for(staff.counsellor2), intake(1))
    w["bram_proposed"] = drive_to(ctx_for, staff, session, "departure_agreed", adults=1, minors=0)
    # Team Zuid: every situation again, none of it visible to team Noord.
    oc = staff.other_counsellor
    w["zuid_unsigned"] = case_service.open_case(ctx_for(oc), intake(1))
    w["zuid_linked"] = case_service.open_case(ctx_for(oc), intake(1))
    _link_all(ctx_for(oc), session, w["zuid_linked"], workflow.COMMITMENT)
    zuid = case_service.open_case(ctx_for(oc), intake(1))
    fake_sign(session, zuid, workflow.COMMITMENT)
    case_service.perform(ctx_for(oc), zuid.reference, "confirm_commitment", {})
    fake_sign(session, zuid, workflow.WITHDRAWAL_DECLARATION)
    w["zuid_ind"] = zuid
    return w


def test_counsellor_queues_hold_exactly_their_cases(world, staff, ctx_for):
    w = world
    q = queue_service.work_queues(ctx_for(staff.counsellor))
    assert set(q) == {"mine", "participant", "ind"}
    mine = {r["reference"]: r for r in q["mine"]}
    expect_mine = {"unsigned": "sign", "expired": "sign", "to_commit": "confirm_commitment",
                   "no_place": "complete_intake", "to_withdraw": "record_withdrawal",
                   "agreement": "sign", "to_propose": "propose_payment",
                   "paid": "confirm_departure", "overdue": "propose_payment",
                   "extension": "propose_payment", "half_extension": "propose_payment",
                   "bram_proposed": "propose_payment"}
    assert {ref: r["step"] for ref, r in mine.items()} == {
        w[k].reference: step for k, step in expect_mine.items()}
    assert len(mine[w["unsigned"].reference]["names"]) == 2  # both adults, not the child
    assert mine[w["agreement"].reference]["kinds"] == [workflow.DEPARTURE_AGREEMENT]
    assert any(r["code"] == "intake_place" for r in mine[w["no_place"].reference]["reasons"])
    participant = {r["reference"]: r for r in q["participant"]}
    assert set(participant) == {w[k].reference for k in ("linked", "soon", "expired")}
    assert [participant[w[k].reference]["expiring_soon"] for k in ("linked", "soon", "expired")] \
        == [False, True, False]
    assert [participant[w[k].reference]["expired"] for k in ("linked", "soon", "expired")] \
        == [False, False, True]
    # The ones needing attention first: expired, then expiring soon.
    assert [r["reference"] for r in q["participant"]][:2] == [w["expired"].reference,
                                                              w["soon"].reference]
    assert _refs(q["ind"]) == [w["ind"].reference]
    ind = q["ind"][0]
    assert ind["step"] == "record_ind" and ind["days_waiting"] == 0 and ind["since"] is not None
    # Not in any of Anna's queues: decided elsewhere, closed, a colleague's, another team's.
    everything = {r["reference"] for rows in q.values() for r in rows}
    for k in ("proposed", "approved", "departed", "bram", "zuid_unsigned", "zuid_linked",
              "zuid_ind"):
        assert w[k].reference not in everything, k


def test_the_other_teams_counsellor_sees_only_their_own(world, staff, ctx_for):
    w = world
    q = queue_service.work_queues(ctx_for(staff.other_counsellor))
    assert _refs(q["mine"]) == [w["zuid_unsigned"].reference]
    assert _refs(q["participant"]) == [w["zuid_linked"].reference]
    assert _refs(q["ind"]) == [w["zuid_ind"].reference]


def test_ind_days_waiting_count_from_the_last_declaration(world, staff, ctx_for):
    ten_days_on = dt.date.today() + dt.timedelta(days=10)
    ind = queue_service.work_queues(ctx_for(staff.counsellor, today=ten_days_on), "ind")["ind"]
    assert [r["days_waiting"] for r in ind] == [10]


def test_supervisor_queues(world, staff, ctx_for, session):
    w = world
    # Bram's proposal; Anna's proposal on "proposed".
    payment_service.propose(ctx_for(staff.counsellor2), w["bram_proposed"].reference,
                            {"method": "cash"})
    q = queue_service.work_queues(ctx_for(staff.supervisor))
    assert set(q) == {"approvals", "extensions", "overdue"}
    assert _refs(q["approvals"]) == sorted([w["proposed"].reference, w["bram_proposed"].reference])
    assert all(r["step"] == "decide_payment" for r in q["approvals"])
    assert _refs(q["extensions"]) == [w["extension"].reference]
    ext = q["extensions"][0]
    assert ext["deadline"] == dt.date.today() + dt.timedelta(days=40) and ext["reasons"] == []
    assert _refs(q["overdue"]) == [w["overdue"].reference]
    assert q["overdue"][0]["days_overdue"] == 3 and q["overdue"][0]["step"] == "lapse"
    assert q["overdue"][0]["counsellor"] == staff.counsellor.name != staff.counsellor.email
    other = queue_service.work_queues(ctx_for(staff.other_supervisor))
    assert all(rows == [] for rows in other.values())


def test_a_supervisor_never_sees_their_own_proposal(staff, ctx_for, session):
    """Four eyes by person: a proposal from the counsellor account of the same person is not
    in that person's approval queue, but in another supervisor's."""
    twin = auth.create_user(session, email="sanne.c@dtenv.example", role="counsellor",
                            password="correct horse battery", person="P-1001")
    boss = auth.create_user(session, email="sanne.s@dtenv.example", role="supervisor",
                            password="correct horse battery", person="P-1001")
    case = case_service.open_case(ctx_for(twin), intake(1))
    fake_sign(session, case, workflow.COMMITMENT)
    case_service.perform(ctx_for(twin), case.reference, "confirm_commitment", {})
    fake_sign(session, case, workflow.WITHDRAWAL_DECLARATION)
    confirm_ind(ctx_for(twin), case)
    case_service.perform(ctx_for(twin), case.reference, "record_withdrawal", {})
    deadline = dt.date.today() + dt.timedelta(days=30)
    fake_sign(session, case, workflow.DEPARTURE_AGREEMENT,
              {"departure_deadline": deadline.isoformat()})
    case_service.perform(ctx_for(twin), case.reference, "agree_departure",
                         {"departure_deadline": deadline})
    payment_service.propose(ctx_for(twin), case.reference, {"method": "cash"})
    assert queue_service.work_queues(ctx_for(boss), "approvals")["approvals"] == []
    assert _refs(queue_service.work_queues(ctx_for(staff.supervisor), "approvals")["approvals"]) \
        == [case.reference]


def test_finance_queue_lists_approved_payments(world, staff, ctx_for):
    q = queue_service.work_queues(ctx_for(staff.finance))
    assert set(q) == {"to_pay"}
    assert _refs(q["to_pay"]) == [world["approved"].reference]
    row = q["to_pay"][0]
    assert row["step"] == "pay_support" and row["method"] == "transfer" and row["to_export"]


def test_dashboard_counts_are_the_queue_lengths(world, staff, ctx_for):
    for user in (staff.counsellor, staff.supervisor, staff.finance, staff.other_counsellor):
        queues = queue_service.work_queues(ctx_for(user))
        counts = figures.dashboard(ctx_for(user))["queues"]
        assert counts == {name: len(rows) for name, rows in queues.items()}
    assert figures.dashboard(ctx_for(staff.counsellor))["queues"]["mine"] == 12


def test_an_unknown_or_foreign_queue_is_not_found(staff, ctx_for):
    from returnprog.services import NotFound
    with pytest.raises(NotFound):
        queue_service.work_queues(ctx_for(staff.counsellor), "approvals")
    with pytest.raises(NotFound):
        queue_service.work_queues(ctx_for(staff.supervisor), "nonsense")
    assert queue_service.work_queues(ctx_for(staff.admin)) == {}
