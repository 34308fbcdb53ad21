"""Finance export files: approved bank transfers as a SEPA credit-transfer initiation
(ISO 20022 pain.001, made with sepaxml and checked against the XSD that sepaxml ships) or
as CSV for a spreadsheet, with cells escaped against formula injection.

Pure: builds bytes from plain :class:`Line` data; the service layer selects the payments,
stores the batch and records it in the audit trail.
"""
from __future__ import annotations

import csv
import datetime as dt
import io
import re
from dataclasses import dataclass
from pathlib import Path

from .payments import format_cents
from .safety import EXAMPLE_DEBTOR_IBAN

KINDS = ("sepa", "csv")
# pain.001.001.09 is the ISO 20022 2019 version that the EPC SEPA Credit Transfer rulebook
# (2023 onwards) uses; sepaxml also ships .03 for banks that still want the 2009 version.
PAIN_SCHEMA = "pain.001.001.09"
MEDIA_TYPES = {"sepa": "application/xml", "csv": "text/csv; charset=utf-8"}
FILE_SUFFIX = {"sepa": "xml", "csv": "csv"}


class ExportError(Exception):
    """The file could not be made (e.g. it does not validate); ``problems`` say why."""

    def __init__(self, message: str, problems: list[dict]):
        super().__init__(message)
        self.problems = problems


@dataclass(frozen=True)
class Debtor:
    """The account the travel support is paid from."""

    name: str
    iban: str
    bic: str | None = None


# EXAMPLE CONFIGURATION — not DTenV's account. NL91ABNA0417164300 is the well-known
# example IBAN. Set the real paying account in instance/config.py as
# SEPA_DEBTOR = {"name": ..., "iban": ..., "bic": ...}.
EXAMPLE_DEBTOR = Debtor(name="Dienst Terugkeer en Vertrek (EXAMPLE ACCOUNT)",
                        iban=EXAMPLE_DEBTOR_IBAN, bic="ABNANL2A")


def debtor_from_config(value: dict | None) -> Debtor:
    """The paying account from configuration, or the example one."""
    if not value:
        return EXAMPLE_DEBTOR
    return Debtor(name=str(value["name"]), iban=str(value["iban"]).replace(" ", "").upper(),
                  bic=(str(value["bic"]) if value.get("bic") else None))


@dataclass(frozen=True)
class Line:
    """One bank transfer in an export."""

    payment_id: int
    case_reference: str
    account_holder: str
    iban: str
    amount_cents: int
    currency: str
    status: str
    approved_at: dt.datetime | None = None
    disbursed_at: dt.datetime | None = None

    @classmethod
    def of(cls, payment, case_reference: str) -> "Line":
        """The export line of a Payment row."""
        return cls(payment_id=payment.id, case_reference=case_reference,
                   account_holder=payment.account_holder or "", iban=payment.iban or "",
                   amount_cents=payment.amount_cents, currency=payment.currency,
                   status=payment.status, approved_at=payment.approved_at,
                   disbursed_at=payment.disbursed_at)

    @property
    def end_to_end_id(self) -> str:
        """Travels with the money to the beneficiary's statement (≤ 35 characters)."""
        return f"{self.case_reference}-P{self.payment_id}"[:35]

    @property
    def description(self) -> str:
        """Remittance text (≤ 140 characters, SEPA basic Latin)."""
        return f"Reisbijdrage terugkeer / travel support {self.case_reference}"


# --- SEPA pain.001 ------------------------------------------------------------------------

def xsd_path(schema: str = PAIN_SCHEMA) -> Path:
    """The XSD that sepaxml ships for ``schema``."""
    import sepaxml

    return Path(sepaxml.__file__).parent / "schemas" / f"{schema}.xsd"


def validate_pain001(xml: bytes, schema: str = PAIN_SCHEMA) -> list[str]:
    """Every reason ``xml`` does not validate against the pain.001 XSD ([] when it does)."""
    import xmlschema

    xsd = xmlschema.XMLSchema(str(xsd_path(schema)))
    return [f"{err.path}: {err.reason}" for err in xsd.iter_errors(xml.decode("utf-8"))]


_SEPA_CHARSET = re.compile(r"[^A-Za-z0-9/\-?:().,'+ ]")


def sepa_text(text: str, limit: int = 70) -> str:
    """``text`` in the EPC basic Latin character set that every SEPA bank accepts:
    transliterated (Олена → Olena), other characters replaced by spaces."""
    from text_unidecode import unidecode

    cleaned = _SEPA_CHARSET.sub(" ", unidecode(text or ""))
    return " ".join(cleaned.split())[:limit].strip()


def sepa_pain001(lines: list[Line], debtor: Debtor, *, msg_id: str,
                 execution_date: dt.date, created_at: dt.datetime | None = None,
                 schema: str = PAIN_SCHEMA) -> bytes:
    """A pain.001 credit-transfer file paying every line from ``debtor``'s account on
    ``execution_date``; validated against the XSD before it is returned."""
    from sepaxml import SepaTransfer

    if not lines:
        raise ExportError("Nothing to export.", [{"code": "nothing_to_export",
                                                  "message": "No transfers."}])
    config = {"name": debtor.name, "IBAN": debtor.iban, "batch": True,
              "currency": lines[0].currency}
    if debtor.bic:
        config["BIC"] = debtor.bic
    sepa = SepaTransfer(config, schema=schema, clean=True)
    # Our own message id, so the bank's reports can be traced back to the batch.
    sepa.msg_id = msg_id[:35]
    header = sepa._xml.find("CstmrCdtTrfInitn/GrpHdr")
    header.find("MsgId").text = sepa.msg_id
    if created_at is not None:
        header.find("CreDtTm").text = created_at.strftime("%Y-%m-%dT%H:%M:%S")
    problems = []
    for line in lines:
        if line.currency != config["currency"]:
            problems.append({"code": "currency", "message": "One currency per file."})
        if not sepa_text(line.account_holder):
            problems.append({"code": "account_holder", "message":
                             f"Payment {line.payment_id}: the account holder's name has no "
                             "letters a bank can read."})
    if problems:
        raise ExportError("The SEPA file cannot be made.", problems)
    for line in lines:
        sepa.add_payment({"name": sepa_text(line.account_holder), "IBAN": line.iban,
                          "amount": line.amount_cents, "currency": line.currency,
                          "execution_date": execution_date, "description": line.description,
                          "endtoend_id": line.end_to_end_id})
    xml = sepa.export(validate=False)
    errors = validate_pain001(xml, schema)
    if errors:
        raise ExportError("The SEPA file does not validate against its schema.",
                          [{"code": "xsd", "message": e} for e in errors[:20]])
    return xml


# --- CSV ----------------------------------------------------------------------------------

# A spreadsheet treats a cell starting with one of these as a formula (OWASP "CSV
# injection"); full-width forms are included because some spreadsheet programs fold them.
FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r", "\n", "\uff1d", "\uff0b", "\uff0d", "\uff20")

CSV_COLUMNS = ("payment_id", "case_reference", "end_to_end_id", "account_holder", "iban",
               "amount", "amount_cents", "currency", "status", "approved_at", "disbursed_at",
               "description")


def escape_cell(value) -> str:
    """The cell as text, prefixed with an apostrophe when a spreadsheet would otherwise
    read it as a formula (also after leading spaces, which some programs skip)."""
    text = "" if value is None else str(value)
    if text.lstrip(" ").startswith(FORMULA_TRIGGERS):
        return "'" + text
    return text


def csv_export(lines: list[Line]) -> bytes:
    """The transfers as CSV: RFC 4180 (comma, CRLF, every cell quoted), UTF-8 with a byte
    order mark so spreadsheet programs show Cyrillic names correctly; amounts as decimal
    text made from whole cents."""
    out = io.StringIO()
    writer = csv.writer(out, quoting=csv.QUOTE_ALL, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for line in lines:
        row = (line.payment_id, line.case_reference, line.end_to_end_id, line.account_holder,
               line.iban, format_cents(line.amount_cents), line.amount_cents, line.currency,
               line.status,
               line.approved_at.isoformat(timespec="seconds") if line.approved_at else "",
               line.disbursed_at.isoformat(timespec="seconds") if line.disbursed_at else "",
               line.description)
        writer.writerow([escape_cell(cell) for cell in row])
    return out.getvalue().encode("utf-8-sig")


def filename(batch_id: int, kind: str, created_at: dt.datetime) -> str:
    """``travel-support-<date>-batch-<id>.<xml|csv>``."""
    return f"travel-support-{created_at:%Y%m%d}-batch-{batch_id}.{FILE_SUFFIX[kind]}"
