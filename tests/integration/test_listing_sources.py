"""The refresh on a listing source it does not know the kind of, and the listing-source contract.

The refresh-behaviour tests run on the in-memory source (tests/support/fake_source.py) with
real PostgreSQL and Redis and no MCP: an accepted run, a price jump held, a listing jump held as
a run (and accepted), a null kept unknown, a failing source. The contract runs on every adapter
(the fake, PricePerToken over the loopback MCP server, genai-prices): what each fetch normalizes
to, and a whole refresh stored under the source's name.
"""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import pytest
from litestar.testing import AsyncTestClient
from redis.asyncio import Redis

from pricing_service.app import create_app, listing_source
from pricing_service.config import Settings
from pricing_service.domain import PriceBasis, PriceStatus, RunStatus, SnapshotSource
from pricing_service.errors import UpstreamUnavailable
from pricing_service.listings.genai_prices import GenaiPricesSource
from pricing_service.listings.pricepertoken import PricePerTokenSource
from pricing_service.lock import DatabaseRefreshLock, RedisRefreshLock
from pricing_service.refresh import Refresher
from pricing_service.upstream import PricePerTokenClient
from tests.support.fake_source import FakeSource
from tests.support.recording import CATALOG, normalized_recording
from tests.support.settings import ADMIN, CRON, bearer, settings_for
from tests.support.snapshots import WEEK

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from pricing_service.domain import ModelPrice, SnapshotInfo
    from pricing_service.listings import ListingSource
    from pricing_service.repository import Repository
    from tests.support.mcp_upstream import LoopbackUpstream

JUMPING = "codex-mini"  # priced by the recording, not curated
NULL_MODEL = "fake-unpriced-1"


def _unpriced() -> ModelPrice:
    return replace(
        normalized_recording().prices[0],
        model_id=NULL_MODEL,
        slug=None,
        provider="fake-lab",
        display_name="Fake unpriced",
        input_usd_per_million=None,
        output_usd_per_million=None,
        price_basis=PriceBasis.LIST,
        pricing_source=None,
    )


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_url)
    yield client
    await client.aclose()


def refresher_on(
    repository: Repository, redis: Redis, source: ListingSource[Any], published: list[int]
) -> Refresher:
    async def publish(info: SnapshotInfo) -> None:
        published.append(info.id)

    return Refresher(
        repository=repository,
        source=source,
        catalog=CATALOG,
        lock=RedisRefreshLock(redis, 120, fallback=DatabaseRefreshLock(repository.engine, 120)),
        publish=publish,
        interval_seconds=43200,
        grace_seconds=WEEK,
    )


def figures(price: ModelPrice) -> tuple[Decimal | None, Decimal | None]:
    return price.input_usd_per_million, price.output_usd_per_million


# -- the refresh on the fake source ---------------------------------------------------------


async def test_an_accepted_run_stores_the_sources_prices_under_its_name(
    database_url_pg: str, repository: Repository, redis: Redis
) -> None:
    source = FakeSource(normalized_recording().prices)
    published: list[int] = []
    outcome = await refresher_on(repository, redis, source, published).refresh("test")

    assert outcome.run.status is RunStatus.SUCCEEDED
    assert source.fetches == 1
    current = repository.current_snapshot()
    assert current is not None
    snapshot, prices = current
    assert snapshot.source == "fake"
    assert published == [snapshot.id]
    by_id = {p.model_id: p for p in prices}
    assert figures(by_id[JUMPING]) == figures(source.prices[JUMPING])


async def test_a_price_jump_is_held_and_the_last_accepted_figure_served(
    database_url_pg: str, repository: Repository, redis: Redis
) -> None:
    source = FakeSource(normalized_recording().prices)
    refresher = refresher_on(repository, redis, source, [])
    await refresher.refresh("test")
    before = figures(repository.current_prices()[JUMPING])
    assert before[0] is not None
    assert before[1] is not None
    source.set_price(JUMPING, (str(before[0] * 50), str(before[1] * 50)))

    run = (await refresher.refresh("test", force=True)).run

    assert run.status is RunStatus.SUCCEEDED
    assert [h.model_id for h in run.held_prices] == [JUMPING]
    assert figures(repository.current_prices()[JUMPING]) == before
    current = repository.current_snapshot()
    assert current is not None
    (served,) = [p for p in current[1] if p.model_id == JUMPING]
    assert served.held is not None
    assert served.held.proposed_input_usd_per_million == before[0] * 50


async def test_a_listing_jump_holds_the_run_until_accepted_and_keeps_its_source(
    database_url_pg: str, repository: Repository, redis: Redis
) -> None:
    recording = normalized_recording().prices
    source = FakeSource(recording[:100])
    refresher = refresher_on(repository, redis, source, [])
    await refresher.refresh("test")
    before = repository.current_prices()
    source.prices = {p.model_id: p for p in recording}  # over 3x the accepted snapshot's models

    held = (await refresher.refresh("test", force=True)).run

    assert held.status is RunStatus.HELD
    assert "models, over 3x" in (held.held_reason or "")
    assert repository.current_prices() == before
    acceptance = await refresher.accept(held.id, by="ops")
    assert acceptance.snapshot.source == "fake"
    assert len(repository.current_prices()) > len(before)


async def test_a_null_price_is_stored_unknown_not_free(
    database_url_pg: str, repository: Repository, redis: Redis
) -> None:
    source = FakeSource([*normalized_recording().prices, _unpriced()])
    run = (await refresher_on(repository, redis, source, []).refresh("test")).run

    assert run.status is RunStatus.SUCCEEDED
    stored = repository.current_prices()[NULL_MODEL]
    assert figures(stored) == (None, None)
    assert stored.price_status is PriceStatus.UNKNOWN


async def test_a_sources_log_field_named_like_the_refreshers_own_does_not_fail_the_run(
    database_url_pg: str, repository: Repository, redis: Redis
) -> None:
    source = FakeSource(normalized_recording().prices)
    source.log_fields = {"rows": -1, "run_id": "theirs", "version": "v9"}
    seen: list[dict[str, Any]] = []
    refresher = refresher_on(repository, redis, source, [])
    refresher.observers.append(
        lambda name, fields: seen.append(fields) if name == "refresh.normalized" else None
    )
    run = (await refresher.refresh("test")).run

    assert run.status is RunStatus.SUCCEEDED, run.error
    assert len(seen) == 1
    assert seen[0]["rows"] == len(normalized_recording().prices)
    assert seen[0]["run_id"] == run.id
    assert seen[0]["version"] == "v9"  # the source's own count is kept


async def test_a_failing_source_fails_the_run_and_keeps_the_last_prices(
    database_url_pg: str, repository: Repository, redis: Redis
) -> None:
    source = FakeSource(normalized_recording().prices)
    refresher = refresher_on(repository, redis, source, [])
    await refresher.refresh("test")
    before = repository.current_snapshot()
    source.error = UpstreamUnavailable("the fake source is down")

    run = (await refresher.refresh("test", force=True)).run

    assert run.status is RunStatus.FAILED
    assert run.error == "UpstreamUnavailable: the fake source is down"
    assert repository.current_snapshot() == before


# -- the contract every adapter keeps ----------------------------------------------------------


@pytest.fixture(params=["fake", "pricepertoken", "genai-prices"])
def adapter(request: pytest.FixtureRequest) -> ListingSource[Any]:
    if request.param == "fake":
        return FakeSource([*normalized_recording().prices, _unpriced()])
    if request.param == "pricepertoken":
        upstream: LoopbackUpstream = request.getfixturevalue("mcp_upstream")
        return PricePerTokenSource(
            PricePerTokenClient(upstream.url, call_timeout=5, run_timeout=60, retries=0)
        )
    return GenaiPricesSource()


async def test_every_source_normalizes_to_one_sorted_price_per_model_with_null_kept(
    adapter: ListingSource[Any],
) -> None:
    fetched = await adapter.fetch()
    listing = adapter.normalize(fetched)

    assert adapter.name
    assert adapter.name != SnapshotSource.SEED
    ids = [p.model_id for p in listing.prices]
    assert ids == sorted(set(ids))
    assert len(ids) >= 100
    assert fetched.rows_seen >= len(ids) + listing.rows_rejected
    assert fetched.latency_ms >= 0
    for price in listing.prices:
        for value in figures(price):
            assert value is None or (isinstance(value, Decimal) and value >= 0)
        if None in figures(price):
            assert price.price_status is not PriceStatus.FREE  # unknown is never free
    assert isinstance(fetched.log_fields(), dict)
    assert all(count >= 0 for count in fetched.call_outcomes().values())


async def test_every_source_refreshes_into_a_snapshot_under_its_name(
    database_url_pg: str, repository: Repository, redis: Redis, adapter: ListingSource[Any]
) -> None:
    published: list[int] = []
    run = (await refresher_on(repository, redis, adapter, published).refresh("test")).run

    assert run.status is RunStatus.SUCCEEDED, run.error
    current = repository.current_snapshot()
    assert current is not None
    assert current[0].source == adapter.name
    assert published == [current[0].id]
    assert run.rows_seen is not None
    assert run.rows_seen >= 100


# -- the wiring: PRICING_LISTING_SOURCE ---------------------------------------------------------


async def test_the_setting_chooses_the_source_a_served_refresh_runs_on(
    sqlite_url: str, mcp_upstream: LoopbackUpstream
) -> None:
    default = settings_for(sqlite_url, mcp_upstream.url)
    assert isinstance(listing_source(default), PricePerTokenSource)
    settings = settings_for(sqlite_url, mcp_upstream.url, pricing_listing_source="GenAI-Prices")
    assert isinstance(listing_source(settings), GenaiPricesSource)
    async with AsyncTestClient(create_app(settings)) as client:
        answer = await client.post(
            "/api/v1/pricing/refresh", headers=bearer(CRON), json={"force": True}
        )
        assert answer.status_code == 200, answer.text
        run = answer.json()["run"]
        # Its first run lists fewer models than the PricePerToken seed: the gate holds it
        # until an operator accepts it, like any source's shrunken listing.
        assert run["status"] == RunStatus.HELD, run
        accepted = await client.post(
            "/api/v1/pricing/refresh", headers=bearer(ADMIN), json={"accept_run_id": run["id"]}
        )
        assert accepted.status_code == 200, accepted.text
        ready = (await client.get("/ready")).json()
    assert sum(mcp_upstream.calls.values()) == 0  # PricePerToken was never asked
    assert ready["snapshot"]["source"] == "genai-prices", ready


def test_an_unknown_listing_source_is_refused_with_the_valid_ones() -> None:
    with pytest.raises(ValueError, match="genai-prices"):
        Settings(pricing_listing_source="openrouter")
