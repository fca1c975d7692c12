"""Webhooks in process, on SQLite and PostgreSQL: events written with their change (and only
then), delivered signed to a loopback receiver, retried with the same id, dead, retried."""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import anyio
import pytest
import sqlalchemy as sa
from standardwebhooks import Webhook

from pricing_service import tables
from pricing_service.db import create_db_engine
from pricing_service.domain import DeliveryStatus, SnapshotSource
from pricing_service.errors import RunFenced
from pricing_service.listings.pricepertoken import PricePerTokenSource
from pricing_service.lock import DatabaseRefreshLock
from pricing_service.logs import Event
from pricing_service.refresh import Refresher
from pricing_service.repository import Repository
from pricing_service.upstream import PricePerTokenClient
from pricing_service.webhooks import outbox
from pricing_service.webhooks.delivery import Deliverer
from pricing_service.webhooks.events import EventContext, EventType, curated_categories
from tests.support.recording import CATALOG, normalized_recording, undecided_catalog
from tests.support.snapshots import WEEK, store_snapshot
from tests.support.webhook_receiver import WebhookReceiver

if TYPE_CHECKING:
    from collections.abc import Iterator

    from pricing_service.domain import NormalizedListing

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
RATE = Decimal("4000")


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    with WebhookReceiver() as r:
        yield r


def _repository(database_url: str, url: str, **context: Any) -> Repository:
    return Repository(
        create_db_engine(database_url),
        EventContext(
            endpoints=(("json", url),),
            usd_to_cop=RATE,
            curated=curated_categories(CATALOG),
            failing_after_seconds=context.pop("failing_after_seconds", 60),
        ),
    )


def _deliverer(repository: Repository, schedule: tuple[float, ...] = (0.1, 0.1, 0.1)) -> Deliverer:
    return Deliverer(
        repository=repository,
        secret=SECRET,
        schedule=schedule,
        timeout_seconds=2,
        lease_seconds=10,
        poll_seconds=0.05,
        seed=1,
    )


async def _deliver_until(deliverer: Deliverer, check: Any, seconds: float = 30) -> None:
    """Run the delivery loop until ``check()`` holds (bounded)."""
    with anyio.fail_after(seconds):
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(deliverer.run_forever)
            while not check():
                await anyio.sleep(0.05)
            tasks.cancel_scope.cancel()


def _refresher(repository: Repository) -> Refresher:
    return Refresher(
        repository=repository,
        source=PricePerTokenSource(PricePerTokenClient("http://127.0.0.1:9/mcp")),
        catalog=undecided_catalog(),
        lock=DatabaseRefreshLock(repository.engine, 60),
        publish=_nowhere,
        interval_seconds=43200,
        grace_seconds=WEEK,
    )


async def _nowhere(info: object) -> None:
    return None


def _moved(listing: NormalizedListing, model_id: str, factor: str) -> NormalizedListing:
    prices = tuple(
        replace(
            p,
            input_usd_per_million=p.input_usd_per_million * Decimal(factor),
            output_usd_per_million=p.output_usd_per_million * Decimal(factor),
        )
        if p.model_id == model_id
        and p.input_usd_per_million is not None
        and p.output_usd_per_million is not None
        else p
        for p in listing.prices
    )
    return replace(listing, prices=prices)


def _types(repository: Repository) -> list[str]:
    return [t for _, t, _ in outbox.events_of(repository.engine)]


async def test_every_event_type_is_delivered_signed(
    database_url: str, receiver: WebhookReceiver
) -> None:
    repository = _repository(database_url, receiver.url)
    now = datetime.now(UTC)
    # No successful run for longer than the threshold, a failure: refresh.failing, once.
    old = repository.start_run("test", now - timedelta(hours=2))
    repository.fail_run(old.id, now - timedelta(hours=2), "UpstreamUnavailable: down")
    again = repository.start_run("test", now - timedelta(hours=1))
    repository.fail_run(again.id, now - timedelta(hours=1), "UpstreamUnavailable: still down")
    assert repository.note_failing(now) is None  # told once per failing period
    assert _types(repository) == [EventType.REFRESH_FAILING]
    # A good run: prices.changed (arrivals), held prices, and the end of the failing period.
    listing = normalized_recording()
    # Without the operators' decisions: the recording's second-source holds stand.
    store_snapshot(repository, listing, catalog=undecided_catalog())
    # A 50 % move of one model's price: a change, served.
    store_snapshot(
        repository,
        _moved(listing, "gpt-4o", "1.5"),
        trigger="again",
        catalog=undecided_catalog(),
    )
    held = repository.start_run("test", now)
    repository.hold_run(held.id, reason="fewer models", listing=listing, now=now, latency_ms=1)
    open_held = repository.open_held_prices()
    assert open_held, "the recording holds second-source prices"
    refresher = _refresher(repository)
    await refresher.accept(open_held[0].run_id, by="tests", model_ids=[open_held[0].model_id])
    types = _types(repository)
    for expected in (
        EventType.REFRESH_FAILING,
        EventType.PRICES_CHANGED,
        EventType.PRICE_HELD,
        EventType.REFRESH_RECOVERED,
        EventType.RUN_HELD,
        EventType.DECISION_RECORDED,
    ):
        assert expected in types, (expected, types)
    assert types.count(EventType.REFRESH_FAILING) == 1
    assert types.count(EventType.REFRESH_RECOVERED) == 1

    deliverer = _deliverer(repository)
    # Until each delivery is recorded as delivered, not only received (the receiver answers
    # before the deliverer settles the row).
    await _deliver_until(
        deliverer,
        lambda: (
            len(receiver.ok_ids()) >= len(types)
            and outbox.counts(repository.engine)["delivered"] >= len(types)
        ),
    )
    verifier = Webhook(SECRET)
    bodies = {}
    for received in receiver.received:
        body = verifier.verify(received.body, received.headers)  # raises when not signed right
        assert set(body) == {"type", "timestamp", "data"}
        bodies[received.webhook_id] = body
    assert sorted(b["type"] for b in bodies.values()) == sorted(types)
    assert len(bodies) == len(types)  # one webhook-id per event
    by_type: dict[str, list[dict[str, Any]]] = {}
    for body in bodies.values():
        by_type.setdefault(body["type"], []).append(body["data"])
    moved = [
        c
        for data in by_type[EventType.PRICES_CHANGED]
        for c in data["changes"]
        if c["model_id"] == "gpt-4o" and c["kind"] == "changed"
    ]
    assert len(moved) == 1
    change = moved[0]
    assert change["after"]["input_usd_per_million"] == pytest.approx(
        change["before"]["input_usd_per_million"] * 1.5
    )
    assert change["after"]["input_cop_per_million"] == pytest.approx(
        change["after"]["input_usd_per_million"] * 4000
    )
    held_price = by_type[EventType.PRICE_HELD][0]
    assert {"model_id", "run_id", "reason", "curated", "categories"} <= set(held_price)
    assert isinstance(held_price["curated"], bool)
    assert by_type[EventType.RUN_HELD][0]["run_id"] == held.id
    decision = by_type[EventType.DECISION_RECORDED][0]
    assert decision["by"] == "tests"
    assert decision["decisions"][0]["model_id"] == open_held[0].model_id
    assert decision["decisions"][0]["figure"] == "proposed"
    failing = by_type[EventType.REFRESH_FAILING][0]
    assert failing["last_error"] == "UpstreamUnavailable: still down"
    assert failing["last_run_id"] == again.id
    assert outbox.counts(repository.engine) == {"pending": 0, "delivered": len(types), "dead": 0}
    repository.engine.dispose()


def test_an_event_exists_only_if_its_change_committed(
    database_url: str, receiver: WebhookReceiver
) -> None:
    repository = _repository(database_url, receiver.url)
    now = datetime.now(UTC)
    run = repository.start_run("test", now)
    repository.fail_run(run.id, now, "closed by another process")
    # The run is no longer running: holding it, or storing a snapshot under it, is fenced.
    with pytest.raises(RunFenced):
        repository.hold_run(
            run.id, reason="x", listing=normalized_recording(), now=now, latency_ms=None
        )
    with pytest.raises(RunFenced):
        _refresher(repository).writer.gate_and_store(
            run.id, normalized_recording(), now, None, source=SnapshotSource.PRICEPERTOKEN
        )
    assert _types(repository) == []
    assert outbox.counts(repository.engine) == {"pending": 0, "delivered": 0, "dead": 0}
    # The same calls on a live run commit, and so do their events and deliveries.
    live = repository.start_run("test", now)
    repository.hold_run(
        live.id, reason="x", listing=normalized_recording(), now=now, latency_ms=None
    )
    assert _types(repository) == [EventType.RUN_HELD]
    assert outbox.counts(repository.engine)["pending"] == 1
    repository.engine.dispose()


async def test_a_receiver_down_then_back_gets_each_event_once(
    database_url: str, receiver: WebhookReceiver
) -> None:
    repository = _repository(database_url, receiver.url)
    receiver.down()
    now = datetime.now(UTC)
    for n in range(3):
        run = repository.start_run("test", now)
        repository.hold_run(
            run.id, reason=f"held {n}", listing=normalized_recording(), now=now, latency_ms=None
        )
    deliverer = _deliverer(repository, schedule=(0.2,) * 30)

    def retried() -> bool:
        rows = outbox.deliveries(repository.engine)
        return all(d.attempts >= 2 for d in rows)

    await _deliver_until(deliverer, retried)
    pending = outbox.deliveries(repository.engine)
    assert {d.status for d in pending} == {"pending"}
    assert all(d.last_error and d.last_status is None for d in pending)
    receiver.up()

    def settled() -> bool:  # received, and each row settled (the POST comes before the row)
        rows = outbox.deliveries(repository.engine)
        return len(receiver.ok_ids()) >= 3 and all(d.status == "delivered" for d in rows)

    await _deliver_until(deliverer, settled)
    ids = receiver.ok_ids()
    assert len(ids) == len(set(ids)) == 3
    assert {d.status for d in outbox.deliveries(repository.engine)} == {"delivered"}
    repository.engine.dispose()


async def test_a_delivery_dies_after_its_schedule_and_can_be_retried(
    database_url: str, receiver: WebhookReceiver
) -> None:
    repository = _repository(database_url, receiver.url)
    receiver.mode = "error"
    run = repository.start_run("test", datetime.now(UTC))
    repository.hold_run(
        run.id,
        reason="held",
        listing=normalized_recording(),
        now=datetime.now(UTC),
        latency_ms=None,
    )
    deliverer = _deliverer(repository, schedule=(0.05, 0.05))

    def dead() -> bool:
        return outbox.counts(repository.engine)["dead"] == 1

    await _deliver_until(deliverer, dead)
    (delivery,) = outbox.deliveries(repository.engine)
    assert delivery.attempts == 3
    assert delivery.last_status == 500
    assert delivery.last_error == "HTTP 500"
    ids = [r.webhook_id for r in receiver.received]
    assert len(ids) == 3
    assert len(set(ids)) == 1
    assert outbox.retry(repository.engine, delivery.id, datetime.now(UTC)) is not None
    assert outbox.retry(repository.engine, delivery.id, datetime.now(UTC)) is None  # not dead
    receiver.mode = "ok"
    # Until the retried delivery is recorded as delivered, not only received (the receiver
    # answers before the deliverer settles the row: the check raced with it under load).
    await _deliver_until(
        deliverer,
        lambda: receiver.ok_ids() and outbox.counts(repository.engine)["delivered"] == 1,
    )
    assert receiver.ok_ids() == ids[:1]
    assert outbox.counts(repository.engine)["delivered"] == 1
    repository.engine.dispose()


def _settled(
    engine: Any, context: EventContext, at: datetime, *, ok: bool, dedupe_key: str | None = None
) -> int:
    """An event recorded at ``at`` whose one delivery was attempted then: delivered (``ok``) or
    dead (its schedule spent); the event's id."""
    with engine.begin() as conn:
        event_id = outbox.record(
            conn, context, EventType.RUN_HELD, {"at": at.isoformat()}, at, dedupe_key=dedupe_key
        )
    assert event_id is not None
    for claimed in outbox.claim_due(engine, "w", at, 30, 100):
        assert outbox.settle(
            engine,
            claimed.id,
            "w",
            at,
            ok=ok,
            status_code=204 if ok else 500,
            error=None,
            retry_in=None,
        )
    return event_id


async def test_settled_deliveries_past_the_retention_are_pruned_by_the_delivery_loop(
    database_url: str, receiver: WebhookReceiver, caplog: pytest.LogCaptureFixture
) -> None:
    repository = _repository(database_url, receiver.url)
    engine = repository.engine
    context = repository.events
    now = datetime.now(UTC)
    retention = timedelta(days=30)
    old, recent = now - retention - timedelta(days=1), now - retention + timedelta(days=1)
    old_delivered = _settled(engine, context, old, ok=True)
    old_dead = _settled(engine, context, old, ok=False)
    recent_delivered = _settled(engine, context, recent, ok=True)
    recent_dead = _settled(engine, context, recent, ok=False)
    with engine.begin() as conn:
        # Told with no endpoint configured: no delivery at all.
        quiet = outbox.record(conn, EventContext(), EventType.RUN_HELD, {}, old)
        # Told once per failing period by its key: kept however old.
        keyed = outbox.record(
            conn, EventContext(), EventType.REFRESH_FAILING, {}, old, dedupe_key="k"
        )
        # Pending since long ago (never claimed: due in the future), never pruned.
        pending = outbox.record(conn, context, EventType.RUN_HELD, {}, old)
    with engine.begin() as conn:
        conn.execute(
            sa.update(tables.webhook_delivery)
            .where(tables.webhook_delivery.c.event_id == pending)
            .values(next_attempt_at=now + timedelta(days=1))
        )
    before = {d.event_id: d.status for d in outbox.deliveries(engine)}
    assert before == {
        old_delivered: DeliveryStatus.DELIVERED,
        old_dead: DeliveryStatus.DEAD,
        recent_delivered: DeliveryStatus.DELIVERED,
        recent_dead: DeliveryStatus.DEAD,
        pending: DeliveryStatus.PENDING,
    }
    deliverer = Deliverer(
        repository=repository,
        secret=SECRET,
        schedule=(0.1,),
        timeout_seconds=2,
        lease_seconds=10,
        poll_seconds=0.05,
        retention_seconds=retention.total_seconds(),
    )
    caplog.set_level(logging.INFO, logger="pricing_service.webhooks")

    def pruned() -> list[dict[str, Any]]:
        return [
            r.msg.fields
            for r in caplog.records
            if isinstance(r.msg, Event) and r.msg.name == "webhooks.pruned"
        ]

    # One batch deletes at most its limit of each: the oldest delivery, then its event (now
    # without deliveries, older than the quiet one).
    assert outbox.prune(engine, now - retention, limit=1) == (1, 1)
    # The loop prunes the rest on its first pass, then every PRUNE_SECONDS: once in this run.
    await _deliver_until(deliverer, pruned)
    (logged,) = pruned()
    assert (logged["deliveries"], logged["events"]) == (1, 2)
    assert logged["retention_seconds"] == retention.total_seconds()
    after = {d.event_id: d.status for d in outbox.deliveries(engine)}
    assert after == {
        recent_delivered: DeliveryStatus.DELIVERED,
        recent_dead: DeliveryStatus.DEAD,
        pending: DeliveryStatus.PENDING,
    }
    events = {event_id for event_id, _, _ in outbox.events_of(engine)}
    assert events == {recent_delivered, recent_dead, keyed, pending}
    assert quiet not in events
    assert receiver.received == []  # nothing was due
    # Nothing left to prune: a second prune deletes nothing and says nothing.
    assert await deliverer.prune(now - retention) == (0, 0)
    assert len(pruned()) == 1
    engine.dispose()


def _cli_env(database_url: str, **extra: str) -> dict[str, str]:
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith(("PRICING_", "DATABASE_"))}
    env.pop("REDIS_URL", None)
    env.update(DATABASE_URL=database_url, PRICING_WEBHOOK_SECRET=SECRET, **extra)
    return env


def _dead_delivery(database_url: str, url: str) -> tuple[Repository, int]:
    repository = _repository(database_url, url)
    now = datetime.now(UTC)
    run = repository.start_run("test", now)
    repository.hold_run(
        run.id, reason="held", listing=normalized_recording(), now=now, latency_ms=None
    )
    (claimed,) = outbox.claim_due(repository.engine, "w", now, 30, 10)
    assert outbox.settle(
        repository.engine,
        claimed.id,
        "w",
        now,
        ok=False,
        status_code=410,
        error="HTTP 410",
        retry_in=None,
    )
    return repository, claimed.id


# Each test makes at most two `pricing-service` calls: a process start takes seconds on a busy
# machine, and a test has two minutes.


def test_cli_lists_and_retries_a_dead_delivery(
    database_url: str, receiver: WebhookReceiver
) -> None:
    from tests.support.process import cli

    repository, delivery_id = _dead_delivery(database_url, receiver.url)
    env = _cli_env(database_url)
    listed = cli(["webhooks", "list", "--status", "dead"], env)
    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.splitlines()
    assert lines[0] == "webhooks: pending=0 delivered=0 dead=1"
    assert lines[1].startswith(f"{delivery_id}\tdead\trun.held\t")
    assert "error='HTTP 410'" in lines[1]
    assert "/hook" not in listed.stdout  # the endpoint's path (a secret for Slack) is not shown
    retried = cli(["webhooks", "retry", str(delivery_id)], env)
    assert retried.returncode == 0, retried.stderr
    assert "pending again" in retried.stdout
    assert outbox.counts(repository.engine) == {"pending": 1, "delivered": 0, "dead": 0}
    repository.engine.dispose()


def test_cli_refuses_to_retry_what_is_not_dead(sqlite_url: str, receiver: WebhookReceiver) -> None:
    from tests.support.process import cli

    repository, delivery_id = _dead_delivery(sqlite_url, receiver.url)
    assert outbox.retry(repository.engine, delivery_id, datetime.now(UTC)) is not None
    env = _cli_env(sqlite_url)
    again = cli(["webhooks", "retry", str(delivery_id)], env)
    assert again.returncode == 1
    assert "is pending, not dead" in again.stderr
    missing = cli(["webhooks", "retry", "99999"], env)
    assert missing.returncode == 1
    assert "does not exist" in missing.stderr
    repository.engine.dispose()


def test_cli_sends_a_signed_test_event(sqlite_url: str, receiver: WebhookReceiver) -> None:
    from tests.support.process import cli

    env = _cli_env(sqlite_url)
    sent = cli(["webhooks", "test", receiver.url], env)
    assert sent.returncode == 0, sent.stderr
    assert "delivered" in sent.stdout
    (received,) = receiver.received
    body = Webhook(SECRET).verify(received.body, received.headers)
    assert body["type"] == "webhook.test"
    assert received.webhook_id in sent.stdout
    slack = cli(["webhooks", "test", f"slack:{receiver.url}"], env)
    assert slack.returncode == 0, slack.stderr
    assert "text" in receiver.received[-1].json()


def test_cli_test_event_failures_are_said(sqlite_url: str, receiver: WebhookReceiver) -> None:
    from tests.support.process import cli

    env = _cli_env(sqlite_url)
    receiver.mode = "error"
    failed = cli(["webhooks", "test", receiver.url], env)
    assert failed.returncode == 1
    assert "HTTP 500" in failed.stderr
    bad = cli(["webhooks", "test", "teams:https://example.org/x"], env)
    assert bad.returncode != 0
    assert "unknown format 'teams'" in bad.stderr
