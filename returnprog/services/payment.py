"""Use cases of travel-support payments: propose, approve or reject (four eyes), cancel,
disburse exactly once (the ``pay_support`` transition), record a re-entry with a reclaim,
list payments, and the finance export (SEPA pain.001 or CSV) with its download.

Every use case takes the write lock first (``begin_write``), checks who may act and what
the case may see, changes the payment by compare-and-set on its status and version, writes
one audit event and commits — or rolls back completely and raises a ServiceError.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import json

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import aliased

from .. import audit, payment_flow, payments, statements
from ..models import Case, Document, Payment, User
from ..roles import PAYMENT_FOLLOW_UP_ROLES
from ..workflow import (ACTIONS, PAYMENT_CANCELLERS, PAYMENT_DECIDERS, PAYMENT_PROPOSERS,
                        PAYMENT_RECEIPT, State)
from . import Conflict, Context, Forbidden, Invalid, NotFound, ServiceError, transitions
from .access import record_look
from .lookups import (APPROVER, DISBURSER, PROPOSER, SETTLER, gather_facts, live_payment,
                      load_case, person_of, user_ref, user_refs, visible_cases)
from .uow import atomic, begin_write, commit
from ..messages import M

STALE_MESSAGE = "payment.stale"


def _lock_case_state(ctx: Context, case: Case) -> str:
    """The case's current state, read with a row lock (PostgreSQL) so that a payment change
    and a workflow transition on the same case cannot interleave. SQLite is already
    serialised by ``begin_write``."""
    return ctx.session.execute(select(Case.state).where(Case.id == case.id)
                               .with_for_update()).scalar_one()


# States after the release: a payment is then only proposed to replace a returned one.
AFTER_RELEASE = (State.SUPPORT_PAID.value, State.DEPARTED.value)


def _returned_to_replace(ctx: Context, case: Case) -> Payment | None:
    """The case's latest payment if the bank returned it and nothing replaced it yet."""
    latest = ctx.session.execute(select(Payment).where(Payment.case_id == case.id)
                                 .order_by(Payment.id.desc()).limit(1)).scalar_one_or_none()
    if latest is not None and latest.status == "returned":
        return latest
    # A replacement that was itself rejected or cancelled leaves the return to repair.
    if latest is not None and latest.replaces_id is not None and \
            latest.status in ("rejected", "cancelled"):
        return ctx.session.get(Payment, latest.replaces_id)
    return None


def _require_state(ctx: Context, case: Case, state: State, what: str) -> None:
    current = _lock_case_state(ctx, case)
    if current != state.value:
        raise Conflict(what, [{"code": "wrong_state", "message": M("wrong_state:now", state=current)}],
                       state=state.value)


def _the_payment(ctx: Context, case: Case, statuses: tuple[str, ...], payment_id: int | None,
                 expected_version: int | None, what: str) -> Payment:
    """The case's live payment in one of ``statuses``; when the caller names the payment
    (and version) they looked at, it must still be that one — so nobody approves a
    proposal they have not seen."""
    payment = live_payment(ctx, case)
    if payment is None or payment.status not in statuses:
        state = payment.status if payment is not None else "none"
        raise Conflict(f"payment.none_to_{what}",
                       [{"code": "no_payment", "message": M(f"payment.none_to_{what}:detail",
                                                            status=state, statuses=statuses)}])
    if payment_id is not None and payment.id != payment_id:
        raise Conflict(STALE_MESSAGE, [{"code": "payment_replaced", "field": "payment_id",
                                        "message": M("payment.replaced", current=payment.id,
                                                     given=payment_id)}])
    if expected_version is not None and payment.version != expected_version:
        raise Conflict(STALE_MESSAGE, [{"code": "stale_version", "field": "version",
                                        "message": M("payment.version", version=payment.version)}])
    return payment


def _named_payment(ctx: Context, case: Case, payment_id: int) -> Payment:
    """Payment ``payment_id`` of ``case`` (any status), or NotFound: the sub-resource
    ``/cases/{reference}/payments/{payment_id}`` names a payment that must exist on that
    case; whether it may still change is the caller's next question (a Conflict)."""
    payment = ctx.session.execute(select(Payment).where(
        Payment.id == payment_id, Payment.case_id == case.id)).scalar_one_or_none()
    if payment is None:
        raise NotFound("payment.not_found", ref=case.reference, id=payment_id)
    return payment


def _compare_and_set(ctx: Context, payment: Payment, statuses: tuple[str, ...],
                     *extra_conditions, **values) -> None:
    """Change ``payment`` only if nobody else changed it since we read it."""
    changed = ctx.session.execute(
        update(Payment).where(Payment.id == payment.id, Payment.version == payment.version,
                              Payment.status.in_(statuses), *extra_conditions)
        .values(version=payment.version + 1, **values)
        .execution_options(synchronize_session=False)).rowcount
    if changed != 1:
        raise Conflict(STALE_MESSAGE, [{"code": "stale_version",
                                        "message": M('payment.changed_first')}])


def _finish(ctx: Context, payment: Payment) -> Payment:
    commit(ctx)
    ctx.session.refresh(payment)
    return payment


# --- propose, decide, cancel -----------------------------------------------------------------

@atomic
def propose(ctx: Context, reference: str, data: dict) -> Payment:
    """A counsellor proposes the household's travel support: the amount comes from the
    tariff in force (per adult, per minor) and is stored with its breakdown."""
    begin_write(ctx.session)
    if ctx.actor.role not in PAYMENT_PROPOSERS:
        raise Forbidden('payment.propose_role',
                        [{"code": "role", "message": M('payment.propose_role')}])
    case = load_case(ctx, reference)
    current = _lock_case_state(ctx, case)
    replaces = None
    if current in AFTER_RELEASE:
        # After release only a corrected payment for one the bank returned (issue 15).
        replaces = _returned_to_replace(ctx, case)
        if replaces is None:
            raise Conflict('payment.reproposal_state',
                           [{"code": "wrong_state", "message": M("wrong_state:now", state=current)}])
    elif current != State.DEPARTURE_AGREED.value:
        raise Conflict('payment.propose_state', [{"code": "wrong_state", "message": M("wrong_state:now", state=current)}])
    existing = live_payment(ctx, case)
    if existing is not None:
        raise Conflict('payment.live_exists',
                       [{"code": "payment_exists",
                         "message": M("payment.live_detail", id=existing.id,
                                      status=existing.status)}])
    method = data.get("method")
    problems = payments.method_problems(method, data.get("iban"), data.get("account_holder"))
    if problems:
        raise Invalid('payment.details_wrong', problems)
    iban = holder = None
    if method == "transfer":
        iban, _ = payments.iban_check(data.get("iban"))
        holder = data["account_holder"].strip()
    if replaces is not None:
        # The same money again, to corrected details: the amount and its breakdown are
        # the returned payment's (the tariff of its day), not a new quote.
        amount, adults, minors = replaces.amount_cents, replaces.adults, replaces.minors
        tariff_from, breakdown = replaces.tariff_effective_from, json.loads(replaces.breakdown)
    else:
        facts = gather_facts(ctx, case)
        n_adults = len(facts.adults)
        q = payments.quote(ctx.policy, n_adults, len(facts.participants) - n_adults,
                           ctx.today())
        if q is None:
            raise Conflict('payment.no_tariff_today',
                           [{"code": "tariff_missing", "message": M('payment.configure_tariff')}])
        amount, adults, minors = q.amount_cents, q.adults, q.minors
        tariff_from, breakdown = q.tariff_effective_from, q.breakdown()
    payment = Payment(case_id=case.id, status="proposed", amount_cents=amount,
                      currency=ctx.policy.currency, adults=adults, minors=minors,
                      tariff_effective_from=tariff_from,
                      breakdown=json.dumps(breakdown, sort_keys=True), method=method,
                      iban=iban, account_holder=holder, proposed_by=ctx.actor.id,
                      proposed_at=ctx.now(),
                      replaces_id=replaces.id if replaces is not None else None)
    ctx.session.add(payment)
    try:
        ctx.session.flush()
    except (IntegrityError, OperationalError) as exc:
        raise Conflict('payment.live_exists') from exc
    audit.append(ctx.session, actor=ctx.actor, action="propose_payment", case_id=case.id,
                 details={"payment_id": payment.id, "amount_cents": amount,
                          "method": method, "iban": payments.mask_iban(iban),
                          "breakdown": breakdown,
                          **({"replaces": replaces.id} if replaces is not None else {})},
                 ip=ctx.ip)
    commit(ctx, "payment.live_exists")
    return payment


def _decide(ctx: Context, reference: str, new_status: str, reason: str | None,
            payment_id: int | None, expected_version: int | None,
            by_id: bool = False) -> Payment:
    begin_write(ctx.session)
    verb = "approve" if new_status == "approved" else "reject"
    if ctx.actor.role not in PAYMENT_DECIDERS:
        raise Forbidden(f"payment.{verb}_role",
                        [{"code": "role", "message": M(f"payment.{verb}_role")}])
    case = load_case(ctx, reference)
    if by_id:
        _named_payment(ctx, case, payment_id)
    current = _lock_case_state(ctx, case)
    payment = _the_payment(ctx, case, ("proposed",), payment_id, expected_version, verb)
    if new_status == "approved" and current != State.DEPARTURE_AGREED.value and not (
            current in AFTER_RELEASE and payment.replaces_id is not None):
        raise Conflict("payment.wrong_state:approve",
                       [{"code": "wrong_state", "message": M("wrong_state:now", state=current)}],
                       state=State.DEPARTURE_AGREED.value)
    persons = person_of(ctx, payment.proposed_by)
    problem = payments.decision_problem(ctx.actor.role, ctx.actor.id, payment.proposed_by,
                                        actor_person=ctx.actor.person,
                                        proposer_person=persons.get(payment.proposed_by))
    if problem:
        raise Forbidden(problem, [{"code": "payment_four_eyes",
                                   "message": M('payment.own_proposal_detail')}])
    if new_status == "rejected" and not (reason or "").strip():
        raise Invalid('reason_missing', {"reason": [M('payment.reject_reason')]})
    _compare_and_set(ctx, payment, ("proposed",), status=new_status, approved_by=ctx.actor.id,
                     approved_at=ctx.now(), decision_reason=reason)
    audit.append(ctx.session, actor=ctx.actor, action=f"{verb}_payment", case_id=case.id,
                 details={"payment_id": payment.id, "amount_cents": payment.amount_cents,
                          "method": payment.method, "proposed_by": payment.proposed_by,
                          **({"reason": reason} if reason else {})}, ip=ctx.ip)
    return _finish(ctx, payment)


# ``by_id``: the caller names the payment in the address (the payment sub-resource), so a
# payment id that is not one of the case's is "not found" (404); without it (the older
# routes) the id in the body is only compared with the live payment's (409 if another).

@atomic
def approve(ctx: Context, reference: str, payment_id: int | None = None,
            expected_version: int | None = None, *, by_id: bool = False) -> Payment:
    """A supervisor other than the proposer approves the proposed payment (four eyes)."""
    return _decide(ctx, reference, "approved", None, payment_id, expected_version, by_id)


@atomic
def reject(ctx: Context, reference: str, reason: str, payment_id: int | None = None,
           expected_version: int | None = None, *, by_id: bool = False) -> Payment:
    """A supervisor other than the proposer rejects the proposed payment with a reason;
    a new proposal may then be made."""
    return _decide(ctx, reference, "rejected", reason, payment_id, expected_version, by_id)


@atomic
def cancel(ctx: Context, reference: str, reason: str, payment_id: int | None = None,
           expected_version: int | None = None, *, by_id: bool = False) -> Payment:
    """A counsellor or supervisor cancels a proposed or approved payment with a reason —
    only before the money has gone out (not disbursed, not in a bank export file)."""
    begin_write(ctx.session)
    if ctx.actor.role not in PAYMENT_CANCELLERS:
        raise Forbidden('payment.cancel_role',
                        [{"code": "role", "message": M('payment.cancel_role_detail')}])
    if not (reason or "").strip():
        raise Invalid('reason_missing', {"reason": [M("payment.cancel_reason")]})
    case = load_case(ctx, reference)
    if by_id:
        _named_payment(ctx, case, payment_id)
    _lock_case_state(ctx, case)
    live = live_payment(ctx, case)
    if live is not None and live.status in payment_flow.PAID_OUT_STATUSES:
        raise Conflict('payment.already_paid', [{"code": "payment_already_disbursed",
                                       "message": M('payment.reclaim_instead')}])
    payment = _the_payment(ctx, case, payments.CANCELLABLE_STATUSES, payment_id,
                           expected_version, "cancel")
    if payment.export_batch_id is not None:
        raise Conflict('payment.in_export',
                       [{"code": "payment_exported",
                         "message": M("payment.exported_in", batch=payment.export_batch_id)}])
    _compare_and_set(ctx, payment, payments.CANCELLABLE_STATUSES,
                     Payment.export_batch_id.is_(None), status="cancelled",
                     decision_reason=reason.strip())
    audit.append(ctx.session, actor=ctx.actor, action="cancel_payment", case_id=case.id,
                 details={"payment_id": payment.id, "from_status": payment.status,
                          "reason": reason.strip()}, ip=ctx.ip)
    return _finish(ctx, payment)


# --- disbursement (pay_support) ----------------------------------------------------------------

def request_hash(payload: dict) -> str:
    """Fingerprint of a disbursement request, to tell a replay from a different request."""
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


def _fingerprint(ctx: Context, reference: str, payload: dict) -> str:
    # The same key is "the same request" only for the same case, body and finance officer.
    return request_hash({"reference": reference, "actor_id": getattr(ctx.actor, "id", None),
                         **payload})


def _replayed(ctx: Context, reference: str, payload: dict) -> Case | None:
    """The case if this exact request was already carried out (a replay); raises when the
    key was used for a different request; None when the key is new."""
    existing = ctx.session.execute(select(Payment).where(
        Payment.idempotency_key == payload["idempotency_key"])
        # Read the row as it is now: an object this session loaded earlier may be stale.
        .execution_options(populate_existing=True)).scalar_one_or_none()
    if existing is None:
        return None
    case = load_case(ctx, reference)
    if existing.case_id != case.id or existing.request_hash != _fingerprint(ctx, reference, payload):
        raise Conflict('payment.idempotency_reused',
                       [{"code": "idempotency_key_reused", "field": "idempotency_key",
                         "message": M('payment.new_key')}])
    return case


@atomic
def disburse(ctx: Context, reference: str, payload: dict, *, payment_id: int | None = None,
             expected_version: int | None = None) -> Case:
    """``pay_support`` under an idempotency key: a finance officer pays out the approved
    payment and the case moves to ``support_paid``. A replay of the same request returns
    the first result without paying again; the same key with a different request is
    refused; of racing requests exactly one pays.

    ``payment_id`` and ``expected_version`` (the payment sub-resource's ``pay``): the
    payment must be one of the case's (else NotFound) and, unless this is a replay, still
    be the approved payment at that version (else a Conflict)."""
    expect = (payment_id, expected_version)
    if payment_id is not None:
        # Before anything else: a payment the case does not have is "not found".
        _named_payment(ctx, load_case(ctx, reference), payment_id)
    if ctx.actor.role not in ACTIONS["pay_support"].roles or not payload.get("idempotency_key"):
        # The transition refuses these (a payout without a key fails in its side effect);
        # refusing there keeps the key lookup to finance's well-formed requests.
        return _pay_out(ctx, reference, payload, expect)
    case = _replayed(ctx, reference, payload)
    if case is not None:
        return case
    try:
        return _pay_out(ctx, reference, payload, expect)
    except Conflict:
        # A racing request with the same key may have won while we waited: answer as it did.
        ctx.session.rollback()
        case = _replayed(ctx, reference, payload)
        if case is not None:
            return case
        raise


def _pay_out(ctx: Context, reference: str, payload: dict,
             expect: tuple[int | None, int | None] = (None, None)) -> Case:
    def side_effect(ctx: Context, case: Case, payload: dict) -> dict:
        return _disburse_in_transition(ctx, case, payload, *expect)
    case = load_case(ctx, reference)
    if case.state in AFTER_RELEASE:
        return _release_replacement(ctx, case, payload, expect)
    return transitions.run(ctx, reference, "pay_support", payload, side_effect=side_effect)


def _release_replacement(ctx: Context, case: Case, payload: dict,
                         expect: tuple[int | None, int | None]) -> Case:
    """Release a corrected payment on a case that is already past ``pay_support`` (the
    bank returned the first one): the same four-eyes and exactly-once checks as the
    transition, without moving the case again."""
    begin_write(ctx.session)
    if ctx.actor.role not in ACTIONS["pay_support"].roles:
        raise Forbidden("payment.finance_only:export",
                        [{"code": "role", "message": M("payment.finance_only:export")}])
    if _lock_case_state(ctx, case) not in AFTER_RELEASE:
        raise Conflict(STALE_MESSAGE, [{"code": "stale_version",
                                        "message": M("payment.changed_first")}])
    payment = live_payment(ctx, case)
    if payment is None or payment.replaces_id is None:
        raise Conflict("payment.none_approved")
    details = _disburse_in_transition(ctx, case, payload, *expect)
    audit.append(ctx.session, actor=ctx.actor, action="release_payment", case_id=case.id,
                 details={**details, "replaces": payment.replaces_id}, ip=ctx.ip)
    commit(ctx)
    ctx.session.refresh(case)
    return case


@atomic
def pay(ctx: Context, reference: str, payment_id: int, expected_version: int,
        idempotency_key: str) -> dict:
    """The payment sub-resource's ``pay``: the ``pay_support`` transition of the case
    (:func:`disburse`, the same idempotency rules) for payment ``payment_id`` at
    ``expected_version``. Returns the payment as :func:`read_payment` does (a replay
    answers the payment as it is now)."""
    disburse(ctx, reference, {"idempotency_key": idempotency_key}, payment_id=payment_id,
             expected_version=expected_version)
    return read_payment(ctx, reference, payment_id, log_look=False)


def _disburse_in_transition(ctx: Context, case: Case, payload: dict,
                            payment_id: int | None = None,
                            expected_version: int | None = None) -> dict:
    """Mark the approved payment disbursed inside the ``pay_support`` transition
    (compare-and-set on the payment's status, so it can happen only once). Returns the
    details for the transition's audit event."""
    payment = live_payment(ctx, case)
    try:
        if payment is None or payment.status != "approved":
            raise Conflict('payment.none_approved')
        if payment_id is not None and payment.id != payment_id:
            raise Conflict(STALE_MESSAGE, [{"code": "payment_replaced", "field": "payment_id",
                                            "message": M("payment.replaced", current=payment.id,
                                                         given=payment_id)}])
        if expected_version is not None and payment.version != expected_version:
            raise Conflict(STALE_MESSAGE, [{"code": "stale_version", "field": "version",
                                            "message": M("payment.version",
                                                         version=payment.version)}])
        if not payload.get("idempotency_key"):
            raise Invalid("error.invalid_fields",
                          {"idempotency_key": [M("field.required")]})
        persons = person_of(ctx, payment.proposed_by, payment.approved_by)
        problem = payments.disbursement_problem(
            ctx.actor.id, payment.proposed_by, payment.approved_by,
            actor_person=ctx.actor.person, other_persons=tuple(persons.values()))
        if problem:
            raise Forbidden(problem, [{"code": "payment_four_eyes", "message": problem}])
        place = (payload.get("handed_over_place") or "").strip() or None
        if place is not None and payment.method == payment_flow.TRANSFER:
            raise Invalid("error.invalid_fields",
                          {"handed_over_place": [M("payment.no_place_for_transfer")]})
        _compare_and_set(ctx, payment, ("approved",), status="disbursed",
                         disbursed_by=ctx.actor.id, disbursed_at=ctx.now(),
                         handed_over_place=place,
                         idempotency_key=payload["idempotency_key"],
                         request_hash=_fingerprint(ctx, case.reference, payload))
    except ServiceError:
        # The case's state was already changed in this transaction: undo all of it.
        ctx.session.rollback()
        raise
    details = {"payment_id": payment.id, "amount_cents": payment.amount_cents,
               "method": payment.method}
    if payment.method == "cash":
        # The participant signs a payment receipt for the cash (documents flow,
        # kind "payment_receipt", signable while the case is support_paid).
        details["receipt_required"] = True
    return details


# --- after departure ------------------------------------------------------------------------------

@atomic
def record_reentry(ctx: Context, reference: str, data: dict, *, by_id: bool = False) -> Payment:
    """After departure, record that the person came back to the Netherlands and how much
    of the travel support is reclaimed (DTenV precedent: reclaimable on re-entry).
    ``data`` may name the ``payment_id`` and ``version`` looked at (``by_id``: the id is
    in the address and must be one of the case's payments)."""
    begin_write(ctx.session)
    if ctx.actor.role not in PAYMENT_FOLLOW_UP_ROLES:
        raise Forbidden('payment.reentry_role',
                        [{"code": "role", "message": M('payment.role_detail')}])
    case = load_case(ctx, reference)
    if by_id:
        _named_payment(ctx, case, data["payment_id"])
    _require_state(ctx, case, State.DEPARTED, "payment.wrong_state:reentry")
    payment = ctx.session.execute(select(Payment).where(
        Payment.case_id == case.id,
        Payment.status.in_(payment_flow.PAID_OUT_STATUSES))).scalar_one_or_none()
    if payment is None:
        raise Conflict('payment.reentry_none_paid',
                       [{"code": "no_payment", "message": M('payment.nothing_to_reclaim')}])
    if payment.reentry_on is not None:
        raise Conflict('payment.reentry_exists',
                       [{"code": "reentry_exists",
                         "message": M("payment.reentry_on", date=payment.reentry_on)}])
    if data.get("payment_id") is not None and data["payment_id"] != payment.id:
        raise Conflict(STALE_MESSAGE, [{"code": "payment_replaced", "field": "payment_id",
                                        "message": M("payment.paid_out_is", id=payment.id)}])
    if data.get("version") is not None and data["version"] != payment.version:
        raise Conflict(STALE_MESSAGE, [{"code": "stale_version", "field": "version",
                                        "message": M("payment.version", version=payment.version)}])
    reclaim = data["reclaim_cents"]
    if not isinstance(reclaim, int) or isinstance(reclaim, bool):
        raise Invalid('payment.whole_cents', {"reclaim_cents": [M("payment.whole_cents_example")]})
    problems = payments.reclaim_problems(reclaim, payment.amount_cents, data["reentry_on"],
                                         case.departed_on, ctx.today())
    if problems:
        raise Invalid('payment.reentry_invalid', problems)
    _compare_and_set(ctx, payment, payment_flow.PAID_OUT_STATUSES, Payment.reentry_on.is_(None),
                     reentry_on=data["reentry_on"], reclaim_cents=reclaim)
    audit.append(ctx.session, actor=ctx.actor, action="record_reentry", case_id=case.id,
                 details={"payment_id": payment.id, "reentry_on": data["reentry_on"].isoformat(),
                          "reclaim_cents": reclaim,
                          **({"note": data["note"]} if data.get("note") else {})}, ip=ctx.ip)
    return _finish(ctx, payment)


# --- reading --------------------------------------------------------------------------------------

def payment_data(payment: Payment, reference: str, *, full_iban: bool = True,
                 receipt_signed: bool | None = None, users: dict | None = None) -> dict:
    """Plain-data dump of one payment for responses and pages. The people who proposed,
    decided and disbursed it are ``{"id", "name"}`` (``users``: :func:`user_refs` of
    them, read by the caller with the payment; an account missing there is named by its
    id only)."""
    users = users or {}

    def who(user_id):
        return None if user_id is None else users.get(user_id) or user_ref(user_id)
    decided = who(payment.approved_by)
    return {
        "id": payment.id, "case_reference": reference, "status": payment.status,
        "version": payment.version, "amount_cents": payment.amount_cents,
        "amount": payments.format_cents(payment.amount_cents), "currency": payment.currency,
        "adults": payment.adults, "minors": payment.minors,
        "tariff_effective_from": payment.tariff_effective_from,
        "breakdown": json.loads(payment.breakdown or "{}"), "method": payment.method,
        "iban": payment.iban if full_iban else payments.mask_iban(payment.iban),
        "account_holder": payment.account_holder,
        "proposed_by": who(payment.proposed_by), "proposed_at": payment.proposed_at,
        "decided_by": decided, "decided_at": payment.approved_at,
        "approved_by": decided if payment.status != "rejected" else None,
        "decision_reason": payment.decision_reason,
        "disbursed_by": who(payment.disbursed_by), "disbursed_at": payment.disbursed_at,
        "settled_by": who(payment.settled_by),
        "export_batch_id": payment.export_batch_id,
        "end_to_end_id": payment.end_to_end_id, "sent_at": payment.sent_at,
        "booked_at": payment.booked_at, "returned_at": payment.returned_at,
        "return_reason": payment.return_reason,
        "return_reason_text": statements.return_reason_text(payment.return_reason),
        "replaces_id": payment.replaces_id,
        "handed_over_place": payment.handed_over_place,
        "receipt_required": payment.method == "cash" and payment.status == "disbursed",
        "receipt_signed": receipt_signed,
        "reentry_on": payment.reentry_on, "reclaim_cents": payment.reclaim_cents,
    }


@atomic
def payment_out(ctx: Context, payment: Payment, reference: str) -> dict:
    """:func:`payment_data` of a payment a use case has just changed and returned, with
    its people's names (one read, after the commit)."""
    users = user_refs(ctx, payment.proposed_by, payment.approved_by, payment.disbursed_by,
                      payment.settled_by)
    data = payment_data(payment, reference, users=users)
    ctx.session.commit()  # read only: ends the snapshot
    return data


def _receipt_signed(ctx: Context, case_id: int) -> bool:
    return bool(ctx.session.execute(select(func.count()).select_from(Document).where(
        Document.case_id == case_id, Document.kind == PAYMENT_RECEIPT,
        Document.superseded_at.is_(None))).scalar_one())


@atomic
def read_payment(ctx: Context, reference: str, payment_id: int | None = None, *,
                 log_look: bool = True) -> dict:
    """Payment ``payment_id`` of the case (NotFound if the case has no such payment) —
    or, without an id, the case's current payment (the live one, else the latest) — with
    its bank details. Looking at bank details is recorded in the access log."""
    case = load_case(ctx, reference)
    if payment_id is not None:
        payment = ctx.session.execute(select(Payment).where(
            Payment.id == payment_id, Payment.case_id == case.id)
            .execution_options(populate_existing=True)).scalar_one_or_none()
        if payment is None:
            raise NotFound("payment.not_found", ref=case.reference, id=payment_id)
    else:
        payment = ctx.session.execute(select(Payment).where(Payment.case_id == case.id).order_by(
            Payment.status.in_(payments.LIVE_STATUSES).desc(), Payment.id.desc())
            .limit(1)).scalar_one_or_none()
    if payment is None:
        raise NotFound("payment.case_has_none", ref=reference)
    people = _people(ctx, payment.proposed_by, payment.approved_by, payment.disbursed_by,
                     payment.settled_by)
    data = payment_data(payment, case.reference,
                        receipt_signed=_receipt_signed(ctx, case.id)
                        if payment.method == "cash" else None,
                        users={uid: ref for uid, (ref, _person) in people.items()})
    # The reader's own part in it, as a person (for the pages: no dead decide button).
    proposer = people.get(payment.proposed_by)
    data["own_proposal"] = payment.proposed_by == ctx.actor.id or \
        (proposer is not None and proposer[1] == ctx.actor.person)
    if log_look:
        record_look(ctx, case.id, "payment", subject=str(payment.id))
    return data


def _people(ctx: Context, *user_ids: int | None) -> dict[int, tuple[dict, str | None]]:
    """``(user_ref, person)`` of each of these accounts, by id: one statement."""
    ids = {i for i in user_ids if i is not None}
    if not ids:
        return {}
    rows = ctx.session.execute(select(User.id, User.name, User.email, User.person)
                               .where(User.id.in_(ids))).all()
    return {uid: (user_ref(uid, name, email), person) for uid, name, email, person in rows}


@atomic
def case_payments(ctx: Context, reference: str) -> dict:
    """Every payment of the case, oldest first, with the people as ``{"id", "name"}``
    and the IBAN masked (the single payment's read shows it, and logs the look): three
    statements however many payments."""
    case = load_case(ctx, reference)
    rows = ctx.session.execute(select(Payment).where(Payment.case_id == case.id)
                               .order_by(Payment.id)).scalars().all()
    users = user_refs(ctx, *(uid for p in rows
                             for uid in (p.proposed_by, p.approved_by, p.disbursed_by,
                                         p.settled_by)))
    page = {"items": [payment_data(p, case.reference, full_iban=False, users=users)
                      for p in rows]}
    ctx.session.commit()  # read only: ends the snapshot
    return page


def list_payments(ctx: Context, filters: dict) -> dict:
    """One page of the payments on cases the actor may see, newest first; IBANs masked."""
    cases = visible_cases(ctx.actor).subquery()
    query = (select(Payment, cases.c.reference).join(cases, cases.c.id == Payment.case_id))
    if filters.get("status"):
        query = query.where(Payment.status == filters["status"])
    if filters.get("method"):
        query = query.where(Payment.method == filters["method"])
    if filters.get("case"):
        query = query.where(cases.c.reference == filters["case"])
    if filters.get("exported") is not None:
        query = query.where(Payment.export_batch_id.is_not(None) if filters["exported"]
                            else Payment.export_batch_id.is_(None))
    if filters.get("awaiting_correction"):
        # Returned by the bank, and no corrected payment proposed that is still standing.
        fix = aliased(Payment)
        query = query.where(Payment.status == "returned", ~select(fix.id).where(
            fix.replaces_id == Payment.id,
            fix.status.not_in(("rejected", "cancelled"))).exists())
    page, per_page = filters.get("page", 1), filters.get("per_page", 25)
    total = ctx.session.execute(select(func.count()).select_from(query.subquery())).scalar_one()
    # The people of each payment joined into the page (no statement per row or more).
    people = (PROPOSER, APPROVER, DISBURSER, SETTLER)
    for person, column in zip(people, (Payment.proposed_by, Payment.approved_by,
                                       Payment.disbursed_by, Payment.settled_by)):
        query = query.add_columns(person.name, person.email).outerjoin(
            person, person.id == column)
    rows = ctx.session.execute(query.order_by(Payment.id.desc()).limit(per_page)
                               .offset((page - 1) * per_page)).all()
    items = []
    for p, ref, *names in rows:
        users = {uid: user_ref(uid, names[2 * i], names[2 * i + 1]) for i, uid in enumerate(
            (p.proposed_by, p.approved_by, p.disbursed_by, p.settled_by)) if uid is not None}
        item = payment_data(p, ref, full_iban=False, users=users)
        item["status_since"] = status_since(p)
        item["age_days"] = _age_days(ctx, item["status_since"])
        items.append(item)
    return {"page": page, "per_page": per_page, "total": total, "items": items}


def status_since(payment: Payment):
    """When the payment came into its current status (a scheduled transfer: since its
    release; a cancelled one: since its last recorded step)."""
    return {"proposed": payment.proposed_at, "approved": payment.approved_at,
            "rejected": payment.approved_at, "disbursed": payment.disbursed_at,
            "scheduled": payment.disbursed_at, "sent": payment.sent_at,
            "booked": payment.booked_at, "returned": payment.returned_at}.get(
        payment.status) or payment.approved_at or payment.proposed_at


def _age_days(ctx: Context, since) -> int | None:
    if since is None:
        return None
    if since.tzinfo is None:
        since = since.replace(tzinfo=dt.timezone.utc)
    return max(0, (ctx.now() - since).days)


__all__ = ["propose", "approve", "reject", "cancel", "disburse", "pay",
           "record_reentry", "read_payment", "case_payments", "list_payments", "payment_data",
           "payment_out", "request_hash", "status_since"]
