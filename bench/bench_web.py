"""The web benchmark of issue 11: req/s, p50 and p95 of the staff pages and the API under
``make run``'s gunicorn, with 150,000 cases loaded, against a bare Flask JSON route served
by the same gunicorn settings in the same run, on SQLite and on PostgreSQL.

Run from the project root (needs Debian's ``wrk``: ``bash scripts/system-deps.sh``):

    .venv/bin/python bench/bench_web.py [--backend sqlite|postgresql|both] [--cases N]
        [--duration S] [--warmup S] [--rounds N] [--connections N] [--threads N] [--json FILE]
        [--cache-dir DIR | --no-cache] [--verify-chain]

For each database:

1. A temporary instance folder (``RETURNPROG_INSTANCE_PATH``); for PostgreSQL a throwaway
   server (``tests/pgserver.py``) and ``RETURNPROG_DATABASE_URL``. ``flask init-db``, then
   the cases are bulk-loaded by ``bench/load_cases.py`` (150,000 cases, realistic
   households, a case with 10 and one with 1,000 trail events, a valid audit chain). The
   loaded database is kept in a cache keyed by the schema revision, the loader's version,
   the number of cases and the engine (SQLite: the file; PostgreSQL: a ``pg_dump``), so a
   second run skips the loading.
2. The benchmark's counsellor (``load_cases.BENCH_USER``, team Noord, its own ~1/100 of the
   cases and both trail cases) gets a fresh random password that the password policy
   accepts, ``flask api-token`` issues its bearer token, and it signs in once through
   ``GET /login`` + ``POST /login`` with the CSRF token, for the session cookie of the
   staff pages.
3. gunicorn starts exactly as ``make run`` starts it: the ``[program:web]`` command of
   ``scripts/supervisord.conf`` (2 sync workers, ``wsgi:app``, access log to standard
   output — here a file), on a free port, umask 077. The scheduler and the mail sink are
   not started: their periodic jobs are not what is measured. The baseline is the same
   command line serving ``bench/bare_app.py`` (without a ``--config`` file, whose hooks
   are the service's own).
4. Each request is checked once (200, and not the sign-in page), then ``wrk`` runs with 20
   connections for a warm-up (2 s, discarded) and a measured run (10 s); the Lua script
   ``bench/wrk_report.lua`` reports requests, errors and the latency percentiles. A
   request with errors or non-2xx/3xx answers is flagged. Beside the service, on another
   port, the same gunicorn command line serves ``bench/bare_app.py``; its ``GET /bare`` is
   measured (1 s warm-up, 5 s) before the first request and after each one, and each
   request is compared with the mean of the bare slices just before and after it.

The table: request, req/s, the bare req/s it is compared with, × bare, the target of issue 11 where there is one, p50 and p95
in ms, and for the case read and the case page the ratio of req/s with the 1,000-event case
to req/s with the 10-event case (target: within 10%). ``--rounds N`` measures every request
N times, interleaved, and shows the medians; the two trail cases are measured back to back
in each round and their ratio is taken per round, so a drift in the machine's load between
rounds does not become a difference between them. Absolute numbers depend on the
machine and on whatever else runs on it; compare the ratios. A full run takes about
4 minutes per database with a warm cache (loading 150,000 cases adds 2–3 minutes).
"""
from __future__ import annotations

import argparse
import configparser
import contextlib
import datetime as dt
import http.cookiejar
import json
import os
import re
import secrets
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "bench"
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(BENCH))

import load_cases  # noqa: E402

VENV_BIN = ROOT / ".venv" / "bin"
LUA = BENCH / "wrk_report.lua"
SUPERVISORD_CONF = ROOT / "scripts" / "supervisord.conf"
APP_TOKEN = "wsgi:app"
BARE_TOKEN = "bare_app:app"
# Issue 11's targets, as a share of the bare route's req/s.
TARGETS = {"list": 0.35, "read": 0.25, "page": 0.15, "dashboard": 0.20}
TRAIL_TOLERANCE = 0.10  # 10 vs 1,000 trail events: req/s within 10%


@dataclass
class Target:
    """One request to measure: its label, path, how it authenticates, and the group of
    issue 11's targets it belongs to (None: no target)."""

    label: str
    path: str
    auth: str  # "token" | "cookie" | "none"
    group: str | None = None
    trail: int | None = None  # the trail length of the case it reads, if any
    expect: str | None = None  # a string the answer must contain


@dataclass
class Result:
    """What wrk measured for one request."""

    label: str
    rps: float
    p50_ms: float
    p95_ms: float
    requests: int
    errors: dict = field(default_factory=dict)
    group: str | None = None
    trail: int | None = None
    alone_ms: float = 0.0
    bare_rps: float = 0.0  # the bare route just before and just after this request
    ratio: float = 0.0  # × bare: rps / bare_rps (with rounds: the median of the rounds')
    trail_ratio: float | None = None  # 1,000 events ÷ 10, per round, median (1,000 only)
    rounds: list = field(default_factory=list)  # each round's figures, with --rounds

    @property
    def failed(self) -> int:
        """Requests that did not come back as a 2xx/3xx answer."""
        return sum(self.errors.values())


# --- processes ---------------------------------------------------------------------------------

def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def clean_env(instance: Path, database_url: str | None, port: int) -> dict:
    """The environment of the service and its commands: this process's without any
    RETURNPROG_* setting, plus the instance folder, the database and the port."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RETURNPROG_")}
    env["RETURNPROG_INSTANCE_PATH"] = str(instance)
    if database_url:
        env["RETURNPROG_DATABASE_URL"] = database_url
    env["PORT"] = str(port)
    return env


def flask(env: dict, *args: str, stdin: str | None = None) -> str:
    """Run ``flask --app wsgi ARGS`` like ``make`` does; its standard output, or exit."""
    proc = subprocess.run([str(VENV_BIN / "flask"), "--app", "wsgi", *args], cwd=ROOT, env=env,
                          input=stdin, capture_output=True, text=True, umask=0o077)
    if proc.returncode != 0:
        raise SystemExit(f"flask {args[0]} failed ({proc.returncode}):\n{proc.stdout}"
                         f"{proc.stderr}")
    return proc.stdout


def web_command(port: int, app: str = APP_TOKEN) -> list[str]:
    """The gunicorn command line of ``make run`` (``[program:web]`` in
    scripts/supervisord.conf) for ``port``, serving ``app`` in place of ``wsgi:app``."""
    conf = configparser.RawConfigParser()
    conf.read(SUPERVISORD_CONF)
    raw = conf.get("program:web", "command")
    values = {"ENV_RETURNPROG_ROOT": str(ROOT), "ENV_PORT": str(port)}
    values.update({f"ENV_{k}": v for k, v in os.environ.items()})

    def expand(match):
        name = match.group(1)
        if name not in values:
            raise SystemExit(f"{SUPERVISORD_CONF}: the web command uses %({name})s, which the "
                             "benchmark cannot fill in")
        return values[name]

    args = shlex.split(re.sub(r"%\(([A-Za-z0-9_]+)\)s", expand, raw))
    if APP_TOKEN not in args:
        raise SystemExit(f"{SUPERVISORD_CONF}: the web command does not serve {APP_TOKEN}")
    if app != APP_TOKEN:
        at = args.index(APP_TOKEN)
        args[at:at + 1] = ["--pythonpath", str(BENCH), app]
        args = without_config(args)
    return args


def without_config(args: list[str]) -> list[str]:
    """``args`` without gunicorn's ``--config``/``-c`` option. The baseline leaves out the
    service's config file: its hooks warm up the service's own app (rendering a document
    in each new worker) and mean nothing to the bare route; preloading changes start-up,
    not what a request costs a sync worker."""
    out, skip = [], False
    for arg in args:
        if skip:
            skip = False
        elif arg in ("-c", "--config"):
            skip = True
        elif not arg.startswith("--config="):
            out.append(arg)
    return out


def workers_of(command: list[str]) -> int:
    """The number of gunicorn workers ``command`` starts (gunicorn's default is 1)."""
    for i, arg in enumerate(command):
        if arg in ("-w", "--workers") and i + 1 < len(command):
            return int(command[i + 1])
        if arg.startswith("--workers="):
            return int(arg.split("=", 1)[1])
    return 1


class Gunicorn:
    """A gunicorn started from ``command`` in its own process group; its output goes to a
    log file. Stopped with SIGTERM to the group it leads (then SIGKILL after 20 s)."""

    def __init__(self, command: list[str], env: dict, log: Path, port: int, ready_path: str):
        self.command, self.env, self.log, self.port = command, env, log, port
        self.ready_path = ready_path
        self.proc: subprocess.Popen | None = None

    def __enter__(self) -> "Gunicorn":
        self._out = open(self.log, "ab")
        self.proc = subprocess.Popen(self.command, cwd=ROOT, env=self.env, stdout=self._out,
                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                     start_new_session=True, umask=0o077)
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit(f"gunicorn exited ({self.proc.returncode}); log {self.log}:\n"
                                 + self.log.read_text(errors="replace")[-3000:])
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{self.ready_path}",
                                            timeout=5) as resp:
                    if resp.status == 200:
                        return self
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.3)
        self.__exit__()
        raise SystemExit(f"gunicorn did not answer {self.ready_path} within 90 s; log {self.log}")

    def __exit__(self, *exc) -> None:
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self._out.close()


# --- loading and the cache ---------------------------------------------------------------------

def cache_key(backend: str, cases: int) -> str:
    """Name of a cached database: schema revision, loader version, size and engine."""
    from returnprog import db as dbmod

    heads = "+".join(dbmod.migration_heads())
    return f"{backend}-schema{heads}-loader{load_cases.LOADER_VERSION}-{cases}"


def private_dir(path: Path) -> Path:
    """``path`` created if missing, for this account only."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(path, 0o700)
    return path


def prepare_sqlite(instance: Path, env: dict, cases: int, cache: Path | None,
                   say) -> tuple[dict, bool]:
    """The instance's SQLite database, loaded or copied from the cache; its load info and
    whether it was loaded now."""
    db_file = instance / "returnprog.sqlite"
    key = cache_key("sqlite", cases)
    cached = cache / f"{key}.sqlite" if cache else None
    if cached and cached.exists() and cached.with_suffix(".json").exists():
        shutil.copyfile(cached, db_file)
        os.chmod(db_file, 0o600)
        flask(env, "init-db")
        say(f"database copied from the cache ({cached.name})")
        return json.loads(cached.with_suffix(".json").read_text()), False
    flask(env, "init-db")
    info = load(f"sqlite:///{db_file}", cases, say)
    if cached:
        from sqlalchemy import create_engine, text

        engine = create_engine(f"sqlite:///{db_file}")
        with engine.connect() as conn:  # everything into the main file before copying it
            conn.execute(text("PRAGMA wal_checkpoint(TRUNCATE)"))
        engine.dispose()
        partial = cached.with_suffix(".partial")
        shutil.copyfile(db_file, partial)
        os.chmod(partial, 0o600)
        cached.with_suffix(".json").write_text(json.dumps(info))
        partial.replace(cached)
        say(f"cached as {cached}")
    return info, True


def prepare_postgresql(pg, instance: Path, env: dict, cases: int, cache: Path | None,
                       say) -> tuple[dict, bool]:
    """A fresh database on the throwaway server, restored from the cached dump or loaded."""
    name = "bench"
    pg.create_database(name)
    env["RETURNPROG_DATABASE_URL"] = pg.url(name)
    key = cache_key("postgresql", cases)
    dump = cache / f"{key}.dump" if cache else None
    if dump and dump.exists() and dump.with_suffix(".json").exists():
        proc = subprocess.run([os.path.join(pg.bindir, "pg_restore"), "--no-owner", "-j", "2",
                               "-d", pg.dsn(name), str(dump)], capture_output=True, text=True)
        if proc.returncode != 0:
            raise SystemExit(f"pg_restore failed: {proc.stderr[-2000:]}")
        flask(env, "init-db")
        from sqlalchemy import text

        from returnprog import db as dbmod

        engine = dbmod.make_engine(pg.url(name))
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            # pg_restore brings no planner statistics and no visibility map: without the
            # VACUUM every index-only scan visits the table (a counsellor's state counts
            # took 2.5 ms instead of 0.19). A live database has both from autovacuum, and a
            # fresh load (load_cases) runs the same VACUUM ANALYZE.
            conn.execute(text("VACUUM ANALYZE"))
        engine.dispose()
        say(f"database restored from the cache ({dump.name})")
        return json.loads(dump.with_suffix(".json").read_text()), False
    flask(env, "init-db")
    info = load(pg.url(name), cases, say)
    if dump:
        partial = dump.with_suffix(".partial")
        proc = subprocess.run([os.path.join(pg.bindir, "pg_dump"), "-Fc", "-Z", "1", "-f",
                               str(partial), "-d", pg.dsn(name)], capture_output=True, text=True,
                              umask=0o077)
        if proc.returncode != 0:
            raise SystemExit(f"pg_dump failed: {proc.stderr[-2000:]}")
        dump.with_suffix(".json").write_text(json.dumps(info))
        partial.replace(dump)
        say(f"cached as {dump}")
    return info, True


def load(url: str, cases: int, say) -> dict:
    """Bulk-load the cases into the migrated database at ``url``; the load info."""
    loaded = load_cases.load(url, cases, progress=lambda line: (
        say(f"loaded {line}") if line.startswith(("50,000", "100,000", "150,000")) else None))
    say(f"loaded {loaded.cases:,} cases, {loaded.participants:,} participants, "
        f"{loaded.events:,} audit events in {loaded.seconds:.0f} s")
    return {"cases": loaded.cases, "trail_refs": {str(k): v for k, v in
                                                  loaded.trail_refs.items()},
            "search_name": loaded.search_name}


# --- credentials -------------------------------------------------------------------------------

def bench_password() -> str:
    """A random password the staff password policy accepts."""
    from returnprog import passwords

    while True:
        password = secrets.token_urlsafe(18)
        if not passwords.problems(password, email=load_cases.BENCH_USER,
                                  name="Bench Counsellor"):
            return password


def set_password(url: str, password: str) -> None:
    """Give the benchmark's counsellor ``password`` (the loaded accounts have none)."""
    from sqlalchemy import update

    from returnprog import auth
    from returnprog import db as dbmod
    from returnprog.models import User

    engine = dbmod.make_engine(url)
    with engine.begin() as conn:
        conn.execute(update(User).where(User.email == load_cases.BENCH_USER).values(
            password_hash=auth.hash_new_password(password, email=load_cases.BENCH_USER,
                                                 name="Bench Counsellor")))
    engine.dispose()


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def sign_in(base: str, email: str, password: str) -> str:
    """Sign in through the sign-in form (CSRF token and all); the Cookie header value."""
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar), _NoRedirect)
    page = opener.open(f"{base}/login", timeout=30).read().decode()
    match = re.search(r'name="csrf_token" value="([^"]+)"', page)
    if not match:
        raise SystemExit("no CSRF token on the sign-in page")
    form = urllib.parse.urlencode({"csrf_token": match.group(1), "email": email,
                                   "password": password}).encode()
    try:
        resp = opener.open(f"{base}/login", data=form, timeout=30)
        status = resp.status
    except urllib.error.HTTPError as exc:
        status = exc.code
    if status != 303:
        raise SystemExit(f"sign-in answered {status}, not 303")
    return "; ".join(f"{c.name}={c.value}" for c in jar)


def check(base: str, target: Target, headers: dict) -> float:
    """One request on its own: it must answer 200 (not a redirect to the sign-in); its
    time in seconds."""
    req = urllib.request.Request(base + target.path, headers=headers)
    opener = urllib.request.build_opener(_NoRedirect)
    started = time.perf_counter()
    try:
        with opener.open(req, timeout=300) as resp:
            status, body = resp.status, resp.read().decode(errors="replace")
    except urllib.error.HTTPError as exc:
        status, body = exc.code, exc.read().decode(errors="replace")
    if status != 200 or (target.expect and target.expect not in body):
        raise SystemExit(f"{target.label}: GET {target.path} answered {status} "
                         f"(expected 200{' with ' + repr(target.expect) if target.expect else ''})"
                         f":\n{body[:500]}")
    return time.perf_counter() - started


# --- measuring ---------------------------------------------------------------------------------

def wrk(base: str, target: Target, headers: dict, seconds: float, connections: int,
        threads: int) -> Result:
    """``wrk`` against one request for ``seconds``; the report of wrk_report.lua. The
    credentials go to the Lua script through the environment, not the command line."""
    env = dict(os.environ)
    env["BENCH_WRK_AUTHORIZATION"] = headers.get("Authorization", "")
    env["BENCH_WRK_COOKIE"] = headers.get("Cookie", "")
    cmd = ["wrk", "-t", str(threads), "-c", str(connections), "-d", f"{max(1, round(seconds))}s",
           "--timeout", "60s", "-s", str(LUA), base + target.path]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("BENCH_JSON ")), None)
    if proc.returncode != 0 or line is None:
        raise SystemExit(f"wrk failed for {target.label} ({proc.returncode}):\n{proc.stdout}"
                         f"{proc.stderr}")
    data = json.loads(line[len("BENCH_JSON "):])
    return Result(target.label, data["requests"] / (data["duration_us"] / 1e6),
                  data["p50_us"] / 1000, data["p95_us"] / 1000, data["requests"],
                  {k: v for k, v in data["errors"].items() if v}, target.group, target.trail)


def drain(base: str, probe: str, connections: int, rps: float, alone: float,
          workers: int) -> None:
    """Wait until the requests wrk left behind are done. When wrk stops it closes its
    connections, but the requests they had sent are still queued at gunicorn and are
    served anyway (about one per connection); the next measurement must not pay for them.
    Their work is about ``connections / rps`` seconds (or, when nothing completed,
    ``connections * alone / workers``); then one cheap probe, which queues behind them."""
    backlog = connections / rps if rps > 0 else connections * alone / workers
    time.sleep(min(backlog, 300) + 0.2)
    with contextlib.suppress(urllib.error.URLError, OSError):
        urllib.request.urlopen(base + probe, timeout=300).read()


def measure(base: str, target: Target, headers: dict, args, say, probe: str,
            duration: float | None = None, warmup: float | None = None) -> Result:
    """Check (alone, on a quiet server), warm up, measure one request; drain after each
    wrk run so that no request pays for the previous run's leftovers."""
    duration = args.duration if duration is None else duration
    warmup = args.warmup if warmup is None else warmup
    alone = check(base, target, headers)
    if warmup > 0:
        warm = wrk(base, target, headers, warmup, args.connections, args.threads)
        drain(base, probe, args.connections, warm.rps, alone, args.workers)
    result = wrk(base, target, headers, duration, args.connections, args.threads)
    drain(base, probe, args.connections, result.rps, alone, args.workers)
    check(base, target, headers)  # the session and the token still work afterwards
    flag = f"  ERRORS {result.errors}" if result.failed else ""
    if result.requests < 2 * args.connections:
        flag += (f"  only {result.requests} answers in {duration:g} s: the percentiles "
                 "are a lower bound, use a longer --duration")
    say(f"{target.label:<44} {result.rps:8.1f} req/s  p50 {result.p50_ms:7.1f} ms  "
        f"p95 {result.p95_ms:7.1f} ms  (alone {alone * 1000:.0f} ms; load "
        f"{os.getloadavg()[0]:.1f}){flag}")
    result.alone_ms = alone * 1000
    return result


def targets(info: dict) -> list[Target]:
    """The requests of issue 11, for the loaded database described by ``info``."""
    short, long_ = (info["trail_refs"][k] for k in ("10", "1000"))
    name = info["search_name"]
    return [
        Target("GET /api/v1/cases?state=intake", "/api/v1/cases?state=intake", "token",
               "list", expect='"items"'),
        Target("GET /api/v1/cases/{ref} (10 events)", f"/api/v1/cases/{short}", "token",
               "read", 10, expect=short),
        Target("GET /api/v1/cases/{ref} (1,000 events)", f"/api/v1/cases/{long_}", "token",
               "read", 1000, expect=long_),
        Target("GET /cases/{ref} page (10 events)", f"/cases/{short}", "cookie", "page", 10,
               expect=short),
        Target("GET /cases/{ref} page (1,000 events)", f"/cases/{long_}", "cookie", "page",
               1000, expect=long_),
        Target("GET / dashboard", "/", "cookie", "dashboard", expect="Bench Counsellor"),
        Target("GET /api/v1/cases?q=<name> search", f"/api/v1/cases?q={name}", "token",
               "search", expect='"items"'),
    ]


def _median(values):
    ordered = sorted(values)
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2


def _trail_ratios(measured: list[Result]) -> None:
    """Within one round, each 1,000-event request's req/s ÷ its 10-event twin's: the two
    run back to back, so the ratio is taken under the same load."""
    tens = {r.group: r for r in measured if r.trail == 10}
    for r in measured:
        if r.trail == 1000 and r.group in tens:
            r.trail_ratio = r.rps / tens[r.group].rps


def combine(rounds: list[list[Result]]) -> list[Result]:
    """One result per request from ``--rounds`` interleaved rounds: the median of each
    figure (req/s, its bare figure, × bare, p50, p95, 10 vs 1,000) over the rounds, every
    round kept in ``rounds``. One round is returned as it is."""
    if len(rounds) == 1:
        return rounds[0]
    combined = []
    for per_round in zip(*rounds):
        first = per_round[0]
        errors: dict = {}
        for r in per_round:
            for key, value in r.errors.items():
                errors[key] = errors.get(key, 0) + value
        trails = [r.trail_ratio for r in per_round if r.trail_ratio is not None]
        combined.append(Result(
            first.label, _median(r.rps for r in per_round),
            _median(r.p50_ms for r in per_round), _median(r.p95_ms for r in per_round),
            sum(r.requests for r in per_round), errors, first.group, first.trail,
            _median(r.alone_ms for r in per_round), _median(r.bare_rps for r in per_round),
            _median(r.ratio for r in per_round), _median(trails) if trails else None,
            [{"rps": r.rps, "bare_rps": r.bare_rps, "ratio": r.ratio, "p50_ms": r.p50_ms,
              "p95_ms": r.p95_ms, "trail_ratio": r.trail_ratio} for r in per_round]))
    return combined


# --- the table ---------------------------------------------------------------------------------

def print_table(backend: str, results: list[Result], bare: list[Result], info: dict,
                wall: float) -> None:
    """The table of one database: request, req/s, × bare (against the bare route measured
    just before and just after it), target, p50, p95, 10 vs 1,000."""
    rates = sorted(b.rps for b in bare)
    median = rates[len(rates) // 2]
    print()
    print(f"## {backend}: {info['cases']:,} cases; bare route {median:.0f} req/s median of "
          f"{len(bare)} slices ({rates[0]:.0f}–{rates[-1]:.0f})")
    print()
    print("| request | req/s | bare req/s | × bare | target | p50 ms | p95 ms | 10 vs 1,000 |")
    print("|---|---|---|---|---|---|---|---|")
    listing = next((r for r in results if r.group == "list"), None)
    rounds = max(len(r.rounds) for r in results) if results else 0
    for r in results:
        ratio = r.ratio
        goal = TARGETS.get(r.group)
        target = f"≥ {goal:.2f} {'ok' if ratio >= goal else 'MISS'}" if goal else ""
        if r.group == "search" and listing:
            times = r.p95_ms / listing.p95_ms
            target = f"p95 ≤ 3× list's: {times:.1f}× {'ok' if times <= 3 else 'MISS'}"
        trail = ""
        if r.trail_ratio is not None:
            rel = r.trail_ratio
            trail = f"{rel:.2f} {'ok' if abs(1 - rel) <= TRAIL_TOLERANCE + 1e-9 else 'MISS'}"
        notes = f" (errors: {r.errors})" if r.failed else ""
        if r.requests < 40:
            notes += f" ({r.requests} answers: p50/p95 a lower bound)"
        print(f"| `{r.label}`{notes} | {r.rps:.1f} | {r.bare_rps:.0f} | {ratio:.3f} | {target} "
              f"| {r.p50_ms:.0f} | {r.p95_ms:.0f} | {trail} |")
    p50s = sorted(b.p50_ms for b in bare)
    p95s = sorted(b.p95_ms for b in bare)
    print(f"| `{bare[0].label}`, median of {len(bare)} | {median:.1f} | | 1 | | "
          f"{p50s[len(p50s) // 2]:.1f} | {p95s[len(p95s) // 2]:.1f} | |")
    print()
    print(f"Targets (issue 11): case read ≥ {TARGETS['read']}× bare, list ≥ {TARGETS['list']}×, "
          f"case page ≥ {TARGETS['page']}×, dashboard ≥ {TARGETS['dashboard']}×; 10 vs 1,000 "
          f"trail events within {TRAIL_TOLERANCE:.0%} (req/s with 1,000 ÷ req/s with 10); "
          f"name search p95 within 3× of the list's. {backend} took {wall:.0f} s."
          + (f" Each figure is the median of {rounds} interleaved rounds (× bare and 10 vs "
             f"1,000 taken per round, then the median)." if rounds > 1 else ""))


# --- main --------------------------------------------------------------------------------------

def run_backend(backend: str, args, tmp: Path, say) -> tuple[list[Result], list[Result], dict]:
    """Prepare, serve and measure one database."""
    instance = private_dir(tmp / f"instance-{backend}")
    port = free_port()
    env = clean_env(instance, None, port)
    cache = private_dir(Path(args.cache_dir)) if not args.no_cache else None
    pg = None
    try:
        if backend == "postgresql":
            sys.path.insert(0, str(ROOT / "tests"))
            from pgserver import PostgresServer

            pg = PostgresServer().start()
            info, fresh = prepare_postgresql(pg, instance, env, args.cases, cache, say)
            url = env["RETURNPROG_DATABASE_URL"]
        else:
            info, fresh = prepare_sqlite(instance, env, args.cases, cache, say)
            url = f"sqlite:///{instance / 'returnprog.sqlite'}"
        if info["cases"] != args.cases + 2:
            raise SystemExit(f"the cached database holds {info['cases']} cases, not "
                             f"{args.cases + 2}: remove {args.cache_dir}")
        if args.verify_chain or (fresh and args.cases <= 20_000):
            say(flask(env, "audit-verify").strip().splitlines()[0])
        password = bench_password()
        set_password(url, password)
        token = flask(env, "api-token", load_cases.BENCH_USER).strip().splitlines()[-1]
        base = f"http://127.0.0.1:{port}"
        bare_port = free_port()
        bare_base = f"http://127.0.0.1:{bare_port}"
        bare_cmd = web_command(bare_port, BARE_TOKEN)
        app_cmd = web_command(port)
        args.workers = workers_of(app_cmd)
        say("service: " + " ".join(app_cmd[1:]))
        bare_target = Target("GET /bare (bare Flask route)", "/bare", "none")
        bare, rounds = [], []

        def bare_slice():
            bare.append(measure(bare_base, bare_target, {}, args, say, "/bare",
                                duration=args.bare_duration, warmup=min(1, args.warmup)))

        # Both servers run side by side (the idle one costs nothing); the bare route is
        # measured between every two requests, so each ratio is taken against the bare
        # figure of the same minute — on a shared machine the load drifts within a run.
        with Gunicorn(bare_cmd, env, tmp / f"bare-{backend}.log", bare_port, "/bare"), \
                Gunicorn(app_cmd, env, tmp / f"web-{backend}.log", port, "/healthz"):
            cookie = sign_in(base, load_cases.BENCH_USER, password)
            headers = {"token": {"Authorization": f"Bearer {token}"},
                       "cookie": {"Cookie": cookie}, "none": {}}
            bare_slice()
            for round_no in range(args.rounds):
                if args.rounds > 1:
                    say(f"{backend}: round {round_no + 1} of {args.rounds}")
                measured = []
                for target in targets(info):
                    result = measure(base, target, headers[target.auth], args, say,
                                     "/healthz")
                    bare_slice()
                    result.bare_rps = (bare[-2].rps + bare[-1].rps) / 2
                    result.ratio = result.rps / result.bare_rps
                    measured.append(result)
                _trail_ratios(measured)
                rounds.append(measured)
        return combine(rounds), bare, info
    finally:
        if pg is not None:
            pg.stop()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument("--cases", type=int, default=150_000)
    parser.add_argument("--duration", type=float, default=10, help="measured seconds per request")
    parser.add_argument("--warmup", type=float, default=2, help="discarded seconds before each")
    parser.add_argument("--bare-duration", type=float, default=5,
                        help="measured seconds of each bare-route slice between two requests")
    parser.add_argument("--rounds", type=int, default=1,
                        help="measure every request this many times, interleaved; "
                             "the table shows the medians")
    parser.add_argument("--connections", type=int, default=20)
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
    parser.add_argument("--cache-dir", default=str(Path(tempfile.gettempdir())
                                                   / f"returnprog-bench-web-{os.getuid()}"))
    parser.add_argument("--no-cache", action="store_true",
                        help="load the cases afresh and keep nothing")
    parser.add_argument("--verify-chain", action="store_true",
                        help="run flask audit-verify on the loaded database (slow at 150,000)")
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args(argv)
    if shutil.which("wrk") is None:
        parser.error("wrk is not installed: run `bash scripts/system-deps.sh` (Debian's wrk)")
    if args.connections < args.threads:
        parser.error("--connections must be at least --threads")
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    backends = ("sqlite", "postgresql") if args.backend == "both" else (args.backend,)
    started = time.perf_counter()

    def say(line: str) -> None:
        print(f"  [{time.perf_counter() - started:5.0f} s] {line}", flush=True)

    print(f"bench_web: {args.cases:,} cases, {args.connections} connections, "
          f"{args.warmup:g} s warm-up + {args.duration:g} s per request, wrk "
          f"{args.threads} threads; {os.cpu_count()} CPUs, load average "
          f"{os.getloadavg()[0]:.1f}", flush=True)
    tables, out = [], {}
    with tempfile.TemporaryDirectory(prefix="bench_web_") as tmp:
        for backend in backends:
            say(f"{backend}: preparing")
            t0 = time.perf_counter()
            results, bare, info = run_backend(backend, args, Path(tmp), say)
            tables.append((backend, results, bare, info, time.perf_counter() - t0))
    for table in tables:
        print_table(*table)
        backend, results, bare, info, wall = table
        out[backend] = {"cases": info["cases"], "seconds": round(wall),
                        "bare": [b.__dict__ for b in bare],
                        "results": [r.__dict__ for r in results]}
    print(f"\ntotal run time {time.perf_counter() - started:.0f} s; load average now "
          f"{os.getloadavg()[0]:.1f}")
    if args.json:
        out["settings"] = {"connections": args.connections, "duration": args.duration,
                           "warmup": args.warmup, "threads": args.threads,
                           "at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")}
        Path(args.json).write_text(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
