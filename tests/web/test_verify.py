"""Verification of signed PDFs — the service, the public page and ``flask verify-pdf``:
valid only when the seal is intact, made with the service's seal certificate, covers the
whole file and the file's hash is in the register. Every other file is refused with the
reason, garbage never causes a server error. An operator's check (``flask verify-pdf``)
is audited without personal data; anonymous checks from the public page only bump a daily
counter per verdict (issue 10: no audit event per anonymous upload)."""
from __future__ import annotations

import html
import io
import json
import os

import pypdf
import pytest
from sqlalchemy import select
from sqlmodel import Session

from returnprog import documents
from returnprog.models import AuditEvent, MetricCounter
from returnprog.services import signing as signing_service
from returnprog.services import verification

from ..conftest import intake
from .test_signing_support import (snapshot, trusted, verify_cli, verify_page,
                                   verify_service)
from ..web_client import csrf_token, text


def _blank_pdf() -> bytes:
    writer = pypdf.PdfWriter()
    writer.add_blank_page(595, 842)
    buf = io.BytesIO()
    writer.write(buf)
    return buf.getvalue()


def _with_incremental_update(pdf: bytes) -> bytes:
    """A well-formed incremental update after the seal, changing the first page."""
    from pyhanko.pdf_utils import generic
    from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter

    writer = IncrementalPdfFileWriter(io.BytesIO(pdf))
    page_ref = writer.root["/Pages"]["/Kids"][0]
    page = page_ref.get_object()
    page["/Rotate"] = generic.NumberObject(90)
    writer.update_container(page)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def _verification_events(app) -> list[AuditEvent]:
    with Session(app.extensions["returnprog.engine"]) as s:
        return s.execute(select(AuditEvent).where(AuditEvent.action == "verify_document")
                         .order_by(AuditEvent.seq)).scalars().all()


def _counter(app, name: str) -> int:
    with Session(app.extensions["returnprog.engine"]) as s:
        return sum(s.execute(select(MetricCounter.count)
                             .where(MetricCounter.name == name)).scalars())


@pytest.fixture
def signed(app, staff, ctx_for):
    """One commitment signed at the office and sealed with the app's seal."""
    from returnprog.services import cases as case_service
    from returnprog.web.sessions import seal

    ctx = ctx_for(staff.counsellor)
    case = case_service.open_case(ctx, intake(1, 0))
    person = case_service.case_data(ctx, case)["participants"][0]
    with app.app_context():
        ctx.seal = seal()
    return signing_service.sign_document(
        ctx, case.reference, person["id"], "commitment", {}, method="typed",
        typed_name="Olena Kovalenko", identity_document="paspoort FX1", consent=True)


def test_a_registered_sealed_pdf_is_valid_operator_checks_are_audited_and_page_checks_counted(
        app, signed, tmp_path):
    answer = verify_service(app, signed.pdf)
    assert answer.valid and answer.reasons == []
    assert answer.document["document_id"] == signed.id
    assert "DEVELOPMENT seal" in answer.sealed_by
    lines = verification.describe(answer)
    assert lines[0].startswith("VALID: case VRP-") and "commitment version 1" in lines[0]

    result = verify_cli(app, tmp_path, signed.pdf)
    assert result.exit_code == 0, result.output
    page = verify_page(app, signed.pdf, lang="nl")
    assert page.status_code == 200
    assert "Geldig" in page.get_data(as_text=True)
    page = verify_page(app, signed.pdf, lang="uk")
    assert "Дійсний" in page.get_data(as_text=True)

    events = _verification_events(app)
    assert [json.loads(e.details)["channel"] for e in events] == ["cli", "cli"]
    assert _counter(app, "verify.web.valid") == 2
    for event in events:
        details = json.loads(event.details)
        assert event.actor.startswith("verification:") and event.actor_id is None
        assert event.ip is None  # who asked is nobody's business
        assert details["valid"] is True and details["document_id"] == signed.id
        assert event.case_id == signed.case_id
        blob = event.details + event.actor
        assert signed.signer_name not in blob and "upload.pdf" not in blob
        assert "Olena" not in blob and "FX1" not in blob


def test_altered_foreign_and_unregistered_pdfs_are_refused_by_page_and_cli(
        app, signed, tmp_path):
    pdf = signed.pdf
    middle = len(pdf) // 3
    foreign = documents.ensure_dev_seal(tmp_path / "elsewhere")
    with app.app_context():
        from returnprog.web.sessions import seal
        ours = seal()
    corpus = {
        "flipped byte": (pdf[:middle] + bytes([pdf[middle] ^ 0x01]) + pdf[middle + 1:],
                         documents.REASON_CHANGED),
        "appended update": (_with_incremental_update(pdf), documents.REASON_APPENDED),
        "truncated": (pdf[: len(pdf) - 400], documents.REASON_UNREADABLE),
        "not in the register": (documents.seal_pdf(_blank_pdf(), ours, reason="test"),
                                documents.REASON_NOT_REGISTERED),
        "foreign seal": (documents.seal_pdf(_blank_pdf(), foreign, reason="forged"),
                         documents.REASON_UNTRUSTED),
        "no seal": (_blank_pdf(), documents.REASON_NO_SEAL),
    }
    texts_nl = {
        documents.REASON_CHANGED: "het bestand is gewijzigd nadat het is verzegeld",
        documents.REASON_APPENDED: "er is inhoud na het zegel toegevoegd",
        documents.REASON_UNREADABLE: "het bestand is geen leesbare PDF",
        documents.REASON_NOT_REGISTERED: "het document staat niet in het register",
        documents.REASON_UNTRUSTED: "een sleutel die de dienst niet vertrouwt",
        documents.REASON_NO_SEAL: "het bestand heeft geen zegel",
    }
    before = snapshot(app)
    for name, (data, reason) in corpus.items():
        answer = verify_service(app, data)
        assert not answer.valid and reason in answer.reasons, (name, answer.reasons)
        result = verify_cli(app, tmp_path, data, name=name.replace(" ", "-") + ".pdf")
        assert result.exit_code == 1, (name, result.output)
        assert result.output.startswith("INVALID: ") and reason in result.output, result.output
        page = verify_page(app, data, lang="nl")
        assert page.status_code == 200, name
        body = html.unescape(page.get_data(as_text=True))
        assert "Niet geldig" in body and texts_nl[reason] in body, (name, text(body)[:1500])
    after = snapshot(app)
    assert after.documents == before.documents  # checking never adds to the register
    assert after.audit_events == before.audit_events + 2 * len(corpus)  # service + CLI
    assert _counter(app, "verify.web.invalid") == len(corpus)
    assert verify_service(app, pdf).valid  # the original is untouched


def test_the_verification_page_answers_garbage_without_failing(app, tmp_path):
    client = app.test_client()
    form = client.get("/verify")
    assert form.status_code == 200
    assert form.headers["Cache-Control"] == "no-store"
    assert form.headers["Referrer-Policy"] == "no-referrer"
    body = form.get_data(as_text=True)
    assert 'enctype="multipart/form-data"' in body and 'type="file"' in body
    token = csrf_token(body)

    def upload(data, name="file.pdf", **extra):
        return client.post("/verify", data={"csrf_token": token, "lang": "en",
                                            "pdf": (io.BytesIO(data), name), **extra},
                           content_type="multipart/form-data")

    # Without the form's CSRF token: refused before anything is read.
    resp = client.post("/verify", data={"pdf": (io.BytesIO(b"%PDF-1.7"), "x.pdf")},
                       content_type="multipart/form-data")
    assert resp.status_code == 400
    # No file, an empty file, a file over the limit: a clear answer beside the field.
    resp = client.post("/verify", data={"csrf_token": token, "lang": "en"},
                       content_type="multipart/form-data")
    assert resp.status_code == 422 and "Choose a PDF file" in resp.get_data(as_text=True)
    resp = upload(b"")
    assert resp.status_code == 422 and "The file is empty" in resp.get_data(as_text=True)
    app.config["VERIFY_MAX_BYTES"] = 1024 * 1024
    resp = upload(b"%PDF-1.7\n" + os.urandom(1024 * 1024))
    assert resp.status_code == 413 and "too large" in resp.get_data(as_text=True)
    resp = upload(b"x" * (app.config["MAX_CONTENT_LENGTH"] + 10))
    assert resp.status_code == 413
    app.config["VERIFY_MAX_BYTES"] = 5 * 1024 * 1024

    garbage = [os.urandom(5000), b"%PDF-1.7\n" + os.urandom(5000), b"%PDF-1.4\n%%EOF\n",
               b"<html><script>alert(1)</script></html>", "привіт".encode() * 100,
               b"%PDF-1.7\n1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF",
               b"\x00" * 10000, _blank_pdf()[:200]]
    for data in garbage:
        resp = upload(data, name="../../etc/passwd")
        assert resp.status_code == 200, resp.status_code
        page = html.unescape(resp.get_data(as_text=True))
        assert "Not valid" in page
        assert "<script>alert(1)</script>" not in page
    assert _verification_events(app) == []  # anonymous uploads are not audited …
    assert _counter(app, "verify.web.invalid") == len(garbage)  # … but counted


def test_verification_uploads_are_rate_limited(app):
    app.config["VERIFY_RATE_LIMIT"] = 3
    client = app.test_client()
    token = csrf_token(client.get("/verify").get_data(as_text=True))
    statuses = [client.post("/verify", data={"csrf_token": token,
                                             "pdf": (io.BytesIO(b"nope"), "x.pdf")},
                            content_type="multipart/form-data").status_code
                for _ in range(5)]
    assert statuses == [200, 200, 200, 429, 429]


def test_trusted_certificates_include_retired_ones(app, tmp_path):
    retired = documents.ensure_dev_seal(tmp_path / "retired")
    path = tmp_path / "retired-cert.pem"
    path.write_bytes(retired.cert_pem)
    app.config["SEAL_TRUSTED_CERT_PATHS"] = [str(path)]
    certs = trusted(app)
    assert len(certs) == 2 and retired.cert_pem in certs
    with pytest.raises(ValueError):
        verification.trusted_cert_pems(None, [])
