"""Prometheus metrics: what the read path, the refresher and the cache count, and /metrics.

One ``Metrics`` per app. With several uvicorn workers ``pricing-service serve`` points
``PROMETHEUS_MULTIPROC_DIR`` at a fresh directory before the workers start; prometheus-client
then keeps every value in per-process files and a scrape, whichever worker answers it, merges
them: counters and histograms add up across workers, and the gauges a scrape sets from the
current snapshot use "mostrecent" (the scraping worker's fresh value) or "max".

Beside the service's own metrics, /metrics serves ``pricing_build_info{version="..."} 1`` and
prometheus-client's runtime collectors: ``process_*`` (CPU, memory, file descriptors),
``python_info`` and ``python_gc_*``. prometheus-client leaves those out in multiprocess mode;
here they are registered on the registry that is served, so they describe the worker that
answers the scrape.
"""

from __future__ import annotations

import math
import os
import time
from bisect import bisect_left
from typing import TYPE_CHECKING, Any

import anyio
import anyio.to_thread
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    GCCollector,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.multiprocess import MultiProcessCollector

from pricing_service import __version__
from pricing_service.domain import (
    AttemptOutcome,
    HoldReason,
    RunOutcome,
    RunStatus,
    SnapshotSource,
)

if TYPE_CHECKING:
    from pricing_service.listings import Fetched
    from pricing_service.reports import ServiceStatus

CONTENT_TYPE = CONTENT_TYPE_LATEST
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"

# Refresher events that end a trigger, and the outcome each one counts as.
REFRESH_OUTCOMES: dict[str, RunOutcome] = {
    "refresh.completed": RunOutcome.SUCCEEDED,
    "refresh.failed": RunOutcome.FAILED,
    "refresh.held": RunOutcome.HELD,
    "refresh.skipped": RunOutcome.SKIPPED,
    "refresh.in_progress": RunOutcome.IN_PROGRESS,
}

# Reading ready-made bytes costs microseconds; anything slower is worth seeing.
# Pending requests are flushed into prometheus-client's values this often, and at this many.
FLUSH_SECONDS = 1.0
FLUSH_AFTER = 10_000
_HTTP_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
# One MCP call: the live server answers in tenths of a second, retries and timeouts in seconds.
_UPSTREAM_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 60.0)


def multiprocess_dir() -> str | None:
    """The directory prometheus-client itself reads at import; None in single-process mode."""
    return os.environ.get(MULTIPROC_ENV) or None


class Metrics:
    """Every metric of the service. Recording methods only bump values: they are cheap."""

    def __init__(self, *, multiprocess: str | None = None, version: str = __version__) -> None:
        self.multiprocess = multiprocess
        # Single process: a private registry, so several apps in one process (tests) never
        # clash. Multiprocess: values live in files and a scrape merges them instead.
        self.registry = CollectorRegistry(auto_describe=True)
        reg = self.registry
        # What a scrape serves: the registry itself, or the merge of every worker's files.
        self._served = reg
        if multiprocess is not None:
            self._served = CollectorRegistry()
            MultiProcessCollector(self._served, path=multiprocess)  # type: ignore[no-untyped-call]
        ProcessCollector(registry=self._served)
        PlatformCollector(registry=self._served)
        GCCollector(registry=self._served)
        self.build_info = Gauge(
            "pricing_build_info",
            "Always 1; the version label is the running release of cognitia-pricing",
            ["version"],
            registry=reg,
            multiprocess_mode="max",
        )
        self.build_info.labels(version).set(1)
        self.http_requests = Counter(
            "pricing_http_requests",
            "HTTP requests by route template, method and status",
            ["route", "method", "status"],
            registry=reg,
        )
        self.http_duration = Histogram(
            "pricing_http_request_duration_seconds",
            "Time to answer an HTTP request, by route template",
            ["route"],
            buckets=_HTTP_BUCKETS,
            registry=reg,
        )
        self.cache_hits = Counter(
            "pricing_cache_hits",
            "Selector answers by the tier their data came from (memory, redis, database)",
            ["tier"],
            registry=reg,
        )
        self.redis_errors = Counter(
            "pricing_redis_errors",
            "Redis operations that failed (the read path then uses the next tier)",
            ["operation"],
            registry=reg,
        )
        self.refresh_runs = Counter(
            "pricing_refresh_runs",
            "Refresh triggers by outcome: succeeded, failed, held, skipped (recent), in_progress",
            ["outcome"],
            registry=reg,
        )
        self.upstream_latency = Histogram(
            "pricing_upstream_call_duration_seconds",
            "Latency of each PricePerToken MCP tool call during refreshes",
            buckets=_UPSTREAM_BUCKETS,
            registry=reg,
        )
        self.upstream_details = Counter(
            "pricing_upstream_details",
            "get_model answers during refreshes by outcome: ok, failed (the model's price is "
            "held at its last accepted figure), none (the upstream has no record of the model)",
            ["outcome"],
            registry=reg,
        )
        self.upstream_sessions_lost = Counter(
            "pricing_upstream_sessions_lost",
            "MCP sessions the upstream forgot mid-fetch (HTTP 404), each reopened",
            registry=reg,
        )
        self.snapshot_age = Gauge(
            "pricing_snapshot_age_seconds",
            "Age of the snapshot served now (stale after PRICING_CACHE_TTL_SECONDS)",
            registry=reg,
            multiprocess_mode="mostrecent",
        )
        self.snapshot_fetched = Gauge(
            "pricing_snapshot_fetched_timestamp_seconds",
            "Unix time the served snapshot was fetched",
            registry=reg,
            multiprocess_mode="max",
        )
        self.snapshot_seed = Gauge(
            "pricing_snapshot_is_seed",
            "1 while the bundled seed recording is served instead of live prices",
            registry=reg,
            multiprocess_mode="mostrecent",
        )
        self.last_success = Gauge(
            "pricing_last_refresh_success_timestamp_seconds",
            "Unix time the last successful refresh finished (any worker, replica or CLI)",
            registry=reg,
            multiprocess_mode="max",
        )
        self.last_failed = Gauge(
            "pricing_last_refresh_failed",
            "1 when the most recent refresh run failed",
            registry=reg,
            multiprocess_mode="mostrecent",
        )
        self.models = Gauge(
            "pricing_models",
            "Models of view=all by price status",
            ["status"],
            registry=reg,
            multiprocess_mode="mostrecent",
        )
        self.category_models = Gauge(
            "pricing_category_models",
            "Curated models per category",
            ["category"],
            registry=reg,
            multiprocess_mode="mostrecent",
        )
        self.held_prices = Gauge(
            "pricing_held_prices",
            "Proposed prices held for an operator (the last accepted price is served)",
            ["reason"],
            registry=reg,
            multiprocess_mode="mostrecent",
        )
        self.cross_source = Gauge(
            "pricing_cross_source_models",
            "Models of the last compared run by verdict against the second source "
            "(agree, disagree, uncovered; disagree_author: the author's own price disagrees)",
            ["verdict", "second_source"],
            registry=reg,
            multiprocess_mode="mostrecent",
        )
        self.held_runs = Gauge(
            "pricing_held_runs",
            "Refresh runs held as a whole and not yet accepted or superseded",
            registry=reg,
            multiprocess_mode="mostrecent",
        )
        self.webhook_deliveries = Gauge(
            "pricing_webhook_deliveries",
            "Webhook deliveries by status (pending, delivered, dead); alert on dead > 0",
            ["status"],
            registry=reg,
            multiprocess_mode="mostrecent",
        )
        self.webhook_oldest_pending = Gauge(
            "pricing_webhook_oldest_pending_age_seconds",
            "Age of the oldest webhook delivery not yet delivered (0: none pending)",
            registry=reg,
            multiprocess_mode="mostrecent",
        )
        self.webhook_attempts = Counter(
            "pricing_webhook_attempts",
            "Webhook delivery attempts by outcome (delivered, failed: retried later, dead)",
            ["outcome"],
            registry=reg,
        )
        self.unknown_ids = Counter(
            "pricing_unknown_ids_asked",
            "Ids asked through ids= or the estimate that nothing resolves (add an alias?); "
            "at most 200 distinct ids per worker, the rest counted as '(other)'",
            ["model_id", "endpoint"],
            registry=reg,
        )
        # Requests since the last flush: (route, method, status, tier) -> count, and each
        # route's durations. A request costs a dictionary increment and a list append; the
        # flush turns them into prometheus-client's values (a lock and, with several workers,
        # a write to a memory-mapped file per value: 6 us a request when done per request).
        self._counts: dict[tuple[str, str, int, str | None], int] = {}
        self._durations: dict[str, list[float]] = {}
        self._pending = 0

    # -- recording (hot path: dictionary lookups and increments only) --------------------------

    def request(
        self, route: str, method: str, status: int, seconds: float, tier: str | None
    ) -> None:
        """Counted at once in this worker, in prometheus' values at the next flush: a scrape
        flushes first, the lifespan every second (``flush_every``), and so does this once
        ``FLUSH_AFTER`` requests are pending."""
        key = (route, method, status, tier)
        self._counts[key] = self._counts.get(key, 0) + 1
        durations = self._durations.get(route)
        if durations is None:
            durations = self._durations[route] = []
        durations.append(seconds)
        self._pending += 1
        if self._pending >= FLUSH_AFTER:
            self.flush_requests()

    def flush_requests(self) -> None:
        """Move the pending requests into the counters and the histogram (on the event loop:
        ``request`` runs there, and nothing else touches the pending ones)."""
        if not self._pending:
            return
        counts, self._counts = self._counts, {}
        durations, self._durations = self._durations, {}
        self._pending = 0
        for (route, method, status, tier), n in counts.items():
            self.http_requests.labels(route, method, str(status)).inc(n)
            if tier is not None:
                self.cache_hits.labels(tier).inc(n)
        for route, values in durations.items():
            # What Histogram.observe does per value, once per bucket: prometheus-client has no
            # batch observe. tests/unit/test_metrics.py checks the result against observe().
            child = self.http_duration.labels(route)
            buckets = [0] * (len(_HTTP_BUCKETS) + 1)
            for value in values:
                buckets[bisect_left(_HTTP_BUCKETS, value)] += 1
            child._sum.inc(math.fsum(values))
            for index, n in enumerate(buckets):
                if n:
                    child._buckets[index].inc(n)

    async def flush_every(self, seconds: float = FLUSH_SECONDS) -> None:
        """The lifespan's task: a scrape that another worker answers sees this one's requests
        at most ``seconds`` late."""
        while True:
            await anyio.sleep(seconds)
            self.flush_requests()

    def unknown_id(self, model_id: str, endpoint: str) -> None:
        """A PricingService observer: ``model_id`` is already bounded (or '(other)')."""
        self.unknown_ids.labels(model_id, endpoint).inc()

    def webhook_attempt(self, outcome: AttemptOutcome) -> None:
        """A Deliverer observer: one attempt's outcome."""
        self.webhook_attempts.labels(outcome).inc()

    def webhook_counts(self, counts: dict[str, int], oldest_pending: float | None) -> None:
        """A Deliverer observer: the deliveries by status, read every few seconds."""
        for status, count in counts.items():
            self.webhook_deliveries.labels(status).set(count)
        self.webhook_oldest_pending.set(oldest_pending or 0.0)

    def redis_error(self, operation: str) -> None:
        self.redis_errors.labels(operation).inc()

    def refresh_event(self, name: str, fields: dict[str, Any]) -> None:
        """A Refresher observer: counts the events that end a trigger."""
        outcome = REFRESH_OUTCOMES.get(name)
        if outcome is not None:
            self.refresh_runs.labels(outcome).inc()

    def upstream_fetch(self, fetch: Fetched) -> None:
        """A Refresher fetch observer: the calls' latencies, the per-model calls by outcome
        (PricePerToken's get_model: ok, failed, none) and the sessions the server forgot."""
        for ms in fetch.call_latencies_ms:
            self.upstream_latency.observe(ms / 1000)
        for outcome, count in fetch.call_outcomes().items():
            self.upstream_details.labels(outcome).inc(count)
        self.upstream_sessions_lost.inc(fetch.reconnects)

    # -- scrape ---------------------------------------------------------------------------------

    def set_status(self, status: ServiceStatus, now: float | None = None) -> None:
        """Gauges that describe the current state, set by the worker answering the scrape."""
        now = time.time() if now is None else now
        if status.snapshot is not None:
            fetched = status.snapshot.fetched_at.timestamp()
            self.snapshot_fetched.set(fetched)
            self.snapshot_age.set(max(0.0, now - fetched))
            self.snapshot_seed.set(1 if status.snapshot.source == SnapshotSource.SEED else 0)
        if status.last_success is not None and status.last_success.finished_at is not None:
            self.last_success.set(status.last_success.finished_at.timestamp())
        if status.last_run is not None:
            self.last_failed.set(1 if status.last_run.status == RunStatus.FAILED else 0)
        for name, count in status.price_status_counts.items():
            self.models.labels(name).set(count)
        for name, count in status.category_counts.items():
            self.category_models.labels(name).set(count)
        if status.held_prices is not None:
            for reason in HoldReason:
                self.held_prices.labels(reason.value).set(status.held_prices.get(reason.value, 0))
        if status.held_runs is not None:
            self.held_runs.set(status.held_runs)
        cross = status.cross_source
        if cross is not None:
            authors = sum(1 for e in cross.disagreements if e.pricing_source_is_author)
            verdicts = {
                "agree": cross.agree,
                "disagree": cross.disagree,
                "uncovered": cross.uncovered,
                "disagree_author": authors,
            }
            for verdict, count in verdicts.items():
                self.cross_source.labels(verdict, cross.version).set(count)

    def exposition(self) -> bytes:
        """The text format of every metric, merged across workers in multiprocess mode."""
        self.flush_requests()
        return generate_latest(self._served)

    async def scrape(self, status: ServiceStatus) -> bytes:
        self.set_status(status)
        self.flush_requests()  # here, on the event loop, where requests are counted
        # Multiprocess mode reads one file per worker: keep that off the event loop.
        return await anyio.to_thread.run_sync(generate_latest, self._served)
