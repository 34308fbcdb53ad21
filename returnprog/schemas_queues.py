"""Marshmallow schemas of the work-queue API (``/api/v1/queues``): the counts of the
caller's queues and the rows of one queue. Output only: the queues take no input besides
their name."""
from __future__ import annotations

from marshmallow import Schema, fields

from .queues import QUEUE_NAMES


class QueueCountsOut(Schema):
    """How many cases wait in each of the caller's queues (the dashboard's counts)."""

    queues = fields.Dict(keys=fields.String(metadata={"enum": list(QUEUE_NAMES)}),
                         values=fields.Integer())


class ReasonOut(Schema):
    """What the workflow says is still missing (a refusal: stable code and English text)."""

    code = fields.String()
    message = fields.String()
    field = fields.String()


class QueueRowOut(Schema):
    """One case in a queue and its next step: a workflow action (``POST
    /api/v1/cases/{reference}/actions/{step}``) or one of the steps around the actions
    (``complete_intake``, ``sign``, ``record_ind``, ``propose_payment``, ``decide_payment``,
    ``case``). Columns a queue does not have are left out."""

    reference = fields.String()
    state = fields.String()
    principal_name = fields.String()
    counsellor = fields.String(metadata={"description": "the counsellor's name"})
    departure_deadline = fields.Date(allow_none=True)
    days_left = fields.Integer(allow_none=True)
    step = fields.String()
    reasons = fields.List(fields.Nested(ReasonOut))
    names = fields.List(fields.String())
    kinds = fields.List(fields.String())
    since = fields.DateTime(allow_none=True)
    days_waiting = fields.Integer(allow_none=True)
    expires_at = fields.DateTime(allow_none=True)
    expiring_soon = fields.Boolean()
    expired = fields.Boolean()
    deadline = fields.Date(metadata={"description": "extensions: the deadline the addenda fix"})
    days_overdue = fields.Integer()
    payment_id = fields.Integer()
    amount_cents = fields.Integer()
    currency = fields.String()
    method = fields.String()
    proposed_by = fields.String()
    proposed_at = fields.DateTime()
    approved_at = fields.DateTime(allow_none=True)
    to_export = fields.Boolean()


class QueueOut(Schema):
    """The rows of one queue."""

    name = fields.String()
    total = fields.Integer()
    items = fields.List(fields.Nested(QueueRowOut))
