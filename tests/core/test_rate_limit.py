"""The per-address budget of requests with a missing or bad credential (core/rate_limit.py)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from beacon.core.rate_limit import BadCredentialLimiter


@given(st.lists(st.floats(min_value=0, max_value=5), min_size=1, max_size=200))
def test_an_address_never_gets_more_than_the_burst_plus_the_refill(gaps):
    limiter, now, passed = BadCredentialLimiter(rate_per_s=0.5, burst=5), 0.0, 0
    for gap in gaps:
        now += gap
        if limiter.refused("10.0.0.1", now) == 0:
            passed += 1
    assert passed <= 5 + 0.5 * now + 1e-9


def test_over_the_budget_says_how_long_to_wait_and_other_addresses_are_unaffected():
    limiter = BadCredentialLimiter(rate_per_s=0.5, burst=2)
    assert [limiter.refused("10.0.0.1", 0.0) for _ in range(3)][:2] == [0, 0]
    assert limiter.refused("10.0.0.1", 0.0) == 2.0  # one token at 0.5/s
    assert limiter.refused("10.0.0.2", 0.0) == 0
    assert limiter.refused("10.0.0.1", 2.0) == 0


def test_a_flood_of_addresses_is_bounded():
    limiter = BadCredentialLimiter(rate_per_s=1, burst=1, max_tracked=50)
    for n in range(1000):
        limiter.refused(f"10.0.{n // 250}.{n % 250}", 0.0)
    assert len(limiter.buckets) <= 50
