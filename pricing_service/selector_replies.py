"""The selector's answers as bytes: which view, which bytes, which ETag (a base of
``service.PricingService``).

Per request this is a lookup: the current snapshot id (re-checked every few seconds), then the
rendered bytes of the asked view from memory. Views are rendered once per snapshot (identity and
gzip, each with its own strong ETag); the body holds no age, so the bytes and the ETag change only
when the data does (a new snapshot, or the snapshot turning stale at the TTL). The age goes in
the ``Age`` header. Data comes from memory, then Redis, then the database (the tracker); when both
are down the last known snapshot keeps being served. The hot path (api/fast.py) asks
``cached_reply``; the full routes ask ``models``, ``prices`` and ``local``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime
from typing import TYPE_CHECKING, Any

import anyio
import anyio.to_thread
from cachetools import LRUCache

from pricing_service.curation import SelectorDataset
from pricing_service.domain import CacheTier, utcnow
from pricing_service.errors import InvalidRequest
from pricing_service.replies import Rendered, Replies, Reply, render
from pricing_service.space import local_space
from pricing_service.unknown_ids import UnknownIds

if TYPE_CHECKING:
    from datetime import date
    from decimal import Decimal

    from pricing_service.currency import Currency
    from pricing_service.domain import Catalog
    from pricing_service.replies import ViewKey
    from pricing_service.tracker import SnapshotTracker


def _rendered_key(dataset: SelectorDataset, stale: bool, view: ViewKey | None) -> tuple[Any, ...]:
    """What a rendered answer is kept under, by the hot path and the full routes alike: the
    dataset (snapshot and rate), whether it is stale, and the view of /models (None: /prices)."""
    return (dataset.cache_id, stale, view)


class SelectorReplies:
    """The rendered answers of /models, /prices and /local, kept per snapshot, rate, staleness
    and view; the replies built from them once per second; the unknown ids asked."""

    def __init__(
        self,
        *,
        tracker: SnapshotTracker,
        catalog: Catalog,
        rate: Decimal,
        rate_source: str,
        currency: Currency,
        ttl_seconds: int,
        unknown_id_observers: Iterable[Callable[[str, str], None]] = (),
    ) -> None:
        self.tracker = tracker
        self.catalog = catalog
        self.rate = rate
        self.rate_source = rate_source
        self.currency = currency
        self.rate_valid: tuple[date | None, date | None] = (None, None)
        self.ttl_seconds = ttl_seconds
        self._rendered: LRUCache[tuple[Any, ...], Rendered] = LRUCache(maxsize=256)
        self._local: Rendered | None = None
        self._replies = Replies()
        self._reply = self._replies.reply  # 200 or 304, built once per second (replies.py)
        self.unknown_ids = UnknownIds()
        # Called with (counted name, endpoint) for each unknown id asked: the metrics hook.
        self.unknown_id_observers: list[Callable[[str, str], None]] = list(unknown_id_observers)

    async def dataset(self) -> tuple[SelectorDataset, CacheTier]:
        return await self.tracker.dataset()

    def currency_json(self) -> dict[str, Any]:
        return SelectorDataset.currency_for(
            self.currency, self.rate, self.rate_source, *self.rate_valid
        )

    # -- the views ------------------------------------------------------------------------------

    def cached_reply(
        self,
        route: str,
        view: ViewKey | None,
        *,
        accept_gzip: bool,
        if_none_match: str | None,
    ) -> Reply | None:
        """The answer of a selector GET from memory alone, or None when it needs more work.

        The hot path: no await, no parsing beyond the key. Anything it cannot answer from bytes
        rendered earlier (a cold worker, a first render) returns None and takes the full route,
        which validates, renders and caches. ``view`` is the parsed query of ``/models`` (None
        for ``/prices``): api/fast.py sends anything else to the full route.
        """
        dataset = self.tracker.served()
        if dataset is None:
            return None
        # is_stale and _age, computed once: this runs for every request.
        elapsed = (utcnow() - dataset.snapshot.fetched_at).total_seconds()
        stale = elapsed > self.ttl_seconds
        if route == "prices":
            view = None
        elif view is None:
            return None
        found = self._rendered.get(_rendered_key(dataset, stale, view))
        if found is None:
            return None
        return self._reply(
            found,
            tier=CacheTier.MEMORY,
            accept_gzip=accept_gzip,
            if_none_match=if_none_match,
            age=max(0, int(elapsed)),
        )

    def _keep(self, key: tuple[Any, ...], rendered: Rendered) -> None:
        """Keep ``rendered`` under ``key``, and drop what was rendered for datasets the tracker
        no longer holds (an older snapshot, an older rate): a worker keeps the renders of at
        most its two datasets (one in a serving worker), however many refreshes it has
        followed. The per-second replies built from the dropped bytes go with them."""
        held = self.tracker.held()
        dropped = [k for k in self._rendered if k[0] not in held]
        for old in dropped:
            del self._rendered[old]
        if dropped:
            self._replies.clear()
        self._rendered[key] = rendered

    async def _render_once(self, key: tuple[Any, ...], build: Callable[[], Any]) -> Rendered:
        """What is rendered under ``key``: on a miss (once per snapshot, view and minute) built,
        encoded and gzipped off the event loop, and kept."""
        found = self._rendered.get(key)
        if found is None:
            found = await anyio.to_thread.run_sync(lambda: render(build(), compress=True))
            self._keep(key, found)
        return found

    async def models(
        self,
        *,
        view: str,
        category: str | None,
        local: bool | None,
        ids: list[str] | None,
        accept_gzip: bool,
        if_none_match: str | None,
    ) -> Reply:
        """A view: ``view`` one of curation.VIEWS; ``local`` and ``ids`` parsed (api/params.py)."""
        local_flag, id_list = local, ids
        dataset, tier = await self.dataset()
        if category is not None and category not in dataset.category_ids:
            valid = ", ".join(sorted(dataset.category_ids))
            raise InvalidRequest(f"unknown category {category!r}; valid: {valid}")
        now = utcnow()
        stale = dataset.is_stale(now=now, ttl_seconds=self.ttl_seconds)
        if id_list is not None:
            self._count_unknown(dataset, id_list, "ids")
            rendered = render(
                dataset.lookup(id_list, now=now, ttl_seconds=self.ttl_seconds),
                compress=accept_gzip,
            )
        else:
            rendered = await self._render_once(
                _rendered_key(dataset, stale, (view, category, local_flag)),
                lambda: dataset.render(
                    view=view,
                    category=category,
                    local=local_flag,
                    now=now,
                    ttl_seconds=self.ttl_seconds,
                ),
            )
        return self._reply(
            rendered,
            tier=tier,
            accept_gzip=accept_gzip,
            if_none_match=if_none_match,
            age=self._age(dataset, now),
        )

    @staticmethod
    def _age(dataset: SelectorDataset, now: datetime) -> int:
        return max(0, int((now - dataset.snapshot.fetched_at).total_seconds()))

    def _count_unknown(self, dataset: SelectorDataset, ids: list[str], endpoint: str) -> None:
        for model_id in dict.fromkeys(ids):
            if dataset.is_unresolved(model_id):
                counted = self.unknown_ids.add(model_id)
                for observer in self.unknown_id_observers:
                    observer(counted, endpoint)

    # -- the price map, the Space picker --------------------------------------------------------

    async def prices(self, *, accept_gzip: bool, if_none_match: str | None) -> Reply:
        """Every spelling of every model -> its price: rendered once per snapshot, like views."""
        dataset, tier = await self.dataset()
        now = utcnow()
        stale = dataset.is_stale(now=now, ttl_seconds=self.ttl_seconds)
        found = await self._render_once(
            _rendered_key(dataset, stale, None),
            lambda: dataset.price_map(now=now, ttl_seconds=self.ttl_seconds),
        )
        return self._reply(
            found,
            tier=tier,
            accept_gzip=accept_gzip,
            if_none_match=if_none_match,
            age=self._age(dataset, now),
        )

    def local(self, *, accept_gzip: bool, if_none_match: str | None) -> Reply:
        """The Ollama Space picker: catalog data only (no snapshot), rendered once."""
        if self._local is None:
            currency = self.currency_json()
            self._local = render(
                local_space(self.catalog, rate=self.rate, currency=currency, money=self.currency),
                compress=True,
            )
        return self._reply(
            self._local,
            tier=CacheTier.CATALOG,
            accept_gzip=accept_gzip,
            if_none_match=if_none_match,
            age=None,
        )
