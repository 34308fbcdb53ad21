"""One migrated, empty database per backend for the benchmarks: a SQLite file in a temporary
folder, or a database on a PostgreSQL server the benchmark starts itself (the tests' own
``pgserver``) and stops at the end.

    with databases(("sqlite", "postgresql"), "bench_search") as urls:
        for backend, url in urls:
            ...
"""
from __future__ import annotations

import contextlib
import sys
import tempfile
from pathlib import Path
from typing import Iterator

ROOT = Path(__file__).resolve().parents[1]


@contextlib.contextmanager
def databases(backends: tuple[str, ...], name: str) -> Iterator[Iterator[tuple[str, str]]]:
    """Yield an iterator of (backend, URL), each database created and migrated to the
    code's head when its turn comes; everything is removed when the block ends."""
    from alembic import command

    from returnprog import db as dbmod

    with tempfile.TemporaryDirectory(prefix=f"{name}_") as tmp:
        servers = []

        def each() -> Iterator[tuple[str, str]]:
            for backend in backends:
                if backend == "postgresql":
                    sys.path.insert(0, str(ROOT / "tests"))
                    from pgserver import PostgresServer

                    pg = PostgresServer().start()
                    servers.append(pg)
                    pg.create_database(name)
                    url = pg.url(name)
                else:
                    url = f"sqlite:///{Path(tmp) / (name + '.sqlite')}"
                # "heads": works before and after the migrations are chained into one line.
                command.upgrade(dbmod.alembic_config(url), "heads")
                yield backend, url
        try:
            yield each()
        finally:
            for pg in servers:
                pg.stop()
