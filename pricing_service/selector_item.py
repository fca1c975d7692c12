"""The selector's item: the one declaration of its fields, their order and their types.

`item_builder.py` builds every item as this struct (one constructor call: a new field goes here
and there), `curation.py` renders it with exactly these keys in this order (`ITEM_KEYS` is read
from here), and the OpenAPI document describes the items of GET /models with this struct
(`api/schemas.py`). Money is an exact Decimal written as a JSON number (`Amount`). Beside the
item, what every selector answer states: its currency and its snapshot.
"""

from __future__ import annotations

from decimal import Decimal

import msgspec

from pricing_service.domain import PriceBasis, PriceStatus, SpecialKind

# Money: an exact Decimal, written as a JSON number (replies.render) and documented as one
# (api/document.DecimalAsNumber).
Amount = Decimal


class _Item(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Keyword fields; converting a rendered item with an extra key fails (see the tests)."""


class LocalModelInfo(_Item):
    ollama_tag: str
    parameters: str
    vram_gb: Amount
    hardware_id: str
    hardware_name: str
    gpu: str | None
    hardware_usd_per_hour: Amount
    hardware_cop_per_hour: Amount


class LongContextTierInfo(_Item):
    """Past ``start`` input tokens every token of ``kind`` costs ``usd_per_million`` (null:
    unknown, the second source's base differs from the price served)."""

    kind: str  # input | cache_read | cache_write | output
    start: int
    usd_per_million: Amount | None


class SelectorItem(_Item):
    """One model; a price the upstream does not know is null (price_status unknown), never 0."""

    model_id: str
    provider: str | None
    display_name: str
    input_usd_per_million: Amount | None
    output_usd_per_million: Amount | None
    context_window: int | None
    updated_at: str
    source: str
    slug: str | None
    categories: list[str]
    special: SpecialKind | None
    local: bool
    price_status: PriceStatus
    price_basis: PriceBasis | None
    price_label: str
    cache_read_usd_per_million: Amount | None
    cache_write_usd_per_million: Amount | None
    capabilities: list[str]
    input_modalities: list[str]
    output_modalities: list[str]
    input_cop_per_million: Amount | None
    output_cop_per_million: Amount | None
    input_cop_per_10k: Amount | None
    output_cop_per_10k: Amount | None
    typical_message_cop: Amount | None
    input_cop_per_10k_display: str | None
    output_cop_per_10k_display: str | None
    typical_message_cop_display: str | None
    # The cache's prices in pesos (null where the USD price is unknown: never 0).
    cache_read_cop_per_million: Amount | None
    cache_write_cop_per_million: Amount | None
    cache_read_cop_per_10k: Amount | None
    cache_write_cop_per_10k: Amount | None
    local_model: LocalModelInfo | None
    listed: bool  # False for an upstream model it stopped listing (price kept for a grace)
    delisted_at: str | None
    held: bool  # a newer price is held for an operator; the one shown is the last accepted
    price_status_reason: str | None  # why: held, or delisted (null otherwise)
    aliases: list[str]  # every id that resolves to this item
    source_url: str | None  # provenance of a catalog (override) price
    price_note: str | None
    # Whose price it is: the upstream's pricing_source ("deepseek", "together"), "catalog" for an
    # override, "local"; and whether that is the model's own provider (else a host's price).
    pricing_source: str | None
    pricing_source_is_author: bool
    # What the upstream's get_model says besides the price (null where it says nothing).
    benchmarks: dict[str, float | None] | None  # the upstream's scores by name
    tokens_per_second: float | None
    time_to_first_token: float | None  # seconds
    description: str | None
    # Per-call prices, USD and COP per 1,000 calls (null: unknown, never 0), and whose figures
    # they are (genai-prices' for the model's own provider; PricePerToken states none).
    web_search_usd_per_thousand: Amount | None
    web_search_cop_per_thousand: Amount | None
    request_usd_per_thousand: Amount | None
    request_cop_per_thousand: Amount | None
    call_prices_source: str | None
    # Long-context tiers (genai-prices'; null: none known): past a start the whole request is
    # billed at the tier prices, as POST /estimate bills it.
    long_context_tiers: list[LongContextTierInfo] | None


# -- what every selector answer states beside its items --------------------------------------


class SelectorCurrency(_Item):
    """The USD -> COP rate every amount uses: source "default" (the built-in 4000),
    "PRICING_USD_TO_COP" (the operator's fixed rate) or "trm" (the day's TRM, with the dates it
    is valid for; null for a fixed rate)."""

    code: str
    rate: Decimal
    source: str
    valid_from: str | None  # ISO date
    valid_to: str | None
    rounding: str


class SelectorSnapshot(_Item):
    """The snapshot served; its age in seconds is the Age header (not in the body)."""

    id: int
    fetched_at: str
    stale: bool
    source: str
