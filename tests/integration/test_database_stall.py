"""A database that accepts connections and then never answers (issue 19).

Without a client-side bound, such a peer held a worker thread in libpq forever: the scheduler
stopped for good, /ready and the operator endpoints waited as long as the client did, and a test
run hung past its timeout. The TCP proxy plays the peer: ``stall`` keeps the open connections
and stops answering on them, ``blackhole`` resets them and swallows new ones.

No test measures time: each wait has a bound (``anyio.fail_after``, the pytest timeout), and a
wait on a service's report is bounded by what the service itself logs or answers.
"""

from __future__ import annotations

import logging
import os
import time
from typing import TYPE_CHECKING, Any

import anyio
import httpx2
import pytest
import sqlalchemy as sa
from litestar.testing import AsyncTestClient
from sqlalchemy.engine import make_url

from pricing_service import db
from pricing_service.app import create_app
from pricing_service.db import create_db_engine
from pricing_service.errors import StorageUnavailable
from tests.support.process import ServiceProcess, free_port
from tests.support.recording import CATALOG_DIR
from tests.support.settings import CRON, bearer, settings_for
from tests.support.snapshots import store_snapshot_at
from tests.support.tcp_proxy import TcpProxy

# Bounds on real waits over real processes: in the serial tier, after the parallel one; its
# four tests on one of the tier's workers (`make test` runs it with `--dist loadgroup`).
pytestmark = [pytest.mark.serial, pytest.mark.xdist_group("database_stall")]

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Iterator

    from litestar import Litestar

    from tests.support.mcp_upstream import LoopbackUpstream

CHANGES = "/api/v1/pricing/changes"
RUNS = "/api/v1/pricing/runs"
# A generous bound on one answer with the database stalled: the service answers in seconds
# (tracker.DATABASE_WAIT_SECONDS), this only keeps a regression from hanging the test.
ANSWER_BOUND = 30
# The service's bound on a database read (tests/support/settings.py widens it for the rest):
# 1 s, not the default 3 s, since each stalled answer waits it out (five of them in a test, one
# after the other: the test client serves one request at a time). No read that must succeed
# depends on it: every read after the database is back is retried within CATCH_UP_BOUND.
STALL_WAIT = {"pricing_database_wait_seconds": 1.0}
# A bound on a worker catching up once the database is back (pointer check every 2 s, the
# scheduler's retry capped at 30 s, plus the engine's bounds on what was in flight).
CATCH_UP_BOUND = 90


@pytest.fixture
def postgres_proxy(database_url_pg: str) -> Iterator[tuple[TcpProxy, str]]:
    url = make_url(database_url_pg)
    with TcpProxy(url.host or "127.0.0.1", url.port or 5432) as proxy:
        yield (
            proxy,
            url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False),
        )


def no_answers(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.getMessage().startswith("db.no_answer")]


# -- the engine: every wait bounded ------------------------------------------------------------


def test_a_statement_commit_or_ping_the_server_never_answers_fails_and_the_pool_recovers(
    postgres_proxy: tuple[TcpProxy, str],
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    proxy, database_url = postgres_proxy
    # A 1 s server-side statement timeout: the watchdog cuts at 1 s + its margin, 2 s here, not
    # the service's 5 s (two stalls waited out: 6 s less), still twice the server's own cut.
    monkeypatch.setattr(db, "ANSWER_MARGIN_SECONDS", 2.0)
    engine = create_db_engine(database_url, statement_timeout_ms=1000)
    try:
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT 1")).scalar() == 1
            proxy.set_mode("stall")  # this connection stays open and gets no answer
            with pytest.raises(sa.exc.OperationalError):
                conn.execute(sa.text("SELECT 2"))
            assert conn.invalidated  # the pool will not hand it out again
        proxy.set_mode("pass")
        transaction = engine.begin()
        conn = transaction.__enter__()
        assert conn.execute(sa.text("SELECT 3")).scalar() == 3
        proxy.set_mode("stall")
        with pytest.raises(sa.exc.OperationalError):  # the COMMIT gets no answer either
            transaction.__exit__(None, None, None)
        proxy.set_mode("pass")
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT 4")).scalar() == 4
        # Back in the pool, idle; the checkout's ping gets no answer, and the fresh connection
        # it tries instead reaches a peer that never completes the startup.
        proxy.set_mode("stall")
        with pytest.raises(sa.exc.OperationalError), engine.connect() as conn:
            conn.execute(sa.text("SELECT 5"))
        proxy.set_mode("pass")
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT 6")).scalar() == 6
    finally:
        engine.dispose()
    waited = [line.split("waiting_for=")[1].split()[0] for line in no_answers(caplog)]
    assert waited == ["statement", "commit", "ping"], no_answers(caplog)
    # The server enforces the statement timeout too (where it answers at all).
    engine = create_db_engine(database_url, statement_timeout_ms=1000)
    try:
        with engine.connect() as conn, pytest.raises(sa.exc.OperationalError, match="timeout"):
            conn.execute(sa.text("SELECT pg_sleep(5)"))
    finally:
        engine.dispose()


# -- a running service: answers in seconds, catches up by itself --------------------------------


async def _get(client: AsyncTestClient[Litestar], path: str, **kwargs: Any) -> Any:
    with anyio.fail_after(ANSWER_BOUND):
        return await client.get(path, **kwargs)


async def _until(check: Callable[[], Awaitable[bool]], what: str) -> None:
    with anyio.fail_after(CATCH_UP_BOUND):
        while not await check():
            await anyio.sleep(0.2)


def _ready_snapshot(ready: Any) -> int | None:
    if ready.status_code != 200:
        return None
    snapshot = ready.json().get("snapshot")
    return int(snapshot["id"]) if snapshot else None


async def test_with_the_database_stalled_endpoints_answer_503_and_the_worker_follows_after(
    database_url_pg: str,
    postgres_proxy: tuple[TcpProxy, str],
    mcp_upstream: LoopbackUpstream,
    scheduler_asleep: Callable[[], Awaitable[None]],
) -> None:
    proxy, database_url = postgres_proxy
    first, _ = store_snapshot_at(database_url_pg)
    async with AsyncTestClient(
        create_app(settings_for(database_url, mcp_upstream.url, **STALL_WAIT))
    ) as c:
        await scheduler_asleep()
        assert _ready_snapshot(await _get(c, "/ready")) == first.id
        proxy.set_mode("stall")  # the pooled connections stay open and go silent
        for path in (CHANGES, RUNS, f"{RUNS}/1"):
            answer = await _get(c, path, headers=bearer(CRON))
            assert answer.status_code == 503, (path, answer.text)
            assert answer.headers["retry-after"] == str(StorageUnavailable.retry_after)
            assert "database unavailable" in answer.json()["detail"], answer.text
        # Liveness needs no database; readiness and the scrape answer from what the worker has.
        assert (await _get(c, "/health")).status_code == 200
        ready = await _get(c, "/ready")
        assert ready.status_code == 200, ready.text
        assert "database unreachable: serving the cached snapshot" in ready.json()["degraded"]
        scrape = await _get(c, "/metrics")
        assert scrape.status_code == 200
        assert "pricing_http_requests_total" in scrape.text
        # The database is back with a newer snapshot: the watcher, whose checks went unanswered
        # meanwhile, is not stuck and switches to it.
        proxy.set_mode("pass")
        newer, _ = store_snapshot_at(database_url_pg)
        assert newer.id > first.id

        async def follows() -> bool:
            return _ready_snapshot(await _get(c, "/ready")) == newer.id

        await _until(follows, "the worker follows the newer snapshot")

        async def answers() -> bool:
            return bool((await _get(c, RUNS, headers=bearer(CRON))).status_code == 200)

        await _until(answers, "the database's answers again")


async def test_a_service_started_while_the_database_is_unreachable_catches_up(
    database_url_pg: str,
    postgres_proxy: tuple[TcpProxy, str],
    mcp_upstream: LoopbackUpstream,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    proxy, database_url = postgres_proxy
    stored, _ = store_snapshot_at(database_url_pg)
    proxy.set_mode("blackhole")  # connections are accepted and never answered
    async with AsyncTestClient(
        create_app(settings_for(database_url, mcp_upstream.url, **STALL_WAIT))
    ) as c:
        ready = await _get(c, "/ready")
        assert ready.status_code == 503, ready.text
        assert ready.headers["retry-after"] == str(StorageUnavailable.retry_after)
        assert "database unreachable" in ready.json()["reason"]
        assert (await _get(c, "/health")).status_code == 200
        messages = [r.getMessage() for r in caplog.records]
        assert any(m.startswith("app.seed_failed") for m in messages), messages
        assert not any(m.startswith("refresh.scheduled") for m in messages), messages
        proxy.set_mode("pass")

        async def caught_up() -> bool:
            scheduled = any(r.getMessage().startswith("refresh.scheduled") for r in caplog.records)
            return scheduled and _ready_snapshot(await _get(c, "/ready")) == stored.id

        await _until(caught_up, "the worker loads the snapshot and schedules its refreshes")


def _wait_for(check: Callable[[], bool], what: str, service: ServiceProcess) -> None:
    deadline = time.monotonic() + CATCH_UP_BOUND
    while not check():
        assert time.monotonic() < deadline, f"{what}:\n{service.output}"
        time.sleep(0.2)


def _served_snapshot(url: str) -> int | None:
    try:
        return _ready_snapshot(httpx2.get(f"{url}/ready", timeout=ANSWER_BOUND))
    except httpx2.TransportError:
        return None


def test_a_worker_that_started_during_a_database_blip_follows_and_schedules_once_it_is_back(
    database_url_pg: str, postgres_proxy: tuple[TcpProxy, str], mcp_upstream: LoopbackUpstream
) -> None:
    """The measured case: `serve` checks the database (it answers), then it is gone while the
    worker starts; the worker must neither stay on what it had nor skip its scheduler."""
    proxy, database_url = postgres_proxy
    stored, _ = store_snapshot_at(database_url_pg)
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PRICING_")}
    env.update(
        DATABASE_URL=database_url,
        PRICEPERTOKEN_MCP_URL=mcp_upstream.url,
        PRICING_CRON_TOKEN=CRON,
        PRICING_REFRESH_ON_STARTUP="false",
        PRICING_CATALOG_DIR=str(CATALOG_DIR),
        PRICING_DATABASE_WAIT_SECONDS=str(STALL_WAIT["pricing_database_wait_seconds"]),
        PORT=str(port),
    )
    proxy.switch_after(1, "blackhole")  # `serve`'s own check connects once and is answered
    service = ServiceProcess(env, port).start()
    try:
        _wait_for(lambda: "app.seed_failed" in service.output, "no failed startup read", service)
        assert "refresh.scheduled" not in service.output
        assert _served_snapshot(service.url) is None  # up, with nothing to serve yet
        proxy.set_mode("pass")
        _wait_for(
            lambda: "refresh.scheduled" in service.output,
            "the scheduler never ran after the database came back",
            service,
        )
        _wait_for(
            lambda: _served_snapshot(service.url) == stored.id,
            "the worker never loaded the current snapshot",
            service,
        )
        newer, _ = store_snapshot_at(database_url_pg)
        _wait_for(
            lambda: _served_snapshot(service.url) == newer.id,
            "the worker never followed the newer snapshot",
            service,
        )
    finally:
        service.stop()
