"""Consistent resources in the API (issue 14, item 4), on SQLite and PostgreSQL: a case's
payments as a sub-resource with their own actions and versions, staff named ``{id, name}``
everywhere, and the audit trail as its own paged resource (``/events``), with the older
routes still answering as deprecated aliases. Marked ``engines_differ``: on both
databases."""
from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import func, select
from sqlmodel import Session

from returnprog import audit
from returnprog.models import AuditEvent, Case, Payment
from returnprog.web.api.openapi import build_spec

from ..conftest import fake_sign
from .test_api import field_errors
from .test_payments_api import Http, error, ok, to_departure_agreed

# The payment actions take row locks and compare-and-set on versions, and the names are
# read with joins: run on PostgreSQL too.
pytestmark = pytest.mark.engines_differ

TODAY = dt.date.today()
NL = "NL91ABNA0417164300"


@pytest.fixture
def http(client, api_staff):
    return Http(client, api_staff)


@pytest.fixture
def sign(app):
    """Record signed documents (conftest's ``fake_sign`` on the app's own engine)."""

    def do(ref, kind, terms=None):
        with Session(app.extensions["returnprog.engine"], expire_on_commit=False) as s:
            case = s.execute(select(Case).where(Case.reference == ref)).scalar_one()
            fake_sign(s, case, kind, terms)
    return do


def ref_of(user) -> dict:
    return {"id": user.id, "name": user.name}


def payments_of(http, ref) -> list[dict]:
    return ok(http.get(f"/cases/{ref}/payments"))["items"]


def test_a_payment_runs_through_its_own_sub_resource_with_versions(http, sign, api_staff, app):
    ref = to_departure_agreed(http, sign)
    sup, fin = http.as_("supervisor"), http.as_("finance")
    assert payments_of(http, ref) == []
    resp = http.post(f"/cases/{ref}/payments", {"method": "transfer", "iban": NL,
                                                "account_holder": "Olena Kovalenko"})
    proposal = ok(resp, 201)
    item = f"/cases/{ref}/payments/{proposal['id']}"
    assert resp.headers["Location"] == f"/api/v1{item}"
    assert proposal["url"] == f"/api/v1{item}" and proposal["version"] == 1
    assert proposal["proposed_by"] == ref_of(api_staff.counsellor)
    assert proposal["approved_by"] is None and proposal["disbursed_by"] is None
    # The list masks the IBAN; the single read shows it. Both carry the version.
    listed = payments_of(sup, ref)
    assert [(p["id"], p["version"], p["iban"], p["url"]) for p in listed] == [
        (proposal["id"], 1, "NL** **** 4300", proposal["url"])]
    assert ok(sup.get(item))["iban"] == NL
    # The case read lists the payment with the version its actions take, and its address.
    (in_case,) = ok(sup.get(f"/cases/{ref}"))["payments"]
    assert (in_case["id"], in_case["version"], in_case["url"]) == (
        proposal["id"], 1, proposal["url"])
    assert in_case["proposed_by"] == ref_of(api_staff.counsellor)
    # Approve: the version is required, must be current, and four eyes hold.
    assert field_errors(error(sup.post(f"{item}/approve", {}), 422), "version")
    err = error(sup.post(f"{item}/approve", {"version": 7}), 409)
    assert [d["code"] for d in err["details"]] == ["stale_version"]
    error(http.post(f"{item}/approve", {"version": 1}), 403)  # the proposer
    error(fin.post(f"{item}/approve", {"version": 1}), 403)
    error(sup.post(f"/cases/{ref}/payments/{proposal['id'] + 99}/approve", {"version": 1}), 404)
    error(http.as_("other_supervisor").post(f"{item}/approve", {"version": 1}), 404)
    approved = ok(sup.post(f"{item}/approve", {"version": 1}))
    assert (approved["status"], approved["version"]) == ("approved", 2)
    assert approved["approved_by"] == ref_of(api_staff.supervisor)
    # Pay: the workflow's pay_support, for finance only, at the current version, once.
    key = {"idempotency_key": f"pay-{ref}-1"}
    error(http.post(f"{item}/pay", {"version": 2, **key}), 403)
    assert field_errors(error(fin.post(f"{item}/pay", {"version": 2}), 422), "idempotency_key")
    error(fin.post(f"{item}/pay", {"version": 1, **key}), 409)
    error(fin.post(f"/cases/{ref}/payments/{proposal['id'] + 99}/pay", {"version": 2, **key}),
          404)
    paid = ok(fin.post(f"{item}/pay", {"version": 2, **key}))
    assert (paid["status"], paid["version"]) == ("disbursed", 3)
    assert paid["disbursed_by"] == ref_of(api_staff.finance) and paid["disbursed_at"]
    assert ok(http.get(f"/cases/{ref}"))["state"] == "support_paid"
    # A replay answers the payment without paying again; the key is not reusable.
    assert ok(fin.post(f"{item}/pay", {"version": 2, **key})) == paid
    error(fin.post(f"{item}/pay", {"version": 3, "idempotency_key": f"pay-{ref}-2"}), 409)
    error(http.post(f"{item}/cancel", {"version": 3, "reason": "too late"}), 409)
    with Session(app.extensions["returnprog.engine"]) as s:
        case_id = s.execute(select(Case.id).where(Case.reference == ref)).scalar_one()
        assert s.execute(select(func.count()).select_from(AuditEvent).where(
            AuditEvent.case_id == case_id, AuditEvent.action == "pay_support")).scalar_one() == 1
        assert s.get(Payment, proposal["id"]).idempotency_key == key["idempotency_key"]
        assert audit.verify(s).ok
    # After departure the re-entry is recorded on the paid payment, at its version.
    ok(http.act(ref, "confirm_departure", {"departed_on": TODAY, "evidence": "boarding",
                                           "evidence_reference": "KL1385"}))
    reentry = {"reentry_on": TODAY.isoformat(), "reclaim_cents": 10_000}
    error(http.post(f"{item}/reentry", {"version": 2, **reentry}), 409)
    error(http.post(f"/cases/{ref}/payments/{proposal['id'] + 99}/reentry",
                    {"version": 3, **reentry}), 404)
    back = ok(http.post(f"{item}/reentry", {"version": 3, **reentry}))
    assert (back["reclaim_cents"], back["version"]) == (10_000, 4)


def test_reject_and_cancel_on_the_sub_resource(http, sign, api_staff):
    ref = to_departure_agreed(http, sign)
    sup = http.as_("supervisor")
    first = ok(http.post(f"/cases/{ref}/payments", {"method": "card"}), 201)
    one = f"/cases/{ref}/payments/{first['id']}"
    assert field_errors(error(sup.post(f"{one}/reject", {"version": 1}), 422), "reason")
    error(sup.post(f"{one}/reject", {"version": 2, "reason": "no card"}), 409)
    rejected = ok(sup.post(f"{one}/reject", {"version": 1, "reason": "no card"}))
    assert (rejected["status"], rejected["approved_by"], rejected["decided_by"]) == (
        "rejected", None, ref_of(api_staff.supervisor))
    # The rejected payment stays readable but can no longer change.
    assert ok(http.get(one))["status"] == "rejected"
    error(sup.post(f"{one}/approve", {"version": 2}), 409)
    second = ok(http.post(f"/cases/{ref}/payments", {"method": "cash"}), 201)
    two = f"/cases/{ref}/payments/{second['id']}"
    # Naming the old payment while a new one is live: a conflict, not the new one.
    error(http.post(f"{one}/cancel", {"version": 2, "reason": "bus"}), 409)
    error(http.as_("finance").post(f"{two}/cancel", {"version": 1, "reason": "bus"}), 403)
    error(http.as_("other_counsellor").post(f"{two}/cancel", {"version": 1, "reason": "x"}), 404)
    cancelled = ok(http.post(f"{two}/cancel", {"version": 1, "reason": "travels by bus"}))
    assert (cancelled["status"], cancelled["decision_reason"]) == ("cancelled", "travels by bus")
    assert [(p["id"], p["status"]) for p in payments_of(http, ref)] == [
        (first["id"], "rejected"), (second["id"], "cancelled")]


def test_unknown_payments_and_other_teams_cases_are_404(http, sign):
    ref = to_departure_agreed(http, sign)
    other = to_departure_agreed(http, sign, adults=1, minors=0)
    mine = ok(http.post(f"/cases/{ref}/payments", {"method": "cash"}), 201)
    # A payment of another case is not found under this one.
    error(http.get(f"/cases/{other}/payments/{mine['id']}"), 404, "not_found")
    for path in (f"/cases/{ref}/payments/{mine['id'] + 99}", f"/cases/{ref}/payments/0",
                 f"/cases/{ref}/payments/{2**31}", f"/cases/{ref}/payments/{2**63}"):
        error(http.get(path), 404, "not_found")
    for who in ("other_counsellor", "other_supervisor"):
        error(http.as_(who).get(f"/cases/{ref}/payments"), 404)
        error(http.as_(who).get(f"/cases/{ref}/payments/{mine['id']}"), 404)
    # A role that may not propose is told so before any case is looked up (nothing leaks).
    error(http.as_("other_counsellor").post(f"/cases/{ref}/payments", {"method": "cash"}), 404)
    error(http.as_("admin").get(f"/cases/{ref}/payments"), 404)  # admins see no case
    error(http.as_("supervisor").post(f"/cases/{ref}/payments", {"method": "cash"}), 403)
    error(http.post(f"/cases/{ref}/payments", {"method": "cash"}), 409)  # one is live


def test_the_old_payment_routes_still_answer_as_aliases(http, sign, api_staff):
    ref = to_departure_agreed(http, sign)
    made = ok(http.post(f"/cases/{ref}/payment", {"method": "cash"}), 201)
    assert made["url"] == f"/api/v1/cases/{ref}/payments/{made['id']}"
    assert ok(http.get(f"/cases/{ref}/payment")) == ok(http.get(f"/cases/{ref}/payments/{made['id']}"))
    approved = ok(http.as_("supervisor").post(f"/cases/{ref}/payment/approve",
                                              {"payment_id": made["id"]}))
    assert approved["approved_by"] == ref_of(api_staff.supervisor)
    # The workflow action route still pays out; the sub-resource sees it.
    assert ok(http.as_("finance").act(ref, "pay_support", {
        "idempotency_key": f"pay-{ref}-x"}))["state"] == "support_paid"
    assert ok(http.get(f"/cases/{ref}/payments/{made['id']}"))["status"] == "disbursed"


def test_events_page_the_trail_and_name_people_and_the_system(http, sign, api_staff, app):
    ref = to_departure_agreed(http, sign, adults=1, minors=0)
    with Session(app.extensions["returnprog.engine"]) as s:
        case_id = s.execute(select(Case.id).where(Case.reference == ref)).scalar_one()
        audit.append(s, actor="system", action="send_reminder", case_id=case_id,
                     details={"kind": "departure_reminder"})
        s.commit()
    events, before = [], None
    while True:
        page = ok(http.get(f"/cases/{ref}/events", query_string={
            "limit": 2, **({"before": before} if before else {})}))
        assert len(page["events"]) <= 2
        events += page["events"]
        before = page["next_before_seq"]
        if before is None:
            break
    assert [e["seq"] for e in events] == sorted((e["seq"] for e in events), reverse=True)
    assert events[0]["action"] == "send_reminder"
    assert events[0]["actor"] == {"id": None, "name": "system"}
    assert events[-1]["action"] == "open_case"
    assert events[-1]["actor"] == ref_of(api_staff.counsellor)
    # /trail is the same resource under its old name.
    assert ok(http.get(f"/cases/{ref}/trail", query_string={"limit": 200}))["events"] == \
        ok(http.get(f"/cases/{ref}/events", query_string={"limit": 200}))["events"]
    error(http.get(f"/cases/{ref}/events", query_string={"limit": 0}), 422)
    error(http.as_("other_counsellor").get(f"/cases/{ref}/events"), 404)
    error(http.as_("admin").get(f"/cases/{ref}/events"), 404)
    # Reading the events is a look, logged once per reader and interval.
    looks = ok(http.as_("supervisor").get(f"/cases/{ref}/access-log"))["looks"]
    assert [(x["actor"], x["view"]) for x in looks if x["view"] == "trail"] == [
        (ref_of(api_staff.counsellor), "trail")]


def test_the_document_lists_the_sub_resource_and_marks_the_aliases_deprecated():
    spec = build_spec().to_dict()
    paths = spec["paths"]
    base = "/api/v1/cases/{reference}"
    item = f"{base}/payments/{{payment_id}}"
    ops = {(path, method): op for path, methods in paths.items()
           for method, op in methods.items() if isinstance(op, dict) and "responses" in op}
    expected = {
        (f"{base}/payments", "get"): "list_case_payments",
        (f"{base}/payments", "post"): "propose_case_payment",
        (item, "get"): "read_case_payment",
        (f"{item}/approve", "post"): "approve_case_payment",
        (f"{item}/reject", "post"): "reject_case_payment",
        (f"{item}/cancel", "post"): "cancel_case_payment",
        (f"{item}/pay", "post"): "pay_case_payment",
        (f"{item}/reentry", "post"): "record_case_payment_reentry",
        (f"{base}/events", "get"): "get_events",
    }
    for key, operation_id in expected.items():
        assert ops[key]["operationId"] == operation_id, key
        assert not ops[key].get("deprecated"), key
        assert ops[key]["tags"] == (["events"] if "events" in key[0] else ["payments"])
    for key in ((f"{base}/payment", "get"), (f"{base}/payment", "post"),
                (f"{base}/payment/approve", "post"), (f"{base}/payment/reject", "post"),
                (f"{base}/payment/cancel", "post"), (f"{base}/payment/reentry", "post"),
                (f"{base}/trail", "get")):
        assert ops[key]["deprecated"] is True, key
    for action in ("approve", "reject", "cancel", "pay", "reentry"):
        body = ops[(f"{item}/{action}", "post")]["requestBody"]["content"]["application/json"]
        schema = spec["components"]["schemas"][body["schema"]["$ref"].rsplit("/", 1)[1]]
        assert "version" in schema["required"], action
    # Staff are {id, name} in every answer that names them.
    schemas = spec["components"]["schemas"]
    user = "#/components/schemas/UserRef"
    assert set(schemas["UserRef"]["properties"]) == {"id", "name"}
    for name, prop in (("CaseOut", "counsellor"), ("PaymentOut", "proposed_by"),
                       ("PaymentDetailOut", "disbursed_by"), ("AuditOut", "actor"),
                       ("LookOut", "actor"), ("ExportBatchOut", "created_by")):
        assert user in str(schemas[name]["properties"][prop]), (name, prop)
    assert {"version", "url"} <= set(schemas["PaymentOut"]["properties"])
    # Reads say how they are logged.
    for key in ((base, "get"), (f"{base}/events", "get"), (f"{base}/access-log", "get")):
        assert "once per reader, case and view per 15-minute interval" in \
            ops[key]["description"], key
