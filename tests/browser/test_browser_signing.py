"""The signing pages in a real browser (Playwright driving Debian's chromium): a signature
drawn with the mouse on the office tablet, and a typed full name through a personal link
with JavaScript switched off — each ends with a sealed PDF that verifies.

The app runs in werkzeug's server in a thread on 127.0.0.1 (random port) over a temporary
SQLite database migrated by Alembic.
"""
from __future__ import annotations

import io
import logging
import math
import threading
from dataclasses import dataclass

import pypdf
import pytest
from sqlalchemy import select
from sqlmodel import Session
from werkzeug.serving import make_server

from returnprog import auth, create_app
from returnprog import db as dbmod
from returnprog.models import Document
from returnprog.policy import DEFAULT_POLICY
from returnprog.services import Context
from returnprog.services import cases as case_service
from returnprog.services import verification
from returnprog.web.verify import trusted_certs

from ..conftest import CHEAP_HASH, Staff, intake
from ..web_client import PASSWORD

pytestmark = pytest.mark.browser


@dataclass
class Live:
    app: object
    base: str
    staff: Staff

    def session(self) -> Session:
        return Session(self.app.extensions["returnprog.engine"], expire_on_commit=False)

    def open_case(self, adults: int = 2) -> tuple[str, list[int]]:
        with self.session() as s:
            ctx = Context(session=s, policy=DEFAULT_POLICY, actor=self.staff.counsellor,
                          ip="127.0.0.1", user_agent="pytest")
            case = case_service.open_case(ctx, intake(adults, 0))
            people = case_service.case_data(ctx, case)["participants"]
        return case.reference, [p["id"] for p in people]

    def documents(self, reference: str) -> list[Document]:
        from returnprog.models import Case

        with self.session() as s:
            return s.execute(select(Document).join(Case, Case.id == Document.case_id)
                             .where(Case.reference == reference)
                             .order_by(Document.id)).scalars().all()

    def verify(self, pdf: bytes):
        # In a thread of its own: Playwright's sync API keeps an asyncio loop running in
        # this one, and pyHanko's synchronous validation cannot run inside a running loop.
        out = {}

        def run():
            with self.app.app_context(), self.session() as s:
                out["answer"] = verification.verify(s, pdf, trusted_certs(), channel="cli")

        worker = threading.Thread(target=run)
        worker.start()
        worker.join(60)
        return out["answer"]


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    root = tmp_path_factory.mktemp("browser")
    url = f"sqlite:///{root / 'returnprog.sqlite'}"
    dbmod.upgrade(url)
    app = create_app({"DATABASE_URL": url, "SECRET_KEY": "browser-test-secret",
                      "ENV_NAME": "testing", "WTF_CSRF_ENABLED": True})
    app.instance_path = str(root / "instance")
    server = make_server("127.0.0.1", 0, app, threaded=True)
    base = f"http://127.0.0.1:{server.server_port}"
    app.config["PUBLIC_BASE_URL"] = base  # the address put into signing links
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    with pytest.MonkeyPatch.context() as patch, \
            Session(app.extensions["returnprog.engine"], expire_on_commit=False) as s:
        patch.setattr(auth, "generate_password_hash", CHEAP_HASH)
        staff = Staff(s)
    try:
        yield Live(app, base, staff)
    finally:
        server.shutdown()
        thread.join(10)
        app.extensions["returnprog.engine"].dispose()


def _watch(page) -> list[str]:
    """Console errors and failed requests (a CSP violation shows up here)."""
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(str(e)))
    return problems


def _sign_in(page, live: Live, email: str) -> None:
    page.goto(live.base + "/login")
    page.fill("#email", email)
    page.fill("#password", PASSWORD)
    page.click("main form button[type=submit]")
    page.wait_for_url(live.base + "/")


def _hand_back(page, live: Live) -> None:
    """The counsellor takes the tablet back with their password."""
    page.goto(live.base + "/tablet/hand-back")
    page.fill("#password", PASSWORD)
    page.click("main form button[type=submit]")


def _choose(page, live: Live, reference: str, participant_id: int) -> None:
    page.goto(f"{live.base}/cases/{reference}")
    page.select_option("#sign-participant_id", str(participant_id))
    page.select_option("#sign-kind", "commitment")


def _verify_in_browser(page, live: Live, pdf: bytes) -> str:
    page.goto(live.base + "/verify?lang=en")
    page.set_input_files("#pdf", files=[{"name": "signed.pdf", "mimeType": "application/pdf",
                                         "buffer": pdf}])
    page.click("main form button[type=submit]")
    page.wait_for_selector(".verdict")
    return page.inner_text(".verdict")


def test_a_signature_drawn_with_the_mouse_on_the_tablet_ends_in_a_verified_pdf(live, browser):
    reference, (signer_id, _spouse) = live.open_case()
    context = browser.new_context(accept_downloads=True, viewport={"width": 1024, "height": 900})
    page = context.new_page()
    problems = _watch(page)
    try:
        _sign_in(page, live, live.staff.counsellor.email)
        _choose(page, live, reference, signer_id)
        page.click("form.signing-choose button[type=submit]:not([formaction])")
        page.wait_for_selector("form.signing-form")
        assert page.get_attribute("html", "lang") == "uk"
        # The typed name comes first (it works with a keyboard); the script reveals the
        # drawing alternative, and choosing it shows the pad instead of the typed field.
        assert page.is_checked("#method") and page.is_visible("#method-drawn")
        page.check("#method-drawn")
        assert page.is_visible("canvas#signature")
        assert not page.is_visible("#typed_name")

        page.check("#consent")
        box = page.locator("canvas#signature").bounding_box()
        x0, y0 = box["x"] + 40, box["y"] + box["height"] / 2
        page.mouse.move(x0, y0)
        page.mouse.down()
        for i in range(1, 40):
            page.mouse.move(x0 + i * 12, y0 + 35 * math.sin(i / 4), steps=2)
        page.mouse.up()
        page.mouse.move(x0 + 60, y0 + 40)
        page.mouse.down()
        page.mouse.move(x0 + 300, y0 - 30, steps=10)
        page.mouse.up()
        drawing = page.input_value("#signature-data")
        assert drawing.startswith("data:image/png;base64,") and len(drawing) > 1000

        page.check("#id_type")  # passport
        page.fill("#id_number", "FX765432")
        page.check("#id_confirmed")
        page.click("form.signing-form button[type=submit]")
        # The tablet shows the participant's done page; the password hands it back, and
        # the counsellor is offered the signer's copy.
        page.wait_for_url(f"{live.base}/tablet/done")
        _hand_back(page, live)
        page.wait_for_url(f"{live.base}/cases/{reference}/documents/*/copy")

        # The confirmation offers the sealed PDF to print; download it as the counsellor would.
        with page.expect_download() as download:
            page.click(f"a[href$='.pdf']")
        pdf = open(download.value.path(), "rb").read()
    finally:
        context.close()

    (doc,) = live.documents(reference)
    assert pdf == doc.pdf
    assert (doc.participant_id, doc.signature_method, doc.signing_channel) == \
        (signer_id, "drawn", "tablet")
    assert doc.identity_document == "paspoort FX765432"
    reader = pypdf.PdfReader(io.BytesIO(pdf))
    assert any(page_.images for page_ in reader.pages), "the drawn signature is in the PDF"
    answer = live.verify(pdf)
    assert answer.valid, answer.reasons
    assert answer.document["reference"] == reference

    check = browser.new_context()
    try:
        verdict = _verify_in_browser(check.new_page(), live, pdf)
    finally:
        check.close()
    assert "Valid: this is an unchanged document issued by DTenV." in verdict
    assert reference in verdict
    assert not [p for p in problems if "Content Security Policy" in p or "Refused" in p], problems


def test_a_typed_name_through_a_personal_link_without_javascript_ends_in_a_verified_pdf(
        live, browser, caplog):
    reference, (_principal, signer_id) = live.open_case()
    staff_context = browser.new_context()
    page = staff_context.new_page()
    try:
        _sign_in(page, live, live.staff.counsellor.email)
        _choose(page, live, reference, signer_id)
        page.click("form.signing-choose button[formaction]")
        page.wait_for_selector("#signing-address")
        address = page.input_value("#signing-address")
    finally:
        staff_context.close()
    assert address.startswith(live.base + "/s/")
    token = address.rsplit("/", 1)[1]

    participant = browser.new_context(java_script_enabled=False)
    page = participant.new_page()
    problems = _watch(page)
    try:
        with caplog.at_level(logging.INFO, logger="werkzeug"):
            page.goto(address)
            assert page.get_attribute("html", "lang") == "uk"
            # Without the script there is nothing to draw with: the typed name is the way.
            assert not page.is_visible("canvas#signature")
            assert not page.is_visible("#method-drawn")
            assert page.is_checked("#method")
            page.fill("#typed_name", "Олена Коваленко")
            page.check("#consent")
            page.click("form.signing-form button[type=submit]")
            page.wait_for_url(f"{live.base}/s/done**")
            assert "Документ підписано" in page.inner_text("h1")
            # The copy to keep, from this browser, without any script.
            with page.expect_download() as download:
                page.click("a[href='/s/copy']")
            kept_copy = open(download.value.path(), "rb").read()
            # Back to the link: it is spent.
            response = page.goto(address)
            assert response.status == 410
        verdict = _verify_in_browser(page, live, live.documents(reference)[-1].pdf)
    finally:
        participant.close()

    (doc,) = live.documents(reference)
    assert (doc.participant_id, doc.signature_method, doc.signing_channel) == \
        (signer_id, "typed", "link")
    assert "Олена Коваленко" in "".join(p.extract_text() for p in
                                         pypdf.PdfReader(io.BytesIO(doc.pdf)).pages)
    answer = live.verify(doc.pdf)
    assert answer.valid, answer.reasons
    assert kept_copy == doc.pdf
    assert "Valid: this is an unchanged document issued by DTenV." in verdict

    # The server's access log saw the link only as its hash.
    lines = [r.getMessage() for r in caplog.records if r.name == "werkzeug"]
    assert any("/s/[h:" in line for line in lines), lines
    assert not any(token in line for line in lines)
    assert not [p for p in problems if "status of 410" not in p], problems  # 410: the spent link


def test_the_signing_and_verification_pages_pass_axe(live, browser):
    """axe-core on every signing page, with and without errors: no serious or critical
    violations (WCAG 2.1 AA is the bar for every page of the service)."""
    from axe_playwright_python.sync_playwright import Axe

    reference, (first, _second) = live.open_case()
    checked = []

    def axe(page, what: str) -> None:
        results = Axe().run(page)
        bad = [v for v in results.response["violations"]
               if v["impact"] in ("serious", "critical")]
        assert not bad, f"axe on {what}: " + "; ".join(
            f"{v['id']} ({v['impact']}): {[n['target'] for n in v['nodes']][:3]}" for v in bad)
        assert page.locator("h1").count() == 1, what
        checked.append(what)

    staff_context = browser.new_context(locale="nl-NL")
    participant = browser.new_context()
    try:
        page = staff_context.new_page()
        _sign_in(page, live, live.staff.counsellor.email)
        page.goto(f"{live.base}/cases/{reference}/signatures")
        axe(page, "signatures page")
        page.click("form.signing-choose button[type=submit]:not([formaction])")
        page.wait_for_selector("form.signing-form")
        axe(page, "tablet page")
        page.click("form.signing-form button[type=submit]")
        page.wait_for_selector("#error-summary")
        axe(page, "tablet page with errors")
        page.goto(f"{live.base}/cases/{reference}/signatures")  # locked: the hand-back page
        axe(page, "hand-back page")
        _hand_back(page, live)
        page.wait_for_url(f"{live.base}/cases/{reference}/signatures")
        page.click("form.signing-choose button[formaction]")
        page.wait_for_selector("#signing-address")
        axe(page, "link created")
        address = page.input_value("#signing-address")
        page.goto(f"{live.base}/cases/{reference}/signatures")
        axe(page, "signatures page with a link")

        public = participant.new_page()
        public.goto(address)
        axe(public, "signing link page")
        public.click("form.signing-form button[type=submit]")
        public.wait_for_selector("#error-summary")
        axe(public, "signing link page with errors")
        public.goto(live.base + "/s/no-such-token-at-all-000000000000000000000")
        axe(public, "refused link")
        public.goto(live.base + "/s/done?lang=ru&kind=commitment")
        axe(public, "done page")
        public.goto(address + "/decline")
        axe(public, "decline page")
        public.click("form.decline-form button[type=submit]")
        public.wait_for_selector("#error-summary")
        axe(public, "decline page with errors")
        public.goto(live.base + "/s/declined?lang=uk")
        axe(public, "declined page")
        public.goto(live.base + "/s/copy")
        axe(public, "copy no longer available")
        public.goto(live.base + "/verify?lang=nl")
        axe(public, "verification form")
        public.click("main form button[type=submit]")  # no file chosen: the browser says so
        public.set_input_files("#pdf", files=[{"name": "x.pdf", "mimeType": "application/pdf",
                                               "buffer": b"%PDF-1.7 nonsense"}])
        public.click("main form button[type=submit]")
        public.wait_for_selector(".verdict")
        axe(public, "verification answer")
    finally:
        staff_context.close()
        participant.close()
    assert len(checked) == 16
