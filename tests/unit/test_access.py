"""Bearer checks and the per-client rate limit (in process; a failing Redis falls back)."""

from __future__ import annotations

from typing import Any

import pytest

from pricing_service.access import MAX_LOCAL_CLIENTS, Access, RateLimiter, Role
from pricing_service.errors import AccessNotConfigured, NotAuthorized, RateLimited


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize(
    ("admin", "cron", "header", "admin_only", "expected"),
    [
        ("a-tok", "c-tok", "Bearer a-tok", True, Role.ADMIN),
        ("a-tok", "c-tok", "bearer  a-tok ", True, Role.ADMIN),
        ("a-tok", "c-tok", "Bearer c-tok", False, Role.CRON),
        ("a-tok", "c-tok", "Bearer a-tok", False, Role.ADMIN),
        ("a-tok", "c-tok", "Bearer c-tok", True, NotAuthorized),
        ("a-tok", "c-tok", "Bearer nope", False, NotAuthorized),
        ("a-tok", "c-tok", "a-tok", True, NotAuthorized),
        ("a-tok", "c-tok", None, False, NotAuthorized),
        (None, "c-tok", "Bearer c-tok", True, AccessNotConfigured),
        (None, "c-tok", "Bearer c-tok", False, Role.CRON),
        (None, None, "Bearer x", False, AccessNotConfigured),
    ],
)
def test_access_roles(
    admin: str | None, cron: str | None, header: str | None, admin_only: bool, expected: Any
) -> None:
    access = Access(admin_token=admin, cron_token=cron)
    if isinstance(expected, Role):
        assert access.require(header, admin_only=admin_only) is expected
    else:
        with pytest.raises(expected):
            access.require(header, admin_only=admin_only)


async def test_limit_per_client_and_bucket_resets_each_window() -> None:
    clock = Clock(1_000_000.0)  # 1_000_000 / 60 leaves 40 s of this window
    limiter = RateLimiter(None, limit=2, window_seconds=60, clock=clock)
    await limiter.hit("refresh", "10.0.0.1")
    await limiter.hit("refresh", "10.0.0.1")
    with pytest.raises(RateLimited) as refused:
        await limiter.hit("refresh", "10.0.0.1")
    assert refused.value.retry_after == 60 - int(clock.now) % 60
    await limiter.hit("refresh", "10.0.0.2")  # another client
    await limiter.hit("debug", "10.0.0.1")  # another endpoint
    clock.now += 60
    await limiter.hit("refresh", "10.0.0.1")  # a new window


async def test_in_process_memory_is_bounded() -> None:
    limiter = RateLimiter(None, limit=1, clock=Clock(0.0))
    for n in range(MAX_LOCAL_CLIENTS + 50):
        await limiter.hit("refresh", f"client-{n}")
    assert len(limiter._local) == MAX_LOCAL_CLIENTS


class BrokenRedis:
    def pipeline(self, transaction: bool = True) -> Any:
        raise ConnectionError("redis is down")


async def test_redis_failure_falls_back_to_counting_in_process() -> None:
    errors: list[str] = []
    limiter = RateLimiter(BrokenRedis(), limit=1, clock=Clock(30.0))  # type: ignore[arg-type]
    limiter.error_observers.append(errors.append)
    await limiter.hit("debug", "10.0.0.1")
    with pytest.raises(RateLimited) as refused:
        await limiter.hit("debug", "10.0.0.1")
    assert refused.value.retry_after == 30
    assert errors == ["rate_limit", "rate_limit"]


@pytest.mark.parametrize(("limit", "window"), [(0, 60), (5, 0)])
def test_nonsense_limits_refused(limit: int, window: int) -> None:
    with pytest.raises(ValueError, match="rate limit"):
        RateLimiter(None, limit=limit, window_seconds=window)
