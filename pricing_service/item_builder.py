"""One selector item per model: a ``SelectorItem`` built in one constructor call; pure.

Every item, whatever resolved it (``resolver.KeyKind``), is built by ``ItemBuilder._item``: the
one place that fills the struct's fields. A new field of the item goes in
``selector_item.SelectorItem`` and in that call (a new price kind: its USD figure from the row,
its pesos beside the cache's), and nowhere else: views, lookups, the price map and the estimate
read items by key.

What each kind of model gives ``_item``: a row (the snapshot's ``ModelPrice``; for a local or an
unknown id, one made here with what the catalog says of it), a status, a basis and an
``Origin`` (where the figures come from). Unknown is never 0: an unknown price leaves every
figure null even if the upstream knew one half.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import msgspec

from pricing_service.call_prices import call_item_fields, empty_call_fields, image_label
from pricing_service.currency import CopPrice, cop_price, per_million_and_10k, usd_to_cop
from pricing_service.domain import (
    ModelPrice,
    PriceBasis,
    PriceKind,
    PriceStatus,
    SnapshotSource,
    SpecialKind,
)
from pricing_service.long_context import item_tiers
from pricing_service.model_kinds import special_kind
from pricing_service.normalize import canonical_provider
from pricing_service.resolver import KeyKind
from pricing_service.selector_item import LocalModelInfo, LongContextTierInfo, SelectorItem
from pricing_service.sources import CATALOG_SOURCE, LOCAL_SOURCE, is_author_source, via_label

if TYPE_CHECKING:
    from collections.abc import Sequence
    from datetime import datetime

    from pricing_service.currency import Currency
    from pricing_service.domain import Catalog, LocalModel, SnapshotInfo
    from pricing_service.resolver import ModelKey, Resolver

__all__ = ["ItemBuilder", "iso", "item_dict"]

LOCAL_PROVIDER = "ollama"
LABEL_LOCAL = "Local (sin costo API)"
LABEL_UNKNOWN = "Sin precio conocido"
LABEL_FREE = "Gratis"
_ZERO = Decimal(0)


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def item_dict(item: SelectorItem, categories: list[str]) -> dict[str, Any]:
    """The item as it is rendered: its keys in declaration order, money as exact Decimals,
    enums as their values, in the categories of the view it is shown in."""
    found: dict[str, Any] = msgspec.to_builtins(item, builtin_types=(Decimal,))
    found["categories"] = categories
    return found


@dataclass(frozen=True, slots=True)
class Origin:
    """Where an item's figures come from."""

    source: str  # the item's ``source``: the snapshot's source, CATALOG_SOURCE or LOCAL_SOURCE
    updated_at: str
    pricing_source: str | None  # whose price: a provider, "catalog", "local"
    pricing_source_is_author: bool
    via: str | None = None  # the label's note on a host's or the second source's price
    source_url: str | None = None  # an override's provenance
    price_note: str | None = None


class ItemBuilder:
    """Items of one snapshot at one rate: ``build(key, requested, price)``."""

    def __init__(
        self,
        *,
        snapshot: SnapshotInfo,
        catalog: Catalog,
        resolver: Resolver,
        rate: Decimal,
        currency: Currency,
        updated_at: str,
    ) -> None:
        self._catalog = catalog
        self._resolver = resolver
        self._rate = rate
        self._currency = currency
        self._source: str = snapshot.source
        self._updated_at = updated_at
        self._seed = snapshot.source == SnapshotSource.SEED
        # Local models' pesos (0 and 0 exactly), computed once; this also validates the rate.
        self._zero_cop = cop_price(_ZERO, _ZERO, rate, currency)

    def build(self, key: ModelKey, requested: str, price: ModelPrice | None) -> SelectorItem:
        """The item of ``key``, named ``requested`` (``Resolver.resolve`` gave key and price)."""
        if key.kind is KeyKind.LOCAL:
            return self._local(key, requested)
        if price is None:
            return self._unknown(key, requested)
        return self._priced(key, requested, price)

    def _unknown(self, key: ModelKey, requested: str) -> SelectorItem:
        provider = _prefix_provider(requested)
        return self._item(
            requested,
            provider=provider,
            display_name=requested,
            aliases=self._resolver.spellings(key, requested, None),
            special=self._special([requested]),
            row=_row(requested, provider or "", requested, None, local=False),
            status=PriceStatus.UNKNOWN,
            basis=None,
            origin=Origin(self._source, self._updated_at, None, pricing_source_is_author=False),
        )

    def _local(self, key: ModelKey, requested: str) -> SelectorItem:
        model = self._resolver.local_model(key)
        display_name = model.display_name if model is not None else requested
        return self._item(
            requested,
            provider=LOCAL_PROVIDER,
            display_name=display_name,
            aliases=[requested],
            special=self._special([requested]),
            row=_row(requested, LOCAL_PROVIDER, display_name, model, local=True),
            status=PriceStatus.LOCAL,
            basis=PriceBasis.CATALOG,
            origin=Origin(
                LOCAL_SOURCE, self._updated_at, LOCAL_SOURCE, pricing_source_is_author=True
            ),
            local_model=self._local_model(model) if model is not None else None,
        )

    def _priced(self, key: ModelKey, requested: str, price: ModelPrice) -> SelectorItem:
        special = self._special([requested, price.model_id], price.output_modalities)
        if key.kind is KeyKind.OVERRIDE:
            # The catalog lists its overrides; the override's own date and source, if any.
            price = replace(price, listed=True)
            override = self._catalog.overrides.get(price.model_id)
            origin = Origin(
                CATALOG_SOURCE,
                (
                    f"{override.as_of.isoformat()}T00:00:00Z"
                    if override is not None
                    else self._updated_at
                ),
                CATALOG_SOURCE,
                is_author_source(price.provider, CATALOG_SOURCE),
                via=via_label(price.provider, CATALOG_SOURCE),
                source_url=override.source if override is not None else None,
                price_note=override.price_note if override is not None else None,
            )
            basis = PriceBasis.CATALOG
        else:
            origin = Origin(
                self._source,
                self._updated_at,
                price.pricing_source,
                is_author_source(price.provider, price.pricing_source),
                via=via_label(price.provider, price.pricing_source),
            )
            # In the seed every upstream price is the recording's; genai-prices' stay theirs.
            seeded = self._seed and price.price_basis is not PriceBasis.SECOND_SOURCE
            basis = PriceBasis.SEED if seeded else price.price_basis
        return self._item(
            requested,
            provider=price.provider,
            display_name=price.display_name,
            aliases=self._resolver.spellings(key, requested, price),
            special=special,
            row=price,
            status=price.price_status,
            basis=basis,
            origin=origin,
            calls=call_item_fields(price, self._rate),
            long_context_tiers=item_tiers(price),
        )

    def _item(
        self,
        model_id: str,
        *,
        provider: str | None,
        display_name: str,
        aliases: list[str],
        special: SpecialKind | None,
        row: ModelPrice,
        status: PriceStatus,
        basis: PriceBasis | None,
        origin: Origin,
        local_model: LocalModelInfo | None = None,
        calls: dict[str, Any] | None = None,
        long_context_tiers: list[dict[str, Any]] | None = None,
    ) -> SelectorItem:
        """The one constructor call: every field of the item, from the row and the decisions."""
        priced = status is not PriceStatus.UNKNOWN
        cop: CopPrice | None = None
        if priced:
            usd_in, usd_out = row.input_usd_per_million, row.output_usd_per_million
            assert usd_in is not None
            assert usd_out is not None
            local = status is PriceStatus.LOCAL
            cop = (
                self._zero_cop if local else cop_price(usd_in, usd_out, self._rate, self._currency)
            )
        cache_read = self._cop(row.figure(PriceKind.CACHE_READ) if priced else None)
        cache_write = self._cop(row.figure(PriceKind.CACHE_WRITE) if priced else None)
        return SelectorItem(
            model_id=model_id,
            provider=provider,
            display_name=display_name,
            input_usd_per_million=row.input_usd_per_million if priced else None,
            output_usd_per_million=row.output_usd_per_million if priced else None,
            context_window=row.context_window,
            updated_at=origin.updated_at,
            source=origin.source,
            slug=row.slug,
            categories=[],
            special=special,
            local=status is PriceStatus.LOCAL,
            price_status=status,
            price_basis=basis if priced else None,
            price_label=_label(status, cop, origin.via, special),
            cache_read_usd_per_million=row.cache_read_usd_per_million,
            cache_write_usd_per_million=row.cache_write_usd_per_million,
            capabilities=list(row.capabilities),
            input_modalities=list(row.input_modalities),
            output_modalities=list(row.output_modalities),
            input_cop_per_million=cop.input_cop_per_million if cop is not None else None,
            output_cop_per_million=cop.output_cop_per_million if cop is not None else None,
            input_cop_per_10k=cop.input_cop_per_10k if cop is not None else None,
            output_cop_per_10k=cop.output_cop_per_10k if cop is not None else None,
            typical_message_cop=cop.typical_message_cop if cop is not None else None,
            input_cop_per_10k_display=cop.input_cop_per_10k_display if cop is not None else None,
            output_cop_per_10k_display=cop.output_cop_per_10k_display if cop is not None else None,
            typical_message_cop_display=(
                cop.typical_message_cop_display if cop is not None else None
            ),
            cache_read_cop_per_million=cache_read[0],
            cache_write_cop_per_million=cache_write[0],
            cache_read_cop_per_10k=cache_read[1],
            cache_write_cop_per_10k=cache_write[1],
            local_model=local_model,
            listed=row.listed,
            delisted_at=iso(row.delisted_at) if row.delisted_at is not None else None,
            held=row.held is not None,
            price_status_reason=_status_reason(row),
            aliases=aliases,
            source_url=origin.source_url,
            price_note=origin.price_note,
            pricing_source=origin.pricing_source,
            pricing_source_is_author=origin.pricing_source_is_author,
            benchmarks=dict(row.benchmarks) if row.benchmarks else None,
            tokens_per_second=row.tokens_per_second,
            time_to_first_token=row.time_to_first_token,
            description=row.description,
            **(calls if calls is not None else empty_call_fields()),
            long_context_tiers=(
                [LongContextTierInfo(**tier) for tier in long_context_tiers]
                if long_context_tiers is not None
                else None
            ),
        )

    def _cop(self, usd_per_million: Decimal | None) -> tuple[Decimal | None, Decimal | None]:
        """A price kind's pesos per million and per 10K; an unknown price stays null."""
        if usd_per_million is None:
            return None, None
        return per_million_and_10k(usd_per_million, self._rate)

    def _special(self, names: Sequence[str], outputs: Sequence[str] = ()) -> SpecialKind | None:
        for name in names:
            kind = special_kind(name, explicit=self._catalog.specials, output_modalities=outputs)
            if kind is not None:
                return kind
        return None

    def _local_model(self, model: LocalModel) -> LocalModelInfo:
        # catalog.py guarantees every local model names a declared hardware tier.
        tier = self._catalog.hardware[model.hardware]
        return LocalModelInfo(
            ollama_tag=model.ollama_tag,
            parameters=model.parameters,
            vram_gb=model.vram_gb,
            hardware_id=tier.id,
            hardware_name=tier.name,
            gpu=tier.gpu,
            hardware_usd_per_hour=tier.usd_per_hour,
            hardware_cop_per_hour=_plain(usd_to_cop(tier.usd_per_hour, self._rate)),
        )


def _row(
    model_id: str, provider: str, display_name: str, model: LocalModel | None, *, local: bool
) -> ModelPrice:
    """The row of a model no snapshot lists: a local model (the catalog lists it; 0 and 0) or
    an unknown id (nothing lists it; no price), with what the catalog says of it."""
    price = _ZERO if local else None
    return ModelPrice(
        model_id=model_id,
        slug=None,
        provider=provider,
        display_name=display_name,
        input_usd_per_million=price,
        output_usd_per_million=price,
        price_basis=PriceBasis.CATALOG,
        context_window=model.context_window if model is not None else None,
        capabilities=model.capabilities if model is not None else (),
        listed=local,
    )


def _label(
    status: PriceStatus, cop: CopPrice | None, via: str | None, special: SpecialKind | None
) -> str:
    if status is PriceStatus.LOCAL:
        return LABEL_LOCAL
    if status is PriceStatus.UNKNOWN or cop is None:
        return LABEL_UNKNOWN
    if status is PriceStatus.FREE:
        label = LABEL_FREE
    elif special is SpecialKind.IMAGE:
        label = image_label(cop.output_cop_per_10k_display)
    else:
        # "< 0,01 COP" is already an approximation; "~< 0,01" would say it twice.
        display = cop.typical_message_cop_display
        label = f"{'' if display.startswith('<') else '~'}{display} por mensaje"
    return label + (f" ({via})" if via is not None else "")


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
            f"no longer listed upstream since {iso(price.delisted_at)}; the last accepted "
            "price is kept for a grace period, then the model becomes unknown"
        )
    return "; ".join(reasons) or None


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


def _prefix_provider(model_id: str) -> str | None:
    price_provider, sep, rest = model_id.strip().partition("/")
    if sep and price_provider and rest:
        return canonical_provider(price_provider)
    return None
