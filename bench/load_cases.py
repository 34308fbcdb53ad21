"""Fill a freshly migrated returnprog database with a programme's worth of cases, fast.

Used by ``bench/bench_web.py`` (150,000 cases) and by its smoke test (a few hundred).
Rows go straight into the tables the models define, by SQLAlchemy Core bulk inserts of
plain dicts: no ORM objects, no services, no documents (no PDFs are rendered). The database
must be at the newest schema (``flask init-db``) and hold no cases yet.

What is loaded, deterministic for a given seed:

- five teams (``Team Noord`` first), each with 20 counsellors, 2 supervisors and a finance
  officer — none of them can sign in (empty password hash). The first counsellor of team
  Noord is :data:`BENCH_USER`, about 1/100 of the cases' counsellor like every other; the
  benchmark gives it a password and an API token at each run;
- ``total`` cases spread over every state like a programme a year in, created over the
  past year in the order of their ids, each with a household of 1–6 people (principal,
  spouse, children, sometimes an adult child or a parent), Latin and Cyrillic names drawn
  from about a thousand surnames (so that a name search finds a few dozen cases, not a
  tenth of the country), V-numbers, BSNs that pass the 11-check for most adults, e-mail
  and phone for adults; the open cases' V-numbers; IND confirmations for every member of
  a case past the withdrawal; a disbursed cash payment for cases paid or departed;
- one hash-chained audit event per transition the case went through (``open_case``,
  ``confirm_commitment``, ``record_ind_confirmation`` …), chain version 2 with
  :func:`returnprog.audit.digest`, and the audit head moved to the end, so ``flask
  audit-verify`` passes and the services keep appending to a valid chain;
- two more cases of :data:`BENCH_USER` in ``departure_agreed`` with the same household shape
  (two adults, one minor): one with a trail of ``trail_events[0]`` events and one with
  ``trail_events[1]`` (the trail after the agreement: signing links, signed addenda and
  deadline extensions, in turn).

Whatever the services keep derived from these rows (the case search index, where the code
has one: ``returnprog.search.reindex``) is rebuilt at the end.
"""
from __future__ import annotations

import datetime as dt
import json
import random
import secrets
import time
from dataclasses import dataclass, field

from sqlalchemy import insert, select, text, update

from returnprog import audit
from returnprog import db as dbmod
from returnprog.models import (AuditEvent, AuditHead, Case, IndConfirmation, OpenVNumber,
                               Participant, Payment, ReferenceCounter, Team, User)

# Bump when the loaded data changes shape: cached databases of another version are not reused.
LOADER_VERSION = 2  # 2: the work-queue cache worked out after the load (issue 11)
TEAMS = ("Team Noord", "Team Zuid", "Team Oost", "Team West", "Team Midden")
COUNSELLORS_PER_TEAM = 20
# The first counsellor of team Noord: the benchmark's user, who also holds the trail cases.
BENCH_USER = "bench.counsellor@dtenv.example"
# Share of cases per state (a programme a year in: most in the middle of the line).
STATE_WEIGHTS = {"intake": 18, "committed": 10, "asylum_withdrawn": 9, "departure_agreed": 25,
                 "support_paid": 5, "departed": 18, "left_programme": 7, "rejected": 3,
                 "lapsed": 5}
FINAL = {"departed", "left_programme", "rejected", "lapsed"}
# Transitions that brought a case to its state (IND confirmations come before withdrawal).
PATHS = {
    "intake": [],
    "committed": ["confirm_commitment"],
    "asylum_withdrawn": ["confirm_commitment", "ind", "record_withdrawal"],
    "departure_agreed": ["confirm_commitment", "ind", "record_withdrawal", "agree_departure"],
    "support_paid": ["confirm_commitment", "ind", "record_withdrawal", "agree_departure",
                     "pay_support"],
    "departed": ["confirm_commitment", "ind", "record_withdrawal", "agree_departure",
                 "pay_support", "confirm_departure"],
    "left_programme": ["leave_programme"],
    "rejected": ["reject"],
    "lapsed": ["confirm_commitment", "ind", "record_withdrawal", "agree_departure", "lapse"],
}
TARGET = {"confirm_commitment": ("intake", "committed"),
          "record_withdrawal": ("committed", "asylum_withdrawn"),
          "agree_departure": ("asylum_withdrawn", "departure_agreed"),
          "pay_support": ("departure_agreed", "support_paid"),
          "confirm_departure": ("support_paid", "departed"),
          "leave_programme": ("intake", "left_programme"),
          "reject": ("intake", "rejected"),
          "lapse": ("departure_agreed", "lapsed")}
WITHDRAWN = {"asylum_withdrawn", "departure_agreed", "support_paid", "departed", "lapsed"}

GIVEN_F = [("Olena", "Олена"), ("Oksana", "Оксана"), ("Iryna", "Ірина"), ("Nataliia", "Наталія"),
           ("Yuliia", "Юлія"), ("Kateryna", "Катерина"), ("Tetiana", "Тетяна"),
           ("Svitlana", "Світлана"), ("Halyna", "Галина"), ("Mariia", "Марія"),
           ("Anastasiia", "Анастасія"), ("Viktoriia", "Вікторія"), ("Liudmyla", "Людмила"),
           ("Olha", "Ольга"), ("Khrystyna", "Христина"), ("Sofiia", "Софія"),
           ("Daryna", "Дарина"), ("Valentyna", "Валентина"), ("Nadiia", "Надія"),
           ("Larysa", "Лариса")]
GIVEN_M = [("Andrii", "Андрій"), ("Taras", "Тарас"), ("Mykola", "Микола"), ("Dmytro", "Дмитро"),
           ("Serhii", "Сергій"), ("Bohdan", "Богдан"), ("Oleksandr", "Олександр"),
           ("Volodymyr", "Володимир"), ("Ivan", "Іван"), ("Yurii", "Юрій"),
           ("Vasyl", "Василь"), ("Petro", "Петро"), ("Maksym", "Максим"), ("Artem", "Артем"),
           ("Denys", "Денис"), ("Roman", "Роман"), ("Oleh", "Олег"), ("Ihor", "Ігор"),
           ("Pavlo", "Павло"), ("Yaroslav", "Ярослав")]
# Surnames are a root and a gender-neutral ending: 100 roots x 10 endings = 1,000 names.
ROOTS = [("Koval", "Коваль"), ("Shevch", "Шевч"), ("Bondar", "Бондар"), ("Tkach", "Ткач"),
         ("Kravch", "Кравч"), ("Melnych", "Мельнич"), ("Boich", "Бойч"), ("Oliin", "Олійн"),
         ("Lys", "Лис"), ("Marchen", "Марчен"), ("Rud", "Руд"), ("Savch", "Савч"),
         ("Petr", "Петр"), ("Kovalch", "Ковальч"), ("Moroz", "Мороз"), ("Pavl", "Павл"),
         ("Hryts", "Гриц"), ("Levch", "Левч"), ("Kharch", "Харч"), ("Ivan", "Іван"),
         ("Sydor", "Сидор"), ("Zakharch", "Захарч"), ("Tymoshch", "Тимощ"), ("Klym", "Клим"),
         ("Vasyl", "Васил"), ("Demch", "Демч"), ("Fedor", "Федор"), ("Ostap", "Остап"),
         ("Prokop", "Прокоп"), ("Stepan", "Степан"), ("Yurch", "Юрч"), ("Hnat", "Гнат"),
         ("Mykhail", "Михайл"), ("Semen", "Семен"), ("Kuzm", "Кузьм"), ("Lukash", "Лукаш"),
         ("Matv", "Матв"), ("Nazar", "Назар"), ("Onysch", "Онищ"), ("Pylyp", "Пилип"),
         ("Romanch", "Романч"), ("Serh", "Серг"), ("Tarasch", "Тарасч"), ("Ustym", "Устим"),
         ("Filip", "Філіп"), ("Khom", "Хом"), ("Tsyb", "Циб"), ("Chorn", "Чорн"),
         ("Shapoval", "Шаповал"), ("Yatsen", "Яцен"), ("Bilous", "Білоус"), ("Hubar", "Губар"),
         ("Didych", "Дідич"), ("Zhuk", "Жук"), ("Zinch", "Зінч"), ("Kalyn", "Калин"),
         ("Lytvyn", "Литвин"), ("Myron", "Мирон"), ("Nesterch", "Нестерч"), ("Ostrovch", "Островч"),
         ("Pasich", "Пасіч"), ("Rybal", "Рибал"), ("Sokol", "Сокол"), ("Tereshch", "Терещ"),
         ("Fesch", "Фещ"), ("Kholod", "Холод"), ("Tsar", "Цар"), ("Chumak", "Чумак"),
         ("Shvets", "Швець"), ("Shcherb", "Щерб"), ("Yakovl", "Яковл"), ("Bab", "Баб"),
         ("Voron", "Ворон"), ("Holub", "Голуб"), ("Dor", "Дор"), ("Yeremch", "Єремч"),
         ("Zadorozh", "Задорож"), ("Karpch", "Карпч"), ("Lazar", "Лазар"), ("Makar", "Макар"),
         ("Nosch", "Нощ"), ("Opanas", "Опанас"), ("Prytul", "Притул"), ("Rozhk", "Рожк"),
         ("Skoryk", "Скорик"), ("Trokhym", "Трохим"), ("Ukrain", "Українч"), ("Fom", "Фом"),
         ("Khyzh", "Хиж"), ("Tsvik", "Цвік"), ("Cherkas", "Черкас"), ("Shum", "Шум"),
         ("Yavor", "Явор"), ("Vlas", "Влас"), ("Hord", "Горд"), ("Dan", "Дан"),
         ("Zhovt", "Жовт"), ("Kyryl", "Кирил"), ("Maksym", "Максим"), ("Sav", "Сав")]
ENDINGS = [("enko", "енко"), ("uk", "ук"), ("iuk", "юк"), ("chuk", "чук"), ("yshyn", "ишин"),
           ("ak", "ак"), ("ko", "ко"), ("ets", "ець"), ("yk", "ик"), ("ovych", "ович")]
SURNAMES = [(r + e, rc + ec) for r, rc in ROOTS for e, ec in ENDINGS]
# A mild skew: the commonest surname is about 6x as frequent as the rarest.
SURNAME_WEIGHTS = [1 / (rank + 1) ** 0.26 for rank in range(len(SURNAMES))]
# The name the benchmark searches for: a fairly common one (rank 10 of 1,000).
SEARCH_NAME = SURNAMES[10][0]
OBLASTS = [("UA-30", "Kyiv"), ("UA-32", "Bila Tserkva"), ("UA-46", "Lviv"),
           ("UA-63", "Kharkiv"), ("UA-51", "Odesa"), ("UA-12", "Dnipro"),
           ("UA-05", "Vinnytsia"), ("UA-18", "Zhytomyr"), ("UA-53", "Poltava"),
           ("UA-71", "Cherkasy"), ("UA-56", "Rivne"), ("UA-26", "Ivano-Frankivsk")]
LANGUAGES = ("uk", "uk", "uk", "uk", "ru", "ru", "en", "nl")
CHUNK = 5_000
TARIFF_ADULT, TARIFF_MINOR = 50_000, 25_000  # example cents, as the example tariff table


@dataclass
class Loaded:
    """What :func:`load` made: the case counts, the references of the two trail cases
    (keyed by their number of trail events), the surname to search for, and timings."""

    cases: int
    participants: int
    events: int
    trail_refs: dict[int, str] = field(default_factory=dict)
    search_name: str = SEARCH_NAME
    seconds: float = 0.0


def bsn_for(n: int) -> str:
    """A 9-digit BSN that passes the 11-check, derived from ``n`` (distinct n, distinct BSN
    except for the few n whose check digit would be 10, which move to the next number)."""
    while True:
        digits = [int(c) for c in f"{100_000_000 + n * 10:09d}"[:8]]
        total = sum(d * w for d, w in zip(digits, range(9, 1, -1)))
        last = total % 11  # sum + last * -1 must be 0 mod 11
        if last < 10:
            return "".join(map(str, digits)) + str(last)
        n += 1_000_000


class _Chain:
    """The audit chain being written: hands out seq numbers and links the hashes."""

    def __init__(self):
        self.seq, self.prev = 0, audit.GENESIS

    def event(self, at, actor_id, actor, case_id, action, from_state, to_state, details):
        self.seq += 1
        fields = {"chain_version": audit.CHAIN_VERSION, "seq": self.seq,
                  "prev_hash": self.prev, "at": at, "actor_id": actor_id, "actor": actor,
                  "case_id": case_id, "action": action, "from_state": from_state,
                  "to_state": to_state,
                  "details": json.dumps(details, ensure_ascii=False, sort_keys=True),
                  "ip": None, "personal_salt": secrets.token_hex(16)}
        fields["personal_digest"] = audit.personal_digest(fields["personal_salt"],
                                                          fields["details"], None)
        fields["hash"] = audit.digest(fields)
        self.prev = fields["hash"]
        return fields


class _Builder:
    """Rows of one case at a time, appended to per-table lists flushed in chunks."""

    def __init__(self, rng: random.Random, now: dt.datetime, users: dict, chain: _Chain):
        self.rng, self.now, self.today, self.chain = rng, now, now.date(), chain
        self.users = users  # id -> (email, role, team)
        self.counsellors = {t: [u for u, (_, r, tt) in users.items()
                                if tt == t and r == "counsellor"] for t in users_teams(users)}
        self.supervisors = {t: [u for u, (_, r, tt) in users.items()
                                if tt == t and r == "supervisor"] for t in users_teams(users)}
        self.finance = {t: [u for u, (_, r, tt) in users.items()
                            if tt == t and r == "finance"] for t in users_teams(users)}
        self.participant_id = 0
        self.v_counter = 0
        self.ind_counter = 0
        self.reset()

    def reset(self):
        self.rows = {"case": [], "participant": [], "open_v": [], "ind": [], "payment": [],
                     "event": []}

    def _person(self, case_id: int, n: int, surname, role: str, state: str) -> dict:
        rng, today = self.rng, self.today
        self.participant_id += 1
        self.v_counter += 1
        female = rng.random() < 0.5 if role != "spouse" else rng.random() < 0.7
        given = rng.choice(GIVEN_F if female else GIVEN_M)
        if role in ("principal", "spouse", "parent", "adult_child"):
            low, high = {"parent": (60, 85), "adult_child": (18, 25)}.get(role, (20, 65))
        else:
            low, high = (0, 17)
        born = today - dt.timedelta(days=rng.randint(low * 365 + 1, high * 365 + 300))
        adult = role != "child"
        return {
            "id": self.participant_id, "case_id": case_id, "is_principal": n == 0,
            "relationship": "child" if role == "adult_child" else role,
            "given_names_latin": given[0], "family_name_latin": surname[0],
            "given_names_cyrillic": given[1], "family_name_cyrillic": surname[1],
            "date_of_birth": born, "v_number": f"{2_000_000_000 + self.v_counter:010d}",
            "bsn": bsn_for(self.v_counter) if adult and rng.random() < 0.8 else None,
            "travel_document_number": f"FX{self.v_counter:07d}",
            "email": (f"{given[0].lower()}.{surname[0].lower()}{self.v_counter}@example.org"
                      if adult else None),
            "phone": f"+31 6 {rng.randint(10_000_000, 99_999_999)}" if adult else None,
            "language": rng.choice(LANGUAGES),
            "asylum_application_pending": role != "child" or rng.random() < 0.9}

    def household(self, case_id: int, state: str, shape: list[str] | None = None) -> list[dict]:
        rng = self.rng
        if shape is None:
            size = rng.choices((1, 2, 3, 4, 5, 6), (33, 28, 20, 12, 5, 2))[0]
            shape = ["principal"]
            if size >= 2:
                shape.append("spouse" if rng.random() < 0.8 else "parent")
            for _ in range(size - len(shape)):
                shape.append("adult_child" if rng.random() < 0.15 else "child")
        surname = SURNAMES[rng.choices(range(len(SURNAMES)), SURNAME_WEIGHTS)[0]]
        return [self._person(case_id, n, surname, role, state) for n, role in enumerate(shape)]

    def case(self, case_id: int, reference: str, state: str, team: int, created: dt.datetime,
             shape: list[str] | None = None,
             counsellor: int | None = None) -> tuple[dict, list[dict]]:
        rng = self.rng
        counsellor = counsellor or rng.choice(self.counsellors[team])
        deadline = departed_on = evidence = reason = None
        if state in ("departure_agreed", "support_paid"):
            deadline = self.today + dt.timedelta(days=rng.randint(7, 90))
            if state == "departure_agreed" and rng.random() < 0.05:  # overdue, not yet lapsed
                deadline = self.today - dt.timedelta(days=rng.randint(1, 20))
        elif state in ("departed", "lapsed"):
            deadline = self.today - dt.timedelta(days=rng.randint(1, 120))
            if state == "departed":
                departed_on = deadline - dt.timedelta(days=rng.randint(0, 5))
                evidence = rng.choice(("border_crossing", "boarding", "brp_deregistration"))
        if state == "left_programme":
            reason = "Wil toch in Nederland blijven / decided to stay for now"
        elif state == "rejected":
            reason = "Niet in aanmerking: geen tijdelijke bescherming / not eligible"
        elif state == "lapsed":
            reason = "Termijn verstreken zonder vertrek / deadline passed"
        oblast, place = rng.choice(OBLASTS)
        people = self.household(case_id, state, shape)
        row = {"id": case_id, "reference": reference, "state": state, "version": 1,
               "team_id": team, "counsellor_id": counsellor, "departure_deadline": deadline,
               "destination_oblast": oblast if state != "intake" or rng.random() < 0.5 else None,
               "destination_place": place, "intake_notes": None, "departed_on": departed_on,
               "departure_evidence": evidence, "closing_reason": reason,
               "created_at": created, "updated_at": created}
        self.rows["case"].append(row)
        self.rows["participant"].extend(people)
        if state not in FINAL:
            self.rows["open_v"].extend({"v_number": p["v_number"], "case_id": case_id}
                                       for p in people)
        self._trail(row, people, created)
        return row, people

    def _trail(self, case: dict, people: list[dict], created: dt.datetime) -> None:
        rng, team = self.rng, case["team_id"]
        counsellor = case["counsellor_id"]
        at = created
        version = 1

        def add(actor_id, action, from_state=None, to_state=None, **details):
            nonlocal at
            self.rows["event"].append(self.chain.event(
                at, actor_id, self.users[actor_id][0], case["id"], action, from_state,
                to_state, details))
            at = min(at + dt.timedelta(days=rng.randint(1, 12), seconds=rng.randint(0, 9999)),
                     self.now)

        add(counsellor, "open_case", None, "intake", household_size=len(people),
            reference=case["reference"])
        for step in PATHS[case["state"]]:
            if step == "ind":
                for p in people:
                    if not p["asylum_application_pending"]:
                        continue
                    self.ind_counter += 1
                    ind_ref = f"IND-{2026_000_000 + self.ind_counter}"
                    confirmed = (at - dt.timedelta(days=1)).date()
                    self.rows["ind"].append({
                        "case_id": case["id"], "participant_id": p["id"],
                        "ind_reference": ind_ref, "confirmed_on": confirmed,
                        "recorded_by": counsellor, "recorded_at": at})
                    add(counsellor, "record_ind_confirmation", participant=p["id"],
                        ind_reference=ind_ref, confirmed_on=confirmed.isoformat())
                continue
            from_state, to_state = TARGET[step]
            details = {}
            actor = counsellor
            if step == "agree_departure":
                deadline = case["departure_deadline"] or (at.date() + dt.timedelta(days=30))
                details = {"departure_deadline": deadline.isoformat()}
            elif step in ("reject", "lapse"):
                actor = self.supervisors[team][0]
                details = {"reason": case["closing_reason"]}
            elif step == "leave_programme":
                details = {"reason": case["closing_reason"]}
            elif step == "pay_support":
                actor = self.finance[team][0]
                adults = sum(1 for p in people
                             if (self.today - p["date_of_birth"]).days >= 18 * 365.25)
                minors = len(people) - adults
                amount = adults * TARIFF_ADULT + minors * TARIFF_MINOR
                self.rows["payment"].append({
                    "case_id": case["id"], "status": "disbursed", "version": 3,
                    "amount_cents": amount, "currency": "EUR", "adults": adults,
                    "minors": minors, "tariff_effective_from": dt.date(2026, 1, 1),
                    "breakdown": json.dumps({"adults": adults, "minors": minors,
                                             "adult_cents": TARIFF_ADULT,
                                             "minor_cents": TARIFF_MINOR}),
                    "method": "cash", "iban": None, "account_holder": None,
                    "proposed_by": counsellor, "proposed_at": at,
                    "approved_by": self.supervisors[team][0], "approved_at": at,
                    "decision_reason": None, "disbursed_by": actor, "disbursed_at": at,
                    "idempotency_key": None, "request_hash": None, "export_batch_id": None,
                    "reclaim_cents": None, "reentry_on": None})
                details = {"amount_cents": amount}
            elif step == "confirm_departure":
                details = {"departed_on": case["departed_on"].isoformat(),
                           "evidence": case["departure_evidence"]}
            add(actor, step, from_state, to_state, **details)
            version += 1
        case["version"] = version
        case["updated_at"] = at

    def extra_trail(self, case: dict, events: int) -> None:
        """Pad the case's trail up to ``events`` events after its agreement: a signing link
        for an addendum, the signed addendum, the extended deadline, and again."""
        have = sum(1 for e in self.rows["event"] if e["case_id"] == case["id"])
        if have > events:
            raise ValueError(f"a trail of {events} events is shorter than the case's own path "
                             f"({have} events)")
        counsellor, supervisor = case["counsellor_id"], self.supervisors[case["team_id"]][0]
        at = case["updated_at"]
        deadline = case["departure_deadline"]
        principal = next(p["id"] for p in self.rows["participant"]
                         if p["case_id"] == case["id"] and p["is_principal"])
        for n in range(events - have):
            at = at + dt.timedelta(minutes=7)
            kind = n % 3
            if kind == 0:
                ev = (counsellor, "create_signing_link", None, None,
                      {"kind": "departure_addendum", "participant": 0, "channel": "link"})
            elif kind == 1:
                ev = ("participant", "sign_document", None, None,
                      {"kind": "departure_addendum", "method": "typed"})
            else:
                deadline = deadline + dt.timedelta(days=1)
                ev = (supervisor, "extend_deadline", "departure_agreed", "departure_agreed",
                      {"departure_deadline": deadline.isoformat(),
                       "reason": "Reis verschoven / travel moved"})
            actor_id, action, from_state, to_state, details = ev
            actor = (self.users[actor_id][0] if isinstance(actor_id, int)
                     else f"participant:{principal}")
            self.rows["event"].append(self.chain.event(
                at, actor_id if isinstance(actor_id, int) else None, actor, case["id"], action,
                from_state, to_state, details))
            if action == "extend_deadline":
                case["version"] += 1
        case["departure_deadline"] = deadline
        case["updated_at"] = at


def users_teams(users: dict) -> list[int]:
    """The team ids that have users."""
    return sorted({team for _, _, team in users.values()})


def _optional_module(name: str):
    """The module ``name``, or None when this version of the code has none."""
    import importlib

    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name != name:
            raise
        return None


def _flush(engine, rows: dict) -> None:
    tables = (("case", Case), ("participant", Participant), ("open_v", OpenVNumber),
              ("ind", IndConfirmation), ("payment", Payment), ("event", AuditEvent))
    with engine.begin() as conn:
        for key, model in tables:
            if rows[key]:
                conn.execute(insert(model.__table__), rows[key])


def load(url: str, total: int, *, trail_events: tuple[int, int] = (10, 1_000),
         rng_seed: int = 7, now: dt.datetime | None = None, progress=None) -> Loaded:
    """Load ``total`` cases plus the two trail cases into the migrated, empty database at
    ``url``; ``progress`` (optional) is called with a line of text now and then."""
    started = time.perf_counter()
    now = now or dt.datetime.now(dt.timezone.utc)
    rng = random.Random(rng_seed)
    engine = dbmod.make_engine(url)
    try:
        with engine.connect() as conn:
            if conn.execute(select(Case.id).limit(1)).first() is not None:
                raise ValueError("the database already holds cases: load into an empty one")
        users, uid, user_rows = {}, 0, []
        with engine.begin() as conn:
            conn.execute(insert(Team.__table__),
                         [{"id": i + 1, "name": n} for i, n in enumerate(TEAMS)])
            for team in range(1, len(TEAMS) + 1):
                for role, count in (("counsellor", COUNSELLORS_PER_TEAM), ("supervisor", 2),
                                    ("finance", 1)):
                    for _ in range(count):
                        uid += 1
                        email = BENCH_USER if uid == 1 else f"{role}{uid}@dtenv.example"
                        users[uid] = (email, role, team)
                        user_rows.append({
                            "id": uid, "email": email,
                            "name": "Bench Counsellor" if uid == 1 else f"{role.title()} {uid}",
                            "role": role, "person": f"P-{5000 + uid}", "team_id": team,
                            "password_hash": "", "active": True, "failed_logins": 0,
                            "locked_until": None, "session_epoch": 0,
                            "created_at": now - dt.timedelta(days=400)})
            conn.execute(insert(User.__table__), user_rows)
        chain = _Chain()
        builder = _Builder(rng, now, users, chain)
        states, weights = list(STATE_WEIGHTS), list(STATE_WEIGHTS.values())
        year = now.year
        span = dt.timedelta(days=365).total_seconds()
        counts = {"participants": 0, "events": 0}

        def flush():
            counts["participants"] += len(builder.rows["participant"])
            counts["events"] += len(builder.rows["event"])
            _flush(engine, builder.rows)
            builder.reset()

        for cid in range(1, total + 1):
            created = now - dt.timedelta(seconds=span * (1 - cid / (total + 3)))
            builder.case(cid, f"VRP-{year}-{cid:06d}", rng.choices(states, weights)[0],
                         rng.randint(1, len(TEAMS)), created)
            if cid % CHUNK == 0:
                flush()
                if progress:
                    progress(f"{cid:,} cases")
        loaded = Loaded(cases=total, participants=0, events=0)
        for offset, events in enumerate(trail_events, start=1):
            cid = total + offset
            created = now - dt.timedelta(days=60)
            row, _ = builder.case(cid, f"VRP-{year}-{cid:06d}", "departure_agreed", 1, created,
                                  shape=["principal", "spouse", "child"], counsellor=1)
            builder.extra_trail(row, events)
            loaded.trail_refs[events] = row["reference"]
        flush()
        with engine.begin() as conn:
            # The rows went in around the services, so whatever the services keep derived
            # from them must be rebuilt here: the case search index (issue 11, where it
            # exists — returnprog.search.reindex, as its migration's backfill does).
            reindex = getattr(_optional_module("returnprog.search"), "reindex", None)
            if reindex is not None:
                reindex(conn)
            conn.execute(insert(ReferenceCounter.__table__),
                         [{"year": year, "last": total + len(trail_events)}])
            conn.execute(update(AuditHead.__table__).where(AuditHead.__table__.c.id == 1)
                         .values(seq=chain.seq, hash=chain.prev))
            if engine.dialect.name == "postgresql":
                # Explicit ids were inserted: move the sequences past them.
                for table in ("case", "team", "user", "participant"):
                    conn.execute(text(f"SELECT setval(pg_get_serial_sequence('\"{table}\"', "
                                      f"'id'), (SELECT max(id) FROM \"{table}\"))"))
        # The scheduler's queues job keeps the work-queue cache current in a running
        # service; a bulk load is its first round.
        from sqlmodel import Session

        from returnprog.policy import Policy
        from returnprog.services import Context
        from returnprog.services import queues as queue_service

        with Session(engine) as session:
            ctx = Context(session=session, policy=Policy(), actor=None, channel="job")
            queue_service.refresh_cache_fully(ctx, batch=5000)
        if engine.dialect.name == "postgresql":
            with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.execute(text("VACUUM ANALYZE"))
        else:
            with engine.begin() as conn:
                conn.execute(text("ANALYZE"))
        loaded.cases = total + len(trail_events)
        loaded.participants, loaded.events = counts["participants"], counts["events"]
        loaded.seconds = time.perf_counter() - started
        return loaded
    finally:
        engine.dispose()
