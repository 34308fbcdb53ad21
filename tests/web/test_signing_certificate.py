"""The evidence certificate of a signed document (issue 12 item 4): the sealed PDF ends
with a page listing the signing's events (times in Amsterdam and UTC, address, user agent,
channel), the counsellor responsible and the signature's legal nature, in Dutch and the
signer's language; the same events are sealed into the file as JSON and shown by
``flask verify-pdf`` and ``/verify``; they agree with the audit trail. Also item 7: the
counsellor on the document, and the cash receipt's hand-over place."""
from __future__ import annotations

import datetime as dt
import hashlib
import html
import io
import json
import re

import shutil
import subprocess

import pypdf
from sqlalchemy import select
from sqlmodel import Session

from returnprog import audit, documents
from returnprog.models import AuditEvent, Document, SigningRequest, User

from ..conftest import drive_to
from ..web_client import csrf_token, web_for
from .test_signing_support import (adults_of, assert_verifies_everywhere, create_link,
                                   drawn_png, last_document, set_language, verify_cli,
                                   verify_page, verify_service)

PHONE_UA = "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 Chrome/131.0 Mobile"
TABLET_UA = "Mozilla/5.0 (iPad; CPU OS 17_5 like Mac OS X) Safari/604.1"
ID_CHECK = {"id_type": "passport", "id_number": "FX123456", "id_confirmed": "yes"}
UTC = dt.timezone.utc


def pages(pdf: bytes) -> list[str]:
    return [" ".join(p.extract_text().split()) for p in pypdf.PdfReader(io.BytesIO(pdf)).pages]


def attached(pdf: bytes, name: str) -> bytes:
    return pypdf.PdfReader(io.BytesIO(pdf)).attachments[name][0]


def as_utc(value: dt.datetime) -> dt.datetime:
    value = value if value.tzinfo else value.replace(tzinfo=UTC)
    return value.astimezone(UTC).replace(microsecond=0)


def client_from(app, ip: str, user_agent: str):
    client = app.test_client()
    client.environ_base.update({"REMOTE_ADDR": ip, "HTTP_USER_AGENT": user_agent})
    return client


def counsellor_name(app, staff) -> str:
    with Session(app.extensions["returnprog.engine"]) as s:
        return s.get(User, staff.counsellor.id).name


def assert_certificate_lists(pdf: bytes, expected: list[tuple[str, dt.datetime, str | None, str | None]],
                             lang_marker: str) -> dict:
    """The last page is the certificate, in Dutch and the signer's language, with each
    expected (event, UTC time, address, user agent); the sealed record says the same."""
    text = pages(pdf)
    # The certificate starts on a page of its own after the document and runs to the end
    # (one page for these events; a long list of failed codes may take a second).
    start = next(i for i, page in enumerate(text) if "Bewijscertificaat" in page)
    assert 0 < start == len(text) - 1
    last = " ".join(text[start:])
    squeezed = last.replace(" ", "")
    assert "Bewijscertificaat van de ondertekening" in last and lang_marker in last
    assert "gewone elektronische handtekening" in last and "eIDAS" in last
    record = json.loads(attached(pdf, documents.EVIDENCE_FILE))
    assert [(e["event"], e["at_utc"], e["ip"], e["user_agent"]) for e in record["events"]] == [
        (name, at.strftime("%Y-%m-%dT%H:%M:%SZ"), ip, ua) for name, at, ip, ua in expected]
    for event in record["events"]:
        local, utc = documents.format_event_times(event)
        assert local in last and utc in last
        if event["ip"]:
            assert event["ip"] in last
        if event["user_agent"]:
            assert event["user_agent"].replace(" ", "") in squeezed
    # The printed hash is that of the sealed content file.
    content = attached(pdf, documents.CONTENT_FILE)
    assert hashlib.sha256(content).hexdigest() == record["content_sha256"]
    assert record["content_sha256"] in squeezed
    return record


def assert_poppler_agrees(tmp_path, pdf: bytes, record: dict) -> None:
    """poppler, which knows nothing of this service: ``pdfsig`` finds one valid seal over
    the whole file, and the content file ``pdfdetach`` extracts hashes to the printed
    SHA-256 (the recomputation the certificate promises)."""
    path = tmp_path / "signed.pdf"
    path.write_bytes(pdf)
    out = subprocess.run([shutil.which("pdfsig") or "/usr/bin/pdfsig", str(path)],
                         capture_output=True, text=True, check=True).stdout
    assert out.count("Signature #") == 1
    assert "Total document signed" in out and "Signature is Valid." in out
    folder = tmp_path / "attached"
    folder.mkdir()
    subprocess.run([shutil.which("pdfdetach") or "/usr/bin/pdfdetach", "-saveall", "-o",
                    str(folder), str(path)], check=True, capture_output=True)
    content = (folder / documents.CONTENT_FILE).read_bytes()
    assert hashlib.sha256(content).hexdigest() == record["content_sha256"]
    assert json.loads((folder / documents.EVIDENCE_FILE).read_bytes()) == record


def assert_verifiers_list(app, tmp_path, pdf: bytes, record: dict) -> None:
    """verify-pdf and /verify list exactly the sealed events."""
    answer = verify_service(app, pdf)
    assert answer.valid and answer.evidence == record
    out = verify_cli(app, tmp_path, pdf).output
    listed = re.findall(r"^    - (\w+)(?: by [^:]+)?: (\S+ \S+ UTC) \(", out, re.M)
    assert listed == [(e["event"], documents.format_event_times(e)[1]) for e in record["events"]]
    assert f"content sha256 {record['content_sha256']}" in out
    body = verify_page(app, pdf).get_data(as_text=True)
    shown = re.findall(r'<li class="event" data-event="(\w+)">', body)
    assert shown == [e["event"] for e in record["events"]]
    for e in record["events"]:
        assert documents.format_event_times(e)[1] in body
        if e["user_agent"]:
            assert html.escape(e["user_agent"]) in body


def test_a_link_signing_ends_with_a_certificate_whose_events_match_the_audit_trail(
        app, staff, ctx_for, session, tmp_path):
    from returnprog.services import cases as case_service
    from ..conftest import intake

    reference = case_service.open_case(ctx_for(staff.counsellor), intake(1, 1)).reference
    signer = adults_of(app, reference)[0]
    set_language(app, signer.id, "ru")
    path = create_link(web_for(app, staff.counsellor), reference, signer.id)
    with Session(app.extensions["returnprog.engine"], expire_on_commit=False) as s:
        link = s.execute(select(SigningRequest)).scalar_one()
        # The one-time-code steps are another part of issue 12: their audit events are
        # written here as that part writes them, and for another link of the case too.
        for action, ip, ua, channel, link_id in (
                ("signing_code_sent", None, None, "email", link.id),
                ("signing_code_failed", "198.51.100.7", PHONE_UA, "link", link.id),
                ("signing_code_verified", "198.51.100.7", PHONE_UA, "link", link.id),
                ("signing_code_sent", None, None, "email", link.id + 1000)):
            audit.append(s, actor=f"participant:{signer.id}", action=action,
                         case_id=link.case_id, ip=ip,
                         details={"signing_request_id": link_id, "channel": channel,
                                  **({"user_agent": ua} if ua else {})})
        s.commit()

    phone = client_from(app, "198.51.100.7", PHONE_UA)
    assert phone.get(path).status_code == 200
    # Opened again from elsewhere: the first opening stays the one on record.
    assert client_from(app, "203.0.113.9", "Other/1").get(path).status_code == 200
    page = phone.get(path)
    resp = phone.post(path, data={"csrf_token": csrf_token(page.get_data(as_text=True)),
                                  "consent": "yes", "method": "drawn", "signature": drawn_png()})
    assert resp.status_code == 303, resp.get_data(as_text=True)[:2000]

    doc = last_document(app)
    assert (doc.signing_channel, doc.signed_ip, doc.signed_user_agent) == ("link", "198.51.100.7", PHONE_UA)
    with Session(app.extensions["returnprog.engine"], expire_on_commit=False) as s:
        link = s.get(SigningRequest, link.id)
        assert (link.opened_ip, link.opened_user_agent) == ("198.51.100.7", PHONE_UA)
        trail = s.execute(select(AuditEvent).where(AuditEvent.case_id == doc.case_id)
                          .order_by(AuditEvent.seq)).scalars().all()
    mine = [e for e in trail if json.loads(e.details).get("signing_request_id") == link.id]
    created = next(e for e in mine if e.action == "create_signing_link")
    codes = [e for e in mine if e.action.startswith("signing_code_")]
    signed = next(e for e in trail if e.action == "sign_document")
    assert json.loads(signed.details)["signed_at"] == doc.signed_at.isoformat() or \
        as_utc(dt.datetime.fromisoformat(json.loads(signed.details)["signed_at"])) == as_utc(doc.signed_at)
    expected = sorted(
        [("link_created", as_utc(created.at), created.ip, json.loads(created.details).get("user_agent"))]
        + [({"signing_code_sent": "code_sent", "signing_code_failed": "code_failed",
             "signing_code_verified": "code_verified"}[e.action], as_utc(e.at), e.ip,
            json.loads(e.details).get("user_agent")) for e in codes]
        + [("opened", as_utc(link.opened_at), link.opened_ip, link.opened_user_agent),
           ("consented", as_utc(doc.signed_at), doc.signed_ip, doc.signed_user_agent),
           ("signed", as_utc(doc.signed_at), doc.signed_ip, doc.signed_user_agent)],
        key=lambda e: e[1])
    assert [e[0] for e in expected][:1] == ["link_created"] and len(expected) == 7

    record = assert_certificate_lists(doc.pdf, expected, "Сертификат подписания")
    name = counsellor_name(app, staff)
    assert record["counsellor"] == name and record["signing_channel"] == "link"
    assert (record["kind"], record["version"], record["reference"]) == ("commitment", 1, reference)
    # The counsellor responsible is named in DTenV's box on the document itself too.
    first = pages(doc.pdf)[0] + pages(doc.pdf)[-2]
    assert f"Regievoerder / Консультант (regievoerder): {name}" in first
    assert_verifies_everywhere(app, tmp_path, doc.pdf, reference=reference, kind="commitment",
                               version=1, signer=signer.full_name)
    assert_verifiers_list(app, tmp_path, doc.pdf, record)
    assert_poppler_agrees(tmp_path, doc.pdf, record)


def test_a_cash_receipt_signed_on_the_tablet_says_the_office_and_lists_the_tablet_signing(
        app, staff, ctx_for, session, tmp_path):
    case = drive_to(ctx_for, staff, session, "support_paid", adults=1, minors=1)
    signer = adults_of(app, case.reference)[0]
    set_language(app, signer.id, "uk")
    web = web_for(app, staff.counsellor)
    web.client.environ_base.update({"HTTP_USER_AGENT": TABLET_UA})
    page = web.post(f"/cases/{case.reference}/tablet",
                    {"participant_id": signer.id, "kind": "payment_receipt"})
    assert page.status_code == 200
    preview = html.unescape(page.get_data(as_text=True))
    assert "готівкою, видано в офісі DTenV" in preview and "аеропорт" not in preview
    resp = web.post(f"/cases/{case.reference}/tablet/sign",
                    {"participant_id": signer.id, "kind": "payment_receipt", "consent": "yes",
                     "method": "typed", "typed_name": signer.full_name, **ID_CHECK})
    assert resp.status_code == 303, resp.get_data(as_text=True)[:2000]

    doc = last_document(app)
    assert (doc.kind, doc.signing_channel, doc.signed_user_agent) == ("payment_receipt", "tablet", TABLET_UA)
    text = " ".join(pages(doc.pdf))
    assert "contant, overhandigd op het kantoor van DTenV" in text
    assert "готівкою, видано в офісі DTenV" in text
    assert "luchthaven" not in text and "аеропорт" not in text
    at = as_utc(doc.signed_at)
    record = assert_certificate_lists(
        doc.pdf, [("consented", at, doc.signed_ip, TABLET_UA), ("signed", at, doc.signed_ip, TABLET_UA)],
        "Сертифікат підписання")
    name = counsellor_name(app, staff)
    assert record["counsellor"] == name and record["staff_present"] == name
    assert record["identity_document"] == doc.identity_document
    assert "tablet op het kantoor van DTenV" in pages(doc.pdf)[-1]
    assert_verifies_everywhere(app, tmp_path, doc.pdf, reference=case.reference,
                               kind="payment_receipt", version=doc.version, signer=signer.full_name)
    assert_verifiers_list(app, tmp_path, doc.pdf, record)
    assert_poppler_agrees(tmp_path, doc.pdf, record)


def test_a_cash_receipt_signed_through_a_link_says_the_point_of_departure(
        app, staff, ctx_for, session):
    case = drive_to(ctx_for, staff, session, "support_paid", adults=1, minors=1)
    signer = adults_of(app, case.reference)[0]
    set_language(app, signer.id, "en")
    path = create_link(web_for(app, staff.counsellor), case.reference, signer.id,
                       kind="payment_receipt")
    phone = client_from(app, "192.0.2.44", PHONE_UA)
    page = phone.get(path)
    assert "handed over at the point of departure" in html.unescape(page.get_data(as_text=True))
    resp = phone.post(path, data={"csrf_token": csrf_token(page.get_data(as_text=True)),
                                  "consent": "yes", "method": "typed",
                                  "typed_name": signer.full_name})
    assert resp.status_code == 303, resp.get_data(as_text=True)[:2000]
    text = " ".join(pages(last_document(app).pdf))
    assert "contant, overhandigd op de plaats van vertrek (luchthaven of grensovergang)" in text
    assert "in cash, handed over at the point of departure (airport or border crossing)" in text
    assert "kantoor van DTenV" not in text.split("Bewijscertificaat")[0]


def test_a_code_verified_signing_shows_the_code_events_on_its_certificate(
        app, staff, ctx_for, session):
    """End to end across items 1 and 4: a withdrawal declaration signed through a link
    after a wrong and then the right one-time code carries, on its certificate page and in
    its sealed event record, the code sent, the failed try and the verified code, in the
    order they happened, as the audit chain has them."""
    from .test_signing_support import pass_code

    case = drive_to(ctx_for, staff, session, "committed", adults=1, minors=0)
    signer = adults_of(app, case.reference)[0]
    set_language(app, signer.id, "en")
    path = create_link(web_for(app, staff.counsellor), case.reference, signer.id,
                       kind="withdrawal_declaration")
    client = client_from(app, "198.51.100.23", PHONE_UA)
    page = client.get(path).get_data(as_text=True)
    assert client.post(path + "/code", data={"csrf_token": csrf_token(page),
                                             "channel": "email"}).status_code == 303
    enter = client.get(path + "/code").get_data(as_text=True)
    assert client.post(path + "/code/check", data={"csrf_token": csrf_token(enter),
                                                   "code": "000000"}).status_code in (422, 303)
    pass_code(app, client, path)  # a fresh code, entered right
    body = client.get(path).get_data(as_text=True)
    resp = client.post(path, data={"csrf_token": csrf_token(body), "consent": "yes",
                                   "method": "typed", "typed_name": signer.full_name,
                                   "ack": "cond_irreversible"})
    assert resp.status_code == 303, resp.get_data(as_text=True)[:1500]
    doc = last_document(app)
    assert doc.signer_verification == "email_code"
    texts = pages(doc.pdf)
    start = next(i for i, t in enumerate(texts) if "Evidence certificate of the signing" in t)
    # More events run onto a second page; text extraction splits "One-time" at the line end.
    certificate = " ".join(texts[start:]).replace("- ", "-")
    for event in ("One-time code sent", "Wrong code entered", "One-time code entered correctly",
                  "Signed"):
        assert event in certificate, event
    record = json.loads(attached(doc.pdf, "signing-evidence.json"))
    kinds = [e["event"] for e in record["events"]]
    # Each code event names the participant's device, as the signing does.
    assert {e["user_agent"] for e in record["events"] if e["event"].startswith("code_")} == {
        PHONE_UA}
    assert kinds.index("code_sent") < kinds.index("code_verified") < kinds.index("signed")
    with Session(app.extensions["returnprog.engine"]) as s:
        chain = [e.action for e in s.execute(select(AuditEvent).where(
            AuditEvent.case_id == case.id).order_by(AuditEvent.seq)).scalars()
            if e.action.startswith("signing_code_")]
    recorded = [k for k in kinds if k.startswith("code_")]
    assert recorded == [a.replace("signing_", "") for a in chain]
