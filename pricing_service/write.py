"""The one write step: plan against the current prices, then store the plan in one transaction.

A refresh run, a held run an operator accepts, accepted held prices and the bundled seed all go
through ``SnapshotWriter``: it is the only caller of ``gate.plan_snapshot`` on the write side,
and ``Repository.apply_plan`` (snapshot_store.py) stores what it planned, planning nothing.
Synchronous: the refresher calls it in a worker thread.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

from pricing_service.catalog import upstream_priced
from pricing_service.domain import PriceBasis, SnapshotSource, utcnow
from pricing_service.gate import (
    cross_source_report,
    curated_without_price,
    plan_snapshot,
    run_hold_reason,
)
from pricing_service.normalize import PriceIndex

if TYPE_CHECKING:
    from collections.abc import Collection, Iterable, Mapping, Sequence
    from datetime import datetime

    from pricing_service.domain import (
        Catalog,
        CrossSourceReport,
        ModelPrice,
        NormalizedListing,
        RunSummary,
        SecondPrice,
        SnapshotInfo,
    )
    from pricing_service.gate import Plan
    from pricing_service.repository import Repository


class SecondOpinion(Protocol):
    """A second price source beside the listing's (genai-prices, ``second_source.SecondSource``):
    its figures for the models it knows (the per-model cross-check) and the models of the listed
    authors the listing lacks (fills)."""

    @property
    def version(self) -> str: ...

    def prices(
        self, prices: Iterable[ModelPrice], *, at: datetime | None = None
    ) -> dict[str, SecondPrice]: ...

    def unlisted(
        self, listed: Sequence[ModelPrice], *, at: datetime, keep: Collection[str] = ()
    ) -> tuple[ModelPrice, ...]: ...

    def with_call_prices_and_tiers(
        self, prices: Iterable[ModelPrice], *, at: datetime
    ) -> tuple[ModelPrice, ...]: ...


class SnapshotWriter:
    """Plans and stores: the run gate, the per-model plan, one transaction."""

    def __init__(
        self,
        repository: Repository,
        *,
        catalog: Catalog,
        second: SecondOpinion,
        grace_seconds: float,
    ) -> None:
        self.repository = repository
        self.catalog = catalog
        self.second = second
        self.grace_seconds = grace_seconds

    def gate_and_store(
        self,
        run_id: int,
        listing: NormalizedListing,
        fetched_at: datetime,
        latency_ms: int | None,
        *,
        source: str,
    ) -> tuple[RunSummary | None, SnapshotInfo | None, int]:
        """A run's listing: the run gate (held: recorded, prices unchanged), else the plan and
        one transaction. Returns (held run, snapshot, changes)."""
        current = self.repository.current_prices()
        lost = curated_without_price(
            self.curated_upstream_ids(),
            self.catalog.aliases,
            list(current.values()),
            listing.prices,
        )
        reason = run_hold_reason(listing, self.repository.baseline(), lost)
        second_prices = self.second.prices(listing.prices, at=fetched_at)
        if reason is not None:
            held = self.repository.hold_run(
                run_id,
                reason=reason,
                listing=listing,
                now=utcnow(),
                latency_ms=latency_ms,
                cross_source=self.cross_source(listing, second_prices, None),
                source=source,
            )
            return held, None, 0
        snapshot, applied = self.store_listing(
            listing,
            run_id=run_id,
            source=source,
            planned_at=fetched_at,
            fetched_at=fetched_at,
            finished_at=utcnow(),
            current=current,
            second_prices=second_prices,
            latency_ms=latency_ms,
        )
        return None, snapshot, applied

    def store_listing(
        self,
        listing: NormalizedListing,
        *,
        run_id: int | None,
        source: str,
        planned_at: datetime,
        fetched_at: datetime,
        finished_at: datetime,
        current: Mapping[str, ModelPrice] | None = None,
        second_prices: Mapping[str, SecondPrice] | None = None,
        **apply: Any,
    ) -> tuple[SnapshotInfo, int]:
        """Plan a whole listing against the current prices and store it (a run that passed the
        gate, a held run an operator accepted, the seed): the second source's fills and
        figures, the operators' vouched figures and baselines, the catalog's decisions."""
        if current is None:
            current = self.repository.current_prices()
        if second_prices is None:
            second_prices = self.second.prices(listing.prices, at=fetched_at)
        # Every model with the per-call prices the second source states (the listing has none).
        proposed = self.second.with_call_prices_and_tiers(
            listing.prices + self.unlisted(listing, current, fetched_at), at=fetched_at
        )
        plan = plan_snapshot(
            current,
            proposed,
            now=planned_at,
            grace_seconds=self.grace_seconds,
            free_ids=self.catalog.free,
            second_prices=second_prices,
            vouched=self.repository.vouched_figures(),
            baselines=self.repository.price_baselines(),
            detail_failed=listing.detail_failed,
            decisions=self.catalog.decisions,
        )
        return self.repository.apply_plan(
            plan,
            run_id=run_id,
            listing=listing,
            source=source,
            fetched_at=fetched_at,
            unmatched_ids=self.unmatched(listing),
            finished_at=finished_at,
            cross_source=self.cross_source(listing, second_prices, plan),
            **apply,
        )

    def store_accepted(
        self, proposals: Sequence[ModelPrice], *, by: str, figure: str, now: datetime
    ) -> SnapshotInfo:
        """Held prices an operator accepted, applied over the current prices (nothing else
        changes): the snapshot keeps the current one's source and fetch time."""
        plan = plan_snapshot(
            self.repository.current_prices(),
            proposals,
            now=now,
            grace_seconds=self.grace_seconds,
            free_ids=self.catalog.free,
            accepted_ids=tuple(sorted(p.model_id for p in proposals)),
            full_listing=False,
        )
        baseline = self.repository.latest_snapshot()
        assert baseline is not None, "held prices exist only beside a current snapshot"
        snapshot, _ = self.repository.apply_plan(
            plan,
            run_id=None,
            listing=None,
            source=baseline.source,
            fetched_at=baseline.fetched_at,
            finished_at=now,
            accepted_by=by,
            accepted_figure=figure,
        )
        return snapshot

    def store_seed(self, listing: NormalizedListing, recorded_at: datetime) -> SnapshotInfo:
        """The bundled recording into an empty database, planned and checked like a run: a
        price the second source contradicts is stored held (under a "seeded" run), not served."""
        snapshot, _ = self.store_listing(
            listing,
            run_id=None,
            source=SnapshotSource.SEED,
            planned_at=recorded_at,
            fetched_at=recorded_at,
            finished_at=recorded_at,
        )
        return snapshot

    def unlisted(
        self, listing: NormalizedListing, current: Mapping[str, ModelPrice], at: datetime
    ) -> tuple[ModelPrice, ...]:
        """The second source's prices for the models of the listed authors the listing does
        not list: not for a catalog override's model, nor for a model of the listing's source
        still served in its delisting grace (``SecondSource.unlisted``)."""
        upstream_kept = [
            model_id
            for model_id, price in current.items()
            if price.price_basis is not PriceBasis.SECOND_SOURCE
        ]
        return self.second.unlisted(
            listing.prices, at=at, keep=[*self.catalog.overrides, *upstream_kept]
        )

    def cross_source(
        self,
        listing: NormalizedListing,
        second_prices: Mapping[str, SecondPrice],
        plan: Plan | None,
    ) -> CrossSourceReport:
        """The run's prices beside the second source's (the held ones marked)."""
        held = {d.model_id for d in plan.doubts} if plan is not None else set()
        return cross_source_report(
            listing.prices, second_prices, version=self.second.version, held_ids=held
        )

    def curated_upstream_ids(self) -> list[str]:
        """Curated ids the listing prices (not local, not priced by a catalog override)."""
        curated = (mid for category in self.catalog.categories for mid in category.model_ids)
        return upstream_priced(self.catalog, curated)

    def unmatched(self, listing: NormalizedListing) -> list[str]:
        """Catalog ids (not local, without a price override) that no listed model matches."""
        index = PriceIndex(listing.prices, self.catalog.aliases)
        return index.unmatched(upstream_priced(self.catalog))
