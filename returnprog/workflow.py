"""The programme's workflow (DESIGN §3) declared as data: states, actions, guards.

Pure: no Flask, no database, no clock. The service layer gathers a :class:`CaseFacts`
snapshot and asks :func:`check` whether an action may happen; every guard returns the
specific conditions that are unmet, in words a counsellor understands, so a refusal can
always say what is missing.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Callable, Iterable, Mapping

from .glossary import N_
from . import messages, payment_flow
from .messages import Refusal
from .policy import Policy
# ROLES is re-exported: schemas and tests read it here.
from .roles import COUNSELLOR, FINANCE, PAYMENT_FOLLOW_UP_ROLES, ROLES, SUPERVISOR  # noqa: F401


class State(StrEnum):
    """Where a case stands. The order of the main line is the order of the programme."""

    INTAKE = "intake"
    COMMITTED = "committed"
    ASYLUM_WITHDRAWN = "asylum_withdrawn"
    DEPARTURE_AGREED = "departure_agreed"
    SUPPORT_PAID = "support_paid"
    DEPARTED = "departed"
    LEFT_PROGRAMME = "left_programme"
    REJECTED = "rejected"
    LAPSED = "lapsed"


FINAL_STATES = frozenset({State.DEPARTED, State.LEFT_PROGRAMME, State.REJECTED, State.LAPSED})
# After the withdrawal the case can only go forward or lapse: these states are past it.
WITHDRAWN_OR_LATER = frozenset({State.ASYLUM_WITHDRAWN, State.DEPARTURE_AGREED,
                                State.SUPPORT_PAID, State.DEPARTED, State.LAPSED})

DEPARTURE_EVIDENCE = ("border_crossing", "boarding", "brp_deregistration")

# Document kinds the guards read (the documents module renders them).
COMMITMENT = "commitment"
WITHDRAWAL_DECLARATION = "withdrawal_declaration"
DEPARTURE_AGREEMENT = "departure_agreement"
ADDENDUM = "addendum"
PAYMENT_RECEIPT = "payment_receipt"


# A refusal is a message code with parameters (returnprog.messages); kept importable here.


@dataclass(frozen=True)
class ParticipantFacts:
    """What the guards need to know about one participant."""

    id: int
    name: str
    is_adult: bool
    asylum_application_pending: bool = True
    signed: frozenset[str] = frozenset()
    agreement_deadlines: frozenset[dt.date] = frozenset()
    addendum_deadlines: frozenset[dt.date] = frozenset()
    ind_confirmed: bool = False
    has_contact: bool = True
    # Plausibility (issue 13): the IND's confirmation date, and the day (Amsterdam) each
    # kind of document was first signed by this participant, versions a correction
    # superseded included (the signing happened then; the correction re-issued the text).
    ind_confirmed_on: dt.date | None = None
    first_signed_on: Mapping[str, dt.date] = field(default_factory=dict)
    # Every day this participant signed a withdrawal declaration (superseded versions
    # included), and the day a correction added them (None: on the case since intake).
    declaration_days: frozenset[dt.date] = frozenset()
    joined_on: dt.date | None = None


@dataclass(frozen=True)
class PaymentFacts:
    """The case's live payment, if any."""

    status: str
    proposed_by: int
    approved_by: int | None
    amount_cents: int
    expected_cents: int | None
    # Who holds the proposing and approving accounts (four eyes is between people).
    proposer_person: str | None = None
    approver_person: str | None = None
    method: str | None = None


@dataclass(frozen=True)
class CaseFacts:
    """A snapshot of one case, taken inside the transaction that may change it."""

    state: State
    today: dt.date
    participants: tuple[ParticipantFacts, ...] = ()
    departure_deadline: dt.date | None = None
    destination_oblast: str | None = None
    destination_place: str | None = None
    payment: PaymentFacts | None = None
    # Whether anyone signed a payment receipt on the case (cash needs one).
    receipt_signed: bool = False

    @property
    def adults(self) -> tuple[ParticipantFacts, ...]:
        """Participants old enough to sign for themselves."""
        return tuple(p for p in self.participants if p.is_adult)


Guard = Callable[[CaseFacts, dict, Policy], list[Refusal]]


@dataclass(frozen=True)
class Action:
    """A row of the workflow table.

    ``precondition`` depends only on the case (so ``allowed_actions`` can evaluate it
    before anyone fills in a form); ``payload_guard`` also reads the submitted payload.
    """

    name: str
    sources: frozenset[State]
    target: State
    roles: frozenset[str]
    label: str
    precondition: Guard = lambda facts, payload, policy: []
    payload_guard: Guard = lambda facts, payload, policy: []
    # The form page's URL segment (``/cases/<ref>/<slug>``); None for open_case.
    slug: str | None = None
    # Case columns the action sets besides the state: (column, payload key) pairs.
    sets: tuple[tuple[str, str], ...] = ()
    # The document each adult signs for this step, and the states in which it may be
    # signed: ahead of the step is fine, after the case has moved past it is not.
    document: str | None = None
    signable_in: frozenset[State] = frozenset()
    # What the case's timeline says happened (the audit event's label); ``label`` is the
    # button. Both are msgids, translated where they are shown.
    event: str = ""
    # A side exit: it ends the case off the main line (leave, reject, lapse). The case page
    # sets these apart, after the main steps, so they are never the first thing reached.
    destructive: bool = False
    # What cannot be undone, in words (a msgid). Non-empty: the staff form asks for an
    # explicit confirmation that states it, and the service refuses the form without it.
    consequence: str = ""

    @property
    def needs_confirmation(self) -> bool:
        """Whether the staff form must confirm this step before it happens."""
        return bool(self.consequence)

    def effects(self, payload: dict) -> dict:
        """The case columns this action writes from its validated payload."""
        return {column: payload[key] for column, key in self.sets}


# --- guards -------------------------------------------------------------------------

def _names(people: Iterable[ParticipantFacts]) -> str:
    return ", ".join(p.name for p in people)


def intake_problems(facts: CaseFacts) -> list[Refusal]:
    """What is still missing from the intake before the household can commit."""
    problems = []
    if not facts.participants:
        problems.append(Refusal("intake_no_participants"))
    if not facts.adults:
        problems.append(Refusal("intake_no_adult"))
    if not facts.destination_oblast:
        problems.append(Refusal("intake_destination", field="destination_oblast"))
    if not facts.destination_place:
        problems.append(Refusal("intake_place", field="destination_place"))
    no_contact = [p for p in facts.adults if not p.has_contact]
    if no_contact:
        problems.append(Refusal("intake_contact", {"names": _names(no_contact)}))
    return problems


# Relationships to the principal that say something about age (schemas.RELATIONSHIPS);
# sibling and other say nothing.
PARTNERS = ("spouse", "partner")
YOUNGER_THAN_PRINCIPAL = ("child", "grandchild")
OLDER_THAN_PRINCIPAL = ("parent", "grandparent")


def household_problems(principal_born: dt.date | None,
                       members: Iterable[tuple[str | None, dt.date | None]],
                       today: dt.date, policy: Policy) -> list[Refusal]:
    """Relationships that the dates of birth make implausible: a spouse or partner who is
    a minor, a child or grandchild not younger than the principal, a parent or grandparent
    not older. ``members`` are (relationship, date of birth) in household order; each
    refusal names its member's field as ``household.<index>.relationship``."""
    problems = []
    for index, (relationship, born) in enumerate(members):
        if born is None:
            continue
        where = f"household.{index}.relationship"
        if relationship in PARTNERS and not policy.is_adult_on(born, today):
            problems.append(Refusal("partner_not_adult", {"age": policy.adult_age}, where))
        elif principal_born is None:
            continue
        elif relationship in YOUNGER_THAN_PRINCIPAL and born <= principal_born:
            problems.append(Refusal("child_not_younger", {"date": principal_born}, where))
        elif relationship in OLDER_THAN_PRINCIPAL and born >= principal_born:
            problems.append(Refusal("parent_not_older", {"date": principal_born}, where))
    return problems


def _all_adults_signed(facts: CaseFacts, kind: str, what: str) -> list[Refusal]:
    missing = [p for p in facts.adults if kind not in p.signed]
    if missing:
        return [Refusal(f"{kind}_unsigned", {"names": _names(missing)})]
    return []


def _commitment_ready(facts, payload, policy):
    return intake_problems(facts) + _all_adults_signed(
        facts, COMMITMENT, "The commitment (deelnameverklaring) is")


def declaration_signed_on(facts: CaseFacts, participant: ParticipantFacts) -> dt.date | None:
    """The day the withdrawal declaration covering ``participant`` was first signed: an
    adult's own; for a minor, the first declaration of an adult of the household that
    names them (the adults withdraw a minor's application). Every declaration prints the
    household's minors, so for a minor on the case since intake that is the adults' first
    one; for a minor a correction added, the first signed on or after the day they joined
    (by day, like every date these rules compare). None while nobody has signed one."""
    own = participant.first_signed_on.get(WITHDRAWAL_DECLARATION)
    if participant.is_adult or own is not None:
        return own
    since = participant.joined_on
    if since is None:
        days = [p.first_signed_on[WITHDRAWAL_DECLARATION] for p in facts.adults
                if WITHDRAWAL_DECLARATION in p.first_signed_on]
    else:
        days = [d for p in facts.adults for d in p.declaration_days if d >= since]
    return min(days) if days else None


def ind_date_problems(confirmed_on: dt.date, declared_on: dt.date | None, today: dt.date,
                      field_name: str = "confirmed_on") -> list[Refusal]:
    """Why an IND confirmation dated ``confirmed_on`` is implausible: in the future, or
    before the withdrawal declaration it confirms was signed (``declared_on``, if known)."""
    if confirmed_on > today:
        return [Refusal("ind_date_future", field=field_name)]
    if declared_on is not None and confirmed_on < declared_on:
        return [Refusal("ind_before_declaration:date",
                        {"date": confirmed_on, "signed_on": declared_on}, field_name)]
    return []


def _withdrawal_ready(facts, payload, policy):
    refusals = _all_adults_signed(facts, WITHDRAWAL_DECLARATION,
                                  "The asylum withdrawal declaration is")
    unconfirmed = [p for p in facts.participants
                   if p.asylum_application_pending and not p.ind_confirmed]
    if unconfirmed:
        refusals.append(Refusal("ind_confirmation_missing", {"names": _names(unconfirmed)}))
    # A confirmation recorded before its declaration was signed (the declaration came
    # later) cannot confirm that declaration.
    early = [p for p in facts.participants if p.ind_confirmed_on is not None
             and (declared := declaration_signed_on(facts, p)) is not None
             and p.ind_confirmed_on < declared]
    if early:
        refusals.append(Refusal("ind_before_declaration", {"names": _names(early)}))
    return refusals


def deadline_problems(deadline: dt.date | None, today: dt.date, policy: Policy,
                      field_name: str = "departure_deadline") -> list[Refusal]:
    """Why ``deadline`` cannot be agreed today, or [] when it is within policy bounds."""
    if deadline is None:
        return [Refusal("deadline_missing", field=field_name)]
    problems = []
    earliest = policy.earliest_deadline(today)
    if deadline <= today:
        problems.append(Refusal("deadline_past", field=field_name))
    elif deadline < earliest:
        problems.append(Refusal("deadline_too_soon", {"days": policy.min_lead_days, "date": earliest},
                                field_name))
    if deadline > today + dt.timedelta(days=policy.max_term_days):
        problems.append(Refusal(
            "deadline_too_far",
            {"days": policy.max_term_days,
             "date": today + dt.timedelta(days=policy.max_term_days)}, field_name))
    if deadline > policy.reception_end:
        problems.append(Refusal("deadline_after_reception_end",
                                {"date": policy.reception_end}, field_name))
    return problems


def _agreement_signed(facts, payload, policy):
    if not facts.adults or any(not p.agreement_deadlines for p in facts.adults):
        missing = [p for p in facts.adults if not p.agreement_deadlines]
        return [Refusal("departure_agreement_unsigned", {"names": _names(missing)})]
    return []


def _agreement_payload(facts, payload, policy):
    deadline = payload.get("departure_deadline")
    problems = deadline_problems(deadline, facts.today, policy)
    if deadline is not None:
        # Adults with no agreement at all are already named by the precondition.
        missing = [p for p in facts.adults
                   if p.agreement_deadlines and deadline not in p.agreement_deadlines]
        if missing:
            problems.append(Refusal(
                "departure_agreement_unsigned:for_deadline",
                {"date": deadline, "names": _names(missing)}, "departure_deadline"))
    return problems


def _reason_required(facts, payload, policy):
    if not (payload.get("reason") or "").strip():
        return [Refusal("reason_missing", field="reason")]
    return []


def _extension_payload(facts, payload, policy):
    problems = _reason_required(facts, payload, policy)
    deadline = payload.get("departure_deadline")
    problems += deadline_problems(deadline, facts.today, policy)
    if deadline is not None:
        if facts.departure_deadline and deadline <= facts.departure_deadline:
            problems.append(Refusal("deadline_not_later",
                                    {"date": facts.departure_deadline}, "departure_deadline"))
        missing = [p for p in facts.adults if deadline not in p.addendum_deadlines]
        if missing:
            problems.append(Refusal("addendum_unsigned", {"date": deadline, "names": _names(missing)},
                                    "departure_deadline"))
    return problems


# Released (and, for a transfer, whatever its bank leg says since).
PAID_OUT = payment_flow.PAID_OUT_STATUSES


def _payment_ready(facts, payload, policy):
    pay = facts.payment
    if pay is None:
        return [Refusal("payment_not_approved")]
    if pay.status in PAID_OUT:
        return [Refusal("payment_already_disbursed")]
    if pay.status != "approved":
        return [Refusal("payment_not_approved:yet")]
    problems = []
    if pay.approved_by is None or pay.approved_by == pay.proposed_by:
        problems.append(Refusal("payment_four_eyes"))
    elif pay.proposer_person is not None and pay.proposer_person == pay.approver_person:
        problems.append(Refusal("payment_four_eyes:person"))
    if pay.expected_cents is None:
        problems.append(Refusal("tariff_missing"))
    elif pay.amount_cents != pay.expected_cents:
        problems.append(Refusal("payment_amount_mismatch",
                                {"cents": pay.amount_cents, "tariff": pay.expected_cents}))
    return problems


def agreement_signed_on(facts: CaseFacts) -> dt.date | None:
    """The day the departure agreement was complete: the last of the adults' first
    signatures of it. None while an adult has not signed one."""
    days = [p.first_signed_on.get(DEPARTURE_AGREEMENT) for p in facts.adults]
    return max(days) if days and None not in days else None


def _receipt_ready(facts, payload, policy):
    # Cash leaves no bank trail: the signed receipt is the proof the household got it.
    pay = facts.payment
    if pay is not None and pay.method == "cash" and not facts.receipt_signed:
        return [Refusal("payment_receipt_unsigned")]
    return []


def _departure_payload(facts, payload, policy):
    problems = []
    departed_on = payload.get("departed_on")
    agreed_on = agreement_signed_on(facts)
    if departed_on is None:
        problems.append(Refusal("departure_date_missing", field="departed_on"))
    elif departed_on > facts.today:
        problems.append(Refusal("departure_date_future", field="departed_on"))
    elif agreed_on is not None and departed_on < agreed_on:
        problems.append(Refusal("departure_before_agreement", {"date": agreed_on},
                                "departed_on"))
    if payload.get("evidence") not in DEPARTURE_EVIDENCE:
        problems.append(Refusal("departure_evidence_missing", field="evidence"))
    return problems


def _deadline_passed(facts, payload, policy):
    # Without an agreed deadline the last possible day is the end of reception: a household
    # that withdrew but never agreed a departure lapses once reception can no longer be given.
    deadline = facts.departure_deadline or policy.reception_end
    if deadline >= facts.today:
        code = "deadline_not_passed" if facts.departure_deadline else "deadline_not_passed:reception"
        return [Refusal(code, {"date": deadline})]
    return []


_S = State
_REASON = (("closing_reason", "reason"),)
_DEADLINE = (("departure_deadline", "departure_deadline"),)
ACTIONS: dict[str, Action] = {a.name: a for a in (
    Action("open_case", frozenset(), _S.INTAKE, frozenset({COUNSELLOR}), N_("Open case"),
           event=N_("Case opened")),
    Action("confirm_commitment", frozenset({_S.INTAKE}), _S.COMMITTED,
           frozenset({COUNSELLOR}), N_("Confirm commitment"), precondition=_commitment_ready,
           slug="commitment", document=COMMITMENT, signable_in=frozenset({_S.INTAKE}),
           event=N_("Commitment confirmed")),
    Action("record_withdrawal", frozenset({_S.COMMITTED}), _S.ASYLUM_WITHDRAWN,
           frozenset({COUNSELLOR}), N_("Record asylum withdrawal"),
           precondition=_withdrawal_ready, slug="withdrawal",
           document=WITHDRAWAL_DECLARATION, signable_in=frozenset({_S.INTAKE, _S.COMMITTED}),
           event=N_("Asylum withdrawal recorded"),
           consequence=N_("The withdrawal of the asylum application cannot be undone: "
                          "afterwards the household can no longer leave the programme, and "
                          "the case can only go forward or lapse.")),
    Action("agree_departure", frozenset({_S.ASYLUM_WITHDRAWN}), _S.DEPARTURE_AGREED,
           frozenset({COUNSELLOR}), N_("Agree departure deadline"),
           precondition=_agreement_signed, payload_guard=_agreement_payload,
           slug="departure-agreement", sets=_DEADLINE, document=DEPARTURE_AGREEMENT,
           signable_in=frozenset({_S.COMMITTED, _S.ASYLUM_WITHDRAWN}),
           event=N_("Departure deadline agreed")),
    Action("extend_deadline", frozenset({_S.DEPARTURE_AGREED}), _S.DEPARTURE_AGREED,
           frozenset({SUPERVISOR}), N_("Extend deadline"), payload_guard=_extension_payload,
           slug="extension", sets=_DEADLINE, document=ADDENDUM,
           signable_in=frozenset({_S.DEPARTURE_AGREED}),
           event=N_("Deadline extended")),
    Action("pay_support", frozenset({_S.DEPARTURE_AGREED}), _S.SUPPORT_PAID,
           frozenset({FINANCE}), N_("Pay travel support"), precondition=_payment_ready,
           slug="disbursement", document=PAYMENT_RECEIPT,
           signable_in=frozenset({_S.DEPARTURE_AGREED, _S.SUPPORT_PAID}),
           event=N_("Travel support paid out")),
    Action("confirm_departure", frozenset({_S.SUPPORT_PAID}), _S.DEPARTED,
           frozenset({COUNSELLOR}), N_("Confirm departure"), precondition=_receipt_ready,
           payload_guard=_departure_payload,
           slug="departure",
           sets=(("departed_on", "departed_on"), ("departure_evidence", "evidence")),
           event=N_("Departure confirmed")),
    Action("leave_programme", frozenset({_S.INTAKE, _S.COMMITTED}), _S.LEFT_PROGRAMME,
           frozenset({COUNSELLOR}), N_("Leave programme"), payload_guard=_reason_required,
           slug="leave", sets=_REASON,
           event=N_("Left the programme"), destructive=True,
           consequence=N_("The case is closed for good: the household leaves the programme "
                          "and the reception facilities tied to taking part end. This cannot "
                          "be undone.")),
    Action("reject", frozenset({_S.INTAKE}), _S.REJECTED, frozenset({SUPERVISOR}),
           N_("Reject"), payload_guard=_reason_required, slug="rejection", sets=_REASON,
           event=N_("Rejected"), destructive=True,
           consequence=N_("The case is closed for good as not eligible for the programme. "
                          "This cannot be undone.")),
    Action("lapse", frozenset({_S.ASYLUM_WITHDRAWN, _S.DEPARTURE_AGREED}), _S.LAPSED,
           frozenset({SUPERVISOR}), N_("Lapse"),
           precondition=_deadline_passed, payload_guard=_reason_required, slug="lapse",
           sets=_REASON,
           event=N_("Lapsed"), destructive=True,
           consequence=N_("The case is closed for good: the household did not leave in time "
                          "and the facilities end. This cannot be undone.")),
)}

# English refusals name actions by their button label.
messages.ACTION_LABELS.update({name: a.label for name, a in ACTIONS.items()})

# Actions that move an existing case (open_case creates one and has no source state).
CASE_ACTIONS = tuple(name for name, a in ACTIONS.items() if a.sources)

# The programme's main line, in order: a step's place is the place of the state it leads to.
MAIN_LINE = (State.INTAKE, State.COMMITTED, State.ASYLUM_WITHDRAWN, State.DEPARTURE_AGREED,
             State.SUPPORT_PAID, State.DEPARTED)


def step_order(action_name: str) -> tuple[int, int]:
    """Sort key of the steps a page offers: main-line steps first, in the order of the
    programme; side exits (``destructive``) after them, in table order."""
    action = ACTIONS[action_name]
    if action.destructive or action.target not in MAIN_LINE:
        return (1, CASE_ACTIONS.index(action_name))
    return (0, MAIN_LINE.index(action.target))


# Which documents may be signed in which state, read off the action each one is for.
SIGNING_STATES: dict[str, frozenset[State]] = {
    a.document: a.signable_in for a in ACTIONS.values() if a.document}
SIGNABLE_KINDS = tuple(SIGNING_STATES)

# The payment steps around ``pay_support`` (DESIGN §3, four eyes): who proposes, who
# decides (approves or rejects; never their own proposal), who may cancel before payout.
# Paying out is the ``pay_support`` row's own ``roles``.
PAYMENT_PROPOSERS = frozenset({COUNSELLOR})
PAYMENT_DECIDERS = frozenset({SUPERVISOR})
PAYMENT_CANCELLERS = frozenset(PAYMENT_FOLLOW_UP_ROLES)


def state_refusals(action: Action, state: State) -> list[Refusal]:
    """Refusal when ``action`` does not start from ``state`` (including final states)."""
    if state in action.sources:
        return []
    if state in FINAL_STATES:
        return [Refusal("case_closed", {"state": state.value})]
    if action.name == "leave_programme" and state in WITHDRAWN_OR_LATER:
        return [Refusal("withdrawal_irreversible")]
    allowed = [s.value for s in sorted(action.sources, key=list(State).index)]
    return [Refusal("wrong_state", {"action": action.name, "states": allowed,
                                    "state": state.value})]


def role_refusals(action: Action, role: str) -> list[Refusal]:
    """Refusal when ``role`` may not perform ``action``."""
    if role in action.roles:
        return []
    return [Refusal("role", {"roles": sorted(action.roles), "action": action.name})]


def check(action_name: str, facts: CaseFacts, role: str, payload: dict,
          policy: Policy) -> list[Refusal]:
    """Every reason why ``action_name`` cannot happen now; [] means it may."""
    action = ACTIONS[action_name]
    refusals = role_refusals(action, role) + state_refusals(action, facts.state)
    if refusals:
        return refusals
    return action.precondition(facts, payload, policy) + action.payload_guard(facts, payload, policy)


def allowed_actions(facts: CaseFacts, role: str, policy: Policy) -> list[str]:
    """Actions this role could perform now, so no screen or API offers a dead button."""
    return [name for name in CASE_ACTIONS
            if not role_refusals(ACTIONS[name], role)
            and not state_refusals(ACTIONS[name], facts.state)
            and not ACTIONS[name].precondition(facts, {}, policy)]


def target_state(action_name: str) -> State:
    """The state a successful ``action_name`` leads to."""
    return ACTIONS[action_name].target
