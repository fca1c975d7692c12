"""The second source: genai-prices' bundled price data, read offline.

Only the data shipped inside the installed ``genai-prices`` package is read (its
``genai_prices.data.providers`` list): its auto-update (``UpdatePrices``, a background thread
that downloads a newer file) is never started, and its process-wide custom snapshot is never
consulted, so no network call is made and the figures change only with the installed version.

Matching is by the model's own provider only (an OpenAI model against genai-prices' ``openai``
prices, never against a host's): the comparison answers "is this the author's price?".
"""

from __future__ import annotations

import re
import threading
from dataclasses import replace
from datetime import datetime
from decimal import Decimal
from functools import cached_property
from importlib.metadata import version as package_version
from typing import TYPE_CHECKING, Any

from pricing_service.domain import LongContextTier, SecondPrice, utcnow
from pricing_service.normalize import canonical_provider

if TYPE_CHECKING:
    from collections.abc import Collection, Iterable, Mapping, Sequence

    from pricing_service.domain import ModelPrice

__all__ = ["SecondSource", "same_model_key", "second_source"]

PACKAGE = "genai-prices"

# Our canonical provider -> genai-prices' provider id, where they are spelled differently. A
# provider genai-prices does not price (qwen, meta-llama...) leaves its models uncovered.
_PROVIDER_IDS: dict[str, str] = {
    "xai": "x-ai",
    "mistral-ai": "mistral",
    "z-ai": "zai",
    "amazon": "aws",
    "arcee-ai": "arcee",
}

_AUTHORS = {genai: ours for ours, genai in _PROVIDER_IDS.items()}  # genai-prices' id -> ours

# The authors whose models genai-prices may price where the upstream does not list them: the
# paid APIs Cognitia offers (OpenAI, Anthropic, Google, xAI) and the two more its deployments
# show (DeepSeek, Mistral). genai-prices' lists of hosts (aws, azure, fireworks, openrouter...)
# carry other authors' models under the host's price, and its other authors are not shown.
# genai-prices' list of an author also carries others' models the author hosts (Google's has
# Claude on Vertex AI, Mistral's has DeepSeek and GLM): an author's model is one whose id starts
# with one of the author's own families below.
FILL_AUTHORS: dict[str, tuple[str, ...]] = {
    "openai": ("gpt", "chatgpt", "o1", "o3", "o4", "davinci", "babbage", "computer-use"),
    "anthropic": ("claude",),
    "google": ("gemini", "gemma"),
    "xai": ("grok",),
    "deepseek": ("deepseek",),
    "mistral-ai": (
        "mistral",
        "magistral",
        "ministral",
        "codestral",
        "devstral",
        "pixtral",
        "voxtral",
        "open-mistral",
        "open-mixtral",
    ),
}

# genai-prices ids that are match patterns rather than a model's id ("ft:gpt-4o", "gpt-3.5-0301"
# is one, "ft:gpt-3.5-turbo-" another): never served as a model of their own.
_PATTERN_ID = re.compile(r"[:*]|-$")

# Price keys that are not per-token (genai-prices: "<what>_kcount" = USD per 1,000 calls).
_PER_CALL_SUFFIX = "_kcount"
# genai-prices' per-call charge -> the PriceKind value it is carried as.
_CALL_KINDS = {"web_searches": "web_search", "requests": "request"}
# A long-context tier's kind (usage.Line value) -> genai-prices' price key
_TIER_KEYS = {
    "input": "input_mtok",
    "cache_read": "cache_read_mtok",
    "cache_write": "cache_write_mtok",
    "cache_write_1h": "cache_write_1h_mtok",
    "output": "output_mtok",
}


class SecondSource:
    """genai-prices' bundled prices, looked up by (provider, model id)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._cache: dict[tuple[str, str], Any] = {}

    @cached_property
    def version(self) -> str:
        """``"genai-prices 0.2.3"``: reported with every comparison."""
        return f"{PACKAGE} {package_version(PACKAGE)}"

    @cached_property
    def _providers(self) -> dict[str, Any]:
        # The bundled data module itself, not genai_prices.data_snapshot.get_snapshot(): that
        # one returns whatever an updater downloaded.
        from genai_prices.data import providers

        return {p.id: p for p in providers}

    def provider_id(self, provider: str) -> str | None:
        canonical = canonical_provider(provider)
        wanted = _PROVIDER_IDS.get(canonical, canonical)
        return wanted if wanted in self._providers else None

    def model(self, provider: str, model_id: str) -> tuple[str, Any] | None:
        """(genai-prices' provider id, its model) of ``provider``'s ``model_id``, cached."""
        return self._model(provider, model_id)

    def _model(self, provider: str, model_id: str) -> tuple[str, Any] | None:
        provider_id = self.provider_id(provider)
        if provider_id is None:
            return None
        key = (provider_id, model_id.lower())
        with self._lock:
            if key in self._cache:
                found = self._cache[key]
                return None if found is None else (provider_id, found)
        # The provider's own models only: no fallback to another provider's list.
        model = self._providers[provider_id].find_model(model_id.lower())
        with self._lock:
            self._cache[key] = model
        return None if model is None else (provider_id, model)

    def price(self, price: ModelPrice, *, at: datetime | None = None) -> SecondPrice | None:
        """What genai-prices says ``price``'s model costs at ``at``; None when it does not know."""
        return self.price_of(price.provider, price.model_id, at=at)

    def price_of(
        self, provider: str, model_id: str, *, at: datetime | None = None
    ) -> SecondPrice | None:
        found = self._model(provider, model_id)
        if found is None:
            return None
        provider_id, model = found
        prices = _standard_prices(model, at or utcnow())
        figures = (_per_million(prices.input_mtok), _per_million(prices.output_mtok))
        if not any(v is not None for v in vars(prices).values()):
            figures = (Decimal(0), Decimal(0))  # no price at all: free of charge (moderation)
        elif figures == (None, None):
            return None  # priced by the image, the second or the call: nothing to compare
        return SecondPrice(
            model_id=model_id,
            input_usd_per_million=figures[0],
            output_usd_per_million=figures[1],
            source=f"{self.version} {provider_id}/{model.id}",
        )

    def prices(
        self, prices: Iterable[ModelPrice], *, at: datetime | None = None
    ) -> dict[str, SecondPrice]:
        """The second opinion on every model it knows, by model id."""
        found: dict[str, SecondPrice] = {}
        for price in prices:
            second = self.price(price, at=at)
            if second is not None:
                found[price.model_id] = second
        return found

    def per_call_charges(
        self, provider: str, model_id: str, *, at: datetime | None = None
    ) -> dict[str, Decimal]:
        """Charges per 1,000 calls genai-prices knows (``web_searches``, ``requests``...)."""
        found = self._model(provider, model_id)
        if found is None:
            return {}
        prices = _standard_prices(found[1], at or utcnow())
        charges: dict[str, Decimal] = {}
        for key, value in vars(prices).items():
            if key.endswith(_PER_CALL_SUFFIX) and isinstance(value, Decimal):
                charges[key[: -len(_PER_CALL_SUFFIX)]] = value
        return charges

    def with_call_prices_and_tiers(
        self, prices: Iterable[ModelPrice], *, at: datetime
    ) -> tuple[ModelPrice, ...]:
        """``prices`` with what genai-prices states for each model beyond its token prices, by
        its own provider (PricePerToken states none of it), written with the snapshot so that a
        serving worker never reads genai-prices' data:

        - the per-call prices: web searches and requests, USD per 1,000 calls,
          ``call_prices_source`` naming the package, its version and its model. A model
          genai-prices does not know, or prices by the token only, keeps them unknown (null);
          genai-prices' other per-call kinds (file-search calls) are not billed by any usage
          object the estimate reads and are not carried;
        - the long-context tiers (``long_context_tiers``)."""
        found: list[ModelPrice] = []
        for price in prices:
            tiers = self.long_context_tiers(price.provider, price.model_id, at=at)
            charges = self.per_call_charges(price.provider, price.model_id, at=at)
            figures = {kind: charges.get(key) for key, kind in _CALL_KINDS.items()}
            if all(value is None for value in figures.values()):
                found.append(replace(price, long_context_tiers=tiers) if tiers else price)
                continue
            model = self._model(price.provider, price.model_id)
            assert model is not None  # it has charges
            found.append(
                replace(
                    price,
                    web_search_usd_per_thousand=figures["web_search"],
                    request_usd_per_thousand=figures["request"],
                    call_prices_source=f"{self.version} {model[0]}/{model[1].id}",
                    long_context_tiers=tiers,
                )
            )
        return tuple(found)

    def long_context_tiers(
        self, provider: str | None, model_id: str, *, at: datetime | None = None
    ) -> tuple[LongContextTier, ...]:
        """Every tiered price genai-prices states for ``provider``'s ``model_id`` (none: ()):
        past ``start`` input tokens the whole request is billed at the tier's price
        (``TieredPrices``: base, then ``Tier(start, price)``), by the model's own provider only."""
        if not provider:
            return ()
        provider_id = self.provider_id(provider)
        if provider_id is None:
            return ()
        bare = model_id.strip().lower().rpartition("/")[2]
        match = self._model(provider, bare)  # cached: every model of a listing asks
        if match is None:
            return ()
        model = match[1]
        prices: Any = model.get_prices(at or utcnow())
        found: list[LongContextTier] = []
        for kind, key in _TIER_KEYS.items():
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
                        source=f"{self.version} {provider_id}/{model.id}",
                    )
                )
        return tuple(found)

    def model_ref(self, provider: str, model_id: str) -> str | None:
        """genai-prices' own id of the model ``model_id`` matches at ``provider``."""
        found = self._model(provider, model_id)
        return None if found is None else str(found[1].id)

    def resolve(self, requested: str) -> tuple[str, str] | None:
        """(genai provider id, genai model id) of an id as a client writes it, any provider.

        ``provider/model`` looks at that provider; a bare id at the providers whose model
        naming it matches (genai-prices' own rules), first match.
        """
        ref = requested.strip().lower()
        provider, sep, rest = ref.partition("/")
        if sep and provider and rest:
            found = self._model(provider, rest)
            return None if found is None else (found[0], str(found[1].id))
        for provider_id, entry in self._providers.items():
            if entry.model_match is not None and entry.model_match.is_match(ref):
                model = entry.find_model(ref)
                if model is not None:
                    return provider_id, str(model.id)
        return None

    def match(self, requested: str) -> tuple[str, str] | None:
        """(our canonical provider, genai-prices' model id) of a spelling, by genai-prices'
        own matching rules (``gpt-4-1106-preview`` is its ``gpt-4-turbo``)."""
        found = self.resolve(requested)
        if found is None:
            return None
        return canonical_provider(_AUTHORS.get(found[0], found[0])), found[1]

    def matches(self, provider_id: str, genai_model_id: str, candidate: str) -> bool:
        """Whether genai-prices' model ``genai_model_id`` is what ``candidate`` resolves to."""
        entry = self._providers.get(provider_id)
        if entry is None:
            return False
        model = entry.find_model(candidate.lower())
        return model is not None and model.id == genai_model_id

    def provider_ids(self) -> Mapping[str, Any]:
        return self._providers

    def unlisted(
        self,
        listed: Sequence[ModelPrice],
        *,
        at: datetime,
        keep: Collection[str] = (),
        authors: Collection[str] | None = None,
    ) -> tuple[ModelPrice, ...]:
        """genai-prices' models of the authors ``listed`` has that ``listed`` does not list:
        each at genai-prices' figures (basis ``second_source``, ``pricing_source`` naming the
        package, its version and its model), for the gate to judge like any price.

        Only the authors of ``FILL_AUTHORS``, each with its own families of ids. A
        genai-prices model counts as listed when a listed model has its id (dots and dashes
        alike: ``claude-3.5-sonnet`` is ``claude-3-5-sonnet``) or is what genai-prices' own
        matching makes of a listed id that is the same name, longer or shorter
        (``claude-opus-4`` covers ``claude-opus-4-0``, ``grok-4-fast`` covers
        ``grok-4-fast-reasoning``); a listed ``deepseek-r1`` does not cover
        ``deepseek-reasoner``, which genai-prices prices apart. A model genai-prices gives no
        per-token price (an image model) is left out, and so is one with no price at all:
        absent, not free.

        ``keep``: ids never filled although the listing lacks them: the catalog's overrides
        (the author's list, which comes before genai-prices) and the upstream's models still
        served in their delisting grace (an upstream that drops a model for a run, or for good,
        does not switch its price to another source's; once the grace is over and the model
        dropped, a later run fills it).

        ``authors``: these authors' models (of ``FILL_AUTHORS``) instead of the listed ones'
        (genai-prices as a listing of its own, listings/genai_prices.py).
        """
        from pricing_service.domain import ModelPrice, PriceBasis

        taken = {same_model_key(p.model_id) for p in listed} | {same_model_key(k) for k in keep}
        covered: dict[str, set[str]] = {}
        for price in listed:
            found = self._model(price.provider, price.model_id)
            if found is None:
                continue
            ref = str(found[1].id)
            if _spelled_alike(ref, price.model_id):
                covered.setdefault(found[0], set()).add(ref.lower())
        wanted = {canonical_provider(p.provider) for p in listed} if authors is None else authors
        fill = set(wanted) & FILL_AUTHORS.keys()
        added: list[ModelPrice] = []
        for provider in sorted(fill):
            provider_id = self.provider_id(provider)
            if provider_id is None:
                continue
            for model in self._providers[provider_id].models:
                model_id = str(model.id)
                if _PATTERN_ID.search(model_id) or not model_id.lower().startswith(
                    FILL_AUTHORS[provider]
                ):
                    continue
                key = same_model_key(model_id)
                if model_id.lower() in covered.get(provider_id, set()) or key in taken:
                    continue
                prices = _standard_prices(model, at)
                figures = (_per_million(prices.input_mtok), _per_million(prices.output_mtok))
                if None in figures:
                    continue  # not priced by the token (or only half): nothing to serve
                taken.add(key)
                added.append(
                    ModelPrice(
                        model_id=model_id,
                        slug=None,
                        provider=provider,
                        display_name=str(model.name or model_id),
                        input_usd_per_million=figures[0],
                        output_usd_per_million=figures[1],
                        price_basis=PriceBasis.SECOND_SOURCE,
                        cache_read_usd_per_million=_per_million(prices.cache_read_mtok),
                        cache_write_usd_per_million=_per_million(prices.cache_write_mtok),
                        context_window=model.context_window,
                        pricing_source=f"{self.version} {provider_id}/{model_id}",
                    )
                )
        return tuple(added)


def same_model_key(model_id: str) -> str:
    """A model id with dots and dashes alike, lower case: ``claude-3.5-sonnet`` and
    ``claude-3-5-sonnet`` are one model to genai-prices and to the upstream."""
    return model_id.strip().lower().replace(".", "-")


def _spelled_alike(ref: str, model_id: str) -> bool:
    """Whether genai-prices' id ``ref`` and a listed ``model_id`` are one name, one perhaps
    longer (a date, ``-0``, ``-latest``, ``-reasoning``)."""
    a, b = same_model_key(ref), same_model_key(model_id)
    return a.startswith(b) or b.startswith(a)


def _standard_prices(model: Any, at: datetime) -> Any:
    """The model's standard prices at ``at``: dated price changes apply; of prices that depend
    on the time of day (DeepSeek's off-peak discount) the one in effect most of the day counts,
    so a comparison does not depend on the hour a run happens."""
    from genai_prices.types import StartDateConstraint, TimeOfDateConstraint

    if not isinstance(model.prices, list):
        return model.prices
    dated: Any = None
    by_hours: list[tuple[float, Any]] = []
    for conditional in reversed(model.prices):  # the last active one wins, as in genai-prices
        constraint = conditional.constraint
        if isinstance(constraint, TimeOfDateConstraint):
            by_hours.append((_hours(constraint.start_time, constraint.end_time), conditional))
        elif dated is None and (
            constraint is None
            or (isinstance(constraint, StartDateConstraint) and constraint.active(at))
        ):
            dated = conditional
    if dated is None:
        dated = model.prices[0]
    if by_hours:
        longest_hours, longest = max(by_hours, key=lambda pair: pair[0])
        rest = 24 - sum(hours for hours, _ in by_hours)
        if longest_hours > rest:
            return longest.prices
    return dated.prices


def _hours(start: Any, end: Any) -> float:
    minutes: int = (end.hour * 60 + end.minute) - (start.hour * 60 + start.minute)
    return (minutes % (24 * 60)) / 60


def _per_million(value: Any) -> Decimal | None:
    """A genai-prices per-million figure: plain, or the base of a tiered price."""
    if value is None:
        return None
    if isinstance(value, Decimal):
        return value
    base = getattr(value, "base", None)  # TieredPrices: the first tier (short prompts)
    return base if isinstance(base, Decimal) else None


_shared: SecondSource | None = None
_shared_lock = threading.Lock()


def second_source() -> SecondSource:
    """The process's one SecondSource (its lookups are cached)."""
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = SecondSource()
        return _shared
