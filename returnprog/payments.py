"""Travel support: the household's amount from the tariff in force.

Amounts are whole euro cents (int), never floats.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from .policy import Policy


@dataclass(frozen=True)
class Quote:
    """The household's travel-support amount with its breakdown."""

    adults: int
    minors: int
    adult_cents: int
    minor_cents: int
    tariff_effective_from: dt.date
    tariff_label: str

    @property
    def amount_cents(self) -> int:
        """Total for the household in cents."""
        return self.adults * self.adult_cents + self.minors * self.minor_cents

    def breakdown(self) -> dict:
        """JSON-ready breakdown, stored with the payment and printed on the receipt."""
        return {"adults": self.adults, "adult_cents": self.adult_cents,
                "minors": self.minors, "minor_cents": self.minor_cents,
                "tariff_effective_from": self.tariff_effective_from.isoformat(),
                "tariff_label": self.tariff_label, "amount_cents": self.amount_cents}


def quote(policy: Policy, adults: int, minors: int, on: dt.date) -> Quote | None:
    """The household's amount under the tariff in force on ``on``; None if there is none."""
    tariff = policy.tariff_on(on)
    if tariff is None:
        return None
    return Quote(adults, minors, tariff.adult_cents, tariff.minor_cents,
                 tariff.effective_from, tariff.label)
