"""Programme policy as dated data (DESIGN §4).

Dates, terms and amounts change by ministerial decision, so they live here and nowhere
else. Every default names its source. An operator overrides any of them from
``instance/config.py`` with a ``POLICY`` dict (keys are the field names below); the app
factory builds one :class:`Policy` from that and hands it to the core.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from .records import EXAMPLE_RETENTION_RULES, RetentionRule, check_rules

# The programme's calendar: deadlines are days in the Netherlands, and every date or time
# shown to people is Amsterdam time (DTenV works there; DESIGN §1).
TIMEZONE_NAME = "Europe/Amsterdam"
TIMEZONE = ZoneInfo(TIMEZONE_NAME)


def age_on(date_of_birth: dt.date, day: dt.date) -> int:
    """Completed years of someone born on ``date_of_birth`` on ``day``."""
    return day.year - date_of_birth.year - (
        (day.month, day.day) < (date_of_birth.month, date_of_birth.day))


@dataclass(frozen=True)
class Tariff:
    """Travel-support amounts in whole euro cents, valid from ``effective_from``."""

    effective_from: dt.date
    adult_cents: int
    minor_cents: int
    label: str = ""


# EXAMPLE CONFIGURATION — no per-person travel-support amount for Ukrainians has been
# published. These figures only make the software demonstrable; replace them from
# instance/config.py once the ministry publishes a tariff.
EXAMPLE_TARIFFS: tuple[Tariff, ...] = (
    Tariff(dt.date(2026, 1, 1), adult_cents=150_000, minor_cents=75_000,
           label="EXAMPLE tariff 2026 (not a published amount)"),
    Tariff(dt.date(2027, 1, 1), adult_cents=160_000, minor_cents=80_000,
           label="EXAMPLE tariff 2027 (not a published amount)"),
)


@dataclass(frozen=True)
class Policy:
    """The programme's rules in force; pure data, safe to share between threads."""

    # Temporary protection (RTB) for displaced persons from Ukraine runs to 4 March 2027
    # (EU Council Implementing Decision 2025 extension; cabinet letter 2025).
    rtb_end: dt.date = dt.date(2027, 3, 4)
    # The reception law allows reception up to one year after the RTB ends
    # (cabinet letter on voluntary return, 2026).
    reception_end: dt.date = dt.date(2028, 3, 4)
    # DTenV needs about a week to arrange travel (DTenV planning note).
    min_lead_days: int = 7
    # Maximum agreed term between agreement and departure (programme design, 2026).
    max_term_days: int = 90
    # Reminders before the departure deadline; escalation the day after (programme design).
    reminder_days: tuple[int, ...] = (14, 7, 2, 1)
    overdue_escalation_days: int = 1
    # Age of majority in Dutch law (BW 1:233): adults sign for themselves.
    adult_age: int = 18
    # Signing links: single use, expire after this many days (security policy).
    signing_link_days: int = 7
    signing_link_reminder_days: int = 2
    # A tablet session opened through the API (an office tablet, the counsellor present):
    # single use, expires after this many minutes (security policy; the participant signs
    # while the counsellor waits, so a session left behind must not stay usable).
    tablet_session_minutes: int = 15
    # Four eyes on release: a payment batch whose total is above this amount (cents) is
    # sent to the bank only by a second finance officer, not the one who made it
    # (EXAMPLE VALUE, EUR 5,000: set the ministry's mandate limit in instance/).
    batch_second_release_cents: int = 500_000
    tariffs: tuple[Tariff, ...] = EXAMPLE_TARIFFS
    # How long a closed case is kept, per final state, and what happens then (issue 16;
    # EXAMPLE terms, see records.EXAMPLE_RETENTION_RULES: no selection list is public).
    retention_rules: tuple[RetentionRule, ...] = EXAMPLE_RETENTION_RULES
    currency: str = "EUR"
    # How a signer of a personal link proves to be the registered participant, per
    # document kind: "code" (a one-time code sent to their registered e-mail address or
    # phone) or "none" (the link alone). The withdrawal declaration ends the asylum
    # application at the IND and the departure agreement fixes the deadline and the money,
    # so both are irreversible in their effect and need the code; the commitment, the
    # addendum and the cash receipt follow a signed agreement. Kinds not named need none.
    # The office tablet never needs a code: the counsellor checks the ID document there.
    # (Security policy 2026; an operator overrides it with POLICY["signer_verification"],
    # a mapping of kind to "none" | "code", merged over these defaults.)
    signer_verification: tuple[tuple[str, str], ...] = (
        ("withdrawal_declaration", "code"), ("departure_agreement", "code"))

    def is_adult_on(self, date_of_birth: dt.date, day: dt.date) -> bool:
        """Whether someone born on ``date_of_birth`` signs for themselves on ``day``: the one
        place adulthood is decided (guards, signing, reminders, seed)."""
        return age_on(date_of_birth, day) >= self.adult_age

    def verification_for(self, kind: str) -> str:
        """How the signer of a personal link for a ``kind`` document must verify: "code"
        or "none" (the one place this is decided: pages and the signing service ask)."""
        return dict(self.signer_verification).get(kind, "none")

    def tariff_on(self, day: dt.date) -> Tariff | None:
        """The tariff in force on ``day``: the latest one whose effective date has come."""
        current = [t for t in self.tariffs if t.effective_from <= day]
        return max(current, key=lambda t: t.effective_from) if current else None

    def latest_deadline(self, today: dt.date) -> dt.date:
        """The latest departure deadline that may be agreed today."""
        return min(today + dt.timedelta(days=self.max_term_days), self.reception_end)

    def earliest_deadline(self, today: dt.date) -> dt.date:
        """The earliest departure deadline that may be agreed today."""
        return today + dt.timedelta(days=max(self.min_lead_days, 1))


def _coerce(name: str, value):
    """Turn a config value (possibly from JSON/env strings) into the field's type."""
    default = getattr(Policy, name, None)
    if name == "tariffs":
        return tuple(
            t if isinstance(t, Tariff) else Tariff(
                effective_from=_date(t["effective_from"]),
                adult_cents=int(t["adult_cents"]), minor_cents=int(t["minor_cents"]),
                label=str(t.get("label", "")))
            for t in value)
    if name == "signer_verification":
        return _verification(value)
    if name == "retention_rules":
        rules = tuple(
            r if isinstance(r, RetentionRule) else RetentionRule(
                final_state=str(r["final_state"]), effective_from=_date(r["effective_from"]),
                nomination=str(r["nomination"]), term_months=int(r["term_months"]),
                source=str(r.get("source", "")))
            for r in value)
        check_rules(rules)
        return rules
    if isinstance(default, dt.date):
        return _date(value)
    if isinstance(default, tuple):
        return tuple(int(v) for v in value)
    if isinstance(default, bool):
        return bool(value)
    if isinstance(default, int):
        return int(value)
    return value


VERIFICATION_LEVELS = ("none", "code")


def _verification(value) -> tuple[tuple[str, str], ...]:
    """An override of ``signer_verification`` (a mapping, or pairs) merged over the
    defaults; an unknown level is an error (a typo must not switch the code off)."""
    pairs = dict(value.items() if hasattr(value, "items") else value)
    for kind, level in pairs.items():
        if level not in VERIFICATION_LEVELS:
            raise ValueError(f"signer_verification[{kind!r}] must be one of "
                             f"{', '.join(VERIFICATION_LEVELS)}, not {level!r}")
    merged = dict(Policy.signer_verification)
    merged.update({str(k): str(v) for k, v in pairs.items()})
    return tuple(sorted(merged.items()))


def _date(value) -> dt.date:
    return value if isinstance(value, dt.date) else dt.date.fromisoformat(str(value))


def load_policy(overrides: dict | None = None) -> Policy:
    """Build the policy in force from the defaults and an operator's overrides.

    Unknown keys are an error: a typo in a ministerial amount must not pass silently.
    """
    overrides = dict(overrides or {})
    names = {f.name for f in dataclasses.fields(Policy)}
    unknown = set(overrides) - names
    if unknown:
        raise ValueError(f"unknown policy settings: {', '.join(sorted(unknown))}")
    return Policy(**{k: _coerce(k, v) for k, v in overrides.items()})


DEFAULT_POLICY = Policy()
