"""The programme's glossary: each thing the service names to people, named once.

The staff UI, the signing pages, the PDFs and the reminder e-mails all take the name of the
service and of each document kind from here, so a participant never reads «Служба
повернення та виїзду» in a document and another name in an e-mail. The English text is the
msgid; the Dutch, Ukrainian and Russian names live in the one gettext catalogue
(``returnprog/translations/<lang>/LC_MESSAGES/messages.po``) like every other sentence.

Flask-free: callers pass the ``gettext`` of the reader's language.
"""
from __future__ import annotations

from typing import Callable

Gettext = Callable[[str], str]


def N_(msgid: str) -> str:
    """Mark a message for extraction by pybabel; it is translated where it is shown."""
    return msgid


SERVICE_NAME = N_("Repatriation and Departure Service (DTenV)")
PROGRAMME_NAME = N_("Voluntary return programme for displaced persons from Ukraine")

# The document kinds of DESIGN §5, by the kind codes the workflow and documents use.
DOCUMENT_NAMES: dict[str, str] = {
    "commitment": N_("Commitment to take part"),
    "withdrawal_declaration": N_("Declaration withdrawing the asylum application"),
    "departure_agreement": N_("Departure agreement"),
    "addendum": N_("Addendum to the departure agreement"),
    "payment_receipt": N_("Travel-support receipt"),
}


def service_name(gettext: Gettext) -> str:
    """The service's name in the reader's language."""
    return gettext(SERVICE_NAME)


def document_name(kind: str, gettext: Gettext) -> str:
    """The name of a document kind in the reader's language (the kind code if unknown)."""
    msgid = DOCUMENT_NAMES.get(kind)
    return gettext(msgid) if msgid else kind
