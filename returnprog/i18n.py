"""Languages of the staff UI: Dutch by default, English switchable (stored in the session).

Flask-Babel translates the templates; this module adds the Dutch formats the programme
uses (dates ``dd-mm-yyyy``, amounts ``€ 1.234,50``), the labels of states, actions and
evidence, and the rendering of the messages the services, the workflow and marshmallow
raise by code (:mod:`returnprog.messages`) in the reader's language.

Catalogues: ``returnprog/translations/<lang>/LC_MESSAGES/messages.po`` with its compiled
``.mo`` next to it (shipped; ``tests/test_web_i18n.py`` fails when they drift). After
changing texts::

    .venv/bin/pybabel extract -F returnprog/translations/babel.cfg -k _l -k N_ -k NP_:1,2 -k ngettext:1,2 -k S -o /tmp/messages.pot .
    .venv/bin/pybabel update --no-fuzzy-matching -i /tmp/messages.pot -d returnprog/translations
    .venv/bin/pybabel compile -d returnprog/translations
"""
from __future__ import annotations

import datetime as dt
from decimal import Decimal
from zoneinfo import ZoneInfo

from babel.dates import format_date as _babel_date
from babel.numbers import format_currency as _babel_currency
from flask import Flask, g, has_app_context, has_request_context, session
from flask_babel import Babel, force_locale, get_locale, get_translations
from flask_babel.speaklater import LazyString

from .messages import Message, render
from .policy import TIMEZONE_NAME

from . import glossary, payment_flow, workflow

LANGUAGES = {"nl": "Nederlands", "en": "English"}
DEFAULT_LANGUAGE = "nl"
TIMEZONE = TIMEZONE_NAME

babel = Babel()


# --- translations, resolved once per request and language ----------------------------------

def current_translations():
    """The message catalogue of the current language (the page's, or the one
    :func:`flask_babel.force_locale` sets), for every string a template or a label table
    translates.

    Flask-Babel resolves the domain, the locale and the catalogue again for every string,
    through about ten context-local lookups; a case page translates ~70 strings and its
    label tables as many again. Kept once per request and language (:func:`_per_locale`).
    """
    return _per_locale("returnprog_translations", get_translations)


def _per_locale(name: str, compute):
    """``compute()``, kept on Flask-Babel's own per-request namespace under ``name`` next to
    the locale object it was computed for. ``force_locale`` and ``refresh`` replace that
    object, so a switched language never reads what was kept for the previous one;
    outside a request nothing is kept."""
    ns = g.get("_flask_babel") if has_app_context() else None
    if ns is not None:
        kept = getattr(ns, name, None)
        if kept is not None and kept[0] is getattr(ns, "babel_locale", None):
            return kept[1]
    value = compute()
    # Looked up again: computing it is what makes Flask-Babel set the namespace up.
    ns = g.get("_flask_babel") if has_app_context() else None
    locale = getattr(ns, "babel_locale", None) if ns is not None else None
    if locale is not None:
        setattr(ns, name, (locale, value))
    return value


def gettext(string: str, **variables) -> str:
    """``string`` in the current language, ``%(name)s`` filled from ``variables`` (as
    :func:`flask_babel.gettext`)."""
    text = current_translations().ugettext(string)
    return text % variables if variables else text


def _l(string: str, **variables) -> LazyString:
    """``string`` translated when it is shown, in the language of that moment (as
    :func:`flask_babel.lazy_gettext`): for tables built at import time."""
    return LazyString(gettext, string, **variables)


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
    """The current UI language code (``nl`` or ``en``; on a signing page the participant's).
    Every date, amount and number on a page asks: kept as :func:`current_translations`."""
    return _per_locale("returnprog_language",
                       lambda: str(get_locale() or DEFAULT_LANGUAGE).split("_")[0])


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

# Workflow actions: the button and the timeline entry come from the workflow table's rows.
ACTION_LABELS = {name: _l(a.label) for name, a in workflow.ACTIONS.items()}

# What the timeline says happened (audit-trail actions).
EVENT_LABELS = {
    **{name: _l(a.event) for name, a in workflow.ACTIONS.items()},
    "update_intake": _l("Intake edited"),
    "correct_case": _l("Case details corrected"),
    "record_ind_confirmation": _l("IND confirmation recorded"),
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
    "signing_declined": _l("Signature declined by the participant"),
    "email_signed_copy": _l("Signed copy e-mailed to the signer"),
    "add_case_note": _l("Note added"),
    "upload_evidence": _l("Evidence file uploaded"),
    "place_legal_hold": _l("Legal hold placed"),
    "lift_legal_hold": _l("Legal hold lifted"),
    "remove_from_destruction_list": _l("Taken off a destruction list"),
    "destroy_case": _l("Case destroyed (tombstone kept)"),
}

# The records lifecycle (returnprog.services.records).
LIST_STATUS_LABELS = {
    "proposed": _l("Proposed, to be reviewed"),
    "reviewed": _l("Reviewed, to be approved"),
    "approved": _l("Approved, to be destroyed"),
    "destroyed": _l("Destroyed"),
    "cancelled": _l("Cancelled"),
}
ITEM_STATUS_LABELS = {
    "listed": _l("On the list"),
    "removed": _l("Taken off: kept"),
    "destroyed": _l("Destroyed"),
    "skipped": _l("Skipped: on hold or rule changed"),
}
HOLD_REASON_LABELS = {
    "objection": _l("Objection"),
    "appeal": _l("Appeal"),
    "investigation": _l("Investigation"),
    "other": _l("Other"),
}

# What a reader looked at and how (the access log, returnprog.access_log.VIEWS).
LOOK_VIEW_LABELS = {
    "case": _l("the case"),
    "document": _l("a signed document"),
    "payment": _l("the payment and bank details"),
    "trail": _l("the audit trail"),
    "notes": _l("the notes"),
    "evidence": _l("an evidence file"),
    "access_request": _l("the data for an access request"),
}
LOOK_CHANNEL_LABELS = {"web": _l("staff pages"), "api": _l("API"), "cli": _l("command line"),
                       "link": _l("the participant's signing link")}

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
    "records_manager": _l("Records manager"),
    "process_owner": _l("Process owner"),
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

# From the payment's state table (payment_flow), whose labels are marked with N_.
PAYMENT_STATUS_LABELS = {name: _l(s.label) for name, s in payment_flow.STATUSES.items()}

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


# --- messages by code (returnprog.messages) ---------------------------------------------------

def _seq(value) -> list:
    return [value] if isinstance(value, str) else list(value or ())


def message_formats() -> dict:
    """The formatters of message parameters in the current language (see
    :data:`returnprog.messages.PARAM_KINDS`)."""
    return {
        "date": format_date, "money": format_money, "euro": format_money,
        "state": lambda v: label(STATE_LABELS, v),
        "states": lambda vs: ", ".join(label(STATE_LABELS, v) for v in _seq(vs)),
        "action": lambda v: label(ACTION_LABELS, v),
        "roles": lambda vs: " / ".join(label(ROLE_LABELS, v) for v in _seq(vs)),
        "alternatives": lambda vs: " / ".join(label(PAYMENT_STATUS_LABELS, v) for v in _seq(vs)),
        "pay_method": lambda v: label(PAYMENT_METHOD_LABELS, v),
        "names": lambda vs: ", ".join(_seq(vs)),
    }


def _as_message(message):
    """The Message inside an error, a refusal or an API detail; other values as they are."""
    if isinstance(message, Message):
        return message
    if isinstance(message, dict):
        return message.get("message", "")
    inner = getattr(message, "message", None)  # ServiceError, Refusal
    if isinstance(inner, Message):
        return inner
    return message


def _render_here(message) -> str:
    message = _as_message(message)
    if not isinstance(message, Message):
        return "" if message is None else str(message)
    translations = current_translations()
    return render(message.code, message.params, translations.gettext, translations.ngettext,
                  message_formats())


def render_message(message, lang: str | None = None) -> str:
    """A message by code (a Message, ServiceError, Refusal or API detail dict) in ``lang``,
    or in the page's language when ``lang`` is None; text without a code is shown as is.

    The staff UI and the signing pages call this; the signing pages pass the
    participant's language (uk, ru, en, nl). Needs an app context.
    """
    if lang is None:
        return _render_here(message)
    with force_locale(lang):
        return _render_here(message)


def render_code(code: str, lang: str | None = None, **params) -> str:
    """The message ``code`` with ``params`` in ``lang`` (or the page's language)."""
    return render_message(Message(code, params), lang)


def init_app(app: Flask) -> None:
    """Babel with the Dutch default, and the filters templates use."""
    app.config.setdefault("BABEL_DEFAULT_LOCALE", DEFAULT_LANGUAGE)
    app.config.setdefault("BABEL_DEFAULT_TIMEZONE", TIMEZONE)
    babel.init_app(app, locale_selector=select_locale)
    app.jinja_env.install_gettext_callables(
        gettext=lambda s: current_translations().ugettext(s),
        ngettext=lambda s, p, n: current_translations().ungettext(s, p, n),
        pgettext=lambda c, s: current_translations().upgettext(c, s),
        npgettext=lambda c, s, p, n: current_translations().unpgettext(c, s, p, n),
        newstyle=True,
    )
    app.jinja_env.filters.update(
        date=format_date, datetime=format_datetime, time=format_time, money=format_money,
        number=format_number, msg=render_message,
        state=lambda v: label(STATE_LABELS, v), action=lambda v: label(ACTION_LABELS, v),
        event=lambda v: label(EVENT_LABELS, v), doc_kind=lambda v: label(DOCUMENT_LABELS, v),
        evidence=lambda v: label(EVIDENCE_LABELS, v), role=lambda v: label(ROLE_LABELS, v),
        relationship=lambda v: label(RELATIONSHIP_LABELS, v),
        pay_method=lambda v: label(PAYMENT_METHOD_LABELS, v),
        pay_status=lambda v: label(PAYMENT_STATUS_LABELS, v),
        person_language=lambda v: label(PARTICIPANT_LANGUAGE_LABELS, v),
        look_view=lambda v: label(LOOK_VIEW_LABELS, v),
        look_channel=lambda v: label(LOOK_CHANNEL_LABELS, v),
        list_status=lambda v: label(LIST_STATUS_LABELS, v),
        item_status=lambda v: label(ITEM_STATUS_LABELS, v),
        hold_reason=lambda v: label(HOLD_REASON_LABELS, v),
    )

    tables = {"state": STATE_LABELS, "relationship": RELATIONSHIP_LABELS,
              "person_language": PARTICIPANT_LANGUAGE_LABELS, "evidence": EVIDENCE_LABELS,
              "pay_method": PAYMENT_METHOD_LABELS, "pay_status": PAYMENT_STATUS_LABELS,
              "role": ROLE_LABELS, "doc_kind": DOCUMENT_LABELS, "hold_reason": HOLD_REASON_LABELS}

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


__all__ = ["LANGUAGES", "DEFAULT_LANGUAGE", "init_app", "render_message", "render_code", "format_date",
           "format_datetime", "format_money", "label"]
