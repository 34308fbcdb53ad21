"""Core operations at programme scale: p50/p95 of the three things every counsellor does
all day, on a database of 150,000 cases, on SQLite and on PostgreSQL.

Run from the project root:

    .venv/bin/python bench/bench_core.py [--cases N] [--baseline-cases N] [--repeat N]
                                         [--backend sqlite|postgresql|both]

Each database is migrated by Alembic and then filled with SQLAlchemy Core bulk inserts of
plain dicts (no ORM objects, no services): cases spread over every state and over a few
teams, 1–4 participants each (adults and minors, Latin and Cyrillic names, V-numbers),
the open cases' V-numbers, and one hash-chained ``open_case`` audit event per case (the
audit head row from the migration is moved to the end of the chain, so the services keep
appending to a valid chain). Then, through the real service functions, each in its own
session like a web request, as a counsellor of the first team:

- list: ``services.cases.list_cases`` filtered by state (the most common state, one page of
  25, with the total count);
- read: ``services.cases.read_case`` of a random case of the team (participants,
  documents, payments, audit trail, allowed actions) — which also writes and commits a
  ``view_case`` audit event;
- transition: ``services.cases.perform(..., "leave_programme", {"reason": ...})`` on a
  different intake case each time (guards, compare-and-set, audit event, commit);
- search (extra): ``list_cases`` with a free-text ``q`` on a family name.

The baseline, measured in the same run on the same machine: a ``SELECT 1`` round trip and
the same operations on a database of 1,500 cases. The ratios show how the cost grows with
a hundredfold more data; ~1× means it does not grow.
"""
from __future__ import annotations

import argparse
import datetime as dt
import random
import secrets
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sqlalchemy import insert, select, text, update  # noqa: E402
from sqlmodel import Session  # noqa: E402

from returnprog import audit, search  # noqa: E402
from returnprog import db as dbmod  # noqa: E402
from returnprog.models import (AuditEvent, AuditHead, Case, OpenVNumber, Participant,  # noqa: E402
                               ReferenceCounter, Team, User)
from returnprog.policy import DEFAULT_POLICY  # noqa: E402
from returnprog.services import Context  # noqa: E402
from returnprog.services import cases as case_service  # noqa: E402

TODAY = dt.date.today()
NOW = dt.datetime.now(dt.timezone.utc)
TEAMS = ("Team Noord", "Team Zuid", "Team Oost", "Team West", "Team Midden")
COUNSELLORS_PER_TEAM = 20
# Share of cases per state (a programme a year in: most in the middle of the line).
STATE_WEIGHTS = {"intake": 18, "committed": 10, "asylum_withdrawn": 9, "departure_agreed": 25,
                 "support_paid": 5, "departed": 18, "left_programme": 7, "rejected": 3,
                 "lapsed": 5}
FINAL = {"departed", "left_programme", "rejected", "lapsed"}
LIST_STATE = max(STATE_WEIGHTS, key=STATE_WEIGHTS.get)
GIVEN = [("Olena", "Олена"), ("Oksana", "Оксана"), ("Iryna", "Ірина"), ("Andrii", "Андрій"),
         ("Taras", "Тарас"), ("Mykola", "Микола"), ("Nataliia", "Наталія"), ("Dmytro", "Дмитро"),
         ("Yulia", "Юлія"), ("Serhii", "Сергій"), ("Kateryna", "Катерина"), ("Bohdan", "Богдан")]
FAMILY = [("Kovalenko", "Коваленко"), ("Shevchenko", "Шевченко"), ("Bondarenko", "Бондаренко"),
          ("Tkachenko", "Ткаченко"), ("Kravchenko", "Кравченко"), ("Melnyk", "Мельник"),
          ("Boiko", "Бойко"), ("Oliinyk", "Олійник"), ("Lysenko", "Лисенко"),
          ("Marchenko", "Марченко"), ("Rudenko", "Руденко"), ("Savchenko", "Савченко")]
OBLASTS = ["UA-30", "UA-32", "UA-46", "UA-63", "UA-51", "UA-12", "UA-05", "UA-18"]
CHUNK = 5_000


# --- seeding ------------------------------------------------------------------------------

def seed(url: str, total: int, rng_seed: int = 7) -> float:
    """Fill the migrated database at ``url`` with ``total`` cases; returns seconds taken."""
    started = time.perf_counter()
    rng = random.Random(rng_seed)
    engine = dbmod.make_engine(url)
    states = list(STATE_WEIGHTS)
    weights = list(STATE_WEIGHTS.values())
    with engine.begin() as conn:
        conn.execute(insert(Team.__table__), [{"id": i + 1, "name": n} for i, n in enumerate(TEAMS)])
        users, uid = [], 0
        for team in range(1, len(TEAMS) + 1):
            for role, count in (("counsellor", COUNSELLORS_PER_TEAM), ("supervisor", 2)):
                for _ in range(count):
                    uid += 1
                    users.append({"id": uid, "email": f"{role}{uid}@dtenv.example",
                                  "name": f"{role.title()} {uid}", "role": role, "team_id": team,
                                  "password_hash": "x", "active": True, "failed_logins": 0,
                                  "locked_until": None, "session_epoch": 0, "created_at": NOW})
        conn.execute(insert(User.__table__), users)
        conn.execute(insert(ReferenceCounter.__table__), [{"year": TODAY.year, "last": total}])
    counsellors = {t: [u["id"] for u in users if u["team_id"] == t and u["role"] == "counsellor"]
                   for t in range(1, len(TEAMS) + 1)}
    seq, prev_hash, v_counter = 0, audit.GENESIS, 0
    for start in range(1, total + 1, CHUNK):
        cases, people, open_v, events = [], [], [], []
        for cid in range(start, min(start + CHUNK, total + 1)):
            state = rng.choices(states, weights)[0]
            team = rng.randint(1, len(TEAMS))
            deadline = departed_on = evidence = reason = None
            if state in ("departure_agreed", "support_paid"):
                deadline = TODAY + dt.timedelta(days=rng.randint(7, 90))
            elif state in ("departed", "lapsed"):
                deadline = TODAY - dt.timedelta(days=rng.randint(1, 200))
                if state == "departed":
                    departed_on, evidence = deadline - dt.timedelta(days=rng.randint(0, 5)), "boarding"
            if state in ("left_programme", "rejected", "lapsed"):
                reason = "seeded for the benchmark"
            created = NOW - dt.timedelta(days=rng.randint(0, 365), seconds=rng.randint(0, 86400))
            reference = f"VRP-{TODAY.year}-{cid:06d}"
            cases.append({
                "id": cid, "reference": reference, "state": state, "version": 1,
                "team_id": team, "counsellor_id": rng.choice(counsellors[team]),
                "departure_deadline": deadline, "destination_oblast": rng.choice(OBLASTS),
                "destination_place": "Kyiv", "intake_notes": None, "departed_on": departed_on,
                "departure_evidence": evidence, "closing_reason": reason,
                "created_at": created, "updated_at": created})
            family_latin, family_cyr = rng.choice(FAMILY)
            size = rng.choices((1, 2, 3, 4), (35, 30, 20, 15))[0]
            for n in range(size):
                v_counter += 1
                adult = n < 2 or rng.random() < 0.2
                born = (TODAY - dt.timedelta(days=rng.randint(19 * 365, 70 * 365)) if adult
                        else TODAY - dt.timedelta(days=rng.randint(365, 17 * 365)))
                given_latin, given_cyr = rng.choice(GIVEN)
                v_number = f"{2_000_000_000 + v_counter:010d}"
                people.append({
                    "case_id": cid, "is_principal": n == 0,
                    "relationship": "principal" if n == 0 else ("spouse" if n == 1 else "child"),
                    "given_names_latin": given_latin, "family_name_latin": family_latin,
                    "given_names_cyrillic": given_cyr, "family_name_cyrillic": family_cyr,
                    "date_of_birth": born, "v_number": v_number, "bsn": None,
                    "travel_document_number": f"FX{v_counter:07d}",
                    "email": f"p{v_counter}@example.org" if adult else None, "phone": None,
                    "language": rng.choice(("uk", "uk", "uk", "ru", "en")),
                    "asylum_application_pending": True})
                if state not in FINAL:
                    open_v.append({"v_number": v_number, "case_id": cid})
            seq += 1
            details = f'{{"household_size": {size}, "reference": "{reference}"}}'
            salt = secrets.token_hex(16)
            actor = f"counsellor{cases[-1]['counsellor_id']}@dtenv.example"
            event = {"chain_version": audit.CHAIN_VERSION, "seq": seq, "at": created,
                     "actor_id": cases[-1]["counsellor_id"], "actor": actor, "case_id": cid,
                     "action": "open_case", "from_state": None, "to_state": "intake",
                     "details": details, "ip": None, "prev_hash": prev_hash,
                     "personal_salt": salt}
            event["personal_digest"] = audit.personal_digest(salt, details, None)
            digest = audit.digest(event)
            events.append({**event, "hash": digest})
            prev_hash = digest
        with engine.begin() as conn:
            conn.execute(insert(Case.__table__), cases)
            conn.execute(insert(Participant.__table__), people)
            if open_v:
                conn.execute(insert(OpenVNumber.__table__), open_v)
            conn.execute(insert(AuditEvent.__table__), events)
    with engine.begin() as conn:
        # The rows went in around the services: build the search index the way the
        # migration's backfill does, or a search would find nothing.
        search.reindex(conn)
        conn.execute(update(AuditHead.__table__).where(AuditHead.__table__.c.id == 1)
                     .values(seq=seq, hash=prev_hash))
        if engine.dialect.name == "postgresql":
            # Explicit ids were inserted: move the sequences past them.
            for table in ("case", "team", "user"):
                conn.execute(text(f"SELECT setval(pg_get_serial_sequence('\"{table}\"', 'id'), "
                                  f"(SELECT max(id) FROM \"{table}\"))"))
    if engine.dialect.name == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM ANALYZE"))
    else:
        with engine.begin() as conn:
            conn.execute(text("ANALYZE"))
    engine.dispose()
    return time.perf_counter() - started


# --- measuring ------------------------------------------------------------------------------

def percentiles(samples: list[float]) -> tuple[float, float]:
    """p50 and p95 in milliseconds."""
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return statistics.median(ordered) * 1000, p95 * 1000


def measure(url: str, repeat: int) -> dict[str, tuple[float, float]]:
    """p50/p95 of each operation on the seeded database at ``url``."""
    engine = dbmod.make_engine(url)
    rng = random.Random(11)
    with Session(engine, expire_on_commit=False) as s:
        # One counsellor per team; the first team's is "the" user of list, read and search.
        counsellors = {}
        for user in s.execute(select(User).where(User.role == "counsellor").order_by(User.id)
                              ).scalars():
            counsellors.setdefault(user.team_id, user)
        actor = counsellors[1]
        refs = s.execute(select(Case.reference).where(Case.team_id == 1)).scalars().all()
        # Transitions need a fresh intake case each time: any team's, by that team's counsellor.
        intake = s.execute(select(Case.reference, Case.team_id).where(Case.state == "intake")
                           .order_by(Case.id)).all()
    warm = 5
    if len(intake) < repeat + warm:
        raise SystemExit(f"only {len(intake)} intake cases; need {repeat + warm} for the "
                         "transitions: seed more cases or lower --repeat")
    rng.shuffle(intake)

    def timed(op, n=repeat) -> tuple[float, float]:
        for _ in range(warm):
            op()
        samples = []
        for _ in range(n):
            started = time.perf_counter()
            op()
            samples.append(time.perf_counter() - started)
        return percentiles(samples)

    def ctx(session, user=actor):
        return Context(session=session, policy=DEFAULT_POLICY, actor=user, ip="127.0.0.1",
                       user_agent="bench")

    def select_1():
        with engine.connect() as conn:
            conn.execute(text("SELECT 1")).scalar_one()

    def list_page():
        with Session(engine, expire_on_commit=False) as s:
            page = case_service.list_cases(ctx(s), {"state": LIST_STATE, "page": 1, "per_page": 25})
            assert len(page["items"]) == 25 or page["total"] < 25

    def read_one():
        with Session(engine, expire_on_commit=False) as s:
            case_service.read_case(ctx(s), rng.choice(refs))

    transition_refs = iter(intake)

    def transition():
        ref, team = next(transition_refs)
        with Session(engine, expire_on_commit=False) as s:
            case = case_service.perform(ctx(s, counsellors[team]), ref, "leave_programme",
                                        {"reason": "found work in the Netherlands"})
            assert case.state == "left_programme"

    def search():
        with Session(engine, expire_on_commit=False) as s:
            case_service.list_cases(ctx(s), {"q": rng.choice(FAMILY)[0].lower(), "page": 1,
                                             "per_page": 25})

    results = {
        "SELECT 1 round trip": timed(select_1),
        f"list (state={LIST_STATE}, 25/page)": timed(list_page),
        "read one case (+ view audit)": timed(read_one),
        "transition (leave_programme)": timed(transition),
        "search q=family name (extra)": timed(search, max(20, repeat // 10)),
    }
    # The seeded chain plus everything the services appended must still verify.
    started = time.perf_counter()
    with Session(engine) as s:
        report = audit.verify(s)
    if not report.ok:
        raise SystemExit(f"audit chain broken after the run: {report.reason}")
    print(f"    audit chain intact: {report.events:,} events, verified in "
          f"{time.perf_counter() - started:.1f} s", flush=True)
    engine.dispose()
    return results


# --- main ------------------------------------------------------------------------------------

def run_backend(backend: str, sizes: tuple[int, int], repeat: int, tmp: Path, pg=None):
    out = {}
    for total in sizes:
        if backend == "sqlite":
            url = f"sqlite:///{tmp / f'bench_{total}.sqlite'}"
        else:
            name = f"bench_{total}"
            pg.create_database(name)
            url = pg.url(name)
        dbmod.upgrade(url)
        seconds = seed(url, total)
        print(f"  {backend:<10} seeded {total:>9,} cases in {seconds:6.1f} s", flush=True)
        out[total] = measure(url, repeat)
    return out


def print_table(backend: str, big: int, small: int, results: dict) -> None:
    ops = list(results[big])
    head = (f"{'backend':<10} {'operation':<40} {f'N={big:,}':>17} {f'N={small:,}':>17} "
            f"{'ratio big/small':>16}")
    print(head)
    print(f"{'':<10} {'':<40} {'p50 ms':>8} {'p95 ms':>8} {'p50 ms':>8} {'p95 ms':>8} "
          f"{'p50':>7} {'p95':>8}")
    print("-" * len(head))
    for op in ops:
        b50, b95 = results[big][op]
        s50, s95 = results[small][op]
        print(f"{backend:<10} {op:<40} {b50:8.2f} {b95:8.2f} {s50:8.2f} {s95:8.2f} "
              f"{b50 / s50:6.2f}x {b95 / s95:7.2f}x")
    base = results[big]["SELECT 1 round trip"][0]
    print(f"{'':<10} in SELECT-1 round trips at N={big:,} (p50): " + ", ".join(
        f"{op.split(' (')[0]} {results[big][op][0] / base:.0f}" for op in ops[1:]))
    print()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=150_000)
    parser.add_argument("--baseline-cases", type=int, default=1_500)
    parser.add_argument("--repeat", type=int, default=200)
    parser.add_argument("--backend", choices=("sqlite", "postgresql", "both"), default="both")
    args = parser.parse_args(argv)
    # ~18% of the cases are in intake: each transition needs a fresh one.
    minimum = (args.repeat + 5) * sum(STATE_WEIGHTS.values()) // STATE_WEIGHTS["intake"] * 12 // 10
    if min(args.cases, args.baseline_cases) < minimum:
        parser.error(f"with --repeat {args.repeat} each database needs at least ~{minimum} cases "
                     "(one intake case per transition)")
    backends = ("sqlite", "postgresql") if args.backend == "both" else (args.backend,)
    sizes = (args.cases, args.baseline_cases)
    started = time.perf_counter()
    print(f"bench_core: {args.cases:,} cases vs baseline {args.baseline_cases:,}; "
          f"{args.repeat} repetitions per operation; {len(TEAMS)} teams, measured as one "
          f"counsellor of the first team", flush=True)
    all_results = {}
    with tempfile.TemporaryDirectory(prefix="bench_core_") as tmp:
        pg = None
        try:
            for backend in backends:
                if backend == "postgresql":
                    sys.path.insert(0, str(ROOT / "tests"))
                    from pgserver import PostgresServer

                    pg = PostgresServer().start()
                all_results[backend] = run_backend(backend, sizes, args.repeat, Path(tmp), pg)
        finally:
            if pg is not None:
                pg.stop()
    print()
    for backend, results in all_results.items():
        print_table(backend, args.cases, args.baseline_cases, results)
    print(f"total run time {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
