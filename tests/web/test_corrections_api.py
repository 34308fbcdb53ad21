"""The correction endpoint of the API (issue 13 item 1): the same service and refusal
codes as the page; If-Match is the case's version; a dry run changes nothing."""
from __future__ import annotations

from sqlalchemy import select

from returnprog import workflow
from returnprog.models import Document

from .test_api import API, assert_error, codes, commit_case, field_errors, ok, sign
from .test_api import api, ctx_of, db  # noqa: F401  (fixtures)


def _post(api, ref, body, version, **query):
    return api.client.post(f"{API}/cases/{ref}/corrections", json=body, query_string=query,
                           headers={**api.headers, "If-Match": str(version)})


def test_a_dry_run_lists_the_documents_and_saving_supersedes_them(api, db):
    ref = api.create()["reference"]
    commit_case(api, db, ref)
    sign(db, ref, workflow.WITHDRAWAL_DECLARATION)
    case = api.read(ref)
    principal = next(p for p in case["participants"] if p["is_principal"])
    body = {"participants": [{"id": principal["id"], "date_of_birth": "1984-02-03"}]}
    preview = ok(_post(api, ref, body, case["version"], dry_run=1))
    assert preview["dry_run"] is True and preview["reissue"]
    assert preview["changes"][0]["new"] == "1984-02-03"
    assert api.read(ref)["version"] == case["version"]  # nothing saved

    done = ok(_post(api, ref, body, case["version"]))
    assert done["reissue"] == preview["reissue"] and done["version"] == case["version"] + 1
    superseded = {d["document_id"] for d in done["reissue"]}
    docs = {d["id"]: d for d in api.read(ref)["documents"]}
    assert all(docs[i]["superseded_at"] for i in superseded)
    db.rollback()
    assert db.execute(select(Document.superseded_at).where(
        Document.id.in_(superseded))).scalars().all()


def test_refusals_carry_the_same_codes_as_the_page(api, db):
    ref = api.create()["reference"]
    case = api.read(ref)
    principal = next(p for p in case["participants"] if p["is_principal"])
    stale = assert_error(_post(api, ref, {"intake_notes": "x"}, case["version"] + 5), 409,
                         "conflict")
    assert codes(stale) == ["stale_version"]
    missing = api.client.post(f"{API}/cases/{ref}/corrections", json={"intake_notes": "x"},
                              headers=api.headers)
    assert codes(assert_error(missing, 409)) == ["stale_version"]
    # Not correctable here (an identifier, not a correction): an unknown field.
    assert_error(_post(api, ref, {"participants": [{"id": principal["id"], "v_number": "1"}]},
                       case["version"]), 422, "invalid")
    same = assert_error(_post(api, ref, {"intake_notes": case["intake_notes"]}, case["version"]),
                        422, "invalid")
    assert "Nothing was changed" in same["message"]
    supervisor = api.client.post(f"{API}/cases/{ref}/corrections", json={"intake_notes": "x"},
                                 headers={**api.staff.headers["supervisor"],
                                          "If-Match": str(case["version"])})
    assert_error(supervisor, 403, "forbidden")
    api.act(ref, "leave_programme", {"reason": "wants to wait"})
    closed = assert_error(_post(api, ref, {"intake_notes": "x"}, api.read(ref)["version"]), 409)
    assert "closed case" in closed["message"]


def test_a_child_is_added_and_removed_through_the_api(api, db):
    from ..conftest import person
    ref = api.create()["reference"]
    commit_case(api, db, ref)
    case = api.read(ref)
    child = {**person(adult=False, email=None), "relationship": "child"}
    child["date_of_birth"] = child["date_of_birth"].isoformat()
    preview = ok(_post(api, ref, {"add_members": [child]}, case["version"], dry_run=1))
    assert preview["added"] == [{"participant_id": None, "relationship": "child",
                                 "is_adult": False, "name": f"{child['given_names_latin']} Kovalenko"}]
    assert len(api.read(ref)["participants"]) == len(case["participants"])
    done = ok(_post(api, ref, {"add_members": [child]}, case["version"]))
    new_id = done["added"][0]["participant_id"]
    assert new_id in [p["id"] for p in api.read(ref)["participants"]]
    principal = next(p for p in case["participants"] if p["is_principal"])
    refused = assert_error(_post(api, ref, {"remove_members": [principal["id"]]}, done["version"]),
                           409)
    assert codes(refused) == ["principal_stays"]
    bad = assert_error(_post(api, ref, {"add_members": [{**child, "v_number": "12"}]},
                             done["version"]), 422, "invalid")
    assert field_errors(bad, "add_members", "0", "v_number")
    gone = ok(_post(api, ref, {"remove_members": [new_id]}, done["version"]))
    assert gone["removed"] == [{"participant_id": new_id, "relationship": "child",
                                "is_adult": False}]
    assert new_id not in [p["id"] for p in api.read(ref)["participants"]]
