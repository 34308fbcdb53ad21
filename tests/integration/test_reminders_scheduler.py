"""The real scheduler process (``flask --app wsgi scheduler``) against a real database and a
real SMTP server: killed with SIGKILL at random points, started twice, stopped with
SIGTERM; and the local mail sink (``flask --app wsgi mail-sink``) that ``make run`` uses."""
from __future__ import annotations

import datetime as dt
import email
import email.policy
import os
import random
import shutil
import signal
import subprocess
import tempfile
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlmodel import Session

from returnprog import db as dbmod
from returnprog.models import OutboxMessage
from returnprog.policy import DEFAULT_POLICY
from returnprog.services import Context

from ..conftest import Staff, drive_to
from .test_reminders_delivery import SmtpServer, free_port

ROOT = Path(__file__).resolve().parents[2]
FLASK = [sys.executable, "-m", "flask", "--app", "wsgi"]

pytestmark = pytest.mark.slow


class Proc:
    """A child process whose output is collected line by line."""

    def __init__(self, args, env, name):
        self.name = name
        self.p = subprocess.Popen(args, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT, text=True, bufsize=1)
        self.lines: list[str] = []
        self._cond = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.p.stdout:
            with self._cond:
                self.lines.append(line.rstrip("\n"))
                self._cond.notify_all()

    def wait_for(self, text: str, timeout: float = 30) -> bool:
        end = time.monotonic() + timeout
        with self._cond:
            while not any(text in line for line in self.lines):
                left = end - time.monotonic()
                if left <= 0 or self.p.poll() is not None and not self._cond.wait(0.2):
                    return any(text in line for line in self.lines)
                self._cond.wait(min(left, 0.2))
        return True

    def count(self, text: str) -> int:
        with self._cond:
            return sum(text in line for line in self.lines)

    def output(self) -> str:
        with self._cond:
            return "\n".join(f"[{self.name}] {line}" for line in self.lines)

    def signal(self, sig):
        if self.p.poll() is None:
            self.p.send_signal(sig)

    def wait(self, timeout: float = 20) -> int:
        return self.p.wait(timeout)


def scheduler_env(db_url: str, smtp_port: int, **extra) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RETURNPROG_")}
    env.update({
        "PYTHONUNBUFFERED": "1",
        "RETURNPROG_DATABASE_URL": db_url,
        # Audit checkpoints of throw-away databases stay out of the repository's instance/.
        "RETURNPROG_AUDIT_CHECKPOINT_PATH": str(Path(tempfile.mkdtemp()) / "cp.jsonl"),
        "RETURNPROG_SECRET_KEY": "test",
        "RETURNPROG_SMTP_HOST": "127.0.0.1",
        "RETURNPROG_SMTP_PORT": str(smtp_port),
        "RETURNPROG_SMTP_TIMEOUT": "1",
        "RETURNPROG_SMTP_RETRY_BASE_SECONDS": "0.5",
        "RETURNPROG_SMTP_RETRY_MAX_SECONDS": "2",
        "RETURNPROG_SCHEDULER_SWEEP_SECONDS": "1",
        "RETURNPROG_SCHEDULER_DELIVERY_SECONDS": "0.2",
        "RETURNPROG_SCHEDULER_LOCK_POLL_SECONDS": "0.2",
        "RETURNPROG_SCHEDULER_LEASE_SECONDS": "2.5",
        "RETURNPROG_SCHEDULER_BATCH_SIZE": "8",
    })
    env.update({f"RETURNPROG_{k}": str(v) for k, v in extra.items()})
    return env


def start_scheduler(env, name="scheduler") -> Proc:
    return Proc(FLASK + ["scheduler"], env, name)


def populate(session, cases: int) -> int:
    """``cases`` households in departure_agreed with a reminder due; returns how many
    messages the sweep will write (two adults plus the counsellor per case)."""
    staff = Staff(session)

    def ctx_for(user, today=None):
        return Context(session=session, policy=DEFAULT_POLICY, actor=user, ip="127.0.0.1")

    for _ in range(cases):
        drive_to(ctx_for, staff, session, "departure_agreed", adults=2, minors=1,
                 deadline=dt.date.today() + dt.timedelta(days=7))
    return cases * 3


def outbox_state(engine) -> tuple[Counter, list[str]]:
    with Session(engine) as s:
        rows = s.execute(select(OutboxMessage.status, OutboxMessage.idempotency_key)).all()
    return Counter(r.status for r in rows), [r.idempotency_key for r in rows]


def wait_until_all_sent(engine, expected: int, timeout: float, procs=()) -> Counter:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        counts, _ = outbox_state(engine)
        if counts.get("sent", 0) == expected and sum(counts.values()) == expected:
            return counts
        time.sleep(0.2)
    raise AssertionError(f"not all sent: {outbox_state(engine)[0]}\n" +
                         "\n".join(p.output() for p in procs))


@pytest.fixture
def sqlite_db(sqlite_template, tmp_path):
    path = tmp_path / "returnprog.sqlite"
    shutil.copyfile(sqlite_template, path)
    url = f"sqlite:///{path}"
    engine = dbmod.make_engine(url)
    yield url, engine
    engine.dispose()


def test_sigkill_at_random_points_loses_nothing_and_sends_nothing_twice(sqlite_db):
    url, engine = sqlite_db
    with Session(engine, expire_on_commit=False) as session:
        expected = populate(session, 20)
    smtp = SmtpServer(delay=0.05).start()  # ~50 ms per message: kills land mid-delivery
    seed = int.from_bytes(os.urandom(4), "big")
    rng = random.Random(seed)
    env = scheduler_env(url, smtp.port)
    kills, mid_batch = 0, 0
    try:
        for i in range(10):
            proc = start_scheduler(env, f"run{i}")
            if i % 4 == 0:  # while starting up, taking the lock or sweeping
                time.sleep(rng.uniform(0.2, 2.5))
            else:  # while delivering: after a random number of messages, at a random moment
                assert proc.wait_for("scheduler lock acquired", 30), proc.output()
                target = len(smtp.handler.raw) + rng.randint(0, 4)
                end = time.monotonic() + 20
                while len(smtp.handler.raw) < target and time.monotonic() < end:
                    time.sleep(0.002)
                time.sleep(rng.uniform(0.0, 0.08))  # inside one SMTP exchange or between two
            proc.signal(signal.SIGKILL)
            proc.wait()
            kills += 1
            counts, _ = outbox_state(engine)
            mid_batch += counts.get("sent", 0) < expected
        # Most kills hit while reminders were still waiting to go out.
        assert mid_batch >= 6, f"seed {seed}: only {mid_batch} kills before the end"
        final = start_scheduler(env, "final")
        # Its SIGTERM handler is in place once it holds the lock; earlier (everything may
        # have been sent by the killed runs already) the signal would find none.
        assert final.wait_for("scheduler lock acquired", 30), final.output()
        wait_until_all_sent(engine, expected, 60, [final])
        final.signal(signal.SIGTERM)
        assert final.wait() == 0, final.output()
        assert final.wait_for("scheduler stopped", 1)
    finally:
        smtp.stop()
    counts, keys = outbox_state(engine)
    assert counts == Counter({"sent": expected}) and len(set(keys)) == expected
    received = Counter(smtp.handler.keys())
    # Every reminder delivered ...
    assert set(received) == set(keys), f"seed {seed}"
    # ... and none twice in the mailbox: each key always travels under one Message-ID, and
    # a mailbox (like the local sink) keeps one message per Message-ID.
    ids = {}
    for m in smtp.handler.messages:
        ids.setdefault(str(m["X-Returnprog-Key"]), set()).add(str(m["Message-ID"]))
    assert all(len(v) == 1 for v in ids.values())
    mailbox = {next(iter(v)): k for k, v in ids.items()}
    assert sorted(mailbox.values()) == sorted(keys)
    # At the SMTP level a kill between the server's "250" and our commit of "sent" makes
    # that one message go out again (no protocol can close that window): at most one
    # copy per kill.
    copies = sum(received.values()) - len(received)
    assert copies <= kills, f"seed {seed}: {copies} copies for {kills} kills"
    print(f"\nSIGKILL test: seed {seed}, {kills} kills ({mid_batch} mid-batch), "
          f"{expected} messages, "
          f"{sum(received.values())} SMTP deliveries, {copies} re-sent copies "
          f"(same Message-ID)")


@pytest.mark.parametrize("db_backend", ["sqlite", "postgresql"])
def test_two_schedulers_started_together_run_the_jobs_once(db_backend, request, tmp_path):
    if db_backend == "sqlite":
        path = tmp_path / "returnprog.sqlite"
        shutil.copyfile(request.getfixturevalue("sqlite_template"), path)
        url = f"sqlite:///{path}"
    else:
        server = request.getfixturevalue("pg_server")
        name = f"sched_{os.getpid()}_{int(time.time() * 1000) % 10**8}"
        server.create_database(name, template="returnprog_template")
        url = server.url(name)
    engine = dbmod.make_engine(url)
    smtp = SmtpServer().start()
    procs = []
    try:
        with Session(engine, expire_on_commit=False) as session:
            expected = populate(session, 8)
        env = scheduler_env(url, smtp.port)
        procs = [start_scheduler(env, "a"), start_scheduler(env, "b")]
        wait_until_all_sent(engine, expected, 60, procs)
        time.sleep(1.5)  # a few more sweep and delivery rounds
        active = [p for p in procs if p.count("scheduler lock acquired")]
        waiting = [p for p in procs if p.count("another scheduler is active")]
        assert len(active) == 1 and len(waiting) == 1, "\n".join(p.output() for p in procs)
        assert waiting[0].count("sweep ") == 0 and waiting[0].count("delivery:") == 0
        received = Counter(smtp.handler.keys())
        assert len(received) == expected and set(received.values()) == {1}
        # When the active one stops, the waiting one takes over.
        active[0].signal(signal.SIGTERM)
        assert active[0].wait() == 0, active[0].output()
        assert waiting[0].wait_for("scheduler lock acquired", 15), waiting[0].output()
        waiting[0].signal(signal.SIGTERM)
        assert waiting[0].wait() == 0, waiting[0].output()
        assert Counter(smtp.handler.keys()) == received  # nothing sent again
    finally:
        for p in procs:
            p.signal(signal.SIGKILL)
        smtp.stop()
        engine.dispose()
        if db_backend == "postgresql":
            server.drop_database(name)


def test_sigterm_during_delivery_stops_cleanly_and_hands_claims_back(sqlite_db):
    url, engine = sqlite_db
    with Session(engine, expire_on_commit=False) as session:
        expected = populate(session, 6)
    smtp = SmtpServer(delay=0.15).start()
    try:
        proc = start_scheduler(scheduler_env(url, smtp.port, SCHEDULER_LEASE_SECONDS=600))
        deadline = time.monotonic() + 30
        while not smtp.handler.raw and time.monotonic() < deadline:
            time.sleep(0.05)
        proc.signal(signal.SIGTERM)
        assert proc.wait(15) == 0, proc.output()
        assert proc.wait_for("scheduler stopped", 1)
    finally:
        smtp.stop()
    counts, _ = outbox_state(engine)
    assert counts.get("sending", 0) == 0, counts  # nothing left waiting for a lease
    assert 0 < counts["sent"] < expected and counts["sent"] + counts["pending"] == expected


def test_make_run_companions_deliver_reminders_into_the_local_mail_sink(sqlite_db, tmp_path):
    url, engine = sqlite_db
    with Session(engine, expire_on_commit=False) as session:
        expected = populate(session, 1)
    port = free_port()
    mail_dir = tmp_path / "mail"
    env = scheduler_env(url, port, MAIL_SINK_DIR=mail_dir)
    sink = Proc(FLASK + ["mail-sink"], env, "sink")
    procs = [sink]
    try:
        assert sink.wait_for("mail sink on", 30), sink.output()
        procs.append(start_scheduler(env))
        wait_until_all_sent(engine, expected, 30, procs)
        files = sorted(mail_dir.glob("*.eml"))
        assert len(files) == expected, sink.output()
        for f in files:
            msg = email.message_from_bytes(f.read_bytes(), policy=email.policy.default)
            assert msg["X-Sink-Rcpt-To"] == msg["To"]
            assert msg["X-Returnprog-Kind"].startswith("deadline_reminder_")
            assert msg.get_body(("html",)) is not None
        for p in procs:
            p.signal(signal.SIGTERM)
        assert [p.wait() for p in procs] == [0, 0]
        assert sink.wait_for("mail sink stopped", 1)
    finally:
        for p in procs:
            p.signal(signal.SIGKILL)
