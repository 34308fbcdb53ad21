"""Use cases of signing: a participant signs one document (at the office tablet or through
a personal link); the signed PDF is rendered, sealed and stored with its SHA-256."""
from __future__ import annotations

import datetime as dt
import hashlib
import json

from sqlalchemy import func, select

from .. import audit, workflow
from ..db import begin_write
from ..models import Document, Participant
from ..workflow import State
from . import Conflict, Context, Invalid
from .cases import case_data, commit, load_case

SIGNABLE_KINDS = (workflow.COMMITMENT, workflow.WITHDRAWAL_DECLARATION,
                  workflow.DEPARTURE_AGREEMENT, workflow.ADDENDUM, workflow.PAYMENT_RECEIPT)

# Which documents can be signed in which state: signing ahead of the step is fine,
# signing after the case has moved past it is not.
SIGNING_STATES = {
    workflow.COMMITMENT: {State.INTAKE},
    workflow.WITHDRAWAL_DECLARATION: {State.INTAKE, State.COMMITTED},
    workflow.DEPARTURE_AGREEMENT: {State.COMMITTED, State.ASYLUM_WITHDRAWN},
    workflow.ADDENDUM: {State.DEPARTURE_AGREED},
    workflow.PAYMENT_RECEIPT: {State.DEPARTURE_AGREED, State.SUPPORT_PAID},
}


def document_data(ctx: Context, case, participant: Participant, kind: str, terms: dict) -> dict:
    """The plain data a document template is rendered from (no ORM objects)."""
    full = case_data(ctx, case)
    people = [{k: (v.isoformat() if isinstance(v, dt.date) else v) for k, v in p.items()
               if k in ("given_names_latin", "family_name_latin", "given_names_cyrillic",
                        "family_name_cyrillic", "date_of_birth", "is_adult", "relationship",
                        "is_principal")} for p in full["participants"]]
    signer = next(p for p in people if p is not None and
                  p["given_names_latin"] == participant.given_names_latin and
                  p["family_name_latin"] == participant.family_name_latin)
    payment = next((p for p in reversed(full["payments"])
                    if p["status"] in ("approved", "disbursed")), None)
    return {
        "kind": kind, "reference": case.reference, "participants": people, "signer": signer,
        "destination_oblast": case.destination_oblast, "destination_place": case.destination_place,
        "departure_deadline": terms.get("departure_deadline") or (
            case.departure_deadline.isoformat() if case.departure_deadline else None),
        "previous_deadline": case.departure_deadline.isoformat() if case.departure_deadline else None,
        "reason": terms.get("reason"),
        "amount_cents": payment["amount_cents"] if payment else None,
        "breakdown": payment["breakdown"] if payment else None,
        "method": payment["method"] if payment else None,
        "reception_end": ctx.policy.reception_end.isoformat(),
        "issued_at": ctx.now().isoformat(timespec="seconds"),
    }


def validate_terms(ctx: Context, case, kind: str, terms: dict) -> dict:
    """Check that the terms fit the document kind; returns them normalised to JSON types."""
    if kind not in SIGNABLE_KINDS:
        raise Invalid("Unknown document kind.", {"kind": [f"One of: {', '.join(SIGNABLE_KINDS)}."]})
    if State(case.state) not in SIGNING_STATES[kind]:
        raise Conflict(f"A {kind.replace('_', ' ')} cannot be signed while the case is {case.state}.",
                       [{"code": "wrong_state", "message": f"The case is {case.state}."}])
    out = {}
    if kind in (workflow.DEPARTURE_AGREEMENT, workflow.ADDENDUM):
        deadline = terms.get("departure_deadline")
        if isinstance(deadline, str):
            try:
                deadline = dt.date.fromisoformat(deadline)
            except ValueError:
                deadline = None
        problems = workflow.deadline_problems(deadline, ctx.today(), ctx.policy)
        if problems:
            raise Invalid("The departure deadline is not acceptable.",
                          {"departure_deadline": [p.message for p in problems]})
        out["departure_deadline"] = deadline.isoformat()
    if kind == workflow.ADDENDUM:
        reason = (terms.get("reason") or "").strip()
        if not reason:
            raise Invalid("A reason is required.", {"reason": ["Say why the deadline is extended."]})
        out["reason"] = reason[:2000]
    return out


def sign_document(ctx: Context, reference: str, participant_id: int, kind: str, terms: dict, *,
                  method: str, typed_name: str | None = None, image_data_uri: str | None = None,
                  channel: str, identity_document: str | None = None,
                  consent: bool = False, signer_label: str | None = None) -> Document:
    """Render, sign, seal and store one document for one participant.

    Called by the tablet flow (a counsellor present) and the link flow (the participant
    alone); in both, consent must have been given and the signature is drawn or typed.
    """
    from .. import documents

    if not consent:
        raise Invalid("Consent is required.", {"consent": ["Tick that you have read and understood."]})
    if method == "drawn" and not (image_data_uri or "").startswith("data:image/png;base64,"):
        raise Invalid("Draw your signature.", {"signature": ["No signature was drawn."]})
    if method == "typed" and not (typed_name or "").strip():
        raise Invalid("Type your full name.", {"typed_name": ["Type your full name to sign."]})
    if method not in ("drawn", "typed"):
        raise Invalid("Unknown signing method.", {"method": ["Choose drawn or typed."]})
    begin_write(ctx.session)
    case = load_case(ctx, reference) if ctx.actor is not None else _case_by_ref(ctx, reference)
    person = ctx.session.get(Participant, participant_id)
    if person is None or person.case_id != case.id:
        raise Invalid("Unknown participant.", {"participant_id": ["Not a participant of this case."]})
    if kind != workflow.PAYMENT_RECEIPT and person.age_on(ctx.today()) < ctx.policy.adult_age:
        raise Invalid("Minors do not sign.", {"participant_id": ["This participant is a minor."]})
    terms = validate_terms(ctx, case, kind, terms)
    signed_at = ctx.now()
    data = document_data(ctx, case, person, kind, terms)
    data["signature"] = {"method": method, "typed_name": (typed_name or "").strip() or None,
                         "image_png_data_uri": image_data_uri if method == "drawn" else None,
                         "signed_at": signed_at.isoformat(timespec="seconds"),
                         "signer_name": person.full_name, "identity_document": identity_document,
                         "channel": channel}
    pdf = documents.render_pdf(kind, data, person.language)
    sealed = documents.seal_pdf(pdf, ctx.seal, reason=f"{kind} {case.reference}")
    version = (ctx.session.execute(select(func.max(Document.version)).where(
        Document.case_id == case.id, Document.kind == kind,
        Document.participant_id == person.id)).scalar_one() or 0) + 1
    doc = Document(case_id=case.id, participant_id=person.id, kind=kind, version=version,
                   language=person.language, terms=json.dumps(terms, sort_keys=True),
                   signer_name=person.full_name, signature_method=method,
                   signing_channel=channel, identity_document=identity_document,
                   signed_at=signed_at, signed_ip=ctx.ip, signed_user_agent=ctx.user_agent,
                   pdf=sealed, sha256=hashlib.sha256(sealed).hexdigest(),
                   created_by=getattr(ctx.actor, "id", None))
    ctx.session.add(doc)
    ctx.session.flush()
    audit.append(ctx.session, actor=ctx.actor or signer_label or f"participant:{person.id}",
                 action="sign_document", case_id=case.id,
                 details={"document_id": doc.id, "kind": kind, "version": version,
                          "participant_id": person.id, "method": method, "channel": channel,
                          "user_agent": ctx.user_agent, "sha256": doc.sha256, **terms},
                 ip=ctx.ip)
    commit(ctx)
    return doc


def _case_by_ref(ctx: Context, reference: str):
    from ..models import Case
    from . import NotFound

    case = ctx.session.execute(select(Case).where(Case.reference == reference)).scalar_one_or_none()
    if case is None:
        raise NotFound("No such case.")
    return case
