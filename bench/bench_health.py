"""What ``/readyz`` and the dashboard's delivery check cost as the outbox grows: the cost
must follow the number of unsent messages, not the number ever sent.

Run from the project root:  .venv/bin/python bench/bench_health.py [--backend sqlite|postgresql|both] [--repeat N]

Two outboxes are built with bulk inserts, each with 2,000 unsent messages (500 of them due,
the rest waiting for a retry) and a heartbeat row:

- 1,000,000 messages in all (998,000 sent) — some years of reminders for 150,000 cases;
- 10,000 messages in all (8,000 sent).

Timed (median of ``--repeat`` runs, on a warm connection pool): the whole readiness check
(:func:`returnprog.services.health.readiness`: four checks, one short read transaction),
:func:`returnprog.services.outbox.delivery_health` alone, and a ``SELECT 1`` round trip for
scale. The ratio big/small should stay near 1.
"""
from __future__ import annotations

import argparse
import datetime as dt
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sqlalchemy import insert, text  # noqa: E402
from sqlmodel import Session  # noqa: E402

from returnprog import db as dbmod  # noqa: E402
from returnprog.models import OutboxMessage  # noqa: E402
from returnprog.services import health, outbox  # noqa: E402

NOW = dt.datetime(2026, 6, 1, 9, 0, tzinfo=dt.timezone.utc)
UNSENT, DUE = 2_000, 500


def build(url: str, total: int) -> None:
    engine = dbmod.make_engine(url)
    rows = []
    with Session(engine) as session:
        for i in range(total):
            unsent = i >= total - UNSENT
            due = i >= total - DUE
            at = NOW - dt.timedelta(minutes=5) if due else NOW + dt.timedelta(minutes=30)
            rows.append({"idempotency_key": f"bench|{i}", "case_id": None, "kind": "bench",
                         "recipient": f"p{i}@example.org", "language": "nl",
                         "subject": "Herinnering", "body_text": "x", "body_html": "x",
                         "status": "pending" if unsent else "sent", "attempts": 0,
                         "next_attempt_at": at if unsent else NOW - dt.timedelta(days=i % 900),
                         "created_at": NOW - dt.timedelta(days=i % 900),
                         "sent_at": None if unsent else NOW - dt.timedelta(days=i % 900)})
            if len(rows) == 20_000:
                session.execute(insert(OutboxMessage), rows)
                rows = []
        if rows:
            session.execute(insert(OutboxMessage), rows)
        session.commit()
        if engine.dialect.name == "postgresql":
            session.execute(text("ANALYZE outbox_message"))
            session.commit()
        health.beat(session, "bench:1", NOW, started=True)
    engine.dispose()


def median_ms(fn, repeat: int) -> float:
    fn()  # warm up
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1000


def measure(url: str, repeat: int) -> dict[str, float]:
    engine = dbmod.make_engine(url)
    limits = health.Thresholds()
    try:
        checks = health.readiness(engine, NOW, limits)
        assert all(c.ok for c in checks), checks

        def state():
            with Session(engine) as s:
                outbox.delivery_health(s, NOW)

        def select_one():
            with engine.connect() as conn:
                conn.execute(text("SELECT 1"))

        return {"readiness": median_ms(lambda: health.readiness(engine, NOW, limits), repeat),
                "delivery_health": median_ms(state, repeat),
                "select 1": median_ms(select_one, repeat)}
    finally:
        engine.dispose()


def run(backend: str, repeat: int) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="bench-health-"))
    server = None
    if backend == "postgresql":
        sys.path.insert(0, str(ROOT / "tests"))
        from pgserver import PostgresServer

        server = PostgresServer().start()
    results = {}
    try:
        for total in (1_000_000, 10_000):
            name = f"h{total}"
            if server is not None:
                server.create_database(name)
                url = server.url(name)
            else:
                url = f"sqlite:///{tmp / (name + '.sqlite')}"
            dbmod.upgrade(url)
            t = time.perf_counter()
            build(url, total)
            built = time.perf_counter() - t
            r = results[total] = measure(url, repeat)
            print(f"[{backend}] {total:>9,} messages ({UNSENT:,} unsent, {DUE} due): "
                  + ", ".join(f"{k} {v:6.2f} ms" for k, v in r.items())
                  + f"   [built in {built:.0f} s]", flush=True)
        big, small = results[1_000_000], results[10_000]
        print(f"[{backend}] 1M vs 10k messages: readiness {big['readiness'] / small['readiness']:.2f}x, "
              f"delivery_health {big['delivery_health'] / small['delivery_health']:.2f}x "
              f"(same number unsent, 100x as many sent)")
    finally:
        if server is not None:
            server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=("sqlite", "postgresql", "both"), default="sqlite")
    parser.add_argument("--repeat", type=int, default=50)
    args = parser.parse_args()
    for backend in (("sqlite", "postgresql") if args.backend == "both" else (args.backend,)):
        run(backend, args.repeat)


if __name__ == "__main__":
    main()
