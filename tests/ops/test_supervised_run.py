"""``make run``'s process supervision, for real: ``scripts/run.sh`` (what ``make run`` runs
after set-up and migrations) starts supervisord with web, scheduler and mail sink on free
ports, in a temporary instance folder (``RETURNPROG_INSTANCE_PATH``), so the checkout's own
``instance/`` is never touched.

- A killed scheduler and a killed mail sink come back (new pids, the sink listening again)
  within 30 s, the deaths are in the run log, and the web answers every poll meanwhile.
- SIGTERM stops all of it, every child included.
- Two instances with different PORTs run side by side, each with its own sink.
- A busy PORT, or a busy SMTP_PORT that was set explicitly, stops the start with one line
  naming the setting and a non-zero exit, before supervisord starts.
"""
from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT = 90  # two shared cores: a cold start of gunicorn and two flask commands
BACK_WITHIN = 30    # the bound for a killed companion to be back
SPAWNED = re.compile(r"spawned: '([\w-]+)' with pid (\d+)")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def listening(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex(("127.0.0.1", port)) == 0


def status(port: int) -> int | None:
    """HTTP status of the sign-in page, or None when nothing answered."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/login", timeout=5) as r:
            return r.status
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:
        return None


def run_env(instance: Path, **extra) -> dict:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("RETURNPROG_") and k != "PORT"}
    env.update(RETURNPROG_INSTANCE_PATH=str(instance), PYTHONUNBUFFERED="1", **extra)
    return env


class Instance:
    """One ``scripts/run.sh PORT`` with its run log collected line by line."""

    def __init__(self, instance: Path, port: int, sqlite_template: Path, **env):
        instance.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(sqlite_template, instance / "returnprog.sqlite")  # a migrated DB
        self.port = port
        self.lines: list[str] = []
        self.proc = subprocess.Popen(
            ["bash", "scripts/run.sh", str(port)], cwd=ROOT, env=run_env(instance, **env),
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            text=True, start_new_session=True)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self):
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    @property
    def log(self) -> str:
        return "\n".join(self.lines)

    def pids(self) -> dict[str, int]:
        """The newest pid supervisord reported for each program."""
        out = {}
        for line in list(self.lines):
            m = SPAWNED.search(line)
            if m:
                out[m.group(1)] = int(m.group(2))
        return out

    def sink_port(self) -> int:
        m = re.search(r"mail sink on 127\.0\.0\.1:(\d+)", self.log)
        assert m, self.log
        return int(m.group(1))

    def wait_ready(self):
        """Until the web answers, the sink listens and all three are RUNNING."""
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, f"run.sh ended early:\n{self.log}"
            running = {m for m in ("web", "scheduler", "mail-sink")
                       if f"success: {m} entered RUNNING" in self.log}
            if (len(running) == 3 and status(self.port) == 200
                    and listening(self.sink_port())):
                return
            time.sleep(0.5)
        raise AssertionError(f"not ready within {START_TIMEOUT}s:\n{self.log}")

    def stop(self) -> int:
        """SIGTERM to supervisord (run.sh execs it), as Ctrl-C or systemd would; the exit
        code. Whatever is left after 60 s is killed (our own process group only)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(60)
        finally:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self._reader.join(5)


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split()[2] != "Z"
    except FileNotFoundError:
        return False


def environ_of(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes()
    return dict(item.split("=", 1) for item in raw.decode().split("\0") if "=" in item)


@pytest.fixture
def instances(tmp_path, sqlite_template):
    started = []

    def start(name: str, port: int, **env) -> Instance:
        inst = Instance(tmp_path / name, port, sqlite_template, **env)
        started.append(inst)
        return inst

    yield start
    for inst in started:  # all at once: each takes a few seconds to stop gracefully
        if inst.proc.poll() is None:
            inst.proc.send_signal(signal.SIGTERM)
    for inst in started:
        inst.stop()


def test_killed_companions_come_back_while_the_web_keeps_answering(instances):
    run = instances("one", free_port(), RETURNPROG_SMTP_PORT=str(free_port()))
    run.wait_ready()
    before = run.pids()
    sink_port = run.sink_port()
    for name in ("scheduler", "mail-sink"):
        os.kill(before[name], signal.SIGKILL)
    killed_at = time.monotonic()
    answers = []
    while True:
        answers.append(status(run.port))
        now = run.pids()
        back = (all(now[n] != before[n] and alive(now[n]) for n in ("scheduler", "mail-sink"))
                and listening(sink_port))
        if back:
            break
        assert time.monotonic() - killed_at < BACK_WITHIN, (
            f"companions not back within {BACK_WITHIN}s:\n{run.log}")
        time.sleep(0.5)
    assert answers and set(answers) == {200}, answers  # the web answered every poll
    assert now["web"] == before["web"] and alive(before["web"])  # never restarted
    for name in ("scheduler", "mail-sink"):
        assert f"exited: {name} (terminated by SIGKILL; not expected)" in run.log
    # the restarted scheduler still delivers to the sink's port
    assert environ_of(now["scheduler"])["RETURNPROG_SMTP_PORT"] == str(sink_port)

    children = list(now.values())
    assert run.stop() == 0, run.log
    assert not [pid for pid in children if alive(pid)], run.log
    assert "stopped: web (exit status 0)" in run.log


def test_two_instances_with_different_ports_both_serve(instances):
    # The first names its sink port; the second leaves it to run.sh (the usual 8025, or a
    # free one when that is taken) — started together, so the two cannot pick the same one.
    first = instances("first", free_port(), RETURNPROG_SMTP_PORT=str(free_port()))
    second = instances("second", free_port())
    first.wait_ready()
    second.wait_ready()
    assert status(first.port) == 200 and status(second.port) == 200
    assert first.sink_port() != second.sink_port()
    for run in (first, second):
        scheduler = run.pids()["scheduler"]
        env = environ_of(scheduler)
        # each scheduler delivers to its own sink, and links follow its own PORT
        assert env["RETURNPROG_SMTP_PORT"] == str(run.sink_port())
        assert env["PORT"] == str(run.port)
        assert alive(scheduler)


def _start_refused(tmp_path, port: int, **env) -> subprocess.CompletedProcess:
    instance = tmp_path / "instance"
    return subprocess.run(["bash", "scripts/run.sh", str(port)], cwd=ROOT, timeout=60,
                          env=run_env(instance, **env), capture_output=True, text=True)


def test_a_busy_port_is_refused_with_one_line_naming_port(tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = _start_refused(tmp_path, port)
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert f"PORT {port} is already in use" in lines[0]
    assert "supervisord" not in result.stdout + result.stderr  # nothing was started


def test_a_busy_sink_port_that_was_set_is_refused_naming_the_setting(tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        smtp = busy.getsockname()[1]
        result = _start_refused(tmp_path, free_port(), RETURNPROG_SMTP_PORT=str(smtp))
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert f"SMTP_PORT {smtp}" in lines[0] and "RETURNPROG_SMTP_PORT" in lines[0]
