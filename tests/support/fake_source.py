"""An in-memory listing source: the refresh's tests run on it without MCP (real PostgreSQL and
Redis), and the listing-source contract (tests/integration/test_listing_sources.py) runs on it
beside the real adapters."""

from __future__ import annotations

from dataclasses import dataclass, replace
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from pricing_service.normalize import listing_of

if TYPE_CHECKING:
    from collections.abc import Iterable

    from pricing_service.domain import ModelPrice, NormalizedListing
    from pricing_service.listings import Progress


@dataclass(frozen=True, slots=True)
class FakeFetch:
    prices: tuple[ModelPrice, ...]
    latency_ms: int = 1
    call_latencies_ms: tuple[float, ...] = ()
    reconnects: int = 0
    fields: tuple[tuple[str, Any], ...] = ()

    @property
    def rows_seen(self) -> int:
        return len(self.prices)

    def call_outcomes(self) -> dict[str, int]:
        return {}

    def log_fields(self) -> dict[str, Any]:
        return dict(self.fields)


class FakeSource:
    """Answers with the prices it holds, or raises the error it was given."""

    name = "fake"

    def __init__(self, prices: Iterable[ModelPrice] = ()) -> None:
        self.prices: dict[str, ModelPrice] = {p.model_id: p for p in prices}
        self.error: Exception | None = None
        self.fetches = 0
        self.log_fields: dict[str, Any] = {}  # what its fetches report for refresh.normalized

    def set_price(self, model_id: str, figures: tuple[str | None, str | None]) -> None:
        """Change a model's input and output price (None: unknown)."""
        inp, out = (None if v is None else Decimal(v) for v in figures)
        self.prices[model_id] = replace(
            self.prices[model_id], input_usd_per_million=inp, output_usd_per_million=out
        )

    async def fetch(self, progress: Progress | None = None) -> FakeFetch:
        self.fetches += 1
        if self.error is not None:
            raise self.error
        return FakeFetch(tuple(self.prices.values()), fields=tuple(self.log_fields.items()))

    def normalize(self, fetched: FakeFetch) -> NormalizedListing:
        return listing_of(fetched.prices)
