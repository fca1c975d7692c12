"""Webhooks across real processes on PostgreSQL: a worker SIGKILLed mid-delivery loses
nothing, two replicas never send one delivery at once, and a hanging receiver slows neither a
refresh nor the selector."""

from __future__ import annotations

import os
import signal
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import httpx2
import pytest
import sqlalchemy as sa
from standardwebhooks import Webhook

from pricing_service.db import create_db_engine
from pricing_service.webhooks import outbox
from pricing_service.webhooks.events import EventContext
from tests.support.process import ServiceProcess, free_port, started_together
from tests.support.recording import CATALOG_DIR
from tests.support.snapshots import store_snapshot_at
from tests.support.webhook_receiver import WebhookReceiver

if TYPE_CHECKING:
    from collections.abc import Iterator

    from tests.support.mcp_upstream import LoopbackUpstream

# Real processes under leases and timeouts: in the serial tier, after the parallel part of
# `make test`.
pytestmark = pytest.mark.serial

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
CRON = "cron-token-for-webhook-tests"


def _env(
    database_url: str, upstream_url: str, receiver: WebhookReceiver, **extra: str
) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PRICING_", "DATABASE_"))}
    env.pop("REDIS_URL", None)
    env.update(
        DATABASE_URL=database_url,
        PRICING_CATALOG_DIR=str(CATALOG_DIR),
        PRICEPERTOKEN_MCP_URL=upstream_url,
        PRICING_REFRESH_ON_STARTUP="false",
        PRICING_CRON_TOKEN=CRON,
        PRICING_RATE_LIMIT_PER_MINUTE="1000",
        PRICING_WEBHOOK_URLS=receiver.url,
        PRICING_WEBHOOK_SECRET=SECRET,
        PRICING_WEBHOOK_POLL_SECONDS="0.1",
        PRICING_WEBHOOK_RETRY_SECONDS="0.5,0.5,0.5,0.5,0.5,0.5",
    )
    env.update(extra)
    return env


def _serve(env: dict[str, str]) -> ServiceProcess:
    port = free_port()
    return ServiceProcess(env, port, args=("serve", "--port", str(port)))


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    with WebhookReceiver() as r:
        yield r


def _record(database_url: str, receiver: WebhookReceiver, count: int) -> list[int]:
    """``count`` events with a delivery each to ``receiver``, in one transaction."""
    engine = create_db_engine(database_url)
    context = EventContext(endpoints=(("json", receiver.url),))
    try:
        with engine.begin() as conn:
            ids = [
                outbox.record(conn, context, "run.held", {"n": n}, datetime.now(UTC))
                for n in range(count)
            ]
        return [i for i in ids if i is not None]
    finally:
        engine.dispose()


def _deliveries(database_url: str) -> list[outbox.Delivery]:
    engine = create_db_engine(database_url)
    try:
        return outbox.deliveries(engine, limit=1000)
    finally:
        engine.dispose()


def _expire_leases(database_url: str) -> None:
    """Every claimed delivery's lease ended a second ago (claim kept: who held it)."""
    engine = create_db_engine(database_url)
    try:
        with engine.begin() as conn:
            conn.execute(
                sa.text(
                    "UPDATE webhook_delivery SET claimed_until = :past"
                    " WHERE claimed_until IS NOT NULL"
                ),
                {"past": datetime.now(UTC) - timedelta(seconds=1)},
            )
    finally:
        engine.dispose()


def test_a_worker_killed_mid_delivery_loses_nothing(
    database_url_pg: str, mcp_upstream: LoopbackUpstream, receiver: WebhookReceiver
) -> None:
    store_snapshot_at(database_url_pg)
    receiver.mode = "hang"
    env = _env(database_url_pg, mcp_upstream.url, receiver, PRICING_WEBHOOK_TIMEOUT_SECONDS="5")
    (event_id,) = _record(database_url_pg, receiver, 1)
    first = _serve(env)
    with first:
        receiver.wait_for(lambda: receiver.in_flight == 1, 30, "the first attempt in flight")
        assert first.pid is not None
        os.kill(first.pid, signal.SIGKILL)  # mid-delivery: the receiver holds the request
        first.stop()
    (claimed,) = _deliveries(database_url_pg)
    assert claimed.status == "pending"
    assert claimed.attempts == 0  # the attempt never finished
    assert claimed.claimed_until is not None  # the dead worker's lease, not yet expired
    # A lease that ends by itself: PRICING_WEBHOOK_TIMEOUT_SECONDS * 2 + 5 = 15 s from the claim.
    assert claimed.claimed_until <= datetime.now(UTC) + timedelta(seconds=15), claimed
    # Its end, without waiting it out (15 s, most of this test's time): the row as the clock
    # leaves it once the lease has passed, the dead worker's claim still on it.
    _expire_leases(database_url_pg)
    receiver.mode = "ok"
    receiver.release()
    with _serve(env):
        # The next worker takes the delivery over, the dead worker's lease having expired.
        receiver.wait_for(lambda: receiver.ok_ids(), 60, "the delivery by the second worker")
        receiver.wait_for(
            lambda: _deliveries(database_url_pg)[0].status == "delivered", 10, "delivered"
        )
    (delivered,) = _deliveries(database_url_pg)
    assert delivered.event_id == event_id
    assert delivered.attempts == 1
    ids = {r.webhook_id for r in receiver.received}
    assert len(ids) == 1  # the killed attempt and the delivery carried the same webhook-id
    (ok,) = [r for r in receiver.received if r.answered == 204]
    assert Webhook(SECRET).verify(ok.body, ok.headers)["type"] == "run.held"


def test_two_replicas_never_send_one_delivery_at_once(
    database_url_pg: str, mcp_upstream: LoopbackUpstream, receiver: WebhookReceiver
) -> None:
    store_snapshot_at(database_url_pg)
    receiver.mode = "slow"
    receiver.delay = 0.2
    env = _env(database_url_pg, mcp_upstream.url, receiver)
    with started_together(_serve(env), _serve(env)) as (one, two):
        events = _record(database_url_pg, receiver, 100)
        receiver.wait_for(lambda: len(receiver.ok_ids()) >= 100, 120, "100 deliveries")
        receiver.wait_for(
            lambda: all(d.status == "delivered" for d in _deliveries(database_url_pg)),
            20,
            "every delivery recorded",
        )
        logs = one.output, two.output
    assert len(events) == 100
    ids = receiver.ok_ids()
    assert len(ids) == len(set(ids)) == 100  # each once: no delivery was sent twice
    assert receiver.max_concurrent == 1
    assert [r.answered for r in receiver.received].count(204) == 100
    # Both replicas delivered (each claimed its own batches).
    assert all("event=webhooks.delivered" in log for log in logs), [
        log.count("webhooks.delivered") for log in logs
    ]


def test_a_hanging_receiver_slows_neither_a_refresh_nor_the_selector(
    database_url_pg: str, mcp_upstream: LoopbackUpstream, receiver: WebhookReceiver
) -> None:
    store_snapshot_at(database_url_pg)
    receiver.mode = "hang"
    env = _env(database_url_pg, mcp_upstream.url, receiver, PRICING_WEBHOOK_TIMEOUT_SECONDS="30")
    _record(database_url_pg, receiver, 3)
    with _serve(env) as service:
        receiver.wait_for(lambda: receiver.in_flight == 3, 30, "three requests hung")
        mcp_upstream.set_prices({"openai-gpt-4o": (3.0, 12.0)})
        refresh = httpx2.post(
            f"{service.url}/api/v1/pricing/refresh",
            headers={"Authorization": f"Bearer {CRON}"},
            json={"force": True, "wait_seconds": 120},
            timeout=130,
        )
        assert refresh.status_code == 200, refresh.text
        assert refresh.json()["run"]["status"] == "succeeded"
        selector = httpx2.get(f"{service.url}/api/v1/pricing/models", timeout=5)
        assert selector.status_code == 200
        gpt = httpx2.get(
            f"{service.url}/api/v1/pricing/models", params={"ids": "gpt-4o"}, timeout=5
        ).json()["items"][0]
        assert gpt["input_usd_per_million"] == 3.0
        # All of it happened while the receiver held every request it was sent.
        assert receiver.in_flight == 3
        assert receiver.received == []
        # The refresh's prices.changed is recorded, waiting for the receiver.
        types = [d.event_type for d in _deliveries(database_url_pg)]
        assert "prices.changed" in types
        receiver.mode = "ok"
        receiver.release()
        receiver.wait_for(
            lambda: "prices.changed" in {r.json()["type"] for r in receiver.received if r.answered},
            60,
            "prices.changed delivered once the receiver answers",
        )
