"""Bank statements read as data: camt.053 (ISO 20022 versions .02, which Dutch banks
deliver, and .08), validated against its XSD, and MT940 (via the ``mt-940`` library), both
turned into the same :class:`Statement` of :class:`Entry` rows in whole cents.

Pure: no Flask, no database. A file is refused with a :class:`StatementError` whose code
says why — too large, a DOCTYPE or entity declaration (never resolved: no XXE, no
entity expansion), not well-formed (with the line), not valid against the schema,
unsupported, no entries — and whose message never repeats the refused content.
"""
from __future__ import annotations

import datetime as dt
import json
import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from pathlib import Path

DATA = Path(__file__).parent / "data"
CAMT_NS = "urn:iso:std:iso:20022:tech:xsd:camt.053.001."
CAMT_VERSIONS = ("02", "08")
DEFAULT_MAX_BYTES = 5_000_000
MAX_CENTS = 1_000_000_000  # payments.MAX_CENTS: nothing the programme pays is larger
NOT_PROVIDED = "NOTPROVIDED"


class StatementError(Exception):
    """A statement that is refused: ``code`` (statement_too_large, statement_forbidden,
    statement_malformed, statement_invalid, statement_unsupported, statement_empty) and
    ``params`` (numbers only: line, max_bytes, position)."""

    def __init__(self, code: str, message: str, **params):
        super().__init__(message)
        self.code, self.params = code, params


@dataclass(frozen=True)
class Entry:
    """One booking on the statement, normalised.

    ``reference`` is the bank's reference of the entry (unique within the statement,
    save for ``duplicate`` ones); ``direction`` is ``debit`` (money out) or ``credit``;
    ``status`` ``booked``, ``pending`` or ``info``; ``counterparty_iban`` is the creditor's
    account of a debit and the debtor's of a credit; ``return_reason`` the ISO external
    return reason code of a returned transfer (e.g. AC04)."""

    reference: str
    booked_on: dt.date
    direction: str
    amount_cents: int
    currency: str
    status: str
    end_to_end_id: str | None = None
    counterparty_iban: str | None = None
    counterparty_name: str | None = None
    return_reason: str | None = None
    remittance: str | None = None
    duplicate: bool = False


@dataclass(frozen=True)
class Statement:
    """A parsed statement: the bank's id for it, its format and account, its entries."""

    statement_id: str
    format: str
    account_iban: str | None
    created_at: dt.datetime | None
    entries: tuple[Entry, ...]


def parse_statement(data: bytes, *, max_bytes: int = DEFAULT_MAX_BYTES) -> Statement:
    """Parse a camt.053 or MT940 statement (told apart by their first bytes), or refuse
    it with a :class:`StatementError`."""
    if len(data) > max_bytes:
        raise StatementError("statement_too_large", "The file is too large.",
                             max_bytes=max_bytes)
    head = data.lstrip(b"\xef\xbb\xbf \t\r\n")[:64]
    if head.startswith(b"<"):
        return parse_camt053(data)
    if head.startswith((b":20:", b"{1:", b":940:")) or b"\n:20:" in data[:2000]:
        return parse_mt940(data)
    raise StatementError("statement_unsupported", "Not a camt.053 or MT940 statement.")


# --- camt.053 ---------------------------------------------------------------------------------

_DOCTYPE = re.compile(rb"<!(DOCTYPE|ENTITY)", re.IGNORECASE)


@lru_cache(maxsize=None)
def _schema(version: str):
    from lxml import etree

    path = DATA / "iso20022" / f"camt.053.001.{version}.xsd"
    return etree.XMLSchema(etree.parse(str(path), _parser()))


def _parser():
    from lxml import etree

    return etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False,
                           huge_tree=False, remove_comments=True)


def parse_camt053(data: bytes) -> Statement:
    """A camt.053.001.02 or .08 statement, validated against its XSD."""
    from lxml import etree

    if _DOCTYPE.search(data):
        # Statements never declare a document type; refusing it before parsing rules out
        # entity expansion and external entities whatever the parser's settings.
        raise StatementError("statement_forbidden", "The file declares a document type.")
    try:
        root = etree.fromstring(data, _parser())
    except etree.XMLSyntaxError as exc:
        raise StatementError("statement_malformed", "The file is not well-formed XML.",
                             line=int(exc.lineno or 0)) from None
    ns = etree.QName(root).namespace or ""
    version = ns[len(CAMT_NS):] if ns.startswith(CAMT_NS) else None
    if version not in CAMT_VERSIONS:
        raise StatementError("statement_unsupported", "Not a supported camt.053 version.")
    schema = _schema(version)
    if not schema.validate(root):
        error = schema.error_log.last_error
        raise StatementError("statement_invalid", "The file is not valid against the schema.",
                             line=int(getattr(error, "line", 0) or 0))
    n = {"c": ns}
    stmts = root.findall("c:BkToCstmrStmt/c:Stmt", n)
    if not stmts:
        raise StatementError("statement_empty", "The file holds no statement.")
    created = root.findtext("c:BkToCstmrStmt/c:GrpHdr/c:CreDtTm", namespaces=n)
    entries: list[Entry] = []
    stmt = stmts[0]
    statement_id = stmt.findtext("c:Id", namespaces=n)
    account = stmt.findtext("c:Acct/c:Id/c:IBAN", namespaces=n)
    for position, ntry in enumerate(stmt.iterfind("c:Ntry", n), 1):
        entries.extend(_camt_entries(ntry, n, position, version))
    return _statement(statement_id, f"camt.053.001.{version}", account, _datetime(created),
                      entries)


def _camt_entries(ntry, n, position: int, version: str) -> list[Entry]:
    direction = "debit" if ntry.findtext("c:CdtDbtInd", namespaces=n) == "DBIT" else "credit"
    status = (ntry.findtext("c:Sts", namespaces=n) if version == "02"
              else ntry.findtext("c:Sts/c:Cd", namespaces=n)) or ""
    status = {"BOOK": "booked", "PDNG": "pending"}.get(status.strip(), "info")
    booked = ntry.findtext("c:BookgDt/c:Dt", namespaces=n) or \
        ntry.findtext("c:BookgDt/c:DtTm", namespaces=n) or \
        ntry.findtext("c:ValDt/c:Dt", namespaces=n)
    booked_on = dt.date.fromisoformat(booked[:10]) if booked else None
    if booked_on is None:
        raise StatementError("statement_invalid", "An entry has no booking date.",
                             position=position)
    entry_ref = ntry.findtext("c:AcctSvcrRef", namespaces=n) or \
        ntry.findtext("c:NtryRef", namespaces=n)
    amount = ntry.find("c:Amt", n)
    details = ntry.findall("c:NtryDtls/c:TxDtls", n)
    out = []
    for i, tx in enumerate(details or [None], 1):
        tx_amount = tx.find("c:AmtDtls/c:TxAmt/c:Amt", n) if tx is not None else None
        if tx_amount is None and tx is not None and version != "02":
            tx_amount = tx.find("c:Amt", n)
        use = tx_amount if tx_amount is not None and len(details) > 1 else amount
        reference = entry_ref or (tx.findtext("c:Refs/c:AcctSvcrRef", namespaces=n)
                                  if tx is not None else None) or f"entry-{position}"
        if len(details) > 1:
            reference = f"{reference}/{i}"
        e2e = return_reason = iban = name = remittance = None
        if tx is not None:
            e2e = tx.findtext("c:Refs/c:EndToEndId", namespaces=n)
            return_reason = tx.findtext("c:RtrInf/c:Rsn/c:Cd", namespaces=n)
            party = "Cdtr" if direction == "debit" else "Dbtr"
            iban = tx.findtext(f"c:RltdPties/c:{party}Acct/c:Id/c:IBAN", namespaces=n)
            name = tx.findtext(f"c:RltdPties/c:{party}/c:Nm", namespaces=n) or \
                tx.findtext(f"c:RltdPties/c:{party}/c:Pty/c:Nm", namespaces=n)
            remittance = " ".join(t.strip() for t in tx.xpath(
                "c:RmtInf/c:Ustrd/text()", namespaces=n)) or None
        out.append(Entry(reference=reference[:80], booked_on=booked_on, direction=direction,
                         amount_cents=_cents(use.text, position),
                         currency=use.get("Ccy") or "", status=status,
                         end_to_end_id=None if e2e in (None, NOT_PROVIDED) else e2e.strip(),
                         counterparty_iban=_iban(iban), counterparty_name=_clean(name),
                         return_reason=_clean(return_reason),
                         remittance=_clean(remittance)))
    return out


# --- MT940 ------------------------------------------------------------------------------------

_86_FIELDS = ("EREF", "IBAN", "NAME", "REMI", "RTRN", "BIC", "CSID", "MARF", "TRTP", "ORDP",
              "BENM", "ADDR", "ISDT", "PREF", "SVCL", "CNTP")
_86 = re.compile(r"/(" + "|".join(_86_FIELDS) + r")/")


def _subfields(text: str) -> dict[str, str]:
    """The structured ``:86:`` subfields Dutch banks write (``/EREF/…/IBAN/…``)."""
    text = (text or "").replace("\r", "").replace("\n", "")
    parts = _86.split(text)
    return {parts[i]: parts[i + 1].strip(" /") for i in range(1, len(parts) - 1, 2)}


def parse_mt940(data: bytes) -> Statement:
    """An MT940 statement (SWIFT customer statement), with its ``:86:`` details."""
    import mt940

    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        text = data.decode("latin-1")
    if ":61:" not in text and ":20:" not in text:
        raise StatementError("statement_malformed", "Not an MT940 statement.", line=1)
    transactions = mt940.models.Transactions()
    try:
        transactions.parse(text)
    except Exception:  # the library raises bare errors of several kinds on bad input
        raise StatementError("statement_malformed", "The MT940 statement cannot be read.",
                             line=0) from None
    head = transactions.data
    reference = (head.get("transaction_reference") or "").strip()
    if not reference:
        raise StatementError("statement_invalid", "The statement has no :20: reference.")
    number = "/".join(str(head[k]) for k in ("statement_number", "sequence_number")
                      if head.get(k))
    statement_id = f"{reference}/{number}" if number else reference
    entries = []
    for position, tx in enumerate(transactions, 1):
        try:
            entries.append(_mt940_entry(tx.data, statement_id, position))
        except (KeyError, AttributeError, TypeError, ValueError):
            raise StatementError("statement_malformed", "An MT940 entry cannot be read.",
                                 line=0, position=position) from None
    return _statement(statement_id, "mt940",
                      _iban((head.get("account_identification") or "").split("/")[0]),
                      None, entries)


def _mt940_entry(d: dict, statement_id: str, position: int) -> Entry:
    """One ``:61:`` line with its ``:86:`` details, as an Entry."""
    fields = _subfields(d.get("transaction_details") or "")
    amount = d["amount"].amount
    bank_ref = (d.get("bank_reference") or "").strip()
    when = d.get("entry_date") if d.get("entry_date") and \
        abs((d["entry_date"] - d["date"]).days) < 7 else d.get("date")
    return Entry(
        reference=(bank_ref or f"{statement_id}/{position}")[:80],
        booked_on=dt.date(when.year, when.month, when.day),
        direction="debit" if amount < 0 else "credit",
        amount_cents=_cents(str(abs(amount)), position),
        currency=d.get("currency") or d["amount"].currency or "", status="booked",
        end_to_end_id=None if fields.get("EREF") in (None, "", NOT_PROVIDED)
        else fields["EREF"],
        counterparty_iban=_iban(fields.get("IBAN")),
        counterparty_name=_clean(fields.get("NAME")),
        return_reason=_clean((fields.get("RTRN") or "").split("/")[0]),
        remittance=_clean(fields.get("REMI")))


# --- shared -------------------------------------------------------------------------------

def _cents(text: str | None, position: int) -> int:
    try:
        value = Decimal((text or "").strip().replace(",", "."))
    except InvalidOperation:
        value = None
    if value is None or not value.is_finite() or value < 0 or value != value.quantize(
            Decimal("0.01")) or value * 100 > MAX_CENTS:
        raise StatementError("statement_invalid", "An entry's amount cannot be read.",
                             position=position)
    return int(value * 100)


def _iban(value: str | None) -> str | None:
    cleaned = re.sub(r"\s+", "", value or "").upper()
    return cleaned or None


def _clean(value: str | None) -> str | None:
    cleaned = " ".join((value or "").split())
    return cleaned or None


def _datetime(value: str | None) -> dt.datetime | None:
    if not value:
        return None
    try:
        return dt.datetime.fromisoformat(value)
    except ValueError:
        return None


# What the register's columns hold; a longer value is not a statement we can read.
LIMITS = {"end_to_end_id": 35, "counterparty_iban": 34, "return_reason": 4, "currency": 3}


def _statement(statement_id: str | None, fmt: str, account: str | None,
               created: dt.datetime | None, entries: list[Entry]) -> Statement:
    """The Statement, once its values fit what the service keeps of them."""
    if not statement_id or len(statement_id) > 70:
        raise StatementError("statement_invalid", "The statement's id is missing or too long.")
    for position, e in enumerate(entries, 1):
        if any(len(getattr(e, name) or "") > limit for name, limit in LIMITS.items()) \
                or not re.fullmatch(r"[A-Z]{3}", e.currency or ""):
            raise StatementError("statement_invalid", "An entry has a value out of bounds.",
                                 position=position)
    return Statement(statement_id=statement_id, format=fmt,
                     account_iban=account if account and len(account) <= 34 else None,
                     created_at=created, entries=_flag_duplicates(entries))


def _flag_duplicates(entries: list[Entry]) -> tuple[Entry, ...]:
    """Mark the second and later entries that repeat an earlier entry's reference."""
    seen: set[str] = set()
    out = []
    for e in entries:
        if e.reference in seen:
            e = Entry(**{**e.__dict__, "duplicate": True})
        seen.add(e.reference)
        out.append(e)
    return tuple(out)


@lru_cache(maxsize=1)
def _reasons() -> dict:
    return json.loads((DATA / "return_reasons.json").read_text(encoding="utf-8"))


def return_reason_text(code: str | None, language: str = "nl") -> str | None:
    """What a return reason code means, in Dutch (``language="en"``: English); None
    without a code; an unknown code is named as such."""
    if not code:
        return None
    known = _reasons().get(code.upper())
    if known is None:
        return ("Onbekende reden ({})" if language == "nl" else "Unknown reason ({})").format(
            code.upper())
    return known[language]
