"""Money as whole cents, and the payment methods' English names: a leaf module that the
payment rules, the exports and the message renderer all use without importing each other."""
from __future__ import annotations

METHOD_LABELS = {"transfer": "bank transfer", "cash": "cash at the departure point",
                 "card": "prepaid card"}


def format_cents(cents: int) -> str:
    """``150000`` → ``"1500.00"``: decimal text by integer arithmetic, never by division."""
    if not isinstance(cents, int) or isinstance(cents, bool):
        raise TypeError("amounts are whole cents (int)")
    sign = "-" if cents < 0 else ""
    whole, part = divmod(abs(cents), 100)
    return f"{sign}{whole}.{part:02d}"
