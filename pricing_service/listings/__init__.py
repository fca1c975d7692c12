"""Listing sources: where a refresh's prices come from, one adapter per module.

A source fetches (I/O, bounded by the adapter) and then normalizes what it fetched into a
``NormalizedListing`` (CPU work the refresher runs in a worker thread): the adapter owns its
row shapes. ``name`` is stored as the snapshot's source and shown by ``/ready`` and the
console. The refresher takes any ``ListingSource``; the gate, the write step and the read path
never know which one it was.

- ``pricepertoken.py``: PricePerToken over MCP (``upstream/``), rows in ``pricepertoken_rows.py``;
  also the bundled seed, a recording of its answers.
- ``genai_prices.py``: genai-prices' bundled data as a listing (offline). The same data is the
  refresher's second opinion (``write.SecondOpinion``, ``second_source.SecondSource``).

Adding a source: one module here with a class satisfying ``ListingSource``, and its wiring in
``app.listing_source`` (docs/ARCHITECTURE.md, "where a change goes").
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol, TypeVar

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from pricing_service.domain import NormalizedListing

    Progress = Callable[[str, dict[str, Any]], None]

__all__ = ["Fetched", "ListingSource"]


class Fetched(Protocol):
    """What one fetch brought back, before normalization, and what it cost."""

    @property
    def latency_ms(self) -> int: ...

    @property
    def call_latencies_ms(self) -> Sequence[float]: ...  # each call's, for metrics

    @property
    def rows_seen(self) -> int: ...  # rows the source sent (recorded even when normalizing fails)

    @property
    def reconnects(self) -> int: ...  # sessions or connections reopened mid-fetch

    def call_outcomes(self) -> dict[str, int]: ...  # per-model calls by outcome (metrics)

    def log_fields(self) -> dict[str, Any]: ...  # the source's own counts for refresh.normalized


FetchT = TypeVar("FetchT", bound=Fetched)


class ListingSource(Protocol[FetchT]):
    """A source of the whole listing of model prices."""

    @property
    def name(self) -> str: ...  # the snapshot's source ("pricepertoken"); never "seed"

    async def fetch(self, progress: Progress | None = None) -> FetchT:
        """Everything the source has now, bounded in time; ``UpstreamUnavailable`` (transient)
        or ``UpstreamRejected`` (permanent) when it cannot answer."""
        ...

    def normalize(self, fetched: FetchT) -> NormalizedListing:
        """The fetch as domain prices: sorted by model id, one price per id, null kept unknown
        (never 0), rows over the storage limits left out and counted (``normalize.row_problem``);
        ``UpstreamRejected`` for a payload whose schema changed."""
        ...
