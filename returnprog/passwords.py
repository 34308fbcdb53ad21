"""The staff password policy, after NIST SP 800-63B §5.1.1 (Flask-free).

- Length: at least :data:`MIN_LENGTH` (12) and at most :data:`MAX_LENGTH` (200) characters,
  counted as typed (NIST: at least 8, and accept at least 64). Every character counts,
  spaces included; nothing is trimmed, so a password works exactly as it was typed.
- No composition rules (no "one digit, one capital"): they make passwords harder to
  remember, not harder to guess.
- Refused when it is a commonly used password: the blocklist is Django's
  ``common-passwords.txt.gz`` (the 20,000 most common passwords compiled by Royce Williams
  from breach corpora; shipped in ``returnprog/data/``). Compared case-insensitively, also
  with the digits and punctuation people put around a word stripped (``Password1234!``).
- Refused when it is repetitive or a plain sequence (``aaaaaaaaaaaa``, ``123456789012``).
- Refused when it contains a context-specific word: the service's names (``returnprog``,
  ``dtenv``), the user's e-mail address, its local part and the parts of the user's name.

Each problem is a coded message (:mod:`returnprog.messages`), shown at the password field.
"""
from __future__ import annotations

import gzip
import re
import string
from functools import cache
from pathlib import Path

from .messages import M, Message

MIN_LENGTH = 12
MAX_LENGTH = 200
BLOCKLIST_FILE = Path(__file__).parent / "data" / "common-passwords.txt.gz"
# The service's own names: the first thing a guesser tries against it.
SERVICE_WORDS = ("returnprog", "dtenv")
# A context word shorter than this ("an", "de") would refuse half of all passphrases.
MIN_CONTEXT_WORD = 4
# Fewer different characters than this is a pattern, not a secret ("abababababab").
MIN_DISTINCT = 4

_EDGES = string.digits + string.punctuation + string.whitespace
_WORD_SPLIT = re.compile(r"[\s._+\-@']+")


@cache
def blocklist() -> frozenset[str]:
    """The common passwords, lower-cased (loaded once per process)."""
    with gzip.open(BLOCKLIST_FILE, "rt", encoding="utf-8") as fh:
        return frozenset(line.strip().casefold() for line in fh if line.strip())


def _is_common(folded: str) -> bool:
    words = blocklist()
    core = folded.strip(_EDGES)
    return folded in words or (len(core) >= MIN_CONTEXT_WORD and core in words)


def _is_pattern(password: str) -> bool:
    if len(set(password.casefold())) < MIN_DISTINCT:
        return True
    steps = {_step(a, b) for a, b in zip(password, password[1:])}
    return steps in ({1}, {-1})


def _step(a: str, b: str) -> int | None:
    """+1 or -1 when ``b`` follows or precedes ``a`` (digits wrap: 9 then 0), else None."""
    if a.isdigit() and b.isdigit():
        diff = (int(b) - int(a)) % 10
        return {1: 1, 9: -1}.get(diff)
    diff = ord(b.casefold()) - ord(a.casefold())
    return diff if diff in (-1, 1) else None


def context_words(email: str | None = None, name: str | None = None,
                  extra: tuple[str, ...] = ()) -> set[str]:
    """The words a password of this user may not contain (lower-cased)."""
    words = set(SERVICE_WORDS)
    email = (email or "").strip().casefold()
    if email:
        words.add(email)
        local = email.split("@", 1)[0]
        words.add(local)
        words.update(_WORD_SPLIT.split(local))
    for text in (name or "", *extra):
        text = text.strip().casefold()
        words.update(_WORD_SPLIT.split(text))
        words.add(re.sub(r"\s+", "", text))
    return {w for w in words if len(w) >= MIN_CONTEXT_WORD}


def problems(password: str, *, email: str | None = None, name: str | None = None,
             extra: tuple[str, ...] = ()) -> list[Message]:
    """Every reason why ``password`` may not be a staff password for the user with
    ``email`` and ``name``; [] when it may. The password is judged exactly as typed."""
    if not isinstance(password, str) or not MIN_LENGTH <= len(password) <= MAX_LENGTH:
        return [M("validate.password_length")]
    folded = password.casefold()
    found = []
    if _is_common(folded):
        found.append(M("validate.password_common"))
    elif _is_pattern(password):
        found.append(M("validate.password_pattern"))
    if any(word in folded for word in context_words(email, name, extra)):
        found.append(M("validate.password_context"))
    return found


class WeakPassword(ValueError):
    """A password the policy refuses; ``messages`` say why (coded)."""

    def __init__(self, messages: list[Message]):
        super().__init__("; ".join(messages))
        self.messages = messages


def require_acceptable(password: str, *, email: str | None = None,
                       name: str | None = None) -> None:
    """Raise :class:`WeakPassword` unless ``password`` meets the policy: the last line of
    defence where a password is stored, whatever path the caller came by."""
    found = problems(password, email=email, name=name)
    if found:
        raise WeakPassword(found)
