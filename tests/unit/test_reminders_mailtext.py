"""Reminder e-mails come from the templates in forms/mail/, in the reader's language: every
kind renders in Dutch, English, Ukrainian and Russian without falling back to English, with
the glossary's names for the service and the documents, and with the right plural forms."""
from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_file
from babel.messages.pofile import read_po

from returnprog import glossary, mailtext
from returnprog import reminders as plan

ROOT = Path(__file__).resolve().parents[2]
TEMPLATES = sorted((ROOT / "forms" / "mail").glob("*.txt"))
KINDS = [t.stem for t in TEMPLATES if not t.stem.startswith("_")]
UTC = dt.timezone.utc


def _mail_msgids() -> set[str]:
    """Every msgid the mail templates use (singular of plural pairs), as pybabel sees it."""
    ids = set()
    for path in TEMPLATES:
        for _line, msg, _comments, _ctx in extract_from_file(
                "jinja2", str(path), options={"trimmed": "true"}):
            ids.add(msg[0] if isinstance(msg, tuple) else msg)
    ids.add("%(num)d day")  # plan.days_phrase
    return ids


def _catalogue(lang):
    path = ROOT / "returnprog" / "translations" / lang / "LC_MESSAGES" / "messages.po"
    with path.open("rb") as f:
        return read_po(f, locale=lang)


@pytest.mark.parametrize("lang", ["nl", "uk", "ru"])
def test_every_mail_msgid_has_a_settled_translation(lang):
    catalogue = _catalogue(lang)
    ids = _mail_msgids()
    assert len(ids) > 25  # the extraction itself found the templates' sentences
    for msgid in ids:
        entry = catalogue.get(msgid)
        assert entry is not None, f"{lang}: {msgid!r} is not in the catalogue"
        assert not entry.fuzzy, f"{lang}: {msgid!r} is fuzzy"
        forms = entry.string if isinstance(entry.string, tuple) else (entry.string,)
        assert len(forms) == catalogue.num_plurals if entry.pluralizable else 1
        assert all(forms), f"{lang}: {msgid!r} is not translated"


@pytest.mark.parametrize("lang", ["uk", "ru"])
def test_ukrainian_and_russian_catalogues_declare_three_plural_forms(lang):
    catalogue = _catalogue(lang)
    assert catalogue.num_plurals == 3
    assert "n%10==1 && n%100!=11" in catalogue.plural_expr


def _values(kind, lang):
    case = dict(name="", reference="VRP-2026-000007", contact="Anna (anna@dtenv.example)")
    return {
        "participant_deadline": dict(case, role="participant", days=7,
                                     date=mailtext.format_date(dt.date(2026, 5, 20), lang),
                                     short_date="20"),
        "counsellor_deadline": dict(case, role="counsellor", days=7, household=3, date="20",
                                    short_date="20"),
        "supervisor_overdue": dict(case, role="supervisor", over=3, date="20", who="Anna"),
        "participant_link": dict(case, role="participant", document_kind="departure_agreement",
                                 sent="1", until="8"),
        "counsellor_link_expired": dict(case, role="counsellor", signer="Olena",
                                        document_kind="departure_agreement", until="8"),
        "participant_code": dict(case, role="participant", code="042917", minutes=10,
                                 document_kind="departure_agreement"),
        # next_step comes translated already (services.signed_copy.next_step)
        "participant_copy": dict(case, role="participant", document_kind="departure_agreement",
                                 signed="1", next_step=""),
    }[kind]


@pytest.mark.parametrize("lang", ["nl", "uk", "ru"])
@pytest.mark.parametrize("kind", KINDS)
def test_each_mail_kind_renders_in_the_language_with_the_glossary_names(kind, lang):
    english = mailtext.render(kind, "en", **_values(kind, "en"))
    subject, paragraphs = mailtext.render(kind, lang, **_values(kind, lang))
    assert subject and subject != english[0]
    # No sentence is left in English (the reference and names are not sentences).
    assert not set(paragraphs) & set(english[1])
    text = " ".join(paragraphs)
    gettext = mailtext.translations(lang).gettext
    if kind == "participant_deadline":
        assert glossary.service_name(gettext) in text
    if "document_kind" in _values(kind, lang):
        assert glossary.document_name("departure_agreement", gettext) in text
    if lang in ("uk", "ru"):
        assert re.search("[а-яіїєґ]", subject.lower())


def test_english_is_the_msgids_and_names_the_service_by_the_glossary():
    subject, paragraphs = mailtext.render("participant_deadline", "en",
                                          **_values("participant_deadline", "en"))
    assert subject == "Reminder: departure by 20"
    assert f"from the {glossary.SERVICE_NAME}." in paragraphs[1]


def test_the_service_is_named_as_in_the_documents_not_as_before():
    case = plan.CaseInfo(7, "VRP-2026-000007", dt.date(2026, 5, 20), "Anna", "a@dtenv.example", 1)
    for lang, name in (("uk", "Служба повернення та виїзду (DTenV)"),
                       ("ru", "Служба возвращения и выезда (DTenV)")):
        msg = plan.deadline_reminder(case, 7, dt.date(2026, 5, 13),
                                     plan.Recipient("p@example.org", lang, "participant", "O"))
        assert name in msg.body_text
        assert "репатріації" not in msg.body_text and "репатриации" not in msg.body_text


@pytest.mark.parametrize("lang,expected", [
    ("uk", {1: "Залишилося 1 день.", 2: "Залишилося 2 дні.", 5: "Залишилося 5 днів.",
            21: "Залишилося 21 день."}),
    ("ru", {1: "Осталось 1 день.", 2: "Осталось 2 дня.", 5: "Осталось 5 дней.",
            21: "Осталось 21 день."}),
])
def test_day_counts_take_the_plural_form_of_the_number(lang, expected):
    t = mailtext.translations(lang)
    for n, sentence in expected.items():
        assert t.ngettext("That is in %(num)s day.", "That is in %(num)s days.", n) % {
            "num": n} == sentence
        if n > 1:  # one day ahead the reminder says "tomorrow" instead
            _subject, paragraphs = mailtext.render(
                "participant_deadline", lang,
                **dict(_values("participant_deadline", lang), days=n))
            assert paragraphs[1].endswith(sentence), (n, paragraphs[1])
    assert [plan.days_phrase(n, lang) for n in (1, 2, 5, 21)] == [
        s.split(" ", 1)[1].rstrip(".") for s in expected.values()]


@pytest.mark.parametrize("lang,ago", [("uk", {1: "1 день тому", 2: "2 дні тому", 5: "5 днів тому",
                                              21: "21 день тому"}),
                                      ("ru", {1: "1 день назад", 2: "2 дня назад",
                                              5: "5 дней назад", 21: "21 день назад"})])
def test_overdue_day_counts_take_the_plural_form_too(lang, ago):
    for n, words in ago.items():
        _s, paragraphs = mailtext.render("supervisor_overdue", lang,
                                         **dict(_values("supervisor_overdue", lang), over=n))
        assert f"({words})" in paragraphs[1]


def test_dates_are_written_by_babel_per_language():
    day = dt.date(2026, 5, 20)
    assert mailtext.format_date(day, "nl") == "woensdag 20 mei 2026"
    assert mailtext.format_date(day, "en", weekday=False) == "20 May 2026"
    assert mailtext.format_date(day, "uk") == "20 травня 2026 р. (середа)"
    assert mailtext.format_date(day, "ru", weekday=False) == "20 мая 2026 г."
    assert plan.format_moment(dt.datetime(2026, 5, 8, 9, tzinfo=UTC), "nl") == "8 mei 2026, 11:00"
