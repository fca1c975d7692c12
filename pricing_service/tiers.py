"""Long-context tiers for the estimate, from the second source (genai-prices' bundled data).

PricePerToken gives one price per kind; Google and Anthropic bill some models at a higher rate
for the whole request once its prompt passes a threshold (200K tokens). genai-prices states
those tiers (``TieredPrices``: base, then ``Tier(start, price)``, the price applying to every
token once the input exceeds ``start``). This module reads them for one model, by the model's
own provider only, as ``second_source.py`` matches prices; ``usage.bill`` applies them.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from pricing_service.domain import LongContextTier
from pricing_service.second_source import second_source

__all__ = ["long_context_tiers"]

# usage.Line -> genai-prices' price key
_KEYS = {
    "input": "input_mtok",
    "cache_read": "cache_read_mtok",
    "cache_write": "cache_write_mtok",
    "cache_write_1h": "cache_write_1h_mtok",
    "output": "output_mtok",
}


def long_context_tiers(
    provider: str | None, model_id: str, *, at: datetime | None = None
) -> tuple[LongContextTier, ...]:
    """Every tiered price genai-prices states for ``provider``'s ``model_id`` (none: ())."""
    if not provider:
        return ()
    source = second_source()
    provider_id = source.provider_id(provider)
    if provider_id is None:
        return ()
    bare = model_id.strip().lower().rpartition("/")[2]
    match = source.model(provider, bare)  # cached: every item of a dataset asks
    if match is None:
        return ()
    model = match[1]
    prices: Any = model.get_prices(at or datetime.now(UTC))
    found: list[LongContextTier] = []
    for kind, key in _KEYS.items():
        value = getattr(prices, key, None)
        base = getattr(value, "base", None)
        if not isinstance(base, Decimal):
            continue
        for tier in getattr(value, "tiers", ()):
            found.append(
                LongContextTier(
                    kind=kind,
                    start=int(tier.start),
                    usd_per_million=Decimal(tier.price),
                    base_usd_per_million=base,
                    source=f"{source.version} {provider_id}/{model.id}",
                )
            )
    return tuple(found)
