"""Reconciliation from the bank's statement against real SQLite and PostgreSQL (issue 15):
a statement generated from a real exported batch books and returns the right payments and
puts what is not ours on the review list; the same statement again changes nothing; fifty
concurrent imports apply each entry once; refused statements change nothing; a return is
corrected, paid again and booked, with one booked payment per case; the monthly report adds
up."""
from __future__ import annotations

import datetime as dt
import json

import pytest
from sqlalchemy import func, select
from sqlmodel import Session

from returnprog import audit, auth
from returnprog.models import AuditEvent, BankStatement, Payment, StatementEntry, User
from returnprog.policy import DEFAULT_POLICY
from returnprog.services import Context, Forbidden, Invalid, NotFound
from returnprog.services import batches as batch_service
from returnprog.services import payment as payment_service
from returnprog.services import reconcile

from ..statements_corpus import bookings_from_pain001, camt053, mt940, reconciliation_scenario
from .test_payment_batches import DE, NL, payment_of, released_transfer
from .test_payments_concurrency import race


@pytest.fixture
def finance2(session):
    return auth.create_user(session, email="frank@dtenv.example", role="finance",
                            password="correct horse battery", team="Team Noord")


def sent_batch(ctx_for, staff, session, finance2, n=3):
    """``n`` released transfers in one batch, sent to the bank: (cases, batch)."""
    cases = [released_transfer(ctx_for, staff, session, iban=iban)
             for iban in (NL, DE, NL, DE)[:n]]
    batch = batch_service.create_batch(ctx_for(staff.finance))
    batch_service.send_batch(ctx_for(finance2), batch.id)
    return cases, batch


def counts(session) -> dict:
    session.expire_all()
    return {"statements": session.execute(select(func.count()).select_from(BankStatement))
            .scalar_one(),
            "entries": session.execute(select(func.count()).select_from(StatementEntry))
            .scalar_one(),
            "events": session.execute(select(func.count()).select_from(AuditEvent)).scalar_one(),
            "payments": sorted((p.id, p.status, p.version) for p in session.execute(
                select(Payment)).scalars())}


@pytest.mark.parametrize("fmt", ["camt.053.001.02", "camt.053.001.08", "mt940"])
def test_a_statement_of_a_real_batch_books_returns_and_reviews(ctx_for, staff, session,
                                                               finance2, fmt):
    cases, batch = sent_batch(ctx_for, staff, session, finance2)
    bookings = bookings_from_pain001(batch.content)
    assert len(bookings) == 3
    entries = reconciliation_scenario(bookings)
    data = mt940(entries) if fmt == "mt940" else camt053(entries, version=fmt[-2:])
    with pytest.raises(Forbidden):
        reconcile.import_statement(ctx_for(staff.supervisor), data)
    result = reconcile.import_statement(ctx_for(staff.finance), data)
    assert result["format"] == fmt and not result["already_imported"]
    assert result["outcomes"] == {"booked": 3, "returned": 1, "review": 2, "ignored": 0}
    first, second, last = (payment_of(session, c) for c in cases)
    assert (first.status, second.status) == ("booked", "booked")
    assert (last.status, last.return_reason) == ("returned", "AC04")
    assert last.booked_at is not None and last.returned_at is not None
    # The unknown entry and the second report of the first booking wait for a person.
    review = reconcile.review_list(ctx_for(staff.finance), {})
    assert sorted((i["reference"], i["review_reason"]) for i in review["items"]) == [
        ("BOOK-1-AGAIN", "already_booked"), ("OTHER-1", "unknown")]
    # Every booking and return is on its case's trail, and webhooks were queued for them.
    assert len(session.execute(select(AuditEvent).where(
        AuditEvent.action == "book_payment")).scalars().all()) == 3
    [ret] = session.execute(select(AuditEvent).where(
        AuditEvent.action == "return_payment")).scalars().all()
    assert ret.case_id == cases[2].id and json.loads(ret.details)["return_reason"] == "AC04"
    assert audit.verify(session).ok
    # The same statement again: nothing changes.
    before = counts(session)
    again = reconcile.import_statement(ctx_for(staff.finance), data)
    assert again["already_imported"] and again["outcomes"] == result["outcomes"]
    assert counts(session) == before


def test_a_return_is_corrected_paid_again_and_booked_once(ctx_for, staff, session, finance2):
    [case], batch = sent_batch(ctx_for, staff, session, finance2, n=1)
    [booking] = bookings_from_pain001(batch.content)
    returned = {**booking, "direction": "credit", "reference": "R-1", "return_reason": "AC04"}
    reconcile.import_statement(ctx_for(staff.finance), camt053(
        [{**booking, "reference": "B-1"}, returned], statement_id="DAY-1"))
    old = payment_of(session, case)
    assert (old.status, old.return_reason, old.settled_by) == ("returned", "AC04",
                                                               staff.finance.id)
    waiting = payment_service.list_payments(ctx_for(staff.finance), {"awaiting_correction": True})
    assert [(i["id"], i["age_days"], i["settled_by"]["id"]) for i in waiting["items"]] == [
        (old.id, 0, staff.finance.id)]
    # The counsellor corrects the account, a supervisor approves, finance releases it.
    payment_service.propose(ctx_for(staff.counsellor), case.reference,
                            {"method": "transfer", "iban": DE, "account_holder": "O. Kovalenko"})
    assert payment_service.list_payments(ctx_for(staff.finance),
                                         {"awaiting_correction": True})["total"] == 0
    payment_service.approve(ctx_for(staff.supervisor), case.reference)
    payment_service.disburse(ctx_for(staff.finance), case.reference,
                             {"idempotency_key": f"again-{case.reference}"})
    second = batch_service.create_batch(ctx_for(staff.finance))
    batch_service.send_batch(ctx_for(finance2), second.id)
    [rebooked] = bookings_from_pain001(second.content)
    assert rebooked["iban"] == DE and rebooked["end_to_end_id"] != booking["end_to_end_id"]
    # A late duplicate of the old booking changes nothing; the new booking confirms.
    result = reconcile.import_statement(ctx_for(staff.finance), mt940(
        [{**booking, "reference": "B-1-LATE"}, {**rebooked, "reference": "B-2"}],
        statement_id="DAY-2"))
    assert result["outcomes"] == {"booked": 1, "returned": 0, "review": 1, "ignored": 0}
    statuses = session.execute(select(Payment.status).where(Payment.case_id == case.id)
                               .order_by(Payment.id)).scalars().all()
    assert statuses == ["returned", "booked"]
    assert audit.verify(session).ok


def test_only_booked_entries_count_and_mismatches_are_never_guessed(ctx_for, staff, session,
                                                                    finance2):
    cases, batch = sent_batch(ctx_for, staff, session, finance2, n=3)
    a, b, c = bookings_from_pain001(batch.content)
    entries = [{**a, "reference": "P-1", "status": "PDNG"},              # not booked yet
               {**b, "reference": "M-1", "amount_cents": b["amount_cents"] + 1},
               {**c, "reference": "I-1", "iban": "NL02ABNA0123456789"},
               {**c, "reference": "N-1", "end_to_end_id": None}]
    result = reconcile.import_statement(ctx_for(staff.finance), camt053(entries))
    assert result["outcomes"] == {"booked": 0, "returned": 0, "review": 3, "ignored": 1}
    assert {payment_of(session, x).status for x in cases} == {"sent"}
    reasons = {i["reference"]: i["review_reason"]
               for i in reconcile.review_list(ctx_for(staff.finance), {})["items"]}
    assert reasons == {"M-1": "amount_mismatch", "I-1": "account_mismatch", "N-1": "no_reference"}


def test_a_person_decides_a_reviewed_entry_once(ctx_for, staff, session, finance2):
    [case], batch = sent_batch(ctx_for, staff, session, finance2, n=1)
    [booking] = bookings_from_pain001(batch.content)
    reconcile.import_statement(ctx_for(staff.finance), camt053(
        [{**booking, "reference": "N-1", "end_to_end_id": None},
         {"end_to_end_id": "X", "amount_cents": 99, "iban": NL, "name": "Shop",
          "reference": "X-1"}]))
    items = {i["reference"]: i for i in reconcile.review_list(ctx_for(staff.finance), {})["items"]}
    payment = payment_of(session, case)
    with pytest.raises(Invalid) as err:
        reconcile.resolve_entry(ctx_for(staff.finance), items["N-1"]["id"], "book", "")
    assert set(err.value.details) == {"note", "payment_id"}
    with pytest.raises(Invalid):  # the other entry's amount is not this payment's
        reconcile.resolve_entry(ctx_for(staff.finance), items["X-1"]["id"], "book", "x",
                                payment.id)
    with pytest.raises(Forbidden):
        reconcile.resolve_entry(ctx_for(staff.supervisor), items["N-1"]["id"], "dismiss", "x")
    with pytest.raises(NotFound):
        reconcile.resolve_entry(ctx_for(staff.finance), 999_999, "dismiss", "x")
    done = reconcile.resolve_entry(ctx_for(staff.finance), items["N-1"]["id"], "book",
                                   "bank omitted the reference; amount and name match",
                                   payment.id)
    assert done["outcome"] == "booked" and done["resolved_by"]["id"] == staff.finance.id
    assert payment_of(session, case).status == "booked"
    reconcile.resolve_entry(ctx_for(staff.finance), items["X-1"]["id"], "dismiss",
                            "card payment of the office, not travel support")
    assert reconcile.review_list(ctx_for(staff.finance), {})["total"] == 0
    assert reconcile.review_list(ctx_for(staff.finance), {"state": "resolved"})["total"] == 2
    with pytest.raises(Exception) as again:
        reconcile.resolve_entry(ctx_for(staff.finance), items["X-1"]["id"], "dismiss", "x")
    assert getattr(again.value, "status", None) == 409


@pytest.mark.parametrize("data, code", [
    (b"<Document><BkToCstmrStmt>", "statement.malformed"),
    (b'<?xml version="1.0"?><!DOCTYPE d [<!ENTITY x SYSTEM "file:///etc/passwd">]><d>&x;</d>',
     "statement.forbidden"),
    (b'<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.02"><Nope/></Document>',
     "statement.invalid"),
    (b'<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.05"/>',
     "statement.unsupported"),
    (b"%PDF-1.7 not a statement", "statement.unsupported"),
    (b"x" * 2_001, "statement.too_large"),
])
def test_a_refused_statement_changes_nothing(ctx_for, staff, session, finance2, data, code):
    sent_batch(ctx_for, staff, session, finance2, n=1)
    before = counts(session)
    with pytest.raises(Invalid) as err:
        reconcile.import_statement(ctx_for(staff.finance), data, max_bytes=2_000)
    [message] = err.value.details["file"]
    assert message.code == code
    assert "passwd" not in str(message) and "Nope" not in str(message)
    assert counts(session) == before


def test_fifty_concurrent_imports_apply_each_entry_once(engine, ctx_for, staff, session,
                                                        finance2):
    cases, batch = sent_batch(ctx_for, staff, session, finance2)
    data = camt053(reconciliation_scenario(bookings_from_pain001(batch.content)))
    finance_id = staff.finance.id

    def attempt(i):
        with Session(engine, expire_on_commit=False) as own:
            ctx = Context(session=own, policy=DEFAULT_POLICY, actor=own.get(User, finance_id))
            return reconcile.import_statement(ctx, data)["already_imported"]

    outcomes = race(50, attempt)
    assert all(o[0] in ("ok", "conflict") for o in outcomes), outcomes
    fresh = [o for o in outcomes if o == ("ok", False)]
    assert len(fresh) == 1, outcomes
    session.rollback()  # end the test session's own read snapshot (SQLite)
    assert session.execute(select(func.count()).select_from(BankStatement)).scalar_one() == 1
    assert session.execute(select(func.count()).select_from(StatementEntry)).scalar_one() == 6
    assert session.execute(select(func.count()).select_from(AuditEvent).where(
        AuditEvent.action == "book_payment")).scalar_one() == 3
    assert [payment_of(session, c).status for c in cases] == ["booked", "booked", "returned"]
    assert audit.verify(session).ok


def test_the_monthly_report_adds_up(ctx_for, staff, session, finance2):
    from ..conftest import drive_to
    cases, batch = sent_batch(ctx_for, staff, session, finance2, n=4)
    a, b, c, d = bookings_from_pain001(batch.content)
    reconcile.import_statement(ctx_for(staff.finance), camt053([
        {**a, "reference": "1"}, {**b, "reference": "2"}, {**c, "reference": "3"},
        {**c, "reference": "4", "direction": "credit", "return_reason": "AM05"}]))
    drive_to(ctx_for, staff, session, "support_paid")  # cash, handed over
    today = dt.date.today()
    report = reconcile.monthly_report(ctx_for(staff.finance), today.year, today.month)
    assert report["booked"]["count"] == 2 and report["returned"]["count"] == 1
    assert report["outstanding"]["count"] == 1 and report["handed_over"]["count"] == 1
    parts = sum(report[k]["cents"] for k in ("booked", "returned", "outstanding", "handed_over"))
    assert parts == report["paid"]["cents"] == sum(line["amount_cents"] for line in report["lines"])
    assert report["proposed"]["count"] == 5
    text = reconcile.report_csv(report).decode("utf-8-sig")
    assert text.count("\r\n") == 1 + 5 + 1 + 1 + 6
    assert f'"paid","5","{report["paid"]["cents"]}"' in text
    with pytest.raises(Invalid):
        reconcile.monthly_report(ctx_for(staff.finance), today.year, 13)
    with pytest.raises(Forbidden):
        reconcile.monthly_report(ctx_for(staff.counsellor), today.year, today.month)
