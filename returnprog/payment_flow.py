"""A payment's life, declared as data like the case workflow (issue 15).

Pure: no Flask, no database. Each :class:`Step` names the statuses it starts from, the
status it leads to and the payment methods it applies to; the services change a payment
only by compare-and-set from a step's ``sources`` to its ``target``, so the table is the
single place that says what may follow what::

    proposed ─approve─▶ approved ─release (pay_support)─▶ disbursed
      │ reject/cancel      │ cancel                          │ transfer only:
      ▼                    ▼                                 ├─schedule (batch)─▶ scheduled
    rejected           cancelled                scheduled ─withdraw (batch)─▶ disbursed
                                                scheduled ─send (batch)─▶ sent
                                                     sent ─book (statement)─▶ booked
                                           sent | booked ─return (statement)─▶ returned

``disbursed`` is the moment finance releases the money (the ``pay_support`` transition):
for cash and card it is the hand-over at the departure point; for a bank transfer it means
*released for the next bank batch* — the bank leg (scheduled, sent, booked or returned) is
shown beside it, so nobody reads "paid" while no bank file exists. The case moves to
``support_paid`` at release, not at the bank's confirmation: the household must be able
to travel on the agreed day, and a return is repaired by a re-proposal, not by moving the
case back (DESIGN §3 has no backward transitions).

*Live* statuses hold the case's one payment in flight: a partial unique index allows at
most one live payment per case, so there is never a second transfer while one is in flight
and never two booked payments. ``returned`` is not live: after a return a corrected
payment may be proposed again (and needs a second person's approval like any proposal).
"""
from __future__ import annotations

from dataclasses import dataclass

from .glossary import N_

TRANSFER, CASH, CARD = "transfer", "cash", "card"
ALL_METHODS = frozenset({TRANSFER, CASH, CARD})


@dataclass(frozen=True)
class Status:
    """One status a payment can be in."""

    name: str
    live: bool
    label: str  # English, marked for translation (i18n translates it)


@dataclass(frozen=True)
class Step:
    """One change of a payment's status."""

    name: str
    sources: frozenset[str]
    target: str
    methods: frozenset[str] = ALL_METHODS


STATUSES: dict[str, Status] = {s.name: s for s in (
    Status("proposed", True, N_("Proposed")),
    Status("approved", True, N_("Approved")),
    Status("rejected", False, N_("Rejected")),
    Status("cancelled", False, N_("Cancelled")),
    Status("disbursed", True, N_("Released")),
    Status("scheduled", True, N_("In a bank batch")),
    Status("sent", True, N_("Sent to the bank")),
    Status("booked", True, N_("Booked by the bank")),
    Status("returned", False, N_("Returned by the bank")),
)}

_T = frozenset({TRANSFER})
STEPS: dict[str, Step] = {s.name: s for s in (
    Step("approve", frozenset({"proposed"}), "approved"),
    Step("reject", frozenset({"proposed"}), "rejected"),
    Step("cancel", frozenset({"proposed", "approved"}), "cancelled"),
    Step("release", frozenset({"approved"}), "disbursed"),
    Step("schedule", frozenset({"disbursed"}), "scheduled", _T),
    Step("withdraw", frozenset({"scheduled"}), "disbursed", _T),
    Step("send", frozenset({"scheduled"}), "sent", _T),
    Step("book", frozenset({"sent"}), "booked", _T),
    Step("return", frozenset({"sent", "booked"}), "returned", _T),
)}

LIVE_STATUSES = tuple(name for name, s in STATUSES.items() if s.live)
# Money has left the programme's hands (released, whatever the bank leg says next).
PAID_OUT_STATUSES = ("disbursed", "scheduled", "sent", "booked")
# A transfer's bank leg: where the money is after its release.
BANK_STATUSES = ("scheduled", "sent", "booked", "returned")


def sources(step: str, method: str | None = None) -> tuple[str, ...]:
    """The statuses ``step`` may start from (none when it does not apply to ``method``)."""
    s = STEPS[step]
    if method is not None and method not in s.methods:
        return ()
    return tuple(sorted(s.sources))


def can(step: str, status: str, method: str) -> bool:
    """Whether a payment by ``method`` in ``status`` may take ``step``."""
    return status in sources(step, method)


HANDED_OVER = N_("Handed over")


def status_label(status: str, method: str | None = None) -> str:
    """The status in English as a person reads it (i18n translates it): a released cash
    or card payment was handed over."""
    if status == "disbursed" and method in (CASH, CARD):
        return HANDED_OVER
    return STATUSES[status].label if status in STATUSES else status


def live_predicate() -> str:
    """The SQL condition of the partial unique index 'one live payment per case'."""
    return "status IN (" + ",".join(f"'{s}'" for s in LIVE_STATUSES) + ")"
