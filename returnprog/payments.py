"""Travel support: the household's amount from the tariff in force, the payment's life
cycle, the four-eyes rule and the checks on bank details.

Pure: no Flask and no database. Amounts are whole euro cents (int), never floats.

A payment's life is declared in :mod:`payment_flow` (statuses and steps, as data): proposed
→ approved by another person → released once (``pay_support``) → for a bank transfer
scheduled in a batch → sent → booked or returned; a rejected, cancelled or returned payment
is kept for the record and a new one may be proposed.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from .identifiers import normalise_iban
from .money import METHOD_LABELS, format_cents  # noqa: F401 (part of this module's API)
from .messages import M
from . import payment_flow
from .policy import Policy
from .workflow import PAYMENT_DECIDERS

METHODS = ("transfer", "cash", "card")
STATUSES = tuple(payment_flow.STATUSES)
LIVE_STATUSES = payment_flow.LIVE_STATUSES
# A payment can be cancelled until the money has been released.
CANCELLABLE_STATUSES = payment_flow.sources("cancel")
ACCOUNT_HOLDER_MAX = 140
# An upper bound on any amount the service handles (EUR 10 million): keeps sums within a
# 64-bit integer and catches a mistyped reclaim.
MAX_CENTS = 1_000_000_000


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
                "adults_cents": self.adults * self.adult_cents,
                "minors": self.minors, "minor_cents": self.minor_cents,
                "minors_cents": self.minors * self.minor_cents,
                "tariff_effective_from": self.tariff_effective_from.isoformat(),
                "tariff_label": self.tariff_label, "amount_cents": self.amount_cents}


def quote(policy: Policy, adults: int, minors: int, on: dt.date) -> Quote | None:
    """The household's amount under the tariff in force on ``on``; None if there is none."""
    if adults < 0 or minors < 0:
        raise ValueError("a household cannot have a negative number of people")
    tariff = policy.tariff_on(on)
    if tariff is None:
        return None
    return Quote(adults, minors, tariff.adult_cents, tariff.minor_cents,
                 tariff.effective_from, tariff.label)


# --- bank details -------------------------------------------------------------------------

def iban_check(value: str | None) -> tuple[str, str | None]:
    """The IBAN in its compact form (spaces removed, upper case) and why it is not valid,
    or None when it is (country, length, structure and checksum, via schwifty)."""
    from schwifty import IBAN
    from schwifty import exceptions as exc

    iban = normalise_iban(value or "")
    if not iban:
        return iban, M("payment.iban_required")
    try:
        IBAN(iban, validate_bban=True)
    except exc.InvalidChecksumDigits:
        return iban, M("payment.iban_checksum")
    except exc.InvalidLength:
        return iban, M("payment.iban_length", length=len(iban), country=iban[:2])
    except exc.InvalidCountryCode:
        return iban, M("payment.iban_country", country=iban[:2])
    except exc.SchwiftyException:
        return iban, M("payment.iban_layout")
    return iban, None


def is_sepa_iban(iban: str) -> bool:
    """True when the account is in the SEPA zone, so a SEPA credit transfer can reach it
    (Ukrainian accounts, for example, are not)."""
    from schwifty import IBAN

    return bool(IBAN(iban).in_sepa_zone)


def mask_iban(iban: str | None) -> str | None:
    """Show only the country and the last four characters, e.g. ``NL** **** 4300``."""
    if not iban:
        return iban
    return f"{iban[:2]}** **** {iban[-4:]}"


def method_problems(method: str, iban: str | None, account_holder: str | None) -> dict:
    """Per-field problems with the payment details for ``method`` ({} when complete).

    A bank transfer needs a valid IBAN and the account holder; cash and card take neither
    (so nobody believes bank details were stored when they were not)."""
    problems: dict[str, list[str]] = {}
    if method not in METHODS:
        return {"method": [M("payment.method_one_of", methods=", ".join(METHODS))]}
    holder = (account_holder or "").strip()
    if method == "transfer":
        _, problem = iban_check(iban)
        if problem:
            problems["iban"] = [problem]
        if not holder:
            problems["account_holder"] = [M("payment.holder_required")]
        elif len(holder) > ACCOUNT_HOLDER_MAX:
            problems["account_holder"] = [M("payment.holder_max", max=ACCOUNT_HOLDER_MAX)]
    else:
        if (iban or "").strip():
            problems["iban"] = [M("payment.no_iban_for", method=method)]
        if holder:
            problems["account_holder"] = [M("payment.no_holder_for", method=method)]
    return problems


# --- four eyes ----------------------------------------------------------------------------

def decision_problem(role: str, actor_id: int, proposed_by: int, *,
                     actor_person: str | None = None,
                     proposer_person: str | None = None) -> str | None:
    """Why ``actor`` may not approve or reject a proposal made by ``proposed_by``: only a
    supervisor decides, and never on their own proposal (whatever their role is now) —
    nor on one made by another account of the same person, when the persons are given."""
    if actor_id == proposed_by:
        return M("payment.own_proposal")
    if actor_person is not None and actor_person == proposer_person:
        return M("payment.own_proposal:person")
    if role not in PAYMENT_DECIDERS:
        return M("payment.decide_role")
    return None


def disbursement_problem(actor_id: int, proposed_by: int, approved_by: int | None, *,
                         actor_person: str | None = None,
                         other_persons: tuple[str | None, ...] = ()) -> str | None:
    """Why ``actor`` may not pay out: the one who pays is neither proposer nor approver,
    as an account or (``other_persons``: the proposer's and approver's) as a person."""
    if actor_id in (proposed_by, approved_by):
        return M("payment.disburse_four_eyes")
    if actor_person is not None and actor_person in other_persons:
        return M("payment.disburse_four_eyes:person")
    return None


def reclaim_problems(reclaim_cents: int, amount_cents: int, reentry_on: dt.date,
                     departed_on: dt.date | None, today: dt.date) -> dict:
    """Per-field problems with a re-entry record ({} when it may be recorded)."""
    problems: dict[str, list[str]] = {}
    if reclaim_cents < 0:
        problems["reclaim_cents"] = [M("payment.reclaim_negative")]
    elif reclaim_cents > amount_cents:
        problems["reclaim_cents"] = [M("payment.reclaim_too_much", reclaim=reclaim_cents, paid=amount_cents)]
    if reentry_on > today:
        problems["reentry_on"] = [M("payment.reentry_future")]
    elif departed_on is not None and reentry_on < departed_on:
        problems["reentry_on"] = [M("payment.reentry_before_departure",
                                    date=departed_on)]
    return problems
