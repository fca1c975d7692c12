"""The shared tier of the read path: the current snapshot in Redis, versioned, with a breaker.

Keys: ``pricing:current`` caches the id of the current snapshot (the database decides it; the
pointer only moves forward and a worker repairs it when it lags);
``pricing:snapshot:<id>`` holds that snapshot's prices. A new refresh writes a new id, so all
workers switch together; old keys expire after the cache TTL. Redis is optional and may fail:
every error opens a breaker for a few seconds during which Redis is not asked at all, so an
outage costs the read path nothing but a counter.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from datetime import datetime
from typing import TYPE_CHECKING

import msgspec

from pricing_service.domain import ModelPrice, SnapshotInfo
from pricing_service.logs import event

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from redis.asyncio import Redis

log = logging.getLogger("pricing_service.cache")

POINTER_KEY = "pricing:current"
SNAPSHOT_KEY = "pricing:snapshot:{id}"


class _Payload(msgspec.Struct, frozen=True):
    id: int
    fetched_at: datetime
    source: str
    model_count: int
    prices: list[ModelPrice]


# The pointer only moves forward: a worker repairing a lagging pointer must never overwrite a
# newer one that another process published meanwhile.
_ADVANCE = (
    "local cur = redis.call('get', KEYS[1]) "
    "if (not cur) or tonumber(cur) < tonumber(ARGV[1]) then "
    "redis.call('set', KEYS[1], ARGV[1], 'EX', ARGV[2]) return 1 end "
    "redis.call('expire', KEYS[1], ARGV[2]) return 0"
)

_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(_Payload)


class SnapshotCache:
    def __init__(
        self,
        redis: Redis | None,
        ttl_seconds: int,
        breaker_seconds: float = 5.0,
        *,
        error_observers: Iterable[Callable[[str], None]] = (),
    ) -> None:
        self.redis = redis
        self.ttl_seconds = ttl_seconds
        self.breaker_seconds = breaker_seconds
        self._open_until = 0.0
        self.errors: Counter[str] = Counter()
        # Called with the operation on every Redis error (metrics count them across workers).
        self.error_observers: list[Callable[[str], None]] = list(error_observers)

    @property
    def configured(self) -> bool:
        return self.redis is not None

    @property
    def available(self) -> bool:
        """False while the breaker is open after a Redis error."""
        return self.redis is not None and time.monotonic() >= self._open_until

    def _trip(self, operation: str, exc: Exception) -> None:
        self.errors[operation] += 1
        for observer in self.error_observers:
            observer(operation)
        was_closed = time.monotonic() >= self._open_until
        self._open_until = time.monotonic() + self.breaker_seconds
        if was_closed:
            event(log, "cache.redis_error", logging.WARNING, op=operation, error=type(exc).__name__)

    async def pointer(self) -> int | None:
        if self.redis is None or not self.available:
            return None
        try:
            value = await self.redis.get(POINTER_KEY)
        except Exception as exc:  # any Redis failure degrades to the next tier
            self._trip("get_pointer", exc)
            return None
        return None if value is None else int(value)

    async def snapshot(self, snapshot_id: int) -> tuple[SnapshotInfo, list[ModelPrice]] | None:
        if self.redis is None or not self.available:
            return None
        try:
            data = await self.redis.get(SNAPSHOT_KEY.format(id=snapshot_id))
        except Exception as exc:
            self._trip("get_snapshot", exc)
            return None
        if data is None:
            return None
        try:
            payload = _decoder.decode(data)
        except msgspec.DecodeError:  # written by another version: ignore it, the database has it
            return None
        info = SnapshotInfo(payload.id, payload.fetched_at, payload.source, payload.model_count)
        return info, payload.prices

    async def store(
        self, info: SnapshotInfo, prices: list[ModelPrice], *, make_current: bool
    ) -> None:
        if self.redis is None or not self.available:
            return
        payload = _Payload(info.id, info.fetched_at, info.source, info.model_count, prices)
        try:
            async with self.redis.pipeline(transaction=True) as pipe:
                pipe.set(
                    SNAPSHOT_KEY.format(id=info.id), _encoder.encode(payload), ex=self.ttl_seconds
                )
                if make_current:
                    pipe.eval(_ADVANCE, 1, POINTER_KEY, str(info.id), str(self.ttl_seconds))
                await pipe.execute()
        except Exception as exc:
            self._trip("store", exc)

    async def ping(self) -> bool:
        if self.redis is None:
            return False
        try:
            await self.redis.ping()
        except Exception as exc:
            self._trip("ping", exc)
            return False
        return True
