"""Catalog + prices -> selector views: which models are local, which are special, which show."""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from datetime import UTC
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Protocol

from pricing_service.call_prices import call_item_fields, image_label
from pricing_service.currency import (
    MAX_PLACES,
    TYPICAL_INPUT_TOKENS,
    TYPICAL_OUTPUT_TOKENS,
    WHOLE_PESOS_FROM,
    CopPrice,
    call_cost,
    cop_price,
    per_million_and_10k,
    usd_to_cop,
)
from pricing_service.domain import (
    ModelPrice,
    PriceBasis,
    PriceKind,
    PriceStatus,
    SnapshotSource,
    SpecialKind,
    View,
)
from pricing_service.errors import InvalidRequest
from pricing_service.long_context import TierSource, item_tiers
from pricing_service.model_kinds import is_local_id, special_kind
from pricing_service.normalize import PriceIndex, canonical_provider, provider_spellings
from pricing_service.selector_item import SelectorItem
from pricing_service.sources import CATALOG_SOURCE, LOCAL_SOURCE, is_author_source, via_label

if TYPE_CHECKING:
    from collections.abc import Sequence
    from datetime import date, datetime

    from pricing_service.domain import (
        Catalog,
        Category,
        LocalModel,
        PriceOverride,
        SnapshotInfo,
    )

__all__ = [
    "ITEM_KEYS",
    "ROUNDING_RULE",
    "SPECIALS_CATEGORY",
    "VIEWS",
    "SelectorDataset",
    "SpellingMatcher",
]

# --- selector views ------------------------------------------------------------------------

VIEWS = tuple(view.value for view in View)
SPECIALS_CATEGORY = "specials"
LOCAL_PROVIDER = "ollama"
CURRENCY_CODE = "COP"

LABEL_LOCAL = "Local (sin costo API)"
LABEL_UNKNOWN = "Sin precio conocido"
LABEL_FREE = "Gratis"

ROUNDING_RULE = (
    f"exact USD x rate (per 10K = per million / 100; typical message = {TYPICAL_INPUT_TOKENS} "
    f"input + {TYPICAL_OUTPUT_TOKENS} output tokens); only amounts with more than {MAX_PLACES} "
    f"decimals are rounded half-even to {MAX_PLACES}, a positive amount never becomes 0; "
    f"*_display strings round half-even to whole pesos from {WHOLE_PESOS_FROM} COP, else to at "
    "most 2 decimals, '< 0,01 COP' below"
)

_ZERO = Decimal(0)
# Spellings the second source was asked about, kept per dataset (a client can send any id).
_MAX_MATCHED = 10_000


class SpellingMatcher(Protocol):
    """The second source's own rules for which model a spelling is (``second_source``)."""

    def match(self, requested: str) -> tuple[str, str] | None:
        """(canonical provider, the source's model id) of ``requested``, or None."""
        ...

    def model_ref(self, provider: str, model_id: str) -> str | None:
        """The source's id of the model ``model_id`` of ``provider`` is, or None."""
        ...


# Every item carries these keys, in this order (null when not applicable): the fields of the
# one declaration of the item, which the OpenAPI document uses too.
ITEM_KEYS: tuple[str, ...] = SelectorItem.__struct_fields__
# The peso amounts of a priced item: the fields of currency.CopPrice, by the same names.
_COP_KEYS = tuple(f.name for f in fields(CopPrice))
# What an entity holds: everything but the requested id and its categories (see _item).
_BASE_KEYS = tuple(key for key in ITEM_KEYS if key not in ("model_id", "categories"))

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


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _require_aware(name: str, moment: datetime) -> None:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware (UTC), got {moment!r}")


def _plain(amount: Decimal) -> Decimal:
    """The same amount without trailing fractional zeros (2400.00 -> 2400); never rounds."""
    if amount == 0:
        return _ZERO
    sign, digits, exponent = amount.as_tuple()
    if not isinstance(exponent, int) or exponent >= 0:
        return amount
    kept = list(digits)
    while exponent < 0 and kept and kept[-1] == 0:
        kept.pop()
        exponent += 1
    return Decimal((sign, tuple(kept), exponent))


def _cop_fields(input_usd: Decimal, output_usd: Decimal, rate: Decimal) -> dict[str, Any]:
    cop = cop_price(input_usd, output_usd, rate)
    return {key: getattr(cop, key) for key in _COP_KEYS}


def _cache_cop_fields(price: ModelPrice, rate: Decimal) -> dict[str, Decimal | None]:
    """The cache prices in pesos; an unknown cache price stays null."""
    found: dict[str, Decimal | None] = {}
    for kind in (PriceKind.CACHE_READ, PriceKind.CACHE_WRITE):
        usd = price.figure(kind)
        per_million, per_10k = per_million_and_10k(usd, rate) if usd is not None else (None, None)
        found[f"{kind.value}_cop_per_million"] = per_million
        found[f"{kind.value}_cop_per_10k"] = per_10k
    return found


def _message_label(display: str) -> str:
    # "< 0,01 COP" is already an approximation; "~< 0,01" would say it twice.
    prefix = "" if display.startswith("<") else "~"
    return f"{prefix}{display} por mensaje"


def _override_price(override: PriceOverride) -> ModelPrice:
    return ModelPrice(
        model_id=override.model_id,
        slug=None,
        provider=override.provider,
        display_name=override.display_name,
        input_usd_per_million=override.input_usd_per_million,
        output_usd_per_million=override.output_usd_per_million,
        price_basis=PriceBasis.CATALOG,
    )


@dataclass(slots=True)
class _Entity:
    """One thing an item shows: an upstream model, an override, a local id or an unknown id."""

    key: tuple[str, str]
    model_id: str  # the spelling items show: first curated spelling, else the canonical id
    base: dict[str, Any]  # every item key except model_id and categories
    special: SpecialKind | None


class SelectorDataset:
    """Selector views over one snapshot: built once, then filtered per request.

    Resolution of a selector id, first match wins: a local id (``cognitia_llm_*`` or an Ollama
    tag, or an id ``catalog/local.toml`` declares) is local and costs nothing; then the upstream
    price (bare id, slug, ``provider/model``, explicit alias); then a catalog price override;
    else unknown. An override only prices models the upstream does not list: when the upstream
    also lists the id, the upstream price wins and the override is ignored, so a stale catalog
    figure can never mask a live one.

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
        rate_valid_from: date | None = None,
        rate_valid_to: date | None = None,
        matcher: SpellingMatcher | None = None,
        tiers: TierSource | None = None,
    ) -> None:
        _require_aware("snapshot.fetched_at", snapshot.fetched_at)
        self._matcher = matcher
        self._tiers = tiers
        self._matched: dict[str, ModelPrice | None] = {}
        self._by_author: dict[str, list[ModelPrice]] | None = None
        self.snapshot = snapshot
        self._rate_valid = (rate_valid_from, rate_valid_to)
        self.prices = tuple(prices)  # the snapshot's rows (the curation assistant ranks them)
        self._catalog = catalog
        self._rate = rate
        self._rate_source = rate_source
        self._updated_at = _iso(snapshot.fetched_at)
        self._seed = snapshot.source == SnapshotSource.SEED
        self._zero_cop = _cop_fields(_ZERO, _ZERO, rate)  # also validates the rate

        self._upstream = PriceIndex(prices, catalog.aliases)
        self._upstream_ids = {p.model_id.strip().lower() for p in prices}
        kept_overrides = [
            o for o in catalog.overrides.values() if self._upstream.resolve(o.model_id) is None
        ]
        self._overrides = PriceIndex([_override_price(o) for o in kept_overrides], catalog.aliases)
        self._local_by_id: dict[str, LocalModel] = {
            mid.lower(): model for model in catalog.local_models for mid in model.ids
        }
        # Catalog aliases by the key they resolve to (an alias of nothing resolves to itself).
        self._aliases_by_key: dict[tuple[str, str], list[str]] = {}
        for alias in catalog.aliases:
            self._aliases_by_key.setdefault(self._resolve_key(alias)[0], []).append(alias)

        self._entities: dict[tuple[str, str], _Entity] = {}
        normal = [c for c in catalog.categories if c.id != SPECIALS_CATEGORY]
        specials_category = catalog.category(SPECIALS_CATEGORY)

        # Curated ids first, so their spelling is the one items show.
        # Ordered sets (dicts): the listing may hold tens of thousands of models.
        curated_keys = list(
            dict.fromkeys(
                self._entity_for(mid).key
                for category in catalog.categories
                for mid in category.model_ids
            )
        )
        curated_set = set(curated_keys)
        others = [
            *(self._entity_for(p.model_id) for p in prices),
            *(self._entity_for(o.model_id) for o in kept_overrides),
            *(self._entity_for(mid) for m in catalog.local_models for mid in m.ids),
        ]
        rest_keys = [k for k in dict.fromkeys(e.key for e in others) if k not in curated_set]
        rest_keys.sort(
            key=lambda k: (self._entities[k].base["provider"] or "", self._entities[k].model_id)
        )

        # Category lists hold item model_ids, without specials and without repeats.
        def members(category: Category) -> list[str]:
            keys: list[tuple[str, str]] = []
            for mid in category.model_ids:
                key = self._entity_for(mid).key
                if self._entities[key].special is None and key not in keys:
                    keys.append(key)
            return [self._entities[k].model_id for k in keys]

        curated_lists = {c.id: members(c) for c in normal}
        all_lists = dict(curated_lists)
        if specials_category is not None:
            curated_specials = [self._entity_for(mid).key for mid in specials_category.model_ids]
            special_keys = list(dict.fromkeys(curated_specials))
            listed = set(special_keys)
            special_keys += [
                k
                for k in (*curated_keys, *rest_keys)
                if self._entities[k].special is not None and k not in listed
            ]
            all_lists[SPECIALS_CATEGORY] = [self._entities[k].model_id for k in special_keys]

        self._curated_categories = [self._category_dict(c, curated_lists[c.id]) for c in normal]
        self._all_categories = [
            self._category_dict(c, all_lists[c.id]) for c in catalog.categories if c.id in all_lists
        ]
        self.category_ids: frozenset[str] = frozenset(c.id for c in catalog.categories)

        curated_view_keys = [
            k
            for k in curated_keys
            if self._entities[k].special is None
            and any(self._entities[k].model_id in ids for ids in curated_lists.values())
        ]
        self._curated_items = self._items(curated_view_keys, self._curated_categories)
        self._all_items = self._items([*curated_keys, *rest_keys], self._all_categories)
        self._all_by_key = dict(zip([*curated_keys, *rest_keys], self._all_items, strict=True))

    # --- building -------------------------------------------------------------------------

    @staticmethod
    def _category_dict(category: Category, model_ids: list[str]) -> dict[str, Any]:
        return {
            "id": category.id,
            "name": category.name,
            "emoji": category.emoji,
            "description": category.description,
            "order": category.order,
            "model_ids": model_ids,
        }

    def _items(
        self, keys: list[tuple[str, str]], categories: list[dict[str, Any]]
    ) -> list[dict[str, Any]]:
        membership: dict[str, list[str]] = {}
        for category in categories:
            for mid in category["model_ids"]:
                membership.setdefault(mid, []).append(category["id"])
        items = []
        for key in keys:
            entity = self._entities[key]
            items.append(self._item(entity, entity.model_id, membership.get(entity.model_id, [])))
        return items

    @staticmethod
    def _item(entity: _Entity, model_id: str, categories: list[str]) -> dict[str, Any]:
        item = {"model_id": model_id, "categories": categories, **entity.base}
        return {k: item[k] for k in ITEM_KEYS}

    def _special(self, names: Sequence[str], outputs: Sequence[str] = ()) -> SpecialKind | None:
        for name in names:
            kind = special_kind(name, explicit=self._catalog.specials, output_modalities=outputs)
            if kind is not None:
                return kind
        return None

    def _resolve_key(self, requested: str) -> tuple[tuple[str, str], ModelPrice | None]:
        lowered = requested.strip().lower()
        if lowered in self._local_by_id or is_local_id(requested):
            return ("local", lowered), None
        price = self._upstream.resolve(requested)
        if price is not None:
            return ("upstream", price.model_id.strip().lower()), price
        price = self._overrides.resolve(requested)
        if price is not None:
            return ("override", price.model_id.strip().lower()), price
        price = self._second_match(lowered)
        if price is not None:
            return ("upstream", price.model_id.strip().lower()), price
        return ("unknown", lowered), None

    def _second_match(self, requested: str) -> ModelPrice | None:
        """The snapshot's model a spelling nothing above resolves is, by the second source's
        own matching rules (genai-prices: ``gpt-4-1106-preview`` is ``gpt-4-turbo``,
        ``claude-3-5-sonnet-20240620`` is ``claude-3-5-sonnet``): the model of that author with
        genai-prices' id (dots and dashes alike), else the shortest of that author's models
        whose id is the same name, longer or shorter, and that genai-prices matches to it.
        None when the second source knows nothing of it or the snapshot has no such model:
        never a guess of ours."""
        if self._matcher is None:
            return None
        if requested in self._matched:
            return self._matched[requested]
        found = self._matcher.match(requested)
        best: ModelPrice | None = None
        if found is not None:
            provider, model_id = found
            wanted = _same_model_key(model_id)
            for price in self._author_prices().get(provider, ()):
                key = _same_model_key(price.model_id)
                if key == wanted:
                    best = price
                    break
                if (
                    (key.startswith(wanted) or wanted.startswith(key))
                    and (best is None or (len(key), key) < (len(best.model_id), best.model_id))
                    and self._matcher.model_ref(price.provider, price.model_id) == model_id
                ):
                    best = price
        if len(self._matched) < _MAX_MATCHED:
            self._matched[requested] = best
        return best

    def _author_prices(self) -> dict[str, list[ModelPrice]]:
        if self._by_author is None:
            by_author: dict[str, list[ModelPrice]] = {}
            for price in self.prices:
                by_author.setdefault(canonical_provider(price.provider), []).append(price)
            self._by_author = by_author
        return self._by_author

    def _entity_for(self, requested: str) -> _Entity:
        """The entity ``requested`` resolves to, created (named ``requested``) on first use."""
        key, price = self._resolve_key(requested)
        entity = self._entities.get(key)
        if entity is None:
            entity = self._new_entity(key, requested, price)
            self._entities[key] = entity
        return entity

    def _new_entity(
        self, key: tuple[str, str], requested: str, price: ModelPrice | None
    ) -> _Entity:
        kind = key[0]
        if kind == "local":
            return self._local_entity(key, requested)
        if price is None:
            special = self._special([requested])
            base = self._unknown_base(_prefix_provider(requested), requested)
            base["special"] = special.value if special is not None else None
            base["aliases"] = self._spellings(key, requested, None)
            return _Entity(key, requested, base, special)
        special = self._special([requested, price.model_id], price.output_modalities)
        base = self._unknown_base(price.provider, price.display_name)
        pricing_source = price.pricing_source
        if kind == "override":
            source, basis = "catalog", PriceBasis.CATALOG.value
            pricing_source = CATALOG_SOURCE
            price = replace(price, listed=True)
            override = self._catalog.overrides.get(price.model_id)
            if override is not None:  # the override's own date and source, not the snapshot's
                base.update(
                    updated_at=f"{override.as_of.isoformat()}T00:00:00Z",
                    source_url=override.source,
                    price_note=override.price_note,
                )
        else:
            source = self.snapshot.source
            # In the seed every upstream price is the recording's; genai-prices' stay theirs.
            seeded = self._seed and price.price_basis is not PriceBasis.SECOND_SOURCE
            basis = PriceBasis.SEED.value if seeded else price.price_basis.value
        base["aliases"] = self._spellings(key, requested, price)
        base.update(
            source=source,
            slug=price.slug,
            special=special.value if special is not None else None,
            cache_read_usd_per_million=price.cache_read_usd_per_million,
            cache_write_usd_per_million=price.cache_write_usd_per_million,
            context_window=price.context_window,
            capabilities=list(price.capabilities),
            input_modalities=list(price.input_modalities),
            output_modalities=list(price.output_modalities),
            listed=price.listed,
            delisted_at=_iso(price.delisted_at) if price.delisted_at is not None else None,
            held=price.held is not None,
            price_status_reason=_status_reason(price),
            pricing_source=pricing_source,
            pricing_source_is_author=is_author_source(price.provider, pricing_source),
            benchmarks=dict(price.benchmarks) if price.benchmarks else None,
            tokens_per_second=price.tokens_per_second,
            time_to_first_token=price.time_to_first_token,
            description=price.description,
            **call_item_fields(price, self._rate),
            long_context_tiers=item_tiers(price, self._tiers),
        )
        via = via_label(price.provider, pricing_source)
        status = price.price_status
        if status is not PriceStatus.UNKNOWN:
            assert price.input_usd_per_million is not None
            assert price.output_usd_per_million is not None
            cop = _cop_fields(price.input_usd_per_million, price.output_usd_per_million, self._rate)
            base.update(cop)
            base.update(_cache_cop_fields(price, self._rate))
            base.update(
                input_usd_per_million=price.input_usd_per_million,
                output_usd_per_million=price.output_usd_per_million,
                price_status=status.value,
                price_basis=basis,
                price_label=(
                    LABEL_FREE
                    if status is PriceStatus.FREE
                    else image_label(cop["output_cop_per_10k_display"])
                    if special is SpecialKind.IMAGE
                    else _message_label(cop["typical_message_cop_display"])
                )
                + (f" ({via})" if via is not None else ""),
            )
        return _Entity(key, requested, base, special)

    def _unknown_base(self, provider: str | None, display_name: str) -> dict[str, Any]:
        # Every key null (the item's own model_id and categories are added by _item), then
        # what an unknown price says. Unknown is never 0: both prices stay null even if the
        # upstream knew one half.
        base: dict[str, Any] = dict.fromkeys(_BASE_KEYS)
        base.update(
            provider=provider,
            display_name=display_name,
            updated_at=self._updated_at,
            source=self.snapshot.source,
            local=False,
            price_status=PriceStatus.UNKNOWN.value,
            price_label=LABEL_UNKNOWN,
            capabilities=[],
            input_modalities=[],
            output_modalities=[],
            # Upstream models say whether the upstream still lists them; nothing else is listed
            # upstream, except local models and catalog overrides, which the catalog lists.
            listed=False,
            held=False,
            aliases=[],
            pricing_source_is_author=False,
        )
        return base

    def _local_entity(self, key: tuple[str, str], requested: str) -> _Entity:
        model = self._local_by_id.get(key[1])
        special = self._special([requested])
        base = self._unknown_base(
            LOCAL_PROVIDER, model.display_name if model is not None else requested
        )
        base.update(self._zero_cop)
        base.update(
            input_usd_per_million=_ZERO,
            output_usd_per_million=_ZERO,
            source="local",
            special=special.value if special is not None else None,
            local=True,
            listed=True,
            price_status=PriceStatus.LOCAL.value,
            price_basis=PriceBasis.CATALOG.value,
            price_label=LABEL_LOCAL,
            local_model=self._local_model(model) if model is not None else None,
            aliases=[requested],
            pricing_source=LOCAL_SOURCE,
            pricing_source_is_author=True,
        )
        if model is not None:
            base.update(context_window=model.context_window, capabilities=list(model.capabilities))
        return _Entity(key, requested, base, special)

    def _spellings(
        self, key: tuple[str, str], requested: str, price: ModelPrice | None
    ) -> list[str]:
        """Every id that resolves to ``key``: the item's own, the bare id, ``provider/model`` in
        the upstream's and OpenRouter's spelling, catalog aliases (bare and provider-prefixed).

        Upstream slugs resolve too but are not listed: no client sends them.
        """
        candidates = [requested]
        aliases = self._aliases_by_key.get(key, [])
        if price is not None:
            candidates.append(price.model_id)
            candidates.extend(aliases)
            for provider in provider_spellings(price.provider):
                candidates.append(f"{provider}/{price.model_id}")
                candidates.extend(f"{provider}/{alias}" for alias in aliases)
        spellings: list[str] = []
        seen: set[str] = set()
        for candidate in candidates:
            lowered = candidate.strip().lower()
            if lowered in seen:
                continue
            if candidate != requested and self._resolve_key(candidate)[0] != key:
                continue
            seen.add(lowered)
            spellings.append(candidate if candidate == requested else lowered)
        return spellings

    def _local_model(self, model: LocalModel) -> dict[str, Any]:
        # catalog.py guarantees every local model names a declared hardware tier.
        tier = self._catalog.hardware[model.hardware]
        return {
            "ollama_tag": model.ollama_tag,
            "parameters": model.parameters,
            "vram_gb": model.vram_gb,
            "hardware_id": tier.id,
            "hardware_name": tier.name,
            "gpu": tier.gpu,
            "hardware_usd_per_hour": tier.usd_per_hour,
            "hardware_cop_per_hour": _plain(usd_to_cop(tier.usd_per_hour, self._rate)),
        }

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
        if view == View.CURATED:
            items, categories = self._curated_items, self._curated_categories
        else:
            items, categories = self._all_items, self._all_categories
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
            key, price = self._resolve_key(requested)
            known = self._all_by_key.get(key)
            if known is not None:
                item = {**known, "model_id": requested}
            else:
                # Local ids the catalog does not declare, and ids nothing knows.
                entity = self._new_entity(key, requested, price)
                categories = [SPECIALS_CATEGORY] if entity.special is not None else []
                item = self._item(entity, requested, categories)
            items.append(item)
        return self._body(
            items,
            view="ids",
            category=None,
            local=None,
            categories=self._all_categories,
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
        return self.currency_for(self._rate, self._rate_source, *self._rate_valid)

    @property
    def cache_id(self) -> tuple[int, Decimal, str, date | None]:
        """What the rendered bytes depend on besides the view: the snapshot and the rate."""
        return (self.snapshot.id, self._rate, self._rate_source, self._rate_valid[0])

    @staticmethod
    def currency_for(
        rate: Decimal,
        source: str,
        valid_from: date | None = None,
        valid_to: date | None = None,
    ) -> dict[str, Any]:
        """The ``currency`` of every answer: the rate, its source and the dates it is valid
        for (null for a fixed rate)."""
        return {
            "code": CURRENCY_CODE,
            "rate": rate,
            "source": source,
            "valid_from": valid_from.isoformat() if valid_from is not None else None,
            "valid_to": valid_to.isoformat() if valid_to is not None else None,
            "rounding": ROUNDING_RULE,
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
        for item in self._all_items:
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
        key, price = self._resolve_key(requested)
        return price.model_id if key[0] == "upstream" and price is not None else None

    def is_unresolved(self, model_id: str) -> bool:
        """Whether nothing (upstream, override, local, alias) resolves ``model_id``."""
        return self._resolve_key(model_id)[0][0] == "unknown"

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
            computed = call_cost(input_tokens, output_tokens, input_price, output_price, self._rate)
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
        key, _ = self._resolve_key(model_id)
        item = self._all_by_key.get(key)
        if item is not None:
            return str(item["price_status"])
        if key[0] == "local":
            return PriceStatus.LOCAL.value
        return "not_in_catalog"

    def unmatched_catalog_ids(self) -> list[str]:
        """Catalog-referenced non-local ids with no upstream model and no override."""
        return [
            mid
            for mid in self._catalog.referenced_ids()
            if self._resolve_key(mid)[0][0] == "unknown"
        ]

    def price_status_counts(self) -> dict[str, int]:
        """Items of view=all per price status (every status present)."""
        counts = dict.fromkeys((s.value for s in PriceStatus), 0)
        for item in self._all_items:
            counts[item["price_status"]] += 1
        return counts

    def category_counts(self) -> dict[str, int]:
        """Curated items per category of the curated view."""
        return {c["id"]: len(c["model_ids"]) for c in self._curated_categories}

    def curated_in(self, model_id: str) -> list[str]:
        """The categories whose curated list resolves to the upstream model ``model_id``."""
        key, _ = self._resolve_key(model_id)
        return [
            category.id
            for category in self._catalog.categories
            if any(self._resolve_key(mid)[0] == key for mid in category.model_ids)
        ]


def _status_reason(price: ModelPrice) -> str | None:
    """Why a price is not simply the upstream's current one (held, or no longer listed)."""
    reasons = []
    if price.held is not None:
        served = (
            "serving the last accepted price"
            if price.price_status is not PriceStatus.UNKNOWN
            else "no accepted price yet, so unknown"
        )
        reasons.append(
            f"held ({price.held.reason.value}, run {price.held.run_id}): {price.held.detail}; "
            f"{served} until an operator accepts it"
        )
    if not price.listed and price.delisted_at is not None:
        reasons.append(
            f"no longer listed upstream since {_iso(price.delisted_at)}; the last accepted "
            "price is kept for a grace period, then the model becomes unknown"
        )
    return "; ".join(reasons) or None


def _same_model_key(model_id: str) -> str:
    """Dots and dashes alike, lower case (``claude-3.5-sonnet`` is ``claude-3-5-sonnet``)."""
    return model_id.strip().lower().replace(".", "-")


def _prefix_provider(model_id: str) -> str | None:
    provider, sep, rest = model_id.strip().partition("/")
    if sep and provider and rest:
        return canonical_provider(provider)
    return None
