"""Names once: every coded value the service stores or serves is a member of its enum in
domain.py (the enums are the contract's one spelling): a run's status and trigger as stored and
as /runs serves them, where each answer's data came from (``x-cache-tier``, /ready's ``tier``,
the metrics' ``tier`` label), how the rate is kept and which one each answer used, how each
refresh trigger came out (the metrics' ``outcome``
label), and each selector item's source; and what the webhooks store and report (a delivery's
status and format, an event's type, an attempt's outcome)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING

import anyio
import sqlalchemy as sa

from pricing_service.api.state import served
from pricing_service.currency import RateMode, RateSource
from pricing_service.db import create_db_engine
from pricing_service.domain import (
    AttemptOutcome,
    CacheTier,
    DeliveryStatus,
    PriceBasis,
    PriceStatus,
    RunOutcome,
    RunStatus,
    RunTrigger,
    SnapshotSource,
    WebhookFormat,
)
from pricing_service.repository import Repository
from pricing_service.sources import CATALOG_SOURCE, LOCAL_SOURCE
from pricing_service.webhooks import outbox
from pricing_service.webhooks.delivery import Deliverer
from pricing_service.webhooks.events import EventContext, EventType
from tests.integration.test_operations import samples
from tests.support.recording import normalized_recording
from tests.support.settings import ADMIN, CRON, bearer
from tests.support.webhook_receiver import WebhookReceiver

if TYPE_CHECKING:
    from litestar import Litestar
    from litestar.testing import AsyncTestClient

    from tests.support.mcp_upstream import LoopbackUpstream

API = "/api/v1/pricing"
SELECTOR_GETS = ("/models", "/models?view=all", "/prices", "/local", "/changes")
ITEM_SOURCES = {*SnapshotSource, CATALOG_SOURCE, LOCAL_SOURCE}


def _members(values: list[str], enum: type[StrEnum]) -> list[str]:
    """The values that are not a member of ``enum``: none, or the test fails."""
    return [v for v in values if v not in {m.value for m in enum}]


async def test_stored_and_served_codes_are_members_of_their_enums(
    client: AsyncTestClient[Litestar], mcp_upstream: LoopbackUpstream
) -> None:
    listed = await client.get(f"{API}/runs", headers=bearer(ADMIN))
    before = {run["id"] for run in listed.json()["items"]}
    # A run that succeeds, one answered with it (skipped), one that fails.
    succeeded = await client.post(f"{API}/refresh", headers=bearer(CRON), json={"force": True})
    assert succeeded.status_code == 200, succeeded.text
    skipped = await client.post(f"{API}/refresh", headers=bearer(CRON))
    assert skipped.json()["started"] is False
    mcp_upstream.set_behaviour("http_403")
    failed = await client.post(f"{API}/refresh", headers=bearer(CRON), json={"force": True})
    assert failed.status_code == 502, failed.text

    tiers = []
    for path in SELECTOR_GETS:
        for _ in range(2):  # a first answer (a render) and one from the rendered bytes
            response = await client.get(API + path)
            assert response.status_code == 200, (path, response.text)
            tiers.append(response.headers["x-cache-tier"])
    ready = (await client.get("/ready")).json()
    tiers.append(ready["tier"])
    assert _members(tiers, CacheTier) == []
    # The rate: how it is kept and which one every answer used.
    assert _members([ready["currency"]["mode"]], RateMode) == []
    sources = [ready["currency"]["source"]]
    for path in ("/models", "/prices", "/local"):
        sources.append(json.loads((await client.get(API + path)).content)["currency"]["source"])
    assert _members(sources, RateSource) == []

    items = json.loads((await client.get(f"{API}/models", params={"view": "all"})).content)
    assert [i["source"] for i in items["items"] if i["source"] not in ITEM_SOURCES] == []
    assert _members([i["price_status"] for i in items["items"]], PriceStatus) == []
    assert (
        _members([i["price_basis"] for i in items["items"] if i["price_basis"]], PriceBasis) == []
    )

    runs = (await client.get(f"{API}/runs", headers=bearer(ADMIN))).json()["items"]
    assert _members([r["status"] for r in runs], RunStatus) == []
    mine = [r for r in runs if r["id"] not in before]
    assert len(mine) == 2, mine  # the skipped trigger ran nothing
    assert {r["status"] for r in mine} == {RunStatus.SUCCEEDED, RunStatus.FAILED}
    assert _members([r["trigger"] for r in mine], RunTrigger) == []

    engine = served(client.app.state).pricing.repository.engine
    with engine.connect() as connection:
        stored = connection.execute(sa.text("select status, trigger from refresh_run")).all()
    assert _members([str(status) for status, _ in stored], RunStatus) == []
    # The fixture's run is the tests' own ("test"); the service stores only RunTriggers.
    assert _members([str(t) for _, t in stored if t != "test"], RunTrigger) == []

    found = samples((await client.get("/metrics")).text)
    outcomes = [dict(k[1])["outcome"] for k in found if k[0] == "pricing_refresh_runs_total"]
    assert sorted(outcomes) == sorted(
        [RunOutcome.SUCCEEDED, RunOutcome.SKIPPED, RunOutcome.FAILED]
    ), outcomes
    assert _members(outcomes, RunOutcome) == []
    hit_tiers = [dict(k[1])["tier"] for k in found if k[0] == "pricing_cache_hits_total"]
    assert hit_tiers
    assert _members(hit_tiers, CacheTier) == []


async def test_stored_and_reported_webhook_codes_are_members_of_their_enums(
    database_url_pg: str,
) -> None:
    """Deliveries to an endpoint of each format that fail until dead, then succeed, and one
    retried: every status, format, event type and attempt outcome the outbox stores or reports
    is a member (every member of the statuses, formats and outcomes is seen)."""
    with WebhookReceiver(mode="error") as receiver:
        endpoints = tuple((f, f"{receiver.url}?format={f}") for f in WebhookFormat)
        repository = Repository(
            create_db_engine(database_url_pg),
            EventContext(endpoints=endpoints, failing_after_seconds=60),
        )
        outcomes: list[AttemptOutcome] = []
        counted: list[dict[str, int]] = []
        deliverer = Deliverer(
            repository=repository,
            secret="whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            schedule=(0.05,),  # one retry, then dead
            timeout_seconds=2,
            lease_seconds=10,
            poll_seconds=0.05,
            seed=1,
            attempt_observers=[outcomes.append],
            count_observers=[lambda counts, _: counted.append(dict(counts))],
        )

        async def deliver_until(status: DeliveryStatus, count: int) -> None:
            with anyio.fail_after(30):
                async with anyio.create_task_group() as tasks:
                    tasks.start_soon(deliverer.run_forever)
                    while outbox.counts(repository.engine)[status] < count:
                        await anyio.sleep(0.05)
                    tasks.cancel_scope.cancel()

        now = datetime.now(UTC)
        old = repository.start_run("test", now - timedelta(hours=2))
        repository.fail_run(old.id, now - timedelta(hours=2), "UpstreamUnavailable: down")
        assert repository.note_failing(now) is not None  # refresh.failing, to each endpoint
        await deliver_until(DeliveryStatus.DEAD, len(WebhookFormat))
        receiver.mode = "ok"
        held = repository.start_run("test", now)
        repository.hold_run(
            held.id, reason="held", listing=normalized_recording(), now=now, latency_ms=None
        )
        await deliver_until(DeliveryStatus.DELIVERED, len(WebhookFormat))
        dead = outbox.deliveries(repository.engine, status=DeliveryStatus.DEAD)
        assert outbox.retry(repository.engine, dead[0].id, datetime.now(UTC)) is not None

        engine = repository.engine
        with engine.connect() as connection:
            stored = connection.execute(
                sa.text("select status, format from webhook_delivery")
            ).all()
            types = connection.scalars(sa.text("select type from webhook_event")).all()
        assert sorted({str(s) for s, _ in stored}) == sorted(DeliveryStatus)
        assert sorted({str(f) for _, f in stored}) == sorted(WebhookFormat)
        assert sorted(set(types)) == sorted([EventType.REFRESH_FAILING, EventType.RUN_HELD])
        # As the outbox reads them back (the console, the CLI): members, not bare strings.
        assert {type(d.status) for d in outbox.deliveries(engine)} == {DeliveryStatus}
        assert sorted(outbox.counts(engine)) == sorted(DeliveryStatus)
        assert counted
        assert [sorted(c) for c in counted if sorted(c) != sorted(DeliveryStatus)] == []
        # Each attempt's outcome (the metrics' label, the webhooks.<outcome> line).
        assert {type(o) for o in outcomes} == {AttemptOutcome}
        assert sorted(set(outcomes)) == sorted(AttemptOutcome)
        # The JSON endpoint's envelopes name their event by its type.
        sent = [r.json()["type"] for r in receiver.received if r.body.startswith(b'{"type"')]
        assert sent
        assert _members(sent, EventType) == []
        engine.dispose()
