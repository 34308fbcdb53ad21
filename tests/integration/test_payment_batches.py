"""Payment batches against real SQLite and PostgreSQL (issue 15): one batch in every format
(SEPA pain.001 and CSV list the same payments and totals), downloads that are the same
bytes every time, send and withdraw, four eyes on release above the policy's threshold,
and the bank's answer: a return, a corrected re-proposal, a second batch and exactly one
booked payment per case."""
from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import hashlib
import io
import json
from decimal import Decimal

import pytest
from lxml import etree
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from returnprog import audit, auth, export
from returnprog.models import AuditEvent, ExportBatch, Payment
from returnprog.policy import DEFAULT_POLICY
from returnprog.services import Conflict, Forbidden, Invalid, NotFound
from returnprog.services import batches as batch_service
from returnprog.services import payment as payment_service

from ..conftest import drive_to

TODAY = dt.date.today()
NL = "NL91ABNA0417164300"
DE = "DE89370400440532013000"
UA = "UA213223130000026007233566001"
NS = {"p": "urn:iso:std:iso:20022:tech:xsd:pain.001.001.09"}


def transfer(iban=NL, holder="Olena Kovalenko"):
    return {"method": "transfer", "iban": iban, "account_holder": holder}


def approved_transfer(ctx_for, staff, session, iban=NL, holder="Olena Kovalenko"):
    case = drive_to(ctx_for, staff, session, "departure_agreed", adults=1, minors=1)
    payment_service.propose(ctx_for(staff.counsellor), case.reference, transfer(iban, holder))
    payment_service.approve(ctx_for(staff.supervisor), case.reference)
    return case


def released_transfer(ctx_for, staff, session, iban=NL, holder="Olena Kovalenko"):
    """A transfer finance released (``pay_support``): the case is support_paid."""
    case = approved_transfer(ctx_for, staff, session, iban, holder)
    payment_service.disburse(ctx_for(staff.finance), case.reference,
                             {"idempotency_key": f"pay-{case.reference}"})
    return case


def payment_of(session, case) -> Payment:
    session.expire_all()
    return session.execute(select(Payment).where(Payment.case_id == case.id)
                           .order_by(Payment.id.desc()).limit(1)).scalar_one()


def events(session, action):
    return session.execute(select(AuditEvent).where(AuditEvent.action == action)
                           .order_by(AuditEvent.id)).scalars().all()


def sepa_lines(xml: bytes) -> list[tuple[str, int]]:
    """(end-to-end id, cents) of every transfer in a pain.001, read as a bank would."""
    doc = etree.fromstring(xml)
    return [(tx.findtext("p:PmtId/p:EndToEndId", namespaces=NS),
             int(Decimal(tx.findtext("p:Amt/p:InstdAmt", namespaces=NS)) * 100))
            for tx in doc.iterfind(".//p:CdtTrfTxInf", NS)]


def csv_lines(content: bytes) -> list[dict]:
    return list(csv.DictReader(io.StringIO(content.decode("utf-8-sig"))))


@pytest.fixture
def finance2(session):
    return auth.create_user(session, email="frank@dtenv.example", role="finance",
                            password="correct horse battery", team="Team Noord")


def test_one_batch_holds_each_released_transfer_once_in_both_formats(ctx_for, staff, session):
    a = released_transfer(ctx_for, staff, session)
    b = released_transfer(ctx_for, staff, session, iban=DE, holder="Коваленко Петро")
    waiting = approved_transfer(ctx_for, staff, session)  # approved, not released: not yet
    ua = released_transfer(ctx_for, staff, session, iban=UA)
    drive_to(ctx_for, staff, session, "support_paid")  # cash: never in a bank file
    with pytest.raises(Forbidden):
        batch_service.create_batch(ctx_for(staff.supervisor))
    batch = batch_service.create_batch(ctx_for(staff.finance))
    assert (batch.kind, batch.status, batch.payment_count) == ("sepa", "open", 2)
    # The SEPA file validates and the CSV is the same batch: same payments, same total.
    xsd = etree.XMLSchema(etree.parse(str(export.xsd_path())))
    assert xsd.validate(etree.fromstring(batch.content)), xsd.error_log
    in_sepa = sepa_lines(batch.content)
    rows = csv_lines(batch.csv_content)
    assert sorted(in_sepa) == sorted((r["end_to_end_id"], int(r["amount_cents"])) for r in rows)
    assert sum(c for _, c in in_sepa) == batch.total_cents == \
        sum(int(r["amount_cents"]) for r in rows)
    assert {r["case_reference"] for r in rows} == {a.reference, b.reference}
    assert "Kovalenko Petro" in batch.content.decode()  # transliterated for the bank
    # Its payments are scheduled with the id that travels with the money.
    for case in (a, b):
        p = payment_of(session, case)
        assert (p.status, p.export_batch_id) == ("scheduled", batch.id)
        assert (p.end_to_end_id, p.amount_cents) in in_sepa
    assert payment_of(session, waiting).status == "approved"
    # Making the CSV did not consume anything the SEPA file needs: there is one batch, and
    # a second one finds nothing new in the SEPA zone (the Ukrainian account waits).
    with pytest.raises(Conflict) as err:
        batch_service.create_batch(ctx_for(staff.finance), "sepa")
    assert [d["code"] for d in err.value.details] == ["nothing_to_export", "outside_sepa"]
    foreign = batch_service.create_batch(ctx_for(staff.finance), "outside_sepa")
    assert foreign.content == b"" and [r["iban"] for r in csv_lines(foreign.csv_content)] == [UA]
    assert payment_of(session, ua).export_batch_id == foreign.id
    # Recorded once per batch, with the hashes of both files.
    evs = events(session, "create_batch")
    assert [json.loads(e.details)["batch_id"] for e in evs] == [batch.id, foreign.id]
    details = json.loads(evs[0].details)
    assert details["sepa_sha256"] == hashlib.sha256(batch.content).hexdigest() == batch.sha256
    assert details["csv_sha256"] == hashlib.sha256(batch.csv_content).hexdigest()
    assert audit.verify(session).ok


def test_a_batch_downloads_as_the_same_bytes_every_time_and_each_download_is_audited(
        ctx_for, staff, session):
    released_transfer(ctx_for, staff, session)
    batch = batch_service.create_batch(ctx_for(staff.finance))
    with pytest.raises(Forbidden):
        batch_service.download_file(ctx_for(staff.supervisor), batch.id, "sepa")
    with pytest.raises(NotFound):
        batch_service.download_file(ctx_for(staff.finance), batch.id + 1, "sepa")
    with pytest.raises(Invalid):
        batch_service.download_file(ctx_for(staff.finance), batch.id, "xlsx")
    files = {}
    for fmt in ("sepa", "csv", "sepa", "csv"):
        _, content, got = batch_service.download_file(ctx_for(staff.finance), batch.id, fmt)
        assert got == fmt
        assert files.setdefault(fmt, content) == content  # identical bytes
    created = json.loads(events(session, "create_batch")[0].details)
    downloads = [json.loads(e.details) for e in events(session, "download_export")]
    assert [d["format"] for d in downloads] == ["sepa", "csv", "sepa", "csv"]
    assert {d["sha256"] for d in downloads if d["format"] == "sepa"} == {created["sepa_sha256"]}
    assert {d["sha256"] for d in downloads if d["format"] == "csv"} == {created["csv_sha256"]}
    assert hashlib.sha256(files["sepa"]).hexdigest() == created["sepa_sha256"]
    # A CSV-only batch (accounts outside SEPA) has no SEPA file.
    released_transfer(ctx_for, staff, session, iban=UA)
    foreign = batch_service.create_batch(ctx_for(staff.finance), "outside_sepa")
    with pytest.raises(NotFound):
        batch_service.download_file(ctx_for(staff.finance), foreign.id, "sepa")
    assert batch_service.download_file(ctx_for(staff.finance), foreign.id)[2] == "csv"


def test_sending_a_batch_above_the_threshold_needs_a_second_finance_officer(
        ctx_for, staff, session, finance2):
    a = released_transfer(ctx_for, staff, session)
    b = released_transfer(ctx_for, staff, session)
    batch = batch_service.create_batch(ctx_for(staff.finance))
    limit = batch.total_cents - 1
    strict = dataclasses.replace(DEFAULT_POLICY, batch_second_release_cents=limit)

    def as_(user, policy=strict):
        ctx = ctx_for(user)
        ctx.policy = policy
        return ctx
    with pytest.raises(Forbidden) as err:
        batch_service.send_batch(as_(staff.finance), batch.id)
    assert err.value.details[0]["code"] == "batch_four_eyes"
    assert payment_of(session, a).status == "scheduled"  # nothing changed
    with pytest.raises(Forbidden):
        batch_service.send_batch(as_(staff.supervisor), batch.id)
    sent = batch_service.send_batch(as_(finance2), batch.id)
    assert (sent.status, sent.sent_by) == ("sent", finance2.id)
    assert {payment_of(session, c).status for c in (a, b)} == {"sent"}
    with pytest.raises(Conflict):
        batch_service.send_batch(as_(finance2), batch.id)
    with pytest.raises(Conflict):  # sent: can no longer be withdrawn
        batch_service.withdraw_batch(as_(staff.finance), batch.id, "wrong file")
    [ev] = events(session, "send_batch")
    assert ev.actor_id == finance2.id
    # At or below the threshold the maker may send it alone.
    released_transfer(ctx_for, staff, session)
    small = batch_service.create_batch(ctx_for(staff.finance))
    lenient = dataclasses.replace(DEFAULT_POLICY, batch_second_release_cents=small.total_cents)
    assert batch_service.send_batch(as_(staff.finance, lenient), small.id).status == "sent"


def test_withdrawing_an_unsent_batch_frees_its_payments_for_the_next(ctx_for, staff, session):
    a = released_transfer(ctx_for, staff, session)
    first = batch_service.create_batch(ctx_for(staff.finance))
    sepa_before = first.content
    with pytest.raises(Invalid) as err:
        batch_service.withdraw_batch(ctx_for(staff.finance), first.id, "  ")
    assert "reason" in err.value.details
    with pytest.raises(Invalid):
        batch_service.withdraw_batch(ctx_for(staff.finance), first.id, "x" * 501)
    assert payment_of(session, a).status == "scheduled"
    withdrawn = batch_service.withdraw_batch(ctx_for(staff.finance), first.id, "wrong date")
    assert withdrawn.status == "withdrawn"
    p = payment_of(session, a)
    assert (p.status, p.export_batch_id) == ("disbursed", None)
    with pytest.raises(Conflict):
        batch_service.send_batch(ctx_for(staff.finance), first.id)
    second = batch_service.create_batch(ctx_for(staff.finance))
    assert payment_of(session, a).export_batch_id == second.id
    # The withdrawn batch's files stay for the record, unchanged.
    assert batch_service.download_file(ctx_for(staff.finance), first.id, "sepa")[1] == sepa_before
    listed = batch_service.list_batches(ctx_for(staff.finance), {})
    assert [(i["id"], i["status"]) for i in listed["items"]] == [(second.id, "open"),
                                                                 (first.id, "withdrawn")]
    assert listed["items"][1]["withdrawn_by"]["id"] == staff.finance.id


def test_an_approved_transfer_on_a_lapsed_case_never_reaches_a_batch(ctx_for, staff, session):
    from returnprog.services import cases as case_service
    deadline = TODAY + dt.timedelta(days=10)
    case = drive_to(ctx_for, staff, session, "departure_agreed", deadline=deadline)
    payment_service.propose(ctx_for(staff.counsellor), case.reference, transfer())
    payment_service.approve(ctx_for(staff.supervisor), case.reference)
    later = deadline + dt.timedelta(days=1)
    case_service.perform(ctx_for(staff.supervisor, today=later), case.reference, "lapse",
                         {"reason": "did not leave"})
    with pytest.raises(Conflict) as err:
        batch_service.create_batch(ctx_for(staff.finance))
    assert err.value.details[0]["code"] == "nothing_to_export"
    with pytest.raises(Conflict):
        payment_service.disburse(ctx_for(staff.finance), case.reference,
                                 {"idempotency_key": "lapsed-pay-1"})
    assert payment_service.cancel(ctx_for(staff.counsellor), case.reference,
                                  "case lapsed").status == "cancelled"


def test_a_returned_transfer_is_corrected_and_paid_once(ctx_for, staff, session, finance2):
    case = released_transfer(ctx_for, staff, session, holder="O. Kovalenko")
    first = batch_service.create_batch(ctx_for(staff.finance))
    batch_service.send_batch(ctx_for(finance2), first.id)
    returned = payment_of(session, case)
    # While the transfer is in flight nobody proposes a second one.
    with pytest.raises(Conflict):
        payment_service.propose(ctx_for(staff.counsellor), case.reference, transfer(DE))
    with pytest.raises(Invalid):
        batch_service.record_bank_outcome(ctx_for(staff.finance), returned.id, "returned")
    batch_service.record_bank_outcome(ctx_for(staff.finance), returned.id, "returned",
                                      return_reason="ac04", note="bank's letter")
    returned = payment_of(session, case)
    assert (returned.status, returned.return_reason) == ("returned", "AC04")
    assert case.state == "support_paid"  # the case does not move back
    with pytest.raises(Conflict):  # answered once
        batch_service.record_bank_outcome(ctx_for(staff.finance), returned.id, "booked")
    # The correction: a new proposal to the right account, for the same money ...
    fixed = payment_service.propose(ctx_for(staff.counsellor), case.reference,
                                    transfer(DE, "Olena Kovalenko"))
    assert (fixed.replaces_id, fixed.amount_cents) == (returned.id, returned.amount_cents)
    # ... decided by a second person like every proposal: not released before that ...
    with pytest.raises(Conflict):
        payment_service.disburse(ctx_for(staff.finance), case.reference,
                                 {"idempotency_key": f"fix-{case.reference}"})
    payment_service.approve(ctx_for(staff.supervisor), case.reference)
    payment_service.disburse(ctx_for(staff.finance), case.reference,
                             {"idempotency_key": f"fix-{case.reference}"})
    assert payment_of(session, case).status == "disbursed"
    assert [e.action for e in events(session, "release_payment")] == ["release_payment"]
    # ... into a second batch, sent, and booked.
    second = batch_service.create_batch(ctx_for(staff.finance))
    assert [r["iban"] for r in csv_lines(second.csv_content)] == [DE]
    batch_service.send_batch(ctx_for(finance2), second.id)
    booked = batch_service.record_bank_outcome(ctx_for(staff.finance), fixed.id, "booked")
    assert booked.status == "booked" and booked.booked_at is not None
    statuses = session.execute(select(Payment.status).where(Payment.case_id == case.id)
                               .order_by(Payment.id)).scalars().all()
    assert statuses == ["returned", "booked"]
    # After a booking nothing more may be proposed: the case is paid.
    with pytest.raises(Conflict):
        payment_service.propose(ctx_for(staff.counsellor), case.reference, transfer(DE))
    assert audit.verify(session).ok


def test_the_database_refuses_a_second_live_payment_whatever_the_code_does(
        ctx_for, staff, session):
    case = released_transfer(ctx_for, staff, session)
    batch = batch_service.create_batch(ctx_for(staff.finance))
    first = payment_of(session, case)
    for status in ("booked", "sent", "scheduled", "disbursed", "approved", "proposed"):
        session.add(Payment(case_id=case.id, status=status, amount_cents=1, adults=1,
                            minors=0, tariff_effective_from=TODAY, method="cash",
                            proposed_by=staff.counsellor.id))
        with pytest.raises(IntegrityError):
            session.flush()
        session.rollback()
    assert session.execute(select(func.count()).select_from(Payment)).scalar_one() == 1
    assert first.export_batch_id == batch.id
    assert session.get(ExportBatch, batch.id).status == "open"


def test_cash_is_handed_over_with_who_where_and_when_and_a_transfer_is_not(
        ctx_for, staff, session):
    cash = drive_to(ctx_for, staff, session, "departure_agreed")
    payment_service.propose(ctx_for(staff.counsellor), cash.reference, {"method": "cash"})
    payment_service.approve(ctx_for(staff.supervisor), cash.reference)
    payment_service.disburse(ctx_for(staff.finance), cash.reference,
                             {"idempotency_key": f"pay-{cash.reference}",
                              "handed_over_place": "Schiphol, balie DTenV"})
    p = payment_of(session, cash)
    assert (p.status, p.disbursed_by, p.handed_over_place) == (
        "disbursed", staff.finance.id, "Schiphol, balie DTenV")
    assert p.disbursed_at is not None
    read = payment_service.read_payment(ctx_for(staff.finance), cash.reference)
    assert read["handed_over_place"] == "Schiphol, balie DTenV"
    assert read["disbursed_by"]["id"] == staff.finance.id
    case = approved_transfer(ctx_for, staff, session)
    with pytest.raises(Invalid) as err:
        payment_service.disburse(ctx_for(staff.finance), case.reference,
                                 {"idempotency_key": f"pay-{case.reference}",
                                  "handed_over_place": "the office"})
    assert "handed_over_place" in err.value.details
    assert payment_of(session, case).status == "approved"
    session.refresh(case)
    assert case.state == "departure_agreed"
