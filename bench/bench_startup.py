"""How long a ``flask`` command takes to start, against ``import flask`` (issue 11, item 4).

Run from the project root:  .venv/bin/python bench/bench_startup.py [--runs N] [--root DIR]

Interleaved rounds of fresh processes, medians of wall and CPU (user + system) time:

- ``import flask``: ``python -c "import flask"``, the baseline;
- ``import flask, sqlalchemy, sqlmodel``: the database layer the app is built on, for scale;
- ``flask --app wsgi --help``: creates wsgi.py's app (configuration, policy, commands;
  its web layer waits for first use) and lists the commands;
- ``+ render libraries``: ``python -c "import weasyprint, pyhanko.sign"``, what creating
  the app used to load as well.

Each command runs with a throw-away instance folder. ``--root`` measures another checkout
of the project (e.g. the commit before a change) with this script; given more than once,
the checkouts' ``flask --help`` runs are interleaved in the same rounds (before/after in
one run, under the same load).

Bytecode: a deployed install has its bytecode compiled (the image runs ``compileall``; a
checkout's ``__pycache__`` is written on first use), while ``PYTHONDONTWRITEBYTECODE=1``
in the environment would make every measured start compile the project's 20,000 lines
again (~0.2 s) but not the libraries' (site-packages has its bytecode from pip). So the
commands read and write bytecode in a throw-away ``PYTHONPYCACHEPREFIX`` (filled by the
unmeasured warm-up round); ``--no-bytecode`` measures starts that compile the sources.
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
    parser.add_argument("--root", type=Path, action="append",
                        help="a project checkout to measure (default: this one); repeatable")
    parser.add_argument("--no-bytecode", action="store_true",
                        help="keep the environment's bytecode setting (see the docstring)")
    args = parser.parse_args()
    roots = [r.resolve() for r in (args.root or [HERE.parent])]
    python = sys.executable
    flask = str(Path(sys.executable).with_name("flask"))
    commands = {  # name -> (argv, checkout it runs in)
        "import flask": ([python, "-c", "import flask"], roots[0]),
        "import flask, sqlalchemy, sqlmodel": (
            [python, "-c", "import flask, sqlalchemy, sqlmodel"], roots[0]),
    }
    for root in roots:
        name = "flask --app wsgi --help" + (f"  [{root.name}]" if len(roots) > 1 else "")
        commands[name] = ([flask, "--app", "wsgi", "--help"], root)
    commands["import weasyprint, pyhanko.sign"] = (
        [python, "-c", "import weasyprint, pyhanko.sign"], roots[0])
    with tempfile.TemporaryDirectory(prefix="returnprog-bench-start-") as scratch:
        env = {**os.environ, "RETURNPROG_INSTANCE_PATH": scratch}
        if not args.no_bytecode:
            env.pop("PYTHONDONTWRITEBYTECODE", None)
            env["PYTHONPYCACHEPREFIX"] = str(Path(scratch) / "pycache")
        for argv, cwd in commands.values():  # warm the file cache (and bytecode), not measured
            _run(argv, cwd, env)
        walls = {name: [] for name in commands}
        cpus = {name: [] for name in commands}
        for _ in range(args.runs):
            for name, (argv, cwd) in commands.items():
                wall, cpu = _run(argv, cwd, env)
                walls[name].append(wall)
                cpus[name].append(cpu)
    base_wall = statistics.median(walls["import flask"])
    base_cpu = statistics.median(cpus["import flask"])
    print(f"{', '.join(map(str, roots))}: fresh processes, median of {args.runs} interleaved "
          f"rounds, {'sources compiled per start' if args.no_bytecode else 'bytecode cached'}")
    width = max(38, *(len(name) + 2 for name in commands))
    print(f"{'command':<{width}}{'wall s':>8}{'× flask':>9}{'cpu s':>8}{'× flask':>9}")
    for name in commands:
        wall, cpu = statistics.median(walls[name]), statistics.median(cpus[name])
        print(f"{name:<{width}}{wall:8.2f}{wall / base_wall:9.2f}{cpu:8.2f}{cpu / base_cpu:9.2f}")


if __name__ == "__main__":
    main()
