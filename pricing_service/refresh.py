"""One refresh run, the background scheduler and the single-flight lock."""

from __future__ import annotations

import logging
import random
import secrets
import time
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol

import anyio
import anyio.to_thread
from redis.exceptions import RedisError

from pricing_service.curation import is_local_id
from pricing_service.domain import NormalizedCatalogue, PriceBasis, RunStatus, RunSummary
from pricing_service.errors import (
    PricingError,
    RefreshInProgress,
    SanityCheckFailed,
    UpstreamError,
)
from pricing_service.logs import event
from pricing_service.normalize import PriceIndex, normalize_catalogue
from pricing_service.repository import SEED_SOURCE, UPSTREAM_SOURCE
from pricing_service.seed import load_seed

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from redis.asyncio import Redis

    from pricing_service.domain import Catalog, SnapshotInfo
    from pricing_service.repository import Repository
    from pricing_service.upstream import PricePerTokenClient, UpstreamFetch

log = logging.getLogger("pricing_service.refresh")

LOCK_NAME = "pricing:refresh:lock"
# A run that fetched far fewer models than the last good snapshot is suspect (a truncated or
# half-broken answer); its prices must not replace good ones.
MIN_SHARE_OF_PREVIOUS = 0.5
# Without `force`, a trigger this soon after a successful run gets that run back.
RECENT_RUN_SECONDS = 300
# After a failed run the scheduler retries sooner than the full interval, doubling up to it.
FIRST_RETRY_SECONDS = 300


def utcnow() -> datetime:
    return datetime.now(UTC)


# -- single-flight lock ---------------------------------------------------------------------


class RefreshLock(Protocol):
    async def acquire(self) -> bool: ...
    async def set_run(self, run_id: int) -> None: ...
    async def current_run(self) -> tuple[bool, int | None]: ...
    async def release(self) -> None: ...


class RedisRefreshLock:
    """SET NX PX across workers and replicas; released only by its holder.

    When Redis fails, the database lock takes over, so a Redis outage never stops refreshes.
    """

    _RELEASE = (
        "if redis.call('get', KEYS[1]) == ARGV[1] then "
        "redis.call('del', KEYS[2]); return redis.call('del', KEYS[1]) else return 0 end"
    )

    def __init__(self, redis: Redis, ttl_seconds: float, fallback: RefreshLock) -> None:
        self.redis = redis
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
        except RedisError as exc:
            self._degrade("acquire", exc)
            self.on_fallback = await self.fallback.acquire()
            return self.on_fallback
        if acquired:
            self.token = token
            self.on_fallback = False
            return True
        return False

    async def set_run(self, run_id: int) -> None:
        if self.on_fallback:
            await self.fallback.set_run(run_id)
            return
        try:
            await self.redis.set(LOCK_NAME + ":run", str(run_id), px=self.ttl_ms)
        except RedisError as exc:
            self._degrade("set_run", exc)

    async def current_run(self) -> tuple[bool, int | None]:
        try:
            held, run = await self.redis.mget(LOCK_NAME, LOCK_NAME + ":run")
        except RedisError as exc:
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
            except RedisError as exc:  # the lock expires by itself
                self._degrade("release", exc)


class DatabaseRefreshLock:
    """A lock row with an expiry, for deployments without Redis (SQLite or PostgreSQL)."""

    def __init__(self, repository: Repository, ttl_seconds: float) -> None:
        self.repository = repository
        self.ttl = timedelta(seconds=ttl_seconds)
        self.holder = ""

    async def acquire(self) -> bool:
        holder = secrets.token_hex(16)
        ok = await anyio.to_thread.run_sync(
            self.repository.try_lock, LOCK_NAME, holder, self.ttl, utcnow()
        )
        if ok:
            self.holder = holder
        return ok

    async def set_run(self, run_id: int) -> None:
        await anyio.to_thread.run_sync(self.repository.set_lock_run, LOCK_NAME, self.holder, run_id)

    async def current_run(self) -> tuple[bool, int | None]:
        return await anyio.to_thread.run_sync(self.repository.lock_run, LOCK_NAME, utcnow())

    async def release(self) -> None:
        if self.holder:
            await anyio.to_thread.run_sync(self.repository.release_lock, LOCK_NAME, self.holder)
            self.holder = ""


# -- sanity gate ----------------------------------------------------------------------------


def sanity_check(catalogue: NormalizedCatalogue, previous: SnapshotInfo | None) -> None:
    """Refuse a catalogue that is empty, has no price at all, or shrank to under half."""
    if catalogue.rows_seen == 0 or not catalogue.prices:
        raise SanityCheckFailed("upstream returned an empty model list")
    if catalogue.priced_count == 0:
        raise SanityCheckFailed(
            f"upstream returned {len(catalogue.prices)} models and not one price"
        )
    if (
        previous is not None
        and len(catalogue.prices) < previous.model_count * MIN_SHARE_OF_PREVIOUS
    ):
        raise SanityCheckFailed(
            f"upstream returned {len(catalogue.prices)} models, under half of the "
            f"{previous.model_count} in the last good snapshot #{previous.id}"
        )


# -- one run --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RefreshOutcome:
    run: RunSummary
    started: bool  # False when a recent successful run was returned instead of a new one


class Refresher:
    """Runs refreshes under the single-flight lock and records each one."""

    def __init__(
        self,
        *,
        repository: Repository,
        client: PricePerTokenClient,
        catalog: Catalog,
        lock: RefreshLock,
        publish: Callable[[SnapshotInfo], Awaitable[None]],
        interval_seconds: int,
        stale_run_seconds: float,
    ) -> None:
        self.repository = repository
        self.client = client
        self.catalog = catalog
        self.lock = lock
        self.publish = publish
        self.interval_seconds = interval_seconds
        self.stale_run_seconds = stale_run_seconds
        self.observers: list[Callable[[str, dict[str, Any]], None]] = []
        # Called with each upstream fetch, good or not (metrics read its call latencies).
        self.fetch_observers: list[Callable[[UpstreamFetch], None]] = []

    def _report(self, name: str, level: int = logging.INFO, **fields: Any) -> None:
        event(log, name, level, **fields)
        for observer in self.observers:
            observer(name, fields)

    async def _db(self, fn: Callable[..., Any], *args: Any) -> Any:
        return await anyio.to_thread.run_sync(fn, *args)

    async def refresh(self, trigger: str, *, force: bool = False) -> RefreshOutcome:
        """Fetch, normalize, check and store; or tell which run is already in progress."""
        if not force:
            recent = await self._recent_success()
            if recent is not None:
                self._report("refresh.skipped", reason="recent", run_id=recent.id, trigger=trigger)
                return RefreshOutcome(run=recent, started=False)
        if not await self.lock.acquire():
            run_id = await self._running_run_id()
            self._report("refresh.in_progress", run_id=run_id, trigger=trigger)
            raise RefreshInProgress(
                "a refresh is already running" + (f" (run {run_id})" if run_id else ""), run_id
            )
        try:
            run = await self._db(self.repository.start_run, trigger, utcnow())
            await self.lock.set_run(run.id)
            return RefreshOutcome(run=await self._run(run), started=True)
        finally:
            await self.lock.release()

    async def _running_run_id(self) -> int | None:
        # The holder records its run id just after taking the lock: wait a moment for it.
        for _ in range(20):
            held, run_id = await self.lock.current_run()
            if run_id is not None or not held:
                return run_id
            await anyio.sleep(0.05)
        return None

    async def _recent_success(self) -> RunSummary | None:
        last = await self._db(self.repository.last_run, RunStatus.SUCCEEDED)
        if last is None or last.finished_at is None:
            return None
        if (utcnow() - last.finished_at).total_seconds() > RECENT_RUN_SECONDS:
            return None
        return last  # type: ignore[no-any-return]

    async def _run(self, run: RunSummary) -> RunSummary:
        started = time.perf_counter()
        self._report("refresh.started", run_id=run.id, trigger=run.trigger)
        fetch = None
        catalogue = None
        try:
            fetch = await self.client.fetch_catalogue(progress=self._progress(run.id))
            for fetch_observer in self.fetch_observers:
                fetch_observer(fetch)
            catalogue = normalize_catalogue(fetch.rows, fetch.details)
            self._report(
                "refresh.normalized",
                run_id=run.id,
                rows=catalogue.rows_seen,
                models=len(catalogue.prices),
                priced=catalogue.priced_count,
                unknown=catalogue.unknown_count,
                detail_errors=len(fetch.detail_errors),
            )
            previous = await self._db(lambda: self.repository.latest_snapshot(upstream_only=True))
            sanity_check(catalogue, previous)
            fetched_at = utcnow()
            snapshot, changes = await self._db(
                lambda: self.repository.save_snapshot(
                    run_id=run.id,
                    catalogue=catalogue,
                    source=UPSTREAM_SOURCE,
                    fetched_at=fetched_at,
                    unmatched_ids=self.unmatched(catalogue),
                    finished_at=utcnow(),
                    latency_ms=fetch.latency_ms if fetch else None,
                )
            )
        except anyio.get_cancelled_exc_class():
            with anyio.CancelScope(shield=True):
                await self._fail(run, "cancelled: the service stopped mid-run", fetch, catalogue)
            raise
        except Exception as exc:  # every failure is recorded; the last good prices stay
            kind = type(exc).__name__
            detail = exc.detail if isinstance(exc, PricingError) else str(exc)
            failed = await self._fail(run, f"{kind}: {detail}", fetch, catalogue)
            expected = isinstance(exc, UpstreamError | SanityCheckFailed)
            self._report(
                "refresh.failed",
                logging.WARNING if expected else logging.ERROR,
                run_id=run.id,
                error=kind,
                detail=detail,
                duration_ms=int((time.perf_counter() - started) * 1000),
            )
            return failed
        await self.publish(snapshot)
        done = await self._db(self.repository.get_run, run.id)
        self._report(
            "refresh.completed",
            run_id=run.id,
            snapshot_id=snapshot.id,
            models=snapshot.model_count,
            priced=catalogue.priced_count,
            unknown=catalogue.unknown_count,
            changes=changes,
            upstream_ms=fetch.latency_ms,
            duration_ms=int((time.perf_counter() - started) * 1000),
        )
        return done  # type: ignore[no-any-return]

    async def _fail(
        self,
        run: RunSummary,
        error: str,
        fetch: Any,
        catalogue: NormalizedCatalogue | None,
    ) -> RunSummary:
        return await self._db(  # type: ignore[no-any-return]
            lambda: self.repository.fail_run(
                run.id,
                utcnow(),
                error,
                rows_seen=catalogue.rows_seen
                if catalogue
                else (len(fetch.rows) if fetch else None),
                priced=catalogue.priced_count if catalogue else None,
                unknown=catalogue.unknown_count if catalogue else None,
                latency_ms=fetch.latency_ms if fetch else None,
            )
        )

    def _progress(self, run_id: int) -> Callable[[str, dict[str, Any]], None]:
        # The upstream client logs its own phases; observers (CLI, metrics) hear them too.
        def progress(name: str, fields: dict[str, Any]) -> None:
            for observer in self.observers:
                observer(name, {"run_id": run_id, **fields})

        return progress

    def unmatched(self, catalogue: NormalizedCatalogue) -> list[str]:
        """Catalog ids (not local, without a price override) that no upstream model matches."""
        index = PriceIndex(catalogue.prices, self.catalog.aliases)
        wanted = [
            model_id
            for model_id in self.catalog.referenced_ids()
            if not is_local_id(model_id) and model_id not in self.catalog.overrides
        ]
        return index.unmatched(wanted)

    # -- seed and schedule ------------------------------------------------------------------

    async def ensure_seed(self) -> SnapshotInfo | None:
        """With no snapshot at all, store the bundled recording so the selector has prices.

        It never replaces real prices: it is stored only into an empty database.
        """
        if await self._db(self.repository.latest_snapshot) is not None:
            return None
        # Several workers start at once: only the lock holder seeds.
        if not await self.lock.acquire():
            return None
        try:
            if await self._db(self.repository.latest_snapshot) is not None:
                return None
            return await self._store_seed()
        finally:
            await self.lock.release()

    async def _store_seed(self) -> SnapshotInfo:
        seed = load_seed()
        catalogue = normalize_catalogue(seed.rows, seed.details)
        catalogue = NormalizedCatalogue(
            prices=tuple(replace(p, price_basis=PriceBasis.SEED) for p in catalogue.prices),
            rows_seen=catalogue.rows_seen,
            field_names=catalogue.field_names,
            raw_by_model_id=catalogue.raw_by_model_id,
        )
        snapshot, _ = await self._db(
            lambda: self.repository.save_snapshot(
                run_id=None,
                catalogue=catalogue,
                source=SEED_SOURCE,
                fetched_at=seed.recorded_at,
                unmatched_ids=self.unmatched(catalogue),
            )
        )
        await self.publish(snapshot)
        self._report("refresh.seeded", snapshot_id=snapshot.id, models=snapshot.model_count)
        return snapshot  # type: ignore[no-any-return]

    async def seconds_until_due(self) -> float:
        """Seconds until the next scheduled run: one interval after the last good upstream
        fetch; after failures, a doubling backoff (never later than that, never negative)."""
        now = utcnow()
        snapshot = await self._db(lambda: self.repository.latest_snapshot(upstream_only=True))
        due = 0.0
        if snapshot is not None:
            due = self.interval_seconds - (now - snapshot.fetched_at).total_seconds()
        last = await self._db(self.repository.last_run)
        if last is not None and last.status is RunStatus.FAILED and last.finished_at is not None:
            failures = await self._db(self._consecutive_failures)
            backoff = min(self.interval_seconds, FIRST_RETRY_SECONDS * 2 ** max(0, failures - 1))
            due = max(due, backoff - (now - last.finished_at).total_seconds())
        return max(0.0, due)

    def _consecutive_failures(self) -> int:
        count = 0
        for run in self.repository.recent_runs(20):
            if run.status is RunStatus.SUCCEEDED:
                break
            if run.status is RunStatus.FAILED:
                count += 1
        return count

    async def run_forever(self, *, refresh_on_startup: bool) -> None:
        """The background scheduler owned by the app's lifespan."""
        await self._db(
            self.repository.fail_stale_runs,
            utcnow() - timedelta(seconds=self.stale_run_seconds),
            utcnow(),
        )
        await self.ensure_seed()
        first = True
        while True:
            delay = await self.seconds_until_due()
            if first and not refresh_on_startup:
                delay = max(delay, float(self.interval_seconds))
            if not first or delay > 0:
                delay += random.uniform(0, min(300.0, self.interval_seconds * 0.05))  # noqa: S311
            first = False
            self._report("refresh.scheduled", in_seconds=int(delay))
            await anyio.sleep(delay)
            try:
                await self.refresh("schedule")
            except RefreshInProgress:
                pass  # another worker or replica is doing it
            except Exception:  # the scheduler must outlive any one bad run
                log.exception("refresh.scheduler_error")
                await anyio.sleep(60)
