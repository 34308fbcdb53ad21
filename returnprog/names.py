"""Is a typed name the signer's own? The check behind the typed-signature method.

A participant who signs by typing their name must type *their* name: the one registered on
the case, in Latin letters (as on the travel document) or in Cyrillic, in either order,
ignoring case, spacing, hyphens, apostrophes and accents, and across the Ukrainian and
Russian transliterations (Віктор, Виктор, Viktor and Wiktor are one name). Only letters
of the Latin and Cyrillic scripts, spaces, hyphens and apostrophes may be typed: no
digits, emoji or markup end up printed as a signature on a declaration for the IND.

The comparison reuses the case search's folding and transliteration
(:mod:`returnprog.search`), so what finds a person also recognises their name. Pure.
"""
from __future__ import annotations

import re
import unicodedata
from typing import Iterable

from .search import fold, sound_keys, spellings

# Apostrophes as typed on phones and keyboards: ' ’ ʼ (Ukrainian uses ʼ in Мар'яна).
_APOSTROPHES = "'\u2019\u02bc"
_SEPARATORS = re.compile(rf"[\s\-{_APOSTROPHES}]+")


def _letter(ch: str) -> bool:
    if not ch.isalpha():
        return False
    name = unicodedata.name(ch, "")
    return name.startswith(("LATIN ", "CYRILLIC "))


def letters_only(typed: str) -> bool:
    """True when ``typed`` holds Latin or Cyrillic letters, with single spaces, hyphens or
    apostrophes between them, and nothing else."""
    text = unicodedata.normalize("NFC", " ".join(typed.split()))
    if not text:
        return False
    parts = re.split(rf"[ \-{_APOSTROPHES}]", text)
    return all(part and all(_letter(ch) for ch in part) for part in parts)


def _words(name: str) -> list[str]:
    # Apostrophes are dropped inside words (Мар'яна = Марьяна's spelling "maryana" in
    # search terms); hyphens and spaces split words (Anna-Maria = Anna Maria).
    return [w for w in fold(_SEPARATORS.sub(lambda m: "" if set(m.group()) <= set(_APOSTROPHES)
                                            else " ", name)).split() if w]


def _same_word(a: str, b: str) -> bool:
    if a == b:
        return True
    if spellings(a) & spellings(b):
        return True
    return bool(sound_keys(a) & sound_keys(b))


def _same_name(typed: list[str], registered: list[str]) -> bool:
    """Every typed word is one registered word and every registered word is typed (any
    order): a one-to-one pairing, found by trying each word in turn (names are short)."""
    if len(typed) != len(registered):
        return False
    if not typed:
        return True
    first, rest = typed[0], typed[1:]
    return any(_same_word(first, word) and _same_name(rest, registered[:i] + registered[i + 1:])
               for i, word in enumerate(registered))


def matches(typed: str, registered: Iterable[str]) -> bool:
    """True when ``typed`` is one of the ``registered`` forms of the signer's name (see the
    module docstring). ``registered`` holds the Latin and, if recorded, the Cyrillic name."""
    words = _words(typed)
    return bool(words) and any(_same_name(words, _words(form)) for form in registered if form)


def registered_forms(person) -> tuple[str, ...]:
    """The signer's name as registered on the case: Cyrillic first (when recorded), then
    Latin as on the travel document."""
    forms = []
    cyrillic = " ".join(p for p in (person.given_names_cyrillic, person.family_name_cyrillic)
                        if p)
    if person.given_names_cyrillic and person.family_name_cyrillic:
        forms.append(cyrillic)
    forms.append(f"{person.given_names_latin} {person.family_name_latin}")
    return tuple(forms)
