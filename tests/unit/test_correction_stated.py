"""Which document states what (issue 13 item 1): the correction service decides which
signed documents a correction supersedes by what each kind prints
(``corrections.PRINTED_BY_KIND``). Checked here against the templates themselves: a change
of a key alters a kind's rendered HTML exactly when the table says that kind prints it."""
from __future__ import annotations

import copy

import pytest

from returnprog import documents
from returnprog.services import corrections

from .test_documents import sample_data

CHANGES = {
    "destination_oblast": "UA-30",
    "destination_place": "Kyiv",
    "departure_deadline": "2027-02-15",
    "previous_deadline": "2027-01-05",
    "reason": "Another reason altogether.",
    "method": "transfer",
}


@pytest.mark.parametrize("kind", documents.KINDS)
@pytest.mark.parametrize("key", sorted(CHANGES))
def test_a_key_changes_the_document_exactly_when_the_kind_prints_it(kind, key):
    before = documents.render_html(kind, sample_data(), "uk")
    after = documents.render_html(kind, sample_data(**{key: CHANGES[key]}), "uk")
    assert (before != after) == (key in corrections.PRINTED_BY_KIND[kind])


@pytest.mark.parametrize("kind", documents.KINDS)
@pytest.mark.parametrize("field, value", [("family_name_latin", "Bondarenko"),
                                          ("given_names_cyrillic", "Марко"),
                                          ("date_of_birth", "2015-01-01")])
def test_every_kind_prints_the_names_and_birth_dates_of_the_people_on_it(kind, field, value):
    data = sample_data()
    changed = copy.deepcopy(data)
    changed["participants"][1][field] = value  # the minor: on every kind, also the declaration
    assert documents.render_html(kind, data, "uk") != documents.render_html(kind, changed, "uk")
    assert corrections.stated(kind, data) != corrections.stated(kind, changed)


def test_what_is_not_printed_does_not_count_as_a_change():
    data = sample_data()
    data["participants"][0].update(relationship="principal", is_principal=True)
    changed = copy.deepcopy(data)
    changed["participants"][0]["relationship"] = "spouse"
    assert corrections.stated("commitment", data) == corrections.stated("commitment", changed)
