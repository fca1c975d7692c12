"""Stored snapshots for tests whose subject is not the refresh: what a good run leaves behind.

A full refresh over MCP is 534 calls and seconds of work; storing its result takes milliseconds.
``store_snapshot`` records a succeeded run and stores the recording through the refresher's own
storing step, so the run, the debug sample, the history, the gate's baseline, second-source
holds and the views look as they do after a real run.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

from pricing_service.lock import DatabaseRefreshLock
from pricing_service.refresh import Refresher
from pricing_service.repository import Repository, create_db_engine
from pricing_service.upstream import PricePerTokenClient
from tests.support.recording import CATALOG, normalized_recording

if TYPE_CHECKING:
    from pricing_service.domain import Catalog, NormalizedListing, RunSummary, SnapshotInfo

WEEK = 7 * 24 * 3600  # the delisting grace the service uses by default

# Nothing listens here; the refresher below is only asked which catalog ids are unmatched.
_NO_UPSTREAM = "http://127.0.0.1:9/mcp"


async def _nowhere(info: SnapshotInfo) -> None:
    return None


def _refresher(repository: Repository, catalog: Catalog = CATALOG) -> Refresher:
    """A refresher that never fetches: only its storing path is used."""
    return Refresher(
        repository=repository,
        client=PricePerTokenClient(_NO_UPSTREAM),
        catalog=catalog,
        lock=DatabaseRefreshLock(repository, 60),
        publish=_nowhere,
        interval_seconds=43200,
        grace_seconds=WEEK,
    )


def unmatched_ids(repository: Repository, listing: NormalizedListing) -> list[str]:
    """The service's own rule (``Refresher.unmatched``) for the snapshot's unmatched ids."""
    return _refresher(repository).unmatched(listing)


def store_snapshot(
    repository: Repository,
    listing: NormalizedListing | None = None,
    *,
    fetched_at: datetime | None = None,
    trigger: str = "test",
    catalog: Catalog = CATALOG,
) -> tuple[SnapshotInfo, RunSummary]:
    """A succeeded run that stored ``listing`` (default: the recording) as the current prices.

    Stored by the refresher's own storing step (``Refresher._gate_and_store``: the gate, the
    second source, the per-model plan, one transaction), so the state is exactly what a real run
    over MCP leaves; only the fetch is skipped.
    """
    listing = listing or normalized_recording()
    at = fetched_at or datetime.now(UTC)
    run = repository.start_run(trigger, at)
    held, info, _ = _refresher(repository, catalog)._gate_and_store(run.id, listing, at, None)
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
