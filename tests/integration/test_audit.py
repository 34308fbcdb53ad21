"""The audit trail is hash-chained: any edit, deletion or reordering is detected, and
verification names the first broken event (DESIGN §5 "Audit trail")."""
from __future__ import annotations

import pytest
from sqlalchemy import func, select, text

from returnprog import audit
from returnprog.models import AuditEvent, AuditHead
from returnprog.services import cases as case_service

from ..conftest import drive_to, intake


@pytest.fixture
def activity(ctx_for, staff, session):
    """Real activity: users created, cases opened, moved, read and closed. Returns the
    number of events written."""
    drive_to(ctx_for, staff, session, "departed")
    closed = case_service.open_case(ctx_for(staff.counsellor), intake())
    case_service.read_case(ctx_for(staff.counsellor), closed.reference)
    case_service.perform(ctx_for(staff.supervisor), closed.reference, "reject", {"reason": "x"})
    session.expire_all()
    n = session.execute(select(func.count()).select_from(AuditEvent)).scalar_one()
    assert n >= 20
    return n


def raw(session, sql, **params):
    session.execute(text(sql), params)
    session.commit()
    session.expire_all()


def seqs(session):
    return session.execute(select(AuditEvent.seq).order_by(AuditEvent.seq)).scalars().all()


def test_the_chain_verifies_after_real_activity(session, activity):
    report = audit.verify(session)
    assert report.ok, report
    assert report.events == activity
    assert report.broken_seq is None
    assert seqs(session) == list(range(1, activity + 1))
    head = session.get(AuditHead, 1)
    last = session.execute(select(AuditEvent).where(AuditEvent.seq == activity)).scalar_one()
    assert (head.seq, head.hash) == (activity, last.hash)


def test_each_event_links_to_the_one_before(session, activity):
    events = session.execute(select(AuditEvent).order_by(AuditEvent.seq)).scalars().all()
    assert events[0].prev_hash == audit.GENESIS
    for before, after in zip(events, events[1:]):
        assert after.prev_hash == before.hash
    assert len({e.hash for e in events}) == len(events)


def test_verification_reads_the_chain_in_batches(session, activity):
    # A batch boundary inside the chain must not break or hide anything.
    assert audit.verify(session, batch=4) == audit.verify(session)
    raw(session, "UPDATE audit_event SET actor = 'mallory' WHERE seq = 9")
    report = audit.verify(session, batch=4)
    assert (report.ok, report.broken_seq) == (False, 9)


@pytest.mark.parametrize("column, value", [
    ("details", '{"reason": "nothing to see"}'),
    ("actor", "someone-else@dtenv.example"),
    ("to_state", "forged-state"),
    ("from_state", "forged-state"),
    ("action", "forged_action"),
    ("ip", "203.0.113.66"),
    ("actor_id", None),
    ("case_id", None),
    ("at", "2020-01-01 00:00:00.000000"),
])
def test_editing_one_event_is_detected_at_that_event(session, activity, column, value):
    # Every column is inside the hash, including the client address and the actor's id.
    current = dict(session.execute(text(f"SELECT seq, {column} FROM audit_event")).all())
    session.rollback()
    target = next(seq for seq in range(activity // 2, activity + 1)
                  if current[seq] is not None and str(current[seq]) != str(value))
    raw(session, f"UPDATE audit_event SET {column} = :v WHERE seq = :s", v=value, s=target)
    report = audit.verify(session)
    assert not report.ok
    assert report.broken_seq == target
    assert report.events == target - 1
    assert "altered" in report.reason


def test_editing_the_first_event_is_detected(session, activity):
    raw(session, "UPDATE audit_event SET actor = 'x' WHERE seq = 1")
    assert audit.verify(session).broken_seq == 1


def test_an_edit_with_a_recomputed_hash_is_detected_at_the_next_event(session, activity):
    target = activity // 2
    ev = session.execute(select(AuditEvent).where(AuditEvent.seq == target)).scalar_one()
    forged = audit.digest({**audit.fields_of(ev), "actor": "mallory"})
    raw(session, "UPDATE audit_event SET actor = 'mallory', hash = :h WHERE seq = :s",
        h=forged, s=target)
    report = audit.verify(session)
    assert (report.ok, report.broken_seq) == (False, target + 1)
    assert "does not follow" in report.reason


def test_rewriting_the_last_event_with_a_recomputed_hash_is_caught_by_the_head(session, activity):
    ev = session.execute(select(AuditEvent).where(AuditEvent.seq == activity)).scalar_one()
    forged = audit.digest({**audit.fields_of(ev), "actor": "mallory"})
    raw(session, "UPDATE audit_event SET actor = 'mallory', hash = :h WHERE seq = :s",
        h=forged, s=activity)
    report = audit.verify(session)
    assert not report.ok
    assert report.broken_seq == activity + 1


def test_deleting_an_event_in_the_middle_is_detected_where_it_is_missing(session, activity):
    target = activity // 2
    raw(session, "DELETE FROM audit_event WHERE seq = :s", s=target)
    report = audit.verify(session)
    assert not report.ok
    assert report.broken_seq == target
    assert "missing" in report.reason


def test_deleting_the_first_event_is_detected(session, activity):
    raw(session, "DELETE FROM audit_event WHERE seq = 1")
    assert audit.verify(session).broken_seq == 1


def test_deleting_the_last_event_is_detected(session, activity):
    raw(session, "DELETE FROM audit_event WHERE seq = :s", s=activity)
    report = audit.verify(session)
    assert not report.ok
    assert report.broken_seq == activity
    assert report.events == activity - 1
    assert str(activity) in report.reason


def test_deleting_the_last_two_events_is_detected(session, activity):
    raw(session, "DELETE FROM audit_event WHERE seq >= :s", s=activity - 1)
    assert audit.verify(session).broken_seq == activity - 1


def test_emptying_the_trail_is_detected(session, activity):
    raw(session, "DELETE FROM audit_event")
    report = audit.verify(session)
    assert (report.ok, report.broken_seq, report.events) == (False, 1, 0)


def _swap(session, a, b):
    raw(session, "UPDATE audit_event SET seq = -1 WHERE seq = :a", a=a)
    raw(session, "UPDATE audit_event SET seq = :a WHERE seq = :b", a=a, b=b)
    raw(session, "UPDATE audit_event SET seq = :b WHERE seq = -1", b=b)


@pytest.mark.parametrize("distance", [1, 5])
def test_swapping_two_events_is_detected_at_the_earlier_one(session, activity, distance):
    a = activity // 2 - 2
    _swap(session, a, a + distance)
    report = audit.verify(session)
    assert not report.ok
    assert report.broken_seq == a


def test_swapping_two_events_contents_is_detected(session, activity):
    # Swap everything but seq and the links: the moved content no longer hashes.
    a, b = 5, 6
    cols = "actor, action, case_id, from_state, to_state, details"
    row_a = session.execute(text(f"SELECT {cols} FROM audit_event WHERE seq = :s"), {"s": a}).one()
    row_b = session.execute(text(f"SELECT {cols} FROM audit_event WHERE seq = :s"), {"s": b}).one()
    session.rollback()
    for seq, row in ((a, row_b), (b, row_a)):
        raw(session, "UPDATE audit_event SET actor = :actor, action = :action, case_id = :case_id, "
                     "from_state = :from_state, to_state = :to_state, details = :details "
                     "WHERE seq = :seq", seq=seq, **row._asdict())
    assert audit.verify(session).broken_seq == a


def test_an_inserted_event_is_detected(session, activity):
    ev = session.execute(select(AuditEvent).where(AuditEvent.seq == activity)).scalar_one()
    session.add(AuditEvent(seq=activity + 1, at=ev.at, actor="mallory", action="sign_in",
                           details="{}", prev_hash=ev.hash, hash="f" * 64))
    session.commit()
    report = audit.verify(session)
    assert (report.ok, report.broken_seq) == (False, activity + 1)


def test_appending_after_verification_keeps_the_chain_intact(ctx_for, staff, session, activity):
    assert audit.verify(session).ok
    case_service.open_case(ctx_for(staff.counsellor), intake())
    report = audit.verify(session)
    assert report.ok and report.events == activity + 1


# --- flask audit-verify -----------------------------------------------------------------------

@pytest.fixture
def cli(db_url, tmp_path):
    from returnprog import create_app

    app = create_app({"DATABASE_URL": db_url, "SECRET_KEY": "x"})
    app.instance_path = str(tmp_path / "instance")
    yield app.test_cli_runner()
    app.extensions["returnprog.engine"].dispose()


def test_the_audit_verify_command_reports_an_intact_chain(cli, activity):
    result = cli.invoke(args=["audit-verify"])
    assert result.exit_code == 0, result.output
    assert f"intact: {activity} events" in result.output


def test_the_audit_verify_command_exits_non_zero_on_a_broken_chain(cli, session, activity):
    raw(session, "UPDATE audit_event SET details = '{}' WHERE seq = 7")
    result = cli.invoke(args=["audit-verify"])
    assert result.exit_code == 1
    assert "BROKEN at event 7" in result.output


def test_the_audit_verify_command_notices_a_deleted_last_event(cli, session, activity):
    raw(session, "DELETE FROM audit_event WHERE seq = :s", s=activity)
    result = cli.invoke(args=["audit-verify"])
    assert result.exit_code == 1
    assert f"BROKEN at event {activity}" in result.output


def test_the_audit_verify_command_accepts_an_empty_database(cli):
    result = cli.invoke(args=["audit-verify"])
    assert result.exit_code == 0, result.output
    assert "intact: 0 events" in result.output


def _relink(session, version_of):
    """Recompute every event's hash and link with the formula ``version_of(seq)`` says,
    as the service would have written them (the head row follows)."""
    rows = session.execute(select(AuditEvent).order_by(AuditEvent.seq)).scalars().all()
    session.rollback()
    prev = audit.GENESIS
    for ev in rows:
        fields = {**audit.fields_of(ev), "prev_hash": prev, "chain_version": version_of(ev.seq)}
        new = audit.digest(fields)
        raw(session, "UPDATE audit_event SET chain_version = :v, prev_hash = :p, hash = :h "
                     "WHERE seq = :s", v=fields["chain_version"], p=prev, h=new, s=ev.seq)
        prev = new
    raw(session, "UPDATE audit_head SET hash = :h WHERE id = 1", h=prev)


def test_events_written_before_version_2_keep_verifying(session, activity):
    _relink(session, lambda seq: 1 if seq <= activity // 2 else 2)
    assert audit.verify(session).ok
    # ... but their ip stayed outside the hash: the reason version 2 exists.
    raw(session, "UPDATE audit_event SET ip = '203.0.113.9' WHERE seq = 2")
    assert audit.verify(session).ok
    raw(session, "UPDATE audit_event SET ip = '203.0.113.9' WHERE seq = :s", s=activity)
    assert audit.verify(session).broken_seq == activity


def test_an_event_cannot_claim_the_old_formula_after_the_new_one(session, activity):
    # Downgrading one recent event to version 1 (to edit its ip unseen), even with every
    # later hash recomputed, breaks the rule that version 1 is only a prefix.
    target = activity - 2
    _relink(session, lambda seq: 1 if seq == target else 2)
    report = audit.verify(session)
    assert (report.ok, report.broken_seq) == (False, target)
