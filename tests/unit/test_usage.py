"""Usage objects as the providers return them, billed by each provider's rule (usage.py).

Prices are the recorded listing's (2026-04-29) at 4000 COP per USD; every figure is worked
out by hand in the comment above its assertions, to the last digit.
"""

from __future__ import annotations

import gzip
import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import msgspec
import pytest

from pricing_service.curation import SelectorDataset
from pricing_service.currency import COP
from pricing_service.domain import LongContextTier
from pricing_service.errors import InvalidRequest
from pricing_service.usage import (
    _EXTRACTORS,
    EXTRACTORS_FILE,
    UsageFormat,
    _extractors,
    estimate_body,
    export_extractors,
    read_usage,
)
from tests.support.recording import recorded_dataset

RATE = Decimal(4000)
FETCHED_AT = datetime(2026, 4, 29, 8, 14, tzinfo=UTC)


def _dataset(*, tiered: bool = False) -> SelectorDataset:
    return recorded_dataset(extras=tiered)


def estimate(
    model_id: str, usage: dict[str, Any], fmt: str | None = None, *, tiers: bool = False
) -> dict[str, Any]:
    now = FETCHED_AT + timedelta(minutes=1)
    dataset = _dataset(tiered=tiers)
    return _estimate(
        dataset.lookup([model_id], now=now, ttl_seconds=3600),
        usage,
        fmt,
        tiers=dataset.long_context_tiers(model_id),
    )


def _estimate(
    found: dict[str, Any], usage: dict[str, Any], fmt: str | None = None, *, tiers: Any = ()
) -> dict[str, Any]:
    """The estimate of the first item ``found`` (a lookup) as plain data, Decimals kept."""
    body = estimate_body(
        found["items"][0],
        read_usage(usage, fmt),
        rate=RATE,
        local=COP,
        currency=found["currency"],
        snapshot=found["snapshot"],
        tiers=tiers,
    )
    plain: dict[str, Any] = msgspec.to_builtins(body, builtin_types=(Decimal,))
    return plain


def lines(body: dict[str, Any]) -> dict[str, tuple[int, Any, Any]]:
    return {line["kind"]: (line["tokens"], line["usd"], line["cop"]) for line in body["items"]}


def total(body: dict[str, Any]) -> tuple[Any, Any, Any]:
    return body["total_usd"], body["total_cop"], body["total_cop_display"]


D = Decimal

# -- OpenAI Chat Completions ------------------------------------------------------------------


def test_chat_completion_with_cached_prompt() -> None:
    # gpt-4o: input 2.5, cached input 1.25, output 10 USD per million.
    usage = {
        "prompt_tokens": 2006,
        "completion_tokens": 300,
        "total_tokens": 2306,
        "prompt_tokens_details": {"cached_tokens": 1920, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": 0,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }
    body = estimate("gpt-4o", usage)
    assert (body["format"], body["format_detected"]) == ("openai_chat", True)
    # cached 1920 are part of prompt_tokens: input 2006 - 1920 = 86 x 2.5 = 0.000215 USD
    # (x 4000 = 0.86 COP); cached 1920 x 1.25 = 0.0024 USD (9.6 COP); output 300 x 10 =
    # 0.003 USD (12 COP); total 0.005615 USD = 22.46 COP.
    assert lines(body) == {
        "input": (86, D("0.000215"), D("0.86")),
        "cache_read": (1920, D("0.0024"), D("9.6")),
        "cache_write": (0, 0, 0),
        "output": (300, D("0.003"), D("12")),
    }
    assert total(body) == (D("0.005615"), D("22.46"), "22,46 COP")
    assert body["missing"] == []
    # gpt-4o has no cache-write price: null with a reason, though no token needs it.
    write = next(line for line in body["items"] if line["kind"] == "cache_write")
    assert write["usd_per_million"] is None
    assert "no cache-write price" in write["note"]


def test_chat_completion_of_a_reasoning_model() -> None:
    # o4-mini: input 1.1, output 4.4. Reasoning 1600 is part of completion_tokens 1850.
    usage = {
        "prompt_tokens": 1200,
        "completion_tokens": 1850,
        "total_tokens": 3050,
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": 1600, "audio_tokens": 0},
    }
    body = estimate("o4-mini", usage)
    # input 1200 x 1.1 = 0.00132 USD (5.28 COP); output 1850 x 4.4 = 0.00814 USD (32.56 COP),
    # reasoning not billed again; total 0.00946 USD = 37.84 COP.
    assert lines(body)["input"] == (1200, D("0.00132"), D("5.28"))
    assert lines(body)["output"] == (1850, D("0.00814"), D("32.56"))
    assert total(body) == (D("0.00946"), D("37.84"), "37,84 COP")
    assert body["usage"]["reasoning_tokens"] == 1600
    output = next(line for line in body["items"] if line["kind"] == "output")
    assert output["note"] == "includes 1600 reasoning tokens, billed as output"


# -- OpenAI Responses -------------------------------------------------------------------------


def test_responses_usage_with_cache_and_reasoning() -> None:
    # gpt-5: input 1.25, cached input 0.125, output 10.
    usage = {
        "input_tokens": 5000,
        "input_tokens_details": {"cached_tokens": 4096},
        "output_tokens": 2300,
        "output_tokens_details": {"reasoning_tokens": 1792},
        "total_tokens": 7300,
    }
    body = estimate("gpt-5", usage)
    assert body["format"] == "openai_responses"
    # input 5000 - 4096 = 904 x 1.25 = 0.00113 USD (4.52 COP); cached 4096 x 0.125 =
    # 0.000512 USD (2.048 COP); output 2300 x 10 = 0.023 USD (92 COP), reasoning included;
    # total 0.024642 USD = 98.568 COP, shown 98,57 COP.
    assert lines(body) == {
        "input": (904, D("0.00113"), D("4.52")),
        "cache_read": (4096, D("0.000512"), D("2.048")),
        "cache_write": (0, 0, 0),
        "output": (2300, D("0.023"), D("92")),
    }
    assert total(body) == (D("0.024642"), D("98.568"), "98,57 COP")


def test_responses_usage_without_cache() -> None:
    # gpt-4.1: input 2, output 8. input 1000 x 2 = 0.002 USD (8 COP); output 250 x 8 = 0.002
    # USD (8 COP); total 0.004 USD = 16 COP.
    usage = {
        "input_tokens": 1000,
        "input_tokens_details": {"cached_tokens": 0},
        "output_tokens": 250,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": 1250,
    }
    assert total(estimate("gpt-4.1", usage)) == (D("0.004"), D("16"), "16 COP")


# -- Anthropic --------------------------------------------------------------------------------


def test_anthropic_cache_is_billed_on_top_of_input_tokens() -> None:
    # claude-sonnet-4-20250514: input 3, cache read 0.3, cache write 3.75, output 15.
    usage = {
        "input_tokens": 1200,
        "cache_creation_input_tokens": 3000,
        "cache_read_input_tokens": 20000,
        "cache_creation": {"ephemeral_5m_input_tokens": 3000, "ephemeral_1h_input_tokens": 0},
        "output_tokens": 800,
        "service_tier": "standard",
    }
    body = estimate("claude-sonnet-4-20250514", usage)
    assert body["format"] == "anthropic"
    # input_tokens excludes the cache: 1200 x 3 = 0.0036 USD (14.4 COP); read 20000 x 0.3 =
    # 0.006 USD (24 COP); written 3000 x 3.75 = 0.01125 USD (45 COP); output 800 x 15 = 0.012
    # USD (48 COP); total 0.03285 USD = 131.4 COP, shown 131 COP.
    assert lines(body) == {
        "input": (1200, D("0.0036"), D("14.4")),
        "cache_read": (20000, D("0.006"), D("24")),
        "cache_write": (3000, D("0.01125"), D("45")),
        "output": (800, D("0.012"), D("48")),
    }
    assert total(body) == (D("0.03285"), D("131.4"), "131 COP")
    assert body["usage"]["input_tokens"] == 24200  # every input token, the cache included


def test_anthropic_one_hour_cache_writes_at_twice_the_input_price() -> None:
    usage = {
        "input_tokens": 50,
        "cache_creation_input_tokens": 10000,
        "cache_read_input_tokens": 0,
        "cache_creation": {"ephemeral_5m_input_tokens": 4000, "ephemeral_1h_input_tokens": 6000},
        "output_tokens": 200,
    }
    body = estimate("claude-sonnet-4-20250514", usage)
    # input 50 x 3 = 0.00015 USD (0.6 COP); 5-minute writes 4000 x 3.75 = 0.015 USD (60 COP);
    # 1-hour writes 6000 x (2 x 3 = 6) = 0.036 USD (144 COP); output 200 x 15 = 0.003 USD
    # (12 COP); total 0.05415 USD = 216.6 COP, shown 217 COP.
    assert lines(body) == {
        "input": (50, D("0.00015"), D("0.6")),
        "cache_read": (0, D("0"), D("0")),
        "cache_write": (4000, D("0.015"), D("60")),
        "cache_write_1h": (6000, D("0.036"), D("144")),
        "output": (200, D("0.003"), D("12")),
    }
    assert total(body) == (D("0.05415"), D("216.6"), "217 COP")
    one_hour = next(line for line in body["items"] if line["kind"] == "cache_write_1h")
    assert one_hour["usd_per_million"] == 6
    assert "2x the base input price" in one_hour["note"]


def test_an_unknown_cache_price_is_named_never_billed_as_input() -> None:
    # claude-3-5-haiku-20241022: input 0.8, output 4, no cache prices recorded.
    usage = {
        "input_tokens": 100,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 5000,
        "output_tokens": 50,
    }
    body = estimate("claude-3-5-haiku-20241022", usage)
    # input 100 x 0.8 = 0.00008 USD (0.32 COP); output 50 x 4 = 0.0002 USD (0.8 COP); the 5000
    # cached tokens have no price: the line and the total are null, never 0.
    assert lines(body) == {
        "input": (100, D("0.00008"), D("0.32")),
        "cache_read": (5000, None, None),
        "cache_write": (0, 0, 0),
        "output": (50, D("0.0002"), D("0.8")),
    }
    assert total(body) == (None, None, None)
    assert [(m["kind"], m["tokens"]) for m in body["missing"]] == [("cache_read", 5000)]
    assert "not billed at the input price" in body["missing"][0]["reason"]
    # Without cached tokens the same model has a total: 0.00028 USD = 1.12 COP.
    usage["cache_read_input_tokens"] = 0
    assert total(estimate("claude-3-5-haiku-20241022", usage)) == (
        D("0.00028"),
        D("1.12"),
        "1,12 COP",
    )


# -- Gemini -----------------------------------------------------------------------------------


def test_gemini_thoughts_are_output_and_cache_is_part_of_the_prompt() -> None:
    # gemini-2.5-flash: input 0.3, cached 0.03, output 2.5.
    usage = {
        "promptTokenCount": 12000,
        "cachedContentTokenCount": 10000,
        "candidatesTokenCount": 400,
        "thoughtsTokenCount": 1200,
        "totalTokenCount": 13600,
        "promptTokensDetails": [{"modality": "TEXT", "tokenCount": 12000}],
    }
    body = estimate("gemini-2.5-flash", usage)
    assert body["format"] == "gemini"
    # input 12000 - 10000 = 2000 x 0.3 = 0.0006 USD (2.4 COP); cached 10000 x 0.03 = 0.0003
    # USD (1.2 COP); output 400 + 1200 thoughts = 1600 x 2.5 = 0.004 USD (16 COP); total
    # 0.0049 USD = 19.6 COP.
    assert lines(body) == {
        "input": (2000, D("0.0006"), D("2.4")),
        "cache_read": (10000, D("0.0003"), D("1.2")),
        "cache_write": (0, 0, 0),
        "output": (1600, D("0.004"), D("16")),
    }
    assert total(body) == (D("0.0049"), D("19.6"), "19,6 COP")


def test_gemini_pro_with_thinking() -> None:
    # gemini-2.5-pro: input 1.25, output 10. input 3000 x 1.25 = 0.00375 USD (15 COP); output
    # 500 + 1500 = 2000 x 10 = 0.02 USD (80 COP); total 0.02375 USD = 95 COP.
    usage = {"promptTokenCount": 3000, "candidatesTokenCount": 500, "thoughtsTokenCount": 1500}
    body = estimate("gemini-2.5-pro", usage)
    assert total(body) == (D("0.02375"), D("95"), "95 COP")
    assert body["usage"]["reasoning_tokens"] == 1500


def test_gemini_audio_input_has_no_price_here() -> None:
    # gemini-2.0-flash: input 0.1, output 0.4; audio is priced apart by Google, not carried.
    usage = {
        "promptTokenCount": 1000,
        "candidatesTokenCount": 100,
        "promptTokensDetails": [
            {"modality": "TEXT", "tokenCount": 600},
            {"modality": "AUDIO", "tokenCount": 400},
        ],
    }
    body = estimate("gemini-2.0-flash", usage)
    # text 600 x 0.1 = 0.00006 USD (0.24 COP); output 100 x 0.4 = 0.00004 USD (0.16 COP);
    # audio 400 unknown: total null.
    assert lines(body)["input"] == (600, D("0.00006"), D("0.24"))
    assert lines(body)["input_audio"] == (400, None, None)
    assert lines(body)["output"] == (100, D("0.00004"), D("0.16"))
    assert total(body) == (None, None, None)
    assert [m["kind"] for m in body["missing"]] == ["input_audio"]


# -- models without a price, local models ---------------------------------------------------


def test_local_model_costs_nothing_and_unknown_model_is_null() -> None:
    usage = {"prompt_tokens": 1000, "completion_tokens": 100}
    local = estimate("phi3:latest", usage)
    assert total(local) == (0, 0, "0 COP")
    unknown = estimate("no-such-model-anywhere", usage)
    assert unknown["price_status"] == "unknown"
    assert total(unknown) == (None, None, None)
    assert {m["kind"] for m in unknown["missing"]} == {"input", "output"}


# -- shapes and bad input -----------------------------------------------------------------------


def test_format_named_reads_an_ambiguous_shape() -> None:
    usage = {"input_tokens": 1000, "output_tokens": 10}
    with pytest.raises(InvalidRequest, match="name it with format"):
        read_usage(usage)
    named = read_usage(usage, "anthropic")
    assert (named.format, named.detected, named.input_tokens) == (
        UsageFormat.ANTHROPIC,
        False,
        1000,
    )


@pytest.mark.parametrize(
    ("usage", "fmt", "message"),
    [
        ([], None, "usage must be a JSON object, not an array"),
        (None, None, "usage must be a JSON object, not null"),
        ({}, None, "none of the fields of a known shape"),
        ({"foo": 1}, None, "none of the fields of a known shape"),
        (
            {"prompt_tokens": 1, "completion_tokens": 1, "cache_read_input_tokens": 3},
            None,
            "mixes the fields of openai_chat and anthropic",
        ),
        ({"prompt_tokens": 1.5, "completion_tokens": 1}, None, "prompt_tokens must be a whole"),
        ({"prompt_tokens": True, "completion_tokens": 1}, None, "prompt_tokens must be a whole"),
        ({"prompt_tokens": "3", "completion_tokens": 1}, None, "prompt_tokens must be a whole"),
        ({"prompt_tokens": -1, "completion_tokens": 1}, None, "between 0 and 100000000"),
        ({"prompt_tokens": 10**9, "completion_tokens": 1}, None, "between 0 and 100000000"),
        ({"prompt_tokens": 1}, None, "usage.completion_tokens is required for openai_chat"),
        (
            {"prompt_tokens": 1, "completion_tokens": 1, "prompt_tokens_details": 3},
            None,
            "usage.prompt_tokens_details must be an object",
        ),
        (
            {
                "prompt_tokens": 10,
                "completion_tokens": 1,
                "prompt_tokens_details": {"cached_tokens": 11},
            },
            None,
            "cached_tokens (11) exceeds prompt_tokens (10)",
        ),
        (
            {
                "input_tokens": 1,
                "output_tokens": 10,
                "output_tokens_details": {"reasoning_tokens": 11},
            },
            None,
            "reasoning_tokens (11) plus audio tokens (0) exceed output_tokens (10)",
        ),
        (
            {
                "input_tokens": 1,
                "output_tokens": 1,
                "cache_creation_input_tokens": 5,
                "cache_creation": {"ephemeral_1h_input_tokens": 6},
            },
            None,
            "counts 6 written tokens, more than cache_creation_input_tokens (5)",
        ),
        ({"promptTokenCount": 5, "cachedContentTokenCount": 6}, None, "exceeds promptTokenCount"),
        ({"promptTokenCount": 5, "promptTokensDetails": {}}, None, "must be an array"),
        ({"candidatesTokenCount": 5}, None, "usage.promptTokenCount is required for gemini"),
        ({"prompt_tokens": 1, "completion_tokens": 1}, "openai", "format must be one of"),
        ({"prompt_tokens": 1, "completion_tokens": 1}, "anthropic", "input_tokens is required"),
    ],
)
def test_bad_usage_is_a_400_with_a_message(usage: Any, fmt: str | None, message: str) -> None:
    with pytest.raises(InvalidRequest, match=message.replace("(", r"\(").replace(")", r"\)")):
        read_usage(usage, fmt)


def test_fields_a_provider_adds_are_left_alone() -> None:
    # Fields we do not read (a service tier, server tool use, a future count) are not billed
    # and do not fail the read.
    found = read_usage(
        {
            "input_tokens": 10,
            "output_tokens": 2,
            "cache_read_input_tokens": 0,
            "server_tool_use": {"web_search_requests": 1},
            "service_tier": "standard",
            "some_future_count": 99,
        }
    )
    assert (found.input_tokens, found.output_tokens) == (10, 2)


# -- long-context tiers (genai-prices' tiered prices; PricePerToken states none) --------------


def test_a_prompt_past_200k_is_billed_whole_at_the_tier() -> None:
    # gemini-2.5-pro: 1.25 / cached 0.125 / output 10 up to 200K input tokens; past them
    # genai-prices 0.2.3 states 2.5 / 0.25 / 15 for every token of the request.
    usage = {"promptTokenCount": 250000, "candidatesTokenCount": 1000, "thoughtsTokenCount": 1000}
    body = estimate("gemini-2.5-pro", usage, tiers=True)
    # input 250000 x 2.5 = 0.625 USD (2500 COP); output 2000 x 15 = 0.03 USD (120 COP);
    # total 0.655 USD = 2620 COP.
    assert lines(body)["input"] == (250000, D("0.625"), D("2500"))
    assert lines(body)["output"] == (2000, D("0.03"), D("120"))
    assert total(body) == (D("0.655"), D("2620"), "2.620 COP")
    assert body["long_context"] == {
        "threshold_tokens": 200000,
        "input_tokens": 250000,
        "applied": True,
        "source": "genai-prices 0.2.3 google/gemini-2.5-pro",
    }
    line = next(entry for entry in body["items"] if entry["kind"] == "input")
    assert line["usd_per_million"] == D("2.5")
    assert "exceed 200000" in line["note"]
    # Exactly 200000 does not cross (the tier starts above it): 200000 x 1.25 = 0.25 USD,
    # output 2000 x 10 = 0.02 USD; total 0.27 USD = 1080 COP.
    usage["promptTokenCount"] = 200000
    below = estimate("gemini-2.5-pro", usage, tiers=True)
    assert total(below) == (D("0.27"), D("1080"), "1.080 COP")
    assert below["long_context"]["applied"] is False


def test_cached_tokens_of_a_long_prompt_are_at_the_cached_tier() -> None:
    # 300000 prompt tokens of which 280000 cached: 20000 x 2.5 = 0.05 USD (200 COP); cached
    # 280000 x 0.25 = 0.07 USD (280 COP); output 100 x 15 = 0.0015 USD (6 COP); total
    # 0.1215 USD = 486 COP.
    usage = {
        "promptTokenCount": 300000,
        "cachedContentTokenCount": 280000,
        "candidatesTokenCount": 100,
    }
    body = estimate("gemini-2.5-pro", usage, tiers=True)
    assert lines(body)["input"] == (20000, D("0.05"), D("200"))
    assert lines(body)["cache_read"] == (280000, D("0.07"), D("280"))
    assert total(body) == (D("0.1215"), D("486"), "486 COP")


def test_a_tier_over_another_base_is_unknown_not_guessed() -> None:
    found = _dataset().lookup(["gemini-2.5-pro"], now=FETCHED_AT, ttl_seconds=3600)
    other = LongContextTier("input", 200000, D("5"), D("2"), "genai-prices 0.2.3 test/other")
    body = _estimate(found, {"promptTokenCount": 250000, "candidatesTokenCount": 0}, tiers=(other,))
    assert lines(body)["input"] == (250000, None, None)
    assert total(body) == (None, None, None)
    assert "long-context input price unknown" in body["missing"][0]["reason"]
    # A model without tiers answers long_context null and bills flat.
    flat = estimate("gpt-4o", {"prompt_tokens": 300000, "completion_tokens": 0}, tiers=True)
    assert flat["long_context"] is None
    assert total(flat) == (D("0.75"), D("3000"), "3.000 COP")  # 300000 x 2.5


def test_the_items_state_their_tiers_for_clients_by_the_same_rule() -> None:
    # gemini-2.5-pro past 200K: input 2.5, cached 0.25, output 15 (genai-prices 0.2.3); the
    # price served below it is the tiers' base, so each tier is stated (the kit applies them).
    dataset = _dataset(tiered=True)
    now = FETCHED_AT + timedelta(minutes=1)
    pro, flash, gpt4o = dataset.lookup(
        ["gemini-2.5-pro", "gemini-1.5-flash", "gpt-4o"], now=now, ttl_seconds=3600
    )["items"]
    assert pro["long_context_tiers"] == [
        {"kind": "cache_read", "start": 200000, "usd_per_million": D("0.25")},
        {"kind": "input", "start": 200000, "usd_per_million": D("2.5")},
        {"kind": "output", "start": 200000, "usd_per_million": D("15")},
    ]
    # gemini-1.5-flash is served at 0.35 / 1.05 (the upstream's), genai-prices' tiers start from
    # 0.075 / 0.3: past 128K its prices are unknown (null), not guessed.
    assert flash["long_context_tiers"] == [
        {"kind": "input", "start": 128000, "usd_per_million": None},
        {"kind": "output", "start": 128000, "usd_per_million": None},
    ]
    assert gpt4o["long_context_tiers"] is None
    entry = dataset.price_map(now=now, ttl_seconds=3600)["prices"]["gemini-2.5-pro"]
    assert entry["long_context_tiers"] == pro["long_context_tiers"]


# -- the exported extractors (seed/usage_extractors.json.gz) ---------------------------------


def test_the_bundled_extractors_are_the_installed_packages() -> None:
    # Fails after a genai-prices upgrade until scripts/build_usage_extractors.py is run.
    assert json.loads(gzip.decompress(EXTRACTORS_FILE.read_bytes())) == export_extractors()


@pytest.mark.parametrize("chosen", list(UsageFormat))
def test_each_rebuilt_extractor_is_genai_prices_own(chosen: UsageFormat) -> None:
    from genai_prices.data import providers

    provider_id, flavor, _ = _EXTRACTORS[chosen]
    provider = next(p for p in providers if p.id == provider_id)
    own = next(e for e in provider.extractors or [] if e.api_flavor == flavor)
    assert _extractors()[chosen] == own
