"""Fault injection on the real dependencies: Redis, PostgreSQL and the upstream misbehave.

A TCP proxy (tests/support/tcp_proxy.py) sits between the service and the real Redis or
PostgreSQL, so a test can reset connections or black-hole them while requests flow.
"""

from __future__ import annotations

import logging
import os
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import anyio
import httpx2
import pytest
import sqlalchemy as sa
from litestar.testing import AsyncTestClient
from sqlalchemy.engine import make_url

from pricing_service.app import create_app
from tests.support.process import ServiceProcess, free_port
from tests.support.recording import CATALOG_DIR
from tests.support.settings import CRON, bearer, settings_for
from tests.support.snapshots import store_snapshot_at
from tests.support.tcp_proxy import TcpProxy

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Iterator

    from tests.support.mcp_upstream import LoopbackUpstream

MODELS = "/api/v1/pricing/models"
AUTH = bearer(CRON)


@pytest.fixture
def redis_proxy(redis_url: str) -> Iterator[tuple[TcpProxy, str]]:
    url = make_url(redis_url.replace("redis://", "postgresql://", 1))
    with TcpProxy(url.host or "127.0.0.1", url.port or 6379) as proxy:
        yield proxy, f"redis://127.0.0.1:{proxy.port}/{url.database or 0}"


@pytest.fixture
def postgres_proxy(database_url_pg: str) -> Iterator[tuple[TcpProxy, str]]:
    url = make_url(database_url_pg)
    with TcpProxy(url.host or "127.0.0.1", url.port or 5432) as proxy:
        yield (
            proxy,
            url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False),
        )


async def _settled(scheduler_asleep: Callable[[], Awaitable[None]]) -> None:
    """The service holds the stored snapshot (loaded in its lifespan, as after a refresh) and
    its scheduler's startup reads are done, so a fault injected next hits requests, not them."""
    await scheduler_asleep()


@pytest.mark.parametrize("fault", ["reset", "blackhole"])
async def test_redis_down_while_requests_flow(
    database_url_pg: str,
    redis_proxy: tuple[TcpProxy, str],
    mcp_upstream: LoopbackUpstream,
    fault: str,
    scheduler_asleep: Callable[[], Awaitable[None]],
) -> None:
    proxy, redis_url = redis_proxy
    store_snapshot_at(database_url_pg)
    settings = settings_for(database_url_pg, mcp_upstream.url, redis_url=redis_url)
    async with AsyncTestClient(create_app(settings)) as warm:
        await _settled(scheduler_asleep)
        assert (await warm.get(MODELS)).status_code == 200
        proxy.set_mode(fault)
        # A warm worker keeps answering from memory.
        for _ in range(20):
            response = await warm.get(MODELS)
            assert response.status_code == 200
            assert response.headers["x-cache-tier"] == "memory"
        # A cold worker (another process) starts with Redis down: it loads the snapshot from
        # the database in its lifespan, before serving, so even its first answer is warm.
        async with AsyncTestClient(create_app(settings)) as cold:
            attempts = proxy.connections
            first = await cold.get(MODELS)
            assert first.status_code == 200
            assert first.headers["x-cache-tier"] == "memory"
            assert first.json()["snapshot"] == (await warm.get(MODELS)).json()["snapshot"]
            for _ in range(50):
                response = await cold.get(MODELS, params={"view": "all"})
                assert response.status_code == 200
            # The breaker keeps a dead Redis off the request path: a burst of requests makes
            # at most a couple of connection attempts, not one (or a timeout) per request.
            assert proxy.connections - attempts <= 3
            ready = await cold.get("/ready")
            assert ready.status_code == 200
            assert any("redis unreachable" in d for d in ready.json()["degraded"])
        proxy.set_mode("pass")


async def test_database_unreachable_with_warm_cache(
    database_url_pg: str,
    postgres_proxy: tuple[TcpProxy, str],
    mcp_upstream: LoopbackUpstream,
    caplog: pytest.LogCaptureFixture,
    scheduler_asleep: Callable[[], Awaitable[None]],
) -> None:
    caplog.set_level(logging.WARNING, logger="pricing_service.service")
    proxy, database_url = postgres_proxy
    # Stored directly: the setup is not what the proxy is for (a cut under load here lost it).
    store_snapshot_at(database_url_pg)
    settings = settings_for(database_url, mcp_upstream.url)
    async with AsyncTestClient(create_app(settings)) as client:
        await _settled(scheduler_asleep)
        before = await client.get(MODELS)
        assert before.status_code == 200
        proxy.set_mode("reset")

        def recheck_failed() -> bool:
            return any(r.getMessage().startswith("service.database_error") for r in caplog.records)

        # Requests flow until the background pointer re-check has met the dead database, and
        # once more after it; fail_after only stops a test whose re-check never comes.
        with anyio.fail_after(30):
            while True:
                failed_before = recheck_failed()
                response = await client.get(MODELS)
                assert response.status_code == 200
                assert response.content == before.content or response.headers["etag"]
                if failed_before:
                    break
                await anyio.sleep(0.1)
        ready = await client.get("/ready")
        assert ready.status_code == 200, ready.text
        proxy.set_mode("pass")


# Thirty requests within a 10 s bound: in the serial tier, so that a busy machine does not
# stretch them.
@pytest.mark.serial
async def test_database_and_redis_black_holed_with_warm_cache(
    database_url_pg: str,
    postgres_proxy: tuple[TcpProxy, str],
    redis_proxy: tuple[TcpProxy, str],
    mcp_upstream: LoopbackUpstream,
    scheduler_asleep: Callable[[], Awaitable[None]],
) -> None:
    pg_proxy, database_url = postgres_proxy
    r_proxy, redis_url = redis_proxy
    store_snapshot_at(database_url_pg)  # straight in, not through the proxy (set-up only)
    settings = settings_for(database_url, mcp_upstream.url, redis_url=redis_url)
    async with AsyncTestClient(create_app(settings)) as client:
        await _settled(scheduler_asleep)
        assert (await client.get(MODELS)).status_code == 200
        pg_proxy.set_mode("blackhole")
        r_proxy.set_mode("blackhole")
        # Pointer re-checks run in the background: requests never wait for the dead servers.
        with anyio.fail_after(10):
            for _ in range(30):
                response = await client.get(MODELS)
                assert response.status_code == 200
                await anyio.sleep(0.1)
        pg_proxy.set_mode("pass")
        r_proxy.set_mode("pass")


async def test_stale_snapshot_is_flagged_after_failed_refreshes(
    database_url_pg: str,
    mcp_upstream: LoopbackUpstream,
    scheduler_asleep: Callable[[], Awaitable[None]],
) -> None:
    store_snapshot_at(database_url_pg)
    settings = settings_for(database_url_pg, mcp_upstream.url)
    async with AsyncTestClient(create_app(settings)) as client:
        await _settled(scheduler_asleep)
        mcp_upstream.set_behaviour("http_500")
        failed = await client.post("/api/v1/pricing/refresh", headers=AUTH, json={"force": True})
        assert failed.status_code == 502
    # The last good snapshot ages past the cache TTL (24 h).
    engine = sa.create_engine(database_url_pg)
    with engine.begin() as conn:
        conn.execute(
            sa.text("UPDATE snapshot SET fetched_at = :t"),
            {"t": datetime.now(UTC) - timedelta(days=2)},
        )
    engine.dispose()
    async with AsyncTestClient(create_app(settings)) as client:
        data = (await client.get(MODELS)).json()
        assert data["snapshot"]["stale"] is True
        assert int((await client.get(MODELS)).headers["age"]) >= 2 * 86400 - 5
        assert data["snapshot"]["source"] == "pricepertoken"
        gpt4o = next(i for i in data["items"] if i["model_id"] == "gpt-4o")
        assert gpt4o["input_usd_per_million"] == 2.5  # the last good price stays
        ready = (await client.get("/ready")).json()
        assert ready["ready"] is True
        assert any("stale" in d for d in ready["degraded"])
        assert any("last refresh failed" in d for d in ready["degraded"])


# Two uvicorn workers must start within ServiceProcess's bound: in the serial tier.
@pytest.mark.serial
async def test_twenty_simultaneous_http_triggers_across_two_workers_make_one_upstream_run(
    database_url_pg: str, redis_url: str, mcp_upstream: LoopbackUpstream
) -> None:
    mcp_upstream.latency = 0.005
    # The last good prices stored before the start, not the bundled seed stored by a refresh
    # child at startup (seconds): the run under test is the one the triggers make.
    store_snapshot_at(database_url_pg)
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PRICING_")}
    env.update(
        DATABASE_URL=database_url_pg,
        REDIS_URL=redis_url,
        PRICEPERTOKEN_MCP_URL=mcp_upstream.url,
        PRICING_CRON_TOKEN=CRON,
        PRICING_REFRESH_ON_STARTUP="false",
        PRICING_RATE_LIMIT_PER_MINUTE="100",
        PRICING_CATALOG_DIR=str(CATALOG_DIR),
        PORT=str(port),
    )
    statuses: list[Any] = []
    with ServiceProcess(env, port, args=["serve", "--workers", "2"]) as server:
        async with httpx2.AsyncClient(base_url=server.url, timeout=60) as http:

            async def trigger() -> None:
                response = await http.post(
                    "/api/v1/pricing/refresh", headers=AUTH, json={"force": True}
                )
                statuses.append((response.status_code, response.json()))

            async with anyio.create_task_group() as tasks:
                for _ in range(20):
                    tasks.start_soon(trigger)
    assert mcp_upstream.calls["get_all_models"] == 1, statuses
    ran = [body for code, body in statuses if code == 200]
    waiting = [body for code, body in statuses if code == 202]
    assert len(ran) == 1, statuses
    assert len(waiting) == 19
    assert {w["run_id"] for w in waiting} == {ran[0]["run"]["id"]}


async def test_refresh_falls_back_to_the_database_lock_when_redis_is_down(
    database_url_pg: str, redis_proxy: tuple[TcpProxy, str], mcp_upstream: LoopbackUpstream
) -> None:
    proxy, redis_url = redis_proxy
    settings = settings_for(database_url_pg, mcp_upstream.url, redis_url=redis_url)
    async with AsyncTestClient(create_app(settings)) as client:
        proxy.set_mode("reset")
        response = await client.post("/api/v1/pricing/refresh", headers=AUTH, json={"force": True})
        assert response.status_code == 200, response.text
        assert response.json()["run"]["status"] == "succeeded"
        data = (await client.get(MODELS)).json()
        assert data["snapshot"]["source"] == "pricepertoken"
        proxy.set_mode("pass")
