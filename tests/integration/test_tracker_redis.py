"""The tracker on PostgreSQL and Redis: a publish reaches Redis in one write, and a second
worker follows it from Redis alone."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from redis.asyncio import Redis

from pricing_service.cache import POINTER_KEY, SnapshotCache
from pricing_service.currency import COP
from pricing_service.db import create_db_engine
from pricing_service.domain import ModelPrice, SnapshotInfo
from pricing_service.repository import Repository
from pricing_service.service import PricingService
from tests.support.recorded_service import recorded_listing
from tests.support.recording import CATALOG
from tests.support.snapshots import store_listing

pytestmark = pytest.mark.integration
TTL = 3600


class CountingCache(SnapshotCache):
    """The real Redis tier, every snapshot write recorded (snapshot id, made current)."""

    def __init__(self, redis: Redis) -> None:
        super().__init__(redis, TTL)
        self.writes: list[tuple[int, bool]] = []

    async def store(
        self, info: SnapshotInfo, prices: list[ModelPrice], *, make_current: bool
    ) -> None:
        self.writes.append((info.id, make_current))
        await super().store(info, prices, make_current=make_current)


class CountingRepository(Repository):
    snapshot_reads = 0

    def current_snapshot(self) -> tuple[SnapshotInfo, list[ModelPrice]] | None:
        self.snapshot_reads += 1
        return super().current_snapshot()


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_url, socket_timeout=5)
    try:
        yield client
    finally:
        await client.aclose()


def service(repository: Repository, cache: SnapshotCache) -> PricingService:
    return PricingService(
        repository=repository,
        cache=cache,
        catalog=CATALOG,
        rate=Decimal("4000"),
        rate_source="fixed: test",
        currency=COP,
        ttl_seconds=TTL,
    )


def store_snapshot(repository: Repository, minute: int) -> SnapshotInfo:
    return store_listing(
        repository, recorded_listing(), fetched_at=datetime(2026, 12, 2, 12, minute, tzinfo=UTC)
    )


async def test_a_publish_is_one_redis_write_and_another_worker_follows_it_from_redis(
    database_url_pg: str, redis: Redis
) -> None:
    engine = create_db_engine(database_url_pg)
    try:
        writer_repository = CountingRepository(engine)
        writer_cache = CountingCache(redis)
        writer = service(writer_repository, writer_cache)
        first = store_snapshot(writer_repository, 0)
        await writer.warm()
        assert writer_cache.writes == [(first.id, True)]

        second = store_snapshot(writer_repository, 1)  # what a refresh stores, then publishes
        writer_cache.writes.clear()
        reads = writer_repository.snapshot_reads
        await writer.publish(second)
        assert writer_cache.writes == [(second.id, True)]
        assert writer_repository.snapshot_reads == reads + 1
        assert await redis.get(POINTER_KEY) == str(second.id).encode()
        dataset, _ = await writer.dataset()
        assert dataset.snapshot.id == second.id

        await writer.warm()  # the watcher's next check: nothing to repair
        assert writer_cache.writes == [(second.id, True)]

        # Another worker starting now reads the pointer from the database and the snapshot's
        # prices from Redis: no write, no read of the snapshot from the database.
        reader_repository = CountingRepository(engine)
        reader_cache = CountingCache(redis)
        reader = service(reader_repository, reader_cache)
        await reader.warm()
        dataset, _ = await reader.dataset()
        assert dataset.snapshot.id == second.id
        assert reader_cache.writes == []
        assert reader_repository.snapshot_reads == 0
    finally:
        engine.dispose()
