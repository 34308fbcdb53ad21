"""Languages of the staff UI: Dutch by default, English switchable (stored in the session).

Flask-Babel translates the templates; this module adds the Dutch formats the programme
uses (dates ``dd-mm-yyyy``, amounts ``€ 1.234,50``), the labels of states, actions and
evidence, and the translation of the English sentences the services, the workflow and
marshmallow produce (refusals, validation errors) — matched by pattern, so a sentence that
is not in the table is shown in English rather than not at all.

Catalogues: ``returnprog/translations/<lang>/LC_MESSAGES/messages.po`` with its compiled
``.mo`` next to it (shipped; ``tests/test_web_i18n.py`` fails when they drift). After
changing texts::

    .venv/bin/pybabel extract -F returnprog/translations/babel.cfg -k _l -k N_ -o /tmp/messages.pot .
    .venv/bin/pybabel update -i /tmp/messages.pot -d returnprog/translations
    .venv/bin/pybabel compile -d returnprog/translations
"""
from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal
from zoneinfo import ZoneInfo

from babel.dates import format_date as _babel_date
from babel.numbers import format_currency as _babel_currency
from flask import Flask, g, has_request_context, session
from flask_babel import Babel, get_locale, gettext, lazy_gettext as _l

from . import glossary

LANGUAGES = {"nl": "Nederlands", "en": "English"}
DEFAULT_LANGUAGE = "nl"
TIMEZONE = "Europe/Amsterdam"

babel = Babel()


def select_locale() -> str:
    """A page may force a language (``g.locale``, e.g. a participant's signing page);
    otherwise the language chosen in this session; otherwise Dutch."""
    forced = g.get("locale") if has_request_context() else None
    if forced:
        return forced
    if has_request_context():
        chosen = session.get("lang")
        if chosen in LANGUAGES:
            return chosen
    return DEFAULT_LANGUAGE


def language() -> str:
    """The current UI language code (``nl`` or ``en``)."""
    return str(get_locale() or DEFAULT_LANGUAGE).split("_")[0]


# --- formats ----------------------------------------------------------------------------

def format_date(value) -> str:
    """``dd-mm-yyyy`` in Dutch, ``1 May 2026`` in English; '' for nothing."""
    if value in (None, ""):
        return ""
    if isinstance(value, str):
        try:
            value = dt.date.fromisoformat(value[:10])
        except ValueError:
            return value
    if isinstance(value, dt.datetime):
        value = value.astimezone(ZoneInfo(TIMEZONE)).date() if value.tzinfo else value.date()
    if language() == "nl":
        return value.strftime("%d-%m-%Y")
    return _babel_date(value, "d MMM yyyy", locale="en_GB")


def format_datetime(value) -> str:
    """Date and time in Amsterdam: ``dd-mm-yyyy 14:05``."""
    if value is None:
        return ""
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.timezone.utc)
    local = value.astimezone(ZoneInfo(TIMEZONE))
    return f"{format_date(local.date())} {local:%H:%M}"


def format_time(value) -> str:
    """``14:05`` in Amsterdam."""
    if value is None:
        return ""
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.timezone.utc)
    return f"{value.astimezone(ZoneInfo(TIMEZONE)):%H:%M}"


def format_money(cents, currency: str = "EUR") -> str:
    """Whole cents as money: ``€ 1.234,50`` in Dutch, ``€1,234.50`` in English."""
    if cents is None:
        return ""
    amount = Decimal(int(cents)) / 100
    locale = "nl_NL" if language() == "nl" else "en_GB"
    return _babel_currency(amount, currency, locale=locale).replace("\xa0", " ")


def format_number(value) -> str:
    """Thousands separated the local way (``1.234`` / ``1,234``)."""
    text = f"{int(value or 0):,}"
    return text.replace(",", ".") if language() == "nl" else text


_ISO_DATE = re.compile(r"\b(\d{4}-\d{2}-\d{2})\b")


def localise_dates(text: str) -> str:
    """Rewrite ISO dates inside a sentence in the local format."""
    return _ISO_DATE.sub(lambda m: format_date(m.group(1)), text)


# --- labels -------------------------------------------------------------------------------

STATE_LABELS = {
    "intake": _l("Intake"),
    "committed": _l("Committed"),
    "asylum_withdrawn": _l("Asylum application withdrawn"),
    "departure_agreed": _l("Departure agreed"),
    "support_paid": _l("Travel support paid"),
    "departed": _l("Departed"),
    "left_programme": _l("Left the programme"),
    "rejected": _l("Rejected"),
    "lapsed": _l("Lapsed"),
}

ACTION_LABELS = {
    "open_case": _l("Open case"),
    "confirm_commitment": _l("Confirm commitment"),
    "record_withdrawal": _l("Record asylum withdrawal"),
    "agree_departure": _l("Agree departure deadline"),
    "extend_deadline": _l("Extend deadline"),
    "pay_support": _l("Pay travel support"),
    "confirm_departure": _l("Confirm departure"),
    "leave_programme": _l("Leave programme"),
    "reject": _l("Reject"),
    "lapse": _l("Lapse"),
}

# What the timeline says happened (audit-trail actions).
EVENT_LABELS = {
    "open_case": _l("Case opened"),
    "update_intake": _l("Intake edited"),
    "confirm_commitment": _l("Commitment confirmed"),
    "record_ind_confirmation": _l("IND confirmation recorded"),
    "record_withdrawal": _l("Asylum withdrawal recorded"),
    "agree_departure": _l("Departure deadline agreed"),
    "extend_deadline": _l("Deadline extended"),
    "pay_support": _l("Travel support paid out"),
    "confirm_departure": _l("Departure confirmed"),
    "leave_programme": _l("Left the programme"),
    "reject": _l("Rejected"),
    "lapse": _l("Lapsed"),
    "view_case": _l("Case viewed"),
    "download_document": _l("Document downloaded"),
    "view_payment": _l("Payment viewed"),
    "sign_document": _l("Document signed"),
    "propose_payment": _l("Payment proposed"),
    "approve_payment": _l("Payment approved"),
    "reject_payment": _l("Payment rejected"),
    "cancel_payment": _l("Payment cancelled"),
    "record_reentry": _l("Re-entry recorded"),
    "create_signing_link": _l("Signing link created"),
    "revoke_signing_link": _l("Signing link revoked"),
}

# The document kinds as the glossary names them (the same names as the PDFs and e-mails).
DOCUMENT_LABELS = {kind: _l(msgid) for kind, msgid in glossary.DOCUMENT_NAMES.items()}

EVIDENCE_LABELS = {
    "border_crossing": _l("Border crossing"),
    "boarding": _l("Boarding"),
    "brp_deregistration": _l("BRP deregistration"),
}

ROLE_LABELS = {
    "counsellor": _l("Counsellor"),
    "supervisor": _l("Supervisor"),
    "finance": _l("Finance officer"),
    "admin": _l("Administrator"),
}

RELATIONSHIP_LABELS = {
    "principal": _l("Principal"),
    "spouse": _l("Spouse"),
    "partner": _l("Partner"),
    "child": _l("Child"),
    "parent": _l("Parent"),
    "sibling": _l("Brother or sister"),
    "grandparent": _l("Grandparent"),
    "grandchild": _l("Grandchild"),
    "other": _l("Other"),
}

PAYMENT_METHOD_LABELS = {
    "transfer": _l("Bank transfer"),
    "cash": _l("Cash at the departure point"),
    "card": _l("Prepaid card"),
}

PAYMENT_STATUS_LABELS = {
    "proposed": _l("Proposed"),
    "approved": _l("Approved"),
    "rejected": _l("Rejected"),
    "cancelled": _l("Cancelled"),
    "disbursed": _l("Disbursed"),
}

PARTICIPANT_LANGUAGE_LABELS = {
    "uk": _l("Ukrainian"),
    "en": _l("English"),
    "nl": _l("Dutch"),
    "ru": _l("Russian"),
}


def label(table: dict, key) -> str:
    """``table[key]`` as text, or the key itself when it has no label."""
    if key is None:
        return ""
    value = table.get(key)
    return str(value) if value is not None else str(key)


# --- sentences from the services, the workflow and marshmallow ------------------------------

def _state(value: str) -> str:
    return label(STATE_LABELS, value)


def _states(value: str) -> str:
    return ", ".join(_state(v.strip()) for v in value.split(","))


_LABEL_BY_ENGLISH = {
    "Open case": "open_case", "Confirm commitment": "confirm_commitment",
    "Record asylum withdrawal": "record_withdrawal",
    "Agree departure deadline": "agree_departure", "Extend deadline": "extend_deadline",
    "Pay travel support": "pay_support", "Confirm departure": "confirm_departure",
    "Leave programme": "leave_programme", "Reject": "reject", "Lapse": "lapse",
}


def _action(value: str) -> str:
    return label(ACTION_LABELS, _LABEL_BY_ENGLISH.get(value, value))


def _cents(value: str) -> str:
    return format_money(int(value))


def _roles(value: str) -> str:
    return " / ".join(label(ROLE_LABELS, v.strip()) for v in value.split(" or "))


_GROUP_FORMATS = {"state": _state, "states": _states, "action": _action, "cents": _cents,
                  "cents2": _cents, "roles": _roles}

# (pattern of the English sentence, msgid). Groups are substituted into the translation;
# groups named like _GROUP_FORMATS are localised first. N_ marks them for pybabel.
def N_(msgid: str) -> str:
    """Mark a message for extraction; it is translated when used."""
    return msgid


_SENTENCES: list[tuple[str, str]] = [
    # workflow guards
    (r"The case has no participants\.", N_("The case has no participants.")),
    (r"The household has no adult who can sign\.", N_("The household has no adult who can sign.")),
    (r"The destination oblast is not recorded\.", N_("The destination oblast is not recorded.")),
    (r"The destination town or village is not recorded\.",
     N_("The destination town or village is not recorded.")),
    (r"No e-mail address or phone number for: (?P<names>.+)\.",
     N_("No e-mail address or phone number for: %(names)s.")),
    (r"The commitment \(deelnameverklaring\) is not signed yet by: (?P<names>.+)\.",
     N_("The commitment (deelnameverklaring) is not signed yet by: %(names)s.")),
    (r"The asylum withdrawal declaration is not signed yet by: (?P<names>.+)\.",
     N_("The asylum withdrawal declaration is not signed yet by: %(names)s.")),
    (r"No IND confirmation \(reference and date\) recorded for: (?P<names>.+)\.",
     N_("No IND confirmation (reference and date) recorded for: %(names)s.")),
    (r"A departure deadline is required\.", N_("A departure deadline is required.")),
    (r"The departure deadline must be after today\.",
     N_("The departure deadline must be after today.")),
    (r"The departure deadline must be at least (?P<days>\d+) days ahead \(on or after "
     r"(?P<date>[\d-]+)\): DTenV needs that time to arrange travel\.",
     N_("The departure deadline must be at least %(days)s days ahead (on or after %(date)s): "
        "DTenV needs that time to arrange travel.")),
    (r"The departure deadline may be at most (?P<days>\d+) days ahead \(on or before "
     r"(?P<date>[\d-]+)\)\.",
     N_("The departure deadline may be at most %(days)s days ahead (on or before %(date)s).")),
    (r"The departure deadline may not be after the end of reception \((?P<date>[\d-]+)\)\.",
     N_("The departure deadline may not be after the end of reception (%(date)s).")),
    (r"The departure agreement is not signed yet by: (?P<names>.*)\.",
     N_("The departure agreement is not signed yet by: %(names)s.")),
    (r"No departure agreement for (?P<date>[\d-]+) signed by: (?P<names>.+)\.",
     N_("No departure agreement for %(date)s signed by: %(names)s.")),
    (r"A reason is required\.", N_("A reason is required.")),
    (r"The new deadline must be later than the current one \((?P<date>[\d-]+)\)\.",
     N_("The new deadline must be later than the current one (%(date)s).")),
    (r"No addendum for (?P<date>[\d-]+) signed by: (?P<names>.+)\.",
     N_("No addendum for %(date)s signed by: %(names)s.")),
    (r"No travel-support payment has been proposed and approved yet\.",
     N_("No travel-support payment has been proposed and approved yet.")),
    (r"The travel-support payment has not been approved yet\.",
     N_("The travel-support payment has not been approved yet.")),
    (r"The travel support was already paid\.", N_("The travel support was already paid.")),
    (r"The travel-support payment has not been approved\.",
     N_("The travel-support payment has not been approved.")),
    (r"The payment must be approved by someone other than its proposer\.",
     N_("The payment must be approved by someone other than its proposer.")),
    (r"No travel-support tariff is in force\.", N_("No travel-support tariff is in force.")),
    (r"The payment amount \((?P<cents>\d+) cents\) differs from the household's tariff "
     r"\((?P<cents2>\d+) cents\)\.",
     N_("The payment amount (%(cents)s) differs from the household's tariff (%(cents2)s).")),
    (r"The departure date is required\.", N_("The departure date is required.")),
    (r"The departure date cannot be in the future\.",
     N_("The departure date cannot be in the future.")),
    (r"Evidence of departure is required: border crossing, boarding or BRP deregistration\.",
     N_("Evidence of departure is required: border crossing, boarding or BRP deregistration.")),
    (r"The case has no departure deadline to have passed\.",
     N_("The case has no departure deadline to have passed.")),
    (r"The departure deadline \((?P<date>[\d-]+)\) has not passed yet\.",
     N_("The departure deadline (%(date)s) has not passed yet.")),
    (r"The case is closed \((?P<state>\w+)\); nothing more can happen\.",
     N_("The case is closed (%(state)s); nothing more can happen.")),
    (r"The asylum application has been withdrawn: the participant can no longer leave the "
     r"programme this way\.",
     N_("The asylum application has been withdrawn: the participant can no longer leave the "
        "programme this way.")),
    (r"'(?P<action>[^']+)' is only possible when the case is (?P<states>[\w, ]+); it is "
     r"(?P<state>\w+)\.",
     N_("'%(action)s' is only possible when the case is %(states)s; it is %(state)s.")),
    (r"Only a (?P<roles>[\w ]+) may perform '(?P<action>[^']+)'\.",
     N_("Only a %(roles)s may perform '%(action)s'.")),
    (r"'(?P<action>[^']+)' is not possible yet\.", N_("'%(action)s' is not possible yet.")),
    # services
    (r"No case (?P<ref>\S+) that you may see\.", N_("No case %(ref)s that you may see.")),
    (r"The case is being changed by someone else right now; reload it and try again\.",
     N_("The case is being changed by someone else right now; reload it and try again.")),
    (r"Someone else changed the case first\.", N_("Someone else changed the case first.")),
    (r"The case is (?P<state>\w+)\.", N_("The case is %(state)s.")),
    (r"A person on this case already has an open case\.",
     N_("A person on this case already has an open case.")),
    (r"V-number (?P<v>\d+) already belongs to an open case\.",
     N_("V-number %(v)s already belongs to an open case.")),
    (r"You are not in a team, so you cannot hold cases\.",
     N_("You are not in a team, so you cannot hold cases.")),
    (r"Only a counsellor may edit the intake\.", N_("Only a counsellor may edit the intake.")),
    (r"The intake can only be changed while the case is in intake\.",
     N_("The intake can only be changed while the case is in intake.")),
    (r"Documents have already been signed for this household; the intake can no longer be "
     r"edited\.",
     N_("Documents have already been signed for this household; the intake can no longer be "
        "edited.")),
    (r"Signed documents exist\.", N_("Signed documents exist.")),
    (r"Only a counsellor may record an IND confirmation\.",
     N_("Only a counsellor may record an IND confirmation.")),
    (r"IND confirmations are recorded while the case is committed\.",
     N_("IND confirmations are recorded while the case is committed.")),
    (r"Unknown participant\.", N_("Unknown participant.")),
    (r"Not a participant of this case\.", N_("Not a participant of this case.")),
    (r"No pending application\.", N_("No pending application.")),
    (r"This participant has no pending asylum application to withdraw\.",
     N_("This participant has no pending asylum application to withdraw.")),
    (r"An IND confirmation is already recorded for this participant\.",
     N_("An IND confirmation is already recorded for this participant.")),
    (r"Recorded: (?P<ref>.+)\.", N_("Recorded: %(ref)s.")),
    (r"Only a counsellor may propose a payment\.", N_("Only a counsellor may propose a payment.")),
    (r"Travel support can be proposed once the departure agreement is signed and agreed\.",
     N_("Travel support can be proposed once the departure agreement is signed and agreed.")),
    (r"This case already has a live payment\.", N_("This case already has a live payment.")),
    (r"Cancel or reject it first\.", N_("Cancel or reject it first.")),
    (r"The payment details are incomplete\.", N_("The payment details are incomplete.")),
    (r"An IBAN is required for a bank transfer\.", N_("An IBAN is required for a bank transfer.")),
    (r"Not a valid IBAN: (?P<why>.+)\.", N_("Not a valid IBAN: %(why)s.")),
    (r"The account holder is required for a bank transfer\.",
     N_("The account holder is required for a bank transfer.")),
    (r"No travel-support tariff is in force today\.",
     N_("No travel-support tariff is in force today.")),
    (r"There is no proposed payment to decide on\.",
     N_("There is no proposed payment to decide on.")),
    (r"Nothing awaits a decision\.", N_("Nothing awaits a decision.")),
    (r"You proposed this payment; someone else must decide on it \(four eyes\)\.",
     N_("You proposed this payment; someone else must decide on it (four eyes).")),
    (r"The proposer can never approve their own proposal\.",
     N_("The proposer can never approve their own proposal.")),
    (r"The payment was changed by someone else; reload and try again\.",
     N_("The payment was changed by someone else; reload and try again.")),
    (r"Only a supervisor may approve a payment\.", N_("Only a supervisor may approve a payment.")),
    (r"Only a supervisor may reject a payment\.", N_("Only a supervisor may reject a payment.")),
    (r"This idempotency key was already used for a different request\.",
     N_("This idempotency key was already used for a different request.")),
    (r"The payment was already disbursed\.", N_("The payment was already disbursed.")),
    (r"Some fields are not valid\.", N_("Some fields are not valid.")),
    (r"A user with this e-mail address already exists\.",
     N_("A user with this e-mail address already exists.")),
    (r"You cannot deactivate your own account\.", N_("You cannot deactivate your own account.")),
    (r"There is no payment to (?P<verb>\w+)\.", N_("There is no payment to decide on or change.")),
    (r"No approved bank transfers are waiting for export\.",
     N_("No approved bank transfers are waiting for export.")),
    (r"Every approved transfer is already in an export\.",
     N_("Every approved transfer is already in an export.")),
    (r"The payment details are incomplete or wrong\.",
     N_("The payment details are incomplete or wrong.")),
    # schemas
    (r"Must not be blank\.", N_("Must not be blank.")),
    (r"A V-number is exactly 10 digits\.", N_("A V-number is exactly 10 digits.")),
    (r"Not a valid BSN: it must be 9 digits and pass the 11-check\.",
     N_("Not a valid BSN: it must be 9 digits and pass the 11-check.")),
    (r"Not an ISO 3166-2:UA region code \(UA-05 … UA-77, UA-30 for Kyiv\)\.",
     N_("Not an ISO 3166-2:UA region code (UA-05 … UA-77, UA-30 for Kyiv).")),
    (r"A date of birth cannot be in the future\.", N_("A date of birth cannot be in the future.")),
    (r"A date of birth before 1900 is not plausible\.",
     N_("A date of birth before 1900 is not plausible.")),
    (r"Write this name in Cyrillic letters\.", N_("Write this name in Cyrillic letters.")),
    (r"Not a phone number\.", N_("Not a phone number.")),
    (r"The same V-number appears twice on this case \((?P<where>[\w.]+)\)\.",
     N_("The same V-number appears twice on this case.")),
    (r"The IND cannot have confirmed in the future\.",
     N_("The IND cannot have confirmed in the future.")),
    (r"Letters, digits and \./- only\.", N_("Letters, digits and ./- only.")),
    (r"8–100 letters, digits or \._:-", N_("8–100 letters, digits or ._:-")),
    (r"Use 12 to 200 characters\.", N_("Use 12 to 200 characters.")),
    # marshmallow's own
    (r"Missing data for required field\.", N_("This field is required.")),
    (r"Field may not be null\.", N_("This field is required.")),
    (r"Not a valid date\.", N_("Not a valid date (use dd-mm-yyyy).")),
    (r"Not a valid email address\.", N_("Not a valid e-mail address.")),
    (r"Not a valid integer\.", N_("Not a whole number.")),
    (r"Not a valid boolean\.", N_("Choose yes or no.")),
    (r"Not a valid string\.", N_("Not valid text.")),
    (r"Unknown field\.", N_("Unknown field.")),
    (r"Invalid input type\.", N_("Invalid input.")),
    (r"Must be one of: .*\.", N_("Choose one of the options.")),
    (r"Longer than maximum length (?P<n>\d+)\.", N_("At most %(n)s characters.")),
    (r"Shorter than minimum length (?P<n>\d+)\.", N_("At least %(n)s characters.")),
    (r"Length must be between (?P<a>\d+) and (?P<b>\d+)\.",
     N_("Use between %(a)s and %(b)s characters.")),
    (r"String does not match expected pattern\.", N_("The format is not valid.")),
    (r"Must be greater than or equal to (?P<a>\d+) and less than or equal to (?P<b>\d+)\.",
     N_("Must be between %(a)s and %(b)s.")),
]
_COMPILED = [(re.compile(f"^{pattern}$"), msgid) for pattern, msgid in _SENTENCES]


def translate_message(message) -> str:
    """A sentence from the services, workflow or marshmallow in the UI language.

    Unknown sentences are returned unchanged (English), with their dates localised.
    """
    text = str(message)
    for pattern, msgid in _COMPILED:
        match = pattern.match(text)
        if match:
            values = {k: _GROUP_FORMATS.get(k, str)(v) for k, v in match.groupdict().items()}
            return localise_dates(gettext(msgid, **values))
    return localise_dates(text)


def init_app(app: Flask) -> None:
    """Babel with the Dutch default, and the filters templates use."""
    app.config.setdefault("BABEL_DEFAULT_LOCALE", DEFAULT_LANGUAGE)
    app.config.setdefault("BABEL_DEFAULT_TIMEZONE", TIMEZONE)
    babel.init_app(app, locale_selector=select_locale)
    app.jinja_env.filters.update(
        date=format_date, datetime=format_datetime, time=format_time, money=format_money,
        number=format_number, msg=translate_message,
        state=lambda v: label(STATE_LABELS, v), action=lambda v: label(ACTION_LABELS, v),
        event=lambda v: label(EVENT_LABELS, v), doc_kind=lambda v: label(DOCUMENT_LABELS, v),
        evidence=lambda v: label(EVIDENCE_LABELS, v), role=lambda v: label(ROLE_LABELS, v),
        relationship=lambda v: label(RELATIONSHIP_LABELS, v),
        pay_method=lambda v: label(PAYMENT_METHOD_LABELS, v),
        pay_status=lambda v: label(PAYMENT_STATUS_LABELS, v),
        person_language=lambda v: label(PARTICIPANT_LANGUAGE_LABELS, v),
    )

    tables = {"state": STATE_LABELS, "relationship": RELATIONSHIP_LABELS,
              "person_language": PARTICIPANT_LANGUAGE_LABELS, "evidence": EVIDENCE_LABELS,
              "pay_method": PAYMENT_METHOD_LABELS, "pay_status": PAYMENT_STATUS_LABELS,
              "role": ROLE_LABELS, "doc_kind": DOCUMENT_LABELS}

    def choices(values, kind: str) -> list[tuple[str, str]]:
        """(value, label) pairs for a select or radios."""
        return [(v, label(tables[kind], v)) for v in values]

    def chart_rows(items, label_key: str, value_key: str, kind: str | None = None,
                   money: bool = False, names: dict | None = None) -> list[dict]:
        """Rows for the bar-chart macro: label (translated or looked up), value, display."""
        rows = []
        for item in items:
            key = item[label_key]
            text = label(tables[kind], key) if kind else (
                f"{key} {names[key]}" if names and key in names else str(key))
            value = item[value_key]
            rows.append({"label": text, "value": value,
                         "display": format_money(value) if money else format_number(value)})
        return rows

    app.jinja_env.globals.update(choices=choices, chart_rows=chart_rows)

    @app.context_processor
    def _languages():
        return {"ui_languages": LANGUAGES, "ui_language": language()}


__all__ = ["LANGUAGES", "DEFAULT_LANGUAGE", "init_app", "translate_message", "format_date",
           "format_datetime", "format_money", "label"]
