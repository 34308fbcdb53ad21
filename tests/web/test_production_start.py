"""A production start with development defaults is refused by the real entry point
(``flask --app wsgi`` and gunicorn import wsgi.py): a message per problem, no traceback,
a non-zero exit — before anything is served or written."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _start(tmp_path, **settings):
    env = {k: v for k, v in os.environ.items() if not k.startswith("RETURNPROG_")}
    env.update({f"RETURNPROG_{k}": v for k, v in settings.items()})
    env["RETURNPROG_INSTANCE_PATH"] = str(tmp_path / "instance")
    return subprocess.run([sys.executable, "-m", "flask", "--app", "wsgi", "init-db"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)


def test_a_bare_production_start_is_refused_naming_every_setting(tmp_path):
    db = tmp_path / "never-created.sqlite"
    done = _start(tmp_path, ENV_NAME="production", DATABASE_URL=f"sqlite:///{db}")
    assert done.returncode != 0
    assert "Traceback" not in done.stderr
    assert "refusing to start in production" in done.stderr
    for setting in ("SECRET_KEY is not set", "SEAL_KEY_PATH and SEAL_CERT_PATH are not set",
                    "DATABASE_URL is SQLite", "SEPA_DEBTOR", "PUBLIC_BASE_URL"):
        assert setting in done.stderr
    assert not db.exists()


def test_development_starts_with_no_settings_at_all(tmp_path):
    db = tmp_path / "dev.sqlite"
    done = _start(tmp_path, DATABASE_URL=f"sqlite:///{db}")
    assert done.returncode == 0, done.stderr
    assert db.exists()
