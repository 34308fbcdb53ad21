"""Corrections after signing (issue 13): put right a case's details at any state before a
final one.

Two kinds of data:

- **Contact data** (a participant's e-mail, phone and language; the case's intake notes) is
  not stated by any signed document: it is corrected in place. A corrected e-mail address
  withdraws the participant's open signing links (they were sent to the old address) and
  the reminders still waiting to go to it; the next reminder or link goes to the new one.
- **Stated data** (names in both scripts, dates of birth, the destination) is printed on
  signed documents. Which documents state it is worked out, not listed: each live signed
  document's data (:func:`signing.document_data`) is computed before and after the
  correction, and every document whose content changes is affected. Of those, the ones
  whose kind can still be signed in the case's state are *superseded* (the signed PDF
  stays; the guards want the new version signed) and open signing links whose document
  would change are revoked; the ones of a step already taken are history and stay as
  they are (listed in the audit event as ``kept_documents``).

:func:`correct_case` with ``dry_run=True`` makes the same change inside the transaction
and rolls it back, so what the review page lists is exactly what saving will do.

Refused: a case in a final state; a stale version; a date of birth that turns a minor
into an adult or back once anything is signed (that changes who signs and the tariff: a
household change, not a correction); the destination once the departure agreement is
the step taken (``departure_agreed`` and later: the agreement fixes it and can no longer
be re-signed); an adult left with neither e-mail nor phone after intake.

**Household composition** (issue 13: household data stated by signed documents is
corrected only by re-issuing the affected documents). Every kind of document prints the
participants table, so adding or removing a member changes every live document; the same
before/after comparison finds them, and the ones signable in the current state are
superseded. The rules, and why:

- *Adding an adult* only while the case is in ``intake``: every adult signs the
  commitment, which can be signed only in ``intake``; an adult joining later would never
  have committed (``correction.adult_joins_late``).
- *Adding a minor* in any non-final state until a live payment (proposed, approved,
  disbursed) exists: the travel support is worked out from the household, and a payment
  proposed for the old household would pay the wrong amount (``correction.household_paid``:
  cancel or reject the payment first). A minor with a pending asylum application may
  join only until the withdrawal is recorded (``intake``, ``committed``): the adults'
  withdrawal declarations withdraw it and cannot be signed again after that step
  (``correction.minor_joins_late``). The new member is validated as at intake
  (:class:`~returnprog.schemas.MemberSchema`, :func:`workflow.household_problems`), their
  V-number claimed as at intake (one held by another open case is refused).
- *Removing a member* (never the principal, ``correction.principal_stays``) only when they
  have signed nothing on the case (no document, no used signing link) and have no IND
  confirmation: signatures and confirmations are part of the case's record
  (``correction.member_signed``, ``correction.member_confirmed``); the same payment rule
  applies. Their unused signing links are deleted (the messages about them lose the link,
  pending ones are cancelled), their V-number is released, their row is deleted.

The audit event records members added (participant id, relationship, adult or minor)
and removed (participant id), never their names or identifiers.

The audit event records every changed field. Values that identify a person (names, date
of birth, e-mail, phone) and the free-text notes are recorded as SHA-256 digests of the
old and new value, never in clear (the chain holds no personal identifiers); language
and destination are recorded old → new in clear.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import json

from sqlalchemy import delete, func, select, update

from .. import audit, search, workflow
from ..models import (LIVE_PAYMENT_STATUSES, Case, Document, IndConfirmation, OpenVNumber,
                      OutboxMessage, Participant, Payment, SigningRequest)
from ..roles import INTAKE_ROLES
from ..schemas import MAX_HOUSEHOLD
from ..workflow import FINAL_STATES, State
from . import Conflict, Forbidden, Invalid, Context
from .lookups import load_case
from .signing import _household, document_data
from .cases import _claim_v_numbers, _participant
from .uow import BUSY_MESSAGE, atomic, begin_write, commit
from ..messages import M

# Per participant: corrected in place, no document states them.
CONTACT_FIELDS = ("email", "phone", "language")
# Per participant: printed on the signed documents.
STATED_FIELDS = ("given_names_latin", "family_name_latin", "given_names_cyrillic",
                 "family_name_cyrillic", "date_of_birth")
PARTICIPANT_FIELDS = STATED_FIELDS + CONTACT_FIELDS
# Of the case: notes are not stated; the destination is (the departure agreement).
CASE_FIELDS = ("intake_notes", "destination_oblast", "destination_place")
# Recorded in the audit chain only as digests.
DIGESTED = frozenset(STATED_FIELDS + ("email", "phone", "intake_notes"))
# The destination is the departure agreement's own term: past that step it is fixed.
DESTINATION_FIXED = frozenset({State.DEPARTURE_AGREED, State.SUPPORT_PAID})


def _digest(value) -> str | None:
    if value is None:
        return None
    text = value.isoformat() if isinstance(value, dt.date) else str(value)
    return hashlib.sha256(text.encode()).hexdigest()


def _audit_change(change: dict) -> dict:
    """One change as the audit chain keeps it (see the module docstring)."""
    out = {"participant_id": change["participant_id"], "field": change["field"]}
    if change["field"] in DIGESTED:
        out["old_sha256"], out["new_sha256"] = _digest(change["old"]), _digest(change["new"])
    else:
        out["old"], out["new"] = change["old"], change["new"]
    return out


# What each kind of document prints (pdf_templates/: base.html, _macros.html and the
# kind's own template), of the data it is rendered from: every kind has the participants
# table, the signer with their V-number and the conditions (deadline, amount).
_PRINTED = ("reference", "participants", "signer", "departure_deadline", "amount_cents")
PRINTED_BY_KIND = {
    workflow.COMMITMENT: _PRINTED,
    workflow.WITHDRAWAL_DECLARATION: _PRINTED,
    workflow.DEPARTURE_AGREEMENT: _PRINTED + ("destination_oblast", "destination_place",
                                              "breakdown"),
    workflow.ADDENDUM: _PRINTED + ("previous_deadline", "reason"),
    workflow.PAYMENT_RECEIPT: _PRINTED + ("breakdown", "method"),
}
# Of a person: the participants table shows names, date of birth and adult or minor.
_PRINTED_PERSON = ("given_names_latin", "family_name_latin", "given_names_cyrillic",
                   "family_name_cyrillic", "date_of_birth", "is_adult", "v_number")


def stated(kind: str, data: dict) -> dict:
    """The part of a document's data (:func:`signing.document_data`) that its PDF prints:
    two documents whose ``stated`` is equal say the same."""
    person = lambda p: {k: p.get(k) for k in _PRINTED_PERSON}  # noqa: E731
    out = {k: data.get(k) for k in PRINTED_BY_KIND.get(kind, _PRINTED)}
    out["participants"] = [person(p) for p in data.get("participants") or []]
    out["signer"] = person(data.get("signer") or {})
    return out


def _content(ctx: Context, case: Case, people: dict, household: dict, pid: int, kind: str,
             terms: dict) -> dict | None:
    person = people.get(pid)
    if person is None:
        return None
    return stated(kind, document_data(ctx, case, person, kind, terms, household=household))


def _changes(case: Case, people: dict, data: dict) -> list[dict]:
    changes = []
    for name in CASE_FIELDS:
        if name in data and data[name] != getattr(case, name):
            changes.append({"participant_id": None, "field": name,
                            "old": getattr(case, name), "new": data[name]})
    for entry in data.get("participants", []):
        person = people.get(entry["id"])
        if person is None:
            raise Invalid('case.unknown_participant',
                          {"participant_id": [M('case.not_a_participant')]})
        for name in PARTICIPANT_FIELDS:
            if name in entry and entry[name] != getattr(person, name):
                changes.append({"participant_id": person.id, "field": name,
                                "old": getattr(person, name), "new": entry[name]})
    return changes


def _refusals(ctx: Context, case: Case, changes: list[dict], signed: bool) -> None:
    state = State(case.state)
    if state in DESTINATION_FIXED and any(
            c["field"] in ("destination_oblast", "destination_place") for c in changes):
        raise Conflict('correction.destination_agreed',
                       [{"code": "destination_agreed",
                         "message": M('correction.destination_agreed_detail')}])
    today = ctx.today()
    for c in changes:
        if c["field"] == "date_of_birth" and signed and \
                ctx.policy.is_adult_on(c["old"], today) != ctx.policy.is_adult_on(c["new"], today):
            raise Conflict('correction.adulthood_changes',
                           [{"code": "adulthood_changes", "field": "date_of_birth",
                             "participant_id": c["participant_id"],
                             "message": M('correction.adulthood_changes_detail')}])


def _contact_refusal(ctx: Context, case: Case, people: dict, changes: list[dict]) -> None:
    """After intake the reminders need a way to reach each adult: a correction may not
    take the last one away (an adult who never had one is not this correction's doing)."""
    if State(case.state) == State.INTAKE:
        return
    touched = {c["participant_id"] for c in changes if c["field"] in ("email", "phone")}
    for pid in touched:
        person = people[pid]
        if ctx.policy.is_adult_on(person.date_of_birth, ctx.today()) and not (
                person.email or person.phone):
            raise Invalid('correction.contact_missing',
                          {"participant_id": [M('correction.contact_missing_detail')]})


def _refuse(code: str, detail: str, **extra) -> Conflict:
    return Conflict(code, [{"code": code.split(".", 1)[1], "message": M(detail), **extra}])


def _household_refusals(ctx: Context, case: Case, people: dict, data: dict,
                        changes: list[dict]) -> tuple[list[dict], list[int]]:
    """Check the members to add and to remove (see the module docstring) before anything
    is written; returns them (adds as MemberSchema data, removes as participant ids)."""
    adds = list(data.get("add_members") or [])
    removes = list(dict.fromkeys(data.get("remove_members") or []))
    if not adds and not removes:
        return adds, removes
    session, today, state = ctx.session, ctx.today(), State(case.state)
    for pid in removes:
        if pid not in people:
            raise Invalid('case.unknown_participant',
                          {"remove_members": [M('case.not_a_participant')]})
        if people[pid].is_principal:
            raise _refuse('correction.principal_stays', 'correction.principal_stays_detail',
                          participant_id=pid)
    if session.execute(select(func.count()).select_from(Payment).where(
            Payment.case_id == case.id,
            Payment.status.in_(LIVE_PAYMENT_STATUSES))).scalar_one():
        raise _refuse('correction.household_paid', 'correction.household_paid_detail')
    if removes:
        signed = set(session.execute(select(Document.participant_id).where(
            Document.case_id == case.id, Document.participant_id.in_(removes))).scalars())
        signed |= set(session.execute(select(SigningRequest.participant_id).where(
            SigningRequest.case_id == case.id, SigningRequest.participant_id.in_(removes),
            SigningRequest.used_at.is_not(None))).scalars())
        if signed:
            raise _refuse('correction.member_signed', 'correction.member_signed_detail',
                          participant_id=min(signed))
        confirmed = session.execute(select(IndConfirmation.participant_id).where(
            IndConfirmation.participant_id.in_(removes))).scalars().first()
        if confirmed is not None:
            raise _refuse('correction.member_confirmed', 'correction.member_confirmed_detail',
                          participant_id=confirmed)
    principal = next(p for p in people.values() if p.is_principal)
    principal_born = next((c["new"] for c in changes if c["participant_id"] == principal.id
                           and c["field"] == "date_of_birth"), principal.date_of_birth)
    problems = workflow.household_problems(
        principal_born, [(m.get("relationship"), m.get("date_of_birth")) for m in adds],
        today, ctx.policy)
    if problems:
        details: dict = {}
        for refusal in problems:
            _where, index, name = refusal.field.split(".")
            details.setdefault("add_members", {}).setdefault(index, {}).setdefault(
                name, []).append(refusal.message)
        raise Invalid("error.invalid_fields", details)
    on_case = {p.v_number for p in people.values()}
    for index, m in enumerate(adds):
        if m["v_number"] in on_case:
            raise Invalid("error.invalid_fields", {"add_members": {str(index): {"v_number": [
                M("validate.v_number_twice")]}}})
        on_case.add(m["v_number"])
        adult = ctx.policy.is_adult_on(m["date_of_birth"], today)
        if adult and state != State.INTAKE:
            raise _refuse('correction.adult_joins_late', 'correction.adult_joins_late_detail',
                          field=f"add_members.{index}.date_of_birth")
        if not adult and m.get("asylum_application_pending", True) and \
                state not in workflow.SIGNING_STATES[workflow.WITHDRAWAL_DECLARATION]:
            raise _refuse('correction.minor_joins_late', 'correction.minor_joins_late_detail',
                          field=f"add_members.{index}.asylum_application_pending")
    if len(people) - len(removes) + len(adds) > MAX_HOUSEHOLD + 1:
        raise Invalid('correction.household_too_large', {"add_members": [
            M('correction.household_too_large')]})
    return adds, removes


def _remove_members(ctx: Context, case: Case, people: dict, removes: list[int]) -> int:
    """Delete members who signed nothing: their unused signing links (a message about one
    keeps its text but loses the link; one still waiting is cancelled, as is any other
    message waiting to go to them), their V-number claim and their row. Returns how many
    links were deleted."""
    session = ctx.session
    addresses = sorted({people[pid].email.strip().lower() for pid in removes
                        if people[pid].email})
    if addresses:
        session.execute(update(OutboxMessage).where(
            OutboxMessage.case_id == case.id, OutboxMessage.status == "pending",
            func.lower(OutboxMessage.recipient).in_(addresses)).values(status="cancelled"))
    link_ids = session.execute(select(SigningRequest.id).where(
        SigningRequest.participant_id.in_(removes))).scalars().all()
    if link_ids:
        session.execute(update(OutboxMessage).where(
            OutboxMessage.signing_request_id.in_(link_ids), OutboxMessage.status == "pending")
            .values(status="cancelled"))
        session.execute(update(OutboxMessage).where(
            OutboxMessage.signing_request_id.in_(link_ids)).values(signing_request_id=None))
        session.execute(delete(SigningRequest).where(SigningRequest.id.in_(link_ids)))
    session.execute(delete(OpenVNumber).where(
        OpenVNumber.case_id == case.id,
        OpenVNumber.v_number.in_([people[pid].v_number for pid in removes])))
    for pid in removes:
        session.delete(people.pop(pid))
    session.flush()
    return len(link_ids)


@atomic
def correct_case(ctx: Context, reference: str, data: dict, expected_version: int | None, *,
                 dry_run: bool = False) -> dict:
    """Correct contact and stated data of a case (``data`` as
    :class:`~returnprog.schemas_corrections.CorrectionSchema` loads it: only the keys
    given change). Compare-and-set on ``expected_version``. Returns what was (or, with
    ``dry_run``, would be) done: ``changes`` (field, old, new), ``reissue`` (documents
    superseded, to be signed again), ``kept`` (documents of steps already taken, left as
    signed), ``links_revoked``, ``added`` and ``removed`` (household members) and the case's
    new ``version``."""
    begin_write(ctx.session)
    case = load_case(ctx, reference)
    if ctx.actor.role not in INTAKE_ROLES:
        raise Forbidden('correction.role')
    state = State(case.state)
    if state in FINAL_STATES:
        raise Conflict('correction.case_closed',
                       [{"code": "case_closed", "message": M("wrong_state:now", state=case.state)}])
    if expected_version is None or expected_version != case.version:
        raise Conflict(BUSY_MESSAGE, [{"code": "stale_version",
                                       "message": M("case.version", version=case.version)}])
    session = ctx.session
    people = {p.id: p for p in session.execute(select(Participant).where(
        Participant.case_id == case.id).order_by(Participant.id)).scalars()}
    changes = _changes(case, people, data)
    adds, removes = _household_refusals(ctx, case, people, data, changes)
    if not changes and not adds and not removes:
        raise Invalid('correction.nothing_changed', {})
    docs = session.execute(select(Document.id, Document.kind, Document.version,
                                  Document.participant_id, Document.signer_name, Document.terms)
                           .where(Document.case_id == case.id, Document.superseded_at.is_(None))
                           .order_by(Document.id)).all()
    now = ctx.now()
    links = session.execute(select(SigningRequest).where(
        SigningRequest.case_id == case.id, SigningRequest.used_at.is_(None),
        SigningRequest.revoked_at.is_(None), SigningRequest.expires_at > now)).scalars().all()
    _refusals(ctx, case, changes, bool(docs))

    stated = bool(adds or removes) or any(
        c["field"] in STATED_FIELDS or c["field"].startswith("destination_") for c in changes)
    # The removed members' own links go with them (deleted, not revoked).
    links = [link for link in links if link.participant_id not in removes]
    before_docs, before_links = {}, {}
    if stated:
        household = _household(ctx, case)
        before_docs = {d.id: _content(ctx, case, people, household, d.participant_id, d.kind,
                                      json.loads(d.terms or "{}")) for d in docs}
        before_links = {link.id: _content(ctx, case, people, household, link.participant_id,
                                          link.kind, json.loads(link.terms or "{}"))
                        for link in links}

    version = case.version
    case_values = {c["field"]: c["new"] for c in changes if c["participant_id"] is None}
    done = session.execute(update(Case).where(Case.id == case.id, Case.version == version,
                                              Case.state == case.state)
                           .values(version=version + 1, updated_at=now, **case_values)).rowcount
    if done != 1:
        session.rollback()
        raise Conflict(BUSY_MESSAGE)
    session.refresh(case)
    for c in changes:
        if c["participant_id"] is not None:
            setattr(people[c["participant_id"]], c["field"], c["new"])
    _contact_refusal(ctx, case, people, changes)
    session.flush()
    today = ctx.today()
    removed = [{"participant_id": pid, "relationship": people[pid].relationship,
                "is_adult": ctx.policy.is_adult_on(people[pid].date_of_birth, today)}
               for pid in removes]
    added = []
    if adds:
        new = [_participant(case.id, dict(m, joined_on=today), False) for m in adds]
        session.add_all(new)
        session.flush()
        _claim_v_numbers(ctx, case, new, [f"add_members.{i}.v_number" for i in range(len(new))])
        for person in new:
            people[person.id] = person
            added.append({"participant_id": None if dry_run else person.id,
                          "relationship": person.relationship,
                          "is_adult": ctx.policy.is_adult_on(person.date_of_birth, today),
                          "name": person.full_name})
    # Removed after adding: SQLite may reuse the highest deleted row id, and one event
    # should never name the same participant id as both removed and added.
    links_deleted = _remove_members(ctx, case, people, removes) if removes else 0

    reissue, kept, revoke = [], [], set()
    if stated:
        household = _household(ctx, case)
        for d in docs:
            after = _content(ctx, case, people, household, d.participant_id, d.kind,
                             json.loads(d.terms or "{}"))
            if after == before_docs[d.id]:
                continue
            entry = {"document_id": d.id, "kind": d.kind, "version": d.version,
                     "participant_id": d.participant_id, "signer_name": d.signer_name}
            (reissue if state in workflow.SIGNING_STATES.get(d.kind, ()) else kept).append(entry)
        for link in links:
            after = _content(ctx, case, people, household, link.participant_id, link.kind,
                             json.loads(link.terms or "{}"))
            if after != before_links[link.id]:
                revoke.add(link.id)
    new_email = {c["participant_id"]: c["old"] for c in changes if c["field"] == "email"}
    revoke |= {link.id for link in links if link.participant_id in new_email}
    plan = {"changes": changes, "reissue": reissue, "kept": kept,
            "links_revoked": sorted(revoke), "added": added, "removed": removed,
            "version": version + 1}
    if dry_run:
        session.rollback()
        return plan

    if reissue:
        session.execute(update(Document).where(
            Document.id.in_([d["document_id"] for d in reissue]),
            Document.superseded_at.is_(None)).values(superseded_at=now))
    if revoke:
        session.execute(update(SigningRequest).where(
            SigningRequest.id.in_(sorted(revoke)), SigningRequest.used_at.is_(None),
            SigningRequest.revoked_at.is_(None)).values(revoked_at=now))
    cancelled = 0
    old_addresses = sorted({old.strip().lower() for old in new_email.values() if old})
    if old_addresses:
        # Waiting reminders were addressed to the old address: the next sweep plans them
        # anew for the corrected one (the recipient is part of their idempotency key).
        cancelled = session.execute(update(OutboxMessage).where(
            OutboxMessage.case_id == case.id, OutboxMessage.status == "pending",
            func.lower(OutboxMessage.recipient).in_(old_addresses))
            .values(status="cancelled")).rowcount
    if adds or removes or any(c["field"] in STATED_FIELDS for c in changes):
        search.index_case(session, case.id, case.reference, list(people.values()))
    details = {"changes": [_audit_change(c) for c in changes],
               "superseded_documents": [d["document_id"] for d in reissue]}
    if added:
        details["members_added"] = [{k: a[k] for k in ("participant_id", "relationship",
                                                       "is_adult")} for a in added]
    if removed:
        details["members_removed"] = [r["participant_id"] for r in removed]
    if links_deleted:
        details["signing_links_deleted"] = links_deleted
    if kept:
        details["kept_documents"] = [d["document_id"] for d in kept]
    if revoke:
        details["signing_links_revoked"] = sorted(revoke)
    if cancelled:
        details["reminders_cancelled"] = cancelled
    audit.append(session, actor=ctx.actor, action="correct_case", case_id=case.id,
                 details=details, ip=ctx.ip)
    commit(ctx)
    return plan
