"""Per-call prices (web searches, request fees) in the selector item and the estimate (pure).

Providers publish them per 1,000 calls (Anthropic: 10 USD per 1,000 web searches; Perplexity's
Sonar: a fee per 1,000 requests), so they are carried that way: ``<kind>_usd_per_thousand`` and
``<kind>_cop_per_thousand`` (``domain.PriceKind.WEB_SEARCH``, ``REQUEST``). PricePerToken
states none; the figures are genai-prices' for the model's own provider
(``second_source.with_call_prices_and_tiers``), and ``call_prices_source`` names them.

Billing (``bill_calls``): a usage object that reports web searches (Anthropic's
``server_tool_use.web_search_requests``) is billed at the per-search price; a model with a
per-request fee is billed one request per usage object (one call). A count whose price is
unknown is a line with null amounts and a reason, and it makes the total null: never 0, never
left out.

No source we read states a per-image price (gpt-image-1 is billed by its image tokens, per
million: genai-prices and OpenAI's own list state token prices only), so an image model's label
says that instead of a "per message" figure derived from its token prices (``image_label``).
"""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING, Any, cast

from pricing_service.currency import calls_cost, cop_amount
from pricing_service.domain import PriceKind
from pricing_service.estimate_answer import CallEstimateLine, CallKind

if TYPE_CHECKING:
    from collections.abc import Mapping

    from pricing_service.domain import ModelPrice

__all__ = [
    "CALL_KINDS",
    "bill_calls",
    "call_item_fields",
    "empty_call_fields",
    "image_label",
]

CALL_KINDS = (PriceKind.WEB_SEARCH, PriceKind.REQUEST)

# What each kind's count is called in an estimate and what the price is of.
_WHAT = {
    PriceKind.WEB_SEARCH: ("web search", "web searches"),
    PriceKind.REQUEST: ("request", "requests"),
}


def empty_call_fields() -> dict[str, Any]:
    """The item's per-call fields when no price of any kind is known (all null)."""
    found: dict[str, Any] = {}
    for kind in CALL_KINDS:
        found[kind.field] = None
        found[f"{kind.value}_cop_per_thousand"] = None
    found["call_prices_source"] = None
    return found


def call_item_fields(price: ModelPrice, rate: Decimal) -> dict[str, Any]:
    """The item's per-call fields: USD and COP per 1,000 calls (null where unknown), and whose
    figures they are."""
    found = empty_call_fields()
    for kind in CALL_KINDS:
        usd = price.figure(kind)
        found[kind.field] = usd
        found[f"{kind.value}_cop_per_thousand"] = cop_amount(usd, rate) if usd is not None else None
    if any(price.figure(kind) is not None for kind in CALL_KINDS):
        found["call_prices_source"] = price.call_prices_source
    return found


def image_label(output_cop_per_10k_display: str) -> str:
    """An image model's label: no source states a per-image price, so none is shown."""
    return (
        "Sin precio por imagen en las fuentes: se cobra por tokens "
        f"(salida {output_cop_per_10k_display} por 10K)"
    )


def bill_calls(
    counts: Mapping[PriceKind, int],
    item: Mapping[str, Any],
    *,
    model_id: str,
    rate: Decimal,
) -> list[CallEstimateLine]:
    """The per-call lines of one call at the prices of the selector item ``item``.

    ``counts``: the calls the usage object reports by kind (web searches). A model with a
    per-request fee bills one request (the usage object is one call). A kind with no count and
    no price is not a line; a count with no known price is a line with null amounts and why.
    """
    status = item["price_status"]
    lines: list[CallEstimateLine] = []
    for kind in CALL_KINDS:
        usd = item.get(kind.field)
        count = counts.get(kind, 0)
        if kind is PriceKind.REQUEST and usd is not None:
            count = 1
        if count == 0:
            continue
        if status == "local":
            lines.append(_line(kind, count, Decimal(0), Decimal(0), Decimal(0), Decimal(0), None))
            continue
        if usd is None:
            lines.append(
                _line(
                    kind,
                    count,
                    None,
                    None,
                    None,
                    None,
                    f"no {_WHAT[kind][0]} price is known for {model_id}: the {count} "
                    f"{_WHAT[kind][1]} reported are not billed at 0, so the total is unknown",
                )
            )
            continue
        cost = calls_cost(count, usd, rate)
        note = f"{usd} USD per 1,000 {_WHAT[kind][1]} ({item.get('call_prices_source')})"
        lines.append(_line(kind, count, usd, cop_amount(usd, rate), cost.usd, cost.cop, note))
    return lines


def _line(
    kind: PriceKind,
    calls: int,
    usd_per_thousand: Decimal | None,
    cop_per_thousand: Decimal | None,
    usd: Decimal | None,
    cop: Decimal | None,
    note: str | None,
) -> CallEstimateLine:
    return CallEstimateLine(
        kind=cast("CallKind", kind.value),
        calls=calls,
        usd_per_thousand=usd_per_thousand,
        cop_per_thousand=cop_per_thousand,
        usd=usd,
        cop=cop,
        note=note,
    )
