"""The long-context rule, once for every estimate (pure): the GET form, the POST form
(``usage.bill``) and the kit's price map all price a long prompt by these functions.

Google and Anthropic (and OpenAI for some models) bill the whole request at a higher rate once
its prompt passes a threshold: every token of a tiered kind, not only those past it. The tiers
are genai-prices' (``SecondSource.long_context_tiers``, stored with each price by the refresh;
PricePerToken states none). A tier applies only where the price served is the tier's own base
(the second source agrees with the upstream below the threshold); otherwise the long-context
price of that kind is unknown, never guessed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import msgspec

from pricing_service.currency import call_cost, cop_amount
from pricing_service.domain import PriceKind

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from decimal import Decimal

    from pricing_service.currency import Currency
    from pricing_service.domain import LongContextTier, ModelPrice

__all__ = [
    "LongContext",
    "TieredPrice",
    "crossed",
    "item_tiers",
    "long_context_info",
    "tier_list",
    "with_long_context",
]

# The kinds an item's tiers are stated for (Anthropic's 1-hour writes are 2x the input price
# whatever the prompt's length: a client derives them from the input tier).
_ITEM_KINDS = (PriceKind.INPUT, PriceKind.CACHE_READ, PriceKind.CACHE_WRITE, PriceKind.OUTPUT)


@dataclass(frozen=True, slots=True)
class TieredPrice:
    """A kind's price once the prompt crosses its tier: the tier's, or unknown and why."""

    usd_per_million: Decimal | None
    reason: str


def crossed(
    input_tokens: int,
    served: Mapping[str, Decimal | None],
    tiers: Sequence[LongContextTier],
) -> dict[str, TieredPrice]:
    """The price of every kind whose tier the prompt of ``input_tokens`` crosses (the highest
    crossed start wins), by kind; ``served``: the prices served below the threshold, by kind. A
    kind served as unknown stays unknown (left out)."""
    found: dict[str, LongContextTier] = {}
    for tier in sorted(tiers, key=lambda t: t.start):
        if input_tokens > tier.start:
            found[tier.kind] = tier
    prices: dict[str, TieredPrice] = {}
    for kind, tier in found.items():
        base = served.get(kind)
        if base is None:
            continue
        if base == tier.base_usd_per_million:
            prices[kind] = TieredPrice(
                tier.usd_per_million,
                f"long context: the prompt's {input_tokens} input tokens exceed "
                f"{tier.start}, so every {kind} token is billed at "
                f"{tier.usd_per_million} USD per million ({tier.source}; the upstream states "
                "no tiers)",
            )
        else:
            prices[kind] = TieredPrice(
                None,
                f"long-context {kind} price unknown: {tier.source} bills past "
                f"{tier.start} input tokens at {tier.usd_per_million} from a base of "
                f"{tier.base_usd_per_million}, but the price served is {base}",
            )
    return prices


class LongContext(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """The model's long-context tiers (from the second source, named): past threshold_tokens
    input tokens every token of a tiered kind is billed at the tier price."""

    threshold_tokens: int
    input_tokens: int
    applied: bool
    source: str


def long_context_info(input_tokens: int, tiers: Sequence[LongContextTier]) -> LongContext | None:
    """What an estimate says of the model's tiers (None: it has none)."""
    if not tiers:
        return None
    return LongContext(
        threshold_tokens=min(tier.start for tier in tiers),
        input_tokens=input_tokens,
        applied=any(input_tokens > tier.start for tier in tiers),
        source=tiers[0].source,
    )


def tier_list(
    served: Mapping[str, Decimal | None], tiers: Sequence[LongContextTier]
) -> list[dict[str, Any]]:
    """The tiers as a client applies them (the kit's budgets): kind, start and the price past
    it, null where the rule above makes it unknown (a kind served as unknown is left out)."""
    found = []
    for tier in sorted(tiers, key=lambda t: (t.start, t.kind)):
        price = crossed(tier.start + 1, served, [tier]).get(tier.kind)
        if price is not None:
            found.append(
                {"kind": tier.kind, "start": tier.start, "usd_per_million": price.usd_per_million}
            )
    return found


def item_tiers(price: ModelPrice) -> list[dict[str, Any]] | None:
    """The selector item's (and the price map's) ``long_context_tiers``: ``tier_list`` at the
    prices served; None when the model has none (the refresh stores them with the price)."""
    found = price.long_context_tiers
    if not found:
        return None
    served = {kind.value: price.figure(kind) for kind in _ITEM_KINDS}
    return tier_list(served, [t for t in found if t.kind in served]) or None


def with_long_context(
    body: dict[str, Any], tiers: Sequence[LongContextTier], rate: Decimal, currency: Currency
) -> dict[str, Any]:
    """The GET estimate's ``body`` with the model's tiers applied (``crossed``, the POST form's
    rule) and ``long_context`` said: past the threshold the whole call is billed at the tier
    prices, or its amounts are null when a tier price is unknown."""
    input_tokens: int = body["input_tokens"]
    found = dict(body)
    found["long_context"] = long_context_info(input_tokens, tiers)
    served = {
        "input": body["input_usd_per_million"],
        "output": body["output_usd_per_million"],
    }
    prices = crossed(input_tokens, served, tiers) if body["price_status"] == "priced" else {}
    if not prices:
        return found
    input_price = prices["input"].usd_per_million if "input" in prices else served["input"]
    output_price = prices["output"].usd_per_million if "output" in prices else served["output"]
    keys = ("input_usd", "output_usd", "total_usd", "input_cop", "output_cop", "total_cop")
    if input_price is None or output_price is None:
        found.update(dict.fromkeys((*keys, "total_cop_display")))
        found.update(input_usd_per_million=input_price, output_usd_per_million=output_price)
        found.update(input_cop_per_million=None, output_cop_per_million=None)
        return found
    cost = call_cost(input_tokens, body["output_tokens"], input_price, output_price, rate, currency)
    found.update({key: getattr(cost, key) for key in keys})
    found["total_cop_display"] = cost.total_cop_display
    found.update(input_usd_per_million=input_price, output_usd_per_million=output_price)
    found.update(
        input_cop_per_million=cop_amount(input_price, rate),
        output_cop_per_million=cop_amount(output_price, rate),
    )
    return found
