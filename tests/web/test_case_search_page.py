"""The staff case list's search box and filters: what people type finds the case, and
filters that cannot be answered say why beside the field instead of showing 0 cases."""
from __future__ import annotations

import re
from urllib.parse import parse_qs, urlsplit

from ..conftest import intake, person
from ..web_client import text, web_for


def search(web, q: str, **filters):
    """Submit the list's search form and follow the redirect: the page it lands on."""
    resp = web.post("/cases", {"q": q, **filters})
    assert resp.status_code == 303, resp.status_code
    return web.get(resp.headers["Location"])


def test_a_full_name_in_cyrillic_or_reversed_finds_the_case_on_the_list(app, staff, ctx_for):
    from returnprog.services import cases as case_service

    mine = case_service.open_case(ctx_for(staff.counsellor), intake(principal=person(
        given_names_latin="Oleksandra", family_name_latin="Hrytsenko",
        given_names_cyrillic="Олександра", family_name_cyrillic="Гриценко"))).reference
    case_service.open_case(ctx_for(staff.counsellor), intake())
    web = web_for(app, staff.counsellor)
    for q in ("Гриценко Олександра", "Oleksandra Hrytsenko", "hrytsenko oleksandra",
              mine[-6:]):
        page = text(search(web, q).get_data(as_text=True))
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
    resp = search(web, "ol")
    assert resp.status_code == 422 and 'href="#q"' in resp.get_data(as_text=True)
    assert "Typ minstens 3 letters of cijfers" in text(resp.get_data(as_text=True))


def test_the_api_refuses_a_reversed_deadline_range_with_422(client, api_staff):
    resp = client.get("/api/v1/cases?deadline_from=2026-06-10&deadline_to=2026-06-01",
                      headers=api_staff.headers["counsellor"])
    assert resp.status_code == 422
    assert [d.get("field") for d in resp.get_json()["error"]["details"]] == ["deadline_to"]


def test_search_words_never_appear_in_an_address(app, staff, ctx_for):
    """Names and V-numbers typed into the box stay out of the address bar, history and
    access logs: the form posts them, the list's address carries a key to the saved search,
    and paging and sorting links carry that key too."""
    from returnprog.services import cases as case_service

    for _ in range(27):
        case_service.open_case(ctx_for(staff.counsellor), intake(1, 0, principal=person(
            family_name_latin="Bondarenko")))
    web = web_for(app, staff.counsellor)
    resp = web.post("/cases", {"q": "Bondarenko", "state": "intake"})
    location = resp.headers["Location"]
    assert "ondarenko" not in location.lower()
    assert parse_qs(urlsplit(location).query)["state"] == ["intake"]
    page = web.get(location).get_data(as_text=True)
    assert "27 dossiers gevonden." in text(page)
    links = re.findall(r'href="([^"]*cases\?[^"]*)"', page)
    assert links and not any("ondarenko" in link.lower() for link in links)
    assert any("page=2" in link and "search=" in link for link in links)
    assert 'value="Bondarenko"' in page  # the box still shows what was typed
    # An address with the words in it (an old bookmark) is moved to a key at once.
    old = web.get("/cases?q=Bondarenko&state=intake")
    assert old.status_code == 303 and "ondarenko" not in old.headers["Location"].lower()
    # Another browser holding the address has no such saved search: nothing is listed.
    stranger = web_for(app, staff.counsellor)
    resp = stranger.get(location)
    assert resp.status_code == 200
    assert "Deze zoekopdracht is niet meer bewaard" in text(resp.get_data(as_text=True))
    assert "0 dossiers gevonden." in text(resp.get_data(as_text=True))


def test_search_ranks_the_best_match_first_and_columns_sort(app, staff, ctx_for):
    from returnprog.services import cases as case_service

    def open_named(given: str, family: str) -> str:
        return case_service.open_case(ctx_for(staff.counsellor), intake(1, 0, principal=person(
            given_names_latin=given, family_name_latin=family, given_names_cyrillic=None,
            family_name_cyrillic=None))).reference

    # Opened best match first, so newest-first would list them the other way round.
    exact = open_named("Olena", "Kovalenko")
    prefix = open_named("Olenaria", "Kovalenkova")
    inside = open_named("Marolena", "Rekovalenko")
    web = web_for(app, staff.counsellor)
    page = text(search(web, "olena kovalenko").get_data(as_text=True))
    assert "Beste treffers eerst." in page
    order = sorted((page.index(ref), ref) for ref in (inside, exact, prefix))
    assert [ref for _, ref in order] == [exact, prefix, inside]
    # Sorting by reference, both ways, through the column header's link.
    html = search(web, "kovalenk").get_data(as_text=True)
    for expected in ([inside, prefix, exact], [exact, prefix, inside]):
        link = re.search(r'href="([^"]*sort=reference[^"]*)"', html).group(1)
        html = web.get(link.replace("&amp;", "&")).get_data(as_text=True)
        page = text(html)
        assert sorted((exact, prefix, inside), key=page.index) == expected
        assert 'aria-sort="' in html
