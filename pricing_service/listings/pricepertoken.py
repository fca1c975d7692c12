"""The PricePerToken adapter: the MCP client (upstream/) and PricePerToken's rows
(pricepertoken_rows.py); and the bundled seed, a recording of PricePerToken's answers."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from pricing_service.domain import NormalizedListing, PriceBasis, SnapshotSource
from pricing_service.listings.pricepertoken_rows import normalize_listing
from pricing_service.seed import load_seed

if TYPE_CHECKING:
    from collections.abc import Callable
    from datetime import datetime

    from pricing_service.listings import Progress
    from pricing_service.upstream import PricePerTokenClient, UpstreamFetch

__all__ = ["PricePerTokenSource", "seed_listing"]


class PricePerTokenSource:
    """PricePerToken's listing over MCP: ``get_all_models``, then ``get_model`` per slug."""

    name = SnapshotSource.PRICEPERTOKEN.value

    def __init__(self, client: PricePerTokenClient | Callable[[], PricePerTokenClient]) -> None:
        # Or what makes it, at the first fetch: a serving worker whose runs are made by a child
        # process never fetches, and the client's module imports httpx2 (1.9 MB of its RSS).
        self._client = client

    @property
    def client(self) -> PricePerTokenClient:
        if callable(self._client):
            self._client = self._client()
        return self._client

    async def fetch(self, progress: Progress | None = None) -> UpstreamFetch:
        return await self.client.fetch_listing(progress=progress)

    def normalize(self, fetched: UpstreamFetch) -> NormalizedListing:
        return normalize_listing(fetched.rows, fetched.details, detail_errors=fetched.detail_errors)


def seed_listing() -> tuple[NormalizedListing, datetime]:
    """The bundled recording as a listing (every price's basis ``seed``) and when it was
    recorded: what a first start stores into an empty database."""
    seed = load_seed()
    listing = normalize_listing(seed.rows, seed.details)
    listing = NormalizedListing(
        prices=tuple(replace(p, price_basis=PriceBasis.SEED) for p in listing.prices),
        rows_seen=listing.rows_seen,
        field_names=listing.field_names,
        raw_by_model_id=listing.raw_by_model_id,
        rows_rejected=listing.rows_rejected,
    )
    return listing, seed.recorded_at
