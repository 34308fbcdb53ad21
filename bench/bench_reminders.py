"""What a reminder sweep costs as the number of cases grows: the cost must follow the number
of reminders due, not the number of cases.

Run from the project root:  .venv/bin/python bench/bench_reminders.py [--backend sqlite|postgresql|both] [--repeat N]

Three databases are built with bulk inserts (two participants per case: an adult with an
e-mail address and a minor; cases in every state, ~45% in ``departure_agreed``, deadlines
spread from 30 days ago to 90 days ahead, and cases in other states on the due dates too):

- 150,000 cases, 1,500 due today (1%)
- 15,000 cases, 150 due today (1%)
- 15,000 cases, 1,500 due today (10%) — the same number due as the big one

"Due" means a case in ``departure_agreed`` whose deadline is today + 14, 7, 2 or 1 days
(participant + counsellor reminders) or was yesterday (supervisor alerts). Timed:

- first sweep of the day: finds the due cases and writes their messages to the outbox
  (the outbox is emptied between repetitions, outside the timing);
- repeat sweep the same day: finds the same cases, writes nothing;
- catch-up sweep (a scheduler back from an outage; looks back 14 days): for reference.
"""
from __future__ import annotations

import argparse
import datetime as dt
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sqlalchemy import delete, insert, text  # noqa: E402
from sqlmodel import Session  # noqa: E402

from returnprog import db as dbmod  # noqa: E402
from returnprog.models import Case, OutboxMessage, Participant, Team, User  # noqa: E402
from returnprog.policy import DEFAULT_POLICY  # noqa: E402
from returnprog.services import reminders as service  # noqa: E402

TODAY = dt.date(2027, 2, 1)
NOW = dt.datetime(2027, 2, 1, 9, tzinfo=dt.timezone.utc)
STATES = ["intake", "committed", "asylum_withdrawn", "support_paid", "departed", "lapsed",
          "left_programme"]


def build(url: str, total: int, due: int, seed: int = 1) -> None:
    """Fill a migrated database with ``total`` cases of which ``due`` have a reminder or an
    alert due on TODAY."""
    rng = random.Random(seed)
    engine = dbmod.make_engine(url)
    policy = DEFAULT_POLICY
    due_dates = [TODAY + dt.timedelta(days=n) for n in policy.reminder_days]
    due_dates.append(TODAY - dt.timedelta(days=policy.overdue_escalation_days))
    other_dates = [TODAY + dt.timedelta(days=k) for k in range(-30, 91)
                   if TODAY + dt.timedelta(days=k) not in due_dates]
    with engine.begin() as conn:
        conn.execute(insert(Team.__table__), [{"id": 1, "name": "Team Noord"}])
        users = [{"id": i, "email": f"c{i}@dtenv.example", "name": f"Counsellor {i}",
                  "role": "counsellor", "team_id": 1, "password_hash": "x", "active": True,
                  "failed_logins": 0, "session_epoch": 0, "created_at": NOW}
                 for i in range(1, 51)]
        users += [{"id": 50 + i, "email": f"s{i}@dtenv.example", "name": f"Supervisor {i}",
                   "role": "supervisor", "team_id": 1, "password_hash": "x", "active": True,
                   "failed_logins": 0, "session_epoch": 0, "created_at": NOW}
                  for i in range(1, 4)]
        conn.execute(insert(User.__table__), users)
    chunk = 10_000
    for start in range(0, total, chunk):
        cases, people = [], []
        for cid in range(start + 1, min(start + chunk, total) + 1):
            if cid <= due:
                state, deadline = "departure_agreed", due_dates[cid % len(due_dates)]
            else:
                state = "departure_agreed" if rng.random() < 0.45 else rng.choice(STATES)
                if state == "departure_agreed":
                    deadline = rng.choice(other_dates)
                elif state in ("support_paid", "departed", "lapsed"):
                    deadline = rng.choice(other_dates + due_dates)  # on due dates too
                else:
                    deadline = None
            cases.append({"id": cid, "reference": f"VRP-2027-{cid:06d}", "state": state,
                          "version": 1, "team_id": 1, "counsellor_id": 1 + cid % 50,
                          "departure_deadline": deadline, "destination_oblast": "UA-30",
                          "created_at": NOW, "updated_at": NOW})
            for k, (dob, mail) in enumerate(((dt.date(1985, 1, 1), True),
                                             (dt.date(2016, 1, 1), False))):
                people.append({"case_id": cid, "is_principal": k == 0,
                               "relationship": "principal" if k == 0 else "child",
                               "given_names_latin": f"Olena{cid}", "family_name_latin": "Koval",
                               "given_names_cyrillic": "Олена", "family_name_cyrillic": "Коваль",
                               "date_of_birth": dob, "v_number": f"{cid * 2 + k:010d}",
                               "email": f"p{cid}@example.org" if mail else None,
                               "language": "uk", "asylum_application_pending": False})
        with engine.begin() as conn:
            conn.execute(insert(Case.__table__), cases)
            conn.execute(insert(Participant.__table__), people)
    if not url.startswith("sqlite"):
        with engine.begin() as conn:  # what autovacuum does on a live server
            conn.execute(text("ANALYZE"))
    # SQLite: no ANALYZE — a fresh embedded database has no statistics either.
    engine.dispose()


def time_sweeps(url: str, repeat: int) -> dict:
    engine = dbmod.make_engine(url)
    out = {"first": [], "repeat": [], "catchup": []}
    yesterday = TODAY - dt.timedelta(days=1)
    with Session(engine, expire_on_commit=False) as session:
        for _ in range(repeat):
            session.execute(delete(OutboxMessage))
            session.commit()
            t = time.perf_counter()
            report = service.sweep(session, DEFAULT_POLICY, TODAY, now=NOW, last_swept=yesterday)
            out["first"].append(time.perf_counter() - t)
            t = time.perf_counter()
            again = service.sweep(session, DEFAULT_POLICY, TODAY, now=NOW, last_swept=TODAY)
            out["repeat"].append(time.perf_counter() - t)
            assert again.inserted == 0
            t = time.perf_counter()
            service.sweep(session, DEFAULT_POLICY, TODAY, now=NOW, last_swept=None)
            out["catchup"].append(time.perf_counter() - t)
        out["report"] = report
        if url.startswith("sqlite"):
            dates = ", ".join(f"'{d}'" for d in sorted(
                TODAY + dt.timedelta(days=n) for n in DEFAULT_POLICY.reminder_days))
            out["plan"] = " | ".join(r[-1] for r in session.execute(text(
                "EXPLAIN QUERY PLAN SELECT id, state FROM \"case\" "
                f"WHERE departure_deadline IN ({dates})")))
        else:
            dates = ", ".join(f"DATE '{d}'" for d in sorted(
                TODAY + dt.timedelta(days=n) for n in DEFAULT_POLICY.reminder_days))
            out["plan"] = " | ".join(r[0].strip() for r in session.execute(text(
                f"EXPLAIN SELECT id, state FROM \"case\" WHERE departure_deadline IN ({dates})")))
    engine.dispose()
    return out


def run(backend: str, repeat: int) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="bench-reminders-"))
    server = None
    if backend == "postgresql":
        sys.path.insert(0, str(ROOT / "tests"))
        from pgserver import PostgresServer

        server = PostgresServer().start()
    results = {}
    try:
        for total, due in ((150_000, 1_500), (15_000, 150), (15_000, 1_500)):
            name = f"b{total}_{due}"
            if server is not None:
                server.create_database(name)
                url = server.url(name)
            else:
                url = f"sqlite:///{tmp / (name + '.sqlite')}"
            dbmod.upgrade(url)
            t = time.perf_counter()
            build(url, total, due)
            built = time.perf_counter() - t
            r = time_sweeps(url, repeat)
            results[(total, due)] = r
            rep = r["report"]
            print(f"[{backend}] {total:>7,} cases, {due:>5,} due ({due / total:.0%}): "
                  f"first sweep {statistics.median(r['first']) * 1000:7.1f} ms "
                  f"({rep.inserted:,} messages written), "
                  f"repeat {statistics.median(r['repeat']) * 1000:6.1f} ms, "
                  f"catch-up {statistics.median(r['catchup']) * 1000:7.1f} ms   "
                  f"[built in {built:.0f} s]", flush=True)
        print(f"[{backend}] plan: {results[(150_000, 1_500)]['plan']}")
        big, small, same = (results[k] for k in ((150_000, 1_500), (15_000, 150), (15_000, 1_500)))
        for label, key in (("first sweep", "first"), ("repeat sweep", "repeat")):
            b = statistics.median(big[key])
            print(f"[{backend}] {label}: 150k/1% vs 15k/1% = {b / statistics.median(small[key]):.1f}x "
                  f"(10x as many due, 10x as many cases); "
                  f"150k/1,500 due vs 15k/1,500 due = {b / statistics.median(same[key]):.2f}x "
                  f"(same number due, 10x as many cases)")
    finally:
        if server is not None:
            server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=("sqlite", "postgresql", "both"), default="sqlite")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    for backend in (("sqlite", "postgresql") if args.backend == "both" else (args.backend,)):
        run(backend, args.repeat)


if __name__ == "__main__":
    main()
