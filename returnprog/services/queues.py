"""The work queues (issue 13): for the signed-in person, the cases waiting on them (or on
the participant, or on the IND) and the step each one needs, within what they may see.

Set-based: every queue of a role costs a fixed number of statements however many cases
there are — the candidate cases once, their rows in one statement per table
(:func:`lookups.case_snapshots`), their open signing links — and the rules come from the
workflow table through :mod:`returnprog.queues`. Read only: nothing here writes, and the
queues show no identifiers beyond the case reference and the principal's name (like the
case list); opening a case from a queue is the look that is logged.
"""
from __future__ import annotations

import datetime as dt
from typing import NamedTuple

from sqlalchemy import and_, exists, select

from .. import queues as rules
from ..models import Case, Document, Payment, SigningRequest
from ..roles import COUNSELLOR, FINANCE, SUPERVISOR
from ..workflow import ADDENDUM, FINAL_STATES, State
from . import Context, NotFound
from .lookups import (COUNSELLOR_USER, PRINCIPAL, PROPOSER, case_snapshots, display_name,
                      gather_facts, visible_cases)

# States in which a departure deadline is running (as on the dashboard).
DEADLINE_STATES = (State.DEPARTURE_AGREED.value, State.SUPPORT_PAID.value)
OPEN_STATES = tuple(s.value for s in State if s not in FINAL_STATES)


def queue_names(role: str) -> tuple[str, ...]:
    """The queues a role works from (none for administrators)."""
    return rules.QUEUES_BY_ROLE.get(role, ())


# The case columns the queues show and the workflow guards read (rows, not ORM objects:
# a queue may hold a thousand cases).
CASE_COLUMNS = (Case.id, Case.reference, Case.state, Case.departure_deadline,
                Case.destination_oblast, Case.destination_place)


class _CaseRow(NamedTuple):
    id: int
    reference: str
    state: str
    departure_deadline: dt.date | None
    destination_oblast: str | None
    destination_place: str | None


def _with_names(query):
    """``query`` (a SELECT of cases) as the columns of CASE_COLUMNS with the principal's
    name and the counsellor's name and address joined in."""
    principal, counsellor = PRINCIPAL, COUNSELLOR_USER
    return (query.with_only_columns(*CASE_COLUMNS)
            .add_columns(principal.given_names_latin, principal.family_name_latin,
                         counsellor.name, counsellor.email)
            .outerjoin(principal, and_(principal.case_id == Case.id, principal.is_principal))
            .outerjoin(counsellor, counsellor.id == Case.counsellor_id))


def _split(row) -> tuple[_CaseRow, tuple]:
    """A row of :func:`_with_names`: the case, then the rest."""
    width = len(CASE_COLUMNS)
    return _CaseRow(*row[:width]), tuple(row[width:])


def _row(ctx: Context, case: _CaseRow, given, family, name, email, entry=None) -> dict:
    today = ctx.today()
    row = {"reference": case.reference, "state": case.state,
           "principal_name": f"{given} {family}" if given is not None else "",
           "counsellor": display_name(name, email),
           "departure_deadline": case.departure_deadline,
           "days_left": (case.departure_deadline - today).days
           if case.departure_deadline else None}
    if entry is not None:
        since = entry.since
        row.update({
            "step": entry.step, "reasons": [r.as_dict() for r in entry.reasons],
            "names": list(entry.names), "since": since,
            "days_waiting": (today - since.date()).days if since is not None else None,
            "expires_at": entry.expires_at, "expiring_soon": entry.expiring_soon,
            "expired": entry.expired, **entry.extra})
    return row


def _counsellor_queues(ctx: Context) -> dict[str, list[dict]]:
    """The counsellor's own open cases, sorted into ``mine``, ``participant`` and ``ind``:
    five statements (cases, participants, documents, payments, open links)."""
    actor, now = ctx.actor, ctx.now()
    query = visible_cases(actor).where(Case.counsellor_id == actor.id,
                                       Case.state.in_(OPEN_STATES))
    ids = query.with_only_columns(Case.id)
    cases = ctx.session.execute(_with_names(query).order_by(Case.id)).all()
    snaps = case_snapshots(ctx, ids)
    links: dict[int, list[rules.LinkFacts]] = {}
    for case_id, pid, kind, expires_at in ctx.session.execute(
            select(SigningRequest.case_id, SigningRequest.participant_id, SigningRequest.kind,
                   SigningRequest.expires_at)
            .where(SigningRequest.case_id.in_(ids), SigningRequest.used_at.is_(None),
                   SigningRequest.revoked_at.is_(None))).all():
        links.setdefault(case_id, []).append(rules.LinkFacts(pid, kind, expires_at))
    out: dict[str, list[dict]] = {q: [] for q in queue_names(COUNSELLOR)}
    for case, names in map(_split, cases):
        snap = snaps.get(case.id)
        if snap is None:
            continue  # a case without participants cannot exist past open_case
        facts = gather_facts(ctx, case, snap)
        signed_at: dict[str, dt.datetime] = {}
        for doc in snap.documents:
            if doc.signed_at is not None:
                moment = rules.aware(doc.signed_at)
                signed_at[doc.kind] = max(signed_at.get(doc.kind, moment), moment)
        for entry in rules.counsellor_entries(facts, links.get(case.id, ()), now, ctx.policy,
                                              signed_at):
            out[entry.queue].append(_row(ctx, case, *names, entry=entry))
    # The longest wait first where it is known; otherwise oldest case first.
    out[rules.IND].sort(key=lambda r: (r["since"] is None, r["since"] or now))
    out[rules.PARTICIPANT].sort(key=lambda r: (not r["expired"], not r["expiring_soon"],
                                               r["expires_at"] or now))
    return out


def _approvals(ctx: Context) -> list[dict]:
    """Proposed payments on the team's cases that the reader did not propose (four eyes,
    by account and by person): one statement."""
    actor = ctx.actor
    proposer = PROPOSER
    query = _with_names(visible_cases(actor).where(Case.state.in_(OPEN_STATES)))
    rows = ctx.session.execute(
        query.add_columns(Payment.id, Payment.amount_cents, Payment.currency, Payment.method,
                          Payment.proposed_by, Payment.proposed_at, proposer.person,
                          proposer.name, proposer.email)
        .join(Payment, and_(Payment.case_id == Case.id, Payment.status == "proposed"))
        .outerjoin(proposer, proposer.id == Payment.proposed_by)
        .order_by(Payment.proposed_at, Payment.id)).all()
    out = []
    for case, (given, family, name, email, pid, cents, currency, method, by, at, person,
               pname, pemail) in map(_split, rows):
        if rules.own_proposal(by, person, actor.id, actor.person):
            continue
        row = _row(ctx, case, given, family, name, email)
        row.update({"step": rules.DECIDE_PAYMENT, "payment_id": pid, "amount_cents": cents,
                    "currency": currency, "method": method, "proposed_at": at,
                    "proposed_by": display_name(pname, pemail)})
        out.append(row)
    return out


def _extensions(ctx: Context) -> list[dict]:
    """Cases in ``departure_agreed`` where every adult signed an addendum for one later
    deadline: the supervisor's extension decision. Four statements (the cases with an
    addendum, then their rows)."""
    query = visible_cases(ctx.actor).where(
        Case.state == State.DEPARTURE_AGREED.value,
        exists().where(Document.case_id == Case.id, Document.kind == ADDENDUM))
    cases = ctx.session.execute(_with_names(query).order_by(Case.departure_deadline,
                                                            Case.id)).all()
    snaps = case_snapshots(ctx, query.with_only_columns(Case.id))
    out = []
    for case, names in map(_split, cases):
        snap = snaps.get(case.id)
        entry = rules.extension_entry(gather_facts(ctx, case, snap), ctx.policy) if snap else None
        if entry is not None:
            out.append(_row(ctx, case, *names, entry=entry))
    return out


def _overdue(ctx: Context) -> list[dict]:
    """The team's cases past their departure deadline without a confirmed departure: one
    statement."""
    query = visible_cases(ctx.actor).where(Case.state.in_(DEADLINE_STATES),
                                           Case.departure_deadline < ctx.today())
    out = []
    for case, names in map(_split, ctx.session.execute(
            _with_names(query).order_by(Case.departure_deadline, Case.id)).all()):
        row = _row(ctx, case, *names)
        row.update({"step": rules.overdue_step(State(case.state)),
                    "days_overdue": -row["days_left"]})
        out.append(row)
    return out


def _to_pay(ctx: Context) -> list[dict]:
    """Approved payments on the cases finance may see, oldest approval first: one
    statement. A bank transfer not yet in an export is flagged ``to_export``."""
    query = _with_names(visible_cases(ctx.actor).where(
        Case.state == State.DEPARTURE_AGREED.value))
    rows = ctx.session.execute(
        query.add_columns(Payment.id, Payment.amount_cents, Payment.currency, Payment.method,
                          Payment.approved_at, Payment.export_batch_id)
        .join(Payment, and_(Payment.case_id == Case.id, Payment.status == "approved"))
        .order_by(Payment.approved_at, Payment.id)).all()
    out = []
    for case, (given, family, name, email, pid, cents, currency, method, at, batch) in map(
            _split, rows):
        row = _row(ctx, case, given, family, name, email)
        row.update({"step": "pay_support", "payment_id": pid, "amount_cents": cents,
                    "currency": currency, "method": method, "approved_at": at,
                    "to_export": rules.to_export(method, batch is not None)})
        out.append(row)
    return out


_SUPERVISOR = {rules.APPROVALS: _approvals, rules.EXTENSIONS: _extensions,
               rules.OVERDUE: _overdue}


def work_queues(ctx: Context, only: str | None = None) -> dict[str, list[dict]]:
    """Every queue of the reader's role (or just ``only``), by name, each a list of rows:
    the case (reference, state, principal, counsellor, deadline) and its ``step`` — a
    workflow action or one of the steps of :mod:`returnprog.queues` — with what is still
    missing (``reasons``) and the queue's own columns. Unknown queue, or one of another
    role: NotFound."""
    role = ctx.actor.role
    names = queue_names(role)
    if only is not None and only not in names:
        raise NotFound("queue.not_found", name=only)
    if role == COUNSELLOR:
        out = _counsellor_queues(ctx)
    elif role == SUPERVISOR:
        out = {name: fn(ctx) for name, fn in _SUPERVISOR.items() if only in (None, name)}
    elif role == FINANCE:
        out = {rules.TO_PAY: _to_pay(ctx)}
    else:
        out = {}
    return {name: rows for name, rows in out.items() if only in (None, name)}


def queue_counts(ctx: Context) -> dict[str, int]:
    """How many cases are in each of the reader's queues (the dashboard's and the API's
    counts): the same rows as :func:`work_queues`, so a count is always its queue's
    length."""
    return {name: len(rows) for name, rows in work_queues(ctx).items()}
