"""The signing pages speak through the one gettext catalogue: every participant text is
translated into Ukrainian, Russian and Dutch, every staff text into Dutch, and each page
shows the reader's language, not the English msgids (the tablet: the participant's
language for the participant, Dutch for the counsellor)."""
from __future__ import annotations

import html
import re
from functools import lru_cache
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_file
from babel.messages.pofile import read_po

from returnprog.services import cases as case_service

from ..conftest import intake
from ..web_client import PASSWORD, web_for
from .test_signing_support import adults_of, create_link, set_language

ROOT = Path(__file__).resolve().parents[2]
FORMS = ROOT / "forms" / "signing"
WEB = ROOT / "returnprog" / "web"
TRANSLATIONS = ROOT / "returnprog" / "translations"
DEFAULT_KEYWORDS = {"_": None, "gettext": None, "ngettext": (1, 2), "N_": None}
STAFF_KEYWORDS = {"S": None}
STAFF_TEMPLATES = {"choose.html", "link_created.html", "_case_panel.html", "_choose_forms.html"}


def _extract(path: Path, keywords: dict) -> set:
    method = "jinja2" if path.suffix == ".html" else "python"
    options = {"trimmed": "true"} if method == "jinja2" else {}
    return {msg for _line, msg, _comments, _ctx in
            extract_from_file(method, str(path), keywords=keywords, options=options)}


@lru_cache(maxsize=1)
def _msgids() -> tuple[set, set]:
    """(participant msgids, staff msgids) of the signing templates and web modules."""
    participant, staff = set(), set()
    for path in sorted(FORMS.glob("*.html")):
        staff |= _extract(path, STAFF_KEYWORDS)
        (staff if path.name in STAFF_TEMPLATES else participant).update(
            _extract(path, DEFAULT_KEYWORDS))
    for name in ("signing_common.py", "signing_link.py", "verify.py"):
        participant |= _extract(WEB / name, DEFAULT_KEYWORDS)
        staff |= _extract(WEB / name, STAFF_KEYWORDS)
    # The tablet module's N_ texts are the counsellor's labels (identity documents, link
    # states); its participant sentences come from signing_common.
    staff |= _extract(WEB / "signing_tablet.py", {**DEFAULT_KEYWORDS, **STAFF_KEYWORDS})
    return participant, staff


@lru_cache(maxsize=4)
def _catalogue(lang: str) -> dict:
    with open(TRANSLATIONS / lang / "LC_MESSAGES" / "messages.po", "rb") as fh:
        return {m.id: m for m in read_po(fh) if m.id}


def _untranslated(lang: str, msgids: set) -> list:
    po = _catalogue(lang)
    bad = []
    for msgid in msgids:
        entry = po.get(msgid)
        strings = entry.string if entry is not None and isinstance(entry.string, tuple) \
            else (entry.string if entry is not None else "",)
        if entry is None or entry.fuzzy or not all(s.strip() for s in strings):
            bad.append(msgid)
    return sorted(map(str, bad))


def test_the_extraction_finds_the_signing_texts():
    participant, staff = _msgids()
    assert "Sign the document" in participant and "The document" in participant
    assert "Identity document checked" in staff and "Passport" in staff
    assert len(participant) > 60 and len(staff) > 40


@pytest.mark.parametrize("lang", ["uk", "ru", "nl"])
def test_every_participant_text_is_translated(lang):
    participant, _staff = _msgids()
    assert not _untranslated(lang, participant)


def test_every_staff_text_is_translated_into_dutch_and_has_an_english_entry():
    _participant, staff = _msgids()
    assert not _untranslated("nl", staff)
    assert not [m for m in staff if m not in _catalogue("en")]


def test_the_new_signature_size_message_keeps_its_reviewed_translations():
    msgid = ("Your signature drawing is too large. Draw it again, smaller, or choose to type "
             "your full name.")
    assert _catalogue("uk")[msgid].string == ("Намальований підпис завеликий. Намалюйте його "
                                             "ще раз, менше, або виберіть введення повного імені.")
    assert _catalogue("ru")[msgid].string == ("Нарисованная подпись слишком большая. Нарисуйте "
                                             "её ещё раз, поменьше, или выберите ввод полного "
                                             "имени.")


def _english_left(page: str, lang: str, msgids: set) -> list[str]:
    """English msgids (longer than 20 characters) that ``lang`` translates but the page
    shows untranslated."""
    po = _catalogue(lang)
    body = html.unescape(page)
    left = []
    for msgid in msgids:
        if isinstance(msgid, tuple):
            continue
        entry = po.get(msgid)
        if entry is None or not entry.string or entry.string == msgid:
            continue
        # A format string is looked for up to its first value.
        probe = msgid.split("%(")[0]
        if len(probe) > 20 and probe in body:
            left.append(msgid)
    return left


def _sections(page: str) -> dict[str, str]:
    parts = re.split(r'<section lang="(\w+)"', page)
    return dict(zip(parts[1::2], parts[2::2]))


def _open_case(app, staff, ctx_for, adults):
    return case_service.open_case(ctx_for(staff.counsellor), intake(adults, 0)).reference


LANGS = ("uk", "ru", "en", "nl")


def test_each_participant_page_speaks_the_participants_language(app, staff, ctx_for, session):
    participant, _staff = _msgids()
    reference = _open_case(app, staff, ctx_for, adults=4)
    people = adults_of(app, reference)
    web = web_for(app, staff.counsellor)
    client = app.test_client()
    for lang, person in zip(LANGS, people):
        set_language(app, person.id, lang)
        pages = {
            "link": client.get(create_link(web, reference, person.id)),
            "done": client.get(f"/s/done?lang={lang}&kind=commitment"),
            "verify": client.get(f"/verify?lang={lang}"),
        }
        for name, resp in pages.items():
            assert resp.status_code == 200, (lang, name)
            page = resp.get_data(as_text=True)
            assert f'<html lang="{lang}">' in page, (lang, name)
            if lang != "en":
                assert not _english_left(page, lang, participant), (lang, name)
        link_page = html.unescape(pages["link"].get_data(as_text=True))
        done_page = html.unescape(pages["done"].get_data(as_text=True))
        verify_page = html.unescape(pages["verify"].get_data(as_text=True))
        def said(msgid, lang=lang):
            return _catalogue(lang)[msgid].string if lang != "en" else msgid
        assert said("Sign the document") in link_page
        assert said("Thank you. The document has been signed.") in done_page
        assert said("Check a signed document") in verify_page


def test_a_refused_link_says_it_in_every_participant_language(app):
    participant, _staff = _msgids()
    resp = app.test_client().get("/s/" + "A" * 43)
    assert resp.status_code in (404, 410)
    sections = _sections(resp.get_data(as_text=True))
    assert list(sections) == ["uk", "en", "ru", "nl"]
    for lang, section in sections.items():
        expected = "This signing link is not valid. Check that you opened the whole link."
        if lang != "en":
            assert not _english_left(section, lang, participant), lang
            expected = _catalogue(lang)[expected].string
        assert expected in html.unescape(section), lang


def test_the_tablet_shows_the_participant_their_language_and_the_counsellor_dutch(
        app, staff, ctx_for, session):
    participant, staff_msgids = _msgids()
    reference = _open_case(app, staff, ctx_for, adults=2)
    ukrainian, russian = adults_of(app, reference)
    set_language(app, russian.id, "ru")
    web = web_for(app, staff.counsellor)
    nl = _catalogue("nl")
    for person, lang in ((ukrainian, "uk"), (russian, "ru")):
        resp = web.post(f"/cases/{reference}/tablet",
                        {"participant_id": person.id, "kind": "commitment"})
        assert resp.status_code == 200
        page = resp.get_data(as_text=True)
        body = html.unescape(page)
        assert f'<html lang="{lang}">' in page
        assert _catalogue(lang)["Sign the document"].string in body
        assert not _english_left(page, lang, participant), lang
        # The counsellor's part is Dutch, whatever the participant reads.
        assert nl["Identity document checked"].string in body
        assert nl["Passport"].string in body
        assert not _english_left(page, "nl", staff_msgids - participant), lang
        # The tablet is locked to this signer now (kiosk): the password hands it back.
        assert web.post("/tablet/hand-back", {"password": PASSWORD}).status_code == 303
