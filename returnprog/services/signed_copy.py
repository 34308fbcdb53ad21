"""The signer's own copy of a sealed document (issue 12 item 3): e-mailed through the
outbox (the PDF attached at delivery, read from the document row), downloadable for a short
while from the browser that signed through a personal link, and e-mailed or printed from
the office tablet. Also the sentence saying what happens next after each kind of document.

No Flask: the web layer keeps the browser binding (a signed cookie) and calls in here.
"""
from __future__ import annotations

import datetime as dt

from sqlalchemy import select

from .. import audit, mailtext, workflow
from .. import reminders as plan
from ..glossary import N_
from ..messages import M
from ..models import Case, Document, Participant, SigningRequest, User
from ..roles import SIGNATURE_TAKERS
from . import Context, Forbidden, Invalid, NotFound
from .access import record_look
from .lookups import load_case
from .outbox import enqueue
from .uow import atomic, begin_write, commit

SIGNED_COPY = "signed_copy"  # outbox kind
# How long after signing the browser that signed may download its copy.
DOWNLOAD_WINDOW = dt.timedelta(minutes=30)

# What happens after each document is signed, as the signer reads it (DESIGN §2 workflow).
NEXT_STEPS = {
    workflow.COMMITMENT: N_(
        "What happens next: when every adult of your household has signed this declaration, "
        "your counsellor records your participation and then discusses the withdrawal of the "
        "asylum application with you."),
    workflow.WITHDRAWAL_DECLARATION: N_(
        "What happens next: your counsellor sends this declaration to the IND. When the IND "
        "has confirmed the withdrawal, your counsellor contacts you about the departure "
        "agreement."),
    workflow.DEPARTURE_AGREEMENT: N_(
        "What happens next: you leave the Netherlands no later than the departure deadline "
        "in the agreement. When every adult of your household has signed, DTenV arranges "
        "the payment of the support."),
    workflow.ADDENDUM: N_(
        "What happens next: the new departure deadline in this addendum applies once your "
        "counsellor's supervisor has recorded the extension. Until then the earlier deadline "
        "applies."),
    workflow.PAYMENT_RECEIPT: N_(
        "What happens next: this receipt confirms the support you received. Keep it with "
        "your travel documents; your counsellor records your departure."),
}


def next_step(kind: str | None, gettext) -> str:
    """The sentence saying what happens after ``kind`` is signed, in ``gettext``'s
    language (empty for an unknown kind)."""
    return gettext(NEXT_STEPS[kind]) if kind in NEXT_STEPS else ""


def _languages(lang: str) -> tuple[str, str]:
    """The participant's language first, then Dutch (English after Dutch for Dutch
    speakers): the signer reads their own copy's mail in their language first."""
    lang = lang if lang in plan.LANGUAGES else "en"
    return ("nl", "en") if lang == "nl" else (lang, "nl")


def copy_message(case: Case, person: Participant, doc: Document,
                 counsellor: User | None = None) -> plan.Message:
    """The e-mail carrying ``doc`` to its signer (no attachment bytes: the outbox attaches
    the document at delivery)."""
    r = plan.Recipient(email=person.email.strip(), language=person.language,
                       name=f"{person.given_names_latin} {person.family_name_latin}".strip(),
                       native_name=" ".join(x for x in (person.given_names_cyrillic,
                                                         person.family_name_cyrillic) if x))
    contact = ""
    if counsellor is not None:
        contact = f"{counsellor.name} ({counsellor.email})" if counsellor.name else counsellor.email
    parts = {lang: mailtext.render(
        "participant_copy", lang, name=r.name_in(lang), role="participant",
        document_kind=doc.kind, signed=plan.format_moment(doc.signed_at, lang),
        next_step=next_step(doc.kind, mailtext.translations(lang).gettext),
        contact=contact, reference=case.reference) for lang in _languages(person.language)}
    subject, text, body_html = plan.render(parts)
    return plan.Message(
        key=plan.idempotency_key(case.id, SIGNED_COPY, f"doc{doc.id}", r.email),
        case_id=case.id, kind=SIGNED_COPY, recipient=r.email, language=_languages(
            person.language)[0], subject=subject, body_text=text, body_html=body_html,
        document_id=doc.id)


def attachment_name(reference: str, doc) -> str:
    """The file name of a signed copy (no personal identifiers)."""
    return f"{reference}-{doc.kind}-v{doc.version}.pdf"


def queue_copy_email(ctx: Context, case: Case, person: Participant, doc: Document) -> bool:
    """Queue the sealed copy to the signer's registered e-mail address, in the caller's
    transaction (the caller commits); False when they have none or it was queued before."""
    if not (person.email or "").strip():
        return False
    counsellor = ctx.session.get(User, case.counsellor_id)
    return enqueue(ctx.session, [copy_message(case, person, doc, counsellor)],
                   now=ctx.now()) == 1


def _case_document(ctx: Context, case: Case, document_id: int) -> Document:
    doc = ctx.session.get(Document, document_id)
    if doc is None or doc.case_id != case.id:
        ctx.session.rollback()
        raise NotFound("case.no_document", id=document_id, ref=case.reference)
    return doc


@atomic
def email_copy(ctx: Context, reference: str, document_id: int) -> bool:
    """A counsellor (after a signature on the office tablet) has the sealed copy e-mailed
    to its signer; True when queued now, False when it was queued already."""
    if ctx.actor is None or ctx.actor.role not in SIGNATURE_TAKERS:
        raise Forbidden("signing.office_role")
    begin_write(ctx.session)
    case = load_case(ctx, reference)
    doc = _case_document(ctx, case, document_id)
    person = ctx.session.get(Participant, doc.participant_id) if doc.participant_id else None
    if person is None or doc.signed_at is None:
        raise Invalid("signing.copy_not_signed", {None: [M("signing.copy_not_signed")]})
    if not (person.email or "").strip():
        raise Invalid("signing.copy_no_email", {None: [M("signing.copy_no_email")]})
    queued = queue_copy_email(ctx, case, person, doc)
    if queued:
        audit.append(ctx.session, actor=ctx.actor, action="email_signed_copy", case_id=case.id,
                     details={"document_id": doc.id, "kind": doc.kind, "version": doc.version,
                              "participant_id": person.id}, ip=ctx.ip)
    commit(ctx)
    return queued


def copy_for_signer(ctx: Context, document_id: int, link_id: int) -> Document:
    """The sealed copy for the browser that just signed it through link ``link_id``:
    the link must be the one that produced the document and the signature at most
    ``DOWNLOAD_WINDOW`` old. The download is recorded in the access log as the
    participant's own. Raises NotFound otherwise (one answer for every refusal)."""
    link = ctx.session.get(SigningRequest, link_id)
    doc = ctx.session.get(Document, document_id)
    signed_at = doc.signed_at if doc is not None else None
    if signed_at is not None and signed_at.tzinfo is None:
        signed_at = signed_at.replace(tzinfo=dt.timezone.utc)
    if (link is None or doc is None or link.document_id != doc.id or signed_at is None
            or not (signed_at <= ctx.now() <= signed_at + DOWNLOAD_WINDOW)):
        ctx.session.rollback()
        raise NotFound("signing.copy_not_signed")
    reader = Context(session=ctx.session, policy=ctx.policy,
                     actor=f"participant:{doc.participant_id}", ip=ctx.ip,
                     user_agent=ctx.user_agent, channel="link", now=ctx.now, today=ctx.today)
    record_look(reader, doc.case_id, "document", subject=str(doc.id))
    return doc
