"""Signing and documents in the JSON API (issue 14 item 1): signing links (create with
the address once, list without it, resend, revoke), tablet sessions, the document register
and its downloads, and verification by upload — through the real app, renderer and seal;
the participant signs on the real link pages as a person would."""
from __future__ import annotations

import datetime as dt
import fcntl
import hashlib
import io
import os
import re
from pathlib import Path

from pypdf import PdfReader
from sqlalchemy import select
from sqlmodel import Session

from returnprog.models import AccessEvent, Document, MetricCounter, SigningRequest

from ..conftest import intake
from ..hostile_pdfs import CORPUS
from ..web_client import csrf_token
from .test_api import (TODAY, agreed_case, api, assert_error, case_row,  # noqa: F401
                       commit_case, ctx_of, db, ok)
from .test_signing_support import pass_code

TOKEN_PATH = re.compile(r"/s/[A-Za-z0-9_-]{43}")
ACK = re.compile(r'name="ack" value="([a-z_]+)"')


def link_path(url: str) -> str:
    """The path of a link address the API handed out (/s/<token>)."""
    path = "/s/" + url.split("/s/", 1)[1]
    assert TOKEN_PATH.fullmatch(path), url
    return path


def sign_as_participant(app, url: str, typed_name: str, *, lang: str | None = None):
    """The participant opens the address in their own browser, gets past the one-time
    code when the document needs one (read from their mail), ticks the consent and every
    separate acknowledgement the page shows, types their name and signs. Returns the
    answer to the signature (303 to the done page when signed) and the browser."""
    browser = app.test_client()
    path = link_path(url)
    pass_code(app, browser, path)
    page = browser.get(path)
    assert page.status_code == 200, page.status_code
    body = page.get_data(as_text=True)
    acks = ACK.findall(body)
    form = {"csrf_token": csrf_token(body), "method": "typed", "typed_name": typed_name,
            "consent": "yes", "ack": acks}
    if lang:
        form["lang"] = lang
    return browser.post(path, data=form), browser


def adult_names(api, ref) -> dict[int, str]:
    return {p["id"]: f"{p['given_names_latin']} {p['family_name_latin']}"
            for p in api.read(ref)["participants"] if p["is_adult"]}


def _links(app) -> list[SigningRequest]:
    with Session(app.extensions["returnprog.engine"]) as s:
        return s.execute(select(SigningRequest).order_by(SigningRequest.id)).scalars().all()


# --- signing links ---------------------------------------------------------------------------------

def test_a_link_made_through_the_api_is_given_once_and_signs_a_sealed_pdf(app, api, api_staff):
    ref = api.create(intake(adults=2))["reference"]
    names = adult_names(api, ref)
    signer = min(names)
    resp = api.post(f"/cases/{ref}/signing-links",
                    json={"participant_id": signer, "kind": "commitment"})
    created = ok(resp, 201)
    assert resp.headers["Cache-Control"] == "no-store"
    assert created["url"].startswith("http://") and TOKEN_PATH.search(created["url"])
    assert (created["participant_id"], created["kind"], created["channel"], created["status"]) \
        == (signer, "commitment", "link", "open")
    assert created["created_by"] == {"id": api_staff.counsellor.id,
                                     "name": api_staff.counsellor.name}
    token = created["url"].rsplit("/", 1)[1]
    # Never again: not in the list, not in the case.
    listing = api.get(f"/cases/{ref}/signing-links")
    items = ok(listing)["items"]
    assert [i["id"] for i in items] == [created["id"]]
    assert "url" not in items[0] and token not in listing.get_data(as_text=True)
    assert token not in api.get(f"/cases/{ref}").get_data(as_text=True)
    assert _links(app)[0].token_hash == hashlib.sha256(token.encode()).hexdigest()

    signed, _browser = sign_as_participant(app, created["url"], names[signer])
    assert signed.status_code == 303 and "/s/done" in signed.headers["Location"]
    entry = ok(api.get(f"/cases/{ref}/signing-links"))["items"][0]
    assert entry["status"] == "used" and entry["opened_at"] and entry["document_id"]
    docs = ok(api.get(f"/cases/{ref}/documents"))["items"]
    assert [(d["kind"], d["participant_id"], d["status"], d["version"]) for d in docs] == \
        [("commitment", signer, "current", 1)]
    assert docs[0]["id"] == entry["document_id"] and docs[0]["signing_channel"] == "link"


def test_resend_replaces_the_link_and_revoke_withdraws_one(app, api):
    ref = api.create(intake(adults=2))["reference"]
    names = adult_names(api, ref)
    first, second = sorted(names)
    old = ok(api.post(f"/cases/{ref}/signing-links",
                      json={"participant_id": first, "kind": "commitment"}), 201)
    resent = api.post(f"/cases/{ref}/signing-links/{old['id']}/resend")
    new = ok(resent, 201)
    assert resent.headers["Cache-Control"] == "no-store"
    assert new["id"] != old["id"] and new["url"] != old["url"]
    assert (new["participant_id"], new["kind"]) == (first, "commitment")
    statuses = {i["id"]: i["status"] for i in ok(api.get(f"/cases/{ref}/signing-links"))["items"]}
    assert statuses == {old["id"]: "revoked", new["id"]: "open"}
    # The old address is refused; the new one signs.
    assert app.test_client().get(link_path(old["url"])).status_code == 410
    signed, _ = sign_as_participant(app, new["url"], names[first])
    assert signed.status_code == 303
    # A used link is not resent, nor withdrawn.
    assert_error(api.post(f"/cases/{ref}/signing-links/{new['id']}/resend"), 409, "conflict")
    assert_error(api.client.delete(f"/api/v1/cases/{ref}/signing-links/{new['id']}",
                                   headers=api.headers), 409, "conflict")

    other = ok(api.post(f"/cases/{ref}/signing-links",
                        json={"participant_id": second, "kind": "commitment"}), 201)
    revoked = ok(api.client.delete(f"/api/v1/cases/{ref}/signing-links/{other['id']}",
                                   headers=api.headers))
    assert revoked["status"] == "revoked" and "url" not in revoked
    assert app.test_client().get(link_path(other["url"])).status_code == 410
    assert_error(api.client.delete(f"/api/v1/cases/{ref}/signing-links/{other['id']}",
                                   headers=api.headers), 409)
    assert_error(api.post(f"/cases/{ref}/signing-links/{other['id']}/resend"), 409)
    assert_error(api.post(f"/cases/{ref}/signing-links/999999/resend"), 404, "not_found")


def test_signing_link_refusals_match_the_web(app, api, api_staff):
    ref = api.create(intake(adults=1, minors=1))["reference"]
    people = api.read(ref)["participants"]
    adult = next(p["id"] for p in people if p["is_adult"])
    minor = next(p["id"] for p in people if not p["is_adult"])
    before = len(_links(app))
    # Not a counsellor: 403; another team's counsellor: 404 (the case is not theirs to see).
    assert_error(api.as_("supervisor").post(f"/cases/{ref}/signing-links", json={
        "participant_id": adult, "kind": "commitment"}), 403, "forbidden")
    assert_error(api.as_("supervisor").get(f"/cases/{ref}/signing-links"), 403, "forbidden")
    assert_error(api.as_("other_counsellor").post(f"/cases/{ref}/signing-links", json={
        "participant_id": adult, "kind": "commitment"}), 404, "not_found")
    assert_error(api.as_("other_counsellor").get(f"/cases/{ref}/signing-links"), 404)
    # Bad input, field by field; a document that cannot be signed now is a conflict.
    for payload, field in (({"participant_id": adult, "kind": "nonsense"}, "kind"),
                           ({"participant_id": "1", "kind": "commitment"}, "participant_id"),
                           ({"kind": "commitment"}, "participant_id"),
                           ({"participant_id": adult, "kind": "commitment", "x": 1}, "x"),
                           ({"participant_id": minor, "kind": "commitment"}, "participant_id")):
        err = assert_error(api.post(f"/cases/{ref}/signing-links", json=payload), 422)
        assert field in str(err["details"]), (payload, err)
    assert_error(api.post(f"/cases/{ref}/signing-links", json={
        "participant_id": adult, "kind": "departure_agreement",
        "terms": {"departure_deadline": (TODAY + dt.timedelta(days=30)).isoformat()}}), 409)
    assert_error(api.post(f"/cases/{ref}/signing-links", data="x",
                          content_type="text/plain"), 415)
    assert len(_links(app)) == before  # nothing was made


# --- tablet sessions ------------------------------------------------------------------------------

def test_a_tablet_session_signs_in_person_without_a_code_as_on_the_office_tablet(
        app, api, api_staff, db):
    ref = api.create(intake(adults=1))["reference"]
    names = adult_names(api, ref)
    (signer, name), = names.items()
    commit_case(api, db, ref)
    body = {"participant_id": signer, "kind": "withdrawal_declaration",
            "identity_document": {"type": "passport", "number": "FX123456"}}
    resp = api.post(f"/cases/{ref}/tablet-sessions", json=body)
    session = ok(resp, 201)
    assert resp.headers["Cache-Control"] == "no-store"
    assert session["channel"] == "tablet" and session["status"] == "open"
    created = dt.datetime.fromisoformat(session["created_at"])
    expires = dt.datetime.fromisoformat(session["expires_at"])
    assert expires - created == dt.timedelta(minutes=app.extensions["returnprog.policy"]
                                             .tablet_session_minutes)
    # The identity document is not a term of the document, nor shown in the list.
    listed = ok(api.get(f"/cases/{ref}/signing-links"))["items"][0]
    assert listed["terms"] == {} and "FX123456" not in str(listed)

    # A withdrawal declaration needs a one-time code through a personal link; the tablet
    # session goes straight to the document (the counsellor checked the passport).
    browser = app.test_client()
    page = browser.get(link_path(session["url"])).get_data(as_text=True)
    assert 'name="channel"' not in page and ACK.findall(page) == ["cond_irreversible"]
    signed, browser = sign_as_participant(app, session["url"], name)
    assert signed.status_code == 303
    assert "rp_signed_copy" not in signed.headers.get("Set-Cookie", "")  # a shared tablet
    doc = db.execute(select(Document).where(Document.kind == "withdrawal_declaration")
                     ).scalar_one()
    assert (doc.signing_channel, doc.signer_verification, doc.identity_document) == \
        ("tablet", "id_document", "paspoort FX123456")
    # Single use.
    assert app.test_client().get(link_path(session["url"])).status_code == 410
    # The certificate in the PDF names the counsellor as present.
    text = "".join(p.extract_text() for p in PdfReader(io.BytesIO(doc.pdf)).pages)
    assert api_staff.counsellor.name in text


def test_a_tablet_session_needs_the_identity_document_and_a_counsellor(app, api):
    ref = api.create(intake(adults=1))["reference"]
    signer = next(iter(adult_names(api, ref)))
    for identity, field in (({"type": "passport"}, "number"),
                            ({"type": "visa", "number": "X1"}, "type"),
                            ({"type": "passport", "number": "<script>"}, "number")):
        err = assert_error(api.post(f"/cases/{ref}/tablet-sessions", json={
            "participant_id": signer, "kind": "commitment", "identity_document": identity}), 422)
        assert field in str(err["details"])
    assert_error(api.post(f"/cases/{ref}/tablet-sessions", json={
        "participant_id": signer, "kind": "commitment"}), 422)
    assert_error(api.as_("supervisor").post(f"/cases/{ref}/tablet-sessions", json={
        "participant_id": signer, "kind": "commitment",
        "identity_document": {"type": "passport", "number": "FX1"}}), 403)
    assert _links(app) == []


# --- documents ---------------------------------------------------------------------------------------

def test_documents_are_listed_and_downloaded_as_audited_attachments(app, api, db):
    ref = api.create(intake(adults=2))["reference"]
    names = adult_names(api, ref)
    for pid, name in names.items():
        link = ok(api.post(f"/cases/{ref}/signing-links",
                           json={"participant_id": pid, "kind": "commitment"}), 201)
        assert sign_as_participant(app, link["url"], name)[0].status_code == 303
    docs = ok(api.get(f"/cases/{ref}/documents"))["items"]
    assert sorted(d["participant_id"] for d in docs) == sorted(names)
    in_case = {d["id"]: d["download"] for d in api.read(ref)["documents"]}
    for doc in docs:
        assert doc["download"] == f"/api/v1/cases/{ref}/documents/{doc['id']}"
        assert in_case[doc["id"]] == doc["download"]
        resp = api.client.get(doc["download"], headers=api.headers)
        assert resp.status_code == 200 and resp.mimetype == "application/pdf"
        assert resp.headers["Content-Disposition"].startswith("attachment; filename=")
        assert resp.headers["Cache-Control"] == "no-store"
        assert resp.headers["X-Content-Type-Options"] == "nosniff"
        assert resp.headers["ETag"] == f'"{doc["sha256"]}"'
        assert hashlib.sha256(resp.data).hexdigest() == doc["sha256"]
        assert names[doc["participant_id"]] in "".join(
            p.extract_text() for p in PdfReader(io.BytesIO(resp.data)).pages)
    case_id = case_row(db, ref).id
    seen = db.execute(select(AccessEvent.view, AccessEvent.subject, AccessEvent.channel).where(
        AccessEvent.case_id == case_id, AccessEvent.view == "document")).all()
    db.rollback()
    assert sorted(seen) == sorted(("document", str(d["id"]), "api") for d in docs)
    # Another team sees nothing.
    assert_error(api.as_("other_counsellor").get(f"/cases/{ref}/documents/{docs[0]['id']}"), 404)
    assert_error(api.as_("other_counsellor").get(f"/cases/{ref}/documents"), 404)
    other = api.create()["reference"]
    assert_error(api.get(f"/cases/{other}/documents/{docs[0]['id']}"), 404)
    assert_error(api.get(f"/cases/{ref}/documents/99999999999"), 404)


def test_finance_sees_the_register_of_a_case_it_pays_but_downloads_no_pdf(app, api, db):
    ref = api.create(intake(adults=1))["reference"]
    agreed_case(api, db, ref)
    finance = api.as_("finance")
    docs = ok(finance.get(f"/cases/{ref}/documents"))["items"]
    assert {d["kind"] for d in docs} == {"commitment", "withdrawal_declaration",
                                         "departure_agreement"}
    assert_error(finance.get(docs[0]["download"].removeprefix("/api/v1")), 403, "forbidden")
    pdf = api.get(docs[0]["download"].removeprefix("/api/v1"))
    assert pdf.status_code == 200 and pdf.mimetype == "application/pdf"


# --- verification --------------------------------------------------------------------------------

def _signed_pdf(app, api) -> tuple[str, bytes, str]:
    ref = api.create(intake(adults=1))["reference"]
    (pid, name), = adult_names(api, ref).items()
    link = ok(api.post(f"/cases/{ref}/signing-links",
                       json={"participant_id": pid, "kind": "commitment"}), 201)
    assert sign_as_participant(app, link["url"], name)[0].status_code == 303
    doc = ok(api.get(f"/cases/{ref}/documents"))["items"][0]
    return ref, api.client.get(doc["download"], headers=api.headers).data, name


def verify(api, pdf: bytes, name: str = "x.pdf"):
    return api.post("/verifications", data={"file": (io.BytesIO(pdf), name)},
                    content_type="multipart/form-data")


def test_verification_gives_the_verdict_of_the_public_page_as_json(app, api):
    ref, pdf, name = _signed_pdf(app, api)
    verdict = ok(verify(api, pdf))
    assert verdict["valid"] is True and verdict["reasons"] == [] and verdict["registered"]
    assert verdict["sha256"] == hashlib.sha256(pdf).hexdigest()
    assert (verdict["document"]["reference"], verdict["document"]["kind"],
            verdict["document"]["version"], verdict["document"]["signer_name"]) == \
        (ref, "commitment", 1, name)
    assert "case_id" not in verdict["document"] and verdict["sealed_by"]
    events = [e["event"] for e in verdict["evidence"]["events"]]
    assert events[0] == "link_created" and events[-2:] == ["consented", "signed"]
    # One byte changed: not valid, saying why, as /verify does.
    tampered = bytearray(pdf)
    tampered[len(tampered) // 2] ^= 0x01
    changed = ok(verify(api, bytes(tampered)))
    assert changed["valid"] is False and changed["reasons"] and changed["evidence"] is None
    garbage = ok(verify(api, b"%PDF-1.7 not really"))
    assert garbage["valid"] is False and not garbage["registered"]


def test_hostile_pdfs_get_a_verdict_never_a_server_error(app, api):
    app.config.update(VERIFY_RATE_LIMIT=1000, VERIFY_MEMORY_MB=130)
    for name, build in CORPUS.items():
        verdict = ok(verify(api, build()))
        assert verdict["valid"] is False and verdict["reasons"], name


def test_verification_limits_are_those_of_the_page(app, api):
    app.config.update(VERIFY_MAX_BYTES=1024, VERIFY_RATE_LIMIT=1000)
    err = assert_error(verify(api, b"%PDF" + b"0" * 2000), 413, "too_large")
    assert "file" in str(err["details"])
    assert_error(verify(api, b""), 422, "invalid")
    assert_error(api.post("/verifications", data={"other": "x"},
                          content_type="multipart/form-data"), 422)
    assert_error(api.post("/verifications", data=b"%PDF-1.7",
                          content_type="application/pdf"), 415)
    assert_error(app.test_client().post("/api/v1/verifications", data={
        "file": (io.BytesIO(b"%PDF"), "x.pdf")}, content_type="multipart/form-data"), 401)
    # The page's rate limit per address, shared with /verify.
    app.config.update(VERIFY_RATE_LIMIT=2, VERIFY_MAX_BYTES=5 * 1024 * 1024)
    statuses = [verify(api, b"%PDF-1.7 x").status_code for _ in range(3)]
    assert statuses[:2] == [200, 200]
    limited = verify(api, b"%PDF-1.7 x")
    assert_error(limited, 429, "too_many_requests")
    assert int(limited.headers["Retry-After"]) > 0


def test_a_full_machine_answers_503_json_with_retry_after(app, api):
    app.config.update(VERIFY_RATE_LIMIT=1000, VERIFY_MAX_CONCURRENT=1)
    slots = Path(app.instance_path) / "verify-slots"
    slots.mkdir(parents=True, exist_ok=True)
    fd = os.open(slots / "verify-slot-0.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # another worker is checking
        for _ in range(2):
            busy = verify(api, b"%PDF-1.7 x")
            assert_error(busy, 503, "busy")
            assert busy.headers["Retry-After"] == "60"
    finally:
        os.close(fd)
    assert ok(verify(api, b"%PDF-1.7 x"))["valid"] is False
    with Session(app.extensions["returnprog.engine"]) as s:
        counted = dict(s.execute(select(MetricCounter.name, MetricCounter.count)).all())
    assert counted == {"verify.api.busy": 2, "verify.api.invalid": 1}


def test_a_tablet_session_left_behind_expires_after_the_policys_minutes(app, api):
    import time_machine

    ref = api.create(intake(adults=1))["reference"]
    signer = next(iter(adult_names(api, ref)))
    session = ok(api.post(f"/cases/{ref}/tablet-sessions", json={
        "participant_id": signer, "kind": "commitment",
        "identity_document": {"type": "id_card", "number": "AB 12-34"}}), 201)
    minutes = app.extensions["returnprog.policy"].tablet_session_minutes
    assert app.test_client().get(link_path(session["url"])).status_code == 200
    with time_machine.travel(dt.datetime.now(dt.timezone.utc)
                             + dt.timedelta(minutes=minutes, seconds=1)):
        assert app.test_client().get(link_path(session["url"])).status_code == 410
        assert ok(api.get(f"/cases/{ref}/signing-links"))["items"][0]["status"] == "expired"
        # A tablet session is not resent: the counsellor opens a new one at the tablet.
        assert_error(api.post(f"/cases/{ref}/signing-links/{session['id']}/resend"), 409)
