"""The staff pages one by one: errors beside fields and summarised (input kept, nothing
saved), search and paging, dashboard, figures, payments, administration, downloads,
friendly error pages, Dutch and English formats."""
from __future__ import annotations

import csv
import datetime as dt
import io
import re

from sqlalchemy import func, select, update
from sqlmodel import Session

from returnprog import workflow
from returnprog.models import Case, Payment, User

from ..conftest import drive_to, fake_sign, intake, person
from ..web_client import build_world, text, web_for

TODAY = dt.date.today()


def _count(app, model, *where) -> int:
    with Session(app.extensions["returnprog.engine"]) as s:
        return s.execute(select(func.count()).select_from(model).where(*where)).scalar_one()


def test_intake_errors_are_shown_beside_fields_and_summarised_and_nothing_is_saved(app, staff):
    web = web_for(app, staff.counsellor)
    form = {"rows": "6", "principal-given_names_latin": "Olena", "principal-family_name_latin": "",
            "principal-date_of_birth": "31-02-1980", "principal-v_number": "12345",
            "principal-given_names_cyrillic": "Olena", "principal-language": "uk",
            "principal-asylum_application_pending": "yes", "destination_place": "Lviv",
            "household-3-given_names_latin": "Taras", "household-3-relationship": "child"}
    resp = web.post("/cases/new", form)
    page = resp.get_data(as_text=True)
    assert resp.status_code == 422
    assert _count(app, Case) == 0
    summary = page.split('id="error-summary"')[1].split("</div>")[0]
    for field in ("principal-family_name_latin", "principal-date_of_birth", "principal-v_number",
                  "principal-given_names_cyrillic", "household-3-v_number",
                  "household-3-date_of_birth"):
        assert f'href="#{field}"' in summary, field
        assert f'id="{field}"' in page
        assert re.search(rf'id="{field}"[^>]*aria-invalid="true"', page), field
    assert "Een V-nummer bestaat uit precies 10 cijfers." in text(page)
    assert "Schrijf deze naam in cyrillische letters." in text(page)
    assert "<title>Fout: " in page
    # What was typed stays in the form.
    assert 'value="Olena"' in page and 'value="12345"' in page and 'value="Taras"' in page
    assert 'value="Lviv"' in page


def test_a_v_number_with_an_open_case_is_refused_beside_that_person(app, staff, ctx_for):
    from returnprog.services import cases as case_service

    taken = case_service.open_case(ctx_for(staff.counsellor), intake(1, 0))
    with Session(app.extensions["returnprog.engine"]) as s:
        from returnprog.models import Participant
        v = s.execute(select(Participant.v_number).where(Participant.case_id == taken.id)).scalar_one()
    web = web_for(app, staff.counsellor)
    principal, member = person(), person(v_number=v)
    form = {"rows": "6", **{f"principal-{k}": ("yes" if v_ is True else str(v_ or ""))
                            for k, v_ in principal.items()}}
    form.update({f"household-1-{k}": ("yes" if v_ is True else str(v_ or ""))
                 for k, v_ in member.items()})
    form["household-1-relationship"] = "spouse"
    resp = web.post("/cases/new", form)
    page = resp.get_data(as_text=True)
    assert resp.status_code == 409
    assert 'href="#household-1-v_number"' in page
    assert "Dit V-nummer hoort al bij een open dossier." in text(page)
    assert v not in text(page)  # the message does not repeat the number
    assert _count(app, Case) == 1


def test_adding_a_member_block_keeps_what_was_typed(app, staff):
    web = web_for(app, staff.counsellor)
    page = web.get("/cases/new").get_data(as_text=True)
    assert 'id="principal-v_number"' in page and 'id="household-0-v_number"' not in page
    resp = web.post("/cases/new", {"rows": "0", "add_member": "1",
                                   "principal-given_names_latin": "Olena"})
    page = resp.get_data(as_text=True)
    assert resp.status_code == 200 and 'id="household-0-v_number"' in page
    assert 'id="household-1-v_number"' not in page
    assert 'value="Olena"' in page and _count(app, Case) == 0


def test_the_intake_can_be_edited_until_something_is_signed(app, staff, ctx_for, session):
    case = drive_to(ctx_for, staff, session, "intake", adults=1, minors=0)
    web = web_for(app, staff.counsellor)
    page = web.get(f"/cases/{case.reference}/intake").get_data(as_text=True)
    assert 'value="Kovalenko"' in page
    form = {k: v for k, v in re.findall(r'name="([^"]+)" type="[^"]+" value="([^"]*)"', page)}
    form.update({"principal-language": "uk", "principal-asylum_application_pending": "yes",
                 "destination_oblast": "UA-63", "destination_place": "Kharkiv"})
    form.pop("csrf_token", None)
    resp = web.post(f"/cases/{case.reference}/intake", form)
    assert resp.status_code == 303, text(resp.get_data(as_text=True))[:2000]
    with Session(app.extensions["returnprog.engine"]) as s:
        assert s.get(Case, case.id).destination_oblast == "UA-63"
    session.rollback()  # end the test session's read snapshot before it writes
    fake_sign(session, case, workflow.COMMITMENT)
    resp = web.post(f"/cases/{case.reference}/intake", form)
    assert resp.status_code == 409
    assert "al documenten ondertekend" in text(resp.get_data(as_text=True))


def test_case_list_searches_filters_and_pages(app, staff, ctx_for, session):
    from returnprog.services import cases as case_service

    refs = [case_service.open_case(ctx_for(staff.counsellor), intake(1, 0)).reference
            for _ in range(27)]
    other = case_service.open_case(ctx_for(staff.counsellor2),
                                   intake(1, 0, principal=person(family_name_latin="Shevchenko")))
    web = web_for(app, staff.counsellor)
    page = text(web.get("/cases").get_data(as_text=True))
    assert "28 dossiers gevonden." in page and "Pagina 1 van 2" in page
    assert refs[-1] in page and refs[0] not in page
    page = text(web.get("/cases?page=2").get_data(as_text=True))
    assert refs[0] in page and "Pagina 2 van 2" in page
    found = web.post("/cases", {"q": "shevchenko"})
    page = text(web.get(found.headers["Location"]).get_data(as_text=True))
    assert "1 dossier gevonden." in page and other.reference in page
    found = web.post("/cases", {"q": refs[3]})
    assert "1 dossier gevonden." in text(web.get(found.headers["Location"]).get_data(as_text=True))
    assert "27 dossiers" in text(web.get("/cases?mine=1").get_data(as_text=True))
    assert "0 dossiers" in text(web.get("/cases?state=departed").get_data(as_text=True))
    bad = web.get("/cases?deadline_from=someday")
    assert bad.status_code == 422 and 'href="#deadline_from"' in bad.get_data(as_text=True)
    # Another team's counsellor sees none of them.
    assert "0 dossiers" in text(web_for(app, staff.other_counsellor).get("/cases").get_data(as_text=True))


def test_dashboard_shows_states_chart_upcoming_and_overdue_deadlines(app, staff, ctx_for, session):
    soon = drive_to(ctx_for, staff, session, "departure_agreed", adults=1, minors=0,
                    deadline=TODAY + dt.timedelta(days=10))
    late = drive_to(ctx_for, staff, session, "departure_agreed", adults=1, minors=0)
    drive_to(ctx_for, staff, session, "intake", adults=1, minors=0)
    with Session(app.extensions["returnprog.engine"]) as s:
        s.execute(update(Case).where(Case.id == late.id).values(
            departure_deadline=TODAY - dt.timedelta(days=3)))
        s.commit()
    page = web_for(app, staff.counsellor).get("/").get_data(as_text=True)
    overdue = text(page.split('id="overdue-title"')[1].split("</section>")[0])
    upcoming = text(page.split('id="upcoming-title"')[1].split("</section>")[0])
    assert late.reference in overdue and soon.reference not in overdue
    assert soon.reference in upcoming and late.reference not in upcoming
    assert (TODAY + dt.timedelta(days=10)).strftime("%d-%m-%Y") in upcoming
    assert '<svg id="chart-states" role="img"' in page and "<script>" not in page
    assert page.count('class="chart-bar"') == len(workflow.State)
    assert "Uw dossiers: 3 in totaal." in text(page)
    # The supervisor sees the team; another team sees nothing of it.
    assert "Dossiers van uw team: 3" in text(web_for(app, staff.supervisor).get("/").get_data(as_text=True))
    assert "0 in totaal" in text(web_for(app, staff.other_supervisor).get("/").get_data(as_text=True))


def test_programme_figures_and_their_csv(app, staff, ctx_for, session):
    drive_to(ctx_for, staff, session, "departed", adults=2, minors=1)
    drive_to(ctx_for, staff, session, "intake", adults=1, minors=0)
    web = web_for(app, staff.supervisor)
    page = web.get("/figures").get_data(as_text=True)
    assert "€ 3.750,00" in text(page)
    for chart in ("chart-states", "chart-departures", "chart-support", "chart-oblasts"):
        assert f'<svg id="{chart}" role="img"' in page
    assert "UA-30 Kyiv (city)" in page
    resp = web.get("/figures.csv")
    assert resp.mimetype == "text/csv" and "attachment" in resp.headers["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(resp.get_data(as_text=True))))
    assert rows[0] == ["figure", "key", "value", "note"]
    assert ["cases_per_state", "departed", "1", ""] in rows
    assert ["support_paid_cents_total", "all", "375000", "1 payments"] in rows
    month = TODAY.strftime("%Y-%m")
    assert ["departures_per_month", month, "1", ""] in rows
    assert ["support_paid_cents_per_month", month, "375000", "1 payments"] in rows
    assert any(r[:3] == ["cases_per_oblast", "UA-30", "2"] for r in rows)
    assert web_for(app, staff.counsellor).get("/figures").status_code == 403


def test_documents_download_as_uncached_attachments_and_are_logged(app, staff, ctx_for, session):
    world = build_world(staff, ctx_for, session)
    web = web_for(app, staff.counsellor)
    resp = web.get(f"/cases/{world.own}/documents/{world.own_doc}.pdf")
    assert resp.status_code == 200 and resp.mimetype == "application/pdf"
    assert resp.headers["Content-Disposition"].startswith("attachment; filename=")
    assert resp.headers["Cache-Control"] == "no-store"
    assert web.get(f"/cases/{world.own}/documents/{world.other_doc}.pdf").status_code == 404
    assert web.get(f"/cases/{world.other}/documents/{world.other_doc}.pdf").status_code == 404
    from returnprog.models import AccessEvent, AuditEvent
    assert _count(app, AuditEvent, AuditEvent.action == "download_document") == 0
    assert _count(app, AccessEvent, AccessEvent.view == "document") == 1


def test_payment_pages_cancel_and_reentry(app, staff, ctx_for, session):
    case = drive_to(ctx_for, staff, session, "departure_agreed", adults=1, minors=0)
    counsellor, supervisor = web_for(app, staff.counsellor), web_for(app, staff.supervisor)
    bad = counsellor.post(f"/cases/{case.reference}/payment/proposal",
                          {"method": "transfer", "iban": "NL00BANK0000000000", "account_holder": ""})
    assert bad.status_code == 422
    assert 'href="#iban"' in bad.get_data(as_text=True)
    assert counsellor.post(f"/cases/{case.reference}/payment/proposal", {
        "method": "transfer", "iban": "nl91 abna 0417 1643 00",
        "account_holder": "Olena Kovalenko"}).status_code == 303
    # The proposer's own supervisor list shows it; the case page offers the decision.
    assert case.reference in text(supervisor.get("/payments").get_data(as_text=True))
    page = supervisor.get(f"/cases/{case.reference}/payment").get_data(as_text=True)
    assert "NL91ABNA0417164300" in page and "€ 1.500,00" in text(page)
    pay = _last_payment(app, case.id)
    resp = counsellor.post(f"/cases/{case.reference}/payment/cancellation", {
        "cancel-payment_id": str(pay.id), "cancel-version": str(pay.version)})
    assert resp.status_code == 422 and 'href="#cancel-reason"' in resp.get_data(as_text=True)
    assert counsellor.post(f"/cases/{case.reference}/payment/cancellation", {
        "cancel-payment_id": str(pay.id), "cancel-version": str(pay.version),
        "cancel-reason": "Bank account closed"}).status_code == 303
    assert _last_payment(app, case.id).status == "cancelled"

    departed = drive_to(ctx_for, staff, session, "departed", adults=1, minors=0)
    pay = _last_payment(app, departed.id)
    resp = counsellor.post(f"/cases/{departed.reference}/payment/reentry", {
        "reentry-payment_id": str(pay.id), "reentry-reentry_on": TODAY.isoformat(),
        "reentry-reclaim_cents": "1.500,00"})
    assert resp.status_code == 303, text(resp.get_data(as_text=True))[:2000]
    assert _last_payment(app, departed.id).reclaim_cents == 150000


def _last_payment(app, case_id) -> Payment:
    with Session(app.extensions["returnprog.engine"]) as s:
        return s.execute(select(Payment).where(Payment.case_id == case_id)
                         .order_by(Payment.id.desc()).limit(1)).scalar_one()


def test_finance_makes_a_batch_downloads_both_files_and_sends_or_withdraws_it(
        app, staff, ctx_for, session):
    from returnprog.services import payment as payment_service

    def released():
        case = drive_to(ctx_for, staff, session, "departure_agreed", adults=1, minors=0)
        payment_service.propose(ctx_for(staff.counsellor), case.reference, {
            "method": "transfer", "iban": "NL91ABNA0417164300", "account_holder": "O. K."})
        payment_service.approve(ctx_for(staff.supervisor), case.reference)
        payment_service.disburse(ctx_for(staff.finance), case.reference,
                                 {"idempotency_key": f"pay-{case.reference}"})
        return case
    case = released()
    finance = web_for(app, staff.finance)
    assert case.reference in text(finance.get("/payments?status=disbursed").get_data(as_text=True))
    assert finance.post("/payments/exports", {"scope": "sepa"}).status_code == 303
    page = finance.get("/payments/exports").get_data(as_text=True)
    links = re.findall(r'href="(/payments/exports/\d+\?format=(?:sepa|csv))"', page)
    assert [link.rsplit("=", 1)[1] for link in links] == ["sepa", "csv"]
    for link, kind in zip(links, ("application/xml", "text/csv")):
        first, second = finance.get(link), finance.get(link)
        assert first.status_code == 200 and first.mimetype == kind
        assert "attachment" in first.headers["Content-Disposition"]
        assert first.headers["Cache-Control"] == "no-store"
        assert first.data == second.data
    assert finance.get(links[0].replace("format=sepa", "format=pdf")).status_code == 404
    again = finance.post("/payments/exports", {"scope": "sepa"})
    assert again.status_code == 409 and "error-summary" in again.get_data(as_text=True)
    batch_id = int(re.search(r"/payments/exports/(\d+)", links[0]).group(1))
    assert finance.post(f"/payments/exports/{batch_id}/send", {}).status_code == 303
    assert "Verzonden naar de bank" in text(finance.get("/payments/exports").get_data(
        as_text=True)) or "Sent to the bank" in text(finance.get("/payments/exports")
                                                     .get_data(as_text=True))
    assert _last_payment(app, case.id).status == "sent"
    twice = finance.post(f"/payments/exports/{batch_id}/send", {})
    assert twice.status_code == 409 and "error-summary" in twice.get_data(as_text=True)
    # A second batch, withdrawn: a reason is needed; then its payment is free again.
    other = released()
    finance.post("/payments/exports", {"scope": "sepa"})
    second = _last_payment(app, other.id).export_batch_id
    bare = finance.post(f"/payments/exports/{second}/withdraw", {"reason": ""})
    assert bare.status_code == 422 and "error-summary" in bare.get_data(as_text=True)
    assert finance.post(f"/payments/exports/{second}/withdraw",
                        {"reason": "wrong execution date"}).status_code == 303
    assert (_last_payment(app, other.id).status, _last_payment(app, other.id).export_batch_id) \
        == ("disbursed", None)
    assert finance.post("/payments/exports/999999/send", {}).status_code == 404


def test_admins_create_users_with_the_shared_schema(app, staff):
    admin = web_for(app, staff.admin)
    bad = admin.post("/admin/users/new", {"email": "not an address", "role": "boss",
                                          "team": "Team Noord", "password": "short"})
    page = bad.get_data(as_text=True)
    assert bad.status_code == 422
    for field in ("email", "role", "password"):
        assert f'href="#{field}"' in page
    assert 'value="not an address"' in page and 'value="short"' not in page
    dup = admin.post("/admin/users/new", {"email": staff.counsellor.email, "role": "counsellor",
                                          "team": "Team Noord", "person": "P-77",
                                          "password": "long enough password"})
    assert dup.status_code == 422 and 'href="#email"' in dup.get_data(as_text=True)
    assert "Er bestaat al een gebruiker met dit e-mailadres." in text(dup.get_data(as_text=True))
    # A counsellor account takes effect at once (a supervisor's would wait for a second
    # administrator: tests/web/test_admin_four_eyes.py).
    ok = admin.post("/admin/users/new", {"email": "Nieuw@DTenV.example", "name": "Nieuw",
                                         "role": "counsellor", "team": "Team Oost",
                                         "person": "p-4711", "password": "long enough password"})
    assert ok.status_code == 303
    assert _count(app, User, User.email == "nieuw@dtenv.example", User.person == "P-4711") == 1
    assert "nieuw@dtenv.example" in admin.get("/admin/users").get_data(as_text=True)
    # Admins cannot lock themselves out.
    own = admin.post(f"/admin/users/{staff.admin.id}/deactivate")
    assert own.status_code == 409


def test_error_pages_are_friendly_and_never_show_a_stack_trace(app, staff):
    def boom():
        raise RuntimeError("secret internals")
    app.add_url_rule("/boom-for-test", "boom_for_test", boom)
    web = web_for(app, staff.counsellor)
    for path, status, words in (("/no/such/page", 404, "Pagina niet gevonden"),
                                ("/cases/VRP-2026-999999", 404, "Pagina niet gevonden"),
                                ("/admin/users", 403, "Dit mag u niet doen"),
                                ("/boom-for-test", 500, "Er ging iets mis")):
        resp = web.get(path)
        page = resp.get_data(as_text=True)
        assert resp.status_code == status
        assert words in text(page) and '<html lang="nl">' in page
        assert "Traceback" not in page and "secret internals" not in page
        assert "RuntimeError" not in page


def test_english_pages_use_english_formats(app, staff, ctx_for, session):
    case = drive_to(ctx_for, staff, session, "departure_agreed", adults=2, minors=1)
    deadline = _deadline(app, case.id)
    web = web_for(app, staff.counsellor)
    page = text(web.get(f"/cases/{case.reference}/payment/proposal").get_data(as_text=True))
    assert deadline.strftime("%d-%m-%Y") in page and "€ 3.750,00" in page
    web.post("/language", {"lang": "en", "next": "/"})
    resp = web.get(f"/cases/{case.reference}/payment/proposal")
    page = text(resp.get_data(as_text=True))
    assert '<html lang="en">' in resp.get_data(as_text=True) and "Departure agreed" in page
    assert f"{deadline.day} {deadline:%b %Y}" in page and "€3,750.00" in page


def _deadline(app, case_id):
    with Session(app.extensions["returnprog.engine"]) as s:
        return s.get(Case, case_id).departure_deadline


def test_odd_references_in_page_addresses_are_404_not_500(app, staff):
    web = web_for(app, staff.counsellor)
    for ref in ("VRP-2026-000001%00", "x" * 300, "%0a%0d", "VRP-2026-000001%C2%A0"):
        for path in (f"/cases/{ref}", f"/cases/{ref}/commitment", f"/cases/{ref}/payment"):
            assert web.get(path).status_code == 404, path
        assert web.post(f"/cases/{ref}/leave", {"leave_programme-reason": "x"}).status_code == 404
