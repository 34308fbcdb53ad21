"""Statement budgets per route (issue 11, "reads stay reads").

Every SQL statement a request sends is counted by a ``before_cursor_execute`` listener on
the app's engine, with the transactions it opens (the engine's ``begin`` event) and the
writes among them (INSERT/UPDATE/DELETE). Each route is requested on a small case (one
adult, a short trail) and again on a big one (a household of eight with minors, many
documents and payments, a trail of 300 events, hundreds of access-log rows, full list
pages) and must

- stay within its budget in :data:`BUDGETS` (the one place the budgets live),
- send exactly as many statements on the big case as on the small one (no N+1, nothing
  that grows with the trail, the household or the number of rows),
- never write to the audit chain (``audit_event``/``audit_head``) — a GET is not a change,
- write at most the access-log row of this reader, case and interval (and an API token's
  last use, at most once a minute), and nothing at all when asked again at once.

Run: ``.venv/bin/python -m pytest tests/web/test_statement_budgets.py -q -p no:cacheprovider``
(``-s`` prints each route's statements). Runs on SQLite and PostgreSQL (``engines_differ``).
"""
from __future__ import annotations

import datetime as dt
import re
import time
from dataclasses import dataclass, field

import pytest
from sqlalchemy import event, select, update
from sqlmodel import Session

from returnprog import access_log, audit, auth
from returnprog.models import (AccessEvent, ApiToken, Case, CaseQueue, CaseNote, EvidenceFile,
                               OutboxMessage)
from returnprog.services import cases as case_service
from returnprog.services import payment as payment_service
from returnprog.services import signing as signing_service

from ..conftest import drive_to, fake_sign, intake, run_queue_job
from ..web_client import web_for

pytestmark = pytest.mark.engines_differ


@dataclass(frozen=True)
class Budget:
    """At most ``statements`` SQL statements (BEGIN not counted), opening at most
    ``transactions`` transactions, of which at most ``writes`` are INSERT/UPDATE/DELETE."""

    statements: int
    transactions: int
    writes: int


# What the statements of each route are (the first request of a reader in an interval):
#   user    the signed-in user, loaded by Flask-Login's user loader (every web request)
#   token   the API token joined to its user; its last use is an UPDATE in a short write
#           transaction of its own, at most once a minute per token
#   case    the case within the reader's visibility, counsellor's address and team joined
#   people  participants with their IND confirmation (one outer join)
#   docs    the documents' columns without the PDF
#   pays    the payments with the people who proposed and approved them (joined)
#   look    the access-log check (SELECT); when new, after the read transaction has ended,
#           INSERT … ON CONFLICT DO NOTHING in a write transaction of its own
# Asked again at once, a route sends the same statements minus the writes.
BUDGETS: dict[str, Budget] = {
    # user, case, people, docs, pays, failed reminders, trail page, signing links
    # (counsellors), newest notes and evidence files (one UNION ALL; counsellors and
    # supervisors), look check, look insert
    "case page": Budget(11, 2, 1),
    # + the newest page of the access log ("who looked at this case")
    "case page with looks": Budget(12, 2, 1),
    # token, token last use, case, people, docs, pays, look check, look insert
    "case API": Budget(8, 4, 2),
    # token, token last use, case, trail page (actors' names joined), look check, look insert
    "trail API": Budget(6, 4, 2),
    # the same under its new name
    "events API": Budget(6, 4, 2),
    # token, token last use, case, the case's payments, their people (one IN query)
    "case payments API": Budget(5, 3, 1),
    # token, token last use, case, payment, its people (one IN query), receipt signed?,
    # look check, look insert
    "payment API": Budget(8, 4, 2),
    # token, token last use, count, page (principal, household size, counsellor joined)
    "case list API": Budget(4, 3, 1),
    # token, token last use, case, documents without their PDFs, look check, look insert
    "documents API": Budget(6, 4, 2),
    # token, token last use, case, signing links, the users who made them (no look: ids
    # and statuses only)
    "signing links API": Budget(5, 3, 1),
    # user, count, page (principal, household size, counsellor joined)
    "case list": Budget(3, 1, 0),
    # user, cases per state, deadlines coming up, overdue (principal joined), failed
    # reminders, declined signatures; the work queues' counts: the counsellor's open cases (principal and
    # counsellor joined), their participants with IND confirmations, documents, payments
    # with their people, open signing links
    # (the counts from the queue cache, brought up to date by the scheduler's queues job)
    "dashboard": Budget(7, 1, 0),
    # the same with every case changed since the job ran: the cache's count, then the
    # counsellor's changed open cases (principal and counsellor joined), their participants
    # with IND confirmations, documents, payments with their people, open signing links
    "dashboard (queue cache behind)": Budget(12, 1, 0),
    # + the delivery warning: unsent/due/oldest due in one pass, the scheduler heartbeat;
    # the supervisor's queues instead of the counsellor's: proposals to decide (proposer
    # joined), cases with an addendum + their participants, documents, payments, overdue
    "dashboard (supervisor)": Budget(14, 1, 0),
    # user + the counsellor's queues (as on the dashboard)
    "queue (counsellor)": Budget(6, 1, 0),
    # user, proposals to decide (case, principal, counsellor and proposer joined)
    "queue approvals": Budget(2, 1, 0),
    # user, cases with an addendum, their participants, documents, payments
    "queue extensions": Budget(5, 1, 0),
    # user, approved payments (case, principal, counsellor joined)
    "queue (finance)": Budget(2, 1, 0),
    # token, token last use, the counsellor's queues
    "queues API": Budget(7, 3, 1),
    # user, case, people, docs (receipt signed?), pays (with people: own proposal?),
    # look check, look insert
    "payment page": Budget(7, 2, 1),
    # user, count, page of payments with their case reference joined
    "payment list": Budget(3, 1, 0),
}

AUDIT_TABLES = re.compile(r"\b(audit_event|audit_head)\b", re.I)
WRITE = re.compile(r"^\s*(INSERT|UPDATE|DELETE)\b", re.I)
TABLE_WRITTEN = re.compile(r"^\s*(?:INSERT\s+INTO|UPDATE|DELETE\s+FROM)\s+\"?(\w+)", re.I)
TRANSACTION_CONTROL = re.compile(r"^\s*(BEGIN|COMMIT|ROLLBACK|SAVEPOINT|RELEASE)\b", re.I)
# The tables a GET may write: the access log, and an API token's last use.
READ_WRITES = {"access_log", "api_token"}


@dataclass
class Tally:
    """The statements and transactions of one request."""

    statements: list[str] = field(default_factory=list)
    transactions: int = 0

    @property
    def writes(self) -> list[str]:
        return [s for s in self.statements if WRITE.match(s)]

    def tables_written(self) -> set[str]:
        return {TABLE_WRITTEN.match(s).group(1).lower() for s in self.writes}

    def summary(self) -> str:
        lines = [f"{len(self.statements)} statements, {self.transactions} transactions, "
                 f"{len(self.writes)} writes"]
        lines += [f"  {' '.join(s.split())[:150]}" for s in self.statements]
        return "\n".join(lines)


class Counter:
    """Counts what the app's engine sends, one request at a time."""

    def __init__(self, engine):
        self.engine = engine
        self.tally: Tally | None = None
        event.listen(engine, "before_cursor_execute", self._statement)
        event.listen(engine, "begin", self._begin)

    def close(self) -> None:
        event.remove(self.engine, "before_cursor_execute", self._statement)
        event.remove(self.engine, "begin", self._begin)

    def _statement(self, conn, cursor, statement, parameters, context, executemany):
        # SQLite's BEGIN is sent by the engine's own begin hook: counted as a transaction.
        if self.tally is not None and not TRANSACTION_CONTROL.match(statement):
            self.tally.statements.append(statement)

    def _begin(self, conn):
        if self.tally is not None:
            self.tally.transactions += 1

    def request(self, client, path: str, **kw) -> Tally:
        self.tally = Tally()
        try:
            resp = client.get(path, **kw)
        finally:
            tally, self.tally = self.tally, None
        assert resp.status_code == 200, (path, resp.status_code, resp.get_data(as_text=True)[:500])
        return tally


@pytest.fixture
def counter(app):
    c = Counter(app.extensions["returnprog.engine"])
    yield c
    c.close()


# --- the data -------------------------------------------------------------------------------------

def _small_world(staff, ctx_for, session) -> str:
    """One adult, a short trail, a paid cash support; plus one case in intake for the lists."""
    case = drive_to(ctx_for, staff, session, "support_paid", adults=1, minors=0)
    case_service.open_case(ctx_for(staff.counsellor), intake(1))
    return case.reference


def linked_principal(session, case) -> int:
    """The id of the case's principal (who gets a signing link in the big world)."""
    from returnprog.models import Participant
    return session.execute(select(Participant.id).where(
        Participant.case_id == case.id, Participant.is_principal)).scalar_one()


def _big_world(staff, ctx_for, session) -> str:
    """A household of eight (four minors), a rejected and a paid payment, a dozen documents,
    a trail of 300 events, hundreds of looks, failed reminders, and full list pages."""
    today = dt.date.today()
    c = staff.counsellor
    case = drive_to(ctx_for, staff, session, "departure_agreed", adults=4, minors=4,
                    deadline=today + dt.timedelta(days=10))
    ref = case.reference
    payment_service.propose(ctx_for(c), ref, {"method": "transfer", "iban": "NL91ABNA0417164300",
                                              "account_holder": "O. Kovalenko"})
    payment_service.reject(ctx_for(staff.supervisor), ref, "Wrong account holder")
    payment_service.propose(ctx_for(c), ref, {"method": "cash"})
    payment_service.approve(ctx_for(staff.supervisor), ref)
    payment_service.disburse(ctx_for(staff.finance), ref, {"idempotency_key": f"pay-{ref}"})
    fake_sign(session, case, "payment_receipt")
    for n in range(300 - 20):
        audit.append(session, actor=c, action="send_reminder", case_id=case.id,
                     details={"kind": "departure_reminder", "n": n})
    session.commit()
    now = dt.datetime.now(dt.timezone.utc)
    session.add_all(AccessEvent(first_at=now - dt.timedelta(hours=n), interval=n,
                                actor=f"reader{n % 7}@dtenv.example", case_id=case.id,
                                view="case", channel="web") for n in range(1, 400))
    session.execute(update(OutboxMessage).where(OutboxMessage.case_id == case.id)
                    .values(status="failed", attempts=5, last_error="550 mailbox unavailable"))
    # More notes and evidence files than the case page shows.
    session.add_all(CaseNote(case_id=case.id, author_id=c.id, body=f"note {n}")
                    for n in range(40))
    session.add_all(EvidenceFile(case_id=case.id, kind="other", content_type="application/pdf",
                                 filename=f"f{n}.pdf", size=4, sha256=f"{n:064d}",
                                 content=b"%PDF", uploaded_by=c.id) for n in range(30))
    # Full list pages, deadlines coming up and overdue cases on the dashboard.
    for _ in range(30):
        case_service.open_case(ctx_for(c), intake(2, 1))
    agreed = [drive_to(ctx_for, staff, session, "departure_agreed", adults=1, minors=1,
                       deadline=today + dt.timedelta(days=20 + days)) for days in (3, 5, 8)]
    # Something in every work queue: a proposal to decide, an approved payment to pay, an
    # extension signed, signing links sent, declarations waiting on the IND.
    payment_service.propose(ctx_for(c), agreed[0].reference, {"method": "cash"})
    payment_service.propose(ctx_for(c), agreed[1].reference, {"method": "cash"})
    payment_service.approve(ctx_for(staff.supervisor), agreed[1].reference)
    fake_sign(session, agreed[2], "addendum",
              {"departure_deadline": (today + dt.timedelta(days=60)).isoformat()})
    for _ in range(3):
        linked = case_service.open_case(ctx_for(c), intake(1))
        signing_service.create_signing_link(ctx_for(c), linked.reference,
                                            linked_principal(session, linked), "commitment", {})
    waiting = drive_to(ctx_for, staff, session, "committed", adults=2, minors=0)
    fake_sign(session, waiting, "withdrawal_declaration")
    overdue = drive_to(ctx_for, staff, session, "departure_agreed", adults=2, minors=0)
    session.execute(update(Case).where(Case.id == overdue.id)
                    .values(departure_deadline=today - dt.timedelta(days=2)))
    session.commit()
    return ref


ROUTES = {  # name: (who, path); {ref} is the case's reference
    "case page": ("counsellor", "/cases/{ref}"),
    "case page with looks": ("counsellor", "/cases/{ref}?views=1"),
    "case API": ("api", "/api/v1/cases/{ref}"),
    "trail API": ("api", "/api/v1/cases/{ref}/trail"),
    "events API": ("api", "/api/v1/cases/{ref}/events"),
    "case payments API": ("api", "/api/v1/cases/{ref}/payments"),
    "payment API": ("api", "/api/v1/cases/{ref}/payment"),
    "case list API": ("api", "/api/v1/cases?state=intake"),
    "documents API": ("api", "/api/v1/cases/{ref}/documents"),
    "signing links API": ("api", "/api/v1/cases/{ref}/signing-links"),
    "case list": ("counsellor", "/cases"),
    "dashboard": ("counsellor", "/"),
    "dashboard (queue cache behind)": ("counsellor", "/"),
    "dashboard (supervisor)": ("supervisor", "/"),
    "queue (counsellor)": ("counsellor", "/queues/mine"),
    "queue approvals": ("supervisor", "/queues/approvals"),
    "queue extensions": ("supervisor", "/queues/extensions"),
    "queue (finance)": ("finance", "/queues/to_pay"),
    "queues API": ("api", "/api/v1/queues"),
    "payment page": ("supervisor", "/cases/{ref}/payment"),
    "payment list": ("supervisor", "/payments?status=disbursed"),
}


def _measure(app, counter, staff, token: str, ref: str) -> dict[str, tuple[Tally, Tally]]:
    """Each route requested twice in a row by a reader who has not looked yet (fresh
    clients, the token's last use older than a minute): the first and the second tally."""
    webs = {"counsellor": web_for(app, staff.counsellor), "supervisor": web_for(app, staff.supervisor),
            "finance": web_for(app, staff.finance)}
    api = app.test_client()
    headers = {"Authorization": f"Bearer {token}"}
    out = {}
    with Session(app.extensions["returnprog.engine"]) as s:
        run_queue_job(app, s)  # the scheduler's job has run, as every half minute
        for name, (who, path) in ROUTES.items():
            if "cache behind" in name:  # every case changed since the job last ran
                s.execute(update(CaseQueue).values(change_seq=CaseQueue.change_seq + 1))
            # Worst case: the reader's first look in this interval, the token's first use
            # in a minute.
            s.execute(update(ApiToken).values(last_used_at=None))
            s.execute(AccessEvent.__table__.delete().where(AccessEvent.actor.in_(
                [staff.counsellor.email, staff.supervisor.email])))
            s.commit()
            client, kw = (api, {"headers": headers}) if who == "api" else (webs[who].client, {})
            url = path.format(ref=ref)
            out[name] = (counter.request(client, url, **kw), counter.request(client, url, **kw))
            if "cache behind" in name:
                s.rollback()
                run_queue_job(app, s)
    return out


def _report(label: str, tallies: dict[str, tuple[Tally, Tally]]) -> None:
    print(f"\n=== {label}")
    for name, (first, again) in tallies.items():
        print(f"--- {name}: {first.summary()}\n    again: {len(again.statements)} statements, "
              f"{len(again.writes)} writes")


def test_routes_stay_within_budget_and_do_not_grow_with_the_data(app, counter, staff, ctx_for,
                                                                 session):
    token = auth.issue_api_token(session, staff.counsellor)
    small = _measure(app, counter, staff, token, _small_world(staff, ctx_for, session))
    _report("small case", small)
    big = _measure(app, counter, staff, token, _big_world(staff, ctx_for, session))
    _report("big case", big)
    failures = []
    for name, budget in BUDGETS.items():
        for label, tallies in (("small", small), ("big", big)):
            first, again = tallies[name]
            got = (len(first.statements), first.transactions, len(first.writes))
            if any(g > b for g, b in zip(got, (budget.statements, budget.transactions,
                                               budget.writes))):
                failures.append(f"{name} ({label}): {got} over budget {budget}\n"
                                f"{first.summary()}")
            if again.writes:
                failures.append(f"{name} ({label}) asked again wrote {again.writes}")
            for tally in (first, again):
                chain = [s for s in tally.writes if AUDIT_TABLES.search(s)]
                if chain:
                    failures.append(f"{name} ({label}) wrote to the audit chain: {chain}")
                if tally.tables_written() - READ_WRITES:
                    failures.append(f"{name} ({label}) wrote {tally.tables_written()}")
        if len(small[name][0].statements) != len(big[name][0].statements):
            failures.append(f"{name}: {len(small[name][0].statements)} statements on the "
                            f"small case, {len(big[name][0].statements)} on the big one\n"
                            f"small: {small[name][0].summary()}\nbig: {big[name][0].summary()}")
    assert not failures, "\n\n".join(failures)


def test_the_budget_check_counts_what_a_route_sends(app, counter, staff, ctx_for, session):
    """The counter itself: a case page's look is a check and an INSERT into the access log
    the first time and nothing at all the second (the worker remembers the look); a
    statement added by hand is counted."""
    ref = _small_world(staff, ctx_for, session)
    web = web_for(app, staff.counsellor)
    # Both looks must fall in one access-log interval: a second one across a boundary is
    # rightly a new row, so start well clear of the next boundary.
    left = access_log.INTERVAL_SECONDS - time.time() % access_log.INTERVAL_SECONDS
    if left < 30:
        time.sleep(left + 1)
    first = counter.request(web.client, f"/cases/{ref}")
    again = counter.request(web.client, f"/cases/{ref}")
    assert [TABLE_WRITTEN.match(s).group(1) for s in first.writes] == ["access_log"]
    assert again.writes == [] and len(again.statements) == len(first.statements) - 2
    assert not [s for s in again.statements if "access_log" in s]
    engine = app.extensions["returnprog.engine"]
    counter.tally = Tally()
    with engine.connect() as conn:
        conn.exec_driver_sql("SELECT 1")
    assert len(counter.tally.statements) == 1 and counter.tally.transactions == 1
    counter.tally = None


def test_an_api_read_keeps_its_connection_on_postgresql_and_ends_the_read_on_sqlite(
        app, counter, staff, ctx_for, session):
    """The token check's read, then the use case (``db.end_read``). PostgreSQL: one
    transaction on one pooled connection — ending the read there gave the connection back
    and took it out again, with a ping and a new BEGIN (9-10% of a case read). SQLite: the
    read is ended before the use case, so a later write never meets a pinned snapshot."""
    ref = _small_world(staff, ctx_for, session)
    token = auth.issue_api_token(session, staff.counsellor)
    api, headers = app.test_client(), {"Authorization": f"Bearer {token}"}
    engine = app.extensions["returnprog.engine"]
    checkouts = []
    listener = lambda *_: checkouts.append(1)  # noqa: E731
    for path in (f"/api/v1/cases/{ref}", "/api/v1/cases?state=intake"):
        counter.request(api, path, headers=headers)  # the token's last use, the look
        event.listen(engine, "checkout", listener)
        try:
            checkouts.clear()
            tally = counter.request(api, path, headers=headers)
        finally:
            event.remove(engine, "checkout", listener)
        if engine.dialect.name == "postgresql":
            assert (len(checkouts), tally.transactions) == (1, 1), (path, tally.summary())
        else:
            assert (len(checkouts), tally.transactions) == (2, 2), (path, tally.summary())
