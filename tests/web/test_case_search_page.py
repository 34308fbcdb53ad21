"""The staff case list's search box and filters: what people type finds the case, and
filters that cannot be answered say why beside the field instead of showing 0 cases."""
from __future__ import annotations

from ..conftest import intake, person
from ..web_client import text, web_for


def test_a_full_name_in_cyrillic_or_reversed_finds_the_case_on_the_list(app, staff, ctx_for):
    from returnprog.services import cases as case_service

    mine = case_service.open_case(ctx_for(staff.counsellor), intake(principal=person(
        given_names_latin="Oleksandra", family_name_latin="Hrytsenko",
        given_names_cyrillic="Олександра", family_name_cyrillic="Гриценко"))).reference
    case_service.open_case(ctx_for(staff.counsellor), intake())
    web = web_for(app, staff.counsellor)
    for q in ("Гриценко Олександра", "Oleksandra Hrytsenko", "hrytsenko oleksandra",
              mine[-6:]):
        page = text(web.get("/cases", query_string={"q": q}).get_data(as_text=True))
        assert "1 dossier gevonden." in page and mine in page, q


def test_a_reversed_deadline_range_is_an_error_beside_the_field_not_zero_cases(app, staff):
    web = web_for(app, staff.counsellor)
    resp = web.get("/cases?deadline_from=2026-06-10&deadline_to=2026-06-01")
    page = resp.get_data(as_text=True)
    assert resp.status_code == 422
    assert 'href="#deadline_to"' in page
    assert "Het einde van de periode ligt vóór het begin." in text(page)


def test_a_search_too_short_for_the_index_says_how_long_it_must_be(app, staff):
    web = web_for(app, staff.counsellor)
    resp = web.get("/cases?q=ol")
    assert resp.status_code == 422 and 'href="#q"' in resp.get_data(as_text=True)
    assert "Typ minstens 3 letters of cijfers" in text(resp.get_data(as_text=True))


def test_the_api_refuses_a_reversed_deadline_range_with_422(client, api_staff):
    resp = client.get("/api/v1/cases?deadline_from=2026-06-10&deadline_to=2026-06-01",
                      headers=api_staff.headers["counsellor"])
    assert resp.status_code == 422
    assert list(resp.get_json()["error"]["details"]) == ["deadline_to"]
