"""A household case through every step of the programme, in the web forms only (test
client, no JavaScript), on SQLite and PostgreSQL. Signatures are made with
``conftest.fake_sign`` directly in the database: the participants' signing pages are
built and tested by the signing suite."""
from __future__ import annotations

import datetime as dt
import re

from sqlalchemy import func, select, update
from sqlmodel import Session

from returnprog import workflow
from returnprog.models import Case, Participant, Payment

from ..conftest import drive_to, fake_sign, person
from ..web_client import text, web_for

TODAY = dt.date.today()


def _case(app, reference: str) -> Case:
    with Session(app.extensions["returnprog.engine"]) as s:
        return s.execute(select(Case).where(Case.reference == reference)).scalar_one()


def _intake_form(principal: dict, members: list[tuple[int, dict, str]]) -> dict:
    form = {"rows": "6", "destination_oblast": "UA-46", "destination_place": "Lviv"}
    for key, value in principal.items():
        form[f"principal-{key}"] = _form_value(value)
    for row, member, relationship in members:
        for key, value in member.items():
            form[f"household-{row}-{key}"] = _form_value(value)
        form[f"household-{row}-relationship"] = relationship
    return form


def _form_value(value) -> str:
    if value is True:
        return "yes"
    if value is False:
        return "no"
    if isinstance(value, dt.date):
        return value.strftime("%d-%m-%Y")  # typed the Dutch way
    return "" if value is None else str(value)


def test_a_household_goes_through_the_whole_programme_in_the_forms(app, staff, session):
    counsellor = web_for(app, staff.counsellor)
    assert counsellor.get("/cases/new").status_code == 200
    principal = person()
    spouse, child = person(), person(adult=False, email=None)
    resp = counsellor.post("/cases/new", _intake_form(
        principal, [(0, spouse, "spouse"), (2, child, "child")]))
    assert resp.status_code == 303, text(resp.get_data(as_text=True))[:1500]
    ref = resp.headers["Location"].rsplit("/", 1)[1]
    case = _case(app, ref)
    assert case.state == "intake"
    with Session(app.extensions["returnprog.engine"]) as s:
        assert s.execute(select(func.count()).select_from(Participant).where(
            Participant.case_id == case.id)).scalar_one() == 3

    # A refused step says what is missing, in the default language (Dutch).
    page = text(counsellor.get(f"/cases/{ref}").get_data(as_text=True))
    assert "Bevestig deelname" in page
    assert "nog niet ondertekend door" in page and principal["given_names_latin"] in page
    # The signing section lists, per adult, what is still unsigned.
    assert "nog niet ondertekend" in page

    fake_sign(session, case, workflow.COMMITMENT)
    assert counsellor.post(f"/cases/{ref}/commitment").status_code == 303
    assert _case(app, ref).state == "committed"

    # Withdrawal: the declarations are signed first; only then are the IND forms offered
    # (one per participant); then the withdrawal itself, confirmed.
    page = counsellor.get(f"/cases/{ref}/withdrawal").get_data(as_text=True)
    assert page.count('action="/cases/%s/ind-confirmations"' % ref) == 0
    assert "#signing-title\"" in page  # the page points to the signatures instead
    fake_sign(session, case, workflow.WITHDRAWAL_DECLARATION)
    page = counsellor.get(f"/cases/{ref}/withdrawal").get_data(as_text=True)
    assert page.count('action="/cases/%s/ind-confirmations"' % ref) == 3
    with Session(app.extensions["returnprog.engine"]) as s:
        ids = s.execute(select(Participant.id).where(Participant.case_id == case.id)).scalars().all()
    refused = counsellor.post(f"/cases/{ref}/withdrawal", {"record_withdrawal-confirm": "yes"})
    assert refused.status_code == 409
    assert "IND-bevestiging" in text(refused.get_data(as_text=True))
    for pid in ids:
        resp = counsellor.post(f"/cases/{ref}/ind-confirmations", {
            "participant_id": str(pid), f"ind-{pid}-ind_reference": f"IND-2026-{pid:04d}",
            f"ind-{pid}-confirmed_on": TODAY.isoformat()})
        assert resp.status_code == 303
    assert counsellor.post(f"/cases/{ref}/withdrawal",
                           {"record_withdrawal-confirm": "yes"}).status_code == 303
    assert _case(app, ref).state == "asylum_withdrawn"

    # Departure deadline: the page shows the policy's bounds; a date nobody signed for
    # is refused beside the field, the signed date is agreed.
    deadline = TODAY + dt.timedelta(days=30)
    earliest = (TODAY + dt.timedelta(days=7)).strftime("%d-%m-%Y")
    page = text(counsellor.get(f"/cases/{ref}/departure-agreement").get_data(as_text=True))
    assert earliest in page
    fake_sign(session, case, workflow.DEPARTURE_AGREEMENT,
              {"departure_deadline": deadline.isoformat()})
    wrong = counsellor.post(f"/cases/{ref}/departure-agreement", {
        "agree_departure-departure_deadline": (deadline + dt.timedelta(days=1)).isoformat()})
    assert wrong.status_code == 409
    assert 'href="#agree_departure-departure_deadline"' in wrong.get_data(as_text=True)
    assert counsellor.post(f"/cases/{ref}/departure-agreement", {
        "agree_departure-departure_deadline": deadline.strftime("%d-%m-%Y")}).status_code == 303
    assert _case(app, ref).departure_deadline == deadline

    # A supervisor extends the deadline (an addendum was signed for the new date).
    supervisor = web_for(app, staff.supervisor)
    later = deadline + dt.timedelta(days=10)
    fake_sign(session, case, workflow.ADDENDUM, {"departure_deadline": later.isoformat(),
                                                 "reason": "ill"})
    assert supervisor.post(f"/cases/{ref}/extension", {
        "extend_deadline-departure_deadline": later.isoformat(),
        "extend_deadline-reason": "The principal is ill."}).status_code == 303
    assert _case(app, ref).departure_deadline == later

    # Payment: proposed by the counsellor, rejected once, proposed again, approved by the
    # supervisor, paid out by finance — once.
    assert counsellor.post(f"/cases/{ref}/payment/proposal", {"method": "transfer"}).status_code == 422
    assert counsellor.post(f"/cases/{ref}/payment/proposal", {"method": "cash"}).status_code == 303
    payment_id = lambda: _payment(app, case.id)  # noqa: E731
    p = payment_id()
    assert supervisor.post(f"/cases/{ref}/payment/rejection", {
        "reject-payment_id": str(p.id), "reject-version": str(p.version)}).status_code == 422
    assert supervisor.post(f"/cases/{ref}/payment/rejection", {
        "reject-payment_id": str(p.id), "reject-version": str(p.version),
        "reject-reason": "Wrong method"}).status_code == 303
    assert counsellor.post(f"/cases/{ref}/payment/proposal", {"method": "cash"}).status_code == 303
    p = payment_id()
    page = supervisor.get(f"/cases/{ref}").get_data(as_text=True)
    assert "payments_ui" not in page and f'value="{p.id}"' in page
    assert supervisor.post(f"/cases/{ref}/payment/approval", {
        "payment_id": str(p.id), "version": str(p.version)}).status_code == 303
    finance = web_for(app, staff.finance)
    page = finance.get(f"/cases/{ref}/disbursement").get_data(as_text=True)
    assert "€ 3.750,00" in text(page)  # 2 adults × 1.500 + 1 minor × 750, Dutch format
    key = page.split('name="pay_support-idempotency_key" value="')[1].split('"')[0]
    assert finance.post(f"/cases/{ref}/disbursement",
                        {"pay_support-idempotency_key": key}).status_code == 303
    # A double click (the same form again) replays and pays nothing more.
    assert finance.post(f"/cases/{ref}/disbursement",
                        {"pay_support-idempotency_key": key}).status_code == 303
    assert _case(app, ref).state == "support_paid"
    with Session(app.extensions["returnprog.engine"]) as s:
        assert s.execute(select(func.count()).select_from(Payment).where(
            Payment.case_id == case.id, Payment.status == "disbursed")).scalar_one() == 1

    # Departure: evidence is required; then the case is closed.
    assert counsellor.post(f"/cases/{ref}/departure", {
        "confirm_departure-departed_on": TODAY.isoformat()}).status_code == 422
    # Paid in cash: not before the receipt is signed; never dated before the agreement.
    unsigned = counsellor.post(f"/cases/{ref}/departure", {
        "confirm_departure-departed_on": TODAY.isoformat(),
        "confirm_departure-evidence": "boarding"})
    assert unsigned.status_code == 409
    assert "ontvangstbewijs" in text(unsigned.get_data(as_text=True))
    fake_sign(session, case, workflow.PAYMENT_RECEIPT)
    early = counsellor.post(f"/cases/{ref}/departure", {
        "confirm_departure-departed_on": "2020-01-01",
        "confirm_departure-evidence": "boarding"})
    assert early.status_code == 409
    assert 'href="#confirm_departure-departed_on"' in early.get_data(as_text=True)
    assert _case(app, ref).state == "support_paid"
    assert counsellor.post(f"/cases/{ref}/departure", {
        "confirm_departure-departed_on": TODAY.isoformat(),
        "confirm_departure-evidence": "boarding"}).status_code == 303
    assert _case(app, ref).state == "departed"

    page = text(counsellor.get(f"/cases/{ref}").get_data(as_text=True))
    assert "Vertrokken" in page and "Er staat nu geen stap voor u open" in page
    # The page opens on the latest changes; "older events" leads back to the first.
    assert "Vertrek bevestigd" in page
    html = counsellor.get(f"/cases/{ref}").get_data(as_text=True)
    trail = text(html)
    while (older := re.search(r'href="[^"]*\?before=(\d+)"', html)):
        html = counsellor.get(f"/cases/{ref}?before={older.group(1)}").get_data(as_text=True)
        trail += text(html)
    for label in ("Dossier geopend", "Deelname bevestigd", "Reisbijdrage uitbetaald",
                  "Vertrek bevestigd"):
        assert label in trail


def _payment(app, case_id: int) -> Payment:
    with Session(app.extensions["returnprog.engine"]) as s:
        return s.execute(select(Payment).where(Payment.case_id == case_id)
                         .order_by(Payment.id.desc()).limit(1)).scalar_one()


def test_side_exits_leave_reject_and_lapse(app, staff, ctx_for, session):
    counsellor, supervisor = web_for(app, staff.counsellor), web_for(app, staff.supervisor)
    leaving = drive_to(ctx_for, staff, session, "committed", adults=1, minors=0)
    rejected = drive_to(ctx_for, staff, session, "intake", adults=1, minors=0)
    lapsing = drive_to(ctx_for, staff, session, "departure_agreed", adults=1, minors=0)

    resp = counsellor.post(f"/cases/{leaving.reference}/leave", {"leave_programme-reason": " "})
    assert resp.status_code == 422 and 'href="#leave_programme-reason"' in resp.get_data(as_text=True)
    assert counsellor.post(f"/cases/{leaving.reference}/leave", {
        "leave_programme-reason": "Wants to stay with family",
        "leave_programme-confirm": "yes"}).status_code == 303
    assert _case(app, leaving.reference).state == "left_programme"

    assert counsellor.post(f"/cases/{rejected.reference}/rejection",
                           {"reject-reason": "x"}).status_code == 403
    assert supervisor.post(f"/cases/{rejected.reference}/rejection",
                           {"reject-reason": "Not displaced from Ukraine",
                            "reject-confirm": "yes"}).status_code == 303
    assert _case(app, rejected.reference).state == "rejected"

    # Lapse is refused until the deadline has passed, and the page says why.
    page = text(supervisor.get(f"/cases/{lapsing.reference}/lapse").get_data(as_text=True))
    assert "nog niet verstreken" in page
    with Session(app.extensions["returnprog.engine"]) as s:
        s.execute(update(Case).where(Case.id == lapsing.id).values(
            departure_deadline=TODAY - dt.timedelta(days=2)))
        s.commit()
    assert supervisor.post(f"/cases/{lapsing.reference}/lapse",
                           {"lapse-reason": "Did not leave", "lapse-confirm": "yes"}).status_code == 303
    assert _case(app, lapsing.reference).state == "lapsed"
