"""The current-snapshot tracker on fakes: which snapshot is served, and what reaches Redis.

A fake repository (the database's current snapshot) and a fake shared tier (Redis) that records
every write; the tracker is the real one. A publish writes the snapshot to Redis once.
"""

from __future__ import annotations

import logging
import platform
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from decimal import Decimal

import anyio
import pytest

from pricing_service.currency import COP
from pricing_service.domain import CopRate, ModelPrice, SnapshotInfo, SnapshotSource
from pricing_service.errors import NoDataYet
from pricing_service.tracker import SnapshotTracker
from tests.support.recording import CATALOG, normalized_recording

PRICES: list[ModelPrice] = list(normalized_recording().prices[:40])


def snapshot(snapshot_id: int) -> tuple[SnapshotInfo, list[ModelPrice]]:
    fetched = datetime(2026, 4, 29, 12, snapshot_id, tzinfo=UTC)
    return SnapshotInfo(snapshot_id, fetched, SnapshotSource.PRICEPERTOKEN, len(PRICES)), PRICES


@dataclass
class FakeDatabase:
    current: tuple[SnapshotInfo, list[ModelPrice]] | None = None
    down: bool = False
    snapshot_reads: int = 0

    def current_snapshot_id(self) -> int | None:
        if self.down:
            raise ConnectionError("database down")
        return None if self.current is None else self.current[0].id

    def current_snapshot(self) -> tuple[SnapshotInfo, list[ModelPrice]] | None:
        if self.down:
            raise ConnectionError("database down")
        self.snapshot_reads += 1
        return self.current


@dataclass
class FakeRedis:
    pointer_id: int | None = None
    snapshots: dict[int, tuple[SnapshotInfo, list[ModelPrice]]] = field(default_factory=dict)
    writes: list[tuple[int, bool]] = field(default_factory=list)  # (snapshot id, make_current)
    snapshot_gets: list[int] = field(default_factory=list)

    @property
    def available(self) -> bool:
        return True

    async def pointer(self) -> int | None:
        return self.pointer_id

    async def snapshot(self, snapshot_id: int) -> tuple[SnapshotInfo, list[ModelPrice]] | None:
        self.snapshot_gets.append(snapshot_id)
        return self.snapshots.get(snapshot_id)

    async def store(
        self, info: SnapshotInfo, prices: list[ModelPrice], *, make_current: bool
    ) -> None:
        self.writes.append((info.id, make_current))
        self.snapshots[info.id] = (info, prices)
        if make_current and (self.pointer_id is None or self.pointer_id < info.id):
            self.pointer_id = info.id


def tracker(database: FakeDatabase, redis: FakeRedis) -> SnapshotTracker:
    return SnapshotTracker(
        repository=database,
        cache=redis,
        catalog=CATALOG,
        rate=Decimal("4000"),
        rate_source="fixed",
        currency=COP,
    )


class _Events(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.names: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.names.append(record.getMessage().split()[0])


@pytest.fixture(autouse=True)
def events() -> Iterator[list[str]]:
    """The event names the tracker logs, every test's kept from the root logger's handlers (an
    earlier test may have left the service's own handler there, on a stream pytest closed)."""
    logger = logging.getLogger("pricing_service.service")
    handler = _Events()
    level, propagate = logger.level, logger.propagate
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    try:
        yield handler.names
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
        logger.propagate = propagate


async def test_a_publish_writes_the_snapshot_to_redis_once_and_nothing_repairs_it(
    events: list[str],
) -> None:
    database, redis = FakeDatabase(current=snapshot(1)), FakeRedis()
    current = tracker(database, redis)
    await current.warm()
    assert redis.writes == [(1, True)]  # the cold load from the database shares it, once

    database.current = snapshot(2)  # the refresher stored snapshot 2
    redis.writes.clear()
    await current.publish(database.current[0])
    assert redis.writes == [(2, True)]
    assert redis.snapshot_gets == [1]  # not asked for the snapshot just written
    dataset, _ = await current.dataset()
    assert dataset.snapshot.id == 2

    await current.warm()  # the watcher's next check: Redis already has it
    assert redis.writes == [(2, True)]
    assert "service.pointer_repaired" not in events
    assert events.count("service.switched") == 1


@dataclass
class GatedDatabase(FakeDatabase):
    """Its snapshot read returns only once ``parties`` reads are waiting in it (bounded)."""

    gate: threading.Barrier = field(default_factory=lambda: threading.Barrier(2, timeout=10))

    def current_snapshot(self) -> tuple[SnapshotInfo, list[ModelPrice]] | None:
        self.gate.wait()
        return super().current_snapshot()


async def test_a_publish_racing_the_watcher_switches_once(events: list[str]) -> None:
    """The watcher and a publish both load the first snapshot at once (a loaded machine): the
    worker switches to it once (a serving worker settles its heap once per switch)."""
    database = GatedDatabase(current=snapshot(1))
    current = tracker(database, FakeRedis())
    switches: list[int] = []
    switch = current._switch

    def counted(snapshot_id: int) -> None:
        switches.append(snapshot_id)
        switch(snapshot_id)

    current._switch = counted  # type: ignore[method-assign]
    async with anyio.create_task_group() as tasks:
        tasks.start_soon(current.warm)
        tasks.start_soon(current.publish, snapshot(1)[0])
    assert database.snapshot_reads == 2  # both loaded it
    assert switches == [1, 1]
    assert "service.switched" not in events  # the second changed nothing
    dataset, _ = await current.dataset()
    assert dataset.snapshot.id == 1


async def test_a_cold_check_that_loads_from_the_database_writes_once() -> None:
    """The pointer check loads a snapshot Redis lags on: one write, not a store plus a repair."""
    database, redis = FakeDatabase(current=snapshot(3)), FakeRedis(pointer_id=2)
    current = tracker(database, redis)
    await current.warm()
    assert redis.writes == [(3, True)]
    assert redis.pointer_id == 3


async def test_publishing_what_is_served_or_older_writes_nothing() -> None:
    database, redis = FakeDatabase(current=snapshot(5)), FakeRedis()
    current = tracker(database, redis)
    await current.warm()
    redis.writes.clear()
    reads = database.snapshot_reads
    await current.publish(snapshot(5)[0])
    await current.publish(snapshot(4)[0])
    assert redis.writes == []
    assert database.snapshot_reads == reads


async def test_a_lost_redis_pointer_is_repaired_from_memory(
    events: list[str],
) -> None:
    database, redis = FakeDatabase(current=snapshot(1)), FakeRedis()
    current = tracker(database, redis)
    await current.warm()
    redis.pointer_id = None  # Redis flushed or restarted
    redis.snapshots.clear()
    redis.writes.clear()
    reads = database.snapshot_reads
    await current.warm()
    assert redis.writes == [(1, True)]
    assert database.snapshot_reads == reads  # this worker's copy, not a second database read
    assert events.count("service.pointer_repaired") == 1


async def test_with_the_database_down_a_newer_redis_snapshot_is_followed() -> None:
    database, redis = FakeDatabase(current=snapshot(1)), FakeRedis()
    current = tracker(database, redis)
    await current.warm()
    database.down = True
    info, prices = snapshot(2)
    redis.snapshots[2] = (info, prices)
    redis.pointer_id = 2
    redis.writes.clear()
    await current.warm()
    dataset, _ = await current.dataset()
    assert dataset.snapshot.id == 2
    assert redis.writes == []  # nothing to repair: Redis is ahead


async def test_a_publish_the_database_cannot_answer_leaves_the_served_snapshot() -> None:
    database, redis = FakeDatabase(current=snapshot(1)), FakeRedis()
    current = tracker(database, redis)
    await current.warm()
    database.down = True
    redis.writes.clear()
    await current.publish(snapshot(2)[0])
    dataset, _ = await current.dataset()
    assert dataset.snapshot.id == 1
    assert redis.writes == []
    database.down = False
    database.current = snapshot(2)
    await current.warm()  # the watcher's next check loads it and shares it, once
    dataset, _ = await current.dataset()
    assert dataset.snapshot.id == 2
    assert redis.writes == [(2, True)]


async def test_nothing_stored_anywhere_is_no_data_yet() -> None:
    current = tracker(FakeDatabase(), FakeRedis())
    with pytest.raises(NoDataYet):
        await current.dataset()
    assert current.served() is None


async def _followed_to_five(*, settle_heap: bool) -> SnapshotTracker:
    """A tracker warmed on snapshot 1 that then followed publishes of 2 to 5."""
    database, redis = FakeDatabase(current=snapshot(1)), FakeRedis()
    current = tracker(database, redis)
    current.settle_heap = settle_heap
    await current.warm()
    for snapshot_id in range(2, 6):
        database.current = snapshot(snapshot_id)
        await current.publish(database.current[0])
    return current


async def test_after_any_number_of_publishes_the_tracker_holds_the_last_two_datasets() -> None:
    """What the service may keep renders for (``held``): the current dataset and the one
    before it, however many snapshots the worker followed."""
    current = await _followed_to_five(settle_heap=False)
    served, _ = await current.dataset()
    assert served.snapshot.id == 5
    assert {cache_id[0] for cache_id in current.held()} == {4, 5}
    assert served.cache_id in current.held()


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc's heap functions only")
def test_a_serving_workers_heap_functions_are_found_on_glibc() -> None:
    # In a process of its own: the threshold is process-wide and stays set.
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            "from pricing_service.tracker import tune_heap, return_free_memory;"
            "print(tune_heap(), return_free_memory())",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert done.stdout.split() == ["True", "True"], done.stderr


async def test_a_serving_worker_holds_only_the_dataset_it_serves_after_a_switch(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``settle_heap`` (serving workers): the older datasets and their prices are dropped at the
    switch. The heap's freeze itself is left out here (it would pile up in the test process)."""
    monkeypatch.setattr(SnapshotTracker, "_settle_heap", lambda self: None)
    current = await _followed_to_five(settle_heap=True)
    served, _ = await current.dataset()
    assert served.snapshot.id == 5
    assert {cache_id[0] for cache_id in current.held()} == {5}
    assert current.served() is served


def _decoded(prices: list[ModelPrice]) -> list[ModelPrice]:
    """Each price as a decode makes it: every string and tuple an object of its own."""

    def own(text: str) -> str:
        return "".join(list(text))  # an equal string, not the same object

    return [
        replace(
            p,
            provider=own(p.provider),
            capabilities=tuple(own(c) for c in p.capabilities),
            input_modalities=tuple(own(m) for m in p.input_modalities),
            output_modalities=tuple(own(m) for m in p.output_modalities),
            benchmarks=tuple((own(name), score) for name, score in p.benchmarks),
        )
        for p in prices
    ]


async def test_the_prices_held_share_their_repeated_parts_and_are_held_once() -> None:
    info, prices = snapshot(1)
    database = FakeDatabase(current=(info, _decoded(prices)))
    current = tracker(database, FakeRedis())
    await current.warm()
    served, _ = await current.dataset()
    held = served.prices
    assert list(held) == prices  # equal, field by field
    with_benchmarks = [p for p in held if p.benchmarks]
    assert len(with_benchmarks) > 1
    first, second = with_benchmarks[:2]
    assert first.benchmarks[0][0] == second.benchmarks[0][0]
    assert first.benchmarks[0][0] is second.benchmarks[0][0]
    texts = [p for p in held if p.input_modalities == ("text",)]
    assert len(texts) > 1
    assert texts[0].input_modalities is texts[1].input_modalities
    assert {p.provider for p in held} == {p.provider for p in prices}
    providers: dict[str, str] = {}
    for price in held:
        assert providers.setdefault(price.provider, price.provider) is price.provider
    # The tracker's own copy of the snapshot (its rebuilds, Redis repairs) is the dataset's.
    loaded = current._loaded[info.id][1]
    assert all(a is b for a, b in zip(loaded, held, strict=True))
    # A rebuild at another rate keeps one copy too.
    await current.apply_rate(
        CopRate(rate=Decimal("4100"), source="fixed", valid_from=None, valid_to=None),
        changed=True,
    )
    rebuilt, _ = await current.dataset()
    assert rebuilt is not served
    loaded = current._loaded[info.id][1]
    assert all(a is b for a, b in zip(loaded, rebuilt.prices, strict=True))
