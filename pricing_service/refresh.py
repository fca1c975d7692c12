"""One refresh run, held runs and prices and their acceptance, and the background scheduler."""

from __future__ import annotations

import logging
import os
import random
import socket
import time
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, TypeVar

import anyio
import anyio.to_thread

from pricing_service.accept import Acceptance
from pricing_service.accept import accept as accept_held
from pricing_service.db import storage_error
from pricing_service.domain import (
    AcceptedFigure,
    NormalizedListing,
    RunPhase,
    RunStatus,
    RunSummary,
    RunTrigger,
    utcnow,
)
from pricing_service.errors import (
    PricingError,
    RefreshInProgress,
    RunFenced,
    SanityCheckFailed,
    StorageError,
    UpstreamError,
)
from pricing_service.gate import (
    check_listing,
)
from pricing_service.listings.pricepertoken import seed_listing
from pricing_service.logs import event
from pricing_service.second_source import SecondSource, second_source
from pricing_service.write import SnapshotWriter

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Iterable, Sequence

    from anyio.abc import TaskGroup

    from pricing_service.domain import (
        Catalog,
        SnapshotInfo,
    )
    from pricing_service.listings import Fetched, ListingSource
    from pricing_service.lock import RefreshLock
    from pricing_service.repository import Repository

log = logging.getLogger("pricing_service.refresh")

T = TypeVar("T")

# Without `force`, a trigger this soon after a successful run gets that run back.
RECENT_RUN_SECONDS = 300
# Failed runs kept in memory for recording once the database is back (the oldest are enough).
MAX_UNRECORDED = 32
# After a failed run the scheduler retries sooner than the full interval, doubling up to it.
FIRST_RETRY_SECONDS = 300
# Recorded on each run, so a run abandoned by a killed process says which one.
WORKER = f"{socket.gethostname()}:{os.getpid()}"
# When the scheduler cannot read the database (down, stalled, not migrated yet) it asks again
# after this long, doubling up to SCHEDULE_RETRY_MAX_SECONDS: a worker started during an outage
# schedules its refreshes within half a minute of the database's return, at a few reads a minute.
SCHEDULE_RETRY_SECONDS = 2.0
SCHEDULE_RETRY_MAX_SECONDS = 30.0


@dataclass(frozen=True, slots=True)
class RefreshOutcome:
    run: RunSummary
    started: bool  # False when a recent successful run was returned instead of a new one


@dataclass(slots=True)
class Ticket:
    """A run that holds the lease and was recorded, not yet finished."""

    run: RunSummary
    done: anyio.Event = field(default_factory=anyio.Event)
    outcome: RefreshOutcome | None = None
    lease_lost: bool = False

    async def wait(self, seconds: float) -> RefreshOutcome | None:
        """The outcome, or None when the run outlives ``seconds``."""
        with anyio.move_on_after(seconds):
            await self.done.wait()
        return self.outcome


class Refresher:
    """Runs refreshes under the single-flight lease and records each one."""

    def __init__(
        self,
        *,
        repository: Repository,
        source: ListingSource[Any],
        catalog: Catalog,
        lock: RefreshLock,
        publish: Callable[[SnapshotInfo], Awaitable[None]],
        interval_seconds: int,
        grace_seconds: float,
        second: SecondSource | None = None,
        observers: Iterable[Callable[[str, dict[str, Any]], None]] = (),
        fetch_observers: Iterable[Callable[[Fetched], None]] = (),
    ) -> None:
        self.repository = repository
        # genai-prices' bundled prices: a second opinion on every price (offline, no update).
        self.second = second if second is not None else second_source()
        # Where the prices come from (listings/): its name is each snapshot's source.
        self.source = source
        self.catalog = catalog
        self.lock = lock
        self.publish = publish
        self.interval_seconds = interval_seconds
        self.grace_seconds = grace_seconds
        self.observers: list[Callable[[str, dict[str, Any]], None]] = list(observers)
        # Called with each upstream fetch, good or not (metrics read its call latencies).
        self.fetch_observers: list[Callable[[Fetched], None]] = list(fetch_observers)
        # Runs started over the API live here (the app's lifespan), not in the request: a
        # client that stops waiting, or a server shutting down, never leaves a run orphaned.
        self.background: TaskGroup | None = None
        # Failed runs whose failure could not be written (the database was gone), oldest first.
        self._unrecorded: list[Callable[[], RunSummary]] = []

    def _report(self, name: str, level: int = logging.INFO, **fields: Any) -> None:
        event(log, name, level, **fields)
        for observer in self.observers:
            observer(name, fields)

    def _normalized_fields(self, run_id: int, listing: NormalizedListing) -> dict[str, Any]:
        return {
            "run_id": run_id,
            "source": self.source.name,
            "rows": listing.rows_seen,
            "models": len(listing.prices),
            "priced": listing.priced_count,
            "unknown": listing.unknown_count,
            "rows_rejected": listing.rows_rejected,
            "detail_failed": len(listing.detail_failed),
            "text_cleaned": listing.text_cleaned,
        }

    async def _db(self, fn: Callable[..., T], *args: Any) -> T:
        try:
            return await anyio.to_thread.run_sync(fn, *args)
        except Exception as exc:  # a database error becomes a StorageError: no SQL in run errors
            error = storage_error(exc)
            if error is None or error is exc:
                raise
            raise error from exc

    @property
    def writer(self) -> SnapshotWriter:
        """The one write step (plan, then one transaction), over this refresher's parts."""
        return SnapshotWriter(
            self.repository,
            catalog=self.catalog,
            second=self.second,
            grace_seconds=self.grace_seconds,
        )

    def unmatched(self, listing: NormalizedListing) -> list[str]:
        """Catalog ids (not local, without a price override) that no listed model matches."""
        return self.writer.unmatched(listing)

    # -- starting and finishing a run -------------------------------------------------------

    async def refresh(self, trigger: str, *, force: bool = False) -> RefreshOutcome:
        """Fetch, normalize, check and store; or tell which run is already in progress."""
        ticket = await self.begin(trigger, force=force)
        if isinstance(ticket, RefreshOutcome):
            return ticket
        return await self.finish(ticket)

    async def launch(self, trigger: str, *, force: bool = False) -> Ticket:
        """Start a run in the background task group (inline without one); see ``Ticket.wait``.

        A run that just succeeded comes back as a finished ticket (``outcome.started`` False).
        """
        ticket = await self.begin(trigger, force=force)
        if isinstance(ticket, RefreshOutcome):
            done = Ticket(run=ticket.run, outcome=ticket)
            done.done.set()
            return done
        if self.background is None:
            await self.finish(ticket)
        else:
            self.background.start_soon(self._finish_in_background, ticket)
        return ticket

    async def begin(self, trigger: str, *, force: bool = False) -> RefreshOutcome | Ticket:
        """Take the lease and record a run; or return a run that just succeeded.

        ``force`` skips only that shortcut: nothing but an explicit acceptance gets a run
        past the gate.
        """
        await self._record_pending()
        if not force:
            recent = await self._recent_success()
            if recent is not None:
                self._report("refresh.skipped", reason="recent", run_id=recent.id, trigger=trigger)
                return RefreshOutcome(run=recent, started=False)
        await self._acquire(trigger)
        try:
            abandoned = await self._db(self.repository.abandon_running_runs, utcnow())
            if abandoned:
                self._report("refresh.abandoned_closed", runs=abandoned)
            run = await self._db(self.repository.start_run, trigger, utcnow(), WORKER)
            await self.lock.set_run(run.id)
        except BaseException:
            with anyio.CancelScope(shield=True):
                await self.lock.release()
            raise
        return Ticket(run=run)

    async def _acquire(self, trigger: str) -> None:
        if not await self.lock.acquire():
            run_id = await self._running_run_id()
            self._report("refresh.in_progress", run_id=run_id, trigger=trigger)
            raise RefreshInProgress(
                "a refresh is already running" + (f" (run {run_id})" if run_id else ""), run_id
            )

    async def finish(self, ticket: Ticket) -> RefreshOutcome:
        """Run a begun run to its end, renewing the lease; always releases it and records."""
        try:
            async with anyio.create_task_group() as tasks:
                tasks.start_soon(self._keep_lease, ticket, tasks.cancel_scope)
                run = await self._run(ticket)
                tasks.cancel_scope.cancel()
            if ticket.lease_lost:
                run = await self._db(self._existing_run, ticket.run.id)
            ticket.outcome = RefreshOutcome(run=run, started=True)
            return ticket.outcome
        finally:
            with anyio.CancelScope(shield=True):
                await self._release(ticket.run.id)
            ticket.done.set()

    async def _release(self, run_id: int) -> None:
        try:
            await self.lock.release()
        except Exception as exc:  # e.g. the database is gone: the lease expires by itself
            self._report(
                "refresh.release_failed", logging.ERROR, run_id=run_id, error=type(exc).__name__
            )

    async def _finish_in_background(self, ticket: Ticket) -> None:
        # An exception here would end the app's task group, and with it the app.
        try:
            await self.finish(ticket)
        except Exception as exc:
            self._report(
                "refresh.crashed", logging.ERROR, run_id=ticket.run.id, error=type(exc).__name__
            )

    async def _keep_lease(self, ticket: Ticket, scope: anyio.CancelScope) -> None:
        while True:
            await anyio.sleep(self.lock.ttl_seconds / 3)
            if not await self.lock.renew():
                ticket.lease_lost = True
                self._report("refresh.lease_lost", logging.ERROR, run_id=ticket.run.id)
                scope.cancel()
                return

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
        return last

    # -- the run ----------------------------------------------------------------------------

    async def _run(self, ticket: Ticket) -> RunSummary:
        run = ticket.run
        started = time.perf_counter()
        self._report("refresh.started", run_id=run.id, trigger=run.trigger)
        fetch = None
        listing = None
        try:
            fetch = await self.source.fetch(progress=self._progress(run.id))
            for fetch_observer in self.fetch_observers:
                fetch_observer(fetch)
            # CPU work (tens of ms, more for a huge listing): off the event loop.
            fetched = fetch
            listing = await self._db(lambda: self.source.normalize(fetched))
            # The source's own counts first: a key the refresher also writes is the refresher's
            # (a source naming a count "rows" must not fail the run).
            self._report(
                "refresh.normalized",
                **{
                    **fetch.log_fields(),
                    **self._normalized_fields(run.id, listing),
                },
            )
            check_listing(listing)
            await self._db(self.repository.set_run_phase, run.id, RunPhase.STORING)
            fetched_at = utcnow()
            latency = fetch.latency_ms
            held, snapshot, applied = await self._db(
                lambda: self.writer.gate_and_store(
                    run.id, listing, fetched_at, latency, source=self.source.name
                )
            )
        except anyio.get_cancelled_exc_class():
            reason = (
                "lease lost: another process took over the refresh"
                if ticket.lease_lost
                else "cancelled: the service stopped mid-run"
            )
            with anyio.CancelScope(shield=True):
                await self._fail(run, reason, fetch, listing)
                self._report("refresh.failed", logging.WARNING, run_id=run.id, error=reason)
            raise
        except Exception as exc:  # every failure is recorded; the last good prices stay
            kind = type(exc).__name__
            detail = exc.detail if isinstance(exc, PricingError) else str(exc)
            failed = await self._fail(run, f"{kind}: {detail}", fetch, listing)
            if failed.status in (RunStatus.SUCCEEDED, RunStatus.HELD):
                return await self._committed_anyway(failed, kind, started)
            expected = isinstance(exc, UpstreamError | SanityCheckFailed | RunFenced)
            self._report(
                "refresh.failed",
                logging.WARNING if expected else logging.ERROR,
                run_id=run.id,
                error=kind,
                detail=detail,
                duration_ms=int((time.perf_counter() - started) * 1000),
            )
            return failed
        duration_ms = int((time.perf_counter() - started) * 1000)
        if held is not None:
            self._report(
                "refresh.held",
                logging.WARNING,
                run_id=run.id,
                reason=held.held_reason,
                models=len(listing.prices),
                priced=listing.priced_count,
                duration_ms=duration_ms,
            )
            return held
        assert snapshot is not None
        await self.publish(snapshot)
        done = await self._db(self._existing_run, run.id)
        self._report(
            "refresh.completed",
            run_id=run.id,
            snapshot_id=snapshot.id,
            models=snapshot.model_count,
            priced=listing.priced_count,
            unknown=listing.unknown_count,
            changes=applied,
            held_prices=len(done.held_prices),
            upstream_ms=fetch.latency_ms,
            duration_ms=duration_ms,
        )
        for held_price in done.held_prices:
            self._report(
                "refresh.price_held",
                logging.WARNING,
                run_id=run.id,
                model_id=held_price.model_id,
                reason=held_price.reason.value,
                detail=held_price.detail,
            )
        return done

    async def _committed_anyway(self, run: RunSummary, error: str, started: float) -> RunSummary:
        """The database committed the run but its answer was lost (a cut connection after
        COMMIT): what it recorded stands, and is reported (and counted) as what it is."""
        duration_ms = int((time.perf_counter() - started) * 1000)
        if run.status is RunStatus.HELD:
            self._report(
                "refresh.held",
                logging.WARNING,
                run_id=run.id,
                reason=run.held_reason,
                reply_lost=error,
                duration_ms=duration_ms,
            )
            return run
        snapshot = await self._db(self.repository.latest_snapshot)
        if snapshot is not None and snapshot.id == run.snapshot_id:
            await self.publish(snapshot)
        self._report(
            "refresh.completed",
            logging.WARNING,
            run_id=run.id,
            snapshot_id=run.snapshot_id,
            reply_lost=error,
            duration_ms=duration_ms,
        )
        return run

    async def _fail(
        self,
        run: RunSummary,
        error: str,
        fetch: Any,
        listing: NormalizedListing | None,
    ) -> RunSummary:
        finished_at = utcnow()

        def record() -> RunSummary:
            return self.repository.fail_run(
                run.id,
                finished_at,
                error,
                rows_seen=listing.rows_seen if listing else (fetch.rows_seen if fetch else None),
                priced=listing.priced_count if listing else None,
                unknown=listing.unknown_count if listing else None,
                latency_ms=fetch.latency_ms if fetch else None,
            )

        try:
            return await self._db(record)
        except StorageError as exc:
            # The database went away with the run: say so now, record it when it is back (the
            # next run begins with that), and answer with the failure as it would be recorded.
            # Never raise here: a run started over the API fails in the background task group.
            self._report(
                "refresh.unrecorded", logging.ERROR, run_id=run.id, error=error, cause=exc.detail
            )
            if len(self._unrecorded) < MAX_UNRECORDED:
                self._unrecorded.append(record)
            return replace(run, status=RunStatus.FAILED, finished_at=finished_at, error=error)

    async def _record_pending(self) -> None:
        """Record the failed runs the database could not take when they failed."""
        while self._unrecorded:
            await self._db(self._unrecorded[0])
            self._unrecorded.pop(0)

    def _existing_run(self, run_id: int) -> RunSummary:
        run = self.repository.get_run(run_id)
        assert run is not None, f"run {run_id} was recorded by this process"
        return run

    def _progress(self, run_id: int) -> Callable[[str, dict[str, Any]], None]:
        # The upstream client logs its own phases; observers (CLI, metrics) hear them too.
        def progress(name: str, fields: dict[str, Any]) -> None:
            for observer in self.observers:
                observer(name, {"run_id": run_id, **fields})

        return progress

    # -- acceptance -------------------------------------------------------------------------

    async def accept(
        self,
        run_id: int,
        *,
        by: str,
        model_ids: Sequence[str] = (),
        figure: str = AcceptedFigure.PROPOSED.value,
    ) -> Acceptance:
        """Apply what the gate held: a held run's listing, or a run's held prices.

        A held run is applied as if it had passed the run gate; its prices still pass the
        per-model checks, so a doubtful figure inside it is held again (under this run) and
        needs its own acceptance. Otherwise the run's open held prices (all, or ``model_ids``)
        are applied as proposed, or (``figure="second_source"``, prices held for a second-source
        disagreement only) at the second source's figures. Recorded with ``by``, the time and
        the figure.
        """
        await self._acquire("accept")
        try:
            await self._db(self.repository.abandon_running_runs, utcnow())
            acceptance = await self._apply_acceptance(run_id, by, tuple(model_ids), figure)
        finally:
            with anyio.CancelScope(shield=True):
                await self.lock.release()
        await self.publish(acceptance.snapshot)
        self._report(
            "refresh.accepted",
            logging.WARNING,
            run_id=run_id,
            by=by,
            models=",".join(acceptance.accepted),
            snapshot_id=acceptance.snapshot.id,
        )
        return acceptance

    async def _apply_acceptance(
        self, run_id: int, by: str, model_ids: tuple[str, ...], figure: str
    ) -> Acceptance:
        """The acceptance's work (``accept.py``), under the lease (here; ``ChildRefresher`` runs
        it in a child process, as it does ``_run`` and ``_store_seed``)."""
        return await self._db(lambda: accept_held(self.writer, run_id, by, model_ids, figure))

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
            snapshot = await self._store_seed()
        finally:
            with anyio.CancelScope(shield=True):
                await self.lock.release()
        # Published after the lease is released: a trigger arriving now finds it free.
        await self.publish(snapshot)
        self._report("refresh.seeded", snapshot_id=snapshot.id, models=snapshot.model_count)
        return snapshot

    async def _store_seed(self) -> SnapshotInfo:
        listing, recorded_at = await self._db(seed_listing)
        # Planned and checked like a run (write.py), with the models the recording does not list
        # that genai-prices prices.
        return await self._db(lambda: self.writer.store_seed(listing, recorded_at))

    async def seconds_until_due(self) -> float:
        """Seconds until the next scheduled run: one interval after the last good upstream
        fetch; after failures, a doubling backoff (never later than that, never negative)."""
        now = utcnow()
        snapshot = await self._db(lambda: self.repository.latest_snapshot(upstream_only=True))
        due = 0.0
        if snapshot is not None:
            due = self.interval_seconds - (now - snapshot.fetched_at).total_seconds()
        last = await self._db(self.repository.last_run)
        if (
            last is not None
            and last.status in (RunStatus.FAILED, RunStatus.HELD)
            and last.finished_at is not None
        ):
            failures = await self._db(self._consecutive_failures)
            backoff = min(self.interval_seconds, FIRST_RETRY_SECONDS * 2 ** max(0, failures - 1))
            due = max(due, backoff - (now - last.finished_at).total_seconds())
        return max(0.0, due)

    def _consecutive_failures(self) -> int:
        count = 0
        for run in self.repository.recent_runs(20):
            if run.status is RunStatus.SUCCEEDED:
                break
            if run.status in (RunStatus.FAILED, RunStatus.HELD):
                count += 1
        return count

    async def run_forever(self, *, refresh_on_startup: bool) -> None:
        """The background scheduler owned by the app's lifespan: it outlives the database.

        Until the seed check and the first schedule read succeed it retries them with a capped
        backoff (a worker started during an outage catches up alone); every wait on the database
        is bounded by the engine (repository.py), so no read can stop it for good.
        """
        seeded = False
        failures = 0
        first = True
        while True:
            try:
                if not seeded:
                    try:
                        await self.ensure_seed()
                    except Exception as exc:
                        self._report(
                            "refresh.seed_failed", logging.WARNING, error=type(exc).__name__
                        )
                        raise
                    seeded = True
                delay = await self.seconds_until_due()
            except Exception as exc:  # e.g. the database is gone: the scheduler must outlive it
                failures += 1
                retry = min(
                    SCHEDULE_RETRY_MAX_SECONDS, SCHEDULE_RETRY_SECONDS * 2 ** (failures - 1)
                )
                self._report(
                    "refresh.schedule_failed",
                    logging.WARNING,
                    error=type(exc).__name__,
                    retry_in_seconds=retry,
                )
                await anyio.sleep(retry)
                continue
            failures = 0
            if first and not refresh_on_startup:
                delay = max(delay, float(self.interval_seconds))
            if not first or delay > 0:
                delay += random.uniform(0, min(300.0, self.interval_seconds * 0.05))  # noqa: S311
            first = False
            self._report("refresh.scheduled", in_seconds=int(delay))
            await anyio.sleep(delay)
            try:
                await self.refresh(RunTrigger.SCHEDULE)
            except RefreshInProgress:
                pass  # another worker or replica is doing it
            except Exception:  # the scheduler must outlive any one bad run
                log.exception("refresh.scheduler_error")
                await anyio.sleep(60)
