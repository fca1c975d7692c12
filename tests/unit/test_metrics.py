"""Metrics in single-process mode: what each recording call adds to the exposition."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from prometheus_client.parser import text_string_to_metric_families

from pricing_service.domain import RunStatus, RunSummary, SnapshotInfo, SnapshotSource
from pricing_service.metrics import FLUSH_AFTER, Metrics
from pricing_service.reports import ServiceStatus
from pricing_service.upstream import UpstreamFetch

NOW = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


def scraped(metrics: Metrics) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    text = metrics.exposition().decode()
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def run(status: RunStatus, finished: datetime) -> RunSummary:
    return RunSummary(
        1, "api", status, finished - timedelta(seconds=5), finished, 533, 480, 53, 0, None, 900, 1
    )


def test_requests_tiers_and_refresh_outcomes() -> None:
    metrics = Metrics()
    for _ in range(3):
        metrics.request("/api/v1/pricing/models", "GET", 200, 0.002, "memory")
    metrics.request("/api/v1/pricing/models", "GET", 304, 0.001, "redis")
    metrics.request("unmatched", "GET", 404, 0.0005, None)
    metrics.refresh_event("refresh.completed", {"models": 533})
    metrics.refresh_event("refresh.failed", {})
    metrics.refresh_event("refresh.failed", {})
    metrics.refresh_event("refresh.started", {})  # not an outcome
    metrics.redis_error("get_pointer")
    fetch = UpstreamFetch(
        [],
        {"a": {}, "b": {}},
        {"c": "tool reported an error"},
        calls=3,
        latency_ms=700,
        call_latencies_ms=[80, 120, 500],
        no_detail=["d"],
        sessions=2,
    )
    metrics.upstream_fetch(fetch)
    found = scraped(metrics)
    models = "/api/v1/pricing/models"
    key = "pricing_http_requests_total"
    assert found[(key, frozenset({("route", models), ("method", "GET"), ("status", "200")}))] == 3
    assert found[(key, frozenset({("route", models), ("method", "GET"), ("status", "304")}))] == 1
    assert (
        found[("pricing_http_request_duration_seconds_count", frozenset({("route", models)}))] == 4
    )
    assert found[("pricing_cache_hits_total", frozenset({("tier", "memory")}))] == 3
    assert found[("pricing_cache_hits_total", frozenset({("tier", "redis")}))] == 1
    assert found[("pricing_refresh_runs_total", frozenset({("outcome", "succeeded")}))] == 1
    assert found[("pricing_refresh_runs_total", frozenset({("outcome", "failed")}))] == 2
    assert ("pricing_refresh_runs_total", frozenset({("outcome", "started")})) not in found
    assert found[("pricing_redis_errors_total", frozenset({("operation", "get_pointer")}))] == 1
    assert found[("pricing_upstream_call_duration_seconds_count", frozenset())] == 3
    assert found[("pricing_upstream_call_duration_seconds_sum", frozenset())] == pytest.approx(0.7)
    le_250ms = frozenset({("le", "0.25")})
    assert found[("pricing_upstream_call_duration_seconds_bucket", le_250ms)] == 2
    details = "pricing_upstream_details_total"
    assert found[(details, frozenset({("outcome", "ok")}))] == 2
    assert found[(details, frozenset({("outcome", "failed")}))] == 1
    assert found[(details, frozenset({("outcome", "none")}))] == 1
    assert found[("pricing_upstream_sessions_lost_total", frozenset())] == 1


REQUESTS = st.lists(
    st.tuples(
        st.sampled_from(["/api/v1/pricing/models", "/health", "unmatched"]),
        st.sampled_from([200, 304, 404]),
        # Bucket edges exactly, values between them, beyond the last one.
        st.one_of(
            st.sampled_from([0.0, 0.0005, 0.001, 0.0025, 0.01, 2.5, 3.0]),
            st.floats(min_value=0, max_value=5, allow_nan=False),
        ),
        st.sampled_from(["memory", "redis", None]),
    ),
    max_size=40,
)


@given(REQUESTS)
def test_batched_requests_scrape_as_observed_one_by_one(
    requests: list[tuple[str, int, float, str | None]],
) -> None:
    """The flush writes prometheus-client's histogram values itself (it has no batch observe):
    the scrape must be what observe() and inc() per request give."""
    batched = Metrics()
    direct = Metrics()
    for route, status, seconds, tier in requests:
        batched.request(route, "GET", status, seconds, tier)
        direct.http_requests.labels(route, "GET", str(status)).inc()
        direct.http_duration.labels(route).observe(seconds)
        if tier is not None:
            direct.cache_hits.labels(tier).inc()

    def requests_part(metrics: Metrics) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
        return {
            key: value
            for key, value in scraped(metrics).items()
            if key[0].startswith(("pricing_http_", "pricing_cache_hits"))
            and not key[0].endswith("_created")
        }

    want = requests_part(direct)
    assert bool(want) == bool(requests)  # the comparison is never between two empty scrapes
    assert requests_part(batched) == pytest.approx(want)


def test_pending_requests_are_flushed_without_a_scrape_once_there_are_enough() -> None:
    metrics = Metrics()
    for _ in range(FLUSH_AFTER):
        metrics.request("/health", "GET", 200, 0.001, None)
    child = metrics.http_requests.labels("/health", "GET", "200")
    assert child._value.get() == FLUSH_AFTER  # read without the scrape's own flush


def test_status_gauges() -> None:
    metrics = Metrics()
    fetched = NOW - timedelta(hours=30)
    status = ServiceStatus(
        snapshot=SnapshotInfo(7, fetched, SnapshotSource.PRICEPERTOKEN, 533),
        price_status_counts={"priced": 480, "free": 1, "local": 20, "unknown": 53},
        category_counts={"coding": 4},
        last_run=run(RunStatus.FAILED, NOW - timedelta(hours=1)),
        last_success=run(RunStatus.SUCCEEDED, fetched),
    )
    metrics.set_status(status, now=NOW.timestamp())
    found = scraped(metrics)
    assert found[("pricing_snapshot_age_seconds", frozenset())] == 30 * 3600
    assert found[("pricing_snapshot_fetched_timestamp_seconds", frozenset())] == fetched.timestamp()
    assert found[("pricing_snapshot_is_seed", frozenset())] == 0
    assert found[("pricing_last_refresh_failed", frozenset())] == 1
    assert found[("pricing_last_refresh_success_timestamp_seconds", frozenset())] == (
        fetched.timestamp()
    )
    assert found[("pricing_models", frozenset({("status", "unknown")}))] == 53
    assert found[("pricing_category_models", frozenset({("category", "coding")}))] == 4


def test_two_instances_do_not_share_values() -> None:
    first, second = Metrics(), Metrics()
    first.redis_error("ping")
    assert ("pricing_redis_errors_total", frozenset({("operation", "ping")})) not in scraped(second)


def test_build_info_and_runtime_collectors() -> None:
    found = scraped(Metrics(version="1.2.3"))
    assert found[("pricing_build_info", frozenset({("version", "1.2.3")}))] == 1
    names = {name for name, _ in found}
    assert {"process_cpu_seconds_total", "process_resident_memory_bytes"} <= names
    assert {"python_info", "python_gc_collections_total"} <= names


def test_multiprocess_mode_serves_runtime_collectors_too(tmp_path: Path) -> None:
    # prometheus-client reads PROMETHEUS_MULTIPROC_DIR when it is imported: in a fresh process.
    script = (
        "from pricing_service.metrics import Metrics, multiprocess_dir\n"
        "m = Metrics(multiprocess=multiprocess_dir(), version='9.9')\n"
        "m.redis_error('ping')\n"
        "print(m.exposition().decode())\n"
    )
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    result = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True
    )
    found = {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(result.stdout)
        for s in family.samples
    }
    assert found[("pricing_build_info", frozenset({("version", "9.9")}))] == 1
    assert found[("pricing_redis_errors_total", frozenset({("operation", "ping")}))] == 1
    names = {name for name, _ in found}
    assert {"process_resident_memory_bytes", "python_info", "python_gc_collections_total"} <= names
