"""The case search: what a counsellor types finds the case, through an index.

One row per case in ``case_search`` holds a *haystack*: every participant's names, the case
reference, the V-numbers and a key for each full BSN, all folded (Python ``casefold``,
Latin accents dropped, apostrophes dropped) and written in Latin letters: Cyrillic names
are stored as their Ukrainian national transliteration (KMU 2010, the passport spelling)
and as the ICAO 9303 spelling of Russian passports (Гриценко → ``hrytsenko`` and
``gritsenko``). A query is folded and transliterated the same way, split on white space,
and every word must occur somewhere in the haystack (AND, any order, substrings).
Each name word is also stored as a *sound key* (:func:`sound_keys`), where the Ukrainian,
Russian, Dutch, German and English transliterations of one name coincide, so "Gritsenko"
or "Chritsenko" finds a Hrytsenko registered in Latin letters only; matches as typed rank
above matches through the key (:func:`relevance`).

Why Latin only: PostgreSQL's ``pg_trgm`` takes trigrams of word characters only, and in a
database with ``LC_CTYPE=C`` (the test server, many installations) Cyrillic letters are
not word characters, so a Cyrillic pattern would scan the whole index. Transliterating
both sides keeps every pattern indexable on both databases, and a Cyrillic query also
finds a person registered with Latin letters only.

The index: PostgreSQL a ``pg_trgm`` GIN index on ``haystack`` (``LIKE '%word%'``); SQLite
an FTS5 table with the ``trigram`` tokenizer over ``case_search`` (external content, kept
in step by triggers), queried with ``MATCH``. Words shorter than three characters give no
trigram: they only narrow what the longer words found (checked with ``instr``/``strpos``
on those rows); a query with no word of three characters is refused
(``search.too_short``), since it could only be answered by reading every case.

Kept in the same transaction as the change by the services that write participants
(``open_case``, ``update_intake``); :func:`reindex` rebuilds it (migration, benchmarks).
No Flask here.
"""
from __future__ import annotations

import hashlib
import re
import unicodedata
from dataclasses import dataclass
from typing import Iterable

from sqlalchemy import (String, and_, bindparam, case, func, insert, literal, or_, select,
                        text, update)
from sqlalchemy.engine import Connection

from .identifiers import is_valid_bsn
from .models import Case, CaseSearch, Participant

MIN_INDEXED = 3  # trigram indexes find nothing shorter

# Ukrainian national transliteration (Resolution of the Cabinet of Ministers of Ukraine
# No. 55 of 27 January 2010): letters whose spelling differs at the start of a word are
# pairs (initial, elsewhere). Russian letters get the usual Ukrainian-style values.
_KMU: dict[str, str | tuple[str, str]] = {
    "а": "a", "б": "b", "в": "v", "г": "h", "ґ": "g", "д": "d", "е": "e", "є": ("ye", "ie"),
    "ж": "zh", "з": "z", "и": "y", "і": "i", "ї": ("yi", "i"), "й": ("y", "i"), "к": "k",
    "л": "l", "м": "m", "н": "n", "о": "o", "п": "p", "р": "r", "с": "s", "т": "t", "у": "u",
    "ф": "f", "х": "kh", "ц": "ts", "ч": "ch", "ш": "sh", "щ": "shch", "ь": "",
    "ю": ("yu", "iu"), "я": ("ya", "ia"),
    "ё": ("yo", "io"), "ы": "y", "э": "e", "ъ": "",
}
# ICAO Doc 9303 part 3 (machine-readable passports; Russian passports since 2013).
_ICAO: dict[str, str] = {
    "а": "a", "б": "b", "в": "v", "г": "g", "ґ": "g", "д": "d", "е": "e", "ё": "e", "є": "ie",
    "ж": "zh", "з": "z", "и": "i", "і": "i", "ї": "i", "й": "i", "к": "k", "л": "l", "м": "m",
    "н": "n", "о": "o", "п": "p", "р": "r", "с": "s", "т": "t", "у": "u", "ф": "f", "х": "kh",
    "ц": "ts", "ч": "ch", "ш": "sh", "щ": "shch", "ъ": "ie", "ы": "y", "ь": "", "э": "e",
    "ю": "iu", "я": "ia",
}
_APOSTROPHES = re.compile("['\u2019\u02bc\u02b9`\u00b4]")
_CYRILLIC = re.compile("[\u0400-\u04ff]")


def fold(value: str) -> str:
    """Case- and accent-insensitive form of ``value``: NFKC, ``casefold``, accents on Latin
    letters dropped (é → e; Cyrillic й and ї keep theirs: they are letters of their own),
    apostrophes dropped (Мар'яна, O'Brien)."""
    value = unicodedata.normalize("NFKC", value).casefold()
    out: list[str] = []
    for ch in unicodedata.normalize("NFD", value):
        if unicodedata.combining(ch) and out and out[-1] < "\u0250":
            continue
        out.append(ch)
    return _APOSTROPHES.sub("", unicodedata.normalize("NFC", "".join(out)))


def kmu2010(word: str, initial: bool = True) -> str:
    """The KMU 2010 transliteration of a folded word; ``initial=False`` spells it as the
    middle of a word (for a query that may start mid-name)."""
    out, start = [], initial
    for i, ch in enumerate(word):
        if not ch.isalpha():
            start = True  # Anna-Yevheniia: a part after a hyphen is spelt as a word start
            out.append(ch)
            continue
        value = _KMU.get(ch, ch)
        if isinstance(value, tuple):
            value = value[0] if start else value[1]
        if ch == "г" and i > 0 and word[i - 1] == "з":
            value = "gh"  # зг → zgh, to tell it from ж (zh)
        out.append(value)
        start = False
    return "".join(out)


def icao(word: str) -> str:
    """The ICAO 9303 transliteration of a folded word (Гриценко → gritsenko)."""
    return "".join(_ICAO.get(ch, ch) for ch in word)


def spellings(word: str, *, query: bool = False) -> set[str]:
    """The Latin spellings under which a folded ``word`` is stored (or, for a query word
    that may begin in the middle of a name, looked for)."""
    if not _CYRILLIC.search(word):
        return {word}
    found = {kmu2010(word), icao(word)}
    if query:
        found.add(kmu2010(word, initial=False))
    return found


# Loose spellings bridge the transliterations people meet in passports, Dutch registers
# and letters: Ukrainian national (Hrytsenko), Russian ICAO (Gritsenko), Dutch
# (Chritsenko, Grisjtsjenko, Joelija), German (Schewtschenko), English (Yulia). Each name
# word is also stored as a *sound key*, a spelling in a smaller alphabet where the
# variants coincide; a query word is looked for under its key too. Keys use lowercase
# letters only (pg_trgm and FTS5 index them like any name); q, w, x and c stand for ч, ш,
# ж and ц, so a key is never confused with the BSN key (capitals) or a V-number (digits).
# Replacements run in this order, longest first; "ch" is ч in English and the national
# systems but х in Dutch and German, so a Latin word with "ch" gets both keys.
_LOOSE_FIRST = (("x", "ks"), ("w", "v"), ("ck", "k"), ("q", "k"))
_LOOSE_CLUSTERS = (
    ("schtsch", "w"), ("sjtsj", "w"), ("shtsh", "w"), ("shch", "w"), ("tsch", "q"),
    ("sch", "w"), ("tsj", "q"), ("tch", "q"), ("cz", "q"),
    ("zh", "x"), ("zj", "x"), ("sh", "w"), ("sj", "w"), ("sz", "w"),
    ("kh", "g"), ("ts", "c"), ("tz", "c"), ("oe", "u"), ("ou", "u"), ("ph", "f"))
_LOOSE_LETTERS = str.maketrans({"h": "g", "y": "i", "j": "i"})
_DOUBLES = re.compile(r"(.)\1+")
_LATIN_WORD = re.compile(r"[a-z]+")


def sound_keys(word: str, *, ch_is_kh: bool | None = None) -> set[str]:
    """The sound keys of a folded word (Latin or Cyrillic): Гриценко, Hrytsenko,
    Gritsenko and Chritsenko all give ``gricenko``; Шевченко, Shevchenko and
    Sjevtsjenko give ``wevqenko``. Words that are not plain letters (V-numbers,
    references) have none. ``ch_is_kh`` False: "ch" is known to be ч."""
    if _CYRILLIC.search(word):
        # The national system spells ч as ch and х as kh: no doubt about "ch".
        return sound_keys(kmu2010(word), ch_is_kh=False)
    if not _LATIN_WORD.fullmatch(word):
        return set()
    for old, new in _LOOSE_FIRST:
        word = word.replace(old, new)
    keys = set()
    for ch in ("q", "g") if "ch" in word and ch_is_kh is not False else ("q",):
        key = word
        for old, new in _LOOSE_CLUSTERS + (("ch", ch),):
            key = key.replace(old, new)
        key = _DOUBLES.sub(r"\1", key.translate(_LOOSE_LETTERS)).replace("ie", "e")
        keys.add(key)
    return keys


def bsn_key(bsn: str) -> str:
    """What a full BSN is stored as: a digest written in capital letters, which no folded
    query contains, so only the whole BSN (never a prefix) finds the case."""
    digest = hashlib.sha256(f"returnprog-bsn:{bsn}".encode()).hexdigest()[:20]
    return "BSN" + digest.translate(str.maketrans("0123456789abcdef", "ABCDEFGHIJKLMNOP"))


def haystack(reference: str, people: Iterable) -> str:
    """The text one case is found by: its reference and, for every participant, the names
    in all stored spellings, the V-number and the BSN key (see the module docstring)."""
    words: dict[str, None] = {fold(reference): None}
    for p in people:
        for name in (p.given_names_latin, p.family_name_latin, p.given_names_cyrillic,
                     p.family_name_cyrillic):
            for word in fold(name or "").split():
                words.update(dict.fromkeys(sorted(spellings(word))))
                words.update(dict.fromkeys(sorted(sound_keys(word))))
        words[p.v_number] = None
        if p.bsn:
            words[bsn_key(p.bsn)] = None
    return " ".join(words)


@dataclass(frozen=True)
class Term:
    """One word of a query: it matches when any of its spellings occurs in the haystack.
    ``exact`` are the spellings as typed (and transliterated); the rest are sound keys,
    which find more but rank lower."""

    spellings: tuple[str, ...]
    exact: tuple[str, ...] = ()

    @property
    def indexed(self) -> bool:
        """True when the trigram index can find it (every spelling ≥ 3 characters)."""
        return all(len(s) >= MIN_INDEXED for s in self.spellings)


def parse(q: str | None) -> list[Term]:
    """The words of a search query, each with its spellings (duplicates dropped)."""
    terms: list[Term] = []
    for word in dict.fromkeys(fold(q or "").split()):
        found = spellings(word, query=True)
        if word.isdigit() and is_valid_bsn(word):
            found.add(bsn_key(word))
        exact = tuple(sorted(found))
        # A short word's key could be shorter than the index can find; such a word is
        # looked for as typed only.
        keys = {k for k in sound_keys(word) if len(k) >= MIN_INDEXED}
        if all(len(s) >= MIN_INDEXED for s in found):
            found |= keys
        # A spelling that contains another adds nothing to an OR of substrings.
        minimal = sorted(s for s in found if not any(o != s and o in s for o in found))
        terms.append(Term(tuple(minimal), exact))
    return terms


def searchable(q: str | None) -> bool:
    """True when the query has a word the index can find (see ``search.too_short``)."""
    return any(t.indexed for t in parse(q))


def shape(terms: list[Term]) -> tuple:
    """What a statement for ``terms`` depends on, apart from the words themselves: per
    word, whether the index can find it and how many spellings (and spellings as typed)
    it has. Queries of one shape share their statements (:func:`matching_case_ids`,
    :func:`relevance`), with the words as parameters (:func:`parameters`)."""
    return tuple((t.indexed, len(t.spellings), len(t.exact or t.spellings)) for t in terms)


def _word(name: str):
    """The parameter ``name``: one spelling of a query word (or its pattern)."""
    return bindparam(name, type_=String())


def like_pattern(value: str) -> str:
    """A ``LIKE`` pattern for ``value`` anywhere in the text (``/`` escapes)."""
    return "%" + value.replace("/", "//").replace("%", "/%").replace("_", "/_") + "%"


def parameters(dialect: str, terms: list[Term]) -> dict:
    """The values of the parameters that the statements of :func:`matching_case_ids` and
    :func:`relevance` for ``shape(terms)`` take: word ``i``'s spelling ``j`` as
    ``q{i}s{j}`` (as typed: ``q{i}e{j}``), padded for whole-word (``…w``) and word-start
    (``…p``) matches, as a ``LIKE`` pattern on PostgreSQL (``…l``); on SQLite the FTS5
    expression of the indexed words as ``q_fts``."""
    params: dict[str, str] = {}
    for i, term in enumerate(terms):
        for j, s in enumerate(term.spellings):
            params.update({f"q{i}s{j}": s, f"q{i}s{j}w": f" {s} ", f"q{i}s{j}p": f" {s}"})
            if dialect != "sqlite":
                params[f"q{i}s{j}l"] = like_pattern(s)
        for j, s in enumerate(term.exact or term.spellings):
            params.update({f"q{i}e{j}w": f" {s} ", f"q{i}e{j}p": f" {s}"})
    if dialect == "sqlite":
        # FTS5 phrase strings: double quotes doubled; trigram phrases match substrings.
        params["q_fts"] = " AND ".join(
            "(" + " OR ".join('"' + s.replace('"', '""') + '"' for s in t.spellings) + ")"
            for t in terms if t.indexed)
    return params


def matching_case_ids(dialect: str, shape: tuple):
    """A SELECT of the ids of cases whose haystack holds every word of a query of this
    :func:`shape`, driven by the index; the words are :func:`parameters`. The shape must
    contain at least one indexed word (:func:`searchable`)."""
    indexed = [(i, n) for i, (ok, n, _) in enumerate(shape) if ok]
    short = [(i, n) for i, (ok, n, _) in enumerate(shape) if not ok]
    if not indexed:
        raise ValueError("no indexed term")
    column = CaseSearch.haystack
    # Short words are checked on the rows the index found, with a function no index
    # answers, so the planner cannot try to use the trigram index for them.
    find = func.strpos if dialect == "postgresql" else func.instr
    narrow = [or_(*(find(column, _word(f"q{i}s{j}")) > 0 for j in range(n)))
              for i, n in short]
    if dialect == "sqlite":
        fts = text("SELECT rowid FROM case_search_fts WHERE case_search_fts MATCH :q_fts"
                   ).columns(rowid=CaseSearch.case_id.type)
        if not narrow:
            return fts
        hits = fts.subquery()
        return select(CaseSearch.case_id).where(CaseSearch.case_id.in_(select(hits.c.rowid)),
                                                *narrow)
    like = [or_(*(column.like(_word(f"q{i}s{j}l"), escape="/") for j in range(n)))
            for i, n in indexed]
    return select(CaseSearch.case_id).where(and_(*like), *narrow)


def relevance(dialect: str, shape: tuple):
    """A score for ranking the cases a search found: per word of the query, 4 when it is a
    whole word of the haystack as typed (a full name, the whole reference), 3 when a word
    starts with it, 2 and 1 for the same through its sound key only (Gritsenko for a
    Hrytsenko), 0 when it only occurs inside a word. Summed over the words, so "Olena
    Kovalenko" ranks the person of that name above an Olenaria Kovalenkova. For a query of
    this :func:`shape`, the words being :func:`parameters`.

    Only evaluated on the rows the index found (the caller joins ``case_search``)."""
    find = func.strpos if dialect == "postgresql" else func.instr
    padded = literal(" ") + CaseSearch.haystack + literal(" ")

    def found(names):
        return or_(*(find(padded, _word(name)) > 0 for name in names))

    score = literal(0)
    for i, (_, spellings, exact) in enumerate(shape):
        score = score + case(
            (found(f"q{i}e{j}w" for j in range(exact)), 4),
            (found(f"q{i}e{j}p" for j in range(exact)), 3),
            (found(f"q{i}s{j}w" for j in range(spellings)), 2),
            (found(f"q{i}s{j}p" for j in range(spellings)), 1), else_=0)
    return score


def index_case(session, case_id: int, reference: str, people: Iterable) -> None:
    """Bring one case's index row up to date (in the caller's transaction)."""
    value = haystack(reference, people)
    changed = session.execute(update(CaseSearch).where(CaseSearch.case_id == case_id)
                              .values(haystack=value)).rowcount
    if not changed:
        session.execute(insert(CaseSearch).values(case_id=case_id, haystack=value))


def reindex(connection: Connection, batch: int = 5_000) -> int:
    """Rebuild the whole index from the participants (migration, benchmark seeding);
    returns the number of cases indexed. Runs in the caller's transaction."""
    connection.execute(CaseSearch.__table__.delete())
    last, count = 0, 0
    while True:
        cases = connection.execute(select(Case.id, Case.reference).where(Case.id > last)
                                   .order_by(Case.id).limit(batch)).all()
        if not cases:
            return count
        ids = [c.id for c in cases]
        people: dict[int, list] = {i: [] for i in ids}
        for p in connection.execute(select(
                Participant.case_id, Participant.given_names_latin,
                Participant.family_name_latin, Participant.given_names_cyrillic,
                Participant.family_name_cyrillic, Participant.v_number, Participant.bsn)
                .where(Participant.case_id.in_(ids)).order_by(Participant.id)):
            people[p.case_id].append(p)
        connection.execute(insert(CaseSearch), [
            {"case_id": c.id, "haystack": haystack(c.reference, people[c.id])} for c in cases])
        count += len(cases)
        last = ids[-1]


# --- schema parts Alembic cannot describe ---------------------------------------------------

SQLITE_FTS = "case_search_fts"
SQLITE_DDL = (
    # case_sensitive 1: both sides are folded already, and the BSN keys are in capitals
    # precisely so that no folded query can match them.
    f"CREATE VIRTUAL TABLE {SQLITE_FTS} USING fts5(haystack, content='case_search', "
    "content_rowid='case_id', tokenize='trigram case_sensitive 1')",
    f"CREATE TRIGGER case_search_ai AFTER INSERT ON case_search BEGIN "
    f"INSERT INTO {SQLITE_FTS}(rowid, haystack) VALUES (new.case_id, new.haystack); END",
    f"CREATE TRIGGER case_search_ad AFTER DELETE ON case_search BEGIN "
    f"INSERT INTO {SQLITE_FTS}({SQLITE_FTS}, rowid, haystack) "
    "VALUES ('delete', old.case_id, old.haystack); END",
    f"CREATE TRIGGER case_search_au AFTER UPDATE ON case_search BEGIN "
    f"INSERT INTO {SQLITE_FTS}({SQLITE_FTS}, rowid, haystack) "
    "VALUES ('delete', old.case_id, old.haystack); "
    f"INSERT INTO {SQLITE_FTS}(rowid, haystack) VALUES (new.case_id, new.haystack); END",
)


def alembic_filters(dialect: str) -> dict:
    """Alembic ``include_name``/``include_object`` hooks for comparing the models with a
    database of ``dialect``: the SQLite FTS5 table and its shadow tables are the search
    index (made by the migration, not tables of the models), and an index declared for
    another dialect only (``ddl_if``) is not expected here."""
    def include_name(name, type_, parent_names) -> bool:
        return not (type_ == "table" and name and name.startswith(SQLITE_FTS))

    def include_object(obj, name, type_, reflected, compare_to) -> bool:
        only = getattr(obj, "_ddl_if", None)
        return not (type_ == "index" and only is not None and only.dialect
                    and only.dialect != dialect)

    return {"include_name": include_name, "include_object": include_object}
