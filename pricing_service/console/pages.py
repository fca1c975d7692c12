"""The data of each console page, read through the service (the selector's own dataset)."""

from __future__ import annotations

import difflib
import json
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

import anyio.to_thread

from pricing_service.curation import SPECIALS_CATEGORY, VIEWS, SelectorDataset
from pricing_service.domain import ChangeKind, View, utcnow
from pricing_service.errors import InvalidRequest
from pricing_service.space import local_space
from pricing_service.suggest import MAX_SUGGESTED as MAX_RANKED
from pricing_service.suggest import Suggestion, suggest

from . import format as fmt
from .format import history_chart

if TYPE_CHECKING:
    from pricing_service.domain import Category
    from pricing_service.service import PricingService

LAST_RUNS = 8
LAST_ACCEPTED = 10  # accepted held prices on Estado: who accepted which figure
RUNS_PAGE = 50
CHANGES_PAGE = 200
MODEL_CHANGES = 50
MAX_SUGGESTED = 30  # unknown ids that get a close-match suggestion (difflib per id)
ALL_TAB = "todos"
KIND_NAMES = {"changed": "cambió", "added": "nuevo", "removed": "retirado"}


@dataclass(frozen=True, slots=True)
class ShownWarning:
    """One of /ready's degraded lines as Estado shows it: Spanish, the English detail aside."""

    code: str
    spanish: str
    detail: str | None  # the gate's or the upstream's own sentence, when there is one


async def estado(pricing: PricingService) -> dict[str, Any]:
    ready, degraded = await pricing.readiness_details()
    warnings = []
    for d in degraded:
        facts = dict(d.facts)
        if "categories" in facts:  # as the selector's tabs name them
            named = [(pricing.catalog.category(i), i) for i in facts["categories"]]
            facts["categories"] = [c.name if c else i for c, i in named]
        detail = facts.get("detail") or facts.get("error")
        warnings.append(ShownWarning(d.code, fmt.warning(d.code, facts), detail))
    runs, held_runs, held_prices, accepted = await pricing.reports.state(LAST_RUNS, LAST_ACCEPTED)
    names: dict[str, str] = {}
    try:
        dataset, _ = await pricing.dataset()
    except Exception:  # readiness already says why; the page still shows runs
        dataset = None
    if dataset is not None:
        for held in [*held_prices, *accepted]:
            item = _item(dataset, held.model_id, pricing)
            names[held.model_id] = item["display_name"] if item else held.model_id
    return {
        "ready": ready,
        "warnings": warnings,
        "runs": runs,
        "held_runs": held_runs,
        "held_prices": held_prices,
        "accepted": accepted,
        "names": names,
        "ttl_seconds": pricing.ttl_seconds,
    }


def _item(dataset: SelectorDataset, model_id: str, pricing: PricingService) -> dict[str, Any]:
    body = dataset.lookup([model_id], now=utcnow(), ttl_seconds=pricing.ttl_seconds)
    return dict(body["items"][0])


def _matches(item: dict[str, Any], needle: str) -> bool:
    haystack = [item["model_id"], item["display_name"], item["provider"] or "", *item["aliases"]]
    return any(needle in text.lower() for text in haystack)


async def selector(
    pricing: PricingService, *, view: str, category: str | None, query: str | None
) -> dict[str, Any]:
    """The selector as Cognitia's users see it: one category tab at a time, or a search."""
    if view not in VIEWS:
        raise InvalidRequest("vista debe ser curated o all")
    dataset, _ = await pricing.dataset()
    now = utcnow()
    body = dataset.render(view=view, now=now, ttl_seconds=pricing.ttl_seconds)
    items: list[dict[str, Any]] = body["items"]
    categories: list[dict[str, Any]] = body["categories"]
    by_id = {i["model_id"]: i for i in items}
    tab_ids = [c["id"] for c in categories] + ([ALL_TAB] if view == View.ALL else [])
    needle = (query or "").strip().lower()
    if needle:
        shown = [i for i in items if _matches(i, needle)]
        chosen = None
    else:
        chosen = category if category in tab_ids else tab_ids[0] if tab_ids else None
        if chosen == ALL_TAB:
            shown = items
        else:
            current = next((c for c in categories if c["id"] == chosen), None)
            shown = [by_id[m] for m in current["model_ids"] if m in by_id] if current else []
    return {
        "view": view,
        "categories": categories,
        "category": chosen,
        "all_tab": ALL_TAB,
        "specials_id": SPECIALS_CATEGORY,
        "query": query or "",
        "items": shown,
        "total": len(items),
        "snapshot": body["snapshot"],
        "currency": body["currency"],
        "weighted": [c.id for c in pricing.catalog.categories if c.weights],
    }


async def modelo(pricing: PricingService, model_id: str) -> dict[str, Any]:
    """One model: its spellings, current price, history (as a chart) and change events."""
    dataset, _ = await pricing.dataset()
    now = utcnow()
    item = _item(dataset, model_id, pricing)
    resolved = not dataset.is_unresolved(model_id)
    # History is kept under the upstream's bare id: try each bare spelling, the item's first.
    candidates = [s for s in dict.fromkeys([item["model_id"], *item["aliases"]]) if "/" not in s]
    history_id, history, changes = (
        await pricing.reports.model_history(candidates, MODEL_CHANGES)
        if resolved
        else (None, [], [])
    )
    held = None
    if item["held"]:
        open_held = await pricing.reports.open_held_prices()
        held = next((h for h in open_held if h.model_id in candidates), None)
    return {
        "status_reason": fmt.price_status_reason(item, held),
        "requested": model_id,
        "resolved": resolved,
        "item": item,
        "history_id": history_id,
        "history": history,
        "chart": history_chart(history, now),
        "changes": changes,
        "kind_names": KIND_NAMES,
        "money": pricing.currency,
    }


async def cambios(
    pricing: PricingService, *, kind: str | None, model_id: str | None, since: datetime | None
) -> dict[str, Any]:
    changes = await pricing.changes(since, CHANGES_PAGE, model_id=model_id or None, kind=kind)
    return {
        "changes": changes,
        "kind": kind or "",
        "model_id": model_id or "",
        "kinds": [(k.value, KIND_NAMES[k.value]) for k in ChangeKind],
        "kind_names": KIND_NAMES,
        "limit": CHANGES_PAGE,
    }


async def ejecuciones(pricing: PricingService) -> dict[str, Any]:
    runs = await pricing.runs(RUNS_PAGE)
    pending = {r.id for r in await pricing.reports.pending_held_runs()}
    return {"runs": runs, "pending": pending, "limit": RUNS_PAGE}


@dataclass(frozen=True, slots=True)
class UnknownId:
    model_id: str
    count: int
    suggestion: str | None
    alias_line: str


def alias_line(model_id: str, target: str | None) -> str:
    """The line to add under ``[aliases]`` in catalog/aliases.toml (TOML basic strings)."""
    key = json.dumps(model_id, ensure_ascii=False)
    value = json.dumps(target or "ID-DEL-UPSTREAM", ensure_ascii=False)
    return f"{key} = {value}  # comprobar el precio en pricepertoken.com"


async def desconocidos(pricing: PricingService) -> dict[str, Any]:
    asked = pricing.unknown_ids.snapshot()  # on the event loop, which updates the counts
    dataset, _ = await pricing.dataset()
    body = dataset.render(view=View.ALL, now=utcnow(), ttl_seconds=pricing.ttl_seconds)
    known = sorted({i["model_id"].lower() for i in body["items"] if i["price_status"] != "unknown"})

    def build() -> list[UnknownId]:
        rows = []
        for position, (model_id, count) in enumerate(asked.items()):
            suggestion = None
            if position < MAX_SUGGESTED and model_id != "(other)":
                bare = model_id.lower().rsplit("/", 1)[-1]
                close = difflib.get_close_matches(bare, known, n=1, cutoff=0.75)
                suggestion = close[0] if close else None
            rows.append(UnknownId(model_id, count, suggestion, alias_line(model_id, suggestion)))
        return rows

    return {"rows": await anyio.to_thread.run_sync(build), "other": "(other)"}


@dataclass(frozen=True, slots=True)
class SuggestedCategory:
    category: Category
    result: Suggestion
    metrics: tuple[str, ...]  # the weighted metrics, in the catalog's order


async def sugerencias(pricing: PricingService, category: str | None) -> dict[str, Any]:
    """The curation assistant beside the curated lists (``pricing-service catalog suggest``)."""
    dataset, _ = await pricing.dataset()
    catalog = pricing.catalog
    weighted = [c for c in catalog.categories if c.weights]
    if category:
        weighted = [c for c in weighted if c.id == category]
        if not weighted:
            raise InvalidRequest(f"Ninguna categoría {category!r} con [weights].")

    def build() -> list[SuggestedCategory]:
        return [
            SuggestedCategory(
                c, suggest(c, dataset.prices, catalog), tuple(m for m, _ in c.weights)
            )
            for c in weighted
        ]

    rows = await anyio.to_thread.run_sync(build)
    names: dict[str, str] = {}
    for row in rows:
        for model_id in [*row.category.model_ids, *(r.model_id for r in row.result.ranked)]:
            if model_id not in names:
                names[model_id] = _item(dataset, model_id, pricing)["display_name"]
    return {
        "rows": rows,
        "names": names,
        "snapshot": dataset.snapshot,
        "max_suggested": MAX_RANKED,
    }


async def ollama(pricing: PricingService) -> dict[str, Any]:
    currency = SelectorDataset.currency_for(pricing.currency, pricing.rate, pricing.rate_source)
    space = local_space(
        pricing.catalog, rate=pricing.rate, currency=currency, money=pricing.currency
    )
    tiers = {t["id"]: t for t in space["tiers"]}
    return {"space": space, "tiers": tiers, "money": pricing.currency}
