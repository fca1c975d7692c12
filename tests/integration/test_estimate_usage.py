"""POST /api/v1/pricing/estimate over the real app and database: a provider's usage object in,
every price kind out (the rules themselves are in tests/unit/test_usage.py)."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import pytest
import pytest_asyncio
from litestar.testing import AsyncTestClient

from pricing_service.app import create_app
from tests.support.recorded_service import seed_snapshot, service_settings
from tests.support.shared_service import module_database

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from litestar import Litestar

PRICING = "/api/v1/pricing"


# One service per engine for the module (tests/support/shared_service.py): an estimate reads the
# prices and stores nothing, and no test here counts what the service was asked.
pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def module_database_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> str:
    return module_database(request, tmp_path_factory)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def client(module_database_url: str) -> AsyncIterator[AsyncTestClient[Litestar]]:
    seed_snapshot(module_database_url)
    async with AsyncTestClient(create_app(service_settings(module_database_url))) as c:
        yield c


def body(response: Any) -> Any:
    return json.loads(response.content, parse_float=Decimal)


async def test_a_chat_completion_usage_is_billed_kind_by_kind(
    client: AsyncTestClient[Litestar],
) -> None:
    response = await client.post(
        f"{PRICING}/estimate",
        json={
            "model_id": "openai/gpt-4o",
            "usage": {
                "prompt_tokens": 2006,
                "completion_tokens": 300,
                "total_tokens": 2306,
                "prompt_tokens_details": {"cached_tokens": 1920, "audio_tokens": 0},
                "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0},
            },
        },
    )
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    data = body(response)
    assert (data["model_id"], data["format"], data["price_status"]) == (
        "openai/gpt-4o",
        "openai_chat",
        "priced",
    )
    # gpt-4o 2.5 / cached 1.25 / output 10 USD per million at 4000: input 86 tokens =
    # 0.000215 USD, cached 1920 = 0.0024, output 300 = 0.003; total 0.005615 USD = 22.46 COP.
    assert [(i["kind"], i["tokens"], i["usd"]) for i in data["items"]] == [
        ("input", 86, Decimal("0.000215")),
        ("cache_read", 1920, Decimal("0.0024")),
        ("cache_write", 0, 0),
        ("output", 300, Decimal("0.003")),
    ]
    assert (data["total_usd"], data["total_cop"]) == (Decimal("0.005615"), Decimal("22.46"))
    assert data["currency"]["code"] == "COP"
    assert data["snapshot"]["source"] == "pricepertoken"


async def test_the_same_tokens_cost_what_the_get_form_says_without_cache(
    client: AsyncTestClient[Litestar],
) -> None:
    posted = body(
        await client.post(
            f"{PRICING}/estimate",
            json={
                "model_id": "claude-sonnet-4-20250514",
                "usage": {"input_tokens": 1234, "output_tokens": 567},
                "format": "anthropic",
            },
        )
    )
    got = body(
        await client.get(
            f"{PRICING}/estimate",
            params={
                "model_id": "claude-sonnet-4-20250514",
                "input_tokens": 1234,
                "output_tokens": 567,
            },
        )
    )
    assert posted["format_detected"] is False
    assert (posted["total_usd"], posted["total_cop"], posted["total_cop_display"]) == (
        got["total_usd"],
        got["total_cop"],
        got["total_cop_display"],
    )
    assert got["total_usd"] == Decimal("0.012207")  # the GET form is unchanged


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ({"usage": {"prompt_tokens": 1, "completion_tokens": 1}}, "model_id"),
        ({"model_id": "gpt-4o"}, "usage"),
        ({"model_id": " ", "usage": {"prompt_tokens": 1}}, "model_id is required"),
        ({"model_id": "gpt-4o", "usage": [1]}, "usage must be a JSON object"),
        (
            {"model_id": "gpt-4o", "usage": {"input_tokens": 1, "output_tokens": 1}},
            "name it with format",
        ),
        (
            {"model_id": "gpt-4o", "usage": {"prompt_tokens": 1.5, "completion_tokens": 1}},
            "usage.prompt_tokens must be a whole number",
        ),
        (
            {"model_id": "gpt-4o", "usage": {"prompt_tokens": 1}, "format": "gemini"},
            "usage.promptTokenCount is required",
        ),
        (
            {"model_id": "gpt-4o", "usage": {"prompt_tokens": 1}, "format": "nope"},
            "format must be one of",
        ),
        ({"model_id": "a\u0000b", "usage": {"prompt_tokens": 1}}, "control characters"),
        ({"model_id": "x" * 201, "usage": {"prompt_tokens": 1}}, "too long"),
    ],
)
async def test_bad_bodies_are_400_with_a_message(
    client: AsyncTestClient[Litestar], payload: dict[str, Any], message: str
) -> None:
    response = await client.post(f"{PRICING}/estimate", json=payload)
    assert response.status_code == 400, response.text
    assert message in response.text


async def test_not_json_and_oversized_bodies_are_refused(
    client: AsyncTestClient[Litestar],
) -> None:
    broken = await client.post(
        f"{PRICING}/estimate", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert broken.status_code == 400
    huge = await client.post(
        f"{PRICING}/estimate",
        content=json.dumps({"model_id": "gpt-4o", "usage": {"pad": "x" * 70_000}}).encode(),
        headers={"content-type": "application/json"},
    )
    assert huge.status_code == 413
    query = await client.post(
        f"{PRICING}/estimate?model_id=gpt-4o",
        json={"model_id": "gpt-4o", "usage": {"prompt_tokens": 1, "completion_tokens": 1}},
    )
    assert query.status_code == 400


async def test_cache_prices_are_served_in_usd_and_cop_everywhere(
    client: AsyncTestClient[Litestar],
) -> None:
    # claude-sonnet-4-20250514: cache read 0.3, cache write 3.75 USD per million; at 4000 COP
    # that is 1200 and 15000 COP per million, 12 and 150 COP per 10K.
    prices = body(await client.get(f"{PRICING}/prices"))["prices"]
    entry = prices["claude-sonnet-4-20250514"]
    assert (entry["cache_read_usd_per_million"], entry["cache_write_usd_per_million"]) == (
        Decimal("0.3"),
        Decimal("3.75"),
    )
    assert (entry["cache_read_cop_per_10k"], entry["cache_write_cop_per_10k"]) == (12, 150)
    # gpt-4o: cached input 1.25 (50 COP per 10K), no cache-write price: null, never 0.
    gpt = prices["gpt-4o"]
    assert (gpt["cache_read_cop_per_10k"], gpt["cache_write_usd_per_million"]) == (50, None)
    assert gpt["cache_write_cop_per_10k"] is None
    items = body(await client.get(f"{PRICING}/models", params={"ids": "claude-sonnet-4-20250514"}))
    item = items["items"][0]
    assert (item["cache_read_cop_per_million"], item["cache_write_cop_per_million"]) == (
        1200,
        15000,
    )
    assert (item["cache_read_cop_per_10k"], item["cache_write_cop_per_10k"]) == (12, 150)
    # The estimate bills at the same figures.
    estimate = body(
        await client.post(
            f"{PRICING}/estimate",
            json={
                "model_id": "claude-sonnet-4-20250514",
                "usage": {
                    "input_tokens": 1,
                    "output_tokens": 1,
                    "cache_read_input_tokens": 10,
                    "cache_creation_input_tokens": 10,
                },
            },
        )
    )
    by_kind = {line["kind"]: line for line in estimate["items"]}
    assert by_kind["cache_read"]["cop_per_million"] == item["cache_read_cop_per_million"]
    assert by_kind["cache_write"]["cop_per_million"] == item["cache_write_cop_per_million"]


async def test_a_long_prompt_crosses_the_tier_through_the_api(
    client: AsyncTestClient[Litestar],
) -> None:
    # gemini-2.5-pro past 200K input tokens: 250000 x 2.5 + 2000 x 15 = 0.655 USD = 2620 COP
    # (genai-prices 0.2.3's tier; PricePerToken states the short-context prices only).
    data = body(
        await client.post(
            f"{PRICING}/estimate",
            json={
                "model_id": "google/gemini-2.5-pro",
                "usage": {
                    "promptTokenCount": 250000,
                    "candidatesTokenCount": 1000,
                    "thoughtsTokenCount": 1000,
                },
            },
        )
    )
    assert (data["total_usd"], data["total_cop"]) == (Decimal("0.655"), Decimal("2620"))
    assert data["long_context"]["applied"] is True
    assert data["long_context"]["source"] == "genai-prices 0.2.3 google/gemini-2.5-pro"


async def test_the_get_form_bills_a_long_prompt_at_the_tier_as_the_post_form(
    client: AsyncTestClient[Litestar],
) -> None:
    # gemini-2.5-pro, 1.25 / 10 USD per million up to 200K input tokens, 2.5 / 15 past them
    # (genai-prices 0.2.3) for every token of the call: 250000 x 2.5 = 0.625 USD, 2000 x 15 =
    # 0.03 USD; total 0.655 USD = 2620 COP, the POST form's figure above.
    long = body(
        await client.get(
            f"{PRICING}/estimate",
            params={
                "model_id": "google/gemini-2.5-pro",
                "input_tokens": "250000",
                "output_tokens": "2000",
            },
        )
    )
    assert (long["input_usd"], long["output_usd"]) == (Decimal("0.625"), Decimal("0.03"))
    assert (long["total_usd"], long["total_cop"], long["total_cop_display"]) == (
        Decimal("0.655"),
        Decimal("2620"),
        "2.620 COP",
    )
    assert (long["input_usd_per_million"], long["output_usd_per_million"]) == (
        Decimal("2.5"),
        Decimal("15"),
    )
    assert long["long_context"] == {
        "threshold_tokens": 200000,
        "input_tokens": 250000,
        "applied": True,
        "source": "genai-prices 0.2.3 google/gemini-2.5-pro",
    }
    # At the threshold exactly the tier does not apply: 200000 x 1.25 = 0.25, 2000 x 10 = 0.02.
    short = body(
        await client.get(
            f"{PRICING}/estimate",
            params={
                "model_id": "google/gemini-2.5-pro",
                "input_tokens": "200000",
                "output_tokens": "2000",
            },
        )
    )
    assert short["total_usd"] == Decimal("0.27")
    assert short["long_context"]["applied"] is False
    # A model without tiers says so with null.
    plain = body(
        await client.get(
            f"{PRICING}/estimate",
            params={"model_id": "gpt-4o", "input_tokens": "300000", "output_tokens": "1"},
        )
    )
    assert plain["long_context"] is None
    assert plain["total_usd"] == Decimal("0.75001")
