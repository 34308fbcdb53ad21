"""How long a ``flask`` command takes to start, against ``import flask`` (issue 11, item 4).

Run from the project root:  .venv/bin/python bench/bench_startup.py [--runs N] [--root DIR]

Interleaved rounds of fresh processes, medians of wall and CPU (user + system) time:

- ``import flask``: ``python -c "import flask"``, the baseline;
- ``import flask, sqlalchemy, sqlmodel``: the database layer the app is built on, for scale;
- ``flask --app wsgi --help``: creates the app (configuration, engine, blueprints,
  commands) and lists the commands;
- ``+ render libraries``: ``python -c "import weasyprint, pyhanko.sign"``, what creating
  the app used to load as well.

Each command runs with a throw-away instance folder. ``--root`` measures another checkout
of the project (e.g. the commit before a change) with this script.
"""
from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def _run(argv: list[str], cwd: Path, env: dict) -> tuple[float, float]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(argv, cwd=cwd, env=env, check=True, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def main() -> None:
    """Print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=9, help="rounds (median)")
    parser.add_argument("--root", type=Path, default=HERE.parent,
                        help="the project checkout to measure (default: this one)")
    args = parser.parse_args()
    root = args.root.resolve()
    python = sys.executable
    flask = str(Path(sys.executable).with_name("flask"))
    commands = {
        "import flask": [python, "-c", "import flask"],
        "import flask, sqlalchemy, sqlmodel": [python, "-c", "import flask, sqlalchemy, sqlmodel"],
        "flask --app wsgi --help": [flask, "--app", "wsgi", "--help"],
        "import weasyprint, pyhanko.sign": [python, "-c", "import weasyprint, pyhanko.sign"],
    }
    with tempfile.TemporaryDirectory(prefix="returnprog-bench-start-") as instance:
        env = {**os.environ, "RETURNPROG_INSTANCE_PATH": instance}
        for argv in commands.values():  # warm the file cache, not measured
            _run(argv, root, env)
        walls = {name: [] for name in commands}
        cpus = {name: [] for name in commands}
        for _ in range(args.runs):
            for name, argv in commands.items():
                wall, cpu = _run(argv, root, env)
                walls[name].append(wall)
                cpus[name].append(cpu)
    base_wall = statistics.median(walls["import flask"])
    base_cpu = statistics.median(cpus["import flask"])
    print(f"{root}: fresh processes, median of {args.runs} interleaved rounds")
    print(f"{'command':<38}{'wall s':>8}{'× flask':>9}{'cpu s':>8}{'× flask':>9}")
    for name in commands:
        wall, cpu = statistics.median(walls[name]), statistics.median(cpus[name])
        print(f"{name:<38}{wall:8.2f}{wall / base_wall:9.2f}{cpu:8.2f}{cpu / base_cpu:9.2f}")


if __name__ == "__main__":
    main()
