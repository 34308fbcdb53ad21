"""What each role may read of a case: the one place where a case read is narrowed by role
(least privilege, issue 13).

Finance officers pay out travel support. They need the payee, the amount, the method, the
IBAN and the case reference, not the identifiers of the people: BSN, V-number,
travel-document number and date of birth are left out of every case read they get, and so
are e-mail address and phone number (contact with the household is the counsellor's) (the
case page, the payment page, the API's case read, the trail), and they do not download
the signed PDFs, which print those identifiers. Flask-free: the services apply it to the
plain data they hand to pages and the API.
"""
from __future__ import annotations

from ..roles import FINANCE

# Participant fields a finance officer does not see.
FINANCE_HIDDEN_FIELDS = ("bsn", "v_number", "travel_document_number", "date_of_birth",
                         "email", "phone")

__all__ = ["FINANCE_HIDDEN_FIELDS", "is_narrowed", "may_download_documents", "narrow_case",
           "narrow_details"]


def is_narrowed(role: str | None) -> bool:
    """Whether ``role`` reads cases without the people's identifiers."""
    return role == FINANCE


def may_download_documents(role: str | None) -> bool:
    """Whether ``role`` may download a case's signed PDFs (they print the identifiers)."""
    return not is_narrowed(role)


def narrow_case(role: str | None, data: dict) -> dict:
    """``data`` (a case as :func:`cases.case_data` dumps it) as ``role`` may read it:
    unchanged for most roles; for finance, each participant's identifiers are None and
    ``redacted`` says so (the pages then offer no document download)."""
    if not is_narrowed(role):
        return {**data, "redacted": False}
    people = [{**p, **{k: None for k in FINANCE_HIDDEN_FIELDS if k in p}}
              for p in data.get("participants", ())]
    return {**data, "participants": people, "redacted": True}


def narrow_details(role: str | None, details):
    """An audit event's details as ``role`` may read them: for finance, every value under
    an identifier's key (at any depth, e.g. a correction's old and new values) is left
    out."""
    if not is_narrowed(role):
        return details
    if isinstance(details, dict):
        return {k: narrow_details(role, v) for k, v in details.items()
                if k not in FINANCE_HIDDEN_FIELDS}
    if isinstance(details, list):
        return [narrow_details(role, v) for v in details]
    return details
