"""The one-time code pages in a real browser on a phone (Playwright driving Debian's
chromium at 375×812 with touch): choose the channel, enter the code, reach the document —
axe finds no serious or critical violation, nothing is wider than the screen and every
control is at least 44×44 px.

The app runs in werkzeug's server in a thread on 127.0.0.1 (random port) over a temporary
SQLite database migrated by Alembic, with a policy that wants a code for the commitment."""
from __future__ import annotations

import threading

import pytest
from sqlmodel import Session
from werkzeug.serving import make_server

from returnprog import auth, create_app, workflow
from returnprog import db as dbmod
from returnprog.policy import load_policy
from returnprog.services import Context
from returnprog.services import cases as case_service
from returnprog.services import signing

from ..conftest import CHEAP_HASH, Staff, intake
from ..web.test_signing_support import mailed_code

pytestmark = pytest.mark.browser

POLICY = {"signer_verification": {"commitment": "code"}}
PHONE = {"viewport": {"width": 375, "height": 812}, "has_touch": True, "is_mobile": True,
         "device_scale_factor": 2}


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    root = tmp_path_factory.mktemp("browser-codes")
    url = f"sqlite:///{root / 'returnprog.sqlite'}"
    dbmod.upgrade(url)
    app = create_app({"DATABASE_URL": url, "SECRET_KEY": "browser-test-secret-codes",
                      "ENV_NAME": "testing", "WTF_CSRF_ENABLED": True, "POLICY": POLICY})
    app.instance_path = str(root / "instance")
    server = make_server("127.0.0.1", 0, app, threaded=True)
    base = f"http://127.0.0.1:{server.server_port}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    with pytest.MonkeyPatch.context() as patch, \
            Session(app.extensions["returnprog.engine"], expire_on_commit=False) as s:
        patch.setattr(auth, "generate_password_hash", CHEAP_HASH)
        staff = Staff(s)
    try:
        yield app, base, staff
    finally:
        server.shutdown()
        thread.join(10)
        app.extensions["returnprog.engine"].dispose()


def _link(app, staff, language: str, phone: str | None) -> str:
    with Session(app.extensions["returnprog.engine"], expire_on_commit=False) as s:
        ctx = Context(session=s, policy=load_policy(POLICY), actor=staff.counsellor,
                      ip="127.0.0.1", user_agent="pytest")
        data = intake(1, 0)
        data["principal"].update(language=language, phone=phone)
        case = case_service.open_case(ctx, data)
        pid = case_service.case_data(ctx, case)["participants"][0]["id"]
        _, token = signing.create_signing_link(ctx, case.reference, pid, workflow.COMMITMENT, {})
    return "/s/" + token


def _check_phone_page(page, what: str) -> None:
    from axe_playwright_python.sync_playwright import Axe

    bad = [v for v in Axe().run(page).response["violations"]
           if v["impact"] in ("serious", "critical")]
    assert not bad, f"axe on {what}: " + "; ".join(v["id"] for v in bad)
    assert page.locator("h1").count() == 1, what
    wide = page.evaluate("""() => [...document.querySelectorAll('body *')]
        .filter(e => e.getBoundingClientRect().right > window.innerWidth + 1)
        .map(e => e.tagName + '.' + e.className)""")
    assert wide == [], (what, wide)
    small = page.evaluate("""() => [...document.querySelectorAll(
            '.code-form input:not([type=hidden]), .code-form button, .code-form .radio label, main .button')]
        .map(e => [e.tagName + '#' + e.id, e.getBoundingClientRect()])
        .filter(([n, r]) => r.width > 0 && (r.height < 44 || r.width < 44))
        .map(([n, r]) => n + ' ' + Math.round(r.width) + 'x' + Math.round(r.height))""")
    assert small == [], (what, small)


@pytest.mark.parametrize("language", ["uk", "ru"])
def test_the_code_pages_on_a_phone(live, browser, language):
    app, base, staff = live
    path = _link(app, staff, language, "+31 6 12345678")
    context = browser.new_context(**PHONE)
    try:
        page = context.new_page()
        page.goto(base + path)
        assert page.locator("input[name=channel]").count() == 2
        _check_phone_page(page, "choose the channel")
        page.locator("label[for=channel-email]").tap()
        page.locator(".code-form button[type=submit]").tap()
        page.wait_for_selector("#code")
        assert page.get_attribute("#code", "inputmode") == "numeric"
        assert page.get_attribute("#code", "autocomplete") == "one-time-code"
        _check_phone_page(page, "enter the code")
        code = mailed_code(app)
        page.fill("#code", f"{(int(code) + 1) % 10 ** 6:06d}")
        page.locator(".code-form button[type=submit]").tap()
        page.wait_for_selector("#error-summary")
        _check_phone_page(page, "wrong code")
        page.fill("#code", code)
        page.locator(".code-form button[type=submit]").tap()
        page.wait_for_selector("#typed_name", state="attached")  # the document opened
        assert page.url == base + path
    finally:
        context.close()
