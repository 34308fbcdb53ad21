"""Shared fixtures: a real SQLite file and a real PostgreSQL server, migrated by Alembic.

Layout (DESIGN §6): ``unit/`` is pure (no database), ``integration/`` runs every test that
asks for ``db_url`` (directly or through ``engine``/``session``/``app``) twice, once on
SQLite and once on PostgreSQL; ``web/`` and ``browser/`` check pages and the API, which do
not depend on the engine, on SQLite only — except tests marked ``engines_differ`` (search,
characters a database may refuse), which stay on both. PostgreSQL is started by the suite
itself; if it cannot start, those tests fail — never skip.
"""
from __future__ import annotations

import datetime as dt
import itertools
import json
import shutil
import hashlib

import pytest
from sqlalchemy import event, select
from sqlmodel import Session

from returnprog import auth, db as dbmod, dumping, workflow
from returnprog.models import Document, Participant
from returnprog.policy import DEFAULT_POLICY
from returnprog.services import Context
from returnprog.services import cases as case_service

from .pgserver import PostgresServer

_counter = itertools.count()

# Every answer the API makes in the suite is also dumped by marshmallow and compared, so the
# fast dump is held to the schemas on real data, not only on tests/unit/test_dumping.py's.
dumping.CROSS_CHECK = True


def CHEAP_HASH(pw, *a, **k):  # noqa: N802 - used like a constant: a drop-in for the real hash
    """A cheap stand-in for ``auth.generate_password_hash``. Hashes name their method, so
    sign-in still checks them for real. Patch it in yourself only where the autouse fixture
    below does not reach (a server started by a module- or session-scoped fixture)."""
    from werkzeug.security import generate_password_hash

    return generate_password_hash(pw, "pbkdf2:sha256:1")


@pytest.fixture(autouse=True)
def _cheap_password_hashes(monkeypatch):
    """Staff passwords are hashed with scrypt in production (~0.3 s each, by design);
    tests create many users, so they use a cheap hash. Sign-in still checks it for real."""
    monkeypatch.setattr(auth, "generate_password_hash", CHEAP_HASH)


def jsonable(value):
    """Dates as ISO strings (Flask's JSON provider would write HTTP dates)."""
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    return value


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory):
    """A migrated SQLite file, copied for each test (cheaper than migrating each time)."""
    path = tmp_path_factory.mktemp("tmpl") / "template.sqlite"
    dbmod.upgrade(f"sqlite:///{path}")
    return path


@pytest.fixture(scope="session")
def pg_server():
    """One throwaway PostgreSQL server for the whole run, with a migrated template DB."""
    server = PostgresServer().start()
    server.create_database("returnprog_template")
    dbmod.upgrade(server.url("returnprog_template"))
    yield server
    server.stop()


SQLITE_ONLY_DIRS = ("web", "browser")


def pytest_collection_modifyitems(config, items):
    """Leave out the PostgreSQL twin of web and browser checks that do not depend on the
    engine (see the module docstring); they ran on both before, at twice the cost."""
    keep, dropped = [], []
    for item in items:
        callspec = getattr(item, "callspec", None)
        on_pg = callspec is not None and callspec.params.get("db_url") == "postgresql"
        folder = item.path.parent.name
        if on_pg and folder in SQLITE_ONLY_DIRS and not item.get_closest_marker("engines_differ"):
            dropped.append(item)
        else:
            keep.append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = keep


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path):
    """A fresh, migrated database for one test, on each backend."""
    if request.param == "sqlite":
        path = tmp_path / "returnprog.sqlite"
        shutil.copyfile(request.getfixturevalue("sqlite_template"), path)
        yield f"sqlite:///{path}"
        return
    server = request.getfixturevalue("pg_server")
    name = f"t{next(_counter)}_{abs(hash(request.node.nodeid)) % 10**8}"
    server.create_database(name, template="returnprog_template")
    yield server.url(name)
    server.drop_database(name)


@pytest.fixture
def engine(db_url):
    eng = dbmod.make_engine(db_url)
    yield eng
    eng.dispose()


@pytest.fixture
def session(engine):
    with Session(engine, expire_on_commit=False) as s:
        yield s


@pytest.fixture
def policy():
    return DEFAULT_POLICY


class Staff:
    """The demo cast: one user per role in team Noord, and a counsellor of team Zuid."""

    def __init__(self, session):
        mk = lambda email, role, team="Team Noord": auth.create_user(  # noqa: E731
            session, email=email, role=role, password="correct horse battery", team=team)
        self.counsellor = mk("anna@dtenv.example", "counsellor")
        self.counsellor2 = mk("bram@dtenv.example", "counsellor")
        self.supervisor = mk("sanne@dtenv.example", "supervisor")
        self.supervisor2 = mk("pieter@dtenv.example", "supervisor")
        self.finance = mk("femke@dtenv.example", "finance")
        self.admin = mk("ad@dtenv.example", "admin")
        self.records = mk("rik@dtenv.example", "records_manager")
        self.owner = mk("petra@dtenv.example", "process_owner")
        self.other_counsellor = mk("olga@dtenv.example", "counsellor", "Team Zuid")
        self.other_supervisor = mk("otto@dtenv.example", "supervisor", "Team Zuid")


@pytest.fixture
def staff(session):
    return Staff(session)


@pytest.fixture
def ctx_for(session, policy):
    """Build a service context for a user (optionally with a fixed ``today``)."""

    def make(user, today: dt.date | None = None):
        ctx = Context(session=session, policy=policy, actor=user, ip="127.0.0.1",
                      user_agent="pytest")
        if today is not None:
            ctx.today = lambda: today
            ctx.now = lambda: dt.datetime.combine(today, dt.time(12), dt.timezone.utc)
        return ctx
    return make


_v = itertools.count(1)


def _letters(n: int) -> str:
    # Six consonant+vowel pairs: no name is a prefix of another, and no pair is one the
    # search's sound keys fold together (no h, j, y, s, doubled letters), so a search for
    # one test person never finds another.
    return "".join("bdfklmnprt"[int(d)] + "a" for d in f"{n % 1_000_000:06d}")


def person(adult=True, **over):
    """Intake data for one person; a fresh V-number each time."""
    n = next(_v)
    # A distinct given name per person, in letters only (a typed signature must be the
    # signer's name, and names have no digits): Olenabababababa, Olenababababada, …
    data = {"given_names_latin": "Olena" + _letters(n), "family_name_latin": "Kovalenko",
            "given_names_cyrillic": "Олена", "family_name_cyrillic": "Коваленко",
            "date_of_birth": dt.date(1985, 5, 1) if adult else dt.date.today().replace(year=dt.date.today().year - 8),
            "v_number": f"{1000000000 + n * 7919 % 8999999999:010d}"[:10], "bsn": None,
            "travel_document_number": f"FX{n:06d}", "email": f"p{n}@example.org",
            "phone": None, "language": "uk", "asylum_application_pending": True}
    data.update(over)
    return data


def intake(adults=1, minors=0, **over):
    """Intake data for a household: a principal plus further adults and minors."""
    data = {"principal": person(), "destination_oblast": "UA-30", "destination_place": "Kyiv",
            "intake_notes": None,
            "household": [dict(person(), relationship="spouse") for _ in range(adults - 1)]
            + [dict(person(adult=False, email=None), relationship="child") for _ in range(minors)]}
    data.update(over)
    return data


def run_queue_job(app, session) -> None:
    """What the scheduler's queues job does every half minute: bring the work-queue cache
    of the app's database up to date (in ``session``, which it commits)."""
    from returnprog.services import queues as queue_service

    queue_service.refresh_cache(Context(session=session, policy=app.extensions[
        "returnprog.policy"], actor=None, channel="job"))


def fake_sign(session, case, kind, terms=None, adults_only=True, today=None):
    """Record a signed document for every adult without rendering a PDF — a fake for tests
    of the workflow that do not look at documents (the documents tests use real PDFs)."""
    today = today or dt.date.today()
    for p in session.execute(select(Participant).where(Participant.case_id == case.id)).scalars().all():
        if adults_only and p.age_on(today) < 18:
            continue
        blob = f"{case.id}:{p.id}:{kind}:{json.dumps(terms or {})}:{next(_counter)}".encode()
        session.add(Document(case_id=case.id, participant_id=p.id, kind=kind,
                             version=next(_counter) + 1, terms=json.dumps(terms or {}),
                             signer_name=p.full_name, signature_method="typed",
                             signing_channel="tablet", signed_at=dt.datetime.now(dt.timezone.utc),
                             pdf=blob, sha256=hashlib.sha256(blob).hexdigest()))
    session.commit()


def confirm_ind(ctx, case):
    """Record an IND confirmation for every participant with a pending application."""
    for p in ctx.session.execute(select(Participant).where(Participant.case_id == case.id)).scalars().all():
        if p.asylum_application_pending:
            case_service.record_ind_confirmation(ctx, case.reference, {
                "participant_id": p.id, "ind_reference": f"IND-{p.id:06d}",
                "confirmed_on": dt.date.today()})


def drive_to(ctx_for, staff, session, state: str, adults=2, minors=1, deadline=None):
    """Take a fresh case through the real services up to ``state``."""
    from returnprog.services import payment as payment_service

    c = staff.counsellor
    case = case_service.open_case(ctx_for(c), intake(adults, minors))
    order = ["intake", "committed", "asylum_withdrawn", "departure_agreed", "support_paid", "departed"]
    target = order.index(state)
    deadline = deadline or dt.date.today() + dt.timedelta(days=30)
    if target >= 1:
        fake_sign(session, case, workflow.COMMITMENT)
        case_service.perform(ctx_for(c), case.reference, "confirm_commitment", {})
    if target >= 2:
        fake_sign(session, case, workflow.WITHDRAWAL_DECLARATION)
        confirm_ind(ctx_for(c), case)
        case_service.perform(ctx_for(c), case.reference, "record_withdrawal", {})
    if target >= 3:
        fake_sign(session, case, workflow.DEPARTURE_AGREEMENT,
                  {"departure_deadline": deadline.isoformat()})
        case_service.perform(ctx_for(c), case.reference, "agree_departure",
                             {"departure_deadline": deadline})
    if target >= 4:
        payment_service.propose(ctx_for(c), case.reference, {"method": "cash"})
        payment_service.approve(ctx_for(staff.supervisor), case.reference)
        payment_service.disburse(ctx_for(staff.finance), case.reference,
                                 {"idempotency_key": f"pay-{case.reference}"})
    if target >= 5:
        # Paid in cash: the receipt is signed before the departure can be confirmed.
        fake_sign(session, case, workflow.PAYMENT_RECEIPT)
        case_service.perform(ctx_for(c), case.reference, "confirm_departure",
                             {"departed_on": dt.date.today(), "evidence": "boarding"})
    session.expire_all()
    return case_service.load_case(ctx_for(c), case.reference)


@pytest.fixture
def app(db_url, tmp_path):
    from returnprog import create_app

    application = create_app({"TESTING": True, "DATABASE_URL": db_url,
                              "SECRET_KEY": "test-secret", "WTF_CSRF_ENABLED": True})
    application.instance_path = str(tmp_path / "instance")
    yield application
    application.extensions["returnprog.engine"].dispose()



@pytest.fixture
def scheduler_app(db_url, tmp_path):
    """An app for running the scheduler's jobs: its audit checkpoint and destruction
    register in the test's folder, and a mail server that refuses at once (port 9)."""
    from returnprog import create_app

    application = create_app({"DATABASE_URL": db_url, "SECRET_KEY": "x" * 40,
                              "AUDIT_CHECKPOINT_PATH": str(tmp_path / "cp.jsonl"),
                              "RECORDS_REGISTER_DIR": str(tmp_path / "register"),
                              "SMTP_PORT": 9, "SMTP_TIMEOUT": 1})
    application.instance_path = str(tmp_path / "instance")
    yield application
    application.extensions["returnprog.engine"].dispose()

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]


@pytest.fixture(scope="module")
def browser():
    """Debian's chromium, headless, driven by Playwright (for the browser tests)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def api_staff(app):
    """Staff users plus a bearer-token header for each, in the app's database."""
    engine = app.extensions["returnprog.engine"]
    with Session(engine, expire_on_commit=False) as s:
        cast = Staff(s)
        headers = {name: {"Authorization": f"Bearer {auth.issue_api_token(s, getattr(cast, name))}"}
                   for name in vars(cast)}
    cast.headers = headers
    return cast


def statements_sent(engine, run, *markers: str) -> list[tuple[str, object]]:
    """The statements (with their parameters) that ``run()`` sends through ``engine`` and
    that contain any of ``markers``: for checking a query plan of what a service sends."""
    seen = []

    def grab(conn, cursor, statement, parameters, context, executemany):
        if any(marker in statement for marker in markers):
            seen.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", grab)
    try:
        run()
    finally:
        event.remove(engine, "before_cursor_execute", grab)
    return seen
