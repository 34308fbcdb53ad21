"""The issue's own measurement, with real processes: gunicorn with two workers on one
database, 2,000 guessed signing tokens over many connections. Before the shared store this
gave 20 refusals before 429 (10 per worker) and then locked the participant's valid link
from that address; now the limit counts once and the valid link still opens."""
from __future__ import annotations

import os
import secrets
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from returnprog.services import cases as case_service

from ..conftest import intake
from ..web_client import web_for
from .test_signing_support import adults_of, create_link

ROOT = Path(__file__).resolve().parents[2]
SHIM = """\
from returnprog import create_app
app = create_app({{"DATABASE_URL": {url!r}, "SECRET_KEY": "test-secret"}})
app.instance_path = {instance!r}
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=30) as resp:
            return resp.status
    except urllib.error.HTTPError as exc:
        return exc.code


@pytest.fixture
def gunicorn(db_url, tmp_path):
    """gunicorn --workers 2 serving the test database; yields (base URL, access log)."""
    (tmp_path / "limits_wsgi.py").write_text(SHIM.format(url=db_url,
                                                         instance=str(tmp_path / "instance")))
    port, log = _free_port(), tmp_path / "access.log"
    env = {**os.environ, "PYTHONPATH": f"{tmp_path}{os.pathsep}{ROOT}"}
    proc = subprocess.Popen(
        [str(Path(sys.executable).with_name("gunicorn")), "--workers", "2",
         "--bind", f"127.0.0.1:{port}", "--access-logfile", str(log),
         "--access-logformat", "%(p)s %(s)s", "limits_wsgi:app"],
        cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                _status(base + "/verify")
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("gunicorn did not start")
                time.sleep(0.2)
        yield base, log
    finally:
        proc.terminate()
        proc.wait(timeout=30)


@pytest.mark.slow
def test_two_gunicorn_workers_count_guesses_once_and_the_valid_link_still_opens(
        app, staff, ctx_for, gunicorn):
    base, log = gunicorn
    reference = case_service.open_case(ctx_for(staff.counsellor), intake(1, 0)).reference
    genuine = create_link(web_for(app, staff.counsellor), reference,
                          adults_of(app, reference)[0].id)
    limit = app.config["SIGNING_FAILURE_LIMIT"]

    with ThreadPoolExecutor(max_workers=8) as pool:
        statuses = list(pool.map(lambda _: _status(f"{base}/s/{secrets.token_urlsafe(32)}"),
                                 range(2000)))
    assert statuses.count(410) == limit
    assert statuses.count(429) == 2000 - limit
    # The participant, from the same address, right after: their link opens.
    assert _status(base + genuine) == 200
    time.sleep(0.5)  # let the workers flush their access lines
    workers = {line.split()[0] for line in log.read_text().splitlines() if line.strip()}
    assert len(workers) == 2, "both workers must have served guesses"
