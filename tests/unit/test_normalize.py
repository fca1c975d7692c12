"""normalize: recorded PricePerToken payloads -> domain prices, and selector ids -> prices."""

from __future__ import annotations

import copy
import json
import math
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pricing_service.domain import ModelPrice, PriceBasis, PriceStatus
from pricing_service.errors import UpstreamRejected
from pricing_service.listings.pricepertoken_rows import (
    bare_model_id,
    normalize_listing,
    normalize_model,
)
from pricing_service.model_kinds import is_local_id
from pricing_service.normalize import (
    UNKNOWN_PROVIDER,
    PriceIndex,
    canonical_provider,
    price_from_json,
)

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
RECORDING = FIXTURES / "pricepertoken" / "2026-04-29"
ROWS: list[dict[str, Any]] = json.loads((RECORDING / "get_all_models.json").read_text())
DETAILS: dict[str, dict[str, Any]] = {
    d["slug"]: d for d in json.loads((RECORDING / "get_model.json").read_text())
}
PROVIDERS: list[dict[str, Any]] = json.loads((RECORDING / "get_providers.json").read_text())
SELECTOR: dict[str, Any] = json.loads((FIXTURES / "cognitia" / "selector.json").read_text())

LISTING = normalize_listing(ROWS, DETAILS)
INDEX = PriceIndex(LISTING.prices)
BY_SLUG = {p.slug: p for p in LISTING.prices}


def _dec(value: Any) -> Decimal | None:
    return None if value is None else Decimal(str(value))


def _row(slug: str) -> dict[str, Any]:
    return next(r for r in ROWS if r["slug"] == slug)


def _selector_ids() -> list[str]:
    ids: dict[str, None] = {}
    for group in SELECTOR["curated_models_by_category"].values():
        ids.update(dict.fromkeys(group))
    ids.update(dict.fromkeys(SELECTOR["also_seen_in_selector"]))
    return list(ids)


# --- prices: official vs list, null vs zero ---------------------------------------------


@pytest.mark.parametrize(
    ("slug", "official", "listed"),
    [
        # The list row is often the cheapest third-party endpoint, the detail the official.
        ("xai-grok-3", ("5", "25"), ("3", "15")),
        ("xai-grok-3-mini", ("0.6", "4"), ("0.25", "1.27")),
        ("openai-gpt-5", ("1.25", "10"), ("0.625", "5")),
        ("openai-gpt-4.1-mini", ("0.4", "1.6"), ("0.2", "0.8")),
        ("google-gemini-2.5-pro", ("1.25", "10"), ("1", "20")),
        # The README quotes a 0.125/1 list price; this recording lists the official 0.25/2.
        ("openai-gpt-5-mini", ("0.25", "2"), ("0.25", "2")),
    ],
)
def test_official_price_beats_list_price(
    slug: str, official: tuple[str, str], listed: tuple[str, str]
) -> None:
    with_detail = normalize_model(_row(slug), DETAILS[slug])
    assert with_detail.price_basis is PriceBasis.OFFICIAL
    assert (with_detail.input_usd_per_million, with_detail.output_usd_per_million) == (
        Decimal(official[0]),
        Decimal(official[1]),
    )
    row_only = normalize_model(_row(slug), None)
    assert row_only.price_basis is PriceBasis.LIST
    assert (row_only.input_usd_per_million, row_only.output_usd_per_million) == (
        Decimal(listed[0]),
        Decimal(listed[1]),
    )


@pytest.mark.parametrize("row", ROWS, ids=lambda r: r["slug"])
def test_every_row_takes_official_then_list_price(row: dict[str, Any]) -> None:
    detail = DETAILS[row["slug"]]
    price = normalize_model(row, detail)
    official = (_dec(detail["pricing"]["input_per_1m"]), _dec(detail["pricing"]["output_per_1m"]))
    listed = (_dec(row["input_per_1m"]), _dec(row["output_per_1m"]))
    got = (price.input_usd_per_million, price.output_usd_per_million)
    if None not in official:
        assert price.price_basis is PriceBasis.OFFICIAL
        assert got == official
        assert price.pricing_source == detail["pricing_source"]
    else:
        assert price.price_basis is PriceBasis.LIST
        assert got == listed
        assert price.pricing_source is None
    assert price.cache_read_usd_per_million == _dec(detail["pricing"]["cache_read_per_1m"])
    assert price.cache_write_usd_per_million == _dec(detail["pricing"]["cache_write_per_1m"])


def test_null_prices_stay_unknown_with_details() -> None:
    both_null = [
        r["slug"]
        for r in ROWS
        if r["input_per_1m"] is None
        and DETAILS[r["slug"]]["pricing"]["input_per_1m"] is None
        and DETAILS[r["slug"]]["pricing"]["output_per_1m"] is None
    ]
    assert both_null, "the recording has rows with no price anywhere"
    assert LISTING.unknown_count == len(both_null)
    unknown = sorted(p.slug or "" for p in LISTING.prices if p.price_status is PriceStatus.UNKNOWN)
    assert unknown == sorted(both_null)
    assert all(
        p.input_usd_per_million is None and p.output_usd_per_million is None
        for p in LISTING.prices
        if p.slug in both_null
    )


def test_null_list_prices_stay_unknown_without_details() -> None:
    null_rows = sum(1 for r in ROWS if r["input_per_1m"] is None or r["output_per_1m"] is None)
    assert null_rows > len(ROWS) // 10  # README: about a fifth of the rows
    listing = normalize_listing(ROWS, {})
    assert listing.unknown_count == null_rows
    assert listing.priced_count == len(ROWS) - null_rows
    assert {p.price_basis for p in listing.prices} == {PriceBasis.LIST}
    seed = normalize_listing(ROWS, {}, basis_without_detail=PriceBasis.SEED)
    assert {p.price_basis for p in seed.prices} == {PriceBasis.SEED}


def test_every_normalized_price_is_the_exact_decimal_of_its_json() -> None:
    for price in LISTING.prices:
        raw = LISTING.raw_by_model_id[price.model_id]
        source = (
            raw["detail"]["pricing"] if price.price_basis is PriceBasis.OFFICIAL else raw["row"]
        )
        assert price.input_usd_per_million == _dec(source["input_per_1m"])
        assert price.output_usd_per_million == _dec(source["output_per_1m"])
        for value in (price.input_usd_per_million, price.output_usd_per_million):
            if value is not None:
                assert value == Decimal(repr(float(value)))  # no float artefacts


def test_zero_is_free_not_unknown() -> None:
    row = {**_row("openai-gpt-4o"), "input_per_1m": 0, "output_per_1m": 0.0}
    price = normalize_model(row, None)
    assert price.input_usd_per_million == Decimal(0)
    assert price.output_usd_per_million == Decimal(0)
    assert price.price_status is PriceStatus.FREE


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, None),
        (0, Decimal(0)),
        (0.0, Decimal(0)),
        (0.1, Decimal("0.1")),
        (0.00012, Decimal("0.00012")),
        (1e-05, Decimal("0.00001")),
        (3, Decimal(3)),
        (18.8, Decimal("18.8")),
        (Decimal("0.125"), Decimal("0.125")),
    ],
)
def test_price_from_json(value: object, expected: Decimal | None) -> None:
    got = price_from_json(value)
    assert got == expected
    assert got is None or isinstance(got, Decimal)


@pytest.mark.parametrize(
    "value",
    [True, False, "0.5", "", -1, -0.01, math.nan, math.inf, [], {}, Decimal("NaN"), Decimal(-2)],
    ids=repr,
)
def test_price_from_json_rejects_schema_breaks(value: object) -> None:
    with pytest.raises(UpstreamRejected):
        price_from_json(value, field="x.input_per_1m")


@pytest.mark.parametrize(
    ("row", "detail"),
    [
        ("not a row", None),
        (["openai-gpt-4o"], None),
        ({"author_name": "OpenAI", "input_per_1m": 1}, None),
        ({"slug": 42, "input_per_1m": 1}, None),
        ({"slug": "  ", "input_per_1m": 1}, None),
        ({"slug": "openai-gpt-4o", "input_per_1m": "2.5", "output_per_1m": 10}, None),
        ({"slug": "openai-gpt-4o", "input_per_1m": 2.5, "output_per_1m": True}, None),
        ({"slug": "openai-gpt-4o"}, {"pricing": [2.5, 10]}),
        ({"slug": "openai-gpt-4o"}, {"pricing": {"input_per_1m": "2.5"}}),
        ({"slug": "openai-gpt-4o"}, {"pricing": {"cache_read_per_1m": -1}}),
        ({"slug": "openai-gpt-4o"}, "not a detail"),
    ],
)
def test_broken_schema_is_rejected(row: Any, detail: Any) -> None:
    with pytest.raises(UpstreamRejected):
        normalize_model(row, detail)
    details = {"openai-gpt-4o": detail} if detail is not None else {}
    with pytest.raises(UpstreamRejected):
        normalize_listing([*ROWS[:3], row], details)


def test_error_payload_counts_as_missing_detail() -> None:
    row = _row("openai-gpt-5-mini")
    price = normalize_model(row, {"error": "No model found with slug openai-gpt-5-mini"})
    assert price == normalize_model(row, None)


# --- ids and providers ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("author", "expected"),
    [
        ("xai", "xai"),
        ("x-ai", "xai"),
        ("X Ai", "xai"),
        ("Xai", "xai"),
        ("mistral-ai", "mistral-ai"),
        ("mistralai", "mistral-ai"),
        ("Mistral AI", "mistral-ai"),
        ("ai21", "ai21"),
        ("ai21-labs", "ai21"),
        ("Ai21 Labs", "ai21"),
        ("liquid", "liquid"),
        ("liquidai", "liquid"),
        ("Cognitive Computations", "cognitivecomputations"),
        ("OpenAI", "openai"),
        ("meta-llama", "meta-llama"),
        ("", UNKNOWN_PROVIDER),
        ("   ", UNKNOWN_PROVIDER),
        (None, UNKNOWN_PROVIDER),
    ],
)
def test_canonical_provider(author: str | None, expected: str) -> None:
    assert canonical_provider(author) == expected


def test_author_slug_and_author_name_give_one_provider() -> None:
    for entry in PROVIDERS:
        assert canonical_provider(entry["author"]) == canonical_provider(entry["author_name"])
    canonical = {canonical_provider(p["author"]) for p in PROVIDERS}
    assert len(canonical) == len(PROVIDERS) - 3  # x-ai, ai21-labs, liquidai fold in


@pytest.mark.parametrize("row", ROWS, ids=lambda r: r["slug"])
def test_bare_id_from_slug_matches_get_model(row: dict[str, Any]) -> None:
    detail = DETAILS[row["slug"]]
    with_detail = normalize_model(row, detail)
    assert with_detail.model_id == detail["model"].lower()
    assert with_detail.slug == row["slug"]
    row_only = normalize_model(row, None)
    if detail["author"]:
        assert row_only.model_id == detail["model"]
        assert bare_model_id(row["slug"], detail["author"]) == detail["model"]
        assert row_only.provider == with_detail.provider == canonical_provider(detail["author"])
    else:
        # Nothing says where the author ends in the slug: keep the whole slug.
        assert row_only.model_id == row["slug"]
        assert row_only.provider == UNKNOWN_PROVIDER
        assert with_detail.provider != UNKNOWN_PROVIDER
        assert row["slug"] == f"{with_detail.provider}-{with_detail.model_id}"


@pytest.mark.parametrize(
    ("slug", "author", "expected"),
    [
        ("openai-gpt-4o", "openai", "gpt-4o"),
        ("x-ai-grok-4.20-beta", "X Ai", "grok-4.20-beta"),
        ("x-ai-grok-3", "xai", "grok-3"),
        ("mistral-ai-mistral-7b", "Mistral AI", "mistral-7b"),
        ("stepfun-step-3.5-flash", "stepfun-ai", "step-3.5-flash"),
        ("together-cwm", "fireworks", "cwm"),
        ("OpenAI-GPT-4o", "OpenAI", "gpt-4o"),
        ("some-model", None, "some-model"),
        ("openai-", "openai", "openai-"),
    ],
)
def test_bare_model_id(slug: str, author: str | None, expected: str) -> None:
    assert bare_model_id(slug, author) == expected


def test_capabilities_modalities_and_context_come_from_the_detail() -> None:
    for row in ROWS:
        detail = DETAILS[row["slug"]]
        price = normalize_model(row, detail)
        flags = detail["capabilities"]
        for key, name in [
            ("supports_vision", "vision"),
            ("supports_tool_calls", "tool_calls"),
            ("supports_web_search", "web_search"),
            ("is_open", "open"),
        ]:
            assert (name in price.capabilities) == (flags[key] is True)
        assert list(price.capabilities) == sorted(price.capabilities)
        assert set(price.input_modalities) == set(detail["modalities"]["input"])
        assert set(price.output_modalities) == set(detail["modalities"]["output"])
        assert price.context_window == detail["context_length"]
        assert price.display_name == row["model_name"]


def test_field_names_and_raw_sample() -> None:
    keys = {k for r in ROWS for k in r} | {k for d in DETAILS.values() for k in d}
    assert LISTING.field_names == tuple(sorted(keys))
    assert LISTING.rows_seen == len(ROWS)
    raw = LISTING.raw_by_model_id["gpt-5-mini"]
    assert raw["row"] == _row("openai-gpt-5-mini")
    assert raw["detail"] == DETAILS["openai-gpt-5-mini"]
    assert raw["detail"] is not DETAILS["openai-gpt-5-mini"]


# --- duplicates, order, idempotence --------------------------------------------------------


def test_recording_has_one_price_per_bare_id() -> None:
    assert len(LISTING.prices) == len({d["model"] for d in DETAILS.values()})
    ids = [p.model_id for p in LISTING.prices]
    assert ids == sorted(ids)


def _unpriced_twin(
    slug: str, author: str, author_name: str
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The README's duplicate: the same model under a second author spelling, without prices."""
    row = {**_row(slug), "input_per_1m": None, "output_per_1m": None, "author_name": author_name}
    bare = DETAILS[slug]["model"]
    row["slug"] = f"{author}-{bare}"
    detail = copy.deepcopy(DETAILS[slug])
    detail.update(row)
    detail["author"] = author
    detail["pricing"] = dict.fromkeys(detail["pricing"])
    return row, detail


@pytest.mark.parametrize(
    ("slug", "author", "author_name"),
    [
        ("xai-grok-3", "x-ai", "X Ai"),
        ("x-ai-grok-4.20-beta", "xai", "Xai"),
        ("ai21-jamba-1.5-large", "ai21-labs", "Ai21 Labs"),
    ],
)
@pytest.mark.parametrize("twin_first", [True, False])
def test_priced_duplicate_wins(slug: str, author: str, author_name: str, twin_first: bool) -> None:
    twin_row, twin_detail = _unpriced_twin(slug, author, author_name)
    rows = [twin_row, _row(slug)] if twin_first else [_row(slug), twin_row]
    listing = normalize_listing(rows, {slug: DETAILS[slug], twin_row["slug"]: twin_detail})
    assert listing.rows_seen == 2
    (merged,) = listing.prices
    assert merged == BY_SLUG[slug]
    assert listing.raw_by_model_id[merged.model_id]["row"]["slug"] == slug


@pytest.mark.parametrize("twin_first", [True, False])
def test_priced_duplicate_wins_without_details(twin_first: bool) -> None:
    # "x-ai-grok-3" sorts before "xai-grok-3": only the price decides here.
    twin_row, _ = _unpriced_twin("xai-grok-3", "x-ai", "X Ai")
    rows = [twin_row, _row("xai-grok-3")] if twin_first else [_row("xai-grok-3"), twin_row]
    (merged,) = normalize_listing(rows, {}).prices
    assert merged.slug == "xai-grok-3"
    assert merged.price_status is PriceStatus.PRICED


def test_official_duplicate_beats_list_duplicate() -> None:
    listed_twin = {**_row("xai-grok-3"), "slug": "x-ai-grok-3", "author_name": "X Ai"}
    for rows in ([listed_twin, _row("xai-grok-3")], [_row("xai-grok-3"), listed_twin]):
        (merged,) = normalize_listing(rows, {"xai-grok-3": DETAILS["xai-grok-3"]}).prices
        assert merged.price_basis is PriceBasis.OFFICIAL
        assert merged.slug == "xai-grok-3"


def test_duplicate_with_more_information_wins() -> None:
    bare = {**_row("xai-grok-3"), "context_length": None, "supports_vision": None}
    richer = {**bare, "slug": "x-ai-grok-3", "context_length": 131072}
    for rows in ([bare, richer], [richer, bare]):
        (merged,) = normalize_listing(rows, {}).prices
        assert merged.slug == "x-ai-grok-3"
        assert merged.context_window == 131072


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.data_too_large])
@given(
    order=st.permutations(range(len(ROWS))), repeats=st.lists(st.sampled_from(ROWS), max_size=20)
)
def test_normalization_is_order_free_and_idempotent(order: list[int], repeats: list[Any]) -> None:
    rows = [ROWS[i] for i in order] + repeats
    again = normalize_listing(rows, DETAILS)
    assert again.prices == LISTING.prices
    assert again.raw_by_model_id == LISTING.raw_by_model_id
    assert again.field_names == LISTING.field_names
    assert normalize_listing(rows, DETAILS) == again


_JSON_PRICE = st.one_of(
    st.none(),
    st.integers(min_value=0, max_value=10_000),
    st.floats(min_value=0, max_value=10_000, allow_nan=False, allow_infinity=False),
)


@settings(max_examples=200, deadline=None)
@given(
    row=st.sampled_from(ROWS),
    listed=st.tuples(_JSON_PRICE, _JSON_PRICE),
    official=st.tuples(_JSON_PRICE, _JSON_PRICE),
    with_detail=st.booleans(),
)
def test_null_never_becomes_zero(
    row: dict[str, Any],
    listed: tuple[Any, Any],
    official: tuple[Any, Any],
    with_detail: bool,
) -> None:
    row = {**row, "input_per_1m": listed[0], "output_per_1m": listed[1]}
    detail = copy.deepcopy(DETAILS[row["slug"]])
    detail["pricing"].update(input_per_1m=official[0], output_per_1m=official[1])
    price = normalize_model(row, detail if with_detail else None)
    chosen = official if price.price_basis is PriceBasis.OFFICIAL else listed
    got = (price.input_usd_per_million, price.output_usd_per_million)
    assert got == (_dec(chosen[0]), _dec(chosen[1]))
    if not with_detail:
        assert price.price_basis is PriceBasis.LIST
    elif None not in official:
        assert price.price_basis is PriceBasis.OFFICIAL
    assert (price.price_status is PriceStatus.UNKNOWN) == (None in chosen)


# --- id matching ---------------------------------------------------------------------------

COGNITIA_RESOLUTION = [
    ("gpt-5-codex", "openai-gpt-5-codex"),
    ("gpt-5.1-codex", "openai-gpt-5.1-codex"),
    ("gpt-4o", "openai-gpt-4o"),
    ("gpt-4.1", "openai-gpt-4.1"),
    ("o3", "openai-o3"),
    ("o1", "openai-o1"),
    ("gpt-5", "openai-gpt-5"),
    ("gpt-4o-mini", "openai-gpt-4o-mini"),
    ("gpt-5-mini", "openai-gpt-5-mini"),
    ("anthropic/claude-sonnet-4", "anthropic-claude-sonnet-4"),
    ("anthropic/claude-3.5-sonnet", "anthropic-claude-3.5-sonnet"),
    ("anthropic/claude-opus-4", "anthropic-claude-opus-4"),
    ("anthropic/claude-3-opus", "anthropic-claude-3-opus"),
    ("anthropic/claude-3.5-haiku", "anthropic-claude-3.5-haiku"),
    ("google/gemini-2.5-pro-preview", "google-gemini-2.5-pro-preview"),
    ("google/gemini-1.5-flash", "google-gemini-1.5-flash"),
    ("x-ai/grok-3", "xai-grok-3"),
    ("x-ai/grok-3-mini", "xai-grok-3-mini"),
]

# README: PricePerToken does not list OpenAI's audio, realtime, image, moderation (nor
# search-preview) models; they need catalog overrides.
COGNITIA_NOT_UPSTREAM = [
    "gpt-audio-mini",
    "gpt-realtime-mini",
    "gpt-image-1",
    "omni-moderation-latest",
    "gpt-4o-search-preview",
]


@pytest.mark.parametrize(("requested", "slug"), COGNITIA_RESOLUTION)
def test_cognitia_ids_resolve_to_their_official_price(requested: str, slug: str) -> None:
    price = INDEX.resolve(requested)
    assert price is not None
    assert price.slug == slug
    pricing = DETAILS[slug]["pricing"]
    assert price.price_basis is PriceBasis.OFFICIAL
    assert price.input_usd_per_million == _dec(pricing["input_per_1m"])
    assert price.output_usd_per_million == _dec(pricing["output_per_1m"])
    assert INDEX.resolve(requested.upper()) is price
    assert INDEX.resolve(f"  {requested} ") is price


@pytest.mark.parametrize(
    ("requested", "expected"),
    [("gpt-5-mini", ("0.25", "2")), ("x-ai/grok-3", ("5", "25")), ("grok-3", ("5", "25"))],
)
def test_resolution_takes_official_not_list(requested: str, expected: tuple[str, str]) -> None:
    price = INDEX.resolve(requested)
    assert price is not None
    assert (price.input_usd_per_million, price.output_usd_per_million) == (
        Decimal(expected[0]),
        Decimal(expected[1]),
    )


def test_every_selector_id_is_resolved_local_or_known_missing() -> None:
    ids = _selector_ids()
    api_ids = [i for i in ids if not is_local_id(i)]
    assert INDEX.unmatched(api_ids) == COGNITIA_NOT_UPSTREAM
    assert sorted(i for i in api_ids if i not in COGNITIA_NOT_UPSTREAM) == sorted(
        r for r, _ in COGNITIA_RESOLUTION
    )
    assert all(INDEX.resolve(i) is None for i in ids if is_local_id(i))


@pytest.mark.parametrize(
    "requested",
    [
        "gpt-4o-2024-05-13",
        "gpt-4o-2024-08-06",
        "claude-3-5-sonnet-20241022",
        "anthropic/claude-3.5-sonnet-20241022",
        "gpt-5-mini-2025-08-07",
        "grok-3-0217",
        "openai/gpt-4o-2024-05-13",
        "gpt-4o-",
        "gpt-5-min",
        "claude-3-5-sonnet",  # upstream spells it claude-3.5-sonnet: alias it, never guess
        "google/gpt-4o",  # a wrong provider is not a match
        "gpt",
        "",
        "/",
        "openai/",
    ],
)
def test_no_prefix_or_fuzzy_matching(requested: str) -> None:
    assert INDEX.resolve(requested) is None


def test_upstream_dated_ids_keep_their_own_price() -> None:
    dated = INDEX.resolve("claude-3.5-haiku-20241022")
    undated = INDEX.resolve("claude-3.5-haiku")
    assert dated is not None
    assert undated is not None
    assert dated.slug == "anthropic-claude-3.5-haiku-20241022"
    assert undated.slug == "anthropic-claude-3.5-haiku"
    for price in LISTING.prices:
        assert INDEX.resolve(f"{price.model_id}-2099-01-01") is None


@pytest.mark.parametrize(
    ("requested", "slug"),
    [
        ("openai-gpt-4o", "openai-gpt-4o"),
        ("OPENAI-GPT-4O", "openai-gpt-4o"),
        ("openai/gpt-4o", "openai-gpt-4o"),
        ("xai/grok-3", "xai-grok-3"),
        ("x-ai-grok-4.20-beta", "x-ai-grok-4.20-beta"),
        ("xai/grok-4.20-beta", "x-ai-grok-4.20-beta"),
        ("mistralai/mistral-large", "mistral-ai-mistral-large"),
        ("mistral-ai/mistral-large", "mistral-ai-mistral-large"),
        ("ai21-labs/jamba-1.5-large", "ai21-jamba-1.5-large"),
        ("thudm/glm-4.1v-9b-thinking", "thudm-glm-4.1v-9b-thinking"),
    ],
)
def test_slug_and_provider_forms(requested: str, slug: str) -> None:
    price = INDEX.resolve(requested)
    assert price is not None
    assert price.slug == slug


@pytest.mark.parametrize(
    ("alias_target", "slug"),
    [
        ("claude-3.5-sonnet", "anthropic-claude-3.5-sonnet"),
        ("anthropic-claude-3.5-sonnet", "anthropic-claude-3.5-sonnet"),
        ("Anthropic/Claude-3.5-Sonnet", "anthropic-claude-3.5-sonnet"),
    ],
)
def test_explicit_alias_may_map_a_dated_id(alias_target: str, slug: str) -> None:
    index = PriceIndex(LISTING.prices, {"Claude-3-5-Sonnet-20241022": alias_target})
    price = index.resolve("claude-3-5-sonnet-20241022")
    assert price is not None
    assert price.slug == slug
    assert INDEX.resolve("claude-3-5-sonnet-20241022") is None


def test_exact_match_beats_alias_and_dangling_alias_is_unmatched() -> None:
    index = PriceIndex(LISTING.prices, {"gpt-4o": "gpt-4o-mini", "gpt-image-1": "dall-e-9"})
    assert index.resolve("gpt-4o") == BY_SLUG["openai-gpt-4o"]
    assert index.resolve("gpt-image-1") is None
    assert index.unmatched(["gpt-image-1", "gpt-4o", "gpt-image-1", "nope"]) == [
        "gpt-image-1",
        "nope",
    ]


def test_later_price_overrides_earlier_one() -> None:
    upstream = BY_SLUG["openai-gpt-4o"]
    override = ModelPrice(
        model_id="gpt-4o",
        slug=None,
        provider="openai",
        display_name="GPT-4o",
        input_usd_per_million=Decimal(1),
        output_usd_per_million=Decimal(2),
        price_basis=PriceBasis.CATALOG,
    )
    index = PriceIndex([upstream, override])
    assert len(index) == 1
    assert index.resolve("gpt-4o") is override
    assert index.resolve("openai/gpt-4o") is override
