"""RateLimiter.blocked: the console's login asks it before a token check and counts failures
only (hit), so a limit of N means N failed attempts per window, successful ones never."""

from __future__ import annotations

import pytest

from pricing_service.access import RateLimiter
from pricing_service.errors import RateLimited


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


async def test_blocked_counts_nothing_and_opens_at_the_next_window() -> None:
    clock = Clock(60 * 16_667 + 20.0)  # 20 s into a 60 s window
    limiter = RateLimiter(None, limit=2, window_seconds=60, clock=clock)
    for _ in range(10):
        assert await limiter.blocked("admin-login", "203.0.113.5") is None  # asking is free
    await limiter.hit("admin-login", "203.0.113.5")
    assert await limiter.blocked("admin-login", "203.0.113.5") is None
    await limiter.hit("admin-login", "203.0.113.5")
    assert await limiter.blocked("admin-login", "203.0.113.5") == 40  # the rest of the window
    assert await limiter.blocked("admin-login", "198.51.100.7") is None  # another address
    assert await limiter.blocked("refresh", "203.0.113.5") is None  # another bucket
    with pytest.raises(RateLimited):
        await limiter.hit("admin-login", "203.0.113.5")
    clock.now += 40
    assert await limiter.blocked("admin-login", "203.0.113.5") is None
