"""What the signing pages (tablet, personal links, verification) share: their sentences
in the reader's language, the document preview, the signature form, the 429 page.

Participant pages speak Ukrainian, English, Russian or Dutch; staff parts speak the staff
UI's Dutch or English. Their sentences are in ``forms/signing/texts/<lang>.json``.
"""
from __future__ import annotations

import datetime as dt
import json
import re
from functools import lru_cache
from pathlib import Path
from zoneinfo import ZoneInfo

from flask import Response, render_template
from markupsafe import Markup

from .. import documents, glossary, i18n
from .. import signature as signature_rules
from ..models import Case, Participant
from ..services import signing as signing_service

FORMS_DIR = Path(__file__).resolve().parent.parent.parent / "forms" / "signing"
PARTICIPANT_LANGUAGES = ("uk", "en", "ru", "nl")
DEFAULT_PARTICIPANT_LANGUAGE = "uk"
ZONE = ZoneInfo("Europe/Amsterdam")


# --- texts --------------------------------------------------------------------------------------

@lru_cache(maxsize=8)
def _table(lang: str) -> dict:
    with open(FORMS_DIR / "texts" / f"{lang}.json", encoding="utf-8") as fh:
        return json.load(fh)


class Texts:
    """The sentences of one part of these pages (``participant``, ``verify``, ``staff``) in
    one language; ``T("key", name=...)`` fills in the values. Jinja escapes the result."""

    def __init__(self, part: str, lang: str):
        self.part, self.lang = part, lang
        self._texts = _table(lang)[part]
        # The service and the document kinds are named from the glossary, as in the PDFs.
        _ = documents.glossary_gettext(lang)
        self._texts = {**self._texts, "service": glossary.service_name(_),
                       **{f"doc_kind_{kind}": glossary.document_name(kind, _)
                          for kind in glossary.DOCUMENT_NAMES}}

    def __call__(self, key: str, **values) -> str:
        text = self._texts.get(key)
        if text is None:
            text = _table("en")[self.part].get(key, key)
        return text.format(**values) if values else text


def participant_language(code: str | None) -> str:
    """The language of a participant's pages: theirs if offered, else Ukrainian."""
    return code if code in PARTICIPANT_LANGUAGES else DEFAULT_PARTICIPANT_LANGUAGE


def staff_texts() -> Texts:
    """Staff sentences in the staff UI's language (Dutch or English)."""
    return Texts("staff", "en" if i18n.language() == "en" else "nl")


def local_time(moment: dt.datetime | None) -> str:
    """A moment as the programme writes it, in Amsterdam time (empty for none)."""
    if moment is None:
        return ""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.timezone.utc)
    return moment.astimezone(ZONE).strftime("%d-%m-%Y %H:%M")



# --- the document and the signature form -----------------------------------------------------------

def preview(c, case: Case, person: Participant, kind: str, terms: dict, lang: str) -> Markup:
    """The document as it will be signed (without the signature), as HTML for the page:
    the body of ``documents.render_html`` (autoescaped there; no URLs are loaded)."""
    data = signing_service.document_data(c, case, person, kind, terms)
    html = documents.render_html(kind, data, lang)
    match = re.search(r"<body[^>]*>(.*)</body>", html, re.S)
    body = match.group(1) if match else ""
    # The document's headings sit under the page's "The document" (h2): h1 -> h3, h2 -> h4.
    body = _HEADING.sub(lambda m: f"<{m.group(1)}h{min(int(m.group(2)) + 2, 6)}", body)
    return Markup(body)


_HEADING = re.compile(r"<(/?)h([1-6])(?=[\s>])", re.I)



# Problem codes of ``returnprog.signature`` -> the participant sentence saying it.
_SIGNATURE_TEXTS = {
    signature_rules.CONSENT: "err_consent", signature_rules.DRAWN: "err_drawn",
    signature_rules.TOO_LARGE: "err_too_large", signature_rules.TYPED: "err_typed",
    signature_rules.TYPED_LONG: "err_typed_long", signature_rules.TYPED_CHARS: "err_typed_chars",
}


def signature_form(form) -> dict:
    """The signature fields of a signing form as the signing service takes them (not
    checked here: the service checks a signature once, see ``returnprog.signature``)."""
    return {"method": form.get("method", ""), "typed_name": form.get("typed_name", ""),
            "image_data_uri": form.get("signature", ""),
            "consent": form.get("consent") in ("yes", "on", "1", "true")}


def oversized_signature(form, T: Texts) -> dict:
    """The request size check of a signing form: a drawing over the one limit
    (``signature.MAX_SIGNATURE_IMAGE``) is refused before anything else is done."""
    if signature_rules.too_large(form.get("signature")):
        return {"signature": [T("err_too_large")]}
    return {}


def signature_errors(problems: dict[str, str], T: Texts) -> dict:
    """Signature problems (field -> code) as field -> sentences in the signer's language."""
    return {field: [T(_SIGNATURE_TEXTS.get(code, "err_failed"))]
            for field, code in problems.items()}


def kept(form, problems: dict[str, str]) -> dict:
    """The submitted values to show again after a refusal; the drawing only when it was a
    real one (it goes back into the page)."""
    values = {key: form.get(key, "") for key in form.keys()}
    if "signature" in problems or signature_rules.too_large(values.get("signature")):
        values["signature"] = ""
    return values


def flat_errors(errors: dict) -> list[tuple[str | None, str]]:
    """Errors as (field, message) pairs for the summary at the top of a form."""
    return [(field, message) for field, messages in errors.items() for message in messages]


def multilingual() -> dict:
    """Texts in every participant language, for pages that do not know the reader's."""
    return {"all_texts": [Texts("participant", lang) for lang in PARTICIPANT_LANGUAGES]}



def too_many(wait: float) -> Response:
    """The 429 page (in every participant language) with its Retry-After."""
    minutes = max(1, int((wait + 59) // 60))
    body = render_template("signing/too_many.html", minutes=minutes, **multilingual())
    response = Response(body, status=429, mimetype="text/html")
    response.headers["Retry-After"] = str(int(wait) + 1)
    return response
