"""Stored snapshots for tests whose subject is not the refresh: what a good run leaves behind.

A full refresh over MCP is 534 calls and seconds of work; storing its result takes milliseconds.
``store_snapshot`` records a succeeded run and stores the recording through the refresher's own
storing step, so the run, the debug sample, the history, the gate's baseline, second-source
holds and the views look as they do after a real run.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

from pricing_service.db import create_db_engine
from pricing_service.domain import Catalog, SnapshotSource
from pricing_service.repository import Repository
from pricing_service.second_source import second_source
from pricing_service.write import SnapshotWriter
from tests.support.recording import CATALOG, normalized_recording

if TYPE_CHECKING:
    from collections.abc import Collection, Iterable, Sequence

    from pricing_service.domain import (
        ModelPrice,
        NormalizedListing,
        RunSummary,
        SecondPrice,
        SnapshotInfo,
    )

WEEK = 7 * 24 * 3600  # the delisting grace the service uses by default

# A catalog that names nothing: no curated ids, aliases, overrides or decisions.
EMPTY_CATALOG = Catalog(
    categories=(), aliases={}, specials={}, overrides={}, local_models=(), hardware={}
)


class NoSecondOpinion:
    """No second source: no cross-check figures, no fills (a listing stored as it is)."""

    version = "none"

    def prices(
        self, prices: Iterable[ModelPrice], *, at: datetime | None = None
    ) -> dict[str, SecondPrice]:
        return {}

    def unlisted(
        self, listed: Sequence[ModelPrice], *, at: datetime, keep: Collection[str] = ()
    ) -> tuple[ModelPrice, ...]:
        return ()

    def with_call_prices_and_tiers(
        self, prices: Iterable[ModelPrice], *, at: datetime
    ) -> tuple[ModelPrice, ...]:
        return tuple(prices)


def writer(repository: Repository, catalog: Catalog = CATALOG) -> SnapshotWriter:
    """The service's write step (plan, then one transaction) as a refresh run uses it."""
    return SnapshotWriter(repository, catalog=catalog, second=second_source(), grace_seconds=WEEK)


def unmatched_ids(repository: Repository, listing: NormalizedListing) -> list[str]:
    """The service's own rule (``SnapshotWriter.unmatched``) for the snapshot's unmatched ids."""
    return writer(repository).unmatched(listing)


def store_listing(
    repository: Repository,
    listing: NormalizedListing,
    *,
    fetched_at: datetime,
    source: str = SnapshotSource.PRICEPERTOKEN,
) -> SnapshotInfo:
    """``listing`` stored as the current snapshot through the write step with no run, no
    catalog and no second opinion: its prices as they are, the gate's per-model checks only."""
    bare = SnapshotWriter(
        repository, catalog=EMPTY_CATALOG, second=NoSecondOpinion(), grace_seconds=WEEK
    )
    info, _ = bare.store_listing(
        listing,
        run_id=None,
        source=source,
        planned_at=fetched_at,
        fetched_at=fetched_at,
        finished_at=fetched_at,
    )
    return info


def store_snapshot(
    repository: Repository,
    listing: NormalizedListing | None = None,
    *,
    fetched_at: datetime | None = None,
    trigger: str = "test",
    catalog: Catalog = CATALOG,
) -> tuple[SnapshotInfo, RunSummary]:
    """A succeeded run that stored ``listing`` (default: the recording) as the current prices.

    Stored by the refresher's own storing step (``SnapshotWriter.gate_and_store``: the gate, the
    second source, the per-model plan, one transaction), so the state is exactly what a real run
    over MCP leaves; only the fetch is skipped.
    """
    listing = listing or normalized_recording()
    at = fetched_at or datetime.now(UTC)
    run = repository.start_run(trigger, at)
    held, info, _ = writer(repository, catalog).gate_and_store(
        run.id, listing, at, None, source=SnapshotSource.PRICEPERTOKEN
    )
    assert held is None, held
    assert info is not None
    stored = repository.get_run(run.id)
    assert stored is not None
    return info, stored


def store_snapshot_at(
    database_url: str,
    listing: NormalizedListing | None = None,
    *,
    catalog: Catalog = CATALOG,
) -> tuple[SnapshotInfo, RunSummary]:
    """``store_snapshot`` into the database at ``database_url`` (migrated), before a service
    starts on it: the service then finds prices and does not store the bundled seed."""
    engine = create_db_engine(database_url)
    try:
        return store_snapshot(Repository(engine), listing, catalog=catalog)
    finally:
        engine.dispose()


def stored_run(database_url: str, run_id: int) -> RunSummary | None:
    """Run ``run_id`` as the database at ``database_url`` records it (after a service stopped)."""
    engine = create_db_engine(database_url)
    try:
        return Repository(engine).get_run(run_id)
    finally:
        engine.dispose()
