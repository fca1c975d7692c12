"""The curation assistant: rank a snapshot's models for each category by its weights; pure.

Each weighted metric is scaled to 0..1 over the ranked models (min to max; the price and the
time to first token reversed, lower is better; a capability is 1 when the model has it); a model
lacking a figure gets 0 for that metric. Score = sum(weight x scaled) / sum(weights). Specials,
unpriced, delisted and local models are never suggested; a model with none of the weighted
benchmark or speed figures is not ranked at all (nothing says it fits).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from pricing_service.catalog import (
    BENCHMARK_METRICS,
    CAPABILITY_METRICS,
    MAX_MODELS_PER_CATEGORY,
    PRICE_METRIC,
)
from pricing_service.domain import PriceStatus
from pricing_service.model_kinds import is_local_id, special_kind
from pricing_service.normalize import PriceIndex

if TYPE_CHECKING:
    from collections.abc import Sequence

    from pricing_service.domain import Catalog, Category, ModelPrice

MAX_SUGGESTED = 9
_LOWER_IS_BETTER = frozenset({PRICE_METRIC, "time_to_first_token"})


@dataclass(frozen=True, slots=True)
class Ranked:
    model_id: str
    score: float  # 0..1
    figures: dict[str, float | None]  # the raw figure behind each weighted metric


@dataclass(frozen=True, slots=True)
class Suggestion:
    category: str
    ranked: tuple[Ranked, ...]  # up to MAX_SUGGESTED, best first
    kept: tuple[str, ...]  # curated ids the ranking also suggests
    add: tuple[str, ...]  # suggested model ids not curated
    drop: tuple[str, ...]  # curated (upstream) ids the ranking does not suggest
    unranked: tuple[str, ...]  # curated ids it cannot judge: local, override, unmatched


def _figure(price: ModelPrice, metric: str) -> float | None:
    if metric in BENCHMARK_METRICS:
        return dict(price.benchmarks).get(metric)
    if metric == "tokens_per_second":
        return price.tokens_per_second
    if metric == "time_to_first_token":
        return price.time_to_first_token
    if metric == PRICE_METRIC:
        assert price.input_usd_per_million is not None
        assert price.output_usd_per_million is not None
        return float(price.input_usd_per_million + price.output_usd_per_million)
    if metric in CAPABILITY_METRICS:
        return 1.0 if metric in price.capabilities else 0.0
    return None


def _eligible(price: ModelPrice, catalog: Catalog) -> bool:
    if price.price_status is PriceStatus.UNKNOWN or not price.listed:
        return False
    if is_local_id(price.model_id):
        return False
    kind = special_kind(
        price.model_id, explicit=catalog.specials, output_modalities=price.output_modalities
    )
    return kind is None


def rank(category: Category, prices: Sequence[ModelPrice], catalog: Catalog) -> list[Ranked]:
    """Every eligible model scored by ``category``'s weights, best first (ties by id)."""
    weights = dict(category.weights)
    if not weights:
        return []
    evidence = [m for m in weights if m != PRICE_METRIC and m not in CAPABILITY_METRICS]
    table: dict[str, dict[str, float | None]] = {}
    for price in prices:
        if not _eligible(price, catalog):
            continue
        figures = {metric: _figure(price, metric) for metric in weights}
        if evidence and all(figures[m] is None for m in evidence):
            continue
        table[price.model_id] = figures
    bounds: dict[str, tuple[float, float]] = {}
    for metric in weights:
        values = [v for f in table.values() if (v := f[metric]) is not None]
        if values:
            bounds[metric] = (min(values), max(values))
    total = float(sum(weights.values()))
    ranked = []
    for model_id, figures in table.items():
        score = 0.0
        for metric, weight in weights.items():
            value = figures[metric]
            if value is None or metric not in bounds:
                continue
            low, high = bounds[metric]
            scaled = 1.0 if high == low else (value - low) / (high - low)
            if metric in _LOWER_IS_BETTER:
                scaled = 1.0 - scaled
            score += float(weight) * scaled
        ranked.append(Ranked(model_id, round(score / total, 4), figures))
    ranked.sort(key=lambda r: (-r.score, r.model_id))
    return ranked


def suggest(category: Category, prices: Sequence[ModelPrice], catalog: Catalog) -> Suggestion:
    """The top models beside the curated list: kept, to add, to drop."""
    top = tuple(rank(category, prices, catalog)[:MAX_SUGGESTED])
    index = PriceIndex(prices, catalog.aliases)
    top_ids = {r.model_id for r in top}
    curated: dict[str, str] = {}  # resolved model id -> curated spelling
    unranked = []
    for model_id in category.model_ids:
        price = None if is_local_id(model_id) else index.resolve(model_id)
        if price is None or model_id in catalog.overrides:
            unranked.append(model_id)
        else:
            curated[price.model_id] = model_id
    return Suggestion(
        category=category.id,
        ranked=top,
        kept=tuple(spelling for mid, spelling in curated.items() if mid in top_ids),
        add=tuple(r.model_id for r in top if r.model_id not in curated),
        drop=tuple(spelling for mid, spelling in curated.items() if mid not in top_ids),
        unranked=tuple(unranked),
    )


def curated_after(category: Category, result: Suggestion) -> tuple[str, ...]:
    """The curated list ``--write`` stores: the suggestion applied, what it cannot judge kept.

    Curated ids in their order, less those suggested to drop (so local, override and unmatched
    ids stay: nothing says they should go), then the ids suggested to add in rank order, up to
    the catalog's limit per category. A category the ranking says nothing about is unchanged.
    """
    if not result.ranked:
        return category.model_ids
    dropped = set(result.drop)
    kept = [model_id for model_id in category.model_ids if model_id not in dropped]
    room = max(0, MAX_MODELS_PER_CATEGORY - len(kept))
    return (*kept, *result.add[:room])
