"""Access requests (issue 16 item 4; AVG art. 12 and 15): a records manager registers a
participant's request with how their identity was checked, the service assembles the
package — the participant's data as JSON, a readable bilingual PDF, their own signed PDFs
unchanged, the processing of their data — with every other household member only as
"household member 2 (child)", and the request is delivered (the package's SHA-256 in the
audit chain) or refused with a reason.

Terms (art. 12(3)): due one month after receipt; extendable once, before that month ends,
by one or two further months with a reason. Every change takes the write lock, changes
the request by compare-and-set on its ``version`` and status, writes one audit event and
commits — or raises a ServiceError having changed nothing.

Other members' identifiers (names in both scripts, V-number, BSN, e-mail address, phone
number, travel-document number, date of birth) are kept out of the package: the data is
the participant's own, and every text in it (free-text notes, reasons) has those values
replaced (:func:`redactor`). A signed PDF is sealed and cannot be redacted without breaking
the seal: one that names another member is listed but not included (art. 15(4)).
"""
from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import re
import zipfile

from sqlalchemy import select, update

from .. import audit, processing_log
from ..messages import M
from ..models import (AccessRequest, Case, CaseNote, Document, EvidenceFile, IndConfirmation,
                      Participant, Payment, SigningRequest, User)
from ..records import add_months
from ..roles import RECORDS_MANAGER, RECORDS_ROLES
from ..schemas_access import EXTENSION_MONTHS
from . import Conflict, Context, Forbidden, Invalid, NotFound
from .uow import atomic, begin_write, commit

OPEN, EXTENDED, DELIVERED, REFUSED = "open", "extended", "delivered", "refused"
STATUSES = (OPEN, EXTENDED, DELIVERED, REFUSED)
PENDING = (OPEN, EXTENDED)
PACKAGE_FORMAT = "returnprog-access-package/1"
PARTICIPANT_FIELDS = ("id", "is_principal", "relationship", "given_names_latin",
                      "family_name_latin", "given_names_cyrillic", "family_name_cyrillic",
                      "date_of_birth", "v_number", "bsn", "travel_document_number", "email",
                      "phone", "language", "asylum_application_pending")
# The values of another member that must not appear in a participant's package.
IDENTIFIER_FIELDS = ("given_names_latin", "family_name_latin", "given_names_cyrillic",
                     "family_name_cyrillic", "v_number", "bsn", "email", "phone",
                     "travel_document_number")

__all__ = ["STATUSES", "add_months", "build_package", "deliver", "download_package",
           "due_list", "extend", "get_request", "list_requests", "redactor", "refuse",
           "register"]


# --- rules -------------------------------------------------------------------------------------

def _require(ctx: Context, *roles: str) -> None:
    if ctx.actor is None or ctx.actor.role not in roles:
        raise Forbidden("access_request.role", [{"code": "role",
                                                 "message": M("access_request.role")}])


def _load(ctx: Context, request_id: int) -> AccessRequest:
    row = ctx.session.execute(select(AccessRequest).where(AccessRequest.id == request_id)
                              .execution_options(populate_existing=True)).scalar_one_or_none()
    if row is None:
        raise NotFound("access_request.not_found", id=request_id)
    return row


def _swap(ctx: Context, row: AccessRequest, version: int, sources, **values) -> None:
    """Compare-and-set: change the request only if it is still at ``version`` in one of
    ``sources``; else a Conflict (someone else changed it first)."""
    if row.status not in sources:
        raise Conflict("access_request.closed", [{"code": "closed", "message": M(
            "access_request.closed")}])
    done = ctx.session.execute(
        update(AccessRequest).where(AccessRequest.id == row.id,
                                    AccessRequest.version == version,
                                    AccessRequest.status.in_(sources))
        .values(version=AccessRequest.version + 1, **values)
        .execution_options(synchronize_session=False)).rowcount
    if done != 1:
        raise Conflict("case.changed_first", [{"code": "stale", "field": "version",
                                               "message": M("case.changed_first")}])


def _audit(ctx: Context, action: str, row: AccessRequest, **details) -> None:
    audit.append(ctx.session, actor=ctx.actor, action=action, case_id=row.case_id,
                 details={"access_request_id": row.id, "participant_id": row.participant_id,
                          "channel": ctx.channel, **details}, ip=ctx.ip)


# --- use cases ------------------------------------------------------------------------------------

@atomic
def register(ctx: Context, data: dict) -> AccessRequest:
    """Register a request (``data`` loaded by RegisterAccessRequestSchema): the
    participant by case reference and participant id, when and how it came in, and the
    identity document the records manager checked (type and last four characters)."""
    begin_write(ctx.session)
    _require(ctx, RECORDS_MANAGER)
    if data["received_on"] > ctx.today():
        raise Invalid("access_request.received_future",
                      {"received_on": [M("access_request.received_future")]})
    case = ctx.session.execute(select(Case).where(Case.reference == data["reference"])) \
        .scalar_one_or_none()
    if case is None:
        raise Invalid("case.not_found", {"reference": [M("case.not_found",
                                                         ref=data["reference"])]},
                      ref=data["reference"])
    person = ctx.session.get(Participant, data["participant_id"])
    if person is None or person.case_id != case.id:
        raise Invalid("case.unknown_participant", {"participant_id": [
            M("case.unknown_participant", id=data["participant_id"])]},
            id=data["participant_id"])
    now, due = ctx.now(), add_months(data["received_on"], 1)
    row = AccessRequest(case_id=case.id, participant_id=person.id, status=OPEN,
                        received_on=data["received_on"], received_via=data["received_via"],
                        due_on=due, original_due_on=due,
                        identity_document_type=data["identity_document_type"],
                        identity_document_last4=data["identity_document_last4"].upper(),
                        identity_checked_by=ctx.actor.id, identity_checked_at=now,
                        registered_by=ctx.actor.id, registered_at=now)
    ctx.session.add(row)
    ctx.session.flush()
    _audit(ctx, "register_access_request", row, received_on=row.received_on,
           received_via=row.received_via, due_on=due,
           identity_document_type=row.identity_document_type,
           identity_document_last4=row.identity_document_last4)
    commit(ctx)
    return row


@atomic
def extend(ctx: Context, request_id: int, months: int, reason: str, version: int) -> AccessRequest:
    """Extend the term once, by one or two months, with the reason the participant is
    told; only while the first month runs."""
    begin_write(ctx.session)
    _require(ctx, RECORDS_MANAGER)
    row = _load(ctx, request_id)
    if not (reason or "").strip():
        raise Invalid("reason_missing", {"reason": [M("reason_missing")]})
    if months not in EXTENSION_MONTHS:
        raise Invalid("validate.one_of", {"months": [M("validate.one_of", choices="1, 2")]},
                      choices="1, 2")
    if row.status == EXTENDED:
        raise Conflict("access_request.already_extended", [{
            "code": "already_extended", "message": M("access_request.already_extended")}])
    if ctx.today() > row.original_due_on:
        raise Conflict("access_request.extension_late", [{
            "code": "extension_late", "field": "months",
            "message": M("access_request.extension_late", date=row.original_due_on)}],
            date=row.original_due_on)
    due = add_months(row.original_due_on, months)
    _swap(ctx, row, version, (OPEN,), status=EXTENDED, due_on=due, extension_reason=reason,
          extended_by=ctx.actor.id, extended_at=ctx.now())
    _audit(ctx, "extend_access_request", row, months=months, due_on=due,
           reason_sha256=hashlib.sha256(reason.encode()).hexdigest())
    commit(ctx)
    return _load(ctx, request_id)


@atomic
def refuse(ctx: Context, request_id: int, reason: str, version: int) -> AccessRequest:
    """Refuse the request (e.g. the requester's identity could not be established), with
    the reason."""
    begin_write(ctx.session)
    _require(ctx, RECORDS_MANAGER)
    row = _load(ctx, request_id)
    if not (reason or "").strip():
        raise Invalid("reason_missing", {"reason": [M("reason_missing")]})
    _swap(ctx, row, version, PENDING, status=REFUSED, refusal_reason=reason,
          refused_by=ctx.actor.id, refused_at=ctx.now())
    _audit(ctx, "refuse_access_request", row,
           reason_sha256=hashlib.sha256(reason.encode()).hexdigest())
    commit(ctx)
    return _load(ctx, request_id)


@atomic
def download_package(ctx: Context, request_id: int) -> tuple[bytes, str]:
    """The package of a pending request as a ZIP, and its file name; the download is a
    change (audited with the package's SHA-256, kept on the request for the delivery).

    The package is built from a read (rendering takes a while; no write lock is held
    meanwhile), then recorded only if the request is still as it was read."""
    _require(ctx, RECORDS_MANAGER)
    row = _load(ctx, request_id)
    if row.status not in PENDING:
        raise Conflict("access_request.closed", [{"code": "closed", "message": M(
            "access_request.closed")}])
    version = row.version
    body = build_package(ctx, row)
    name = f"access-request-{row.id}-{ctx.session.get(Case, row.case_id).reference}.zip"
    digest = hashlib.sha256(body).hexdigest()
    begin_write(ctx.session)
    row = _load(ctx, request_id)
    # Not a new version: the forms shown with the request stay valid after a download.
    done = ctx.session.execute(
        update(AccessRequest).where(AccessRequest.id == row.id, AccessRequest.version == version,
                                    AccessRequest.status.in_(PENDING))
        .values(package_sha256=digest).execution_options(synchronize_session=False)).rowcount
    if done != 1:
        raise Conflict("case.changed_first", [{"code": "stale",
                                               "message": M("case.changed_first")}])
    _audit(ctx, "download_access_package", row, package_sha256=digest, bytes=len(body))
    commit(ctx)
    return body, name


@atomic
def deliver(ctx: Context, request_id: int, channel: str, version: int) -> AccessRequest:
    """Record that the package last downloaded was handed over (post, e-mail, desk)."""
    begin_write(ctx.session)
    _require(ctx, RECORDS_MANAGER)
    row = _load(ctx, request_id)
    if row.status in PENDING and not row.package_sha256:
        raise Conflict("access_request.not_downloaded", [{
            "code": "not_downloaded", "message": M("access_request.not_downloaded")}])
    _swap(ctx, row, version, PENDING, status=DELIVERED, delivered_sha256=row.package_sha256,
          delivery_channel=channel, delivered_by=ctx.actor.id, delivered_at=ctx.now())
    _audit(ctx, "deliver_access_request", row, package_sha256=row.package_sha256,
           delivery_channel=channel)
    commit(ctx)
    return _load(ctx, request_id)


# --- reads ------------------------------------------------------------------------------------------

def _names(ctx: Context, *ids) -> dict[int, str]:
    ids = {i for i in ids if i is not None}
    if not ids:
        return {}
    return dict(ctx.session.execute(select(User.id, User.name).where(User.id.in_(ids))).all())


def _row_data(ctx: Context, row: AccessRequest, case: Case, person: Participant,
              names: dict[int, str]) -> dict:
    today = ctx.today()
    return {
        "id": row.id, "status": row.status, "version": row.version,
        "reference": case.reference, "participant_id": person.id,
        "participant_name": person.full_name, "relationship": person.relationship,
        "received_on": row.received_on, "received_via": row.received_via,
        "due_on": row.due_on, "original_due_on": row.original_due_on,
        "days_left": (row.due_on - today).days,
        "overdue": row.status in PENDING and row.due_on < today,
        "identity_document_type": row.identity_document_type,
        "identity_document_last4": row.identity_document_last4,
        "identity_checked_by": names.get(row.identity_checked_by),
        "identity_checked_at": row.identity_checked_at,
        "registered_by": names.get(row.registered_by), "registered_at": row.registered_at,
        "extension_reason": row.extension_reason, "extended_by": names.get(row.extended_by),
        "extended_at": row.extended_at, "package_sha256": row.package_sha256,
        "delivered_sha256": row.delivered_sha256, "delivery_channel": row.delivery_channel,
        "delivered_by": names.get(row.delivered_by), "delivered_at": row.delivered_at,
        "refusal_reason": row.refusal_reason, "refused_by": names.get(row.refused_by),
        "refused_at": row.refused_at,
        "can_extend": row.status == OPEN and today <= row.original_due_on,
        "pending": row.status in PENDING,
    }


def _rows(ctx: Context, query) -> list[dict]:
    result = ctx.session.execute(query).all()
    names = _names(ctx, *[uid for r, _c, _p in result for uid in (
        r.identity_checked_by, r.registered_by, r.extended_by, r.delivered_by, r.refused_by)])
    return [_row_data(ctx, r, c, p, names) for r, c, p in result]


def _joined():
    return (select(AccessRequest, Case, Participant)
            .join(Case, Case.id == AccessRequest.case_id)
            .join(Participant, Participant.id == AccessRequest.participant_id))


def list_requests(ctx: Context, *, pending_only: bool = False, limit: int = 200) -> list[dict]:
    """Requests, those still to answer first by due date, then the answered ones."""
    _require(ctx, *RECORDS_ROLES)
    query = _joined()
    if pending_only:
        query = query.where(AccessRequest.status.in_(PENDING))
    rows = _rows(ctx, query.order_by(AccessRequest.due_on, AccessRequest.id).limit(limit))
    return sorted(rows, key=lambda r: (not r["pending"], r["due_on"], r["id"]))


def get_request(ctx: Context, request_id: int) -> dict:
    """One request as its page shows it."""
    _require(ctx, *RECORDS_ROLES)
    rows = _rows(ctx, _joined().where(AccessRequest.id == request_id))
    if not rows:
        raise NotFound("access_request.not_found", id=request_id)
    return rows[0]


def due_list(session, today: dt.date, within_days: int = 7) -> list[dict]:
    """Pending requests due within ``within_days`` or overdue (for the CLI): plain rows."""
    rows = session.execute(
        select(AccessRequest.id, AccessRequest.status, AccessRequest.due_on, Case.reference)
        .join(Case, Case.id == AccessRequest.case_id)
        .where(AccessRequest.status.in_(PENDING),
               AccessRequest.due_on <= today + dt.timedelta(days=within_days))
        .order_by(AccessRequest.due_on, AccessRequest.id)).all()
    return [{"id": r.id, "status": r.status, "due_on": r.due_on, "reference": r.reference,
             "days_left": (r.due_on - today).days} for r in rows]


def participants_of(ctx: Context, reference: str) -> list[dict]:
    """The members of case ``reference`` to choose from when registering (records roles
    see every case: they answer for the whole register)."""
    _require(ctx, *RECORDS_ROLES)
    rows = ctx.session.execute(select(Participant).join(Case, Case.id == Participant.case_id)
                               .where(Case.reference == reference)
                               .order_by(Participant.is_principal.desc(), Participant.id)
                               ).scalars().all()
    return [{"id": p.id, "name": p.full_name, "relationship": p.relationship,
             "date_of_birth": p.date_of_birth} for p in rows]


# --- the package ----------------------------------------------------------------------------------

def _date_forms(day: dt.date | None) -> list[str]:
    if day is None:
        return []
    return [day.isoformat(), day.strftime("%d-%m-%Y"), day.strftime("%d.%m.%Y"),
            day.strftime("%d/%m/%Y"), f"{day.day}-{day.month}-{day.year}"]


def identifiers_of(person: Participant) -> list[str]:
    """Every identifying value of ``person`` as it may be written."""
    values = [getattr(person, f) for f in IDENTIFIER_FIELDS]
    values.append(person.full_name)
    if person.given_names_cyrillic and person.family_name_cyrillic:
        values.append(f"{person.given_names_cyrillic} {person.family_name_cyrillic}")
    values += _date_forms(person.date_of_birth)
    return [v for v in values if v]


def redactor(person: Participant, others: list[tuple[Participant, str]]):
    """A function replacing, in a text, each identifier of another member (``others``:
    (member, label)) by its label — leaving the values ``person`` shares with them (a
    family name) alone."""
    own = {v.casefold() for v in identifiers_of(person)}
    pairs = []
    for other, label in others:
        for value in identifiers_of(other):
            if value.casefold() not in own and len(value) >= 3:
                pairs.append((value, label))
    pairs.sort(key=lambda p: len(p[0]), reverse=True)
    if not pairs:
        return lambda text: text
    # Whole values only: another member's "Taras" is not a part of someone's "Tarasenko".
    pattern = re.compile(r"(?<!\w)(?:" + "|".join(re.escape(v) for v, _ in pairs) + r")(?!\w)",
                         re.IGNORECASE)
    labels = {v.casefold(): label for v, label in pairs}

    def redact(text):
        if not isinstance(text, str):
            return text
        return pattern.sub(lambda m: f"[{labels.get(m.group(0).casefold(), 'household member')}]",
                           text)
    return redact


def _deep(value, fn):
    if isinstance(value, dict):
        return {k: _deep(v, fn) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_deep(v, fn) for v in value]
    return fn(value)


def names_others(blob: bytes, needles: list[str]) -> bool:
    """Whether a signed file mentions any of ``needles``: its raw bytes, and for a PDF
    the text of its pages and its attached files (the signed content)."""
    lowered = [n.casefold() for n in needles if n]
    texts = [blob.decode("latin-1", "ignore")]
    if blob.startswith(b"%PDF"):
        from pypdf import PdfReader

        try:
            reader = PdfReader(io.BytesIO(blob))
            texts += [page.extract_text() or "" for page in reader.pages]
            for bodies in reader.attachments.values():
                texts += [b.decode("utf-8", "ignore") for b in bodies]
        except Exception:  # noqa: BLE001 - an unreadable file is judged by its bytes
            pass
    return any(n in t.casefold() for t in texts for n in lowered)


def _stamp(value):
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    return value


def _member_label(number: int, relationship: str) -> str:
    return f"household member {number} ({relationship})"


def build_package(ctx: Context, row: AccessRequest) -> bytes:
    """The ZIP of ``row``'s participant: ``data.json``, ``summary.pdf`` and their own
    signed PDFs that name nobody else (``documents/…``)."""
    from .. import documents

    session = ctx.session
    case = session.get(Case, row.case_id)
    person = session.get(Participant, row.participant_id)
    members = session.execute(select(Participant).where(Participant.case_id == case.id)
                              .order_by(Participant.is_principal.desc(), Participant.id)
                              ).scalars().all()
    numbered = [(i + 1, m) for i, m in enumerate(members)]
    labels = {m.id: _member_label(n, "principal" if m.is_principal else m.relationship)
              for n, m in numbered}
    others = [(m, labels[m.id]) for m in members if m.id != person.id]
    redact = redactor(person, others)
    needles = [v for m, _ in others for v in identifiers_of(m)
               if v.casefold() not in {x.casefold() for x in identifiers_of(person)}]

    ind = session.execute(select(IndConfirmation).where(
        IndConfirmation.participant_id == person.id)).scalar_one_or_none()
    docs = session.execute(select(Document).where(Document.case_id == case.id)
                           .order_by(Document.id)).scalars().all()
    files, doc_rows, household_docs = {}, [], []
    for d in docs:
        if d.participant_id == person.id:
            included = not names_others(d.pdf, needles)
            name = f"documents/{d.kind}-v{d.version}-{d.id}.pdf"
            if included:
                files[name] = d.pdf
            doc_rows.append({
                "kind": d.kind, "version": d.version, "language": d.language,
                "signed_at": d.signed_at, "signer_name": d.signer_name,
                "signature_method": d.signature_method, "signing_channel": d.signing_channel,
                "identity_document": d.identity_document,
                "signer_verification": d.signer_verification, "signed_ip": d.signed_ip,
                "sha256": d.sha256, "superseded_at": d.superseded_at,
                "file": name if included else None,
                "withheld": None if included else "names other household members (art. 15(4) AVG)"})
        else:
            household_docs.append({"kind": d.kind, "version": d.version,
                                   "signed_at": d.signed_at,
                                   "signed_by": labels.get(d.participant_id)})
    pays = session.execute(select(Payment).where(Payment.case_id == case.id)
                           .order_by(Payment.id)).scalars().all()
    holder = person.is_principal
    payments = [{"id": p.id, "status": p.status, "amount_cents": p.amount_cents,
                 "currency": p.currency, "adults": p.adults, "minors": p.minors,
                 "method": p.method, "proposed_at": p.proposed_at, "approved_at": p.approved_at,
                 "disbursed_at": p.disbursed_at, "sent_at": p.sent_at, "booked_at": p.booked_at,
                 "returned_at": p.returned_at, "reentry_on": p.reentry_on,
                 "reclaim_cents": p.reclaim_cents, "handed_over_place": p.handed_over_place,
                 # The account is the principal's: only they see its number and holder.
                 "iban": p.iban if holder else None,
                 "account_holder": p.account_holder if holder else None} for p in pays]
    links = session.execute(select(SigningRequest).where(
        SigningRequest.participant_id == person.id).order_by(SigningRequest.id)).scalars().all()
    notes = session.execute(select(CaseNote).where(CaseNote.case_id == case.id)
                            .order_by(CaseNote.id)).scalars().all()
    evidence = session.execute(select(EvidenceFile).where(EvidenceFile.case_id == case.id)
                               .order_by(EvidenceFile.id)).scalars().all()
    requests = session.execute(select(AccessRequest).where(
        AccessRequest.participant_id == person.id).order_by(AccessRequest.id)).scalars().all()
    log = processing_log.for_participant(session, person, per_page=None).items
    log_rows = [{"at": e.at, "kind": e.kind,
                 "who": ("you" if e.who_kind == "participant" and e.who_id == person.id
                         else e.who_kind),
                 "who_role": e.who_role, "categories": list(e.categories), "what": e.what,
                 "purpose": e.purpose, "result": e.result, "channel": e.channel,
                 "ip": e.ip if e.who_kind == "participant" else None} for e in log]
    data = {
        "format": PACKAGE_FORMAT, "generated_at": ctx.now(),
        "request": {"id": row.id, "received_on": row.received_on, "due_on": row.due_on},
        "participant": {**{k: getattr(person, k) for k in PARTICIPANT_FIELDS},
                        "household_label": labels[person.id]},
        "ind_confirmation": ({"ind_reference": ind.ind_reference,
                              "confirmed_on": ind.confirmed_on} if ind else None),
        "case": {"reference": case.reference, "state": case.state,
                 "created_at": case.created_at, "updated_at": case.updated_at,
                 "destination_oblast": case.destination_oblast,
                 "destination_place": case.destination_place,
                 "departure_deadline": case.departure_deadline,
                 "departed_on": case.departed_on, "departure_evidence": case.departure_evidence,
                 "closing_reason": case.closing_reason, "intake_notes": case.intake_notes},
        "household": [{"label": labels[m.id], "relationship": m.relationship,
                       "is_principal": m.is_principal, "is_you": m.id == person.id}
                      for _n, m in numbered],
        "documents": doc_rows, "household_documents": household_docs,
        "payments": payments,
        "signing_links": [{"kind": s.kind, "channel": s.channel, "created_at": s.created_at,
                           "expires_at": s.expires_at, "used_at": s.used_at,
                           "opened_at": s.opened_at, "opened_ip": s.opened_ip,
                           "declined_at": s.declined_at, "decline_code": s.decline_code,
                           "decline_reason": s.decline_reason} for s in links],
        "case_notes": [{"created_at": n.created_at, "text": n.body} for n in notes],
        "evidence_files": [{"kind": f.kind, "uploaded_at": f.uploaded_at, "sha256": f.sha256,
                            "filename": f.filename} for f in evidence],
        "access_requests": [{"id": r.id, "status": r.status, "received_on": r.received_on,
                             "due_on": r.due_on, "extension_reason": r.extension_reason,
                             "refusal_reason": r.refusal_reason,
                             "delivered_at": r.delivered_at} for r in requests],
        "processing_log": log_rows,
    }
    data = _deep(_deep(data, _stamp), redact)
    body = json.dumps(data, ensure_ascii=False, indent=2, sort_keys=False).encode()
    language = person.language if person.language in documents.LANGUAGES else "nl"
    summary = documents.render_access_summary(
        summary_context(data, case),
        language)
    out = io.BytesIO()
    stamp = (2000, 1, 1, 0, 0, 0)
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, blob in [("data.json", body), ("summary.pdf", summary), *files.items()]:
            info = zipfile.ZipInfo(name, date_time=stamp)
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, blob)
    return out.getvalue()


def _local_time(value: str) -> str:
    """An ISO timestamp as the programme's calendar shows it (dd-mm-yyyy hh:mm)."""
    from ..policy import TIMEZONE

    moment = dt.datetime.fromisoformat(value)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.timezone.utc)
    return moment.astimezone(TIMEZONE).strftime("%d-%m-%Y %H:%M")


def summary_context(data: dict, case: Case) -> dict:
    """The plain, already redacted values the summary PDF prints."""
    from ..documents import format_date, format_eur

    p = data["participant"]
    return {
        "reference": case.reference,
        "received_on": format_date(data["request"]["received_on"]),
        "issued_at": format_date(data["generated_at"][:10]),
        "person": [
            ("col_name_latin", f"{p['given_names_latin']} {p['family_name_latin']}"),
            ("col_name_cyrillic", " ".join(x for x in (p["given_names_cyrillic"],
                                                       p["family_name_cyrillic"]) if x)),
            ("col_date_of_birth", format_date(p["date_of_birth"])),
            ("col_v_number", p["v_number"]), ("access_f_bsn", p["bsn"]),
            ("access_f_travel_document", p["travel_document_number"]),
            ("access_f_email", p["email"]), ("access_f_phone", p["phone"]),
            ("access_f_language", p["language"])],
        "state": data["case"]["state"],
        "case": [("access_f_destination", " ".join(x for x in (
                     data["case"]["destination_oblast"], data["case"]["destination_place"])
                     if x)),
                 ("access_f_deadline", format_date(data["case"]["departure_deadline"])
                  if data["case"]["departure_deadline"] else None)],
        "household": [{"number": i + 1, "relationship": (
            "principal" if m["is_principal"] else m["relationship"]), "is_you": m["is_you"]}
            for i, m in enumerate(data["household"])],
        "documents": [{"kind": d["kind"], "version": d["version"],
                       "signed_at": format_date(d["signed_at"]) if d["signed_at"] else "",
                       "included": d["file"] is not None} for d in data["documents"]],
        "payments": [{"proposed_at": format_date(x["proposed_at"]),
                      "amount": format_eur(x["amount_cents"]), "status": x["status"]}
                     for x in data["payments"]],
        "log": [{"at": _local_time(e["at"]), "kind": e["kind"], "categories": e["categories"],
                 "who_key": {"you": "access_you", "staff": "access_who_staff"}.get(
                     e["who"], "access_who_system"),
                 "what": e["what"], "purpose": e["purpose"]} for e in data["processing_log"]],
    }
