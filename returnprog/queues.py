"""Work queues (issue 13): on whom each open case is waiting and what its next step is,
read off the workflow table rather than restating its rules.

Pure: no Flask, no database, no clock. The service (:mod:`returnprog.services.queues`)
gathers the facts of many cases in a fixed number of statements and asks this module, per
case, which queues the case belongs in.

The queues per role:

- counsellor: ``mine`` (the next main-line step is the counsellor's and needs nothing but
  the counsellor's work), ``participant`` (a signing link was sent and is not signed yet;
  flagged when it expires soon or has expired), ``ind`` (the withdrawal declarations are
  signed, the IND's confirmation is missing);
- supervisor: ``approvals`` (payments proposed by someone else), ``extensions`` (every
  adult signed an addendum for a later deadline: the supervisor extends), ``overdue``
  (departure deadline passed, not departed);
- finance: ``to_pay`` (approved payments to pay out, or to export first).
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Iterable

from . import workflow
from .messages import Refusal
from .policy import Policy
from .roles import COUNSELLOR, FINANCE, SUPERVISOR
from .workflow import ACTIONS, CaseFacts, FINAL_STATES, State

MINE, PARTICIPANT, IND = "mine", "participant", "ind"
APPROVALS, EXTENSIONS, OVERDUE = "approvals", "extensions", "overdue"
TO_PAY = "to_pay"
QUEUES_BY_ROLE: dict[str, tuple[str, ...]] = {
    COUNSELLOR: (MINE, PARTICIPANT, IND),
    SUPERVISOR: (APPROVALS, EXTENSIONS, OVERDUE),
    FINANCE: (TO_PAY,),
}
QUEUE_NAMES = tuple(q for qs in QUEUES_BY_ROLE.values() for q in qs)

# Steps around the workflow actions (a step is otherwise a workflow action's name).
COMPLETE_INTAKE = "complete_intake"
SIGN = "sign"
RECORD_IND = "record_ind"
PROPOSE_PAYMENT = "propose_payment"
DECIDE_PAYMENT = "decide_payment"
EXPORT = "export"
OPEN_CASE_PAGE = "case"

# How long before its expiry a signing link is flagged (the participant may need a nudge).
EXPIRES_SOON = dt.timedelta(hours=48)

_EXITS = frozenset({State.LEFT_PROGRAMME, State.REJECTED, State.LAPSED})
# The main line, read off the table: from each state the action that moves the case on
# towards departure (not an exit, not a loop such as the extension).
MAIN_LINE: dict[State, str] = {
    source: a.name for a in ACTIONS.values() for source in a.sources
    if a.target not in _EXITS and a.target != source}


@dataclass(frozen=True)
class LinkFacts:
    """A signing link that was sent and neither used nor withdrawn."""

    participant_id: int
    kind: str
    expires_at: dt.datetime


@dataclass(frozen=True)
class Entry:
    """One case in one queue: the step to take and what the workflow says about it."""

    queue: str
    step: str
    reasons: tuple[Refusal, ...] = ()
    # Who the entry is about (participants still to sign, still to be confirmed).
    names: tuple[str, ...] = ()
    # For the IND: since when the declarations are signed.
    since: dt.datetime | None = None
    # For signing links: the earliest expiry, and the flags.
    expires_at: dt.datetime | None = None
    expiring_soon: bool = False
    expired: bool = False
    extra: dict = field(default_factory=dict, compare=False)


def aware(moment: dt.datetime) -> dt.datetime:
    """``moment`` with its zone: UTC when the database gave it back without one."""
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.timezone.utc)


def _is_signing(refusal: Refusal) -> bool:
    return refusal.code.split(":")[0].endswith("_unsigned")


def counsellor_entries(facts: CaseFacts, links: Iterable[LinkFacts], now: dt.datetime,
                       policy: Policy, signed_at: dict[str, dt.datetime] | None = None,
                       soon: dt.timedelta = EXPIRES_SOON) -> list[Entry]:
    """The counsellor's queues this case belongs in (possibly several: a case whose link
    expired waits on the participant, flagged, and on the counsellor for a new link).

    ``links``: the case's unused, unwithdrawn signing links; ``signed_at``: per document
    kind, when its last signature was given (for the days the IND has been waiting)."""
    if facts.state in FINAL_STATES:
        return []
    now = aware(now)
    names = {p.id: p.name for p in facts.participants}
    signable = [link for link in links
                if facts.state in workflow.SIGNING_STATES.get(link.kind, ())]
    out: list[Entry] = []
    waiting = [link for link in signable if link.kind == workflow.ADDENDUM or not any(
        p.id == link.participant_id and link.kind in p.signed for p in facts.participants)]
    if waiting:
        expiries = sorted(aware(link.expires_at) for link in waiting)
        open_ones = [e for e in expiries if e > now]
        out.append(Entry(
            PARTICIPANT, SIGN, names=tuple(sorted({names.get(link.participant_id, "")
                                                   for link in waiting})),
            expires_at=open_ones[0] if open_ones else expiries[-1],
            expiring_soon=any(e <= now + soon for e in open_ones),
            expired=any(e <= now for e in expiries),
            extra={"kinds": sorted({link.kind for link in waiting})}))
    action = MAIN_LINE.get(facts.state)
    if action is None:
        return out
    if COUNSELLOR not in ACTIONS[action].roles:
        # Travel support: the counsellor proposes it; deciding and paying are others' work.
        if facts.state == State.DEPARTURE_AGREED and facts.payment is None \
                and COUNSELLOR in workflow.PAYMENT_PROPOSERS:
            out.append(Entry(MINE, PROPOSE_PAYMENT))
        return out
    if action in workflow.allowed_actions(facts, COUNSELLOR, policy):
        out.append(Entry(MINE, action))
        return out
    refusals = ACTIONS[action].precondition(facts, {}, policy)
    signing = [r for r in refusals if _is_signing(r)]
    ind = [r for r in refusals if r.code == "ind_confirmation_missing"]
    other = [r for r in refusals if not _is_signing(r) and r.code != "ind_confirmation_missing"]
    kind = ACTIONS[action].document
    if other:
        out.append(Entry(MINE, COMPLETE_INTAKE if facts.state == State.INTAKE else action,
                         reasons=tuple(other)))
    elif signing:
        unsigned = [p for p in facts.adults if kind not in p.signed]
        linked = {link.participant_id for link in signable
                  if link.kind == kind and aware(link.expires_at) > now}
        without = [p for p in unsigned if p.id not in linked]
        if without:
            out.append(Entry(MINE, SIGN, reasons=tuple(signing),
                             names=tuple(p.name for p in without), extra={"kinds": [kind]}))
    elif ind:
        pending = [p.name for p in facts.participants
                   if p.asylum_application_pending and not p.ind_confirmed]
        out.append(Entry(IND, RECORD_IND, reasons=tuple(ind), names=tuple(pending),
                         since=(signed_at or {}).get(workflow.WITHDRAWAL_DECLARATION)))
    return out


def extension_entry(facts: CaseFacts, policy: Policy) -> Entry | None:
    """The supervisor's extension decision on this case, when every adult has signed an
    addendum for one later deadline (the latest such); its ``reasons`` are what the
    workflow still refuses besides the reason the supervisor gives on the form."""
    if SUPERVISOR not in ACTIONS["extend_deadline"].roles \
            or facts.state not in ACTIONS["extend_deadline"].sources or not facts.adults:
        return None
    common = set.intersection(*(set(p.addendum_deadlines) for p in facts.adults))
    later = sorted(d for d in common
                   if facts.departure_deadline is None or d > facts.departure_deadline)
    if not later:
        return None
    deadline = later[-1]
    refusals = workflow.check("extend_deadline", facts, SUPERVISOR,
                              {"departure_deadline": deadline}, policy)
    return Entry(EXTENSIONS, "extend_deadline",
                 reasons=tuple(r for r in refusals if r.code != "reason_missing"),
                 extra={"deadline": deadline})


def overdue_step(state: State) -> str:
    """What a supervisor does with a case past its deadline: let it lapse where the
    workflow allows that from its state, else look at the case (the counsellor confirms
    the departure)."""
    return "lapse" if state in ACTIONS["lapse"].sources else OPEN_CASE_PAGE


def own_proposal(proposed_by: int, proposer_person: str | None, actor_id: int,
                 actor_person: str | None) -> bool:
    """Whether a payment proposal is the reader's own (by account or as a person): four
    eyes keeps it out of their approval queue."""
    return proposed_by == actor_id or (proposer_person is not None
                                       and proposer_person == actor_person)


def to_export(method: str, exported: bool) -> bool:
    """Whether an approved payment still belongs in a finance export (a bank transfer not
    in any batch yet); it is paid out on the disbursement form either way."""
    return method == "transfer" and not exported


__all__ = ["APPROVALS", "EXTENSIONS", "Entry", "IND", "LinkFacts", "MAIN_LINE", "MINE",
           "OVERDUE", "PARTICIPANT", "QUEUES_BY_ROLE", "QUEUE_NAMES", "TO_PAY", "aware",
           "counsellor_entries", "extension_entry", "overdue_step", "own_proposal",
           "to_export"]
