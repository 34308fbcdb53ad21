"""The separate acknowledgements a signer gives, per document kind, besides the general
consent: each condition that cannot be undone or that binds the signer to a date or an
amount gets its own highlighted block and its own tick box on the signing page, and
signing is refused until every one of them is ticked.

Each acknowledgement is named by the key of its sentence in ``pdf_templates/texts`` (the
same sentence the document prints), so the page shows the very words that are signed.
Flask-free data; the signing service checks it (``services.signing.check_signature``).
"""
from __future__ import annotations

from collections.abc import Iterable

# Problem code of a missing acknowledgement (field ``ack-<key>``).
MISSING = "acknowledgement"

REQUIRED: dict[str, tuple[str, ...]] = {
    # The withdrawal of the asylum application goes to the IND and is final.
    "withdrawal_declaration": ("cond_irreversible",),
    # The agreement binds the household to a date and an amount, reclaimed on re-entry.
    "departure_agreement": ("cond_deadline", "cond_support", "cond_reclaim"),
}


def required(kind: str | None) -> tuple[str, ...]:
    """The acknowledgement keys ``kind`` needs, in the order the page shows them."""
    return REQUIRED.get(kind or "", ())


def field(key: str) -> str:
    """The form field (and problem field) of acknowledgement ``key``."""
    return f"ack-{key}"


def missing(kind: str | None, given: Iterable[str] | None) -> dict[str, str]:
    """Problems (field -> ``MISSING``) for each required acknowledgement not in ``given``."""
    got = set(given or ())
    return {field(key): MISSING for key in required(kind) if key not in got}


def given(kind: str | None, given_keys: Iterable[str] | None) -> list[str]:
    """The acknowledgements of ``kind`` that were given, in order (what the record notes)."""
    got = set(given_keys or ())
    return [key for key in required(kind) if key in got]
