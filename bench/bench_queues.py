"""The work queues at programme scale (issue 13): p50/p95 of a counsellor's queues (the
"Mijn werk" page and the dashboard's counts), a supervisor's and finance's, next to a
one-page case list by state and the dashboard without queues, on 150,000 cases.

Run from the project root:

    .venv/bin/python bench/bench_queues.py [--cases N] [--repeat N]
                                           [--backend sqlite|postgresql|both]

The database is migrated by Alembic and filled by ``bench/load_cases.py`` (five teams of 20
counsellors: the benchmark's counsellor holds ~1/100 of the cases, ~70 % of them open; a
supervisor's team ~1/5). Each call runs in its own session like a web request, operations
taking turns. The counsellor's queues read every open case of theirs with its rows (five
statements) and sort them in Python, so their cost follows the counsellor's open cases;
the supervisor's read the team's proposals, addenda and overdue cases only. Compare
ratios, not milliseconds: they depend on the machine and what else runs on it.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from sqlalchemy import select  # noqa: E402
from sqlmodel import Session  # noqa: E402

import load_cases  # noqa: E402
from benchdb import databases  # noqa: E402
from returnprog import db as dbmod  # noqa: E402
from returnprog.models import User  # noqa: E402
from returnprog.policy import DEFAULT_POLICY  # noqa: E402
from returnprog.services import Context  # noqa: E402
from returnprog.services import cases as case_service  # noqa: E402
from returnprog.services import figures  # noqa: E402
from returnprog.services import queues as queue_service  # noqa: E402


def _user(session, role: str) -> User:
    if role == "counsellor":
        return session.execute(select(User).where(User.email == load_cases.BENCH_USER)).scalar_one()
    return session.execute(select(User).where(User.role == role, User.team_id == 1)
                           .order_by(User.id)).scalars().first()


def measure(url: str, repeat: int) -> dict[str, tuple[float, float, int]]:
    """p50/p95 in ms and the size (cases in the queues, or on the page) per operation."""
    engine = dbmod.make_engine(url)
    ops = {
        "case list (one page by state)": ("counsellor", lambda c: len(case_service.list_cases(
            c, {"state": "departure_agreed", "page": 1, "per_page": 25})["items"])),
        "dashboard without queues": ("counsellor", None),
        "counsellor: all queues": ("counsellor", lambda c: sum(
            map(len, queue_service.work_queues(c).values()))),
        "supervisor: approvals": ("supervisor", lambda c: len(
            queue_service.work_queues(c, "approvals")["approvals"])),
        "supervisor: all queues": ("supervisor", lambda c: sum(
            map(len, queue_service.work_queues(c).values()))),
        "finance: to pay": ("finance", lambda c: len(queue_service.work_queues(c)["to_pay"])),
    }
    samples = {name: [] for name in ops}
    sizes = {}
    original = figures.queue_counts
    for _ in range(repeat):
        for name, (role, fn) in ops.items():
            with Session(engine) as s:
                ctx = Context(session=s, policy=DEFAULT_POLICY, actor=_user(s, role))
                start = time.perf_counter()
                if fn is None:
                    figures.queue_counts = lambda c: {}
                    try:
                        figures.dashboard(ctx)
                    finally:
                        figures.queue_counts = original
                    size = 0
                else:
                    size = fn(ctx)
                samples[name].append((time.perf_counter() - start) * 1000)
                sizes[name] = size
    engine.dispose()
    out = {}
    for name, values in samples.items():
        values.sort()
        out[name] = (statistics.median(values), values[int(0.95 * (len(values) - 1))], sizes[name])
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=150_000)
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--backend", choices=("sqlite", "postgresql", "both"), default="sqlite")
    args = parser.parse_args(argv)
    backends = ("sqlite", "postgresql") if args.backend == "both" else (args.backend,)
    results = {}
    with databases(backends, "bench_queues") as urls:
        for backend, url in urls:
            started = time.perf_counter()
            load_cases.load(url, args.cases)
            print(f"  {backend:<10} loaded {args.cases:,} cases in "
                  f"{time.perf_counter() - started:.1f} s", flush=True)
            results[backend] = measure(url, args.repeat)
    for backend, rows in results.items():
        base = rows["case list (one page by state)"][1]
        print(f"\n{backend}, {args.cases:,} cases, {args.repeat} runs each")
        print(f"{'operation':<32}{'p50 ms':>9}{'p95 ms':>9}{'p95 × list':>12}{'rows':>7}")
        for name, (p50, p95, size) in rows.items():
            print(f"{name:<32}{p50:>9.1f}{p95:>9.1f}{p95 / base:>12.2f}{size:>7}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
