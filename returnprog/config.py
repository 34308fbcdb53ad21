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
    # Text messages (signing codes): "sink" writes each message as a file under
    # SMS_SINK_DIR (None: instance/sms/); "twilio" sends through Twilio's API with
    # TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN and TWILIO_FROM (a number or an MG… service).
    SMS_BACKEND = "sink"
    SMS_SINK_DIR = None
    TWILIO_ACCOUNT_SID = None
    TWILIO_AUTH_TOKEN = None
    TWILIO_FROM = None
    # The address put into links sent out (signing links). Unset: this machine's own
    # address on PORT (see public_base_url), which is right for development only.
    PUBLIC_BASE_URL = None
    # Reverse proxies whose X-Forwarded-For/-Proto are believed: addresses or CIDRs, e.g.
    # ["127.0.0.1"] behind nginx on the same host. Empty: the headers are ignored.
    TRUSTED_PROXIES: list = []
    # Signed checkpoints of the audit chain, outside the database (returnprog.anchor); None
    # means instance/audit-checkpoints.jsonl. In production: storage the database's
    # administrators cannot rewrite.
    AUDIT_CHECKPOINT_PATH = None
    # Webhooks (returnprog.services.webhooks): seconds per HTTP attempt, and whether
    # loopback receivers (http://127.0.0.1:…) are allowed — for tests and `make run` only;
    # otherwise only https URLs on public addresses are.
    WEBHOOK_TIMEOUT = 10
    WEBHOOK_ALLOW_LOOPBACK = False
    # Bank statements (returnprog.services.reconcile): the largest file imported; below the
    # app's MAX_CONTENT_LENGTH, so the request bound already holds the body in.
    STATEMENT_MAX_BYTES = 5_000_000


PREFIX = "RETURNPROG_"
# The Flask instance folder (database, keys, mail, secret key), when not ./instance: lets
# two instances run from one checkout. Read before the app exists, so not a config key.
INSTANCE_PATH_VARIABLE = PREFIX + "INSTANCE_PATH"
DEFAULT_PORT = 5000


def instance_path(environ=None) -> str | None:
    """The instance folder named by ``RETURNPROG_INSTANCE_PATH`` (absolute), or None for
    Flask's default ``instance/`` next to the package."""
    environ = os.environ if environ is None else environ
    value = environ.get(INSTANCE_PATH_VARIABLE)
    return os.path.abspath(value) if value else None


def public_base_url(config, environ=None) -> str:
    """The base of links sent to people: ``PUBLIC_BASE_URL`` when set, else
    ``http://127.0.0.1:$PORT`` (the port ``make run`` serves on, 5000 by default), so that a
    development instance on another port hands out links that work."""
    configured = config.get("PUBLIC_BASE_URL")
    if configured:
        return str(configured).rstrip("/")
    environ = os.environ if environ is None else environ
    return f"http://127.0.0.1:{environ.get('PORT') or DEFAULT_PORT}"


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


def default_sqlite_url(instance_path: str) -> str:
    """The embedded default database: ``instance/returnprog.sqlite``."""
    return f"sqlite:///{os.path.join(instance_path, 'returnprog.sqlite')}"
