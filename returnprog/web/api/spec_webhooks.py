"""The OpenAPI paths of the webhook API (:mod:`.webhooks`). The shared error responses and
the bearer security requirement are added to every operation by ``build_spec``."""
from __future__ import annotations

from apispec import APISpec

from ... import schemas_webhooks as schemas


def add_paths(spec: APISpec) -> None:
    """Subscriptions, the delivery log and redelivery."""
    for name in ("CreateWebhookSchema", "WebhookOut", "WebhookCreatedOut", "WebhookListOut",
                 "DeliveryOut", "DeliveryListOut"):
        spec.components.schema(name.replace("Schema", ""), schema=getattr(schemas, name))

    def body(schema):
        return {"content": {"application/json": {"schema": schema}}}

    def integer(name):
        return {"name": name, "in": "path", "required": True,
                "schema": {"type": "integer", "minimum": 1, "maximum": 2**31 - 1}}

    hook, delivery = integer("webhook_id"), integer("delivery_id")
    tags = ["webhooks"]
    spec.path(path="/api/v1/webhooks", operations={
        "get": {"operationId": "list_webhooks", "tags": tags,
                "summary": "List your webhook subscriptions (an admin: everyone's)",
                "responses": {"200": {"description": "the subscriptions",
                                      **body("WebhookListOut")}}},
        "post": {"operationId": "create_webhook", "tags": tags,
                 "summary": "Subscribe to event types; the secret is shown this once",
                 "requestBody": {"required": True, **body("CreateWebhook")},
                 "responses": {"201": {"description": "the subscription and its secret",
                                       **body("WebhookCreatedOut")}}}})
    spec.path(path="/api/v1/webhooks/{webhook_id}", operations={
        "get": {"operationId": "get_webhook", "tags": tags, "parameters": [hook],
                "summary": "Read a subscription",
                "responses": {"200": {"description": "the subscription", **body("WebhookOut")}}},
        "delete": {"operationId": "delete_webhook", "tags": tags, "parameters": [hook],
                   "summary": "End a subscription (queued deliveries are cancelled)",
                   "responses": {"200": {"description": "the ended subscription",
                                         **body("WebhookOut")}}}})
    spec.path(path="/api/v1/webhooks/{webhook_id}/deliveries", operations={
        "get": {"operationId": "list_webhook_deliveries", "tags": tags, "parameters": [hook],
                "summary": "The delivery log: the latest 100 deliveries with their attempts",
                "responses": {"200": {"description": "the deliveries, newest first",
                                      **body("DeliveryListOut")}}}})
    spec.path(path="/api/v1/webhooks/{webhook_id}/deliveries/{delivery_id}/redeliver",
              operations={"post": {
                  "operationId": "redeliver_webhook", "tags": tags,
                  "parameters": [hook, delivery],
                  "summary": "Send a delivery again under the same webhook-id",
                  "responses": {"202": {"description": "queued", **body("DeliveryOut")}}}})
