"""The first opening of a signing link is recorded on its request for the evidence
certificate: once, by one conditional UPDATE in its own short transaction, and a link
already opened writes nothing at all (issue 12 item 4)."""
from __future__ import annotations

import contextlib

from sqlalchemy import event, select

from returnprog.models import Participant, SigningRequest
from returnprog.services import cases as case_service
from returnprog.services import signing

from ..conftest import intake


@contextlib.contextmanager
def statements(session):
    """The SQL statements the session's engine runs meanwhile."""
    seen: list[str] = []
    engine = session.get_bind()

    def note(conn, cursor, statement, *args):
        seen.append(" ".join(statement.split()).upper())

    event.listen(engine, "before_cursor_execute", note)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", note)


def _open_link(ctx_for, staff, session):
    case = case_service.open_case(ctx_for(staff.counsellor), intake(1, 0))
    adult = session.execute(select(Participant.id).where(Participant.case_id == case.id)).scalar_one()
    request, token = signing.create_signing_link(ctx_for(staff.counsellor), case.reference, adult,
                                                 "commitment", {})
    return request.id, token


def test_the_first_opening_is_recorded_once_and_later_ones_write_nothing(ctx_for, staff, session):
    link_id, token = _open_link(ctx_for, staff, session)
    visitor = ctx_for(None)
    visitor.ip, visitor.user_agent = "198.51.100.7", "Phone/1 " + "x" * 400

    request = signing.open_signing_link(visitor, token)
    assert request.opened_at is None
    with statements(session) as seen:
        assert signing.record_link_opened(visitor, request) is True
    writes = [s for s in seen if not s.startswith(("SELECT", "BEGIN", "COMMIT", "ROLLBACK"))]
    # One conditional update of this request; no audit head, nothing else locked.
    assert len(writes) == 1 and writes[0].startswith("UPDATE SIGNING_REQUEST")
    assert "OPENED_AT IS NULL" in writes[0]
    session.expire_all()
    stored = session.get(SigningRequest, link_id)
    assert stored.opened_ip == "198.51.100.7" and stored.opened_user_agent == ("Phone/1 " + "x" * 400)[:300]
    first = stored.opened_at
    assert first is not None

    other = ctx_for(None)
    other.ip, other.user_agent = "203.0.113.9", "Other/2"
    again = signing.open_signing_link(other, token)
    with statements(session) as seen:
        assert signing.record_link_opened(other, again) is False
    assert not [s for s in seen if s.startswith(("UPDATE", "INSERT", "DELETE"))]
    session.expire_all()
    stored = session.get(SigningRequest, link_id)
    assert (stored.opened_at, stored.opened_ip) == (first, "198.51.100.7")


def test_two_first_openings_at_once_leave_the_earlier_one(ctx_for, staff, session):
    link_id, token = _open_link(ctx_for, staff, session)
    a, b = ctx_for(None), ctx_for(None)
    a.ip, b.ip = "192.0.2.1", "192.0.2.2"
    # Both read the link before either recorded the opening (two tabs at once).
    seen_by_a = signing.open_signing_link(a, token)
    session.expunge(seen_by_a)
    seen_by_b = signing.open_signing_link(b, token)
    assert seen_by_a.opened_at is None and seen_by_b.opened_at is None
    assert signing.record_link_opened(b, seen_by_b) is True
    # A's conditional update finds the opening recorded already and changes nothing.
    assert signing.record_link_opened(a, seen_by_a) is False
    session.expire_all()
    assert session.get(SigningRequest, link_id).opened_ip == "192.0.2.2"
