"""Prices we can trust: the gate, held runs and prices, delisting, leases, one truth for current.

Runs against the loopback MCP server serving mutated recordings, on SQLite and PostgreSQL. Most
cases serve OpenAI's rows only (about 50 models) so each refresh is a real MCP run that costs
little; the seed cases use the whole recording.
"""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import anyio
import pytest
from litestar.testing import AsyncTestClient

from pricing_service.app import create_app
from pricing_service.config import Settings
from pricing_service.domain import ChangeKind, HoldReason, PriceStatus, RunStatus
from pricing_service.errors import NothingToAccept, RefreshInProgress
from pricing_service.listings.pricepertoken import PricePerTokenSource
from pricing_service.lock import DatabaseRefreshLock
from pricing_service.refresh import Refresher, Ticket
from pricing_service.repository import Repository
from pricing_service.upstream import PricePerTokenClient
from tests.support.recording import CATALOG
from tests.support.settings import bearer

if TYPE_CHECKING:
    from pricing_service.domain import ModelPrice, SnapshotInfo
    from tests.support.mcp_upstream import LoopbackUpstream

WEEK = 7 * 24 * 3600


def refresher_for(
    repository: Repository,
    upstream: LoopbackUpstream,
    *,
    lock: Any = None,
    grace_seconds: float = WEEK,
) -> Refresher:
    async def publish(info: SnapshotInfo) -> None:
        return None

    return Refresher(
        repository=repository,
        source=PricePerTokenSource(
            PricePerTokenClient(
                upstream.url, call_timeout=5, run_timeout=60, retries=2, backoff=0.01
            )
        ),
        catalog=CATALOG,
        lock=lock or DatabaseRefreshLock(repository.engine, 30),
        publish=publish,
        interval_seconds=43200,
        grace_seconds=grace_seconds,
    )


def only_openai(upstream: LoopbackUpstream) -> None:
    rows = [r for r in upstream.data.rows if r["slug"].startswith("openai-")]
    upstream.set_data(rows=rows)


def without(upstream: LoopbackUpstream, *slugs: str) -> None:
    upstream.set_data(rows=[r for r in upstream.data.rows if r["slug"] not in slugs])


def current(repository: Repository) -> dict[str, ModelPrice]:
    found = repository.current_snapshot()
    assert found is not None
    return {p.model_id: p for p in found[1]}


def figures(price: ModelPrice) -> tuple[Decimal | None, Decimal | None]:
    return price.input_usd_per_million, price.output_usd_per_million


async def baseline(repository: Repository, upstream: LoopbackUpstream) -> Refresher:
    only_openai(upstream)
    refresher = refresher_for(repository, upstream)
    first = await refresher.refresh("test")
    assert first.run.status is RunStatus.SUCCEEDED, first.run.error
    return refresher


# -- the run gate ---------------------------------------------------------------------------


async def test_a_ten_times_listing_is_held_and_never_becomes_the_baseline(
    repository: Repository, mcp_upstream: LoopbackUpstream
) -> None:
    refresher = await baseline(repository, mcp_upstream)
    before = repository.current_snapshot()
    normal_rows = copy.deepcopy(mcp_upstream.data.rows)
    normal_details = copy.deepcopy(mcp_upstream.data.details)
    rows, details = list(normal_rows), dict(normal_details)
    for copy_no in range(1, 10):
        for row in normal_rows:
            slug = f"{row['slug']}-copy{copy_no}"
            rows.append({**row, "slug": slug})
            detail = normal_details[row["slug"]]
            details[slug] = {**detail, "slug": slug, "model": f"{detail['model']}-copy{copy_no}"}
    mcp_upstream.set_data(rows=rows, details=details)

    held = await refresher.refresh("test", force=True)
    assert held.run.status is RunStatus.HELD
    assert held.run.held_reason is not None
    assert "over 3x" in held.run.held_reason
    assert repository.current_snapshot() == before

    # The next normal listing is compared with the last accepted snapshot, not the held one.
    mcp_upstream.set_data(rows=normal_rows, details=normal_details)
    mcp_upstream.set_prices({"openai-gpt-4o": (3.0, 10.0)})
    applied = await refresher.refresh("test", force=True)
    assert applied.run.status is RunStatus.SUCCEEDED, applied.run.held_reason
    assert figures(current(repository)["gpt-4o"]) == (Decimal(3), Decimal(10))
    # The held run was superseded: it can no longer be accepted.
    with pytest.raises(NothingToAccept, match="superseded"):
        await refresher.accept(held.run.id, by="test")


async def test_force_cannot_pass_the_gate_and_only_an_acceptance_applies_a_held_run(
    repository: Repository, mcp_upstream: LoopbackUpstream
) -> None:
    refresher = await baseline(repository, mcp_upstream)
    before = repository.current_snapshot()
    rows = mcp_upstream.data.rows
    mcp_upstream.set_data(rows=rows[: len(rows) // 2])  # half the models: under 80 %

    first = await refresher.refresh("test", force=True)
    again = await refresher.refresh("test", force=True)
    assert (first.run.status, again.run.status) == (RunStatus.HELD, RunStatus.HELD)
    assert "under 80%" in (again.run.held_reason or "")
    assert repository.current_snapshot() == before
    assert [r.id for r in repository.pending_held_runs()] == [again.run.id, first.run.id]

    accepted = await refresher.accept(again.run.id, by="test-operator")
    assert accepted.accepted == ("*",)
    run = repository.get_run(again.run.id)
    assert run is not None
    assert run.status is RunStatus.SUCCEEDED
    assert run.accepted_by == "test-operator"
    assert run.accepted_at is not None
    assert run.held_reason is not None  # why it was held stays on the record
    assert repository.pending_held_runs() == []
    prices = current(repository)
    # The models the accepted run no longer lists are delisted, not gone.
    missing = [p for p in prices.values() if not p.listed]
    assert len(missing) == len(rows) - len(rows) // 2
    assert all(p.delisted_at is not None for p in missing)
    with pytest.raises(NothingToAccept):
        await refresher.accept(again.run.id, by="test-operator")


async def test_a_partial_first_live_run_is_held_against_the_seed(
    repository: Repository, mcp_upstream: LoopbackUpstream
) -> None:
    refresher = refresher_for(repository, mcp_upstream)
    seed = await refresher.ensure_seed()
    assert seed is not None
    curated_before = current(repository)
    mcp_upstream.set_data(rows=mcp_upstream.data.rows[:100])

    held = await refresher.refresh("test")
    assert held.run.status is RunStatus.HELD
    assert "seed snapshot" in (held.run.held_reason or "")
    assert current(repository) == curated_before


async def test_a_curated_model_listed_without_a_price_holds_the_run(
    repository: Repository, mcp_upstream: LoopbackUpstream
) -> None:
    refresher = await baseline(repository, mcp_upstream)
    mcp_upstream.set_prices({"openai-gpt-4o": (None, None)})
    held = await refresher.refresh("test", force=True)
    assert held.run.status is RunStatus.HELD
    assert "curated models listed without a price: gpt-4o" in (held.run.held_reason or "")
    assert figures(current(repository)["gpt-4o"]) == (Decimal("2.5"), Decimal(10))


async def test_an_empty_answer_still_fails_outright(
    repository: Repository, mcp_upstream: LoopbackUpstream
) -> None:
    refresher = await baseline(repository, mcp_upstream)
    mcp_upstream.set_behaviour("empty", tool="get_all_models")
    failed = await refresher.refresh("test", force=True)
    assert failed.run.status is RunStatus.FAILED
    assert (failed.run.error or "").startswith("SanityCheckFailed")


# -- prices held per model ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("figure", "reason"),
    [
        ("1e12", HoldReason.CEILING),
        ("1e300", HoldReason.CEILING),
        ("1e-30", HoldReason.RATIO),
        (0, HoldReason.ZERO),
    ],
)
async def test_an_absurd_price_is_held_and_the_rest_of_the_run_applies(
    repository: Repository, mcp_upstream: LoopbackUpstream, figure: Any, reason: HoldReason
) -> None:
    refresher = await baseline(repository, mcp_upstream)
    mcp_upstream.set_prices({"openai-gpt-4o": (float(figure), 10.0)})
    mcp_upstream.set_prices({"openai-gpt-4.1": (3.0, 9.0)})

    outcome = await refresher.refresh("test", force=True)
    assert outcome.run.status is RunStatus.SUCCEEDED
    prices = current(repository)
    assert figures(prices["gpt-4o"]) == (Decimal("2.5"), Decimal(10))  # the last accepted
    assert figures(prices["gpt-4.1"]) == (Decimal(3), Decimal(9))  # the rest applied
    held = prices["gpt-4o"].held
    assert held is not None
    assert held.reason is reason
    assert held.run_id == outcome.run.id
    assert held.proposed_input_usd_per_million == Decimal(str(figure))
    assert held.accepted_input_usd_per_million == Decimal("2.5")
    assert [h.model_id for h in outcome.run.held_prices] == ["gpt-4o"]
    # The feed reports what was applied, never the held figure.
    changes = repository.changes(None, 100)
    assert [c.model_id for c in changes] == ["gpt-4.1"]


async def test_an_accepted_held_price_is_served_and_recorded(
    repository: Repository, mcp_upstream: LoopbackUpstream
) -> None:
    refresher = await baseline(repository, mcp_upstream)
    mcp_upstream.set_prices({"openai-gpt-4o": (50.0, 100.0)})  # 20x: held
    outcome = await refresher.refresh("test", force=True)
    with pytest.raises(NothingToAccept, match="holds no price for o3"):
        await refresher.accept(outcome.run.id, by="ops", model_ids=["gpt-4o", "o3"])

    accepted = await refresher.accept(outcome.run.id, by="ops", model_ids=["gpt-4o"])
    assert accepted.accepted == ("gpt-4o",)
    prices = current(repository)
    assert figures(prices["gpt-4o"]) == (Decimal(50), Decimal(100))
    assert prices["gpt-4o"].held is None
    assert repository.open_held_prices() == []
    change = repository.changes(None, 10, model_id="gpt-4o")
    assert [(c.kind, c.new_input_usd_per_million) for c in change] == [
        (ChangeKind.CHANGED, Decimal(50))
    ]
    # The next run proposing the same figure compares with the accepted one: nothing held.
    again = await refresher.refresh("test", force=True)
    assert again.run.held_prices == ()


async def test_a_first_seen_model_above_the_ceiling_is_unknown_not_the_figure(
    repository: Repository, mcp_upstream: LoopbackUpstream
) -> None:
    refresher = await baseline(repository, mcp_upstream)
    rows = copy.deepcopy(mcp_upstream.data.rows)
    details = copy.deepcopy(mcp_upstream.data.details)
    template = next(r for r in rows if r["slug"] == "openai-gpt-4o")
    rows.append({**template, "slug": "openai-gpt-new"})
    details["openai-gpt-new"] = copy.deepcopy(details["openai-gpt-4o"])
    details["openai-gpt-new"].update(slug="openai-gpt-new", model="gpt-new")
    details["openai-gpt-new"]["pricing"]["input_per_1m"] = 5000
    mcp_upstream.set_data(rows=rows, details=details)

    outcome = await refresher.refresh("test", force=True)
    assert outcome.run.status is RunStatus.SUCCEEDED
    new = current(repository)["gpt-new"]
    assert new.price_status is PriceStatus.UNKNOWN
    assert new.held is not None
    assert new.held.proposed_input_usd_per_million == Decimal(5000)


# -- delisting and arrivals -----------------------------------------------------------------


async def test_a_delisted_model_keeps_its_price_for_the_grace_then_goes(
    repository: Repository, mcp_upstream: LoopbackUpstream
) -> None:
    refresher = await baseline(repository, mcp_upstream)
    without(mcp_upstream, "openai-o1")
    outcome = await refresher.refresh("test", force=True)
    assert outcome.run.status is RunStatus.SUCCEEDED
    o1 = current(repository)["o1"]
    assert o1.listed is False
    assert o1.delisted_at is not None
    assert o1.price_status is PriceStatus.PRICED  # still served at its last accepted price
    removed = repository.changes(None, 10, kind=ChangeKind.REMOVED)
    assert [(c.model_id, c.new_input_usd_per_million) for c in removed] == [("o1", None)]

    # Still missing after the grace: no longer served at all.
    expired = refresher_for(repository, mcp_upstream, grace_seconds=0)
    await expired.refresh("test", force=True)
    assert "o1" not in current(repository)

    # Listed again: an arrival.
    mcp_upstream.reset()
    only_openai(mcp_upstream)
    await expired.refresh("test", force=True)
    added = repository.changes(None, 10, model_id="o1", kind=ChangeKind.ADDED)
    assert len(added) == 1
    assert current(repository)["o1"].listed is True


async def test_the_change_feed_never_fails_on_extreme_percentages(
    repository: Repository, mcp_upstream: LoopbackUpstream
) -> None:
    refresher = await baseline(repository, mcp_upstream)
    mcp_upstream.set_prices({"openai-gpt-4o": (1e300, 10.0)})
    outcome = await refresher.refresh("test", force=True)
    await refresher.accept(outcome.run.id, by="ops")  # accepted: the extreme reaches the feed
    changes = repository.changes(None, 1000)
    assert changes[0].new_input_usd_per_million == Decimal("1e300")


# -- leases ---------------------------------------------------------------------------------


async def test_a_killed_holder_blocks_refreshes_for_at_most_one_lease(
    repository: Repository, mcp_upstream: LoopbackUpstream
) -> None:
    only_openai(mcp_upstream)
    # A holder that began a run and died: it never renews nor releases its lease. Five seconds:
    # a one-second lease had expired before the second holder asked, on a loaded machine.
    lease = 5
    dead = refresher_for(
        repository, mcp_upstream, lock=DatabaseRefreshLock(repository.engine, lease)
    )
    ticket = await dead.begin("test")
    assert isinstance(ticket, Ticket)
    alive = refresher_for(
        repository, mcp_upstream, lock=DatabaseRefreshLock(repository.engine, lease)
    )
    with pytest.raises(RefreshInProgress):
        await alive.refresh("test")
    outcome = None
    with anyio.fail_after(60):
        while outcome is None:
            try:
                outcome = await alive.refresh("test")
            except RefreshInProgress:
                await anyio.sleep(0.2)
    assert outcome.run.status is RunStatus.SUCCEEDED
    dead_run = repository.get_run(ticket.run.id)
    assert dead_run is not None
    assert dead_run.status is RunStatus.FAILED
    assert "abandoned" in (dead_run.error or "")


async def test_a_run_that_lost_its_lease_cannot_publish(
    repository: Repository, mcp_upstream: LoopbackUpstream
) -> None:
    refresher = await baseline(repository, mcp_upstream)
    before = repository.current_snapshot()
    ticket = await refresher.begin("test", force=True)
    assert isinstance(ticket, Ticket)
    # Another holder took over meanwhile and closed this run as abandoned.
    repository.abandon_running_runs(datetime.now(UTC))
    mcp_upstream.set_prices({"openai-gpt-4.1": (3.0, 9.0)})
    outcome = await refresher.finish(ticket)
    assert outcome.run.status is RunStatus.FAILED
    assert repository.current_snapshot() == before


# -- over HTTP ------------------------------------------------------------------------------

CRON = "cron-token-for-tests"
ADMIN = "admin-token-for-tests"


@pytest.fixture(params=["sqlite+memory", "postgresql+redis"])
def app_settings(request: pytest.FixtureRequest, mcp_upstream: LoopbackUpstream) -> Settings:
    extra: dict[str, Any] = {}
    if request.param == "sqlite+memory":
        url = request.getfixturevalue("sqlite_url")
    else:
        url = request.getfixturevalue("database_url_pg")
        extra["redis_url"] = request.getfixturevalue("redis_url")
    return Settings(
        database_url=url,
        pricepertoken_mcp_url=mcp_upstream.url,
        pricing_refresh_on_startup=False,
        pricing_cron_token=CRON,
        pricing_admin_token=ADMIN,
        pricing_upstream_call_timeout_seconds=5,
        pricing_upstream_run_timeout_seconds=60,
        # A bound on a database read, wide for a loaded machine (tests/support/settings.py:
        # 3 s gave /debug/sample a 503 under two CI runs at once).
        pricing_database_wait_seconds=20.0,
        pricing_rate_limit_per_minute=1000,  # the tests poll /runs
        **extra,
    )


def item(body: dict[str, Any], model_id: str) -> dict[str, Any]:
    return next(i for i in body["items"] if i["model_id"] == model_id)


async def test_held_runs_and_prices_are_visible_and_accepted_over_http(
    app_settings: Settings, mcp_upstream: LoopbackUpstream
) -> None:
    only_openai(mcp_upstream)  # about 50 models against the seed's 533: the run is held
    async with AsyncTestClient(create_app(app_settings)) as client:
        refreshed = await client.post("/api/v1/pricing/refresh", headers=bearer(CRON), json={})
        assert refreshed.status_code == 200, refreshed.text
        run = refreshed.json()["run"]
        assert run["status"] == "held"
        ready = (await client.get("/ready")).json()
        assert any(f"refresh run {run['id']} held" in d for d in ready["degraded"])
        listed = await client.get("/api/v1/pricing/runs", headers=bearer(CRON))
        assert listed.json()["items"][0]["held_reason"] == run["held_reason"]

        # Only the admin token accepts; the cron token cannot.
        denied = await client.post(
            "/api/v1/pricing/refresh", headers=bearer(CRON), json={"accept_run_id": run["id"]}
        )
        assert denied.status_code == 401
        accepted = await client.post(
            "/api/v1/pricing/refresh", headers=bearer(ADMIN), json={"accept_run_id": run["id"]}
        )
        assert accepted.status_code == 200, accepted.text
        assert accepted.json()["run"]["accepted_by"] == "api (admin token)"
        again = await client.post(
            "/api/v1/pricing/refresh", headers=bearer(ADMIN), json={"accept_run_id": run["id"]}
        )
        assert again.status_code == 409
        models = (await client.get("/api/v1/pricing/models", params={"view": "all"})).json()
        assert models["snapshot"]["source"] == "pricepertoken"
        claude = [i for i in models["items"] if i["provider"] == "anthropic" and i["slug"]]
        assert claude
        assert all(i["listed"] is False and i["delisted_at"] for i in claude)
        assert all(i["price_status_reason"] for i in claude)

        # An absurd figure is held; the last accepted price is served and shown as held.
        mcp_upstream.set_prices({"openai-gpt-4o": (1e12, 10.0)})
        refreshed = await client.post(
            "/api/v1/pricing/refresh", headers=bearer(CRON), json={"force": True}
        )
        run = refreshed.json()["run"]
        assert run["status"] == "succeeded"
        assert [h["model_id"] for h in run["held_prices"]] == ["gpt-4o"]
        assert Decimal(run["held_prices"][0]["proposed_input_usd_per_million"]) == Decimal("1e12")
        gpt4o = item((await client.get("/api/v1/pricing/models")).json(), "gpt-4o")
        assert (gpt4o["input_usd_per_million"], gpt4o["held"]) == (2.5, True)
        assert "ceiling" in gpt4o["price_status_reason"]
        ready = (await client.get("/ready")).json()
        assert any(d.startswith("price held: gpt-4o (ceiling") for d in ready["degraded"])
        sample = await client.get("/api/v1/pricing/debug/sample", headers=bearer(ADMIN))
        # The seed's second-source holds (see test_second_source.py) are listed beside it.
        held = sample.json()["held_prices"]
        assert [h["model_id"] for h in held if h["reason"] != "second_source"] == ["gpt-4o"]
        metrics = (await client.get("/metrics")).text
        assert 'pricing_held_prices{reason="ceiling"} 1.0' in metrics
        feed = (await client.get("/api/v1/pricing/changes", params={"limit": 5})).json()
        assert all(c["model_id"] != "gpt-4o" for c in feed["items"])

        accepted = await client.post(
            "/api/v1/pricing/refresh",
            headers=bearer(ADMIN),
            json={"accept_run_id": run["id"], "accept_model_ids": ["gpt-4o"]},
        )
        assert accepted.status_code == 200, accepted.text
        gpt4o = item((await client.get("/api/v1/pricing/models")).json(), "gpt-4o")
        assert (gpt4o["input_usd_per_million"], gpt4o["held"]) == (1e12, False)
        feed = (await client.get("/api/v1/pricing/changes", params={"model_id": "gpt-4o"})).json()
        assert [(c["kind"], c["input_change_pct"]) for c in feed["items"]] == [("changed", None)]


async def test_a_refresh_that_outlives_wait_seconds_answers_202_and_finishes(
    app_settings: Settings, mcp_upstream: LoopbackUpstream
) -> None:
    mcp_upstream.latency = 0.05  # a few seconds in all: longer than a zero wait
    async with AsyncTestClient(create_app(app_settings)) as client:
        started = await client.post(
            "/api/v1/pricing/refresh", headers=bearer(CRON), json={"wait_seconds": 0}
        )
        assert started.status_code == 202, started.text
        run_id = started.json()["run_id"]
        busy = await client.post("/api/v1/pricing/refresh", headers=bearer(CRON), json={})
        assert busy.status_code == 202
        assert busy.json()["run_id"] == run_id
        status = "running"
        with anyio.fail_after(120):
            while status == "running":
                await anyio.sleep(0.2)
                found = await client.get(f"/api/v1/pricing/runs/{run_id}", headers=bearer(CRON))
                status = found.json()["status"]
        assert status == "succeeded"
        missing = await client.get("/api/v1/pricing/runs/999999", headers=bearer(CRON))
        assert missing.status_code == 404
        bad = await client.post(
            "/api/v1/pricing/refresh", headers=bearer(CRON), json={"wait_seconds": 601}
        )
        assert bad.status_code == 400
