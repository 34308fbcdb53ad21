"""gunicorn settings for the web: ``gunicorn --config python:returnprog.gunicorn_conf ...``
(scripts/supervisord.conf, deploy/systemd/returnprog-web.service, deploy/compose.yaml).
Workers, bind address and logs stay on the command line.

The master loads the app once and imports WeasyPrint and pyHanko once (shared by every
worker it forks); each worker drops the database connections it inherited and renders
and seals one throw-away document before it takes requests, so the first participant's
signature costs what every later one does (:mod:`returnprog.web.warmup`).

Both then move every object they hold so far out of the garbage collector's reach
(:func:`gc.freeze`): those live as long as the process, and a collection that scanned
them would, in a worker, write to pages it shares with the master (copying them, about
30 MB per worker) and take its time out of a request (measured with 150,000 cases:
bench/README.md).

With the app preloaded, ``kill -HUP`` restarts the workers on the code the master loaded:
restart the service (not reload) after changing the code.
"""
from __future__ import annotations

import gc

preload_app = True


def on_starting(server) -> None:
    """In the master, before it binds the sockets and tells systemd it is ready: make sure
    the app's web layer is built (wsgi.py builds it at import unless it runs under the
    ``flask`` command; an app that defers it is built here, once for every worker), so a
    web layer that cannot be built stops the start rather than the first request."""
    ensure_web = getattr(server.app.wsgi(), "ensure_web", None)
    if ensure_web is not None:
        ensure_web()


def when_ready(server) -> None:
    """In the master, after the app is loaded and before the first fork: import the
    rendering and sealing libraries (never render here: see returnprog.web.warmup), and
    make the rate limits' store, which the app makes on first use (a store that cannot be
    made then stops the server here, not at the first sign-in)."""
    from returnprog.web import ratelimit, warmup

    app = server.app.wsgi()
    warmup.preload()
    with app.app_context():
        ratelimit.limits()
    keep_out_of_collections()


def post_fork(server, worker) -> None:
    """In each new worker: forget the pooled connections inherited from the master,
    without closing them (they are the master's), so no two processes share one."""
    engine = getattr(server.app.wsgi(), "extensions", {}).get("returnprog.engine")
    if engine is not None:
        engine.dispose(close=False)


def post_worker_init(worker) -> None:
    """In each worker, before its first request: render and seal one document."""
    from returnprog.web import warmup

    seconds = warmup.warm(worker.wsgi)
    frozen = keep_out_of_collections()
    worker.log.info("worker %s warmed up in %.2f s (document rendered and sealed; "
                    "%d long-lived objects kept out of garbage collections)",
                    worker.pid, seconds, frozen)


def keep_out_of_collections() -> int:
    """Collect what is garbage now, then freeze the rest (the app, its libraries, the
    warm-up's caches) so later collections skip it; returns how many objects are frozen."""
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()
