"""The HTTP contract of the refresh, and services started on a database of their own, on both
storage stacks (the reads: test_api.py)."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from litestar.testing import AsyncTestClient

from pricing_service.app import create_app
from tests.support.settings import ADMIN, CRON, settings_for

if TYPE_CHECKING:
    from litestar import Litestar

    from tests.support.mcp_upstream import LoopbackUpstream


def body(response: Any) -> Any:
    return json.loads(response.content, parse_float=Decimal)


async def test_refresh_access_and_model_statuses(
    client: AsyncTestClient[Litestar], mcp_upstream: LoopbackUpstream
) -> None:
    url = "/api/v1/pricing/refresh"
    assert (await client.post(url)).status_code == 401
    wrong = await client.post(url, headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401
    assert wrong.headers["www-authenticate"] == "Bearer"
    calls = mcp_upstream.calls["get_all_models"]
    recent = await client.post(
        url,
        headers={"Authorization": f"Bearer {ADMIN}"},
        json={
            "model_ids": ["gpt-4o", "cognitia_llm_zerogpu.phi3", "made-up-model", "o3"],
        },
    )
    assert recent.status_code == 200, recent.text
    data = recent.json()
    assert data["started"] is False  # a successful run just happened: no new upstream call
    assert mcp_upstream.calls["get_all_models"] == calls
    assert data["models"] == {
        "gpt-4o": "priced",
        "cognitia_llm_zerogpu.phi3": "local",
        "made-up-model": "not_in_catalog",
        "o3": "priced",
    }
    forced = await client.post(
        url, headers={"Authorization": f"Bearer {CRON}"}, json={"force": True}
    )
    assert forced.status_code == 200
    assert forced.json()["started"] is True
    assert forced.json()["run"]["status"] == "succeeded"
    assert mcp_upstream.calls["get_all_models"] == calls + 1
    bad_body = await client.post(
        url, headers={"Authorization": f"Bearer {CRON}"}, json={"force": "please"}
    )
    assert bad_body.status_code == 400


async def test_refresh_failure_answers_502_and_keeps_prices(
    client: AsyncTestClient[Litestar], mcp_upstream: LoopbackUpstream
) -> None:
    before = body(await client.get("/api/v1/pricing/models"))
    mcp_upstream.set_behaviour("http_403")
    failed = await client.post(
        "/api/v1/pricing/refresh",
        headers={"Authorization": f"Bearer {CRON}"},
        json={"force": True},
    )
    assert failed.status_code == 502
    assert failed.json()["run"]["status"] == "failed"
    after = body(await client.get("/api/v1/pricing/models"))
    assert after["items"] == before["items"]
    ready = (await client.get("/ready")).json()
    assert ready["ready"] is True
    assert any("last refresh failed" in d for d in ready["degraded"])


async def test_refresh_without_tokens_configured_is_403(
    sqlite_url: str, mcp_upstream: LoopbackUpstream
) -> None:
    settings = settings_for(
        sqlite_url, mcp_upstream.url, pricing_cron_token=None, pricing_admin_token=None
    )
    async with AsyncTestClient(create_app(settings)) as c:
        response = await c.post("/api/v1/pricing/refresh", headers={"Authorization": "Bearer x"})
        assert response.status_code == 403
        assert "not configured" in response.text


async def test_offline_first_start_serves_the_seed_marked_stale(sqlite_url: str) -> None:
    settings = settings_for(sqlite_url, "http://127.0.0.1:9/mcp")
    async with AsyncTestClient(create_app(settings)) as c:
        ready = await c.get("/ready")
        assert ready.status_code == 200
        data = body(await c.get("/api/v1/pricing/models"))
        assert data["snapshot"]["source"] == "seed"
        assert data["snapshot"]["stale"] is True
        assert data["updated_at"].startswith("2026-04-29")
        priced = [i for i in data["items"] if i["price_status"] == "priced"]
        assert priced
        assert {i["price_basis"] for i in priced} == {"seed"}


async def test_change_feed_over_http(
    client: AsyncTestClient[Litestar], mcp_upstream: LoopbackUpstream
) -> None:
    # gpt-4-turbo is not curated: its price may turn unknown without holding the run.
    mcp_upstream.set_prices({"openai-gpt-4o": (3.0, 10.0), "openai-gpt-4-turbo": (None, None)})
    refreshed = await client.post(
        "/api/v1/pricing/refresh", headers={"Authorization": f"Bearer {CRON}"}, json={"force": True}
    )
    assert refreshed.json()["run"]["changes"] == 2
    items = body(await client.get("/api/v1/pricing/changes", params={"limit": 10}))["items"]
    assert [i["model_id"] for i in items] == ["gpt-4-turbo", "gpt-4o"]
    assert {i["kind"] for i in items} == {"changed"}
    turbo, gpt4o = items
    assert gpt4o["old_input_usd_per_million"] == Decimal("2.5")
    assert gpt4o["new_input_usd_per_million"] == 3
    assert gpt4o["input_change_pct"] == 20
    assert gpt4o["output_change_pct"] == 0
    # A price that became unknown is an event with nulls, not a change to 0.
    assert turbo["old_input_usd_per_million"] == 10
    assert turbo["new_input_usd_per_million"] is None
    assert turbo["new_output_usd_per_million"] is None
    assert turbo["input_change_pct"] is None
    # Every spelling ?ids= resolves to gpt-4o names its history (one resolver).
    for spelling in ("gpt-4o", "openai/gpt-4o", "GPT-4o", "gpt-4o-2024-11-20"):
        named = body(await client.get("/api/v1/pricing/changes", params={"model_id": spelling}))
        assert [i["model_id"] for i in named["items"]] == ["gpt-4o"], spelling
        looked_up = body(await client.get("/api/v1/pricing/models", params={"ids": spelling}))
        assert looked_up["items"][0]["input_usd_per_million"] == 3, spelling
    nothing = await client.get("/api/v1/pricing/changes", params={"model_id": "no-such-model-x"})
    assert body(nothing)["items"] == []
    # COP beside USD, at the service's rate (4000 in these settings); unknown stays null.
    assert gpt4o["new_input_cop_per_million"] == gpt4o["new_input_usd_per_million"] * 4000
    assert turbo["new_input_cop_per_million"] is None
    later = body(
        await client.get("/api/v1/pricing/changes", params={"since": "2999-01-01T00:00:00Z"})
    )
    assert later["items"] == []
