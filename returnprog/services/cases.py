"""Use cases on a case: open it, edit its intake, read it, list cases, record IND
confirmations, and perform any workflow action."""
from __future__ import annotations

import functools
import json

from sqlalchemy import String, and_, bindparam, case as sa_case, delete, func, select, update

from .. import access_log, audit, evidence, search, workflow
from ..db import upsert_into
from ..models import (AuditEvent, Case, CaseSearch, Document, IndConfirmation, OpenVNumber, Participant,
                      OutboxMessage, ReferenceCounter, SigningCode, SigningRequest,
                      Team, User)
from ..roles import INTAKE_ROLES
from ..workflow import CaseFacts, State
from . import Conflict, Context, Forbidden, Invalid, case_files, payment, transitions
from .access import record_look
from .role_views import is_narrowed, narrow_case, narrow_details
from .lookups import (PRINCIPAL, CaseSnapshot, allowed_actions, case_snapshot, display_name, gather_facts,
                      is_adult, load_case, load_case_named, reader_cases, user_ref)
from .uow import BUSY_MESSAGE, atomic, begin_write, commit, flush_or_conflict
from ..messages import M, Refusal


# --- open and edit ------------------------------------------------------------------------------

def _next_reference(ctx: Context) -> str:
    year = ctx.today().year
    session = ctx.session
    bump = (update(ReferenceCounter).where(ReferenceCounter.year == year)
            .values(last=ReferenceCounter.last + 1).returning(ReferenceCounter.last))
    last = session.execute(bump).scalar_one_or_none()
    if last is None:
        # The year's first case. Several may race to create the counter (PostgreSQL):
        # INSERT … ON CONFLICT DO NOTHING waits for the winner instead of failing, and the
        # UPDATE then counts on from the committed row.
        session.execute(upsert_into(session, ReferenceCounter).values(year=year, last=0)
                        .on_conflict_do_nothing(index_elements=["year"]))
        last = session.execute(bump).scalar_one()
    return f"VRP-{year}-{last:06d}"


def _participant(case_id: int, data: dict, principal: bool) -> Participant:
    fields = {k: v for k, v in data.items() if k != "relationship"}
    return Participant(case_id=case_id, is_principal=principal,
                       relationship="principal" if principal else data["relationship"], **fields)


def _claim_v_numbers(ctx: Context, case: Case, people: list[Participant],
                     fields: list[str] | None = None) -> None:
    """Record the household's V-numbers as held by this open case; a V-number already held
    by another open case is refused (the primary key settles a race). ``fields`` name each
    person's V-number field in the request (default: the intake's ``principal.v_number``,
    ``household.0.v_number``, ...): the refusal says which one, never the number itself."""
    numbers = [p.v_number for p in people]
    fields = fields or ["principal.v_number"] + [
        f"household.{i}.v_number" for i in range(len(people) - 1)]
    taken = set(ctx.session.execute(select(OpenVNumber.v_number).where(
        OpenVNumber.v_number.in_(numbers), OpenVNumber.case_id != case.id)).scalars().all())
    if taken:
        ctx.session.rollback()
        raise Conflict('case.person_has_open_case',
                       [{"code": "open_case_exists", "field": field,
                         "message": M("case.v_number_taken")}
                        for field, v in zip(fields, numbers) if v in taken])
    for v in numbers:
        ctx.session.add(OpenVNumber(v_number=v, case_id=case.id))
    flush_or_conflict(ctx, "case.person_has_open_case")


def _check_household(ctx: Context, data: dict) -> None:
    """Refuse a household whose relationships the dates of birth make implausible
    (:func:`workflow.household_problems`), per member field, before anything is written."""
    members = list(data.get("household") or [])
    problems = workflow.household_problems(
        (data.get("principal") or {}).get("date_of_birth"),
        [(m.get("relationship"), m.get("date_of_birth")) for m in members],
        ctx.today(), ctx.policy)
    if problems:
        details: dict = {}
        for refusal in problems:
            _household, index, name = refusal.field.split(".")
            details.setdefault("household", {}).setdefault(index, {}).setdefault(
                name, []).append(refusal.message)
        raise Invalid("error.invalid_fields", details)


@atomic
def open_case(ctx: Context, data: dict) -> Case:
    """``open_case``: create a case in ``intake`` from validated intake data
    (:class:`~returnprog.schemas.IntakeSchema`), owned by the acting counsellor."""
    actor = ctx.actor
    refusals = workflow.role_refusals(workflow.ACTIONS["open_case"], actor.role)
    if refusals:
        raise Forbidden(refusals[0].message)
    if actor.team_id is None:
        raise Forbidden('case.no_team')
    _check_household(ctx, data)
    begin_write(ctx.session)
    now = ctx.now()
    case = Case(reference=_next_reference(ctx), state=State.INTAKE.value, team_id=actor.team_id,
                counsellor_id=actor.id, destination_oblast=data.get("destination_oblast"),
                destination_place=data.get("destination_place"),
                intake_notes=data.get("intake_notes"), created_at=now, updated_at=now)
    ctx.session.add(case)
    flush_or_conflict(ctx, BUSY_MESSAGE)
    people = [_participant(case.id, data["principal"], True)]
    people += [_participant(case.id, m, False) for m in data.get("household", [])]
    ctx.session.add_all(people)
    _claim_v_numbers(ctx, case, people)
    search.index_case(ctx.session, case.id, case.reference, people)
    audit.append(ctx.session, actor=actor, action="open_case", case_id=case.id,
                 to_state=State.INTAKE.value, details={"reference": case.reference,
                                                      "household_size": len(people)}, ip=ctx.ip)
    commit(ctx, "case.person_has_open_case")
    return case


@atomic
def update_intake(ctx: Context, reference: str, data: dict, expected_version: int | None = None) -> Case:
    """Replace the intake data and household of a case that is still in ``intake``."""
    begin_write(ctx.session)
    case = load_case(ctx, reference)
    if ctx.actor.role not in INTAKE_ROLES:
        raise Forbidden('case.intake_role')
    if case.state != State.INTAKE.value:
        raise Conflict('case.intake_locked',
                       [{"code": "wrong_state", "message": M("wrong_state:now", state=case.state)}])
    if expected_version is not None and expected_version != case.version:
        raise Conflict(BUSY_MESSAGE, [{"code": "stale_version",
                                       "message": M("case.version", version=case.version)}])
    _check_household(ctx, data)
    version = case.version
    changed = ctx.session.execute(
        update(Case).where(Case.id == case.id, Case.version == version,
                           Case.state == State.INTAKE.value)
        .values(version=version + 1, updated_at=ctx.now(),
                destination_oblast=data.get("destination_oblast"),
                destination_place=data.get("destination_place"),
                intake_notes=data.get("intake_notes"))).rowcount
    if changed != 1:
        ctx.session.rollback()
        raise Conflict(BUSY_MESSAGE)
    # Signatures were given on the old household: once any exist, the household is fixed.
    has_docs = ctx.session.execute(select(func.count()).select_from(Document)
                                   .where(Document.case_id == case.id)).scalar_one()
    if has_docs:
        ctx.session.rollback()
        raise Conflict('case.intake_signed', [{"code": "documents_signed",
                                                  "message": M('case.signed_documents_exist')}])
    ctx.session.execute(delete(OpenVNumber).where(OpenVNumber.case_id == case.id))
    lapsing = select(SigningRequest.id).where(SigningRequest.case_id == case.id,
                                              SigningRequest.document_id.is_(None))
    ctx.session.execute(delete(SigningCode).where(SigningCode.signing_request_id.in_(lapsing)))
    # Mail about those links (reminders, codes) no longer has a link to point at: unsent
    # mail is cancelled, and every row lets go of the link so that it can be deleted.
    ctx.session.execute(update(OutboxMessage).where(
        OutboxMessage.signing_request_id.in_(lapsing), OutboxMessage.status == "pending")
        .values(status="cancelled", last_error="cancelled: the intake was replaced")
        .execution_options(synchronize_session=False))
    ctx.session.execute(update(OutboxMessage).where(
        OutboxMessage.signing_request_id.in_(lapsing)).values(signing_request_id=None)
        .execution_options(synchronize_session=False))
    # Signing links sent to the old household (none used: no document exists) point at
    # participants that are about to be replaced; they lapse with them.
    links = ctx.session.execute(delete(SigningRequest).where(
        SigningRequest.case_id == case.id, SigningRequest.document_id.is_(None))).rowcount
    ctx.session.execute(delete(Participant).where(Participant.case_id == case.id))
    people = [_participant(case.id, data["principal"], True)]
    people += [_participant(case.id, m, False) for m in data.get("household", [])]
    ctx.session.add_all(people)
    _claim_v_numbers(ctx, case, people)
    search.index_case(ctx.session, case.id, case.reference, people)
    details = {"household_size": len(people)}
    if links:
        details["signing_links_cancelled"] = links
    audit.append(ctx.session, actor=ctx.actor, action="update_intake", case_id=case.id,
                 details=details, ip=ctx.ip)
    commit(ctx)
    ctx.session.refresh(case)
    return case


@atomic
def record_ind_confirmation(ctx: Context, reference: str, data: dict) -> IndConfirmation:
    """Record the IND's reference and date confirming one participant's withdrawal."""
    begin_write(ctx.session)
    case = load_case(ctx, reference)
    if ctx.actor.role not in INTAKE_ROLES:
        raise Forbidden('case.ind_role')
    if case.state != State.COMMITTED.value:
        raise Conflict('case.ind_state',
                       [{"code": "wrong_state", "message": M("wrong_state:now", state=case.state)}])
    person = ctx.session.get(Participant, data["participant_id"])
    if person is None or person.case_id != case.id:
        raise Invalid('case.unknown_participant', {"participant_id": [M('case.not_a_participant')]})
    if not person.asylum_application_pending:
        raise Invalid('case.no_pending_application', {"participant_id": [
            M('case.no_pending_application_detail')]})
    existing = ctx.session.execute(select(IndConfirmation).where(
        IndConfirmation.participant_id == person.id)).scalar_one_or_none()
    if existing is not None:
        raise Conflict('case.ind_already_recorded',
                       [{"code": "ind_confirmation_exists",
                         "message": M("case.recorded", ref=existing.ind_reference)}])
    facts = gather_facts(ctx, case)
    mine = next(p for p in facts.participants if p.id == person.id)
    problems = workflow.ind_date_problems(data["confirmed_on"],
                                          workflow.declaration_signed_on(facts, mine),
                                          facts.today)
    if problems:
        raise Invalid("error.invalid_fields",
                      {"confirmed_on": [r.message for r in problems]})
    letter = data.get("evidence_file_id")
    if letter is not None:
        case_files.attachable(ctx, case.id, letter, evidence.IND_KINDS, "evidence_file_id")
    conf = IndConfirmation(case_id=case.id, participant_id=person.id,
                           ind_reference=data["ind_reference"], confirmed_on=data["confirmed_on"],
                           recorded_by=ctx.actor.id, recorded_at=ctx.now(),
                           evidence_file_id=letter)
    ctx.session.add(conf)
    # A racing request for the same participant fails here (unique participant_id), as a
    # Conflict rather than an IntegrityError escaping from the audit append's autoflush.
    flush_or_conflict(ctx, "case.ind_already_recorded")
    details = {"participant_id": person.id, "ind_reference": data["ind_reference"],
               "confirmed_on": data["confirmed_on"].isoformat()}
    if letter is not None:
        details["evidence_file_id"] = letter
    audit.append(ctx.session, actor=ctx.actor, action="record_ind_confirmation", case_id=case.id,
                 details=details, ip=ctx.ip)
    commit(ctx, "case.ind_already_recorded")
    return conf


# --- reading -------------------------------------------------------------------------------------

@atomic
def read_case(ctx: Context, reference: str, *, log_view: bool = True) -> dict:
    """The whole case as plain data (participants, documents, payments, allowed actions;
    the trail is paged apart, :func:`case_trail`). The look at personal data is recorded
    in the access log, never in the audit chain: a read takes no write lock of the chain.
    A fixed number of statements whatever the size of the case (see
    tests/web/test_statement_budgets.py)."""
    case, *names = load_case_named(ctx, reference)
    data = case_data(ctx, case, names=tuple(names))
    if log_view:
        record_look(ctx, case.id, "case")
    return data


TRAIL_PAGE = 50
# The staff case page opens on the latest changes only (the rest page back TRAIL_PAGE at a
# time), so opening a case costs the same however long its trail is.
TRAIL_ON_PAGE = 10
TRAIL_PAGE_MAX = 200
# Looks that chains written before the access log recorded as events. They stay in the
# chain (it is append-only) but are not changes, so the trail leaves them out; looks are
# read from the access log.
LEGACY_LOOK_ACTIONS = ("view_case", "download_document", "view_payment")


@atomic
def case_trail(ctx: Context, reference: str, *, before_seq: int | None = None,
               limit: int = TRAIL_PAGE, log_view: bool = True) -> dict:
    """One page of the case's audit trail (its changes), newest first: ``events`` and
    ``next_before_seq`` to ask for the page before it (None on the oldest page)."""
    case = load_case(ctx, reference)
    page = trail_page(ctx, case, before_seq=before_seq, limit=limit)
    if log_view:
        record_look(ctx, case.id, "trail")
    return page


@functools.cache
def _trail_statement(before: bool):
    """One page of a case's trail (``case_id``, ``limit`` and, when ``before``,
    ``before_seq`` as parameters), built once: building a statement and deriving its
    cache key cost more than running it."""
    # The actor's current name joined in (the event keeps the address it was written
    # with, which the chain's hash covers; the answer names people as everywhere else).
    # The columns shown, not whole events: loading the page's events as objects cost
    # more than the statement.
    query = (select(AuditEvent.seq, AuditEvent.at, AuditEvent.actor, AuditEvent.actor_id,
                    AuditEvent.action, AuditEvent.from_state, AuditEvent.to_state,
                    AuditEvent.details, User.name, User.email)
             .outerjoin(User, User.id == AuditEvent.actor_id)
             .where(AuditEvent.case_id == bindparam("case_id"),
                    AuditEvent.action.not_in(LEGACY_LOOK_ACTIONS)))
    if before:
        query = query.where(AuditEvent.seq < bindparam("before_seq"))
    return query.order_by(AuditEvent.seq.desc()).limit(bindparam("limit"))


def trail_page(ctx: Context, case: Case, *, before_seq: int | None = None,
               limit: int = TRAIL_PAGE) -> dict:
    """One page of ``case``'s trail read in the current transaction (one statement):
    the shape :func:`case_trail` returns. Each event's ``actor`` is ``{"id", "name"}``
    (``{"id": None, "name": <label>}`` for what acted without an account, e.g.
    ``"system"``), ``actor_label`` the text the chain recorded (pages show it)."""
    limit = max(1, min(int(limit), TRAIL_PAGE_MAX))
    params = {"case_id": case.id, "limit": limit + 1}
    if before_seq is not None:
        params["before_seq"] = before_seq
    rows = ctx.session.execute(_trail_statement(before_seq is not None), params).all()
    events = [{"seq": e.seq, "at": e.at, "actor_label": e.actor,
               "actor": user_ref(e.actor_id, e.name, e.email, label=e.actor),
               "action": e.action, "from_state": e.from_state, "to_state": e.to_state,
               "details": narrow_details(_role(ctx), json.loads(e.details or "{}"))}
              for e in rows[:limit]]
    more = len(rows) > limit
    return {"events": events, "next_before_seq": events[-1]["seq"] if more else None}


@atomic
def case_looks(ctx: Context, reference: str, *, before_id: int | None = None,
               limit: int = TRAIL_PAGE) -> dict:
    """Who looked at the case, newest first, a page at a time (the access log)."""
    case = load_case(ctx, reference)
    page = looks_page(ctx, case, before_id=before_id, limit=limit)
    ctx.session.commit()  # read only: ends the snapshot
    return page


def looks_page(ctx: Context, case: Case, *, before_id: int | None = None,
               limit: int = TRAIL_PAGE) -> dict:
    """One page of the access log of ``case`` read in the current transaction (one
    statement, the reader's name joined in): the shape :func:`case_looks` returns, each
    look's ``actor`` as ``{"id", "name"}`` and ``actor_label`` the recorded text."""
    limit = max(1, min(int(limit), TRAIL_PAGE_MAX))
    rows = access_log.for_case(ctx.session, case.id, limit=limit + 1, before_id=before_id,
                               with_names=True)
    looks = [{"id": r.id, "at": r.first_at, "actor_label": r.actor,
              "actor": user_ref(r.actor_id, name, email, label=r.actor), "view": r.view,
              "subject": r.subject, "channel": r.channel} for r, name, email in rows[:limit]]
    return {"looks": looks, "next_before_id": looks[-1]["id"] if len(rows) > limit else None}


def case_data(ctx: Context, case: Case, *, snapshot: CaseSnapshot | None = None,
              facts: CaseFacts | None = None,
              names: tuple[str | None, ...] | None = None) -> dict:
    """Plain-data dump of one case for responses, pages and documents. ``snapshot``,
    ``facts`` and ``names`` (counsellor's e-mail, team's name and, optionally, the
    counsellor's name) are read here unless the caller has them already. ``counsellor`` is
    ``{"id", "name"}`` (:func:`user_ref`, as every answer names staff);
    ``counsellor_name`` is its name (what pages show) and ``counsellor_email`` the address
    (pages only; not in the API's answer). Staff in ``payments`` are ``{"id", "name"}``
    too, read with the payments (no statement more)."""
    session = ctx.session
    today = ctx.today()
    snap = snapshot if snapshot is not None else case_snapshot(ctx, case)
    facts = facts if facts is not None else gather_facts(ctx, case, snap)
    if names is None:
        counsellor = session.get(User, case.counsellor_id)
        team = session.get(Team, case.team_id)
        names = (counsellor.email if counsellor else None, team.name if team else None,
                 counsellor.name if counsellor else None)
    people, confs = snap.participants, snap.ind
    principal = next((p for p in people if p.is_principal), people[0] if people else None)
    counsellor = user_ref(case.counsellor_id, names[2] if len(names) > 2 else None, names[0])
    return narrow_case(_role(ctx), {
        "reference": case.reference, "state": case.state, "version": case.version,
        "counsellor": counsellor, "counsellor_email": names[0], "team": names[1],
        "counsellor_name": counsellor["name"] if counsellor else "",
        "principal_name": principal.full_name if principal else "",
        "household_size": len(people),
        "departure_deadline": case.departure_deadline,
        "destination_oblast": case.destination_oblast,
        "destination_place": case.destination_place, "intake_notes": case.intake_notes,
        "departed_on": case.departed_on, "departure_evidence": case.departure_evidence,
        "closing_reason": case.closing_reason,
        "created_at": case.created_at, "updated_at": case.updated_at,
        "allowed_actions": allowed_actions(ctx, case, facts),
        "participants": [{
            **{k: getattr(p, k) for k in (
                "id", "is_principal", "relationship", "given_names_latin", "family_name_latin",
                "given_names_cyrillic", "family_name_cyrillic", "date_of_birth", "v_number",
                "bsn", "travel_document_number", "email", "phone", "language",
                "asylum_application_pending")},
            "is_adult": is_adult(p, today, ctx.policy),
            "ind_confirmation": ({"ind_reference": confs[p.id][0],
                                  "confirmed_on": confs[p.id][1].isoformat()}
                                 if p.id in confs else None)} for p in people],
        "documents": [{**d._asdict(), "terms": json.loads(d.terms or "{}")}
                      for d in snap.documents],
        "payments": [{"id": p.id, "case_reference": case.reference, "status": p.status,
                      "version": p.version, "amount_cents": p.amount_cents,
                      "currency": p.currency, "method": p.method,
                      "breakdown": json.loads(p.breakdown or "{}"),
                      "proposed_by": snap.users.get(p.proposed_by),
                      "proposed_at": p.proposed_at,
                      "approved_by": (snap.users.get(p.approved_by)
                                      if p.status != "rejected" else None),
                      "disbursed_by": snap.users.get(p.disbursed_by),
                      "disbursed_at": p.disbursed_at} for p in snap.payments],
    })


def _role(ctx: Context) -> str | None:
    return getattr(ctx.actor, "role", None)


# The list's sortable columns. The main line's order makes "state" sort as the programme
# runs, not alphabetically.
_STATE_ORDER = {state.value: i for i, state in enumerate(State)}
SORTS = ("relevance", "reference", "state", "deadline")


def _order_by(sort: str, descending: bool, score):
    """ORDER BY terms for one sort of the list; the newest case breaks ties, so a page
    boundary never shows a case twice or skips one."""
    def direction(column):
        return column.desc() if descending else column.asc()
    if sort == "relevance" and score is not None:
        return [direction(score), Case.id.desc()]
    if sort == "reference":
        return [direction(Case.reference)]
    if sort == "state":
        return [direction(sa_case(_STATE_ORDER, value=Case.state, else_=len(_STATE_ORDER))),
                Case.id.desc()]
    if sort == "deadline":
        # Cases without a deadline (not yet agreed) come last in either direction.
        return [Case.departure_deadline.is_(None), direction(Case.departure_deadline),
                Case.id.desc()]
    return [Case.id.desc()]


def _filtered(query, given, counsellor_by: str | None):
    """``query`` narrowed by the list's plain filters named in ``given`` (state, deadline
    range) and the counsellor (``counsellor_by``: "id", "email" or None), each value a
    parameter of the filter's name: the statement's shape depends only on which filters
    are given, never on their values."""
    if "state" in given:
        query = query.where(Case.state == bindparam("state"))
    if counsellor_by == "id":
        query = query.where(Case.counsellor_id == bindparam("counsellor_id"))
    elif counsellor_by == "email":
        query = query.where(Case.counsellor_id.in_(
            select(User.id).where(User.email == bindparam("counsellor_email"))))
    deadline = Case.departure_deadline
    if "deadline_from" in given:
        query = query.where(deadline >= bindparam("deadline_from", type_=deadline.type))
    if "deadline_to" in given:
        query = query.where(deadline <= bindparam("deadline_to", type_=deadline.type))
    return query


@functools.lru_cache(maxsize=256)
def _list_statements(role: str, has_team: bool, given: frozenset, counsellor_by: str | None,
                     sort: str, descending: bool):
    """The page and the count of a plain list (no search words) of this shape, built once:
    the reader's team, the filters' values, the page's size and offset are parameters.
    Building the two statements and deriving their cache keys was about a fifth of a list
    request's time (bench/README.md)."""
    query = _filtered(reader_cases(role, has_team=has_team), given, counsellor_by)
    return (_page_statement(query, _order_by(sort, descending, None), count_in_page=False),
            _count_of(query))


def _count_of(query):
    """How many rows ``query`` (a SELECT of cases) has, as one statement."""
    return select(func.count()).select_from(query.subquery())


def list_cases(ctx: Context, filters: dict) -> dict:
    """One page of the cases the actor may see, filtered (state, counsellor, deadline range,
    free-text search on reference, name, V-number or full BSN) and sorted: by relevance when
    searching, newest first otherwise, or by the column asked for (``sort``, ``order``)."""
    actor = ctx.actor
    given = frozenset(k for k in ("state", "deadline_from", "deadline_to") if filters.get(k))
    params = {"team_id": actor.team_id, **{k: filters[k] for k in given}}
    counsellor, counsellor_by = filters.get("counsellor"), None
    if counsellor:
        # The user id, as answers name people; an e-mail address still works (older
        # callers, and the page's "mine" filter, which never puts it in the address).
        if isinstance(counsellor, int) or counsellor.isdigit():
            counsellor_by, params["counsellor_id"] = "id", int(counsellor)
        else:
            counsellor_by, params["counsellor_email"] = "email", counsellor.lower()
    searching = bool(filters.get("q"))
    sort = filters.get("sort") or ("relevance" if searching else "reference")
    if sort == "relevance" and not searching:
        sort = "reference"
    default_desc = sort in ("relevance", "reference")
    descending = {"asc": False, "desc": True}.get(filters.get("order") or "", default_desc)
    page, per_page = filters.get("page", 1), filters.get("per_page", 25)
    params.update(limit=per_page, offset=(page - 1) * per_page)
    if searching:
        statement, count, words = _search_statements(ctx, filters["q"], given, counsellor_by,
                                                     sort, descending)
        params.update(words)
    else:
        statement, count = _list_statements(actor.role, actor.team_id is not None, given,
                                            counsellor_by, sort, descending)
    rows = ctx.session.execute(statement, params).all()
    # A search counts its hits in the same statement as the page (a window over the
    # matches), so the index is read once per request, not twice. A plain list (and a
    # search past its last page) counts separately, which an index answers without
    # reading the rows.
    total = (rows[0][-1] if searching and rows
             else ctx.session.execute(count, params).scalar_one())
    return {"page": page, "per_page": per_page, "total": total, "sort": sort,
            "order": "desc" if descending else "asc", "items": [_list_item(r) for r in rows]}


def _search_statements(ctx: Context, q: str, given: frozenset, counsellor_by: str | None,
                       sort: str, descending: bool):
    """The page and the count of a search for the words ``q`` among the cases the actor
    may see, and the words' parameters: the statements come from :func:`_search_shaped`,
    built once per shape of query (how many words, how many spellings each), so a search
    costs what it reads, not building and keying a statement of a hundred clauses."""
    terms = search.parse(q)
    # Every word must occur (any order, any script, substrings): see returnprog.search.
    # The schema refuses a query without a word the index can find.
    if not any(t.indexed for t in terms):
        raise Invalid("error.invalid_fields", {"q": [M("validate.search_short")]})
    actor = ctx.actor
    dialect = ctx.session.get_bind().dialect.name
    params = search.parameters(dialect, terms)
    numbers = []
    if is_narrowed(_role(ctx)):
        # Finance may not learn whose V-number or BSN this is: a number finds a case for
        # them only through its reference.
        numbers = [word for word in search.fold(q).split() if word.isdigit()]
        params.update({f"q_ref{k}": search.like_pattern(word)
                       for k, word in enumerate(numbers)})
    page, count = _search_shaped(dialect, search.shape(terms), len(numbers), actor.role,
                                 actor.team_id is not None, given, counsellor_by, sort,
                                 descending)
    return page, count, params


@functools.lru_cache(maxsize=256)
def _search_shaped(dialect: str, shape: tuple, numbers: int, role: str, has_team: bool,
                   given: frozenset, counsellor_by: str | None, sort: str, descending: bool):
    """The page and the count of a search of this shape (:func:`search.shape`; ``numbers``
    reference filters for a narrowed reader), built once with the words, the filters and
    the reader's team as parameters."""
    query = _filtered(reader_cases(role, has_team=has_team), given, counsellor_by)
    query = (query.join(CaseSearch, CaseSearch.case_id == Case.id)
             .where(Case.id.in_(search.matching_case_ids(dialect, shape))))
    for k in range(numbers):
        query = query.where(Case.reference.like(bindparam(f"q_ref{k}", type_=String()),
                                                escape="/"))
    order = _order_by(sort, descending, search.relevance(dialect, shape))
    return _page_statement(query, order, count_in_page=True), _count_of(query)


def _page_statement(query, order, *, count_in_page: bool):
    """The rows of one list page of ``query`` (a SELECT of cases) in ``order``, with the
    principal's name, the household's size and the counsellor (address, and the name pages
    show) joined in: one statement however many rows; ``limit`` and ``offset`` are
    parameters. The page is cut first, so the joins and the count of each household run
    for its rows only. With ``count_in_page`` the statement also counts every row of
    ``query`` (the last column of each row)."""
    columns = [Case.id]
    if count_in_page:
        # The order may rank by the search index, which only the inner query joins: the
        # position carries it out. (Plain lists order by case columns in both queries, so
        # the database can stop reading after one page.)
        columns += [func.row_number().over(order_by=order).label("pos"),
                    func.count().over().label("total")]
    ids = (query.with_only_columns(*columns).order_by(*order)
           .limit(bindparam("limit")).offset(bindparam("offset")).subquery())
    principal = PRINCIPAL
    size = (select(func.count()).where(Participant.case_id == Case.id)
            .correlate(Case).scalar_subquery())
    extra = [ids.c.total] if count_in_page else []
    # The columns shown, not whole cases: loading 25 case objects of 21 columns cost more
    # than finding them (as the dashboard's lists).
    return (select(Case.reference, Case.state, Case.version, Case.counsellor_id,
                   Case.departure_deadline, Case.destination_oblast, Case.updated_at,
                   principal.given_names_latin, principal.family_name_latin,
                   size.label("household_size"), User.name, User.email, *extra)
            .join(ids, ids.c.id == Case.id)
            .outerjoin(principal, and_(principal.case_id == Case.id, principal.is_principal))
            .outerjoin(User, User.id == Case.counsellor_id)
            .order_by(*([ids.c.pos] if count_in_page else order)))


def _list_item(c) -> dict:
    """One row of :func:`_page_statement` as the list shows it."""
    return {
        "reference": c.reference, "state": c.state, "version": c.version,
        "counsellor": user_ref(c.counsellor_id, c.name, c.email),
        "counsellor_name": display_name(c.name, c.email),
        "principal_name": (f"{c.given_names_latin} {c.family_name_latin}"
                           if c.given_names_latin is not None else ""),
        "household_size": c.household_size, "departure_deadline": c.departure_deadline,
        "destination_oblast": c.destination_oblast, "updated_at": c.updated_at}


# --- transitions ------------------------------------------------------------------------------------

@atomic
def perform(ctx: Context, reference: str, action_name: str, payload: dict, *,
            confirmed: bool | None = None) -> Case:
    """Perform workflow action ``action_name`` on a case with its validated payload.

    ``confirmed`` is the staff form's explicit confirmation of a step that cannot be undone
    (``Action.consequence``): False refuses such a step with a field error and changes
    nothing. None means the caller has no confirmation step: the API, whose request is
    itself the deliberate act.

    Exactly one of two racing requests wins: the state change is a compare-and-set on the
    case's version, and the loser gets a Conflict. The change and its single audit event
    commit together or not at all. ``pay_support`` goes through the payment service, which
    pays out exactly once under the request's idempotency key.
    """
    action = workflow.ACTIONS.get(action_name)
    if confirmed is False and action is not None and action.needs_confirmation:
        raise Invalid("case.confirmation_missing",
                      [Refusal("confirmation_missing", field="confirm").as_dict()],
                      action=action_name)
    if action_name == "pay_support":
        return payment.disburse(ctx, reference, payload)
    side_effect = (_departure_evidence if action_name == "confirm_departure"
                   and payload.get("evidence_file_id") is not None else None)
    return transitions.run(ctx, reference, action_name, payload, side_effect=side_effect)


def _departure_evidence(ctx: Context, case: Case, payload: dict) -> dict:
    """Mark the evidence file the departure relies on (after the compare-and-set moved the
    case, in the same transaction: a refused file rolls the departure back too)."""
    row = case_files.attachable(ctx, case.id, payload["evidence_file_id"],
                                evidence.DEPARTURE_KINDS, "evidence_file_id")
    row.proves_departure = True
    return {"evidence_sha256": row.sha256}
