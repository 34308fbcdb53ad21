"""The Flask-free webhook core: signatures interoperate with the independent
``standardwebhooks`` library in both directions, the verification recipe refuses what it
must, the URL rules refuse private targets, and audit actions map to the catalogue."""
from __future__ import annotations

import datetime as dt
import ipaddress
import json

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from returnprog import webhooks as core

NOW = dt.datetime(2026, 6, 1, 12, 0, tzinfo=dt.timezone.utc)
BODY = core.payload("case.state_changed", "evt_1", NOW, "VRP-2026-000001",
                    {"action": "confirm_commitment", "from": "intake", "to": "committed"})


def test_our_signature_verifies_with_standardwebhooks_and_theirs_with_our_recipe():
    secret = core.new_secret()
    stamp = int(dt.datetime.now(dt.timezone.utc).timestamp())
    ours = core.headers(secret, "msg_1", stamp, BODY)
    assert Webhook(secret).verify(BODY, ours)["data"]["case"] == "VRP-2026-000001"
    when = dt.datetime.fromtimestamp(stamp, dt.timezone.utc)
    theirs = {"webhook-id": "msg_2", "webhook-timestamp": str(stamp),
              "webhook-signature": Webhook(secret).sign("msg_2", when, BODY)}
    assert core.verify(secret, theirs, BODY)["type"] == "case.state_changed"


def test_the_recipe_refuses_old_and_future_timestamps_bad_signatures_and_missing_headers():
    secret = core.new_secret()
    stamp = int(NOW.timestamp())
    good = core.headers(secret, "msg_1", stamp, BODY)
    assert core.verify(secret, good, BODY, now=NOW + dt.timedelta(minutes=5))
    for moment in (NOW + dt.timedelta(minutes=5, seconds=1), NOW - dt.timedelta(minutes=6)):
        with pytest.raises(core.VerificationError, match="tolerance"):
            core.verify(secret, good, BODY, now=moment)
    with pytest.raises(core.VerificationError, match="signature"):
        core.verify(core.new_secret(), good, BODY, now=NOW)  # another secret
    with pytest.raises(core.VerificationError, match="signature"):
        core.verify(secret, {**good, "webhook-id": "msg_other"}, BODY, now=NOW)
    with pytest.raises(core.VerificationError, match="missing"):
        core.verify(secret, {k: v for k, v in good.items() if k != "webhook-signature"}, BODY,
                    now=NOW)
    with pytest.raises(core.VerificationError, match="whole number"):
        core.verify(secret, {**good, "webhook-timestamp": "soon"}, BODY, now=NOW)
    # Several signatures (a rotated secret) are space-separated: one valid one suffices.
    both = {**good, "webhook-signature": "v1,AAAA " + good["webhook-signature"]}
    assert core.verify(secret, both, BODY, now=NOW)
    with pytest.raises(WebhookVerificationError):
        Webhook(core.new_secret()).verify(BODY, core.headers(secret, "m", int(
            dt.datetime.now(dt.timezone.utc).timestamp()), BODY))


def test_the_payload_has_the_standard_envelope_and_no_room_for_personal_data():
    event = json.loads(BODY)
    assert list(event) == ["id", "type", "timestamp", "data"]
    assert event["timestamp"] == "2026-06-01T12:00:00Z"
    for name, entry in core.CATALOGUE.items():
        assert entry.data[0] == "case"
        assert not {"name", "email", "v_number", "bsn", "iban", "phone"} & set(entry.data), name


def fake_dns(table):
    def resolve(host, port):
        try:
            return [ipaddress.ip_address(host.strip("[]"))]
        except ValueError:
            if host not in table:
                raise core.UrlRefused("webhook.url_unresolvable")
            return [ipaddress.ip_address(a) for a in table[host]]
    return resolve


DNS = fake_dns({"partner.example": ["93.184.216.34"], "inside.example": ["10.1.2.3"],
                "mixed.example": ["93.184.216.34", "192.168.1.5"], "localhost": ["127.0.0.1"]})


@pytest.mark.parametrize("url, code", [
    ("http://partner.example/hook", "webhook.url_https"),
    ("ftp://partner.example/hook", "webhook.url_invalid"),
    ("https:///nohost", "webhook.url_invalid"),
    ("https://user:pw@partner.example/hook", "webhook.url_credentials"),
    ("https://127.0.0.1/hook", "webhook.url_private"),
    ("https://localhost:8443/hook", "webhook.url_private"),
    ("https://10.0.0.8/hook", "webhook.url_private"),
    ("https://172.16.5.4/hook", "webhook.url_private"),
    ("https://192.168.0.1/hook", "webhook.url_private"),
    ("https://169.254.169.254/latest/meta-data", "webhook.url_private"),
    ("https://[::1]/hook", "webhook.url_private"),
    ("https://[fe80::1]/hook", "webhook.url_private"),
    ("https://[fd00::1]/hook", "webhook.url_private"),
    ("https://[::ffff:127.0.0.1]/hook", "webhook.url_private"),
    ("https://0.0.0.0/hook", "webhook.url_private"),
    ("https://100.64.0.1/hook", "webhook.url_private"),
    ("https://inside.example/hook", "webhook.url_private"),
    ("https://mixed.example/hook", "webhook.url_private"),
    ("https://nowhere.example/hook", "webhook.url_unresolvable"),
    ("https://partner.example:99999/hook", "webhook.url_invalid"),
])
def test_urls_that_could_reach_inside_the_network_are_refused(url, code):
    with pytest.raises(core.UrlRefused) as refused:
        core.check_url(url, resolve=DNS)
    assert refused.value.code == code


def test_public_https_is_allowed_and_loopback_only_when_configured():
    core.check_url("https://partner.example/hooks?x=1", resolve=DNS)
    core.check_url("https://93.184.216.34:8443/", resolve=DNS)
    for url in ("http://127.0.0.1:8080/hook", "http://localhost:9/x", "http://[::1]:9/x"):
        with pytest.raises(core.UrlRefused):
            core.check_url(url, resolve=DNS)
        core.check_url(url, allow_loopback=True, resolve=DNS)
    # The exception is loopback only: not the private network, not plain http elsewhere.
    for url, code in (("http://10.0.0.8/x", "webhook.url_https"),
                      ("https://10.0.0.8/x", "webhook.url_private"),
                      ("http://partner.example/x", "webhook.url_https")):
        with pytest.raises(core.UrlRefused) as refused:
            core.check_url(url, allow_loopback=True, resolve=DNS)
        assert refused.value.code == code


def test_audit_actions_map_to_the_catalogue():
    assert core.events_for_audit("confirm_commitment", "intake", "committed", {}) == [
        ("case.state_changed", {"action": "confirm_commitment", "from": "intake",
                                "to": "committed"})]
    assert core.events_for_audit("open_case", None, "intake", {"reference": "x"}) == [
        ("case.state_changed", {"action": "open_case", "from": None, "to": "intake"})]
    assert core.events_for_audit("pay_support", "departure_agreed", "support_paid",
                                 {"payment_id": 7, "method": "cash", "amount_cents": 1}) == [
        ("case.state_changed", {"action": "pay_support", "from": "departure_agreed",
                                "to": "support_paid"}),
        ("payment.disbursed", {"payment_id": 7, "method": "cash"})]
    # Details beyond the catalogue's fields (names, reasons, digests) never get through.
    assert core.events_for_audit("signing_declined", None, None, {
        "signing_request_id": 3, "kind": "commitment", "participant_id": 4,
        "decline_code": "other", "reason_sha256": "ab", "user_agent": "x"}) == [
        ("signing_link.declined", {"signing_request_id": 3, "kind": "commitment",
                                   "participant_id": 4})]
    assert core.events_for_audit("add_case_note", None, None, {"note_id": 1}) == []
    mapped = {event for event, _ in core.AUDIT_EVENTS.values()} | {"case.state_changed"}
    assert mapped | {"signing_link.expired", "payment.booked", "payment.returned"} == set(
        core.EVENT_TYPES)
