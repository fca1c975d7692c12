"""The second source (genai-prices) on real runs: held author prices, reported host prices, the
seed checked the same way, both figures over HTTP, and an acceptance that records its figure.

Runs against the loopback MCP server serving the recording with planted disagreements, on
SQLite and PostgreSQL. Most cases serve OpenAI's rows only (about 50 models).
"""

from __future__ import annotations

import copy
import re
from dataclasses import replace
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from litestar.testing import AsyncTestClient

from pricing_service.app import create_app
from pricing_service.catalog import load_catalog
from pricing_service.config import Settings
from pricing_service.db import create_db_engine
from pricing_service.domain import HoldReason, PriceBasis, PriceStatus, RunStatus
from pricing_service.listings.pricepertoken import PricePerTokenSource
from pricing_service.lock import DatabaseRefreshLock
from pricing_service.refresh import Refresher
from pricing_service.repository import Repository
from pricing_service.upstream import PricePerTokenClient
from tests.support.recording import undecided_catalog

if TYPE_CHECKING:
    from collections.abc import Iterator

    from pricing_service.domain import ModelPrice, SnapshotInfo
    from tests.support.mcp_upstream import LoopbackUpstream

ROOT = Path(__file__).resolve().parents[2]
# Without the operators' decisions (the seed's holds stand), and with them (catalog/ as shipped).
CATALOG = undecided_catalog()


DECIDED = load_catalog(ROOT / "catalog")
ADMIN = "admin-token-for-tests"
CRON = "cron-token-for-tests"


@pytest.fixture
def repository(database_url: str) -> Iterator[Repository]:
    engine = create_db_engine(database_url)
    yield Repository(engine)
    engine.dispose()


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
        pricing_rate_limit_per_minute=1000,
        **extra,
    )


def refresher_for(repository: Repository, upstream: LoopbackUpstream) -> Refresher:
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
        lock=DatabaseRefreshLock(repository.engine, 30),
        publish=publish,
        interval_seconds=43200,
        grace_seconds=7 * 24 * 3600,
    )


def only_openai(upstream: LoopbackUpstream) -> None:
    upstream.set_data(rows=[r for r in upstream.data.rows if r["slug"].startswith("openai-")])


def with_price(upstream: LoopbackUpstream, slug: str, new_in: Any, new_out: Any) -> None:
    details = copy.deepcopy(upstream.data.details)
    rows = copy.deepcopy(upstream.data.rows)
    details[slug]["pricing"]["input_per_1m"] = new_in
    details[slug]["pricing"]["output_per_1m"] = new_out
    for row in rows:
        if row["slug"] == slug:
            row["input_per_1m"], row["output_per_1m"] = new_in, new_out
    upstream.set_data(rows=rows, details=details)


def current(repository: Repository) -> dict[str, ModelPrice]:
    found = repository.current_snapshot()
    assert found is not None
    return {p.model_id: p for p in found[1]}


def figures(price: ModelPrice) -> tuple[Decimal | None, Decimal | None]:
    return price.input_usd_per_million, price.output_usd_per_million


async def test_planted_disagreements_author_held_first_seen_unknown_host_reported(
    repository: Repository, mcp_upstream: LoopbackUpstream
) -> None:
    only_openai(mcp_upstream)
    recorded_rows = copy.deepcopy(mcp_upstream.data.rows)
    # The baseline: gpt-4o (curated, priced by openai, its author) at 2x the second source's
    # 2.5/10: reported, served. o3 is not listed yet.
    with_price(mcp_upstream, "openai-gpt-4o", 5.0, 20.0)
    mcp_upstream.set_data(rows=[r for r in mcp_upstream.data.rows if r["slug"] != "openai-o3"])
    refresher = refresher_for(repository, mcp_upstream)
    first = await refresher.refresh("test")
    assert first.run.status is RunStatus.SUCCEEDED, first.run.error
    assert first.run.held_prices == ()
    assert figures(current(repository)["gpt-4o"]) == (Decimal("5.0"), Decimal("20.0"))
    # o3, which the upstream does not list, is served at genai-prices' figure, saying so.
    filled = current(repository)["o3"]
    assert filled.price_basis is PriceBasis.SECOND_SOURCE
    genai_o3 = figures(filled)
    assert genai_o3[0] is not None
    report = first.run.cross_source
    assert report is not None
    assert report.version.startswith("genai-prices ")
    assert report.agree > 0
    assert report.disagree > 0
    gpt4o = next(e for e in report.disagreements if e.model_id == "gpt-4o")
    assert gpt4o.factor == Decimal(2)
    assert gpt4o.held is False

    # 20x the second source (10x the accepted price: not a ratio hold) on gpt-4o; o3 arrives
    # at 20x (genai-prices' figure, served so far, is its baseline); gpt-oss-120b, priced by
    # parasail (a host), at 20x the author's price.
    mcp_upstream.set_data(rows=recorded_rows)
    with_price(mcp_upstream, "openai-gpt-4o", 50.0, 200.0)
    o3 = mcp_upstream.data.details["openai-o3"]["pricing"]
    with_price(mcp_upstream, "openai-o3", o3["input_per_1m"] * 20, o3["output_per_1m"] * 20)
    assert mcp_upstream.data.details["openai-gpt-oss-120b"]["pricing_source"] == "parasail"
    with_price(mcp_upstream, "openai-gpt-oss-120b", 0.78, 3.6)
    second = await refresher.refresh("test", force=True)
    assert second.run.status is RunStatus.SUCCEEDED, second.run.error
    held = {h.model_id: h for h in second.run.held_prices}
    assert set(held) == {"gpt-4o", "o3"}
    assert held["gpt-4o"].reason is HoldReason.SECOND_SOURCE
    assert held["o3"].reason is HoldReason.RATIO  # 20x its baseline, the second source's
    assert held["gpt-4o"].second_input_usd_per_million == Decimal("2.5")
    assert held["gpt-4o"].second_source is not None
    assert "openai/gpt-4o" in held["gpt-4o"].second_source
    prices = current(repository)
    # The author's contradicted price is held: the last accepted price stays served.
    assert figures(prices["gpt-4o"]) == (Decimal("5.0"), Decimal("20.0"))
    assert prices["gpt-4o"].held is not None
    # The arrival at 20x is held: the last accepted figure (genai-prices') stays served.
    assert figures(prices["o3"]) == genai_o3
    assert prices["o3"].held is not None
    # A host's price is served as stated, and reported.
    assert figures(prices["gpt-oss-120b"]) == (Decimal("0.78"), Decimal("3.6"))
    assert prices["gpt-oss-120b"].held is None
    report = second.run.cross_source
    assert report is not None
    by_id = {e.model_id: e for e in report.disagreements}
    assert by_id["gpt-oss-120b"].pricing_source_is_author is False
    assert by_id["gpt-oss-120b"].held is False
    assert by_id["gpt-4o"].held is True
    assert by_id["gpt-4o"].factor == Decimal(20)
    assert report.disagreements[0].factor is not None
    assert report.disagreements[0].factor >= Decimal(20)
    # The change feed never shows a held figure.
    assert all(
        c.new_input_usd_per_million != Decimal("50.0")
        for c in repository.changes(None, 50, model_id="gpt-4o")
    )

    # Accepted at the second source's figure: that figure is served, and recorded.
    accepted = await refresher.accept(
        second.run.id, by="ops", model_ids=["gpt-4o"], figure="second_source"
    )
    assert accepted.accepted == ("gpt-4o",)
    assert figures(current(repository)["gpt-4o"]) == (Decimal("2.5"), Decimal(10))
    # Accepted as proposed: served, and not held again while the upstream keeps that figure.
    await refresher.accept(second.run.id, by="ops", model_ids=["o3"])
    assert current(repository)["o3"].input_usd_per_million == Decimal(o3["input_per_1m"] * 20)
    third = await refresher.refresh("test", force=True)
    assert {h.model_id for h in third.run.held_prices} == {"gpt-4o"}  # 50/200 again, not o3
    assert repository.vouched_figures()["o3"][0] == Decimal(o3["input_per_1m"] * 20)


async def test_the_seed_passes_the_same_check(
    repository: Repository, mcp_upstream: LoopbackUpstream
) -> None:
    refresher = refresher_for(repository, mcp_upstream)
    refresher.catalog = CATALOG  # no operator has decided anything yet
    seeded = await refresher.ensure_seed()
    assert seeded is not None
    assert seeded.source == "seed"
    prices = current(repository)
    runs = repository.recent_runs(5)
    assert [r.status for r in runs] == [RunStatus.SEEDED]
    seed_run = repository.get_run(runs[0].id)
    assert seed_run is not None
    held = {h.model_id: h for h in seed_run.held_prices}
    # deepseek-chat: 0.014/0.028 by deepseek itself, ~20x under the second source.
    assert "deepseek-chat" in held
    assert held["deepseek-chat"].reason is HoldReason.SECOND_SOURCE
    assert prices["deepseek-chat"].price_status is PriceStatus.UNKNOWN
    # gemini-1.5-flash is curated in "fast": unknown too, not 0.35/1.05.
    assert prices["gemini-1.5-flash"].price_status is PriceStatus.UNKNOWN
    # Host-priced disagreements are served.
    assert prices["deepseek-r1"].price_status is PriceStatus.PRICED
    assert seed_run.cross_source is not None
    assert seed_run.cross_source.disagree >= len(held)
    # A seeded run is not a fetch: the next refresh is not skipped as "recent".
    assert await refresher.seconds_until_due() == 0.0
    # Its holds are accepted like any run's.
    accepted = await refresher.accept(seed_run.id, by="ops", model_ids=["deepseek-chat"])
    assert accepted.accepted == ("deepseek-chat",)
    assert figures(current(repository)["deepseek-chat"]) == (Decimal("0.014"), Decimal("0.028"))


async def test_the_catalogs_decisions_apply_to_the_seed_so_nothing_curated_is_held(
    repository: Repository, mcp_upstream: LoopbackUpstream
) -> None:
    # catalog/decisions.toml holds a decision for each of the seed's second-source holds: a
    # fresh install serves them at the decided figure, and holds nothing.
    refresher = refresher_for(repository, mcp_upstream)
    refresher.catalog = replace(CATALOG, decisions=DECIDED.decisions)
    seeded = await refresher.ensure_seed()
    assert seeded is not None
    assert repository.open_held_prices() == []
    assert [r.status for r in repository.recent_runs(5)] == []  # no "seeded" run owns holds
    prices = current(repository)
    flash = prices["gemini-1.5-flash"]  # curated in "fast"
    assert figures(flash) == (Decimal("0.075"), Decimal("0.3"))
    assert (flash.pricing_source or "").startswith("genai-prices ")
    assert figures(prices["deepseek-chat"]) == (Decimal("0.27"), Decimal("1.1"))
    assert figures(prices["mistral-medium-3"]) == (Decimal("0.4"), Decimal(2))  # "proposed"
    # A decision applies to the figures it was taken against only: a new upstream figure for
    # the model is judged again (here held: still more than 3x from the second source).
    decision = DECIDED.decisions["deepseek-chat"]
    assert decision.applies_to(
        replace(
            flash, input_usd_per_million=Decimal("0.014"), output_usd_per_million=Decimal("0.028")
        )
    )
    assert not decision.applies_to(replace(flash, input_usd_per_million=Decimal("0.02")))


async def test_both_sources_over_http(
    app_settings: Settings, mcp_upstream: LoopbackUpstream
) -> None:
    only_openai(mcp_upstream)
    with_price(mcp_upstream, "openai-gpt-4o", 5.0, 20.0)
    async with AsyncTestClient(create_app(app_settings)) as client:
        refreshed = await client.post(
            "/api/v1/pricing/refresh", headers={"Authorization": f"Bearer {CRON}"}, json={}
        )
        assert refreshed.status_code == 200, refreshed.text
        # OpenAI alone is under 80 % of the seed's priced models: the run is held; accept it.
        first = refreshed.json()["run"]
        assert first["status"] == "held"
        assert first["cross_source"]["disagree"] >= 1
        accepted = await client.post(
            "/api/v1/pricing/refresh",
            headers={"Authorization": f"Bearer {ADMIN}"},
            json={"accept_run_id": first["id"]},
        )
        assert accepted.status_code == 200, accepted.text
        with_price(mcp_upstream, "openai-gpt-4o", 50.0, 200.0)
        refreshed = await client.post(
            "/api/v1/pricing/refresh",
            headers={"Authorization": f"Bearer {CRON}"},
            json={"force": True},
        )
        run = refreshed.json()["run"]
        assert run["cross_source"]["second_source"].startswith("genai-prices ")
        assert "disagreements" not in run["cross_source"]
        one = await client.get(
            f"/api/v1/pricing/runs/{run['id']}", headers={"Authorization": f"Bearer {CRON}"}
        )
        entries = {e["model_id"]: e for e in one.json()["cross_source"]["disagreements"]}
        assert entries["gpt-4o"]["held"] is True
        assert (entries["gpt-4o"]["input_usd_per_million"], entries["gpt-4o"]["factor"]) == (
            "50.0",
            "20",
        )
        held = next(h for h in run["held_prices"] if h["model_id"] == "gpt-4o")
        assert held["reason"] == "second_source"
        assert (held["proposed_input_usd_per_million"], held["second_input_usd_per_million"]) == (
            "50.0",
            "2.5",
        )
        ready = (await client.get("/ready")).json()
        assert any(d.startswith("price held: gpt-4o (second_source") for d in ready["degraded"])
        sample = await client.get(
            "/api/v1/pricing/debug/sample", headers={"Authorization": f"Bearer {ADMIN}"}
        )
        assert sample.json()["cross_source"]["disagree"] >= 1
        metrics = (await client.get("/metrics")).text
        held_gauge = re.search(r'pricing_held_prices\{reason="second_source"\} ([0-9.]+)', metrics)
        assert held_gauge is not None
        assert float(held_gauge.group(1)) >= 1
        assert 'pricing_cross_source_models{second_source="genai-prices ' in metrics

        models = (await client.get("/api/v1/pricing/models", params={"view": "all"})).json()
        items = {i["model_id"]: i for i in models["items"]}
        assert (items["gpt-4o"]["held"], items["gpt-4o"]["input_usd_per_million"]) == (True, 5.0)
        assert items["gpt-4o"]["pricing_source"] == "openai"
        assert items["gpt-4o"]["pricing_source_is_author"] is True
        oss = items["gpt-oss-120b"]
        assert (oss["pricing_source"], oss["pricing_source_is_author"]) == ("parasail", False)
        assert oss["price_label"].endswith("(vía Parasail)")
        assert items["gpt-image-1"]["pricing_source"] == "catalog"
        assert items["phi3:latest"]["pricing_source"] == "local"
        # Benchmarks, speed and description from get_model, null where it gives none.
        assert set(items["gpt-4o"]["benchmarks"]) >= {"coding", "intelligence", "math"}
        assert "description" in items["gpt-4o"]
        accepted = await client.post(
            "/api/v1/pricing/refresh",
            headers={"Authorization": f"Bearer {ADMIN}"},
            json={
                "accept_run_id": run["id"],
                "accept_model_ids": ["gpt-4o"],
                "accept_figure": "second_source",
            },
        )
        assert accepted.status_code == 200, accepted.text
        prices = (await client.get("/api/v1/pricing/prices")).json()["prices"]
        assert prices["gpt-4o"]["input_usd_per_million"] == 2.5
        assert prices["gpt-oss-120b"]["pricing_source_is_author"] is False
        estimate = (
            await client.get(
                "/api/v1/pricing/estimate",
                params={"model_id": "gpt-oss-120b", "input_tokens": 1000, "output_tokens": 10},
            )
        ).json()
        assert (estimate["pricing_source"], estimate["pricing_source_is_author"]) == (
            "parasail",
            False,
        )
