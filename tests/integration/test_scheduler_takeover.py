"""A real scheduler process killed mid-delivery: its successor hands the dead one's claims
back at once instead of after the 600 s lease, sends each reminder once, and keeps the
heartbeat that ``/readyz`` reads (issue 10)."""
from __future__ import annotations

import datetime as dt
import os
import shutil
import signal
import time
from collections import Counter

import pytest
from sqlmodel import Session

from returnprog import db as dbmod
from returnprog.services import health

from .test_reminders_delivery import SmtpServer
from .test_reminders_scheduler import (outbox_state, populate, scheduler_env, start_scheduler,
                                       wait_until_all_sent)

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("db_backend", ["sqlite", "postgresql"])
def test_a_killed_schedulers_claims_are_sent_by_its_successor_within_a_minute(
        db_backend, request, tmp_path):
    if db_backend == "sqlite":
        path = tmp_path / "returnprog.sqlite"
        shutil.copyfile(request.getfixturevalue("sqlite_template"), path)
        url = f"sqlite:///{path}"
    else:
        server = request.getfixturevalue("pg_server")
        name = f"takeover_{os.getpid()}_{int(time.time() * 1000) % 10**8}"
        server.create_database(name, template="returnprog_template")
        url = server.url(name)
    engine = dbmod.make_engine(url)
    smtp = SmtpServer(delay=0.15).start()  # slow enough to kill inside a batch of 8
    procs = []
    try:
        with Session(engine, expire_on_commit=False) as session:
            expected = populate(session, 6)
        # The lease is the full default: without the takeover release, the claims of the
        # killed scheduler would wait ten minutes.
        env = scheduler_env(url, smtp.port, SCHEDULER_LEASE_SECONDS=600)
        first = start_scheduler(env, "first")
        procs.append(first)
        end = time.monotonic() + 30
        while len(smtp.handler.raw) < 2 and time.monotonic() < end:
            time.sleep(0.01)
        first.signal(signal.SIGKILL)
        first.wait()
        counts, _ = outbox_state(engine)
        assert counts["sending"] > 0, counts  # the dead scheduler left claims behind
        left = counts["sending"]

        second = start_scheduler(env, "second")
        procs.append(second)
        wait_until_all_sent(engine, expected, 45, procs)
        assert second.wait_for(f"released {left} message(s) claimed by a previous scheduler", 1), \
            second.output()
        received = Counter(smtp.handler.keys())
        assert len(received) == expected
        # A kill between the server's "250" and the commit of "sent" re-sends that one.
        assert sum(received.values()) - expected <= 1

        with Session(engine) as session:
            beat = health.heartbeat(session)
        assert beat.holder.endswith(f":{second.p.pid}")
        now = dt.datetime.now(dt.timezone.utc)
        assert {c.name for c in health.readiness(engine, now, health.Thresholds())
                if not c.ok} == set()
        second.signal(signal.SIGTERM)
        assert second.wait() == 0, second.output()
    finally:
        for p in procs:
            p.signal(signal.SIGKILL)
        smtp.stop()
        engine.dispose()
        if db_backend == "postgresql":
            server.drop_database(name)
