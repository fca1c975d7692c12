"""POST /api/v1/pricing/estimate's answer, declared once (pure): `usage.estimate_body` builds
it, the service renders it, the route returns it typed and the OpenAPI document derives its
schema from it (`api/feed_estimate.py`). Money is an exact Decimal, a JSON number.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Literal

import msgspec

from pricing_service.domain import PriceBasis, PriceStatus
from pricing_service.long_context import LongContext
from pricing_service.selector_item import SelectorCurrency, SelectorSnapshot


class _Body(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Keyword fields; converting an answer with an extra key fails."""


class UsageCounts(_Body):
    """A usage object read by its provider's rule (every input token in input_tokens, the
    cache a part of them; reasoning a part of output_tokens)."""

    input_tokens: int
    cache_read_tokens: int
    cache_write_tokens: int
    cache_write_1h_tokens: int
    output_tokens: int
    reasoning_tokens: int
    input_audio_tokens: int
    output_audio_tokens: int
    web_searches: int  # server-side web searches (Anthropic's server_tool_use)


class EstimateLine(_Body):
    """One price kind of an itemized estimate. Unknown price: null price, a note saying why, and
    null amounts when the line has tokens (0 when it has none)."""

    kind: Literal[
        "input",
        "cache_read",
        "cache_write",
        "cache_write_1h",
        "output",
        "input_audio",
        "output_audio",
    ]
    tokens: int
    usd_per_million: Decimal | None
    cop_per_million: Decimal | None
    usd: Decimal | None
    cop: Decimal | None
    note: str | None


CallKind = Literal["web_search", "request"]  # call_prices.CALL_KINDS


class CallEstimateLine(_Body):
    """One per-call kind of an itemized estimate (a web search, a request fee), priced per
    1,000 calls. Unknown price: null price and amounts, a note saying why, the total null."""

    kind: CallKind
    calls: int
    usd_per_thousand: Decimal | None
    cop_per_thousand: Decimal | None
    usd: Decimal | None
    cop: Decimal | None
    note: str | None


class MissingPrice(_Body, kw_only=True, omit_defaults=True):
    """A line with tokens (or calls) whose price is unknown, and why."""

    kind: str
    tokens: int | None = None
    calls: int | None = None
    reason: str


class UsageEstimate(_Body):
    """The body of POST /api/v1/pricing/estimate: a usage object billed kind by kind."""

    model_id: str
    display_name: str
    provider: str | None
    format: Literal["openai_chat", "openai_responses", "anthropic", "gemini"]
    format_detected: bool
    rule: str
    usage: UsageCounts
    price_status: PriceStatus
    price_status_reason: str | None
    price_basis: PriceBasis | None
    items: list[EstimateLine]
    calls: list[CallEstimateLine]  # per-call kinds the usage bills (empty: none)
    total_usd: Decimal | None
    total_cop: Decimal | None
    total_cop_display: str | None
    missing: list[MissingPrice]
    long_context: LongContext | None  # null: no tiers known for the model
    price_note: str | None
    pricing_source: str | None
    pricing_source_is_author: bool
    updated_at: str
    source: str
    source_url: str | None
    currency: SelectorCurrency
    snapshot: SelectorSnapshot
