"""Marshmallow schemas of the webhook API (``/api/v1/webhooks``): the subscription a
client sends, and the subscriptions and delivery log it reads back."""
from __future__ import annotations

from marshmallow import Schema, fields, validate

from .schemas import Strict, UserRef
from .webhooks import EVENT_TYPES


class CreateWebhookSchema(Strict):
    """A new subscription: where to POST and which event types."""

    url = fields.String(required=True, validate=validate.Length(min=1, max=2000),
                        metadata={"format": "uri", "example": "https://partner.example/hooks",
                                  "description": "https only; no private, loopback or "
                                                 "link-local hosts"})
    events = fields.List(fields.String(validate=validate.OneOf(EVENT_TYPES)), required=True,
                         validate=validate.Length(min=1, max=len(EVENT_TYPES)))




class WebhookOut(Schema):
    """A subscription (never its secret, except once in :class:`WebhookCreatedOut`)."""

    id = fields.Integer()
    url = fields.String()
    events = fields.List(fields.String(metadata={"enum": list(EVENT_TYPES)}))
    user = fields.Nested(UserRef)
    created_at = fields.DateTime()


class WebhookCreatedOut(WebhookOut):
    """A new subscription with its signing secret, shown this once."""

    secret = fields.String(metadata={"description": "whsec_<base64>: keep it; it is not "
                                                    "shown again", "pattern": "^whsec_"})


class WebhookListOut(Schema):
    """The caller's subscriptions (an administrator's: everyone's)."""

    items = fields.List(fields.Nested(WebhookOut))


class AttemptOut(Schema):
    """One delivery attempt."""

    at = fields.DateTime()
    http_status = fields.Integer(allow_none=True)
    error = fields.String(allow_none=True)
    duration_ms = fields.Integer()


class DeliveryOut(Schema):
    """One delivery of an event to the subscription, with its attempts."""

    id = fields.Integer()
    webhook_id = fields.String(metadata={"description": "the webhook-id header, the same "
                                                        "on every retry and redelivery"})
    event = fields.String(metadata={"enum": list(EVENT_TYPES)})
    status = fields.String(metadata={"enum": ["pending", "sending", "delivered", "failed",
                                              "cancelled"]})
    created_at = fields.DateTime()
    delivered_at = fields.DateTime(allow_none=True)
    next_attempt_at = fields.DateTime(allow_none=True)
    attempt_count = fields.Integer()
    attempts = fields.List(fields.Nested(AttemptOut))


class DeliveryListOut(Schema):
    """A subscription's delivery log, newest first (the latest 100)."""

    items = fields.List(fields.Nested(DeliveryOut))
