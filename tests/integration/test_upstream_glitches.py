"""A glitch is not a price: what ordinary upstream failures leave on screen.

Real refresh runs over MCP (the loopback server, OpenAI's ~50 models) on SQLite and PostgreSQL.
Each case failed on the main of 2026-12-02: a failed get_model stored the list price, a lost
session turned its calls into per-model failures, a null between two runs erased the baseline of
the zero and ratio checks, and cache prices were not checked at all.
"""

from __future__ import annotations

import copy
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from litestar.testing import AsyncTestClient

from pricing_service.app import create_app
from pricing_service.domain import HoldReason, HoldResolution, PriceStatus, RunStatus
from tests.integration.test_integrity import (
    baseline,
    current,
    figures,
    only_openai,
)
from tests.support.mcp_upstream import LoopbackUpstream
from tests.support.settings import ADMIN, CRON, bearer, settings_for

if TYPE_CHECKING:
    from pricing_service.repository import Repository

MINI = "openai-gpt-5-mini"  # officially 0.25/2; a host lists it at 0.125/1 (issue 19)


def set_list_price(upstream: LoopbackUpstream, slug: str, inp: float, out: float) -> None:
    rows = copy.deepcopy(upstream.data.rows)
    for row in rows:
        if row["slug"] == slug:
            row["input_per_1m"], row["output_per_1m"] = inp, out
    upstream.set_data(rows=rows)


def set_detail_pricing(upstream: LoopbackUpstream, slug: str, **pricing: Any) -> None:
    details = copy.deepcopy(upstream.data.details)
    details[slug]["pricing"].update(pricing)
    upstream.set_data(details=details)


def add_model(upstream: LoopbackUpstream, slug: str, model: str) -> None:
    """A model the upstream starts listing (list price 0.1/0.4, official 0.2/0.8)."""
    template = next(r for r in upstream.data.rows if r["slug"] == MINI)
    detail = copy.deepcopy(upstream.data.details[MINI])
    detail.update(slug=slug, model=model)
    detail["pricing"].update(input_per_1m=0.2, output_per_1m=0.8)
    rows = [
        *upstream.data.rows,
        {**template, "slug": slug, "input_per_1m": 0.1, "output_per_1m": 0.4},
    ]
    upstream.set_data(rows=rows, details={**upstream.data.details, slug: detail})


async def test_a_failed_get_model_keeps_the_official_price_held_never_the_list_price(
    repository: Repository, mcp_upstream: LoopbackUpstream
) -> None:
    set_list_price(mcp_upstream, MINI, 0.125, 1)
    refresher = await baseline(repository, mcp_upstream)
    official = figures(current(repository)["gpt-5-mini"])
    assert official == (Decimal("0.25"), Decimal(2))
    add_model(mcp_upstream, "openai-gpt-glitch", "gpt-glitch")
    mcp_upstream.set_behaviour("is_error", tool="get_model", slugs={MINI, "openai-gpt-glitch"})

    run = (await refresher.refresh("test", force=True)).run

    assert run.status is RunStatus.SUCCEEDED, run.held_reason
    prices = current(repository)
    assert figures(prices["gpt-5-mini"]) == official  # not the host's 0.125/1
    assert prices["gpt-glitch"].price_status is PriceStatus.UNKNOWN  # never priced: unknown
    assert prices["gpt-glitch"].figures() == {}
    held = {h.model_id: h for h in run.held_prices}
    assert set(held) == {"gpt-5-mini", "gpt-glitch"}
    assert held["gpt-5-mini"].reason is HoldReason.DETAIL_UNAVAILABLE
    assert "tool reported an error" in held["gpt-5-mini"].detail
    assert held["gpt-5-mini"].proposed_input_usd_per_million == Decimal("0.125")
    assert held["gpt-5-mini"].accepted_input_usd_per_million == Decimal("0.25")
    assert prices["gpt-5-mini"].held is not None  # shown as held, like any hold

    # The next good run serves the official figures; the holds stay in the run's record.
    mcp_upstream.set_behaviour("ok")
    later = (await refresher.refresh("test", force=True)).run
    assert later.status is RunStatus.SUCCEEDED
    prices = current(repository)
    assert figures(prices["gpt-5-mini"]) == official
    assert figures(prices["gpt-glitch"]) == (Decimal("0.2"), Decimal("0.8"))
    record = repository.get_run(run.id)
    assert record is not None
    resolved = {h.model_id: h.resolution for h in record.held_prices}
    assert resolved == {
        "gpt-5-mini": HoldResolution.RETURNED,  # back at the price that stayed served
        "gpt-glitch": HoldResolution.SUPERSEDED,  # a first figure, never served before
    }
    assert repository.open_held_prices() == []


async def test_a_run_where_many_get_model_calls_fail_is_held_as_a_whole(
    repository: Repository, mcp_upstream: LoopbackUpstream
) -> None:
    refresher = await baseline(repository, mcp_upstream)
    before = repository.current_snapshot()
    openai = sorted(r["slug"] for r in mcp_upstream.data.rows)
    mcp_upstream.set_behaviour("is_error", tool="get_model", slugs=set(openai[:6]))

    run = (await refresher.refresh("test", force=True)).run

    assert run.status is RunStatus.HELD
    assert "get_model failed for 6 of" in (run.held_reason or "")
    assert repository.current_snapshot() == before


async def test_a_lost_mcp_session_is_reopened_and_no_price_changes(repository: Repository) -> None:
    with LoopbackUpstream(stateful=True) as upstream:
        refresher = await baseline(repository, upstream)
        before = {m: p.figures() for m, p in current(repository).items()}
        upstream.set_behaviour("session_lost", tool="get_model", times=1)

        run = (await refresher.refresh("test", force=True)).run

        assert run.status is RunStatus.SUCCEEDED, run.error
        assert run.held_prices == ()
        assert {m: p.figures() for m, p in current(repository).items()} == before
        assert upstream.requests["initialize"] == 3  # the baseline's session, the lost, the new


async def test_a_null_between_runs_defeats_neither_the_zero_nor_the_ratio_check(
    repository: Repository, mcp_upstream: LoopbackUpstream
) -> None:
    slug, model = "openai-codex-mini", "codex-mini"  # 1.5/6, not curated (a curated model
    # listed without a price holds the whole run)
    refresher = await baseline(repository, mcp_upstream)
    assert figures(current(repository)[model]) == (Decimal("1.5"), Decimal(6))

    async def run_with(inp: float | None, out: float | None) -> Any:
        mcp_upstream.set_prices({slug: (inp, out)})
        outcome = await refresher.refresh("test", force=True)
        assert outcome.run.status is RunStatus.SUCCEEDED, outcome.run.held_reason
        return outcome.run

    await run_with(None, None)
    assert current(repository)[model].price_status is PriceStatus.UNKNOWN
    zero = await run_with(0, 0)
    assert current(repository)[model].price_status is PriceStatus.UNKNOWN  # never "Gratis"
    assert [h.reason for h in zero.held_prices] == [HoldReason.ZERO]
    jump = await run_with(150, 600)
    assert current(repository)[model].price_status is PriceStatus.UNKNOWN  # not 150/600
    assert [h.reason for h in jump.held_prices] == [HoldReason.RATIO]
    back = await run_with(1.5, 6)
    assert back.held_prices == ()  # the accepted price again: never held
    assert figures(current(repository)[model]) == (Decimal("1.5"), Decimal(6))
    record = repository.get_run(jump.id)
    assert record is not None
    assert [h.resolution for h in record.held_prices] == [HoldResolution.RETURNED]


async def test_cache_prices_are_gated_like_every_kind(
    repository: Repository, mcp_upstream: LoopbackUpstream
) -> None:
    refresher = await baseline(repository, mcp_upstream)
    before = current(repository)["gpt-4o"]
    assert before.cache_read_usd_per_million == Decimal("1.25")
    set_detail_pricing(mcp_upstream, "openai-gpt-4o", cache_read_per_1m=1250)

    run = (await refresher.refresh("test", force=True)).run

    assert [(h.model_id, h.reason) for h in run.held_prices] == [("gpt-4o", HoldReason.CEILING)]
    assert "cache_read 1250 USD per million is above 1000" in run.held_prices[0].detail
    after = current(repository)["gpt-4o"]
    assert after.figures() == before.figures()
    assert after.held is not None


async def test_runs_list_every_price_they_held_with_its_resolution_over_http(
    database_url_pg: str, redis_url: str, mcp_upstream: LoopbackUpstream
) -> None:
    only_openai(mcp_upstream)
    settings = settings_for(
        database_url_pg, mcp_upstream.url, redis_url=redis_url, pricing_rate_limit_per_minute=1000
    )
    async with AsyncTestClient(create_app(settings)) as client:
        seeded = (await client.get("/api/v1/pricing/runs", headers=bearer(CRON))).json()
        first = await client.post("/api/v1/pricing/refresh", headers=bearer(CRON), json={})
        held_run = first.json()["run"]
        assert held_run["status"] == "held"  # ~50 models against the seed's 533
        accepted = await client.post(
            "/api/v1/pricing/refresh", headers=bearer(ADMIN), json={"accept_run_id": held_run["id"]}
        )
        assert accepted.status_code == 200, accepted.text
        mcp_upstream.set_prices({"openai-gpt-4.1": (200, 800)})
        jumped = await client.post(
            "/api/v1/pricing/refresh", headers=bearer(CRON), json={"force": True}
        )
        jump_run = jumped.json()["run"]
        assert [h["reason"] for h in jump_run["held_prices"]] == ["ratio"]
        mcp_upstream.set_prices({"openai-gpt-4.1": (2, 8)})
        back = await client.post(
            "/api/v1/pricing/refresh", headers=bearer(CRON), json={"force": True}
        )
        assert back.json()["run"]["held_prices"] == []

        listed = (await client.get("/api/v1/pricing/runs", headers=bearer(CRON))).json()["items"]
        by_id = {r["id"]: r for r in listed}
        held = by_id[jump_run["id"]]["held_prices"]
        assert [(h["model_id"], h["resolution"]) for h in held] == [("gpt-4.1", "returned")]
        assert held[0]["resolved_at"] is not None
        one = await client.get(f"/api/v1/pricing/runs/{jump_run['id']}", headers=bearer(CRON))
        assert one.json()["held_prices"] == held
        # The seed's own held prices stay listed under its run once superseded.
        seed_runs = [r for r in seeded["items"] if r["status"] == "seeded"]
        for run in seed_runs:
            kept = by_id[run["id"]]["held_prices"]
            assert kept
            assert all(h["resolution"] in ("superseded", "returned", None) for h in kept)


class _CommitReplyLost:
    """A repository whose snapshot write commits, then loses the database's answer (a cut
    connection after COMMIT): the caller sees an OperationalError for a write that landed."""

    def __init__(self, inner: Repository) -> None:
        self._inner = inner

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def apply_plan(self, *args: Any, **kwargs: Any) -> Any:
        self._inner.apply_plan(*args, **kwargs)
        raise sa.exc.OperationalError("COMMIT", {}, ConnectionError("server closed the connection"))


async def test_a_run_whose_commit_reply_was_lost_is_reported_as_the_success_it_is(
    repository: Repository, mcp_upstream: LoopbackUpstream
) -> None:
    refresher = await baseline(repository, mcp_upstream)
    mcp_upstream.set_prices({"openai-codex-mini": (1.6, 6.4)})
    published: list[int] = []

    async def publish(info: Any) -> None:
        published.append(info.id)

    refresher.repository = _CommitReplyLost(repository)  # type: ignore[assignment]
    refresher.publish = publish
    events: list[str] = []
    refresher.observers.append(lambda name, fields: events.append(name))

    run = (await refresher.refresh("test", force=True)).run

    assert run.status is RunStatus.SUCCEEDED
    assert figures(current(repository)["codex-mini"]) == (Decimal("1.6"), Decimal("6.4"))
    assert "refresh.completed" in events
    assert "refresh.failed" not in events  # what metrics count as the outcome
    assert published == [run.snapshot_id]
