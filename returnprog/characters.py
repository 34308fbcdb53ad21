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

# The refused characters as regular-expression classes (Python's and ECMA's syntax alike),
# shared with the OpenAPI document, which states them as ``pattern`` of every text field.
SINGLE_LINE_REFUSED = "\\u0000-\\u001f\\u007f-\\u009f"
MULTI_LINE_REFUSED = "\\u0000-\\u0008\\u000b-\\u001f\\u007f-\\u009f"  # \t and \n allowed
# What multi-line input may hold before its line ends are normalised (a \r becomes \n).
MULTI_LINE_REFUSED_TYPED = "\\u0000-\\u0008\\u000b\\u000c\\u000e-\\u001f\\u007f-\\u009f"
_SINGLE_LINE = re.compile(f"[{SINGLE_LINE_REFUSED}]")
_MULTI_LINE = re.compile(f"[{MULTI_LINE_REFUSED}]")


def normalise_newlines(value: str) -> str:
    """``\\r\\n`` and lone ``\\r`` become ``\\n``."""
    return value.replace("\r\n", "\n").replace("\r", "\n")


def control_character(value: str, *, multiline: bool = False) -> str | None:
    """The first control character in ``value`` that the rule refuses, else None.
    ``multiline`` text is judged after :func:`normalise_newlines` (pass it normalised)."""
    match = (_MULTI_LINE if multiline else _SINGLE_LINE).search(value)
    return match.group(0) if match else None
