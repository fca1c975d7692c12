"""Refresh runs against the loopback MCP server, on SQLite and PostgreSQL."""

from __future__ import annotations

import copy
import json
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio
import pytest
from redis.asyncio import Redis

from pricing_service.catalog import load_catalog
from pricing_service.domain import PriceBasis, PriceStatus, RunStatus
from pricing_service.errors import RefreshInProgress
from pricing_service.lock import DatabaseRefreshLock, RedisRefreshLock
from pricing_service.normalize import PriceIndex
from pricing_service.refresh import Refresher
from pricing_service.repository import Repository, create_db_engine
from pricing_service.upstream import PricePerTokenClient

if TYPE_CHECKING:
    from collections.abc import Iterator

    from pricing_service.domain import SnapshotInfo
    from tests.support.mcp_upstream import LoopbackUpstream

ROOT = Path(__file__).resolve().parents[2]
SELECTOR = json.loads((ROOT / "tests/fixtures/cognitia/selector.json").read_text())
CATALOG = load_catalog(ROOT / "catalog")


@pytest.fixture
def repository(database_url: str) -> Iterator[Repository]:
    engine = create_db_engine(database_url)
    yield Repository(engine)
    engine.dispose()


def make_refresher(
    repository: Repository,
    upstream: LoopbackUpstream,
    *,
    lock: Any = None,
    call_timeout: float = 5.0,
    run_timeout: float = 60.0,
) -> Refresher:
    published: list[SnapshotInfo] = []

    async def publish(info: SnapshotInfo) -> None:
        published.append(info)

    refresher = Refresher(
        repository=repository,
        client=PricePerTokenClient(
            upstream.url,
            call_timeout=call_timeout,
            run_timeout=run_timeout,
            retries=2,
            backoff=0.01,
        ),
        catalog=CATALOG,
        lock=lock or DatabaseRefreshLock(repository, 120),
        publish=publish,
        interval_seconds=43200,
        grace_seconds=7 * 24 * 3600,
    )
    refresher.published = published  # type: ignore[attr-defined]
    return refresher


def _null_count(upstream: LoopbackUpstream) -> int:
    return sum(
        1
        for row in upstream.data.rows
        if (upstream.data.details.get(row["slug"], {}).get("pricing") or {}).get("input_per_1m")
        is None
        and row["input_per_1m"] is None
    )


async def test_full_refresh_loads_official_prices(
    repository: Repository, mcp_upstream: LoopbackUpstream
) -> None:
    refresher = make_refresher(repository, mcp_upstream)
    outcome = await refresher.refresh("test")
    run = outcome.run
    assert outcome.started
    assert run.status is RunStatus.SUCCEEDED, run.error
    assert run.rows_seen == 533
    assert mcp_upstream.calls["get_all_models"] == 1
    assert mcp_upstream.calls["get_model"] == 533
    # The limit was explicit: the server's 100-row default would have cut the catalogue.
    assert all(
        args.get("limit", 0) >= 1000
        for tool, args in mcp_upstream.tool_arguments
        if tool == "get_all_models"
    )
    current = repository.current_snapshot()
    assert current is not None
    info, prices = current
    assert info.id == run.snapshot_id
    assert refresher.published == [info]  # type: ignore[attr-defined]
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
    behaviour: str,
    tool: str | None,
    error_kind: str,
) -> None:
    refresher = make_refresher(repository, mcp_upstream, call_timeout=0.5, run_timeout=5)
    good = await refresher.refresh("test")
    assert good.run.status is RunStatus.SUCCEEDED, good.run.error
    before = repository.current_snapshot()
    mcp_upstream.set_behaviour(behaviour, tool=tool)
    with anyio.fail_after(30):
        failed = await refresher.refresh("test", force=True)
    assert failed.run.status is RunStatus.FAILED
    assert failed.run.error is not None
    assert failed.run.error.startswith(error_kind), failed.run.error
    assert failed.run.snapshot_id is None
    assert repository.current_snapshot() == before
    assert repository.last_run() == failed.run
    last_good = repository.last_run(RunStatus.SUCCEEDED)
    assert last_good is not None
    assert last_good.id == good.run.id


async def test_far_fewer_models_hold_the_run(
    repository: Repository, mcp_upstream: LoopbackUpstream
) -> None:
    refresher = make_refresher(repository, mcp_upstream)
    assert (await refresher.refresh("test")).run.status is RunStatus.SUCCEEDED
    before = repository.current_snapshot()
    mcp_upstream.set_data(rows=mcp_upstream.data.rows[:200])
    held = await refresher.refresh("test", force=True)
    assert held.run.status is RunStatus.HELD
    assert held.run.held_reason is not None
    assert "under 80%" in held.run.held_reason
    assert repository.current_snapshot() == before


def _with_prices(
    upstream: LoopbackUpstream, changes: dict[str, tuple[float | None, float | None]]
) -> None:
    details = copy.deepcopy(upstream.data.details)
    rows = copy.deepcopy(upstream.data.rows)
    for slug, (new_in, new_out) in changes.items():
        details[slug]["pricing"]["input_per_1m"] = new_in
        details[slug]["pricing"]["output_per_1m"] = new_out
        for row in rows:
            if row["slug"] == slug:
                row["input_per_1m"], row["output_per_1m"] = new_in, new_out
    upstream.set_data(rows=rows, details=details)


async def test_change_feed_is_exact(repository: Repository, mcp_upstream: LoopbackUpstream) -> None:
    refresher = make_refresher(repository, mcp_upstream)
    assert (await refresher.refresh("test")).run.changes == 0
    assert repository.changes(None, 100) == []
    _with_prices(
        mcp_upstream,
        {
            "openai-gpt-4o": (3.0, 12.0),
            "anthropic-claude-sonnet-4": (2.5, 15.0),
            # Not curated (a curated one would hold the run): unknown is an event, not a 0.
            "openai-gpt-4-turbo": (None, None),
        },
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
    repository: Repository, mcp_upstream: LoopbackUpstream
) -> None:
    refresher = make_refresher(repository, mcp_upstream)
    first = await refresher.refresh("test")
    again = await refresher.refresh("test")
    assert not again.started
    assert again.run.id == first.run.id
    assert mcp_upstream.calls["get_all_models"] == 1


async def test_seed_fills_an_empty_database_and_never_replaces_real_prices(
    repository: Repository, mcp_upstream: LoopbackUpstream
) -> None:
    refresher = make_refresher(repository, mcp_upstream)
    seeded = await refresher.ensure_seed()
    assert seeded is not None
    assert seeded.source == "seed"
    assert seeded.fetched_at.isoformat() == "2026-04-29T08:14:00+00:00"
    current = repository.current_snapshot()
    assert current is not None
    assert {p.price_basis for p in current[1]} == {PriceBasis.SEED}
    assert mcp_upstream.calls.total() == 0  # the seed needs no network
    real = await refresher.refresh("test")
    assert real.run.status is RunStatus.SUCCEEDED
    assert await refresher.ensure_seed() is None
    current = repository.current_snapshot()
    assert current is not None
    assert current[0].source == "pricepertoken"


async def test_killed_write_leaves_previous_snapshot(
    repository: Repository, mcp_upstream: LoopbackUpstream, monkeypatch: pytest.MonkeyPatch
) -> None:
    refresher = make_refresher(repository, mcp_upstream)
    assert (await refresher.refresh("test")).run.status is RunStatus.SUCCEEDED
    before = repository.current_snapshot()
    history_before = repository.changes(None, 1000)
    import pricing_service.repository as repo_module

    calls = {"n": 0}
    real = repo_module._price_row

    def dying(price: Any, snapshot_id: int) -> Any:
        calls["n"] += 1
        if calls["n"] > 300:  # the process dies midway through writing the new prices
            raise RuntimeError("killed")
        return real(price, snapshot_id)

    monkeypatch.setattr(repo_module, "_price_row", dying)
    _with_prices(mcp_upstream, {"openai-gpt-4o": (9.0, 9.0)})
    failed = await refresher.refresh("test", force=True)
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
    repository: Repository, mcp_upstream: LoopbackUpstream, redis_url: str
) -> None:
    mcp_upstream.latency = 0.01
    clients = [Redis.from_url(redis_url) for _ in range(20)]
    try:
        # Twenty workers, each with its own Redis connection and refresher.
        refreshers = [
            make_refresher(
                repository,
                mcp_upstream,
                lock=RedisRefreshLock(c, 120, fallback=DatabaseRefreshLock(repository, 120)),
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
    repository: Repository, mcp_upstream: LoopbackUpstream
) -> None:
    mcp_upstream.latency = 0.01
    refreshers = [
        make_refresher(repository, mcp_upstream, lock=DatabaseRefreshLock(repository, 120))
        for _ in range(20)
    ]
    results = await _race(refreshers)
    started = [r for r in results if not isinstance(r, RefreshInProgress) and r.started]
    busy = [r for r in results if isinstance(r, RefreshInProgress)]
    assert mcp_upstream.calls["get_all_models"] == 1
    assert len(started) == 1
    assert all(b.run_id == started[0].run.id for b in busy)
