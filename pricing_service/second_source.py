"""The second source: genai-prices' bundled price data, read offline.

Only the data shipped inside the installed ``genai-prices`` package is read (its
``genai_prices.data.providers`` list): its auto-update (``UpdatePrices``, a background thread
that downloads a newer file) is never started, and its process-wide custom snapshot is never
consulted, so no network call is made and the figures change only with the installed version.

Matching is by the model's own provider only (an OpenAI model against genai-prices' ``openai``
prices, never against a host's): the comparison answers "is this the author's price?".
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from decimal import Decimal
from functools import cached_property
from importlib.metadata import version as package_version
from typing import TYPE_CHECKING, Any

from pricing_service.domain import SecondPrice
from pricing_service.normalize import canonical_provider

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

    from pricing_service.domain import ModelPrice

__all__ = ["SecondSource", "second_source"]

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

# Price keys that are not per-token (genai-prices: "<what>_kcount" = USD per 1,000 calls).
_PER_CALL_SUFFIX = "_kcount"


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
        prices = _standard_prices(model, at or datetime.now(UTC))
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
        prices = _standard_prices(found[1], at or datetime.now(UTC))
        charges: dict[str, Decimal] = {}
        for key, value in vars(prices).items():
            if key.endswith(_PER_CALL_SUFFIX) and isinstance(value, Decimal):
                charges[key[: -len(_PER_CALL_SUFFIX)]] = value
        return charges

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

    def matches(self, provider_id: str, genai_model_id: str, candidate: str) -> bool:
        """Whether genai-prices' model ``genai_model_id`` is what ``candidate`` resolves to."""
        entry = self._providers.get(provider_id)
        if entry is None:
            return False
        model = entry.find_model(candidate.lower())
        return model is not None and model.id == genai_model_id

    def provider_ids(self) -> Mapping[str, Any]:
        return self._providers


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
