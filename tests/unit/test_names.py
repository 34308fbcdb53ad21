"""A typed signature must be the signer's own name (issue 12): in either script, either
order, any case and spacing, across the Ukrainian and Russian transliterations, and made of
letters only."""
from __future__ import annotations

from types import SimpleNamespace

import pytest

from returnprog import names
from returnprog import signature as signature_rules

VIKTOR = ("Віктор Шевченко", "Viktor Shevchenko")


@pytest.mark.parametrize("typed", [
    "Віктор Шевченко", "Viktor Shevchenko", "viktor shevchenko", "SHEVCHENKO  Viktor",
    "Шевченко Віктор", "Виктор Шевченко",  # the Russian spelling of the same name
    "Wiktor Szewczenko",  # Polish-style, as some Ukrainians write it
    "Віктор Shevchenko",  # mixed scripts: each word is the registered one
])
def test_the_registered_name_in_any_script_order_or_case_is_accepted(typed):
    assert names.letters_only(typed)
    assert names.matches(typed, VIKTOR)


@pytest.mark.parametrize("typed", [
    "Viktor", "Viktor Shevchenko Jr", "Віктор Коваленко", "Olena Shevchenko",
    "Viktor Shevchenko Viktor",
])
def test_another_name_or_part_of_the_name_is_refused(typed):
    assert not names.matches(typed, VIKTOR)


@pytest.mark.parametrize("typed", [
    "Виктор 😀 <b>", "Viktor <b>Shevchenko</b>", "Viktor2 Shevchenko", "Viktor_Shevchenko",
    "Viktor. Shevchenko", "Ἀλέξανδρος", "Viktor -- Shevchenko", "-Viktor", "", "   ",
])
def test_only_letters_spaces_hyphens_and_apostrophes_may_be_typed(typed):
    assert not names.letters_only(typed)


def test_apostrophes_hyphens_and_accents_do_not_matter():
    maryana = ("Мар'яна Коваленко-Бойко", "Mariana Kovalenko-Boiko")
    for typed in ("Марʼяна Коваленко-Бойко", "Мар’яна Коваленко Бойко", "Mariana Kovalenko Boiko",
                  "Mariána Kovalenko-Boiko"):
        assert names.letters_only(typed), typed
        assert names.matches(typed, maryana), typed


def test_the_signature_check_names_the_problem_by_code():
    person = SimpleNamespace(given_names_latin="Viktor", family_name_latin="Shevchenko",
                             given_names_cyrillic="Віктор", family_name_cyrillic="Шевченко")
    registered = names.registered_forms(person)
    assert registered == VIKTOR

    def problem(typed):
        return signature_rules.problems("typed", typed, None, True, registered)[1]

    assert problem("Виктор 😀 <b>") == {"typed_name": signature_rules.TYPED_CHARS}
    assert problem("Olena Kovalenko") == {"typed_name": signature_rules.TYPED_MISMATCH}
    checked, none = signature_rules.problems("typed", "  шевченко   віктор ", None, True,
                                             registered)
    assert none == {} and checked.typed_name == "шевченко віктор"
    # A person registered with Latin letters only: Cyrillic typing is still recognised.
    latin_only = SimpleNamespace(given_names_latin="Olena", family_name_latin="Hrytsenko",
                                 given_names_cyrillic=None, family_name_cyrillic=None)
    assert names.registered_forms(latin_only) == ("Olena Hrytsenko",)
    assert names.matches("Олена Гриценко", names.registered_forms(latin_only))
