"""Per-call prices (web searches, request fees) on real runs: genai-prices' figures stored with
each model, judged by the gate like every price kind (a jump is held, the accepted figure stays
served), and served by /prices, the selector items and POST /estimate over HTTP.

Runs a real refresh against the loopback MCP server (OpenAI's rows of the recording) on
SQLite and PostgreSQL.
"""

from __future__ import annotations

import json
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import pytest
from litestar.testing import AsyncTestClient

from pricing_service.app import create_app
from pricing_service.db import create_db_engine
from pricing_service.domain import HoldReason, RunStatus
from pricing_service.repository import Repository
from pricing_service.second_source import SecondSource
from tests.integration.test_second_source import current, only_openai, refresher_for
from tests.support.recorded_service import service_settings

if TYPE_CHECKING:
    from collections.abc import Iterator

    from tests.support.mcp_upstream import LoopbackUpstream

PRICING = "/api/v1/pricing"


class JumpingSource(SecondSource):
    """genai-prices, but gpt-4o's web search at 150 USD per 1,000 (15x its 10): a glitch."""

    def per_call_charges(
        self, provider: str, model_id: str, *, at: datetime | None = None
    ) -> dict[str, Decimal]:
        found = super().per_call_charges(provider, model_id, at=at)
        if model_id == "gpt-4o":
            found["web_searches"] = Decimal(150)
        return found


@pytest.fixture
def repository(database_url: str) -> Iterator[Repository]:
    engine = create_db_engine(database_url)
    yield Repository(engine)
    engine.dispose()


def body(response: Any) -> Any:
    return json.loads(response.content, parse_float=Decimal)


async def test_per_call_prices_are_stored_gated_and_served(
    repository: Repository, mcp_upstream: LoopbackUpstream, database_url: str
) -> None:
    only_openai(mcp_upstream)
    refresher = refresher_for(repository, mcp_upstream)
    first = await refresher.refresh("test")
    assert first.run.status is RunStatus.SUCCEEDED, first.run.error
    gpt4o = current(repository)["gpt-4o"]
    assert gpt4o.web_search_usd_per_thousand == Decimal(10)
    assert gpt4o.request_usd_per_thousand is None
    assert gpt4o.call_prices_source == "genai-prices 0.2.3 openai/gpt-4o"

    # The second source's web-search figure jumps 15x: held like any kind, 10 stays served.
    refresher.second = JumpingSource()
    second = await refresher.refresh("test", force=True)
    assert second.run.status is RunStatus.SUCCEEDED, second.run.error
    held = {h.model_id: h for h in second.run.held_prices}
    assert held["gpt-4o"].reason is HoldReason.RATIO
    assert "web_search moved from 10 to 150 USD per 1,000 calls" in held["gpt-4o"].detail
    assert current(repository)["gpt-4o"].web_search_usd_per_thousand == Decimal(10)

    async with AsyncTestClient(create_app(service_settings(database_url))) as client:
        prices = body(await client.get(f"{PRICING}/prices"))["prices"]
        # 10 USD per 1,000 searches x 4000 = 40000 COP per 1,000.
        assert (
            prices["gpt-4o"]["web_search_usd_per_thousand"],
            prices["gpt-4o"]["web_search_cop_per_thousand"],
        ) == (Decimal(10), Decimal(40000))
        models = body(await client.get(f"{PRICING}/models", params={"ids": "gpt-4o"}))
        [entry] = models["items"]
        assert entry["web_search_usd_per_thousand"] == Decimal(10)
        assert entry["call_prices_source"] == "genai-prices 0.2.3 openai/gpt-4o"
        assert entry["held"] is True  # the 150 waits for an operator
        # OpenAI's usage objects carry no web-search count: the estimate has no call line.
        estimate = body(
            await client.post(
                f"{PRICING}/estimate",
                json={
                    "model_id": "gpt-4o",
                    "usage": {"prompt_tokens": 1000, "completion_tokens": 100},
                },
            )
        )
        assert estimate["calls"] == []
        # input 1000 x 2.5 = 0.0025, output 100 x 10 = 0.001; total 0.0035 USD = 14 COP.
        assert (estimate["total_usd"], estimate["total_cop"]) == (Decimal("0.0035"), Decimal(14))
