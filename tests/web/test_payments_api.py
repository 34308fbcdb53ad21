"""The payment API (/api/v1) on SQLite and PostgreSQL: a household case from intake to
``departed`` with every step over HTTP, four eyes, bank-detail errors, the finance export
download, and the error shape of every refusal."""
from __future__ import annotations

import csv
import datetime as dt
import io

import pytest
from lxml import etree
from sqlalchemy import select
from sqlmodel import Session

from returnprog import audit, export, workflow
from returnprog.models import AuditEvent, Case
from returnprog.policy import DEFAULT_POLICY

from ..conftest import fake_sign, intake, jsonable

API = "/api/v1"
TODAY = dt.date.today()
NL = "NL91ABNA0417164300"
UA = "UA213223130000026007233566001"
NS = {"p": "urn:iso:std:iso:20022:tech:xsd:pain.001.001.09"}


class Http:
    """``http.as_("supervisor").post(path, json)`` with that user's bearer token."""

    def __init__(self, client, staff, role="counsellor"):
        self.client, self.staff, self.role = client, staff, role

    def as_(self, role):
        return Http(self.client, self.staff, role)

    def get(self, path, **kw):
        return self.client.get(API + path, headers=self.staff.headers[self.role], **kw)

    def post(self, path, payload=None, **kw):
        if payload is not None:
            kw["json"] = jsonable(payload)
        return self.client.post(API + path, headers=self.staff.headers[self.role], **kw)

    def act(self, ref, action, payload=None):
        return self.post(f"/cases/{ref}/actions/{action}", payload or {})


def ok(resp, status=200):
    assert resp.status_code == status, f"{resp.status_code}: {resp.get_data(as_text=True)[:800]}"
    return resp.get_json()


def error(resp, status, code=None):
    text = resp.get_data(as_text=True)
    assert resp.status_code == status, f"{resp.status_code} != {status}: {text[:800]}"
    err = resp.get_json()["error"]
    assert set(err) == {"code", "message", "details"}
    assert "Traceback" not in text
    if code:
        assert err["code"] == code, err
    return err


def codes(err):
    return [d.get("code") for d in err["details"]]


def fields_of(err) -> dict:
    """The details' messages by field."""
    out: dict = {}
    for d in err["details"]:
        out.setdefault(d.get("field"), []).append(d["message"])
    return out


@pytest.fixture
def http(client, api_staff):
    return Http(client, api_staff)


@pytest.fixture
def sign(app):
    """Record signed documents. The documents flow (render, sign, seal) is built elsewhere,
    so this uses conftest's ``fake_sign`` with a Session on the app's own engine."""

    def do(ref, kind, terms=None):
        with Session(app.extensions["returnprog.engine"], expire_on_commit=False) as s:
            case = s.execute(select(Case).where(Case.reference == ref)).scalar_one()
            fake_sign(s, case, kind, terms)
    return do


def to_departure_agreed(http, sign, adults=2, minors=1, deadline=None):
    """Intake → departure_agreed, every workflow step over HTTP."""
    deadline = deadline or TODAY + dt.timedelta(days=30)
    case = ok(http.post("/cases", intake(adults, minors)), 201)
    ref = case["reference"]
    sign(ref, workflow.COMMITMENT)
    assert ok(http.act(ref, "confirm_commitment"))["state"] == "committed"
    sign(ref, workflow.WITHDRAWAL_DECLARATION)
    for p in case["participants"]:
        if p["asylum_application_pending"]:
            ok(http.post(f"/cases/{ref}/ind-confirmations", {
                "participant_id": p["id"], "ind_reference": f"IND-{p['id']:06d}",
                "confirmed_on": TODAY}), 201)
    assert ok(http.act(ref, "record_withdrawal"))["state"] == "asylum_withdrawn"
    sign(ref, workflow.DEPARTURE_AGREEMENT, {"departure_deadline": deadline.isoformat()})
    agreed = ok(http.act(ref, "agree_departure", {"departure_deadline": deadline}))
    assert agreed["state"] == "departure_agreed"
    return ref


def expected_cents(adults, minors):
    t = DEFAULT_POLICY.tariff_on(TODAY)
    return adults * t.adult_cents + minors * t.minor_cents


# --- the whole way ------------------------------------------------------------------------------

def test_a_household_runs_from_intake_to_departed_over_http(http, sign, app, api_staff):
    fin, sup = http.as_("finance"), http.as_("supervisor")
    case = ok(http.post("/cases", intake(2, 1)), 201)
    ref = case["reference"]
    # intake → committed (documents recorded with fake_sign: the documents flow is elsewhere)
    sign(ref, workflow.COMMITMENT)
    ok(http.act(ref, "confirm_commitment"))
    # committed → asylum_withdrawn
    sign(ref, workflow.WITHDRAWAL_DECLARATION)
    for p in case["participants"]:
        ok(http.post(f"/cases/{ref}/ind-confirmations", {
            "participant_id": p["id"], "ind_reference": f"IND-{p['id']:06d}",
            "confirmed_on": TODAY}), 201)
    ok(http.act(ref, "record_withdrawal"))
    # No payment before the departure agreement.
    err = error(http.post(f"/cases/{ref}/payment", {"method": "cash"}), 409, "conflict")
    assert codes(err) == ["wrong_state"]
    # asylum_withdrawn → departure_agreed
    deadline = TODAY + dt.timedelta(days=21)
    sign(ref, workflow.DEPARTURE_AGREEMENT, {"departure_deadline": deadline.isoformat()})
    assert ok(http.act(ref, "agree_departure", {"departure_deadline": deadline}))["state"] \
        == "departure_agreed"
    # Propose: the bank details are checked; the amount comes from the tariff.
    err = error(http.post(f"/cases/{ref}/payment", {"method": "transfer", "iban": "NL92ABNA0417164300",
                                                    "account_holder": "Olena"}), 422, "invalid")
    assert "check digits" in fields_of(err)["iban"][0]
    err = error(http.post(f"/cases/{ref}/payment", {"method": "transfer", "iban": NL}), 422)
    assert "account_holder" in fields_of(err)
    err = error(http.post(f"/cases/{ref}/payment", {"method": "transfer", "iban": NL,
                                                    "account_holder": "O", "amount_cents": 1}), 422)
    assert "amount_cents" in fields_of(err)  # nobody types the amount
    resp = http.post(f"/cases/{ref}/payment", {"method": "transfer",
                                              "iban": "nl91 abna 0417 1643 00",
                                              "account_holder": "Olena Kovalenko"})
    proposal = ok(resp, 201)
    assert resp.headers["Location"] == f"{API}/cases/{ref}/payment"
    assert proposal["iban"] == NL and proposal["status"] == "proposed"
    assert proposal["amount_cents"] == expected_cents(2, 1)
    assert proposal["breakdown"]["adults"] == 2 and proposal["breakdown"]["minors"] == 1
    assert proposal["amount"] == export.format_cents(expected_cents(2, 1))
    # pay_support is refused until a supervisor approves.
    err = error(fin.act(ref, "pay_support", {"idempotency_key": f"pay-{ref}-1"}), 409)
    assert codes(err) == ["payment_not_approved"]
    # Four eyes: the proposer and other counsellors may not approve; a supervisor may.
    error(http.post(f"/cases/{ref}/payment/approve", {"payment_id": proposal["id"]}), 403)
    error(http.as_("counsellor2").post(f"/cases/{ref}/payment/approve",
                                       {"payment_id": proposal["id"]}), 403)
    error(fin.post(f"/cases/{ref}/payment/approve", {"payment_id": proposal["id"]}), 403)
    error(sup.post(f"/cases/{ref}/payment/approve", {}), 422)  # name what you reviewed
    error(sup.post(f"/cases/{ref}/payment/approve", {"payment_id": proposal["id"] + 99}), 409)
    approved = ok(sup.post(f"/cases/{ref}/payment/approve", {"payment_id": proposal["id"],
                                                            "version": 1}))
    sanne = api_staff.supervisor
    assert approved["status"] == "approved"
    assert approved["approved_by"] == approved["decided_by"] == {"id": sanne.id, "name": sanne.name}
    assert approved["proposed_by"] == {"id": api_staff.counsellor.id,
                                       "name": api_staff.counsellor.name}
    # Finance pays out, once; the replay gets the first answer; a new key is refused.
    assert fin.get(f"/cases/{ref}").get_json()["allowed_actions"] == ["pay_support"]
    paid = ok(fin.act(ref, "pay_support", {"idempotency_key": f"pay-{ref}-1"}))
    assert paid["state"] == "support_paid"
    assert ok(fin.act(ref, "pay_support", {"idempotency_key": f"pay-{ref}-1"})) == paid
    error(fin.act(ref, "pay_support", {"idempotency_key": f"pay-{ref}-2"}), 409)
    error(http.post(f"/cases/{ref}/payment/cancel", {"reason": "too late"}), 409)
    # Finance puts the released transfer in a batch and downloads its pain.001.
    batch = ok(fin.post("/exports", {"kind": "sepa"}), 201)
    assert batch["payment_count"] == 1 and batch["total_cents"] == expected_cents(2, 1)
    femke = {"id": api_staff.finance.id, "name": api_staff.finance.name}
    assert batch["created_by"] == femke
    got = fin.get(f"/exports/{batch['id']}")
    assert got.status_code == 200
    assert got.headers["Cache-Control"] == "no-store"
    assert got.headers["Content-Disposition"].startswith('attachment; filename="travel-support-')
    assert got.headers["Content-Disposition"].endswith(f'-batch-{batch["id"]}.xml"')
    assert got.mimetype == "application/xml"
    xsd = etree.XMLSchema(etree.parse(str(export.xsd_path())))
    doc = etree.fromstring(got.data)
    assert xsd.validate(doc), xsd.error_log
    assert doc.findtext(".//p:CdtTrfTxInf/p:CdtrAcct/p:Id/p:IBAN", namespaces=NS) == NL
    assert doc.findtext(".//p:CdtTrfTxInf/p:Amt/p:InstdAmt", namespaces=NS) \
        == export.format_cents(expected_cents(2, 1))
    error(fin.post("/exports", {"kind": "sepa"}), 409)  # already exported: nothing new
    assert [(i["id"], i["created_by"]) for i in ok(fin.get("/exports"))["items"]] == [
        (batch["id"], femke)]
    # support_paid → departed
    done = ok(http.act(ref, "confirm_departure", {"departed_on": TODAY, "evidence": "boarding",
                                                   "evidence_reference": "KL1385"}))
    assert done["state"] == "departed" and done["allowed_actions"] == []
    # After departure a re-entry can be recorded with a reclaim.
    reentry = ok(http.post(f"/cases/{ref}/payment/reentry",
                           {"reentry_on": TODAY, "reclaim_cents": 75_000, "note": "KMar Schiphol"}))
    assert (reentry["reentry_on"], reentry["reclaim_cents"]) == (TODAY.isoformat(), 75_000)
    listed = ok(fin.get("/payments", query_string={"status": "scheduled"}))
    assert [(i["case_reference"], i["iban"], i["disbursed_by"]) for i in listed["items"]] == [
        (ref, "NL** **** 4300", femke)]
    # The audit trail tells the whole story, and the chain holds.
    final = ok(http.get(f"/cases/{ref}/trail", query_string={"limit": 200}))
    actions = [e["action"] for e in final["events"]]
    for expected in ("open_case", "confirm_commitment", "record_withdrawal", "agree_departure",
                     "propose_payment", "approve_payment", "pay_support", "confirm_departure",
                     "record_reentry"):
        assert actions.count(expected) == 1, expected
    with Session(app.extensions["returnprog.engine"]) as s:
        assert audit.verify(s).ok
        batch_events = s.execute(select(AuditEvent.action).where(
            AuditEvent.action.in_(("create_batch", "download_export")))).scalars().all()
        assert sorted(batch_events) == ["create_batch", "download_export"]


def test_a_cash_payment_and_its_receipt_over_http(http, sign):
    ref = to_departure_agreed(http, sign, adults=1, minors=0)
    p = ok(http.post(f"/cases/{ref}/payment", {"method": "cash"}), 201)
    ok(http.as_("supervisor2").post(f"/cases/{ref}/payment/approve", {"payment_id": p["id"]}))
    ok(http.as_("finance").act(ref, "pay_support", {"idempotency_key": "cash-0001"}))
    got = ok(http.get(f"/cases/{ref}/payment"))
    assert got["receipt_required"] is True and got["receipt_signed"] is False
    sign(ref, workflow.PAYMENT_RECEIPT)  # the participant signs the receipt (documents flow)
    assert ok(http.get(f"/cases/{ref}/payment"))["receipt_signed"] is True
    # Cash is never in a bank file.
    error(http.as_("finance").post("/exports", {"kind": "csv"}), 409)


# --- refusals over HTTP ---------------------------------------------------------------------------

def test_reject_and_cancel_need_reasons_and_the_right_people(http, sign):
    ref = to_departure_agreed(http, sign)
    p = ok(http.post(f"/cases/{ref}/payment", {"method": "card"}), 201)
    error(http.as_("supervisor").post(f"/cases/{ref}/payment/reject", {}), 422)
    error(http.post(f"/cases/{ref}/payment/reject", {"reason": "mine"}), 403)
    r = ok(http.as_("supervisor").post(f"/cases/{ref}/payment/reject",
                                       {"reason": "card not available", "payment_id": p["id"]}))
    assert (r["status"], r["decision_reason"], r["approved_by"]) == ("rejected",
                                                                     "card not available", None)
    p2 = ok(http.post(f"/cases/{ref}/payment", {"method": "cash"}), 201)
    error(http.as_("finance").post(f"/cases/{ref}/payment/cancel", {"reason": "x"}), 403)
    error(http.as_("other_counsellor").post(f"/cases/{ref}/payment/cancel", {"reason": "x"}), 404)
    c = ok(http.post(f"/cases/{ref}/payment/cancel", {"reason": "travels by bus",
                                                      "payment_id": p2["id"]}))
    assert c["status"] == "cancelled"
    error(http.post(f"/cases/{ref}/payment/cancel", {"reason": "again"}), 409)
    statuses = {i["status"] for i in ok(http.get("/payments", query_string={"case": ref}))["items"]}
    assert statuses == {"rejected", "cancelled"}


def test_csv_export_download_is_escaped_and_never_cached(http, sign):
    ref = to_departure_agreed(http, sign, adults=1, minors=0)
    p = ok(http.post(f"/cases/{ref}/payment", {"method": "transfer", "iban": UA,
                                              "account_holder": "=HYPERLINK(\"http://x\",\"y\")"}), 201)
    ok(http.as_("supervisor").post(f"/cases/{ref}/payment/approve", {"payment_id": p["id"]}))
    fin = http.as_("finance")
    error(fin.post("/exports", {"kind": "csv"}), 409)  # approved, not yet released
    ok(fin.act(ref, "pay_support", {"idempotency_key": f"pay-{ref}"}))
    # A Ukrainian account is outside SEPA: it waits for a CSV-only batch.
    err = error(fin.post("/exports", {"kind": "sepa"}), 409)
    assert codes(err) == ["nothing_to_export", "outside_sepa"]
    error(fin.post("/exports", {"kind": "xlsx"}), 422)
    error(http.post("/exports", {"kind": "csv"}), 403)
    batch = ok(fin.post("/exports", {"kind": "csv"}), 201)
    got = fin.get(batch["download"].removeprefix(API))
    assert got.status_code == 200 and got.headers["Cache-Control"] == "no-store"
    assert got.headers["Content-Disposition"].endswith('.csv"')
    assert got.mimetype == "text/csv" and got.headers["X-Content-Type-Options"] == "nosniff"
    rows = list(csv.DictReader(io.StringIO(got.data.decode("utf-8-sig"))))
    assert [(r["case_reference"], r["iban"]) for r in rows] == [(ref, UA)]
    assert rows[0]["account_holder"] == "'=HYPERLINK(\"http://x\",\"y\")"
    error(http.as_("supervisor").get(f"/exports/{batch['id']}"), 403)
    error(fin.get("/exports/999999"), 404)
    error(fin.get("/exports/99999999999999"), 404)
    assert ok(fin.get("/payments", query_string={"exported": "true"}))["total"] == 1


def test_the_payment_api_wants_a_bearer_token_and_json(client, http, sign):
    for method, path in (("get", "/payments"), ("post", "/exports"), ("get", "/exports/1"),
                         ("post", "/cases/VRP-2026-000001/payment")):
        resp = getattr(client, method)(API + path, json={})
        error(resp, 401, "unauthorized")
    ref = to_departure_agreed(http, sign)
    error(http.post(f"/cases/{ref}/payment", data="method=cash"), 415)
    error(http.post(f"/cases/{ref}/payment", data="{", content_type="application/json"), 400)
    error(http.post(f"/cases/{ref}/payment", ["cash"]), 422)
    error(http.post(f"/cases/{ref}/payment", {"method": "cash", "iban": NL}), 422)
    error(http.as_("supervisor").post(f"/cases/{ref}/payment", {"method": "cash"}), 403)
    error(http.get(f"/cases/{ref}/payment"), 404)
    p = ok(http.post(f"/cases/{ref}/payment", {"method": "cash"}), 201)
    error(http.post(f"/cases/{ref}/payment", {"method": "cash"}), 409)
    error(http.post(f"/cases/{ref}/payment/reentry", {"reentry_on": TODAY,
                                                      "reclaim_cents": 12.5}), 422)
    error(http.post(f"/cases/{ref}/payment/reentry", {"reentry_on": TODAY,
                                                      "reclaim_cents": 1}), 409)
    error(http.as_("supervisor").post(f"/cases/{ref}/payment/approve",
                                      {"payment_id": "1; DROP TABLE payment"}), 422)
    error(http.get("/payments", query_string={"status": "stolen"}), 422)
    assert ok(http.get(f"/cases/{ref}/payment"))["id"] == p["id"]
