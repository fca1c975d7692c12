"""The genai-prices adapter: genai-prices' bundled data as a listing of its own (offline).

The models of ``second_source.FILL_AUTHORS`` that genai-prices prices by the token, at its
figures (basis ``second_source``, ``pricing_source`` naming the package, its version and its
model). The same data is the refresher's second opinion on every listing
(``second_source.SecondSource``); as a source it lets a deployment (the Cognitia issue) run on
genai-prices alone.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import anyio.to_thread

from pricing_service.domain import SnapshotSource, utcnow
from pricing_service.normalize import listing_of
from pricing_service.second_source import FILL_AUTHORS, SecondSource, second_source

if TYPE_CHECKING:
    from datetime import datetime

    from pricing_service.domain import ModelPrice, NormalizedListing
    from pricing_service.listings import Progress

__all__ = ["GenaiPricesFetch", "GenaiPricesSource"]


@dataclass(frozen=True, slots=True)
class GenaiPricesFetch:
    at: datetime
    prices: tuple[ModelPrice, ...]
    version: str
    latency_ms: int
    call_latencies_ms: tuple[float, ...] = field(default=())

    reconnects: int = 0

    @property
    def rows_seen(self) -> int:
        return len(self.prices)

    def call_outcomes(self) -> dict[str, int]:
        return {}  # no calls: bundled data

    def log_fields(self) -> dict[str, Any]:
        return {"version": self.version}


class GenaiPricesSource:
    """genai-prices' per-token prices of the authors Cognitia offers."""

    name = SnapshotSource.GENAI_PRICES

    def __init__(self, second: SecondSource | None = None) -> None:
        self.second = second if second is not None else second_source()

    async def fetch(self, progress: Progress | None = None) -> GenaiPricesFetch:
        started = time.perf_counter()
        at = utcnow()
        # CPU work over the bundled data (no I/O): off the event loop.
        prices = await anyio.to_thread.run_sync(
            lambda: self.second.unlisted((), at=at, authors=FILL_AUTHORS.keys())
        )
        return GenaiPricesFetch(
            at=at,
            prices=prices,
            version=self.second.version,
            latency_ms=int((time.perf_counter() - started) * 1000),
        )

    def normalize(self, fetched: GenaiPricesFetch) -> NormalizedListing:
        return listing_of(fetched.prices)
