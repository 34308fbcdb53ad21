"""JSON API for webhook subscriptions, under /api/v1: subscribe (the secret is answered
once), list, read and delete subscriptions, read the delivery log and redeliver.

Events, payloads, signatures and the receiver's verification: docs/webhooks.md.
"""
from __future__ import annotations

from flask import Blueprint, current_app, jsonify, url_for

from ... import schemas_webhooks as schemas
from ...dumping import dump
from ...services import webhooks as webhook_service
from .common import api_ctx, authenticate, json_body, load

bp = Blueprint("api_webhooks", __name__, url_prefix="/api/v1")
bp.before_request(authenticate)


@bp.post("/webhooks")
def create_webhook():
    """Subscribe to event types at an https URL; the answer carries the signing secret,
    the only time it is shown."""
    data = load(schemas.CreateWebhookSchema, json_body())
    sub, secret = webhook_service.create(
        api_ctx(), data["url"], data["events"], secret_key=current_app.config["SECRET_KEY"],
        allow_loopback=bool(current_app.config.get("WEBHOOK_ALLOW_LOOPBACK")))
    resp = jsonify(dump(schemas.WebhookCreatedOut, {**sub, "secret": secret}))
    resp.status_code = 201
    resp.headers["Location"] = url_for("api_webhooks.get_webhook", webhook_id=sub["id"])
    return resp


@bp.get("/webhooks")
def list_webhooks():
    """The caller's subscriptions (an administrator's: everyone's)."""
    return jsonify(dump(schemas.WebhookListOut,
        {"items": webhook_service.list_subscriptions(api_ctx())}))


@bp.get("/webhooks/<int:webhook_id>")
def get_webhook(webhook_id: int):
    """One subscription of the caller's."""
    return jsonify(dump(schemas.WebhookOut,
        webhook_service.get_subscription(api_ctx(), webhook_id)))


@bp.delete("/webhooks/<int:webhook_id>")
def delete_webhook(webhook_id: int):
    """End a subscription; what was still queued for it is not sent."""
    return jsonify(dump(schemas.WebhookOut, webhook_service.delete(api_ctx(), webhook_id)))


@bp.get("/webhooks/<int:webhook_id>/deliveries")
def list_webhook_deliveries(webhook_id: int):
    """The subscription's delivery log, newest first, with every attempt."""
    return jsonify(dump(schemas.DeliveryListOut,
        {"items": webhook_service.deliveries(api_ctx(), webhook_id)}))


@bp.post("/webhooks/<int:webhook_id>/deliveries/<int:delivery_id>/redeliver")
def redeliver_webhook(webhook_id: int, delivery_id: int):
    """Queue a delivery again under the same webhook-id."""
    delivery = webhook_service.redeliver(api_ctx(), webhook_id, delivery_id)
    resp = jsonify(dump(schemas.DeliveryOut, delivery))
    resp.status_code = 202
    return resp
