"""Per-client rate limits of the public pages (signing links, verification).

An in-process sliding window: each worker process counts for itself, which is enough to
make guessing signing tokens get nowhere. A client whose link attempts are refused too
often is answered 429 for a while.
"""
from __future__ import annotations

import threading
import time
from collections import deque

from flask import Flask, current_app, request

SETTINGS = {
    # Public signing pages: at most this many requests per client address per window.
    "SIGNING_RATE_LIMIT": 60,
    "SIGNING_RATE_WINDOW_SECONDS": 60,
    # Refused link attempts (unknown, used, expired, withdrawn) per client address; beyond
    # this the address gets 429 on every signing page until the window has passed.
    "SIGNING_FAILURE_LIMIT": 10,
    "SIGNING_FAILURE_WINDOW_SECONDS": 15 * 60,
    # Verification uploads per client address per window.
    "VERIFY_RATE_LIMIT": 20,
    "VERIFY_RATE_WINDOW_SECONDS": 60,
}
EXTENSION = "returnprog.signing_limiter"


class SlidingWindowLimiter:
    """Counts events per key in a sliding time window, in this process.

    ``hit`` records an event and says whether it was within the limit; ``full`` only
    looks. Memory stays bounded: each key keeps at most ``limit`` timestamps and idle keys
    are dropped now and then.
    """

    MAX_KEYS = 50_000

    def __init__(self, clock=time.monotonic):
        self._clock = clock
        self._events: dict[str, deque] = {}
        self._lock = threading.Lock()

    def _window(self, key: str, limit: int, window: float, now: float) -> deque:
        events = self._events.get(key)
        if events is None or events.maxlen != limit:
            events = self._events[key] = deque(events or (), maxlen=limit)
        while events and events[0] <= now - window:
            events.popleft()
        return events

    def full(self, key: str, limit: int, window: float) -> float:
        """Seconds until ``key`` may act again (0 when it may now)."""
        with self._lock:
            now = self._clock()
            events = self._window(key, limit, window, now)
            return (events[0] + window - now) if len(events) >= limit else 0.0

    def hit(self, key: str, limit: int, window: float) -> float:
        """Record one event for ``key``; returns 0 if it was allowed, else the seconds to
        wait (the refused event is not counted)."""
        with self._lock:
            now = self._clock()
            if len(self._events) > self.MAX_KEYS:
                self._prune(now, window)
            events = self._window(key, limit, window, now)
            if len(events) >= limit:
                return max(events[0] + window - now, 1.0)
            events.append(now)
            return 0.0

    def _prune(self, now: float, window: float) -> None:
        for key in [k for k, ev in self._events.items() if not ev or ev[-1] <= now - window]:
            del self._events[key]


def limiter() -> SlidingWindowLimiter:
    """The application's limiter (one per process)."""
    return current_app.extensions[EXTENSION]


def client() -> str:
    """The key a client is counted under: its address."""
    return request.remote_addr or "-"


def _limit(name: str) -> tuple[int, int]:
    cfg = current_app.config
    return int(cfg[f"{name}_LIMIT"]), int(cfg[f"{name}_WINDOW_SECONDS"])


def hit(name: str, prefix: str) -> float:
    """Count one request of this client against limit ``name`` (e.g. ``SIGNING_RATE``);
    the seconds to wait if it is over the limit, else 0."""
    limit, window = _limit(name)
    return limiter().hit(f"{prefix}:{client()}", limit, window)


def full(name: str, prefix: str) -> float:
    """Whether this client is over limit ``name`` already (seconds to wait, else 0)."""
    limit, window = _limit(name)
    return limiter().full(f"{prefix}:{client()}", limit, window)


def init_app(app: Flask) -> None:
    """Default limits and the process's limiter (once, whichever blueprint asks first)."""
    for key, value in SETTINGS.items():
        app.config.setdefault(key, value)
    app.extensions.setdefault(EXTENSION, SlidingWindowLimiter())
