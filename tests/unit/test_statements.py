"""The bank-statement reader (issue 15): camt.053 .02 and .08 and MT940 read the same
entries from the same bookings, a statement made from a real pain.001 round-trips, and
every refusal has its code without repeating the refused content. Also the decision table
of reconciliation (:func:`reconcile.match_entry`)."""
from __future__ import annotations

import datetime as dt
import functools
from types import SimpleNamespace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from returnprog import export, statements
from returnprog.services.reconcile import match_entry
from returnprog.statements import Entry, StatementError, parse_statement

from ..statements_corpus import bookings_from_pain001, camt053, mt940, reconciliation_scenario

LINES = [export.Line(payment_id=7, case_reference="VRP-2026-000007", account_holder="Олена К",
                     iban="DE89370400440532013000", amount_cents=150_000, currency="EUR",
                     status="disbursed"),
         export.Line(payment_id=9, case_reference="VRP-2026-000009", account_holder="P. K.",
                     iban="NL91ABNA0417164300", amount_cents=75_050, currency="EUR",
                     status="disbursed")]


def _pain() -> bytes:
    return export.sepa_pain001(LINES, export.EXAMPLE_DEBTOR, msg_id="RETURNPROG-1",
                               execution_date=dt.date(2026, 12, 1))


def test_the_three_formats_read_the_same_entries_from_a_real_batch():
    bookings = bookings_from_pain001(_pain())
    assert [(b["end_to_end_id"], b["amount_cents"], b["iban"]) for b in bookings] == [
        ("VRP-2026-000007-P7", 150_000, "DE89370400440532013000"),
        ("VRP-2026-000009-P9", 75_050, "NL91ABNA0417164300")]
    entries = reconciliation_scenario(bookings)
    read = {fmt: parse_statement(data) for fmt, data in (
        ("02", camt053(entries, version="02")), ("08", camt053(entries, version="08")),
        ("mt940", mt940(entries)))}
    assert read["02"].format == "camt.053.001.02" and read["08"].format == "camt.053.001.08"
    assert read["02"].entries == read["08"].entries == read["mt940"].entries
    assert read["mt940"].statement_id == "STMT-2026-12-01/00001/1"
    first, second, ret, other, again = read["02"].entries
    assert (first.direction, first.amount_cents, first.end_to_end_id, first.status) == (
        "debit", 150_000, "VRP-2026-000007-P7", "booked")
    assert (ret.direction, ret.return_reason, ret.end_to_end_id) == (
        "credit", "AC04", "VRP-2026-000009-P9")
    assert other.counterparty_name == "Leverancier BV"
    assert not any(e.duplicate for e in read["02"].entries)  # distinct bank references
    assert read["02"].account_iban == "NL91ABNA0417164300"


def test_an_entry_repeated_under_the_same_reference_is_flagged():
    b = bookings_from_pain001(_pain())[0]
    parsed = parse_statement(camt053([{**b, "reference": "R"}, {**b, "reference": "R"}]))
    assert [e.duplicate for e in parsed.entries] == [False, True]


def test_return_reasons_read_in_dutch():
    assert statements.return_reason_text("AC04") == "Rekening opgeheven"
    assert statements.return_reason_text("am05") == "Dubbele betaling"
    assert statements.return_reason_text("AC04", "en") == "Closed account number"
    assert statements.return_reason_text("ZZ99") == "Onbekende reden (ZZ99)"
    assert statements.return_reason_text(None) is None


def _refused(data: bytes, **kw) -> StatementError:
    with pytest.raises(StatementError) as err:
        parse_statement(data, **kw)
    return err.value


def test_refusals_have_codes_and_never_repeat_the_content(tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-VALUE")
    xxe = (f'<?xml version="1.0"?><!DOCTYPE d [<!ENTITY x SYSTEM "file://{secret}">]>'
           "<d>&x;</d>").encode()
    err = _refused(xxe)
    assert err.code == "statement_forbidden" and "TOP-SECRET" not in str(err)
    bomb = b'<!DOCTYPE l [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;">]><l>&b;</l>'
    assert _refused(bomb).code == "statement_forbidden"
    err = _refused(b"<Document>\n<BkToCstmrStmt>\n<Stmt secret='VALUE-42'>")
    assert err.code == "statement_malformed" and err.params["line"] >= 3
    assert "VALUE-42" not in str(err)
    invalid = camt053([]).replace(b"<Id>STMT-2026-12-01</Id>", b"<Idx>STMT</Idx>")
    assert _refused(invalid).code == "statement_invalid"
    newer = camt053([]).replace(b"camt.053.001.02", b"camt.053.001.05")
    assert _refused(newer).code == "statement_unsupported"
    assert _refused(b"%PDF-1.7").code == "statement_unsupported"
    assert _refused(b"").code == "statement_unsupported"
    err = _refused(camt053([]), max_bytes=100)
    assert (err.code, err.params) == ("statement_too_large", {"max_bytes": 100})
    bad_amount = camt053([{"end_to_end_id": "E", "amount_cents": 100, "iban": "NL91ABNA0417164300",
                           "name": "n", "reference": "r"}]).replace(b">1.00<", b">1.001<")
    assert _refused(bad_amount).code == "statement_invalid"
    assert _refused(b":20:X\r\n:61:garbage\r\n").code in ("statement_malformed",
                                                          "statement_invalid")


def _entry(**kw) -> Entry:
    base = dict(reference="R", booked_on=dt.date(2026, 12, 1), direction="debit",
                amount_cents=100, currency="EUR", status="booked", end_to_end_id="E",
                counterparty_iban="NL91ABNA0417164300")
    return Entry(**{**base, **kw})


def _payment(**kw):
    base = dict(method="transfer", currency="EUR", amount_cents=100, status="sent",
                iban="NL91ABNA0417164300")
    return SimpleNamespace(**{**base, **kw})


@pytest.mark.parametrize("entry, payment, expected", [
    (_entry(), _payment(), ("booked", None)),
    (_entry(status="pending"), _payment(), ("ignored", None)),
    (_entry(duplicate=True), _payment(), ("review", "duplicate_entry")),
    (_entry(end_to_end_id=None), None, ("review", "no_reference")),
    (_entry(), None, ("review", "unknown")),
    (_entry(), _payment(method="cash"), ("review", "not_a_transfer")),
    (_entry(amount_cents=101), _payment(), ("review", "amount_mismatch")),
    (_entry(currency="USD"), _payment(), ("review", "currency")),
    (_entry(counterparty_iban="NL02ABNA0123456789"), _payment(), ("review", "account_mismatch")),
    (_entry(), _payment(status="booked"), ("review", "already_booked")),
    (_entry(), _payment(status="scheduled"), ("review", "batch_not_sent")),
    (_entry(direction="credit", return_reason="AC04"), _payment(), ("returned", None)),
    (_entry(direction="credit", return_reason="AC04"), _payment(status="booked"),
     ("returned", None)),
    (_entry(direction="credit", return_reason="AC04"), _payment(status="returned"),
     ("review", "already_returned")),
    (_entry(direction="credit"), _payment(), ("review", "return_without_reason")),
])
def test_the_decision_table_of_reconciliation(entry, payment, expected):
    assert match_entry(entry, payment) == expected


def test_values_longer_than_the_register_keeps_are_refused():
    b = {"end_to_end_id": "E" * 60, "amount_cents": 100, "iban": "NL91ABNA0417164300",
         "name": "n", "reference": "r"}
    assert _refused(mt940([b])).code == "statement_invalid"
    assert _refused(mt940([{**b, "end_to_end_id": "E", "return_reason": "TOOLONG"}])).code \
        == "statement_invalid"
    assert _refused(mt940([b], statement_id="S" * 80)).code == "statement_invalid"


@settings(max_examples=150, deadline=None)
@given(st.binary(max_size=400), st.sampled_from([b"", b"<", b":20:", b"<?xml version='1.0'?>"]))
def test_whatever_the_bytes_only_a_statement_error_comes_out(tail, head):
    try:
        parse_statement(head + tail)
    except StatementError:
        pass


@functools.cache
def _real_statements() -> tuple[bytes, bytes]:
    b = bookings_from_pain001(_pain())
    return camt053(reconciliation_scenario(b)), mt940(reconciliation_scenario(b))


@settings(max_examples=100, deadline=None)
@given(st.integers(min_value=0, max_value=4000), st.binary(min_size=1, max_size=8))
def test_a_damaged_real_statement_is_read_or_refused_never_crashes(at, junk):
    for data in _real_statements():
        damaged = data[:at % len(data)] + junk + data[at % len(data):]
        try:
            parse_statement(damaged)
        except StatementError:
            pass
