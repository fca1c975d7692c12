"""What operators read besides readiness (readiness.py): the status behind /metrics, the debug
sample, and the console's reads of runs, held prices and history.

The console and the operations routes call these instead of reaching into the repository; each
database read goes through the tracker's bounded reads (a stalled database costs a scrape or a
page one bounded wait, never its own timeout).
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING

from pricing_service.domain import PriceStatus, RunStatus
from pricing_service.errors import InvalidRequest
from pricing_service.logs import event
from pricing_service.model_kinds import is_local_id

if TYPE_CHECKING:
    from pricing_service.domain import (
        Catalog,
        CrossSourceReport,
        HeldPrice,
        ModelPrice,
        PriceChange,
        RunSummary,
        SnapshotInfo,
    )
    from pricing_service.repository import DebugSample, Repository
    from pricing_service.tracker import SnapshotTracker

log = logging.getLogger("pricing_service.service")

MAX_DEBUG_SAMPLE = 20

# One point of a model's price history: when, input and output USD per million tokens.
PricePoint = tuple[datetime, Decimal | None, Decimal | None]


class OperatorReports:
    """The console's reads, the /metrics status and the debug sample."""

    def __init__(
        self,
        *,
        repository: Repository,
        catalog: Catalog,
        tracker: SnapshotTracker,
        asked_ids: Callable[[], dict[str, int]],
    ) -> None:
        self.repository = repository
        self.catalog = catalog
        self.tracker = tracker
        self.reads = tracker.reads
        # The ids clients asked that nothing resolves, with counts (unknown_ids.UnknownIds).
        self.asked_ids = asked_ids

    # -- the console's reads ---------------------------------------------------------------

    async def state(
        self, last_runs: int, last_accepted: int
    ) -> tuple[list[RunSummary], list[RunSummary], list[HeldPrice], list[HeldPrice]]:
        """Estado: the last runs, the held runs, the open held prices and the last accepted."""

        def read() -> tuple[list[RunSummary], list[RunSummary], list[HeldPrice], list[HeldPrice]]:
            return (
                self.repository.recent_runs(last_runs),
                self.repository.pending_held_runs(),
                self.repository.open_held_prices(),
                self.repository.accepted_held_prices(last_accepted),
            )

        return await self.reads.read(read)

    async def model_history(
        self, candidates: list[str], changes: int
    ) -> tuple[str | None, list[PricePoint], list[PriceChange]]:
        """The first spelling in ``candidates`` with a price history: its history and its last
        ``changes`` change events; (None, [], []) when none has one."""

        def read() -> tuple[str | None, list[PricePoint], list[PriceChange]]:
            for candidate in candidates:
                history = self.repository.price_history(candidate)
                if history:
                    return (
                        candidate,
                        history,
                        self.repository.changes(None, changes, model_id=candidate),
                    )
            return None, [], []

        return await self.reads.read(read)

    async def open_held_prices(self) -> list[HeldPrice]:
        return await self.reads.read(self.repository.open_held_prices)

    async def pending_held_runs(self) -> list[RunSummary]:
        return await self.reads.read(self.repository.pending_held_runs)

    # -- operations: /metrics and the debug sample ---------------------------------------------

    async def status(self) -> ServiceStatus:
        """What /metrics reports: the served snapshot, its counts and the last runs."""
        snapshot = None
        statuses: dict[str, int] = {}
        categories: dict[str, int] = {}
        try:
            dataset, _ = await self.tracker.dataset()
        except Exception as exc:  # nothing to serve yet, or storage down: report what is known
            event(log, "service.status_without_data", logging.DEBUG, error=type(exc).__name__)
        else:
            snapshot = dataset.snapshot
            statuses = dataset.price_status_counts()
            categories = dataset.category_counts()
        held_prices: dict[str, int] | None = None
        held_runs: int | None = None
        try:
            # One wait for all of it: a scrape with the database stalled waits once, not 4 times.
            last_run, last_success, held, pending, cross = await self.reads.read(self._status_reads)
            held_runs = len(pending)
            held_prices = dict(Counter(h.reason.value for h in held))
        except Exception:
            last_run = last_success = cross = None
        return ServiceStatus(
            snapshot, statuses, categories, last_run, last_success, held_prices, held_runs, cross
        )

    def _status_reads(
        self,
    ) -> tuple[
        RunSummary | None,
        RunSummary | None,
        list[HeldPrice],
        list[RunSummary],
        CrossSourceReport | None,
    ]:
        return (
            self.repository.last_run(),
            self.repository.last_run(RunStatus.SUCCEEDED),
            self.repository.open_held_prices(),
            self.repository.pending_held_runs(),
            self._last_cross_source(),
        )

    def sample_preference(self) -> list[str]:
        """Curated ids first (as the upstream names them), so a sample shows models in use."""
        preferred: dict[str, None] = {}
        for category in self.catalog.categories:
            for model_id in category.model_ids:
                if not is_local_id(model_id):
                    preferred.setdefault(self.catalog.aliases.get(model_id, model_id), None)
        return list(preferred)

    async def debug_sample(self, limit: int) -> DebugReport:
        """The last run, and ``limit`` raw upstream rows next to their current normalized row."""
        if not 1 <= limit <= MAX_DEBUG_SAMPLE:
            raise InvalidRequest(f"limit must be between 1 and {MAX_DEBUG_SAMPLE}, not {limit}")
        # Copied here, on the event loop that updates the counts, not in the worker thread.
        asked = self.asked_ids()
        return await self.reads.read(self._debug_sample, limit, asked)

    def _debug_sample(self, limit: int, asked: dict[str, int]) -> DebugReport:
        last_run = self.repository.last_run()
        sample = self.repository.debug_sample(limit, prefer=self.sample_preference())
        current = self.repository.current_snapshot()
        prices = current[1] if current is not None else []
        by_id = {p.model_id: p for p in prices}
        chosen = list(sample.raw) if sample is not None else []
        return DebugReport(
            held_prices=self.repository.open_held_prices(),
            last_run=last_run,
            sample=sample,
            current=current[0] if current is not None else None,
            normalized={m: by_id.get(m) for m in chosen},
            models=len(prices),
            null_input=sum(1 for p in prices if p.input_usd_per_million is None),
            null_output=sum(1 for p in prices if p.output_usd_per_million is None),
            unknown=sum(1 for p in prices if p.price_status is PriceStatus.UNKNOWN),
            unknown_ids_asked=asked,
            cross_source=self._last_cross_source(),
        )

    def _last_cross_source(self) -> CrossSourceReport | None:
        for run in self.repository.recent_runs(20):
            if run.cross_source is not None:
                return run.cross_source
        return None


@dataclass(frozen=True, slots=True)
class ServiceStatus:
    snapshot: SnapshotInfo | None
    price_status_counts: dict[str, int]
    category_counts: dict[str, int]
    last_run: RunSummary | None
    last_success: RunSummary | None
    held_prices: dict[str, int] | None = None  # open held prices by reason (None: unknown)
    held_runs: int | None = None
    cross_source: CrossSourceReport | None = None  # of the last run compared


@dataclass(frozen=True, slots=True)
class DebugReport:
    held_prices: list[HeldPrice]
    last_run: RunSummary | None
    sample: DebugSample | None  # raw rows of the newest snapshot that kept them
    current: SnapshotInfo | None  # the snapshot whose prices are current
    normalized: dict[str, ModelPrice | None]  # sampled model id -> its current price row
    models: int
    null_input: int
    null_output: int
    unknown: int  # models with either price null
    # ids asked through ids= or the estimate that nothing resolves (this worker), with counts
    unknown_ids_asked: dict[str, int] = field(default_factory=dict)
    cross_source: CrossSourceReport | None = None  # of the last run compared
