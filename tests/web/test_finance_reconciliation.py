"""Finance over HTTP (issue 15): batches, their files, statement import (multipart), the
review list and the monthly reconciliation — through the JSON API and the staff pages."""
from __future__ import annotations

import hashlib
import io
import re

import pytest
from sqlmodel import Session

from returnprog import auth

from ..integration.test_payment_batches import DE, NL, payment_of, released_transfer
from ..statements_corpus import bookings_from_pain001, camt053, mt940, reconciliation_scenario
from ..web_client import text, web_for

API = "/api/v1"


@pytest.fixture
def finance2(session):
    return auth.create_user(session, email="frank@dtenv.example", role="finance",
                            password="correct horse battery", team="Team Noord")


@pytest.fixture
def bearer(session):
    def make(user):
        return {"Authorization": f"Bearer {auth.issue_api_token(session, user)}"}
    return make


def _ok(resp, status=200):
    assert resp.status_code == status, f"{resp.status_code}: {resp.get_data(as_text=True)[:600]}"
    return resp.get_json()


def _err(resp, status):
    assert resp.status_code == status, f"{resp.status_code}: {resp.get_data(as_text=True)[:600]}"
    body = resp.get_json()["error"]
    assert "Traceback" not in resp.get_data(as_text=True)
    return body


def _upload(client, headers, data: bytes, name="statement.xml"):
    return client.post(f"{API}/statements", headers=headers,
                       data={"file": (io.BytesIO(data), name)}, content_type="multipart/form-data")


def test_the_finance_api_runs_a_batch_from_release_to_reconciliation(
        app, staff, ctx_for, session, finance2, bearer):
    cases = [released_transfer(ctx_for, staff, session, iban=iban) for iban in (NL, DE, NL)]
    client = app.test_client()
    fin, fin2, sup = bearer(staff.finance), bearer(finance2), bearer(staff.supervisor)
    _err(client.post(f"{API}/batches", headers=sup, json={}), 403)
    _err(client.post(f"{API}/batches", headers=fin, json={"scope": "mars"}), 422)
    resp = client.post(f"{API}/batches", headers=fin, json={})
    batch = _ok(resp, 201)
    assert resp.headers["Location"] == f"{API}/batches/{batch['id']}"
    assert (batch["status"], batch["payment_count"], len(batch["payments"])) == ("open", 3, 3)
    files = {f["format"]: f for f in batch["files"]}
    assert set(files) == {"sepa", "csv"}
    for fmt, mime in (("sepa", "application/xml"), ("csv", "text/csv")):
        one, two = client.get(files[fmt]["download"], headers=fin), \
            client.get(files[fmt]["download"], headers=fin)
        assert one.status_code == 200 and one.mimetype == mime and one.data == two.data
        assert one.headers["ETag"] == f'"{files[fmt]["sha256"]}"' == \
            f'"{hashlib.sha256(one.data).hexdigest()}"'
        assert "no-store" in one.headers["Cache-Control"]
    _err(client.get(f"{API}/batches/{batch['id']}/files/pdf", headers=fin), 404)
    _err(client.get(f"{API}/batches/999999", headers=fin), 404)
    pain = client.get(files["sepa"]["download"], headers=fin).data
    # Sent by a second finance officer; withdrawn no more.
    _err(client.post(f"{API}/batches/{batch['id']}/send", headers=fin2, json={"x": 1}), 422)
    sent = _ok(client.post(f"{API}/batches/{batch['id']}/send", headers=fin2))
    assert sent["status"] == "sent" and sent["sent_by"]["id"] == finance2.id
    _err(client.post(f"{API}/batches/{batch['id']}/withdraw", headers=fin,
                     json={"reason": "late"}), 409)
    assert [b["id"] for b in _ok(client.get(f"{API}/batches?status=sent", headers=fin))["items"]] \
        == [batch["id"]]
    # The bank's statement, uploaded as a file.
    statement = camt053(reconciliation_scenario(bookings_from_pain001(pain)))
    _err(client.post(f"{API}/statements", headers=fin, json={}), 415)
    _err(client.post(f"{API}/statements", headers=fin, data={}, content_type="multipart/form-data"),
         422)
    _err(_upload(client, sup, statement), 403)
    bad = _err(_upload(client, fin, b"<Document><oops"), 422)
    assert [d["field"] for d in bad["details"]] == ["file"]
    assert bad["details"][0]["code"] == "statement.malformed"
    imported = _ok(_upload(client, fin, statement), 201)
    assert imported["outcomes"] == {"booked": 3, "returned": 1, "review": 2, "ignored": 0}
    again = _ok(_upload(client, fin, statement), 200)
    assert again["already_imported"] is True and again["id"] == imported["id"]
    assert _ok(client.get(f"{API}/statements", headers=fin))["total"] == 1
    assert payment_of(session, cases[2]).status == "returned"
    read = _ok(client.get(f"{API}/cases/{cases[2].reference}/payments/"
                          f"{payment_of(session, cases[2]).id}", headers=fin))
    assert (read["return_reason"], read["return_reason_text"]) == ("AC04", "Rekening opgeheven")
    review = _ok(client.get(f"{API}/statement-entries", headers=fin))
    assert review["total"] == 2
    unknown = next(i for i in review["items"] if i["review_reason"] == "unknown")
    _err(client.post(f"{API}/statement-entries/{unknown['id']}/resolve", headers=fin,
                     json={"resolution": "dismiss"}), 422)
    done = _ok(client.post(f"{API}/statement-entries/{unknown['id']}/resolve", headers=fin,
                           json={"resolution": "dismiss", "note": "supplier invoice"}))
    assert done["resolved_by"]["id"] == staff.finance.id
    _err(client.post(f"{API}/statement-entries/{unknown['id']}/resolve", headers=fin,
                     json={"resolution": "dismiss", "note": "again"}), 409)
    # The month's reconciliation, as JSON and as CSV.
    report = _ok(client.get(f"{API}/reports/reconciliation", headers=fin))
    assert (report["paid"]["count"], report["booked"]["count"], report["returned"]["count"]) \
        == (3, 2, 1)
    as_csv = client.get(f"{API}/reports/reconciliation", headers={**fin, "Accept": "text/csv"})
    assert as_csv.mimetype == "text/csv" and b'"booked","2"' in as_csv.data
    _err(client.get(f"{API}/reports/reconciliation?month=2026-13", headers=fin), 422)
    _err(client.get(f"{API}/reports/reconciliation", headers=sup), 403)


def test_finance_pages_import_a_statement_review_it_and_print_the_month(
        app, staff, ctx_for, session, finance2):
    from returnprog.services import batches as batch_service
    case = released_transfer(ctx_for, staff, session)
    batch = batch_service.create_batch(ctx_for(staff.finance))
    batch_service.send_batch(ctx_for(finance2), batch.id)
    [booking] = bookings_from_pain001(batch.content)
    data = mt940([{**booking, "reference": "B-1"},
                  {"end_to_end_id": "ELSE", "amount_cents": 500, "iban": NL, "name": "Shop",
                   "reference": "X-1"}])
    finance = web_for(app, staff.finance)
    assert finance.get("/payments/statements").status_code == 200
    missing = finance.post("/payments/statements", {})
    assert missing.status_code == 422 and 'href="#statement"' in missing.get_data(as_text=True)
    bad = finance.post("/payments/statements",
                       {"statement": (io.BytesIO(b"<x><y>"), "s.xml")})
    assert bad.status_code == 422 and "error-summary" in bad.get_data(as_text=True)
    done = finance.post("/payments/statements", {"statement": (io.BytesIO(data), "s.sta")})
    assert done.status_code == 303
    page = text(finance.get("/payments/statements").get_data(as_text=True))
    assert "STMT-2026-12-01/00001/1" in page
    with Session(app.extensions["returnprog.engine"]) as fresh:  # what the app committed
        assert payment_of(fresh, case).status == "booked"
    review = finance.get("/payments/review").get_data(as_text=True)
    entry = re.search(r'action="/payments/review/(\d+)"', review).group(1)
    refused = finance.post(f"/payments/review/{entry}", {"resolution": "dismiss", "note": ""})
    assert refused.status_code == 422 and "error-summary" in refused.get_data(as_text=True)
    assert finance.post(f"/payments/review/{entry}", {"resolution": "dismiss",
                                                       "note": "shop"}).status_code == 303
    assert 'action="/payments/review/' not in finance.get("/payments/review").get_data(
        as_text=True)
    assert finance.post("/payments/review/999999", {"resolution": "dismiss",
                                                    "note": "x"}).status_code == 404
    month = finance.get("/payments/report")
    assert month.status_code == 200 and case.reference in month.get_data(as_text=True)
    assert finance.get("/payments/report?month=2026-1").status_code == 422
    as_csv = finance.get("/payments/report.csv")
    assert as_csv.status_code == 200 and as_csv.mimetype == "text/csv"
    assert case.reference in as_csv.get_data(as_text=True)


def test_the_case_shows_a_return_and_offers_the_counsellor_a_corrected_payment(
        app, staff, ctx_for, session, finance2):
    from returnprog.services import batches as batch_service
    from returnprog.services import reconcile
    case = released_transfer(ctx_for, staff, session)
    batch = batch_service.create_batch(ctx_for(staff.finance))
    batch_service.send_batch(ctx_for(finance2), batch.id)
    [booking] = bookings_from_pain001(batch.content)
    counsellor = web_for(app, staff.counsellor)
    before = counsellor.get(f"/cases/{case.reference}").get_data(as_text=True)
    assert "/payment/proposal" not in before
    reconcile.import_statement(ctx_for(staff.finance), camt053(
        [{**booking, "reference": "R", "direction": "credit", "return_reason": "AC04"}]))
    page = text(counsellor.get(f"/cases/{case.reference}").get_data(as_text=True))
    assert "AC04" in page and "Rekening opgeheven" in page
    assert f"/cases/{case.reference}/payment/proposal" in counsellor.get(
        f"/cases/{case.reference}").get_data(as_text=True)
    detail = text(counsellor.get(f"/cases/{case.reference}/payment").get_data(as_text=True))
    assert "Rekening opgeheven" in detail and (staff.finance.name or staff.finance.email) in detail
    finance = web_for(app, staff.finance)
    waiting = finance.get("/payments?status=returned&awaiting_correction=true")
    assert waiting.status_code == 200 and case.reference in waiting.get_data(as_text=True)
    fixed = counsellor.post(f"/cases/{case.reference}/payment/proposal",
                            {"method": "transfer", "iban": DE, "account_holder": "O. K."})
    assert fixed.status_code == 303
    assert case.reference not in finance.get(
        "/payments?status=returned&awaiting_correction=true").get_data(as_text=True)
    supervisor = web_for(app, staff.supervisor)
    assert "/payment/approval" in supervisor.get(f"/cases/{case.reference}").get_data(
        as_text=True)
