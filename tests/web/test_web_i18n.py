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
from returnprog.i18n import format_date, format_datetime, format_money, translate_message

ROOT = Path(__file__).resolve().parents[2]
CATALOGUE = ROOT / "returnprog" / "translations" / "nl" / "LC_MESSAGES"
REBUILD = ("pybabel extract -F returnprog/translations/babel.cfg -k _l -k N_ -k ngettext:1,2 "
           "-k S -o /tmp/m.pot . && pybabel update --no-fuzzy-matching -i /tmp/m.pot -d returnprog/translations && "
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
                    "-k", "_l", "-k", "N_", "-k", "ngettext:1,2", "-k", "S", "-o", str(pot),
                    "."], cwd=ROOT, check=True,
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
    # The English sentence patterns know every action label the workflow uses.
    assert {a.label for a in workflow.ACTIONS.values()} == set(i18n._LABEL_BY_ENGLISH)


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
        assert translate_message(
            "The commitment (deelnameverklaring) is not signed yet by: Olena K, Taras K.") == \
            "De deelnameverklaring is nog niet ondertekend door: Olena K, Taras K."
        assert translate_message(
            "The departure deadline must be at least 7 days ahead (on or after 2026-05-08): "
            "DTenV needs that time to arrange travel.") == (
            "De vertrektermijn moet minstens 7 dagen vooruit liggen (op of na 08-05-2026): "
            "DTenV heeft die tijd nodig om de reis te regelen.")
        assert translate_message(
            "'Lapse' is only possible when the case is asylum_withdrawn, departure_agreed; "
            "it is intake.") == ("'Laat vervallen' kan alleen als het dossier de status "
                                 "Asielaanvraag ingetrokken, Vertrek afgesproken heeft; het is "
                                 "nu Intake.")
        assert translate_message("The payment amount (150000 cents) differs from the "
                                 "household's tariff (225000 cents).") == (
            "Het bedrag van de betaling (€ 1.500,00) wijkt af van het tarief voor het "
            "huishouden (€ 2.250,00).")
        assert translate_message("Missing data for required field.") == "Dit veld is verplicht."
        assert translate_message("Longer than maximum length 100.") == "Hoogstens 100 tekens."
        # A sentence the table does not know stays English, with local dates.
        assert translate_message("Something new on 2026-01-02.") == "Something new on 02-01-2026."
    with _app("en").test_request_context():
        assert translate_message("Missing data for required field.") == "This field is required."
