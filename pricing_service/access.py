"""Bearer tokens for cron and admin endpoints (constant-time), and their per-client rate limit."""

from __future__ import annotations

import hmac
import logging
import math
import time
from enum import StrEnum
from typing import TYPE_CHECKING

from pricing_service.errors import AccessNotConfigured, NotAuthorized, RateLimited
from pricing_service.logs import event

if TYPE_CHECKING:
    from collections.abc import Callable

    from redis.asyncio import Redis

log = logging.getLogger("pricing_service.access")

RATE_LIMIT_PREFIX = "pricing:ratelimit"
# Distinct clients remembered per window in process; beyond it the oldest are forgotten, so a
# flood of addresses costs bounded memory.
MAX_LOCAL_CLIENTS = 10_000


class Role(StrEnum):
    CRON = "cron"
    ADMIN = "admin"


class Access:
    """Knows the configured tokens; answers which role a request's Authorization header has."""

    def __init__(self, *, admin_token: str | None, cron_token: str | None) -> None:
        self._admin = admin_token.encode() if admin_token else None
        self._cron = cron_token.encode() if cron_token else None

    @staticmethod
    def _bearer(authorization: str | None) -> bytes | None:
        if not authorization:
            return None
        scheme, _, token = authorization.strip().partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return None
        return token.strip().encode()

    def require(self, authorization: str | None, *, admin_only: bool) -> Role:
        """The caller's role, or NotAuthorized / AccessNotConfigured."""
        if admin_only and self._admin is None:
            raise AccessNotConfigured("admin access not configured: set PRICING_ADMIN_TOKEN")
        if self._admin is None and self._cron is None:
            raise AccessNotConfigured(
                "refresh access not configured: set PRICING_CRON_TOKEN or PRICING_ADMIN_TOKEN"
            )
        given = self._bearer(authorization)
        if given is None:
            raise NotAuthorized("missing bearer token")
        # Compare against every configured token so timing says nothing about which one matched.
        is_admin = self._admin is not None and hmac.compare_digest(given, self._admin)
        is_cron = self._cron is not None and hmac.compare_digest(given, self._cron)
        if is_admin:
            return Role.ADMIN
        if is_cron and not admin_only:
            return Role.CRON
        raise NotAuthorized(
            "invalid token" if not is_cron else "this endpoint needs the admin token"
        )


class RateLimiter:
    """At most ``limit`` calls per client per fixed window of ``window_seconds``.

    With Redis the count is shared by every worker and replica (INCR on a key per window);
    without it, or while Redis fails, each process counts alone: a Redis outage must not lock
    operators out of the refresh they would use to recover.
    """

    def __init__(
        self,
        redis: Redis | None,
        *,
        limit: int = 10,
        window_seconds: int = 60,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if limit < 1 or window_seconds < 1:
            raise ValueError("a rate limit needs limit >= 1 and window_seconds >= 1")
        self.redis = redis
        self.limit = limit
        self.window_seconds = window_seconds
        self.clock = clock
        self.error_observers: list[Callable[[str], None]] = []
        self._window = -1
        self._local: dict[tuple[str, str], int] = {}

    async def hit(self, bucket: str, client: str) -> None:
        """Count one call of ``client`` to ``bucket``; RateLimited when over the limit."""
        now = self.clock()
        window = int(now // self.window_seconds)
        count = await self._shared_count(bucket, client, window)
        if count is None:
            count = self._local_count(bucket, client, window)
        if count > self.limit:
            retry_after = max(1, math.ceil((window + 1) * self.window_seconds - now))
            event(log, "access.rate_limited", logging.WARNING, bucket=bucket, client=client)
            raise RateLimited(
                f"too many calls: at most {self.limit} per {self.window_seconds} s; "
                f"retry in {retry_after} s",
                retry_after,
            )

    async def _shared_count(self, bucket: str, client: str, window: int) -> int | None:
        if self.redis is None:
            return None
        key = f"{RATE_LIMIT_PREFIX}:{bucket}:{client}:{window}"
        try:
            async with self.redis.pipeline(transaction=True) as pipe:
                pipe.incr(key)
                pipe.expire(key, self.window_seconds + 1)
                count, _ = await pipe.execute()
        except Exception as exc:  # any Redis failure: count in process instead
            event(log, "access.rate_limit_redis_error", logging.WARNING, error=type(exc).__name__)
            for observer in self.error_observers:
                observer("rate_limit")
            return None
        return int(count)

    def _local_count(self, bucket: str, client: str, window: int) -> int:
        if window != self._window:
            self._window = window
            self._local.clear()
        key = (bucket, client)
        if key not in self._local and len(self._local) >= MAX_LOCAL_CLIENTS:
            self._local.pop(next(iter(self._local)))
        count = self._local.get(key, 0) + 1
        self._local[key] = count
        return count
