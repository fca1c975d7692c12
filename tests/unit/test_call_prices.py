"""Per-call prices (web searches, request fees) from the second source, in the selector item,
the price map and the estimate (call_prices.py, second_source.with_call_prices_and_tiers,
usage.bill).

Prices are the recorded listing's (2026-04-29) with genai-prices 0.2.3's per-call figures for
each model's own provider, at 4000 COP per USD; every figure is worked out in the comment above
its assertions, to the last digit.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import msgspec
import pytest

from pricing_service.curation import SelectorDataset
from pricing_service.currency import COP
from pricing_service.domain import PriceKind
from pricing_service.second_source import second_source
from pricing_service.usage import estimate_body, read_usage
from tests.support.recording import normalized_recording, recorded_dataset

RATE = Decimal(4000)
FETCHED_AT = datetime(2026, 4, 29, 8, 14, tzinfo=UTC)
NOW = FETCHED_AT + timedelta(minutes=1)
D = Decimal


def _dataset(with_calls: bool = True) -> SelectorDataset:
    return recorded_dataset(extras=with_calls)


def item(model_id: str, *, with_calls: bool = True) -> dict[str, Any]:
    found: dict[str, Any] = _dataset(with_calls).lookup([model_id], now=NOW, ttl_seconds=3600)[
        "items"
    ][0]
    return found


def estimate(model_id: str, usage: dict[str, Any], *, with_calls: bool = True) -> dict[str, Any]:
    """POST /estimate's answer as plain data (Decimals kept)."""
    found = _dataset(with_calls).lookup([model_id], now=NOW, ttl_seconds=3600)
    body = estimate_body(
        found["items"][0],
        read_usage(usage),
        rate=RATE,
        local=COP,
        currency=found["currency"],
        snapshot=found["snapshot"],
    )
    plain: dict[str, Any] = msgspec.to_builtins(body, builtin_types=(Decimal,))
    return plain


def total(body: dict[str, Any]) -> tuple[Any, Any, Any]:
    return body["total_usd"], body["total_cop"], body["total_cop_display"]


# -- the source --------------------------------------------------------------------------------


def test_the_second_source_gives_per_call_prices_by_the_models_own_provider() -> None:
    prices = {
        p.model_id: p
        for p in second_source().with_call_prices_and_tiers(
            normalized_recording().prices, at=FETCHED_AT
        )
    }
    sonnet = prices["claude-sonnet-4"]
    assert (sonnet.web_search_usd_per_thousand, sonnet.request_usd_per_thousand) == (D(10), None)
    assert sonnet.call_prices_source == "genai-prices 0.2.3 anthropic/claude-sonnet-4-0"
    sonar = prices["sonar"]
    assert (sonar.web_search_usd_per_thousand, sonar.request_usd_per_thousand) == (None, D(12))
    assert prices["gemini-2.5-pro"].figure(PriceKind.WEB_SEARCH) == D(35)
    # genai-prices states no web-search price for Claude 3 Haiku: unknown, not 0.
    haiku = prices["claude-3-haiku"]
    assert haiku.web_search_usd_per_thousand is None
    assert haiku.call_prices_source is None
    # PricePerToken states none: a model of a provider genai-prices does not price keeps none.
    assert all(
        p.figure(kind) is None
        for p in normalized_recording().prices
        for kind in (PriceKind.WEB_SEARCH, PriceKind.REQUEST)
    )


# -- the selector item and the price map ---------------------------------------------------------


def test_the_item_and_the_price_map_carry_them_in_usd_and_cop() -> None:
    # 10 USD per 1,000 searches x 4000 = 40000 COP per 1,000; Sonar's 12 USD per 1,000
    # requests = 48000 COP.
    sonnet = item("claude-sonnet-4")
    assert (sonnet["web_search_usd_per_thousand"], sonnet["web_search_cop_per_thousand"]) == (
        D(10),
        D(40000),
    )
    assert (sonnet["request_usd_per_thousand"], sonnet["request_cop_per_thousand"]) == (None, None)
    assert sonnet["call_prices_source"] == "genai-prices 0.2.3 anthropic/claude-sonnet-4-0"
    sonar = item("sonar")
    assert (sonar["request_usd_per_thousand"], sonar["request_cop_per_thousand"]) == (
        D(12),
        D(48000),
    )
    entry = _dataset().price_map(now=NOW, ttl_seconds=3600)["prices"]["claude-sonnet-4"]
    assert (entry["web_search_usd_per_thousand"], entry["web_search_cop_per_thousand"]) == (
        D(10),
        D(40000),
    )
    assert entry["request_usd_per_thousand"] is None
    local = item("cognitia_llm_zerogpu.mistral-7b")
    assert local["web_search_usd_per_thousand"] is None
    assert local["call_prices_source"] is None


def test_an_image_model_says_no_source_states_a_per_image_price() -> None:
    # gpt-image-1 (a catalog override: 5 / 40 USD per million tokens): output 40 x 4000 / 100
    # = 1600 COP per 10K image tokens. No source states a price per image.
    image = item("gpt-image-1")
    assert image["special"] == "image"
    assert image["price_label"].startswith(
        "Sin precio por imagen en las fuentes: se cobra por tokens (salida 1.600 COP por 10K)"
    )
    assert "por mensaje" not in image["price_label"]
    assert item("gpt-4o")["price_label"].endswith("por mensaje")


# -- the estimate ----------------------------------------------------------------------------------


def test_anthropic_web_searches_are_billed_per_search() -> None:
    # claude-sonnet-4: input 3, output 15 USD per million; web search 10 USD per 1,000.
    usage = {
        "input_tokens": 1500,
        "output_tokens": 400,
        "cache_read_input_tokens": 0,
        "cache_creation_input_tokens": 0,
        "server_tool_use": {"web_search_requests": 3},
    }
    body = estimate("claude-sonnet-4", usage)
    assert body["usage"]["web_searches"] == 3
    # input 1500 x 3 / 1e6 = 0.0045 USD (18 COP); output 400 x 15 / 1e6 = 0.006 USD (24 COP);
    # searches 3 x 10 / 1000 = 0.03 USD (120 COP); total 0.0405 USD = 162 COP.
    assert body["calls"] == [
        {
            "kind": "web_search",
            "calls": 3,
            "usd_per_thousand": D(10),
            "cop_per_thousand": D(40000),
            "usd": D("0.03"),
            "cop": D(120),
            "note": "10 USD per 1,000 web searches (genai-prices 0.2.3 "
            "anthropic/claude-sonnet-4-0)",
        }
    ]
    assert total(body) == (D("0.0405"), D(162), "162 COP")
    assert body["missing"] == []


def test_searches_without_a_known_price_make_the_total_unknown() -> None:
    # claude-3-haiku: genai-prices states no web-search price. 2 searches are not billed at 0.
    usage = {
        "input_tokens": 1000,
        "output_tokens": 100,
        "cache_read_input_tokens": 0,
        "server_tool_use": {"web_search_requests": 2},
    }
    body = estimate("claude-3-haiku", usage)
    [line] = body["calls"]
    assert (line["kind"], line["calls"], line["usd"], line["cop"]) == ("web_search", 2, None, None)
    assert "no web search price is known for claude-3-haiku" in line["note"]
    assert total(body) == (None, None, None)
    assert body["missing"] == [{"kind": "web_search", "calls": 2, "reason": line["note"]}]
    # The same model without searches is billed as before: no call line, a total.
    quiet = estimate("claude-3-haiku", {**usage, "server_tool_use": {"web_search_requests": 0}})
    assert quiet["calls"] == []
    assert quiet["total_usd"] is not None


def test_a_request_fee_is_billed_once_per_call_and_perplexity_searches_per_search() -> None:
    # sonar: input 1, output 1 USD per million; 12 USD per 1,000 requests.
    usage = {"prompt_tokens": 1000, "completion_tokens": 500, "total_tokens": 1500}
    body = estimate("sonar", usage)
    # input 1000 x 1 / 1e6 = 0.001 USD (4 COP); output 500 x 1 / 1e6 = 0.0005 USD (2 COP);
    # one request 12 / 1000 = 0.012 USD (48 COP); total 0.0135 USD = 54 COP.
    assert [(c["kind"], c["calls"], c["usd"], c["cop"]) for c in body["calls"]] == [
        ("request", 1, D("0.012"), D(48))
    ]
    assert total(body) == (D("0.0135"), D(54), "54 COP")
    # sonar-deep-research: 2 / 8 per million, web search 5 USD per 1,000; Perplexity counts its
    # searches in num_search_queries. input 0.002, output 200 x 8 = 0.0016, 4 searches x 5 /
    # 1000 = 0.02 USD; total 0.0236 USD = 94.4 COP.
    deep = estimate(
        "sonar-deep-research",
        {"prompt_tokens": 1000, "completion_tokens": 200, "num_search_queries": 4},
    )
    assert [(c["kind"], c["calls"], c["usd"]) for c in deep["calls"]] == [
        ("web_search", 4, D("0.02"))
    ]
    assert total(deep) == (D("0.0236"), D("94.4"), "94,4 COP")


def test_without_the_second_source_a_search_is_unknown_never_free() -> None:
    body = estimate(
        "claude-sonnet-4",
        {"input_tokens": 10, "output_tokens": 1, "server_tool_use": {"web_search_requests": 1}},
        with_calls=False,
    )
    assert body["calls"][0]["usd"] is None
    assert body["total_usd"] is None


@pytest.mark.parametrize("count", [-1, 1.5, True, "3"])
def test_a_bad_search_count_is_a_400(count: Any) -> None:
    from pricing_service.errors import InvalidRequest

    with pytest.raises(InvalidRequest, match="web_search_requests"):
        read_usage(
            {
                "input_tokens": 1,
                "output_tokens": 1,
                "server_tool_use": {"web_search_requests": count},
            }
        )
