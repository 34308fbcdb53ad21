"""Keep personal data out of the logs: signing-link tokens and case-search terms.

A logging filter replaces ``/s/<token>`` with the first characters of the token's SHA-256
(the stored ``token_hash``), so an operator can still correlate, and ``q=<search>`` with
``q=[redacted]`` (searches carry names and V-numbers).
"""
from __future__ import annotations

import hashlib
import logging
import re

_TOKEN_IN_PATH = re.compile(r"(/s/)([A-Za-z0-9_-]{6,})")
_NOT_TOKENS = {"done"}


# Case searches carry names and V-numbers in the query string (``q=``): personal data
# that must not reach the access logs either.
_SEARCH_IN_QUERY = re.compile(r"([?&]q=)[^&\s\"]*")


def _needs_redaction(text: str) -> bool:
    return "/s/" in text or "q=" in text


def redact_tokens(text: str) -> str:
    """``/s/<token>`` becomes ``/s/[h:<first 12 hex of its SHA-256>]``, and a search term
    ``q=…`` becomes ``q=[redacted]``."""
    def hide(match: re.Match) -> str:
        token = match.group(2)
        if token in _NOT_TOKENS:
            return match.group(0)
        return f"{match.group(1)}[h:{hashlib.sha256(token.encode()).hexdigest()[:12]}]"
    return _SEARCH_IN_QUERY.sub(r"\1[redacted]", _TOKEN_IN_PATH.sub(hide, text))


class TokenRedactingFilter(logging.Filter):
    """A logging filter for werkzeug's and gunicorn's access logs (and the app's own):
    signing-link tokens in request lines and paths are replaced by their hash prefix."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            if isinstance(record.msg, str) and _needs_redaction(record.msg):
                record.msg = redact_tokens(record.msg)
            args = record.args
            if isinstance(args, tuple):
                record.args = tuple(redact_tokens(a) if isinstance(a, str) and _needs_redaction(a)
                                    else a for a in args)
            elif isinstance(args, dict):  # gunicorn's access-log atoms
                for key, value in list(args.items()):
                    if isinstance(value, str) and _needs_redaction(value):
                        args[key] = redact_tokens(value)
        except Exception:  # a log line must never break a request
            pass
        return True


REDACTED_LOGGERS = ("werkzeug", "gunicorn.access", "gunicorn.error", "returnprog", "flask.app")


def install_log_filters() -> None:
    """Add the filter to the access and application loggers (once each)."""
    for name in REDACTED_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, TokenRedactingFilter) for f in logger.filters):
            logger.addFilter(TokenRedactingFilter())
