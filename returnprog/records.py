"""The records lifecycle's rules (issue 16), as dated data: how long a closed case is kept
and what happens to it then (Archiefwet art. 5; the archive fields follow Open Zaak's
``archiefnominatie``, ``brondatum``, ``archiefactiedatum`` and ``archiefstatus``).

Flask-free and pure: the policy (:mod:`returnprog.policy`) carries the rules in force, and
:func:`archive_fields` turns a case's final state and closing date into its archive fields.
The services store them on the case when it closes, so a later change of the rules applies
to cases closed after the new rule's date, as a selection list does.
"""
from __future__ import annotations

import calendar
import datetime as dt
from dataclasses import dataclass

# Archive nomination: what happens when the term has run.
KEEP = "keep"  # transferred to the national archive (never destroyed here)
DESTROY = "destroy"
NOMINATIONS = (KEEP, DESTROY)

# Archive status of a case (Open Zaak's ``archiefstatus``): still to be archived (open, or
# closed and within its term, or kept), or destroyed under a reviewed destruction list.
TO_ARCHIVE = "to_archive"
DESTROYED = "destroyed"
ARCHIVE_STATUSES = (TO_ARCHIVE, DESTROYED)

# The final states a rule can be about (workflow.FINAL_STATES, named here so that the
# rules stay plain data; a test checks the two agree).
FINAL_STATES = ("departed", "left_programme", "rejected", "lapsed")


@dataclass(frozen=True)
class RetentionRule:
    """How long a case that ended in ``final_state`` is kept: ``term_months`` from the day it
    closed, then ``nomination`` (keep or destroy). In force for cases closed on or after
    ``effective_from``; ``source`` cites the decision the term comes from."""

    final_state: str
    effective_from: dt.date
    nomination: str
    term_months: int
    source: str


# EXAMPLE CONFIGURATION — no selection list for DTenV's case files is public. These terms
# only make the lifecycle demonstrable and testable; replace them from instance/config.py
# (POLICY["retention_rules"]) with the adopted selection list's terms.
EXAMPLE_RETENTION_RULES: tuple[RetentionRule, ...] = (
    RetentionRule("departed", dt.date(2026, 1, 1), DESTROY, 84,
                  "EXAMPLE (not an adopted selection list): 7 years, the fiscal retention "
                  "duty on the travel-support payment (AWR art. 52)"),
    RetentionRule("left_programme", dt.date(2026, 1, 1), DESTROY, 60,
                  "EXAMPLE (not an adopted selection list): 5 years after leaving the "
                  "programme, covering a return to it and any claim on a payment"),
    RetentionRule("rejected", dt.date(2026, 1, 1), DESTROY, 60,
                  "EXAMPLE (not an adopted selection list): 5 years after the decision, "
                  "well past the objection and appeal terms (Awb art. 6:7, 6:8)"),
    RetentionRule("lapsed", dt.date(2026, 1, 1), DESTROY, 24,
                  "EXAMPLE (not an adopted selection list): 2 years after the deadline "
                  "lapsed, for a return to the programme"),
)


def add_months(day: dt.date, months: int) -> dt.date:
    """``day`` plus ``months`` calendar months, on the last day of a shorter month
    (31 January + 1 month is 28 or 29 February)."""
    month_index = day.month - 1 + months
    year, month = day.year + month_index // 12, month_index % 12 + 1
    return dt.date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def rule_for(rules, final_state: str, closed_on: dt.date) -> RetentionRule | None:
    """The rule for a case that ended in ``final_state`` on ``closed_on``: the latest one in
    force that day, or None (then the case is kept until a rule says otherwise)."""
    current = [r for r in rules if r.final_state == final_state
               and r.effective_from <= closed_on]
    return max(current, key=lambda r: r.effective_from) if current else None


def archive_fields(rules, final_state: str, closed_on: dt.date) -> dict:
    """The archive fields of a case closing in ``final_state`` on ``closed_on`` (Amsterdam
    date): column name → value, ready for the case row."""
    rule = rule_for(rules, final_state, closed_on)
    return {
        "archive_nomination": rule.nomination if rule else None,
        "archive_term_start": closed_on,
        "archive_action_date": (add_months(closed_on, rule.term_months)
                                if rule and rule.nomination == DESTROY else None),
        "archive_status": TO_ARCHIVE,
    }


def check_rules(rules) -> None:
    """Raise ValueError naming the first rule that cannot be right (an unknown state or
    nomination, a negative term, two rules for one state from the same day): a typo in a
    retention term must not pass silently."""
    seen = set()
    for rule in rules:
        if rule.final_state not in FINAL_STATES:
            raise ValueError(f"retention rule for unknown final state {rule.final_state!r}")
        if rule.nomination not in NOMINATIONS:
            raise ValueError(f"retention rule for {rule.final_state}: nomination must be "
                             f"one of {', '.join(NOMINATIONS)}, not {rule.nomination!r}")
        if rule.term_months < 0:
            raise ValueError(f"retention rule for {rule.final_state}: negative term")
        if not rule.source.strip():
            raise ValueError(f"retention rule for {rule.final_state}: no source cited")
        key = (rule.final_state, rule.effective_from)
        if key in seen:
            raise ValueError(f"two retention rules for {rule.final_state} from "
                             f"{rule.effective_from}")
        seen.add(key)
