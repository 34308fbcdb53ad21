"""The staff UI and the signing pages name the service and each document kind from the
glossary, with the same words as the PDFs."""
from __future__ import annotations

import pytest
from flask_babel import force_locale

from returnprog import glossary, i18n
from returnprog.web.signing_common import page_texts

from ..unit.test_documents import GLOSSARY_NAMES


def test_the_staff_ui_labels_document_kinds_with_the_glossary_names(app):
    assert set(i18n.DOCUMENT_LABELS) == set(glossary.DOCUMENT_NAMES)
    with app.test_request_context(), force_locale("nl"):
        labels = {kind: str(i18n.DOCUMENT_LABELS[kind]) for kind in ("commitment",
                  "departure_agreement", "addendum")}
    assert labels == {kind: GLOSSARY_NAMES["nl"][kind] for kind in labels}


@pytest.mark.parametrize("lang", ["nl", "uk", "ru", "en"])
def test_the_signing_pages_name_the_service_and_documents_from_the_glossary(lang):
    texts = page_texts(lang)
    names = GLOSSARY_NAMES[lang]
    assert texts["service"] == names["service"]
    for kind in ("commitment", "departure_agreement", "addendum"):
        assert texts["doc_names"][kind] == names[kind]
