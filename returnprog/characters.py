"""Which characters text may hold — one rule for input (the schemas of forms and the API)
and for the PDF renderer, so that nothing accepted at intake can fail the documents later.

Refused: the C0 controls (U+0000–U+001F), DEL (U+007F) and the C1 controls
(U+0080–U+009F) — a BEL or an ESC is never part of a name, a reason or a reference, and
makes PDF text unreadable or breaks rendering. Multi-line text (notes, reasons) may also
hold a line feed and a tab; its line ends are normalised first (``\\r\\n`` and a lone
``\\r`` become ``\\n``), so what browsers send from a ``<textarea>`` is accepted.

Flask-free and dependency-free: :mod:`returnprog.schemas` and :mod:`returnprog.documents`
both import it.
"""
from __future__ import annotations

import re

_SINGLE_LINE = re.compile("[\x00-\x1f\x7f-\x9f]")
_MULTI_LINE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")  # \t and \n allowed


def normalise_newlines(value: str) -> str:
    """``\\r\\n`` and lone ``\\r`` become ``\\n``."""
    return value.replace("\r\n", "\n").replace("\r", "\n")


def control_character(value: str, *, multiline: bool = False) -> str | None:
    """The first control character in ``value`` that the rule refuses, else None.
    ``multiline`` text is judged after :func:`normalise_newlines` (pass it normalised)."""
    match = (_MULTI_LINE if multiline else _SINGLE_LINE).search(value)
    return match.group(0) if match else None
