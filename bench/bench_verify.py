"""Does a flood of hostile uploads to /verify slow the rest of the service down? (issue 10)

Run from the project root:  .venv/bin/python bench/bench_verify.py [--requests N]

Starts the app under gunicorn (2 sync workers, as ``make run``; a free port; a temporary
instance folder with its own SQLite file and dev seal), then measures the sign-in page
(``GET /login``, one request at a time, a fresh connection each) twice: idle, and while 4
clients (separate processes) upload the hostile corpus of ``tests/hostile_pdfs.py`` (the
50,000-deep field chain, the object-stream bomb, the huge xref table) to ``/verify`` in a
loop, each answer awaited (``--nice 19`` runs the clients at low priority, as if they
were on other machines; by default they compete for this machine's CPU). Idle and loaded
phases alternate over ``--rounds``. Prints p50/p95 of both, the loaded/idle ratio of the p95 (target: at most 2), and
what the uploaders got back (verdicts, "could not be checked", 503 busy).

The upload rate limit (``VERIFY_RATE_LIMIT``, per client address) is lifted for the run:
all clients come from 127.0.0.1, and the point is what the bounded check costs the other
pages, not that the limiter refuses the flood. The other ``VERIFY_*`` settings are the
defaults unless given with ``--set KEY=VALUE``.
"""
from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.hostile_pdfs import CORPUS  # noqa: E402

WSGI = """\
import sys
sys.path.insert(0, {root!r})
from returnprog import create_app
app = create_app({config!r})
app.instance_path = {instance!r}
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def get(port: int, path: str, headers: dict | None = None) -> tuple[int, dict, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    try:
        conn.request("GET", path, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, dict(resp.getheaders()), resp.read()
    finally:
        conn.close()


def timed_login(port: int) -> float:
    start = time.perf_counter()
    status, _, _ = get(port, "/login")
    elapsed = time.perf_counter() - start
    if status != 200:
        raise SystemExit(f"GET /login answered {status}")
    return elapsed


def uploader(port: int, stop, results, files: list[bytes], nice: int) -> None:
    """One client: fetch the form (cookie + CSRF token), then upload the corpus in a loop."""
    # With --nice, the clients stand in for machines elsewhere, whose CPU would not be
    # the server's (their network traffic still costs it).
    os.nice(nice)
    status, headers, body = get(port, "/verify?lang=en")
    cookie = headers.get("Set-Cookie", "").split(";", 1)[0]
    token = re.search(rb'name="csrf_token" value="([^"]+)"', body).group(1).decode()
    tally: dict[str, int] = {}
    boundary = uuid.uuid4().hex
    # Built once: the clients share the machine with the server, and should cost it as
    # little CPU as a client elsewhere would.
    payloads = [b"".join([
        f"--{boundary}\r\nContent-Disposition: form-data; name=\"csrf_token\"\r\n\r\n"
        f"{token}\r\n".encode(),
        f"--{boundary}\r\nContent-Disposition: form-data; name=\"lang\"\r\n\r\nen\r\n"
        .encode(),
        f"--{boundary}\r\nContent-Disposition: form-data; name=\"pdf\"; "
        f"filename=\"x.pdf\"\r\nContent-Type: application/pdf\r\n\r\n".encode(),
        data, f"\r\n--{boundary}--\r\n".encode()]) for data in files]
    i = 0
    while not stop.is_set():
        payload = payloads[i % len(payloads)]
        i += 1
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        try:
            conn.request("POST", "/verify?lang=en", body=payload, headers={
                "Content-Type": f"multipart/form-data; boundary={boundary}",
                "Cookie": cookie, "Referer": f"http://127.0.0.1:{port}/verify"})
            resp = conn.getresponse()
            text = resp.read()
            if resp.status == 200 and b"could not be checked" in text:
                key = "200 could not be checked"
            elif resp.status == 200:
                key = "200 verdict"
            else:
                key = str(resp.status)
        except (OSError, http.client.HTTPException):
            # Answered 503 and closed before the upload was read (a file larger than any
            # the service issues, while every check slot is taken).
            key = "closed unread (busy)"
        finally:
            conn.close()
        tally[key] = tally.get(key, 0) + 1  # a hostile client ignores Retry-After
    results.put(tally)


def percentiles(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, int(round(0.95 * (len(ordered) - 1))))]
    return statistics.median(ordered), p95


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=200,
                        help="sign-in requests per phase and round")
    parser.add_argument("--clients", type=int, default=4, help="uploading clients")
    parser.add_argument("--rounds", type=int, default=3, help="idle/loaded phase pairs")
    parser.add_argument("--nice", type=int, default=0,
                        help="niceness of the uploading clients (19: as if elsewhere)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="extra app setting (JSON value), e.g. VERIFY_MAX_CONCURRENT=2")
    args = parser.parse_args()

    load_before = f"{os.getloadavg()[0]:.2f}"
    tmp = Path(tempfile.mkdtemp(prefix="bench-verify-"))
    instance = tmp / "instance"
    instance.mkdir()
    url = f"sqlite:///{instance / 'returnprog.sqlite'}"
    config = {"DATABASE_URL": url, "SECRET_KEY": "bench-" + uuid.uuid4().hex,
              "VERIFY_RATE_LIMIT": 10**9}
    for item in args.set:
        key, _, value = item.partition("=")
        try:
            config[key] = json.loads(value)
        except ValueError:
            config[key] = value
    from returnprog import db as dbmod

    dbmod.upgrade(url)
    (tmp / "bench_wsgi.py").write_text(WSGI.format(root=str(ROOT), config=config,
                                                   instance=str(instance)))
    port = free_port()
    log = open(tmp / "gunicorn.log", "wb")
    server = subprocess.Popen(
        [str(ROOT / ".venv/bin/gunicorn"), "--workers", "2", "--bind", f"127.0.0.1:{port}",
         "--chdir", str(tmp), "--timeout", "120", "bench_wsgi:app"],
        stdout=log, stderr=subprocess.STDOUT, cwd=tmp)
    try:
        for _ in range(300):
            try:
                if get(port, "/login")[0] == 200:
                    break
            except OSError:
                time.sleep(0.1)
        else:
            raise SystemExit("gunicorn did not come up; see " + str(tmp / "gunicorn.log"))
        files = [build() for build in CORPUS.values()]
        for _ in range(20):
            timed_login(port)  # warm both workers
        idle, loaded, tallies, duration = [], [], [], 0.0
        ctx = multiprocessing.get_context("fork")
        # Idle and loaded phases alternate, so that a change in what else the machine is
        # doing weighs on both alike.
        for _ in range(args.rounds):
            idle += [timed_login(port) for _ in range(args.requests)]
            stop, results = ctx.Event(), ctx.Queue()
            clients = [ctx.Process(target=uploader, args=(port, stop, results, files, args.nice))
                       for _ in range(args.clients)]
            for client in clients:
                client.start()
            time.sleep(3)  # let the flood build up (fork servers start, slots fill)
            started = time.perf_counter()
            loaded += [timed_login(port) for _ in range(args.requests)]
            duration += time.perf_counter() - started
            stop.set()
            tallies += [results.get(timeout=180) for _ in clients]
            for client in clients:
                client.join(30)
    finally:
        server.terminate()
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()

    uploads: dict[str, int] = {}
    for tally in tallies:
        for key, count in tally.items():
            uploads[key] = uploads.get(key, 0) + count
    idle_p50, idle_p95 = percentiles(idle)
    load_p50, load_p95 = percentiles(loaded)
    settings = {k: v for k, v in config.items() if k.startswith("VERIFY_")}
    print(f"GET /login, {args.rounds} rounds x {args.requests} requests per phase, "
          "gunicorn 2 sync workers, SQLite")
    print(f"settings: {settings} (other VERIFY_* at their defaults); clients at nice "
          f"{args.nice}; load average before/after {load_before} / {os.getloadavg()[0]:.2f}")
    print(f"{'phase':<34} {'p50 ms':>8} {'p95 ms':>8}")
    print(f"{'idle':<34} {idle_p50 * 1000:>8.1f} {idle_p95 * 1000:>8.1f}")
    print(f"{f'{args.clients} clients uploading hostile PDFs':<34} {load_p50 * 1000:>8.1f} "
          f"{load_p95 * 1000:>8.1f}")
    print(f"p95 loaded / idle: {load_p95 / idle_p95:.2f} (target <= 2.00); "
          f"p50 ratio {load_p50 / idle_p50:.2f}")
    print(f"uploads during the {duration:.1f} s measured (and around it): "
          + ", ".join(f"{k}: {v}" for k, v in sorted(uploads.items())))
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
