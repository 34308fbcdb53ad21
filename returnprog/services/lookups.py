"""The lookups every use case shares: which cases an actor may see, loading one, the facts
the workflow guards read, and the case's live payment.

Read-only: nothing here commits. Kept apart from the use cases so that cases, payments,
signing and reminders can all use them without importing each other.
"""
from __future__ import annotations

import datetime as dt
import json

from sqlalchemy import select

from .. import payments, workflow
from ..roles import COUNSELLOR, FINANCE, SUPERVISOR
from ..models import (Case, Document, IndConfirmation, Participant, Payment, User,
                      LIVE_PAYMENT_STATUSES)
from ..workflow import CaseFacts, ParticipantFacts, PaymentFacts, State
from . import Context, NotFound

__all__ = ["allowed_actions", "gather_facts", "is_adult", "live_payment", "load_case",
           "visible_cases"]


def visible_cases(actor: User):
    """A SELECT of the cases ``actor`` may see.

    Counsellors and supervisors see their team's cases; finance officers see cases with a
    payment (the payment views); admins manage users and see no personal data.
    """
    query = select(Case)
    if actor.role in (COUNSELLOR, SUPERVISOR):
        return query.where(Case.team_id == actor.team_id)
    if actor.role == FINANCE:
        return query.where(Case.id.in_(select(Payment.case_id)))
    return query.where(False)


def load_case(ctx: Context, reference: str) -> Case:
    """The case ``reference`` if the actor may see it; otherwise NotFound (never 403, so
    a reference guessed in a URL does not reveal that the case exists)."""
    # A NUL cannot be in a reference, and PostgreSQL refuses it in a query parameter.
    case = None if "\x00" in reference else ctx.session.execute(
        visible_cases(ctx.actor).where(Case.reference == reference)).scalar_one_or_none()
    if case is None:
        raise NotFound("case.not_found", ref=reference)
    return case


# --- facts ---------------------------------------------------------------------------------

def is_adult(p: Participant, today: dt.date, policy) -> bool:
    """Whether participant ``p`` signs for themselves on ``today``."""
    return policy.is_adult_on(p.date_of_birth, today)


def gather_facts(ctx: Context, case: Case) -> CaseFacts:
    """Snapshot of everything the workflow guards read, taken in the current transaction."""
    session, today = ctx.session, ctx.today()
    people = session.execute(select(Participant).where(Participant.case_id == case.id)
                             .order_by(Participant.id)).scalars().all()
    docs = session.execute(select(Document.participant_id, Document.kind, Document.terms)
                           .where(Document.case_id == case.id)).all()
    confirmed = set(session.execute(select(IndConfirmation.participant_id)
                                    .where(IndConfirmation.case_id == case.id)).scalars())
    signed: dict[int, set[str]] = {}
    deadlines: dict[tuple[int, str], set[dt.date]] = {}
    for pid, kind, terms in docs:
        signed.setdefault(pid, set()).add(kind)
        if kind in (workflow.DEPARTURE_AGREEMENT, workflow.ADDENDUM):
            deadline = json.loads(terms or "{}").get("departure_deadline")
            if deadline:
                deadlines.setdefault((pid, kind), set()).add(dt.date.fromisoformat(deadline))
    facts_people = tuple(ParticipantFacts(
        id=p.id, name=p.full_name, is_adult=is_adult(p, today, ctx.policy),
        asylum_application_pending=p.asylum_application_pending,
        signed=frozenset(signed.get(p.id, ())),
        agreement_deadlines=frozenset(deadlines.get((p.id, workflow.DEPARTURE_AGREEMENT), ())),
        addendum_deadlines=frozenset(deadlines.get((p.id, workflow.ADDENDUM), ())),
        ind_confirmed=p.id in confirmed, has_contact=bool(p.email or p.phone)) for p in people)
    payment = live_payment(ctx, case)
    pay_facts = None
    if payment is not None:
        adults = sum(1 for p in facts_people if p.is_adult)
        q = payments.quote(ctx.policy, adults, len(facts_people) - adults,
                           payment.proposed_at.date())
        persons = person_of(ctx, payment.proposed_by, payment.approved_by)
        pay_facts = PaymentFacts(payment.status, payment.proposed_by, payment.approved_by,
                                 payment.amount_cents, q.amount_cents if q else None,
                                 proposer_person=persons.get(payment.proposed_by),
                                 approver_person=persons.get(payment.approved_by))
    return CaseFacts(state=State(case.state), today=today, participants=facts_people,
                     departure_deadline=case.departure_deadline,
                     destination_oblast=case.destination_oblast,
                     destination_place=case.destination_place, payment=pay_facts)


def person_of(ctx: Context, *user_ids: int | None) -> dict[int, str]:
    """Who holds each of these accounts (``User.person``), by account id."""
    ids = {i for i in user_ids if i is not None}
    if not ids:
        return {}
    return dict(ctx.session.execute(select(User.id, User.person).where(User.id.in_(ids))).all())


def live_payment(ctx: Context, case: Case) -> Payment | None:
    """The case's payment that is proposed, approved or disbursed (at most one exists)."""
    return ctx.session.execute(select(Payment).where(
        Payment.case_id == case.id, Payment.status.in_(LIVE_PAYMENT_STATUSES))).scalar_one_or_none()


def allowed_actions(ctx: Context, case: Case) -> list[str]:
    """The actions the actor could perform on ``case`` now."""
    return workflow.allowed_actions(gather_facts(ctx, case), ctx.actor.role, ctx.policy)
