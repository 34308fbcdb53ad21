"""The core of every workflow transition, in one place.

:func:`run` checks an action against the workflow table, moves the case by compare-and-set
on its version, applies the action's effects and any side effects in the same transaction,
releases the household's V-numbers when the case closes, re-plans reminders, writes the
transition's single audit event and commits. ``cases.perform`` calls it for every action;
the ``pay_support`` disbursement calls it with the payment's compare-and-set as its side
effect, so exactly one of two racing payouts wins and a refused payout changes nothing.
"""
from __future__ import annotations

import datetime as dt
from typing import Callable

from sqlalchemy import delete, update

from .. import audit, records, workflow
from ..messages import M
from ..models import Case, OpenVNumber
from ..workflow import FINAL_STATES
from . import Conflict, Context, Forbidden, NotFound
from . import reminders
from .lookups import gather_facts, load_case
from .uow import BUSY_MESSAGE, atomic, begin_write, commit

# A side effect runs after the case row has moved, inside the transaction; it returns the
# details it adds to the transition's audit event, or raises a ServiceError (all rolled back).
SideEffect = Callable[[Context, Case, dict], dict]

__all__ = ["SideEffect", "run"]


@atomic
def run(ctx: Context, reference: str, action_name: str, payload: dict,
        side_effect: SideEffect | None = None) -> Case:
    """Perform ``action_name`` on case ``reference`` with its validated payload, or raise
    having changed nothing."""
    action = workflow.ACTIONS.get(action_name)
    if action is None or not action.sources:
        raise NotFound("case.no_such_action", name=action_name)
    begin_write(ctx.session)
    case = load_case(ctx, reference)
    refusals = workflow.role_refusals(action, ctx.actor.role)
    if refusals:
        raise Forbidden(refusals[0].message, [r.as_dict() for r in refusals])
    refusals = workflow.check(action_name, gather_facts(ctx, case), ctx.actor.role, payload,
                              ctx.policy)
    if refusals:
        ctx.session.rollback()
        raise Conflict.from_refusals("case.action_not_possible", refusals, action=action.name)
    from_state, version = case.state, case.version
    values = {"state": action.target.value, "version": version + 1, "updated_at": ctx.now(),
              **action.effects(payload)}
    if action.target in FINAL_STATES:
        # The retention term runs from the day the case closed (issue 16).
        values.update(records.archive_fields(ctx.policy.retention_rules, action.target.value,
                                             ctx.today()))
    changed = ctx.session.execute(update(Case).where(
        Case.id == case.id, Case.version == version, Case.state == from_state)
        .values(**values).execution_options(synchronize_session=False)).rowcount
    if changed != 1:
        ctx.session.rollback()
        raise Conflict(BUSY_MESSAGE, [{"code": "stale_version",
                                       "message": M("case.changed_first")}])
    details = side_effect(ctx, case, payload) if side_effect else {}
    if action.target in FINAL_STATES:
        # A closed case no longer blocks a new case for the same people.
        ctx.session.execute(delete(OpenVNumber).where(OpenVNumber.case_id == case.id))
    reminders.on_transition(ctx, case, from_state, action.target.value)
    audit.append(ctx.session, actor=ctx.actor, action=action_name, case_id=case.id,
                 from_state=from_state, to_state=action.target.value,
                 details={**_audit_payload(payload), **details}, ip=ctx.ip)
    commit(ctx)
    ctx.session.refresh(case)
    return case


def _audit_payload(payload: dict) -> dict:
    # The idempotency key is the caller's, not a fact about the case.
    return {k: (v.isoformat() if isinstance(v, (dt.date, dt.datetime)) else v)
            for k, v in payload.items() if k != "idempotency_key"}
