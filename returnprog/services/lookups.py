"""The lookups every use case shares: which cases an actor may see, loading one, the facts
the workflow guards read, and the case's live payment.

Read-only: nothing here commits. Kept apart from the use cases so that cases, payments,
signing and reminders can all use them without importing each other.
"""
from __future__ import annotations

import datetime as dt
import functools
import json
from collections import namedtuple
from dataclasses import dataclass, field

from sqlalchemy import bindparam, or_, select
from sqlalchemy.orm import aliased

from .. import payments, workflow
from ..policy import TIMEZONE
from ..roles import COUNSELLOR, FINANCE, SUPERVISOR
from ..models import (Case, Document, IndConfirmation, Participant, Payment, Team, User,
                      LIVE_PAYMENT_STATUSES)
from ..workflow import CaseFacts, ParticipantFacts, PaymentFacts, State
from . import Context, NotFound

# Aliases made once, at import. An alias builds a proxy of every column of its table the
# first time a statement uses it; made afresh in each request, the four people of a case's
# payments cost 0.2 ms each, more than all the read's SQL (profiled on the API case read).
PRINCIPAL = aliased(Participant, name="principal")
COUNSELLOR_USER = aliased(User, name="counsellor_user")
PROPOSER = aliased(User, name="proposer")
APPROVER = aliased(User, name="approver")
DISBURSER = aliased(User, name="disburser")
SETTLER = aliased(User, name="settler")

__all__ = ["CaseSnapshot", "SYSTEM_NAME", "allowed_actions", "case_snapshot", "gather_facts",
           "is_adult", "live_payment", "load_case", "load_case_named", "reader_cases",
           "user_ref", "user_refs", "visible_cases"]


def visible_cases(actor: User):
    """A SELECT of the cases ``actor`` may see.

    Counsellors and supervisors see their team's cases; finance officers see cases with a
    payment and cases at the payment stage (``departure_agreed``), so that paying out a
    case whose payment is not approved yet is refused with the reason, not "not found"
    (what they read of a case is narrowed, :mod:`.role_views`); admins manage users and
    see no personal data. A destroyed case (issue 16) is a tombstone without people or
    documents: nobody sees it as a case any more (records roles see it on its destruction
    list; the programme's figures still count it).
    """
    return _cases_seen_by(actor.role, actor.team_id)


def reader_cases(role: str, *, has_team: bool):
    """:func:`visible_cases` of any reader of ``role``, with the reader's team as the
    ``team_id`` parameter (when they have one): for statements built once and run for
    every reader. Building a statement and deriving its cache key on every request cost
    more than running it (bench/README.md)."""
    return _cases_seen_by(role, bindparam("team_id") if has_team else None)


def _cases_seen_by(role: str, team):
    query = select(Case).where(Case.destroyed_at.is_(None))
    if role in (COUNSELLOR, SUPERVISOR):
        return query.where(Case.team_id == team)  # a team of None: "IS NULL", as before
    if role == FINANCE:
        return query.where(or_(Case.id.in_(select(Payment.case_id)),
                               Case.state == State.DEPARTURE_AGREED.value))
    return query.where(False)


@functools.lru_cache(maxsize=32)
def _case_statement(role: str, has_team: bool, named: bool):
    """The SELECT of :func:`load_case` (``named``: of :func:`load_case_named`) for a reader
    of ``role``, with the ``reference`` and ``team_id`` as parameters."""
    query = reader_cases(role, has_team=has_team)
    if named:
        query = (query.add_columns(User.email, Team.name, User.name)
                 .outerjoin(User, User.id == Case.counsellor_id)
                 .outerjoin(Team, Team.id == Case.team_id))
    return query.where(Case.reference == bindparam("reference"))


def _case_row(ctx: Context, reference: str, named: bool):
    # A NUL cannot be in a reference, and PostgreSQL refuses it in a query parameter.
    if "\x00" in reference:
        return None
    actor = ctx.actor
    return ctx.session.execute(
        _case_statement(actor.role, actor.team_id is not None, named),
        {"team_id": actor.team_id, "reference": reference}).first()


def load_case(ctx: Context, reference: str) -> Case:
    """The case ``reference`` if the actor may see it; otherwise NotFound (never 403, so
    a reference guessed in a URL does not reveal that the case exists)."""
    row = _case_row(ctx, reference, named=False)
    if row is None:
        raise NotFound("case.not_found", ref=reference)
    return row[0]


def load_case_named(ctx: Context, reference: str
                    ) -> tuple[Case, str | None, str | None, str | None]:
    """:func:`load_case` with the counsellor's e-mail address, the team's name and the
    counsellor's name joined in: one statement instead of three for the pages that show
    them."""
    row = _case_row(ctx, reference, named=True)
    if row is None:
        raise NotFound("case.not_found", ref=reference)
    return row[0], row[1], row[2], row[3]


def display_name(name: str | None, email: str | None) -> str:
    """How staff pages name a colleague: the name, or the address when no name was given."""
    return (name or "").strip() or (email or "")


# How an answer names what acted without a staff account (scheduled jobs, the operator's
# commands, participants on their signing link): no id, and this name unless the recorded
# label says more (``"participant:12"``, ``"operator"``).
SYSTEM_NAME = "system"


def user_ref(user_id: int | None, name: str | None = None, email: str | None = None,
             label: str | None = None) -> dict | None:
    """A staff member as every API answer names one: ``{"id", "name"}`` with the display
    name (:func:`display_name`). Without an account (``user_id`` None) it is
    ``{"id": None, "name": label or "system"}`` when a ``label`` was recorded (the audit
    trail, the access log), else None (nobody: a payment not approved yet)."""
    if user_id is None:
        return {"id": None, "name": label or SYSTEM_NAME} if label is not None else None
    return {"id": user_id, "name": display_name(name, email)}


def user_refs(ctx: Context, *user_ids: int | None) -> dict[int, dict]:
    """:func:`user_ref` of each of these accounts, by id: one statement (an IN query), none
    when there is nobody to name."""
    ids = {i for i in user_ids if i is not None}
    if not ids:
        return {}
    rows = ctx.session.execute(select(User.id, User.name, User.email)
                               .where(User.id.in_(ids))).all()
    return {uid: user_ref(uid, name, email) for uid, name, email in rows}


# --- facts ---------------------------------------------------------------------------------

# The document columns a case read shows and the guards read: never the PDF itself.
DOCUMENT_COLUMNS = (Document.id, Document.kind, Document.version, Document.participant_id,
                    Document.signer_name, Document.signature_method, Document.signed_at,
                    Document.sha256, Document.terms, Document.superseded_at)


@dataclass(frozen=True)
class CaseSnapshot:
    """The rows of one case that its pages show and its workflow guards read, taken in
    the current transaction by :func:`case_snapshot` with three statements however large
    the household or the number of documents and payments."""

    participants: tuple  # Participant, in id order
    ind: dict  # participant id -> (IND reference, confirmed on)
    documents: tuple  # rows of DOCUMENT_COLUMNS, in id order
    payments: tuple  # Payment, in id order
    persons: dict  # account id -> person (User.person), for proposers and approvers
    # account id -> {"id", "name"} (user_ref) of proposers, approvers and disbursers
    # (filled by case_snapshot; case_snapshots leaves it empty)
    users: dict = field(default_factory=dict)

    @property
    def live_payment(self) -> Payment | None:
        """The payment that is proposed, approved or disbursed (at most one exists)."""
        return next((p for p in self.payments if p.status in LIVE_PAYMENT_STATUSES), None)


@functools.cache
def _snapshot_statements():
    """The three statements of :func:`case_snapshot` for a case given as the ``case_id``
    parameter, built once: building them and deriving their cache keys cost more than
    running them."""
    case_id = bindparam("case_id")
    participants = (
        select(Participant, IndConfirmation.ind_reference, IndConfirmation.confirmed_on)
        .outerjoin(IndConfirmation, IndConfirmation.participant_id == Participant.id)
        .where(Participant.case_id == case_id).order_by(Participant.id))
    documents = (select(*DOCUMENT_COLUMNS).where(Document.case_id == case_id)
                 .order_by(Document.id))
    proposer, approver, disburser, settler = PROPOSER, APPROVER, DISBURSER, SETTLER
    # The people of each payment joined in (not read one by one), with their names for
    # the answer's {id, name}.
    payments = (
        select(Payment, *(c for u in (proposer, approver, disburser, settler)
                          for c in (u.id, u.person, u.name, u.email)))
        .outerjoin(proposer, proposer.id == Payment.proposed_by)
        .outerjoin(approver, approver.id == Payment.approved_by)
        .outerjoin(disburser, disburser.id == Payment.disbursed_by)
        .outerjoin(settler, settler.id == Payment.settled_by)
        .where(Payment.case_id == case_id).order_by(Payment.id))
    return participants, documents, payments


def case_snapshot(ctx: Context, case: Case) -> CaseSnapshot:
    """Participants with their IND confirmation, documents (without the PDF), payments
    with the people who proposed and approved them: one statement each."""
    session, params = ctx.session, {"case_id": case.id}
    participants, documents, payments = _snapshot_statements()
    rows = session.execute(participants, params).all()
    docs = session.execute(documents, params).all()
    pays = session.execute(payments, params).all()
    persons, users = {}, {}
    for _pay, *people in pays:
        for at in range(0, len(people), 4):
            account, person, name, email = people[at:at + 4]
            if account is not None:
                if at < 8:  # proposer and approver: the four-eyes rule compares persons
                    persons[account] = person
                users[account] = user_ref(account, name, email)
    return CaseSnapshot(participants=tuple(r[0] for r in rows),
                        ind={r[0].id: (r[1], r[2]) for r in rows if r[1] is not None},
                        documents=tuple(docs), payments=tuple(r[0] for r in pays),
                        persons=persons, users=users)


def is_adult(p: Participant, today: dt.date, policy) -> bool:
    """Whether participant ``p`` signs for themselves on ``today``."""
    return policy.is_adult_on(p.date_of_birth, today)


def signed_day(signed_at: dt.datetime | None, today: dt.date) -> dt.date | None:
    """The programme's calendar day (Amsterdam) of a signature, never later than
    ``today``: the service's "today" is the server's date, and a signature made after
    midnight in Amsterdam but before midnight on the server must not count as tomorrow."""
    if signed_at is None:
        return None
    if signed_at.tzinfo is None:  # SQLite hands back the stored UTC time without its zone
        signed_at = signed_at.replace(tzinfo=dt.timezone.utc)
    return min(signed_at.astimezone(TIMEZONE).date(), today)


def gather_facts(ctx: Context, case: Case, snapshot: CaseSnapshot | None = None) -> CaseFacts:
    """Snapshot of everything the workflow guards read, taken in the current transaction
    (from ``snapshot`` when the caller has read it already)."""
    today = ctx.today()
    snap = snapshot if snapshot is not None else case_snapshot(ctx, case)
    people = snap.participants
    confirmed = set(snap.ind)
    signed: dict[int, set[str]] = {}
    first_signed: dict[int, dict[str, dt.date]] = {}
    declared: dict[int, set[dt.date]] = {}
    deadlines: dict[tuple[int, str], set[dt.date]] = {}
    for doc in snap.documents:
        pid, kind, terms = doc.participant_id, doc.kind, doc.terms
        day = signed_day(doc.signed_at, today)
        if day is not None:
            # Versions a correction superseded count here: a corrected name re-issues the
            # text, not the act. The IND confirms the withdrawal declared on the first
            # day, and a departure cannot precede the first agreement to it; counting only
            # the re-signed version would make an IND confirmation recorded in between
            # "dated before its declaration" for good (a second one is refused).
            known = first_signed.setdefault(pid, {})
            known[kind] = min(known.get(kind, day), day)
            if kind == workflow.WITHDRAWAL_DECLARATION:
                declared.setdefault(pid, set()).add(day)
        if doc.superseded_at is not None:
            continue  # a correction superseded it: the new version must be signed
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
        ind_confirmed=p.id in confirmed, has_contact=bool(p.email or p.phone),
        ind_confirmed_on=snap.ind[p.id][1] if p.id in snap.ind else None,
        first_signed_on=first_signed.get(p.id, {}),
        declaration_days=frozenset(declared.get(p.id, ())), joined_on=p.joined_on)
        for p in people)
    payment = snap.live_payment
    pay_facts = None
    if payment is not None:
        adults = sum(1 for p in facts_people if p.is_adult)
        q = payments.quote(ctx.policy, adults, len(facts_people) - adults,
                           payment.proposed_at.date())
        persons = snap.persons
        pay_facts = PaymentFacts(payment.status, payment.proposed_by, payment.approved_by,
                                 payment.amount_cents, q.amount_cents if q else None,
                                 proposer_person=persons.get(payment.proposed_by),
                                 approver_person=persons.get(payment.approved_by),
                                 method=payment.method)
    return CaseFacts(state=State(case.state), today=today, participants=facts_people,
                     departure_deadline=case.departure_deadline,
                     destination_oblast=case.destination_oblast,
                     destination_place=case.destination_place, payment=pay_facts,
                     receipt_signed=any(d.kind == workflow.PAYMENT_RECEIPT
                                        for d in snap.documents))


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


def allowed_actions(ctx: Context, case: Case, facts: CaseFacts | None = None) -> list[str]:
    """The actions the actor could perform on ``case`` now (from ``facts`` when given)."""
    facts = facts if facts is not None else gather_facts(ctx, case)
    return workflow.allowed_actions(facts, ctx.actor.role, ctx.policy)


def case_snapshots(ctx: Context, case_ids) -> dict[int, CaseSnapshot]:
    """:func:`case_snapshot` of many cases at once, by case id: three statements however
    many cases (``case_ids`` is a subquery or a collection of ids). For reading many cases
    quickly the rows are light read-only records, not ORM objects: participants with the
    columns :func:`gather_facts` reads (and ``full_name``), payments with their status,
    amount and who proposed and approved them."""
    session = ctx.session
    rows = session.execute(
        select(*(getattr(Participant, c) for c in _PersonRow._fields),
               IndConfirmation.ind_reference, IndConfirmation.confirmed_on)
        .outerjoin(IndConfirmation, IndConfirmation.participant_id == Participant.id)
        .where(Participant.case_id.in_(case_ids)).order_by(Participant.id)).all()
    docs = session.execute(select(Document.case_id, *DOCUMENT_COLUMNS)
                           .where(Document.case_id.in_(case_ids)).order_by(Document.id)).all()
    proposer, approver = PROPOSER, APPROVER
    pays = session.execute(
        select(*(getattr(Payment, c) for c in _PaymentRow._fields),
               proposer.id, proposer.person, approver.id, approver.person)
        .outerjoin(proposer, proposer.id == Payment.proposed_by)
        .outerjoin(approver, approver.id == Payment.approved_by)
        .where(Payment.case_id.in_(case_ids)).order_by(Payment.id)).all()
    parts: dict[int, dict] = {}

    def part(case_id: int) -> dict:
        return parts.setdefault(case_id, {"participants": [], "ind": {}, "documents": [],
                                          "payments": [], "persons": {}})
    width = len(_PersonRow._fields)
    for row in rows:
        person = _PersonRow(*row[:width])
        bucket = part(person.case_id)
        bucket["participants"].append(person)
        if row[width] is not None:
            bucket["ind"][person.id] = (row[width], row[width + 1])
    for doc in docs:
        part(doc[0])["documents"].append(_DocumentRow(*doc[1:]))
    width = len(_PaymentRow._fields)
    for row in pays:
        pay = _PaymentRow(*row[:width])
        bucket = part(pay.case_id)
        bucket["payments"].append(pay)
        people = row[width:]
        for account, person in zip(people[::2], people[1::2]):
            if account is not None:
                bucket["persons"][account] = person
    return {case_id: CaseSnapshot(participants=tuple(b["participants"]), ind=b["ind"],
                                  documents=tuple(b["documents"]),
                                  payments=tuple(b["payments"]), persons=b["persons"])
            for case_id, b in parts.items()}


# A document row as :func:`case_snapshot` gives it (the columns of DOCUMENT_COLUMNS).
_DocumentRow = namedtuple("_DocumentRow", [c.key for c in DOCUMENT_COLUMNS])


class _PersonRow(namedtuple("_PersonRow", (
        "id", "case_id", "is_principal", "given_names_latin", "family_name_latin",
        "date_of_birth", "asylum_application_pending", "email", "phone", "joined_on"))):
    """A participant as :func:`case_snapshots` reads it."""

    __slots__ = ()

    @property
    def full_name(self) -> str:
        """As :attr:`Participant.full_name`."""
        return f"{self.given_names_latin} {self.family_name_latin}"


_PaymentRow = namedtuple("_PaymentRow", (
    "id", "case_id", "status", "amount_cents", "method", "proposed_by", "proposed_at",
    "approved_by"))
