"""Languages: every text of the staff UI has its Dutch translation, the shipped compiled
catalogue matches the .po file, Dutch formats for dates and amounts, and the sentences of
the services, workflow and schemas reach the counsellor in Dutch."""
from __future__ import annotations

import datetime as dt
import subprocess
import sys
from pathlib import Path

from babel.messages.mofile import read_mo
from babel.messages.pofile import read_po
from flask import Flask

from returnprog import i18n, workflow
from returnprog.i18n import format_date, format_datetime, format_money, render_message
from returnprog.messages import M

ROOT = Path(__file__).resolve().parents[2]
CATALOGUE = ROOT / "returnprog" / "translations" / "nl" / "LC_MESSAGES"
# The gettext keywords of the whole service (as in babel.cfg's header): _l lazy labels,
# N_/NP_ marked messages and plurals, S the staff language on the signing pages.
KEYWORDS = ("-k", "_l", "-k", "N_", "-k", "NP_:1,2", "-k", "ngettext:1,2", "-k", "S")
REBUILD = (f"pybabel extract -F returnprog/translations/babel.cfg {' '.join(KEYWORDS)} "
           "-o /tmp/m.pot . && "
           "pybabel update --no-fuzzy-matching -i /tmp/m.pot -d returnprog/translations && "
           "pybabel compile -d returnprog/translations")


def _app(lang: str) -> Flask:
    app = Flask("t")
    i18n.init_app(app)
    app.config["BABEL_TRANSLATION_DIRECTORIES"] = str(ROOT / "returnprog" / "translations")
    i18n.babel.init_app(app, locale_selector=lambda: lang)
    return app


def test_every_text_of_the_staff_ui_has_a_dutch_translation(tmp_path):
    pot = tmp_path / "messages.pot"
    pybabel = Path(sys.executable).with_name("pybabel")
    subprocess.run([str(pybabel), "extract", "-F", "returnprog/translations/babel.cfg",
                    *KEYWORDS, "-o", str(pot), "."], cwd=ROOT, check=True,
                   capture_output=True)
    wanted = {m.id for m in read_po(pot.open("rb")) if m.id}
    po = {m.id: m for m in read_po((CATALOGUE / "messages.po").open("rb")) if m.id}
    missing = sorted(map(str, wanted - set(po)))
    untranslated = sorted(str(i) for i in wanted & set(po)
                          if not po[i].string or (isinstance(po[i].string, tuple)
                                                  and not all(po[i].string)) or po[i].fuzzy)
    assert not missing, f"texts without a Dutch entry (run: {REBUILD}): {missing[:20]}"
    assert not untranslated, f"texts not translated yet: {untranslated[:20]}"


def test_the_shipped_compiled_catalogue_matches_the_po_file():
    def entries(catalog):
        return {(tuple(m.id) if isinstance(m.id, (list, tuple)) else m.id):
                (tuple(m.string) if isinstance(m.string, (list, tuple)) else m.string)
                for m in catalog if m.id}

    po = entries(read_po((CATALOGUE / "messages.po").open("rb")))
    mo = entries(read_mo((CATALOGUE / "messages.mo").open("rb")))
    assert po == mo, f"messages.mo is stale: run pybabel compile -d returnprog/translations"


def test_every_state_action_and_choice_has_a_label():
    assert set(i18n.STATE_LABELS) == {s.value for s in workflow.State}
    assert set(workflow.ACTIONS) <= set(i18n.ACTION_LABELS)
    assert set(workflow.ACTIONS) <= set(i18n.EVENT_LABELS)
    assert set(workflow.DEPARTURE_EVIDENCE) == set(i18n.EVIDENCE_LABELS)
    assert set(workflow.ROLES) == set(i18n.ROLE_LABELS)
    from returnprog import payments, schemas
    assert set(schemas.RELATIONSHIPS) <= set(i18n.RELATIONSHIP_LABELS)
    assert set(schemas.LANGUAGES) == set(i18n.PARTICIPANT_LANGUAGE_LABELS)
    assert set(payments.METHODS) == set(i18n.PAYMENT_METHOD_LABELS)
    assert set(payments.STATUSES) == set(i18n.PAYMENT_STATUS_LABELS)


def test_dutch_and_english_formats():
    with _app("nl").test_request_context():
        assert format_money(123450) == "€ 1.234,50"
        assert format_money(75000) == "€ 750,00"
        assert format_date(dt.date(2026, 3, 4)) == "04-03-2026"
        assert format_date("2026-03-04") == "04-03-2026"
        assert format_datetime(dt.datetime(2026, 7, 1, 10, 5, tzinfo=dt.timezone.utc)) == \
            "01-07-2026 12:05"  # Amsterdam summer time
    with _app("en").test_request_context():
        assert format_money(123450) == "€1,234.50"
        assert format_date(dt.date(2026, 3, 4)) == "4 Mar 2026"


def test_refusals_and_validation_messages_reach_the_counsellor_in_dutch():
    with _app("nl").test_request_context():
        assert render_message(M("commitment_unsigned", names=["Olena K", "Taras K"])) == \
            "De deelnameverklaring is nog niet ondertekend door: Olena K, Taras K."
        assert render_message(M("deadline_too_soon", days=7, date=dt.date(2026, 5, 8))) == (
            "De vertrektermijn moet minstens 7 dagen vooruit liggen (op of na 08-05-2026): "
            "DTenV heeft die tijd nodig om de reis te regelen.")
        assert render_message(M("wrong_state", action="lapse",
                                states=["asylum_withdrawn", "departure_agreed"],
                                state="intake")) == (
            "'Laat vervallen' kan alleen als het dossier de status Asielaanvraag ingetrokken, "
            "Vertrek afgesproken heeft; het is nu Intake.")
        assert render_message(M("payment_amount_mismatch", cents=150000, tariff=225000)) == (
            "Het bedrag van de betaling (€ 1.500,00) wijkt af van het tarief voor het "
            "huishouden (€ 2.250,00).")
        assert render_message(M("field.required")) == "Dit veld is verplicht."
        assert render_message(M("validate.length_max", max=100)) == "Hoogstens 100 tekens."
        # Text without a code (not from the core) is shown as it is.
        assert render_message("Something new.") == "Something new."
    with _app("en").test_request_context():
        assert render_message(M("field.required")) == "This field is required."
        assert render_message(M("payment_amount_mismatch", cents=150000, tariff=225000)) == (
            "The payment amount (€1,500.00) differs from the household's tariff (€2,250.00).")


def test_a_language_forced_inside_a_request_is_the_one_every_text_is_translated_in():
    """The catalogue is looked up once per request and language
    (:func:`returnprog.i18n.current_translations`). A request that switches language half-way
    (a participant's copy or mail in their language from a counsellor's Dutch page) must
    translate in the new language (templates, code, lazy labels, the language that dates and
    amounts are formatted in) and in the old one after."""
    from flask import render_template_string
    from flask_babel import force_locale

    def catalogue(lang):
        po = read_po((ROOT / "returnprog" / "translations" / lang / "LC_MESSAGES"
                      / "messages.po").open("rb"))
        return {m.id: m.string or m.id for m in po if m.id}

    want = {lang: (catalogue(lang)["Signed by"],) * 2 + (catalogue(lang)["Departed"], lang)
            for lang in ("nl", "uk", "ru")}
    assert len({w[0] for w in want.values()}) == 3  # the three languages differ here

    def texts():
        return (i18n.gettext("Signed by"), render_template_string("{{ _('Signed by') }}"),
                str(i18n.STATE_LABELS["departed"]), i18n.language())

    with _app("nl").test_request_context():
        first = texts()
        with force_locale("uk"):
            uk = texts()
            with force_locale("ru"):
                ru = texts()
            uk_again = texts()
        back = texts()
    assert first == back == want["nl"]
    assert uk == uk_again == want["uk"]
    assert ru == want["ru"]
