"""Indexed case search at programme scale (issues 11 and 13): p50/p95 of name, reference
and V-number searches against a one-page list by state, on 150,000 cases, on SQLite and on
PostgreSQL. Target: every search's p95 within 3× the list's p95, on both databases.

Run from the project root:

    .venv/bin/python bench/bench_search.py [--cases N] [--repeat N]
                                           [--backend sqlite|postgresql|both]

Each database is migrated by Alembic and filled with SQLAlchemy Core bulk inserts of
plain dicts: five teams, cases spread over the states, 1–4 participants each. Names are
drawn from about 12,000 generated Ukrainian family names (root + suffix, Cyrillic, with
the KMU 2010 Latin spelling as on the passport) with a Zipf-like spread, so a few names
are common and most are rare, and 40 given names. The search index is then built by
``returnprog.search.reindex`` (the migration's backfill), timed on its own.

Measured through ``services.cases.list_cases``, each call in its own session like a web
request, the operations taking turns (round robin), as a counsellor of the first team
(one page of 25 plus the total count):

- list: filtered by the most common state — the baseline;
- full name (Latin, given family) and full name (Cyrillic, family given) of a random
  principal;
- the most common family name alone (the worst case: ~1.5 % of all cases match);
- a partial case reference (its six digits) and a partial V-number (six digits).

Prints p50/p95 per operation, each as a multiple of the list's, and the mean number of
cases found (the total the page reports). Compare ratios, not milliseconds: they depend
on the machine and what else runs on it.
"""
from __future__ import annotations

import argparse
import datetime as dt
import random
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchdb import databases  # noqa: E402
from sqlalchemy import insert, select, text  # noqa: E402
from sqlmodel import Session  # noqa: E402

from returnprog import db as dbmod  # noqa: E402
from returnprog import search  # noqa: E402
from returnprog.models import Case, Participant, ReferenceCounter, Team, User  # noqa: E402
from returnprog.policy import DEFAULT_POLICY  # noqa: E402
from returnprog.services import Context  # noqa: E402
from returnprog.services import cases as case_service  # noqa: E402

TODAY = dt.date.today()
NOW = dt.datetime.now(dt.timezone.utc)
TEAMS = ("Team Noord", "Team Zuid", "Team Oost", "Team West", "Team Midden")
STATES = {"intake": 18, "committed": 10, "asylum_withdrawn": 9, "departure_agreed": 25,
          "support_paid": 5, "departed": 18, "left_programme": 7, "rejected": 3, "lapsed": 5}
LIST_STATE = max(STATES, key=STATES.get)
ROOTS = ("Коваль", "Шевч", "Бондар", "Ткач", "Кравч", "Мельн", "Бой", "Олійн", "Лис",
         "Марч", "Руд", "Савч", "Гриц", "Петр", "Іван", "Павл", "Сидор", "Мороз", "Кузьм",
         "Левч", "Гончар", "Кучер", "Пономар", "Романч", "Тимош", "Федор", "Яковл", "Юрч",
         "Зінч", "Остап", "Дорош", "Клим", "Гаврил", "Семен", "Максим", "Назар", "Степан",
         "Білог", "Чорн", "Сір", "Зелен", "Кривон", "Доброволь", "Вишн", "Ворон", "Голуб",
         "Соловй", "Ластів", "Журавл", "Орл", "Сокол", "Вовч", "Ведмед", "Заєц", "Лисиц",
         "Куліш", "Гребен", "Дуб", "Явор", "Берез", "Калин", "Липов", "Тополь", "Грушев",
         "Яблон", "Вишнев", "Горіх", "Козак", "Гетьман", "Сотник", "Осадч", "Мирон",
         "Терещ", "Харч", "Щерб", "Ющ", "Єрем", "Їжак", "Цимбал", "Чуприн")
MIDDLES = ("", "ан", "ен", "ин", "ов", "ик", "ар", "ич", "ак", "ун", "ен", "ир", "ал",
           "ець", "ій", "ус", "еш", "ох", "уш", "ав")
SUFFIXES = ("енко", "чук", "ук", "юк", "ич", "ський", "ко", "ак", "ов", "ець", "ишин",
            "ович", "ан", "ій", "ар", "ник", "ченко")
GIVEN = ("Олена", "Оксана", "Ірина", "Андрій", "Тарас", "Микола", "Наталія", "Дмитро",
         "Юлія", "Сергій", "Катерина", "Богдан", "Олександра", "Олександр", "Віктор",
         "Людмила", "Тетяна", "Ігор", "Василь", "Галина", "Марія", "Петро", "Іван", "Анна",
         "Світлана", "Юрій", "Ганна", "Євген", "Зоя", "Ярослав", "Лариса", "Роман",
         "Вікторія", "Максим", "Софія", "Олег", "Валентина", "Артем", "Надія", "Григорій")
CHUNK = 5_000


def latin(cyrillic: str) -> str:
    """The passport (KMU 2010) spelling, capitalised like a name."""
    return search.kmu2010(cyrillic.casefold()).capitalize()


def family_names(rng: random.Random) -> list[str]:
    names = sorted({r + m + s for r in ROOTS for m in MIDDLES for s in SUFFIXES})
    rng.shuffle(names)
    return names


# --- seeding ------------------------------------------------------------------------------

def seed(url: str, total: int, rng_seed: int = 7) -> tuple[float, float, str]:
    """Fill the migrated database at ``url`` with ``total`` cases and build the index;
    returns (seconds to load, seconds to index, the most common family name)."""
    started = time.perf_counter()
    rng = random.Random(rng_seed)
    families = family_names(rng)
    cum, acc = [], 0.0
    for rank in range(len(families)):
        acc += 1 / (rank + 1) ** 0.7
        cum.append(acc)
    engine = dbmod.make_engine(url)
    with engine.begin() as conn:
        conn.execute(insert(Team.__table__), [{"id": i + 1, "name": n} for i, n in enumerate(TEAMS)])
        conn.execute(insert(User.__table__), [
            {"id": t, "email": f"counsellor{t}@dtenv.example", "name": f"Counsellor {t}",
             "role": "counsellor", "person": f"@bench{t}", "team_id": t, "password_hash": "x",
             "active": True, "failed_logins": 0, "locked_until": None, "session_epoch": 0,
             "created_at": NOW} for t in range(1, len(TEAMS) + 1)])
        conn.execute(insert(ReferenceCounter.__table__), [{"year": TODAY.year, "last": total}])
    states, state_weights = list(STATES), list(STATES.values())
    v_counter = 0
    for start in range(1, total + 1, CHUNK):
        cases, people = [], []
        chosen = rng.choices(families, cum_weights=cum, k=CHUNK)
        for offset, cid in enumerate(range(start, min(start + CHUNK, total + 1))):
            state = rng.choices(states, state_weights)[0]
            team = rng.randint(1, len(TEAMS))
            deadline = (TODAY + dt.timedelta(days=rng.randint(7, 90))
                        if state in ("departure_agreed", "support_paid") else None)
            created = NOW - dt.timedelta(days=rng.randint(0, 365), seconds=rng.randint(0, 86400))
            cases.append({"id": cid, "reference": f"VRP-{TODAY.year}-{cid:06d}", "state": state,
                          "version": 1, "team_id": team, "counsellor_id": team,
                          "departure_deadline": deadline, "destination_oblast": "UA-30",
                          "destination_place": "Kyiv", "intake_notes": None,
                          "departed_on": None, "departure_evidence": None,
                          "closing_reason": None, "created_at": created, "updated_at": created})
            family = chosen[offset]
            for n in range(rng.choices((1, 2, 3, 4), (35, 30, 20, 15))[0]):
                v_counter += 1
                given = rng.choice(GIVEN)
                people.append({
                    "case_id": cid, "is_principal": n == 0,
                    "relationship": "principal" if n == 0 else ("spouse" if n == 1 else "child"),
                    "given_names_latin": latin(given), "family_name_latin": latin(family),
                    "given_names_cyrillic": given, "family_name_cyrillic": family,
                    "date_of_birth": dt.date(1980, 1, 1) if n < 2 else dt.date(2015, 1, 1),
                    "v_number": f"{rng.randrange(10**9, 10**10)}", "bsn": None,
                    "travel_document_number": f"FX{v_counter:07d}",
                    "email": f"p{v_counter}@example.org", "phone": None, "language": "uk",
                    "asylum_application_pending": True})
        with engine.begin() as conn:
            conn.execute(insert(Case.__table__), cases)
            conn.execute(insert(Participant.__table__), people)
    loaded = time.perf_counter() - started
    started = time.perf_counter()
    with engine.begin() as conn:
        search.reindex(conn)
    indexed = time.perf_counter() - started
    if engine.dialect.name == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM ANALYZE"))
    else:
        with engine.begin() as conn:
            conn.execute(text("ANALYZE"))
    engine.dispose()
    return loaded, indexed, families[0]


# --- measuring ------------------------------------------------------------------------------

def percentiles(samples: list[float]) -> tuple[float, float]:
    """p50 and p95 in milliseconds."""
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return statistics.median(ordered) * 1000, p95 * 1000


def measure(url: str, repeat: int, common: str) -> dict[str, tuple[float, float, float]]:
    """p50/p95 (ms) and total matches (mean) of each operation at ``url``."""
    engine = dbmod.make_engine(url)
    rng = random.Random(11)
    with Session(engine, expire_on_commit=False) as s:
        actor = s.get(User, 1)
        principals = s.execute(
            select(Case.reference, Participant.given_names_latin, Participant.family_name_latin,
                   Participant.given_names_cyrillic, Participant.family_name_cyrillic,
                   Participant.v_number)
            .join(Participant, Participant.case_id == Case.id)
            .where(Case.team_id == 1, Participant.is_principal)).all()

    def run(filters):
        with Session(engine, expire_on_commit=False) as s:
            ctx = Context(session=s, policy=DEFAULT_POLICY, actor=actor, ip="127.0.0.1",
                          user_agent="bench")
            return case_service.list_cases(ctx, {"page": 1, "per_page": 25, **filters})["total"]

    queries = {
        f"list (state={LIST_STATE}, 25/page)": lambda p: {"state": LIST_STATE},
        "search full name (Latin)": lambda p: {"q": f"{p[1]} {p[2]}"},
        "search full name (Cyrillic, reversed)": lambda p: {"q": f"{p[4]} {p[3]}"},
        f"search most common family ({latin(common)})": lambda p: {"q": latin(common)},
        "search partial reference (6 digits)": lambda p: {"q": p[0][-6:]},
        "search partial V-number (6 digits)": lambda p: {"q": p[5][2:8]},
    }
    for make in queries.values():
        for _ in range(5):
            run(make(rng.choice(principals)))
    # Round robin: a burst of load on the shared machine hits every operation alike
    # instead of the one whose turn it happened to be.
    samples = {name: [] for name in queries}
    totals = {name: [] for name in queries}
    for _ in range(repeat):
        for name, make in queries.items():
            filters = make(rng.choice(principals))
            started = time.perf_counter()
            totals[name].append(run(filters))
            samples[name].append(time.perf_counter() - started)
    results = {}
    for name in queries:
        if name.startswith("search") and min(totals[name]) < 1:
            raise SystemExit(f"{name}: a search found nothing")
        results[name] = (*percentiles(samples[name]), statistics.mean(totals[name]))
    engine.dispose()
    return results


def print_table(backend: str, total: int, results: dict) -> None:
    base50, base = next(iter(results.values()))[:2]
    head = (f"{backend:<10} {'operation':<44} {'p50 ms':>8} {'p95 ms':>8} {'p50/list':>9} "
            f"{'p95/list':>9} {'found':>8}")
    print(head)
    print("-" * len(head))
    for op, (p50, p95, found) in results.items():
        print(f"{backend:<10} {op:<44} {p50:8.2f} {p95:8.2f} {p50 / base50:8.2f}x "
              f"{p95 / base:8.2f}x {found:8.0f}")
    worst = max(v[1] for k, v in results.items() if k.startswith("search"))
    verdict = "meets" if worst <= 3 * base else "MISSES"
    print(f"{'':<10} worst search p95 = {worst / base:.2f}× list p95 at {total:,} cases "
          f"({verdict} the ≤ 3× target)\n")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=150_000)
    parser.add_argument("--repeat", type=int, default=200)
    parser.add_argument("--backend", choices=("sqlite", "postgresql", "both"), default="both")
    args = parser.parse_args(argv)
    backends = ("sqlite", "postgresql") if args.backend == "both" else (args.backend,)
    print(f"bench_search: {args.cases:,} cases, {args.repeat} repetitions per operation, "
          f"as a counsellor of the first of {len(TEAMS)} teams", flush=True)
    all_results = {}
    with databases(backends, "bench_search") as urls:
        for backend, url in urls:
            loaded, indexed, common = seed(url, args.cases)
            print(f"  {backend:<10} loaded {args.cases:,} cases in {loaded:.1f} s, "
                  f"indexed them in {indexed:.1f} s", flush=True)
            all_results[backend] = measure(url, args.repeat, common)
    print()
    for backend, results in all_results.items():
        print_table(backend, args.cases, results)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
