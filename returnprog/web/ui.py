"""What every staff page shares: who is signed in, which roles a view admits, reading a
form into the data a marshmallow schema loads, and turning validation and service errors
into messages beside their fields plus a summary at the top.

Views stay thin: parse with the schema, call one service, map errors, redirect.
"""
from __future__ import annotations

import functools
import re

from flask import abort, current_app, render_template, request
from flask_babel import gettext, lazy_gettext as _l
from flask_login import current_user
from marshmallow import Schema, ValidationError, fields

from ..i18n import render_message
from ..roles import CASE_ROLES  # re-exported: the signing pages import it from here
from ..services import ServiceError
from .sessions import service_context


# --- who -------------------------------------------------------------------------------------

def actor():
    """The signed-in staff member (a ``models.User``)."""
    return current_user.user


def ctx():
    """A service context for the signed-in staff member acting through this request."""
    return service_context(actor())


def roles(*allowed: str):
    """Admit only signed-in staff with one of ``allowed`` roles: others are sent to the
    sign-in page (not signed in) or get 403 (signed in, wrong role)."""

    def decorate(view):
        @functools.wraps(view)
        def wrapper(*args, **kwargs):
            if not current_user.is_authenticated:
                # Flask-Login's manager (set up by auth_views) on the app, so this leaf
                # module needs no import of the sign-in views.
                return current_app.login_manager.unauthorized()
            if current_user.role not in allowed:
                abort(403)
            return view(*args, **kwargs)
        wrapper.allowed_roles = allowed
        return wrapper
    return decorate


def public(view):
    """Mark a view that anyone may open (sign-in page, language switch)."""
    view.allowed_roles = "public"
    return view


def plausible_reference(endpoint, values) -> None:
    """404 at once for a case reference no case can have (control characters, absurd
    length): such a value must not even reach the database (PostgreSQL refuses NUL)."""
    reference = (values or {}).get("reference")
    if reference is not None and (len(reference) > 40 or not reference.isprintable()):
        abort(404)


# --- reading forms -------------------------------------------------------------------------------

_DUTCH_DATE = re.compile(r"^(\d{1,2})[-/.](\d{1,2})[-/.](\d{4})$")


def normalise_date(raw: str) -> str:
    """Accept ``dd-mm-yyyy`` as typed in Dutch besides the ISO date a date input sends."""
    match = _DUTCH_DATE.match(raw)
    if match:
        day, month, year = match.groups()
        return f"{year}-{int(month):02d}-{int(day):02d}"
    return raw


def _schema(schema) -> Schema:
    return schema() if isinstance(schema, type) else schema


def form_data(schema_cls: type[Schema] | Schema, prefix: str = "", source=None) -> dict:
    """The fields of ``schema_cls`` as submitted (``prefix`` + name), blanks left out so
    the schema's defaults and 'required' messages apply; other form fields are ignored.
    Fields marked ``as_typed`` (passwords) keep their surrounding spaces."""
    source = request.form if source is None else source
    out = {}
    for name, field in _schema(schema_cls).fields.items():
        if field.dump_only:
            continue
        raw = source.get(prefix + name)
        if raw is None:
            continue
        if not field.metadata.get("as_typed"):
            raw = raw.strip()
        if raw == "":
            continue
        if isinstance(field, fields.Date):
            raw = normalise_date(raw)
        elif isinstance(field, fields.Integer) and re.fullmatch(r"\d{1,9}", raw):
            raw = int(raw)  # strict integer fields take numbers, and a form sends text
        out[name] = raw
    return out


def load(schema_cls: type[Schema] | Schema, data: dict) -> dict:
    """Validate ``data`` with the shared schema; raises ValidationError."""
    return _schema(schema_cls).load(data)


# --- errors ------------------------------------------------------------------------------------

# How the error summary names a field ("Household member 2 – V-number: …").
FIELD_LABELS = {
    "given_names_latin": _l("Given names (Latin letters)"),
    "family_name_latin": _l("Family name (Latin letters)"),
    "given_names_cyrillic": _l("Given names (Cyrillic)"),
    "family_name_cyrillic": _l("Family name (Cyrillic)"),
    "date_of_birth": _l("Date of birth"), "v_number": _l("V-number"), "bsn": _l("BSN"),
    "travel_document_number": _l("Travel document number"), "email": _l("E-mail address"),
    "phone": _l("Phone number"), "language": _l("Language"),
    "asylum_application_pending": _l("Asylum application"), "relationship": _l("Relationship"),
    "destination_oblast": _l("Oblast"), "destination_place": _l("Town or village"),
    "intake_notes": _l("Notes"), "departure_deadline": _l("Departure deadline"),
    "reason": _l("Reason"), "departed_on": _l("Date of departure"),
    "evidence": _l("Evidence of departure"), "evidence_reference": _l("Reference of the evidence"),
    "ind_reference": _l("IND reference"), "confirmed_on": _l("Confirmed by the IND on"),
    "method": _l("Method"), "iban": _l("IBAN"), "account_holder": _l("Account holder"),
    "reentry_on": _l("Date of re-entry"), "reclaim_cents": _l("Amount reclaimed in euros"),
    "note": _l("Note"), "kind": _l("File type"), "password": _l("Password"), "name": _l("Name"),
    "role": _l("Role"), "team": _l("Team"), "q": _l("Search"), "state": _l("State"),
    "deadline_from": _l("Deadline from"), "deadline_to": _l("Deadline to"),
    "status": _l("Status"), "case": _l("Case reference"), "household": _l("Household members"),
}


def field_label(field_id: str) -> str | None:
    """The name of a form field as the person filling it in sees it."""
    label = FIELD_LABELS.get(field_id.rsplit("-", 1)[-1])
    if label is None:
        return None
    member = re.match(r"^household-(\d+)-", field_id)
    if field_id.startswith("principal-"):
        return f"{gettext('Principal')} – {label}"
    if member:
        return f"{gettext('Household member %(n)s', n=int(member.group(1)) + 1)} – {label}"
    return str(label)


class FormErrors:
    """Messages by field id (shown beside the field) and general ones, in the UI language.

    Field ids are the form's names: ``reason``, ``principal-v_number``,
    ``household-2-date_of_birth``; the summary links to them.
    """

    def __init__(self, title: str | None = None):
        self.title = title
        self.fields: dict[str, list[str]] = {}
        self.general: list[str] = []

    def __bool__(self) -> bool:
        return bool(self.fields or self.general or self.title)

    def get(self, field_id: str) -> list[str]:
        return self.fields.get(field_id, [])

    def add(self, field_id: str | None, message) -> None:
        text = render_message(message)
        if field_id:
            bucket = self.fields.setdefault(field_id, [])
            if text not in bucket:
                bucket.append(text)
        elif text not in self.general:
            self.general.append(text)

    def add_messages(self, messages, prefix: str = "", rename=None) -> None:
        """Add marshmallow-style nested messages (dicts of lists, list indexes as keys)."""
        for key, value in _flatten(messages, prefix):
            if key.endswith("_schema") or not key:
                for m in value:
                    self.add(None, m)
                continue
            target = rename(key) if rename else key
            for message in value:
                self.add(target, message)

    def summary(self) -> list[tuple[str | None, str]]:
        """(field id or None, message) pairs for the summary at the top of the page; each
        message there says which field it is about."""
        def named(fid, message):
            label = field_label(fid)
            return f"{label}: {message}" if label else message

        return [(fid, named(fid, m)) for fid, msgs in self.fields.items() for m in msgs] + \
               [(None, m) for m in self.general]


def _flatten(messages, prefix: str):
    if isinstance(messages, dict):
        for key, value in messages.items():
            name = f"{prefix}-{key}" if prefix else str(key)
            yield from _flatten(value, name)
    elif isinstance(messages, (list, tuple)):
        if all(isinstance(m, str) for m in messages):
            yield prefix, list(messages)
        else:
            for index, value in enumerate(messages):
                yield from _flatten(value, f"{prefix}-{index}" if prefix else str(index))
    else:
        yield prefix, [str(messages)]


def errors_from(exc: Exception, rename=None, fields_known=()) -> tuple[FormErrors, int]:
    """FormErrors and the HTTP status for a validation or service error.

    A refusal naming a field the form has (``fields_known``) is shown beside it; all others
    go to the summary.
    """
    errors = FormErrors()
    if isinstance(exc, ValidationError):
        errors.add_messages(exc.normalized_messages(), rename=rename)
        return errors, 422
    if isinstance(exc, ServiceError):
        errors.title = render_message(exc)
        details = exc.details
        if isinstance(details, dict):
            errors.add_messages(details, rename=rename)
        else:
            for item in details or []:
                if not isinstance(item, dict):
                    errors.add(None, item)
                    continue
                field = item.get("field")
                target = (rename(field) if rename else field) if field else None
                if target and (not fields_known or target in fields_known):
                    errors.add(target, item.get("message", ""))
                else:
                    errors.add(None, item.get("message", ""))
        return errors, exc.status
    raise exc


def render_page(template: str, status: int = 200, **context):
    """Render a page template with a status."""
    return render_template(template, **context), status


__all__ = ["actor", "ctx", "roles", "public", "form_data", "load", "FormErrors", "errors_from",
           "render_page", "CASE_ROLES", "normalise_date"]
