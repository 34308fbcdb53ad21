"""The case search finds what people type (issue 13) through an index (issue 11), on both
databases: names in either order and script, partial references and V-numbers, full BSNs
only; the index follows intake edits in the same transaction."""
from __future__ import annotations

import pytest
from sqlalchemy import event, select, text

from returnprog import audit, search
from returnprog.models import CaseSearch
from returnprog.services import Invalid
from returnprog.services import cases as case_service

from ..conftest import intake, person, statements_sent


def _named(given, family, given_cyr=None, family_cyr=None, **over):
    return person(given_names_latin=given, family_name_latin=family,
                  given_names_cyrillic=given_cyr, family_name_cyrillic=family_cyr, **over)


@pytest.fixture
def cases(ctx_for, staff):
    """Five households; V-numbers and BSNs chosen so no digit run is shared by accident."""
    ctx = ctx_for(staff.counsellor)

    def open_(principal, *household):
        data = intake(principal=principal,
                      household=[dict(m, relationship="spouse") for m in household])
        return case_service.open_case(ctx, data).reference

    return {
        "kovalenko": open_(_named("Olena", "Kovalenko", "Олена", "Коваленко",
                                  v_number="7318264501", bsn="111222333")),
        "hrytsenko": open_(_named("Oleksandra", "Hrytsenko", "Олександра", "Гриценко",
                                  v_number="5849302716"),
                           _named("Taras", "Hrytsenko", "Тарас", "Гриценко",
                                  v_number="6093847152")),
        # Registered with Latin letters only (no Cyrillic on the intake form).
        "melnyk": open_(_named("Olha", "Melnyk", v_number="4729183650")),
        "shevchenko": open_(_named("Olena", "Shevchenko", "Олена", "Шевченко",
                                   v_number="9182736450", bsn="987654305")),
        # A Russian passport spelling; the Cyrillic as the person writes it.
        "ivanova": open_(_named("Iuliia", "Ivanova", "Юлия", "Иванова",
                                v_number="3847561920")),
    }


def found(ctx, q, **filters):
    page = case_service.list_cases(ctx, {"q": q, "page": 1, "per_page": 25, **filters})
    return {c["reference"] for c in page["items"]}


@pytest.mark.parametrize("q, who", [
    ("Olena Kovalenko", {"kovalenko"}),
    ("Kovalenko Olena", {"kovalenko"}),
    ("kovalenko", {"kovalenko"}),
    ("Олена Коваленко", {"kovalenko"}),
    ("Коваленко Олена", {"kovalenko"}),
    ("Olena", {"kovalenko", "shevchenko"}),
    ("Olena Sh", {"shevchenko"}),  # a two-letter word narrows what the others found
    ("Гриценко Олександра", {"hrytsenko"}),
    ("Oleksandra Hrytsenko", {"hrytsenko"}),
    ("Hrytsenko Oleksandra", {"hrytsenko"}),
    ("Gritsenko", {"hrytsenko"}),  # the ICAO (Russian passport) spelling of Гриценко
    ("Taras Hrytsenko", {"hrytsenko"}),  # any household member
    ("hryts", {"hrytsenko"}),
    ("ксандр", {"hrytsenko"}),  # a piece from the middle of a Cyrillic name
    ("Ольга Мельник", {"melnyk"}),  # Cyrillic query, Latin-only registration
    ("Юлия Иванова", {"ivanova"}),
    ("Iuliia", {"ivanova"}),
    ("Юлія Іванова", {"ivanova"}),  # the Ukrainian spelling finds the Russian one
    ("Olena Hrytsenko", set()),  # every word must match
    ("Olena Kovalenko Taras", set()),
])
def test_what_people_type_finds_the_case_and_no_other(ctx_for, staff, cases, q, who):
    assert found(ctx_for(staff.counsellor), q) == {cases[k] for k in who}


def test_cyrillic_is_matched_without_regard_to_case(ctx_for, staff, cases):
    ctx = ctx_for(staff.counsellor)
    for q in ("ОЛЕНА КОВАЛЕНКО", "олена коваленко", "оЛЕНА кОВАЛЕНКО", "OLENA KOVALENKO"):
        assert found(ctx, q) == {cases["kovalenko"]}, q
    assert found(ctx, "ГРИЦЕНКО") == {cases["hrytsenko"]}


def test_partial_references_and_v_numbers_find_their_case(ctx_for, staff, cases):
    ctx = ctx_for(staff.counsellor)
    ref = cases["hrytsenko"]
    for q in (ref, ref.lower(), ref[-6:], ref[4:], f"{ref[-6:]} Taras"):
        assert found(ctx, q) == {ref}, q
    assert found(ctx, "7318264501") == {cases["kovalenko"]}
    assert found(ctx, "826450") == {cases["kovalenko"]}  # a piece of the V-number
    assert found(ctx, "561920") == {cases["ivanova"]}
    assert found(ctx, "6093847152") == {cases["hrytsenko"]}  # a household member's


def test_a_bsn_finds_its_case_only_in_full(ctx_for, staff, cases):
    ctx = ctx_for(staff.counsellor)
    assert found(ctx, "111222333") == {cases["kovalenko"]}
    assert found(ctx, "987654305") == {cases["shevchenko"]}
    for prefix in ("1112223", "11122233", "98765430", "222333"):
        assert found(ctx, prefix) == set(), prefix
    row = ctx.session.get(CaseSearch, ctx.session.execute(
        select(CaseSearch.case_id)).scalars().first())
    assert "111222333" not in row.haystack  # stored only as a key


def test_a_query_without_a_word_of_three_characters_is_refused_with_a_reason(
        ctx_for, staff, cases):
    ctx = ctx_for(staff.counsellor)
    for q in ("ol", "O K", "%", "'"):
        with pytest.raises(Invalid) as err:
            found(ctx, q)
        assert err.value.details["q"][0].code == "validate.search_short", q
    # Two Cyrillic letters spell three Latin ones: Ян is looked for as yan/ian.
    assert found(ctx, "Ян") == set()


def test_search_combines_with_the_other_filters_and_the_team(ctx_for, staff, cases):
    assert found(ctx_for(staff.counsellor), "Olena", state="committed") == set()
    assert found(ctx_for(staff.counsellor), "Olena", state="intake") == {
        cases["kovalenko"], cases["shevchenko"]}
    assert found(ctx_for(staff.other_counsellor), "Olena") == set()


def test_the_index_follows_an_intake_edit_and_drops_the_old_name(ctx_for, staff, cases):
    ctx = ctx_for(staff.counsellor)
    ref = cases["kovalenko"]
    data = intake(principal=_named("Olena", "Bondar", "Олена", "Бондар", v_number="7318264501"))
    case_service.update_intake(ctx, ref, data)
    assert found(ctx, "Kovalenko") == set()
    assert found(ctx, "Коваленко") == set()
    assert found(ctx, "111222333") == set()  # the BSN was removed too
    assert found(ctx, "Olena Bondar") == {ref}
    assert found(ctx, "Бондар") == {ref}


def test_an_intake_edit_that_fails_leaves_the_index_as_it_was(ctx_for, staff, cases,
                                                              monkeypatch):
    """The index row changes in the same transaction as the participants: when the edit
    rolls back (here: writing its audit event fails), the old name is still found."""
    ctx = ctx_for(staff.counsellor)
    ref = cases["kovalenko"]

    def broken(*a, **k):
        raise RuntimeError("audit store down")

    monkeypatch.setattr(audit, "append", broken)
    data = intake(principal=_named("Olena", "Bondar", v_number="7318264501"))
    with pytest.raises(RuntimeError):
        case_service.update_intake(ctx, ref, data)
    ctx.session.rollback()
    monkeypatch.undo()
    assert found(ctx, "Kovalenko") == {ref}
    assert found(ctx, "Bondar") == set()


def test_a_case_opened_in_a_failed_transaction_leaves_no_index_row(ctx_for, staff, session,
                                                                   monkeypatch):
    ctx = ctx_for(staff.counsellor)
    monkeypatch.setattr(audit, "append", lambda *a, **k: (_ for _ in ()).throw(
        RuntimeError("audit store down")))
    with pytest.raises(RuntimeError):
        case_service.open_case(ctx, intake(principal=_named("Petro", "Zhuk")))
    session.rollback()
    monkeypatch.undo()
    assert session.execute(select(CaseSearch)).all() == []
    case_service.open_case(ctx, intake(principal=_named("Petro", "Zhuk")))
    assert len(found(ctx, "Petro Zhuk")) == 1


def _captured_search(engine, ctx, q):
    """The statements list_cases sends for ``q`` that read the search index."""
    seen = statements_sent(engine, lambda: found(ctx, q), "case_search")
    assert seen
    return seen


def test_the_search_reads_the_index_not_every_row(engine, ctx_for, staff, cases, session):
    ctx = ctx_for(staff.counsellor)
    for q in ("Olena Kovalenko", "Гриценко Олександра", "Olena K", "000001"):
        for statement, params in _captured_search(engine, ctx, q):
            with engine.connect() as conn:
                if engine.dialect.name == "sqlite":
                    plan = "\n".join(r[-1] for r in conn.exec_driver_sql(
                        "EXPLAIN QUERY PLAN " + statement, params))
                    assert "case_search_fts VIRTUAL TABLE INDEX" in plan, plan
                    assert "SCAN case_search " not in plan + " ", plan
                else:
                    plan = "\n".join(r[0] for r in conn.exec_driver_sql(
                        "EXPLAIN " + statement, params))
                    assert "Seq Scan on case_search" not in plan, plan
        if engine.dialect.name == "postgresql":
            # With five rows the planner rightly prefers the case's primary key; forbid
            # sequential scans to see that the trigram index answers the search itself.
            terms = search.parse(q)
            compiled = search.matching_case_ids("postgresql", search.shape(terms)).compile(
                dialect=engine.dialect)
            with engine.connect() as conn:
                conn.execute(text("SET enable_seqscan = off"))
                plan = "\n".join(r[0] for r in conn.exec_driver_sql(
                    "EXPLAIN " + str(compiled),
                    compiled.construct_params(search.parameters("postgresql", terms))))
            assert "Bitmap Index Scan on ix_case_search_haystack_trgm" in plan, plan


def test_reindex_rebuilds_the_same_rows_the_services_wrote(engine, cases, session):
    before = dict(session.execute(select(CaseSearch.case_id, CaseSearch.haystack)).all())
    with engine.begin() as conn:
        conn.execute(CaseSearch.__table__.delete())
        assert search.reindex(conn, batch=2) == len(cases)
    session.expire_all()
    assert dict(session.execute(select(CaseSearch.case_id, CaseSearch.haystack)).all()) == before
    if engine.dialect.name == "sqlite":
        # The FTS5 index agrees with its content table after deletes and inserts.
        with engine.begin() as conn:
            conn.exec_driver_sql(
                "INSERT INTO case_search_fts(case_search_fts, rank) VALUES ('integrity-check', 1)")


def test_the_migration_indexes_the_cases_that_exist_before_it(db_url, engine, ctx_for, staff,
                                                              cases, session):
    from alembic import command

    from returnprog import db as dbmod

    session.close()
    engine.dispose()
    command.downgrade(dbmod.alembic_config(db_url), "0010-1")
    dbmod.upgrade(db_url)
    ctx = ctx_for(staff.counsellor)
    assert found(ctx, "Oleksandra Hrytsenko") == {cases["hrytsenko"]}
    assert found(ctx, "Ольга Мельник") == {cases["melnyk"]}
    assert found(ctx, "111222333") == {cases["kovalenko"]}


def _refs(ctx, **filters):
    page = case_service.list_cases(ctx, {"page": 1, "per_page": 25, **filters})
    return [c["reference"] for c in page["items"]], page


def test_a_search_ranks_whole_words_above_starts_above_insides(ctx_for, staff):
    ctx = ctx_for(staff.counsellor)
    # Opened best match first, so newest-first alone would list them in reverse.
    exact = case_service.open_case(ctx, intake(principal=_named("Olena", "Kovalenko"))).reference
    start = case_service.open_case(ctx, intake(principal=_named("Olenaria", "Kovalenkova"))).reference
    inside = case_service.open_case(ctx, intake(principal=_named("Marolena", "Rekovalenko"))).reference
    refs, page = _refs(ctx, q="olena kovalenko")
    assert refs == [exact, start, inside] and page["sort"] == "relevance"
    refs, _ = _refs(ctx, q="olena kovalenko", order="asc")
    assert refs == [inside, start, exact]
    # Without a search there is nothing to rank by: newest first.
    refs, page = _refs(ctx, sort="relevance")
    assert refs == [inside, start, exact] and page["sort"] == "reference"


def test_the_list_sorts_by_state_in_the_programmes_order_and_by_deadline(
        ctx_for, staff, session):
    import datetime as dt

    from returnprog.models import Case
    ctx = ctx_for(staff.counsellor)
    refs = [case_service.open_case(ctx, intake()).reference for _ in range(4)]
    # States and deadlines set directly: the sort is what is under test, not the workflow.
    for ref, state, deadline in zip(refs, ("departure_agreed", "intake", "committed", "intake"),
                                    (dt.date(2027, 3, 1), None, dt.date(2027, 1, 1), None)):
        session.execute(Case.__table__.update().where(Case.reference == ref)
                        .values(state=state, departure_deadline=deadline))
    session.commit()
    by_state, _ = _refs(ctx, sort="state")
    assert by_state == [refs[3], refs[1], refs[2], refs[0]]  # intake (newest first), committed, …
    by_deadline, _ = _refs(ctx, sort="deadline")
    assert by_deadline[:2] == [refs[2], refs[0]] and set(by_deadline[2:]) == {refs[1], refs[3]}
    by_deadline, _ = _refs(ctx, sort="deadline", order="desc")
    assert by_deadline[:2] == [refs[0], refs[2]]  # no deadline comes last either way


def test_a_search_page_counts_its_hits_in_the_same_statement(engine, ctx_for, staff):
    ctx = ctx_for(staff.counsellor)
    for _ in range(7):
        case_service.open_case(ctx, intake(principal=_named("Petro", "Bondar")))
    seen = []

    def grab(conn, cursor, statement, parameters, context, executemany):
        seen.append(statement)

    event.listen(engine, "before_cursor_execute", grab)
    try:
        page = case_service.list_cases(ctx, {"q": "bondar", "page": 2, "per_page": 3})
    finally:
        event.remove(engine, "before_cursor_execute", grab)
    assert page["total"] == 7 and len(page["items"]) == 3
    assert len([s for s in seen if "case_search" in s]) == 1
    # Past the last page the window has no row to carry the total: it is counted apart.
    beyond = case_service.list_cases(ctx, {"q": "bondar", "page": 9, "per_page": 3})
    assert beyond["total"] == 7 and beyond["items"] == []


@pytest.mark.parametrize("q", ["Gritsenko", "Chritsenko", "Hrytsenko Oleksandra",
                               "Гриценко", "Олександра Грыценко"])
def test_a_name_registered_in_latin_only_is_found_by_other_transliterations(ctx_for, staff, q):
    """A Hrytsenko entered without Cyrillic is found under the Russian passport's and the
    Dutch register's spellings, and from Cyrillic, through the sound key."""
    ctx = ctx_for(staff.counsellor)
    ref = case_service.open_case(ctx, intake(principal=_named("Oleksandra", "Hrytsenko"))).reference
    case_service.open_case(ctx, intake(principal=_named("Oleksandra", "Hryshchenko")))
    assert found(ctx, q) == {ref}


def test_an_exact_spelling_ranks_above_a_sound_alike(ctx_for, staff):
    ctx = ctx_for(staff.counsellor)
    exact = case_service.open_case(ctx, intake(principal=_named("Taras", "Gritsenko"))).reference
    alike = case_service.open_case(ctx, intake(principal=_named("Taras", "Hrytsenko"))).reference
    refs, _ = _refs(ctx, q="gritsenko")
    assert refs == [exact, alike]
    refs, _ = _refs(ctx, q="hrytsenko")
    assert refs == [alike, exact]
