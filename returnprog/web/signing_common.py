"""What the signing pages (tablet, personal links, verification) share: their sentences
in the reader's language, the document preview, the signature form, the 429 page.

Participant pages speak Ukrainian, English, Russian or Dutch; staff parts speak the staff
UI's Dutch or English. Their sentences are msgids of the one gettext catalogue
(``returnprog/translations``), translated per page language: participant parts with ``_``,
staff parts with ``S``.
"""
from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

from flask import Response, render_template
from markupsafe import Markup

from .. import acknowledgements, documents, glossary, i18n, mailtext, names
from .. import signature as signature_rules
from ..glossary import N_
from ..policy import TIMEZONE
from ..models import Case, Participant
from ..services import signing as signing_service

FORMS_DIR = Path(__file__).resolve().parent.parent.parent / "forms" / "signing"
PARTICIPANT_LANGUAGES = ("uk", "en", "ru", "nl")
DEFAULT_PARTICIPANT_LANGUAGE = "uk"
ZONE = TIMEZONE  # times on these pages are Amsterdam time, as everywhere


# --- texts --------------------------------------------------------------------------------------

class _Gettext:
    """``gettext`` of the one catalogue (``returnprog/translations``) in one language, as the
    pages call it: ``_("Signed by: %(name)s", name=...)``; Jinja escapes the result."""

    def __init__(self, lang: str):
        self.lang = lang
        self._t = mailtext.translations(lang)

    def __call__(self, msgid: str, **values) -> str:
        text = self._t.gettext(msgid)
        return text % values if values else text

    def ngettext(self, singular: str, plural: str, num: int, **values) -> str:
        """The form of ``singular``/``plural`` for ``num`` (``%(num)d`` in the text)."""
        return self._t.ngettext(singular, plural, num) % {"num": num, **values}


def participant_gettext(lang: str) -> _Gettext:
    """Participant sentences in ``lang`` (one of ``PARTICIPANT_LANGUAGES``)."""
    return _Gettext(lang)


def staff_gettext() -> _Gettext:
    """Staff sentences in the staff UI's language (Dutch or English), also on a page that
    otherwise speaks the participant's language (the tablet)."""
    return _Gettext("en" if i18n.language() == "en" else "nl")


def page_texts(lang: str) -> dict:
    """The template context of a page in participant language ``lang``: its ``_``,
    ``gettext`` and ``ngettext``, and the glossary's names of the service and each document
    kind (as in the PDFs)."""
    _ = participant_gettext(lang)
    return {"_": _, "gettext": _, "ngettext": _.ngettext, "lang": lang,
            "service": glossary.service_name(_),
            "doc_names": {kind: glossary.document_name(kind, _)
                          for kind in glossary.DOCUMENT_NAMES}}


# Each participant language named in itself, for the language choice of the verify page.
LANGUAGE_NAMES = {"nl": "Nederlands", "en": "English", "uk": "Українська", "ru": "Русский"}


def participant_language(code: str | None) -> str:
    """The language of a participant's pages: theirs if offered, else Ukrainian."""
    return code if code in PARTICIPANT_LANGUAGES else DEFAULT_PARTICIPANT_LANGUAGE


def local_time(moment: dt.datetime | None) -> str:
    """A moment as the programme writes it, in Amsterdam time (empty for none)."""
    if moment is None:
        return ""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.timezone.utc)
    return moment.astimezone(ZONE).strftime("%d-%m-%Y %H:%M")


def signing_panel_data(info: dict, links: list[dict], participants: list[dict]) -> dict:
    """The signing choices from what a case read has gathered already (``info`` as
    :func:`returnprog.services.case_views.outlook` gives it, the case's signing links, its participants in
    :func:`cases.case_data`'s shape): no further statement."""
    adults = [{"id": a["participant_id"], "name": a["name"]} for a in info["signing"]]
    kinds = [d["kind"] for d in info["signing"][0]["documents"]] if info["signing"] else []
    names = {p["id"]: f"{p['given_names_latin']} {p['family_name_latin']}" for p in participants}
    names.update({a["id"]: a["name"] for a in adults})
    for link in links:
        link["name"] = names.get(link["participant_id"], "")
        link["expires_local"] = local_time(link["expires_at"])
        link["created_local"] = local_time(link["created_at"])
        link["declined_local"] = local_time(link.get("declined_at"))
    return {"signers": adults, "kinds": kinds, "links": links, "bounds": info["bounds"]}



# --- the document and the signature form -----------------------------------------------------------

def preview(c, case: Case, person: Participant, kind: str, terms: dict, lang: str,
            channel: str | None = None) -> Markup:
    """The document as it will be signed (without the signature), as HTML for the page:
    the body of ``documents.render_html`` (autoescaped there; no URLs are loaded).
    ``channel`` (tablet | link) is how it will be signed (a receipt names the place)."""
    data = signing_service.document_data(c, case, person, kind, terms, channel)
    html = documents.render_html(kind, data, lang)
    match = re.search(r"<body[^>]*>(.*)</body>", html, re.S)
    body = match.group(1) if match else ""
    # The document's headings sit under the page's "The document" (h2): h1 -> h3, h2 -> h4.
    body = _HEADING.sub(lambda m: f"<{m.group(1)}h{min(int(m.group(2)) + 2, 6)}", body)
    return Markup(body)


_HEADING = re.compile(r"<(/?)h([1-6])(?=[\s>])", re.I)


def acknowledgement_blocks(c, case: Case, person: Participant, kind: str, terms: dict,
                           lang: str) -> list[dict]:
    """The separate acknowledgements ``kind`` needs, each with its condition in the page's
    language and in Dutch (the document's own sentences, with the deadline and amount
    that are signed): key, form field, ``text`` and ``nl`` (None when the page is Dutch)."""
    keys = acknowledgements.required(kind)
    if not keys:
        return []
    data = signing_service.document_data(c, case, person, kind, terms)
    values = {}
    if data.get("departure_deadline"):
        values["deadline"] = Markup('<span class="nowrap">{}</span>').format(
            documents.format_date(data["departure_deadline"]))
    if data.get("amount_cents") is not None:
        values["amount"] = Markup('<span class="nowrap">{}</span>').format(
            documents.format_eur(data["amount_cents"]))
    return [{"key": key, "field": acknowledgements.field(key),
             "text": documents.sentence(key, lang, **values),
             "nl": None if lang == "nl" else documents.sentence(key, "nl", **values)}
            for key in keys]


def signer_names(person: Participant) -> str:
    """The signer's registered name in both scripts, Cyrillic first when recorded
    ("Олена Коваленко / Olena Kovalenko")."""
    return " / ".join(names.registered_forms(person))


def language_choice(current: str, href) -> list[tuple[str, str, str]]:
    """(code, name in itself, ``href(code)``) of the participant languages other than
    ``current``: the page offers itself in each (the language is no personal data)."""
    return [(code, LANGUAGE_NAMES[code], href(code))
            for code in PARTICIPANT_LANGUAGES if code != current]


def chosen_language(person: Participant, asked: str | None) -> str:
    """The page language: the one the signer chose on the page (``asked``) when offered,
    else their registered language."""
    if asked in PARTICIPANT_LANGUAGES:
        return asked
    return participant_language(person.language)



# Problem codes of ``returnprog.signature`` -> the participant sentence saying it.
_SIGNATURE_TEXTS = {
    signature_rules.CONSENT: N_("Tick the box to confirm that you have read and understood the "
                                "document."),
    signature_rules.DRAWN: N_("Draw your signature in the box, or choose to type your full name."),
    signature_rules.TOO_LARGE: N_("Your signature drawing is too large. Draw it again, smaller, "
                                  "or choose to type your full name."),
    signature_rules.TYPED: N_("Type your full name."),
    signature_rules.TYPED_LONG: N_("Your name can have at most 200 characters."),
    signature_rules.TYPED_CHARS: N_("Your name may contain only letters, spaces, hyphens and "
                                    "apostrophes."),
    signature_rules.TYPED_MISMATCH: N_("Type your own name as it is registered: %(name)s."),
    acknowledgements.MISSING: N_("Tick this box to confirm this condition separately."),
}
# Each separate acknowledgement's refusal, naming the condition (the summary lists them).
_ACKNOWLEDGEMENT_TEXTS = {
    "cond_irreversible": N_("Tick the box to confirm that the withdrawal is final."),
    "cond_deadline": N_("Tick the box to confirm the departure deadline."),
    "cond_support": N_("Tick the box to confirm the amount of the travel support."),
    "cond_reclaim": N_("Tick the box to confirm that the travel support is reclaimed if you "
                       "come back to the Netherlands."),
}
# Standard reasons to decline, as the participant reads them.
DECLINE_TEXTS = {
    "disagree": N_("I do not agree with the document."),
    "questions": N_("I have questions and want to talk to my counsellor first."),
    "wrong_details": N_("Information in the document is wrong."),
    "not_now": N_("I do not want to sign now."),
    "other": N_("Another reason"),
}
SIGNING_FAILED = N_("The document could not be signed. Please ask your counsellor for help.")


def signature_form(form) -> dict:
    """The signature fields of a signing form as the signing service takes them (not
    checked here: the service checks a signature once, see ``returnprog.signature``)."""
    return {"method": form.get("method", ""), "typed_name": form.get("typed_name", ""),
            "image_data_uri": form.get("signature", ""),
            "consent": form.get("consent") in ("yes", "on", "1", "true"),
            "acknowledged": tuple(form.getlist("ack"))}


def oversized_signature(form, _: _Gettext) -> dict:
    """The request size check of a signing form: a drawing over the one limit
    (``signature.MAX_SIGNATURE_IMAGE``) is refused before anything else is done."""
    if signature_rules.too_large(form.get("signature")):
        return {"signature": [_(_SIGNATURE_TEXTS[signature_rules.TOO_LARGE])]}
    return {}


def signature_errors(problems: dict[str, str], _: _Gettext, signer=None) -> dict:
    """Signature problems (field -> code) as field -> sentences in the signer's language;
    a typed name that is not the ``signer``'s says which name is expected."""
    expected = " / ".join(names.registered_forms(signer)) if signer is not None else ""
    out = {}
    for field, code in problems.items():
        text = _(_SIGNATURE_TEXTS.get(code, SIGNING_FAILED))
        if code == acknowledgements.MISSING:
            text = _(_ACKNOWLEDGEMENT_TEXTS.get(field.removeprefix("ack-"), text))
        if code == signature_rules.TYPED_MISMATCH:
            text = text % {"name": expected}
        out[field] = [text]
    return out


def kept(form, problems: dict[str, str]) -> dict:
    """The submitted values to show again after a refusal; the drawing only when it was a
    real one (it goes back into the page)."""
    values = {key: form.get(key, "") for key in form.keys()}
    values["ack"] = tuple(form.getlist("ack"))
    if "signature" in problems or signature_rules.too_large(values.get("signature")):
        values["signature"] = ""
    return values


def flat_errors(errors: dict) -> list[tuple[str | None, str]]:
    """Errors as (field, message) pairs for the summary at the top of a form."""
    return [(field, message) for field, messages in errors.items() for message in messages]


def multilingual() -> dict:
    """For pages that do not know the reader's language: the page in Ukrainian (its layout),
    and ``all_languages``, (code, gettext, ngettext) of each participant language, for
    saying the message in all of them."""
    texts = [participant_gettext(lang) for lang in PARTICIPANT_LANGUAGES]
    return {**page_texts(DEFAULT_PARTICIPANT_LANGUAGE), "lang": None,
            "all_languages": [(t.lang, t, t.ngettext) for t in texts]}



def too_many(wait: float) -> Response:
    """The 429 page (in every participant language) with its Retry-After."""
    minutes = max(1, int((wait + 59) // 60))
    body = render_template("signing/too_many.html", minutes=minutes, **multilingual())
    response = Response(body, status=429, mimetype="text/html")
    response.headers["Retry-After"] = str(int(wait) + 1)
    return response
