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
import functools
import hashlib
from typing import NamedTuple

from sqlalchemy import and_, bindparam, exists, func, select, update
from sqlalchemy import case as sa_case
from sqlalchemy.sql.visitors import replacement_traverse

from .. import queues as rules
from ..models import Case, CaseQueue, Document, Payment, SigningRequest
from ..roles import COUNSELLOR, FINANCE, SUPERVISOR
from ..policy import TIMEZONE
from ..workflow import ADDENDUM, FINAL_STATES, State
from . import Context, NotFound
from .uow import atomic, begin_write
from .lookups import (COUNSELLOR_USER, PRINCIPAL, PROPOSER, case_snapshots, display_name,
                      gather_facts, reader_cases, visible_cases)

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


def _judge_counsellor_cases(ctx: Context, query):
    """Every case of ``query`` (a SELECT of the actor's open cases) judged for the
    counsellor's queues: ``(case row, names, entries, recheck_at)`` per case, in five
    statements (cases, participants, documents, payments, open links). ``recheck_at`` is
    when time alone may move the case: its next link expiry, else the next Amsterdam
    midnight (a guard may read today's date, a child may come of age)."""
    now = ctx.now()
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
    midnight = _next_midnight(now)
    out = []
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
        case_links = links.get(case.id, ())
        entries = rules.counsellor_entries(facts, case_links, now, ctx.policy, signed_at)
        expiries = [rules.aware(link.expires_at) for link in case_links]
        recheck = min([e for e in expiries if e > rules.aware(now)] + [midnight])
        out.append((case, names, entries, recheck))
    return out


def _next_midnight(now: dt.datetime) -> dt.datetime:
    """The next midnight in Amsterdam after ``now``, in UTC."""
    local = rules.aware(now).astimezone(TIMEZONE)
    day = local.date() + dt.timedelta(days=1)
    return dt.datetime.combine(day, dt.time(), TIMEZONE).astimezone(dt.timezone.utc)


def _counsellor_queues(ctx: Context) -> dict[str, list[dict]]:
    """The counsellor's own open cases, sorted into ``mine``, ``participant`` and ``ind``:
    five statements (cases, participants, documents, payments, open links)."""
    now = ctx.now()
    out: dict[str, list[dict]] = {q: [] for q in queue_names(COUNSELLOR)}
    for case, names, entries, _recheck in _judge_counsellor_cases(ctx, _own_open(ctx)):
        for entry in entries:
            out[entry.queue].append(_row(ctx, case, *names, entry=entry))
    # The longest wait first where it is known; otherwise oldest case first.
    out[rules.IND].sort(key=lambda r: (r["since"] is None, r["since"] or now))
    out[rules.PARTICIPANT].sort(key=lambda r: (not r["expired"], not r["expiring_soon"],
                                               r["expires_at"] or now))
    return out


def _own_open(ctx: Context):
    """The counsellor's own open cases (a SELECT of cases)."""
    return _open_of(visible_cases(ctx.actor), ctx.actor.id)


def _open_of(query, counsellor):
    """The open cases of ``counsellor`` (an id, or a parameter) among ``query``'s: one
    definition for the queues, the cached count and the cases it judges afresh."""
    return query.where(Case.counsellor_id == counsellor, Case.state.in_(OPEN_STATES))


# --- the cache the dashboard counts from (issue 11) ------------------------------------------

_COUNSELLOR_FLAGS = (rules.MINE, rules.PARTICIPANT, rules.IND)


def policy_key(policy) -> str:
    """A short digest of the policy in force: a cached judgement made under other rules
    (an instance's policy changed, a dated rule came into force) is not reused."""
    return hashlib.sha256(repr(policy).encode()).hexdigest()[:16]


def _current(ctx: Context):
    """The condition under which a cached row still holds: worked out after the case's
    last change, not in the future (a clock set back) and before the time it must be
    looked at again, under the policy in force."""
    return _holds(ctx.now(), policy_key(ctx.policy))


def _holds(now, key):
    """:func:`_current` for ``now`` and the policy's ``key`` (values, or parameters of a
    statement built once)."""
    return and_(CaseQueue.computed_seq == CaseQueue.change_seq,
                CaseQueue.computed_at <= now, CaseQueue.recheck_at > now,
                CaseQueue.policy_key == key)


def _on_cache_rows(clause):
    """``clause``, a condition on case columns, as the same condition on the copies of them
    that each ``case_queue`` row carries (migration 0027). A case column without a copy
    raises KeyError, so a reader's scope that comes to depend on another column fails the
    statement's construction, never counts the wrong cases."""
    mirror = CaseQueue.__table__.c

    def copy_of(element):
        if getattr(element, "table", None) is Case.__table__:
            return mirror[element.name]
        return None
    return replacement_traverse(clause, {}, copy_of)


@functools.lru_cache(maxsize=4)
def _counsellor_count_statement(has_team: bool):
    """:func:`_counsellor_counts`' one statement, built once (the counsellor, their team,
    now and the policy's key are parameters): every dashboard of a counsellor sends it.

    The counsellor's open cases are counted from the case table (the truth), and the
    cached judgements from ``ix_case_queue_reader`` alone, under the same scope applied to
    the cache row's copy of the case's columns: one range scan of an index instead of a
    lookup into ``case_queue`` per open case (2.7 ms -> 0.45 ms at 150,000 cases)."""
    own = _open_of(reader_cases(COUNSELLOR, has_team=has_team), bindparam("actor_id"))
    total = own.with_only_columns(func.count()).scalar_subquery()
    current = _holds(bindparam("now", type_=CaseQueue.computed_at.type),
                     bindparam("policy_key"))
    return (select(total, func.count(),
                   *(func.coalesce(func.sum(sa_case((getattr(CaseQueue, q), 1), else_=0)), 0)
                     for q in _COUNSELLOR_FLAGS))
            .select_from(CaseQueue).where(_on_cache_rows(own.whereclause), current))


def _counsellor_counts(ctx: Context) -> dict[str, int]:
    """How many of the counsellor's open cases are in each of their queues: counted from
    the cache where it holds (one statement), and the cases it does not hold for judged
    afresh, exactly as :func:`work_queues` judges them."""
    actor = ctx.actor
    # One statement: how many open cases, how many the cache holds for, and its counts.
    total, held, *flags = ctx.session.execute(
        _counsellor_count_statement(actor.team_id is not None),
        {"actor_id": actor.id, "team_id": actor.team_id, "now": ctx.now(),
         "policy_key": policy_key(ctx.policy)}).one()
    counts = dict(zip(_COUNSELLOR_FLAGS, flags))
    if held < total:  # some changed since the job last ran: judge those afresh
        stale = _own_open(ctx).where(~exists().where(CaseQueue.case_id == Case.id,
                                                     _current(ctx)))
        for _case, _names, entries, _recheck in _judge_counsellor_cases(ctx, stale):
            for queue in {entry.queue for entry in entries}:
                counts[queue] += 1
    return {q: int(n) for q, n in counts.items()}


@atomic
def refresh_cache(ctx: Context, limit: int = 2000) -> int:
    """Work out again up to ``limit`` cached rows that no longer hold (the scheduler's
    ``queues`` job, ``flask queue-cache``); how many were written. One transaction: the
    judgement is read under the write lock, and each row records the change count it was
    worked out at, so a change committed meanwhile (PostgreSQL lets one through) leaves
    the row stale instead of being hidden; such a row is not written at all."""
    session = ctx.session
    begin_write(session)
    stale_ids = select(CaseQueue.case_id).join(Case, Case.id == CaseQueue.case_id).where(
        Case.state.in_(OPEN_STATES), Case.destroyed_at.is_(None),
        ~_current(ctx)).order_by(CaseQueue.case_id).limit(limit)
    seqs = dict(session.execute(select(CaseQueue.case_id, CaseQueue.change_seq)
                                .where(CaseQueue.case_id.in_(stale_ids))).all())
    if not seqs:
        session.rollback()
        return 0
    key, written = policy_key(ctx.policy), 0
    judged = _judge_counsellor_cases(ctx, select(Case).where(Case.id.in_(list(seqs))))
    for case, _names, entries, recheck in judged:
        queues = {entry.queue for entry in entries}
        result = session.execute(
            update(CaseQueue).where(CaseQueue.case_id == case.id,
                                    CaseQueue.change_seq == seqs[case.id])
            .values(computed_seq=seqs[case.id], computed_at=ctx.now(), recheck_at=recheck,
                    policy_key=key,
                    **{q: q in queues for q in _COUNSELLOR_FLAGS})
            .execution_options(synchronize_session=False))
        written += result.rowcount
    session.commit()
    return written


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


def refresh_cache_fully(ctx: Context, batch: int = 2000, stop=lambda: False) -> int:
    """:func:`refresh_cache` a batch at a time until nothing is left (or ``stop()``); rows
    written. For the scheduler's round, ``flask queue-cache`` and a bulk load."""
    written = 0
    while not stop():
        done = refresh_cache(ctx, limit=batch)
        written += done
        if done < batch:
            break
    return written


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
    counts): always its queue's length in :func:`work_queues`. A counsellor's are counted
    from the queue cache where it holds (:func:`_counsellor_counts`), so the dashboard
    does not judge a whole caseload on every look."""
    if ctx.actor.role == COUNSELLOR:
        return _counsellor_counts(ctx)
    return {name: len(rows) for name, rows in work_queues(ctx).items()}
