"""Browser tests: Debian's chromium, driven by Playwright, against a real server (werkzeug
in a thread, a migrated SQLite file). A counsellor signs in, opens a household case and
takes it through every step of the programme with colleagues in the other roles, then
signs out. axe-core checks every page on the way: no serious or critical violations.

Signatures: the participants' signing pages are built and tested by the signing suite;
here ``conftest.fake_sign`` records the signed documents directly in the database.

On failure a screenshot and the page's HTML are saved under test-artifacts/.
"""
from __future__ import annotations

import datetime as dt
import re
import threading
from pathlib import Path

import pytest
from sqlalchemy import select, update
from sqlmodel import Session

from returnprog import auth, create_app, workflow
from returnprog import db as dbmod
from returnprog.models import Case
from returnprog.services import Context
from returnprog.services import cases as case_service

from ..conftest import fake_sign, intake, person

pytestmark = pytest.mark.browser

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
PASSWORD = "correct horse battery"
TODAY = dt.date.today()
USERS = {"counsellor": "anna@dtenv.example", "supervisor": "sanne@dtenv.example",
         "finance": "femke@dtenv.example", "admin": "ad@dtenv.example",
         "records_manager": "rik@dtenv.example", "process_owner": "petra@dtenv.example"}


class Server:
    def __init__(self, app, base_url):
        self.app, self.base_url = app, base_url
        self.engine = app.extensions["returnprog.engine"]

    def case(self, reference: str) -> Case:
        with Session(self.engine) as s:
            return s.execute(select(Case).where(Case.reference == reference)).scalar_one()

    def sign(self, reference: str, kind: str, terms: dict | None = None) -> None:
        """Every adult signs ``kind`` (recorded directly; see the module docstring)."""
        with Session(self.engine, expire_on_commit=False) as s:
            fake_sign(s, self.case(reference), kind, terms)

    def service_ctx(self, session, email: str) -> Context:
        from returnprog.models import User
        user = session.execute(select(User).where(User.email == email)).scalar_one()
        return Context(session=session, policy=self.app.extensions["returnprog.policy"],
                       actor=user, ip="127.0.0.1")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    from werkzeug.serving import make_server

    path = tmp_path_factory.mktemp("browser") / "returnprog.sqlite"
    url = f"sqlite:///{path}"
    dbmod.upgrade(url)
    app = create_app({"TESTING": True, "DATABASE_URL": url, "SECRET_KEY": "browser-tests"})
    with Session(app.extensions["returnprog.engine"]) as s:
        names = {"counsellor": "Anna de Vries", "supervisor": "Sanne Bakker",
                 "finance": "Femke Jansen", "admin": "Ad Mulder",
                 "records_manager": "Rik Meijer", "process_owner": "Petra de Boer"}
        for role, email in USERS.items():
            auth.create_user(s, email=email, role=role, password=PASSWORD, name=names[role])
    httpd = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield Server(app, f"http://127.0.0.1:{httpd.server_port}")
    httpd.shutdown()
    thread.join(5)
    app.extensions["returnprog.engine"].dispose()


class Staff:
    """One browser context (own cookies) per person, with accessibility checks."""

    def __init__(self, browser, server, role, checked):
        self.server, self.role, self.checked = server, role, checked
        self.context = browser.new_context(locale="nl-NL", viewport={"width": 1280, "height": 900})
        self.page = self.context.new_page()

    def go(self, path: str):
        resp = self.page.goto(self.server.base_url + path)
        self.axe()
        return resp

    def page_kind(self) -> tuple:
        """Which page this is, for the axe bookkeeping: endpoint, case state, language,
        and whether it shows errors (each variant is checked once per run)."""
        from urllib.parse import urlsplit
        from werkzeug.exceptions import HTTPException

        try:
            endpoint = self.server.app.url_map.bind("localhost").match(
                urlsplit(self.page.url).path)[0]
        except HTTPException:
            endpoint = "error"
        state = self.page.locator("main .summary .tag").first
        return (endpoint, state.inner_text() if state.count() else "",
                self.page.get_attribute("html", "lang"),
                self.page.locator("#error-summary").count() > 0,
                self.page.locator("#session-warning:visible").count() > 0)

    def axe(self) -> None:
        """axe-core on the current page: no serious or critical violations."""
        from axe_playwright_python.sync_playwright import Axe

        kind = self.page_kind()
        if kind in self.checked:
            return
        results = Axe().run(self.page)
        bad = [v for v in results.response["violations"] if v["impact"] in ("serious", "critical")]
        assert not bad, f"axe on {self.page.url}: " + "; ".join(
            f"{v['id']} ({v['impact']}): {[n['target'] for n in v['nodes']][:3]}" for v in bad)
        self.checked.add(kind)

    def sign_in(self):
        self.go("/login")
        self.page.fill("#email", USERS[self.role])
        self.page.fill("#password", PASSWORD)
        self.page.click("button:has-text('Aanmelden')")
        self.page.wait_for_url(self.server.base_url + "/")
        self.axe()
        return self

    def submit(self, form_selector: str, button_text: str | None = None):
        button = f"{form_selector} button[type=submit]"
        if button_text:
            button += f":has-text('{button_text}')"
        with self.page.expect_navigation():
            self.page.click(button)
        self.axe()

    def text(self) -> str:
        return self.page.inner_text("main")

    def close(self):
        self.context.close()


@pytest.fixture(scope="module")
def axe_checked() -> set:
    """The kinds of page axe has checked in this module (each is checked once)."""
    return set()


@pytest.fixture
def people(browser, server, request, axe_checked):
    """Make signed-in people; on failure, save a screenshot and the HTML of each page."""
    checked = axe_checked
    made: list[Staff] = []
    failed_before = request.session.testsfailed

    def make(role: str, sign_in: bool = True) -> Staff:
        staff = Staff(browser, server, role, checked)
        made.append(staff)
        return staff.sign_in() if sign_in else staff

    make.checked = checked
    yield make
    if request.session.testsfailed > failed_before:
        ARTIFACTS.mkdir(exist_ok=True)
        for staff in made:
            stem = ARTIFACTS / f"{request.node.name}-{staff.role}"
            try:
                staff.page.screenshot(path=f"{stem}.png", full_page=True)
                Path(f"{stem}.html").write_text(staff.page.content())
            except Exception:  # the page may be gone; the screenshot is a courtesy
                pass
    for staff in made:
        staff.close()


def _fill_person(page, prefix: str, data: dict, relationship: str | None = None) -> None:
    for key in ("given_names_latin", "family_name_latin", "given_names_cyrillic",
                "family_name_cyrillic", "v_number", "travel_document_number"):
        page.fill(f"#{prefix}-{key}", data[key] or "")
    page.fill(f"#{prefix}-date_of_birth", data["date_of_birth"].isoformat())
    if data.get("email"):
        page.fill(f"#{prefix}-email", data["email"])
    if relationship:
        page.select_option(f"#{prefix}-relationship", relationship)


def test_a_household_case_from_intake_to_departure_in_the_browser(people, server):
    anna = people("counsellor")
    page = anna.page

    # Intake: a mistake first — errors at the top, linked to their fields, nothing lost.
    page.click("nav >> text=Nieuw dossier")
    page.wait_for_url("**/cases/new")
    anna.axe()
    principal, spouse, child = person(), person(), person(adult=False, email=None)
    _fill_person(page, "principal", principal)
    page.fill("#principal-v_number", "123")
    anna.submit("form[action='/cases/new']", "Dossier openen")
    summary = page.locator("#error-summary")
    assert summary.is_visible()
    assert page.evaluate("document.activeElement.id") == "error-summary"
    summary.locator("a[href='#principal-v_number']").click()
    assert page.locator("#principal-v_number").is_visible()
    assert page.input_value("#principal-given_names_latin") == principal["given_names_latin"]

    page.fill("#principal-v_number", principal["v_number"])
    for _ in range(2):  # the form starts with the principal only; blocks are added in place
        page.click("#add-member")
    _fill_person(page, "household-0", spouse, "spouse")
    _fill_person(page, "household-1", child, "child")
    page.select_option("#destination_oblast", "UA-46")
    page.fill("#destination_place", "Lviv")
    anna.submit("form[action='/cases/new']", "Dossier openen")
    ref = re.search(r"/cases/(VRP-\d{4}-\d{6})$", page.url).group(1)
    assert "Dossier " + ref + " geopend." in anna.text()
    assert "nog niet ondertekend" in anna.text()

    # Commitment: signed by both adults, then confirmed.
    server.sign(ref, workflow.COMMITMENT)
    anna.go(f"/cases/{ref}")
    anna.submit(f"form[action='/cases/{ref}/commitment']")
    assert "Deelname bevestigd" in anna.text()

    # Withdrawal: the declarations first, then one IND confirmation per person, then the
    # irreversible step, confirmed.
    assert page.locator("form.ind-form").count() == 0
    server.sign(ref, workflow.WITHDRAWAL_DECLARATION)
    anna.go(f"/cases/{ref}")
    for _ in range(3):
        form = page.locator("form.ind-form").first
        form.locator("input[name$='-ind_reference']").fill(f"IND-{TODAY:%Y}-{_ + 1:04d}")
        form.locator("input[name$='-confirmed_on']").fill(TODAY.isoformat())
        with page.expect_navigation():
            form.locator("button").click()
        anna.axe()
    assert page.locator("form.ind-form").count() == 0
    anna.go(f"/cases/{ref}/withdrawal")
    page.check("#record_withdrawal-confirm")
    anna.submit(f"form[action='/cases/{ref}/withdrawal']")
    assert "Asielaanvraag ingetrokken" in anna.text()

    # Departure deadline: the bounds are shown; the signed date is filled in.
    deadline = TODAY + dt.timedelta(days=30)
    assert (TODAY + dt.timedelta(days=7)).strftime("%d-%m-%Y") in anna.text()
    server.sign(ref, workflow.DEPARTURE_AGREEMENT, {"departure_deadline": deadline.isoformat()})
    anna.go(f"/cases/{ref}")
    assert page.input_value("#agree_departure-departure_deadline") == deadline.isoformat()
    anna.submit(f"form[action='/cases/{ref}/departure-agreement']")
    assert deadline.strftime("%d-%m-%Y") in anna.text()

    # A supervisor extends the deadline after an addendum was signed.
    sanne = people("supervisor")
    later = deadline + dt.timedelta(days=14)
    server.sign(ref, workflow.ADDENDUM, {"departure_deadline": later.isoformat(), "reason": "ill"})
    sanne.go(f"/cases/{ref}")
    sanne.page.fill("#extend_deadline-reason", "De hoofdpersoon is ziek.")
    sanne.submit(f"form[action='/cases/{ref}/extension']")
    assert later.strftime("%d-%m-%Y") in sanne.text()

    # Travel support: proposed (cash), approved by the supervisor, paid out by finance.
    anna.go(f"/cases/{ref}")
    page.click("text=Reisbijdrage voorstellen")
    page.wait_for_url(f"**/cases/{ref}/payment/proposal")
    anna.axe()
    page.check("#method-cash")
    anna.submit(f"form[action='/cases/{ref}/payment/proposal']")
    assert "Voorgesteld" in anna.text()
    sanne.go("/payments")
    assert ref in sanne.text()
    sanne.go(f"/cases/{ref}")
    sanne.submit(f"form[action='/cases/{ref}/payment/approval']")
    assert "Goedgekeurd" in sanne.text()

    femke = people("finance")
    femke.go("/payments")
    femke.page.click(f"text={ref}")
    femke.page.wait_for_url(f"**/cases/{ref}/payment")
    femke.axe()
    femke.page.click("text=Uitbetalen")
    femke.page.wait_for_url(f"**/cases/{ref}/disbursement")
    femke.axe()
    assert "€ 3.750,00" in femke.text()
    femke.submit(f"form[action='/cases/{ref}/disbursement']")
    assert "Reisbijdrage betaald" in femke.text()
    femke.go("/payments/exports")

    # Departure: paid in cash, so the household signs the receipt first (documents flow,
    # tested elsewhere); then date and evidence, and the case is closed.
    server.sign(ref, workflow.PAYMENT_RECEIPT)
    anna.go(f"/cases/{ref}")
    page.fill("#confirm_departure-departed_on", TODAY.isoformat())
    page.check("#confirm_departure-evidence-boarding")
    anna.submit(f"form[action='/cases/{ref}/departure']")
    assert "Vertrokken" in anna.text() and "Er staat nu geen stap voor u open" in anna.text()
    with page.expect_download() as download:
        page.locator("a[href*='/documents/']").first.click()
    assert download.value.suggested_filename.startswith(ref)
    assert download.value.suggested_filename.endswith(".pdf")

    # The same case in English.
    page.click("header button:has-text('English')")
    page.wait_for_load_state()
    anna.axe()
    assert page.get_attribute("html", "lang") == "en"
    assert "Departed" in anna.text() and "Timeline" in anna.text()
    page.click("header button:has-text('Nederlands')")
    page.wait_for_load_state()

    # Sign out: the sign-in page says so, and the case is no longer reachable.
    page.click("header button:has-text('Afmelden')")
    page.wait_for_url("**/login")
    assert "U bent afgemeld." in anna.text()
    anna.page.goto(server.base_url + f"/cases/{ref}")
    assert "/login" in anna.page.url


def test_side_exits_and_the_remaining_pages(people, server):
    with Session(server.engine, expire_on_commit=False) as s:
        ctx = server.service_ctx(s, USERS["counsellor"])
        leaving = case_service.open_case(ctx, intake(1, 0)).reference
        rejecting = case_service.open_case(ctx, intake(1, 0)).reference
        lapsing = case_service.open_case(ctx, intake(1, 0)).reference
    for kind, terms in ((workflow.COMMITMENT, None), (workflow.WITHDRAWAL_DECLARATION, None)):
        server.sign(lapsing, kind, terms)
    with Session(server.engine, expire_on_commit=False) as s:
        ctx = server.service_ctx(s, USERS["counsellor"])
        case_service.perform(ctx, lapsing, "confirm_commitment", {})
        for p in case_service.read_case(ctx, lapsing, log_view=False)["participants"]:
            case_service.record_ind_confirmation(ctx, lapsing, {
                "participant_id": p["id"], "ind_reference": "IND-1", "confirmed_on": TODAY})
        case_service.perform(ctx, lapsing, "record_withdrawal", {})
        s.execute(update(Case).where(Case.reference == lapsing).values(
            departure_deadline=TODAY - dt.timedelta(days=1)))
        s.commit()

    anna = people("counsellor")
    anna.go(f"/cases/{leaving}")
    anna.page.fill("#leave_programme-reason", "Blijft bij familie in Nederland.")
    anna.page.check("#leave_programme-confirm")
    anna.submit(f"form[action='/cases/{leaving}/leave']")
    assert "Gestopt met het programma" in anna.text()
    anna.go("/cases")
    anna.page.fill("#q", leaving)
    anna.submit("form.filters")
    assert "1 dossier gevonden." in anna.text()
    anna.go("/")

    sanne = people("supervisor")
    sanne.go(f"/cases/{rejecting}")
    sanne.page.fill("#reject-reason", "Valt niet onder de doelgroep.")
    sanne.page.check("#reject-confirm")
    sanne.submit(f"form[action='/cases/{rejecting}/rejection']")
    assert "Afgewezen" in sanne.text()
    sanne.go(f"/cases/{lapsing}")
    sanne.page.fill("#lapse-reason", "Niet vertrokken binnen de termijn.")
    sanne.page.check("#lapse-confirm")
    sanne.submit(f"form[action='/cases/{lapsing}/lapse']")
    assert "Vervallen" in sanne.text()
    sanne.go("/figures")
    sanne.go("/cases/VRP-2000-000000")  # not found: a friendly page
    assert "Pagina niet gevonden" in sanne.text()
    sanne.go("/admin/users")  # forbidden: a friendly page
    assert "Dit mag u niet doen" in sanne.text()

    ad = people("admin")
    ad.go("/admin/users")
    ad.go("/admin/users/new")
    ad.submit("form[action='/admin/users/new']")  # empty: errors, accessibly
    assert ad.page.locator("#error-summary").is_visible()
    ad.page.fill("#email", "nieuw@dtenv.example")
    ad.page.fill("#person", "P-4711")
    ad.page.check("input[name=role][value=counsellor]")
    ad.page.fill("#password", "a long enough password")
    ad.submit("form[action='/admin/users/new']")
    assert "nieuw@dtenv.example" in ad.text()
    ad.page.locator("a[href$='/password']").first.click()
    ad.page.wait_for_load_state()
    ad.axe()
    ad.go("/figures")



def test_keyboard_only_sign_in_with_visible_focus(people, server):
    guest = people("counsellor", sign_in=False)
    guest.go("/login")
    page = guest.page
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.className") == "skip-link"
    assert page.locator(".skip-link").is_visible()
    page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement.id") == "main"
    for _ in range(10):  # Tab on to the e-mail field
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.id") == "email":
            break
    outline = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    assert outline == "solid"
    page.keyboard.type(USERS["counsellor"])
    page.keyboard.press("Tab")
    page.keyboard.type(PASSWORD)
    with page.expect_navigation():
        page.keyboard.press("Enter")
    assert page.url == server.base_url + "/"


def test_the_idle_warning_appears_and_stay_signed_in_keeps_the_session(people, server):
    anna = people("counsellor", sign_in=False)
    anna.page.clock.install()
    anna.sign_in()
    warning = anna.page.locator("#session-warning")
    assert warning.is_hidden()
    anna.page.clock.fast_forward("28:30")
    warning.wait_for(state="visible")
    anna.axe()
    with anna.page.expect_response("**/session/keepalive"):
        warning.locator("button").click()
    warning.wait_for(state="hidden")
    assert anna.page.url == server.base_url + "/"


from returnprog.web.staff import UI_BLUEPRINTS  # noqa: E402  (every staff page, new ones too)


def test_every_page_passes_axe(people, server, axe_checked):
    """Every GET page of the staff UI (in the role the permission matrix lets in), on a case
    in intake and one with a proposed payment; pages the other tests saw are not redone."""
    from flask import url_for

    from returnprog.services import payment as payment_service

    from .. import permission_matrix as pm

    with Session(server.engine, expire_on_commit=False) as s:
        ctx = server.service_ctx(s, USERS["counsellor"])
        fresh = case_service.open_case(ctx, intake(2, 1)).reference
        paid = case_service.open_case(ctx, intake(1, 1)).reference
    server.sign(paid, workflow.COMMITMENT)
    server.sign(paid, workflow.WITHDRAWAL_DECLARATION)
    deadline = TODAY + dt.timedelta(days=20)
    server.sign(paid, workflow.DEPARTURE_AGREEMENT, {"departure_deadline": deadline.isoformat()})
    with Session(server.engine, expire_on_commit=False) as s:
        ctx = server.service_ctx(s, USERS["counsellor"])
        case_service.perform(ctx, paid, "confirm_commitment", {})
        for p in case_service.read_case(ctx, paid, log_view=False)["participants"]:
            case_service.record_ind_confirmation(ctx, paid, {
                "participant_id": p["id"], "ind_reference": "IND-2", "confirmed_on": TODAY})
        case_service.perform(ctx, paid, "record_withdrawal", {})
        case_service.perform(ctx, paid, "agree_departure", {"departure_deadline": deadline})
        payment_service.propose(ctx, paid, {"method": "transfer", "iban": "NL91ABNA0417164300",
                                            "account_holder": "O. Kovalenko"})
        from returnprog.models import Document, User
        doc = s.execute(select(Document.id).where(Document.case_id == server.case(paid).id)).first()[0]
        victim = s.execute(select(User.id).where(User.email == USERS["finance"])).scalar_one()
        from returnprog.services import case_files as case_file_service

        from ..web_client import TINY_PDF
        case_file_service.add_note(ctx, paid, {"body": "Belt maandag terug."})
        evidence_id = case_file_service.upload_evidence(ctx, paid, "ind_letter", TINY_PDF,
                                                        "brief.pdf", None)["id"]
        # An access request on the case, for the records manager's pages (issue 16).
        from returnprog.services import access_requests

        records_ctx = server.service_ctx(s, USERS["records_manager"])
        person = access_requests.participants_of(records_ctx, paid)[0]
        access_request_id = access_requests.register(records_ctx, {
            "reference": paid, "participant_id": person["id"], "received_on": TODAY,
            "received_via": "letter", "identity_document_type": "passport",
            "identity_document_last4": "0042"}).id
        # A destruction list with one case, for the list page (its rules are tested in
        # tests/integration/test_records.py; here only the page is looked at).
        from returnprog.models import DestructionItem, DestructionList

        dlist = DestructionList()
        s.add(dlist)
        s.flush()
        s.add(DestructionItem(list_id=dlist.id, case_id=server.case(paid).id, reference=paid,
                              final_state="departed", action_date=TODAY))
        s.commit()
        list_id = dlist.id

    visitors = {}
    seen = 0
    for rule in sorted(server.app.url_map.iter_rules(), key=lambda r: r.endpoint):
        if "GET" not in rule.methods or rule.endpoint.split(".")[0] not in UI_BLUEPRINTS:
            continue
        entry = pm.MATRIX[(rule.endpoint, "GET")]
        role = next((r for r in pm.STAFF if (entry[r]["own"] if isinstance(entry[r], dict)
                                              else entry[r]) == pm.OK), None)
        if role is None:
            role = {"pages.edit_intake": "counsellor",
                    "records.destruction_list": "records_manager"}.get(rule.endpoint)
        if role is None:
            continue  # e.g. the sign-in page, which everyone signed in is sent away from
        params = {"reference": fresh if rule.endpoint == "pages.edit_intake" else paid,
                  "document_id": doc, "user_id": victim, "batch_id": 1,
                  "evidence_id": evidence_id, "access_request_id": access_request_id, "list_id": list_id,
                  "name": "mine"}  # a work queue: the counsellor's, as the matrix's "own"
        with server.app.test_request_context():
            path = url_for(rule.endpoint, **{a: params[a] for a in rule.arguments})
        if role not in visitors:
            visitors[role] = people(role)
        staff = visitors[role]
        if rule.endpoint in ("pages.download_document", "payments_ui.download_export",
                             "payments_ui.report_csv", "figures.programme_csv",
                             "case_files.download_evidence"):
            continue  # files, not pages
        staff.go(path)
        seen += 1
        assert staff.page.locator("h1").count() == 1, path
    guest = people("counsellor", sign_in=False)
    guest.go("/login")
    guest.go("/no-such-page")
    assert seen >= 20
    endpoints = {kind[0] for kind in axe_checked}
    missing = [r.endpoint for r in server.app.url_map.iter_rules()
               if "GET" in r.methods and r.endpoint.split(".")[0] in UI_BLUEPRINTS
               and r.endpoint not in endpoints and r.endpoint not in (
                   "pages.download_document", "payments_ui.download_export",
                   "payments_ui.report_csv", "figures.programme_csv",
                   "case_files.download_evidence")]
    assert not missing, missing


def _axe_now(page) -> None:
    """axe-core on the page as it is now, whatever was checked before."""
    from axe_playwright_python.sync_playwright import Axe

    bad = [v for v in Axe().run(page).response["violations"]
           if v["impact"] in ("serious", "critical")]
    assert not bad, "; ".join(f"{v['id']}: {[n['target'] for n in v['nodes']][:3]}" for v in bad)


def test_tab_reaches_the_main_line_step_before_leaving_and_leaving_asks_first(people, server):
    with Session(server.engine, expire_on_commit=False) as s:
        ref = case_service.open_case(server.service_ctx(s, USERS["counsellor"]),
                                     intake(1, 0)).reference
    server.sign(ref, workflow.COMMITMENT)
    anna = people("counsellor")
    page = anna.page
    anna.go(f"/cases/{ref}")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.className") == "skip-link"
    page.keyboard.press("Enter")
    forms: list[str] = []  # the forms Tab reaches, in order, until it reaches "leave"
    for _ in range(80):
        page.keyboard.press("Tab")
        reached = page.evaluate(
            "(() => { const f = document.activeElement.closest('form');"
            " return f ? f.getAttribute('action') : null; })()")
        if reached and (not forms or forms[-1] != reached):
            forms.append(reached)
        if reached == f"/cases/{ref}/leave":
            break
    assert forms[0] == f"/cases/{ref}/commitment", forms
    # Leaving comes after the main step and after the signing panel (a main task too).
    assert forms[-1] == f"/cases/{ref}/leave", forms
    assert f"/cases/{ref}/tablet" in forms[1:-1], forms
    # Leaving is set apart further down, and goes only with its confirmation.
    page.fill("#leave_programme-reason", "Blijft bij familie in Nederland.")
    anna.submit(f"form[action='/cases/{ref}/leave']")
    assert page.locator("#error-summary a[href='#leave_programme-confirm']").is_visible()
    assert page.get_attribute("#leave_programme-confirm", "aria-invalid") == "true"
    _axe_now(page)
    assert server.case(ref).state == "intake"
    assert "kan niet ongedaan worden gemaakt" in anna.text()
    page.check("#leave_programme-confirm")
    anna.submit(f"form[action='/cases/{ref}/leave']")
    assert server.case(ref).state == "left_programme"


def test_member_blocks_are_added_and_removed_in_place(people, server):
    anna = people("counsellor")
    page = anna.page
    anna.go("/cases/new")
    assert page.locator("fieldset.member").count() == 0
    page.click("#add-member")
    page.click("#add-member")
    assert page.locator("fieldset.member").count() == 2
    # The new block's first field has the focus; legends count the blocks shown.
    assert page.evaluate("document.activeElement.id") == "household-1-given_names_latin"
    assert page.locator("fieldset.member > legend").all_inner_texts() == [
        "Lid van het huishouden 1", "Lid van het huishouden 2"]
    _axe_now(page)
    page.click("#household-0 .remove-member")  # empty: removed without a round trip
    assert page.locator("fieldset.member").count() == 1
    assert page.locator("fieldset.member > legend").inner_text() == "Lid van het huishouden 1"

    principal, child = person(), person(adult=False, email=None)
    _fill_person(page, "principal", principal)
    _fill_person(page, "household-1", child, "child")
    page.select_option("#destination_oblast", "UA-46")
    page.fill("#destination_place", "Lviv")
    # Enter in a field submits the form itself, not "remove this member".
    with page.expect_navigation():
        page.press("#destination_place", "Enter")
    ref = re.search(r"/cases/(VRP-\d{4}-\d{6})$", page.url).group(1)
    names = page.locator("table.people tbody th").all_inner_texts()
    assert len(names) == 2 and child["given_names_latin"] in names[1]
