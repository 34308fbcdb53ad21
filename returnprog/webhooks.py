"""Webhooks, the parts without a database or Flask: the event catalogue, which audit
actions become which events, the payloads, the URL rules (no server-side request forgery),
and signing and verifying in the style of the Standard Webhooks specification.

**Signing.** Every delivery carries three headers:

- ``webhook-id`` — the delivery's id (``msg_…``), the same on every retry and redelivery,
  so a receiver can recognise a copy;
- ``webhook-timestamp`` — seconds since the epoch when this attempt was signed;
- ``webhook-signature`` — ``v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">`` with
  the subscription's secret (``whsec_<base64>``; the HMAC key is the base64-decoded part).

:func:`verify` is the receiver's recipe (docs/webhooks.md): recompute, compare in constant
time, and refuse a timestamp further than five minutes from the receiver's clock — a
replayed old delivery fails even with its genuine signature.

**Payloads carry no personal data**: the event type, its id and time, the case reference
and states, kinds and ids. The integrator reads details through the API with its token,
under the same permissions as any read.
"""
from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import ipaddress
import json
import secrets
import socket
from dataclasses import dataclass
from typing import Callable, Mapping
from urllib.parse import urlsplit

SECRET_PREFIX = "whsec_"
SIGNATURE_VERSION = "v1"
TOLERANCE = dt.timedelta(minutes=5)


@dataclass(frozen=True)
class EventType:
    """One event an integrator can subscribe to: its name, what it means, the fields of
    its ``data``."""

    name: str
    description: str
    data: tuple[str, ...]


# The catalogue (data; docs/webhooks.md and the API's 422 list it).
CATALOGUE: dict[str, EventType] = {e.name: e for e in (
    EventType("case.state_changed", "A workflow action moved the case (also when it opened "
              "it: from is null).", ("case", "action", "from", "to")),
    EventType("document.signed", "A participant signed a document (tablet or link).",
              ("case", "document_id", "kind", "version", "participant_id", "channel")),
    EventType("signing_link.declined", "A participant declined to sign through their link.",
              ("case", "signing_request_id", "kind", "participant_id")),
    EventType("signing_link.expired", "A signing link's expiry passed without it being used "
              "or withdrawn (sent once per link).",
              ("case", "signing_request_id", "kind", "participant_id")),
    EventType("payment.approved", "A supervisor approved the proposed travel support.",
              ("case", "payment_id")),
    EventType("payment.disbursed", "Finance paid out the travel support.",
              ("case", "payment_id", "method")),
    EventType("payment.booked", "The bank booked the transfer (bank-statement import).",
              ("case", "payment_id")),
    EventType("payment.returned", "The bank returned the transfer (bank-statement import).",
              ("case", "payment_id", "return_reason")),
)}
EVENT_TYPES = tuple(CATALOGUE)


def _ids(*names: str) -> Callable[[Mapping], dict]:
    return lambda details: {n: details.get(n) for n in names}


# Audit action → (event type, the data taken from the audit details). Every change already
# goes through audit.append in its own transaction, so mapping there emits every event in
# the same transaction as the change, from one place; a new audited action becomes an
# event by one line here. Transitions (any event with a to_state) are case.state_changed.
AUDIT_EVENTS: dict[str, tuple[str, Callable[[Mapping], dict]]] = {
    "sign_document": ("document.signed", _ids("document_id", "kind", "version",
                                              "participant_id", "channel")),
    "signing_declined": ("signing_link.declined", _ids("signing_request_id", "kind",
                                                       "participant_id")),
    "approve_payment": ("payment.approved", _ids("payment_id")),
    "pay_support": ("payment.disbursed", _ids("payment_id", "method")),
    "release_payment": ("payment.disbursed", _ids("payment_id", "method")),
    "book_payment": ("payment.booked", _ids("payment_id")),
    "return_payment": ("payment.returned", _ids("payment_id", "return_reason")),
}


def events_for_audit(action: str, from_state: str | None, to_state: str | None,
                     details: Mapping) -> list[tuple[str, dict]]:
    """The webhook events (type, data without the case) an audit event stands for."""
    out = []
    if to_state is not None:
        out.append(("case.state_changed", {"action": action, "from": from_state,
                                           "to": to_state}))
    mapped = AUDIT_EVENTS.get(action)
    if mapped is not None:
        out.append((mapped[0], mapped[1](details)))
    return out


def new_event_id() -> str:
    """A fresh event id (one per event, shared by the deliveries to every subscriber)."""
    return "evt_" + secrets.token_hex(12)


def new_message_id() -> str:
    """A fresh delivery id (the ``webhook-id`` header), one per event and subscription."""
    return "msg_" + secrets.token_hex(12)


def payload(event_type: str, event_id: str, at: dt.datetime, reference: str,
            data: Mapping) -> str:
    """The JSON body of an event: ``{"id", "type", "timestamp", "data": {"case", …}}``."""
    return json.dumps({"id": event_id, "type": event_type,
                       "timestamp": at.astimezone(dt.timezone.utc).isoformat(
                           timespec="seconds").replace("+00:00", "Z"),
                       "data": {"case": reference, **data}},
                      separators=(",", ":"), sort_keys=False, default=str)


# --- secrets and signatures ---------------------------------------------------------------------

def new_secret() -> str:
    """A new signing secret, ``whsec_`` + base64 of 32 random bytes."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def _key(secret: str) -> bytes:
    raw = secret[len(SECRET_PREFIX):] if secret.startswith(SECRET_PREFIX) else secret
    return base64.b64decode(raw)


def sign(secret: str, message_id: str, timestamp: int, body: str | bytes) -> str:
    """The ``webhook-signature`` value: ``v1,<base64 HMAC-SHA256("{id}.{ts}.{body}")>``."""
    body = body.decode() if isinstance(body, bytes) else body
    mac = hmac.new(_key(secret), f"{message_id}.{timestamp}.{body}".encode(), hashlib.sha256)
    return f"{SIGNATURE_VERSION},{base64.b64encode(mac.digest()).decode()}"


def headers(secret: str, message_id: str, timestamp: int, body: str) -> dict[str, str]:
    """The headers of one delivery attempt."""
    return {"webhook-id": message_id, "webhook-timestamp": str(timestamp),
            "webhook-signature": sign(secret, message_id, timestamp, body),
            "content-type": "application/json", "user-agent": "returnprog-webhooks/1"}


class VerificationError(Exception):
    """The delivery is not authentic or not fresh; the message says which."""


def verify(secret: str, headers: Mapping[str, str], body: str | bytes,
           now: dt.datetime | None = None, tolerance: dt.timedelta = TOLERANCE) -> dict:
    """The receiver's check: the three headers present, the timestamp within ``tolerance``
    of ``now`` (a replay of an old delivery fails), and one of the space-separated ``v1``
    signatures equal (constant time) to the HMAC of ``"{id}.{timestamp}.{body}"``. Returns
    the parsed JSON body; raises :class:`VerificationError`."""
    lower = {k.lower(): v for k, v in headers.items()}
    message_id, stamp, signatures = (lower.get("webhook-id"), lower.get("webhook-timestamp"),
                                     lower.get("webhook-signature"))
    if not (message_id and stamp and signatures):
        raise VerificationError("missing webhook-id, webhook-timestamp or webhook-signature")
    try:
        timestamp = int(stamp)
    except ValueError:
        raise VerificationError("webhook-timestamp is not a whole number of seconds") from None
    now = now or dt.datetime.now(dt.timezone.utc)
    if abs(now.timestamp() - timestamp) > tolerance.total_seconds():
        raise VerificationError("webhook-timestamp is outside the tolerance (replay?)")
    expected = sign(secret, message_id, timestamp, body).split(",", 1)[1]
    for candidate in signatures.split():
        version, _, value = candidate.partition(",")
        if version == SIGNATURE_VERSION and hmac.compare_digest(value, expected):
            return json.loads(body)
    raise VerificationError("no valid signature")


# --- URL rules ---------------------------------------------------------------------------------

class UrlRefused(ValueError):
    """The URL may not receive webhooks; ``code`` is the message code of the reason."""

    def __init__(self, code: str):
        super().__init__(code)
        self.code = code


def _addresses(host: str, port: int) -> list[ipaddress._BaseAddress]:
    try:
        return [ipaddress.ip_address(host.strip("[]"))]
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        raise UrlRefused("webhook.url_unresolvable") from None
    return [ipaddress.ip_address(info[4][0].split("%", 1)[0]) for info in infos]


def check_url(url: str, *, allow_loopback: bool = False,
              resolve: Callable[[str, int], list] = _addresses) -> None:
    """Refuse a webhook URL that is not ``https``, carries credentials, or whose host is
    (or resolves to) a private, loopback, link-local or otherwise non-public address — the
    service must not be made to call into its own network. With ``allow_loopback``
    (WEBHOOK_ALLOW_LOOPBACK: tests and development), loopback hosts are allowed, over http
    too. Raises :class:`UrlRefused`; checked at subscription and again at each delivery."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise UrlRefused("webhook.url_invalid") from None
    host = (parts.hostname or "").lower()
    if parts.scheme not in ("https", "http") or not host:
        raise UrlRefused("webhook.url_invalid")
    if parts.username is not None or parts.password is not None:
        raise UrlRefused("webhook.url_credentials")
    addresses = resolve(host, port or (443 if parts.scheme == "https" else 80))
    loopback = bool(addresses) and all(
        a.is_loopback or (a.version == 6 and a.ipv4_mapped and a.ipv4_mapped.is_loopback)
        for a in addresses)
    if loopback and allow_loopback:
        return
    if parts.scheme != "https":
        raise UrlRefused("webhook.url_https")
    if not addresses or any(not a.is_global or a.is_multicast for a in addresses):
        raise UrlRefused("webhook.url_private")
