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
Their wording is in the Jinja templates ``forms/mail/*.txt``, translated through the
gettext catalogue (:mod:`returnprog.mailtext`), with the glossary's names for the service
and the documents.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import html
from dataclasses import dataclass
from typing import Callable, Iterable

from . import mailtext
from .policy import TIMEZONE_NAME

DEADLINE_REMINDER_PREFIX = "deadline_reminder_"
OVERDUE_ALERT = "overdue_alert"
SIGNING_LINK_REMINDER = "signing_link_reminder"
SIGNING_LINK_EXPIRED = "signing_link_expired"

# Messages tied to a case's departure deadline: cancelled when the deadline changes or the
# case leaves ``departure_agreed``.
ACTIVE_STATE = "departure_agreed"

LANGUAGES = ("nl", "uk", "ru", "en")
DEFAULT_TIMEZONE = TIMEZONE_NAME  # the scheduler may be set to another calendar
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
    by its SHA-256 (the key stays unique and deterministic). The key is only compared,
    never parsed: what it names is also in :class:`Message` (``deadline``,
    ``signing_request_id``), which the outbox stores as columns."""
    who = recipient.strip().lower()
    key = f"{case_id if case_id is not None else '-'}|{kind}|{ref}|{who}"
    if len(key) > KEY_MAX:
        key = f"{case_id}|{kind}|{ref}|sha256:{hashlib.sha256(who.encode()).hexdigest()}"
    return key


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
    document_id: int | None = None         # a signed document to attach at delivery


def format_date(day: dt.date, lang: str, weekday: bool = True) -> str:
    """``woensdag 12 mei 2026`` / ``Tuesday 12 May 2026`` / ``12 травня 2026 р. (вівторок)``."""
    return mailtext.format_date(day, lang, weekday)


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
    """``7 dagen`` / ``7 days`` / ``7 днів`` / ``7 дней`` with the language's plural form."""
    return mailtext.translations(lang).ngettext("%(num)d day", "%(num)d days", n) % {"num": n}


def _contact(case: CaseInfo) -> str:
    who = case.counsellor_name or case.counsellor_email
    if case.counsellor_name and case.counsellor_email:
        who = f"{case.counsellor_name} ({case.counsellor_email})"
    return who


# Each composer returns {language: (subject, [paragraphs])} rendered from the templates in
# forms/mail/; participants read Dutch and their own language, staff Dutch and English.

STAFF_LANGUAGES = ("nl", "en")


def _participant_deadline(case: CaseInfo, r: Recipient, today: dt.date) -> dict:
    return {lang: mailtext.render(
        "participant_deadline", lang, name=r.name_in(lang), role="participant",
        date=format_date(case.deadline, lang), short_date=format_date(case.deadline, lang, False),
        days=(case.deadline - today).days, contact=_contact(case), reference=case.reference)
        for lang in _pair(r)}


def _counsellor_deadline(case: CaseInfo, r: Recipient, today: dt.date) -> dict:
    return {lang: mailtext.render(
        "counsellor_deadline", lang, name=r.name, role="counsellor",
        date=format_date(case.deadline, lang), short_date=format_date(case.deadline, lang, False),
        days=(case.deadline - today).days, household=case.household_size,
        reference=case.reference)
        for lang in STAFF_LANGUAGES}


def _supervisor_overdue(case: CaseInfo, r: Recipient, today: dt.date) -> dict:
    return {lang: mailtext.render(
        "supervisor_overdue", lang, name=r.name, role="supervisor",
        date=format_date(case.deadline, lang), over=(today - case.deadline).days,
        who=_contact(case) or "-", reference=case.reference)
        for lang in STAFF_LANGUAGES}


def _participant_link(case: CaseInfo, link: LinkInfo, r: Recipient) -> dict:
    return {lang: mailtext.render(
        "participant_link", lang, name=r.name_in(lang), role="participant",
        document_kind=link.kind, sent=format_moment(link.created_at, lang),
        until=format_moment(link.expires_at, lang), contact=_contact(case),
        reference=case.reference)
        for lang in _pair(r)}


def _counsellor_link_expired(case: CaseInfo, link: LinkInfo, r: Recipient) -> dict:
    return {lang: mailtext.render(
        "counsellor_link_expired", lang, name=r.name, role="counsellor",
        document_kind=link.kind, signer=link.signer_name,
        until=format_moment(link.expires_at, lang), reference=case.reference)
        for lang in STAFF_LANGUAGES}


def _pair(r: Recipient) -> tuple[str, str]:
    """The recipient's language first, then Dutch (a Dutch speaker: Dutch, then English):
    the participant reads their own language before the official Dutch text."""
    lang = r.language if r.language in LANGUAGES else "en"
    return ("nl", "en") if lang == "nl" else (lang, "nl")


def _second_language(r: Recipient) -> str:
    """The participant's language besides Dutch (English for Dutch speakers)."""
    return next(lang for lang in _pair(r) if lang != "nl")


_SEPARATOR = "—" * 24


def render(parts: dict) -> tuple[str, str, str]:
    """Subject, plain text and HTML from ``{language: (subject, paragraphs)}``, in that
    order (a participant's language first, staff messages Dutch first)."""
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
                   language=_second_language(r) if r.role == "participant" else "nl",
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
