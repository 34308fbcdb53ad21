"""The core refuses a step that cannot be undone when the staff form did not confirm it
(``cases.perform(..., confirmed=False)``); the API, which has no confirmation step, calls
it with ``confirmed=None``. Refused means nothing changed: no state, no audit event."""
from __future__ import annotations

import pytest
from sqlalchemy import func, select

from returnprog.models import AuditEvent, Case
from returnprog.services import Invalid
from returnprog.services import cases as case_service

from ..conftest import drive_to


def _events(session) -> int:
    return session.execute(select(func.count()).select_from(AuditEvent)).scalar_one()


@pytest.mark.parametrize("confirmed, moves", [(False, False), (True, True), (None, True)])
def test_leaving_needs_the_forms_confirmation(ctx_for, staff, session, confirmed, moves):
    case = drive_to(ctx_for, staff, session, "committed", adults=1, minors=0)
    before = _events(session)
    session.rollback()
    payload = {"reason": "Stays with family"}
    if not moves:
        with pytest.raises(Invalid) as refused:
            case_service.perform(ctx_for(staff.counsellor), case.reference, "leave_programme",
                                 payload, confirmed=confirmed)
        assert [d["code"] for d in refused.value.details] == ["confirmation_missing"]
        assert refused.value.details[0]["field"] == "confirm"
    else:
        case_service.perform(ctx_for(staff.counsellor), case.reference, "leave_programme",
                             payload, confirmed=confirmed)
    session.rollback()
    state = session.execute(select(Case.state).where(Case.id == case.id)).scalar_one()
    assert state == ("left_programme" if moves else "committed")
    assert _events(session) == before + (1 if moves else 0)


def test_a_step_that_can_be_undone_asks_nothing(ctx_for, staff, session):
    from returnprog import workflow
    from ..conftest import fake_sign

    case = drive_to(ctx_for, staff, session, "intake", adults=1, minors=0)
    fake_sign(session, case, workflow.COMMITMENT)
    case_service.perform(ctx_for(staff.counsellor), case.reference, "confirm_commitment", {},
                         confirmed=False)
    session.rollback()
    assert session.execute(select(Case.state).where(Case.id == case.id)).scalar_one() == "committed"
