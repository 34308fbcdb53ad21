"""Shared rate limits and sign-in throttles (Flask-free), on the `limits` library.

Counters live in a shared store so that a limit holds across every worker and machine:

- ``database://`` (the default, zero-config): :class:`DatabaseStorage`, a `limits` storage
  backend over the service's own SQLAlchemy engine — one row per counter in
  ``rate_limit_counter``, changed by one atomic upsert, on SQLite and PostgreSQL alike.
  Each call runs in its own short transaction on its own connection, never inside the
  request's unit of work and never through the audit chain.
- ``redis://host:6379/0`` (production, optional): `limits`' own Redis storage (install the
  ``redis`` package alongside).
- ``memory://``: per process; only for experiments — limits then count per worker again.

Windows are `limits`' *fixed window* by default: the window opens at the first hit of a
key and lasts its length, so "N per window" is exact under concurrency (every hit is one
atomic increment). ``sliding-window-counter`` is supported by every store above too.
"""
from __future__ import annotations

import functools
import hashlib
import math
import random
import time
from dataclasses import dataclass

from limits import RateLimitItemPerSecond
from limits.storage import SlidingWindowCounterSupport, Storage, storage_from_string
from limits.storage.base import TimestampedSlidingWindow
from limits.strategies import STRATEGIES, RateLimiter
from sqlalchemy import case, delete, select, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from .db import upsert_into
from .models import RateLimitCounter

DATABASE_URI = "database://"
KEY_MAX = 200  # rate_limit_counter.key holds 255; longer keys are hashed down
# Expired counters are deleted now and then by the writers themselves (about one
# increment in PRUNE_ONE_IN), so the table stays as small as the live counters.
PRUNE_ONE_IN = 500

_table = RateLimitCounter.__table__


class DatabaseStorage(Storage, SlidingWindowCounterSupport, TimestampedSlidingWindow):
    """`limits` storage in the service's database (scheme ``database://``).

    Built by :func:`make_storage` with the app's engine (``engine=`` option). A counter is
    a row (key, count, expires_at as epoch seconds); an increment is one
    ``INSERT … ON CONFLICT DO UPDATE … RETURNING``: a new or expired row starts again at
    ``amount`` with a fresh expiry, a live one adds ``amount`` — atomic in both engines,
    so two workers never both see "9 of 10".
    """

    STORAGE_SCHEME = ["database"]

    def __init__(self, uri: str | None = None, wrap_exceptions: bool = False,
                 engine: Engine | None = None, **options):
        if engine is None:
            raise ValueError("DatabaseStorage needs the service's engine (engine=...)")
        self.engine = engine
        self._insert = functools.partial(upsert_into, engine)
        super().__init__(uri, wrap_exceptions=wrap_exceptions, **options)

    @property
    def base_exceptions(self):
        return SQLAlchemyError

    @staticmethod
    def _key(key: str) -> str:
        return key if len(key) <= KEY_MAX else "h:" + hashlib.sha256(key.encode()).hexdigest()

    def incr(self, key: str, expiry: float, amount: int = 1) -> int:
        """Add ``amount`` to the counter ``key`` (a new or expired one starts at ``amount``
        and expires ``expiry`` seconds from now); returns the new count."""
        now = time.time()
        t = _table
        stmt = self._insert(t).values(key=self._key(key), count=amount, expires_at=now + expiry)
        expired = t.c.expires_at <= now
        stmt = stmt.on_conflict_do_update(index_elements=[t.c.key], set_={
            "count": case((expired, amount), else_=t.c.count + amount),
            "expires_at": case((expired, now + expiry), else_=t.c.expires_at),
        }).returning(t.c.count)
        with self.engine.begin() as conn:
            count = conn.execute(stmt).scalar_one()
            if random.randrange(PRUNE_ONE_IN) == 0:
                conn.execute(delete(t).where(t.c.expires_at <= now))
        return int(count)

    def decr(self, key: str, amount: int = 1) -> int:
        """Take ``amount`` off a live counter (never below 0); returns the new count."""
        now = time.time()
        t = _table
        with self.engine.begin() as conn:
            conn.execute(t.update().where(t.c.key == self._key(key), t.c.expires_at > now)
                         .values(count=case((t.c.count > amount, t.c.count - amount),
                                            else_=0)))
        return self.get(key)

    def _live(self, key: str):
        t = _table
        with self.engine.connect() as conn:
            return conn.execute(select(t.c.count, t.c.expires_at).where(
                t.c.key == self._key(key), t.c.expires_at > time.time())).first()

    def get(self, key: str) -> int:
        """The counter's value (0 when absent or expired)."""
        row = self._live(key)
        return int(row.count) if row else 0

    def get_expiry(self, key: str) -> float:
        """When the counter expires (epoch seconds; now when absent)."""
        row = self._live(key)
        return float(row.expires_at) if row else time.time()

    def check(self) -> bool:
        """Whether the store answers."""
        try:
            with self.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
            return True
        except SQLAlchemyError:
            return False

    def reset(self) -> int | None:
        """Drop every counter; returns how many there were."""
        with self.engine.begin() as conn:
            return conn.execute(delete(_table)).rowcount

    def clear(self, key: str) -> None:
        """Drop one counter."""
        with self.engine.begin() as conn:
            conn.execute(delete(_table).where(_table.c.key == self._key(key)))

    # --- sliding window counter (two fixed windows, the previous one weighted) ---------

    def _window_info(self, key: str, expiry: int, now: float):
        previous_key, current_key = self.sliding_window_keys(key, expiry, now)
        previous, current = self.get(previous_key), self.get(current_key)
        previous_ttl = (1 - (((now - expiry) / expiry) % 1)) * expiry if previous else 0.0
        current_ttl = (1 - ((now / expiry) % 1)) * expiry + expiry
        return previous, previous_ttl, current, current_ttl

    def acquire_sliding_window_entry(self, key: str, limit: int, expiry: int,
                                     amount: int = 1) -> bool:
        """Count ``amount`` in the current window if the weighted total stays within
        ``limit`` (a racing hit that overshoots is taken back and refused)."""
        if amount > limit:
            return False
        now = time.time()
        previous, previous_ttl, _current, _ = self._window_info(key, expiry, now)
        weight = previous * previous_ttl / expiry
        _prev_key, current_key = self.sliding_window_keys(key, expiry, now)
        if math.floor(weight + _current) + amount > limit:
            return False
        current = self.incr(current_key, 2 * expiry, amount)
        if math.floor(weight + current) > limit:
            self.decr(current_key, amount)
            return False
        return True

    def get_sliding_window(self, key: str, expiry: int) -> tuple[int, float, int, float]:
        """(previous count, previous ttl, current count, current ttl) of ``key``."""
        return self._window_info(key, expiry, time.time())

    def clear_sliding_window(self, key: str, expiry: int) -> None:
        """Drop both windows of ``key``."""
        for k in self.sliding_window_keys(key, expiry, time.time()):
            self.clear(k)


def make_storage(uri: str, engine: Engine | None = None) -> Storage:
    """The store named by ``uri``: ``database://`` (over ``engine``), or any `limits`
    storage URI (``redis://…``, ``memory://``)."""
    uri = uri or DATABASE_URI
    if uri.split(":", 1)[0] == "database":
        return DatabaseStorage(uri, engine=engine)
    return storage_from_string(uri)


def digest(value: str) -> str:
    """A short fixed-length stand-in for a value that must not sit in the store as it is
    (an e-mail address, a token): the key says whose counter it is without saying who."""
    return hashlib.sha256(value.encode()).hexdigest()[:32]


class Limits:
    """Named limits ("N per window seconds") counted per key in one shared store."""

    def __init__(self, storage: Storage, strategy: str = "fixed-window"):
        self.storage = storage
        self.strategy: RateLimiter = STRATEGIES[strategy](storage)

    def _wait(self, item, key: str) -> float:
        reset = self.strategy.get_window_stats(item, key).reset_time
        return max(1.0, math.ceil(reset - time.time()))

    def hit(self, key: str, limit: int, window: int) -> float:
        """Count one event for ``key``; 0 if it was within ``limit`` per ``window``
        seconds, else the seconds to wait."""
        item = RateLimitItemPerSecond(int(limit), int(window))
        return 0.0 if self.strategy.hit(item, key) else self._wait(item, key)

    def full(self, key: str, limit: int, window: int) -> float:
        """Whether ``key`` has used up its limit (seconds to wait), without counting."""
        item = RateLimitItemPerSecond(int(limit), int(window))
        return 0.0 if self.strategy.test(item, key) else self._wait(item, key)


@dataclass
class SignInPolicy:
    """The numbers of the sign-in throttle (settings ``SIGNIN_*``)."""

    free_failures: int = 3          # wrong passwords per account + address before delays
    delay_base_seconds: int = 5     # the first delay; doubled with every further failure
    delay_max_seconds: int = 15 * 60
    failure_window_seconds: int = 24 * 60 * 60  # failures are forgotten after this
    account_failure_limit: int = 100            # all addresses together, per account
    account_failure_window_seconds: int = 60 * 60

    def delay(self, failures: int) -> int:
        """Seconds the next attempt must wait after ``failures`` failures in a row."""
        if failures < self.free_failures:
            return 0
        return min(self.delay_max_seconds,
                   self.delay_base_seconds * 2 ** min(failures - self.free_failures, 30))


class SignInThrottle:
    """Progressive delay per account + address instead of a lockout anyone can trigger.

    After ``free_failures`` wrong attempts for one account from one address, the next
    attempt from that address must wait ``delay(failures)`` seconds, doubling each time up
    to ``delay_max_seconds``; the password is not even checked while it waits. Other
    addresses are not slowed by those failures — the account's owner signs in from their
    own address — until all addresses together pass the generous ``account_failure_limit``
    per ``account_failure_window_seconds``: then the account waits out that window from
    everywhere (a distributed guessing attack, not a typo). Unknown e-mail addresses are
    throttled exactly like real ones, so the throttle does not tell which accounts exist.

    The delay is a "gate" counter whose expiry is the delay: the first attempt after it
    expired claims it again (count 1) and goes ahead; concurrent attempts find count > 1
    and wait, so parallel requests cannot slip extra guesses past a delay.
    """

    def __init__(self, limits: Limits, policy: SignInPolicy | None = None):
        self.storage = limits.storage
        self.policy = policy or SignInPolicy()

    @staticmethod
    def _keys(email: str, address: str | None) -> tuple[str, str, str]:
        account = digest((email or "").strip().lower())
        where = address or "-"
        return (f"signin-fail/{account}/{where}", f"signin-gate/{account}/{where}",
                f"signin-account/{account}")

    def wait(self, email: str, address: str | None) -> int:
        """Seconds this attempt must wait before the password may be checked (0: go)."""
        fail_key, gate_key, account_key = self._keys(email, address)
        p = self.policy
        now = time.time()
        if self.storage.get(account_key) >= p.account_failure_limit:
            return max(1, math.ceil(self.storage.get_expiry(account_key) - now))
        failures = self.storage.get(fail_key)
        if failures < p.free_failures:
            return 0
        if self.storage.incr(gate_key, p.delay(failures)) == 1:
            return 0
        return max(1, math.ceil(self.storage.get_expiry(gate_key) - now))

    def failed(self, email: str, address: str | None) -> int:
        """Count a wrong attempt; returns the seconds the next one must wait."""
        fail_key, gate_key, account_key = self._keys(email, address)
        p = self.policy
        self.storage.incr(account_key, p.account_failure_window_seconds)
        failures = self.storage.incr(fail_key, p.failure_window_seconds)
        delay = p.delay(failures)
        if delay:
            self.storage.clear(gate_key)
            self.storage.incr(gate_key, delay)
        return delay

    def succeeded(self, email: str, address: str | None) -> None:
        """A right password from this address: its failures for the account are forgiven
        (the account-wide count is not: it measures attacks from elsewhere)."""
        fail_key, gate_key, _ = self._keys(email, address)
        self.storage.clear(fail_key)
        self.storage.clear(gate_key)
