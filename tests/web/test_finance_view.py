"""Least privilege for finance (issue 13 item 7): on every page and API response a finance
officer can reach, a case's BSN, V-numbers, travel-document numbers and dates of birth
are absent (while payee, amount, method, IBAN and reference are there); a finance action
on a case in the wrong state is 409 with the reason, not 404."""
from __future__ import annotations

import datetime as dt

import pytest

from returnprog import auth, workflow
from returnprog.services import batches as batch_service
from returnprog.services import payment as payment_service
from returnprog.services import cases as case_service

from ..conftest import drive_to, fake_sign, intake, person
from ..web_client import text, web_for

BSNS = ("111222333", "123456782")
IBAN = "NL91ABNA0417164300"
HOLDER = "O. Kovalenko-Payee"


def _identifiers(session, reference) -> list[str]:
    """Every identifier of the case's people, in the forms a page or response could show."""
    from sqlalchemy import select

    from returnprog.models import Case, Participant

    session.expire_all()
    people = session.execute(select(Participant).join(Case, Case.id == Participant.case_id)
                             .where(Case.reference == reference)).scalars().all()
    out = []
    for p in people:
        out += [p.v_number, p.travel_document_number, p.date_of_birth.isoformat(),
                p.date_of_birth.strftime("%d-%m-%Y")]
        out += [x for x in (p.bsn, p.email, p.phone) if x]
    assert len(out) >= 12 and all(out)
    return out


@pytest.fixture
def world(app, staff, session, ctx_for):
    """A case at departure_agreed whose people have BSNs and travel documents, with an
    approved bank transfer in a finance export; and a second case waiting for its payment
    (departure agreed, nothing proposed)."""
    data = intake(2, 1)
    data["principal"]["bsn"] = BSNS[0]
    data["household"][0]["bsn"] = BSNS[1]
    counsellor = ctx_for(staff.counsellor)
    case = case_service.open_case(counsellor, data)
    ref = case.reference
    fake_sign(session, case, workflow.COMMITMENT)
    case_service.perform(ctx_for(staff.counsellor), ref, "confirm_commitment", {})
    fake_sign(session, case, workflow.WITHDRAWAL_DECLARATION)
    from ..conftest import confirm_ind
    confirm_ind(ctx_for(staff.counsellor), case)
    case_service.perform(ctx_for(staff.counsellor), ref, "record_withdrawal", {})
    deadline = dt.date.today() + dt.timedelta(days=30)
    fake_sign(session, case, workflow.DEPARTURE_AGREEMENT,
              {"departure_deadline": deadline.isoformat()})
    case_service.perform(ctx_for(staff.counsellor), ref, "agree_departure",
                         {"departure_deadline": deadline})
    payment_service.propose(ctx_for(staff.counsellor), ref, {
        "method": "transfer", "iban": IBAN, "account_holder": HOLDER})
    payment_service.approve(ctx_for(staff.supervisor), ref)
    payment_service.disburse(ctx_for(staff.finance), ref, {"idempotency_key": f"pay-{ref}"})
    batch = batch_service.create_batch(ctx_for(staff.finance))
    waiting = drive_to(ctx_for, staff, session, "departure_agreed")
    tokens = {name: auth.issue_api_token(session, getattr(staff, name))
              for name in ("finance", "counsellor")}
    return {"ref": ref, "batch": batch.id, "waiting": waiting.reference,
            "secrets": _identifiers(session, ref) + _identifiers(session, waiting.reference),
            "tokens": tokens}


def _finance_pages(ref, batch):
    return [f"/cases/{ref}", f"/cases/{ref}?views=1", f"/cases/{ref}/payment",
            f"/cases/{ref}/disbursement", "/payments", "/payments?status=approved",
            f"/payments?case={ref}", "/cases", f"/cases?q={ref[-6:]}", "/",
            "/payments/exports", f"/payments/exports/{batch}",
            f"/payments/exports/{batch}?format=csv"]


def _finance_api(ref, batch):
    return [f"/api/v1/cases/{ref}", f"/api/v1/cases/{ref}/trail",
            f"/api/v1/cases/{ref}/access-log", "/api/v1/cases",
            f"/api/v1/cases/{ref}/payment", "/api/v1/payments", "/api/v1/exports",
            f"/api/v1/exports/{batch}", f"/api/v1/exports/{batch}?format=csv"]


def _absent(body: str, secrets: list[str], where: str) -> None:
    found = [s for s in secrets if s in body]
    assert not found, f"{where} shows {found}"


def test_no_page_finance_reaches_shows_the_peoples_identifiers(app, staff, world):
    finance = web_for(app, staff.finance)
    ref, secrets = world["ref"], world["secrets"]
    for path in _finance_pages(ref, world["batch"]):
        resp = finance.get(path, follow_redirects=True)  # a search moves to a saved key
        assert resp.status_code == 200, (path, resp.status_code)
        _absent(resp.get_data(as_text=True), secrets, path)
    # What finance needs is there: payee, amount, method, IBAN (on the payment page).
    page = text(finance.get(f"/cases/{ref}/payment").get_data(as_text=True))
    assert HOLDER in page and ref in page
    assert "NL91 ABNA 0417 1643 00" in page or IBAN in page
    # The same case page shows them to its counsellor: the check above can fail.
    counsellor = web_for(app, staff.counsellor)
    body = counsellor.get(f"/cases/{ref}").get_data(as_text=True)
    assert BSNS[0] in body and world["secrets"][0] in body


def test_no_api_response_finance_reaches_shows_the_peoples_identifiers(app, client, world):
    ref, secrets = world["ref"], world["secrets"]
    finance = {"Authorization": f"Bearer {world['tokens']['finance']}"}
    for path in _finance_api(ref, world["batch"]):
        resp = client.get(path, headers=finance)
        assert resp.status_code == 200, (path, resp.status_code, resp.get_data(as_text=True))
        _absent(resp.get_data(as_text=True), secrets, path)
    case = client.get(f"/api/v1/cases/{ref}", headers=finance).get_json()
    assert {p["v_number"] for p in case["participants"]} == {None}
    assert {p["bsn"] for p in case["participants"]} == {None}
    assert case["payments"][0]["method"] == "transfer"
    payment = client.get(f"/api/v1/cases/{ref}/payment", headers=finance).get_json()
    assert payment["iban"] == IBAN and payment["account_holder"] == HOLDER
    # The counsellor's read of the same case has them.
    mine = {"Authorization": f"Bearer {world['tokens']['counsellor']}"}
    body = client.get(f"/api/v1/cases/{ref}", headers=mine).get_data(as_text=True)
    assert BSNS[0] in body and secrets[0] in body


def test_finance_does_not_download_the_signed_pdfs(app, staff, session, world):
    from sqlalchemy import select

    from returnprog.models import Case, Document

    doc = session.execute(select(Document.id).join(Case, Case.id == Document.case_id)
                          .where(Case.reference == world["ref"]).limit(1)).scalar_one()
    finance = web_for(app, staff.finance)
    assert finance.get(f"/cases/{world['ref']}/documents/{doc}.pdf").status_code == 403
    page = finance.get(f"/cases/{world['ref']}").get_data(as_text=True)
    assert "/documents/" not in page
    counsellor = web_for(app, staff.counsellor)
    assert counsellor.get(f"/cases/{world['ref']}/documents/{doc}.pdf").status_code == 200


def test_paying_out_a_case_without_an_approved_payment_is_409_with_the_reason(app, client,
                                                                             staff, world):
    waiting = world["waiting"]
    finance = web_for(app, staff.finance)
    resp = finance.post(f"/cases/{waiting}/disbursement",
                        {"pay_support-idempotency_key": "pay-key-0001"})
    assert resp.status_code == 409
    assert "Er is nog geen betaling van de reisbijdrage voorgesteld en goedgekeurd" in text(
        resp.get_data(as_text=True))
    headers = {"Authorization": f"Bearer {world['tokens']['finance']}"}
    resp = client.post(f"/api/v1/cases/{waiting}/actions/pay_support", headers=headers,
                       json={"idempotency_key": "pay-key-0002"})
    assert resp.status_code == 409, resp.get_data(as_text=True)
    assert [d["code"] for d in resp.get_json()["error"]["details"]] == ["payment_not_approved"]
    # Still not found: a case finance has no business with (in intake, no payment), and
    # one that does not exist.
    for ref in (_intake_case(app, staff), "VRP-2000-999999"):
        resp = client.post(f"/api/v1/cases/{ref}/actions/pay_support", headers=headers,
                           json={"idempotency_key": "pay-key-0003"})
        assert resp.status_code == 404, (ref, resp.status_code)


def _intake_case(app, staff) -> str:
    from sqlmodel import Session

    from returnprog.services import Context

    with Session(app.extensions["returnprog.engine"], expire_on_commit=False) as s:
        ctx = Context(session=s, policy=app.extensions["returnprog.policy"],
                      actor=s.merge(staff.counsellor), ip="127.0.0.1", user_agent="pytest")
        return case_service.open_case(ctx, intake(1, 0, principal=person())).reference


def test_finance_finds_a_case_by_its_reference_but_not_by_a_v_number_or_bsn(app, client,
                                                                           session, world):
    from sqlalchemy import select

    from returnprog.models import Case, Participant

    ref = world["ref"]
    v_number = session.execute(select(Participant.v_number).join(
        Case, Case.id == Participant.case_id).where(Case.reference == ref,
                                                    Participant.is_principal)).scalar_one()
    found = {}
    for role in ("finance", "counsellor"):
        headers = {"Authorization": f"Bearer {world['tokens'][role]}"}
        found[role] = {q: [c["reference"] for c in client.get(
            "/api/v1/cases", query_string={"q": q}, headers=headers).get_json()["items"]]
            for q in (v_number, v_number[:7], BSNS[0], ref[-6:], "Kovalenko")}
    assert found["counsellor"][v_number] == [ref] and found["counsellor"][BSNS[0]] == [ref]
    assert found["finance"][v_number] == found["finance"][v_number[:7]] == []
    assert found["finance"][BSNS[0]] == []
    assert found["finance"][ref[-6:]] == [ref]
    assert ref in found["finance"]["Kovalenko"]  # the payee's name is finance's to know
