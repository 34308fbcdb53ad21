"""The app's shared rate limits (public pages) and sign-in throttle, wired to Flask.

Counters live in the store named by ``RATELIMIT_STORAGE_URI`` — by default the service's
own database (``database://``, see :mod:`returnprog.limiter`), so every gunicorn worker and
every machine on the same database counts together; ``redis://…`` works too. The
limiter's writes run on their own short connection, outside the request's transaction.

Clients are counted under ``request.remote_addr``. Behind a reverse proxy that is the
proxy's address — every participant would share one — unless the proxy is named in
``TRUSTED_PROXIES``: then ProxyFix (wired by the process/deploy setup) replaces
``remote_addr`` with the client address from ``X-Forwarded-For``, taken only from that
proxy. Limits that must never punish a participant for others' requests (a valid signing
link) are counted per link instead of per address.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from flask import Flask, current_app, request

if TYPE_CHECKING:
    from ..limiter import Limits, SignInThrottle

SETTINGS = {
    # Where the counters live: database:// (this service's database), redis://host:port/db,
    # or memory:// (per process: limits then count per worker — experiments only). Spelt
    # out rather than imported from returnprog.limiter, which would load `limits` with the app.
    "RATELIMIT_STORAGE_URI": "database://",
    "RATELIMIT_STRATEGY": "fixed-window",  # or sliding-window-counter
    # Requests on one valid signing link (per link, whoever sends them).
    "SIGNING_TOKEN_LIMIT": 60,
    "SIGNING_TOKEN_WINDOW_SECONDS": 15 * 60,
    # Refused link attempts (unknown, used, expired, withdrawn) per client address; beyond
    # this the address gets 429 for every link that is not valid until the window passed.
    "SIGNING_FAILURE_LIMIT": 10,
    "SIGNING_FAILURE_WINDOW_SECONDS": 15 * 60,
    # One-time codes sent for one signing link (a new code replaces the old one).
    "SIGNING_CODE_SEND_LIMIT": 3,
    "SIGNING_CODE_SEND_WINDOW_SECONDS": 15 * 60,
    # Verification uploads per client address per window.
    "VERIFY_RATE_LIMIT": 20,
    "VERIFY_RATE_WINDOW_SECONDS": 60,
    # Sign-in: progressive delay per account + address (returnprog.limiter.SignInPolicy).
    "SIGNIN_FREE_FAILURES": 3,
    "SIGNIN_DELAY_BASE_SECONDS": 5,
    "SIGNIN_DELAY_MAX_SECONDS": 15 * 60,
    "SIGNIN_FAILURE_WINDOW_SECONDS": 24 * 60 * 60,
    "SIGNIN_ACCOUNT_FAILURE_LIMIT": 100,
    "SIGNIN_ACCOUNT_FAILURE_WINDOW_SECONDS": 60 * 60,
}
EXTENSION = "returnprog.limits"


def limits() -> Limits:
    """The application's limits, on the shared store, made on first use: a command
    (``flask --help`` included) never loads the `limits` library. gunicorn's master makes
    it before forking (returnprog/gunicorn_conf.py), so a bad store fails the start."""
    extensions = current_app.extensions
    if EXTENSION not in extensions:
        from ..limiter import Limits, make_storage

        cfg = current_app.config
        storage = make_storage(cfg["RATELIMIT_STORAGE_URI"], extensions["returnprog.engine"])
        extensions.setdefault(EXTENSION, Limits(storage, cfg["RATELIMIT_STRATEGY"]))
    return extensions[EXTENSION]


# The name this module's accessor had before the shared store; same hit/full signatures.
limiter = limits


def client() -> str:
    """The key a client is counted under: its address (see the module docstring on
    proxies)."""
    return request.remote_addr or "-"


def _limit(name: str) -> tuple[int, int]:
    cfg = current_app.config
    return int(cfg[f"{name}_LIMIT"]), int(cfg[f"{name}_WINDOW_SECONDS"])


def hit(name: str, prefix: str, key: str | None = None) -> float:
    """Count one request against limit ``name`` (e.g. ``VERIFY_RATE``), keyed by this
    client's address unless ``key`` is given; the seconds to wait if it is over the limit,
    else 0."""
    limit, window = _limit(name)
    return limits().hit(f"{prefix}/{key or client()}", limit, window)


def full(name: str, prefix: str, key: str | None = None) -> float:
    """Whether this client (or ``key``) is over limit ``name`` already (seconds to wait,
    else 0), without counting."""
    limit, window = _limit(name)
    return limits().full(f"{prefix}/{key or client()}", limit, window)


def sign_in_throttle() -> SignInThrottle:
    """The sign-in throttle with the app's current ``SIGNIN_*`` settings."""
    from ..limiter import SignInPolicy, SignInThrottle

    cfg = current_app.config
    return SignInThrottle(limits(), SignInPolicy(
        free_failures=int(cfg["SIGNIN_FREE_FAILURES"]),
        delay_base_seconds=int(cfg["SIGNIN_DELAY_BASE_SECONDS"]),
        delay_max_seconds=int(cfg["SIGNIN_DELAY_MAX_SECONDS"]),
        failure_window_seconds=int(cfg["SIGNIN_FAILURE_WINDOW_SECONDS"]),
        account_failure_limit=int(cfg["SIGNIN_ACCOUNT_FAILURE_LIMIT"]),
        account_failure_window_seconds=int(cfg["SIGNIN_ACCOUNT_FAILURE_WINDOW_SECONDS"])))


def init_app(app: Flask) -> None:
    """Default limits (the store is made on first use, by :func:`limits`)."""
    for key, value in SETTINGS.items():
        app.config.setdefault(key, value)
