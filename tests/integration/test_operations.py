"""Operations: the debug sample, /metrics, readiness with Redis down, logs, rate limits, CORS."""

from __future__ import annotations

import json
import logging
import os
import re
import time
from pathlib import Path
from typing import TYPE_CHECKING

import anyio
import httpx2
import pytest
from litestar.testing import AsyncTestClient
from prometheus_client.parser import text_string_to_metric_families

from pricing_service import app as app_module
from pricing_service.app import create_app
from pricing_service.config import Settings
from tests.support.process import ServiceProcess, free_port
from tests.support.recording import CATALOG_DIR, ROWS
from tests.support.settings import ADMIN, CRON, WRONG, bearer, settings_for
from tests.support.snapshots import store_snapshot_at

if TYPE_CHECKING:
    from litestar import Litestar

    from tests.support.mcp_upstream import LoopbackUpstream

SAMPLE = "/api/v1/pricing/debug/sample"
REFRESH = "/api/v1/pricing/refresh"
MODELS = "/api/v1/pricing/models"
ORIGIN = "https://cognitia.example"


Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def samples(text: str) -> Samples:
    """Every sample of a Prometheus text exposition, by name and labels."""
    found: Samples = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            found[(s.name, frozenset(s.labels.items()))] = s.value
    return found


def value(found: Samples, name: str, **labels: str) -> float:
    return found.get((name, frozenset(labels.items())), 0.0)


# -- the debug sample (its reads on one shared service: test_debug_sample.py) ----------------


async def test_admin_endpoints_closed_without_admin_token(
    sqlite_url: str, mcp_upstream: LoopbackUpstream
) -> None:
    store_snapshot_at(sqlite_url)
    settings = settings_for(sqlite_url, mcp_upstream.url, pricing_admin_token=None)
    async with AsyncTestClient(create_app(settings)) as c:
        for headers in ({}, bearer(CRON), bearer("")):
            response = await c.get(SAMPLE, headers=headers)
            assert response.status_code == 403
            assert response.json()["detail"].startswith("admin access not configured")
        # The cron token still refreshes (answered with the run that just succeeded).
        refreshed = await c.post(REFRESH, headers=bearer(CRON))
        assert refreshed.status_code == 200, refreshed.text
        assert refreshed.json()["run"]["status"] == "succeeded"


# -- /metrics -----------------------------------------------------------------------------------


async def test_metrics_after_refresh_and_reads(client: AsyncTestClient[Litestar]) -> None:
    # A real run over MCP: its outcome and every upstream call are counted in this process.
    refreshed = await client.post(REFRESH, headers=bearer(CRON), json={"force": True})
    assert refreshed.status_code == 200, refreshed.text
    for _ in range(3):
        assert (await client.get(MODELS)).status_code == 200
    assert (await client.get("/nope")).status_code == 404
    response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    found = samples(response.text)
    assert value(found, "pricing_refresh_runs_total", outcome="succeeded") == 1
    assert value(found, "pricing_refresh_runs_total", outcome="failed") == 0
    # One latency per MCP call of the run: the list call plus one get_model per model.
    calls = value(found, "pricing_upstream_call_duration_seconds_count")
    assert calls > len(ROWS) * 0.9
    assert value(found, "pricing_snapshot_age_seconds") < 60
    assert value(found, "pricing_snapshot_is_seed") == 0
    assert value(found, "pricing_last_refresh_failed") == 0
    assert value(found, "pricing_last_refresh_success_timestamp_seconds") > 1.7e9
    assert (
        value(found, "pricing_http_requests_total", route=MODELS, method="GET", status="200") == 3
    )
    assert (
        value(found, "pricing_http_requests_total", route="unmatched", method="GET", status="404")
        == 1
    )
    assert value(found, "pricing_http_request_duration_seconds_count", route=MODELS) == 3
    assert (
        sum(
            value(found, "pricing_cache_hits_total", tier=t)
            for t in ("memory", "redis", "database")
        )
        == 3
    )
    # Model counts agree with the views they describe.
    all_items = json.loads((await client.get(MODELS, params={"view": "all"})).content)["items"]
    for status in ("priced", "free", "local", "unknown"):
        expected = sum(1 for i in all_items if i["price_status"] == status)
        assert value(found, "pricing_models", status=status) == expected, status
    curated = json.loads((await client.get(MODELS)).content)["categories"]
    for category in curated:
        assert value(found, "pricing_category_models", category=category["id"]) == len(
            category["model_ids"]
        )


async def test_metrics_count_failed_refreshes(
    client: AsyncTestClient[Litestar], mcp_upstream: LoopbackUpstream
) -> None:
    mcp_upstream.set_behaviour("http_403")
    failed = await client.post(REFRESH, headers=bearer(CRON), json={"force": True})
    assert failed.status_code == 502
    skipped = await client.post(REFRESH, headers=bearer(CRON))
    assert skipped.json()["started"] is False
    found = samples((await client.get("/metrics")).text)
    assert value(found, "pricing_refresh_runs_total", outcome="failed") == 1
    assert value(found, "pricing_refresh_runs_total", outcome="skipped") == 1
    assert value(found, "pricing_last_refresh_failed") == 1


# -- readiness and Redis down -------------------------------------------------------------------


async def test_redis_down_is_degraded_not_down(
    sqlite_url: str, mcp_upstream: LoopbackUpstream
) -> None:
    settings = settings_for(
        sqlite_url, mcp_upstream.url, redis_url=f"redis://127.0.0.1:{free_port()}/0"
    )
    async with AsyncTestClient(
        create_app(settings.model_copy(update={"pricing_rate_limit_per_minute": 2}))
    ) as c:
        ready = await c.get("/ready")
        assert ready.status_code == 200, ready.text
        report = ready.json()
        assert report["ready"] is True
        assert any(d.startswith("redis unreachable") for d in report["degraded"])
        assert report["snapshot"]["source"] == "seed"  # offline first start: the seed, stale
        assert any("stale" in d for d in report["degraded"])
        models = await c.get(MODELS)
        assert models.status_code == 200
        assert models.headers["x-cache-tier"] in ("memory", "database")
        # The rate limit falls back to counting in process: it neither blocks nor lets through.
        statuses = [(await c.get(SAMPLE, headers=bearer(ADMIN))).status_code for _ in range(3)]
        assert statuses == [200, 200, 429]
        found = samples((await c.get("/metrics")).text)
        assert value(found, "pricing_redis_errors_total", operation="ping") >= 1
        assert value(found, "pricing_redis_errors_total", operation="rate_limit") == 3
        assert value(found, "pricing_snapshot_is_seed") == 1


async def test_ready_is_503_only_without_any_data(tmp_path: Path) -> None:
    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'empty.db'}",
        pricing_catalog_dir=CATALOG_DIR,
        redis_url=f"redis://127.0.0.1:{free_port()}/0",
    )
    async with AsyncTestClient(create_app(settings)) as c:
        ready = await c.get("/ready")
        assert ready.status_code == 503
        assert "migrate" in ready.json()["reason"]
        assert any(d.startswith("redis unreachable") for d in ready.json()["degraded"])
        assert (await c.get("/metrics")).status_code == 200


# -- rate limits --------------------------------------------------------------------------------

# Seconds: the test's whole sequence fits in one window. Windows are aligned on the epoch: this
# one runs from 2001-09-09 to 2033-05-18, so the bounded wait below for a window's end (up to
# WINDOW_MARGIN seconds; an hour's window had it in one run of twenty) is not taken before then.
RATE_WINDOW = 10**9
WINDOW_MARGIN = 180  # seconds: longer than the sequence takes on a loaded machine


@pytest.mark.parametrize("stack", ["memory", "redis"])
async def test_rate_limit_per_endpoint_with_retry_after(
    request: pytest.FixtureRequest,
    sqlite_url: str,
    mcp_upstream: LoopbackUpstream,
    stack: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    extra = {"redis_url": request.getfixturevalue("redis_url")} if stack == "redis" else {}
    # The subject is the count shared through Redis, not a slow Redis's cost (test_faults.py):
    # on a loaded machine one call past the service's 0.25 s bound fell back to the process's
    # own count (by design) and the fourth wrong token was not limited. A bound of seconds here.
    monkeypatch.setattr(app_module, "REDIS_SOCKET_TIMEOUT", 10.0)
    store_snapshot_at(sqlite_url)  # a run just succeeded: refreshes within budget answer with it
    settings = settings_for(sqlite_url, mcp_upstream.url, **extra)
    limited_settings = settings.model_copy(update={"pricing_rate_limit_per_minute": 3})
    # The limiter counts per fixed window: a sequence that straddled a boundary started a new
    # count mid-test (seen once on a loaded machine). An hour's window, and a start at least
    # WINDOW_MARGIN seconds before its end (a bounded wait when it is nearer).
    left = RATE_WINDOW - time.time() % RATE_WINDOW
    if left < WINDOW_MARGIN:
        await anyio.sleep(left + 0.5)
    async with AsyncTestClient(create_app(limited_settings, rate_window_seconds=RATE_WINDOW)) as c:
        # Wrong tokens count in a bucket of their own: guessing is limited, a valid token not.
        codes = [(await c.get(SAMPLE, headers=bearer(WRONG))).status_code for _ in range(4)]
        assert codes == [401, 401, 401, 429]
        valid = [(await c.get(SAMPLE, headers=bearer(ADMIN))).status_code for _ in range(3)]
        assert valid == [200, 200, 200]
        limited = await c.get(SAMPLE, headers=bearer(ADMIN))
        assert limited.status_code == 429
        assert 1 <= int(limited.headers["retry-after"]) <= RATE_WINDOW
        assert "too many calls" in limited.json()["detail"]
        # Each endpoint has its own budget; the selector has none.
        refreshes = [(await c.post(REFRESH, headers=bearer(CRON))).status_code for _ in range(4)]
        assert refreshes == [200, 200, 200, 429]
        for _ in range(5):
            assert (await c.get(MODELS)).status_code == 200
    if stack == "redis":
        # Shared across workers: a second app (another worker) sees the same count.
        async with AsyncTestClient(
            create_app(limited_settings, rate_window_seconds=RATE_WINDOW)
        ) as other:
            assert (await other.get(SAMPLE, headers=bearer(ADMIN))).status_code == 429


# -- logs ---------------------------------------------------------------------------------------


async def test_by_default_errors_are_logged_one_by_one_and_successes_summarized(
    sqlite_url: str, mcp_upstream: LoopbackUpstream, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="pricing_service.http")
    # No request counts as slow here (the first selector answer builds the dataset, which on a
    # busy machine took over the default 250 ms and was logged one by one): the subject is errors.
    settings = settings_for(sqlite_url, mcp_upstream.url, pricing_slow_request_ms=600_000)
    async with AsyncTestClient(create_app(settings)) as c:
        for _ in range(5):
            assert (await c.get(MODELS)).status_code == 200
        assert (await c.get("/nowhere")).status_code == 404
        assert (await c.get(SAMPLE, headers=bearer(WRONG))).status_code == 401
        during = [r.getMessage() for r in caplog.records if r.name == "pricing_service.http"]
    after = [r.getMessage() for r in caplog.records if r.name == "pricing_service.http"]
    assert [line.split(" status=")[0] for line in during] == [
        "http.request method=GET path=/nowhere",
        f"http.request method=GET path={SAMPLE}",
    ]
    summaries = [line for line in after if line.startswith("http.summary")]
    assert len(summaries) == 1
    assert f"route={MODELS} count=5 statuses=200:5 " in summaries[0]


async def test_one_log_line_per_request_and_no_token_anywhere(
    sqlite_url: str, mcp_upstream: LoopbackUpstream, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    store_snapshot_at(sqlite_url)
    settings = settings_for(sqlite_url, mcp_upstream.url, pricing_access_log="all")
    async with AsyncTestClient(create_app(settings)) as c:
        assert (await c.post(REFRESH, headers=bearer(CRON))).status_code == 200  # the recent run
        # A real run over MCP: its phases are logged.
        assert (await c.post(REFRESH, headers=bearer(WRONG))).status_code == 401
        assert (await c.post(REFRESH, headers=bearer(ADMIN), json={"force": True})).is_success
        assert (await c.get(SAMPLE, headers=bearer(ADMIN))).status_code == 200
        assert (await c.get(SAMPLE, headers=bearer(WRONG))).status_code == 401
        assert (await c.get(SAMPLE, headers=bearer(CRON))).status_code == 401
        assert (await c.get(SAMPLE, headers={"Authorization": WRONG})).status_code == 401
        mcp_upstream.set_behaviour("http_500")
        failed = await c.post(REFRESH, headers=bearer(CRON), json={"force": True})
        assert failed.status_code == 502
        assert (await c.get(MODELS, headers={"Authorization": f"Bearer {ADMIN}"})).is_success
    text = caplog.text + "\n".join(str(r.args) for r in caplog.records)
    for token in (CRON, ADMIN, WRONG):
        assert token not in text
    assert "authorization" not in text.lower()
    lines = [r.getMessage() for r in caplog.records if r.name == "pricing_service.http"]
    assert len(lines) == 9
    pattern = re.compile(
        r"^http\.request method=(GET|POST) path=/\S+ status=\d{3} duration_ms=[\d.]+"
        r" request_id=[0-9a-f]{32}( tier=\w+)?( slow=True)?$"
    )
    assert all(pattern.match(line) for line in lines), lines
    assert lines[0].startswith("http.request method=POST path=/api/v1/pricing/refresh status=200")
    assert lines[-1].startswith(f"http.request method=GET path={MODELS} status=200")
    assert lines[-1].endswith(" tier=memory")
    # Refresh phases are logged with counts and durations.
    messages = [r.getMessage() for r in caplog.records]
    completed = [m for m in messages if m.startswith("refresh.completed")]
    assert completed
    assert re.search(r"models=\d+ .*duration_ms=\d+", completed[0])


# -- CORS ---------------------------------------------------------------------------------------


async def test_cors_only_on_public_reads(sqlite_url: str, mcp_upstream: LoopbackUpstream) -> None:
    store_snapshot_at(sqlite_url)  # the refresh below answers with this run: no upstream call
    settings = settings_for(sqlite_url, mcp_upstream.url, pricing_cors_origins=ORIGIN)
    async with AsyncTestClient(create_app(settings)) as c:
        origin = {"Origin": ORIGIN}
        models = await c.get(MODELS, headers=origin)
        assert models.headers["access-control-allow-origin"] == ORIGIN
        assert "Origin" in models.headers.get_list("vary")
        changes = await c.get("/api/v1/pricing/changes", headers=origin)
        assert changes.headers["access-control-allow-origin"] == ORIGIN
        other = await c.get(MODELS, headers={"Origin": "https://evil.example"})
        assert other.status_code == 200
        assert "access-control-allow-origin" not in other.headers
        preflight = await c.options(
            MODELS,
            headers={
                **origin,
                "Access-Control-Request-Method": "GET",
                "Access-Control-Request-Headers": "if-none-match",
            },
        )
        assert preflight.status_code == 204
        assert preflight.headers["access-control-allow-origin"] == ORIGIN
        assert "GET" in preflight.headers["access-control-allow-methods"]
        closed = [
            await c.post(REFRESH, headers={**origin, **bearer(CRON)}),
            await c.get(SAMPLE, headers={**origin, **bearer(ADMIN)}),
            await c.get("/metrics", headers=origin),
            await c.options(REFRESH, headers={**origin, "Access-Control-Request-Method": "POST"}),
            await c.options(SAMPLE, headers={**origin, "Access-Control-Request-Method": "GET"}),
            await c.options(MODELS, headers={**origin, "Access-Control-Request-Method": "POST"}),
        ]
        for response in closed:
            assert "access-control-allow-origin" not in response.headers, response.request.url
            assert "access-control-allow-methods" not in response.headers


# -- several workers ------------------------------------------------------------------------------


# Two uvicorn workers must start within ServiceProcess's bound: in the serial tier.
@pytest.mark.serial
def test_metrics_add_up_across_workers(tmp_path: Path, sqlite_url: str) -> None:
    """`serve --workers 2`: every scrape, whichever worker answers, counts every request once."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PRICING_", "DATABASE_"))}
    env.pop("REDIS_URL", None)
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    env.update(
        DATABASE_URL=sqlite_url,  # migrated already (a copy): no `migrate` process
        PRICING_CATALOG_DIR=str(CATALOG_DIR),
        PRICEPERTOKEN_MCP_URL=f"http://127.0.0.1:{free_port()}/mcp",
        PRICING_REFRESH_ON_STARTUP="false",
        TMPDIR=str(tmp_path),  # where serve makes the metrics directory
    )
    with ServiceProcess(env, port, args=["serve", "--port", str(port), "--workers", "2"]) as server:
        base = server.url
        # Fresh connections, so the kernel spreads them over both workers.
        for _ in range(20):
            assert httpx2.get(f"{base}/health", timeout=5).status_code == 200
        metrics_dirs = list(tmp_path.glob("pricing-metrics-*"))
        assert len(metrics_dirs) == 1

        def health_200s() -> float:
            scrape = httpx2.get(f"{base}/metrics", timeout=5)
            assert scrape.status_code == 200
            found = samples(scrape.text)
            assert value(found, "pricing_snapshot_is_seed") == 1
            assert value(found, "pricing_snapshot_age_seconds") > 0
            return value(
                found, "pricing_http_requests_total", route="/health", method="GET", status="200"
            )

        # Each worker moves its requests into the shared files once a second (metrics.py
        # FLUSH_SECONDS): the other worker's show up within that, then every scrape counts all.
        deadline = time.monotonic() + 30
        while health_200s() < 20 and time.monotonic() < deadline:
            time.sleep(0.2)
        pids = {f.stem.rsplit("_", 1)[1] for f in metrics_dirs[0].glob("counter_*.db")}
        assert len(pids) == 2, pids  # both workers counted requests
        for _ in range(6):
            assert health_200s() == 20  # never more: a flush moves each request once
    # Successful requests are summarized (PRICING_ACCESS_LOG=summary, the default); each worker
    # writes its summary when it stops.
    assert "http.summary route=/health count=" in server.output
    # Each serving worker froze its heap once it had loaded the snapshot (service.py).
    assert server.output.count("event=service.heap_settled") == 2
    assert "http.request method=GET path=/health status=200" not in server.output
    assert not list(tmp_path.glob("pricing-metrics-*"))  # removed on shutdown
