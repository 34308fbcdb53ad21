"""Random sequences of actions — by random people, with good and bad payloads — driven
through the real services on a real database, checking DESIGN §3's rules after every step.

An independent model of the programme predicts each outcome (allowed, or which refusal);
after every service call the database must show exactly what the design allows:
- the case moves only along an edge of the table, and a move bumps its version by one and
  writes exactly one audit event with from/to; a refusal changes nothing at all;
- nothing happens after a final state; once withdrawn, never back to intake, committed or
  left_programme; money only after withdrawal and agreement, and exactly once;
- the audit chain verifies.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import itertools
import json
import os
import shutil
from dataclasses import dataclass, field

from hypothesis import HealthCheck, settings
from hypothesis import event as tally
from hypothesis import strategies as st
from hypothesis.stateful import (RuleBasedStateMachine, initialize, invariant, precondition,
                                 rule, run_state_machine_as_test)
from sqlalchemy import func, select
from sqlmodel import Session

from returnprog import audit
from returnprog import db as dbmod
from returnprog.models import (AccessEvent, AuditEvent, Case, Document, IndConfirmation, OpenVNumber,
                               Participant, Payment, Team, User)
from returnprog.policy import DEFAULT_POLICY
from returnprog.services import Conflict, Context, Forbidden, Invalid, NotFound, ServiceError
from returnprog.services import cases as case_service
from returnprog.services import corrections
from returnprog.services import payment as payment_service

from ..conftest import person

POLICY = DEFAULT_POLICY
# DESIGN §4's defaults, written out so the model does not borrow the code's policy.
MIN_LEAD_DAYS, MAX_TERM_DAYS, RECEPTION_END = 7, 90, dt.date(2028, 3, 4)

# DESIGN §3, written out: (action, from) -> to.
EDGES = {
    ("confirm_commitment", "intake"): "committed",
    ("record_withdrawal", "committed"): "asylum_withdrawn",
    ("agree_departure", "asylum_withdrawn"): "departure_agreed",
    ("extend_deadline", "departure_agreed"): "departure_agreed",
    ("pay_support", "departure_agreed"): "support_paid",
    ("confirm_departure", "support_paid"): "departed",
    ("leave_programme", "intake"): "left_programme",
    ("leave_programme", "committed"): "left_programme",
    ("reject", "intake"): "rejected",
    ("lapse", "asylum_withdrawn"): "lapsed",
    ("lapse", "departure_agreed"): "lapsed",
}
WHO = {"confirm_commitment": "counsellor", "record_withdrawal": "counsellor",
       "agree_departure": "counsellor", "extend_deadline": "supervisor",
       "pay_support": "finance", "confirm_departure": "counsellor",
       "leave_programme": "counsellor", "reject": "supervisor", "lapse": "supervisor"}
FINAL = {"departed", "left_programme", "rejected", "lapsed"}
# DESIGN §3: in which states each document may (still) be signed.
SIGNABLE = {"commitment": {"intake"}, "withdrawal_declaration": {"intake", "committed"},
            "departure_agreement": {"committed", "asylum_withdrawn"},
            "addendum": {"departure_agreed"},
            "payment_receipt": {"departure_agreed", "support_paid"}}
BEFORE_WITHDRAWAL = {"intake", "committed", "left_programme"}
EVIDENCE = ("border_crossing", "boarding", "brp_deregistration")

# name -> (role, team)
CAST = {
    "counsellor": ("counsellor", "Team Noord"), "counsellor2": ("counsellor", "Team Noord"),
    "supervisor": ("supervisor", "Team Noord"), "supervisor2": ("supervisor", "Team Noord"),
    "finance": ("finance", "Team Noord"), "admin": ("admin", "Team Noord"),
    "other_counsellor": ("counsellor", "Team Zuid"), "other_supervisor": ("supervisor", "Team Zuid"),
}
# Mostly the people who can act, sometimes someone who cannot.
USERS = st.sampled_from(["counsellor", "counsellor", "counsellor2", "supervisor", "supervisor",
                         "supervisor2", "finance", "finance", "admin", "other_counsellor",
                         "other_supervisor"])
# Half the time the person whose job it is ("right"), otherwise anyone.
ACTORS = st.one_of(st.just("right"), USERS)
CASE = st.integers(0, 5)
_numbers = itertools.count(1)

# A household is a principal and at most 15 others (the intake form's limit).
HOUSEHOLD_LIMIT = 16


@dataclass
class Person:
    id: int
    v_number: str
    adult: bool
    pending: bool
    contact: bool
    joined: dt.date | None = None  # the model day a correction added them; None: intake


@dataclass
class CaseModel:
    """What the design says the case should look like."""

    id: int
    reference: str
    team: str
    people: list[Person]
    destination: bool
    state: str = "intake"
    version: int = 1
    moves: int = 1  # audit events with a to_state (open_case is the first)
    history: list[str] = field(default_factory=lambda: ["intake"])
    signed: dict[int, set[str]] = field(default_factory=dict)
    agreements: dict[int, set[dt.date]] = field(default_factory=dict)
    addenda: dict[int, set[dt.date]] = field(default_factory=dict)
    ind: set[int] = field(default_factory=set)
    ind_on: dict[int, dt.date] = field(default_factory=dict)  # person -> IND's date
    # (person, kind) -> the model day the person first signed that kind of document
    first_signed: dict[tuple[int, str], dt.date] = field(default_factory=dict)
    # person -> every model day they signed a withdrawal declaration (superseded included)
    declared_days: dict[int, set[dt.date]] = field(default_factory=dict)
    method: str | None = None  # how the live payment is paid
    documents: int = 0
    deadline: dt.date | None = None
    payment: str | None = None  # status of the live payment
    payment_rows: int = 0
    keys: set[str] = field(default_factory=set)

    @property
    def adults(self):
        return [p for p in self.people if p.adult]


def _blank(text) -> bool:
    return not (text or "").strip()


class CaseMachine(RuleBasedStateMachine):
    """A fresh database per example; users are inserted directly (no password hashing)."""

    # Set by the test: one engine for all examples (so compiled SQL is cached) and a
    # function that empties its database back to the migrated template.
    engine = None
    reset_database = None

    def __init__(self):
        super().__init__()
        type(self).reset_database()
        # The services' session lives for the whole example, like a long-running job's.
        self.session = Session(self.engine, expire_on_commit=False)
        # The observer reads only what is committed, and signs documents (a test fake).
        self.observer = Session(self.engine, expire_on_commit=False)
        teams = {name: Team(name=name) for name in ("Team Noord", "Team Zuid")}
        self.observer.add_all(teams.values())
        self.observer.flush()
        users = {name: User(email=f"{name}@dtenv.example", name=name, role=role,
                            team_id=teams[team].id) for name, (role, team) in CAST.items()}
        self.observer.add_all(users.values())
        self.observer.commit()
        self.user_ids = {name: u.id for name, u in users.items()}
        self.actors = {name: self.session.get(User, uid) for name, uid in self.user_ids.items()}
        self.session.rollback()
        self.today = dt.date.today()
        self.cases: list[CaseModel] = []
        self.used_keys: dict[str, int] = {}
        # (reader, case, day) already in the access log: a look is one row per interval, and
        # every look of a day happens at noon of the model's clock.
        self.looked: set[tuple[str, int, dt.date]] = set()

    def teardown(self):
        self.session.close()
        self.observer.close()

    # --- helpers -----------------------------------------------------------------------------

    def ctx(self, user: str) -> Context:
        today = self.today
        return Context(session=self.session, policy=POLICY, actor=self.actors[user],
                       ip="127.0.0.1", user_agent="hypothesis", today=lambda: today,
                       now=lambda: dt.datetime.combine(today, dt.time(12), dt.timezone.utc))

    def pick(self, which: int) -> CaseModel:
        return self.cases[which % len(self.cases)]

    def visible(self, user: str, case: CaseModel) -> bool:
        role, team = CAST[user]
        if role in ("counsellor", "supervisor"):
            return team == case.team
        if role == "finance":
            # Any case that ever had a payment, and any case waiting for its payment.
            return case.payment_rows > 0 or case.state == "departure_agreed"
        return False

    def staff_of(self, case: CaseModel, role: str) -> str:
        if role == "finance":
            return "finance"
        return role if case.team == "Team Noord" else f"other_{role}"

    def resolve(self, user: str, case: CaseModel, role: str) -> str:
        return self.staff_of(case, role) if user == "right" else user

    def open_held(self) -> dict[str, int]:
        return {p.v_number: c.id for c in self.cases if c.state not in FINAL for p in c.people}

    def world(self) -> dict:
        s = self.observer
        s.rollback()
        return {
            "cases": {r[0]: tuple(r[1:]) for r in s.execute(select(
                Case.id, Case.state, Case.version, Case.departure_deadline, Case.closing_reason,
                Case.departed_on, Case.departure_evidence, Case.destination_place))},
            "audit": s.execute(select(func.count()).select_from(AuditEvent)).scalar_one(),
            "payments": s.execute(select(Payment.id, Payment.case_id, Payment.status,
                                         Payment.version).order_by(Payment.id)).all(),
            "ind": s.execute(select(IndConfirmation.participant_id)
                             .order_by(IndConfirmation.id)).all(),
            "people": s.execute(select(Participant.id, Participant.case_id, Participant.v_number)
                                .order_by(Participant.id)).all(),
            "open_v": s.execute(select(OpenVNumber.v_number, OpenVNumber.case_id)
                                .order_by(OpenVNumber.v_number)).all(),
            "documents": s.execute(select(func.count()).select_from(Document)).scalar_one(),
            "live_documents": s.execute(select(func.count()).select_from(Document).where(
                Document.superseded_at.is_(None))).scalar_one(),
            "looks": s.execute(select(func.count()).select_from(AccessEvent)).scalar_one(),
        }

    def last_event(self) -> AuditEvent:
        return self.observer.execute(select(AuditEvent).order_by(AuditEvent.seq.desc())
                                     .limit(1)).scalar_one()

    def attempt(self, what: str, call, expect, *, kind: str, case: CaseModel | None = None,
                action: str | None = None, new_look: bool = False):
        """Run one service call and check the database against the design.

        ``expect`` is "ok", "fail" (any refusal) or the ServiceError subclass predicted.
        ``kind``: transition | record (an audit event but no move) | replay (no change) |
        look (a read: nothing changes but the access log, by one row when ``new_look``)."""
        before = self.world()
        try:
            result, error = call(), None
        except ServiceError as exc:  # anything else escapes and fails the test
            result, error = None, exc
        after = self.world()
        if error is not None:
            tally(f"refused: {type(error).__name__}")
            assert after == before, f"{what}: the refusal changed something"
            assert error.message, f"{what}: a refusal must say why"
            assert expect != "ok", (f"{what} was refused but every condition is met: "
                                    f"{type(error).__name__} {error.message} {error.details}")
            if isinstance(expect, type):
                assert isinstance(error, expect), (
                    f"{what}: expected {expect.__name__}, got {type(error).__name__}: "
                    f"{error.message} {error.details}")
            return None
        assert expect == "ok", f"{what} succeeded although the design refuses it ({expect})"
        if kind == "replay":
            assert after == before, f"{what}: a replay changed something"
            return result
        if kind == "look":
            assert after["looks"] == before["looks"] + int(new_look), f"{what}: access log"
            assert {**after, "looks": 0} == {**before, "looks": 0}, f"{what}: a read wrote"
            return result
        assert after["audit"] == before["audit"] + 1, f"{what}: expected one audit event"
        event = self.last_event()
        if kind == "transition":
            old, new = before["cases"][case.id], after["cases"][case.id]
            assert (action, old[0]) in EDGES, f"{what}: moved from {old[0]}, not a table edge"
            assert new[0] == EDGES[(action, old[0])], f"{what}: {old[0]} -> {new[0]}"
            assert new[1] == old[1] + 1, f"{what}: version {old[1]} -> {new[1]}"
            assert (event.case_id, event.action, event.from_state, event.to_state) == (
                case.id, action, old[0], new[0])
            others = {k: v for k, v in after["cases"].items() if k != case.id}
            assert others == {k: v for k, v in before["cases"].items() if k != case.id}
        elif kind == "record":
            assert event.from_state is None and event.to_state is None, what
            assert {k: v[0] for k, v in after["cases"].items()} == {
                k: v[0] for k, v in before["cases"].items()}, f"{what} moved a case"
        return result

    def transition_done(self, case: CaseModel, action: str, payload: dict) -> None:
        case.state = EDGES[(action, case.state)]
        case.version += 1
        case.moves += 1
        case.history.append(case.state)
        tally(f"reached {case.state}")  # shown by --hypothesis-show-statistics
        if action in ("agree_departure", "extend_deadline"):
            case.deadline = payload["departure_deadline"]

    def sign_documents(self, case: CaseModel, kind: str, people: list[Person],
                       deadline: dt.date | None = None) -> None:
        """A signed document per person, without rendering a PDF (documents are tested
        elsewhere); the guards only read kind, signer and terms."""
        terms = {"departure_deadline": deadline.isoformat()} if deadline else {}
        for p in people:
            n = next(_numbers)
            blob = f"{case.id}:{p.id}:{kind}:{n}".encode()
            self.observer.add(Document(case_id=case.id, participant_id=p.id, kind=kind,
                                       version=n, terms=json.dumps(terms), signer_name=f"P{p.id}",
                                       signature_method="typed", signing_channel="tablet",
                                       # noon UTC of the model's day: that day in Amsterdam too
                                       signed_at=dt.datetime.combine(self.today, dt.time(12),
                                                                     dt.timezone.utc),
                                       pdf=blob, sha256=hashlib.sha256(blob).hexdigest()))
            case.signed.setdefault(p.id, set()).add(kind)
            case.first_signed.setdefault((p.id, kind), self.today)
            if kind == "withdrawal_declaration":
                case.declared_days.setdefault(p.id, set()).add(self.today)
            if kind == "departure_agreement":
                case.agreements.setdefault(p.id, set()).add(deadline)
            if kind == "addendum":
                case.addenda.setdefault(p.id, set()).add(deadline)
        self.observer.commit()
        case.documents += len(people)

    # --- the design's guards, independently ---------------------------------------------------

    def deadline_ok(self, d: dt.date | None) -> bool:
        t = self.today
        return (d is not None and d > t and d >= t + dt.timedelta(days=MIN_LEAD_DAYS)
                and d <= t + dt.timedelta(days=MAX_TERM_DAYS) and d <= RECEPTION_END)

    def signed_day(self, case: CaseModel, pid: int, kind: str) -> dt.date | None:
        """When ``pid`` first signed ``kind``; a signature the clock has gone back before
        counts as today."""
        day = case.first_signed.get((pid, kind))
        return None if day is None else min(day, self.today)

    def declared_day(self, case: CaseModel, p: Person) -> dt.date | None:
        """When the withdrawal declaration for ``p`` was first signed: their own, or for a
        minor who signed none, the first one an adult of the household signed that names
        them — for a minor a correction added, one signed on or after the day they joined
        (every declaration prints the household as it is when it is signed)."""
        declared = self.signed_day(case, p.id, "withdrawal_declaration")
        if declared is None and not p.adult:
            if p.joined is None:
                days = [d for a in case.adults
                        if (d := self.signed_day(case, a.id, "withdrawal_declaration"))]
            else:
                days = [day for a in case.adults for d in case.declared_days.get(a.id, ())
                        if (day := min(d, self.today)) >= p.joined]
            declared = min(days) if days else None
        return declared

    def ind_dated_before_its_declaration(self, case: CaseModel) -> bool:
        """Some IND confirmation carries a date before the declaration it confirms."""
        return any(p.id in case.ind_on and (d := self.declared_day(case, p)) is not None
                   and case.ind_on[p.id] < d for p in case.people)

    def agreement_day(self, case: CaseModel) -> dt.date | None:
        """The day the last adult first signed a departure agreement (None while one of
        them has not)."""
        days = [self.signed_day(case, p.id, "departure_agreement") for p in case.adults]
        return None if not days or None in days else max(days)

    def receipt_missing(self, case: CaseModel) -> bool:
        """Paid in cash and nobody has signed a receipt."""
        return case.method == "cash" and not any(
            kind == "payment_receipt" for (_pid, kind) in case.first_signed)

    def guards_met(self, case: CaseModel, action: str, payload: dict) -> bool:
        adults = case.adults
        if action == "confirm_commitment":
            return (case.destination and bool(adults) and all(p.contact for p in adults)
                    and all("commitment" in case.signed.get(p.id, ()) for p in adults))
        if action == "record_withdrawal":
            return (all("withdrawal_declaration" in case.signed.get(p.id, ()) for p in adults)
                    and all(p.id in case.ind for p in case.people if p.pending)
                    and not self.ind_dated_before_its_declaration(case))
        if action == "agree_departure":
            d = payload.get("departure_deadline")
            return self.deadline_ok(d) and all(d in case.agreements.get(p.id, ()) for p in adults)
        if action == "extend_deadline":
            d = payload.get("departure_deadline")
            return (not _blank(payload.get("reason")) and self.deadline_ok(d)
                    and d > case.deadline
                    and all(d in case.addenda.get(p.id, ()) for p in adults))
        if action == "pay_support":
            return case.payment == "approved"
        if action == "confirm_departure":
            agreed = self.agreement_day(case)
            return (payload.get("departed_on") is not None
                    and payload["departed_on"] <= self.today
                    and (agreed is None or payload["departed_on"] >= agreed)
                    and payload.get("evidence") in EVIDENCE
                    and not self.receipt_missing(case))
        if action in ("leave_programme", "reject"):
            return not _blank(payload.get("reason"))
        if action == "lapse":
            return (case.deadline is not None and case.deadline < self.today
                    and not _blank(payload.get("reason")))
        raise AssertionError(action)

    def expect_perform(self, case: CaseModel, action: str, user: str, payload: dict):
        if not self.visible(user, case):
            return NotFound
        if CAST[user][0] != WHO[action]:
            return Forbidden
        if (action, case.state) not in EDGES:
            return Conflict
        return "ok" if self.guards_met(case, action, payload) else Conflict

    # --- rules ----------------------------------------------------------------------------------

    @initialize(adults=st.integers(1, 3), minors=st.integers(0, 2))
    def a_counsellor_opens_the_first_case(self, adults, minors):
        self.open_case("counsellor", adults, minors, True, True, False, None)

    @precondition(lambda self: len(self.cases) < 3)
    @rule(user=ACTORS, adults=st.integers(1, 3), minors=st.integers(0, 2),
          destination=st.sampled_from([True] * 7 + [False]),
          contact=st.sampled_from([True] * 7 + [False]),
          no_application=st.booleans(), reuse=st.one_of(st.none(), st.integers(0, 20)))
    def open_case(self, user, adults, minors, destination, contact, no_application, reuse):
        user = "counsellor" if user == "right" else user
        people = [dict(person(email=f"p{next(_numbers)}@example.org" if contact else None))]
        people += [dict(person(), relationship="spouse") for _ in range(adults - 1)]
        people += [dict(person(adult=False, email=None,
                               asylum_application_pending=not (no_application and i == 0)),
                        relationship="child") for i in range(minors)]
        known = [p.v_number for c in self.cases for p in c.people]
        if reuse is not None and known:
            people[0]["v_number"] = known[reuse % len(known)]
        data = {"principal": people[0], "household": people[1:], "intake_notes": None,
                "destination_oblast": "UA-30" if destination else None,
                "destination_place": "Kyiv" if destination else None}
        held = self.open_held()
        if CAST[user][0] != "counsellor":
            expect = Forbidden
        elif any(p["v_number"] in held for p in people):
            expect = Conflict
        else:
            expect = "ok"
        before = self.world()
        created = self.attempt(f"{user} open_case", lambda: case_service.open_case(
            self.ctx(user), data), expect, kind="open")
        if created is None:
            return
        after = self.world()
        assert set(after["cases"]) - set(before["cases"]) == {created.id}
        assert after["cases"][created.id][:2] == ("intake", 1)
        event = self.last_event()
        assert (event.case_id, event.action, event.from_state, event.to_state) == (
            created.id, "open_case", None, "intake")
        rows = self.observer.execute(select(Participant).where(
            Participant.case_id == created.id)).scalars().all()
        by_v = {p["v_number"]: p for p in people}
        self.cases.append(CaseModel(
            id=created.id, reference=created.reference, team=CAST[user][1],
            destination=destination, people=[Person(
                id=r.id, v_number=r.v_number, adult=by_v[r.v_number].get("relationship") != "child",
                pending=r.asylum_application_pending, contact=bool(r.email or r.phone))
                for r in rows]))

    @precondition(lambda self: self.cases)
    @rule(which=CASE, kind=st.sampled_from(["commitment", "withdrawal_declaration",
                                            "departure_agreement", "addendum",
                                            "payment_receipt"]),
          who=st.sampled_from(["adults", "adults", "first", "everyone"]),
          days=st.sampled_from([-1, 0, 6, 7, 20, 30, 45, 60, 90, 91]))
    def sign(self, which, kind, who, days):
        case = self.pick(which)
        people = {"adults": case.adults, "first": case.people[:1], "everyone": case.people}[who]
        deadline = (self.today + dt.timedelta(days=days)
                    if kind in ("departure_agreement", "addendum") else None)
        self.sign_documents(case, kind, people, deadline)

    @precondition(lambda self: self.cases)
    @rule(which=CASE, user=ACTORS, index=st.integers(0, 6),
          back=st.sampled_from([0, 0, 0, 5]))
    def record_ind_confirmation(self, which, user, index, back):
        case = self.pick(which)
        user = self.resolve(user, case, "counsellor")
        strangers = [p for c in self.cases if c is not case for p in c.people]
        on = self.today - dt.timedelta(days=back)
        if index < len(case.people):
            pid, mine = case.people[index].id, case.people[index]
        else:
            pid = strangers[index % len(strangers)].id if strangers else 10**6
            mine = None
        if not self.visible(user, case):
            expect = NotFound
        elif CAST[user][0] != "counsellor":
            expect = Forbidden
        elif case.state != "committed":
            expect = Conflict
        elif mine is None or not mine.pending:
            expect = Invalid
        elif pid in case.ind:
            expect = Conflict
        elif (declared := self.declared_day(case, mine)) is not None and on < declared:
            expect = Invalid  # the IND cannot confirm a declaration not yet signed
        else:
            expect = "ok"
        done = self.attempt(f"{user} record_ind_confirmation", lambda: case_service.record_ind_confirmation(
            self.ctx(user), case.reference, {"participant_id": pid, "ind_reference": f"IND-{pid}",
                                             "confirmed_on": on}), expect, kind="record")
        if done is not None:
            case.ind.add(pid)
            case.ind_on[pid] = on

    def _payload(self, case: CaseModel, action: str, data) -> dict:
        t = self.today
        reason = data.draw(st.sampled_from(["Family reasons"] * 3 + ["", "   ", None]),
                           label="reason")
        if action in ("leave_programme", "reject", "lapse"):
            return {} if reason is None else {"reason": reason}
        if action == "agree_departure":
            signed = sorted(case.agreements.get(case.people[0].id, ()))
            choices = signed * 4 + [t + dt.timedelta(days=d) for d in (-1, 0, 6, 7, 90, 91)] + [None]
            d = data.draw(st.sampled_from(choices), label="deadline")
            return {} if d is None else {"departure_deadline": d}
        if action == "extend_deadline":
            signed = sorted(case.addenda.get(case.people[0].id, ()))
            base = case.deadline or t
            choices = signed * 4 + [base, base + dt.timedelta(days=1), t + dt.timedelta(days=91),
                                    None]
            d = data.draw(st.sampled_from(choices), label="deadline")
            payload = {} if d is None else {"departure_deadline": d}
            if reason is not None:
                payload["reason"] = reason
            return payload
        if action == "confirm_departure":
            payload = {}
            on = data.draw(st.sampled_from([t, t - dt.timedelta(days=2), t + dt.timedelta(days=1),
                                            None]), label="departed_on")
            evidence = data.draw(st.sampled_from(list(EVIDENCE) + ["selfie", None]), label="evidence")
            if on is not None:
                payload["departed_on"] = on
            if evidence is not None:
                payload["evidence"] = evidence
            return payload
        return {}

    def _perform(self, case: CaseModel, action: str, user: str, payload: dict) -> None:
        expect = self.expect_perform(case, action, user, payload)
        done = self.attempt(f"{user} {action} {payload} on {case.state}",
                            lambda: case_service.perform(self.ctx(user), case.reference, action,
                                                         payload),
                            expect, kind="transition", case=case, action=action)
        if done is not None:
            self.transition_done(case, action, payload)

    @precondition(lambda self: self.cases)
    @rule(which=CASE, user=ACTORS, data=st.data(),
          action=st.sampled_from(["confirm_commitment", "record_withdrawal", "agree_departure",
                                  "extend_deadline", "confirm_departure", "leave_programme",
                                  "reject", "lapse"]))
    def perform(self, which, user, action, data):
        case = self.pick(which)
        user = self.resolve(user, case, WHO[action])
        self._perform(case, action, user, self._payload(case, action, data))

    @precondition(lambda self: self.cases)
    @rule(which=CASE, user=ACTORS, method=st.sampled_from(["cash", "cash", "transfer", "bad_iban"]))
    def propose_payment(self, which, user, method):
        case = self.pick(which)
        user = self.resolve(user, case, "counsellor")
        data = {"method": "cash"} if method == "cash" else {
            "method": "transfer", "account_holder": "O. Kovalenko",
            "iban": "NL91ABNA0417164300" if method == "transfer" else "NL00BANK0123456789"}
        ok = (CAST[user][0] == "counsellor" and self.visible(user, case)
              and case.state == "departure_agreed" and case.payment is None
              and method != "bad_iban")
        done = self.attempt(f"{user} propose {method}", lambda: payment_service.propose(
            self.ctx(user), case.reference, data), "ok" if ok else "fail", kind="record")
        if done is not None:
            case.payment, case.payment_rows = "proposed", case.payment_rows + 1
            case.method = data["method"]

    @precondition(lambda self: self.cases)
    @rule(which=CASE, user=ACTORS, approve=st.booleans(),
          reason=st.sampled_from(["Wrong method", "", None]))
    def decide_payment(self, which, user, approve, reason):
        case = self.pick(which)
        user = self.resolve(user, case, "supervisor")
        ok = (CAST[user][0] == "supervisor" and self.visible(user, case)
              and case.payment == "proposed"
              and (case.state == "departure_agreed" if approve else not _blank(reason)))
        call = ((lambda: payment_service.approve(self.ctx(user), case.reference)) if approve else
                (lambda: payment_service.reject(self.ctx(user), case.reference, reason)))
        done = self.attempt(f"{user} {'approve' if approve else 'reject'} payment", call,
                            "ok" if ok else "fail", kind="record")
        if done is not None:
            case.payment = "approved" if approve else None

    @precondition(lambda self: self.cases)
    @rule(which=CASE, user=ACTORS, reuse=st.one_of(st.none(), st.integers(0, 5)))
    def disburse(self, which, user, reuse):
        case = self.pick(which)
        user = self.resolve(user, case, "finance")
        if reuse is not None and self.used_keys:
            key = sorted(self.used_keys)[reuse % len(self.used_keys)]
        else:
            key = f"key-{next(_numbers):08d}"
        if key in case.keys and user == "finance":
            expect, kind = "ok", "replay"
        elif key in self.used_keys:
            expect, kind = "fail", "transition"
        else:
            expect, kind = self.expect_perform(case, "pay_support", user, {}), "transition"
        done = self.attempt(f"{user} pay_support ({key}) on {case.state}",
                            lambda: payment_service.disburse(self.ctx(user), case.reference,
                                                             {"idempotency_key": key}),
                            expect, kind=kind, case=case, action="pay_support")
        if done is not None and kind == "transition":
            self.transition_done(case, "pay_support", {})
            case.payment = "disbursed"
            case.keys.add(key)
            self.used_keys[key] = case.id

    @precondition(lambda self: self.cases)
    @rule(which=CASE, user=ACTORS, adults=st.integers(1, 2), reuse=st.booleans())
    def update_intake(self, which, user, adults, reuse):
        case = self.pick(which)
        user = self.resolve(user, case, "counsellor")
        people = [person()] + [dict(person(), relationship="spouse") for _ in range(adults - 1)]
        others = [p.v_number for c in self.cases if c is not case and c.state not in FINAL
                  for p in c.people]
        if reuse and others:
            people[0]["v_number"] = others[0]
        data = {"principal": people[0], "household": people[1:], "intake_notes": "edited",
                "destination_oblast": "UA-46", "destination_place": "Lviv"}
        if not self.visible(user, case):
            expect = NotFound
        elif CAST[user][0] != "counsellor":
            expect = Forbidden
        elif case.state != "intake" or case.documents or (reuse and others):
            expect = Conflict
        else:
            expect = "ok"
        done = self.attempt(f"{user} update_intake", lambda: case_service.update_intake(
            self.ctx(user), case.reference, data), expect, kind="record")
        if done is not None:
            rows = self.observer.execute(select(Participant).where(
                Participant.case_id == case.id)).scalars().all()
            case.people = [Person(id=r.id, v_number=r.v_number, adult=True, pending=True,
                                  contact=True) for r in rows]
            case.destination, case.version = True, case.version + 1

    @precondition(lambda self: self.cases)
    @rule(which=CASE, user=ACTORS, index=st.integers(0, 6))
    def correct_a_name(self, which, user, index):
        """Issue 13: a name is printed on every document of the household but another
        adult's withdrawal declaration (only its signer and the minors are on it). The
        documents that state it and can still be signed in this state are superseded: the
        guards want them signed again; those of steps already taken stay."""
        case = self.pick(which)
        user = self.resolve(user, case, "counsellor")
        target = case.people[index % len(case.people)]
        if not self.visible(user, case):
            expect = NotFound
        elif CAST[user][0] != "counsellor":
            expect = Forbidden
        elif case.state in FINAL:
            expect = Conflict
        else:
            expect = "ok"
        data = {"participants": [{"id": target.id, "given_names_latin": f"Fixed{next(_numbers)}"}]}
        done = self.attempt(f"{user} correct_case", lambda: corrections.correct_case(
            self.ctx(user), case.reference, data, case.version), expect, kind="record")
        if done is None:
            return
        case.version += 1
        tally("correction superseded documents" if done["reissue"] else "correction, nothing to re-sign")
        for signer in case.people:
            for kind in list(case.signed.get(signer.id, ())):
                states = SIGNABLE[kind]
                on_it = kind != "withdrawal_declaration" or signer.id == target.id \
                    or not target.adult
                if on_it and case.state in states:
                    self._supersede(case, signer, kind)
        self._live_documents_are_the_models(case, f"superseded other documents than the "
                                                  f"design says: {done['reissue']}")

    @precondition(lambda self: self.cases)
    @rule(which=CASE, user=ACTORS, pending=st.sampled_from([False, False, True]))
    def add_a_child(self, which, user, pending):
        """Issue 13: a child joins by a correction in any open state until a payment
        exists — one born here (no asylum application to withdraw), or, only until the
        withdrawal is recorded, one with an application the adults' declarations then
        withdraw (and the IND confirms); every document prints the household, so each
        that can still be signed in this state is superseded."""
        case = self.pick(which)
        user = self.resolve(user, case, "counsellor")
        if not self.visible(user, case):
            expect = NotFound
        elif CAST[user][0] != "counsellor":
            expect = Forbidden
        elif case.state in FINAL or case.payment is not None:
            expect = Conflict
        elif pending and case.state not in SIGNABLE["withdrawal_declaration"]:
            expect = Conflict  # the declarations that would withdraw it are history
        elif len(case.people) >= HOUSEHOLD_LIMIT:
            expect = Invalid  # a principal and at most 15 others, as at intake
        else:
            expect = "ok"
        child = dict(person(adult=False, email=None), relationship="child",
                     asylum_application_pending=pending)
        done = self.attempt(f"{user} add a child", lambda: corrections.correct_case(
            self.ctx(user), case.reference, {"add_members": [child]}, case.version),
            expect, kind="record")
        if done is None:
            return
        case.version += 1
        tally("a child with an asylum application joined" if pending else "a child joined")
        case.people.append(Person(id=done["added"][0]["participant_id"],
                                  v_number=child["v_number"], adult=False, pending=pending,
                                  contact=False, joined=self.today))
        for signer in case.people:
            for kind in list(case.signed.get(signer.id, ())):
                if case.state in SIGNABLE[kind]:
                    self._supersede(case, signer, kind)
        self._live_documents_are_the_models(case, f"adding a child superseded other "
                                                  f"documents than the design says: "
                                                  f"{done['reissue']}")

    @staticmethod
    def _supersede(case, signer, kind) -> None:
        """In the model: ``signer``'s signed ``kind`` no longer counts (a correction
        superseded it), nor the deadline it agreed."""
        case.signed[signer.id].discard(kind)
        if kind == "departure_agreement":
            case.agreements.pop(signer.id, None)
        if kind == "addendum":
            case.addenda.pop(signer.id, None)

    def _live_documents_are_the_models(self, case, message: str) -> None:
        live = set(self.observer.execute(select(Document.participant_id, Document.kind).where(
            Document.case_id == case.id, Document.superseded_at.is_(None))).all())
        assert live == {(pid, k) for pid, kinds in case.signed.items() for k in kinds}, message

    @precondition(lambda self: self.cases)
    @rule(which=CASE, user=ACTORS)
    def read_case(self, which, user):
        case = self.pick(which)
        user = self.resolve(user, case, "counsellor")
        look = (user, case.id, self.today)
        data = self.attempt(f"{user} read_case", lambda: case_service.read_case(
            self.ctx(user), case.reference), "ok" if self.visible(user, case) else NotFound,
            kind="look", new_look=look not in self.looked)
        if data is not None:
            self.looked.add(look)
            assert data["state"] == case.state
            role = CAST[user][0]
            for action in ("confirm_commitment", "record_withdrawal", "pay_support"):
                # ... and never a missing one.
                if (WHO[action] == role and (action, case.state) in EDGES
                        and self.guards_met(case, action, {})):
                    assert action in data["allowed_actions"], action
            for action in data["allowed_actions"]:
                # Never a dead button: what is offered is the role's, from this state, and
                # its case-only conditions hold (commitment, withdrawal, payment, lapse).
                assert WHO[action] == role and (action, case.state) in EDGES, action
                if action in ("confirm_commitment", "record_withdrawal", "pay_support"):
                    assert self.guards_met(case, action, {}), action
                if action == "lapse":
                    assert case.deadline is not None and case.deadline < self.today

    @rule(days=st.sampled_from([1, 2, 8, 31, 95]))
    def time_passes(self, days):
        self.today += dt.timedelta(days=days)

    @precondition(lambda self: any(c.deadline for c in self.cases))
    @rule(which=CASE, after=st.sampled_from([0, 1]))
    def time_passes_until_a_deadline(self, which, after):
        """The clock reaches a case's departure deadline (or the day after): the boundary of
        lapse and of the deadline countdown."""
        deadlines = [c.deadline for c in self.cases if c.deadline]
        self.today = deadlines[which % len(deadlines)] + dt.timedelta(days=after)

    @precondition(lambda self: self.cases)
    @rule(which=CASE, data=st.data())
    def try_an_action_the_table_has_no_edge_for(self, which, data):
        """The right person, with a payload that would satisfy every guard, tries an action
        that does not start from the case's state: always refused, nothing changes."""
        case = self.pick(which)
        actions = [a for a in WHO if (a, case.state) not in EDGES and a != "pay_support"]
        action = data.draw(st.sampled_from(actions), label="action")
        payload = {"reason": "x", "departed_on": self.today, "evidence": "boarding",
                   "departure_deadline": self.today + dt.timedelta(days=30)}
        self._perform(case, action, self.staff_of(case, WHO[action]), payload)

    @precondition(lambda self: self.cases)
    @rule(which=CASE, branch=st.sampled_from(["pay", "pay", "extend", "lapse"]),
          probe=st.sampled_from([True, True, False]))
    def next_step(self, which, branch, probe):
        """Do what the main line needs next, as the right person — so random runs get far —
        first probing the step's guard with a near miss."""
        self._next_step(self.pick(which), branch, probe)

    @precondition(lambda self: self.cases)
    @rule(which=CASE, branch=st.sampled_from(["pay", "pay", "extend", "lapse"]),
          probe=st.sampled_from([True, True, False]))
    def next_step_too(self, which, branch, probe):
        """The same again: twice the weight among the rules."""
        self._next_step(self.pick(which), branch, probe)

    def _record_ind(self, case: CaseModel, user: str, people: list[Person]) -> None:
        for p in people:
            if p.pending and p.id not in case.ind:
                self.attempt("record_ind_confirmation", lambda p=p: case_service.record_ind_confirmation(
                    self.ctx(user), case.reference, {
                        "participant_id": p.id, "ind_reference": f"IND-{p.id}",
                        "confirmed_on": self.today}), "ok", kind="record")
                case.ind.add(p.id)
                case.ind_on[p.id] = self.today

    def _pay(self, case: CaseModel, counsellor: str, supervisor: str, probe: bool) -> None:
        if case.payment is None:
            self.attempt("propose", lambda: payment_service.propose(
                self.ctx(counsellor), case.reference, {"method": "cash"}), "ok", kind="record")
            case.payment, case.payment_rows = "proposed", case.payment_rows + 1
            case.method = "cash"
        key = f"key-{next(_numbers):08d}"
        pay = (lambda: payment_service.disburse(self.ctx("finance"), case.reference,
                                                {"idempotency_key": key}))
        if probe and case.payment == "proposed":  # not approved yet
            self.attempt("pay_support before approval", pay, "fail", kind="transition",
                         case=case, action="pay_support")
        if case.payment == "proposed":
            self.attempt("approve", lambda: payment_service.approve(
                self.ctx(supervisor), case.reference), "ok", kind="record")
            case.payment = "approved"
        self.attempt("pay_support", pay, "ok", kind="transition", case=case, action="pay_support")
        self.transition_done(case, "pay_support", {})
        case.payment = "disbursed"
        case.keys.add(key)
        self.used_keys[key] = case.id

    def _next_step(self, case: CaseModel, branch: str, probe: bool) -> None:
        counsellor, supervisor = self.staff_of(case, "counsellor"), self.staff_of(case, "supervisor")
        complete = case.destination and all(p.contact for p in case.adults)
        t = self.today
        if case.state == "intake" and not complete and not case.documents:
            data = {"principal": person(), "household": [dict(person(adult=False, email=None),
                                                              relationship="child")],
                    "intake_notes": None, "destination_oblast": "UA-30", "destination_place": "Kyiv"}
            self.attempt("update_intake", lambda: case_service.update_intake(
                self.ctx(counsellor), case.reference, data), "ok", kind="record")
            rows = self.observer.execute(select(Participant).where(
                Participant.case_id == case.id).order_by(Participant.id)).scalars().all()
            case.people = [Person(id=r.id, v_number=r.v_number, adult=r.is_principal,
                                  pending=True, contact=r.is_principal) for r in rows]
            case.destination, case.version = True, case.version + 1
        elif case.state == "intake" and not complete:
            self._perform(case, "leave_programme", counsellor, {"reason": "Incomplete intake"})
        elif case.state == "intake":
            missing = [p for p in case.adults if "commitment" not in case.signed.get(p.id, ())]
            if probe and missing:  # all but one adult sign first
                self.sign_documents(case, "commitment", missing[:-1])
                self._perform(case, "confirm_commitment", counsellor, {})
                missing = missing[-1:]
            self.sign_documents(case, "commitment", missing)
            self._perform(case, "confirm_commitment", counsellor, {})
        elif case.state == "committed":
            missing = [p for p in case.adults
                       if "withdrawal_declaration" not in case.signed.get(p.id, ())]
            early = [p for p in case.people if p.pending and p.id not in case.ind]
            if branch == "lapse" and probe and early and len(missing) == len(case.adults):
                # Rarely: the IND "confirmed" yesterday what nobody has declared yet; once
                # the declarations are signed today, that confirmation blocks the withdrawal.
                self.time_passes(1)
                t = self.today
                self.attempt("record_ind_confirmation dated yesterday",
                             lambda p=early[0]: case_service.record_ind_confirmation(
                                 self.ctx(counsellor), case.reference, {
                                     "participant_id": p.id, "ind_reference": f"IND-{p.id}",
                                     "confirmed_on": t - dt.timedelta(days=1)}), "ok",
                             kind="record")
                case.ind.add(early[0].id)
                case.ind_on[early[0].id] = t - dt.timedelta(days=1)
            self.sign_documents(case, "withdrawal_declaration", missing)
            waiting = [p for p in case.people if p.pending and p.id not in case.ind]
            if probe and waiting:  # the IND has confirmed for all but one (a minor, if any)
                last = next((p for p in reversed(waiting) if not p.adult), waiting[-1])
                self._record_ind(case, counsellor, [p for p in waiting if p is not last])
                self._perform(case, "record_withdrawal", counsellor, {})
            self._record_ind(case, counsellor, case.people)
            self._perform(case, "record_withdrawal", counsellor, {})
        elif case.state == "asylum_withdrawn":
            if probe:  # just too soon, just too far; and leaving is no longer possible
                for days in (MIN_LEAD_DAYS - 1, MAX_TERM_DAYS + 1):
                    near = t + dt.timedelta(days=days)
                    self.sign_documents(case, "departure_agreement", case.adults, near)
                    self._perform(case, "agree_departure", counsellor, {"departure_deadline": near})
                self._perform(case, "leave_programme", counsellor, {"reason": "Changed mind"})
                # A good date that nobody signed for; then one that not every adult signed.
                self._perform(case, "agree_departure", counsellor,
                              {"departure_deadline": t + dt.timedelta(days=20)})
                self.sign_documents(case, "departure_agreement", case.adults[:-1],
                                    t + dt.timedelta(days=30))
                self._perform(case, "agree_departure", counsellor,
                              {"departure_deadline": t + dt.timedelta(days=30)})
            deadline = t + dt.timedelta(days=30)
            self.sign_documents(case, "departure_agreement", case.adults, deadline)
            self._perform(case, "agree_departure", counsellor, {"departure_deadline": deadline})
        elif case.state == "departure_agreed" and branch == "extend":
            if probe:  # an addendum for the current deadline is no extension
                self.sign_documents(case, "addendum", case.adults, case.deadline)
                self._perform(case, "extend_deadline", supervisor,
                              {"departure_deadline": case.deadline, "reason": "Same day"})
            deadline = max(case.deadline, t) + dt.timedelta(days=10)
            self.sign_documents(case, "addendum", case.adults, deadline)
            self._perform(case, "extend_deadline", supervisor,
                          {"departure_deadline": deadline, "reason": "Flight moved"})
        elif case.state == "departure_agreed" and branch == "lapse":
            if probe:  # on the deadline day it has not passed yet
                self.today = case.deadline
                self._perform(case, "lapse", supervisor, {"reason": "Did not leave"})
                self.today = case.deadline + dt.timedelta(days=1)
            self._perform(case, "lapse", supervisor, {"reason": "Did not leave"})
        elif case.state == "departure_agreed":
            self._pay(case, counsellor, supervisor, probe)
        elif case.state == "support_paid":
            if probe:
                self._perform(case, "confirm_departure", counsellor,
                              {"departed_on": t + dt.timedelta(days=1), "evidence": "boarding"})
                # before the agreement was signed (the 2020-01-01)
                self._perform(case, "confirm_departure", counsellor,
                              {"departed_on": dt.date(2020, 1, 1), "evidence": "boarding"})
                self._perform(case, "confirm_departure", counsellor,
                              {"departed_on": t, "evidence": "boarding"})
            if self.receipt_missing(case):
                self.sign_documents(case, "payment_receipt", case.adults[:1])
            self._perform(case, "confirm_departure", counsellor,
                          {"departed_on": t, "evidence": "boarding"})
        else:  # final: everything is refused
            for action in WHO:
                self._perform(case, action, self.staff_of(case, WHO[action]),
                              {"reason": "x", "departed_on": t, "evidence": "boarding"})

    # --- the rules that always hold ------------------------------------------------------------

    @invariant()
    def the_database_shows_what_the_design_allows(self):
        s = self.observer
        s.rollback()
        for case in self.cases:
            state, version, deadline = s.execute(select(Case.state, Case.version,
                                                        Case.departure_deadline)
                                                 .where(Case.id == case.id)).one()
            assert (state, version, deadline) == (case.state, case.version, case.deadline)
            # The audit trail of moves is a walk along the table's edges.
            moves = s.execute(select(AuditEvent.action, AuditEvent.from_state, AuditEvent.to_state)
                              .where(AuditEvent.case_id == case.id,
                                     AuditEvent.to_state.is_not(None))
                              .order_by(AuditEvent.seq)).all()
            assert len(moves) == case.moves
            assert tuple(moves[0]) == ("open_case", None, "intake")
            for (_, _, prev), (action, frm, to) in zip(moves, moves[1:]):
                assert frm == prev and EDGES.get((action, frm)) == to, moves
            # Nothing after a final state; the withdrawal cannot be undone.
            finals = [i for i, st_ in enumerate(case.history) if st_ in FINAL]
            if finals:
                assert finals[0] == len(case.history) - 1
            if "asylum_withdrawn" in case.history:
                after = case.history[case.history.index("asylum_withdrawn"):]
                assert not set(after) & BEFORE_WITHDRAWAL, case.history
            # Money only after withdrawal and agreement, exactly once.
            statuses = s.execute(select(Payment.status).where(Payment.case_id == case.id)).scalars().all()
            assert sum(1 for x in statuses if x in ("proposed", "approved", "disbursed")) <= 1
            paid = statuses.count("disbursed")
            assert paid == (1 if state in ("support_paid", "departed") else 0), (state, statuses)
            if paid:
                assert {"asylum_withdrawn", "departure_agreed"} <= set(case.history)
            # An open case holds its people's V-numbers; a closed one releases them.
            held = set(s.execute(select(OpenVNumber.v_number)
                                 .where(OpenVNumber.case_id == case.id)).scalars())
            assert held == (set() if state in FINAL else {p.v_number for p in case.people})
        report = audit.verify(s)
        assert report.ok, report


SLOW_OK = [HealthCheck.too_slow, HealthCheck.data_too_large]


def _run(name, engine, reset, **limits):
    machine = type(name, (CaseMachine,), {"engine": engine, "reset_database": staticmethod(reset)})
    try:
        run_state_machine_as_test(machine, settings=settings(
            stateful_step_count=25, deadline=None, database=None,
            suppress_health_check=SLOW_OK, **limits))
    finally:
        engine.dispose()


def test_random_journeys_follow_the_workflow_on_sqlite(sqlite_template, tmp_path):
    path = tmp_path / "journeys.sqlite"
    engine = dbmod.make_engine(f"sqlite:///{path}")

    def reset():
        engine.dispose()
        for suffix in ("-wal", "-shm"):
            (tmp_path / f"{path.name}{suffix}").unlink(missing_ok=True)
        shutil.copyfile(sqlite_template, path)

    _run("SqliteCaseMachine", engine, reset, max_examples=40)


def test_random_journeys_follow_the_workflow_on_postgresql(pg_server):
    name = f"journeys_{os.getpid()}"
    pg_server.create_database(name, template="returnprog_template")
    engine = dbmod.make_engine(pg_server.url(name))

    def reset():
        engine.dispose()
        pg_server.drop_database(name)
        pg_server.create_database(name, template="returnprog_template")

    try:
        _run("PostgresCaseMachine", engine, reset, max_examples=10)
    finally:
        pg_server.drop_database(name)
