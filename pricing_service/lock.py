"""The single-flight refresh lease: Redis across workers and replicas, a database row without.

A lease, not a lock: it expires ``ttl_seconds`` after it was last renewed, and its holder renews
it while the run progresses. A holder killed with SIGKILL blocks refreshes for at most one
lease; the next holder closes the killed run as abandoned (``Repository.abandon_running_runs``)
and the run's database fence keeps a holder that lost its lease from publishing anything.
"""

from __future__ import annotations

import logging
import secrets
from datetime import timedelta
from typing import TYPE_CHECKING, Protocol

import anyio.to_thread

from pricing_service.domain import utcnow
from pricing_service.lease_rows import LeaseRows
from pricing_service.logs import event

if TYPE_CHECKING:
    from redis.asyncio import Redis
    from sqlalchemy.engine import Engine

log = logging.getLogger("pricing_service.lock")

LOCK_NAME = "pricing:refresh:lock"


class RefreshLock(Protocol):
    ttl_seconds: float

    async def acquire(self) -> bool: ...
    async def renew(self) -> bool: ...
    async def set_run(self, run_id: int) -> None: ...
    async def current_run(self) -> tuple[bool, int | None]: ...
    async def release(self) -> None: ...


class RedisRefreshLock:
    """SET NX PX; renewed and released only by its holder (compare-and-set scripts).

    When Redis fails, the database lease takes over, so a Redis outage never stops refreshes.
    """

    _RELEASE = (
        "if redis.call('get', KEYS[1]) == ARGV[1] then "
        "redis.call('del', KEYS[2]); return redis.call('del', KEYS[1]) else return 0 end"
    )
    _RENEW = (
        "if redis.call('get', KEYS[1]) == ARGV[1] then "
        "redis.call('pexpire', KEYS[2], ARGV[2]); return redis.call('pexpire', KEYS[1], ARGV[2]) "
        "else return 0 end"
    )

    def __init__(self, redis: Redis, ttl_seconds: float, fallback: RefreshLock) -> None:
        # Imported with a Redis client only: a deployment without Redis never imports redis
        # (5.4 MB of a serving worker's RSS).
        from redis.exceptions import RedisError

        self._errors: type[Exception] = RedisError
        self.redis = redis
        self.ttl_seconds = ttl_seconds
        self.ttl_ms = int(ttl_seconds * 1000)
        self.fallback = fallback
        self.token = ""
        self.on_fallback = False

    def _degrade(self, operation: str, exc: Exception) -> None:
        event(log, "refresh.lock_fallback", logging.WARNING, op=operation, error=type(exc).__name__)

    async def acquire(self) -> bool:
        token = secrets.token_hex(16)
        try:
            acquired = await self.redis.set(LOCK_NAME, token, nx=True, px=self.ttl_ms)
        except self._errors as exc:
            self._degrade("acquire", exc)
            self.on_fallback = await self.fallback.acquire()
            return self.on_fallback
        if acquired:
            self.token = token
            self.on_fallback = False
            return True
        return False

    async def renew(self) -> bool:
        if self.on_fallback:
            return await self.fallback.renew()
        if not self.token:
            return False
        try:
            renewed = await self.redis.eval(
                self._RENEW, 2, LOCK_NAME, LOCK_NAME + ":run", self.token, str(self.ttl_ms)
            )
        except self._errors as exc:
            # Unknown, not lost: the run's database fence still keeps two runs from publishing.
            self._degrade("renew", exc)
            return True
        return bool(renewed)

    async def set_run(self, run_id: int) -> None:
        if self.on_fallback:
            await self.fallback.set_run(run_id)
            return
        try:
            await self.redis.set(LOCK_NAME + ":run", str(run_id), px=self.ttl_ms)
        except self._errors as exc:
            self._degrade("set_run", exc)

    async def current_run(self) -> tuple[bool, int | None]:
        try:
            held, run = await self.redis.mget(LOCK_NAME, LOCK_NAME + ":run")
        except self._errors as exc:
            self._degrade("current_run", exc)
            return await self.fallback.current_run()
        return held is not None, None if run is None else int(run)

    async def release(self) -> None:
        if self.on_fallback:
            self.on_fallback = False
            await self.fallback.release()
            return
        if self.token:
            token, self.token = self.token, ""
            try:
                await self.redis.eval(self._RELEASE, 2, LOCK_NAME, LOCK_NAME + ":run", token)
            except self._errors as exc:  # the lease expires by itself
                self._degrade("release", exc)


class DatabaseRefreshLock:
    """A lease row with an expiry, for deployments without Redis (SQLite or PostgreSQL)."""

    def __init__(self, engine: Engine, ttl_seconds: float) -> None:
        self.rows = LeaseRows(engine)
        self.ttl_seconds = ttl_seconds
        self.ttl = timedelta(seconds=ttl_seconds)
        self.holder = ""

    async def acquire(self) -> bool:
        holder = secrets.token_hex(16)
        ok = await anyio.to_thread.run_sync(
            self.rows.try_lock, LOCK_NAME, holder, self.ttl, utcnow()
        )
        if ok:
            self.holder = holder
        return ok

    async def renew(self) -> bool:
        if not self.holder:
            return False
        return await anyio.to_thread.run_sync(
            self.rows.renew_lock, LOCK_NAME, self.holder, self.ttl, utcnow()
        )

    async def set_run(self, run_id: int) -> None:
        await anyio.to_thread.run_sync(self.rows.set_lock_run, LOCK_NAME, self.holder, run_id)

    async def current_run(self) -> tuple[bool, int | None]:
        return await anyio.to_thread.run_sync(self.rows.lock_run, LOCK_NAME, utcnow())

    async def release(self) -> None:
        if self.holder:
            holder, self.holder = self.holder, ""
            await anyio.to_thread.run_sync(self.rows.release_lock, LOCK_NAME, holder)
