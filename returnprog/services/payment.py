"""Use cases of travel-support payments: propose, approve (four eyes), reject, cancel,
and disburse exactly once as part of the ``pay_support`` transition."""
from __future__ import annotations

import hashlib
import json

from sqlalchemy import select, update

from .. import audit, payments, workflow
from ..db import begin_write
from ..identifiers import iban_problem, normalise_iban
from ..models import Payment
from ..workflow import State
from . import Conflict, Context, Forbidden, Invalid
from .cases import commit, gather_facts, live_payment, load_case, perform


def propose(ctx: Context, reference: str, data: dict) -> Payment:
    """A counsellor proposes the household's travel support (amount from the tariff)."""
    if ctx.actor.role != "counsellor":
        raise Forbidden("Only a counsellor may propose a payment.")
    begin_write(ctx.session)
    case = load_case(ctx, reference)
    if case.state != State.DEPARTURE_AGREED.value:
        raise Conflict("Travel support can be proposed once the departure agreement is signed "
                       "and agreed.", [{"code": "wrong_state", "message": f"The case is {case.state}."}])
    if live_payment(ctx, case) is not None:
        raise Conflict("This case already has a live payment.",
                       [{"code": "payment_exists", "message": "Cancel or reject it first."}])
    method = data["method"]
    iban = holder = None
    if method == "transfer":
        errors = {}
        iban = normalise_iban(data.get("iban") or "")
        holder = (data.get("account_holder") or "").strip()
        if not iban:
            errors["iban"] = ["An IBAN is required for a bank transfer."]
        elif (problem := iban_problem(iban)):
            errors["iban"] = [f"Not a valid IBAN: {problem}."]
        if not holder:
            errors["account_holder"] = ["The account holder is required for a bank transfer."]
        if errors:
            raise Invalid("The payment details are incomplete.", errors)
    facts = gather_facts(ctx, case)
    adults = len(facts.adults)
    q = payments.quote(ctx.policy, adults, len(facts.participants) - adults, ctx.today())
    if q is None:
        raise Conflict("No travel-support tariff is in force today.",
                       [{"code": "tariff_missing", "message": "Configure a tariff."}])
    payment = Payment(case_id=case.id, status="proposed", amount_cents=q.amount_cents,
                      currency=ctx.policy.currency, adults=q.adults, minors=q.minors,
                      tariff_effective_from=q.tariff_effective_from,
                      breakdown=json.dumps(q.breakdown()), method=method, iban=iban,
                      account_holder=holder, proposed_by=ctx.actor.id, proposed_at=ctx.now())
    ctx.session.add(payment)
    audit.append(ctx.session, actor=ctx.actor, action="propose_payment", case_id=case.id,
                 details={"amount_cents": q.amount_cents, "method": method}, ip=ctx.ip)
    commit(ctx, "This case already has a live payment.")
    return payment


def _decide(ctx: Context, reference: str, new_status: str, reason: str | None) -> Payment:
    begin_write(ctx.session)
    case = load_case(ctx, reference)
    payment = live_payment(ctx, case)
    if payment is None or payment.status != "proposed":
        raise Conflict("There is no proposed payment to decide on.",
                       [{"code": "no_proposed_payment", "message": "Nothing awaits a decision."}])
    if payment.proposed_by == ctx.actor.id:
        raise Forbidden("You proposed this payment; someone else must decide on it (four eyes).",
                        [{"code": "payment_four_eyes",
                          "message": "The proposer can never approve their own proposal."}])
    changed = ctx.session.execute(update(Payment).where(
        Payment.id == payment.id, Payment.version == payment.version, Payment.status == "proposed")
        .values(status=new_status, version=payment.version + 1, approved_by=ctx.actor.id,
                approved_at=ctx.now(), decision_reason=reason)).rowcount
    if changed != 1:
        ctx.session.rollback()
        raise Conflict("The payment was changed by someone else; reload and try again.")
    audit.append(ctx.session, actor=ctx.actor, action=f"{new_status}_payment", case_id=case.id,
                 details={"payment_id": payment.id, "reason": reason}, ip=ctx.ip)
    commit(ctx)
    ctx.session.refresh(payment)
    return payment


def approve(ctx: Context, reference: str) -> Payment:
    """A supervisor other than the proposer approves the proposed payment."""
    if ctx.actor.role != "supervisor":
        raise Forbidden("Only a supervisor may approve a payment.")
    return _decide(ctx, reference, "approved", None)


def reject(ctx: Context, reference: str, reason: str) -> Payment:
    """A supervisor other than the proposer rejects the proposed payment with a reason."""
    if ctx.actor.role != "supervisor":
        raise Forbidden("Only a supervisor may reject a payment.")
    return _decide(ctx, reference, "rejected", reason)


def request_hash(payload: dict) -> str:
    """Fingerprint of a disbursement request, to tell a replay from a different request."""
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


def disburse(ctx: Context, reference: str, payload: dict):
    """``pay_support`` with an idempotency key: a replay of the same request returns the
    first result; the same key with a different request is refused."""
    key = payload["idempotency_key"]
    existing = ctx.session.execute(select(Payment).where(Payment.idempotency_key == key)
                                   ).scalar_one_or_none()
    if existing is not None:
        case = load_case(ctx, reference)
        if existing.case_id != case.id or existing.request_hash != request_hash(
                {"reference": reference, **payload}):
            raise Conflict("This idempotency key was already used for a different request.",
                           [{"code": "idempotency_key_reused", "field": "idempotency_key",
                             "message": "Use a new key for a new request."}])
        return case
    try:
        return perform(ctx, reference, "pay_support", payload)
    except Conflict:
        # A racing request with the same key may have won while we waited: replay it.
        ctx.session.rollback()
        existing = ctx.session.execute(select(Payment).where(Payment.idempotency_key == key)
                                       ).scalar_one_or_none()
        if existing is not None and existing.request_hash == request_hash(
                {"reference": reference, **payload}):
            return load_case(ctx, reference)
        raise


def disburse_in_transition(ctx: Context, case, payload: dict) -> dict:
    """Mark the approved payment disbursed inside the ``pay_support`` transition
    (compare-and-set on the payment's status, so it can happen only once)."""
    payment = live_payment(ctx, case)
    changed = ctx.session.execute(update(Payment).where(
        Payment.id == payment.id, Payment.status == "approved", Payment.version == payment.version)
        .values(status="disbursed", version=payment.version + 1, disbursed_by=ctx.actor.id,
                disbursed_at=ctx.now(), idempotency_key=payload["idempotency_key"],
                request_hash=request_hash({"reference": case.reference, **payload}))).rowcount
    if changed != 1:
        ctx.session.rollback()
        raise Conflict("The payment was already disbursed.")
    return {"payment_id": payment.id, "amount_cents": payment.amount_cents}
