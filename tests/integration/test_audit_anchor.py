"""Signed checkpoints outside the database catch what the chain alone cannot: a truncated
tail with the head row adjusted, and a rewrite that re-hashes every later event
(issue 10, "audit anchored")."""
from __future__ import annotations

import datetime as dt
import json
import stat

import pytest
from sqlalchemy import select, text

from returnprog import anchor, audit, documents
from returnprog.models import AuditEvent

from .test_audit import activity, cli, raw  # noqa: F401 - fixtures shared with the chain tests

NOW = dt.datetime(2026, 12, 2, 10, 0, tzinfo=dt.timezone.utc)


@pytest.fixture
def seal(tmp_path):
    return documents.ensure_dev_seal(tmp_path / "seal")


@pytest.fixture
def path(tmp_path):
    return tmp_path / "anchors" / anchor.FILE_NAME


CHAIN = "test-chain"


def write(session, path, seal, now=NOW, chain=CHAIN):
    return anchor.write(session, path, anchor.seal_key(seal), seal.cert_pem, now=now,
                        chain=chain)


def verify(session, path, seal):
    found = anchor.read(path, [seal.cert_pem], CHAIN)
    assert found.problems == []
    return audit.verify(session, checkpoints=found.checkpoints)


def truncate_to(session, keep: int):
    """What someone with database access does to hide the last events: delete them and
    make the head row point at the new last event."""
    last = session.execute(select(AuditEvent).where(AuditEvent.seq == keep)).scalar_one()
    raw(session, "DELETE FROM audit_event WHERE seq > :k", k=keep)
    raw(session, "UPDATE audit_head SET seq = :s, hash = :h WHERE id = 1", s=keep, h=last.hash)


def rehash_from(session, target: int):
    """Rewrite one event and recompute every hash after it, head included."""
    rows = session.execute(select(AuditEvent).order_by(AuditEvent.seq)).scalars().all()
    session.rollback()
    prev = audit.GENESIS
    for ev in rows:
        fields = audit.fields_of(ev)
        if ev.seq == target:
            fields["details"] = '{"reason": "rewritten"}'
            # A thorough forger recomputes the personal digest too (version 3).
            fields["personal_digest"] = audit.personal_digest(
                fields["personal_salt"], fields["details"], fields["ip"])
        if ev.seq >= target:
            fields["prev_hash"] = prev
            new = audit.digest(fields)
            raw(session, "UPDATE audit_event SET details = :d, personal_digest = :g, "
                         "prev_hash = :p, hash = :h WHERE seq = :s", d=fields["details"],
                g=fields["personal_digest"], p=prev, h=new, s=ev.seq)
            prev = new
        else:
            prev = ev.hash
    raw(session, "UPDATE audit_head SET hash = :h WHERE id = 1", h=prev)


def test_a_checkpoint_covers_the_head_and_the_chain_verifies_through_it(
        session, activity, seal, path):
    made = write(session, path, seal)
    assert (made.seq, made.at) == (activity, "2026-12-02T10:00:00+00:00")
    assert verify(session, path, seal).ok
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    # Nothing new: no second line; new events: a second checkpoint, appended.
    assert write(session, path, seal) is None
    assert len(path.read_text().splitlines()) == 1


def test_truncation_with_the_head_adjusted_passes_the_chain_but_not_the_checkpoint(
        session, activity, seal, path):
    write(session, path, seal)
    truncate_to(session, activity - 3)
    assert audit.verify(session).ok  # the chain alone is fooled
    report = verify(session, path, seal)
    assert not report.ok and report.broken_seq == activity - 2
    assert "events were removed" in report.reason and f"covers event {activity}" in report.reason


def test_a_full_rehash_passes_the_chain_but_not_the_checkpoint(session, activity, seal, path):
    write(session, path, seal)
    rehash_from(session, activity // 2)
    assert audit.verify(session).ok  # the chain alone is fooled
    report = verify(session, path, seal)
    assert not report.ok and report.broken_seq == activity
    assert "rewritten" in report.reason


def test_every_checkpoint_counts_not_only_the_last(ctx_for, staff, session, activity, seal, path):
    from returnprog.services import cases as case_service

    from ..conftest import intake

    write(session, path, seal)
    case_service.open_case(ctx_for(staff.counsellor), intake())
    write(session, path, seal, now=NOW + dt.timedelta(minutes=10))
    assert len(anchor.read(path, [seal.cert_pem], CHAIN).checkpoints) == 2
    rehash_from(session, activity - 1)  # before the first checkpoint, re-hashed up to the head
    raw(session, "UPDATE audit_head SET hash = (SELECT hash FROM audit_event WHERE seq = :s)",
        s=activity + 1)
    report = verify(session, path, seal)
    assert not report.ok and report.broken_seq == activity


def test_an_edited_or_foreign_checkpoint_is_reported(session, activity, seal, path, tmp_path):
    write(session, path, seal)
    record = json.loads(path.read_text())
    record["seq"] = activity - 5  # moved back to hide a truncation
    path.write_text(json.dumps(record) + "\n")
    found = anchor.read(path, [seal.cert_pem], CHAIN)
    assert found.checkpoints == [] and "does not verify" in found.problems[0]
    other = documents.ensure_dev_seal(tmp_path / "other-seal")
    path.unlink()
    anchor.write(session, path, anchor.seal_key(other), other.cert_pem, now=NOW, chain=CHAIN)
    found = anchor.read(path, [seal.cert_pem], CHAIN)
    assert found.checkpoints == [] and "does not trust" in found.problems[0]


def test_checkpoints_of_another_database_in_the_same_file_are_left_aside(
        session, activity, seal, path):
    write(session, path, seal, chain="another-database")
    found = anchor.read(path, [seal.cert_pem], CHAIN)
    assert (found.checkpoints, found.problems, found.others) == ([], [], 1)
    assert write(session, path, seal) is not None  # this database gets its own checkpoint
    truncate_to(session, activity - 1)
    assert not verify(session, path, seal).ok


def test_the_chain_name_comes_from_configuration_without_the_password():
    assert anchor.chain_name({"DATABASE_URL": "postgresql+psycopg://rp:s3cret@db:5432/rp"}) \
        == "postgresql+psycopg://rp@db:5432/rp"
    assert anchor.chain_name({"AUDIT_CHAIN_NAME": "dtenv-prod", "DATABASE_URL": "x"}) == "dtenv-prod"


def test_the_commands_write_checkpoints_and_verify_against_them(cli, session, activity):
    made = cli.invoke(args=["audit-checkpoint"])
    assert made.exit_code == 0 and f"event {activity}" in made.output
    result = cli.invoke(args=["audit-verify"])
    assert result.exit_code == 0, result.output
    assert f"the last covers event {activity}" in result.output
    truncate_to(session, activity - 1)
    result = cli.invoke(args=["audit-verify"])
    assert result.exit_code == 1
    assert "events were removed" in result.output


def test_the_scheduler_writes_a_checkpoint_on_its_rounds(db_url, tmp_path, activity):
    from returnprog import create_app
    from returnprog.scheduler import ReminderScheduler

    app = create_app({"DATABASE_URL": db_url, "SECRET_KEY": "x",
                      "AUDIT_CHECKPOINT_PATH": str(tmp_path / "cp.jsonl"),
                      "SMTP_PORT": 9, "SMTP_TIMEOUT": 1})
    app.instance_path = str(tmp_path / "instance")
    with app.app_context():
        assert ReminderScheduler(app).run_once() == 0
    lines = (tmp_path / "cp.jsonl").read_text().splitlines()
    assert [json.loads(x)["seq"] for x in lines] == [activity]
    app.extensions["returnprog.engine"].dispose()
