"""The records lifecycle (issue 16): archive fields, legal holds, reviewed destruction lists,
and the destruction that leaves a tombstone and a verifiable audit chain.

How a case ends its life here:

1. When it closes, the workflow transition stores its archive fields from the retention
   rule in force (:mod:`returnprog.records`); cases closed before the lifecycle existed get
   them from :func:`assign_archive_fields` (the records job runs it).
2. The records job proposes a destruction list of the cases whose action date has passed
   and that no legal hold keeps (:func:`propose_list`).
3. A records manager reviews it — taking cases off with a reason — and marks it reviewed;
   a process owner, another person, approves it or sends it back with a reason.
4. The job (or ``flask records destroy``) destroys every case still on an approved list, one
   transaction per case (:func:`destroy_case`): personal data, documents, uploads, outbox
   messages and the search entry are deleted, payments and bank entries lose their personal
   columns, payment-batch files have the case's names and accounts blacked out, the case's
   audit events lose their personal part (:mod:`returnprog.audit`), and the case row stays
   as the tombstone. A hold placed after the review still stops it.
5. Each finished list is written to the destruction register outside the database
   (:func:`register_record`), so that a restore of an older backup can be followed by
   :func:`replay`, which destroys those cases again.
"""
from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

from sqlalchemy import and_, delete, exists, func, or_, select, update

from .. import audit, records
from ..db import is_sqlite
from ..messages import M
from ..models import (AccessRequest, AuditEvent, Case, CaseNote, CaseSearch, DestructionItem,
                      DestructionList, Document, EvidenceFile, ExportBatch, IndConfirmation,
                      LegalHold, OpenVNumber, OutboxMessage, Participant, Payment,
                      SigningCode, SigningRequest, StatementEntry, User, WebhookAttempt)
from ..roles import PROCESS_OWNER, RECORDS_MANAGER, RECORDS_ROLES
from ..workflow import FINAL_STATES
from . import Conflict, Context, Forbidden, Invalid, NotFound
from .uow import atomic, begin_write, commit

# A destruction list's statuses, in order; cancelled ends a list that was never approved.
PROPOSED, REVIEWED, APPROVED, DESTROYED, CANCELLED = (
    "proposed", "reviewed", "approved", "destroyed", "cancelled")
LIST_STATUSES = (PROPOSED, REVIEWED, APPROVED, DESTROYED, CANCELLED)
OPEN_LIST_STATUSES = (PROPOSED, REVIEWED, APPROVED)
# An item's statuses: on the list, taken off by a reviewer, destroyed, or skipped at
# destruction (a hold or a changed rule since the review; it comes back on a later list).
LISTED, REMOVED, ITEM_DESTROYED, SKIPPED = "listed", "removed", "destroyed", "skipped"
HOLD_REASONS = ("objection", "appeal", "investigation", "other")
REASON_MAX = 500
# What takes the place of a destroyed name or account in a kept payment-batch file.
BLACKED_OUT = "X"
SYSTEM = "system"

__all__ = ["HOLD_REASONS", "LIST_STATUSES", "approve_list", "assign_archive_fields",
           "cancel_list", "destroy_case", "due_cases", "dry_run", "lift_hold",
           "list_holds", "list_lists", "overview", "place_hold", "propose_list", "read_list",
           "register_record", "remove_from_list", "replay", "return_list", "review_list",
           "run_destruction", "tick"]


# --- who may -----------------------------------------------------------------------------

def _require(ctx: Context, *roles: str) -> None:
    if ctx.actor is None or ctx.actor.role not in roles:
        code = ("records.process_owner_only" if roles == (PROCESS_OWNER,)
                else "records.records_only")
        raise Forbidden(code, [{"code": "role", "message": M(code)}])


def _reason(value: str | None, field: str = "reason", required: bool = True) -> str:
    text = (value or "").strip()
    if required and not text:
        raise Invalid("error.invalid_fields", {field: [M("field.required")]})
    if len(text) > REASON_MAX:
        raise Invalid("error.invalid_fields", {field: [M("validate.length_max", max=REASON_MAX)]})
    return text


def _person(session, user_id: int | None) -> str | None:
    if user_id is None:
        return None
    return session.execute(select(User.person).where(User.id == user_id)).scalar_one_or_none()


# --- archive fields ------------------------------------------------------------------------

def assign_archive_fields(session, policy, today: dt.date) -> int:
    """Give every closed case without archive fields its fields, from the day it reached
    its final state (its transition's audit event; the case's last change if none) and the
    rules in force then. Returns how many cases it set. For cases closed before the records
    lifecycle existed; the records job runs it before proposing a list."""
    rows = session.execute(
        select(Case.id, Case.state, Case.updated_at)
        .where(Case.state.in_([s.value for s in FINAL_STATES]),
               Case.archive_term_start.is_(None))).all()
    for case_id, state, updated_at in rows:
        closed_at = session.execute(
            select(func.max(AuditEvent.at)).where(AuditEvent.case_id == case_id,
                                                   AuditEvent.to_state == state)).scalar()
        closed_on = (closed_at or updated_at or dt.datetime.now(dt.timezone.utc)).date()
        session.execute(update(Case).where(Case.id == case_id,
                                           Case.archive_term_start.is_(None))
                        .values(**records.archive_fields(policy.retention_rules, state,
                                                         min(closed_on, today)))
                        .execution_options(synchronize_session=False))
    return len(rows)


def _active_hold(case_id_column):
    return exists().where(LegalHold.case_id == case_id_column, LegalHold.lifted_at.is_(None))


def _open_access_request(case_id_column):
    # A participant's access request still to answer keeps the case: the data it asks
    # about must not go before the answer has gone out (AVG art. 15).
    return exists().where(AccessRequest.case_id == case_id_column,
                          AccessRequest.status.in_(("open", "extended")))


def _on_open_list(case_id_column):
    return exists().where(DestructionItem.case_id == case_id_column,
                          DestructionItem.status == LISTED,
                          DestructionItem.list_id == DestructionList.id,
                          DestructionList.status.in_(OPEN_LIST_STATUSES))


def due_cases(session, today: dt.date):
    """The cases a destruction list would take today: closed, nominated for destruction,
    not destroyed, action date passed, no legal hold in force, no access request still to
    answer, on no open list."""
    return session.execute(
        select(Case.id, Case.reference, Case.state, Case.archive_action_date)
        .where(Case.archive_nomination == records.DESTROY,
               Case.archive_status == records.TO_ARCHIVE,
               Case.archive_action_date.is_not(None), Case.archive_action_date <= today,
               Case.state.in_([s.value for s in FINAL_STATES]),
               ~_active_hold(Case.id), ~_open_access_request(Case.id),
               ~_on_open_list(Case.id))
        .order_by(Case.archive_action_date, Case.id)).all()


# --- destruction lists -----------------------------------------------------------------------

@atomic
def propose_list(ctx: Context) -> DestructionList | None:
    """Make a destruction list of the cases due today (:func:`due_cases`), or None when no
    case is due. The records job calls it as the system; a records manager may too."""
    begin_write(ctx.session)
    if ctx.actor is not None:
        _require(ctx, RECORDS_MANAGER)
    assign_archive_fields(ctx.session, ctx.policy, ctx.today())
    due = due_cases(ctx.session, ctx.today())
    if not due:
        commit(ctx)
        return None
    dlist = DestructionList(created_by=getattr(ctx.actor, "id", None), created_at=ctx.now())
    ctx.session.add(dlist)
    ctx.session.flush()
    ctx.session.add_all(DestructionItem(list_id=dlist.id, case_id=c.id, reference=c.reference,
                                        final_state=c.state, action_date=c.archive_action_date)
                        for c in due)
    audit.append(ctx.session, actor=ctx.actor or SYSTEM, action="propose_destruction_list",
                 details={"list_id": dlist.id, "cases": len(due)}, ip=ctx.ip)
    commit(ctx)
    return dlist


def _load_list(ctx: Context, list_id: int) -> DestructionList:
    dlist = ctx.session.get(DestructionList, list_id)
    if dlist is None:
        raise NotFound("records.no_such_list", id=list_id)
    return dlist


def _move(ctx: Context, dlist: DestructionList, sources: tuple, values: dict,
          action: str, details: dict) -> DestructionList:
    """Move a list by compare-and-set on its status and version, with one audit event."""
    if dlist.status not in sources:
        raise Conflict("records.list_status", [{"code": "list_status",
                                                "message": M("records.list_status")}])
    changed = ctx.session.execute(
        update(DestructionList).where(DestructionList.id == dlist.id,
                                      DestructionList.version == dlist.version,
                                      DestructionList.status.in_(sources))
        .values(version=dlist.version + 1, **values)
        .execution_options(synchronize_session=False)).rowcount
    if changed != 1:
        raise Conflict("records.changed_first", [{"code": "stale_version",
                                                  "message": M("records.changed_first")}])
    audit.append(ctx.session, actor=ctx.actor or SYSTEM, action=action,
                 details={"list_id": dlist.id, **details}, ip=ctx.ip)
    commit(ctx)
    ctx.session.refresh(dlist)
    return dlist


@atomic
def remove_from_list(ctx: Context, list_id: int, item_id: int, reason: str) -> DestructionItem:
    """A records manager takes one case off a proposed list, with a reason: the case is
    kept (it comes back on a later list only if it is still due then and not held)."""
    begin_write(ctx.session)
    _require(ctx, RECORDS_MANAGER)
    reason = _reason(reason)
    dlist = _load_list(ctx, list_id)
    item = ctx.session.get(DestructionItem, item_id)
    if item is None or item.list_id != dlist.id:
        raise NotFound("records.no_such_item", id=item_id)
    if dlist.status != PROPOSED:
        raise Conflict("records.list_status")
    changed = ctx.session.execute(
        update(DestructionItem).where(DestructionItem.id == item.id,
                                      DestructionItem.status == LISTED)
        .values(status=REMOVED, removed_by=ctx.actor.id, removed_at=ctx.now(), reason=reason)
        .execution_options(synchronize_session=False)).rowcount
    if changed != 1:
        raise Conflict("records.changed_first")
    # Bumping the list's version makes a review racing this removal fail cleanly.
    bumped = ctx.session.execute(
        update(DestructionList).where(DestructionList.id == dlist.id,
                                      DestructionList.status == PROPOSED)
        .values(version=DestructionList.version + 1)
        .execution_options(synchronize_session=False)).rowcount
    if bumped != 1:
        raise Conflict("records.changed_first")
    audit.append(ctx.session, actor=ctx.actor, action="remove_from_destruction_list",
                 case_id=item.case_id, details={"list_id": dlist.id, "reason": reason},
                 ip=ctx.ip)
    commit(ctx)
    ctx.session.refresh(item)
    return item


@atomic
def review_list(ctx: Context, list_id: int) -> DestructionList:
    """A records manager marks a proposed list reviewed: every case still on it should go."""
    begin_write(ctx.session)
    _require(ctx, RECORDS_MANAGER)
    dlist = _load_list(ctx, list_id)
    return _move(ctx, dlist, (PROPOSED,),
                 {"status": REVIEWED, "reviewed_by": ctx.actor.id, "reviewed_at": ctx.now(),
                  "returned_reason": None},
                 "review_destruction_list", {"cases": _listed_count(ctx, dlist.id)})


@atomic
def approve_list(ctx: Context, list_id: int) -> DestructionList:
    """A process owner approves a reviewed list: the second of two people (never the
    person who reviewed it, under any of their accounts)."""
    begin_write(ctx.session)
    _require(ctx, PROCESS_OWNER)
    dlist = _load_list(ctx, list_id)
    if dlist.reviewed_by is not None and (
            dlist.reviewed_by == ctx.actor.id
            or _person(ctx.session, dlist.reviewed_by) == ctx.actor.person):
        raise Forbidden("records.same_reviewer", [{"code": "four_eyes",
                                                   "message": M("records.same_reviewer")}])
    return _move(ctx, dlist, (REVIEWED,),
                 {"status": APPROVED, "approved_by": ctx.actor.id, "approved_at": ctx.now()},
                 "approve_destruction_list", {"cases": _listed_count(ctx, dlist.id)})


@atomic
def return_list(ctx: Context, list_id: int, reason: str) -> DestructionList:
    """A process owner sends a reviewed list back to the records manager, with a reason."""
    begin_write(ctx.session)
    _require(ctx, PROCESS_OWNER)
    reason = _reason(reason)
    dlist = _load_list(ctx, list_id)
    return _move(ctx, dlist, (REVIEWED,),
                 {"status": PROPOSED, "reviewed_by": None, "reviewed_at": None,
                  "returned_reason": reason},
                 "return_destruction_list", {"reason": reason})


@atomic
def cancel_list(ctx: Context, list_id: int, reason: str) -> DestructionList:
    """A records manager cancels a list that is not approved yet: its cases are free for
    a later list."""
    begin_write(ctx.session)
    _require(ctx, RECORDS_MANAGER)
    reason = _reason(reason)
    dlist = _load_list(ctx, list_id)
    return _move(ctx, dlist, (PROPOSED, REVIEWED), {"status": CANCELLED,
                                                   "returned_reason": reason},
                 "cancel_destruction_list", {"reason": reason})


def _listed_count(ctx: Context, list_id: int) -> int:
    return ctx.session.execute(select(func.count()).select_from(DestructionItem).where(
        DestructionItem.list_id == list_id, DestructionItem.status == LISTED)).scalar_one()


# --- legal holds ------------------------------------------------------------------------------

def _case_by_reference(ctx: Context, reference: str) -> Case:
    case = ctx.session.execute(select(Case).where(
        Case.reference == (reference or "").strip().upper())).scalar_one_or_none()
    if case is None:
        raise Invalid("error.invalid_fields", {"reference": [M("records.no_such_case")]})
    return case


@atomic
def place_hold(ctx: Context, reference: str, reason: str, note: str = "") -> LegalHold:
    """A records manager or process owner puts a legal hold on a case: it is not listed
    or destroyed while the hold is in force."""
    begin_write(ctx.session)
    _require(ctx, *RECORDS_ROLES)
    # Every field is checked before any is refused, so the form shows all its problems.
    problems = {}
    if reason not in HOLD_REASONS:
        problems["reason"] = [M("validate.one_of", choices=", ".join(HOLD_REASONS))]
    try:
        note = _reason(note, "note", required=reason == "other")
    except Invalid as exc:
        problems.update(exc.details)
    try:
        case = _case_by_reference(ctx, reference)
    except Invalid as exc:
        problems.update(exc.details)
    if problems:
        raise Invalid("error.invalid_fields", problems)
    if case.archive_status == records.DESTROYED:
        raise Conflict("records.case_destroyed")
    hold = LegalHold(case_id=case.id, reason=reason, note=note, placed_by=ctx.actor.id,
                     placed_at=ctx.now())
    ctx.session.add(hold)
    ctx.session.flush()
    audit.append(ctx.session, actor=ctx.actor, action="place_legal_hold", case_id=case.id,
                 details={"hold_id": hold.id, "reason": reason}, ip=ctx.ip)
    commit(ctx)
    return hold


@atomic
def lift_hold(ctx: Context, hold_id: int, note: str) -> LegalHold:
    """A records manager or process owner lifts a hold, saying why (the matter ended)."""
    begin_write(ctx.session)
    _require(ctx, *RECORDS_ROLES)
    note = _reason(note, "note")
    hold = ctx.session.get(LegalHold, hold_id)
    if hold is None:
        raise NotFound("records.no_such_hold", id=hold_id)
    changed = ctx.session.execute(
        update(LegalHold).where(LegalHold.id == hold.id, LegalHold.lifted_at.is_(None))
        .values(lifted_by=ctx.actor.id, lifted_at=ctx.now(), lift_note=note)
        .execution_options(synchronize_session=False)).rowcount
    if changed != 1:
        raise Conflict("records.hold_lifted")
    audit.append(ctx.session, actor=ctx.actor, action="lift_legal_hold", case_id=hold.case_id,
                 details={"hold_id": hold.id}, ip=ctx.ip)
    commit(ctx)
    ctx.session.refresh(hold)
    return hold


# --- destruction ----------------------------------------------------------------------------

def _case_values(session, case_id: int) -> list[str]:
    """The personal values of a case that may also sit in shared files (payment batches):
    account holders' names and IBANs of its payments."""
    values = []
    for holder, iban in session.execute(select(Payment.account_holder, Payment.iban)
                                        .where(Payment.case_id == case_id)):
        values += [v for v in (holder, iban) if v]
    return values


def _black_out(content: bytes | None, values: list[str]) -> bytes | None:
    """``content`` with every spelling of ``values`` it may hold (as typed, as the SEPA file
    writes names, CSV-quoted) replaced by X's of the same length."""
    if not content:
        return content
    from ..export import sepa_text

    spellings = set()
    for value in values:
        for form in (value, sepa_text(value), value.replace('"', '""')):
            if len(form) >= 2:
                spellings.add(form.encode())
    for form in sorted(spellings, key=len, reverse=True):
        content = content.replace(form, BLACKED_OUT.encode() * len(form))
    return content


def _redact_batches(session, case_id: int, values: list[str]) -> list[int]:
    """Black out the case's names and accounts in the payment-batch files that carry them
    (the files stay for the other payments; their stored hashes follow the new bytes).

    A transfer's lines are in the batch it is in, and in any batch withdrawn before it —
    made between the payment's release and that batch — so only those files are read."""
    import hashlib

    if not values:
        return []
    released, last_batch = session.execute(
        select(func.min(Payment.disbursed_at), func.max(ExportBatch.created_at))
        .select_from(Payment)
        .outerjoin(ExportBatch, ExportBatch.id == Payment.export_batch_id)
        .where(Payment.case_id == case_id, Payment.method == "transfer")).one()
    if released is None:
        return []
    query = select(ExportBatch).where(ExportBatch.created_at >= released)
    if last_batch is not None:
        query = query.where(ExportBatch.created_at <= last_batch)
    redacted = []
    for batch in session.execute(query).scalars():
        content = _black_out(batch.content, values)
        csv_content = _black_out(batch.csv_content, values)
        if content == batch.content and csv_content == batch.csv_content:
            continue
        batch.content = content
        batch.sha256 = hashlib.sha256(content).hexdigest()
        if csv_content is not None:
            batch.csv_content = csv_content
            batch.csv_sha256 = hashlib.sha256(csv_content).hexdigest()
        redacted.append(batch.id)
    session.flush()
    return sorted(redacted)


def _erase_events(ctx: Context, case_id: int, list_id: int) -> dict[str, str]:
    """Erase the personal part of the case's audit events; returns the remainder digests
    of the erased events older than version 3, for the destruction's own event."""
    remainders = {}
    cols = [getattr(AuditEvent, name) for name in audit.COLUMNS]
    for ev in ctx.session.execute(select(*cols).where(AuditEvent.case_id == case_id,
                                                      AuditEvent.erased_at.is_(None))):
        if ev.chain_version < 3:
            remainders[str(ev.seq)] = audit.remainder_digest(audit.fields_of(ev))
    ctx.session.execute(
        update(AuditEvent).where(AuditEvent.case_id == case_id, AuditEvent.erased_at.is_(None))
        .values(details="{}", ip=None, personal_salt=None, erased_at=ctx.now(),
                erased_by_list=list_id)
        .execution_options(synchronize_session=False))
    return remainders


def _delete_personal_rows(session, case_id: int) -> dict[str, int]:
    """Delete every row of the case that is personal data, children before parents;
    returns the count per table."""
    counts = {}

    def run(name, statement):
        counts[name] = counts.get(name, 0) + (session.execute(
            statement.execution_options(synchronize_session=False)).rowcount or 0)

    requests = select(SigningRequest.id).where(SigningRequest.case_id == case_id)
    documents = select(Document.id).where(Document.case_id == case_id)
    messages = select(OutboxMessage.id).where(or_(
        OutboxMessage.case_id == case_id, OutboxMessage.signing_request_id.in_(requests),
        OutboxMessage.document_id.in_(documents)))
    run("webhook_attempt", delete(WebhookAttempt).where(WebhookAttempt.message_id.in_(messages)))
    run("outbox_message", delete(OutboxMessage).where(OutboxMessage.id.in_(messages)))
    run("signing_code", delete(SigningCode).where(SigningCode.signing_request_id.in_(requests)))
    run("signing_request", delete(SigningRequest).where(SigningRequest.case_id == case_id))
    run("ind_confirmation", delete(IndConfirmation).where(IndConfirmation.case_id == case_id))
    # Answered access requests belong to the case file and go with it (open ones keep it).
    run("access_request", delete(AccessRequest).where(AccessRequest.case_id == case_id))
    # Documents and notes point at their own kind (superseded_by, corrects_id): unlink first.
    session.execute(update(Document).where(Document.case_id == case_id)
                    .values(superseded_by=None).execution_options(synchronize_session=False))
    run("document", delete(Document).where(Document.case_id == case_id))
    session.execute(update(CaseNote).where(CaseNote.case_id == case_id)
                    .values(corrects_id=None).execution_options(synchronize_session=False))
    run("case_note", delete(CaseNote).where(CaseNote.case_id == case_id))
    run("evidence_file", delete(EvidenceFile).where(EvidenceFile.case_id == case_id))
    run("case_search", delete(CaseSearch).where(CaseSearch.case_id == case_id))
    run("open_v_number", delete(OpenVNumber).where(OpenVNumber.case_id == case_id))
    run("participant", delete(Participant).where(Participant.case_id == case_id))
    payments = select(Payment.id).where(Payment.case_id == case_id)
    run("statement_entry", update(StatementEntry).where(StatementEntry.payment_id.in_(payments))
        .values(counterparty_name=None, counterparty_iban=None, resolution=None))
    # The payment stays, for the programme's figures and the batches' totals; who it was
    # for and where it went do not.
    run("payment", update(Payment).where(Payment.case_id == case_id)
        .values(iban=None, account_holder=None, handed_over_place=None,
                decision_reason=None))
    return counts


def _hold_in_force(session, case_id: int) -> bool:
    """Whether a legal hold or an access request still to answer keeps the case."""
    return session.execute(select(Case.id).where(
        Case.id == case_id, _active_hold(Case.id) | _open_access_request(Case.id))
    ).first() is not None


@atomic
def destroy_case(ctx: Context, item_id: int) -> str:
    """Destroy the case of one item of an approved list, in one transaction; returns the
    item's new status (destroyed, or skipped when a hold came or the rule changed)."""
    begin_write(ctx.session)
    item = ctx.session.get(DestructionItem, item_id)
    dlist = ctx.session.get(DestructionList, item.list_id) if item else None
    if item is None or dlist is None or dlist.status != APPROVED or item.status != LISTED:
        commit(ctx)
        return item.status if item else SKIPPED
    case = ctx.session.get(Case, item.case_id)
    still_due = (case.archive_nomination == records.DESTROY
                 and case.archive_status == records.TO_ARCHIVE
                 and case.archive_action_date is not None
                 and case.archive_action_date <= ctx.today())
    if not still_due or _hold_in_force(ctx.session, case.id):
        ctx.session.execute(update(DestructionItem).where(DestructionItem.id == item.id)
                            .values(status=SKIPPED, reason="hold" if still_due else "rule")
                            .execution_options(synchronize_session=False))
        commit(ctx)
        return SKIPPED
    _destroy(ctx, case, dlist.id)
    ctx.session.execute(update(DestructionItem).where(DestructionItem.id == item.id)
                        .values(status=ITEM_DESTROYED, destroyed_at=ctx.now())
                        .execution_options(synchronize_session=False))
    commit(ctx)
    return ITEM_DESTROYED


def _destroy(ctx: Context, case: Case, list_id: int) -> None:
    """The destruction itself, inside the caller's transaction."""
    values = _case_values(ctx.session, case.id)
    batches = _redact_batches(ctx.session, case.id, values)
    counts = _delete_personal_rows(ctx.session, case.id)
    remainders = _erase_events(ctx, case.id, list_id)
    changed = ctx.session.execute(
        update(Case).where(Case.id == case.id, Case.archive_status == records.TO_ARCHIVE)
        .values(archive_status=records.DESTROYED, destroyed_at=ctx.now(),
                destruction_list_id=list_id, destination_place=None, intake_notes=None,
                closing_reason=None, version=Case.version + 1)
        .execution_options(synchronize_session=False)).rowcount
    if changed != 1:
        raise Conflict("records.changed_first")
    audit.append(ctx.session, actor=ctx.actor or SYSTEM, action=audit.DESTROY_ACTION,
                 case_id=case.id, from_state=case.state, to_state=case.state,
                 details={"list_id": list_id, "rows": {k: v for k, v in counts.items() if v},
                          "batches_blacked_out": batches, "erased_legacy": remainders},
                 ip=ctx.ip)


def run_destruction(ctx: Context, list_id: int) -> dict:
    """Destroy every case still on an approved list (one transaction each), then close the
    list; returns the counts {destroyed, skipped}. Run by the records job or
    ``flask records destroy``; safe to run again after an interruption."""
    dlist = ctx.session.get(DestructionList, list_id)
    if dlist is None:
        raise NotFound("records.no_such_list", id=list_id)
    if dlist.status != APPROVED:
        raise Conflict("records.list_status")
    item_ids = list(ctx.session.execute(select(DestructionItem.id).where(
        DestructionItem.list_id == list_id, DestructionItem.status == LISTED)
        .order_by(DestructionItem.id)).scalars())
    ctx.session.rollback()
    outcome = {ITEM_DESTROYED: 0, SKIPPED: 0}
    for item_id in item_ids:
        status = destroy_case(ctx, item_id)
        outcome[status] = outcome.get(status, 0) + 1
    _finish(ctx, list_id, outcome)
    _compact(ctx.session)
    return outcome


@atomic
def _finish(ctx: Context, list_id: int, outcome: dict) -> None:
    begin_write(ctx.session)
    dlist = _load_list(ctx, list_id)
    _move(ctx, dlist, (APPROVED,), {"status": DESTROYED, "destroyed_at": ctx.now()},
          "destroy_destruction_list", {"destroyed": outcome.get(ITEM_DESTROYED, 0),
                                       "skipped": outcome.get(SKIPPED, 0)})


def _compact(session) -> None:
    """After a destruction on SQLite: merge the search index's segments (FTS5 keeps a
    deleted entry's terms until then) and checkpoint the write-ahead log into the file and
    truncate it, so the destroyed values are in neither. On PostgreSQL, VACUUM (autovacuum)
    reclaims the dead rows; see the README on backups."""
    if not is_sqlite(session):
        return
    from ..search import SQLITE_FTS

    session.rollback()
    conn = session.connection()
    conn.exec_driver_sql(f"INSERT INTO {SQLITE_FTS}({SQLITE_FTS}) VALUES ('optimize')")
    session.commit()
    session.connection().exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    session.commit()


# --- the register outside the database, and the replay after a restore -------------------------

def register_record(session, list_id: int) -> dict:
    """What the destruction register outside the database keeps of a finished list: the
    list, who reviewed and approved it, when, and the references of the destroyed cases
    (no personal data). A restore of an older backup replays these (:func:`replay`)."""
    dlist = session.get(DestructionList, list_id)
    destroyed = session.execute(select(DestructionItem.reference).where(
        DestructionItem.list_id == list_id, DestructionItem.status == ITEM_DESTROYED)
        .order_by(DestructionItem.reference)).scalars().all()
    return {"list_id": dlist.replay_of or dlist.id, "status": dlist.status,
            "reviewed_by": dlist.reviewed_by, "approved_by": dlist.approved_by,
            "approved_at": dlist.approved_at.isoformat() if dlist.approved_at else None,
            "destroyed_at": dlist.destroyed_at.isoformat() if dlist.destroyed_at else None,
            "cases": list(destroyed)}


def write_register(directory: Path, record: dict) -> Path:
    """Write one list's register entry as ``list-<id>.json`` in ``directory`` (made private
    to the service, 0700); returns the file's path."""
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = directory / f"list-{record['list_id']}.json"
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(record, indent=2, sort_keys=True))
    tmp.replace(path)
    return path


def read_register(directory: Path) -> list[dict]:
    """Every entry of the destruction register in ``directory``, oldest list first."""
    entries = [json.loads(p.read_text()) for p in sorted(Path(directory).glob("list-*.json"))]
    return sorted(entries, key=lambda e: e["list_id"])


def replay(ctx: Context, entries: list[dict]) -> dict:
    """After restoring a backup made before some destructions: destroy again every case the
    register says was destroyed and that is back. Each replayed list becomes a list of its
    own (``replay_of``), approved by the original approval, so the chain records the replay.
    Returns {"lists": n, "destroyed": n}."""
    lists = destroyed = 0
    for entry in entries:
        references = entry.get("cases", [])
        case_ids = dict(ctx.session.execute(select(Case.reference, Case.id).where(
            Case.reference.in_(references), Case.archive_status == records.TO_ARCHIVE)).all())
        ctx.session.rollback()
        if not case_ids:
            continue
        list_id = _replay_list(ctx, entry, case_ids)
        destroyed += _replay_destroy(ctx, list_id)
        lists += 1
    _compact(ctx.session)
    return {"lists": lists, "destroyed": destroyed}


@atomic
def _replay_list(ctx: Context, entry: dict, case_ids: dict) -> int:
    begin_write(ctx.session)
    approved_at = entry.get("approved_at")
    dlist = DestructionList(status=APPROVED, created_at=ctx.now(), replay_of=entry["list_id"],
                            approved_at=dt.datetime.fromisoformat(approved_at)
                            if approved_at else ctx.now())
    ctx.session.add(dlist)
    ctx.session.flush()
    for reference, case_id in case_ids.items():
        case = ctx.session.get(Case, case_id)
        ctx.session.add(DestructionItem(list_id=dlist.id, case_id=case_id, reference=reference,
                                        final_state=case.state,
                                        action_date=case.archive_action_date or ctx.today()))
    audit.append(ctx.session, actor=ctx.actor or SYSTEM, action="replay_destruction_list",
                 details={"list_id": dlist.id, "replay_of": entry["list_id"],
                          "cases": len(case_ids)}, ip=ctx.ip)
    commit(ctx)
    return dlist.id


def _replay_destroy(ctx: Context, list_id: int) -> int:
    """Destroy a replayed list's cases: the register is the approval, so neither a hold
    placed since the backup nor the action date is asked again."""
    item_ids = list(ctx.session.execute(select(DestructionItem.id).where(
        DestructionItem.list_id == list_id)).scalars())
    ctx.session.rollback()
    count = 0
    for item_id in item_ids:
        count += _replay_one(ctx, item_id)
    _finish(ctx, list_id, {ITEM_DESTROYED: count})
    return count


@atomic
def _replay_one(ctx: Context, item_id: int) -> int:
    begin_write(ctx.session)
    item = ctx.session.get(DestructionItem, item_id)
    case = ctx.session.get(Case, item.case_id)
    if case.archive_status != records.TO_ARCHIVE:
        commit(ctx)
        return 0
    _destroy(ctx, case, item.list_id)
    ctx.session.execute(update(DestructionItem).where(DestructionItem.id == item.id)
                        .values(status=ITEM_DESTROYED, destroyed_at=ctx.now())
                        .execution_options(synchronize_session=False))
    commit(ctx)
    return 1


# --- the job, the dry run, and what the screens read ---------------------------------------------

def tick(ctx: Context, register_dir: Path | None = None) -> dict:
    """The records job (daily, in the scheduler process): destroy the approved lists, write
    their register entries, then propose a new list if cases are due. Returns what it did."""
    done = []
    approved = list(ctx.session.execute(select(DestructionList.id).where(
        DestructionList.status == APPROVED).order_by(DestructionList.id)).scalars())
    ctx.session.rollback()
    for list_id in approved:
        outcome = run_destruction(ctx, list_id)
        if register_dir is not None:
            write_register(register_dir, register_record(ctx.session, list_id))
            ctx.session.rollback()
        done.append({"list_id": list_id, **outcome})
    proposed = propose_list(ctx)
    return {"destroyed_lists": done, "proposed": proposed.id if proposed else None}


def dry_run(session, today: dt.date) -> list[dict]:
    """What the next destruction would remove, changing nothing: the cases on approved
    lists, else the cases due today, each with the number of rows per table that would go."""
    rows = session.execute(
        select(Case.id, Case.reference, Case.state, Case.archive_action_date)
        .join(DestructionItem, DestructionItem.case_id == Case.id)
        .join(DestructionList, DestructionList.id == DestructionItem.list_id)
        .where(DestructionList.status == APPROVED, DestructionItem.status == LISTED)
        .order_by(Case.id)).all() or due_cases(session, today)
    out = []
    for case_id, reference, state, action_date in rows:
        counts = {}
        for name, model in (("participant", Participant), ("document", Document),
                            ("evidence_file", EvidenceFile), ("case_note", CaseNote),
                            ("signing_request", SigningRequest),
                            ("ind_confirmation", IndConfirmation),
                            ("outbox_message", OutboxMessage), ("audit_event", AuditEvent)):
            n = session.execute(select(func.count()).select_from(model)
                                .where(model.case_id == case_id)).scalar_one()
            if n:
                counts[name] = n
        out.append({"reference": reference, "final_state": state,
                    "action_date": action_date.isoformat() if action_date else None,
                    "held": _hold_in_force(session, case_id), "rows": counts})
    return out


def list_lists(ctx: Context) -> list[dict]:
    """Every destruction list, newest first, with its item counts by status."""
    _require(ctx, *RECORDS_ROLES)
    counts = {}
    for list_id, status, n in ctx.session.execute(
            select(DestructionItem.list_id, DestructionItem.status, func.count())
            .group_by(DestructionItem.list_id, DestructionItem.status)):
        counts.setdefault(list_id, {})[status] = n
    lists = ctx.session.execute(select(DestructionList)
                                .order_by(DestructionList.id.desc())).scalars().all()
    return [{"list": d, "counts": counts.get(d.id, {})} for d in lists]


def read_list(ctx: Context, list_id: int) -> dict:
    """One destruction list with its items and the names of the people who acted on it."""
    _require(ctx, *RECORDS_ROLES)
    dlist = _load_list(ctx, list_id)
    items = ctx.session.execute(select(DestructionItem).where(
        DestructionItem.list_id == list_id).order_by(DestructionItem.id)).scalars().all()
    ids = {dlist.created_by, dlist.reviewed_by, dlist.approved_by,
           *(i.removed_by for i in items)} - {None}
    names = dict(ctx.session.execute(select(User.id, User.name).where(User.id.in_(ids))).all())
    return {"list": dlist, "items": items, "names": names}


def list_holds(ctx: Context, active_only: bool = True) -> list[dict]:
    """The legal holds (in force only, by default), newest first, with case references."""
    _require(ctx, *RECORDS_ROLES)
    query = (select(LegalHold, Case.reference).join(Case, Case.id == LegalHold.case_id)
             .order_by(LegalHold.id.desc()))
    if active_only:
        query = query.where(LegalHold.lifted_at.is_(None))
    return [{"hold": h, "reference": ref} for h, ref in ctx.session.execute(query).all()]


def overview(ctx: Context) -> dict:
    """What the records screens and the dashboard show first: the rules in force, how many
    cases are due and not yet on a list, the lists waiting for this person's step (a
    records manager reviews proposed lists, a process owner approves reviewed ones), the
    holds in force and the cases destroyed so far."""
    _require(ctx, *RECORDS_ROLES)
    session = ctx.session
    waiting_status = PROPOSED if ctx.actor.role == RECORDS_MANAGER else REVIEWED
    waiting = session.execute(select(DestructionList.id).where(
        DestructionList.status == waiting_status).order_by(DestructionList.id)).scalars().all()
    holds = session.execute(select(func.count()).select_from(LegalHold)
                            .where(LegalHold.lifted_at.is_(None))).scalar_one()
    destroyed = session.execute(select(func.count()).select_from(Case).where(
        Case.archive_status == records.DESTROYED)).scalar_one()
    rules = sorted(ctx.policy.retention_rules, key=lambda r: (r.final_state, r.effective_from))
    return {"due": len(due_cases(session, ctx.today())), "waiting": list(waiting),
            "waiting_status": waiting_status, "holds": holds, "destroyed": destroyed,
            "rules": rules, "today": ctx.today()}
