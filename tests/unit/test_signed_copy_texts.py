"""The signer's copy e-mail and the decline reason rule, without a database: the e-mail
speaks the participant's language first and carries the document by id only; every
document kind has its "what happens next" sentence in every participant language; a decline
reason is required, bounded and free of control characters."""
from __future__ import annotations

import datetime as dt

import pytest

from returnprog import mailtext, workflow
from returnprog.models import Case, Document, Participant
from returnprog.services import Invalid
from returnprog.services import signed_copy
from returnprog.services.signing import (DECLINE_CODES, MAX_DECLINE_REASON,
                                         check_decline_reason)


def _objects(lang: str, kind: str = workflow.WITHDRAWAL_DECLARATION):
    case = Case(id=7, reference="VRP-2026-000007", counsellor_id=1, team_id=1)
    person = Participant(id=3, case_id=7, given_names_latin="Olena", family_name_latin="Kovalenko",
                         given_names_cyrillic="Олена", family_name_cyrillic="Коваленко",
                         email=" olena@example.org ", language=lang,
                         date_of_birth=dt.date(1985, 5, 1), v_number="1234567890")
    doc = Document(id=11, case_id=7, participant_id=3, kind=kind, version=2, language=lang,
                   signed_at=dt.datetime(2026, 5, 12, 12, 30, tzinfo=dt.timezone.utc),
                   pdf=b"%PDF-", sha256="0" * 64)
    return case, person, doc


@pytest.mark.parametrize("lang,first,then", [
    ("uk", "Ваш підписаний документ", "Uw ondertekende document"),
    ("ru", "Ваш подписанный документ", "Uw ondertekende document"),
    ("en", "Your signed document", "Uw ondertekende document"),
    ("nl", "Uw ondertekende document", "Your signed document"),
], ids=["uk", "ru", "en", "nl"])
def test_the_copy_mail_is_in_the_signers_language_first_and_names_the_document_by_id(
        lang, first, then):
    message = signed_copy.copy_message(*_objects(lang))
    assert message.subject.startswith(first) and then in message.subject
    assert message.document_id == 11 and message.kind == "signed_copy"
    assert message.recipient == "olena@example.org"
    assert message.signing_request_id is None  # a used link must not cancel the copy
    next_step = signed_copy.next_step(workflow.WITHDRAWAL_DECLARATION,
                                      mailtext.translations(lang).gettext)
    assert "IND" in next_step
    assert message.body_text.index(next_step) < message.body_text.index("—" * 24)
    assert 'lang="%s"' % lang in message.body_html.split("<hr>")[0]


@pytest.mark.parametrize("lang", ["uk", "ru", "nl"])
def test_every_signable_kind_says_what_happens_next_in_each_language(lang):
    gettext = mailtext.translations(lang).gettext
    for kind in workflow.SIGNABLE_KINDS:
        text = signed_copy.next_step(kind, gettext)
        assert text and text != signed_copy.NEXT_STEPS[kind], (lang, kind)
    assert signed_copy.next_step("unknown", gettext) == ""


def test_a_decline_needs_a_reason_within_bounds_and_without_control_characters():
    assert check_decline_reason("questions", "") == ("questions", "")
    assert check_decline_reason(None, "  Ik wil\r\nnadenken ") == (None, "Ik wil\nnadenken")
    assert check_decline_reason("other", "Reden") == ("other", "Reden")
    for code, reason, field in [(None, "", "decline_reason"), ("other", "  ", "decline_reason"),
                                ("bogus", "x", "decline_code"),
                                (None, "a\x00b", "decline_reason"),
                                (None, "x" * (MAX_DECLINE_REASON + 1), "decline_reason")]:
        with pytest.raises(Invalid) as caught:
            check_decline_reason(code, reason)
        assert field in caught.value.details, (code, reason)
    assert "other" in DECLINE_CODES
