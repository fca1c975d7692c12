"""Which snapshot is current: memory, then Redis, then the database.

The database decides which snapshot is current; Redis and memory are caches of it. A worker
switches only forward (never to a snapshot older than one it served), and only after the new
snapshot's dataset is built, so no request waits for a build. A Redis pointer that lags the
database is repaired (a publish that could not reach Redis is retried here); with the database
unreachable, a newer Redis pointer is followed.

``SnapshotTracker`` needs only what ``StoredSnapshots`` (the repository) and ``SharedSnapshots``
(the Redis cache) declare: tests run it on fakes (tests/unit/test_tracker.py).
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import gc
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

import anyio
import anyio.to_thread
from cachetools import LRUCache

from pricing_service.curation import SelectorDataset
from pricing_service.domain import CacheTier
from pricing_service.errors import NoDataYet, StorageUnavailable
from pricing_service.logs import event
from pricing_service.spelling import spelling_rules

if TYPE_CHECKING:
    from datetime import date
    from decimal import Decimal

    from pricing_service.currency import Currency
    from pricing_service.domain import Catalog, CopRate, ModelPrice, SnapshotInfo

log = logging.getLogger("pricing_service.service")

T = TypeVar("T")

POINTER_CHECK_SECONDS = 2.0
# How long a request, a probe or the pointer check waits for the database before it answers
# without it (503, or the cached snapshot): a probe or a scrape gets an answer, never its own
# timeout. The worker thread left waiting is freed later by the engine's own bounds
# (repository.py: ping, connect, statement, db_watchdog). A healthy query takes milliseconds.
DATABASE_WAIT_SECONDS = 3.0
# A whole snapshot (thousands of rows) is a big read: it gets longer. It follows a pointer read
# that just succeeded, so the database answers; this bounds a stall that starts in between.
SNAPSHOT_LOAD_SECONDS = 20.0
# Worker threads for database reads: the pool's connections (pool_size + max_overflow). Threads
# left waiting on a stalled database then never take the ones that render the selector's views.
DATABASE_THREADS = 10


# glibc's mallopt parameters (malloc.h) and the values a serving worker sets (``tune_heap``).
M_MMAP_THRESHOLD = -3
M_ARENA_MAX = -8
MMAP_THRESHOLD_BYTES = 128 * 1024
ARENA_MAX = 2


def _libc(function: str) -> Callable[..., int] | None:
    """A glibc heap function (``malloc_trim``, ``mallopt``), or None on a C library without it
    (musl, macOS)."""
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        found: Callable[..., int] = getattr(ctypes.CDLL(name), function)
    except (OSError, AttributeError):
        return None
    return found


_TRIM = _libc("malloc_trim")
_MALLOPT = _libc("mallopt")


def tune_heap() -> bool:
    """Keep a serving worker's C heap from growing under load; whether glibc took both settings.

    1. Every block of 128 KiB or more in its own mapping, returned to the system when freed
       (``mallopt(M_MMAP_THRESHOLD, 128 KiB)``). glibc starts at this threshold but raises it
       (up to 32 MiB) each time a mapped block is freed; from then on blocks of that size are
       carved from the heaps, where the free ones stay in RSS between smaller live ones. A
       serving worker frees such blocks all the time (the buffers of each large answer it sends).
    2. At most two heaps (``mallopt(M_ARENA_MAX, 2)``): glibc gives threads up to eight heaps
       per core, and the worker threads (database reads, renders) each kept free pages of their
       own.

    Measured with ``pricing-service serve --workers 2`` after wrk on the selector's gzip views
    (docs/BENCHMARKS.md): the larger worker at 139-162 MB as glibc sets it, 134-139 MB with the
    threshold fixed, 126-127 MB with both. Set once, at start, before the worker's threads
    exist. Serving workers only (``create_app_from_env``)."""
    if _MALLOPT is None:
        return False
    mapped = _MALLOPT(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES)
    arenas = _MALLOPT(M_ARENA_MAX, ARENA_MAX)
    return bool(mapped and arenas)


def return_free_memory() -> bool:
    """Give the C heap's free pages back to the system (glibc ``malloc_trim(0)``); whether it
    could. The bytes of a dropped dataset and its renders (hundreds of KB each, allocated by
    malloc, many in the worker threads' arenas) are free after a switch but stay in the
    process's RSS until trimmed; Python's own small-object arenas are returned by Python."""
    if _TRIM is None:
        return False
    _TRIM(0)
    return True


def shared_parts(prices: Sequence[ModelPrice]) -> list[ModelPrice]:
    """``prices`` (equal to them) with their repeated parts held once: the benchmark names,
    capabilities, modalities and provider of each model are strings that every model of a
    snapshot repeats ("aider", "text", ...), decoded (from Redis or the database) into an object
    each. A serving worker holds the prices of the snapshot it serves (the dataset's, the
    curation assistant's): 533 models held 0.4 MB of such copies (make bench's recording)."""
    strings: dict[str, str] = {}
    names: dict[tuple[str, ...], tuple[str, ...]] = {}

    def one(text: str | None) -> str | None:
        return None if text is None else strings.setdefault(text, text)

    def each(texts: tuple[str, ...]) -> tuple[str, ...]:
        shared = tuple(strings.setdefault(t, t) for t in texts)
        return names.setdefault(shared, shared)

    return [
        replace(
            price,
            provider=strings.setdefault(price.provider, price.provider),
            pricing_source=one(price.pricing_source),
            call_prices_source=one(price.call_prices_source),
            capabilities=each(price.capabilities),
            input_modalities=each(price.input_modalities),
            output_modalities=each(price.output_modalities),
            benchmarks=tuple(
                (strings.setdefault(name, name), score) for name, score in price.benchmarks
            ),
        )
        for price in prices
    ]


class StoredSnapshots(Protocol):
    """The database's side: which snapshot is current, and its prices (``Repository``)."""

    def current_snapshot_id(self) -> int | None: ...

    def current_snapshot(self) -> tuple[SnapshotInfo, list[ModelPrice]] | None: ...


class SharedSnapshots(Protocol):
    """The shared tier's side: the pointer and the snapshots (``cache.SnapshotCache``)."""

    @property
    def available(self) -> bool: ...

    async def pointer(self) -> int | None: ...

    async def snapshot(self, snapshot_id: int) -> tuple[SnapshotInfo, list[ModelPrice]] | None: ...

    async def store(
        self, info: SnapshotInfo, prices: list[ModelPrice], *, make_current: bool
    ) -> None: ...


class DatabaseReads:
    """Repository reads in worker threads of their own, each waited for a bounded time."""

    def __init__(
        self, threads: int = DATABASE_THREADS, wait_seconds: float = DATABASE_WAIT_SECONDS
    ) -> None:
        self._threads = anyio.CapacityLimiter(threads)
        self.wait_seconds = wait_seconds  # PRICING_DATABASE_WAIT_SECONDS

    async def read(self, fn: Callable[..., T], *args: Any, seconds: float | None = None) -> T:
        """``fn(*args)`` (repository reads) in a worker thread, waited for at most ``seconds``
        (``wait_seconds`` when not given); then StorageUnavailable (a 503 with Retry-After), the
        thread left to finish or fail on its own (no result is used after it was given up on)."""
        if seconds is None:
            seconds = self.wait_seconds
        with anyio.move_on_after(seconds) as scope:
            return await anyio.to_thread.run_sync(
                fn, *args, abandon_on_cancel=True, limiter=self._threads
            )
        assert scope.cancelled_caught
        raise StorageUnavailable(
            f"database unavailable (no answer within {seconds:g} s); try again shortly"
        )


class SnapshotTracker:
    def __init__(
        self,
        *,
        repository: StoredSnapshots,
        cache: SharedSnapshots,
        catalog: Catalog,
        rate: Decimal,
        rate_source: str,
        currency: Currency,
        reads: DatabaseReads | None = None,
    ) -> None:
        self.repository = repository
        self.cache = cache
        self.catalog = catalog
        self.rate = rate
        self.rate_source = rate_source
        self.currency = currency
        self.rate_valid: tuple[date | None, date | None] = (None, None)
        self.reads = reads if reads is not None else DatabaseReads()
        self._current: int | None = None
        self._checked_at = float("-inf")
        self._checking = False
        self._first_load = asyncio.Lock()
        self._load_tier = CacheTier.MEMORY
        self._tasks: set[asyncio.Task[None]] = set()
        # Set while the last pointer check got no answer from the database in time.
        self.database_error: str | None = None
        self._datasets: LRUCache[int, SelectorDataset] = LRUCache(maxsize=2)
        self._loaded: LRUCache[int, tuple[SnapshotInfo, list[ModelPrice]]] = LRUCache(maxsize=2)
        # Freeze the heap after each switch (``_settle_heap``): set by serving workers only.
        self.settle_heap = False

    def served(self) -> SelectorDataset | None:
        """The current snapshot's dataset from memory alone (the hot path), or None."""
        current = self._current
        if current is None:
            return None
        return self._datasets.get(current)

    def held(self) -> frozenset[tuple[Any, ...]]:
        """The ``cache_id`` of every dataset held (at most two; a serving worker holds one once
        switched, ``_drop_older``): what rendered bytes may be kept for (``PricingService``);
        renders of any other dataset are dropped."""
        return frozenset(dataset.cache_id for dataset in self._datasets.values())

    async def _snapshot_id(self) -> int:
        if self._current is not None:
            if not self._checking and time.monotonic() - self._checked_at >= POINTER_CHECK_SECONDS:
                # Revalidate in the background: a slow Redis or database never delays a request.
                self._checking = True
                task = asyncio.get_running_loop().create_task(self._check_pointer())
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
            return self._current
        async with self._first_load:  # one cold load per worker, however many requests wait
            if self._current is None:
                self._checking = True
                await self._check_pointer()
        if self._current is None:
            raise NoDataYet("no prices yet: the first refresh has not finished")
        return self._current

    async def warm(self) -> None:
        """Load and render the current snapshot now (the lifespan, before serving traffic)."""
        self._checking = True
        await self._check_pointer()

    async def watch(self) -> None:
        """Re-check the current snapshot every few seconds, traffic or not (the lifespan's task):
        a new snapshot is built before any request asks for it, and a lagging Redis pointer is
        repaired even on an idle worker."""
        while True:
            await anyio.sleep(POINTER_CHECK_SECONDS)
            if not self._checking:
                self._checking = True
                try:
                    await self._check_pointer()
                except Exception as exc:  # the watcher must outlive any one bad check
                    event(log, "service.check_failed", logging.WARNING, error=type(exc).__name__)

    async def _check_pointer(self) -> None:
        try:
            database_id: int | None = None
            try:
                database_id = await self.reads.read(self.repository.current_snapshot_id)
            except Exception as exc:  # database down: Redis, then memory, keep serving
                # Given up on (read's bound): asking again now would wait as long again.
                self.database_error = (
                    f"no answer within {self.reads.wait_seconds:g} s"
                    if isinstance(exc, StorageUnavailable)
                    else None
                )
                event(log, "service.database_error", logging.WARNING, error=type(exc).__name__)
            else:
                self.database_error = None
            redis_id = await self.cache.pointer()
            target = database_id if database_id is not None else redis_id
            newer = target is not None and (self._current is None or target > self._current)
            tier = None
            if newer and target is not None:
                tier = await self._load(target)
                if tier is not None:
                    self._switch(target)
            if (
                database_id is not None
                and database_id == self._current
                and (redis_id is None or redis_id < database_id)
                # The load just stored it in Redis: once is enough.
                and tier is not CacheTier.DATABASE
            ):
                await self._share(database_id)
        finally:
            self._checking = False
            self._checked_at = time.monotonic()

    def _settle_heap(self) -> None:
        """Collect, then freeze what lives now (modules, the app, the new dataset) out of the
        cycle collector's reach. Its full passes walked ~200,000 objects in 90-120 ms each, with
        requests waiting (make bench, p99); after a freeze they walk only what is newer. The
        collect first means no cyclic garbage is frozen; after the first freeze it walks only
        the objects made since. Objects freed by reference counting (an older dataset, once
        evicted) are freed as before, and their pages returned to the system
        (``return_free_memory``). Serving workers only (``create_app_from_env``): in a process
        that builds many apps, such as the test suite, frozen cycles would pile up."""
        started = time.perf_counter()
        collected = gc.collect()
        gc.freeze()
        trimmed = return_free_memory()
        event(
            log,
            "service.heap_settled",
            collected=collected,
            frozen=gc.get_freeze_count(),
            trimmed=trimmed,
            duration_ms=round((time.perf_counter() - started) * 1000, 1),
        )

    def _switch(self, snapshot_id: int) -> None:
        if self._current is not None and snapshot_id <= self._current:
            return  # loads of one snapshot raced (a publish, the watcher): switched once, forward
        if self._current is not None:
            event(log, "service.switched", previous=self._current, snapshot_id=snapshot_id)
        self._current = snapshot_id
        if self.settle_heap:
            self._drop_older(snapshot_id)
            self._settle_heap()

    def _drop_older(self, snapshot_id: int) -> None:
        """Let go of the datasets (and their prices) older than ``snapshot_id``, just switched
        to: a serving worker holds only the one it serves. Nothing reads an older one once the
        switch is made (the pointer only moves forward), and its renders go with it at the next
        render (``held``). Measured (``serve --workers 2``, SQLite, Redis, five refreshes): each
        worker steady at 109-110 MB holding two, 104-106 MB holding one."""
        for older in [held for held in self._datasets if held < snapshot_id]:
            del self._datasets[older]
        for older in [held for held in self._loaded if held < snapshot_id]:
            del self._loaded[older]

    async def _load(self, snapshot_id: int, *, ask_redis: bool = True) -> CacheTier | None:
        """Build the dataset of ``snapshot_id`` (from Redis, else the database) into memory;
        the tier it came from (memory when built before), None when it could not. A load from
        the database stores the snapshot in Redis (one write) and makes it current there."""
        if snapshot_id in self._datasets:
            return CacheTier.MEMORY
        loaded = await self.cache.snapshot(snapshot_id) if ask_redis else None
        tier = CacheTier.REDIS
        if loaded is None:
            try:
                loaded = await self.reads.read(
                    self.repository.current_snapshot, seconds=SNAPSHOT_LOAD_SECONDS
                )
            except Exception as exc:
                event(log, "service.database_error", logging.WARNING, error=type(exc).__name__)
                return None
            tier = CacheTier.DATABASE
            if loaded is None or loaded[0].id < snapshot_id:
                return None
        info, prices = loaded
        # CPU work (tens of ms, seconds for a huge catalog): off the event loop.
        dataset = await anyio.to_thread.run_sync(self._build, info, prices)
        self._datasets[info.id] = dataset
        # The dataset's prices (``shared_parts``), not the ones decoded: held once.
        prices = list(dataset.prices)
        self._loaded[info.id] = (info, prices)
        self._load_tier = tier
        if tier is CacheTier.DATABASE:
            await self.cache.store(info, prices, make_current=True)
        return tier

    async def _share(self, snapshot_id: int) -> None:
        """Put this worker's copy of ``snapshot_id`` in Redis when Redis lacks or lags it."""
        loaded = self._loaded.get(snapshot_id)
        if loaded is not None and self.cache.available:
            await self.cache.store(loaded[0], loaded[1], make_current=True)
            event(log, "service.pointer_repaired", snapshot_id=snapshot_id)

    async def dataset(self) -> tuple[SelectorDataset, CacheTier]:
        """The dataset of the current snapshot, and the tier it came from."""
        cold = self._current is None  # this request waits for the first load of this worker
        snapshot_id = await self._snapshot_id()
        found = self._datasets.get(snapshot_id)
        if found is not None:
            return found, self._load_tier if cold else CacheTier.MEMORY
        # Evicted (never in practice: the LRU keeps two); serve the newest one we have.
        fallback = self._newest_dataset()
        if fallback is None:
            raise NoDataYet("no prices available: database and cache unreachable")
        return fallback, CacheTier.MEMORY

    def _newest_dataset(self) -> SelectorDataset | None:
        if not self._datasets:
            return None
        return self._datasets[max(self._datasets.keys())]

    def _build(self, info: SnapshotInfo, prices: list[ModelPrice]) -> SelectorDataset:
        started = time.perf_counter()
        dataset = SelectorDataset(
            snapshot=info,
            prices=shared_parts(prices),
            catalog=self.catalog,
            rate=self.rate,
            rate_source=self.rate_source,
            currency=self.currency,
            rate_valid_from=self.rate_valid[0],
            rate_valid_to=self.rate_valid[1],
            # genai-prices' matching rules without its price data (spelling.py).
            matcher=spelling_rules(),
        )
        event(
            log,
            "service.dataset_built",
            snapshot_id=info.id,
            models=len(prices),
            duration_ms=round((time.perf_counter() - started) * 1000, 1),
        )
        return dataset

    async def apply_rate(self, rate: CopRate, *, changed: bool) -> None:
        """Build datasets at ``rate`` from now on, and rebuild the loaded ones that are not at
        it (off the loop). Also called on every re-read of the rate (rates.py): a snapshot whose
        build started before a change and ended after it is rebuilt here, so none stays at an
        old rate."""
        self.rate, self.rate_source = rate.rate, rate.source
        self.rate_valid = (rate.valid_from, rate.valid_to)
        wanted = (rate.rate, rate.source, rate.valid_from)
        rebuilt = 0
        for info, prices in list(self._loaded.values()):
            found = self._datasets.get(info.id)
            if found is None or found.cache_id[1:] != wanted:
                dataset = await anyio.to_thread.run_sync(self._build, info, prices)
                self._datasets[info.id] = dataset
                self._loaded[info.id] = (info, list(dataset.prices))  # one copy (``_load``)
                rebuilt += 1
        if changed or rebuilt:
            event(
                log,
                "service.rate_applied",
                rate=str(rate.rate),
                source=rate.source,
                rebuilt=rebuilt,
            )

    async def publish(self, info: SnapshotInfo) -> None:
        """After this process stored ``info``: build it, switch to it, and put it in Redis with
        one write (pointer included), so every worker and replica follows.

        The prices are read back from the database (the writer hands over the snapshot, not its
        rows); Redis is not asked for a snapshot that was just written. A snapshot this worker
        already serves, or an older one, changes nothing. When the database does not answer,
        the watcher's next check loads it (and repairs the Redis pointer)."""
        if self._current is not None and info.id <= self._current:
            return
        self._checking = True
        try:
            if await self._load(info.id, ask_redis=False) is not None:
                self._switch(info.id)
        finally:
            self._checking = False
            self._checked_at = time.monotonic()
