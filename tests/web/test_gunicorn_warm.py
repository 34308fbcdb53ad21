"""gunicorn with the project's settings (returnprog/gunicorn_conf.py), as `make run` and
deploy/ start it, with real processes: the master preloads the app and the rendering
libraries, each worker renders and seals one document before it serves, and a worker
whose warm-up fails still serves."""
from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

SHIM = """
from returnprog import create_app
app = create_app({{"DATABASE_URL": "sqlite:///{db}"{extra}}})
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def start_gunicorn(tmp_path):
    procs = []

    def start(extra: str = "") -> tuple[str, Path, subprocess.Popen]:
        instance = tmp_path / "instance"
        instance.mkdir(mode=0o700, exist_ok=True)
        (tmp_path / "warm_wsgi.py").write_text(
            SHIM.format(db=instance / "test.db", extra=extra))
        port, log = _free_port(), tmp_path / "gunicorn.log"
        env = {**os.environ, "PYTHONPATH": f"{tmp_path}{os.pathsep}{ROOT}",
               "RETURNPROG_INSTANCE_PATH": str(instance)}
        with open(log, "wb") as out:
            proc = subprocess.Popen(
                [str(Path(sys.executable).with_name("gunicorn")),
                 "--config", "python:returnprog.gunicorn_conf", "--workers", "1",
                 "--timeout", "120", "--bind", f"127.0.0.1:{port}", "--no-control-socket",
                 "warm_wsgi:app"],
                cwd=tmp_path, env=env, stdout=out, stderr=subprocess.STDOUT)
        procs.append(proc)
        deadline = time.monotonic() + 180
        while "warm" not in log.read_text(errors="replace") or not _listening(port):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("gunicorn did not start:\n" + log.read_text(errors="replace"))
            time.sleep(0.2)
        return f"http://127.0.0.1:{port}", log, proc

    yield start
    for proc in procs:
        proc.terminate()
        proc.wait(timeout=60)


def _listening(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False


def _status(url: str) -> int:
    with urllib.request.urlopen(url, timeout=60) as response:
        return response.status


def test_each_worker_renders_and_seals_before_serving_and_the_master_loaded_the_libraries(
        start_gunicorn, tmp_path):
    base, log, master = start_gunicorn()
    text = log.read_text()
    assert "warmed up in" in text and "document rendered and sealed" in text, text
    assert _status(base + "/healthz") == 200
    # The rendering libraries were loaded once, in the master, before it forked.
    maps = Path(f"/proc/{master.pid}/maps").read_text()
    assert "libpango" in maps
    # The warm-up used the app's seal: the development seal now exists in instance/.
    assert (tmp_path / "instance" / "seal-key.pem").exists()
    # The libraries, the app and the warm-up's caches are out of the collector's reach:
    # what the master and the warm-up loaded is hundreds of thousands of objects.
    frozen = int(re.search(r"(\d+) long-lived objects kept out of garbage collections",
                           text).group(1))
    assert frozen > 100_000, text


def test_a_worker_whose_warm_up_fails_still_serves(start_gunicorn, tmp_path):
    missing = tmp_path / "no-such-key.pem"
    base, log, _ = start_gunicorn(
        f', "SEAL_KEY_PATH": "{missing}", "SEAL_CERT_PATH": "{missing}"')
    text = log.read_text()
    assert "worker warm-up failed (SealError)" in text, text
    assert str(missing) not in text  # the reason's class, not the configuration's details
    assert _status(base + "/healthz") == 200


def test_a_rate_limit_store_that_cannot_be_made_stops_the_server(start_gunicorn, tmp_path):
    # The app makes the store on first use; the master makes it before forking, so a bad
    # store stops the start instead of failing the first sign-in.
    with pytest.raises(RuntimeError, match="gunicorn did not start"):
        start_gunicorn(', "RATELIMIT_STORAGE_URI": "nosuchstore://x"')
    assert "unknown storage scheme" in (tmp_path / "gunicorn.log").read_text()
