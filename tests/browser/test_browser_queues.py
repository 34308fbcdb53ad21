"""Browser test of the work queues (issue 13): a counsellor opens the dashboard, follows
"Wacht op mij" to a case's next step and takes it — without ever opening the case list.
Same server and people as tests/browser/test_browser.py (axe-core on every page)."""
from __future__ import annotations

import pytest
from sqlmodel import Session

from returnprog import workflow
from returnprog.services import cases as case_service

from ..conftest import intake
from .test_browser import USERS, axe_checked, people, server  # noqa: F401 - fixtures

pytestmark = pytest.mark.browser


def test_a_counsellor_works_a_case_from_the_queue_without_the_case_list(people, server):
    with Session(server.engine, expire_on_commit=False) as s:
        case = case_service.open_case(server.service_ctx(s, USERS["counsellor"]), intake(2))
    ref = case.reference
    server.sign(ref, workflow.COMMITMENT)
    anna = people("counsellor")
    page = anna.page
    visited = []
    page.on("framenavigated", lambda frame: visited.append(frame.url))
    # The dashboard counts what waits on her and links to it.
    count = page.locator("#queue-count-mine")
    assert count.locator("strong").inner_text() == "1"
    with page.expect_navigation():
        count.click()
    anna.axe()
    assert page.url.endswith("/queues/mine")
    row = page.locator("table.queue tr", has_text=ref)
    step = row.locator("a.next-step")
    assert step.inner_text() == "Bevestig deelname"
    with page.expect_navigation():
        step.click()
    anna.axe()
    assert page.url.endswith(f"/cases/{ref}/commitment")
    anna.submit(f"form[action='/cases/{ref}/commitment']")
    assert "Deelname bevestigd" in anna.text()
    assert server.case(ref).state == "committed"
    # Back on the queue, the case's next step is the withdrawal declarations' signatures.
    anna.go("/queues/mine")
    row = page.locator("table.queue tr", has_text=ref)
    assert row.locator("a.next-step").get_attribute("href") == f"/cases/{ref}/signatures"
    assert not any("/cases?" in url or url.endswith("/cases") for url in visited), visited
