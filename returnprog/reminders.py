"""Reminders as pure planning: which reminder is due for a case on a day, and what it says.

No database, no clock, no Flask: the sweep (:mod:`returnprog.services.reminders`) reads the
cases, asks these functions what is due *today*, and writes the answers to the outbox.

Rules (DESIGN §4 and issue 5; the numbers come from :class:`~returnprog.policy.Policy`):

- **Deadline reminders.** Every adult participant with an e-mail address (in their own
  language) and the case's counsellor are reminded ``reminder_days`` (14, 7, 2, 1) days
  before the departure deadline of a case in ``departure_agreed``.
- **Overdue alert.** ``overdue_escalation_days`` (1) day after a deadline without departure
  the team's supervisors are alerted; the case counts as overdue from then on.
- **Signing links.** A personal signing link not used after ``signing_link_reminder_days``
  reminds its signer once; when it expires unused its counsellor is told.
- **Only what is still meaningful.** A sweep covers the days since the previous sweep
  (``since``, exclusive) up to ``today``. If several reminders of one series fell in that
  window (the scheduler was down), only the most recent is sent — never a stale series —
  and nothing is sent for a deadline that has already passed.

Every message has an idempotency key ``<case>|<kind>|<deadline>|<recipient>`` that the
outbox holds unique, so the same reminder can never be stored — and so never be sent —
twice. Messages are bilingual (Dutch plus the recipient's language: Ukrainian, Russian or
English; English for Dutch speakers and staff), plain text with an HTML alternative, and
are composed only from the data below: no V-number, no BSN, nothing from the IND file.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import html
from dataclasses import dataclass
from typing import Callable, Iterable

DEADLINE_REMINDER_PREFIX = "deadline_reminder_"
OVERDUE_ALERT = "overdue_alert"
SIGNING_LINK_REMINDER = "signing_link_reminder"
SIGNING_LINK_EXPIRED = "signing_link_expired"

# Messages tied to a case's departure deadline: cancelled when the deadline changes or the
# case leaves ``departure_agreed``.
ACTIVE_STATE = "departure_agreed"

LANGUAGES = ("nl", "uk", "ru", "en")
DEFAULT_TIMEZONE = "Europe/Amsterdam"
KEY_MAX = 200  # OutboxMessage.idempotency_key length


# --- what is due ----------------------------------------------------------------------------

def deadline_kind(offset: int) -> str:
    """The outbox kind of the reminder ``offset`` days before the deadline."""
    return f"{DEADLINE_REMINDER_PREFIX}{offset}d"


def offset_of(kind: str) -> int | None:
    """The number of days before the deadline of a deadline-reminder kind, else None."""
    if kind.startswith(DEADLINE_REMINDER_PREFIX) and kind.endswith("d"):
        try:
            return int(kind[len(DEADLINE_REMINDER_PREFIX):-1])
        except ValueError:
            return None
    return None


def _clamp_since(today: dt.date, since: dt.date | None) -> dt.date:
    # Today is always covered again: a case agreed this morning may have a reminder due today.
    yesterday = today - dt.timedelta(days=1)
    return yesterday if since is None else min(since, yesterday)


def due_deadline_offset(deadline: dt.date, today: dt.date, offsets: Iterable[int],
                        since: dt.date | None = None) -> int | None:
    """Which deadline reminder to send today, if any.

    ``since`` is the last day an earlier sweep completed (None: yesterday). Among the
    reminders whose day (``deadline - offset``) fell after ``since`` and not after ``today``,
    the most recent one is returned — the smallest offset — so a scheduler back from an
    outage sends one up-to-date reminder instead of a stale series. Nothing is due once the
    deadline has passed (the overdue alert takes over).
    """
    if deadline < today:
        return None
    since = _clamp_since(today, since)
    for offset in sorted(set(offsets)):
        day = deadline - dt.timedelta(days=offset)
        if day <= today:
            return offset if day > since else None
    return None


def overdue_alert_due(deadline: dt.date, today: dt.date, escalation_days: int,
                      since: dt.date | None = None) -> bool:
    """True when the overdue alert's day (``deadline + escalation_days``) falls in the
    sweep window ``(since, today]``."""
    day = deadline + dt.timedelta(days=escalation_days)
    return _clamp_since(today, since) < day <= today


def is_overdue(deadline: dt.date | None, today: dt.date) -> bool:
    """A case in ``departure_agreed`` is overdue once its deadline lies before today."""
    return deadline is not None and deadline < today


def candidate_deadlines(today: dt.date, offsets: Iterable[int],
                        since: dt.date | None = None) -> list[dt.date]:
    """The deadlines for which some reminder falls in the window ``(since, today]``.

    On a normal day (``since`` = yesterday) these are exactly ``today + offset`` for each
    offset: the sweep looks up only those dates in the deadline index, so its cost follows
    the number of reminders due, not the number of cases.
    """
    since = _clamp_since(today, since)
    out = set()
    for offset in set(offsets):
        day = since + dt.timedelta(days=1)
        while day <= today:
            deadline = day + dt.timedelta(days=offset)
            if deadline >= today:
                out.add(deadline)
            day += dt.timedelta(days=1)
    return sorted(out)


def overdue_deadlines(today: dt.date, escalation_days: int,
                      since: dt.date | None = None) -> list[dt.date]:
    """The deadlines whose overdue alert falls in the window ``(since, today]``."""
    since = _clamp_since(today, since)
    out, day = [], since + dt.timedelta(days=1)
    while day <= today:
        out.append(day - dt.timedelta(days=escalation_days))
        day += dt.timedelta(days=1)
    return out


# --- idempotency keys ------------------------------------------------------------------------

def idempotency_key(case_id: int | None, kind: str, ref: str, recipient: str) -> str:
    """``<case>|<kind>|<ref>|<recipient>``; ``ref`` is the deadline (ISO date), for links
    the link's expiry date and id. A recipient address too long for the column is replaced
    by its SHA-256 (the key stays unique and deterministic)."""
    who = recipient.strip().lower()
    key = f"{case_id if case_id is not None else '-'}|{kind}|{ref}|{who}"
    if len(key) > KEY_MAX:
        key = f"{case_id}|{kind}|{ref}|sha256:{hashlib.sha256(who.encode()).hexdigest()}"
    return key


@dataclass(frozen=True)
class KeyParts:
    """An idempotency key taken apart."""

    case_id: int | None
    kind: str
    ref: str
    recipient: str

    @property
    def deadline(self) -> dt.date | None:
        """The deadline (deadline reminders, overdue alerts) or link expiry date."""
        try:
            return dt.date.fromisoformat(self.ref[:10])
        except ValueError:
            return None

    @property
    def link_id(self) -> int | None:
        """The signing request's id, for signing-link messages."""
        if "~link" in self.ref:
            try:
                return int(self.ref.split("~link", 1)[1])
            except ValueError:
                return None
        return None


def parse_key(key: str) -> KeyParts:
    """Take an idempotency key apart (inverse of :func:`idempotency_key`). Queries use the
    outbox's ``deadline`` and ``signing_request_id`` columns instead; this stays for
    tests and for reading old keys."""
    case, kind, ref, recipient = key.split("|", 3)
    return KeyParts(None if case == "-" else int(case), kind, ref, recipient)


def message_id(key: str, domain: str) -> str:
    """A Message-ID derived from the idempotency key: a message re-sent after a crash
    carries the same Message-ID, so the receiving side can recognise the duplicate."""
    return f"<reminder.{hashlib.sha256(key.encode()).hexdigest()[:32]}@{domain}>"


# --- what the messages contain -----------------------------------------------------------------

@dataclass(frozen=True)
class Recipient:
    """Who a message goes to and in which language; ``role`` picks the wording."""

    email: str
    language: str = "nl"
    role: str = "participant"  # participant | counsellor | supervisor
    name: str = ""         # Latin script, for the Dutch and English text
    native_name: str = ""  # as written in the recipient's language (e.g. Cyrillic)

    def name_in(self, lang: str) -> str:
        """The name to address the recipient with in ``lang``."""
        return (self.native_name or self.name) if lang in ("uk", "ru") else self.name


@dataclass(frozen=True)
class CaseInfo:
    """The little a reminder may say about a case (deliberately no identity numbers)."""

    case_id: int
    reference: str
    deadline: dt.date | None
    counsellor_name: str = ""
    counsellor_email: str = ""
    household_size: int = 0


@dataclass(frozen=True)
class LinkInfo:
    """A personal signing link, as a reminder may describe it."""

    id: int
    kind: str
    created_at: dt.datetime
    expires_at: dt.datetime
    signer_name: str = ""


@dataclass(frozen=True)
class Message:
    """A message ready for the outbox."""

    key: str
    case_id: int | None
    kind: str
    recipient: str
    language: str
    subject: str
    body_text: str
    body_html: str
    deadline: dt.date | None = None        # the case deadline a deadline message is about
    signing_request_id: int | None = None  # the link a signing-link message is about


_MONTHS = {
    "nl": ("januari", "februari", "maart", "april", "mei", "juni", "juli", "augustus",
           "september", "oktober", "november", "december"),
    "en": ("January", "February", "March", "April", "May", "June", "July", "August",
           "September", "October", "November", "December"),
    "uk": ("січня", "лютого", "березня", "квітня", "травня", "червня", "липня", "серпня",
           "вересня", "жовтня", "листопада", "грудня"),
    "ru": ("января", "февраля", "марта", "апреля", "мая", "июня", "июля", "августа",
           "сентября", "октября", "ноября", "декабря"),
}
_WEEKDAYS = {
    "nl": ("maandag", "dinsdag", "woensdag", "donderdag", "vrijdag", "zaterdag", "zondag"),
    "en": ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"),
    "uk": ("понеділок", "вівторок", "середа", "четвер", "пʼятниця", "субота", "неділя"),
    "ru": ("понедельник", "вторник", "среда", "четверг", "пятница", "суббота",
           "воскресенье"),
}


def format_date(day: dt.date, lang: str, weekday: bool = True) -> str:
    """``dinsdag 12 mei 2026`` / ``Tuesday 12 May 2026`` / ``12 травня 2026 р. (вівторок)``."""
    lang = lang if lang in _MONTHS else "en"
    text = f"{day.day} {_MONTHS[lang][day.month - 1]} {day.year}"
    if lang in ("uk", "ru"):
        text += " р." if lang == "uk" else " г."
        # The date stays in the genitive after "не пізніше"; the weekday goes in brackets.
        return f"{text} ({_WEEKDAYS[lang][day.weekday()]})" if weekday else text
    return f"{_WEEKDAYS[lang][day.weekday()]} {text}" if weekday else text


def format_moment(moment: dt.datetime, lang: str, tz: str = DEFAULT_TIMEZONE) -> str:
    """A date and time on the Dutch clock, e.g. ``12 mei 2026, 14:30``."""
    local = _localise(moment, tz)
    return f"{format_date(local.date(), lang, weekday=False)}, {local:%H:%M}"


def _localise(moment: dt.datetime, tz: str) -> dt.datetime:
    try:
        from zoneinfo import ZoneInfo

        zone = ZoneInfo(tz)
    except Exception:  # no tz database: UTC is still a correct, if less friendly, answer
        zone = dt.timezone.utc
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.timezone.utc)
    return moment.astimezone(zone)


def days_phrase(n: int, lang: str) -> str:
    """``7 dagen`` / ``7 days`` / ``7 днів`` / ``7 дней`` with the right plural form."""
    if lang == "nl":
        return f"{n} dag" if n == 1 else f"{n} dagen"
    if lang in ("uk", "ru"):
        one, few, many = (("день", "дні", "днів") if lang == "uk" else ("день", "дня", "дней"))
        if n % 10 == 1 and n % 100 != 11:
            word = one
        elif 2 <= n % 10 <= 4 and not 12 <= n % 100 <= 14:
            word = few
        else:
            word = many
        return f"{n} {word}"
    return f"{n} day" if n == 1 else f"{n} days"


_DOCUMENTS = {
    "commitment": {"nl": "deelnameverklaring", "en": "participation statement",
                   "uk": "заява про участь", "ru": "заявление об участии"},
    "withdrawal_declaration": {
        "nl": "verklaring intrekking asielaanvraag",
        "en": "declaration withdrawing the asylum application",
        "uk": "заява про відкликання заяви про притулок",
        "ru": "заявление об отзыве ходатайства об убежище"},
    "departure_agreement": {"nl": "vertrekafspraak", "en": "departure agreement",
                            "uk": "угода про виїзд", "ru": "соглашение о выезде"},
    "addendum": {"nl": "addendum bij de vertrekafspraak",
                 "en": "addendum to the departure agreement",
                 "uk": "додаток до угоди про виїзд", "ru": "дополнение к соглашению о выезде"},
    "payment_receipt": {"nl": "ontvangstbewijs reisbijdrage", "en": "travel support receipt",
                        "uk": "підтвердження отримання допомоги на дорогу",
                        "ru": "подтверждение получения помощи на дорогу"},
}


def document_name(kind: str, lang: str) -> str:
    """A document kind in words."""
    names = _DOCUMENTS.get(kind)
    if names is None:
        return kind.replace("_", " ")
    return names.get(lang, names["en"])


def _when(d: int, lang: str) -> str:
    """'today' / 'tomorrow' / 'in 7 days' as a complete short sentence."""
    if lang == "nl":
        return "Dat is vandaag." if d == 0 else "Dat is morgen." if d == 1 else \
            f"Dat is over {days_phrase(d, lang)}."
    if lang == "uk":
        return "Це сьогодні." if d == 0 else "Це завтра." if d == 1 else \
            f"Залишилося {days_phrase(d, lang)}."
    if lang == "ru":
        return "Это сегодня." if d == 0 else "Это завтра." if d == 1 else \
            f"Осталось {days_phrase(d, lang)}."
    return "That is today." if d == 0 else "That is tomorrow." if d == 1 else \
        f"That is in {days_phrase(d, lang)}."


def _contact(case: CaseInfo) -> str:
    who = case.counsellor_name or case.counsellor_email
    if case.counsellor_name and case.counsellor_email:
        who = f"{case.counsellor_name} ({case.counsellor_email})"
    return who


# Each composer returns {language: (subject, [paragraphs])}. Paragraphs are plain text;
# the HTML part escapes them.

def _participant_deadline(case: CaseInfo, r: Recipient, today: dt.date) -> dict:
    d = (case.deadline - today).days
    contact = _contact(case)
    out = {}
    for lang in _pair(r):
        date = format_date(case.deadline, lang)
        name = r.name_in(lang)
        if lang == "nl":
            out[lang] = (f"Herinnering: vertrek uiterlijk {format_date(case.deadline, lang, False)}", [
                f"Beste {name}," if name else "Beste deelnemer,",
                "Dit is een herinnering van de Dienst Terugkeer en Vertrek (DTenV). U hebt "
                f"afgesproken dat u Nederland uiterlijk op {date} verlaat. {_when(d, lang)}",
                "Hebt u vragen, of lukt het niet om op tijd te vertrekken? Neem dan zo snel "
                f"mogelijk contact op met uw regievoerder{': ' + contact if contact else ''}.",
                f"Dossier: {case.reference}",
                "Dit bericht is automatisch verstuurd."])
        elif lang == "uk":
            out[lang] = (f"Нагадування: виїзд не пізніше {format_date(case.deadline, lang, False)}", [
                f"Вітаємо, {name}!" if name else "Вітаємо!",
                "Це нагадування від Служби репатріації та виїзду Нідерландів (DTenV). Ви "
                f"домовилися виїхати з Нідерландів не пізніше ніж {date}. {_when(d, lang)}",
                "Якщо у вас є запитання або ви не встигаєте виїхати вчасно, якнайшвидше "
                "зверніться до свого консультанта (regievoerder)"
                f"{': ' + contact if contact else ''}.",
                f"Справа: {case.reference}",
                "Це повідомлення надіслано автоматично."])
        elif lang == "ru":
            out[lang] = (f"Напоминание: выезд не позднее {format_date(case.deadline, lang, False)}", [
                f"Здравствуйте, {name}!" if name else "Здравствуйте!",
                "Это напоминание от Службы репатриации и выезда Нидерландов (DTenV). Вы "
                f"договорились покинуть Нидерланды не позднее {date}. {_when(d, lang)}",
                "Если у вас есть вопросы или вы не успеваете выехать вовремя, как можно скорее "
                "обратитесь к своему консультанту (regievoerder)"
                f"{': ' + contact if contact else ''}.",
                f"Дело: {case.reference}",
                "Это сообщение отправлено автоматически."])
        else:
            out[lang] = (f"Reminder: departure by {format_date(case.deadline, lang, False)}", [
                f"Dear {name}," if name else "Dear participant,",
                "This is a reminder from the Repatriation and Departure Service (DTenV). You "
                f"agreed to leave the Netherlands no later than {date}. {_when(d, lang)}",
                "If you have questions, or if you cannot leave in time, please contact your "
                f"counsellor (regievoerder) as soon as possible{': ' + contact if contact else ''}.",
                f"Case: {case.reference}",
                "This message was sent automatically."])
    return out


def _counsellor_deadline(case: CaseInfo, r: Recipient, today: dt.date) -> dict:
    d = (case.deadline - today).days
    return {
        "nl": (f"Herinnering: {case.reference} vertrekt uiterlijk "
               f"{format_date(case.deadline, 'nl', False)}", [
            f"Beste {r.name}," if r.name else "Beste regievoerder,",
            f"De vertrektermijn van dossier {case.reference} "
            f"({case.household_size} personen) loopt af op {format_date(case.deadline, 'nl')}. "
            f"{_when(d, 'nl')}",
            "De volwassen deelnemers met een e-mailadres hebben vandaag dezelfde herinnering "
            "in hun eigen taal gekregen. Controleer of de reis geregeld is."]),
        "en": (f"Reminder: {case.reference} departs by {format_date(case.deadline, 'en', False)}", [
            f"Dear {r.name}," if r.name else "Dear counsellor,",
            f"The departure deadline of case {case.reference} "
            f"({case.household_size} persons) is {format_date(case.deadline, 'en')}. "
            f"{_when(d, 'en')}",
            "The adult participants with an e-mail address received the same reminder in "
            "their own language today. Please check that the journey is arranged."]),
    }


def _supervisor_overdue(case: CaseInfo, r: Recipient, today: dt.date) -> dict:
    over = (today - case.deadline).days
    who = _contact(case) or "-"
    return {
        "nl": (f"Termijn verstreken: {case.reference}", [
            f"Beste {r.name}," if r.name else "Beste supervisor,",
            f"De vertrektermijn van dossier {case.reference} is op "
            f"{format_date(case.deadline, 'nl')} verstreken ({days_phrase(over, 'nl')} geleden) "
            "zonder dat vertrek is bevestigd. Het dossier staat als te laat op het dashboard.",
            f"Bespreek met regievoerder {who} of de termijn wordt verlengd of de "
            "deelname vervalt."]),
        "en": (f"Deadline passed: {case.reference}", [
            f"Dear {r.name}," if r.name else "Dear supervisor,",
            f"The departure deadline of case {case.reference} passed on "
            f"{format_date(case.deadline, 'en')} ({days_phrase(over, 'en')} ago) without a "
            "confirmed departure. The case shows as overdue on the dashboard.",
            f"Please decide with counsellor {who} whether to extend the deadline or to "
            "let the participation lapse."]),
    }


def _participant_link(case: CaseInfo, link: LinkInfo, r: Recipient) -> dict:
    contact = _contact(case)
    out = {}
    for lang in _pair(r):
        doc = document_name(link.kind, lang)
        sent, until = format_moment(link.created_at, lang), format_moment(link.expires_at, lang)
        name = r.name_in(lang)
        if lang == "nl":
            out[lang] = ("Herinnering: een document wacht op uw handtekening", [
                f"Beste {name}," if name else "Beste deelnemer,",
                f"Op {sent} hebt u een persoonlijke link gekregen om de {doc} te ondertekenen. "
                f"U hebt nog niet getekend. De link is geldig tot {until}.",
                "Gebruik de link uit het eerdere bericht. Werkt hij niet meer, vraag dan uw "
                f"regievoerder om een nieuwe{': ' + contact if contact else ''}.",
                f"Dossier: {case.reference}"])
        elif lang == "uk":
            out[lang] = ("Нагадування: документ очікує на ваш підпис", [
                f"Вітаємо, {name}!" if name else "Вітаємо!",
                f"{sent} ви отримали особисте посилання, щоб підписати документ «{doc}». "
                f"Ви ще не підписали його. Посилання дійсне до {until}.",
                "Скористайтеся посиланням із попереднього повідомлення. Якщо воно вже не діє, "
                f"попросіть свого консультанта надіслати нове{': ' + contact if contact else ''}.",
                f"Справа: {case.reference}"])
        elif lang == "ru":
            out[lang] = ("Напоминание: документ ожидает вашей подписи", [
                f"Здравствуйте, {name}!" if name else "Здравствуйте!",
                f"{sent} вы получили личную ссылку, чтобы подписать документ «{doc}». "
                f"Вы ещё не подписали его. Ссылка действительна до {until}.",
                "Воспользуйтесь ссылкой из предыдущего сообщения. Если она больше не действует, "
                f"попросите своего консультанта прислать новую{': ' + contact if contact else ''}.",
                f"Дело: {case.reference}"])
        else:
            out[lang] = ("Reminder: a document is waiting for your signature", [
                f"Dear {name}," if name else "Dear participant,",
                f"On {sent} you received a personal link to sign the {doc}. You have not "
                f"signed yet. The link is valid until {until}.",
                "Please use the link from the earlier message. If it no longer works, ask your "
                f"counsellor for a new one{': ' + contact if contact else ''}.",
                f"Case: {case.reference}"])
    return out


def _counsellor_link_expired(case: CaseInfo, link: LinkInfo, r: Recipient) -> dict:
    return {
        "nl": (f"Ondertekenlink verlopen: {case.reference}", [
            f"Beste {r.name}," if r.name else "Beste regievoerder,",
            f"De persoonlijke link voor de {document_name(link.kind, 'nl')} van "
            f"{link.signer_name or 'een deelnemer'} in dossier {case.reference} is op "
            f"{format_moment(link.expires_at, 'nl')} verlopen zonder handtekening.",
            "Maak zo nodig een nieuwe link aan, of laat op kantoor tekenen op de tablet."]),
        "en": (f"Signing link expired: {case.reference}", [
            f"Dear {r.name}," if r.name else "Dear counsellor,",
            f"The personal link for the {document_name(link.kind, 'en')} of "
            f"{link.signer_name or 'a participant'} in case {case.reference} expired unsigned "
            f"on {format_moment(link.expires_at, 'en')}.",
            "Create a new link if needed, or have the document signed on the office tablet."]),
    }


def _pair(r: Recipient) -> tuple[str, str]:
    """Dutch first, then the recipient's language (English for Dutch speakers)."""
    lang = r.language if r.language in LANGUAGES else "en"
    return ("nl", "en") if lang == "nl" else ("nl", lang)


_SEPARATOR = "—" * 24


def render(parts: dict) -> tuple[str, str, str]:
    """Subject, plain text and HTML from ``{language: (subject, paragraphs)}`` (Dutch first)."""
    langs = list(parts)
    subject = " / ".join(parts[lang][0] for lang in langs)
    text = f"\n\n{_SEPARATOR}\n\n".join("\n\n".join(parts[lang][1]) for lang in langs) + "\n"
    sections = "\n<hr>\n".join(
        f'<div lang="{lang}">\n' + "\n".join(f"<p>{html.escape(p)}</p>" for p in parts[lang][1])
        + "\n</div>" for lang in langs)
    body_html = (f'<!DOCTYPE html>\n<html lang="{langs[0]}">\n<head><meta charset="utf-8">'
                 f"<title>{html.escape(subject)}</title></head>\n"
                 f'<body style="font-family: sans-serif; line-height: 1.4">\n{sections}\n'
                 "</body>\n</html>\n")
    return subject[:300], text, body_html


def _message(key: str, case_id: int | None, kind: str, r: Recipient, parts: dict, *,
             deadline: dt.date | None = None, link_id: int | None = None) -> Message:
    subject, text, body_html = render(parts)
    return Message(key=key, case_id=case_id, kind=kind, recipient=r.email.strip(),
                   language=_pair(r)[1] if r.role == "participant" else "nl",
                   subject=subject, body_text=text, body_html=body_html,
                   deadline=deadline, signing_request_id=link_id)


def deadline_reminder(case: CaseInfo, offset: int, today: dt.date, r: Recipient) -> Message:
    """The reminder ``offset`` days before the deadline, written on ``today``."""
    kind = deadline_kind(offset)
    compose = _participant_deadline if r.role == "participant" else _counsellor_deadline
    return _message(idempotency_key(case.case_id, kind, case.deadline.isoformat(), r.email),
                    case.case_id, kind, r, compose(case, r, today), deadline=case.deadline)


def overdue_alert(case: CaseInfo, today: dt.date, r: Recipient) -> Message:
    """The alert to a supervisor that a case's deadline passed without departure."""
    return _message(idempotency_key(case.case_id, OVERDUE_ALERT, case.deadline.isoformat(),
                                    r.email),
                    case.case_id, OVERDUE_ALERT, r, _supervisor_overdue(case, r, today),
                    deadline=case.deadline)


def _link_ref(link: LinkInfo) -> str:
    return f"{link.expires_at.date().isoformat()}~link{link.id}"


def signing_link_reminder(case: CaseInfo, link: LinkInfo, r: Recipient) -> Message:
    """The signer's reminder of an unused personal signing link."""
    return _message(idempotency_key(case.case_id, SIGNING_LINK_REMINDER, _link_ref(link),
                                    r.email),
                    case.case_id, SIGNING_LINK_REMINDER, r, _participant_link(case, link, r),
                    link_id=link.id)


def signing_link_expired(case: CaseInfo, link: LinkInfo, r: Recipient) -> Message:
    """The counsellor's notice that a personal signing link expired unused."""
    return _message(idempotency_key(case.case_id, SIGNING_LINK_EXPIRED, _link_ref(link),
                                    r.email),
                    case.case_id, SIGNING_LINK_EXPIRED, r, _counsellor_link_expired(case, link, r),
                    link_id=link.id)


@dataclass(frozen=True)
class Planned:
    """A message whose idempotency key is known now and whose text is written only if the
    outbox does not hold that key yet (a repeat sweep composes nothing)."""

    key: str
    compose: Callable[[], Message]

    def build(self) -> Message:
        return self.compose()


def plan_deadline_reminder(case: CaseInfo, offset: int, today: dt.date, r: Recipient) -> Planned:
    """:func:`deadline_reminder`, composed lazily."""
    key = idempotency_key(case.case_id, deadline_kind(offset), case.deadline.isoformat(), r.email)
    return Planned(key, lambda: deadline_reminder(case, offset, today, r))


def plan_overdue_alert(case: CaseInfo, today: dt.date, r: Recipient) -> Planned:
    """:func:`overdue_alert`, composed lazily."""
    key = idempotency_key(case.case_id, OVERDUE_ALERT, case.deadline.isoformat(), r.email)
    return Planned(key, lambda: overdue_alert(case, today, r))


def plan_signing_link_reminder(case: CaseInfo, link: LinkInfo, r: Recipient) -> Planned:
    """:func:`signing_link_reminder`, composed lazily."""
    key = idempotency_key(case.case_id, SIGNING_LINK_REMINDER, _link_ref(link), r.email)
    return Planned(key, lambda: signing_link_reminder(case, link, r))


def plan_signing_link_expired(case: CaseInfo, link: LinkInfo, r: Recipient) -> Planned:
    """:func:`signing_link_expired`, composed lazily."""
    key = idempotency_key(case.case_id, SIGNING_LINK_EXPIRED, _link_ref(link), r.email)
    return Planned(key, lambda: signing_link_expired(case, link, r))


def link_reminder_due(link: LinkInfo, now: dt.datetime, reminder_days: int) -> bool:
    """An unused, unexpired link reminds its signer once it is ``reminder_days`` old."""
    return link.created_at + dt.timedelta(days=reminder_days) <= now < link.expires_at
