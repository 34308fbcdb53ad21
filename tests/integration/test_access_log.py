"""Looks at personal data go to the access log, apart from the audit chain (DESIGN §5):
a read writes nothing to the chain and never queues on its head row; a look is one row per
reader, case, view and interval; the log answers "who looked at this case"."""
from __future__ import annotations

import datetime as dt
import threading

import pytest
from sqlalchemy import create_engine, event, func, select, text
from sqlmodel import Session

from returnprog import access_log, db as dbmod
from returnprog.models import AccessEvent, AuditEvent, AuditHead
from returnprog.services import Conflict, Context
from returnprog.services import case_views, cases as case_service

from ..conftest import fake_sign, intake

T0 = dt.datetime(2026, 12, 2, 9, 0, 10, tzinfo=dt.timezone.utc)


def at(ctx, moment):
    ctx.now = lambda: moment
    return ctx


def counts(session):
    session.expire_all()
    head = session.get(AuditHead, 1)
    return (session.execute(select(func.count()).select_from(AuditEvent)).scalar_one(),
            (head.seq, head.hash) if head else None,
            session.execute(select(func.count()).select_from(AccessEvent)).scalar_one())


@pytest.fixture
def case(ctx_for, staff):
    return case_service.open_case(ctx_for(staff.counsellor), intake(2))


def test_a_read_writes_nothing_to_the_chain_and_one_look_to_the_access_log(
        ctx_for, staff, session, case):
    events, head, looks = counts(session)
    case_service.read_case(at(ctx_for(staff.counsellor), T0), case.reference)
    assert counts(session) == (events, head, looks + 1)
    look = session.execute(select(AccessEvent)).scalar_one()
    assert (look.actor, look.actor_id, look.case_id, look.view, look.ip, look.channel) == (
        staff.counsellor.email, staff.counsellor.id, case.id, "case", "127.0.0.1", "web")
    assert look.first_at == T0


def test_reads_within_an_interval_are_one_look_and_the_next_interval_another(
        ctx_for, staff, session, case):
    for seconds in (0, 30, 300, 600):
        case_service.read_case(at(ctx_for(staff.counsellor), T0 + dt.timedelta(seconds=seconds)),
                               case.reference)
    assert counts(session)[2] == 1
    later = T0 + dt.timedelta(seconds=access_log.INTERVAL_SECONDS)
    case_service.read_case(at(ctx_for(staff.counsellor), later), case.reference)
    case_service.read_case(at(ctx_for(staff.supervisor), later), case.reference)
    assert counts(session)[2] == 3


def test_a_logged_look_reads_while_another_transaction_holds_the_chain_and_the_write_lock(
        ctx_for, staff, session, case, db_url):
    case_service.read_case(at(ctx_for(staff.counsellor), T0), case.reference)
    other = create_engine(db_url)
    with other.connect() as conn:
        # A writer in the middle of a change: holds SQLite's write lock, or PostgreSQL's
        # row lock on the chain's head.
        if db_url.startswith("sqlite"):
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        else:
            conn.execute(text("BEGIN"))
            conn.execute(text("SELECT seq FROM audit_head WHERE id = 1 FOR UPDATE"))
        done = threading.Event()

        def read():
            with Session(session.get_bind()) as s:
                ctx = Context(session=s, policy=ctx_for(staff.counsellor).policy,
                              actor=staff.counsellor, ip="127.0.0.1")
                case_service.read_case(at(ctx, T0 + dt.timedelta(seconds=60)), case.reference)
            done.set()

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        finished = done.wait(timeout=10)
        conn.rollback()
        reader.join(timeout=30)
    other.dispose()
    assert finished, "a repeated read waited for a writer"


def test_the_same_look_recorded_twice_at_once_is_one_row(session, staff, case, engine):
    look = access_log.Look(case_id=case.id, view="case")
    barrier = threading.Barrier(4)
    errors = []

    def record():
        try:
            with Session(engine) as s:
                barrier.wait()
                access_log.record(s, staff.counsellor, look, T0, ip=None)
                s.commit()
        except Exception as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=record) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert counts(session)[2] == 1


def test_document_downloads_and_payment_looks_name_what_was_seen(ctx_for, staff, session, case):
    fake_sign(session, case, "commitment")
    doc_id = session.execute(text("SELECT id FROM document WHERE case_id = :c"),
                             {"c": case.id}).scalars().first()
    session.rollback()
    case_views.document_for_download(at(ctx_for(staff.counsellor), T0), case.reference, doc_id)
    events, _head, _ = counts(session)
    looks = session.execute(select(AccessEvent.view, AccessEvent.subject)).all()
    assert [tuple(r) for r in looks] == [("document", str(doc_id))]
    assert session.execute(select(func.count()).select_from(AuditEvent).where(
        AuditEvent.action == "download_document")).scalar_one() == 0


def test_who_looked_at_the_case_newest_first_and_paged(ctx_for, staff, session, case):
    for minutes, user in ((0, staff.counsellor), (20, staff.supervisor), (40, staff.counsellor)):
        case_service.read_case(at(ctx_for(user), T0 + dt.timedelta(minutes=minutes)),
                               case.reference)
    first = case_service.case_looks(ctx_for(staff.supervisor), case.reference, limit=2)
    assert [x["actor_label"] for x in first["looks"]] == [staff.counsellor.email,
                                                          staff.supervisor.email]
    assert [x["actor"] for x in first["looks"]] == [
        {"id": u.id, "name": u.name} for u in (staff.counsellor, staff.supervisor)]
    rest = case_service.case_looks(ctx_for(staff.supervisor), case.reference,
                                   before_id=first["next_before_id"], limit=2)
    assert [x["actor"] for x in rest["looks"]] == [{"id": staff.counsellor.id,
                                                     "name": staff.counsellor.name}]
    assert rest["next_before_id"] is None


def test_the_trail_is_paged_newest_first(ctx_for, staff, session, case):
    case_service.update_intake(ctx_for(staff.counsellor), case.reference, intake(3), None)
    case_service.perform(ctx_for(staff.counsellor), case.reference, "leave_programme",
                         {"reason": "x"})
    total = session.execute(select(func.count()).select_from(AuditEvent).where(
        AuditEvent.case_id == case.id)).scalar_one()
    page = case_service.case_trail(ctx_for(staff.counsellor), case.reference, limit=1)
    assert len(page["events"]) == 1 and page["events"][0]["action"] == "leave_programme"
    seen = [e["seq"] for e in page["events"]]
    while page["next_before_seq"] is not None:
        page = case_service.case_trail(ctx_for(staff.counsellor), case.reference,
                                       before_seq=page["next_before_seq"], limit=1)
        seen += [e["seq"] for e in page["events"]]
    assert len(seen) == total and seen == sorted(seen, reverse=True)


def test_looks_an_older_chain_recorded_as_events_stay_in_the_chain_but_not_in_the_trail(
        ctx_for, staff, session, case):
    # Before the access log, reading a case appended a view_case event to the chain.
    from returnprog import audit

    audit.append(session, actor=staff.counsellor, action="view_case", case_id=case.id)
    session.commit()
    actions = [e["action"] for e in case_service.case_trail(
        ctx_for(staff.counsellor), case.reference, log_view=False)["events"]]
    assert actions == ["open_case"]
    assert audit.verify(session).ok


def _access_log_statements(engine):
    """The statements that touch the access log, as they run on ``engine``."""
    seen = []

    def note(_conn, _cursor, statement, *_args):
        if "access_log" in statement:
            seen.append(statement.split()[0].upper())
    event.listen(engine, "before_cursor_execute", note)
    return seen


def test_a_look_this_process_has_seen_costs_no_statement_for_the_rest_of_the_interval(
        ctx_for, staff, session, case, engine):
    seen = _access_log_statements(engine)
    case_service.read_case(at(ctx_for(staff.counsellor), T0), case.reference)
    assert seen == ["SELECT", "INSERT"]
    for seconds in (1, 60, 600):
        case_service.read_case(at(ctx_for(staff.counsellor), T0 + dt.timedelta(seconds=seconds)),
                               case.reference)
    assert seen == ["SELECT", "INSERT"]
    # Another reader, and the next interval, are new looks: asked and written.
    case_service.read_case(at(ctx_for(staff.supervisor), T0), case.reference)
    later = T0 + dt.timedelta(seconds=access_log.INTERVAL_SECONDS)
    case_service.read_case(at(ctx_for(staff.counsellor), later), case.reference)
    assert seen == ["SELECT", "INSERT"] * 3
    assert counts(session)[2] == 3


def test_a_look_found_in_the_log_is_remembered_too(ctx_for, staff, session, case, db_url):
    """Another worker wrote the row: this one asks once, then knows."""
    case_service.read_case(at(ctx_for(staff.counsellor), T0), case.reference)
    other = dbmod.make_engine(db_url)  # a second worker's engine: it knows nothing yet
    seen = _access_log_statements(other)
    try:
        for seconds in (5, 50):
            with Session(other, expire_on_commit=False) as s:
                ctx = Context(session=s, policy=ctx_for(staff.counsellor).policy,
                              actor=s.get(type(staff.counsellor), staff.counsellor.id),
                              ip="127.0.0.1")
                case_service.read_case(at(ctx, T0 + dt.timedelta(seconds=seconds)),
                                       case.reference)
    finally:
        other.dispose()
    assert seen == ["SELECT"]
    assert counts(session)[2] == 1


def test_a_look_whose_row_was_not_written_is_not_remembered(ctx_for, staff, session, case,
                                                            monkeypatch):
    real = access_log.record

    def failing(*args, **kwargs):
        raise Conflict("case.busy")
    monkeypatch.setattr(access_log, "record", failing)
    with pytest.raises(Conflict):
        case_service.read_case(at(ctx_for(staff.counsellor), T0), case.reference)
    monkeypatch.setattr(access_log, "record", real)
    case_service.read_case(at(ctx_for(staff.counsellor), T0 + dt.timedelta(seconds=5)),
                           case.reference)
    assert counts(session)[2] == 1


def test_the_remembered_looks_are_bounded_and_the_oldest_forgotten_first(
        ctx_for, staff, session, engine, monkeypatch):
    monkeypatch.setattr(access_log, "KNOWN_LOOKS", 2)
    first, second, third = (case_service.open_case(ctx_for(staff.counsellor), intake(1))
                            for _ in range(3))
    seen = _access_log_statements(engine)
    for c in (first, second, third, third, second, first):
        case_service.read_case(at(ctx_for(staff.counsellor), T0), c.reference)
    # The third look pushed the first out: reading it again asks (and finds its row).
    assert seen == ["SELECT", "INSERT"] * 3 + ["SELECT"]
    assert counts(session)[2] == 3


def test_a_database_restored_under_the_engine_is_not_taken_for_the_old_one(
        ctx_for, staff, session, case, engine):
    """What the process remembers belongs to its connection pool: disposing the engine
    (as swapping or restoring the database under a running process must) forgets it, so
    a look is recorded again in the restored database."""
    case_service.read_case(at(ctx_for(staff.counsellor), T0), case.reference)
    session.execute(AccessEvent.__table__.delete())  # the restored copy predates the look
    session.commit()
    engine.dispose()
    case_service.read_case(at(ctx_for(staff.counsellor), T0 + dt.timedelta(seconds=5)),
                           case.reference)
    assert counts(session)[2] == 1
