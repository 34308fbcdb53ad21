"""How the case search folds and spells what it stores and what is typed (pure), and
the list filters' own validation."""
from __future__ import annotations

import datetime as dt

import pytest
from marshmallow import ValidationError

from returnprog import schemas, search


@pytest.mark.parametrize("cyrillic, kmu", [
    ("олександра", "oleksandra"), ("гриценко", "hrytsenko"), ("євген", "yevhen"),
    ("соловйов", "soloviov"), ("юлія", "yuliia"), ("згорани", "zghorany"),
    ("ївга", "yivha"), ("щербак", "shcherbak"), ("мельник", "melnyk"), ("яна", "yana"),
    ("анна-євгенія", "anna-yevheniia"),
])
def test_cyrillic_is_spelt_by_the_ukrainian_national_table(cyrillic, kmu):
    assert search.kmu2010(cyrillic) == kmu


def test_russian_passport_spellings_are_stored_too():
    assert search.icao("гриценко") == "gritsenko"
    assert search.spellings("юлия") == {"yulyia", "iuliia"}


def test_folding_ignores_case_accents_and_apostrophes_but_keeps_cyrillic_letters():
    assert search.fold("ОЛЕНА Émile O\u2019Brien") == "олена emile obrien"
    assert search.fold("Мар'яна") == "маряна"
    assert search.fold("ЇЖАК Йосип") == "їжак йосип"  # й and ї are letters, not accents
    assert search.fold("Straße") == "strasse"


def test_a_query_word_is_looked_for_in_each_of_its_spellings():
    terms = search.parse("Гриценко  olena OLENA")
    assert [t.exact for t in terms] == [("gritsenko", "hrytsenko"), ("olena",)]
    assert [t.spellings for t in terms] == [("gricenko", "gritsenko", "hrytsenko"), ("olena",)]
    # A Cyrillic piece may start inside a name: both the initial and the inner spelling.
    assert search.parse("євген")[0].exact == ("ievgen", "ievhen", "yevhen")


@pytest.mark.parametrize("key, words", [
    ("gricenko", ["Гриценко", "Hrytsenko", "Gritsenko", "Chritsenko", "GRYTSENKO"]),
    ("griwenko", ["Грищенко", "Hryshchenko", "Grishchenko", "Grisjtsjenko"]),
    ("wevqenko", ["Шевченко", "Shevchenko", "Sjevtsjenko", "Schewtschenko", "Szewczenko"]),
    ("iulia", ["Юлія", "Юлия", "Yuliia", "Iuliia", "Yulia", "Joelija", "Julija"]),
    ("ivanov", ["Іванов", "Иванов", "Ivanov", "Iwanow"]),
    ("xuk", ["Жук", "Zhuk", "Zjoek"]),
    ("evgen", ["Євген", "Yevhen", "Ievhen"]),
])
def test_transliterations_of_one_name_share_a_sound_key(key, words):
    """The Ukrainian national, Russian ICAO, Dutch, German and English spellings of a name
    meet in one key (what lets "Gritsenko" find a Hrytsenko registered in Latin only)."""
    for word in words:
        assert key in search.sound_keys(search.fold(word)), word


def test_sound_keys_keep_different_names_apart_and_leave_numbers_alone():
    assert search.sound_keys("hrytsenko") != search.sound_keys("hryshchenko")
    assert search.sound_keys("kovalenko") != search.sound_keys("kovalchuk")
    assert search.sound_keys("7318264501") == set()
    assert search.sound_keys("vrp-2026-000012") == set()
    # Keys are lowercase letters only: never a BSN key (capitals) or a V-number (digits).
    for word in ("Шевченко", "Chritsenko", "Zjoek"):
        assert all(k.isalpha() and k.islower() for k in search.sound_keys(search.fold(word)))


def test_short_words_are_not_indexed_and_a_query_of_only_short_words_is_refused():
    assert [t.indexed for t in search.parse("Olena K")] == [True, False]
    assert not search.searchable("ol k")
    assert search.searchable("Ян")  # spelt yan/ian
    assert not search.searchable("'")


def test_a_full_bsn_is_stored_as_a_key_no_folded_query_contains():
    key = search.bsn_key("111222333")
    assert key.isupper() and key.isalpha() and "111" not in key
    assert key in search.parse("111222333")[0].spellings
    assert search.parse("111222334")[0].spellings == ("111222334",)  # fails the 11-check


def test_a_reversed_deadline_range_is_refused_naming_the_field():
    with pytest.raises(ValidationError) as err:
        schemas.CaseQuerySchema().load({"deadline_from": "2026-06-10",
                                        "deadline_to": "2026-06-01"})
    assert list(err.value.messages) == ["deadline_to"]
    same = schemas.CaseQuerySchema().load({"deadline_from": "2026-06-01",
                                           "deadline_to": "2026-06-01"})
    assert same["deadline_from"] == same["deadline_to"] == dt.date(2026, 6, 1)


def test_a_query_the_index_cannot_answer_is_refused_at_the_field():
    with pytest.raises(ValidationError) as err:
        schemas.CaseQuerySchema().load({"q": "ol"})
    assert list(err.value.messages) == ["q"]
    assert schemas.CaseQuerySchema().load({"q": "  "})["q"] == ""
