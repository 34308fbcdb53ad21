"""Helpers for the web-page tests: a signed-in test client that sends CSRF tokens, and a
small world of cases (own team, other team) built through the real services."""
from __future__ import annotations

import datetime as dt
import html
import re
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlmodel import Session

from returnprog import auth, workflow
from returnprog.models import AuditEvent, Case, Document
from returnprog.services import accounts as account_service
from returnprog.services import case_files as case_file_service
from returnprog.services import cases as case_service
from returnprog.services import batches as batch_service
from returnprog.services import payment as payment_service

from .conftest import drive_to, fake_sign, intake

PASSWORD = "correct horse battery"
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_token(page_html: str) -> str:
    match = CSRF.search(page_html)
    assert match, "no CSRF token on the page"
    return match.group(1)


def text(page_html: str) -> str:
    """The page as plain text (tags dropped, entities decoded, white space folded)."""
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", page_html))).strip()


class Web:
    """A test client that signs in and adds the CSRF token to every POST."""

    def __init__(self, client):
        self.client = client
        self.token = None

    def refresh_token(self, path: str = "/login") -> str:
        page = self.client.get(path)
        self.token = csrf_token(page.get_data(as_text=True))
        return self.token

    def sign_in(self, email: str, password: str = PASSWORD, expect: int = 303):
        self.refresh_token("/login")
        resp = self.client.post("/login", data={"csrf_token": self.token, "email": email,
                                                "password": password})
        assert resp.status_code == expect, resp.get_data(as_text=True)[:2000]
        if expect == 303:
            self.refresh_token("/")
        return resp

    def get(self, path: str, **kw):
        return self.client.get(path, **kw)

    def post(self, path: str, data: dict | None = None, token: bool = True, **kw):
        data = dict(data or {})
        if token:
            data.setdefault("csrf_token", self.token)
        return self.client.post(path, data=data, **kw)


def web_for(app, user=None) -> Web:
    web = Web(app.test_client())
    if user is not None:
        web.sign_in(user.email)
    else:
        web.refresh_token("/login")
    return web


@dataclass
class World:
    """Two cases: ``own`` (team Noord, departure agreed, an approved bank transfer that is
    in a finance export) and ``other`` (team Zuid, intake, a signed commitment)."""

    own: str
    other: str
    own_doc: int
    other_doc: int
    victim_id: int
    batch_id: int
    # A second administrator's pending request (a new supervisor) the first may decide.
    request_id: int = 0
    # An evidence file on each case.
    own_evidence: int = 0
    other_evidence: int = 0
    # An access request (issue 16) for the own case's principal, registered by the records
    # manager.
    access_request_id: int = 0


def build_world(staff, ctx_for, session) -> World:
    own = drive_to(ctx_for, staff, session, "departure_agreed", adults=2, minors=1)
    payment_service.propose(ctx_for(staff.counsellor), own.reference, {
        "method": "transfer", "iban": "NL91ABNA0417164300", "account_holder": "O. Kovalenko"})
    payment_service.approve(ctx_for(staff.supervisor), own.reference)
    # A batch of another case's released transfer (own stays waiting for its payout).
    paid = drive_to(ctx_for, staff, session, "departure_agreed", adults=1, minors=0)
    payment_service.propose(ctx_for(staff.counsellor), paid.reference, {
        "method": "transfer", "iban": "NL91ABNA0417164300", "account_holder": "O. Kovalenko"})
    payment_service.approve(ctx_for(staff.supervisor), paid.reference)
    payment_service.disburse(ctx_for(staff.finance), paid.reference,
                             {"idempotency_key": f"pay-{paid.reference}"})
    batch = batch_service.create_batch(ctx_for(staff.finance))
    other = case_service.open_case(ctx_for(staff.other_counsellor), intake(1, 0))
    fake_sign(session, other, workflow.COMMITMENT)
    doc = lambda ref: session.execute(  # noqa: E731
        select(Document.id).join_from(Document, Case,
                                      Document.case_id == Case.id)
        .where(Case.reference == ref).limit(1)).scalar_one()
    admin2 = auth.create_user(session, email="ada@dtenv.example", role="admin",
                              password=PASSWORD, person="P-2002")
    pending = account_service.create_user(ctx_for(admin2), {
        "email": "nova@dtenv.example", "role": "supervisor", "person": "P-2003",
        "password": PASSWORD, "team": "Team Noord"})
    own_file = case_file_service.upload_evidence(ctx_for(staff.counsellor), own.reference,
                                                 "other", TINY_PDF, "proof.pdf", None)
    other_file = case_file_service.upload_evidence(ctx_for(staff.other_counsellor),
                                                   other.reference, "other", TINY_PDF,
                                                   "proof.pdf", None)
    from returnprog.models import Participant
    from returnprog.services import access_requests

    principal = session.execute(select(Participant.id).join(Case, Case.id == Participant.case_id)
                                .where(Case.reference == own.reference,
                                       Participant.is_principal)).scalar_one()
    access = access_requests.register(ctx_for(staff.records), {
        "reference": own.reference, "participant_id": principal, "received_on": dt.date.today(),
        "received_via": "letter", "identity_document_type": "passport",
        "identity_document_last4": "1234"})
    return World(own=own.reference, other=other.reference, own_doc=doc(own.reference),
                 other_doc=doc(other.reference), victim_id=staff.counsellor2.id,
                 batch_id=batch.id, request_id=pending.id, own_evidence=own_file["id"],
                 other_evidence=other_file["id"], access_request_id=access.id)


def tiny_pdf(text: str = "evidence") -> bytes:
    """A real one-page PDF (pypdf), for upload tests."""
    import io

    import pypdf

    writer = pypdf.PdfWriter()
    writer.add_blank_page(width=200, height=200)
    writer.add_metadata({"/Title": text})
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


TINY_PDF = tiny_pdf()


def audit_count(engine) -> int:
    with Session(engine) as s:
        return s.execute(select(func.count()).select_from(AuditEvent)).scalar_one()
