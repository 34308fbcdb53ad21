"""The addendum's reason: a standard reason the counsellor picks, printed in Dutch and in
the participant's language, with the counsellor's own words (optional) marked as an
untranslated explanation; the free text alone still works as before."""
from __future__ import annotations

import html
import json
import re

import pytest

from returnprog import documents

from .test_documents import sample_data


def _text(kind: str, data: dict, lang: str) -> str:
    body = documents.render_html(kind, data, lang)
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", body)).split())


def _texts(lang: str) -> dict:
    with open(documents.TEMPLATE_DIR / "texts" / f"{lang}.json", encoding="utf-8") as fh:
        return json.load(fh)


@pytest.mark.parametrize("lang", ["uk", "ru"])
def test_a_standard_reason_is_printed_translated_and_the_explanation_marked(lang):
    data = sample_data(reason_code="transport", reason="KLM 1234 geannuleerd")
    text = _text("addendum", data, lang)
    assert _texts("nl")["addendum_reason_transport"] in text
    assert _texts(lang)["addendum_reason_transport"] in text
    assert _texts(lang)["label_reason_note"] in text and "KLM 1234 geannuleerd" in text


def test_a_standard_reason_needs_no_explanation_but_other_does():
    data = sample_data(reason_code="illness")
    del data["reason"]
    text = _text("addendum", data, "uk")
    assert _texts("uk")["addendum_reason_illness"] in text
    assert _texts("uk")["label_reason_note"] not in text
    with pytest.raises(documents.DocumentDataError):
        documents.render_html("addendum", {**data, "reason_code": "other"}, "uk")
    with pytest.raises(documents.DocumentDataError):
        documents.render_html("addendum", {**data, "reason_code": "bribe"}, "uk")


def test_the_free_text_alone_is_printed_as_before():
    text = _text("addendum", sample_data(), "ru")
    assert "The airline cancelled the flight" in text
    assert _texts("ru")["label_reason_note"] not in text


def test_every_standard_reason_is_in_every_language():
    for lang in documents.LANGUAGES:
        texts = _texts(lang)
        for code in documents.ADDENDUM_REASONS:
            assert texts[f"addendum_reason_{code}"].strip(), (lang, code)
