"""The webhook API: subscribing (the secret once, never again), reading and deleting one's
own subscriptions (an admin: everyone's; others' are 404), URL refusals naming the field,
the delivery log and redelivery through the API, and who receives a case's events."""
from __future__ import annotations

import json

from sqlalchemy import select
from sqlmodel import Session

from returnprog.models import AuditEvent, WebhookSubscription
from returnprog.services import outbox
from returnprog.services import webhooks as service

from ..integration.test_webhooks_delivery import Receiver
from .test_api import API, assert_error, field_errors, ok
from .test_api import api  # noqa: F401  (fixture)


def allow_loopback(app):
    app.config["WEBHOOK_ALLOW_LOOPBACK"] = True


def subscribe(api, url="http://127.0.0.1:9/hook", events=("case.state_changed",)):
    return ok(api.post("/webhooks", json={"url": url, "events": list(events)}), 201)


def test_a_subscription_answers_its_secret_once_and_is_stored_without_it(app, api, client):
    allow_loopback(app)
    resp = api.post("/webhooks", json={"url": "http://127.0.0.1:9/hook",
                                       "events": ["case.state_changed", "document.signed"]})
    created = ok(resp, 201)
    assert resp.headers["Location"].endswith(f"/api/v1/webhooks/{created['id']}")
    assert resp.headers["Cache-Control"] == "no-store"
    assert created["secret"].startswith("whsec_")
    assert created["events"] == ["case.state_changed", "document.signed"]
    assert created["user"] == {"id": api.staff.counsellor.id, "name": api.staff.counsellor.name}
    read = ok(api.get(f"/webhooks/{created['id']}"))
    assert "secret" not in read and read["url"] == "http://127.0.0.1:9/hook"
    listed = ok(api.get("/webhooks"))["items"]
    assert [w["id"] for w in listed] == [created["id"]] and "secret" not in listed[0]
    with Session(app.extensions["returnprog.engine"]) as s:
        stored = s.execute(select(WebhookSubscription.secret_encrypted)).scalar_one()
        [event] = s.execute(select(AuditEvent).where(AuditEvent.action == "create_webhook")
                            ).scalars().all()
    assert created["secret"][6:] not in stored and created["secret"] not in event.details


def test_subscriptions_are_their_owners_and_an_admins(app, api):
    allow_loopback(app)
    mine = subscribe(api)
    theirs = subscribe(api.as_("other_counsellor"))
    assert [w["id"] for w in ok(api.get("/webhooks"))["items"]] == [mine["id"]]
    for method, path in (("get", f"/webhooks/{theirs['id']}"),
                         ("get", f"/webhooks/{theirs['id']}/deliveries"),
                         ("delete", f"/webhooks/{theirs['id']}"),
                         ("post", f"/webhooks/{theirs['id']}/deliveries/1/redeliver"),
                         ("get", "/webhooks/999999"), ("get", "/webhooks/99999999999")):
        call = api.client.open(API + path, method=method.upper(), headers=api.headers)
        assert_error(call, 404, "not_found")
    admin = api.as_("admin")
    assert {w["id"] for w in ok(admin.get("/webhooks"))["items"]} == {mine["id"], theirs["id"]}
    ok(admin.client.delete(f"{API}/webhooks/{theirs['id']}", headers=admin.headers))
    assert_error(api.as_("other_counsellor").get(f"/webhooks/{theirs['id']}"), 404)
    assert ok(api.as_("other_counsellor").get("/webhooks"))["items"] == []


def test_urls_into_the_network_are_refused_with_a_422_on_the_url(app, api):
    for url in ("http://127.0.0.1:9/hook",  # loopback not allowed here, and not https
                "https://127.0.0.1/hook", "https://10.0.0.8/hook", "https://[::1]/hook",
                "https://169.254.169.254/latest/meta-data", "https://192.168.1.1/",
                "https://user:pw@93.184.216.34/", "ftp://93.184.216.34/", "not a url"):
        err = assert_error(api.post("/webhooks", json={"url": url,
                                                       "events": ["case.state_changed"]}),
                           422, "invalid")
        assert field_errors(err, "url"), url
    err = assert_error(api.post("/webhooks", json={"url": "https://10.0.0.8/",
                                                   "events": ["case.state_changed"]}), 422)
    assert "private" in json.dumps(err)
    allow_loopback(app)
    err = assert_error(api.post("/webhooks", json={"url": "http://10.0.0.8/",
                                                   "events": ["case.state_changed"]}), 422)
    assert "https" in json.dumps(field_errors(err, "url"))
    assert ok(api.get("/webhooks"))["items"] == []


def test_events_must_come_from_the_catalogue(app, api):
    allow_loopback(app)
    for events in ([], ["case.deleted"], "case.state_changed", None):
        err = assert_error(api.post("/webhooks", json={"url": "http://127.0.0.1:9/",
                                                       "events": events}), 422, "invalid")
        # The whole list (empty, not a list, null) or its refused entry.
        assert {d.get("field") for d in err["details"]} <= {"events", "events.0"}
        assert field_errors(err, *(("events", "0") if events == ["case.deleted"] else ("events",)))
    assert_error(api.post("/webhooks", json={"url": "http://127.0.0.1:9/"}), 422)
    assert_error(api.post("/webhooks"), 415)
    assert_error(api.post("/webhooks", json={"url": "http://127.0.0.1:9/",
                                             "events": ["case.state_changed"], "x": 1}), 422)


def test_the_delivery_log_and_redelivery_through_the_api(app, api):
    allow_loopback(app)
    with Receiver(fail_first=1) as receiver:
        hook = subscribe(api, receiver.url)
        other = subscribe(api.as_("other_counsellor"), receiver.url)
        case = api.create()  # open_case: a case.state_changed for the own team only
        assert ok(api.as_("other_counsellor").get(f"/webhooks/{other['id']}/deliveries")
                  )["items"] == []
        [queued] = ok(api.get(f"/webhooks/{hook['id']}/deliveries"))["items"]
        assert (queued["event"], queued["status"], queued["attempts"]) == (
            "case.state_changed", "pending", [])
        assert queued["next_attempt_at"] is not None
        err = assert_error(api.post(f"/webhooks/{hook['id']}/deliveries/{queued['id']}/redeliver"),
                           409, "conflict")
        engine = app.extensions["returnprog.engine"]
        with Session(engine, expire_on_commit=False) as s:
            service.deliver_due(s, service.HttpSender(5.0),
                                outbox.RetryPolicy(max_attempts=3, base_seconds=0),
                                service.WebhookSettings(5.0, True), secret_key="test-secret")
        [done] = ok(api.get(f"/webhooks/{hook['id']}/deliveries"))["items"]
        assert (done["status"], done["attempt_count"], done["next_attempt_at"]) == (
            "delivered", 2, None)
        assert [a["http_status"] for a in done["attempts"]] == [500, 204]
        assert json.loads(receiver.requests[-1][1])["data"] == {
            "case": case["reference"], "action": "open_case", "from": None, "to": "intake"}
        again = ok(api.post(f"/webhooks/{hook['id']}/deliveries/{done['id']}/redeliver"), 202)
        assert (again["status"], again["webhook_id"]) == ("pending", done["webhook_id"])
        assert_error(api.post(f"/webhooks/{hook['id']}/deliveries/999999/redeliver"), 404)
        assert err


def test_the_openapi_document_describes_every_webhook_route_by_its_view_name(app, client):
    spec = ok(client.get(f"{API}/openapi.json"))
    routes = {(rule.rule.replace("<int:", "{").replace(">", "}"), method.lower()): rule.endpoint
              for rule in app.url_map.iter_rules() if rule.endpoint.startswith("api_webhooks.")
              for method in rule.methods - {"HEAD", "OPTIONS"}}
    assert len(routes) == 6
    for (path, method), endpoint in routes.items():
        operation = spec["paths"][path][method]
        assert operation["operationId"] == endpoint.split(".", 1)[1]
        assert operation["tags"] == ["webhooks"]
    created = spec["components"]["schemas"]["WebhookCreatedOut"]["properties"]
    assert "secret" in created
    assert "secret" not in spec["components"]["schemas"]["WebhookOut"]["properties"]
