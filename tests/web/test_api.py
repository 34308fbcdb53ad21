"""The JSON API's contract (/api/v1), error class by error class, on SQLite and PostgreSQL.

Every error answer has exactly the shape ``{"error": {"code", "message", "details"}}``
and never carries a stack trace; bad input is a 4xx, never a 500.
"""
from __future__ import annotations

import datetime as dt
import json

import pytest
from sqlalchemy import select, update
from sqlmodel import Session

from returnprog import audit, schemas, workflow
from returnprog.models import AccessEvent, ApiToken, AuditEvent, AuditHead, Case, User
from returnprog.services import Context
from returnprog.services import payment as payment_service

from ..conftest import fake_sign, intake, jsonable, person

API = "/api/v1"
TODAY = dt.date.today()  # "future" values below are 2 days ahead: safe across midnight
VALID_BSN = "111222333"  # 9·1+8·1+7·1+6·2+5·2+4·2+3·3+2·3−1·3 = 66 = 6·11
INVALID_BSN = "111222334"


# --- helpers --------------------------------------------------------------------------------

def each(cases, check):
    """Run ``check(*case)`` for every case and report every failure, not just the first."""
    failures = []
    for case in cases:
        try:
            check(*case)
        except AssertionError as exc:
            failures.append(f"{case[0]!r}: {exc}")
    assert not failures, "\n".join(failures)


def body(data=None, **over):
    """JSON-ready intake data."""
    data = intake() if data is None else data
    data = dict(data, **over)
    return jsonable(data)


def assert_error(resp, status: int, code: str | None = None) -> dict:
    """The response is ``status`` with exactly the API's error shape; returns its ``error``."""
    text = resp.get_data(as_text=True)
    assert resp.status_code == status, f"{resp.status_code} != {status}: {text[:1000]}"
    assert resp.mimetype == "application/json", resp.mimetype
    data = resp.get_json()
    assert isinstance(data, dict) and set(data) == {"error"}, data
    err = data["error"]
    assert set(err) == {"code", "message", "details"}, err
    assert isinstance(err["code"], str) and err["code"]
    assert isinstance(err["message"], str) and err["message"]
    assert isinstance(err["details"], list), err
    for entry in err["details"]:
        assert isinstance(entry, dict) and {"code", "message"} <= set(entry) <= {
            "code", "message", "field", "params"}, entry
        assert isinstance(entry["code"], str) and isinstance(entry["message"], str), entry
    for marker in ("Traceback", 'File "', "sqlalchemy", "psycopg", "sqlite3"):
        assert marker not in text, f"{marker!r} leaked: {text[:1000]}"
    if code is not None:
        assert err["code"] == code, err
    return err


def field_errors(err: dict, *path: str) -> list[str]:
    """The messages of the details entries for the field ``path`` (dotted: ``"household",
    "0", "v_number"`` is field ``household.0.v_number``); fails when there are none. No
    path: the entries without a field (marshmallow's ``_schema``)."""
    field = ".".join(path) or None
    found = [d["message"] for d in err["details"] if d.get("field") == field]
    assert found, f"no {field} in {err['details']}"
    return found


def codes(err: dict) -> list[str]:
    """The codes of an error's details entries, in order."""
    return [d.get("code") for d in err["details"]]


def ok(resp, status: int = 200) -> dict:
    assert resp.status_code == status, f"{resp.status_code}: {resp.get_data(as_text=True)[:1000]}"
    return resp.get_json()


class Api:
    """A tiny client for the tests: ``api.as_("counsellor").get(path)``."""

    def __init__(self, client, staff, role="counsellor"):
        self.client, self.staff, self.role = client, staff, role

    def as_(self, role: str) -> "Api":
        return Api(self.client, self.staff, role)

    @property
    def headers(self):
        return self.staff.headers[self.role]

    def get(self, path, **kw):
        return self.client.get(API + path, headers=self.headers, **kw)

    def post(self, path, json=None, **kw):
        if json is None and "data" not in kw:
            return self.client.post(API + path, headers=self.headers, **kw)
        if json is not None:
            kw["json"] = json
        return self.client.post(API + path, headers=self.headers, **kw)

    def put(self, path, json=None, **kw):
        if json is not None:
            kw["json"] = json
        return self.client.put(API + path, headers={**self.headers, **kw.pop("headers", {})}, **kw)

    def create(self, data=None, **over) -> dict:
        return ok(self.post("/cases", json=body(data, **over)), 201)

    def read(self, ref) -> dict:
        return ok(self.get(f"/cases/{ref}"))

    def trail(self, ref) -> list[dict]:
        """The case's whole audit trail, oldest first, walked page by page."""
        events, before = [], None
        while True:
            page = ok(self.get(f"/cases/{ref}/trail",
                               query_string={"limit": 2, **({"before": before} if before else {})}))
            events += page["events"]
            before = page["next_before_seq"]
            if before is None:
                return list(reversed(events))

    def act(self, ref, action, payload=None):
        return self.post(f"/cases/{ref}/actions/{action}", json=jsonable(payload or {}))


@pytest.fixture
def api(client, api_staff):
    return Api(client, api_staff)


@pytest.fixture
def db(app):
    """A session on the app's own database, for what the API does not offer (signatures,
    payments' propose/approve)."""
    with Session(app.extensions["returnprog.engine"], expire_on_commit=False) as s:
        yield s


@pytest.fixture
def ctx_of(app, db):
    def make(user):
        db.rollback()
        return Context(session=db, policy=app.extensions["returnprog.policy"], actor=user,
                       ip="127.0.0.1", user_agent="pytest")
    return make


def case_row(db, ref) -> Case:
    db.rollback()
    return db.execute(select(Case).where(Case.reference == ref)).scalar_one()


def sign(db, ref, kind, terms=None):
    """Record every adult's signature on ``kind`` (fake PDFs; the documents tests use real ones)."""
    fake_sign(db, case_row(db, ref), kind, terms)


def confirm_all_ind(api, ref):
    for p in api.read(ref)["participants"]:
        if p["asylum_application_pending"]:
            ok(api.post(f"/cases/{ref}/ind-confirmations", json={
                "participant_id": p["id"], "ind_reference": f"IND-{p['id']:06d}",
                "confirmed_on": TODAY.isoformat()}), 201)


def commit_case(api, db, ref):
    sign(db, ref, workflow.COMMITMENT)
    return ok(api.act(ref, "confirm_commitment"))


def withdraw_case(api, db, ref):
    commit_case(api, db, ref)
    sign(db, ref, workflow.WITHDRAWAL_DECLARATION)
    confirm_all_ind(api, ref)
    return ok(api.act(ref, "record_withdrawal"))


def agreed_case(api, db, ref, deadline=None):
    deadline = deadline or TODAY + dt.timedelta(days=30)
    withdraw_case(api, db, ref)
    sign(db, ref, workflow.DEPARTURE_AGREEMENT, {"departure_deadline": deadline.isoformat()})
    return ok(api.act(ref, "agree_departure", {"departure_deadline": deadline}))


def looks(db, ref) -> list[AccessEvent]:
    case = case_row(db, ref)
    found = db.execute(select(AccessEvent).where(AccessEvent.case_id == case.id)
                       .order_by(AccessEvent.id)).scalars().all()
    db.rollback()
    return found


def view_events(db, ref) -> list[AuditEvent]:
    case = case_row(db, ref)
    return db.execute(select(AuditEvent).where(AuditEvent.case_id == case.id,
                                               AuditEvent.action == "view_case")).scalars().all()


# --- 401 ------------------------------------------------------------------------------------

@pytest.mark.engines_differ
def test_requests_without_a_valid_bearer_token_are_401(client, api_staff):
    token = api_staff.headers["counsellor"]["Authorization"].split(" ", 1)[1]
    headers = [
        ("no header", None),
        ("empty", ""),
        ("scheme only", "Bearer"),
        ("scheme and space", "Bearer "),
        ("unknown token", "Bearer not-a-token"),
        ("huge token", "Bearer " + "x" * 5000),
        ("basic auth", "Basic YW5uYUBkdGVudi5leGFtcGxlOmNvcnJlY3QgaG9yc2UgYmF0dGVyeQ=="),
        ("wrong scheme", f"Token {token}"),
        ("no scheme", token),
        ("token with NUL", f"Bearer {token}\x00"),
    ]
    calls = (("get", "/cases", None), ("get", "/cases/VRP-2026-000001", None),
             ("post", "/cases", body()), ("put", "/cases/VRP-2026-000001", body()),
             ("post", "/cases/VRP-2026-000001/actions/reject", {"reason": "x"}),
             ("post", "/cases/VRP-2026-000001/ind-confirmations", {}))

    def check(_name, header):
        for method, path, payload in calls:
            sent = {} if header is None else {"Authorization": header}
            resp = getattr(client, method)(API + path, headers=sent, json=payload)
            err = assert_error(resp, 401, "unauthorized")
            assert resp.headers["WWW-Authenticate"].startswith("Bearer")
            assert "bearer" in err["message"].lower()

    each(headers, check)


def test_the_scheme_name_is_case_insensitive_but_the_token_is_not(client, api_staff):
    token = api_staff.headers["counsellor"]["Authorization"].split(" ", 1)[1]
    assert client.get(f"{API}/cases", headers={"Authorization": f"bearer {token}"}).status_code == 200
    assert_error(client.get(f"{API}/cases", headers={"Authorization": f"Bearer {token.swapcase()}"}),
                 401)


def test_a_revoked_token_is_401_and_other_tokens_keep_working(client, api_staff, db):
    headers = api_staff.headers["counsellor"]
    assert client.get(f"{API}/cases", headers=headers).status_code == 200
    db.execute(update(ApiToken).where(ApiToken.user_id == api_staff.counsellor.id)
               .values(revoked=True))
    db.commit()
    assert_error(client.get(f"{API}/cases", headers=headers), 401, "unauthorized")
    assert_error(client.post(f"{API}/cases", headers=headers, json=body()), 401)
    assert client.get(f"{API}/cases", headers=api_staff.headers["counsellor2"]).status_code == 200


def test_a_deactivated_users_token_is_401(client, api_staff, db):
    db.execute(update(User).where(User.id == api_staff.counsellor.id).values(active=False))
    db.commit()
    assert_error(client.get(f"{API}/cases", headers=api_staff.headers["counsellor"]), 401)


def test_without_a_token_an_existing_case_and_an_unknown_one_look_the_same(api, client):
    ref = api.create()["reference"]
    a = client.get(f"{API}/cases/{ref}")
    b = client.get(f"{API}/cases/VRP-1999-999999")
    assert_error(a, 401)
    assert a.get_json() == b.get_json()


# --- 403 ------------------------------------------------------------------------------------

def test_finance_may_not_confirm_a_commitment(api, db, ctx_of, api_staff):
    ref = api.create()["reference"]
    agreed_case(api, db, ref)
    # Finance officers see cases with a payment: propose one so the case is visible to them.
    payment_service.propose(ctx_of(api_staff.counsellor), ref, {"method": "cash"})
    assert ok(api.as_("finance").get(f"/cases/{ref}"))["reference"] == ref
    err = assert_error(api.as_("finance").act(ref, "confirm_commitment"), 403, "forbidden")
    assert "counsellor" in err["message"]
    assert codes(err) == ["role"]
    assert api.read(ref)["state"] == "departure_agreed"


def test_a_counsellor_may_not_reject_a_case(api):
    ref = api.create()["reference"]
    err = assert_error(api.act(ref, "reject", {"reason": "not eligible"}), 403, "forbidden")
    assert "supervisor" in err["message"]
    assert api.read(ref)["state"] == "intake"
    assert ok(api.as_("supervisor").act(ref, "reject", {"reason": "not eligible"}))["state"] == "rejected"


def test_roles_outside_the_workflow_table_get_403(api):
    ref = api.create()["reference"]

    def check(action, role, payload):
        err = assert_error(api.as_(role).act(ref, action, payload), 403, "forbidden")
        assert err["details"] and err["details"][0]["code"] == "role"

    each([("confirm_commitment", "supervisor", {}),
          ("leave_programme", "supervisor", {"reason": "moving on"}),
          ("lapse", "counsellor", {"reason": "deadline passed"}),
          ("extend_deadline", "counsellor", {"departure_deadline": "2030-01-01", "reason": "ill"}),
          ("record_withdrawal", "supervisor", {}),
          ("confirm_departure", "supervisor", {"departed_on": TODAY.isoformat(),
                                               "evidence": "boarding"})], check)
    assert api.read(ref)["state"] == "intake"


def test_only_counsellors_open_cases_edit_intake_and_record_ind_confirmations(api):
    ref = api.create()["reference"]
    for role in ("supervisor", "finance", "admin"):
        resp = api.as_(role).post("/cases", json=body())
        assert_error(resp, 403, "forbidden")
    assert_error(api.as_("supervisor").put(f"/cases/{ref}", json=body()), 403, "forbidden")
    person_id = api.read(ref)["participants"][0]["id"]
    assert_error(api.as_("supervisor").post(f"/cases/{ref}/ind-confirmations", json={
        "participant_id": person_id, "ind_reference": "IND-1", "confirmed_on": TODAY.isoformat()}),
        403, "forbidden")


# --- 404 ------------------------------------------------------------------------------------

def _same_but_reference(a, b, ref_a, ref_b):
    return json.dumps(a.get_json()).replace(ref_a, "REF") == json.dumps(b.get_json()).replace(ref_b, "REF")


def test_an_unknown_reference_is_404_on_every_case_endpoint(api):
    ref = "VRP-2026-999999"
    for resp in (api.get(f"/cases/{ref}"), api.put(f"/cases/{ref}", json=body()),
                 api.act(ref, "leave_programme", {"reason": "x"}),
                 api.post(f"/cases/{ref}/ind-confirmations",
                          json={"participant_id": 1, "ind_reference": "IND-1",
                                "confirmed_on": TODAY.isoformat()})):
        assert_error(resp, 404, "not_found")


def test_another_teams_case_is_404_with_the_same_body_as_an_unknown_one(api):
    ref = api.create()["reference"]
    unknown = "VRP-2026-999999"
    other = api.as_("other_counsellor")
    calls = [
        lambda r: other.get(f"/cases/{r}"),
        lambda r: other.put(f"/cases/{r}", json=body()),
        lambda r: other.act(r, "leave_programme", {"reason": "x"}),
        lambda r: api.as_("other_supervisor").act(r, "reject", {"reason": "x"}),
        lambda r: other.post(f"/cases/{r}/ind-confirmations", json={
            "participant_id": 1, "ind_reference": "IND-1", "confirmed_on": TODAY.isoformat()}),
    ]
    for call in calls:
        hidden, missing = call(ref), call(unknown)
        assert_error(hidden, 404, "not_found")
        assert_error(missing, 404, "not_found")
        assert _same_but_reference(hidden, missing, ref, unknown)
    # Nothing happened to the case, and it is not in the other team's list.
    assert api.read(ref)["state"] == "intake"
    assert ok(other.get("/cases"))["total"] == 0


def test_a_role_check_does_not_leak_another_teams_case(api):
    """A counsellor of another team asking for a supervisor-only action gets the same 404
    as for an unknown case (not a 403 that would confirm the case exists)."""
    ref = api.create()["reference"]
    other = api.as_("other_counsellor")
    assert_error(other.act(ref, "reject", {"reason": "x"}), 404)


def test_admins_and_finance_see_no_case_without_a_payment(api):
    ref = api.create()["reference"]
    for role in ("admin", "finance"):
        assert_error(api.as_(role).get(f"/cases/{ref}"), 404, "not_found")
        assert ok(api.as_(role).get("/cases"))["total"] == 0


def test_an_unknown_action_is_404_and_lists_the_actions(api):
    ref = api.create()["reference"]
    for name in ("fly_away", "open_case", "CONFIRM_COMMITMENT", "confirm_commitment%00"):
        err = assert_error(api.act(ref, name), 404, "not_found")
        [detail] = err["details"]
        assert detail["field"] == "action"
        assert detail["params"] == {"allowed": sorted(schemas.ACTION_SCHEMAS)}


def test_unknown_paths_and_methods_under_the_api_answer_in_the_error_shape(api):
    ref = api.create()["reference"]
    assert_error(api.get("/nothing-here"), 404)
    wrong = api.client.delete(f"{API}/cases/{ref}", headers=api.headers)
    assert_error(wrong, 405)
    # A 405 says which methods the address takes (RFC 9110).
    assert set(wrong.headers["Allow"].split(", ")) == {"GET", "HEAD", "PUT", "OPTIONS"}
    assert_error(api.client.patch(f"{API}/cases", headers=api.headers, json={}), 405)
    assert_error(api.get(f"/cases/{ref}/actions/leave_programme"), 405)
    # /cases/search is no case reference: a GET there is a wrong method, not "no such case".
    search = assert_error(api.get("/cases/search"), 405) and api.get("/cases/search")
    assert set(search.headers["Allow"].split(", ")) == {"POST", "OPTIONS"}


def test_a_query_parameter_given_twice_is_422_not_its_first_value(api):
    err = assert_error(api.get("/cases?state=intake&state=committed&page=1"), 422, "invalid")
    assert field_errors(err, "state") == ["Give this parameter once."]
    err = assert_error(api.get("/tokens?all=yes"), 422, "invalid")
    assert field_errors(err, "all")
    assert ok(api.get("/tokens?all=0"))["items"]


def test_odd_references_are_404_not_500(api):
    real = api.create()["reference"]

    def check(ref):
        assert_error(api.get(f"/cases/{ref}"), 404, "not_found")
        assert_error(api.put(f"/cases/{ref}", json=body()), 404, "not_found")
        assert_error(api.act(ref, "leave_programme", {"reason": "x"}), 404, "not_found")

    each([("x" * 5000,), (f"{real}%00",), ("%00",), ("%F0%9F%92%A9",), ("..%2F..%2Fetc",),
          ("' OR 1=1 --",), (real + "0",), (real.lower() + "%25",)], check)
    assert api.read(real)["state"] == "intake"


# --- 409 ------------------------------------------------------------------------------------

def test_an_unmet_guard_is_409_naming_the_people_who_have_not_signed(api, db):
    data = intake(adults=2, minors=1)
    case = api.create(data)
    ref = case["reference"]
    err = assert_error(api.act(ref, "confirm_commitment"), 409, "conflict")
    [unsigned] = [d for d in err["details"] if d["code"] == "commitment_unsigned"]
    principal, spouse, child = data["principal"], data["household"][0], data["household"][1]
    for adult in (principal, spouse):
        assert f"{adult['given_names_latin']} {adult['family_name_latin']}" in unsigned["message"]
    assert child["given_names_latin"] not in unsigned["message"]  # minors do not sign
    assert api.read(ref)["state"] == "intake"
    # Signing fixes exactly that.
    sign(db, ref, workflow.COMMITMENT)
    assert ok(api.act(ref, "confirm_commitment"))["state"] == "committed"


def test_an_incomplete_intake_is_listed_with_the_missing_fields(api, db):
    data = intake()
    data["principal"] = dict(data["principal"], email=None, phone=None)
    ref = api.create(data, destination_oblast=None, destination_place=None)["reference"]
    sign(db, ref, workflow.COMMITMENT)
    err = assert_error(api.act(ref, "confirm_commitment"), 409, "conflict")
    assert {"intake_destination", "intake_place", "intake_contact"} <= set(codes(err))
    fields = {d.get("field") for d in err["details"]}
    assert {"destination_oblast", "destination_place"} <= fields


def test_recording_the_withdrawal_names_missing_declarations_and_ind_confirmations(api, db):
    data = intake(adults=2)
    ref = api.create(data)["reference"]
    commit_case(api, db, ref)
    err = assert_error(api.act(ref, "record_withdrawal"), 409, "conflict")
    assert set(codes(err)) == {"withdrawal_declaration_unsigned", "ind_confirmation_missing"}
    names = [f"{p['given_names_latin']} {p['family_name_latin']}"
             for p in (data["principal"], data["household"][0])]
    for detail in err["details"]:
        assert all(n in detail["message"] for n in names), detail
    # Sign, then confirm only one: the other is still named.
    sign(db, ref, workflow.WITHDRAWAL_DECLARATION)
    first = api.read(ref)["participants"][0]
    ok(api.post(f"/cases/{ref}/ind-confirmations", json={
        "participant_id": first["id"], "ind_reference": "IND-2026/0001",
        "confirmed_on": TODAY.isoformat()}), 201)
    err = assert_error(api.act(ref, "record_withdrawal"), 409)
    assert codes(err) == ["ind_confirmation_missing"]
    assert names[1] in err["details"][0]["message"] and names[0] not in err["details"][0]["message"]


def test_actions_from_the_wrong_state_are_409(api, db):
    ref = api.create()["reference"]
    err = assert_error(api.act(ref, "record_withdrawal"), 409, "conflict")
    assert codes(err) == ["wrong_state"] and "committed" in err["details"][0]["message"]
    withdraw_case(api, db, ref)
    err = assert_error(api.act(ref, "leave_programme", {"reason": "changed my mind"}), 409)
    assert codes(err) == ["withdrawal_irreversible"]
    err = assert_error(api.act(ref, "confirm_commitment"), 409)
    assert codes(err) == ["wrong_state"]
    # A closed case refuses everything.
    closed = api.create()["reference"]
    ok(api.act(closed, "leave_programme", {"reason": "found work"}))
    for action, payload in (("leave_programme", {"reason": "again"}), ("confirm_commitment", {})):
        err = assert_error(api.act(closed, action, payload), 409)
        assert codes(err) == ["case_closed"]


def test_agreeing_a_deadline_names_what_is_wrong_with_it(api, db):
    ref = api.create()["reference"]
    withdraw_case(api, db, ref)
    err = assert_error(api.act(ref, "agree_departure",
                               {"departure_deadline": TODAY + dt.timedelta(days=2)}), 409)
    assert {"departure_agreement_unsigned", "deadline_too_soon"} <= set(codes(err))
    err = assert_error(api.act(ref, "agree_departure",
                               {"departure_deadline": TODAY + dt.timedelta(days=400)}), 409)
    assert "deadline_too_far" in codes(err)
    err = assert_error(api.act(ref, "agree_departure", {"departure_deadline": TODAY}), 409)
    assert "deadline_past" in codes(err)


def test_a_second_open_case_for_the_same_v_number_is_409(api):
    data = intake()
    first = api.create(data)["reference"]
    again = intake()
    again["principal"] = dict(again["principal"], v_number=data["principal"]["v_number"])
    err = assert_error(api.post("/cases", json=body(again)), 409, "conflict")
    assert codes(err) == ["open_case_exists"]
    # The field says which person; the message never repeats the V-number itself.
    assert err["details"][0]["field"] == "principal.v_number"
    assert data["principal"]["v_number"] not in json.dumps(err)
    # A household member already on an open case counts as well, also for another counsellor.
    member = intake()
    member["household"] = [dict(person(), relationship="spouse",
                                v_number=data["principal"]["v_number"])]
    err = assert_error(api.as_("counsellor2").post("/cases", json=body(member)), 409)
    assert [d["field"] for d in err["details"]] == ["household.0.v_number"]
    # Once the first case is closed, the person may start again.
    ok(api.act(first, "leave_programme", {"reason": "wants to wait"}))
    assert api.create(again)["state"] == "intake"


def test_a_stale_if_match_on_an_intake_edit_is_409(api):
    case = api.create()
    ref, version = case["reference"], case["version"]
    err = assert_error(api.put(f"/cases/{ref}", json=body(), headers={"If-Match": str(version + 5)}),
                       409, "conflict")
    assert codes(err) == ["stale_version"]
    assert ok(api.put(f"/cases/{ref}", json=body(), headers={"If-Match": str(version)}))["version"] \
        == version + 1


def test_an_odd_if_match_header_is_ignored_not_a_500(api):
    ref = api.create()["reference"]

    def check(if_match):
        resp = api.put(f"/cases/{ref}", json=body(), headers={"If-Match": if_match})
        assert resp.status_code == 200, resp.get_data(as_text=True)[:300]

    each([("abc",), ("",), ("1" * 50,), ("\u00b2",), ("-1",), ("*",), ('"1"',)], check)


# --- 415 and 400 ----------------------------------------------------------------------------

def test_a_body_that_is_not_json_is_415(api):
    ref = api.create()["reference"]
    payload = json.dumps(body())

    def check(content_type):
        kw = {"data": payload}
        if content_type:
            kw["content_type"] = content_type
        for path, method in (("/cases", "post"), (f"/cases/{ref}", "put"),
                             (f"/cases/{ref}/ind-confirmations", "post"),
                             (f"/cases/{ref}/actions/leave_programme", "post")):
            resp = getattr(api.client, method)(API + path, headers=api.headers, **kw)
            assert_error(resp, 415, "unsupported_media_type")

    each([(None,), ("text/plain",), ("application/x-www-form-urlencoded",),
          ("multipart/form-data; boundary=x",), ("application/xml",), ("text/json",)], check)
    assert api.read(ref)["state"] == "intake"


def test_malformed_json_is_400(api):
    ref = api.create()["reference"]

    def check(_name, raw):
        for method, path in (("post", "/cases"), ("put", f"/cases/{ref}"),
                             ("post", f"/cases/{ref}/actions/leave_programme"),
                             ("post", f"/cases/{ref}/ind-confirmations")):
            resp = getattr(api.client, method)(API + path, headers=api.headers, data=raw,
                                               content_type="application/json")
            assert_error(resp, 400, "malformed_json")

    each([("truncated", b'{"principal": '),
          ("single quotes", b"{'principal': {}}"),
          ("trailing comma", b'{"a": 1,}'),
          ("not UTF-8", b"\xff\xfe\x00garbage"),
          ("empty", b""),
          ("bare word", b"NaN-ish"),
          ("bad escape", b'{"a": "\\x00"}'),
          ("two documents", b'{"a": 1} {"b": 2}')], check)
    assert api.read(ref)["version"] == 1


def test_deeply_nested_json_is_refused_not_a_500(api):
    for depth in (200, 5_000, 200_000):
        raw = '{"principal": ' + "[" * depth + "]" * depth + "}"
        resp = api.client.post(f"{API}/cases", headers=api.headers, data=raw,
                               content_type="application/json")
        assert resp.status_code in (400, 422), (depth, resp.status_code)
        assert_error(resp, resp.status_code)
        raw = '{"principal": ' + '{"a": ' * depth + "1" + "}" * depth + "}"
        resp = api.client.post(f"{API}/cases", headers=api.headers, data=raw,
                               content_type="application/json")
        assert resp.status_code in (400, 422), (depth, resp.status_code)
        assert_error(resp, resp.status_code)
    assert ok(api.get("/cases"))["total"] == 0


def test_json_that_is_not_an_object_is_422(api):
    ref = api.create()["reference"]

    def check(raw):
        for method, path in (("post", "/cases"), ("put", f"/cases/{ref}"),
                             ("post", f"/cases/{ref}/actions/leave_programme"),
                             ("post", f"/cases/{ref}/ind-confirmations")):
            resp = getattr(api.client, method)(API + path, headers=api.headers, data=raw,
                                               content_type="application/json")
            err = assert_error(resp, 422, "invalid")
            assert [d.get("field") for d in err["details"]] == [None]

    each([(b"null",), (b"[]",), (b"[{}]",), (b'"a string"',), (b"42",), (b"true",)], check)


def test_a_10_mb_body_is_413_or_422_never_500(api):
    huge = "Олена" * (2 * 1024 * 1024)  # 10 M characters, ~20 MB of UTF-8
    resp = api.post("/cases", json=body(intake_notes=huge))
    assert resp.status_code in (413, 422)
    assert_error(resp, resp.status_code)
    plain = "a" * (10 * 1024 * 1024)
    resp = api.post("/cases", json=body(intake_notes=plain))
    assert resp.status_code in (413, 422)
    assert_error(resp, resp.status_code)
    # Below the request limit, the field's own limit answers per field.
    err = assert_error(api.post("/cases", json=body(intake_notes="a" * 1_000_000)), 422)
    assert field_errors(err, "intake_notes")
    assert ok(api.get("/cases"))["total"] == 0


# --- 422: per-field --------------------------------------------------------------------------

def _principal(**over):
    data = intake()
    data["principal"] = dict(data["principal"], **over)
    return body(data)


def _member(**over):
    data = intake()
    member = dict(person(), relationship="spouse")
    member.update(over)
    data["household"] = [member]
    return body(data)


INVALID_INTAKES = [
    # (id, body factory, path of the field error)
    ("dob-int", lambda: _principal(date_of_birth=12), ("principal", "date_of_birth")),
    ("dob-text", lambda: _principal(date_of_birth="yesterday"), ("principal", "date_of_birth")),
    ("dob-future", lambda: _principal(date_of_birth=(TODAY + dt.timedelta(days=2)).isoformat()),
     ("principal", "date_of_birth")),
    ("dob-1800", lambda: _principal(date_of_birth="1800-01-01"), ("principal", "date_of_birth")),
    ("dob-list", lambda: _principal(date_of_birth=["1985-05-01"]), ("principal", "date_of_birth")),
    ("name-int", lambda: _principal(given_names_latin=5), ("principal", "given_names_latin")),
    ("name-dict", lambda: _principal(family_name_latin={"a": 1}), ("principal", "family_name_latin")),
    ("name-5000", lambda: _principal(given_names_latin="A" * 5000), ("principal", "given_names_latin")),
    ("name-blank", lambda: _principal(family_name_latin="   "), ("principal", "family_name_latin")),
    ("name-null", lambda: _principal(family_name_latin=None), ("principal", "family_name_latin")),
    ("cyrillic-latin", lambda: _principal(given_names_cyrillic="Olena"),
     ("principal", "given_names_cyrillic")),
    ("bsn-11-check", lambda: _principal(bsn=INVALID_BSN), ("principal", "bsn")),
    ("bsn-short", lambda: _principal(bsn="12345678"), ("principal", "bsn")),
    ("bsn-int", lambda: _principal(bsn=111222333), ("principal", "bsn")),
    ("v-9-digits", lambda: _principal(v_number="123456789"), ("principal", "v_number")),
    ("v-11-digits", lambda: _principal(v_number="12345678901"), ("principal", "v_number")),
    ("v-letters", lambda: _principal(v_number="V123456789"), ("principal", "v_number")),
    ("v-int", lambda: _principal(v_number=1234567890), ("principal", "v_number")),
    ("v-missing", lambda: body(intake(), principal={
        k: v for k, v in jsonable(person()).items() if k != "v_number"}), ("principal", "v_number")),
    ("email", lambda: _principal(email="not-an-email"), ("principal", "email")),
    ("email-long", lambda: _principal(email="a" * 300 + "@example.org"), ("principal", "email")),
    ("phone", lambda: _principal(phone="call me maybe"), ("principal", "phone")),
    ("language-de", lambda: _principal(language="de"), ("principal", "language")),
    ("asylum-maybe", lambda: _principal(asylum_application_pending="maybe"),
     ("principal", "asylum_application_pending")),
    ("unknown-nested", lambda: _principal(nickname="Lena"), ("principal", "nickname")),
    ("unknown-top", lambda: body(intake(), case_priority="high"), ("case_priority",)),
    ("principal-missing", lambda: {k: v for k, v in body().items() if k != "principal"},
     ("principal",)),
    ("principal-null", lambda: body(intake(), principal=None), ("principal",)),
    ("principal-string", lambda: body(intake(), principal="Olena"), ("principal",)),
    ("principal-list", lambda: body(intake(), principal=[jsonable(person())]), ("principal",)),
    ("oblast-UA-99", lambda: body(intake(), destination_oblast="UA-99"), ("destination_oblast",)),
    ("oblast-RU", lambda: body(intake(), destination_oblast="RU-MOW"), ("destination_oblast",)),
    ("oblast-int", lambda: body(intake(), destination_oblast=30), ("destination_oblast",)),
    ("place-long", lambda: body(intake(), destination_place="x" * 201), ("destination_place",)),
    ("household-string", lambda: body(intake(), household="everyone"), ("household",)),
    ("household-ints", lambda: body(intake(), household=[1, 2]), ("household", "0")),
    ("household-1000", lambda: body(intake(), household=[
        dict(jsonable(person()), relationship="child") for _ in range(1000)]), ("household",)),
    ("relationship-missing", lambda: _member(relationship=None), ("household", "0", "relationship")),
    ("relationship-odd", lambda: _member(relationship="landlord"), ("household", "0", "relationship")),
    ("member-language", lambda: _member(language="de"), ("household", "0", "language")),
    ("member-bsn", lambda: _member(bsn=INVALID_BSN), ("household", "0", "bsn")),
    ("duplicate-v", lambda: (lambda d: d | {"household": [
        dict(jsonable(person()), relationship="spouse", v_number=d["principal"]["v_number"])]})(body()),
     ("household", "0", "v_number")),
]


def test_invalid_intake_is_422_per_field(api):
    def check(_name, make, path):
        err = assert_error(api.post("/cases", json=make()), 422, "invalid")
        assert field_errors(err, *path), err

    each(INVALID_INTAKES, check)
    assert ok(api.get("/cases"))["total"] == 0


def test_the_same_validation_applies_to_editing_intake(api):
    ref = api.create()["reference"]
    err = assert_error(api.put(f"/cases/{ref}", json=_principal(bsn=INVALID_BSN)), 422, "invalid")
    assert field_errors(err, "principal", "bsn")
    err = assert_error(api.put(f"/cases/{ref}", json=body(intake(), destination_oblast="UA-99",
                                                          extra=1)), 422)
    assert field_errors(err, "destination_oblast") and field_errors(err, "extra")
    assert api.read(ref)["version"] == 1


def test_valid_identifiers_are_accepted_and_normalised(api):
    case = api.create(_principal(bsn=VALID_BSN, v_number="12 3456.7890", language="ru",
                                 email="Olena@Example.org"))
    principal = case["participants"][0]
    assert principal["bsn"] == VALID_BSN
    assert principal["v_number"] == "1234567890"
    assert principal["language"] == "ru"


@pytest.mark.engines_differ
def test_characters_no_database_can_store_are_422_per_field(api, db):
    ref = api.create()["reference"]

    def check(name, value):
        for data, path in ((_principal(given_names_latin=value), ("principal", "given_names_latin")),
                           (_member(family_name_cyrillic="Олена" + value),
                            ("household", "0", "family_name_cyrillic")),
                           (body(intake(), destination_place=value), ("destination_place",)),
                           (body(intake(), intake_notes=value), ("intake_notes",)),
                           (_principal(travel_document_number=value),
                            ("principal", "travel_document_number"))):
            err = assert_error(api.post("/cases", json=data), 422, "invalid")
            assert field_errors(err, *path)
        err = assert_error(api.act(ref, "leave_programme", {"reason": value}), 422)
        assert field_errors(err, "reason")
        if "\ud800" not in value:  # a URL cannot carry a lone surrogate at all
            err = assert_error(api.get("/cases", query_string={"q": value}), 422)
            assert field_errors(err, "q")

    each([("NUL", "Olena\x00"), ("lone surrogate", "\ud800"), ("only NUL", "\x00")], check)
    assert ok(api.get("/cases"))["total"] == 1


def test_a_bel_in_a_name_is_refused_at_intake_naming_the_field_and_nothing_is_written(api, db):
    """Regression (issue 10): a BEL in a name used to be accepted at intake and made the
    signing page fail with a 500 when the document was rendered."""
    events = db.execute(select(AuditEvent.id)).all()
    err = assert_error(api.post("/cases", json=_principal(given_names_latin="Olena\x07")),
                       422, "invalid")
    assert field_errors(err, "principal", "given_names_latin") == [
        "Contains a control character (such as a bell or escape character); remove it."]
    assert ok(api.get("/cases"))["total"] == 0
    db.rollback()
    assert db.execute(select(AuditEvent.id)).all() == events


def test_control_characters_are_refused_in_every_text_field_with_the_renderers_rule(api):
    ref = api.create()["reference"]

    def check(name, value):
        for data, path in ((_principal(family_name_latin=value), ("principal", "family_name_latin")),
                           (_member(given_names_cyrillic="Олена" + value),
                            ("household", "0", "given_names_cyrillic")),
                           (body(intake(), destination_place=value), ("destination_place",)),
                           (_principal(travel_document_number=value),
                            ("principal", "travel_document_number"))):
            err = assert_error(api.post("/cases", json=data), 422, "invalid")
            assert field_errors(err, *path) == [
                "Contains a control character (such as a bell or escape character); remove it."]
        err = assert_error(api.act(ref, "leave_programme", {"reason": "Reden" + value}), 422)
        assert field_errors(err, "reason")
        err = assert_error(api.get("/cases", query_string={"q": value}), 422)
        assert field_errors(err, "q")

    each([("BEL", "x\x07y"), ("ANSI escape", "x\x1b[31m"), ("DEL", "x\x7f"),
          ("C1 NEL", "x\x85y"), ("C1 CSI", "x\x9b2J")], check)
    # Single-line fields take no line breaks or tabs inside either.
    for value in ("Olena\nKovalenko", "Olena\tKovalenko", "Olena\rX"):
        err = assert_error(api.post("/cases", json=_principal(given_names_latin=value)), 422)
        assert field_errors(err, "principal", "given_names_latin")
    assert ok(api.get("/cases"))["total"] == 1


def test_multi_line_fields_keep_line_feeds_and_tabs_with_normalised_line_ends(api):
    case = api.create(body(intake(), intake_notes="Eerste regel\r\nTweede\tregel\rDerde"))
    assert case["intake_notes"] == "Eerste regel\nTweede\tregel\nDerde"
    err = assert_error(api.post("/cases", json=body(intake(), intake_notes="Bel\x07\nhier")), 422)
    assert field_errors(err, "intake_notes")
    ref = case["reference"]
    assert ok(api.act(ref, "leave_programme", {"reason": "Gestopt.\r\nZie notitie."}))
    assert api.read(ref)["closing_reason"] == "Gestopt.\nZie notitie."


@pytest.mark.engines_differ
def test_other_odd_characters_are_stored_and_searched_as_typed(api):
    def check(_name, value):
        case = api.create(body(intake(), destination_place=value, intake_notes=value))
        assert case["destination_place"] == value.strip()
        resp = api.get("/cases", query_string={"q": value})
        assert resp.status_code in (200, 422), resp.get_data(as_text=True)[:300]

    each([("bidi override", "\u202eevil"), ("emoji", "Київ 💙💛"),
          ("like wildcards", "100% _done_ \\"), ("quotes", "O'Brien \"Jr\"")], check)
    for q in ("%%%%", "x%y", "___", "\\\\\\"):
        assert ok(api.get("/cases", query_string={"q": q}))["total"] == 0, q
    # Too short for the search index (fewer than 3 characters): refused with a reason.
    for q in ("%", "_", "\\", "'"):
        err = assert_error(api.get("/cases", query_string={"q": q}), 422, "invalid")
        assert field_errors(err, "q"), q
    # LIKE wildcards typed in the search box are searched for literally.
    odd = api.create(_principal(family_name_latin="Van_der 100%"))["reference"]
    for q in ("_de", "00%", "van_der", "100%", "VAN_DER 100%"):
        page = ok(api.get("/cases", query_string={"q": q}))
        assert [c["reference"] for c in page["items"]] == [odd], q
    assert ok(api.get("/cases", query_string={"q": "van%der"}))["total"] == 0


def test_bad_list_parameters_are_422_per_field(api):
    def check(field, value):
        err = assert_error(api.get("/cases", query_string={field: value}), 422, "invalid")
        assert field_errors(err, field)

    each([("page", str(10**30)), ("page", "0"), ("page", "-1"), ("page", "abc"), ("page", "1.5"),
          ("page", ""), ("per_page", "0"), ("per_page", "101"), ("per_page", str(10**30)),
          ("state", "flying"), ("state", "INTAKE"), ("counsellor", "not-an-email"),
          ("deadline_from", "soon"), ("deadline_to", "2026-02-30"), ("q", "x" * 101),
          ("sort", "name")], check)


ACTION_PAYLOADS = [
    ("leave_programme", {}, "reason"),
    ("leave_programme", {"reason": "   "}, "reason"),
    ("leave_programme", {"reason": 42}, "reason"),
    ("leave_programme", {"reason": "x" * 2001}, "reason"),
    ("leave_programme", {"reason": "ok", "force": True}, "force"),
    ("agree_departure", {"departure_deadline": "tomorrow"}, "departure_deadline"),
    ("agree_departure", {"departure_deadline": 20270101}, "departure_deadline"),
    ("agree_departure", {}, "departure_deadline"),
    ("extend_deadline", {"departure_deadline": "2027-01-01"}, "reason"),
    ("confirm_departure", {"departed_on": TODAY.isoformat(), "evidence": "selfie"}, "evidence"),
    ("confirm_departure", {"evidence": "boarding"}, "departed_on"),
    ("pay_support", {"idempotency_key": "x"}, "idempotency_key"),
    ("pay_support", {"idempotency_key": "a" * 101}, "idempotency_key"),
    ("confirm_commitment", {"please": True}, "please"),
    ("reject", {"reason": None}, "reason"),
    ("lapse", {"reason": ["late"]}, "reason"),
    ("record_withdrawal", {"ind_reference": "IND-1"}, "ind_reference"),
]


def test_invalid_action_payloads_are_422_per_field(api):
    ref = api.create()["reference"]

    def check(action, payload, field):
        for role in ("counsellor", "supervisor"):
            err = assert_error(api.as_(role).act(ref, action, payload), 422, "invalid")
            assert field_errors(err, field)

    each(ACTION_PAYLOADS, check)
    assert api.read(ref)["state"] == "intake"
    assert [e["action"] for e in api.trail(ref)].count("open_case") == 1


def test_invalid_ind_confirmations_are_422_per_field(api, db):
    ref = api.create()["reference"]
    commit_case(api, db, ref)
    pid = api.read(ref)["participants"][0]["id"]
    other_ref = api.create()["reference"]
    other_pid = api.read(other_ref)["participants"][0]["id"]
    good = {"participant_id": pid, "ind_reference": "IND-2026/77", "confirmed_on": TODAY.isoformat()}
    for change, field in (
            ({"confirmed_on": (TODAY + dt.timedelta(days=2)).isoformat()}, "confirmed_on"),
            ({"confirmed_on": 5}, "confirmed_on"),
            ({"participant_id": str(pid)}, "participant_id"),
            ({"participant_id": 10**30}, "participant_id"),
            ({"participant_id": 1.5}, "participant_id"),
            ({"participant_id": other_pid}, "participant_id"),
            ({"ind_reference": "<script>"}, "ind_reference"),
            ({"ind_reference": "x" * 41}, "ind_reference"),
            ({"note": "hi"}, "note")):
        err = assert_error(api.post(f"/cases/{ref}/ind-confirmations", json=good | change), 422)
        assert field_errors(err, field), (change, err)
    assert ok(api.post(f"/cases/{ref}/ind-confirmations", json=good), 201)
    err = assert_error(api.post(f"/cases/{ref}/ind-confirmations", json=good), 409)
    assert codes(err) == ["ind_confirmation_exists"]
    # Not while the case is in intake.
    err = assert_error(api.post(f"/cases/{other_ref}/ind-confirmations",
                                json=good | {"participant_id": other_pid}), 409)
    assert codes(err) == ["wrong_state"]


def test_a_participant_without_a_pending_application_needs_no_ind_confirmation(api, db):
    data = intake(adults=1, minors=1)
    data["household"][0]["asylum_application_pending"] = False
    ref = api.create(data)["reference"]
    commit_case(api, db, ref)
    baby = [p for p in api.read(ref)["participants"] if not p["asylum_application_pending"]][0]
    err = assert_error(api.post(f"/cases/{ref}/ind-confirmations", json={
        "participant_id": baby["id"], "ind_reference": "IND-1", "confirmed_on": TODAY.isoformat()}),
        422)
    assert field_errors(err, "participant_id")
    sign(db, ref, workflow.WITHDRAWAL_DECLARATION)
    confirm_all_ind(api, ref)
    assert ok(api.act(ref, "record_withdrawal"))["state"] == "asylum_withdrawn"


# --- list -----------------------------------------------------------------------------------

@pytest.mark.engines_differ
def test_list_filters_by_state_counsellor_deadline_and_search(api, db):
    near, far = TODAY + dt.timedelta(days=20), TODAY + dt.timedelta(days=60)
    mine = [api.create()["reference"] for _ in range(3)]
    agreed_near = api.create()["reference"]
    agreed_case(api, db, agreed_near, near)
    agreed_far = api.create()["reference"]
    agreed_case(api, db, agreed_far, far)
    special = intake()
    special["principal"] = dict(special["principal"], family_name_latin="Shevchenko",
                                given_names_latin="Taras", family_name_cyrillic="Шевченко",
                                given_names_cyrillic="Тарас")
    theirs = api.as_("counsellor2").create(special)["reference"]
    api.as_("other_counsellor").create()  # another team: never listed

    def refs(**query):
        page = ok(api.get("/cases", query_string=query))
        return {c["reference"] for c in page["items"]}, page["total"]

    assert refs() == ({*mine, agreed_near, agreed_far, theirs}, 6)
    assert refs(state="intake") == ({*mine, theirs}, 4)
    assert refs(state="departure_agreed") == ({agreed_near, agreed_far}, 2)
    assert refs(state="departed") == (set(), 0)
    # The counsellor by user id (as answers name them); an address is still accepted.
    bram = api.staff.counsellor2
    assert refs(counsellor=str(bram.id)) == ({theirs}, 1)
    assert refs(counsellor=str(api.staff.supervisor.id)) == (set(), 0)
    assert refs(counsellor="bram@dtenv.example") == ({theirs}, 1)
    assert refs(counsellor="BRAM@dtenv.example") == ({theirs}, 1)
    assert refs(counsellor="nobody@dtenv.example") == (set(), 0)
    for bad in ("bram", "0", str(2**31), "-3"):
        assert field_errors(assert_error(api.get("/cases", query_string={
            "counsellor": bad}), 422), "counsellor"), bad
    assert refs(deadline_from=(near - dt.timedelta(days=1)).isoformat(),
                deadline_to=(near + dt.timedelta(days=1)).isoformat()) == ({agreed_near}, 1)
    assert refs(deadline_from=(near + dt.timedelta(days=1)).isoformat()) == ({agreed_far}, 1)
    assert refs(deadline_to=far.isoformat()) == ({agreed_near, agreed_far}, 2)
    assert refs(deadline_from=(far + dt.timedelta(days=1)).isoformat()) == (set(), 0)
    # Free text: reference (any case), family or given name (any case), Cyrillic, V-number.
    assert refs(q=theirs) == ({theirs}, 1)
    assert refs(q=theirs.lower()) == ({theirs}, 1)
    assert refs(q="shevchenko") == ({theirs}, 1)
    assert refs(q="TARAS") == ({theirs}, 1)
    assert refs(q="Шевченко") == ({theirs}, 1)
    assert refs(q=special["principal"]["v_number"]) == ({theirs}, 1)
    assert refs(q="nobody-at-all") == (set(), 0)
    # Combined filters narrow each other.
    assert refs(state="intake", counsellor="anna@dtenv.example") == (set(mine), 3)
    assert refs(state="departure_agreed", q="shevchenko") == (set(), 0)
    # The other team sees only its own case.
    assert ok(api.as_("other_supervisor").get("/cases"))["total"] == 1
    row = ok(api.get("/cases", query_string={"q": theirs}))["items"][0]
    assert row["principal_name"] == "Taras Shevchenko"
    # Named as every answer names staff: id and display name.
    assert row["counsellor"] == {"id": bram.id, "name": bram.name} and bram.name
    assert row["household_size"] == 1 and row["state"] == "intake"
    assert row["counsellor_name"] == row["counsellor"]["name"]  # deprecated duplicate
    # The same search with the words in the body, out of the address and the logs.
    for query in ({"q": "Шевченко"}, {"q": special["principal"]["v_number"]},
                  {"q": "taras", "state": "intake"}):
        body = ok(api.post("/cases/search", json=query))
        assert {c["reference"] for c in body["items"]} == {theirs}, query
    assert ok(api.post("/cases/search", json={"state": "departure_agreed", "sort": "deadline"})
              )["items"][0]["reference"] == agreed_near
    bad = api.post("/cases/search", json={"q": "ol"})
    assert field_errors(assert_error(bad, 422), "q")
    bad = api.post("/cases/search", json={"sort": "v_number"})
    assert field_errors(assert_error(bad, 422), "sort")


def test_list_pages_through_every_case_once_newest_first(api):
    made = [api.create()["reference"] for _ in range(7)]
    seen = []
    for page in (1, 2, 3):
        data = ok(api.get("/cases", query_string={"per_page": 3, "page": page}))
        assert (data["total"], data["page"], data["per_page"]) == (7, page, 3)
        assert len(data["items"]) == (3 if page < 3 else 1)
        seen += [c["reference"] for c in data["items"]]
    assert seen == list(reversed(made))
    beyond = ok(api.get("/cases", query_string={"per_page": 3, "page": 4}))
    assert beyond["items"] == [] and beyond["total"] == 7
    default = ok(api.get("/cases"))
    assert (default["page"], default["per_page"], default["total"]) == (1, 25, 7)
    assert ok(api.get("/cases", query_string={"page": 1_000_000}))["items"] == []


# --- read ------------------------------------------------------------------------------------

def test_reading_a_case_shows_participants_allowed_actions_and_audit_trail(api, db):
    data = intake(adults=2, minors=1)
    created = api.post("/cases", json=body(data))
    case = ok(created, 201)
    ref = case["reference"]
    assert created.headers["Location"] == f"/api/v1/cases/{ref}"
    assert ref.startswith(f"VRP-{TODAY.year}-") and len(ref) == len("VRP-2026-000001")
    read = api.read(ref)
    assert read["state"] == "intake" and read["household_size"] == 3
    anna = {"id": api.staff.counsellor.id, "name": api.staff.counsellor.name}
    assert read["counsellor"] == anna and read["team"] == "Team Noord"
    people = read["participants"]
    assert [p["is_principal"] for p in people] == [True, False, False]
    assert [p["is_adult"] for p in people] == [True, True, False]
    assert people[0]["v_number"] == data["principal"]["v_number"]
    assert people[0]["given_names_cyrillic"] == "Олена"
    assert people[2]["relationship"] == "child"
    assert all(p["ind_confirmation"] is None for p in people)
    assert read["documents"] == [] and read["payments"] == []
    assert read["allowed_actions"] == ["leave_programme"]
    assert api.as_("supervisor").read(ref)["allowed_actions"] == ["reject"]
    assert "audit_trail" not in read  # paged apart: a read stays small however long the trail
    trail = api.trail(ref)
    assert trail[0]["action"] == "open_case" and trail[0]["to_state"] == "intake"
    assert trail[0]["actor"] == anna
    # Once every adult signed, the button to confirm appears.
    sign(db, ref, workflow.COMMITMENT)
    read = api.read(ref)
    assert read["allowed_actions"] == ["confirm_commitment", "leave_programme"]
    assert {d["kind"] for d in read["documents"]} == {"commitment"}
    assert len(read["documents"]) == 2  # the two adults


def test_viewing_a_case_is_recorded_in_the_access_log_not_the_audit_chain(api, db):
    ref = api.create()["reference"]
    assert looks(db, ref) == []  # the create response itself is not a "view"
    head = db.get(AuditHead, 1).seq
    db.rollback()
    api.read(ref)
    api.as_("supervisor").read(ref)
    api.read(ref)  # again within the quarter of an hour: the same look
    assert [(x.actor, x.view, x.channel, x.ip) for x in looks(db, ref)] == [
        ("anna@dtenv.example", "case", "api", "127.0.0.1"),
        ("sanne@dtenv.example", "case", "api", "127.0.0.1")]
    assert view_events(db, ref) == [] and db.get(AuditHead, 1).seq == head
    db.rollback()
    # A refused view (other team) is not logged; listing writes no looks.
    assert_error(api.as_("other_counsellor").get(f"/cases/{ref}"), 404)
    api.get("/cases")
    assert len(looks(db, ref)) == 2
    # The access log answers who looked, newest first; reading the trail is a look too.
    api.trail(ref)
    who = ok(api.as_("supervisor").get(f"/cases/{ref}/access-log"))
    anna, sanne = ({"id": u.id, "name": u.name}
                   for u in (api.staff.counsellor, api.staff.supervisor))
    assert [(x["actor"], x["view"]) for x in who["looks"]] == [
        (anna, "trail"), (sanne, "case"), (anna, "case")]
    assert who["next_before_id"] is None
    assert_error(api.as_("other_counsellor").get(f"/cases/{ref}/access-log"), 404)
    assert_error(api.get(f"/cases/{ref}/trail", query_string={"limit": 0}), 422)
    db.rollback()
    assert audit.verify(db).ok


# --- edit intake ------------------------------------------------------------------------------

def test_intake_can_be_edited_only_while_in_intake(api, db):
    case = api.create(intake(adults=1))
    ref = case["reference"]
    new = intake(adults=2, minors=2)
    edited = ok(api.put(f"/cases/{ref}", json=body(new, destination_oblast="UA-46",
                                                   destination_place="Lviv")))
    assert edited["household_size"] == 4 and edited["version"] == case["version"] + 1
    assert edited["destination_oblast"] == "UA-46" and edited["destination_place"] == "Lviv"
    assert [p["v_number"] for p in edited["participants"]] == \
        [new["principal"]["v_number"]] + [m["v_number"] for m in new["household"]]
    assert "update_intake" in [e["action"] for e in api.trail(ref)]
    # The replaced principal's V-number is free again.
    again = intake()
    again["principal"] = dict(again["principal"], v_number=case["participants"][0]["v_number"])
    api.create(again)
    # Once signed, the household is fixed even though the case is still in intake.
    sign(db, ref, workflow.COMMITMENT)
    err = assert_error(api.put(f"/cases/{ref}", json=body(new)), 409, "conflict")
    assert codes(err) == ["documents_signed"]
    ok(api.act(ref, "confirm_commitment"))
    err = assert_error(api.put(f"/cases/{ref}", json=body(new)), 409, "conflict")
    assert codes(err) == ["wrong_state"]
    assert api.read(ref)["household_size"] == 4


def test_editing_intake_cannot_take_a_v_number_held_by_another_open_case(api):
    first = api.create()
    ref = api.create()["reference"]
    clash = intake()
    clash["principal"] = dict(clash["principal"], v_number=first["participants"][0]["v_number"])
    err = assert_error(api.put(f"/cases/{ref}", json=body(clash)), 409)
    assert codes(err) == ["open_case_exists"]
    assert api.read(ref)["version"] == 1


# --- the whole way through the API ----------------------------------------------------------------

def test_a_case_driven_through_the_api_as_far_as_documents_and_payments_allow(api, db, ctx_of,
                                                                               api_staff):
    deadline = TODAY + dt.timedelta(days=30)
    case = api.create(intake(adults=2, minors=1))
    ref = case["reference"]
    # intake → committed
    assert_error(api.act(ref, "confirm_commitment"), 409)
    sign(db, ref, workflow.COMMITMENT)
    assert ok(api.act(ref, "confirm_commitment"))["state"] == "committed"
    # committed → asylum_withdrawn: declarations and one IND confirmation per person
    sign(db, ref, workflow.WITHDRAWAL_DECLARATION)
    confirm_all_ind(api, ref)
    read = api.read(ref)
    assert all(p["ind_confirmation"]["confirmed_on"] == TODAY.isoformat()
               for p in read["participants"])
    assert read["allowed_actions"] == ["record_withdrawal", "leave_programme"]
    assert ok(api.act(ref, "record_withdrawal"))["state"] == "asylum_withdrawn"
    # asylum_withdrawn → departure_agreed: the deadline must be the one that was signed
    sign(db, ref, workflow.DEPARTURE_AGREEMENT, {"departure_deadline": deadline.isoformat()})
    err = assert_error(api.act(ref, "agree_departure",
                               {"departure_deadline": deadline + dt.timedelta(days=1)}), 409)
    assert "departure_agreement_unsigned" in codes(err)
    agreed = ok(api.act(ref, "agree_departure", {"departure_deadline": deadline}))
    assert agreed["state"] == "departure_agreed"
    assert agreed["departure_deadline"] == deadline.isoformat()
    # extend_deadline by a supervisor with a signed addendum
    later = deadline + dt.timedelta(days=10)
    err = assert_error(api.as_("supervisor").act(ref, "extend_deadline", {
        "departure_deadline": later, "reason": "child in hospital"}), 409)
    assert "addendum_unsigned" in codes(err)
    sign(db, ref, workflow.ADDENDUM, {"departure_deadline": later.isoformat()})
    extended = ok(api.as_("supervisor").act(ref, "extend_deadline", {
        "departure_deadline": later, "reason": "child in hospital"}))
    assert extended["state"] == "departure_agreed"
    assert extended["departure_deadline"] == later.isoformat()
    # pay_support: refused until a payment is proposed and approved by someone else
    payment_service.propose(ctx_of(api_staff.counsellor), ref, {"method": "cash"})
    err = assert_error(api.as_("finance").act(ref, "pay_support",
                                              {"idempotency_key": f"pay-{ref}-1"}), 409)
    assert codes(err) == ["payment_not_approved"]
    payment_service.approve(ctx_of(api_staff.supervisor), ref)
    finance = api.as_("finance")
    assert finance.read(ref)["allowed_actions"] == ["pay_support"]
    paid = ok(finance.act(ref, "pay_support", {"idempotency_key": f"pay-{ref}-1"}))
    assert paid["state"] == "support_paid"
    assert [p["status"] for p in paid["payments"]] == ["disbursed"]
    # A replay with the same key is answered, not paid twice; a new key is refused.
    assert ok(finance.act(ref, "pay_support", {"idempotency_key": f"pay-{ref}-1"}))["state"] \
        == "support_paid"
    assert_error(finance.act(ref, "pay_support", {"idempotency_key": f"pay-{ref}-2"}), 409)
    # support_paid → departed: paid in cash, so not before the receipt is signed
    err = assert_error(api.act(ref, "confirm_departure", {
        "departed_on": TODAY, "evidence": "boarding"}), 409)
    assert codes(err) == ["payment_receipt_unsigned"]
    assert "confirm_departure" not in api.read(ref)["allowed_actions"]
    sign(db, ref, workflow.PAYMENT_RECEIPT)
    assert "confirm_departure" in api.read(ref)["allowed_actions"]
    err = assert_error(api.act(ref, "confirm_departure", {
        "departed_on": TODAY + dt.timedelta(days=2), "evidence": "boarding"}), 409)
    assert codes(err) == ["departure_date_future"]
    # a departure dated before the departure agreement was signed (today) is implausible
    err = assert_error(api.act(ref, "confirm_departure", {
        "departed_on": dt.date(2020, 1, 1), "evidence": "boarding"}), 409)
    assert codes(err) == ["departure_before_agreement"]
    assert err["details"][0]["field"] == "departed_on"
    done = ok(api.act(ref, "confirm_departure", {"departed_on": TODAY,
                                                 "evidence": "border_crossing",
                                                 "evidence_reference": "KMar 42"}))
    assert done["state"] == "departed" and done["departed_on"] == TODAY.isoformat()
    assert done["allowed_actions"] == []
    trail = api.trail(ref)
    moves = [(e["action"], e["from_state"], e["to_state"]) for e in trail if e["to_state"]]
    assert moves == [
        ("open_case", None, "intake"),
        ("confirm_commitment", "intake", "committed"),
        ("record_withdrawal", "committed", "asylum_withdrawn"),
        ("agree_departure", "asylum_withdrawn", "departure_agreed"),
        ("extend_deadline", "departure_agreed", "departure_agreed"),
        ("pay_support", "departure_agreed", "support_paid"),
        ("confirm_departure", "support_paid", "departed"),
    ]
    assert all("idempotency_key" not in e["details"] for e in trail)
    # Departed: the V-numbers are free for a new case.
    again = intake()
    again["principal"] = dict(again["principal"], v_number=case["participants"][0]["v_number"])
    api.create(again)


def test_side_exits_through_the_api(api, db, ctx_of, api_staff):
    left = api.create()["reference"]
    done = ok(api.act(left, "leave_programme", {"reason": "  found work in Utrecht  "}))
    assert done["state"] == "left_programme" and done["closing_reason"] == "found work in Utrecht"
    rejected = api.create()["reference"]
    assert ok(api.as_("supervisor").act(rejected, "reject", {"reason": "not from Ukraine"}))[
        "state"] == "rejected"
    lapsing = api.create()["reference"]
    agreed_case(api, db, lapsing)
    err = assert_error(api.as_("supervisor").act(lapsing, "lapse", {"reason": "gone quiet"}), 409)
    assert codes(err) == ["deadline_not_passed"]


# --- OpenAPI ------------------------------------------------------------------------------------

def test_the_openapi_document_is_valid_openapi_3_1_with_one_path_per_action(client):
    from openapi_spec_validator import validate

    resp = client.get(f"{API}/openapi.json")  # public: no token needed
    assert resp.status_code == 200 and resp.is_json
    spec = resp.get_json()
    assert spec["openapi"] == "3.1.0"
    validate(spec)
    paths = spec["paths"]
    assert {"/api/v1/cases", "/api/v1/cases/{reference}",
            "/api/v1/cases/{reference}/ind-confirmations"} <= set(paths)
    assert "/api/v1/cases/{reference}/actions/{action}" not in paths
    assert set(schemas.ACTION_SCHEMAS) == set(workflow.CASE_ACTIONS)
    for name, schema in schemas.ACTION_SCHEMAS.items():
        op = paths[f"/api/v1/cases/{{reference}}/actions/{name}"]["post"]
        assert op["operationId"] == f"action_{name}" and op["tags"] == ["actions"]
        for status in ("400", "401", "403", "404", "409", "413", "415", "422", "500"):
            assert status in op["responses"], (name, status)
        media = op["requestBody"]["content"]["application/json"]
        if schema is schemas.EmptyPayload:
            # No body, or {}: nothing else.
            assert op["requestBody"]["required"] is False
            assert media["schema"]["maxProperties"] == 0
        else:
            assert op["requestBody"]["required"] is True
            assert media["schema"] == {"$ref": f"#/components/schemas/Action_{name}"}
            assert spec["components"]["schemas"][f"Action_{name}"]["additionalProperties"] is False
    assert "oneOf" not in json.dumps(spec)
    assert "bearer" in spec["components"]["securitySchemes"]
    intake_schema = spec["components"]["schemas"]["Intake"]
    assert "principal" in intake_schema["properties"]
    assert "date_of_birth" in spec["components"]["schemas"]["Participant"]["properties"]