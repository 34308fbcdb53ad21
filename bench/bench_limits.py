"""What one shared rate-limit hit costs: `limits`' fixed window on the database store
(returnprog.limiter.DatabaseStorage, one upsert in its own transaction) on a temporary
SQLite file, next to the in-process memory store and a `SELECT 1` round trip on the same
engine. Prints the median and p95 in milliseconds and the ratio to `SELECT 1`.

    .venv/bin/python bench/bench_limits.py [--repeat 2000]
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import text  # noqa: E402

from returnprog import db as dbmod  # noqa: E402
from returnprog.limiter import Limits, make_storage  # noqa: E402


def _times(fn, repeat: int) -> list[float]:
    out = []
    for n in range(repeat):
        start = time.perf_counter()
        fn(n)
        out.append((time.perf_counter() - start) * 1000)
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=2000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'bench.sqlite'}"
        dbmod.upgrade(url)
        engine = dbmod.make_engine(url)
        database = Limits(make_storage("database://", engine))
        memory = Limits(make_storage("memory://"))

        def select_one(_n):
            with engine.connect() as conn:
                conn.execute(text("SELECT 1"))

        rows = {
            "SELECT 1": _times(select_one, args.repeat),
            "hit, database (one key)": _times(lambda n: database.hit("k", 10**9, 3600),
                                              args.repeat),
            "hit, database (new keys)": _times(lambda n: database.hit(f"k{n}", 10, 3600),
                                               args.repeat),
            "hit, memory": _times(lambda n: memory.hit("k", 10**9, 3600), args.repeat),
        }
        engine.dispose()
    base = statistics.median(rows["SELECT 1"])
    print(f"{'operation':28} {'p50 ms':>8} {'p95 ms':>8} {'x SELECT 1':>11}")
    for name, times in rows.items():
        times.sort()
        p50, p95 = statistics.median(times), times[int(len(times) * 0.95)]
        print(f"{name:28} {p50:8.3f} {p95:8.3f} {p50 / base:11.1f}")


if __name__ == "__main__":
    main()
