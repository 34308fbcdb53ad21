"""The processing log (issue 16 item 5; BIO2 and AVG art. 30): for every read and change of
personal data, who did it, which category of data, on which case, for which purpose, with
what result, when and from where — a read model over the two logs the service already
keeps: the access log (:mod:`returnprog.access_log`, reads) and the audit chain
(:mod:`returnprog.audit`, changes).

What each view and each audit action is about is declared once here (:data:`VIEWS`,
:data:`ACTIONS`, :data:`ACTION_SUFFIXES`): its categories of personal data and its purpose.
A look's purpose is written into the access log when it is made (:func:`look_purpose`, the
reader's role decides where the view alone does not); a change's purpose follows from its
action. Origin is the channel (web, api, cli, job, link) and the IP address. A change
records its channel in ``details["channel"]`` (hashed with the event; written by
:func:`returnprog.audit.append` for every change made through a service Context since
issue 16); for older events it is what the actor implies (an operator's command is the
CLI, a participant's step the web, the scheduler a job), otherwise ``None`` (not
recorded).

Queried per participant (what an access request hands over: the events of their case that
are about them or about the household as a whole, never those naming another member) and
per staff member (for the security officer), newest first, paged, within a date range.
Entries never carry an event's details: those of a correction hold other members' old and
new values.

Flask-free and read-only: nothing here writes, so a query never appends to the chain.
"""
from __future__ import annotations

import datetime as dt
import json
from dataclasses import asdict, dataclass, replace

from sqlalchemy import and_, or_, select
from sqlmodel import Session

from .models import AccessEvent, AuditEvent, Case, Document, SigningRequest, User
from .roles import FINANCE, RECORDS_ROLES

# --- categories of personal data and purposes ---------------------------------------------------

IDENTITY = "identity"          # names, date of birth, V-number, BSN, travel document
CONTACT = "contact"            # e-mail address, phone number
CASE = "case"                  # the case's facts: state, destination, deadline, household
ASYLUM = "asylum"              # the asylum application's withdrawal, IND confirmations
DOCUMENTS = "documents"        # signed documents and signing evidence
PAYMENT = "payment"            # travel support, IBAN and account holder
NOTES = "notes"                # case notes
EVIDENCE = "evidence"          # evidence files (departure, identity papers)
HISTORY = "history"            # the case's audit trail (who did what)
STAFF_ACCOUNT = "staff_account"  # a staff member's own account (sign-in, roles)
CATEGORIES = (IDENTITY, CONTACT, CASE, ASYLUM, DOCUMENTS, PAYMENT, NOTES, EVIDENCE, HISTORY,
              STAFF_ACCOUNT)

CASE_HANDLING = "case_handling"
PAYMENT_PURPOSE = "payment"
SIGNING = "signing"
RECORDS = "records_management"
VERIFICATION = "verification"
ACCESS_CONTROL = "access_control"
PURPOSES = (CASE_HANDLING, PAYMENT_PURPOSE, SIGNING, RECORDS, VERIFICATION, ACCESS_CONTROL)

SUCCESS, REFUSED = "success", "refused"

# view of the access log -> (categories, purpose when the reader's role does not decide)
VIEWS: dict[str, tuple[tuple[str, ...], str]] = {
    "case": ((IDENTITY, CONTACT, CASE, ASYLUM), CASE_HANDLING),
    "document": ((DOCUMENTS, IDENTITY), CASE_HANDLING),
    "payment": ((PAYMENT,), PAYMENT_PURPOSE),
    "trail": ((HISTORY,), CASE_HANDLING),
    "notes": ((NOTES,), CASE_HANDLING),
    "evidence": ((EVIDENCE,), CASE_HANDLING),
    "access_request": ((IDENTITY, CONTACT, CASE, DOCUMENTS, PAYMENT, HISTORY), RECORDS),
}

_CASE_DATA = (IDENTITY, CONTACT, CASE)
_SIGNING = ((DOCUMENTS, CONTACT), SIGNING)
_PAY = ((PAYMENT,), PAYMENT_PURPOSE)
_ACCOUNT = ((STAFF_ACCOUNT,), ACCESS_CONTROL)
_RECORDS = ((IDENTITY, CASE), RECORDS)
_WORKFLOW = ((CASE,), CASE_HANDLING)

# audit action -> (categories, purpose); (result is REFUSED for those in REFUSALS)
ACTIONS: dict[str, tuple[tuple[str, ...], str]] = {
    "open_case": (_CASE_DATA, CASE_HANDLING),
    "update_intake": (_CASE_DATA, CASE_HANDLING),
    "correct_case": (_CASE_DATA + (DOCUMENTS,), CASE_HANDLING),
    "record_ind_confirmation": ((ASYLUM,), CASE_HANDLING),
    "confirm_commitment": _WORKFLOW, "record_withdrawal": ((CASE, ASYLUM), CASE_HANDLING),
    "agree_departure": _WORKFLOW, "extend_deadline": _WORKFLOW,
    "pay_support": _PAY, "confirm_departure": _WORKFLOW, "leave_programme": _WORKFLOW,
    "reject": _WORKFLOW, "lapse": _WORKFLOW,
    "add_case_note": ((NOTES,), CASE_HANDLING),
    "upload_evidence": ((EVIDENCE,), CASE_HANDLING),
    "create_signing_link": _SIGNING, "revoke_signing_link": _SIGNING,
    "signing_code_sent": _SIGNING, "signing_code_failed": _SIGNING,
    "signing_code_verified": _SIGNING, "signing_declined": _SIGNING,
    "sign_document": _SIGNING, "email_signed_copy": _SIGNING,
    "verify_document": ((DOCUMENTS,), VERIFICATION),
    "record_reentry": _PAY, "create_batch": _PAY, "send_batch": _PAY,
    "withdraw_batch": _PAY, "download_export": _PAY, "import_statement": _PAY,
    "resolve_statement_entry": _PAY,
    "sign_in": _ACCOUNT, "sign_in_failed": _ACCOUNT, "sign_out": _ACCOUNT,
    "create_user": _ACCOUNT, "activate_user": _ACCOUNT, "deactivate_user": _ACCOUNT,
    "reset_password": _ACCOUNT, "set_person": _ACCOUNT, "change_role": _ACCOUNT,
    "approve_account_request": _ACCOUNT, "reject_account_request": _ACCOUNT,
    "issue_api_token": _ACCOUNT, "revoke_api_token": _ACCOUNT,
    "create_webhook": ((CASE,), ACCESS_CONTROL), "delete_webhook": ((CASE,), ACCESS_CONTROL),
    "redeliver_webhook": ((CASE,), ACCESS_CONTROL),
    # access requests (this issue)
    "register_access_request": _RECORDS, "extend_access_request": _RECORDS,
    "refuse_access_request": _RECORDS,
    "download_access_package": (VIEWS["access_request"][0], RECORDS),
    "deliver_access_request": (VIEWS["access_request"][0], RECORDS),
    # retention and destruction (this issue; destroy_case is audit.DESTROY_ACTION)
    "place_legal_hold": ((CASE,), RECORDS), "lift_legal_hold": ((CASE,), RECORDS),
    "propose_destruction_list": ((CASE,), RECORDS),
    "remove_from_destruction_list": ((CASE,), RECORDS),
    "review_destruction_list": ((CASE,), RECORDS),
    "approve_destruction_list": ((CASE,), RECORDS),
    "return_destruction_list": ((CASE,), RECORDS),
    "cancel_destruction_list": ((CASE,), RECORDS),
    "destroy_destruction_list": ((CASE,), RECORDS),
    "replay_destruction_list": ((CASE,), RECORDS),
    "destroy_case": (_CASE_DATA + (DOCUMENTS, PAYMENT, NOTES, EVIDENCE, HISTORY), RECORDS),
}
# Actions made from a verb (payment steps: propose_payment, book_payment, …).
ACTION_SUFFIXES: dict[str, tuple[tuple[str, ...], str]] = {"_payment": _PAY, "_batch": _PAY}
# Actions that record something refused or failed rather than done.
REFUSALS = frozenset({"sign_in_failed", "signing_code_failed"})
UNDECLARED = ((CASE,), CASE_HANDLING)
# Changes about several cases at once (no case_id), naming each case's reference.
BATCH_ACTIONS = ("create_batch", "send_batch", "withdraw_batch", "download_export")


def action_kind(action: str) -> tuple[tuple[str, ...], str]:
    """(categories, purpose) of an audit action, by :data:`ACTIONS` then by its suffix;
    an action declared nowhere is case data for case handling (a test keeps the source's
    literal actions declared)."""
    if action in ACTIONS:
        return ACTIONS[action]
    for suffix, kind in ACTION_SUFFIXES.items():
        if action.endswith(suffix):
            return kind
    return UNDECLARED


def look_purpose(role: str | None, view: str, channel: str | None = None) -> str:
    """Why a reader of ``role`` looks at ``view``: a records manager or process owner for
    records management, a finance officer for the payment, a participant on their signing
    link for the signing, others by the view."""
    if channel == "link":
        return SIGNING
    if role in RECORDS_ROLES:
        return RECORDS
    if role == FINANCE:
        return PAYMENT_PURPOSE
    return VIEWS.get(view, UNDECLARED)[1]


# --- entries ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Entry:
    """One processing of personal data. ``kind`` read | change; ``who_kind`` staff |
    participant | system; ``participant_ids`` the members it names (empty: the household
    as a whole, or nobody); ``what`` the view or action."""

    at: dt.datetime
    kind: str
    who_kind: str
    who: str
    who_id: int | None
    who_role: str | None
    categories: tuple[str, ...]
    case_id: int | None
    case_reference: str | None
    participant_ids: tuple[int, ...]
    what: str
    purpose: str
    result: str
    channel: str | None
    ip: str | None
    source_id: str

    def as_dict(self) -> dict:
        out = asdict(self)
        out["categories"] = list(self.categories)
        out["participant_ids"] = list(self.participant_ids)
        out["at"] = self.at.isoformat()
        return out


def _who(actor: str, actor_id: int | None) -> tuple[str, int | None]:
    if actor_id is not None:
        return "staff", actor_id
    if actor.startswith("participant:"):
        tail = actor.split(":", 1)[1]
        return "participant", int(tail) if tail.isdigit() else None
    return "system", None


def _change_channel(actor: str, details: dict) -> str | None:
    channel = details.get("channel") if isinstance(details, dict) else None
    if isinstance(channel, str):
        return channel
    if actor == "operator":
        return "cli"
    if actor.startswith("participant:"):
        return "web"
    if actor in ("system", "scheduler"):
        return "job"
    return None


def _aware(value: dt.datetime) -> dt.datetime:
    return value if value.tzinfo else value.replace(tzinfo=dt.timezone.utc)


class _Resolver:
    """Which participant an event names, from the ids it carries (documents, signing
    requests), read in one statement per kind."""

    def __init__(self, session: Session):
        self.session = session
        self.docs: dict[int, int | None] = {}
        self.links: dict[int, int | None] = {}

    def load(self, doc_ids: set[int], link_ids: set[int]) -> None:
        doc_ids -= set(self.docs)
        link_ids -= set(self.links)
        if doc_ids:
            self.docs.update(self.session.execute(select(Document.id, Document.participant_id)
                                                  .where(Document.id.in_(doc_ids))).all())
        if link_ids:
            self.links.update(self.session.execute(
                select(SigningRequest.id, SigningRequest.participant_id)
                .where(SigningRequest.id.in_(link_ids))).all())


def _int(value) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.isdigit() and len(value) < 12:
        return int(value)
    return None


def _details(raw: str) -> dict:
    try:
        value = json.loads(raw or "{}")
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _named(det: dict, resolver: _Resolver, participant_actor: int | None) -> tuple[int, ...]:
    """The members a change names: its participant, the signer of its document or link,
    the participant acting, or those a correction changed, added or removed. Empty: the
    household as a whole (a correction of the case's own facts is about everyone)."""
    one = _int(det.get("participant_id"))
    if one is None and (doc := _int(det.get("document_id"))) is not None:
        one = resolver.docs.get(doc)
    if one is None and (link := _int(det.get("signing_request_id"))) is not None:
        one = resolver.links.get(link)
    if one is None:
        one = participant_actor
    if one is not None:
        return (one,)
    changes = det.get("changes")
    if isinstance(changes, list) and changes:
        ids = [c.get("participant_id") if isinstance(c, dict) else None for c in changes]
        ids += [_int(a.get("participant_id")) if isinstance(a, dict) else None
                for a in det.get("members_added") or []]
        ids += [_int(r) for r in det.get("members_removed") or []]
        if any(i is None for i in ids):
            return ()
        return tuple(sorted(set(ids)))
    return ()


def _entries(session: Session, looks, changes, references: dict[int, str],
             roles: dict[int, str]) -> list[Entry]:
    resolver = _Resolver(session)
    details = {ev.id: _details(ev.details) for ev in changes}
    resolver.load({d for look in looks if look.view == "document" and (d := _int(look.subject))}
                  | {d for det in details.values() if (d := _int(det.get("document_id")))},
                  {r for det in details.values() if (r := _int(det.get("signing_request_id")))})
    out = []
    for look in looks:
        categories, default_purpose = VIEWS.get(look.view, UNDECLARED)
        named = (resolver.docs.get(_int(look.subject)) if look.view == "document" else None)
        named = (named,) if named is not None else ()
        who_kind, who_id = _who(look.actor, look.actor_id)
        out.append(Entry(
            at=_aware(look.first_at), kind="read", who_kind=who_kind, who=look.actor,
            who_id=who_id, who_role=roles.get(look.actor_id), categories=categories,
            case_id=look.case_id, case_reference=references.get(look.case_id),
            participant_ids=named, what=look.view, purpose=look.purpose or default_purpose,
            result=SUCCESS, channel=look.channel, ip=look.ip, source_id=f"access:{look.id}"))
    for ev in changes:
        det = details[ev.id]
        categories, purpose = action_kind(ev.action)
        who_kind, who_id = _who(ev.actor, ev.actor_id)
        named = _named(det, resolver, who_id if who_kind == "participant" else None)
        out.append(Entry(
            at=_aware(ev.at), kind="change", who_kind=who_kind, who=ev.actor, who_id=who_id,
            who_role=roles.get(ev.actor_id), categories=categories, case_id=ev.case_id,
            case_reference=references.get(ev.case_id), participant_ids=named, what=ev.action,
            purpose=purpose, result=REFUSED if ev.action in REFUSALS else SUCCESS,
            channel=_change_channel(ev.actor, det), ip=ev.ip, source_id=f"audit:{ev.seq}"))
    out.sort(key=lambda e: (e.at, e.source_id), reverse=True)
    return out


def _range(column, since: dt.datetime | None, until: dt.datetime | None) -> list:
    conditions = []
    if since is not None:
        conditions.append(column >= since)
    if until is not None:
        conditions.append(column < until)
    return conditions


def _roles(session: Session, ids) -> dict[int, str]:
    ids = {i for i in ids if i is not None}
    if not ids:
        return {}
    return dict(session.execute(select(User.id, User.role).where(User.id.in_(ids))).all())


@dataclass(frozen=True)
class Page:
    """A page of entries, newest first; ``more`` when a further page exists."""

    items: list[Entry]
    page: int
    per_page: int
    more: bool


def for_participant(session: Session, participant, *, since: dt.datetime | None = None,
                    until: dt.datetime | None = None, page: int = 1,
                    per_page: int | None = 100) -> Page:
    """The processing of ``participant``'s data: every look at and change of their case
    (and the payment batches naming its reference) that names them or names no member;
    never one that names another member. ``per_page`` None: everything (the access
    request's package)."""
    case = session.get(Case, participant.case_id)
    looks = session.execute(select(AccessEvent).where(
        AccessEvent.case_id == participant.case_id,
        *_range(AccessEvent.first_at, since, until))).scalars().all()
    about_case = AuditEvent.case_id == participant.case_id
    if case is not None:
        # A batch spans cases (case_id NULL) and lists the references it holds.
        about_case = or_(about_case, and_(AuditEvent.case_id.is_(None),
                                          AuditEvent.action.in_(BATCH_ACTIONS),
                                          AuditEvent.details.contains(f'"{case.reference}"')))
    changes = session.execute(select(AuditEvent).where(
        about_case, *_range(AuditEvent.at, since, until))).scalars().all()
    roles = _roles(session, [x.actor_id for x in (*looks, *changes)])
    references = {participant.case_id: case.reference if case else None}
    entries = [e if e.case_id is not None else
               replace(e, case_id=participant.case_id,
                       case_reference=references[participant.case_id])
               for e in _entries(session, looks, changes, references, roles)
               if not e.participant_ids or participant.id in e.participant_ids]
    if per_page is None:
        return Page(entries, 1, len(entries), False)
    start = (page - 1) * per_page
    return Page(entries[start:start + per_page], page, per_page,
                len(entries) > start + per_page)


def for_staff(session: Session, user_id: int, *, since: dt.datetime | None = None,
              until: dt.datetime | None = None, page: int = 1, per_page: int = 100) -> Page:
    """What staff member ``user_id`` read and changed, newest first: the top of each log
    by the indexes on the reader and the actor, merged."""
    take = page * per_page + 1
    looks = session.execute(select(AccessEvent).where(
        AccessEvent.actor_id == user_id, *_range(AccessEvent.first_at, since, until))
        .order_by(AccessEvent.first_at.desc(), AccessEvent.id.desc()).limit(take)).scalars().all()
    changes = session.execute(select(AuditEvent).where(
        AuditEvent.actor_id == user_id, *_range(AuditEvent.at, since, until))
        .order_by(AuditEvent.seq.desc()).limit(take)).scalars().all()
    case_ids = {x.case_id for x in (*looks, *changes) if x.case_id is not None}
    references = dict(session.execute(select(Case.id, Case.reference)
                                      .where(Case.id.in_(case_ids))).all()) if case_ids else {}
    entries = _entries(session, looks, changes, references, _roles(session, [user_id]))
    start = (page - 1) * per_page
    return Page(entries[start:start + per_page], page, per_page,
                len(entries) > start + per_page)
