"""Production refuses development defaults at start, one clear sentence per setting."""
from __future__ import annotations

import datetime as dt

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from returnprog import documents, export, safety


def _cert(tmp_path, common_name: str):
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = dt.datetime.now(dt.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(1)
            .not_valid_before(now).not_valid_after(now + dt.timedelta(days=1))
            .sign(key, hashes.SHA256()))
    key_path, cert_path = tmp_path / "seal.key", tmp_path / "seal.crt"
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return str(key_path), str(cert_path)


@pytest.fixture
def safe(tmp_path):
    key, cert = _cert(tmp_path, "DTenV organisational seal")
    return {"ENV_NAME": "production", "SECRET_KEY": "x" * 48,
            "SEAL_KEY_PATH": key, "SEAL_CERT_PATH": cert,
            "DATABASE_URL": "postgresql+psycopg://returnprog@db/returnprog",
            "SEPA_DEBTOR": {"name": "DTenV", "iban": "NL02ABNA0123456789", "bic": "ABNANL2A"},
            "PUBLIC_BASE_URL": "https://terugkeer.example.nl"}


def test_a_complete_production_configuration_starts(safe):
    assert safety.production_problems(safe) == []
    safety.check(safe)


def test_development_is_zero_config_and_never_refused():
    assert safety.production_problems({"ENV_NAME": "development"}) == []
    assert safety.production_problems({}) == []


@pytest.mark.parametrize("change, setting", [
    ({"SECRET_KEY": None}, "SECRET_KEY is not set"),
    ({"SECRET_KEY": "changeme"}, "SECRET_KEY is a default"),
    ({"SECRET_KEY": "short-but-random"}, "SECRET_KEY is a default or shorter"),
    ({"SEAL_KEY_PATH": None}, "SEAL_KEY_PATH and SEAL_CERT_PATH are not set"),
    ({"SEAL_CERT_PATH": "/nonexistent/seal.crt"}, "SEAL_CERT_PATH names /nonexistent/seal.crt"),
    ({"DATABASE_URL": "sqlite:////srv/returnprog.sqlite"}, "DATABASE_URL is SQLite"),
    ({"DATABASE_URL": None}, "DATABASE_URL is SQLite"),
    ({"SEPA_DEBTOR": None}, "SEPA_DEBTOR is not set or is the example account"),
    ({"SEPA_DEBTOR": {"name": "x", "iban": "NL91 ABNA 0417 1643 00"}}, "SEPA_DEBTOR"),
    ({"PUBLIC_BASE_URL": None}, "PUBLIC_BASE_URL is not set"),
    ({"PUBLIC_BASE_URL": "http://127.0.0.1:5000"}, "PUBLIC_BASE_URL is http://127.0.0.1:5000"),
    ({"PUBLIC_BASE_URL": "http://terugkeer.example.nl"}, "must be https://"),
    ({"WEBHOOK_ALLOW_LOOPBACK": True}, "WEBHOOK_ALLOW_LOOPBACK is true"),
])
def test_each_unsafe_setting_is_refused_with_a_sentence_naming_it(safe, change, setting):
    problems = safety.production_problems({**safe, **change})
    assert len(problems) == 1 and setting in problems[0]
    with pytest.raises(safety.UnsafeSettings) as refused:
        safety.check({**safe, **change})
    assert setting in str(refused.value)


def test_the_development_seal_certificate_is_refused_even_when_configured(safe, tmp_path):
    key, cert = _cert(tmp_path, documents.DEV_SEAL_COMMON_NAME)
    problems = safety.production_problems({**safe, "SEAL_KEY_PATH": key, "SEAL_CERT_PATH": cert})
    assert problems == ["SEAL_CERT_PATH is the generated DEVELOPMENT seal certificate; "
                        "configure the service's real seal"]


def test_sqlite_in_production_only_when_explicitly_allowed(safe):
    chosen = {**safe, "DATABASE_URL": "sqlite:////srv/r.sqlite", "ALLOW_SQLITE_IN_PRODUCTION": True}
    assert safety.production_problems(chosen) == []


def test_every_problem_of_a_bare_production_start_is_named_at_once():
    problems = safety.production_problems({"ENV_NAME": "production"})
    assert [p.split(" ")[0] for p in problems] == [
        "SECRET_KEY", "SEAL_KEY_PATH", "DATABASE_URL", "SEPA_DEBTOR", "PUBLIC_BASE_URL"]


def test_the_refused_example_account_is_the_one_exports_fall_back_to():
    assert export.debtor_from_config(None).iban == safety.EXAMPLE_DEBTOR_IBAN
