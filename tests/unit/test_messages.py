"""Messages by code (returnprog.messages): every code has its Dutch, renders with its
parameters in every UI language, no English template reaches the Dutch staff UI, the
source raises codes rather than sentences, and plurals are right."""
from __future__ import annotations

import ast
import datetime as dt
import re
from pathlib import Path

import pytest
from babel.messages.pofile import read_po
from flask import Flask

from returnprog import i18n, messages
from returnprog.messages import MESSAGES, PARTICIPANT_CODES, M, Message, Plural, Refusal

ROOT = Path(__file__).resolve().parents[2]
TRANSLATIONS = ROOT / "returnprog" / "translations"

# A sample value for each parameter name the templates use.
SAMPLES = {
    "names": ["Olena Kovalenko", "Taras Kovalenko"], "date": dt.date(2026, 5, 8),
    "days": 7, "cents": 150000, "tariff": 225000, "state": "intake",
    "states": ["asylum_withdrawn", "departure_agreed"], "action": "lapse",
    "roles": ["counsellor", "supervisor"], "ref": "VRP-2026-000001", "v": "1234567890",
    "name": "fly", "id": 3, "version": 4, "current": 5, "given": 6, "status": "approved",
    "statuses": ["proposed"], "why": "too short", "batch": 2, "length": 12, "country": "NL",
    "methods": "transfer, cash, card", "max": 100, "min": 2, "equal": 10, "method": "cash",
    "reclaim": 5000, "paid": 4000, "num": 2, "kinds": "commitment, addendum",
    "choices": "a, b", "where": "principal", "seconds": 5, "signed_on": dt.date(2026, 5, 6),
    "age": 18, "types": "case.state_changed, document.signed", "scope": "outside_sepa",
    "total": 600000, "limit": 500000, "format": "sepa", "max_bytes": 5000000, "line": 3,
    "month": "2026-11", "booked": 2, "returned": 1, "review": 1, "mb": 5,
}


def _params(code: str) -> dict:
    entry = MESSAGES[code]
    text = " ".join(entry[:2]) if isinstance(entry, Plural) else entry
    return {name: SAMPLES[name] for name in re.findall(r"%\((\w+)\)s", text)}


def _catalogue(lang: str) -> dict:
    po = read_po((TRANSLATIONS / lang / "LC_MESSAGES" / "messages.po").open("rb"))
    return {(m.id[0] if isinstance(m.id, tuple) else m.id): m for m in po if m.id}


def _msgid(code: str) -> str:
    entry = MESSAGES[code]
    return entry.singular if isinstance(entry, Plural) else entry


def _app(lang: str) -> Flask:
    app = Flask("t")
    i18n.init_app(app)
    app.config["BABEL_TRANSLATION_DIRECTORIES"] = str(TRANSLATIONS)
    i18n.babel.init_app(app, locale_selector=lambda: lang)
    return app


def _translated(entry) -> bool:
    string = entry.string
    return bool(all(string) if isinstance(string, tuple) else string) and not entry.fuzzy


@pytest.mark.parametrize("lang,codes", [("nl", sorted(MESSAGES)),
                                        ("uk", sorted(PARTICIPANT_CODES)),
                                        ("ru", sorted(PARTICIPANT_CODES)),
                                        ("en", sorted(PARTICIPANT_CODES))])
def test_every_code_has_a_translation(lang, codes):
    catalogue = _catalogue(lang)
    missing = [c for c in codes if _msgid(c) not in catalogue or not _translated(catalogue[_msgid(c)])]
    assert not missing, f"{lang}: codes without a translation: {missing}"


def test_participant_codes_are_codes():
    assert PARTICIPANT_CODES <= set(MESSAGES)


@pytest.mark.parametrize("lang", ["nl", "en", "uk", "ru"])
def test_every_code_renders_with_its_params(lang):
    with _app(lang).test_request_context():
        for code in MESSAGES:
            text = i18n.render_message(M(code, **_params(code)))
            assert text and "%(" not in text, (code, text)


def test_no_english_template_reaches_the_dutch_staff_ui():
    """Each code under nl differs from its English rendering, except where the Dutch is the
    same words (technical text such as the Content-Type hint)."""
    same_in_dutch = {"api.send_json"}
    shown_english = []
    with _app("nl").test_request_context():
        for code in MESSAGES:
            message = M(code, **_params(code))
            dutch = i18n.render_message(message)
            if code not in same_in_dutch and (dutch == str(message) or dutch == _msgid(code)):
                shown_english.append((code, dutch))
    assert not shown_english


def test_the_api_english_is_the_services_wording():
    refusal = Refusal("payment_amount_mismatch", {"cents": 150000, "tariff": 225000})
    assert refusal.as_dict() == {
        "code": "payment_amount_mismatch",
        "message": "The payment amount (150000 cents) differs from the household's tariff "
                   "(225000 cents)."}
    variant = Refusal("departure_agreement_unsigned:for_deadline",
                      {"date": dt.date(2026, 5, 8), "names": ["Olena K"]}, "departure_deadline")
    assert variant.code == "departure_agreement_unsigned"
    assert variant.as_dict()["message"] == "No departure agreement for 2026-05-08 signed by: Olena K."
    assert str(M("role", roles=["supervisor", "counsellor"], action="lapse")) == \
        "Only a counsellor or supervisor may perform 'Lapse'."


def test_an_unknown_code_is_refused():
    with pytest.raises(KeyError):
        Refusal("no_such_code")
    with pytest.raises(KeyError):
        M("no.such.code")


def test_marshmallow_messages_carry_codes():
    from marshmallow import ValidationError, validate

    from returnprog.schemas import ConfirmDepartureSchema

    with pytest.raises(ValidationError) as caught:
        ConfirmDepartureSchema().load({"departed_on": "not a date"})
    found = [m for msgs in caught.value.messages.values() for m in msgs]
    assert all(isinstance(m, Message) for m in found), found
    assert {m.code for m in found} >= {"field.invalid_date", "field.required"}
    with _app("nl").test_request_context():
        assert i18n.render_message(validate.Length.message_max.format(max=30)) == "Hoogstens 30 tekens."


def test_service_errors_carry_code_params_and_english():
    from returnprog.services import Conflict, NotFound

    err = NotFound("case.not_found", ref="VRP-2026-000009")
    assert (err.code, err.message_code, err.params) == ("not_found", "case.not_found",
                                                       {"ref": "VRP-2026-000009"})
    assert err.message == "No case VRP-2026-000009 that you may see."
    conflict = Conflict.from_refusals("case.action_not_possible", [Refusal("reason_missing",
                                                                           field="reason")],
                                      action="reject")
    assert conflict.message == "'Reject' is not possible yet."
    with _app("nl").test_request_context():
        assert i18n.render_message(err) == "Geen dossier VRP-2026-000009 dat u mag zien."


def test_signing_pages_render_a_service_error_in_the_participants_language():
    from returnprog.services.signing import LinkRefused

    err = LinkRefused("signing.link_expired", "expired")
    with _app("nl").test_request_context():
        assert i18n.render_message(err, "uk").startswith("Термін дії цього посилання минув")
        assert i18n.render_message(err, "ru").startswith("Срок действия этой ссылки истёк")
        assert i18n.render_message(err, "en") == str(err.message)
        assert i18n.render_message(err, "nl") == (
            "Deze ondertekenlink is verlopen; vraag uw begeleider om een nieuwe.")


def test_plurals_in_dutch_and_english():
    with _app("nl").test_request_context():
        assert i18n.render_message(M("count.persons", num=1)) == "1 persoon"
        assert i18n.render_message(M("count.persons", num=2)) == "2 personen"
    with _app("en").test_request_context():
        assert i18n.render_message(M("count.persons", num=1)) == "1 person"
        assert i18n.render_message(M("count.persons", num=2)) == "2 persons"
    assert str(M("count.adults", num=1)) == "1 adult"
    assert str(M("payment.outside_sepa", num=3)).startswith("3 transfers")


# --- the source raises codes, never sentences ------------------------------------------------

_CONSTRUCTORS = {"Refusal", "ServiceError", "NotFound", "Forbidden", "Conflict", "Invalid",
                 "from_refusals", "LinkRefused", "SignInRefused", "ApiError", "M", "Message"}
# Calls whose first string argument is not the message (ApiError: status, then API code).
_MESSAGE_ARG = {"ApiError": 2}


def _calls():
    for path in sorted((ROOT / "returnprog").rglob("*.py")):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
            if name in _CONSTRUCTORS:
                index = _MESSAGE_ARG.get(name, 0)
                if len(node.args) > index:
                    yield path.relative_to(ROOT), node.lineno, name, node.args[index]


def test_no_construction_passes_an_english_sentence_and_every_code_is_known():
    sentences, unknown = [], []
    for path, line, name, arg in _calls():
        if isinstance(arg, ast.JoinedStr):
            # f"payment.{verb}_role" style: the literal parts must fit some codes.
            shape = "".join(re.escape(v.value) if isinstance(v, ast.Constant) else r"\w+"
                            for v in arg.values)
            if " " in shape or not any(re.fullmatch(shape, code) for code in MESSAGES):
                sentences.append((str(path), line, shape))
        elif isinstance(arg, ast.Constant) and isinstance(arg.value, str):
            if " " in arg.value:
                sentences.append((str(path), line, arg.value))
            elif arg.value not in MESSAGES:
                unknown.append((str(path), line, arg.value))
    assert not sentences, f"English sentences instead of codes: {sentences}"
    assert not unknown, f"codes missing from MESSAGES: {unknown}"


def test_code_constants_and_literals_in_services_are_known():
    """Codes kept in constants or passed through helpers (BUSY_MESSAGE, _require_state's
    code) are string literals shaped like codes; each must be in MESSAGES. (Not web/: its
    endpoint names look the same, and its constructions are covered by the AST test.)"""
    pattern = re.compile(r"""["']((?:case|payment|signing|account|validate|field|api|error)"""
                         r"""\.[a-z_]+(?::[a-z_]+)?)["']""")
    unknown = []
    raising = [*(ROOT / "returnprog" / "services").glob("*.py"),
               *(ROOT / "returnprog" / name for name in (
                   "workflow.py", "payments.py", "schemas.py", "schemas_payments.py"))]
    for path in sorted(raising):
        for code in pattern.findall(path.read_text()):
            if code not in MESSAGES:
                unknown.append((str(path.relative_to(ROOT)), code))
    assert not unknown


def test_messages_module_is_flask_free():
    source = Path(messages.__file__).read_text()
    assert "flask" not in source.lower().replace("flask-free", "")
