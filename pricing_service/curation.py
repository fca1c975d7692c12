"""Catalog + prices -> selector views: which models are local, which are special, which show.

``SelectorDataset`` is one snapshot's selector, built once and then read per request. Its rooms:
``resolver.py`` (which model a selector id is, and its spellings), ``item_builder.py`` (each
model's ``SelectorItem``), ``selector_views.py`` (the curated and all views, assembled once);
this module renders the answers: views filtered by category and local, ``?ids=`` lookups, the
price map, the estimate, and the reads other modules make of a dataset.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pricing_service.currency import call_cost
from pricing_service.domain import PriceStatus, View
from pricing_service.errors import InvalidRequest
from pricing_service.item_builder import ItemBuilder, iso, item_dict
from pricing_service.resolver import KeyKind, Resolver, SpellingMatcher
from pricing_service.selector_item import SelectorItem
from pricing_service.selector_views import SPECIALS_CATEGORY, Views

if TYPE_CHECKING:
    from collections.abc import Sequence
    from datetime import date, datetime
    from decimal import Decimal

    from pricing_service.currency import Currency
    from pricing_service.domain import Catalog, LongContextTier, ModelPrice, SnapshotInfo

__all__ = [
    "ITEM_KEYS",
    "SPECIALS_CATEGORY",
    "VIEWS",
    "SelectorDataset",
    "SpellingMatcher",
]

# --- selector views ------------------------------------------------------------------------

VIEWS = tuple(view.value for view in View)

# Every item carries these keys, in this order (null when not applicable): the fields of the
# one declaration of the item, which the OpenAPI document uses too.
ITEM_KEYS: tuple[str, ...] = SelectorItem.__struct_fields__

# The price map's value per spelling (GET /prices): what a client needs to price any id.
PRICE_MAP_KEYS = (
    "input_usd_per_million",
    "output_usd_per_million",
    "input_cop_per_10k",
    "output_cop_per_10k",
    "cache_read_usd_per_million",
    "cache_write_usd_per_million",
    "cache_read_cop_per_10k",
    "cache_write_cop_per_10k",
    "price_status",
    "pricing_source",
    "pricing_source_is_author",
    "web_search_usd_per_thousand",
    "web_search_cop_per_thousand",
    "request_usd_per_thousand",
    "request_cop_per_thousand",
    "long_context_tiers",
)


def _require_aware(name: str, moment: datetime) -> None:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware (UTC), got {moment!r}")


class SelectorDataset:
    """Selector views over one snapshot: built once, then filtered per request.

    Resolution of a selector id (``resolver.Resolver``), first match wins: a local id
    (``cognitia_llm_*`` or an Ollama tag, or an id ``catalog/local.toml`` declares) is local and
    costs nothing; then the upstream price (bare id, slug, ``provider/model``, explicit alias);
    then a catalog price override; else unknown. An override only prices models the upstream
    does not list: when the upstream also lists the id, the upstream price wins and the
    override is ignored, so a stale catalog figure can never mask a live one.

    ``render`` and ``lookup`` return plain objects (dicts, lists, ``Decimal`` money, ISO-8601
    strings) built from shared prebuilt pieces: treat them as read-only.
    """

    def __init__(
        self,
        *,
        snapshot: SnapshotInfo,
        prices: Sequence[ModelPrice],
        catalog: Catalog,
        rate: Decimal,
        rate_source: str,
        currency: Currency,
        rate_valid_from: date | None = None,
        rate_valid_to: date | None = None,
        matcher: SpellingMatcher | None = None,
    ) -> None:
        _require_aware("snapshot.fetched_at", snapshot.fetched_at)
        self.snapshot = snapshot
        self.prices = tuple(prices)  # the snapshot's rows (the curation assistant ranks them)
        self._catalog = catalog
        self._rate = rate
        self._rate_source = rate_source
        self.currency = currency  # the local currency (one per deployment)
        self._rate_valid = (rate_valid_from, rate_valid_to)
        self._updated_at = iso(snapshot.fetched_at)
        self._resolver = Resolver(self.prices, catalog, matcher)
        self._builder = ItemBuilder(
            snapshot=snapshot,
            catalog=catalog,
            resolver=self._resolver,
            rate=rate,
            currency=currency,
            updated_at=self._updated_at,
        )
        self._views = Views.build(catalog, self.prices, self._resolver, self._builder)
        self.category_ids: frozenset[str] = frozenset(c.id for c in catalog.categories)

    # --- reading --------------------------------------------------------------------------

    def render(
        self,
        *,
        view: str = View.CURATED,
        category: str | None = None,
        local: bool | None = None,
        now: datetime,
        ttl_seconds: int,
    ) -> dict[str, Any]:
        """One selector view: ``curated`` (default) or ``all``, optionally filtered."""
        if view not in VIEWS:
            raise InvalidRequest(f"unknown view {view!r}; valid views: {', '.join(VIEWS)}")
        items, categories = self._views.of(View(view))
        if category is not None:
            chosen = next((c for c in categories if c["id"] == category), None)
            if chosen is None:
                valid = ", ".join(c["id"] for c in categories)
                if category in self.category_ids:
                    raise InvalidRequest(
                        f"category {category!r} is only shown with view=all; "
                        f"valid categories for view={view}: {valid}"
                    )
                raise InvalidRequest(f"unknown category {category!r}; valid categories: {valid}")
            position = {mid: i for i, mid in enumerate(chosen["model_ids"])}
            items = sorted(
                (i for i in items if category in i["categories"]),
                key=lambda i: (position.get(i["model_id"], len(position)), i["model_id"]),
            )
            categories = [chosen]
        if local is not None:
            items = [i for i in items if i["local"] is local]
        return self._body(
            [dict(i) for i in items],
            view=view,
            category=category,
            local=local,
            categories=categories,
            now=now,
            ttl_seconds=ttl_seconds,
        )

    def lookup(self, ids: Sequence[str], *, now: datetime, ttl_seconds: int) -> dict[str, Any]:
        """The item of each requested id, in request order, named as requested; never drops one."""
        items = []
        for requested in dict.fromkeys(ids):
            key, price = self._resolver.resolve(requested)
            known = self._views.all_by_key.get(key)
            if known is not None:
                item = {**known, "model_id": requested}
            else:
                # Local ids the catalog does not declare, and ids nothing knows.
                built = self._builder.build(key, requested, price)
                categories = [SPECIALS_CATEGORY] if built.special is not None else []
                item = item_dict(built, categories)
            items.append(item)
        return self._body(
            items,
            view="ids",
            category=None,
            local=None,
            categories=self._views.all_categories,
            now=now,
            ttl_seconds=ttl_seconds,
        )

    def _body(
        self,
        items: list[dict[str, Any]],
        *,
        view: str,
        category: str | None,
        local: bool | None,
        categories: list[dict[str, Any]],
        now: datetime,
        ttl_seconds: int,
    ) -> dict[str, Any]:
        return {
            "items": items,
            "updated_at": self._updated_at,
            "view": view,
            "category": category,
            "local": local,
            "categories": [{**c, "model_ids": list(c["model_ids"])} for c in categories],
            "currency": self.currency_json(),
            "snapshot": self.snapshot_json(now=now, ttl_seconds=ttl_seconds),
        }

    # The body holds no age: it would change the bytes (and the ETag) every second. The age
    # goes in the Age header; ``stale`` flips once, at the TTL, and that is a change of data.

    def is_stale(self, *, now: datetime, ttl_seconds: int) -> bool:
        _require_aware("now", now)
        return (now - self.snapshot.fetched_at).total_seconds() > ttl_seconds

    def snapshot_json(self, *, now: datetime, ttl_seconds: int) -> dict[str, Any]:
        return {
            "id": self.snapshot.id,
            "fetched_at": self._updated_at,
            "stale": self.is_stale(now=now, ttl_seconds=ttl_seconds),
            "source": self.snapshot.source,
        }

    def currency_json(self) -> dict[str, Any]:
        return self.currency_for(self.currency, self._rate, self._rate_source, *self._rate_valid)

    @property
    def cache_id(self) -> tuple[int, Decimal, str, date | None]:
        """What the rendered bytes depend on besides the view: the snapshot and the rate."""
        return (self.snapshot.id, self._rate, self._rate_source, self._rate_valid[0])

    @staticmethod
    def currency_for(
        currency: Currency,
        rate: Decimal,
        source: str,
        valid_from: date | None = None,
        valid_to: date | None = None,
    ) -> dict[str, Any]:
        """The ``currency`` of every answer: its code, the rate, its source, the dates it is
        valid for (null for a fixed rate) and the rounding rule."""
        return {
            "code": currency.code,
            "rate": rate,
            "source": source,
            "valid_from": valid_from.isoformat() if valid_from is not None else None,
            "valid_to": valid_to.isoformat() if valid_to is not None else None,
            "rounding": currency.rounding_rule,
        }

    @property
    def rate(self) -> Decimal:
        return self._rate

    def price_map(self, *, now: datetime, ttl_seconds: int) -> dict[str, Any]:
        """Every spelling of every model of view=all -> its price, sorted by spelling.

        Unknown prices are listed too (null, ``price_status: unknown``): a client can tell "we
        know this model and not its price" from "we have never heard of it" (absent).
        """
        prices: dict[str, dict[str, Any]] = {}
        for item in self._views.all_items:
            value = {k: item[k] for k in PRICE_MAP_KEYS}
            value["label"] = item["price_label"]
            for spelling in item["aliases"]:
                prices.setdefault(spelling, value)
        return {
            "prices": dict(sorted(prices.items())),
            "currency": self.currency_json(),
            "snapshot": self.snapshot_json(now=now, ttl_seconds=ttl_seconds),
        }

    def stored_model_id(self, requested: str) -> str | None:
        """The id the snapshot stores the model ``requested`` resolves to (its history is under
        it), or None for a local, catalog-priced or unknown id."""
        key, price = self._resolver.resolve(requested)
        return price.model_id if key.kind is KeyKind.UPSTREAM and price is not None else None

    def long_context_tiers(self, requested: str) -> tuple[LongContextTier, ...]:
        """The long-context tiers stored with the model ``requested`` resolves to (none: ())."""
        _, price = self._resolver.resolve(requested)
        return price.long_context_tiers if price is not None else ()

    def is_unresolved(self, model_id: str) -> bool:
        """Whether nothing (upstream, override, local, alias) resolves ``model_id``."""
        return self._resolver.kind(model_id) is KeyKind.UNKNOWN

    def estimate(
        self,
        model_id: str,
        *,
        input_tokens: int,
        output_tokens: int,
        now: datetime,
        ttl_seconds: int,
    ) -> dict[str, Any]:
        """The cost of one call; an unknown price gives null amounts, never 0."""
        item = self.lookup([model_id], now=now, ttl_seconds=ttl_seconds)["items"][0]
        input_price = item["input_usd_per_million"]
        output_price = item["output_usd_per_million"]
        cost: dict[str, Any] = dict.fromkeys(
            (
                "input_usd",
                "output_usd",
                "total_usd",
                "input_cop",
                "output_cop",
                "total_cop",
                "total_cop_display",
            )
        )
        if input_price is not None and output_price is not None:
            computed = call_cost(
                input_tokens, output_tokens, input_price, output_price, self._rate, self.currency
            )
            cost = {
                "input_usd": computed.input_usd,
                "output_usd": computed.output_usd,
                "total_usd": computed.total_usd,
                "input_cop": computed.input_cop,
                "output_cop": computed.output_cop,
                "total_cop": computed.total_cop,
                "total_cop_display": computed.total_cop_display,
            }
        return {
            "model_id": model_id,
            "display_name": item["display_name"],
            "provider": item["provider"],
            "input_tokens": input_tokens,
            "output_tokens": output_tokens,
            "price_status": item["price_status"],
            "price_basis": item["price_basis"],
            "input_usd_per_million": input_price,
            "output_usd_per_million": output_price,
            "input_cop_per_million": item["input_cop_per_million"],
            "output_cop_per_million": item["output_cop_per_million"],
            **cost,
            "price_note": item["price_note"],
            "pricing_source": item["pricing_source"],
            "pricing_source_is_author": item["pricing_source_is_author"],
            "updated_at": item["updated_at"],
            "source": item["source"],
            "source_url": item["source_url"],
            "currency": self.currency_json(),
            "snapshot": self.snapshot_json(now=now, ttl_seconds=ttl_seconds),
        }

    def status_of(self, model_id: str) -> str:
        """``priced`` | ``free`` | ``local`` | ``unknown`` | ``not_in_catalog``.

        ``unknown``: a model we list (upstream, override or curated) without a price;
        ``not_in_catalog``: an id nothing resolves to.
        """
        key, _ = self._resolver.resolve(model_id)
        item = self._views.all_by_key.get(key)
        if item is not None:
            return str(item["price_status"])
        if key.kind is KeyKind.LOCAL:
            return PriceStatus.LOCAL.value
        return "not_in_catalog"

    def unmatched_catalog_ids(self) -> list[str]:
        """Catalog-referenced non-local ids with no upstream model and no override."""
        return [
            mid
            for mid in self._catalog.referenced_ids()
            if self._resolver.kind(mid) is KeyKind.UNKNOWN
        ]

    def price_status_counts(self) -> dict[str, int]:
        """Items of view=all per price status (every status present)."""
        counts = dict.fromkeys((s.value for s in PriceStatus), 0)
        for item in self._views.all_items:
            counts[item["price_status"]] += 1
        return counts

    def category_counts(self) -> dict[str, int]:
        """Curated items per category of the curated view."""
        return {c["id"]: len(c["model_ids"]) for c in self._views.curated_categories}

    def curated_in(self, model_id: str) -> list[str]:
        """The categories whose curated list resolves to the upstream model ``model_id``."""
        key, _ = self._resolver.resolve(model_id)
        return [
            category.id
            for category in self._catalog.categories
            if any(self._resolver.resolve(mid)[0] == key for mid in category.model_ids)
        ]
