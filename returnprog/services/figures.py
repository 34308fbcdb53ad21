"""Read-only use cases behind the staff pages: the dashboard and the programme figures for
management. Nothing here writes."""
from __future__ import annotations

import datetime as dt
import functools

from sqlalchemy import and_, bindparam, extract, func, select
from sqlalchemy import case as when

from ..models import Case, OutboxMessage, Payment, SigningRequest, Team
from ..workflow import State
from ..roles import COUNSELLOR, DELIVERY_WATCHERS, FIGURE_ROLES, FINANCE, SUPERVISOR
from . import Context, Forbidden
from .outbox import delivery_health
from .lookups import PRINCIPAL, reader_cases
from .queues import queue_counts

# States in which a case has a departure deadline that is still running.
DEADLINE_STATES = (State.DEPARTURE_AGREED.value, State.SUPPORT_PAID.value)
UPCOMING_DAYS = 14
DECLINED_DAYS = 30  # how far back the dashboard lists declined signatures
ROW_LIMIT = 50


def _case_rows(ctx: Context, query, params: dict) -> list[dict]:
    """The rows of :func:`_rows_of` ``query`` as the dashboard lists them."""
    today = ctx.today()
    rows = ctx.session.execute(query, params).all()
    return [{"reference": reference, "state": state,
             "principal_name": f"{given} {family}" if given is not None else "",
             "departure_deadline": deadline,
             "days_left": (deadline - today).days if deadline else None}
            for reference, state, deadline, given, family in rows]


def _rows_of(query):
    """Up to ROW_LIMIT cases of ``query`` with the principal's name joined in (one
    statement, however many rows)."""
    principal = PRINCIPAL
    # The columns shown, not whole cases: loading 50 case objects of 21 columns cost more
    # than finding them.
    return (query.with_only_columns(Case.reference, Case.state, Case.departure_deadline,
                                    principal.given_names_latin, principal.family_name_latin)
            .outerjoin(principal, and_(principal.case_id == Case.id, principal.is_principal))
            .limit(ROW_LIMIT))


@functools.lru_cache(maxsize=16)
def _dashboard_statements(role: str, has_team: bool) -> dict:
    """The dashboard's statements for a reader of ``role``, built once per role (the
    reader's team and id, today and the declined-since moment are parameters): building
    six statements and deriving their cache keys on every dashboard cost more than
    running them."""
    query = reader_cases(role, has_team=has_team)
    if role == COUNSELLOR:
        query = query.where(Case.counsellor_id == bindparam("actor_id"))
    deadline = Case.departure_deadline
    today = bindparam("today", type_=deadline.type)
    # The reader's scope as a condition on the case row, joined rather than an IN list of
    # ids: a counsellor's 1,500 cases are then counted from the case index alone.
    readable = query.whereclause
    running = query.where(Case.state.in_(DEADLINE_STATES))
    return {
        "counts": query.with_only_columns(Case.state, func.count()).group_by(Case.state),
        "upcoming": _rows_of(running.where(and_(
            deadline >= today, deadline <= bindparam("until", type_=deadline.type)))
            .order_by(deadline, Case.id)),
        "overdue": _rows_of(running.where(deadline < today).order_by(deadline, Case.id)),
        # Reminders that could not be delivered after the last retry need a person to act.
        "failed": (select(OutboxMessage.id, OutboxMessage.kind, OutboxMessage.attempts,
                          OutboxMessage.last_error, Case.reference)
                   .join(Case, Case.id == OutboxMessage.case_id)
                   .where(OutboxMessage.status == "failed", readable)
                   .order_by(OutboxMessage.id.desc()).limit(50)),
        # Signatures participants declined lately (issue 12): the counsellor follows them up.
        "declined": (select(Case.reference, SigningRequest.kind, SigningRequest.declined_at)
                     .join(Case, Case.id == SigningRequest.case_id)
                     .where(SigningRequest.declined_at
                            >= bindparam("since", type_=SigningRequest.declined_at.type),
                            readable)
                     .order_by(SigningRequest.declined_at.desc()).limit(50)),
    }


def dashboard(ctx: Context) -> dict:
    """What a signed-in person sees first.

    Counsellors: their own cases; supervisors: their team's; finance: the cases with a
    payment. Cases per state, deadlines in the next 14 days, overdue cases, and how many
    cases wait in each of the reader's work queues (:func:`queues.queue_counts`).
    """
    actor, today = ctx.actor, ctx.today()
    scope = {SUPERVISOR: "team", FINANCE: "payments"}.get(actor.role, "mine")
    statements = _dashboard_statements(actor.role, actor.team_id is not None)
    params = {"team_id": actor.team_id, "actor_id": actor.id, "today": today,
              "until": today + dt.timedelta(days=UPCOMING_DAYS),
              "since": ctx.now() - dt.timedelta(days=DECLINED_DAYS)}
    session = ctx.session
    counts = dict(session.execute(statements["counts"], params).all())
    by_state = [{"state": s.value, "count": counts.get(s.value, 0)} for s in State]
    upcoming = _case_rows(ctx, statements["upcoming"], params)
    overdue = _case_rows(ctx, statements["overdue"], params)
    failed = session.execute(statements["failed"], params).mappings().all()
    declined = [] if actor.role == FINANCE else [
        dict(r) for r in session.execute(statements["declined"], params).mappings()]
    return {"scope": scope, "by_state": by_state, "total": sum(counts.values()),
            "upcoming": upcoming, "overdue": overdue, "upcoming_days": UPCOMING_DAYS,
            "failed_messages": [dict(m) for m in failed], "queues": queue_counts(ctx),
            "declined": declined, "declined_days": DECLINED_DAYS}


def delivery_warning(ctx: Context, warning_age: dt.timedelta) -> dict | None:
    """The dashboard's warning that reminders are not going out, long before any is marked
    failed: for the roles who can act (:data:`~returnprog.roles.DELIVERY_WATCHERS`), when
    the latest SMTP attempt failed or a due message has waited longer than
    ``warning_age``. None when all is well or the reader cannot act. Programme-wide
    counts and the last error with addresses removed — nothing about any one person."""
    if ctx.actor.role not in DELIVERY_WATCHERS:
        return None
    state = delivery_health(ctx.session, ctx.now())
    if not state.failing(warning_age):
        return None
    return {"unsent": state.unsent, "due": state.due,
            "oldest_due_minutes": int(state.oldest_due_age.total_seconds() // 60)
            if state.oldest_due_age is not None else None,
            "waiting_too_long": state.oldest_due_age is not None
            and state.oldest_due_age > warning_age,
            "last_attempt_failed": state.last_attempt_failed,
            "last_error": state.last_error if state.last_attempt_failed else None,
            "last_error_at": state.last_error_at if state.last_attempt_failed else None,
            "last_sent_at": state.last_sent_at}


def _month_keys(today: dt.date, months: int) -> list[str]:
    keys, year, month = [], today.year, today.month
    for _ in range(months):
        keys.append(f"{year:04d}-{month:02d}")
        year, month = (year, month - 1) if month > 1 else (year - 1, 12)
    return list(reversed(keys))


def programme_figures(ctx: Context, months: int = 12) -> dict:
    """Programme-wide figures for management (no personal data): cases per state,
    departures and support paid per month, destinations by oblast."""
    if ctx.actor.role not in FIGURE_ROLES:
        raise Forbidden('figures.role')
    session, today = ctx.session, ctx.today()
    counts = dict(session.execute(select(Case.state, func.count()).group_by(Case.state)).all())
    keys = _month_keys(today, months)
    first = dt.date(int(keys[0][:4]), int(keys[0][5:]), 1)
    departed = {f"{int(y):04d}-{int(m):02d}": n for y, m, n in session.execute(
        select(extract("year", Case.departed_on), extract("month", Case.departed_on), func.count())
        .where(Case.departed_on >= first).group_by(extract("year", Case.departed_on),
                                                   extract("month", Case.departed_on))).all()}
    first_at = dt.datetime.combine(first, dt.time(), dt.timezone.utc)
    paid = {f"{int(y):04d}-{int(m):02d}": (n, int(total or 0)) for y, m, n, total in session.execute(
        select(extract("year", Payment.disbursed_at), extract("month", Payment.disbursed_at),
               func.count(), func.sum(Payment.amount_cents))
        .where(Payment.status == "disbursed", Payment.disbursed_at >= first_at)
        .group_by(extract("year", Payment.disbursed_at),
                  extract("month", Payment.disbursed_at))).all()}
    total_paid = session.execute(select(func.count(), func.sum(Payment.amount_cents)).where(
        Payment.status == "disbursed")).one()
    oblasts = session.execute(
        select(Case.destination_oblast, func.count(),
               func.sum(when((Case.state == State.DEPARTED.value, 1), else_=0)))
        .where(Case.destination_oblast.is_not(None)).group_by(Case.destination_oblast)
        .order_by(func.count().desc(), Case.destination_oblast)).all()
    return {
        "cases_per_state": [{"state": s.value, "count": counts.get(s.value, 0)} for s in State],
        "total_cases": sum(counts.values()),
        "departures_per_month": [{"month": k, "count": departed.get(k, 0)} for k in keys],
        "support_per_month": [{"month": k, "count": paid.get(k, (0, 0))[0],
                               "amount_cents": paid.get(k, (0, 0))[1]} for k in keys],
        "support_paid": {"count": total_paid[0] or 0, "amount_cents": int(total_paid[1] or 0)},
        "destinations": [{"oblast": o, "cases": n, "departed": int(d or 0)} for o, n, d in oblasts],
    }


def teams(ctx: Context) -> list[str]:
    """Names of the teams (for the user administration form)."""
    return list(ctx.session.execute(select(Team.name).order_by(Team.name)).scalars())
