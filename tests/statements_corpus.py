"""Bank statements made for the tests from real exported batches (issue 15): what the bank
would report back about a pain.001 the service made — booked debits, a return with its
reason, an entry that is not ours, a duplicate — as camt.053 (.02 or .08) and MT940."""
from __future__ import annotations

import datetime as dt
from decimal import Decimal
from xml.sax.saxutils import escape

from lxml import etree

PAIN_NS = {"p": "urn:iso:std:iso:20022:tech:xsd:pain.001.001.09"}
ACCOUNT = "NL91ABNA0417164300"  # the (example) paying account
DAY = dt.date(2026, 12, 1)


def bookings_from_pain001(xml: bytes) -> list[dict]:
    """Every transfer in a pain.001 as the bank executes it: end-to-end id, cents, IBAN,
    name."""
    doc = etree.fromstring(xml)
    out = []
    for tx in doc.iterfind(".//p:CdtTrfTxInf", PAIN_NS):
        amount = tx.find("p:Amt/p:InstdAmt", PAIN_NS)
        out.append({"end_to_end_id": tx.findtext("p:PmtId/p:EndToEndId", namespaces=PAIN_NS),
                    "amount_cents": int(Decimal(amount.text) * 100),
                    "currency": amount.get("Ccy"),
                    "iban": tx.findtext("p:CdtrAcct/p:Id/p:IBAN", namespaces=PAIN_NS),
                    "name": tx.findtext("p:Cdtr/p:Nm", namespaces=PAIN_NS)})
    return out


def reconciliation_scenario(bookings: list[dict]) -> list[dict]:
    """The issue's statement: every transfer booked, the last one also returned (AC04,
    closed account), one entry that is not ours, and the first booking reported twice."""
    entries = [{**b, "direction": "debit", "reference": f"BOOK-{i}"}
               for i, b in enumerate(bookings, 1)]
    last = bookings[-1]
    entries.append({**last, "direction": "credit", "reference": "RTRN-1",
                    "return_reason": "AC04"})
    entries.append({"end_to_end_id": "SOMEONE-ELSE-42", "amount_cents": 12_345,
                    "iban": "NL02ABNA0123456789", "name": "Leverancier BV",
                    "direction": "debit", "reference": "OTHER-1"})
    entries.append({**bookings[0], "direction": "debit", "reference": "BOOK-1-AGAIN"})
    return entries


def _amount(cents: int) -> str:
    return f"{Decimal(cents) / 100:.2f}"


def camt053(entries: list[dict], *, statement_id: str = "STMT-2026-12-01",
            version: str = "02", account_iban: str = ACCOUNT) -> bytes:
    """A camt.053.001.<version> statement (valid against its XSD) holding ``entries``:
    dicts with end_to_end_id, amount_cents, iban, name, direction (debit | credit),
    reference, and optionally return_reason, status (BOOK | PDNG), booked_on, currency."""
    ns = f"urn:iso:std:iso:20022:tech:xsd:camt.053.001.{version}"
    created = "2026-12-02T06:00:00"
    parts = [f'<?xml version="1.0" encoding="UTF-8"?>\n<Document xmlns="{ns}"><BkToCstmrStmt>',
             f"<GrpHdr><MsgId>MSG-{escape(statement_id)}</MsgId><CreDtTm>{created}</CreDtTm>"
             "</GrpHdr>",
             f"<Stmt><Id>{escape(statement_id)}</Id><CreDtTm>{created}</CreDtTm>"
             f"<Acct><Id><IBAN>{account_iban}</IBAN></Id></Acct>"
             "<Bal><Tp><CdOrPrtry><Cd>OPBD</Cd></CdOrPrtry></Tp>"
             '<Amt Ccy="EUR">100000.00</Amt><CdtDbtInd>CRDT</CdtDbtInd>'
             f"<Dt><Dt>{DAY.isoformat()}</Dt></Dt></Bal>"]
    for e in entries:
        debit = e.get("direction", "debit") == "debit"
        status = e.get("status", "BOOK")
        sts = f"<Sts>{status}</Sts>" if version == "02" else f"<Sts><Cd>{status}</Cd></Sts>"
        day = (e.get("booked_on") or DAY).isoformat()
        family = ("<Cd>ICDT</Cd><SubFmlyCd>ESCT</SubFmlyCd>" if not e.get("return_reason")
                  else "<Cd>ICDT</Cd><SubFmlyCd>RRTN</SubFmlyCd>")
        party = "Cdtr" if debit else "Dbtr"
        name = escape(e.get("name") or "")
        who = (f"<{party}><Nm>{name}</Nm></{party}>" if version == "02"
               else f"<{party}><Pty><Nm>{name}</Nm></Pty></{party}>")
        refs = (f"<Refs><EndToEndId>{escape(e['end_to_end_id'])}</EndToEndId></Refs>"
                if e.get("end_to_end_id") else "")
        rtr = (f"<RtrInf><Rsn><Cd>{e['return_reason']}</Cd></Rsn></RtrInf>"
               if e.get("return_reason") else "")
        parts.append(
            f'<Ntry><Amt Ccy="{e.get("currency", "EUR")}">{_amount(e["amount_cents"])}</Amt>'
            f"<CdtDbtInd>{'DBIT' if debit else 'CRDT'}</CdtDbtInd>{sts}"
            f"<BookgDt><Dt>{day}</Dt></BookgDt><ValDt><Dt>{day}</Dt></ValDt>"
            f"<AcctSvcrRef>{escape(e['reference'])}</AcctSvcrRef>"
            f"<BkTxCd><Domn><Cd>PMNT</Cd><Fmly>{family}</Fmly></Domn></BkTxCd>"
            f"<NtryDtls><TxDtls>{refs}"
            f"<RltdPties>{who}<{party}Acct><Id><IBAN>{e['iban']}</IBAN></Id></{party}Acct>"
            f"</RltdPties>{rtr}</TxDtls></NtryDtls></Ntry>")
    parts.append("</Stmt></BkToCstmrStmt></Document>")
    return "".join(parts).encode("utf-8")


def mt940(entries: list[dict], *, statement_id: str = "STMT-2026-12-01",
          account_iban: str = ACCOUNT) -> bytes:
    """The same entries as an MT940 statement with Dutch-bank ``:86:`` subfields."""
    day = DAY.strftime("%y%m%d")
    lines = [f":20:{statement_id}", f":25:{account_iban}", ":28C:00001/1",
             f":60F:C{day}EUR100000,00"]
    for e in entries:
        debit = e.get("direction", "debit") == "debit"
        when = (e.get("booked_on") or DAY)
        amount = _amount(e["amount_cents"]).replace(".", ",")
        lines.append(f":61:{when:%y%m%d}{when:%m%d}{'D' if debit else 'C'}{amount}"
                     f"NTRFNONREF//{e['reference']}")
        details = "".join(f"/{tag}/{value}" for tag, value in (
            ("EREF", e.get("end_to_end_id")), ("RTRN", e.get("return_reason")),
            ("IBAN", e.get("iban")), ("NAME", e.get("name"))) if value)
        lines.append(f":86:{details}")
    lines.append(f":62F:C{day}EUR100000,00")
    return ("\r\n".join(lines) + "\r\n").encode("utf-8")
