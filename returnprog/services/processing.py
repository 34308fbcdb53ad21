"""Reading the processing log (issue 16 item 5, :mod:`returnprog.processing_log`) for the
records roles: one participant's (beside their access request) and one staff member's
(what the security officer asks: what did this account read and change). A read of the
participant's log is itself a look at their case (access log, never the audit chain)."""
from __future__ import annotations

import datetime as dt

from sqlalchemy import func, select

from .. import processing_log
from ..messages import M
from ..models import AccessRequest, Participant, User
from ..policy import TIMEZONE
from ..roles import RECORDS_ROLES
from . import Context, Forbidden, Invalid, NotFound
from .access import record_look
from .uow import atomic

PER_PAGE = 50

__all__ = ["participant_log", "require_reader", "staff_log"]


def require_reader(ctx: Context) -> None:
    """Forbidden unless the caller has a records role (checked before the query is read,
    so another role learns nothing from a validation answer)."""
    if ctx.actor is None or ctx.actor.role not in RECORDS_ROLES:
        raise Forbidden("access_request.role", [{"code": "role",
                                                 "message": M("access_request.role")}])


def _bounds(since: dt.date | None, until: dt.date | None):
    """Whole days in the programme's calendar: ``until`` included."""
    start = dt.datetime.combine(since, dt.time(), TIMEZONE) if since else None
    end = dt.datetime.combine(until + dt.timedelta(days=1), dt.time(), TIMEZONE) \
        if until else None
    return start, end


@atomic
def participant_log(ctx: Context, request_id: int, page: int = 1) -> processing_log.Page:
    """The processing log of the participant of access request ``request_id``."""
    require_reader(ctx)
    row = ctx.session.get(AccessRequest, request_id)
    if row is None:
        raise NotFound("access_request.not_found", id=request_id)
    person = ctx.session.get(Participant, row.participant_id)
    result = processing_log.for_participant(ctx.session, person, page=page, per_page=PER_PAGE)
    record_look(ctx, row.case_id, "access_request", subject=str(row.id))
    return result


@atomic
def staff_log(ctx: Context, query: dict) -> dict:
    """What one staff account (``query["staff"]``: its e-mail address) read and changed,
    within ``since``/``until`` (dates, both included), a page at a time."""
    require_reader(ctx)
    email = query["staff"].strip().lower()
    user = ctx.session.execute(select(User).where(func.lower(User.email) == email)) \
        .scalar_one_or_none()
    if user is None:
        raise Invalid("account.no_such_user", {"staff": [M("account.no_such_user")]})
    since, until = query.get("since"), query.get("until")
    start, end = _bounds(since, until)
    page = processing_log.for_staff(ctx.session, user.id, since=start, until=end,
                                    page=query.get("page", 1), per_page=PER_PAGE)
    ctx.session.commit()  # read only: ends the snapshot
    return {"user": {"id": user.id, "name": user.name, "email": user.email,
                     "role": user.role}, "page": page}
