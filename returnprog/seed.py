"""Demo data for ``make run``: a user per role and about twenty cases in every state.

Every case is made through the services, so the workflow could have produced it: real
signed and sealed documents, real IND confirmations, a four-eyes payment. Cases that need
a deadline in the past are made with the clock set back (the services take ``today``
from their context).
"""
from __future__ import annotations

import datetime as dt
import secrets
from typing import Iterator

from sqlalchemy import select

from . import acknowledgements, auth, files, passwords, workflow
from .models import Participant
from .policy import Policy
from .services import Context
from .services import cases as case_service
from .services import payment as payment_service
from .services import signing

ORDER = ["intake", "committed", "asylum_withdrawn", "departure_agreed", "support_paid", "departed"]

FAMILIES = [
    ("Olena", "Kovalenko", "Олена", "Коваленко", "uk", "UA-30", "Kyiv"),
    ("Andrii", "Shevchenko", "Андрій", "Шевченко", "uk", "UA-46", "Lviv"),
    ("Iryna", "Bondarenko", "Ірина", "Бондаренко", "uk", "UA-63", "Kharkiv"),
    ("Serhii", "Tkachenko", "Сергій", "Ткаченко", "ru", "UA-51", "Odesa"),
    ("Nataliia", "Kravchenko", "Наталія", "Кравченко", "uk", "UA-12", "Dnipro"),
    ("Oleksandr", "Melnyk", "Олександр", "Мельник", "en", "UA-05", "Vinnytsia"),
    ("Tetiana", "Boiko", "Тетяна", "Бойко", "uk", "UA-18", "Zhytomyr"),
    ("Dmytro", "Oliinyk", "Дмитро", "Олійник", "uk", "UA-53", "Poltava"),
    ("Yuliia", "Lysenko", "Юлія", "Лисенко", "ru", "UA-71", "Cherkasy"),
    ("Mykola", "Koval", "Микола", "Коваль", "uk", "UA-56", "Rivne"),
]

# (target state, adults, minors, days the clock is set back, deadline offset from that day)
PLAN = [
    ("intake", 1, 0, 0, None), ("intake", 2, 2, 0, None), ("intake", 1, 1, 0, None),
    ("committed", 2, 1, 0, None), ("committed", 1, 0, 0, None), ("committed", 2, 0, 0, None),
    ("asylum_withdrawn", 1, 2, 0, None), ("asylum_withdrawn", 2, 1, 0, None),
    ("asylum_withdrawn", 1, 0, 0, None),
    ("departure_agreed", 2, 2, 0, 45), ("departure_agreed", 1, 0, 12, 14),  # deadline in 2 days
    ("departure_agreed", 1, 1, 20, 7),  # 13 days past the deadline: overdue
    ("departure_agreed", 2, 0, 0, 30),
    ("support_paid", 2, 1, 0, 20), ("support_paid", 1, 0, 0, 10),
    ("departed", 2, 2, 10, 9), ("departed", 1, 0, 5, 8),
    ("left_programme", 1, 1, 0, None), ("rejected", 1, 0, 0, None), ("lapsed", 1, 0, 40, 10),
]

# (e-mail, role, name, team, personnel number): eight different people, so the demo's four
# eyes (Anna proposes, Sanne approves, Femke pays) is done by three persons.
STAFF = [
    ("anna.counsellor@dtenv.example", "counsellor", "Anna de Vries", "Team Noord", "P-1001"),
    ("bram.counsellor@dtenv.example", "counsellor", "Bram Jansen", "Team Noord", "P-1002"),
    ("sanne.supervisor@dtenv.example", "supervisor", "Sanne Bakker", "Team Noord", "P-1003"),
    ("femke.finance@dtenv.example", "finance", "Femke Visser", "Team Noord", "P-1004"),
    ("ad.admin@dtenv.example", "admin", "Ad Smit", "Team Noord", "P-1005"),
    ("olga.counsellor@dtenv.example", "counsellor", "Olga Mulder", "Team Zuid", "P-1006"),
    ("rik.records@dtenv.example", "records_manager", "Rik Meijer", "Team Noord", "P-1007"),
    ("petra.owner@dtenv.example", "process_owner", "Petra de Boer", "Team Noord", "P-1008"),
]


def _demo_password(email: str, name: str) -> str:
    """A random password the policy accepts (a random one could, rarely, contain a name)."""
    while True:
        password = secrets.token_urlsafe(12)
        if not passwords.problems(password, email=email, name=name):
            return password


def _household(index: int, adults: int, minors: int, today: dt.date) -> dict:
    given, family, given_c, family_c, lang, oblast, place = FAMILIES[index % len(FAMILIES)]
    base = 3000000000 + index * 100

    def member(n, adult, rel, name, name_c):
        born = dt.date(1975 + (index + n) % 20, 1 + n % 12, 10) if adult else \
            dt.date(today.year - 4 - (n * 3) % 12, 1 + n % 12, 15)
        data = {"given_names_latin": name, "family_name_latin": family,
                "given_names_cyrillic": name_c, "family_name_cyrillic": family_c,
                "date_of_birth": born, "v_number": f"{base + n:010d}", "bsn": None,
                "travel_document_number": f"FX{index:03d}{n:03d}",
                "email": f"{name.lower()}.{family.lower()}@example.org" if adult else None,
                "phone": None, "language": lang, "asylum_application_pending": True}
        if rel:
            data["relationship"] = rel
        return data

    household = [member(n, True, "spouse", "Partner", "Партнер") for n in range(1, adults)]
    household += [member(10 + n, False, "child", f"Child{n + 1}", "Дитина") for n in range(minors)]
    return {"principal": member(0, True, None, given, given_c), "household": household,
            "destination_oblast": oblast, "destination_place": place, "intake_notes": None}


def _sign_all(ctx: Context, case, kind: str, terms: dict) -> None:
    people = ctx.session.execute(select(Participant).where(Participant.case_id == case.id)).scalars()
    for p in list(people):
        if ctx.policy.is_adult_on(p.date_of_birth, ctx.today()):
            # The demo households tick every separate condition, as a signer must.
            signing.sign_document(ctx, case.reference, p.id, kind, terms, method="typed",
                                  typed_name=p.full_name, channel="tablet",
                                  identity_document="passport", consent=True,
                                  acknowledged=acknowledgements.required(kind))


def _context(session, policy, seal, actor, today: dt.date) -> Context:
    ctx = Context(session=session, policy=policy, actor=actor, ip="127.0.0.1",
                  user_agent="seed-demo", seal=seal)
    # The real clock, set back by whole days: the case's history happened "back then".
    shift = dt.date.today() - today
    ctx.today = lambda: today
    ctx.now = lambda: dt.datetime.now(dt.timezone.utc) - shift
    return ctx


def seed(session, policy: Policy, seal=None, credentials_file=None) -> Iterator[str]:
    """Create the demo users and cases, yielding lines to print. The passwords go only to
    ``credentials_file`` (mode 0600), never into the lines: those end up in the run log."""
    users = {}
    lines = []
    for email, role, name, team, person in STAFF:
        password = _demo_password(email, name)
        users[email] = auth.create_user(session, email=email, role=role, password=password,
                                        name=name, team=team, person=person)
        lines.append(f"{role:<11} {email:<34} {password}")
    roles = ", ".join(role for _email, role, *_rest in STAFF)
    if credentials_file is not None:
        files.write_private(credentials_file, "\n".join(lines) + "\n")
        yield (f"Demo users created ({roles}); their sign-in details are in "
               f"{credentials_file} (readable by this account only)")
    else:
        yield f"Demo users created ({roles}); no credentials file was asked for"
    counsellor = users["anna.counsellor@dtenv.example"]
    supervisor = users["sanne.supervisor@dtenv.example"]
    finance = users["femke.finance@dtenv.example"]
    real_today = dt.date.today()
    for index, (target, adults, minors, back, deadline_days) in enumerate(PLAN):
        day = real_today - dt.timedelta(days=back)
        as_ = lambda user, d=day: _context(session, policy, seal, user, d)  # noqa: E731
        case = case_service.open_case(as_(counsellor), _household(index, adults, minors, day))
        ref = case.reference
        if target == "rejected":
            case_service.perform(as_(supervisor), ref, "reject",
                                 {"reason": "Holds Dutch residence on other grounds (demo)."})
        elif target == "left_programme":
            _sign_all(as_(counsellor), case, workflow.COMMITMENT, {})
            case_service.perform(as_(counsellor), ref, "confirm_commitment", {})
            case_service.perform(as_(counsellor), ref, "leave_programme",
                                 {"reason": "Decided to stay under temporary protection (demo)."})
        else:
            steps = ORDER.index(target) if target in ORDER else ORDER.index("departure_agreed")
            deadline = day + dt.timedelta(days=deadline_days or 30)
            if steps >= 1:
                _sign_all(as_(counsellor), case, workflow.COMMITMENT, {})
                case_service.perform(as_(counsellor), ref, "confirm_commitment", {})
            if steps >= 2:
                _sign_all(as_(counsellor), case, workflow.WITHDRAWAL_DECLARATION, {})
                for p in session.execute(select(Participant).where(
                        Participant.case_id == case.id)).scalars().all():
                    case_service.record_ind_confirmation(as_(counsellor), ref, {
                        "participant_id": p.id, "ind_reference": f"IND-{ref[-6:]}-{p.id}",
                        "confirmed_on": day})
                case_service.perform(as_(counsellor), ref, "record_withdrawal", {})
            if steps >= 3:
                _sign_all(as_(counsellor), case, workflow.DEPARTURE_AGREEMENT,
                          {"departure_deadline": deadline.isoformat()})
                case_service.perform(as_(counsellor), ref, "agree_departure",
                                     {"departure_deadline": deadline})
            if steps >= 4:
                payment_service.propose(as_(counsellor), ref, {"method": "cash"})
                payment_service.approve(as_(supervisor), ref)
                payment_service.disburse(as_(finance), ref, {"idempotency_key": f"seed-{ref}"})
            if steps >= 5:
                # Paid in cash: the household signs the receipt before departing.
                _sign_all(as_(counsellor), case, workflow.PAYMENT_RECEIPT, {})
                departed = min(deadline, real_today)
                case_service.perform(as_(counsellor, real_today), ref, "confirm_departure",
                                     {"departed_on": departed, "evidence": "boarding"})
            if target == "lapsed":
                case_service.perform(as_(supervisor, real_today), ref, "lapse",
                                     {"reason": "Deadline passed without departure (demo)."})
        yield (f"case {ref}: {target} ({adults} adult{'' if adults == 1 else 's'}, "
               f"{minors} minor{'' if minors == 1 else 's'})")
