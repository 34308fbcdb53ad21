"""The shared rate-limit store in the service's database: one atomic counter per key,
exact under concurrency from several engines (standing for workers and machines), on
SQLite and PostgreSQL."""
from __future__ import annotations

import threading
import time

import time_machine
from sqlalchemy import func, select

from returnprog import db as dbmod
from returnprog.limiter import DatabaseStorage, Limits, SignInThrottle, make_storage
from returnprog.models import RateLimitCounter


def test_a_counter_counts_expires_and_clears(engine):
    store = make_storage("database://", engine)
    assert isinstance(store, DatabaseStorage) and store.check()
    assert [store.incr("k", 60) for _ in range(3)] == [1, 2, 3]
    assert store.get("k") == 3 and store.get("other") == 0
    assert time.time() + 55 < store.get_expiry("k") <= time.time() + 60
    with time_machine.travel(time.time() + 61, tick=False):
        assert store.get("k") == 0
        assert store.incr("k", 60) == 1  # an expired counter starts again
    store.clear("k")
    assert store.get("k") == 0
    long_key = "x" * 400
    assert store.incr(long_key, 60) == 1 and store.get(long_key) == 1


def test_the_limit_holds_across_engines_and_threads(db_url):
    """Eight threads on two engines (two 'workers') race 400 hits on one key: exactly the
    limit is allowed, never limit x workers."""
    engines = [dbmod.make_engine(db_url), dbmod.make_engine(db_url)]
    try:
        limits = [Limits(make_storage("database://", e)) for e in engines]
        allowed, lock = [], threading.Lock()

        def worker(n):
            mine = 0
            for _ in range(50):
                if not limits[n % 2].hit("guess/192.0.2.1", 10, 900):
                    mine += 1
            with lock:
                allowed.append(mine)

        threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sum(allowed) == 10
        wait = limits[0].full("guess/192.0.2.1", 10, 900)
        assert 800 < wait <= 900
        assert limits[1].full("guess/192.0.2.2", 10, 900) == 0
    finally:
        for e in engines:
            e.dispose()


def test_the_sliding_window_counter_works_on_the_database_store(engine):
    limits = Limits(make_storage("database://", engine), "sliding-window-counter")
    assert [limits.hit("s", 3, 60) for _ in range(4)][:3] == [0, 0, 0]
    assert limits.full("s", 3, 60) > 0


def test_expired_counters_are_pruned_by_later_writes(engine, monkeypatch):
    store = make_storage("database://", engine)
    for n in range(5):
        store.incr(f"old{n}", 1)
    monkeypatch.setattr("returnprog.limiter.random.randrange", lambda n: 0)
    with time_machine.travel(time.time() + 5, tick=False):
        store.incr("fresh", 60)
    with engine.connect() as conn:
        keys = conn.execute(select(RateLimitCounter.key)).scalars().all()
    assert keys == ["fresh"]


def test_the_sign_in_throttle_shares_its_counts_between_engines(db_url):
    engines = [dbmod.make_engine(db_url), dbmod.make_engine(db_url)]
    try:
        one, two = (SignInThrottle(Limits(make_storage("database://", e))) for e in engines)
        for throttle in (one, two, one):
            assert throttle.wait("Anna@dtenv.example", "192.0.2.7") == 0
            throttle.failed("anna@dtenv.example", "192.0.2.7")
        # Three failures over two workers: the fourth attempt waits on either of them.
        assert two.wait("anna@dtenv.example", "192.0.2.7") == 5
        assert one.wait("anna@dtenv.example", "192.0.2.7") == 5
        with engines[0].connect() as conn:
            keys = conn.execute(select(RateLimitCounter.key)).scalars().all()
            assert conn.execute(select(func.count()).select_from(RateLimitCounter)
                                ).scalar_one() == len(keys)
        # No e-mail address in the store: keys carry a digest.
        assert not any("anna" in k for k in keys)
    finally:
        for e in engines:
            e.dispose()
