"""Text messages (SMS) behind one small interface, for the signing codes (Flask-free).

- :class:`SmsSender`: what the core calls, ``send(to, text)``.
- :class:`FileSmsSink` (the default, ``SMS_BACKEND = "sink"``): the local sink, like the
  mail sink: every message becomes a file in ``SMS_SINK_DIR`` (default ``instance/sms/``),
  folder 0700, files 0600, so ``make run`` and the tests can read what was "sent".
- :class:`TwilioSms` (``SMS_BACKEND = "twilio"``): Twilio's REST API through its kept
  client library (``twilio`` on PyPI), only imported when configured; settings
  ``TWILIO_ACCOUNT_SID``, ``TWILIO_AUTH_TOKEN`` and ``TWILIO_FROM`` (a number or a
  messaging service SID ``MG…``).

No module here logs a number or a text: a message is a one-time code.
"""
from __future__ import annotations

import datetime as dt
import json
import os
import secrets
from pathlib import Path
from typing import Protocol, runtime_checkable

from .files import private_dir, write_private


class SmsError(Exception):
    """The text message could not be handed over (the page asks to try e-mail or later)."""


@runtime_checkable
class SmsSender(Protocol):
    """Sends one text message to one phone number (E.164 or as registered)."""

    def send(self, to: str, text: str) -> None:
        """Hand ``text`` over for ``to``; raises :class:`SmsError` when that failed."""


class FileSmsSink:
    """The local SMS sink: one JSON file per message (``to``, ``text``, ``sent_at``) named
    ``<UTC time>-<8 hex>.json`` so that names sort chronologically."""

    def __init__(self, directory: str | os.PathLike):
        self.directory = Path(directory)

    def send(self, to: str, text: str) -> None:
        """Write the message as a file (atomically: a ``.tmp`` name, then renamed)."""
        try:
            private_dir(self.directory)
            now = dt.datetime.now(dt.timezone.utc)
            name = f"{now:%Y%m%dT%H%M%S%fZ}-{secrets.token_hex(4)}.json"
            tmp = self.directory / (name + ".tmp")
            write_private(tmp, json.dumps({"to": to, "text": text, "sent_at": now.isoformat()},
                                          ensure_ascii=False))
            os.replace(tmp, self.directory / name)
        except OSError as exc:
            raise SmsError(f"the SMS sink could not store the message: {type(exc).__name__}") from exc

    def messages(self) -> list[dict]:
        """Every message in the sink, oldest first (for tests and the demo)."""
        if not self.directory.is_dir():
            return []
        return [json.loads(p.read_text(encoding="utf-8"))
                for p in sorted(self.directory.glob("*.json"))]


class TwilioSms:
    """Twilio's Programmable Messaging through the ``twilio`` client library. ``client``
    may be given (tests pass one whose HTTP layer is a fake); else it is built from the
    account SID and auth token."""

    def __init__(self, account_sid: str, auth_token: str, sender: str, *, client=None,
                 timeout: float = 10.0):
        if client is None:
            from twilio.http.http_client import TwilioHttpClient
            from twilio.rest import Client

            client = Client(account_sid, auth_token,
                            http_client=TwilioHttpClient(timeout=timeout))
        self.client = client
        self.sender = sender

    def send(self, to: str, text: str) -> None:
        """Create the message at Twilio; any refusal or network error is an SmsError
        (its text names the status, never the number or the message)."""
        from twilio.base.exceptions import TwilioException

        origin = ({"messaging_service_sid": self.sender} if self.sender.startswith("MG")
                  else {"from_": self.sender})
        try:
            self.client.messages.create(to=to, body=text, **origin)
        except TwilioException as exc:
            status = getattr(exc, "status", None)
            raise SmsError(f"Twilio refused the message (HTTP {status})") from exc
        except OSError as exc:
            raise SmsError(f"Twilio could not be reached: {type(exc).__name__}") from exc


def sender_from_config(config, instance_path: str) -> SmsSender:
    """The sender the settings name: ``SMS_BACKEND`` "sink" (default) or "twilio"."""
    backend = (config.get("SMS_BACKEND") or "sink").lower()
    if backend == "sink":
        return FileSmsSink(config.get("SMS_SINK_DIR") or Path(instance_path) / "sms")
    if backend == "twilio":
        return TwilioSms(config["TWILIO_ACCOUNT_SID"], config["TWILIO_AUTH_TOKEN"],
                         config["TWILIO_FROM"],
                         timeout=float(config.get("TWILIO_TIMEOUT", 10.0)))
    raise ValueError(f"unknown SMS_BACKEND {backend!r} (sink or twilio)")
