"""Reminder planning is pure: which reminder is due on which day, and what it says."""
import datetime as dt
import re

import pytest

from returnprog import reminders as plan
from returnprog.policy import DEFAULT_POLICY

OFFSETS = DEFAULT_POLICY.reminder_days
DEADLINE = dt.date(2026, 5, 20)
CASE = plan.CaseInfo(7, "VRP-2026-000007", DEADLINE, "Anna de Vries", "anna@dtenv.example", 3)


def day(n):
    return DEADLINE - dt.timedelta(days=n)


@pytest.mark.parametrize("offset", OFFSETS)
def test_each_reminder_is_due_exactly_on_its_day(offset):
    due_days = [d for d in range(30, -3, -1)
                if plan.due_deadline_offset(DEADLINE, day(d), OFFSETS) == offset]
    assert due_days == [offset]


def test_nothing_is_due_between_reminder_days_or_after_the_deadline():
    for d in (13, 8, 6, 3, 0, -1, -5):
        assert plan.due_deadline_offset(DEADLINE, day(d), OFFSETS) is None


def test_after_an_outage_only_the_most_recent_due_reminder_is_sent():
    # Down since 16 days before the deadline; back 5 days before it: the 14- and 7-day
    # reminders were both missed, only the 7-day one is sent.
    assert plan.due_deadline_offset(DEADLINE, day(5), OFFSETS, since=day(16)) == 7
    # Back on the deadline day after missing 2 and 1: the 1-day one, still meaningful.
    assert plan.due_deadline_offset(DEADLINE, day(0), OFFSETS, since=day(4)) == 1
    # Back after the deadline: nothing (the overdue alert takes over).
    assert plan.due_deadline_offset(DEADLINE, day(-1), OFFSETS, since=day(9)) is None
    # Already sent the 7-day one before going down: nothing new until the 2-day one.
    assert plan.due_deadline_offset(DEADLINE, day(4), OFFSETS, since=day(7)) is None


def test_the_candidate_deadlines_of_a_normal_day_are_today_plus_each_offset():
    today = dt.date(2026, 5, 1)
    assert plan.candidate_deadlines(today, OFFSETS) == sorted(
        today + dt.timedelta(days=n) for n in OFFSETS)
    # A repeated sweep on the same day still covers today.
    assert plan.candidate_deadlines(today, OFFSETS, since=today) == \
        plan.candidate_deadlines(today, OFFSETS)


def test_catch_up_candidates_cover_every_missed_reminder_day():
    today, since = dt.date(2026, 5, 10), dt.date(2026, 5, 1)
    candidates = set(plan.candidate_deadlines(today, OFFSETS, since))
    for deadline in (today + dt.timedelta(days=k) for k in range(0, 40)):
        due = plan.due_deadline_offset(deadline, today, OFFSETS, since)
        assert (due is not None) == (deadline in candidates), deadline


def test_the_overdue_alert_comes_the_day_after_the_deadline_once():
    days = [d for d in range(-10, 5)
            if plan.overdue_alert_due(DEADLINE, day(d), DEFAULT_POLICY.overdue_escalation_days)]
    assert days == [-1]
    assert plan.overdue_alert_due(DEADLINE, day(-3), 1, since=day(0))  # caught up
    assert plan.overdue_deadlines(day(-1), 1) == [DEADLINE]


def test_idempotency_keys_name_case_kind_deadline_and_recipient():
    key = plan.idempotency_key(7, plan.deadline_kind(14), "2026-05-20", " P1@Example.org ")
    assert key == "7|deadline_reminder_14d|2026-05-20|p1@example.org"
    assert plan.offset_of("deadline_reminder_14d") == 14
    long = plan.idempotency_key(7, "overdue_alert", "2026-05-20", "x" * 240 + "@example.org")
    assert len(long) <= 200 and long == plan.idempotency_key(
        7, "overdue_alert", "2026-05-20", "x" * 240 + "@example.org")
    assert plan.message_id(key, "dtenv.example") == plan.message_id(key, "dtenv.example")
    assert plan.message_id(key, "d") != plan.message_id(key.replace("14d", "7d"), "d")


@pytest.mark.parametrize("lang,phrase,date", [
    ("uk", "Залишилося 7 днів", "13 травня 2026 р."),
    ("ru", "Осталось 7 дней", "13 мая 2026 г."),
    ("en", "That is in 7 days", "Wednesday 13 May 2026"),
    ("nl", "Dat is over 7 dagen", "woensdag 13 mei 2026"),
])
def test_participant_reminders_are_bilingual_their_language_first_then_dutch(lang, phrase, date):
    r = plan.Recipient("p@example.org", lang, "participant", "Olena Kovalenko", "Олена Коваленко")
    msg = plan.deadline_reminder(CASE, 7, day(7), r)
    assert msg.kind == "deadline_reminder_7d" and msg.recipient == "p@example.org"
    assert (msg.deadline, msg.signing_request_id) == (DEADLINE, None)  # the outbox's columns
    assert "Dit is een herinnering van de Dienst Terugkeer en Vertrek" in msg.body_text
    assert "woensdag 20 mei 2026" in msg.body_text
    assert phrase in msg.body_text or lang == "nl"
    dutch = "Herinnering: vertrek uiterlijk 20 mei 2026"
    if lang == "nl":  # a Dutch speaker: Dutch, then English
        assert msg.subject.startswith(dutch + " / ")
    else:  # the participant's language first, in the subject and in the body
        assert msg.subject.endswith(" / " + dutch) and not msg.subject.startswith(dutch)
        assert msg.body_text.index(phrase) < msg.body_text.index("Dit is een herinnering")
        assert msg.body_html.index(f'<div lang="{lang}">') < msg.body_html.index('<div lang="nl">')
    assert msg.language == ("en" if lang == "nl" else lang)
    assert f'<div lang="{msg.language}">' in msg.body_html and '<div lang="nl">' in msg.body_html
    # A neutral greeting, not the name in the nominative («Вітаємо, Олена»).
    greeting = {"uk": "Добрий день!", "ru": "Здравствуйте!", "en": "Hello,", "nl": "Goedendag,"}
    assert msg.body_text.startswith(greeting[lang])
    assert "Олена" not in msg.body_text and "Olena" not in msg.body_text
    assert "VRP-2026-000007" in msg.body_text and "anna@dtenv.example" in msg.body_text


def test_days_are_declined_correctly():
    assert [plan.days_phrase(n, "uk") for n in (1, 2, 5, 11, 14, 21, 22)] == [
        "1 день", "2 дні", "5 днів", "11 днів", "14 днів", "21 день", "22 дні"]
    assert [plan.days_phrase(n, "ru") for n in (1, 3, 7, 12)] == [
        "1 день", "3 дня", "7 дней", "12 дней"]
    assert plan.days_phrase(1, "nl") == "1 dag" and plan.days_phrase(2, "en") == "2 days"


def test_the_last_reminders_say_tomorrow_and_today():
    r = plan.Recipient("p@example.org", "uk", "participant", "O K")
    assert "Це завтра." in plan.deadline_reminder(CASE, 1, day(1), r).body_text
    assert "Dat is vandaag." in plan.deadline_reminder(CASE, 1, day(0), r).body_text


def test_staff_messages_are_dutch_and_english():
    counsellor = plan.Recipient("anna@dtenv.example", "nl", "counsellor", "Anna")
    msg = plan.deadline_reminder(CASE, 14, day(14), counsellor)
    assert "De vertrektermijn van dossier VRP-2026-000007 (3 personen)" in msg.body_text
    assert "The departure deadline of case VRP-2026-000007" in msg.body_text
    alert = plan.overdue_alert(CASE, day(-1), plan.Recipient("s@dtenv.example", "nl",
                                                             "supervisor", "Sanne"))
    assert alert.subject == "Termijn verstreken: VRP-2026-000007 / Deadline passed: VRP-2026-000007"
    assert "1 dag geleden" in alert.body_text and "overdue" in alert.body_text


def test_html_escapes_what_it_is_given():
    # Staff are greeted by name (participants get a neutral greeting), so the name is here.
    r = plan.Recipient("p@example.org", "en", "counsellor", "<script>alert(1)</script>")
    msg = plan.deadline_reminder(CASE, 7, day(7), r)
    assert "<script>" not in msg.body_html and "&lt;script&gt;" in msg.body_html


def test_signing_link_messages():
    link = plan.LinkInfo(5, "departure_agreement", dt.datetime(2026, 5, 1, 9, tzinfo=dt.timezone.utc),
                         dt.datetime(2026, 5, 8, 9, tzinfo=dt.timezone.utc), "Olena Kovalenko")
    r = plan.Recipient("p@example.org", "ru", "participant", "Olena", "Олена")
    msg = plan.signing_link_reminder(CASE, link, r)
    assert msg.key == "7|signing_link_reminder|2026-05-08~link5|p@example.org"
    assert (msg.signing_request_id, msg.deadline) == (5, None)  # the outbox's columns
    assert "«Соглашение о выезде»" in msg.body_text and "8 mei 2026, 11:00" in msg.body_text
    expired = plan.signing_link_expired(CASE, link, plan.Recipient("anna@dtenv.example"))
    assert "verlopen zonder handtekening" in expired.body_text
    assert plan.link_reminder_due(link, dt.datetime(2026, 5, 3, 9, tzinfo=dt.timezone.utc), 2)
    assert not plan.link_reminder_due(link, dt.datetime(2026, 5, 3, 8, tzinfo=dt.timezone.utc), 2)
    assert not plan.link_reminder_due(link, dt.datetime(2026, 5, 8, 9, tzinfo=dt.timezone.utc), 2)


def test_no_message_has_room_for_identity_numbers():
    # The composers take no V-number or BSN at all; nine- or ten-digit runs never appear.
    r = plan.Recipient("p@example.org", "uk", "participant", "O K")
    link = plan.LinkInfo(5, "commitment", dt.datetime(2026, 5, 1, tzinfo=dt.timezone.utc),
                         dt.datetime(2026, 5, 8, tzinfo=dt.timezone.utc))
    for msg in (plan.deadline_reminder(CASE, 7, day(7), r), plan.overdue_alert(CASE, day(-1), r),
                plan.signing_link_reminder(CASE, link, r), plan.signing_link_expired(CASE, link, r)):
        for text in (msg.subject, msg.body_text, msg.body_html):
            assert not re.search(r"(?<!\d)\d{9,10}(?!\d)", text)
