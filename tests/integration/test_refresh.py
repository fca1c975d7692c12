"""Refresh runs against the loopback MCP server, on SQLite and PostgreSQL.

A run whose subject is the fetch is made for real; the "last good" state a failure must keep is
stored directly (``store_snapshot``), as a good run leaves it.
"""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING, Any

import anyio
import pytest
from redis.asyncio import Redis

from pricing_service.domain import PriceBasis, PriceStatus, RunStatus
from pricing_service.errors import RefreshInProgress
from pricing_service.lock import DatabaseRefreshLock, RedisRefreshLock
from pricing_service.normalize import PriceIndex
from pricing_service.refresh import Refresher
from tests.support.recording import CATALOG, SELECTOR
from tests.support.snapshots import store_snapshot

if TYPE_CHECKING:
    from collections.abc import Callable

    from pricing_service.domain import SnapshotInfo
    from pricing_service.repository import Repository
    from tests.support.mcp_upstream import LoopbackUpstream


async def test_full_refresh_loads_official_prices(
    repository: Repository,
    mcp_upstream: LoopbackUpstream,
    make_refresher: Callable[..., Refresher],
    published: list[SnapshotInfo],
) -> None:
    refresher = make_refresher()
    outcome = await refresher.refresh("test")
    run = outcome.run
    assert outcome.started
    assert run.status is RunStatus.SUCCEEDED, run.error
    assert run.rows_seen == 533
    assert mcp_upstream.calls["get_all_models"] == 1
    assert mcp_upstream.calls["get_model"] == 533
    # The limit was explicit: the server's 100-row default would have cut the listing.
    assert all(
        args.get("limit", 0) >= 1000
        for tool, args in mcp_upstream.tool_arguments
        if tool == "get_all_models"
    )
    current = repository.current_snapshot()
    assert current is not None
    info, prices = current
    assert info.id == run.snapshot_id
    assert published == [info]
    index = PriceIndex(prices, CATALOG.aliases)
    mini = index.resolve("gpt-5-mini")
    assert mini is not None
    assert (mini.input_usd_per_million, mini.output_usd_per_million) == (
        Decimal("0.25"),
        Decimal("2"),
    )
    assert mini.price_basis is PriceBasis.OFFICIAL
    grok = index.resolve("x-ai/grok-3")
    assert grok is not None
    assert (grok.input_usd_per_million, grok.output_usd_per_million) == (Decimal(5), Decimal(25))
    # Every curated or selector id that PricePerToken knows carries its official price.
    wanted = [
        m
        for ids in SELECTOR["curated_models_by_category"].values()
        for m in ids
        if not m.startswith("cognitia_llm_") and ":" not in m
    ] + SELECTOR["also_seen_in_selector"]
    known = {m: index.resolve(m) for m in wanted}
    resolved = {m: p for m, p in known.items() if p is not None}
    assert len(resolved) >= 15
    for model_id, price in resolved.items():
        if price.price_basis is PriceBasis.SECOND_SOURCE:  # the upstream does not list it
            assert price.pricing_source is not None
            assert price.pricing_source.startswith("genai-prices "), model_id
            assert index.resolve(model_id) is not None
            continue
        assert price.price_basis is PriceBasis.OFFICIAL, model_id
        if price.held is not None:  # the second source contradicts it: held, shown unknown
            assert price.held.reason.value == "second_source", model_id
            continue
        assert price.price_status is PriceStatus.PRICED, model_id
    unresolved = {m for m, p in known.items() if p is None}
    assert unresolved <= set(CATALOG.overrides), unresolved
    # Null is not zero: every model whose upstream price is null is unknown, none is free.
    unknown = [p for p in prices if p.price_status is PriceStatus.UNKNOWN]
    assert unknown
    assert all(p.input_usd_per_million is None or p.output_usd_per_million is None for p in unknown)
    # Served unknown: the upstream's unknowns, plus first-seen models whose figure is held.
    held_unknown = [p for p in unknown if p.held is not None]
    assert run.unknown == len(unknown) - len(held_unknown)


# What each failure needs from the client; the others keep its defaults (5 s a call, 60 s a run),
# so no case depends on how fast a loaded machine answers.
CLIENT_FOR: dict[str, dict[str, Any]] = {
    # Truncation must show at a small page: 50 rows a call, not 5,000 (the list and ~70 author
    # pages are then a few kB each).
    "truncated": {"list_limit": 50},
    # A hang is bounded by the call timeout: 3 attempts of 0.5 s.
    "hang": {"call_timeout": 0.5, "run_timeout": 5},
}


@pytest.mark.parametrize(
    ("behaviour", "tool", "error_kind"),
    [
        ("http_500", None, "UpstreamUnavailable"),
        ("http_403", None, "UpstreamRejected"),
        ("garbage", "get_all_models", "UpstreamRejected"),
        ("is_error", "get_all_models", "UpstreamRejected"),
        ("empty", "get_all_models", "SanityCheckFailed"),
        ("truncated", None, "UpstreamRejected"),
        ("hang", None, "UpstreamUnavailable"),
    ],
)
async def test_failed_run_keeps_last_good_prices(
    repository: Repository,
    mcp_upstream: LoopbackUpstream,
    make_refresher: Callable[..., Refresher],
    behaviour: str,
    tool: str | None,
    error_kind: str,
) -> None:
    _, good = store_snapshot(repository)
    before = repository.current_snapshot()
    refresher = make_refresher(**CLIENT_FOR.get(behaviour, {}))
    mcp_upstream.set_behaviour(behaviour, tool=tool)
    with anyio.fail_after(30):
        failed = await refresher.refresh("test", force=True)
    assert failed.run.status is RunStatus.FAILED
    assert failed.run.error is not None
    assert failed.run.error.startswith(error_kind), failed.run.error
    if behaviour == "truncated":
        assert "raise list_limit" in failed.run.error
    assert failed.run.snapshot_id is None
    assert repository.current_snapshot() == before
    assert repository.last_run() == failed.run
    last_good = repository.last_run(RunStatus.SUCCEEDED)
    assert last_good is not None
    assert last_good.id == good.id


async def test_far_fewer_models_hold_the_run(
    repository: Repository,
    mcp_upstream: LoopbackUpstream,
    make_refresher: Callable[..., Refresher],
) -> None:
    store_snapshot(repository)
    before = repository.current_snapshot()
    mcp_upstream.set_data(rows=mcp_upstream.data.rows[:200])
    held = await make_refresher().refresh("test", force=True)
    assert held.run.status is RunStatus.HELD
    assert held.run.held_reason is not None
    assert "under 80%" in held.run.held_reason
    assert repository.current_snapshot() == before


async def test_change_feed_is_exact(
    repository: Repository,
    mcp_upstream: LoopbackUpstream,
    make_refresher: Callable[..., Refresher],
) -> None:
    _, first = store_snapshot(repository)
    assert first.changes == 0
    assert repository.changes(None, 100) == []
    refresher = make_refresher()
    mcp_upstream.set_prices(
        {
            "openai-gpt-4o": (3.0, 12.0),
            "anthropic-claude-sonnet-4": (2.5, 15.0),
            # Not curated (a curated one would hold the run): unknown is an event, not a 0.
            "openai-gpt-4-turbo": (None, None),
        }
    )
    second = await refresher.refresh("test", force=True)
    assert second.run.status is RunStatus.SUCCEEDED, second.run.error
    assert second.run.changes == 3
    changes = {c.model_id: c for c in repository.changes(None, 100)}
    assert set(changes) == {"gpt-4o", "claude-sonnet-4", "gpt-4-turbo"}
    gpt4o = changes["gpt-4o"]
    assert (gpt4o.old_input_usd_per_million, gpt4o.new_input_usd_per_million) == (
        Decimal("2.5"),
        Decimal("3"),
    )
    assert (gpt4o.old_output_usd_per_million, gpt4o.new_output_usd_per_million) == (
        Decimal("10"),
        Decimal("12"),
    )
    turbo = changes["gpt-4-turbo"]
    assert (turbo.old_input_usd_per_million, turbo.new_input_usd_per_million) == (Decimal(10), None)
    assert turbo.new_output_usd_per_million is None
    # A run that changes nothing adds no events.
    third = await refresher.refresh("test", force=True)
    assert third.run.changes == 0
    assert len(repository.changes(None, 100)) == 3
    # `since` after the change hides it; newest first.
    assert repository.changes(second.run.finished_at, 100) == []


async def test_trigger_soon_after_success_returns_that_run(
    repository: Repository,
    mcp_upstream: LoopbackUpstream,
    make_refresher: Callable[..., Refresher],
) -> None:
    _, first = store_snapshot(repository)
    again = await make_refresher().refresh("test")
    assert not again.started
    assert again.run.id == first.id
    assert mcp_upstream.calls["get_all_models"] == 0


async def test_seed_fills_an_empty_database_and_never_replaces_real_prices(
    repository: Repository,
    mcp_upstream: LoopbackUpstream,
    make_refresher: Callable[..., Refresher],
) -> None:
    refresher = make_refresher()
    seeded = await refresher.ensure_seed()
    assert seeded is not None
    assert seeded.source == "seed"
    assert seeded.fetched_at.isoformat() == "2026-04-29T08:14:00+00:00"
    current = repository.current_snapshot()
    assert current is not None
    # The recording's prices, and genai-prices' for the models it does not list.
    assert {p.price_basis for p in current[1]} == {PriceBasis.SEED, PriceBasis.SECOND_SOURCE}
    assert all(
        (p.pricing_source or "").startswith("genai-prices ")
        for p in current[1]
        if p.price_basis is PriceBasis.SECOND_SOURCE
    )
    assert mcp_upstream.calls.total() == 0  # the seed needs no network
    real = await refresher.refresh("test")
    assert real.run.status is RunStatus.SUCCEEDED
    assert await refresher.ensure_seed() is None
    current = repository.current_snapshot()
    assert current is not None
    assert current[0].source == "pricepertoken"


async def test_killed_write_leaves_previous_snapshot(
    repository: Repository,
    mcp_upstream: LoopbackUpstream,
    make_refresher: Callable[..., Refresher],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    store_snapshot(repository)
    before = repository.current_snapshot()
    history_before = repository.changes(None, 1000)
    from pricing_service.rows import price_row as real

    calls = {"n": 0}

    def dying(price: Any, snapshot_id: int) -> Any:
        calls["n"] += 1
        if calls["n"] > 300:  # the process dies midway through writing the new prices
            raise RuntimeError("killed")
        return real(price, snapshot_id)

    monkeypatch.setattr("pricing_service.snapshot_store.price_row", dying)
    mcp_upstream.set_prices({"openai-gpt-4o": (9.0, 9.0)})
    failed = await make_refresher().refresh("test", force=True)
    assert failed.run.status is RunStatus.FAILED
    assert repository.current_snapshot() == before
    assert repository.changes(None, 1000) == history_before


async def _race(refreshers: list[Refresher]) -> list[Any]:
    results: list[Any] = [None] * len(refreshers)

    async def one(i: int, refresher: Refresher) -> None:
        try:
            results[i] = await refresher.refresh("race")
        except RefreshInProgress as exc:
            results[i] = exc

    async with anyio.create_task_group() as tasks:
        for i, refresher in enumerate(refreshers):
            tasks.start_soon(one, i, refresher)
    return results


async def test_twenty_triggers_make_one_upstream_run_with_redis(
    repository: Repository,
    mcp_upstream: LoopbackUpstream,
    make_refresher: Callable[..., Refresher],
    redis_url: str,
) -> None:
    mcp_upstream.latency = 0.01
    clients = [Redis.from_url(redis_url) for _ in range(20)]
    try:
        # Twenty workers, each with its own Redis connection and refresher.
        refreshers = [
            make_refresher(
                lock=RedisRefreshLock(c, 120, fallback=DatabaseRefreshLock(repository.engine, 120)),
            )
            for c in clients
        ]
        results = await _race(refreshers)
    finally:
        for c in clients:
            await c.aclose()
    runs = [r for r in results if not isinstance(r, RefreshInProgress)]
    busy = [r for r in results if isinstance(r, RefreshInProgress)]
    assert mcp_upstream.calls["get_all_models"] == 1
    assert len(runs) + len(busy) == 20
    started = [r for r in runs if r.started]
    assert len(started) == 1
    assert all(b.run_id == started[0].run.id for b in busy)


async def test_twenty_triggers_make_one_upstream_run_with_database_lock(
    repository: Repository,
    mcp_upstream: LoopbackUpstream,
    make_refresher: Callable[..., Refresher],
) -> None:
    mcp_upstream.latency = 0.01
    refreshers = [
        make_refresher(lock=DatabaseRefreshLock(repository.engine, 120)) for _ in range(20)
    ]
    results = await _race(refreshers)
    started = [r for r in results if not isinstance(r, RefreshInProgress) and r.started]
    busy = [r for r in results if isinstance(r, RefreshInProgress)]
    assert mcp_upstream.calls["get_all_models"] == 1
    assert len(started) == 1
    assert all(b.run_id == started[0].run.id for b in busy)
