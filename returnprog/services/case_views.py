"""Read helpers for the case pages: which steps are open to the reader now and what is
still missing for the others, who still has to sign what, the deadline bounds, and the
download of a signed document (logged, like every look at personal data)."""
from __future__ import annotations

import datetime as dt

from sqlalchemy import select

from .. import payments, workflow
from ..models import Document
from ..roles import INTAKE_ROLES
from ..workflow import ACTIONS, CASE_ACTIONS, State
from . import Context, NotFound
from .outbox import failed_messages
from .access import record_look
from .lookups import gather_facts, live_payment, load_case, person_of
from .uow import atomic

def outlook(ctx: Context, reference: str) -> dict:
    """The next steps on a case as the reader sees them.

    ``steps``: every workflow action the reader's role could take from the case's current
    state, each either ``allowed`` or with the ``refusals`` that say what is missing.
    ``payment``: the live payment and which payment steps the reader may take.
    ``ind_pending``: participants still needing an IND confirmation (while committed).
    ``signing``: per adult, the documents of this stage and whether each is signed.
    ``bounds``: earliest and latest departure deadline that may be agreed today.
    ``failed_messages``: reminders that could not be delivered after the last retry.
    """
    case = load_case(ctx, reference)
    facts = gather_facts(ctx, case)
    role, policy = ctx.actor.role, ctx.policy
    steps = []
    for name in CASE_ACTIONS:
        action = ACTIONS[name]
        if workflow.role_refusals(action, role) or workflow.state_refusals(action, facts.state):
            continue
        refusals = action.precondition(facts, {}, policy)
        steps.append({"action": name, "allowed": not refusals,
                      "refusals": [r.as_dict() for r in refusals]})
    payment = live_payment(ctx, case)
    adults = len(facts.adults)
    quote = payments.quote(policy, adults, len(facts.participants) - adults, ctx.today())
    pay_steps = {
        "propose": role in workflow.PAYMENT_PROPOSERS and facts.state == State.DEPARTURE_AGREED
        and payment is None,
        "decide": role in workflow.PAYMENT_DECIDERS and payment is not None
        and payment.status == "proposed",
        # Also a proposal from another account of the same person: four eyes is by people.
        "own_proposal": payment is not None and (
            payment.proposed_by == ctx.actor.id
            or person_of(ctx, payment.proposed_by).get(payment.proposed_by) == ctx.actor.person),
    }
    ind_pending = [{"id": p.id, "name": p.name} for p in facts.participants
                   if p.asylum_application_pending and not p.ind_confirmed] \
        if facts.state == State.COMMITTED and role in INTAKE_ROLES else []
    kinds = [k for k, states in workflow.SIGNING_STATES.items()
             if facts.state in states and k != workflow.PAYMENT_RECEIPT]
    if payment is not None and payment.method == "cash" and payment.status == "disbursed" \
            and facts.state in workflow.SIGNING_STATES.get(workflow.PAYMENT_RECEIPT, ()):
        kinds.append(workflow.PAYMENT_RECEIPT)  # cash handed over: the receipt is signed
    signing = [{"participant_id": p.id, "name": p.name,
                "documents": [{"kind": k, "signed": k in p.signed} for k in kinds]}
               for p in facts.adults] if kinds else []
    common_agreement = _common(p.agreement_deadlines for p in facts.adults)
    common_addendum = _common(p.addendum_deadlines for p in facts.adults)
    return {
        "steps": steps,
        "payment": ({"id": payment.id, "version": payment.version, "status": payment.status,
                     "amount_cents": payment.amount_cents, "method": payment.method,
                     "currency": payment.currency}
                    if payment else None),
        "payment_steps": pay_steps,
        "quote": ({"amount_cents": quote.amount_cents, **quote.breakdown()} if quote else None),
        "ind_pending": ind_pending,
        "signing": signing,
        "unsigned": sum(1 for a in signing for d in a["documents"] if not d["signed"]),
        "bounds": {"earliest": policy.earliest_deadline(ctx.today()),
                   "latest": policy.latest_deadline(ctx.today()),
                   "reception_end": policy.reception_end},
        "signed_deadlines": {
            "agree_departure": max(common_agreement) if common_agreement else None,
            "extend_deadline": max(common_addendum) if common_addendum else None},
        "today": ctx.today(),
        "failed_messages": failed_messages(ctx.session, case_id=case.id),
    }


def _common(sets) -> set[dt.date]:
    sets = list(sets)
    if not sets:
        return set()
    out = set(sets[0])
    for s in sets[1:]:
        out &= set(s)
    return out


@atomic
def document_for_download(ctx: Context, reference: str, document_id: int) -> Document:
    """A signed document of a case the reader may see; the download is recorded in the
    access log (it is a look at personal data)."""
    case = load_case(ctx, reference)
    doc = ctx.session.execute(select(Document).where(
        Document.id == document_id, Document.case_id == case.id)).scalar_one_or_none()
    if doc is None:
        raise NotFound("case.no_document", id=document_id, ref=reference)
    record_look(ctx, case.id, "document", subject=str(doc.id))
    return doc
