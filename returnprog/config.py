"""Configuration: defaults here, then ``instance/config.py``, then ``RETURNPROG_*``
environment variables, then the ``config`` mapping given to ``create_app`` (tests)."""
from __future__ import annotations

import json
import os


class Defaults:
    """Settings every deployment starts from; safe for development only."""

    # Replaced by a random per-instance key on first run (see ensure_secret_key).
    SECRET_KEY = None
    # None means instance/returnprog.sqlite, resolved when the app is built.
    DATABASE_URL = None
    POLICY: dict = {}
    ENV_NAME = "development"
    SESSION_COOKIE_HTTPONLY = True
    SESSION_COOKIE_SAMESITE = "Lax"
    SESSION_COOKIE_SECURE = False
    MAX_CONTENT_LENGTH = 8 * 1024 * 1024
    API_PAGE_SIZE_MAX = 100
    JSON_SORT_KEYS = False
    # Documents: seal key and certificate; a development seal is generated when unset.
    SEAL_KEY_PATH = None
    SEAL_CERT_PATH = None
    SEAL_KEY_PASSPHRASE = None
    SEAL_TSA_URL = None
    # Mail for reminders; the embedded default is a local sink writing files under instance/.
    SMTP_HOST = "127.0.0.1"
    SMTP_PORT = 8025
    SMTP_TLS = "none"  # none | starttls | ssl
    SMTP_USERNAME = None
    SMTP_PASSWORD = None
    MAIL_FROM = "returnprog@dtenv.example"
    PUBLIC_BASE_URL = "http://127.0.0.1:5000"
    # Signed checkpoints of the audit chain, outside the database (returnprog.anchor); None
    # means instance/audit-checkpoints.jsonl. In production: storage the database's
    # administrators cannot rewrite.
    AUDIT_CHECKPOINT_PATH = None


PREFIX = "RETURNPROG_"


def env_overrides(environ=None) -> dict:
    """``RETURNPROG_X=value`` becomes ``X``; values that parse as JSON are taken as JSON
    (numbers, booleans, objects), anything else as a plain string."""
    environ = os.environ if environ is None else environ
    out = {}
    for key, raw in environ.items():
        if key.startswith(PREFIX) and len(key) > len(PREFIX):
            try:
                out[key[len(PREFIX):]] = json.loads(raw)
            except ValueError:
                out[key[len(PREFIX):]] = raw
    return out
