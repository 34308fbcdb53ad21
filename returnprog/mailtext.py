"""Reminder e-mail texts: the Jinja templates in ``forms/mail/`` rendered in one language.

The scheduler composes e-mails without a Flask app or request, so this is a standalone
Jinja environment with the i18n extension; each rendering gets the ``gettext`` and
``ngettext`` of the recipient's catalogue (``returnprog/translations/<lang>``, the same
catalogue as the UI, so the service and document names are the glossary's). English is
the msgid language. Dates are written by Babel in each language's usual long form.
"""
from __future__ import annotations

import datetime as dt
import re
from functools import lru_cache
from pathlib import Path

from babel.dates import format_date as _babel_date
from babel.support import NullTranslations, Translations
from jinja2 import Environment, FileSystemLoader, StrictUndefined

from . import glossary

TEMPLATES = Path(__file__).resolve().parent.parent / "forms" / "mail"
TRANSLATIONS = Path(__file__).resolve().parent / "translations"
LANGUAGES = ("nl", "en", "uk", "ru")

# Ukrainian and Russian keep the date in the genitive after "не пізніше"/"не позднее" and put
# the weekday in brackets; Dutch and English lead with it.
_DATE_PATTERNS = {
    "nl": ("EEEE d MMMM y", "d MMMM y"),
    "en": ("EEEE d MMMM y", "d MMMM y"),
    "uk": ("d MMMM y 'р.' (EEEE)", "d MMMM y 'р.'"),
    "ru": ("d MMMM y 'г.' (EEEE)", "d MMMM y 'г.'"),
}


def _lang(lang: str) -> str:
    return lang if lang in LANGUAGES else "en"


def format_date(day: dt.date, lang: str, weekday: bool = True) -> str:
    """``woensdag 20 mei 2026`` / ``Wednesday 20 May 2026`` / ``20 травня 2026 р. (середа)``;
    without the weekday when ``weekday`` is False."""
    lang = _lang(lang)
    return _babel_date(day, _DATE_PATTERNS[lang][0 if weekday else 1], locale=lang)


@lru_cache(maxsize=None)
def translations(lang: str) -> NullTranslations:
    """The compiled catalogue of ``lang`` (English: the msgids themselves)."""
    return Translations.load(str(TRANSLATIONS), [_lang(lang)], domain="messages")


@lru_cache(maxsize=1)
def environment() -> Environment:
    """The Jinja environment of the mail templates (plain text: no autoescaping; the HTML
    part escapes each paragraph itself)."""
    env = Environment(loader=FileSystemLoader(str(TEMPLATES)), extensions=["jinja2.ext.i18n"],
                      autoescape=False, trim_blocks=True, lstrip_blocks=True,
                      undefined=StrictUndefined)
    # One msgid per sentence whatever the line breaks in the template (babel.cfg extracts
    # with trimmed = true as well).
    env.policies["ext.i18n.trimmed"] = True
    return env


def gettext(lang: str, msgid: str) -> str:
    """``msgid`` in ``lang``."""
    return translations(lang).gettext(msgid)


def ngettext(lang: str, singular: str, plural: str, n: int) -> str:
    """The form of ``singular``/``plural`` for ``n`` in ``lang`` (three forms in uk/ru)."""
    return translations(lang).ngettext(singular, plural, n)


def render(template: str, lang: str, **values) -> tuple[str, list[str]]:
    """Subject and paragraphs of mail template ``template`` in ``lang``.

    ``service`` (the glossary's service name) is filled in; ``document``, when given as
    a document kind code in ``document_kind``, becomes the glossary's document name.
    """
    t = translations(lang)
    values = dict(values, gettext=t.gettext, ngettext=t.ngettext, _=t.gettext,
                  service=glossary.service_name(t.gettext))
    kind = values.pop("document_kind", None)
    if kind is not None:
        values["document"] = glossary.document_name(kind, t.gettext)
    tmpl = environment().get_template(f"{template}.txt")
    ctx = tmpl.new_context(values)
    subject = " ".join("".join(tmpl.blocks["subject"](ctx)).split())
    body = "".join(tmpl.blocks["body"](tmpl.new_context(values)))
    paragraphs = [" ".join(p.split()) for p in re.split(r"\n\s*\n", body)]
    return subject, [p for p in paragraphs if p]
