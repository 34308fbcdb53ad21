"""The pure parts of signer verification: the SMS interface (the file sink, and the Twilio
adapter with Twilio's HTTP layer replaced by a fake — no network), the masks shown for
contacts, the code hash, the sealed outbox marker, and the policy data per document kind."""
from __future__ import annotations

import json
import os

import pytest
from twilio.http import HttpClient
from twilio.http.response import Response

from returnprog import sms
from returnprog.policy import load_policy
from returnprog.services import signing_codes


class FakeTwilioHttp(HttpClient):
    """Twilio's HTTP layer, answering from a script and keeping each request."""

    def __init__(self, status=201, body=None, error: Exception | None = None):
        super().__init__(logger=__import__("logging").getLogger("fake-twilio"), is_async=False)
        self.status, self.error = status, error
        self.body = body or {"sid": "SM" + "0" * 32, "status": "queued"}
        self.requests = []

    def request(self, method, uri, params=None, data=None, headers=None, auth=None,
                timeout=None, allow_redirects=False):
        self.requests.append({"method": method, "uri": uri, "data": dict(data or {}),
                              "auth": auth})
        if self.error is not None:
            raise self.error
        return Response(self.status, json.dumps(self.body))


def _twilio(http, sender="+3197010000000"):
    from twilio.rest import Client

    return sms.TwilioSms("AC" + "1" * 32, "token", sender,
                         client=Client("AC" + "1" * 32, "token", http_client=http))


def test_twilio_adapter_posts_the_message_to_the_messages_resource():
    http = FakeTwilioHttp()
    adapter = _twilio(http)
    assert isinstance(adapter, sms.SmsSender)
    adapter.send("+31612345678", "123456 is your code")
    (req,) = http.requests
    assert req["method"] == "POST"
    assert req["uri"].endswith(f"/2010-04-01/Accounts/AC{'1' * 32}/Messages.json")
    assert req["data"] == {"To": "+31612345678", "Body": "123456 is your code",
                           "From": "+3197010000000"}
    assert req["auth"] == ("AC" + "1" * 32, "token")


def test_twilio_adapter_can_send_from_a_messaging_service():
    http = FakeTwilioHttp()
    _twilio(http, sender="MG" + "2" * 32).send("+31612345678", "x")
    assert http.requests[0]["data"]["MessagingServiceSid"] == "MG" + "2" * 32
    assert "From" not in http.requests[0]["data"]


def test_twilio_refusals_and_network_errors_are_sms_errors_without_number_or_text():
    refused = FakeTwilioHttp(status=400, body={"code": 21211, "message": "Invalid 'To'",
                                               "status": 400})
    with pytest.raises(sms.SmsError) as err:
        _twilio(refused).send("+31612345678", "123456 secret")
    assert "400" in str(err.value)
    assert "+31612345678" not in str(err.value) and "123456" not in str(err.value)
    down = FakeTwilioHttp(error=ConnectionError("connection refused"))
    with pytest.raises(sms.SmsError):
        _twilio(down).send("+31612345678", "123456")


def test_the_sender_follows_the_settings(tmp_path):
    sink = sms.sender_from_config({}, str(tmp_path))
    assert isinstance(sink, sms.FileSmsSink) and sink.directory == tmp_path / "sms"
    twilio = sms.sender_from_config({"SMS_BACKEND": "twilio", "TWILIO_ACCOUNT_SID": "AC" + "1" * 32,
                                     "TWILIO_AUTH_TOKEN": "t", "TWILIO_FROM": "+3197010000000"},
                                    str(tmp_path))
    assert isinstance(twilio, sms.TwilioSms)
    with pytest.raises(ValueError):
        sms.sender_from_config({"SMS_BACKEND": "carrier-pigeon"}, str(tmp_path))


def test_the_file_sink_keeps_private_files_in_order(tmp_path):
    sink = sms.FileSmsSink(tmp_path / "sms")
    sink.send("+31611111111", "первое")
    sink.send("+31622222222", "second")
    assert [m["text"] for m in sink.messages()] == ["первое", "second"]
    for path in (tmp_path / "sms").iterdir():
        assert os.stat(path).st_mode & 0o777 == 0o600 and path.suffix == ".json"


def test_masks_show_enough_to_recognise_and_no_more():
    assert signing_codes.mask_email("olena.k@example.org") == "o***@example.org"
    assert signing_codes.mask_email("nonsense") == "***"
    assert signing_codes.mask_phone("+31 6 12345678") == "+31 ****5678"
    assert signing_codes.mask_phone("06-12345678") == "06 ****5678"
    assert signing_codes.mask_phone("123") == "****"


def test_code_hashes_depend_on_the_secret_the_link_and_the_code():
    h = signing_codes.code_hash("s" * 32, 7, "123456")
    assert len(h) == 64 and "123456" not in h
    assert h != signing_codes.code_hash("t" * 32, 7, "123456")
    assert h != signing_codes.code_hash("s" * 32, 8, "123456")
    assert h != signing_codes.code_hash("s" * 32, 7, "123457")
    with pytest.raises(ValueError):
        signing_codes.code_hash("", 7, "123456")


def test_a_sealed_code_opens_only_with_the_same_secret():
    marker = signing_codes.seal("s" * 32, "042917")
    assert "042917" not in marker
    assert signing_codes.revealer("s" * 32)(f"Code: {marker}.") == "Code: 042917."
    assert signing_codes.revealer("t" * 32)(f"Code: {marker}.") == "Code: —."
    assert signing_codes.revealer("s" * 32)("no marker") == "no marker"


def test_policy_levels_are_checked_and_merged_over_the_defaults():
    policy = load_policy({"signer_verification": {"addendum": "code"}})
    assert policy.verification_for("addendum") == "code"
    assert policy.verification_for("withdrawal_declaration") == "code"
    assert policy.verification_for("payment_receipt") == "none"
    assert load_policy({"signer_verification": {"departure_agreement": "none"}}) \
        .verification_for("departure_agreement") == "none"
    with pytest.raises(ValueError, match="none, code"):
        load_policy({"signer_verification": {"commitment": "sms"}})
