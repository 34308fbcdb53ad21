"""Settings that are fine for development and dangerous in production, checked at start.

Development stays zero-config: a generated seal, a generated secret key, the embedded
SQLite file, the example paying account and a local base URL. In production
(``ENV_NAME = "production"``) each of those is a mistake that would go unnoticed — documents
sealed with a key anyone can make, sessions forgeable or lost at every restart, payment
files naming an example account, signing links pointing at the operator's own machine —
so :func:`production_problems` names every one of them and ``create_app`` refuses to build
the application until they are fixed. Flask-free: it reads a plain configuration mapping.
"""
from __future__ import annotations

from pathlib import Path
from typing import Mapping
from urllib.parse import urlsplit

PRODUCTION = "production"
# Keys that tutorials and examples use; a deployment carrying one of them has no secret.
KNOWN_SECRET_KEYS = frozenset({"dev", "development", "secret", "changeme", "change-me",
                               "please-change-me", "test", "testing", "returnprog"})
MIN_SECRET_KEY_LENGTH = 32
# Kept in step with returnprog.documents (not imported: that module loads WeasyPrint).
DEV_SEAL_COMMON_NAME = "returnprog DEVELOPMENT seal — not for production"
EXAMPLE_DEBTOR_IBAN = "NL91ABNA0417164300"
LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1", "0.0.0.0")


class UnsafeSettings(RuntimeError):
    """The configuration is not safe for production; ``problems`` says why, one sentence
    per setting, each naming the setting to change."""

    def __init__(self, problems: list[str]):
        super().__init__("refusing to start in production:\n" + "\n".join(
            f"  - {p}" for p in problems))
        self.problems = problems


def is_production(config: Mapping) -> bool:
    """True when the configuration says this is the production service."""
    return str(config.get("ENV_NAME") or "").lower() == PRODUCTION


def production_problems(config: Mapping) -> list[str]:
    """Every unsafe setting of a production configuration, one clear sentence each (empty
    when the configuration is safe or is not a production one)."""
    if not is_production(config):
        return []
    return [p for check in (_secret_key, _seal, _database, _debtor, _base_url,
                                    _webhooks)
            if (p := check(config))]


def check(config: Mapping) -> None:
    """Raise :class:`UnsafeSettings` when :func:`production_problems` finds any."""
    problems = production_problems(config)
    if problems:
        raise UnsafeSettings(problems)


def _secret_key(config: Mapping) -> str | None:
    key = config.get("SECRET_KEY")
    if not key:
        return ("SECRET_KEY is not set: without it every worker makes its own key and "
                "sessions break; set a random value of at least "
                f"{MIN_SECRET_KEY_LENGTH} characters (e.g. RETURNPROG_SECRET_KEY)")
    if str(key).strip().lower() in KNOWN_SECRET_KEYS or len(str(key)) < MIN_SECRET_KEY_LENGTH:
        return (f"SECRET_KEY is a default or shorter than {MIN_SECRET_KEY_LENGTH} characters; "
                "set a random value")
    return None


def _seal(config: Mapping) -> str | None:
    key_path, cert_path = config.get("SEAL_KEY_PATH"), config.get("SEAL_CERT_PATH")
    if not key_path or not cert_path:
        return ("SEAL_KEY_PATH and SEAL_CERT_PATH are not set: documents would be sealed with "
                "the generated DEVELOPMENT seal; configure the service's seal key and "
                "certificate")
    for name, path in (("SEAL_KEY_PATH", key_path), ("SEAL_CERT_PATH", cert_path)):
        if not Path(path).is_file():
            return f"{name} names {path}, which is not a readable file"
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    raw = Path(cert_path).read_bytes()
    try:
        cert = (x509.load_pem_x509_certificate(raw) if b"-----BEGIN" in raw
                else x509.load_der_x509_certificate(raw))
    except ValueError:
        return f"SEAL_CERT_PATH names {cert_path}, which is not an X.509 certificate"
    names = [a.value for a in cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)]
    if DEV_SEAL_COMMON_NAME in names:
        return ("SEAL_CERT_PATH is the generated DEVELOPMENT seal certificate; configure the "
                "service's real seal")
    return None


def _database(config: Mapping) -> str | None:
    url = str(config.get("DATABASE_URL") or "sqlite")
    if url.startswith("sqlite") and not config.get("ALLOW_SQLITE_IN_PRODUCTION"):
        return ("DATABASE_URL is SQLite: production runs on PostgreSQL; set DATABASE_URL, or "
                "ALLOW_SQLITE_IN_PRODUCTION = true for a deliberate single-machine set-up")
    return None


def _debtor(config: Mapping) -> str | None:
    debtor = config.get("SEPA_DEBTOR") or {}
    iban = str(debtor.get("iban") or "").replace(" ", "").upper()
    if not iban or iban == EXAMPLE_DEBTOR_IBAN:
        return ("SEPA_DEBTOR is not set or is the example account: payment files would name "
                "an account that is not DTenV's; set name, iban and bic of the paying account")
    return None


def _base_url(config: Mapping) -> str | None:
    url = str(config.get("PUBLIC_BASE_URL") or "")
    if not url:
        return ("PUBLIC_BASE_URL is not set: signing links e-mailed to participants would "
                "point at this machine; set the address participants reach the service at")
    parts = urlsplit(url)
    if parts.scheme != "https" or not parts.hostname or parts.hostname in LOCAL_HOSTS:
        return f"PUBLIC_BASE_URL is {url}: production links must be https:// on a public host"
    return None


def _webhooks(config: Mapping) -> str | None:
    # Loopback receivers are for tests and make run; in production the flag would let any
    # API client make the service post to its own machine's ports (SSRF).
    if config.get("WEBHOOK_ALLOW_LOOPBACK"):
        return ("WEBHOOK_ALLOW_LOOPBACK is true: webhooks could be sent to this machine's own "
                "services; it is for tests and development only")
    return None
