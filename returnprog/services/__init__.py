"""The service layer: one function per use case, and the only place that commits.

Every function takes a :class:`Context` (session, policy, acting user, client address,
clock) and either commits a complete change with its audit event or raises a
:class:`ServiceError` having changed nothing. The commit boundary is ``uow``; the shared
lookups are ``lookups``; every workflow transition runs through ``transitions``. Views and CLI commands only parse input,
call a service and map its errors.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Callable

from sqlmodel import Session

from ..messages import MESSAGES, Message
from ..policy import Policy
from ..workflow import Refusal


class ServiceError(Exception):
    """Base of the errors a use case reports to its caller.

    ``code`` (class level) is the kind of error the API reports; the message is a code of
    :data:`returnprog.messages.MESSAGES` with ``params``. ``message`` is that message as a
    :class:`~returnprog.messages.Message`: English as a string (the API's text), rendered
    by code in the UI language where people read it.
    """

    status = 400
    code = "error"

    def __init__(self, message_code: "str | Message", details: list | dict | None = None,
                 **params):
        if isinstance(message_code, Message):
            message = message_code
        elif message_code in MESSAGES:
            message = Message(message_code, params)
        else:
            # Text from outside the core (a client re-raising an API answer): kept as it is;
            # tests/test_messages.py keeps such sentences out of returnprog itself.
            message = message_code
        # args hold the Message itself, so a copy of the error (type(e)(*e.args)) keeps it.
        super().__init__(message)
        self.message = message
        self.message_code = getattr(message, "code", None)
        self.params = getattr(message, "params", dict(params))
        self.details = details if details is not None else []


class NotFound(ServiceError):
    """No such object, or the caller may not see it (the two are not distinguished)."""

    status, code = 404, "not_found"


class Forbidden(ServiceError):
    """The caller's role may not do this."""

    status, code = 403, "forbidden"


class Conflict(ServiceError):
    """The case's state or a guard refuses the change; details list what is missing."""

    status, code = 409, "conflict"

    @classmethod
    def from_refusals(cls, message_code: "str | Message", refusals: list[Refusal],
                      **params) -> "Conflict":
        """A conflict whose details are the workflow's refusals."""
        return cls(message_code, [r.as_dict() for r in refusals], **params)


class Invalid(ServiceError):
    """Input failed validation; details map field names to messages."""

    status, code = 422, "invalid"


# Where a Context leaves its channel on the session, for :func:`returnprog.audit.append`
# (the same name as ``audit.CHANNEL_KEY``; not imported, so that the service package and
# the chain do not import each other).
CHANNEL_KEY = "returnprog.channel"


def _today() -> dt.date:
    return dt.date.today()


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


@dataclass
class Context:
    """Who is acting, through which session, under which policy."""

    session: Session
    policy: Policy
    actor: object  # models.User, or None for system jobs
    ip: str | None = None
    user_agent: str | None = None
    # How the actor reached the service (web, api, cli, job): recorded with each look.
    channel: str = "web"
    # The service's document seal (documents.SealConfig); loaded lazily by the web layer.
    seal: object | None = None
    today: Callable[[], dt.date] = field(default=_today)
    now: Callable[[], dt.datetime] = field(default=_now)

    def __post_init__(self):
        # The audit chain records the channel of every change made through this session
        # (audit.append reads it): the processing log's origin (BIO2), issue 16.
        info = getattr(self.session, "info", None)
        if isinstance(info, dict):
            info[CHANNEL_KEY] = self.channel
