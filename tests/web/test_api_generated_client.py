"""One household from intake to departure through a client generated from the served
OpenAPI document (issue 14: "an integrator can run a household through the API alone").

``openapi-python-client`` (pinned in requirements.txt) generates the client from
``/api/v1/openapi.json`` into the test's folder; the client talks to the Flask app through
an httpx WSGI transport. Every staff step goes through the generated functions: the case,
signing links and a tablet session, the documents and their PDFs, a verification, the IND
confirmations, the actions, the payment (proposed by the counsellor, approved with a
supervisor's token, paid with finance's, each naming the version it read) and the
departure. Only the participant uses a
browser, on the link pages, as a person would: the one-time code from their mail, the
acknowledgement boxes, their typed name.

The generated functions are found by operationId (whatever tag package the generator puts
them in). The integrator subscribes to webhooks first and, once the scheduler's delivery
has run, has received every state change, signature and payment event, signed.
"""
from __future__ import annotations

import datetime as dt
import importlib
import inspect
import io
import json
import pkgutil
import subprocess
import sys
import time
import typing
from http import HTTPStatus
from pathlib import Path

import httpx
import pytest
from pypdf import PdfReader

from sqlmodel import Session
from standardwebhooks.webhooks import Webhook

from returnprog.services import outbox, webhooks
from returnprog.webhooks import EVENT_TYPES

from ..conftest import intake
from ..integration.test_webhooks_delivery import Receiver
from .test_api_signing import sign_as_participant

PACKAGE = "returnprog_generated_client"
TODAY = dt.date.today()


class Generated:
    """The generated client package and the app's routes, to call operations by id."""

    def __init__(self, package, app, spec: dict):
        self.package, self.app, self.spec = package, app, spec
        self.api = importlib.import_module(package.__name__ + ".api")
        self.types = importlib.import_module(package.__name__ + ".types")
        self.modules = {name.rsplit(".", 1)[1]: name for _, name, is_pkg in pkgutil.walk_packages(
            self.api.__path__, self.api.__name__ + ".") if not is_pkg}

    def _module(self, operation_id: str):
        # Every operation is named in the document (tests/web/test_openapi_document.py).
        if operation_id not in self.modules:
            raise LookupError(f"no generated operation {operation_id}")
        return importlib.import_module(self.modules[operation_id])

    def call(self, operation_id: str, client, *args, body=None, expect=HTTPStatus.OK, **params):
        """``operation_id`` called with path ``args``; ``body`` a dict (made into the
        generated model the function takes) or a generated model; enum parameters given as
        their values. Returns the response, its status checked against ``expect``."""
        function = self._module(operation_id).sync_detailed
        signature = inspect.signature(function)
        hints = typing.get_type_hints(function)
        values = list(args)
        for i, (name, parameter) in enumerate(list(signature.parameters.items())[:len(args)]):
            kind = hints.get(name)
            if isinstance(kind, type) and issubclass(kind, __import__("enum").Enum):
                values[i] = kind(args[i])
        if isinstance(body, dict):
            body = self.model(hints["body"], body, operation_id).from_dict(body)
        if body is not None:
            params["body"] = body
        response = function(*values, client=client, **params)
        assert response.status_code == expect, (operation_id, response.status_code,
                                                response.content[:1000])
        return response

    @staticmethod
    def model(annotation, payload: dict, operation_id: str):
        """The generated model class a body annotation names: exactly one, since every
        operation has its own request schema (no union a body could match twice)."""
        options = [t for t in typing.get_args(annotation) or (annotation,)
                   if hasattr(t, "from_dict")]
        assert len(options) == 1, (operation_id, options)
        return options[0]


@pytest.fixture
def generated(app, tmp_path):
    """The client generated from the served document, imported; and the time it took."""
    spec = app.test_client().get("/api/v1/openapi.json").get_json()
    (tmp_path / "openapi.json").write_text(json.dumps(spec))
    # No post hooks (ruff would reformat; nothing is fetched either way); PDFs as files.
    (tmp_path / "config.yaml").write_text(
        "post_hooks: []\ncontent_type_overrides:\n  application/pdf: application/octet-stream\n")
    tool = Path(sys.executable).parent / "openapi-python-client"
    started = time.monotonic()
    done = subprocess.run([str(tool), "generate", "--path", str(tmp_path / "openapi.json"),
                           "--output-path", str(tmp_path / PACKAGE), "--meta", "none",
                           "--config", str(tmp_path / "config.yaml")],
                          capture_output=True, text=True, timeout=300)
    seconds = time.monotonic() - started
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    print(f"\nopenapi-python-client generated the client in {seconds:.2f} s")
    sys.path.insert(0, str(tmp_path))
    try:
        yield Generated(importlib.import_module(PACKAGE), app, spec)
    finally:
        sys.path.remove(str(tmp_path))
        for name in [n for n in sys.modules if n == PACKAGE or n.startswith(PACKAGE + ".")]:
            del sys.modules[name]


def _clients(generated, app, api_staff) -> dict:
    transport = httpx.WSGITransport(app=app)
    return {role: generated.package.AuthenticatedClient(
        base_url="http://testserver", token=api_staff.headers[role]["Authorization"].split()[1],
        httpx_args={"transport": transport}, raise_on_unexpected_status=True)
        for role in ("counsellor", "supervisor", "finance")}


def _deliver_webhooks(app) -> None:
    """What the scheduler's webhook job does, once: POST every due delivery."""
    with Session(app.extensions["returnprog.engine"]) as session:
        webhooks.deliver_due(session, webhooks.HttpSender(5.0),
                             outbox.RetryPolicy(max_attempts=3, base_seconds=0),
                             webhooks.WebhookSettings(timeout=5.0, allow_loopback=True),
                             secret_key=app.config["SECRET_KEY"])


def test_one_household_from_intake_to_departure_through_the_generated_client(
        app, api_staff, generated):
    g, c = generated, _clients(generated, app, api_staff)
    counsellor = c["counsellor"]
    # The integrator subscribes to every event first, with a receiver on loopback.
    app.config["WEBHOOK_ALLOW_LOOPBACK"] = True
    receiver = Receiver().__enter__()
    subscription = g.call("create_webhook", counsellor, body={
        "url": receiver.url, "events": list(EVENT_TYPES)}, expect=HTTPStatus.CREATED).parsed
    # Intake.
    opened = g.call("create_case", counsellor, body=json.loads(json.dumps(
        intake(adults=2, minors=1), default=str)), expect=HTTPStatus.CREATED).parsed
    ref = opened.reference
    adults = {p.id: f"{p.given_names_latin} {p.family_name_latin}"
              for p in opened.participants if p.is_adult}
    assert len(adults) == 2 and opened.state == "intake"

    def read():
        return g.call("get_case", counsellor, ref).parsed

    def act(action: str, who: str = "counsellor", **payload):
        # One generated function per action (operationId action_<action>), each with its
        # own body model; actions without fields take no body.
        return g.call(f"action_{action}", c[who], ref, body=payload or None).parsed

    def sign_all(kind: str, **terms):
        for pid, name in adults.items():
            link = g.call("create_signing_link", counsellor, ref, body={
                "participant_id": pid, "kind": kind, "terms": terms},
                expect=HTTPStatus.CREATED)
            assert link.headers["cache-control"] == "no-store"
            signed, _ = sign_as_participant(app, link.parsed.url, name)
            assert signed.status_code == 303, (kind, signed.status_code)

    # Commitment, through personal links.
    sign_all("commitment")
    assert act("confirm_commitment").state == "committed"
    # Withdrawal declarations (a one-time code from the signer's mail), IND confirmations.
    sign_all("withdrawal_declaration")
    for person in read().participants:
        if person.asylum_application_pending:
            g.call("add_ind_confirmation", counsellor, ref, body={
                "participant_id": person.id, "ind_reference": f"IND-{person.id:06d}",
                "confirmed_on": TODAY.isoformat()}, expect=HTTPStatus.CREATED)
    assert act("record_withdrawal").state == "asylum_withdrawn"
    # The departure agreement with its deadline.
    deadline = (TODAY + dt.timedelta(days=30)).isoformat()
    sign_all("departure_agreement", departure_deadline=deadline)
    agreed = act("agree_departure", departure_deadline=deadline)
    assert agreed.state == "departure_agreed"
    # The support: proposed in cash, approved by a supervisor, paid out by finance.
    proposed = g.call("propose_case_payment", counsellor, ref, body={"method": "cash"},
                      expect=HTTPStatus.CREATED).parsed
    approved = g.call("approve_case_payment", c["supervisor"], ref, proposed.id,
                      body={"version": proposed.version}).parsed
    assert approved.status == "approved" and approved.approved_by.name
    paid = g.call("pay_case_payment", c["finance"], ref, approved.id, body={
        "version": approved.version, "idempotency_key": f"pay-{ref}"}).parsed
    assert paid.status == "disbursed"
    assert read().state == "support_paid"
    # The cash receipt, signed in person on the office tablet (a tablet session).
    for pid, name in adults.items():
        session = g.call("create_tablet_session", counsellor, ref, body={
            "participant_id": pid, "kind": "payment_receipt",
            "identity_document": {"type": "passport", "number": f"FX{pid:06d}"}},
            expect=HTTPStatus.CREATED).parsed
        assert session.channel == "tablet"
        assert sign_as_participant(app, session.url, name)[0].status_code == 303
    links = g.call("list_signing_links", counsellor, ref).parsed.items
    assert len(links) == 8 and {ln.status for ln in links} == {"used"}

    # Every document listed, downloaded and opened; one verified.
    documents = g.call("list_documents", counsellor, ref).parsed.items
    assert sorted((d.kind, d.participant_id) for d in documents) == sorted(
        (kind, pid) for pid in adults for kind in (
            "commitment", "withdrawal_declaration", "departure_agreement", "payment_receipt"))
    pdfs = {}
    for doc in documents:
        assert doc.status == "current" and doc.download.endswith(f"/documents/{doc.id}")
        pdf = g.call("download_document", counsellor, ref, doc.id)
        assert pdf.headers["content-type"] == "application/pdf"
        assert pdf.headers["etag"] == f'"{doc.sha256}"'
        pdfs[doc.id] = pdf.content
        assert adults[doc.participant_id] in "".join(
            page.extract_text() for page in PdfReader(io.BytesIO(pdf.content)).pages)
    receipt = next(d for d in documents if d.kind == "payment_receipt")
    body_type = Generated.model(typing.get_type_hints(
        g._module("verify_pdf").sync_detailed)["body"], {}, "verify_pdf")
    upload = body_type(file=g.types.File(payload=io.BytesIO(pdfs[receipt.id]),
                                                 file_name="receipt.pdf",
                                                 mime_type="application/pdf"))
    verdict = g.call("verify_pdf", counsellor, body=upload).parsed
    assert verdict.valid and verdict.registered
    # (as a dict: under OpenAPI 3.0 apispec writes a nullable nested object as an anyOf
    # that generators read as a free-form object; 3.1 gives the typed model)
    registered = verdict.document.to_dict()
    assert (registered["reference"], registered["kind"], registered["signing_channel"]) == \
        (ref, "payment_receipt", "tablet")

    # Departure.
    departed = act("confirm_departure", departed_on=TODAY.isoformat(), evidence="boarding")
    assert departed.state == "departed" and departed.departed_on == TODAY

    # What happened reached the integrator as signed webhooks, each state change in order.
    try:
        _deliver_webhooks(app)
    finally:
        receiver.__exit__(None, None, None)
    events = [Webhook(subscription.secret).verify(body, headers)
              for headers, body in receiver.requests]
    changes = [(e["data"]["from"], e["data"]["to"]) for e in events
               if e["type"] == "case.state_changed"]
    assert changes == [(None, "intake"), ("intake", "committed"),
                       ("committed", "asylum_withdrawn"), ("asylum_withdrawn", "departure_agreed"),
                       ("departure_agreed", "support_paid"), ("support_paid", "departed")]
    assert sum(e["type"] == "document.signed" for e in events) == len(documents)
    assert [e["type"] for e in events if e["type"].startswith("payment.")] == [
        "payment.approved", "payment.disbursed"]
    assert {e["data"]["case"] for e in events} == {ref}
    log = g.call("list_webhook_deliveries", counsellor, subscription.id).parsed
    assert {d.status for d in log.items} == {"delivered"}
