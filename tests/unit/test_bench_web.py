"""The web benchmark's pure parts: it serves exactly ``make run``'s gunicorn command line
(read from scripts/supervisord.conf) for the service and, without the service's own config
file, for the bare baseline, and the
BSNs its loader makes pass the 11-check."""
from __future__ import annotations

import configparser
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BENCH = ROOT / "bench"
sys.path.insert(0, str(BENCH))

import bench_web  # noqa: E402
import load_cases  # noqa: E402


def test_every_loaded_bsn_passes_the_eleven_check():
    from returnprog.identifiers import is_valid_bsn

    assert all(is_valid_bsn(load_cases.bsn_for(n)) for n in range(1, 5000))


def test_the_benchmark_serves_make_runs_gunicorn_command():
    conf = configparser.RawConfigParser()
    conf.read(ROOT / "scripts" / "supervisord.conf")
    raw = conf.get("program:web", "command")
    expected = raw.replace("%(ENV_RETURNPROG_ROOT)s", str(ROOT)).replace("%(ENV_PORT)s", "5123")
    app_cmd = bench_web.web_command(5123)
    assert app_cmd == expected.split()
    assert "wsgi:app" in app_cmd and "127.0.0.1:5123" in " ".join(app_cmd)
    # The baseline: the same command line, only the app differs.
    at = app_cmd.index("wsgi:app")
    bare_cmd = bench_web.web_command(5123, bench_web.BARE_TOKEN)
    expected_bare = app_cmd[:at] + ["--pythonpath", str(BENCH), "bare_app:app"] + app_cmd[at + 1:]
    assert bare_cmd == bench_web.without_config(expected_bare)


def test_the_baseline_leaves_out_only_the_services_gunicorn_config_file():
    args = ["gunicorn", "--config", "python:returnprog.gunicorn_conf", "--workers", "2",
            "-c", "other.py", "--config=third.py", "--bind", "127.0.0.1:1", "bare_app:app"]
    assert bench_web.without_config(args) == ["gunicorn", "--workers", "2", "--bind",
                                              "127.0.0.1:1", "bare_app:app"]
