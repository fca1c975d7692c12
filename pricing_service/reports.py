"""What operators read: readiness (GET /ready and the console's Estado), the status behind
/metrics, the debug sample, and the console's reads of runs, held prices and history.

The console and the operations routes call these instead of reaching into the repository; each
database read goes through the tracker's bounded reads (a stalled database costs a probe or a
page one bounded wait, never its own timeout).
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from pricing_service.domain import HoldReason, PriceStatus, RunStatus, SnapshotSource, utcnow
from pricing_service.errors import InvalidRequest, NoDataYet, PricingError
from pricing_service.logs import event
from pricing_service.model_kinds import is_local_id

if TYPE_CHECKING:
    from pricing_service.cache import SnapshotCache
    from pricing_service.curation import SelectorDataset
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
MAX_HELD_REASONS = 20  # /ready lists this many held prices, then a count
MAX_PUBLIC_ERROR = 300

# One point of a model's price history: when, input and output USD per million tokens.
PricePoint = tuple[datetime, Decimal | None, Decimal | None]


@dataclass(frozen=True, slots=True)
class Degradation:
    """One thing /ready reports as degraded: a code and its facts, and its English line.

    GET /ready sends ``text``; the console words each ``code`` in Spanish from ``facts``
    (console/format.py), so no English line reaches its pages.
    """

    code: str  # "redis_unreachable", "stale", "not_live", "run_held", "price_held", ...
    text: str
    facts: dict[str, Any] = field(default_factory=dict)


def public_error(text: str | None) -> str:
    """A run's error as /ready may show it: one line, and nothing from a SQL statement on (runs
    recorded before errors were sanitized carry the statement and its parameters)."""
    line = (text or "").split("\n", 1)[0]
    for marker in ("[SQL:", "[parameters:", "(Background on this error"):
        line = line.split(marker, 1)[0]
    line = line.strip()
    return line if len(line) <= MAX_PUBLIC_ERROR else line[: MAX_PUBLIC_ERROR - 1] + "…"


class OperatorReports:
    def __init__(
        self,
        *,
        repository: Repository,
        cache: SnapshotCache,
        catalog: Catalog,
        ttl_seconds: int,
        tracker: SnapshotTracker,
        asked_ids: Callable[[], dict[str, int]],
    ) -> None:
        self.repository = repository
        self.cache = cache
        self.catalog = catalog
        self.ttl_seconds = ttl_seconds
        self.tracker = tracker
        self.reads = tracker.reads
        # The ids clients asked that nothing resolves, with counts (service.UnknownIds).
        self.asked_ids = asked_ids
        # The rate served and what is wrong with it, for /ready (the service's, rates.py).
        self.rate_report: Callable[[datetime], tuple[dict[str, Any], list[Degradation]]] | None = (
            None
        )

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

    # -- readiness ---------------------------------------------------------------------------

    async def readiness(self) -> dict[str, Any]:
        """The body of GET /ready: ``degraded`` as English lines for operators' tools."""
        report, _ = await self.readiness_details()
        return report

    async def readiness_details(self) -> tuple[dict[str, Any], list[Degradation]]:
        """GET /ready's body and each degraded line as a code and its facts (the console)."""
        degraded: list[Degradation] = []

        def report(body: dict[str, Any]) -> tuple[dict[str, Any], list[Degradation]]:
            return {
                "ready": body["ready"],
                "degraded": [d.text for d in degraded],
                **body,
            }, degraded

        if self.cache.configured and not await self.cache.ping():
            degraded.append(
                Degradation(
                    "redis_unreachable", "redis unreachable: serving from memory and the database"
                )
            )
        try:
            dataset, tier = await self.tracker.dataset()
        except NoDataYet as exc:
            reason = exc.detail
            # The check that just failed to load a snapshot says whether the database answered
            # in time: when it did not, asking again would make the probe wait twice as long.
            unreachable = self.tracker.database_error
            if unreachable is None:
                try:
                    if await self.reads.read(self.repository.schema_revision) is None:
                        reason = "database not migrated: run `pricing-service migrate`"
                except Exception as db_exc:
                    unreachable = type(db_exc).__name__
            if unreachable is not None:
                reason = f"database unreachable ({unreachable}) and no cached prices"
            return report({"ready": False, "reason": reason})
        except Exception as exc:  # e.g. the database was never migrated
            # A public answer: the kind of failure only, never SQL, parameters or a URL.
            detail = exc.detail if isinstance(exc, PricingError) else type(exc).__name__
            reason = f"cannot serve: {detail}"
            return report({"ready": False, "reason": reason})
        snapshot = dataset.snapshot
        age = int((utcnow() - snapshot.fetched_at).total_seconds())
        if age > self.ttl_seconds:
            degraded.append(
                Degradation("stale", f"snapshot stale: fetched {age} s ago", {"age_seconds": age})
            )
        if snapshot.source == SnapshotSource.SEED:
            degraded.append(
                Degradation(
                    "not_live",
                    f"serving the {snapshot.source} snapshot, not live prices",
                    {"source": str(snapshot.source)},
                )
            )
        try:
            last = await self.reads.read(self.repository.last_run)
        except Exception:
            degraded.append(
                Degradation(
                    "database_unreachable", "database unreachable: serving the cached snapshot"
                )
            )
        else:
            if last is not None and last.status is RunStatus.FAILED:
                error = public_error(last.error)
                degraded.append(
                    Degradation(
                        "last_refresh_failed",
                        f"last refresh failed: {error}",
                        {"run_id": last.id, "error": error},
                    )
                )
            try:
                degraded.extend(await self.reads.read(self._held_reasons, dataset))
            except Exception as exc:
                event(log, "service.database_error", logging.WARNING, error=type(exc).__name__)
        currency: dict[str, Any] | None = None
        if self.rate_report is not None:
            currency, rate_problems = self.rate_report(utcnow())
            degraded.extend(rate_problems)
        return report(
            {
                "ready": True,
                **({"currency": currency} if currency is not None else {}),
                "snapshot": {
                    "id": snapshot.id,
                    "source": snapshot.source,
                    "fetched_at": snapshot.fetched_at.isoformat(),
                    "age_seconds": age,
                    "stale": age > self.ttl_seconds,
                },
                "tier": tier,
            }
        )

    def _held_reasons(self, dataset: SelectorDataset) -> list[Degradation]:
        reasons = [
            Degradation(
                "run_held",
                f"refresh run {run.id} held: {run.held_reason}; prices unchanged until an "
                f"operator accepts it (pricing-service refresh --accept {run.id})",
                {"run_id": run.id, "detail": run.held_reason},
            )
            for run in self.repository.pending_held_runs()
        ]
        held = self.repository.open_held_prices()
        # A curated model whose price the second source contradicts is what users of the
        # selector see first: each is named, before and beside the count-limited list.
        curated = []
        for price in held:
            categories = (
                dataset.curated_in(price.model_id)
                if price.reason is HoldReason.SECOND_SOURCE
                else []
            )
            if not categories:
                continue
            unknown = (
                price.accepted_input_usd_per_million is None
                or price.accepted_output_usd_per_million is None
            )
            served = "unknown" if unknown else "its last accepted price"
            curated.append(price)
            reasons.append(
                Degradation(
                    "price_held_curated",
                    f"price held: {price.model_id} (second_source, run {price.run_id}; curated "
                    f"in {', '.join(categories)}): {price.detail}; served as {served} until an "
                    f"operator accepts a figure (pricing-service refresh --accept {price.run_id} "
                    f"--model {price.model_id} --figure proposed|second_source)",
                    {
                        "model_id": price.model_id,
                        "reason": price.reason,
                        "run_id": price.run_id,
                        "categories": list(categories),
                        "served_unknown": unknown,
                        "detail": price.detail,
                    },
                )
            )
        held = [price for price in held if price not in curated]
        for price in held[:MAX_HELD_REASONS]:
            reasons.append(
                Degradation(
                    "price_held",
                    f"price held: {price.model_id} ({price.reason.value}, run {price.run_id}): "
                    f"{price.detail}",
                    {
                        "model_id": price.model_id,
                        "reason": price.reason,
                        "run_id": price.run_id,
                        "detail": price.detail,
                    },
                )
            )
        if len(held) > MAX_HELD_REASONS:
            more = len(held) - MAX_HELD_REASONS
            reasons.append(
                Degradation(
                    "more_held", f"and {more} more held prices (GET /runs)", {"count": more}
                )
            )
        return reasons

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
