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


def _round(read10, read1000, bare):
    results = [bench_web.Result("read 10", read10, 10, 20, 100, group="read", trail=10),
               bench_web.Result("read 1000", read1000, 11, 21, 100, group="read", trail=1000)]
    for r in results:
        r.bare_rps, r.ratio = bare, r.rps / bare
    bench_web._trail_ratios(results)
    return results


def test_rounds_are_combined_by_medians_with_the_trail_ratio_taken_per_round():
    # The load drifts between rounds (the bare route 1,000 → 2,000 → 500 req/s); each
    # round's 10- and 1,000-event reads ran back to back under the same load.
    rounds = [_round(100, 90, 1000), _round(200, 190, 2000), _round(50, 52, 500)]
    read10, read1000 = bench_web.combine(rounds)
    assert read10.rps == 100 and read1000.rps == 90
    assert read10.bare_rps == 1000 and read10.ratio == 0.1
    # Per round 0.90, 0.95, 1.04: the median is 0.95, while the medians' ratio (90 / 100)
    # would be 0.90 — a miss the machine's drift made, not the trail.
    assert read1000.trail_ratio == 0.95 and read10.trail_ratio is None
    assert [r["rps"] for r in read1000.rounds] == [90, 190, 52]
    assert read10.requests == 300


def test_one_round_is_reported_as_measured():
    only = _round(100, 90, 1000)
    assert bench_web.combine([only]) == only
    assert only[1].trail_ratio == 0.9
