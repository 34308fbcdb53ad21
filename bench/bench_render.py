"""What a document costs on top of WeasyPrint, and what the first one in a fresh gunicorn
worker costs against a warm one (issue 11, items 4 and 5).

Run from the project root:  .venv/bin/python bench/bench_render.py [--rounds N] [--workers N]
Add ``--root <other checkout>`` to measure another checkout of the project with the same
script (e.g. the commit before a change); ``--skip-web`` or ``--skip-render`` for one half.

1. In one process, per kind (language uk), interleaved rounds so that a busy machine
   slows every variant alike; medians of CPU time (``process_time``) and wall time:
   - ``bare``: WeasyPrint writing the very same HTML with the restricted fetcher (it needs
     it for the packaged fonts), otherwise WeasyPrint's defaults: a new font configuration
     per call, no PDF/A, no seal;
   - ``bare+fc``: the same with one font configuration kept across calls, as the project
     keeps one per thread: the stricter baseline, which credits the module nothing for its
     font cache and so shows what PDF/A and the seal add;
   - ``render``: ``documents.render_pdf`` (HTML from the template, PDF/A-3b);
   - ``seal``: ``documents.seal_pdf`` of that PDF;
   - ``r+seal``: both, as a signing does;
   - ``r+s+cert``: the same with the evidence certificate page and its attachments (a
     link signing's seven events), as a signing does since issue 12 (left out when the
     measured checkout has no certificates).
   Ratios are ``r+seal`` over each baseline; the last line gives ``r+s+cert`` over ``r+seal``.
2. Fresh workers: gunicorn (one sync worker) serves the app from a throw-away instance,
   with a bench-only route that renders and seals one ``commitment`` in Russian (not the
   warm-up's document) and reports how long that took inside the worker. The first
   request to a newly started gunicorn is the first participant's signature; requests
   2..6 are warm. Measured with ``--config python:returnprog.gunicorn_conf`` (preload +
   warm-up) and without it (gunicorn's defaults), each over ``--workers`` fresh starts.
"""
from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent


def sample_data() -> dict:
    """The household bench_documents.py uses: valid for every kind, with a drawing."""
    sys.path.insert(0, str(HERE))
    from bench_documents import sample_data as data

    return data()


# --- 1. in process ---------------------------------------------------------------------


def bench_render(rounds: int) -> None:
    from weasyprint import HTML
    from weasyprint.text.fonts import FontConfiguration

    from returnprog import documents

    data = sample_data()
    with tempfile.TemporaryDirectory(prefix="returnprog-bench-") as instance:
        seal = documents.ensure_dev_seal(instance)
        shared_fc = FontConfiguration()
        print(f"in process, language uk, median of {rounds} interleaved rounds, ms "
              "(CPU time; wall time in brackets)")
        print(f"{'kind':<23}{'bare':>14}{'bare+fc':>14}{'render':>14}{'seal':>11}"
              f"{'r+seal':>14}{'/bare':>7}{'/bare+fc':>9}")
        totals = {"bare": 0.0, "bare+fc": 0.0, "r+seal": 0.0, "r+s+cert": 0.0}
        evidence = _evidence() if hasattr(documents, "evidence_record") else None
        for kind in documents.KINDS:
            html = documents.render_html(kind, data, "uk")
            pdf = documents.render_pdf(kind, data, "uk")
            variants = {
                "bare": lambda: HTML(string=html,
                                     url_fetcher=documents.RestrictedURLFetcher()).write_pdf(),
                "bare+fc": lambda: HTML(string=html, url_fetcher=documents.RestrictedURLFetcher()
                                        ).write_pdf(font_config=shared_fc),
                "render": lambda: documents.render_pdf(kind, data, "uk"),
                "seal": lambda: documents.seal_pdf(pdf, seal, reason=kind),
                "r+seal": lambda: documents.seal_pdf(documents.render_pdf(kind, data, "uk"),
                                                     seal, reason=kind),
            }
            if evidence is not None:
                variants["r+s+cert"] = lambda: documents.seal_pdf(
                    documents.render_pdf(kind, data, "uk", evidence), seal, reason=kind)
            for fn in variants.values():  # first calls (caches, key) are not what is measured
                fn()
            cpu = {name: [] for name in variants}
            wall = {name: [] for name in variants}
            for _ in range(rounds):
                for name, fn in variants.items():
                    c0, w0 = time.process_time(), time.perf_counter()
                    fn()
                    cpu[name].append(time.process_time() - c0)
                    wall[name].append(time.perf_counter() - w0)
            c = {k: statistics.median(v) * 1000 for k, v in cpu.items()}
            w = {k: statistics.median(v) * 1000 for k, v in wall.items()}
            cells = "".join(f"{c[k]:7.0f} ({w[k]:4.0f})" if k != "seal" else
                            f"{c[k]:5.0f} ({w[k]:3.0f})" for k in variants if k != "r+s+cert")
            if "r+s+cert" in c:
                cells += f"  cert {c['r+s+cert']:4.0f} ({w['r+s+cert']:4.0f})"
            print(f"{kind:<23}{cells}{c['r+seal'] / c['bare']:7.2f}"
                  f"{c['r+seal'] / c['bare+fc']:9.2f}")
            for name in totals:
                totals[name] += c.get(name, 0.0)
        # One figure for all kinds: single cells move by ±10% on a busy machine.
        print(f"{'all kinds (sum of medians)':<90}{totals['r+seal'] / totals['bare']:7.2f}"
              f"{totals['r+seal'] / totals['bare+fc']:9.2f}")
        if evidence is not None:
            print(f"with the evidence certificate: r+s+cert / r+seal = "
                  f"{totals['r+s+cert'] / totals['r+seal']:.2f} (sum of medians)")


def _evidence() -> dict:
    """A link signing's evidence: created, code sent, a wrong and a right code, opened,
    consented, signed."""
    import datetime as dt

    at = dt.datetime(2026, 11, 20, 9, 0, tzinfo=dt.timezone.utc)
    ua = "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 Chrome/131.0 Mobile"
    names = ("link_created", "code_sent", "code_failed", "code_verified", "opened",
             "consented", "signed")
    return {"version": 1, "signer_name": "Olena Shevchenko", "signature_method": "drawn",
            "signing_channel": "link", "counsellor": "Johanna de Vries",
            "events": [{"event": name, "at": at + dt.timedelta(minutes=i), "ip": "198.51.100.7",
                        "user_agent": ua, "channel": "link"} for i, name in enumerate(names)]}


# --- 2. fresh gunicorn workers -----------------------------------------------------------

SHIM = textwrap.dedent('''
    import time
    from flask import jsonify
    from returnprog import create_app, documents
    from returnprog.web import sessions
    from bench_documents import sample_data  # after returnprog: it puts its own root first

    app = create_app({{"DATABASE_URL": "sqlite:///{db}"}})

    @app.get("/_bench/render-and-seal")
    def _bench_render_and_seal():
        data = sample_data()
        started = time.perf_counter()
        pdf = documents.render_pdf("commitment", data, "ru")
        documents.seal_pdf(pdf, sessions.seal(), reason="bench")
        return jsonify(seconds=time.perf_counter() - started)
''')


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _one_start(root: Path, tmp: Path, with_conf: bool, requests: int) -> list[float]:
    port = _free_port()
    config = ["--config", "python:returnprog.gunicorn_conf"] if with_conf else []
    env = {**os.environ, "PYTHONPATH": os.pathsep.join((str(tmp), str(root), str(HERE))),
           "RETURNPROG_INSTANCE_PATH": str(tmp / "instance")}
    proc = subprocess.Popen(
        [str(Path(sys.executable).with_name("gunicorn")), *config, "--workers", "1",
         "--timeout", "120", "--bind", f"127.0.0.1:{port}", "--no-control-socket",
         "bench_render_wsgi:app"],
        cwd=tmp, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/_bench/render-and-seal"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                # Connect only: the first request must be the first render.
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("gunicorn did not start")
                time.sleep(0.2)
        out = []
        for _ in range(requests):
            with urllib.request.urlopen(url, timeout=120) as response:
                out.append(json.loads(response.read())["seconds"])
        return out
    finally:
        proc.terminate()
        proc.wait(timeout=60)


def bench_workers(root: Path, starts: int) -> None:
    print(f"\nfresh gunicorn worker, commitment (ru) rendered and sealed in the worker, "
          f"median of {starts} starts, ms")
    print(f"{'gunicorn':<44}{'first':>8}{'warm':>8}{'first/warm':>12}")
    with tempfile.TemporaryDirectory(prefix="returnprog-bench-web-") as tmp_name:
        tmp = Path(tmp_name)
        (tmp / "instance").mkdir(mode=0o700)
        (tmp / "bench_render_wsgi.py").write_text(SHIM.format(db=tmp / "instance" / "bench.db"))
        modes = [("defaults (no preload, no warm-up)", False)]
        if (root / "returnprog" / "gunicorn_conf.py").exists():
            modes.append(("--config python:returnprog.gunicorn_conf", True))
        for label, with_conf in modes:
            firsts, warms = [], []
            for _ in range(starts):
                times = _one_start(root, tmp, with_conf, requests=6)
                firsts.append(times[0])
                warms.append(statistics.median(times[1:]))
            first, warm = statistics.median(firsts) * 1000, statistics.median(warms) * 1000
            print(f"{label:<44}{first:8.0f}{warm:8.0f}{first / warm:12.2f}")


def main() -> None:
    """Print both tables."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=9, help="interleaved rounds per kind")
    parser.add_argument("--workers", type=int, default=3, help="fresh gunicorn starts per mode")
    parser.add_argument("--root", type=Path, default=HERE.parent,
                        help="the project checkout to measure (default: this one)")
    parser.add_argument("--skip-render", action="store_true")
    parser.add_argument("--skip-web", action="store_true")
    args = parser.parse_args()
    root = args.root.resolve()
    sys.path.insert(0, str(root))
    if not args.skip_render:
        bench_render(args.rounds)
    if not args.skip_web:
        bench_workers(root, args.workers)


if __name__ == "__main__":
    main()
