"""The records part of the JSON API (issue 16): access requests and the processing log,
read only, for the records roles' bearer tokens."""
from __future__ import annotations

import datetime as dt

from sqlalchemy import select

from returnprog.models import Participant
from returnprog.services import access_requests, case_views

from ..conftest import drive_to

API = "/api/v1"


def test_records_roles_read_requests_and_processing_logs(app, api_staff, ctx_for, session):
    case = drive_to(ctx_for, api_staff, session, "intake", adults=2, minors=0)
    spouse = session.execute(select(Participant).where(
        Participant.case_id == case.id, Participant.relationship == "spouse")).scalar_one()
    case_views.case_page(ctx_for(api_staff.supervisor), case.reference)
    row = access_requests.register(ctx_for(api_staff.records), {
        "reference": case.reference, "participant_id": spouse.id, "received_via": "email",
        "received_on": dt.date.today(), "identity_document_type": "id_card",
        "identity_document_last4": "9X9X"})
    client, h = app.test_client(), api_staff.headers
    for who in ("records", "owner"):
        body = client.get(f"{API}/access-requests", headers=h[who]).get_json()
        assert [r["id"] for r in body["items"]] == [row.id]
        one = client.get(f"{API}/access-requests/{row.id}", headers=h[who]).get_json()
        assert (one["status"], one["identity_document_last4"], one["reference"]) == (
            "open", "9X9X", case.reference)
        log = client.get(f"{API}/access-requests/{row.id}/processing-log",
                         headers=h[who]).get_json()
        assert any(e["what"] == "open_case" and e["kind"] == "change" for e in log["items"])
        assert any(e["what"] == "case" and e["kind"] == "read" and e["who_role"] == "supervisor"
                   for e in log["items"])
    staff_log = client.get(f"{API}/processing-log?staff=sanne@dtenv.example",
                           headers=h["owner"]).get_json()
    assert staff_log["user"]["email"] == "sanne@dtenv.example"
    assert [e["what"] for e in staff_log["items"] if e["kind"] == "read"] == ["case"]
    assert staff_log["items"][0]["case_reference"] == case.reference
    for who in ("counsellor", "supervisor", "finance", "admin"):
        assert client.get(f"{API}/access-requests", headers=h[who]).status_code == 403
        assert client.get(f"{API}/processing-log?staff=x@y.z", headers=h[who]).status_code == 403
    assert client.get(f"{API}/access-requests/424242", headers=h["records"]).status_code == 404
    assert client.get(f"{API}/processing-log?staff=nobody@dtenv.example",
                      headers=h["records"]).status_code == 422
    assert client.get(f"{API}/processing-log?staff=sanne@dtenv.example&since=yesterday",
                      headers=h["records"]).status_code == 422
    assert client.get(f"{API}/processing-log", headers=h["records"]).status_code == 422
    assert client.get(f"{API}/access-requests").status_code == 401
