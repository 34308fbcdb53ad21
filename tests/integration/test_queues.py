"""The work queues (issue 13 item 4) against cases built through the real services, on
SQLite and PostgreSQL: each queue holds exactly the cases in its situation — of the
reader's own cases (counsellor) or team (supervisor), never another team's — and the
dashboard's counts are the queues' lengths."""
from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import func, or_, select, update

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


# --- the queue cache the dashboard counts from (issue 11) -------------------------------------

def _job(session, policy, now=None):
    """The scheduler's queues job, once: the cache brought up to date (as of ``now``)."""
    from returnprog.services import Context

    ctx = Context(session=session, policy=policy, actor=None, channel="job")
    if now is not None:
        ctx.now = lambda: now
        ctx.today = lambda: now.date()
    return queue_service.refresh_cache(ctx)


def _live(ctx) -> dict[str, int]:
    return {name: len(rows) for name, rows in queue_service.work_queues(ctx).items()}


def _stale_rows(session, case_ids, policy, now) -> list[int]:
    from returnprog.models import CaseQueue

    rows = session.execute(select(CaseQueue).where(CaseQueue.case_id.in_(case_ids))).scalars()
    key = queue_service.policy_key(policy)
    return sorted(r.case_id for r in rows if r.computed_seq != r.change_seq
                  or r.policy_key != key or queues_aware(r.recheck_at) <= now
                  or queues_aware(r.computed_at) > now)


def queues_aware(moment):
    from returnprog.queues import aware

    return aware(moment) if moment is not None else dt.datetime.min.replace(
        tzinfo=dt.timezone.utc)


def test_cached_counts_are_the_live_queues_before_and_after_the_job(world, staff, ctx_for,
                                                                      session, policy):
    anna = ctx_for(staff.counsellor)
    live = _live(anna)
    assert live["mine"] == 12
    # Nothing worked out yet: every case is judged by the reader, with the same answer.
    assert queue_service.queue_counts(anna) == live
    written = _job(session, policy)
    assert written >= len(world) - 3  # every open case (departed and the final ones aside)
    now = dt.datetime.now(dt.timezone.utc)
    own = [c.id for c in world.values()]
    assert _stale_rows(session, own, policy, now) == [world["departed"].id]  # final: skipped
    assert queue_service.queue_counts(anna) == live
    assert _job(session, policy) == 0  # nothing changed: nothing to do
    for user in (staff.other_counsellor, staff.counsellor2):
        assert queue_service.queue_counts(ctx_for(user)) == _live(ctx_for(user))


def test_a_change_by_any_path_is_seen_before_the_job_runs(world, staff, ctx_for, session,
                                                          policy):
    from sqlalchemy import text

    anna = ctx_for(staff.counsellor)
    _job(session, policy)
    before = queue_service.queue_counts(anna)
    # A service: the case that only needed its commitment confirmed moves on (to the
    # counsellor's next step, so the counts stay as they were).
    case_service.perform(anna, world["to_commit"].reference, "confirm_commitment", {})
    assert queue_service.queue_counts(anna) == _live(anna) == before
    # Hand-written SQL, past every service: the IND case's declaration disappears.
    session.execute(text("DELETE FROM document WHERE case_id = :c"), {"c": world["ind"].id})
    # ... and a signing link is withdrawn by a bare UPDATE.
    session.execute(update(SigningRequest).where(
        SigningRequest.case_id == world["linked"].id).values(
        revoked_at=dt.datetime.now(dt.timezone.utc)))
    session.commit()
    now = dt.datetime.now(dt.timezone.utc)
    stale = _stale_rows(session, [world[k].id for k in ("to_commit", "ind", "linked")],
                        policy, now)
    assert stale == sorted(world[k].id for k in ("to_commit", "ind", "linked"))
    moved = queue_service.queue_counts(anna)
    # Both cases are the counsellor's again: no declaration for the IND, no open link.
    assert moved == _live(anna) == {"mine": before["mine"] + 2, "ind": before["ind"] - 1,
                                    "participant": before["participant"] - 1}
    _job(session, policy)
    now = dt.datetime.now(dt.timezone.utc)
    assert _stale_rows(session, [world[k].id for k in ("to_commit", "ind", "linked")],
                       policy, now) == []
    assert queue_service.queue_counts(anna) == _live(anna)


def _copies_that_differ(session) -> list[int]:
    """Cases whose cache row's copy of the case columns (migration 0027) is not the case's."""
    from returnprog.models import Case, CaseQueue

    differs = [getattr(CaseQueue, c).is_distinct_from(getattr(Case, c))
               for c in ("counsellor_id", "team_id", "state", "destroyed_at")]
    return list(session.execute(select(Case.id).join(CaseQueue, CaseQueue.case_id == Case.id)
                                .where(or_(*differs))).scalars())


def test_the_cache_rows_copy_the_case_columns_whatever_changes_them(world, staff, ctx_for,
                                                                      session, policy):
    from sqlalchemy import text

    from returnprog.models import Case, CaseQueue

    session.rollback()
    # Every case opened by the services got its row with the copy filled in.
    assert session.execute(select(func.count()).select_from(CaseQueue).where(
        CaseQueue.counsellor_id.is_(None))).scalar_one() == 0
    assert _copies_that_differ(session) == []
    # A service moves a case on; hand-written SQL reassigns one, moves one to the other
    # team and destroys one: every copy follows in the same statement.
    case_service.perform(ctx_for(staff.counsellor), world["to_commit"].reference,
                         "confirm_commitment", {})
    session.execute(text('UPDATE "case" SET counsellor_id = :c WHERE id = :id'),
                    {"c": staff.counsellor2.id, "id": world["unsigned"].id})
    session.execute(update(Case).where(Case.id == world["linked"].id).values(
        team_id=staff.other_counsellor.team_id, counsellor_id=staff.other_counsellor.id))
    session.execute(update(Case).where(Case.id == world["no_place"].id).values(
        destroyed_at=dt.datetime.now(dt.timezone.utc)))
    session.commit()
    assert _copies_that_differ(session) == []
    row = session.get(CaseQueue, world["to_commit"].id)
    assert row.state == "committed"


def test_counts_follow_a_reassigned_case_while_the_cache_holds(world, staff, ctx_for,
                                                               session, policy):
    """Counted from the cache row's copy of the case: once the job has worked the cases
    out again, the counsellor who lost a case no longer counts it and the one who got it
    does, with no case judged afresh."""
    from returnprog.models import Case

    anna, bram = ctx_for(staff.counsellor), ctx_for(staff.counsellor2)
    _job(session, policy)
    before_anna, before_bram = queue_service.queue_counts(anna), queue_service.queue_counts(bram)
    # Anna's unsigned case ("mine") goes to Bram, past every service.
    session.execute(update(Case).where(Case.id == world["unsigned"].id).values(
        counsellor_id=staff.counsellor2.id))
    session.commit()
    _job(session, policy)
    now = dt.datetime.now(dt.timezone.utc)
    assert _stale_rows(session, [world["unsigned"].id], policy, now) == []
    after_anna, after_bram = queue_service.queue_counts(anna), queue_service.queue_counts(bram)
    assert after_anna == _live(anna) == {**before_anna, "mine": before_anna["mine"] - 1}
    assert after_bram == _live(bram) == {**before_bram, "mine": before_bram["mine"] + 1}


def test_time_alone_moves_a_case_past_its_link_expiry(world, staff, ctx_for, session, policy):
    _job(session, policy)
    later = dt.datetime.now(dt.timezone.utc) + dt.timedelta(hours=21)  # "soon" has expired
    anna = ctx_for(staff.counsellor)
    anna.now = lambda: later
    counts = queue_service.queue_counts(anna)
    assert counts == _live(anna)
    assert world["soon"].id in _stale_rows(session, [world["soon"].id], policy, later)
    # At 21 hours the expired link means a new one is the counsellor's work again.
    now_counts = queue_service.queue_counts(ctx_for(staff.counsellor))
    assert counts["mine"] == now_counts["mine"] + 1


def test_a_clock_set_back_does_not_meet_a_judgement_from_its_future(world, staff, ctx_for,
                                                                    session, policy):
    later = dt.datetime.now(dt.timezone.utc) + dt.timedelta(hours=1)
    _job(session, policy, now=later)
    soon = world["soon"].id
    assert _stale_rows(session, [soon], policy, later) == []
    now = dt.datetime.now(dt.timezone.utc)
    assert _stale_rows(session, [soon], policy, now) == [soon]
    anna = ctx_for(staff.counsellor)
    assert queue_service.queue_counts(anna) == _live(anna)


def test_another_policy_is_not_answered_from_the_cache(world, staff, ctx_for, session, policy):
    import dataclasses

    _job(session, policy)
    other = dataclasses.replace(policy, rtb_end=policy.rtb_end + dt.timedelta(days=1))
    anna = ctx_for(staff.counsellor)
    anna.policy = other
    assert queue_service.policy_key(other) != queue_service.policy_key(policy)
    assert queue_service.queue_counts(anna) == _live(anna)


def test_a_change_racing_the_job_is_never_hidden(world, staff, ctx_for, session, policy,
                                                 engine, monkeypatch):
    """A change committed after the job read a case and before it wrote the cache leaves
    the row stale. (On SQLite the job holds the write lock, so no change can come between;
    on PostgreSQL it can, and the compare on change_seq catches it.)"""
    from sqlalchemy import text

    if engine.dialect.name == "sqlite":
        pytest.skip("SQLite: the job holds the only write lock while it works")
    target = world["unsigned"].id
    judge = queue_service._judge_counsellor_cases

    def judge_then_race(ctx, query):
        judged = judge(ctx, query)
        with engine.begin() as other:  # another request, committed meanwhile
            other.execute(text("UPDATE participant SET phone = '+31600000000' "
                               "WHERE case_id = :c"), {"c": target})
        return judged
    monkeypatch.setattr(queue_service, "_judge_counsellor_cases", judge_then_race)
    _job(session, policy)
    monkeypatch.undo()
    now = dt.datetime.now(dt.timezone.utc)
    assert _stale_rows(session, [target], policy, now) == [target]
    assert _stale_rows(session, [world["linked"].id], policy, now) == []


def test_the_schedulers_queue_job_fills_the_cache_only_while_it_holds_the_lock(
        world, staff, ctx_for, scheduler_app, session):
    """The scheduler's own job (not the service it calls): nothing while another
    scheduler holds the lock; with the lock, every open case judged; then nothing to do.
    ``flask scheduler --once`` runs it too, so a cron-driven service keeps its cache."""
    from returnprog.scheduler import ReminderScheduler

    app = scheduler_app
    own = sorted(c.id for c in world.values())
    final = [world["departed"].id]  # a final case is never judged again

    def stale():
        session.rollback()  # a fresh snapshot: the scheduler wrote on its own connection
        return _stale_rows(session, own, holder.policy, dt.datetime.now(dt.timezone.utc))

    with app.app_context():
        holder, waiting = ReminderScheduler(app), ReminderScheduler(app)
        before = stale()
        assert len(before) > len(own) // 2  # nothing judged yet: the rows are stale
        assert holder.lock.try_acquire()
        try:
            assert waiting.queues_job() == 0  # not the active scheduler: no work
            assert stale() == before
            assert holder.queues_job() >= len(world) - 3
            assert stale() == final
            assert holder.queues_job() == 0  # nothing changed since
        finally:
            holder.lock.release()
        # A change makes its case's row stale; one --once round brings it up to date.
        case_service.perform(ctx_for(staff.counsellor), world["to_commit"].reference,
                             "confirm_commitment", {})
        assert stale() == sorted(final + [world["to_commit"].id])
        assert ReminderScheduler(app).run_once() == 0
        assert stale() == final
