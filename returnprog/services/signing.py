"""Use cases of signing: a participant signs one document (at the office tablet or through
a personal link); the signed PDF is rendered, sealed and stored with its SHA-256."""
from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging

from sqlalchemy import bindparam, func, select, update
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm.attributes import set_committed_value

from .. import acknowledgements, audit, documents, names, payments, workflow
from .. import signature as signature_rules
from ..auth import hash_token, new_token
from ..models import AuditEvent, Case, Document, Participant, Payment, SigningRequest, User
from ..roles import SIGNATURE_TAKERS
from ..workflow import State
from . import Conflict, Context, Forbidden, Invalid, NotFound, signing_codes
from .lookups import load_case, user_refs
from .uow import atomic, begin_write, commit
from ..messages import M

log = logging.getLogger(__name__)

# Which documents can be signed in which state: read off the workflow table.
SIGNABLE_KINDS = workflow.SIGNABLE_KINDS
SIGNING_STATES = workflow.SIGNING_STATES


def _household(ctx: Context, case) -> dict:
    """The participants and payments of ``case`` in ``case_data``'s shapes, read without
    an actor (``case_data`` also works out the actor's allowed actions, and a participant
    signing through a link is no staff user)."""
    people = ctx.session.execute(select(Participant).where(Participant.case_id == case.id)
                                 .order_by(Participant.id)).scalars().all()
    pays = ctx.session.execute(select(Payment).where(Payment.case_id == case.id)
                               .order_by(Payment.id)).scalars().all()
    adult_from = ctx.today()
    return {
        "participants": [{**{k: getattr(p, k) for k in (
            "id", "is_principal", "relationship", "given_names_latin", "family_name_latin",
            "given_names_cyrillic", "family_name_cyrillic", "date_of_birth", "v_number")},
            "is_adult": ctx.policy.is_adult_on(p.date_of_birth, adult_from)} for p in people],
        "payments": [{"status": p.status, "amount_cents": p.amount_cents, "method": p.method,
                      "breakdown": json.loads(p.breakdown or "{}")} for p in pays],
    }


# Where cash changes hands, by signing channel: a receipt signed on the office tablet is
# signed where the counsellor handed it over; one signed through the personal link is
# signed at the point of departure (after border control), where the cash is paid out.
CASH_HANDOVER = {"tablet": "office", "link": "departure"}


def counsellor_name(ctx: Context, case) -> str | None:
    """The name (not the e-mail address) of the counsellor responsible for ``case``."""
    return ctx.session.execute(select(User.name).where(User.id == case.counsellor_id)).scalar()


def document_data(ctx: Context, case, participant: Participant, kind: str, terms: dict,
                  channel: str | None = None, *, household: dict | None = None) -> dict:
    """The plain data a document template is rendered from (no ORM objects). ``channel``
    (tablet | link) is how it is signed, which says where the cash of a receipt is handed
    over; without it the receipt names no place. ``household`` is :func:`_household` of
    the case when the caller has read it already (a correction compares many documents of
    one household)."""
    full = household if household is not None else _household(ctx, case)
    keys = ("given_names_latin", "family_name_latin", "given_names_cyrillic",
            "family_name_cyrillic", "date_of_birth", "is_adult", "relationship", "is_principal")
    plain = lambda p, extra=(): {k: (p[k].isoformat() if isinstance(p[k], dt.date) else p[k])  # noqa: E731
                                 for k in keys + extra}
    people = [plain(p) for p in full["participants"]
              # A withdrawal declaration is personal: the adult and the minors they represent.
              if kind != workflow.WITHDRAWAL_DECLARATION or p["id"] == participant.id
              or not p["is_adult"]]
    # The IND identifies the application by V-number, so the signer's own is printed;
    # nobody else's is.
    signer = next(plain(p, ("v_number",)) for p in full["participants"] if p["id"] == participant.id)
    payment = next((p for p in reversed(full["payments"])
                    if p["status"] in ("approved", "disbursed")), None)
    if payment is None:
        # Before a payment exists the agreement states what the tariff gives this household.
        adults = sum(1 for p in full["participants"] if p["is_adult"])
        q = payments.quote(ctx.policy, adults, len(full["participants"]) - adults, ctx.today())
        if q is not None:
            payment = {"amount_cents": q.amount_cents, "breakdown": q.breakdown(), "method": None}
    return {
        "kind": kind, "reference": case.reference, "participants": people, "signer": signer,
        "destination_oblast": case.destination_oblast, "destination_place": case.destination_place,
        "departure_deadline": terms.get("departure_deadline") or (
            case.departure_deadline.isoformat() if case.departure_deadline else None),
        "previous_deadline": case.departure_deadline.isoformat() if case.departure_deadline else None,
        "reason": terms.get("reason"),
        "reason_code": terms.get("reason_code"),
        "amount_cents": payment["amount_cents"] if payment else None,
        "breakdown": _breakdown_rows(payment["breakdown"]) if payment else None,
        "method": payment["method"] if payment else None,
        "cash_handover": CASH_HANDOVER.get(channel),
        "counsellor": counsellor_name(ctx, case),
        "reception_end": ctx.policy.reception_end.isoformat(),
        "issued_at": ctx.now().isoformat(timespec="seconds"),
    }


def _breakdown_rows(breakdown: dict) -> list[dict]:
    """The stored quote breakdown as the documents' rows (category, count, unit)."""
    return [{"category": "adult", "count": breakdown["adults"], "unit_cents": breakdown["adult_cents"]},
            {"category": "minor", "count": breakdown["minors"], "unit_cents": breakdown["minor_cents"]}]


def validate_terms(ctx: Context, case, kind: str, terms: dict) -> dict:
    """Check that the terms fit the document kind; returns them normalised to JSON types."""
    if kind not in SIGNABLE_KINDS:
        raise Invalid('signing.unknown_kind', {"kind": [M("signing.kind_one_of", kinds=", ".join(SIGNABLE_KINDS))]})
    if State(case.state) not in SIGNING_STATES[kind]:
        raise Conflict("signing.wrong_state",
                       [{"code": "wrong_state", "message": M("wrong_state:now", state=case.state)}],
                       kind=kind, state=case.state)
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
            raise Invalid('signing.deadline_invalid',
                          {"departure_deadline": [p.message for p in problems]})
        out["departure_deadline"] = deadline.isoformat()
    if kind == workflow.ADDENDUM:
        # A standard reason (translated in the document) and/or the counsellor's own words
        # (printed untranslated); without a standard reason, or with "other", words needed.
        code = terms.get("reason_code") or None
        if code is not None and code not in documents.ADDENDUM_REASONS:
            raise Invalid('reason_missing', {"reason_code": [M("signing.extension_reason")]})
        reason = (terms.get("reason") or "").strip()
        if not reason and (code is None or code == "other"):
            raise Invalid('reason_missing', {"reason": [M("signing.extension_reason")]})
        if code is not None:
            out["reason_code"] = code
        if reason:
            out["reason"] = reason[:2000]
    return out


# The message code of each signature problem, for staff pages and the API (the signing
# pages word the same problems for the signer in their own texts).
_PROBLEM_MESSAGES = {
    signature_rules.CONSENT: "signing.consent_required",
    signature_rules.DRAWN: "signing.draw_signature",
    signature_rules.TOO_LARGE: "signing.drawing_too_large",
    signature_rules.TYPED: "signing.type_name",
    signature_rules.TYPED_LONG: "signing.name_too_long",
    signature_rules.TYPED_CHARS: "signing.name_characters",
    signature_rules.TYPED_MISMATCH: "signing.name_mismatch",
    acknowledgements.MISSING: "signing.acknowledgement_required",
}


class SignatureInvalid(Invalid):
    """The signature given is not acceptable; ``problems`` maps each field to a problem
    code of ``returnprog.signature`` so a page can say it in the signer's language."""

    def __init__(self, problems: dict[str, str]):
        super().__init__("error.invalid_fields",
                         {field: [M(_PROBLEM_MESSAGES[code])] for field, code in problems.items()})
        self.problems = problems


def check_signature(method: str, typed_name: str | None, image_data_uri: str | None,
                    consent: bool, signer: Participant | None = None, *,
                    kind: str | None = None,
                    acknowledged=()) -> signature_rules.Signature:
    """The one check of a signature (consent, the separate acknowledgements ``kind`` needs
    (``returnprog.acknowledgements``), method, drawing or typed name — which must be the
    ``signer``'s registered name), shared by every way of signing; raises
    ``SignatureInvalid`` naming every problem."""
    registered = names.registered_forms(signer) if signer is not None else ()
    checked, problems = signature_rules.problems(method, typed_name, image_data_uri, consent,
                                                 registered)
    problems = {**acknowledgements.missing(kind, acknowledged), **problems}
    if problems:
        raise SignatureInvalid(problems)
    return checked


MAX_SIGNATURE_IMAGE = signature_rules.MAX_SIGNATURE_IMAGE


def _signer(ctx: Context, case, participant_id: int, kind: str) -> Participant:
    person = ctx.session.get(Participant, participant_id)
    if person is None or person.case_id != case.id:
        raise Invalid('case.unknown_participant', {"participant_id": [M('case.not_a_participant')]})
    if kind != workflow.PAYMENT_RECEIPT and not ctx.policy.is_adult_on(person.date_of_birth, ctx.today()):
        raise Invalid('signing.minors_do_not_sign', {"participant_id": [M("signing.participant_is_minor")]})
    return person


def _next_version(ctx: Context, case, person: Participant, kind: str) -> int:
    return (ctx.session.execute(select(func.max(Document.version)).where(
        Document.case_id == case.id, Document.kind == kind,
        Document.participant_id == person.id)).scalar_one() or 0) + 1


# Audit actions of a signing link that the evidence certificate lists, and their event
# names there. The code actions are written by the one-time-code verification (issue 12
# item 1); any of them recorded for the link is picked up.
LINK_AUDIT_EVENTS = {"create_signing_link": "link_created",
                     "signing_code_sent": "code_sent",
                     "signing_code_verified": "code_verified",
                     "signing_code_failed": "code_failed"}


def signing_events(ctx: Context, case, request: SigningRequest | None, *, signed_at,
                   channel: str) -> list[dict]:
    """The events of one signing as the service recorded them, for the evidence
    certificate: the link's audit events (creation, codes), its first opening (on the
    signing request), and the consent and signature of this request (``signed_at``, the
    client's address and user agent). Times are UTC; the tablet has no link events."""
    events = []
    if request is not None:
        rows = ctx.session.execute(
            select(AuditEvent.action, AuditEvent.at, AuditEvent.ip, AuditEvent.details,
                   AuditEvent.actor_id)
            .where(AuditEvent.case_id == case.id,
                   AuditEvent.action.in_(tuple(LINK_AUDIT_EVENTS)))
            .order_by(AuditEvent.seq)).all()
        staff = {}
        for row in rows:
            details = json.loads(row.details or "{}")
            if details.get("signing_request_id") != request.id:
                continue
            if row.actor_id is not None and row.actor_id not in staff:
                staff[row.actor_id] = ctx.session.execute(
                    select(User.name).where(User.id == row.actor_id)).scalar()
            events.append({
                "event": LINK_AUDIT_EVENTS[row.action], "at": row.at, "ip": row.ip,
                "user_agent": details.get("user_agent"),
                # Creation happens on a staff screen; a code goes out by e-mail or text.
                "channel": details.get("channel") or (
                    "staff" if row.action == "create_signing_link" else None),
                "actor": staff.get(row.actor_id)})
        if request.opened_at is not None:
            events.append({"event": "opened", "at": request.opened_at, "ip": request.opened_ip,
                           "user_agent": request.opened_user_agent,
                           "channel": "tablet" if request.channel == TABLET_CHANNEL else "link"})
    # Consent travels with the signature in one request: the same moment and client.
    for event in ("consented", "signed"):
        events.append({"event": event, "at": signed_at, "ip": ctx.ip,
                       "user_agent": ctx.user_agent, "channel": channel})
    return events


def _prepare_signed(ctx: Context, case, person: Participant, kind: str, terms: dict,
                    signed: signature_rules.Signature, *,
                    channel: str, identity_document: str | None,
                    request: SigningRequest | None = None,
                    staff_present: str | None = None) -> dict:
    """Render the document with its signature and evidence certificate and seal it;
    nothing is written. Returns the sealed PDF, the signing time, the version printed and
    the data it was made from (to re-check under lock)."""
    from .. import documents

    signed_at = ctx.now()
    data = document_data(ctx, case, person, kind, terms, channel)
    content = {k: v for k, v in data.items() if k != "issued_at"}
    version = _next_version(ctx, case, person, kind)
    evidence = {"version": version, "signer_name": person.full_name,
                "signature_method": signed.method, "signing_channel": channel,
                "identity_document": identity_document, "counsellor": data["counsellor"],
                "staff_present": (staff_present or getattr(ctx.actor, "name", None))
                if channel == "tablet" else None,
                "events": signing_events(ctx, case, request, signed_at=signed_at,
                                         channel=channel)}
    data["signature"] = {"method": signed.method, "typed_name": signed.typed_name,
                         "image_png_data_uri": signed.image,
                         "signed_at": signed_at.isoformat(timespec="seconds"),
                         "signer_name": person.full_name, "identity_document": identity_document,
                         "channel": channel}
    try:
        pdf = documents.render_pdf(kind, data, person.language, evidence)
    except documents.DocumentDataError as exc:
        # Participant-typed text the document cannot carry (e.g. control characters).
        ctx.session.rollback()
        field = "typed_name" if "typed_name" in str(exc) else "document"
        raise Invalid('signing.cannot_prepare',
                      {field: [str(exc)]}) from exc
    seal = ctx.seal() if callable(ctx.seal) else ctx.seal
    sealed = documents.seal_pdf(pdf, seal, reason=f"{kind} {case.reference}")
    return {"pdf": sealed, "signed_at": signed_at, "content": content, "version": version,
            "channel": channel}


def _still_current(ctx: Context, case, person: Participant, kind: str, terms: dict,
                   prepared: dict) -> None:
    """Under the write lock: refuse when what the document says changed while it was being
    rendered (another change to the case, household or payment came first)."""
    now = {k: v for k, v in document_data(ctx, case, person, kind, terms,
                                          prepared["channel"]).items() if k != "issued_at"}
    # The certificate prints the version: another signing of the same document first
    # makes this one outdated too.
    if now != prepared["content"] or _next_version(ctx, case, person, kind) != prepared["version"]:
        raise Conflict('signing.case_changed', [{"code": "document_outdated",
                                               "message": M('signing.document_mismatch')}])


def _record_signed(ctx: Context, case, person: Participant, kind: str, terms: dict,
                   prepared: dict, *, method: str, channel: str, identity_document: str | None,
                   actor_label: str, verification: str, acknowledged=()) -> Document:
    """Store a prepared, sealed document with its audit event (the caller commits)."""
    sealed = prepared["pdf"]
    version = prepared["version"]
    doc = Document(case_id=case.id, participant_id=person.id, kind=kind, version=version,
                   language=person.language, terms=json.dumps(terms, sort_keys=True),
                   signer_name=person.full_name, signature_method=method,
                   signing_channel=channel, identity_document=identity_document,
                   signer_verification=verification, signed_at=prepared["signed_at"], signed_ip=ctx.ip,
                   signed_user_agent=ctx.user_agent, pdf=sealed,
                   sha256=hashlib.sha256(sealed).hexdigest(),
                   created_by=getattr(ctx.actor, "id", None))
    ctx.session.add(doc)
    ctx.session.flush()
    # The versions a correction superseded are now replaced by this one.
    ctx.session.execute(update(Document).where(
        Document.case_id == case.id, Document.kind == kind, Document.participant_id == person.id,
        Document.superseded_at.is_not(None), Document.superseded_by.is_(None),
        Document.id != doc.id).values(superseded_by=doc.id))
    audit.append(ctx.session, actor=ctx.actor or actor_label, action="sign_document",
                 case_id=case.id,
                 details={"document_id": doc.id, "kind": kind, "version": version,
                          "participant_id": person.id, "method": method, "channel": channel,
                          "verification": verification, "user_agent": ctx.user_agent,
                          "sha256": doc.sha256, "signed_at": prepared["signed_at"].isoformat(),
                          # Which separate acknowledgements the signer ticked (all required).
                          "acknowledged": acknowledgements.given(kind, acknowledged), **terms},
                 ip=ctx.ip)
    return doc


@atomic
def sign_document(ctx: Context, reference: str, participant_id: int, kind: str, terms: dict, *,
                  method: str, typed_name: str | None = None, image_data_uri: str | None = None,
                  channel: str = "tablet", identity_document: str | None = None,
                  consent: bool = False, acknowledged=()) -> Document:
    """A participant signs at the office, the counsellor present (``ctx.actor``) and having
    checked ``identity_document``: render, sign, seal and store one document.
    ``acknowledged``: the keys of the separate acknowledgements ticked (see
    ``returnprog.acknowledgements``; every one ``kind`` requires must be there)."""
    if ctx.actor is None or ctx.actor.role not in SIGNATURE_TAKERS:
        raise Forbidden('signing.office_role')
    if channel == "tablet" and not (identity_document or "").strip():
        raise Invalid('signing.id_document',
                      {"identity_document": [M("signing.identity_document_checked")]})
    # Render and seal (about a second) before taking the write lock, which SQLite would
    # otherwise hold against every other writer meanwhile; re-check under the lock.
    case = load_case(ctx, reference)
    person = _signer(ctx, case, participant_id, kind)
    signed = check_signature(method, typed_name, image_data_uri, consent, person, kind=kind,
                             acknowledged=acknowledged)
    terms = validate_terms(ctx, case, kind, terms)
    prepared = _prepare_signed(ctx, case, person, kind, terms, signed,
                               channel=channel, identity_document=identity_document)
    begin_write(ctx.session)
    case = load_case(ctx, reference)
    person = _signer(ctx, case, participant_id, kind)
    terms = validate_terms(ctx, case, kind, terms)
    _still_current(ctx, case, person, kind, terms, prepared)
    doc = _record_signed(ctx, case, person, kind, terms, prepared, method=signed.method,
                         channel=channel, identity_document=identity_document, actor_label="",
                         verification=signing_codes.TABLET_METHOD,
                         acknowledged=acknowledged)
    commit(ctx)
    return doc


# --- personal signing links ------------------------------------------------------------------

def _issue(ctx: Context, case: Case, person: Participant, kind: str, terms: dict, *,
           channel: str = "link", lifetime: dt.timedelta | None = None,
           identity_document: str | None = None) -> tuple[SigningRequest, str]:
    """Add one signing request (a link, or a tablet session) with its audit event, under
    the caller's write lock; the caller commits. Returns it with its clear token."""
    token = new_token()
    now = ctx.now()
    stored = dict(terms)
    if identity_document is not None:
        # Not a term of the document: kept with the request for the signature that
        # follows (``validate_terms`` passes only the document's own terms on).
        stored[IDENTITY_KEY] = identity_document
    request = SigningRequest(case_id=case.id, participant_id=person.id, kind=kind,
                             terms=json.dumps(stored, sort_keys=True), channel=channel,
                             token_hash=hash_token(token),
                             expires_at=now + (lifetime or dt.timedelta(
                                 days=ctx.policy.signing_link_days)),
                             created_by=ctx.actor.id, created_at=now)
    ctx.session.add(request)
    ctx.session.flush()
    details = {"signing_request_id": request.id, "kind": kind, "participant_id": person.id,
               "expires_at": request.expires_at.isoformat(), "user_agent": ctx.user_agent}
    if channel != "link":
        details["session"] = channel
    audit.append(ctx.session, actor=ctx.actor, action="create_signing_link", case_id=case.id,
                 details=details, ip=ctx.ip)
    return request, token


# The key under which a tablet session keeps the identity document the counsellor checked.
IDENTITY_KEY = "identity_document"
TABLET_CHANNEL = signing_codes.TABLET_CHANNEL


@atomic
def create_signing_link(ctx: Context, reference: str, participant_id: int, kind: str,
                        terms: dict) -> tuple[SigningRequest, str]:
    """A counsellor creates a personal signing link for one participant and one document.

    The token is 256 bits from ``secrets``; only its SHA-256 is stored, so the clear token
    exists only in the returned value (to be sent to the participant)."""
    if ctx.actor is None or ctx.actor.role not in SIGNATURE_TAKERS:
        raise Forbidden('signing.link_role')
    begin_write(ctx.session)
    case = load_case(ctx, reference)
    person = _signer(ctx, case, participant_id, kind)
    terms = validate_terms(ctx, case, kind, terms)
    request, token = _issue(ctx, case, person, kind, terms)
    commit(ctx)
    return request, token


@atomic
def create_tablet_session(ctx: Context, reference: str, participant_id: int, kind: str,
                          terms: dict, identity_document: str) -> tuple[SigningRequest, str]:
    """A counsellor opens a tablet session: a signing request on channel ``tablet``, single
    use and valid ``policy.tablet_session_minutes``, whose address the counsellor opens on
    the office tablet, where the participant signs in person on the link pages.

    The counsellor, present, has checked ``identity_document`` (as the office tablet asks);
    the signature is then recorded like one on the office tablet: channel ``tablet``,
    verification ``id_document``, no one-time code, the counsellor as staff present."""
    if ctx.actor is None or ctx.actor.role not in SIGNATURE_TAKERS:
        raise Forbidden('signing.office_role')
    if not (identity_document or "").strip():
        raise Invalid('signing.id_document',
                      {"identity_document": [M("signing.identity_document_checked")]})
    begin_write(ctx.session)
    case = load_case(ctx, reference)
    person = _signer(ctx, case, participant_id, kind)
    terms = validate_terms(ctx, case, kind, terms)
    request, token = _issue(ctx, case, person, kind, terms, channel=TABLET_CHANNEL,
                            lifetime=dt.timedelta(minutes=ctx.policy.tablet_session_minutes),
                            identity_document=identity_document.strip())
    commit(ctx)
    return request, token


@atomic
def resend_signing_link(ctx: Context, reference: str, link_id: int) -> tuple[SigningRequest, str]:
    """Send a signing link again: only its hash is stored, so a fresh link is issued for
    the same participant, document and terms, and the old one is withdrawn, in one
    transaction. An open or expired personal link can be resent; a used, declined or
    withdrawn one (or a tablet session) cannot: 409."""
    if ctx.actor is None or ctx.actor.role not in SIGNATURE_TAKERS:
        raise Forbidden('signing.link_role')
    begin_write(ctx.session)
    case = load_case(ctx, reference)
    old = _link_of(ctx, case, link_id, reference)
    if (old.channel != "link" or old.used_at is not None or old.revoked_at is not None
            or old.declined_at is not None):
        ctx.session.rollback()
        raise Conflict('signing.link_done')
    person = _signer(ctx, case, old.participant_id, old.kind)
    terms = validate_terms(ctx, case, old.kind, json.loads(old.terms or "{}"))
    done = ctx.session.execute(update(SigningRequest).where(
        SigningRequest.id == old.id, SigningRequest.used_at.is_(None),
        SigningRequest.revoked_at.is_(None)).values(revoked_at=ctx.now())).rowcount
    if done != 1:
        ctx.session.rollback()
        raise Conflict('signing.link_done')
    request, token = _issue(ctx, case, person, old.kind, terms)
    audit.append(ctx.session, actor=ctx.actor, action="revoke_signing_link", case_id=case.id,
                 details={"signing_request_id": old.id, "kind": old.kind,
                          "participant_id": old.participant_id, "resent_as": request.id},
                 ip=ctx.ip)
    commit(ctx)
    return request, token


def _link_of(ctx: Context, case: Case, link_id: int, reference: str) -> SigningRequest:
    link = ctx.session.execute(select(SigningRequest).where(
        SigningRequest.id == link_id, SigningRequest.case_id == case.id)).scalar_one_or_none()
    if link is None:
        ctx.session.rollback()
        raise NotFound("signing.no_link", id=link_id, ref=reference)
    return link


class LinkRefused(NotFound):
    """A signing link that cannot be used: unknown, expired, used or revoked."""

    status, code = 410, "link_unusable"

    def __init__(self, message: str, reason: str = "invalid"):
        # ``reason`` (invalid | used | revoked | expired) lets a page say why in the
        # signer's language.
        super().__init__(message, [{"code": reason, "message": message}])
        self.reason = reason


def open_signing_link(ctx: Context, token: str) -> SigningRequest:
    """The signing request behind a link, if it can still be used; else LinkRefused saying
    why (an unknown token gets the same answer as a wrong one)."""
    if not token or len(token) > 100:
        raise LinkRefused('signing.link_invalid')
    request = ctx.session.execute(select(SigningRequest).where(
        SigningRequest.token_hash == hash_token(token))).scalar_one_or_none()
    if request is None:
        raise LinkRefused("signing.link_invalid")
    _refuse_unusable(ctx, request)
    return request


@atomic
def record_link_opened(ctx: Context, request: SigningRequest) -> bool:
    """Remember the first opening of a signing link (time, address, user agent) on its
    request, for the evidence certificate; True when this call recorded it.

    Only the first opening writes: a link already opened writes nothing, and the write is
    one conditional UPDATE in its own short transaction (no audit head, no write lock taken
    beforehand), so showing the page never waits for other writers more than that
    statement does. When even that cannot be written (the database stays locked), the
    page is shown all the same: the signer is not turned away for a missing detail of the
    evidence, and the certificate then says the opening was not recorded."""
    if request.opened_at is not None:
        return False
    ctx.session.commit()  # nothing was written: this ends the read snapshot first
    values = {"opened_at": ctx.now(), "opened_ip": (ctx.ip or None) and ctx.ip[:45],
              "opened_user_agent": (ctx.user_agent or None) and ctx.user_agent[:300]}
    try:
        done = ctx.session.execute(update(SigningRequest).where(
            SigningRequest.id == request.id, SigningRequest.opened_at.is_(None))
            .values(**values)).rowcount
        commit(ctx)
    except (Conflict, OperationalError):
        ctx.session.rollback()
        log.warning("the first opening of signing link %s could not be recorded", request.id)
        return False
    if done == 1:
        # The row has them already: set them as loaded, not as changes to write again.
        for key, value in values.items():
            set_committed_value(request, key, value)
    return done == 1


def _refuse_unusable(ctx: Context, request: SigningRequest) -> None:
    if request.declined_at is not None:
        raise LinkRefused('signing.link_declined', "declined")
    if request.used_at is not None:
        raise LinkRefused('signing.link_used',
                          "used")
    if request.revoked_at is not None:
        raise LinkRefused('signing.link_withdrawn', "revoked")
    if request.expires_at <= ctx.now():
        raise LinkRefused('signing.link_expired',
                          "expired")


@atomic
def sign_with_link(ctx: Context, token: str, *, method: str, typed_name: str | None = None,
                   image_data_uri: str | None = None, consent: bool = False,
                   link: SigningRequest | None = None,
                   verified_code_id: int | None = None, acknowledged=()) -> Document:
    """The participant signs through their personal link (no staff user: ``ctx.actor`` is
    None). The link is spent in the same transaction as the signature: single use.

    ``link`` is the request the caller already opened with this token (the signing page
    does, to know the signer's language), so it is not looked up again. When the policy
    wants a code for the document, ``verified_code_id`` must name a code of this link the
    signer entered lately (:func:`signing_codes.verification`); else VerificationRequired."""
    if link is None or link.token_hash != hash_token(token):
        link = open_signing_link(ctx, token)
    request = link
    verification = signing_codes.verification(ctx, request, verified_code_id)
    if verification is None:
        raise signing_codes.VerificationRequired()
    case = ctx.session.get(Case, request.case_id)
    person = _signer(ctx, case, request.participant_id, request.kind)
    signed = check_signature(method, typed_name, image_data_uri, consent, person,
                             kind=request.kind, acknowledged=acknowledged)
    terms = validate_terms(ctx, case, request.kind, json.loads(request.terms))
    # A tablet session is signed as on the office tablet: the identity document the
    # counsellor checked, the counsellor present; a personal link by the signer alone.
    channel = TABLET_CHANNEL if request.channel == TABLET_CHANNEL else "link"
    identity = json.loads(request.terms).get(IDENTITY_KEY) if channel == TABLET_CHANNEL else None
    staff = (ctx.session.execute(select(User.name).where(User.id == request.created_by))
             .scalar() if channel == TABLET_CHANNEL else None)
    # Render and seal outside the write lock (see sign_document), then re-check under it.
    prepared = _prepare_signed(ctx, case, person, request.kind, terms, signed,
                               channel=channel, identity_document=identity, request=request,
                               staff_present=staff)
    begin_write(ctx.session)
    # Under the lock, the link's row as it is now: withdrawn or expired meanwhile is refused
    # (spent meanwhile is caught by the conditional update below as well).
    ctx.session.refresh(request)
    _refuse_unusable(ctx, request)
    case = ctx.session.get(Case, request.case_id)
    ctx.session.refresh(case)
    person = _signer(ctx, case, request.participant_id, request.kind)
    terms = validate_terms(ctx, case, request.kind, json.loads(request.terms))
    _still_current(ctx, case, person, request.kind, terms, prepared)
    spent = ctx.session.execute(update(SigningRequest).where(
        SigningRequest.id == request.id, SigningRequest.used_at.is_(None))
        .values(used_at=ctx.now())).rowcount
    if spent != 1:
        raise LinkRefused('signing.link_used',
                          "used")
    doc = _record_signed(ctx, case, person, request.kind, terms, prepared,
                         method=signed.method, channel=channel, identity_document=identity,
                         actor_label=f"participant:{person.id}", verification=verification,
                         acknowledged=acknowledged)
    ctx.session.execute(update(SigningRequest).where(SigningRequest.id == request.id)
                        .values(document_id=doc.id))
    from .signed_copy import queue_copy_email  # the signer's own copy, in this transaction

    queue_copy_email(ctx, case, person, doc)
    commit(ctx)
    return doc


# Standard reasons a participant can give for declining (codes; the pages word them).
DECLINE_CODES = ("disagree", "questions", "wrong_details", "not_now", "other")
MAX_DECLINE_REASON = 1000


def check_decline_reason(code: str | None, reason: str | None) -> tuple[str | None, str]:
    """A decline's standard reason code and own words, normalised; raises ``Invalid``
    (fields ``decline_code``/``decline_reason``) when no reason is given, the code is
    unknown, the text is too long or holds control characters."""
    from .. import characters

    code = (code or "").strip() or None
    text = characters.normalise_newlines(reason or "").strip()
    if code is not None and code not in DECLINE_CODES:
        raise Invalid("signing.decline_reason", {"decline_code": [M("signing.decline_reason")]})
    if len(text) > MAX_DECLINE_REASON:
        raise Invalid("signing.decline_reason_long",
                      {"decline_reason": [M("signing.decline_reason_long",
                                            max=MAX_DECLINE_REASON)]}, max=MAX_DECLINE_REASON)
    if characters.control_character(text, multiline=True) is not None:
        raise Invalid("signing.decline_reason_characters",
                      {"decline_reason": [M("signing.decline_reason_characters")]})
    # Own words are the reason; a standard one alone will do, except "other".
    if not text and code in (None, "other"):
        raise Invalid("signing.decline_reason", {"decline_reason": [M("signing.decline_reason")]})
    return code, text


@atomic
def decline_signing_link(ctx: Context, token: str, *, code: str | None, reason: str | None,
                         link: SigningRequest | None = None) -> SigningRequest:
    """The participant declines to sign through their link, giving a reason. The link is
    closed for good (the counsellor can create a new one); the case is not changed. The
    reason is kept on the link's row, which can be corrected or erased with the case; the
    audit chain, which cannot, records only its SHA-256 and length."""
    if link is None or link.token_hash != hash_token(token):
        link = open_signing_link(ctx, token)
    code, text = check_decline_reason(code, reason)
    begin_write(ctx.session)
    ctx.session.refresh(link)
    _refuse_unusable(ctx, link)
    now = ctx.now()
    closed = ctx.session.execute(update(SigningRequest).where(
        SigningRequest.id == link.id, SigningRequest.used_at.is_(None),
        SigningRequest.revoked_at.is_(None), SigningRequest.declined_at.is_(None))
        .values(declined_at=now, revoked_at=now, decline_code=code,
                decline_reason=text or None)).rowcount
    if closed != 1:
        raise LinkRefused('signing.link_used', "used")
    audit.append(ctx.session, actor=f"participant:{link.participant_id}",
                 action="signing_declined", case_id=link.case_id,
                 details={"signing_request_id": link.id, "kind": link.kind,
                          "participant_id": link.participant_id, "decline_code": code,
                          "reason_sha256": hashlib.sha256(text.encode()).hexdigest(),
                          "reason_length": len(text), "user_agent": ctx.user_agent},
                 ip=ctx.ip)
    commit(ctx)
    return link


@atomic
def revoke_signing_link(ctx: Context, reference: str, link_id: int) -> SigningRequest:
    """A counsellor withdraws a signing link that has not been used yet; from then on the
    link is refused."""
    if ctx.actor is None or ctx.actor.role not in SIGNATURE_TAKERS:
        raise Forbidden('signing.revoke_role')
    begin_write(ctx.session)
    case = load_case(ctx, reference)
    link = _link_of(ctx, case, link_id, reference)
    done = ctx.session.execute(update(SigningRequest).where(
        SigningRequest.id == link.id, SigningRequest.used_at.is_(None),
        SigningRequest.revoked_at.is_(None)).values(revoked_at=ctx.now())).rowcount
    if done != 1:
        ctx.session.rollback()
        raise Conflict('signing.link_done')
    audit.append(ctx.session, actor=ctx.actor, action="revoke_signing_link", case_id=case.id,
                 details={"signing_request_id": link.id, "kind": link.kind,
                          "participant_id": link.participant_id}, ip=ctx.ip)
    commit(ctx)
    return link


def signing_links(ctx: Context, reference: str) -> list[dict]:
    """The signing links of a case, newest first, with their status (open, used, revoked,
    expired). The tokens themselves are not stored and so never shown again."""
    return links_of(ctx, load_case(ctx, reference))


@atomic
def link_register(ctx: Context, reference: str) -> list[dict]:
    """The signing links and tablet sessions of a case for its counsellors (the API's
    list): :func:`links_of` with ``created_by`` as ``{id, name}``; never a token."""
    case = load_case(ctx, reference)
    if ctx.actor is None or ctx.actor.role not in SIGNATURE_TAKERS:
        raise Forbidden('signing.links_role')
    links = links_of(ctx, case)
    staff = user_refs(ctx, *(ln["created_by"] for ln in links))
    ctx.session.commit()  # read only: ends the snapshot
    return [{**ln, "created_by": staff.get(ln["created_by"])} for ln in links]


@atomic
def link_entry(ctx: Context, request: SigningRequest) -> dict:
    """One signing request in :func:`link_register`'s shape (the answer to its creation)."""
    entry = next(ln for ln in links_of(ctx, ctx.session.get(Case, request.case_id))
                 if ln["id"] == request.id)
    staff = user_refs(ctx, request.created_by)
    ctx.session.commit()
    return {**entry, "created_by": staff.get(request.created_by)}


# The case page of every signature taker asks: built once (a statement built afresh has
# its cache key derived by walking it, which costs more than running it).
_LINKS_OF = (select(SigningRequest).where(SigningRequest.case_id == bindparam("case_id"))
             .order_by(SigningRequest.id.desc()))


def links_of(ctx: Context, case: Case) -> list[dict]:
    """:func:`signing_links` of a case already loaded (one statement)."""
    now = ctx.now()
    rows = ctx.session.execute(_LINKS_OF, {"case_id": case.id}).scalars().all()

    def status(r: SigningRequest) -> str:
        if r.declined_at is not None:
            return "declined"
        if r.used_at is not None:
            return "used"
        if r.revoked_at is not None:
            return "revoked"
        return "expired" if r.expires_at <= now else "open"

    def terms(r: SigningRequest) -> dict:
        return {k: v for k, v in json.loads(r.terms or "{}").items() if k != IDENTITY_KEY}

    return [{"id": r.id, "participant_id": r.participant_id, "kind": r.kind,
             "channel": r.channel, "opened_at": r.opened_at, "created_by": r.created_by,
             "terms": terms(r), "created_at": r.created_at,
             "expires_at": r.expires_at, "used_at": r.used_at, "revoked_at": r.revoked_at,
             "document_id": r.document_id, "declined_at": r.declined_at,
             "decline_code": r.decline_code, "decline_reason": r.decline_reason,
             "status": status(r)} for r in rows]
