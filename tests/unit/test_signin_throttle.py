"""The sign-in throttle's rule, on an in-process store: free failures, then a doubling
delay per account + address, a gate that lets exactly one attempt through when the delay
has passed, and the account-wide cap."""
from __future__ import annotations

import time

import time_machine

from returnprog.limiter import Limits, SignInPolicy, SignInThrottle, make_storage


def _throttle(**policy) -> SignInThrottle:
    return SignInThrottle(Limits(make_storage("memory://")), SignInPolicy(**policy))


def test_the_delay_doubles_after_the_free_failures_up_to_the_maximum():
    p = SignInPolicy(free_failures=3, delay_base_seconds=5, delay_max_seconds=900)
    assert [p.delay(n) for n in range(12)] == [0, 0, 0, 5, 10, 20, 40, 80, 160, 320, 640, 900]
    assert p.delay(10_000) == 900


def test_after_the_delay_exactly_one_attempt_goes_ahead():
    throttle = _throttle()
    who = ("anna@dtenv.example", "192.0.2.7")
    for _ in range(3):
        assert throttle.wait(*who) == 0
        throttle.failed(*who)
    now = time.time()
    with time_machine.travel(now, tick=False):
        assert throttle.wait(*who) == 5
    with time_machine.travel(now + 6, tick=False):
        # Three attempts at the same moment (three workers): one may check its password.
        assert sorted(throttle.wait(*who) for _ in range(3)) == [0, 5, 5]
        # Waiting attempts do not push the delay further out.
        assert throttle.wait(*who) == 5
        throttle.succeeded(*who)
        assert throttle.wait(*who) == 0


def test_the_address_and_the_account_are_both_part_of_the_key():
    throttle = _throttle()
    for _ in range(3):
        throttle.failed("anna@dtenv.example", "192.0.2.7")
    assert throttle.wait("ANNA@dtenv.example ", "192.0.2.7") > 0  # normalised like sign-in
    assert throttle.wait("anna@dtenv.example", "192.0.2.8") == 0
    assert throttle.wait("bram@dtenv.example", "192.0.2.7") == 0


def test_the_account_wide_cap_stops_every_address_until_its_window_ends():
    throttle = _throttle(account_failure_limit=4, account_failure_window_seconds=3600)
    for n in range(4):
        throttle.failed("anna@dtenv.example", f"198.51.100.{n}")
    assert 3590 < throttle.wait("anna@dtenv.example", "192.0.2.10") <= 3600
    assert throttle.wait("bram@dtenv.example", "192.0.2.10") == 0
