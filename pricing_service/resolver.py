"""Which model a selector id is: local, the upstream's, a catalog override's, or unknown; pure.

One resolver per dataset (``curation.SelectorDataset``): every view, lookup, estimate and status
asks it, so a spelling means the same model everywhere. First match wins: a local id
(``cognitia_llm_*``, an Ollama tag, an id ``catalog/local.toml`` declares); then the upstream's
price (bare id, slug, ``provider/model``, explicit alias); then a catalog override (only for
models the upstream does not list: a stale catalog figure never masks a live one); then the
second source's own matching rules; else unknown.
"""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING, NamedTuple, Protocol

from pricing_service.domain import ModelPrice, PriceBasis
from pricing_service.model_kinds import is_local_id
from pricing_service.normalize import PriceIndex, canonical_provider, provider_spellings

if TYPE_CHECKING:
    from collections.abc import Sequence

    from pricing_service.domain import Catalog, LocalModel, PriceOverride

__all__ = ["KeyKind", "ModelKey", "Resolver", "SpellingMatcher"]

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


class KeyKind(StrEnum):
    """What resolved a selector id."""

    LOCAL = "local"  # served by Ollama: costs nothing
    UPSTREAM = "upstream"  # a model of the snapshot (the upstream's, or the second source's)
    OVERRIDE = "override"  # a catalog price override (catalog/overrides.toml)
    UNKNOWN = "unknown"  # nothing knows it


class ModelKey(NamedTuple):
    """The model a selector id resolves to: every spelling of one model has one key.

    A named tuple (immutable, hashed and compared as a tuple): datasets key dicts and sets of
    tens of thousands of models by it.
    """

    kind: KeyKind
    model_id: str  # lower case: the snapshot's or the override's id, else the id as asked


# The kinds as module names: an enum's attribute costs a lookup on every resolve.
_LOCAL, _UPSTREAM, _OVERRIDE, _UNKNOWN = (
    KeyKind.LOCAL,
    KeyKind.UPSTREAM,
    KeyKind.OVERRIDE,
    KeyKind.UNKNOWN,
)


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


def _same_model_key(model_id: str) -> str:
    """Dots and dashes alike, lower case (``claude-3.5-sonnet`` is ``claude-3-5-sonnet``)."""
    return model_id.strip().lower().replace(".", "-")


class Resolver:
    """Selector ids -> ``ModelKey`` (and the price behind it) over one snapshot's prices."""

    def __init__(
        self,
        prices: Sequence[ModelPrice],
        catalog: Catalog,
        matcher: SpellingMatcher | None = None,
    ) -> None:
        self._prices = prices
        self._matcher = matcher
        self._matched: dict[str, ModelPrice | None] = {}
        self._by_author: dict[str, list[ModelPrice]] | None = None
        self._upstream = PriceIndex(prices, catalog.aliases)
        # The overrides the upstream does not price: the only ones that price anything.
        self.overrides = [
            o for o in catalog.overrides.values() if self._upstream.resolve(o.model_id) is None
        ]
        self._overrides = PriceIndex([_override_price(o) for o in self.overrides], catalog.aliases)
        self._local_by_id: dict[str, LocalModel] = {
            mid.lower(): model for model in catalog.local_models for mid in model.ids
        }
        # Catalog aliases by the key they resolve to (an alias of nothing resolves to itself).
        self._aliases_by_key: dict[ModelKey, list[str]] = {}
        for alias in catalog.aliases:
            self._aliases_by_key.setdefault(self.resolve(alias)[0], []).append(alias)

    def resolve(self, requested: str) -> tuple[ModelKey, ModelPrice | None]:
        """The key of ``requested`` and the price behind it (None: local or unknown)."""
        lowered = requested.strip().lower()
        if lowered in self._local_by_id or is_local_id(requested):
            return ModelKey(_LOCAL, lowered), None
        price = self._upstream.resolve(requested)
        if price is not None:
            return ModelKey(_UPSTREAM, price.model_id.strip().lower()), price
        price = self._overrides.resolve(requested)
        if price is not None:
            return ModelKey(_OVERRIDE, price.model_id.strip().lower()), price
        price = self._second_match(lowered)
        if price is not None:
            return ModelKey(_UPSTREAM, price.model_id.strip().lower()), price
        return ModelKey(_UNKNOWN, lowered), None

    def kind(self, requested: str) -> KeyKind:
        return self.resolve(requested)[0].kind

    def local_model(self, key: ModelKey) -> LocalModel | None:
        """The catalog's local model of a local key (None: a local id it does not declare)."""
        return self._local_by_id.get(key.model_id)

    def spellings(self, key: ModelKey, requested: str, price: ModelPrice | None) -> list[str]:
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
            if candidate != requested and self.resolve(candidate)[0] != key:
                continue
            seen.add(lowered)
            spellings.append(candidate if candidate == requested else lowered)
        return spellings

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
            for price in self._prices:
                by_author.setdefault(canonical_provider(price.provider), []).append(price)
            self._by_author = by_author
        return self._by_author
