"""The records lifecycle against real SQLite and PostgreSQL (issue 16): a closed case gets its
archive fields; time travel through its retention term puts it on a destruction list on
its action date and not a day before; a reviewer's removal and a legal hold keep a case;
two people review; destruction leaves a tombstone, no personal value anywhere in the
database (the SQLite file's raw bytes, every text and binary column on both) and an audit
chain that verifies; a restore of an older backup followed by the replay destroys again."""
from __future__ import annotations

import dataclasses
import datetime as dt
import shutil

import pytest
from sqlalchemy import inspect, select, text
from sqlmodel import Session

from returnprog import audit, records
from returnprog import db as dbmod
from returnprog.models import (AuditEvent, Case, DestructionItem, DestructionList, Document,
                               ExportBatch, OutboxMessage, Participant, Payment)
from returnprog.policy import DEFAULT_POLICY
from returnprog.services import Conflict, Forbidden, Invalid
from returnprog.services import batches as batch_service
from returnprog.services import case_files
from returnprog.services import cases as case_service
from returnprog.services import payment as payment_service
from returnprog.services import records as records_service

from ..conftest import drive_to, fake_sign, person

TODAY = dt.date.today()
# The example rule for departed cases: 84 months from the day the case closed.
ACTION_DATE = records.add_months(TODAY, 84)
IBAN = "NL91ABNA0417164300"


def departed(ctx_for, staff, session, *, by_transfer=False, bsn=None, holder=None):
    """A departed household (2 adults, 1 child) with notes, reminders and documents; paid
    by a bank transfer that went to the bank in a batch, or in cash."""
    if not by_transfer:
        case = drive_to(ctx_for, staff, session, "departed")
    else:
        case = drive_to(ctx_for, staff, session, "departure_agreed")
        payment_service.propose(ctx_for(staff.counsellor), case.reference, {
            "method": "transfer", "iban": IBAN, "account_holder": holder})
        payment_service.approve(ctx_for(staff.supervisor), case.reference)
        payment_service.disburse(ctx_for(staff.finance), case.reference,
                                 {"idempotency_key": f"pay-{case.reference}"})
        batch = batch_service.create_batch(ctx_for(staff.finance), "sepa")
        batch_service.send_batch(ctx_for(staff.finance), batch.id)
        case_service.perform(ctx_for(staff.counsellor), case.reference, "confirm_departure",
                             {"departed_on": TODAY, "evidence": "boarding"})
    people = session.execute(select(Participant).where(Participant.case_id == case.id)
                             .order_by(Participant.id)).scalars().all()
    if bsn:
        session.execute(text("UPDATE participant SET bsn = :b WHERE id = :i"),
                        {"b": bsn, "i": people[0].id})
        session.commit()
    case_files.add_note(ctx_for(staff.counsellor), case.reference,
                        {"body": f"Spoke with {people[0].given_names_latin} at the office."})
    session.expire_all()
    return session.get(Case, case.id)


def personal_values(session, case) -> list[str]:
    """The values that identify the people of ``case``: names, V-numbers, BSN, e-mail
    addresses, travel-document numbers, account holder and IBAN."""
    values = []
    for p in session.execute(select(Participant).where(Participant.case_id == case.id)).scalars():
        values += [p.given_names_latin, p.v_number, p.travel_document_number]
        values += [v for v in (p.bsn, p.email) if v]
    for pay in session.execute(select(Payment).where(Payment.case_id == case.id)).scalars():
        values += [v for v in (pay.iban, pay.account_holder) if v]
    return values


def found_in_columns(session, values: list[str]) -> dict[str, list[str]]:
    """Where each value still appears in any text or binary column of any table."""
    found = {}
    bind = session.get_bind()
    insp = inspect(bind)
    for table in insp.get_table_names():
        if table.startswith("case_search_fts"):
            continue
        for column in insp.get_columns(table):
            kind = str(column["type"]).upper()
            if not any(t in kind for t in ("CHAR", "TEXT", "BLOB", "BYTEA", "BINARY")):
                continue
            name = column["name"]
            binary = any(t in kind for t in ("BLOB", "BYTEA", "BINARY"))
            for value in values:
                if binary and bind.dialect.name == "postgresql":
                    sql = f'SELECT count(*) FROM "{table}" WHERE position(:v IN "{name}") > 0'
                    param = value.encode()
                elif binary:
                    sql = f'SELECT count(*) FROM "{table}" WHERE instr("{name}", :v) > 0'
                    param = value.encode()
                else:
                    sql = f'SELECT count(*) FROM "{table}" WHERE "{name}" LIKE :v'
                    param = f"%{value}%"
                if session.execute(text(sql), {"v": param}).scalar():
                    found.setdefault(value, []).append(f"{table}.{name}")
    session.rollback()
    return found


def found_in_file(db_url: str, values: list[str]) -> list[str]:
    """The values whose bytes are in the SQLite database file or its write-ahead log."""
    path = db_url.removeprefix("sqlite:///")
    blob = b""
    for suffix in ("", "-wal"):
        try:
            with open(path + suffix, "rb") as fh:
                blob += fh.read()
        except FileNotFoundError:
            pass
    return [v for v in values if v.encode() in blob]


def at(ctx_for, user, day):
    return ctx_for(user, today=day)


def test_closing_a_case_sets_its_archive_fields_from_the_rule_in_force(ctx_for, staff, session):
    case = drive_to(ctx_for, staff, session, "departed")
    assert case.archive_nomination == records.DESTROY
    assert case.archive_term_start == TODAY
    assert case.archive_action_date == ACTION_DATE
    assert case.archive_status == records.TO_ARCHIVE
    open_case = drive_to(ctx_for, staff, session, "intake")
    assert (open_case.archive_term_start, open_case.archive_action_date) == (None, None)


def test_a_newer_rule_applies_to_cases_closed_after_its_date(ctx_for, staff, session):
    newer = records.RetentionRule("left_programme", TODAY, records.KEEP, 0, "test rule")
    rules = DEFAULT_POLICY.retention_rules + (newer,)
    policy = dataclasses.replace(DEFAULT_POLICY, retention_rules=rules)
    case = drive_to(ctx_for, staff, session, "committed")
    ctx = ctx_for(staff.counsellor)
    ctx.policy = policy
    case = case_service.perform(ctx, case.reference, "leave_programme",
                                {"reason": "Wants to stay with family"})
    assert (case.archive_nomination, case.archive_action_date) == (records.KEEP, None)
    # The older rule still decides a case that closed before the newer one's date.
    older = records.rule_for(rules, "left_programme", TODAY - dt.timedelta(days=1))
    assert (older.nomination, older.term_months) == (records.DESTROY, 60)


def test_cases_closed_before_the_lifecycle_get_their_fields_from_the_job(ctx_for, staff, session):
    case = drive_to(ctx_for, staff, session, "departed")
    session.execute(text("UPDATE \"case\" SET archive_term_start = NULL, "
                         "archive_action_date = NULL, archive_nomination = NULL"))
    session.commit()
    assert records_service.assign_archive_fields(session, DEFAULT_POLICY, TODAY) == 1
    session.commit()
    session.expire_all()
    again = session.get(Case, case.id)
    assert (again.archive_term_start, again.archive_action_date) == (TODAY, ACTION_DATE)


def test_a_case_is_kept_exactly_its_term_reviewed_by_two_people_then_destroyed(
        ctx_for, staff, session, db_url):
    gone = departed(ctx_for, staff, session, by_transfer=True, bsn="111222333",
                    holder="Iryna Destroyedcase")
    held = departed(ctx_for, staff, session)
    taken_off = departed(ctx_for, staff, session)
    still_open = drive_to(ctx_for, staff, session, "departure_agreed")
    gone_values = personal_values(session, gone)
    kept_values = personal_values(session, held)
    assert len(gone_values) >= 11
    records_service.place_hold(ctx_for(staff.records), held.reference, "objection",
                               "Objection lodged against the decision")

    # A day before the action date nothing is proposed; on the day, the due cases are.
    assert records_service.propose_list(at(ctx_for, None, ACTION_DATE - dt.timedelta(days=1))) is None
    dlist = records_service.propose_list(at(ctx_for, None, ACTION_DATE))
    listed = {i.reference: i for i in records_service.read_list(ctx_for(staff.records), dlist.id)["items"]}
    assert set(listed) == {gone.reference, taken_off.reference}
    # Proposing again the same day makes no second list of the same cases.
    assert records_service.propose_list(at(ctx_for, None, ACTION_DATE)) is None

    with pytest.raises(Invalid):
        records_service.remove_from_list(ctx_for(staff.records), dlist.id,
                                         listed[taken_off.reference].id, "  ")
    records_service.remove_from_list(ctx_for(staff.records), dlist.id,
                                     listed[taken_off.reference].id, "Claim on the payment open")
    with pytest.raises(Conflict):  # the process owner approves only a reviewed list
        records_service.approve_list(ctx_for(staff.owner), dlist.id)
    with pytest.raises(Forbidden):
        records_service.review_list(ctx_for(staff.counsellor), dlist.id)
    records_service.review_list(ctx_for(staff.records), dlist.id)
    with pytest.raises(Forbidden):  # not the records manager: the second person approves
        records_service.approve_list(ctx_for(staff.records), dlist.id)
    records_service.approve_list(ctx_for(staff.owner), dlist.id)

    preview = records_service.dry_run(session, ACTION_DATE)
    assert [p["reference"] for p in preview] == [gone.reference]
    assert preview[0]["rows"]["participant"] == 3
    session.rollback()

    outcome = records_service.run_destruction(at(ctx_for, None, ACTION_DATE), dlist.id)
    assert outcome == {"destroyed": 1, "skipped": 0}
    session.expire_all()

    tomb = session.get(Case, gone.id)
    assert (tomb.reference, tomb.state, tomb.archive_status) == (
        gone.reference, "departed", records.DESTROYED)
    assert (tomb.destruction_list_id, tomb.archive_action_date) == (dlist.id, ACTION_DATE)
    assert tomb.destroyed_at is not None
    assert session.get(DestructionList, dlist.id).status == "destroyed"
    for model in (Participant, Document, OutboxMessage):
        assert not session.execute(select(model.id).where(model.case_id == gone.id)).first()
    # The payment stays for the figures, without whom it was for.
    [payment] = session.execute(select(Payment).where(Payment.case_id == gone.id)).scalars()
    assert (payment.iban, payment.account_holder, payment.amount_cents > 0) == (None, None, True)
    # The other cases are untouched.
    for case in (held, taken_off, still_open):
        assert session.execute(select(Participant.id).where(
            Participant.case_id == case.id)).first()

    # No personal value of the destroyed case is anywhere; the kept case's values are
    # (so the search itself works).
    assert found_in_columns(session, gone_values) == {}
    assert set(found_in_columns(session, kept_values)) == set(kept_values)
    if db_url.startswith("sqlite"):
        assert found_in_file(db_url, gone_values) == []
        assert found_in_file(db_url, kept_values) == kept_values

    report = audit.verify(session)
    assert report.ok, report.reason
    erased = session.execute(select(AuditEvent).where(AuditEvent.case_id == gone.id,
                                                      AuditEvent.erased_at.is_not(None))).all()
    assert report.destroyed == len(erased) > 5
    assert report.destruction_lists == [dlist.id]


def test_a_hold_placed_after_approval_still_stops_the_destruction(ctx_for, staff, session):
    case = departed(ctx_for, staff, session)
    dlist = records_service.propose_list(at(ctx_for, None, ACTION_DATE))
    records_service.review_list(ctx_for(staff.records), dlist.id)
    records_service.approve_list(ctx_for(staff.owner), dlist.id)
    hold = records_service.place_hold(ctx_for(staff.owner), case.reference, "investigation",
                                      "Fraud investigation")
    assert records_service.run_destruction(at(ctx_for, None, ACTION_DATE), dlist.id) == {
        "destroyed": 0, "skipped": 1}
    session.expire_all()
    assert session.get(Case, case.id).archive_status == records.TO_ARCHIVE
    # Once the hold is lifted the case comes back on the next list.
    records_service.lift_hold(ctx_for(staff.records), hold.id, "Investigation closed")
    again = records_service.propose_list(at(ctx_for, None, ACTION_DATE))
    assert [i.reference for i in records_service.read_list(
        ctx_for(staff.records), again.id)["items"]] == [case.reference]


def test_the_reviewer_cannot_approve_under_another_account(ctx_for, staff, session):
    from returnprog import auth

    departed(ctx_for, staff, session)
    for user, number in ((staff.records, "P-7001"), ):
        user.person = number
    second = auth.create_user(session, email="rik2@dtenv.example", role="process_owner",
                              password="correct horse battery", team="Team Noord")
    second.person = "P-7001"
    session.commit()
    dlist = records_service.propose_list(at(ctx_for, None, ACTION_DATE))
    records_service.review_list(ctx_for(staff.records), dlist.id)
    with pytest.raises(Forbidden):
        records_service.approve_list(ctx_for(second), dlist.id)
    records_service.return_list(ctx_for(staff.owner), dlist.id, "Check the payment claims")
    session.expire_all()
    back = session.get(DestructionList, dlist.id)
    assert (back.status, back.reviewed_by, back.returned_reason) == (
        "proposed", None, "Check the payment claims")


def test_a_restore_of_an_older_backup_followed_by_the_replay_destroys_again(
        ctx_for, staff, session, db_url, tmp_path, request):
    gone = departed(ctx_for, staff, session, by_transfer=True, holder="Taras Replayedcase")
    values = personal_values(session, gone)
    reference = gone.reference
    dlist = records_service.propose_list(at(ctx_for, None, ACTION_DATE))
    records_service.review_list(ctx_for(staff.records), dlist.id)
    records_service.approve_list(ctx_for(staff.owner), dlist.id)
    session.close()

    # The backup, made after the approval and before the destruction.
    engine = session.get_bind()
    if db_url.startswith("sqlite"):
        engine.dispose()
        backup_url = f"sqlite:///{tmp_path / 'backup.sqlite'}"
        with engine.connect() as conn:
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        engine.dispose()
        shutil.copyfile(db_url.removeprefix("sqlite:///"), backup_url.removeprefix("sqlite:///"))
    else:
        engine.dispose()
        server = request.getfixturevalue("pg_server")
        name = db_url.rsplit("/", 1)[1]
        server.create_database(name + "_bak", template=name)
        backup_url = server.url(name + "_bak")

    with Session(engine, expire_on_commit=False) as live:
        ctx = ctx_for(None, ACTION_DATE)
        ctx.session = live
        records_service.run_destruction(ctx, dlist.id)
        register = [records_service.register_record(live, dlist.id)]
    records_service.write_register(tmp_path / "register", register[0])
    assert register[0]["cases"] == [reference]

    restored_engine = dbmod.make_engine(backup_url)
    try:
        with Session(restored_engine, expire_on_commit=False) as restored:
            assert set(found_in_columns(restored, values)) == set(values)
            ctx = ctx_for(None, ACTION_DATE)
            ctx.session = restored
            outcome = records_service.replay(
                ctx, records_service.read_register(tmp_path / "register"))
            assert outcome == {"lists": 1, "destroyed": 1}
            restored.expire_all()
            case = restored.execute(select(Case).where(
                Case.reference == reference)).scalar_one()
            assert case.archive_status == records.DESTROYED
            assert found_in_columns(restored, values) == {}
            report = audit.verify(restored)
            assert report.ok, report.reason
            assert report.destroyed > 0
            # Replaying twice changes nothing more.
            assert records_service.replay(
                ctx, records_service.read_register(tmp_path / "register")) == {
                "lists": 0, "destroyed": 0}
        if backup_url.startswith("sqlite"):
            assert found_in_file(backup_url, values) == []
    finally:
        restored_engine.dispose()
        if not backup_url.startswith("sqlite"):
            request.getfixturevalue("pg_server").drop_database(backup_url.rsplit("/", 1)[1])


def test_an_erased_event_of_the_old_formula_is_still_checked_by_what_remains(
        ctx_for, staff, session):
    case = departed(ctx_for, staff, session)
    # Rewrite the case's chain as version 2 (as events written before version 3 are).
    rows = session.execute(select(AuditEvent).order_by(AuditEvent.seq)).scalars().all()
    session.rollback()
    prev = audit.GENESIS
    for ev in rows:
        fields = {**audit.fields_of(ev), "prev_hash": prev, "chain_version": 2}
        new = audit.digest(fields)
        session.execute(text("UPDATE audit_event SET chain_version = 2, personal_digest = NULL, "
                             "personal_salt = NULL, prev_hash = :p, hash = :h WHERE seq = :s"),
                        {"p": prev, "h": new, "s": ev.seq})
        prev = new
    session.execute(text("UPDATE audit_head SET hash = :h WHERE id = 1"), {"h": prev})
    session.commit()
    assert audit.verify(session).ok
    dlist = records_service.propose_list(at(ctx_for, None, ACTION_DATE))
    records_service.review_list(ctx_for(staff.records), dlist.id)
    records_service.approve_list(ctx_for(staff.owner), dlist.id)
    records_service.run_destruction(at(ctx_for, None, ACTION_DATE), dlist.id)
    report = audit.verify(session)
    assert report.ok, report.reason
    assert report.destroyed > 0
    # What remains of an erased old event is still pinned: editing it is detected.
    seq = session.execute(select(AuditEvent.seq).where(
        AuditEvent.case_id == case.id, AuditEvent.chain_version == 2,
        AuditEvent.erased_at.is_not(None)).limit(1)).scalar_one()
    session.execute(text("UPDATE audit_event SET actor = 'mallory' WHERE seq = :s"), {"s": seq})
    session.commit()
    report = audit.verify(session)
    assert (report.ok, report.broken_seq) == (False, seq)
    # And an event cannot be marked erased to hide an edit of an event never destroyed.
    session.execute(text("UPDATE audit_event SET actor = 'x', erased_at = :t WHERE seq = 1"),
                    {"t": dt.datetime.now(dt.timezone.utc)})
    session.commit()
    assert audit.verify(session).broken_seq == 1


# --- flask records … ------------------------------------------------------------------------

@pytest.fixture
def cli_app(db_url, tmp_path):
    from returnprog import create_app

    app = create_app({"DATABASE_URL": db_url, "SECRET_KEY": "x" * 40})
    app.instance_path = str(tmp_path / "instance")
    yield app
    app.extensions["returnprog.engine"].dispose()


def test_the_records_commands_dry_run_propose_destroy_and_replay(cli_app, ctx_for, staff,
                                                                 session, tmp_path):
    run = lambda *args: cli_app.test_cli_runner().invoke(args=list(args))  # noqa: E731
    case = departed(ctx_for, staff, session)
    values = personal_values(session, case)
    result = run("records", "rules")
    assert result.exit_code == 0 and "departed" in result.output and "84 months" in result.output
    assert "EXAMPLE" in result.output
    assert "nothing would be destroyed" in run("records", "dry-run").output
    # Time travel the other way: the case's action date is brought to today.
    session.execute(text('UPDATE "case" SET archive_action_date = :d WHERE id = :i'),
                    {"d": TODAY, "i": case.id})
    session.commit()
    result = run("records", "dry-run")
    assert case.reference in result.output and "3 participant" in result.output
    assert not any(v in result.output for v in values)  # references and counts only
    assert "proposed" in run("records", "propose").output
    dlist = session.execute(select(DestructionList)).scalar_one()
    records_service.review_list(ctx_for(staff.records), dlist.id)
    records_service.approve_list(ctx_for(staff.owner), dlist.id)
    result = run("records", "destroy")
    assert result.exit_code == 0, result.output
    assert "1 destroyed, 0 skipped" in result.output
    register = tmp_path / "instance" / "destruction-register" / f"list-{dlist.id}.json"
    entry = json_load(register)
    assert entry["cases"] == [case.reference] and entry["approved_by"] == staff.owner.id
    assert not any(v in register.read_text() for v in values)
    result = run("audit-verify")
    assert result.exit_code == 0, result.output
    assert f"destroyed (personal details erased under destruction list {dlist.id}" in result.output
    result = run("records", "replay")
    assert "1 register entries read; 0 case(s) destroyed again" in result.output


def json_load(path):
    import json

    return json.loads(path.read_text())


def test_the_scheduler_round_destroys_approved_lists_and_proposes_the_next(
        scheduler_app, tmp_path, ctx_for, staff, session):
    from returnprog.scheduler import ReminderScheduler

    first, second = departed(ctx_for, staff, session), departed(ctx_for, staff, session)
    session.execute(text('UPDATE "case" SET archive_action_date = :d WHERE id = :i'),
                    {"d": TODAY, "i": first.id})
    session.commit()
    dlist = records_service.propose_list(ctx_for(None))
    records_service.review_list(ctx_for(staff.records), dlist.id)
    records_service.approve_list(ctx_for(staff.owner), dlist.id)
    # The second case falls due after the approval: the round proposes it on a new list.
    session.execute(text('UPDATE "case" SET archive_action_date = :d WHERE id = :i'),
                    {"d": TODAY, "i": second.id})
    session.commit()
    with scheduler_app.app_context():
        assert ReminderScheduler(scheduler_app).run_once() == 0
    session.expire_all()
    assert session.get(Case, first.id).archive_status == records.DESTROYED
    assert session.get(Case, second.id).archive_status == records.TO_ARCHIVE
    assert json_load(tmp_path / "register" / f"list-{dlist.id}.json")["cases"] == [first.reference]
    lists = session.execute(select(DestructionList).order_by(DestructionList.id)).scalars().all()
    assert [(d.id, d.status) for d in lists] == [(dlist.id, "destroyed"),
                                                 (dlist.id + 1, "proposed")]
    [item] = session.execute(select(DestructionItem).where(
        DestructionItem.list_id == dlist.id + 1)).scalars()
    assert item.reference == second.reference


def test_a_destroyed_case_is_no_case_any_more_for_its_team(ctx_for, staff, session):
    from returnprog.services import NotFound
    from returnprog.services.lookups import load_case

    case = departed(ctx_for, staff, session)
    dlist = records_service.propose_list(at(ctx_for, None, ACTION_DATE))
    records_service.review_list(ctx_for(staff.records), dlist.id)
    records_service.approve_list(ctx_for(staff.owner), dlist.id)
    records_service.run_destruction(at(ctx_for, None, ACTION_DATE), dlist.id)
    with pytest.raises(NotFound):
        load_case(ctx_for(staff.counsellor), case.reference)
    listed = case_service.list_cases(ctx_for(staff.counsellor), {"state": "departed"})
    assert case.reference not in [c["reference"] for c in listed["items"]]
    with pytest.raises(Conflict):  # no hold on a tombstone
        records_service.place_hold(ctx_for(staff.records), case.reference, "objection")


def test_an_access_request_still_to_answer_keeps_the_case_and_an_answered_one_goes_with_it(
        ctx_for, staff, session):
    from returnprog.models import AccessRequest
    from returnprog.services import access_requests

    case = departed(ctx_for, staff, session)
    person = session.execute(select(Participant).where(Participant.case_id == case.id)
                             .order_by(Participant.id)).scalars().first()
    ctx = ctx_for(staff.records)
    row = access_requests.register(ctx, {
        "reference": case.reference, "participant_id": person.id, "received_on": TODAY,
        "received_via": "letter", "identity_document_type": "passport",
        "identity_document_last4": "0042"})
    # Due, but the participant waits for an answer: no list.
    assert records_service.propose_list(at(ctx_for, None, ACTION_DATE)) is None
    access_requests.download_package(ctx, row.id)
    session.expire_all()
    access_requests.deliver(ctx, row.id, "post", session.get(AccessRequest, row.id).version)
    dlist = records_service.propose_list(at(ctx_for, None, ACTION_DATE))
    records_service.review_list(ctx_for(staff.records), dlist.id)
    records_service.approve_list(ctx_for(staff.owner), dlist.id)
    assert records_service.run_destruction(at(ctx_for, None, ACTION_DATE), dlist.id) == {
        "destroyed": 1, "skipped": 0}
    session.expire_all()
    assert session.execute(select(AccessRequest).where(AccessRequest.case_id == case.id)).first() is None
    assert audit.verify(session).ok


def test_an_access_request_registered_after_the_approval_stops_the_destruction(
        ctx_for, staff, session):
    from returnprog.services import access_requests

    case = departed(ctx_for, staff, session)
    person = session.execute(select(Participant).where(Participant.case_id == case.id)
                             .order_by(Participant.id)).scalars().first()
    dlist = records_service.propose_list(at(ctx_for, None, ACTION_DATE))
    records_service.review_list(ctx_for(staff.records), dlist.id)
    records_service.approve_list(ctx_for(staff.owner), dlist.id)
    access_requests.register(ctx_for(staff.records), {
        "reference": case.reference, "participant_id": person.id, "received_on": TODAY,
        "received_via": "email", "identity_document_type": "passport",
        "identity_document_last4": "0042"})
    assert records_service.run_destruction(at(ctx_for, None, ACTION_DATE), dlist.id) == {
        "destroyed": 0, "skipped": 1}
