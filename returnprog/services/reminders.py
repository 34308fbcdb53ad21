"""Reminder planning use cases: what is due, and putting it in the outbox.

- :func:`sweep` works out which deadline reminders, overdue alerts and signing-link
  reminders are due today (from :mod:`returnprog.reminders`) and hands them to
  :func:`returnprog.services.outbox.enqueue`, which never stores the same reminder twice.
- :func:`on_transition` cancels pending deadline messages when a case's deadline or state
  changes.
- Read-outs for pages about reminders: overdue cases, a case's messages.

Sending, retries and failure bookkeeping are in :mod:`returnprog.services.outbox`.
"""
from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from typing import Iterable, Sequence

from sqlalchemy import and_, or_, select, update
from sqlmodel import Session

from .. import reminders as plan
from ..db import begin_write
from ..models import Case, OutboxMessage, Participant, SigningRequest, User
from ..policy import Policy
from ..roles import SUPERVISOR
from ..workflow import SIGNING_STATES, State
from . import Context
from .lookups import load_case
from .outbox import CHUNK, case_messages, enqueue
from .uow import atomic

log = logging.getLogger("returnprog.reminders")


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def local_today(tz: str = plan.DEFAULT_TIMEZONE, now: dt.datetime | None = None) -> dt.date:
    """Today on the Dutch calendar (deadlines are Dutch calendar days)."""
    return plan._localise(now or _utcnow(), tz).date()


def _chunks(items: Sequence, size: int = CHUNK):
    for i in range(0, len(items), size):
        yield items[i:i + size]


# --- the sweep ---------------------------------------------------------------------------------

@dataclass
class SweepReport:
    """What one sweep found and wrote."""

    today: dt.date
    since: dt.date
    cases_due: int = 0
    overdue_cases: int = 0
    links: int = 0
    planned: int = 0
    inserted: int = 0

    def __str__(self) -> str:
        return (f"sweep {self.today} (since {self.since}): {self.cases_due} case(s) with a "
                f"reminder due, {self.overdue_cases} newly overdue, {self.links} signing "
                f"link(s); {self.planned} message(s) planned, {self.inserted} new")


@atomic
def sweep(session: Session, policy: Policy, today: dt.date, *, now: dt.datetime | None = None,
          last_swept: dt.date | None = None, catchup_days: int | None = None,
          tz: str = plan.DEFAULT_TIMEZONE) -> SweepReport:
    """Write every reminder and alert due on ``today`` to the outbox, and commit.

    ``last_swept`` is the last day a sweep completed (the scheduler remembers it). On a
    normal day only the deadlines ``today + 14/7/2/1`` and ``today - 1`` are looked up in
    the deadline index, so the cost follows the number of reminders due. ``None`` (a fresh
    start, or after an outage) looks back ``catchup_days`` (default: the longest reminder
    offset) and sends, per case and recipient, only the most recent reminder that came due.
    """
    now = now or _utcnow()
    lookback = catchup_days if catchup_days is not None else max(policy.reminder_days)
    since = last_swept if last_swept is not None else today - dt.timedelta(days=lookback)
    since = max(min(since, today - dt.timedelta(days=1)), today - dt.timedelta(days=lookback))
    report = SweepReport(today=today, since=since)
    messages: list[plan.Planned] = []

    due_dates = plan.candidate_deadlines(today, policy.reminder_days, since)
    overdue_dates = plan.overdue_deadlines(today, policy.overdue_escalation_days, since)
    rows = []
    for dates in _chunks(sorted(set(due_dates) | set(overdue_dates))):
        # Only the deadline is in the WHERE clause, so both databases use ix_case_deadline
        # (with "state = …" as well, SQLite without statistics picks ix_case_state_id and
        # reads every case in departure_agreed). The few cases on these dates in another
        # state are dropped here.
        rows += session.execute(
            select(Case.id, Case.reference, Case.departure_deadline, Case.counsellor_id,
                   Case.team_id, Case.state)
            .where(Case.departure_deadline.in_(dates))).all()
    due, overdue = [], []
    for row in rows:
        if row.state != plan.ACTIVE_STATE:
            continue
        offset = plan.due_deadline_offset(row.departure_deadline, today, policy.reminder_days,
                                          since)
        if offset is not None:
            due.append((row, offset))
        elif plan.overdue_alert_due(row.departure_deadline, today,
                                    policy.overdue_escalation_days, since):
            overdue.append(row)
    report.cases_due, report.overdue_cases = len(due), len(overdue)

    case_ids = [r.id for r, _ in due] + [r.id for r in overdue]
    people = _participants(session, case_ids)
    users = _users(session, {r.counsellor_id for r, _ in due} | {r.counsellor_id for r in overdue})
    supervisors = _supervisors(session, {r.team_id for r in overdue})

    for row, offset in due:
        info = _case_info(row, users, people)
        for r in _participant_recipients(people.get(row.id, ()), today, policy):
            messages.append(plan.plan_deadline_reminder(info, offset, today, r))
        counsellor = users.get(row.counsellor_id)
        if counsellor is not None and counsellor.active and counsellor.email:
            messages.append(plan.plan_deadline_reminder(
                info, offset, today, plan.Recipient(counsellor.email, "nl", "counsellor",
                                                    counsellor.name)))
    for row in overdue:
        info = _case_info(row, users, people)
        targets = supervisors.get(row.team_id) or []
        if not targets:  # a team without a supervisor: the counsellor is told instead
            counsellor = users.get(row.counsellor_id)
            targets = [counsellor] if counsellor is not None and counsellor.active else []
            log.warning("case %s is overdue but its team has no active supervisor; "
                        "alerting the counsellor", row.reference)
        for user in targets:
            messages.append(plan.plan_overdue_alert(
                info, today, plan.Recipient(user.email, "nl", "supervisor", user.name)))

    link_messages, report.links = _signing_link_messages(session, policy, now, since, tz)
    messages += link_messages
    report.planned = len(messages)
    session.rollback()  # end the read transaction before taking the write lock
    begin_write(session)
    report.inserted = enqueue(session, messages, now=now)
    session.commit()
    return report


_PERSON_COLUMNS = (Participant.id, Participant.case_id, Participant.email, Participant.language,
                   Participant.date_of_birth, Participant.given_names_latin,
                   Participant.family_name_latin, Participant.given_names_cyrillic,
                   Participant.family_name_cyrillic)


def _participants(session: Session, case_ids: list[int]) -> dict[int, list]:
    """The participants of the cases as plain rows (only what a message needs; no identity
    numbers are even read)."""
    out: dict[int, list] = {}
    for ids in _chunks(sorted(set(case_ids))):
        for p in session.execute(select(*_PERSON_COLUMNS).where(Participant.case_id.in_(ids))
                                 .order_by(Participant.id)):
            out.setdefault(p.case_id, []).append(p)
    return out


def _users(session: Session, ids: Iterable[int]) -> dict[int, User]:
    out: dict[int, User] = {}
    for chunk in _chunks(sorted(set(ids))):
        out.update({u.id: u for u in session.execute(
            select(User).where(User.id.in_(chunk))).scalars()})
    return out


def _supervisors(session: Session, team_ids: Iterable[int]) -> dict[int, list[User]]:
    out: dict[int, list[User]] = {}
    ids = sorted(set(team_ids))
    if not ids:
        return out
    for user in session.execute(select(User).where(
            User.team_id.in_(ids), User.role == SUPERVISOR, User.active.is_(True))
            .order_by(User.id)).scalars():
        out.setdefault(user.team_id, []).append(user)
    return out


def _case_info(row, users: dict, people: dict) -> plan.CaseInfo:
    counsellor = users.get(row.counsellor_id)
    return plan.CaseInfo(case_id=row.id, reference=row.reference, deadline=row.departure_deadline,
                         counsellor_name=counsellor.name if counsellor else "",
                         counsellor_email=counsellor.email if counsellor else "",
                         household_size=len(people.get(row.id, ())))


def _recipient(p) -> plan.Recipient:
    """A participant (row or model) as a message recipient."""
    native = (f"{p.given_names_cyrillic} {p.family_name_cyrillic or ''}".strip()
              if p.given_names_cyrillic else "")
    return plan.Recipient(p.email.strip(), p.language or "uk", "participant",
                          f"{p.given_names_latin} {p.family_name_latin}", native)


def _participant_recipients(people: Iterable, today: dt.date,
                            policy: Policy) -> list[plan.Recipient]:
    """Each adult with an e-mail address, once per address, in their own language."""
    seen, out = set(), []
    for p in people:
        email = (p.email or "").strip()
        if not email or not policy.is_adult_on(p.date_of_birth, today) \
                or email.lower() in seen:
            continue
        seen.add(email.lower())
        out.append(_recipient(p))
    return out


def _signing_link_messages(session: Session, policy: Policy, now: dt.datetime,
                           since: dt.date, tz: str) -> tuple[list[plan.Planned], int]:
    """Reminders for unused links at least ``signing_link_reminder_days`` old, and notices
    to counsellors of links that expired unused since the last sweep window."""

    remind_before = now - dt.timedelta(days=policy.signing_link_reminder_days)
    lookback = now - dt.timedelta(days=(now.date() - since).days + 1)
    rows = session.execute(
        select(SigningRequest, Case.reference, Case.state, Case.counsellor_id,
               Case.departure_deadline)
        .join(Case, Case.id == SigningRequest.case_id)
        .where(SigningRequest.channel == "link", SigningRequest.used_at.is_(None),
               SigningRequest.revoked_at.is_(None),
               or_(and_(SigningRequest.created_at <= remind_before,
                        SigningRequest.expires_at > now),
                   and_(SigningRequest.expires_at <= now,
                        SigningRequest.expires_at > lookback)))).all()
    if not rows:
        return [], 0
    people = {p.id: p for p in session.execute(select(Participant).where(
        Participant.id.in_({r[0].participant_id for r in rows}))).scalars()}
    users = _users(session, {r.counsellor_id for r in rows})
    out = []
    for req, reference, state, counsellor_id, deadline in rows:
        states = SIGNING_STATES.get(req.kind)
        if states is not None and State(state) not in states:
            continue  # the case moved past this document: the link is moot
        person = people.get(req.participant_id)
        counsellor = users.get(counsellor_id)
        info = plan.CaseInfo(case_id=req.case_id, reference=reference, deadline=deadline,
                             counsellor_name=counsellor.name if counsellor else "",
                             counsellor_email=counsellor.email if counsellor else "")
        link = plan.LinkInfo(id=req.id, kind=req.kind, created_at=req.created_at,
                             expires_at=req.expires_at,
                             signer_name=person.full_name if person else "")
        if req.expires_at > now:
            if person is not None and (person.email or "").strip():
                out.append(plan.plan_signing_link_reminder(info, link, _recipient(person)))
        elif counsellor is not None and counsellor.active:
            out.append(plan.plan_signing_link_expired(info, link, plan.Recipient(
                counsellor.email, "nl", "counsellor", counsellor.name)))
    return out, len(rows)


# --- transitions -------------------------------------------------------------------------------

def _deadline_bound(query):
    # Deadline reminders and overdue alerts are exactly the messages with a deadline.
    return query.where(OutboxMessage.deadline.is_not(None))


def on_transition(ctx: Context, case: Case, from_state: str, to_state: str) -> int:
    """Called by the cases service inside a transition's transaction.

    A case that leaves ``departure_agreed`` has its pending deadline reminders and overdue
    alerts cancelled; a case that enters it or stays in it (``extend_deadline``) has those
    for any other deadline cancelled — the sweep then plans the ones for the new date.
    Returns how many messages were cancelled. Writes no audit event of its own (the
    transition's event covers it) and does not commit.
    """
    session = ctx.session
    if to_state != plan.ACTIVE_STATE and from_state != plan.ACTIVE_STATE:
        return 0
    query = _deadline_bound(update(OutboxMessage).where(
        OutboxMessage.case_id == case.id, OutboxMessage.status == "pending"))
    if to_state == plan.ACTIVE_STATE:
        deadline = session.execute(select(Case.departure_deadline)
                                   .where(Case.id == case.id)).scalar_one()
        reason = f"cancelled: the departure deadline is now {deadline}"
        if deadline is not None:
            query = query.where(OutboxMessage.deadline != deadline)
    else:
        reason = f"cancelled: the case moved to {to_state}"
    return session.execute(query.values(status="cancelled", last_error=reason)
                           .execution_options(synchronize_session=False)).rowcount


# --- read-outs for pages -----------------------------------------------------------------------

def overdue_query(today: dt.date):
    """SELECT of the overdue cases: in ``departure_agreed`` with the deadline before today."""
    return (select(Case).where(Case.state == plan.ACTIVE_STATE,
                               Case.departure_deadline < today)
            .order_by(Case.departure_deadline, Case.id))


def overdue_cases(session: Session, today: dt.date, *, team_id: int | None = None) -> list[Case]:
    """Cases whose departure deadline passed without departure (for the dashboard);
    optionally one team's."""
    query = overdue_query(today)
    if team_id is not None:
        query = query.where(Case.team_id == team_id)
    return list(session.execute(query).scalars())


def is_case_overdue(case: Case, today: dt.date) -> bool:
    """Whether ``case`` shows as overdue on ``today``."""
    return case.state == plan.ACTIVE_STATE and plan.is_overdue(case.departure_deadline, today)


def case_reminders(ctx: Context, reference: str) -> dict:
    """For a case the actor may see: its messages, the failed ones, and whether it is
    overdue — what the case page shows."""
    case = load_case(ctx, reference)
    messages = case_messages(ctx.session, case.id)
    return {"reference": case.reference, "overdue": is_case_overdue(case, ctx.today()),
            "messages": messages, "failed": [m for m in messages if m["status"] == "failed"]}


