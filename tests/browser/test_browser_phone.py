"""The participant's signing pages on a phone (375 x 812, touch, in Ukrainian and in
Russian), in Debian's chromium: nothing wider than the screen, axe without serious or
critical violations, a signature drawn by touch, a signature given with the keyboard
only, each acknowledgement refused on its own, the language switch, and the tablet's
kiosk lock (no staff page without the counsellor's password)."""
from __future__ import annotations

import io
import math

import pypdf
import pytest
from sqlmodel import select

from returnprog.models import Participant
from returnprog.policy import DEFAULT_POLICY
from returnprog.services import Context
from returnprog.services import signing as signing_service

from ..conftest import drive_to
from ..web_client import PASSWORD
from .test_browser_signing import Live, _sign_in, _watch, live  # noqa: F401  (fixture)

pytestmark = pytest.mark.browser

PHONE = {"viewport": {"width": 375, "height": 812}, "has_touch": True, "is_mobile": True,
         "device_scale_factor": 2}

# Every visible element's box against the viewport; parts hidden on purpose (the skip
# link off-screen until focused, the reflowed tables' visually hidden header row) are
# not laid out on the page and are left out.
_OVERFLOW = """() => {
  const width = document.documentElement.clientWidth;
  const bad = [];
  for (const el of document.body.querySelectorAll('*')) {
    const r = el.getBoundingClientRect();
    if (r.width <= 1 || r.height <= 1 || r.right <= 0) continue;
    if (r.right > width + 0.5) {
      bad.push(`${el.tagName.toLowerCase()}#${el.id}.${el.className} right=${Math.round(r.right)}`);
    }
  }
  return {scroll: document.documentElement.scrollWidth, width: width, bad: bad.slice(0, 8)};
}"""

# Controls the signer uses, at least 44 x 44 CSS pixels.
_SMALL = """() => Array.from(document.querySelectorAll(
    'main button, main input[type=checkbox], main input[type=radio], main input[type=text], '
    + 'main input[type=password], .language-switch a'))
  .filter(el => el.offsetParent !== null)
  .map(el => [el.id || el.textContent.trim().slice(0, 30), el.getBoundingClientRect()])
  .filter(([, r]) => r.width < 44 || r.height < 44)
  .map(([name, r]) => `${name}: ${Math.round(r.width)}x${Math.round(r.height)}`)"""


def _fits(page, what: str) -> None:
    page.wait_for_load_state("load")  # the stylesheets are in, so the layout is final
    got = page.evaluate(_OVERFLOW)
    assert got["scroll"] <= 375 and not got["bad"], (what, got)
    small = page.evaluate(_SMALL)
    assert not small, (what, small)


def _axe(page, what: str) -> None:
    from axe_playwright_python.sync_playwright import Axe

    results = Axe().run(page)
    bad = [v for v in results.response["violations"] if v["impact"] in ("serious", "critical")]
    assert not bad, f"axe on {what}: " + "; ".join(
        f"{v['id']} ({v['impact']}): {[n['target'] for n in v['nodes']][:3]}" for v in bad)


def _committed_case(live: Live, lang: str) -> tuple[str, int]:
    """A case in 'committed' (departure agreement and withdrawal signable), one adult
    speaking ``lang``, two minors."""
    with live.session() as s:
        def ctx_for(user, today=None):
            return Context(session=s, policy=DEFAULT_POLICY, actor=user, ip="127.0.0.1",
                           user_agent="pytest")
        case = drive_to(ctx_for, live.staff, s, "committed", adults=1, minors=2)
        adult = next(p for p in s.exec(select(Participant).where(Participant.case_id == case.id))
                     if DEFAULT_POLICY.is_adult_on(p.date_of_birth, ctx_for(None).today()))
        adult.language = lang
        s.commit()
        return case.reference, adult.id


def _link(live: Live, reference: str, participant_id: int, kind: str) -> str:
    with live.session() as s:
        ctx = Context(session=s, policy=DEFAULT_POLICY, actor=live.staff.counsellor,
                      ip="127.0.0.1", user_agent="pytest")
        terms = {}
        if kind == "departure_agreement":
            terms["departure_deadline"] = DEFAULT_POLICY.earliest_deadline(
                ctx.today()).isoformat()
        _request, token = signing_service.create_signing_link(ctx, reference, participant_id,
                                                              kind, terms)
    return f"{live.base}/s/{token}"


def _pass_code(page, live) -> None:
    """Get past the one-time code the policy asks for before these documents (issue 12
    item 1): ask for it by e-mail, read it from the outbox as the participant would from
    their mailbox, and enter it. The code pages themselves are checked at 375 px in
    test_browser_signing_codes.py."""
    from tests.web.test_signing_support import mailed_code

    if page.locator("input[name=channel]").count() == 0:
        return
    page.click("main form button[type=submit]")
    page.wait_for_selector("#code")
    code = mailed_code(live.app)
    page.fill("#code", code)
    page.click("main form button[type=submit]")
    page.wait_for_selector("form.signing-form")


def _tab_to(page, selector: str, limit: int = 150) -> None:
    """Move the keyboard focus forward with Tab until ``selector`` has it."""
    for _ in range(limit):
        if page.evaluate("s => document.activeElement && document.activeElement.matches(s)",
                         selector):
            return
        page.keyboard.press("Tab")
    raise AssertionError(f"Tab never reached {selector}")


@pytest.mark.parametrize("lang", ["uk", "ru"])
def test_every_signing_page_fits_a_phone_and_passes_axe(live, browser, lang):
    reference, adult = _committed_case(live, lang)
    links = {kind: _link(live, reference, adult, kind)
             for kind in ("withdrawal_declaration", "departure_agreement")}
    context = browser.new_context(**PHONE)
    page = context.new_page()
    problems = _watch(page)
    try:
        for kind, address in links.items():
            page.goto(address)
            _pass_code(page, live)
            assert page.get_attribute("html", "lang") == lang
            _fits(page, kind)
            _axe(page, kind)
            page.click("form.signing-form button[type=submit]")
            page.wait_for_selector("#error-summary")
            _fits(page, f"{kind} with errors")
            _axe(page, f"{kind} with errors")
        # The language switch: the same link in English, then back.
        page.click(".language-switch a[lang=en]")
        page.wait_for_url("**lang=en")
        assert page.get_attribute("html", "lang") == "en"
        page.click(f".language-switch a[lang={lang}]")
        assert page.get_attribute("html", "lang") == lang
        for what, address in (("done", f"{live.base}/s/done?lang={lang}&kind=departure_agreement"),
                              ("refused", f"{live.base}/s/no-such-token-000000000000000000000")):
            page.goto(address)
            _fits(page, what)
            _axe(page, what)

        # The office tablet, on the same small screen.
        _sign_in(page, live, live.staff.counsellor.email)
        page.goto(f"{live.base}/cases/{reference}")
        page.select_option("#sign-participant_id", str(adult))
        page.select_option("#sign-kind", "withdrawal_declaration")
        # (The staff case page is not made for a phone: press the button, not its spot.)
        page.locator("form.signing-choose button[type=submit]:not([formaction])"
                     ).dispatch_event("click")
        page.wait_for_selector("form.signing-form")
        _fits(page, "tablet")
        _axe(page, "tablet")
        page.goto(f"{live.base}/cases")  # locked: the hand-back page
        _fits(page, "hand-back")
        _axe(page, "hand-back")
        page.fill("#password", PASSWORD)
        page.click("main form button[type=submit]")
        page.wait_for_url(f"{live.base}/cases/{reference}/signatures")
    finally:
        context.close()
    assert not [p for p in problems if "Content Security Policy" in p], problems


def _draw_by_touch(page, selector: str) -> None:
    """A signature stroke by finger: touch events through the DevTools protocol, which
    chromium turns into pointer events of type "touch", as on a phone."""
    box = page.locator(selector).bounding_box()
    cdp = page.context.new_cdp_session(page)
    x0, y0 = box["x"] + 20, box["y"] + box["height"] / 2
    cdp.send("Input.dispatchTouchEvent",
             {"type": "touchStart", "touchPoints": [{"x": x0, "y": y0}]})
    for i in range(1, 30):
        cdp.send("Input.dispatchTouchEvent", {"type": "touchMove", "touchPoints": [
            {"x": x0 + i * 10, "y": y0 + 25 * math.sin(i / 3)}]})
    cdp.send("Input.dispatchTouchEvent", {"type": "touchEnd", "touchPoints": []})


@pytest.mark.parametrize("lang", ["uk", "ru"])
def test_a_signature_drawn_by_touch_signs_only_with_the_acknowledgement_ticked(
        live, browser, lang):
    reference, adult = _committed_case(live, lang)
    address = _link(live, reference, adult, "withdrawal_declaration")
    context = browser.new_context(**PHONE)
    page = context.new_page()
    try:
        page.goto(address)
        _pass_code(page, live)
        # Boxes and buttons by tap, the drawing by a touch stroke. (In emulation the first
        # tap right after a CDP touch stroke is taken as part of that gesture, so the
        # button after the stroke is clicked.)
        page.tap("#consent")
        assert page.is_checked("#consent")
        page.tap("label[for=method-drawn]")
        page.wait_for_selector("canvas#signature", state="visible")
        page.locator("canvas#signature").scroll_into_view_if_needed()
        scrolled = page.evaluate("window.scrollY")
        _draw_by_touch(page, "canvas#signature")
        assert page.evaluate("window.scrollY") == scrolled  # drawing did not scroll
        drawing = page.input_value("#signature-data")
        assert drawing.startswith("data:image/png;base64,") and len(drawing) > 1000
        before = len(live.documents(reference))
        page.click("form.signing-form button[type=submit]")
        # Refused: the irreversibility has its own box; nothing was signed.
        page.wait_for_selector("#error-summary a[href='#ack-cond_irreversible']")
        assert page.locator("#error-summary li").count() == 1, page.inner_text("#error-summary")
        assert len(live.documents(reference)) == before
        assert page.input_value("#signature-data") == drawing  # the drawing is kept
        page.tap("#ack-cond_irreversible")
        assert page.is_checked("#ack-cond_irreversible") and page.is_checked("#consent")
        page.tap("form.signing-form button[type=submit]")
        page.wait_for_url(f"{live.base}/s/done**")
    finally:
        context.close()
    doc = live.documents(reference)[-1]
    assert (doc.kind, doc.signature_method, doc.signing_channel) == (
        "withdrawal_declaration", "drawn", "link")
    assert any(p.images for p in pypdf.PdfReader(io.BytesIO(doc.pdf)).pages)


@pytest.mark.parametrize("lang", ["uk", "ru"])
def test_the_departure_agreement_can_be_signed_with_the_keyboard_only(live, browser, lang):
    reference, adult = _committed_case(live, lang)
    address = _link(live, reference, adult, "departure_agreement")
    with live.session() as s:
        person = s.get(Participant, adult)
        name = f"{person.given_names_cyrillic} {person.family_name_cyrillic}"
    context = browser.new_context(**PHONE)
    page = context.new_page()
    try:
        page.goto(address)
        _pass_code(page, live)
        page.keyboard.press("Tab")
        # The typed name is the first, preselected way: no pointer needed anywhere.
        for box in ("#ack-cond_deadline", "#ack-cond_support", "#ack-cond_reclaim", "#consent"):
            _tab_to(page, box)
            page.keyboard.press("Space")
            assert page.is_checked(box)
        _tab_to(page, "#typed_name")
        page.keyboard.type(name)
        _tab_to(page, "form.signing-form button[type=submit]")
        page.keyboard.press("Enter")
        page.wait_for_url(f"{live.base}/s/done**")
    finally:
        context.close()
    doc = live.documents(reference)[-1]
    assert (doc.kind, doc.signature_method) == ("departure_agreement", "typed")


def test_the_tablet_reaches_no_staff_page_without_the_password(live, browser):
    reference, adult = _committed_case(live, "uk")
    context = browser.new_context(**PHONE)
    page = context.new_page()
    try:
        _sign_in(page, live, live.staff.counsellor.email)
        page.goto(f"{live.base}/cases/{reference}")
        page.select_option("#sign-participant_id", str(adult))
        page.select_option("#sign-kind", "withdrawal_declaration")
        # (The staff case page is not made for a phone: press the button, not its spot.)
        page.locator("form.signing-choose button[type=submit]:not([formaction])"
                     ).dispatch_event("click")
        page.wait_for_selector("form.signing-form")
        assert page.locator(f"a[href*='/cases/{reference}']").count() == 0
        for url in (f"/cases/{reference}", "/", "/cases", f"/cases/{reference}/signatures"):
            response = page.goto(live.base + url)
            assert response.status == 403, url
            assert page.locator("#password").count() == 1, url
            assert reference not in page.content(), url
        page.goto(f"{live.base}/tablet")  # back to the signing page
        page.fill("#typed_name", "Олена Коваленко")
        for box in ("#ack-cond_irreversible", "#consent"):
            page.check(box)
        page.check("#id_type")
        page.fill("#id_number", "FX765432")
        page.check("#id_confirmed")
        page.click("form.signing-form button[type=submit]")
        page.wait_for_url(f"{live.base}/tablet/done")
        assert page.locator("a[href^='/cases'], a[href='/']").count() == 0
        _fits(page, "tablet done")
        _axe(page, "tablet done")
        page.click("a[href='/tablet/hand-back']")
        page.fill("#password", "wrong password")
        page.click("main form button[type=submit]")
        assert page.locator("#error-summary").count() == 1
        assert page.goto(f"{live.base}/cases/{reference}").status == 403
        page.fill("#password", PASSWORD)
        page.click("main form button[type=submit]")
        # Handed back after the signature: the counsellor is offered the signer's copy.
        page.wait_for_url(f"{live.base}/cases/{reference}/documents/*/copy")
    finally:
        context.close()
