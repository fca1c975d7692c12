"""Wiring shared by the integration tests: repositories, refreshers and running services.

Most tests read prices rather than fetch them: they start from a stored snapshot of the
recording (``tests.support.snapshots``), which takes milliseconds, instead of a 534-call
refresh over MCP. Tests whose subject is the refresh itself make real ones.
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING

import anyio.to_thread
import pytest
from litestar.testing import AsyncTestClient

from pricing_service.app import create_app
from pricing_service.catalog import load_catalog
from pricing_service.db import create_db_engine
from pricing_service.listings.pricepertoken import PricePerTokenSource
from pricing_service.lock import DatabaseRefreshLock
from pricing_service.refresh import Refresher
from pricing_service.repository import Repository
from pricing_service.upstream import PricePerTokenClient
from tests.support.recording import CATALOG, CATALOG_DIR
from tests.support.settings import settings_for
from tests.support.snapshots import WEEK, store_snapshot_at

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
    from pathlib import Path

    from litestar import Litestar

    from pricing_service.domain import SnapshotInfo
    from pricing_service.lock import RefreshLock
    from tests.support.mcp_upstream import LoopbackUpstream

    MakeRefresher = Callable[..., Refresher]


@pytest.fixture
def repository(database_url: str) -> Iterator[Repository]:
    """A repository on each engine (SQLite, PostgreSQL), on an empty migrated database."""
    engine = create_db_engine(database_url)
    yield Repository(engine)
    engine.dispose()


@pytest.fixture
def published() -> list[SnapshotInfo]:
    """Every snapshot the test's refreshers published, in order."""
    return []


@pytest.fixture
def make_refresher(
    repository: Repository,
    mcp_upstream: LoopbackUpstream,
    published: list[SnapshotInfo],
    catalog_dir: Path,
) -> MakeRefresher:
    """Refreshers on the test's repository and loopback upstream; each publishes to ``published``.

    Keywords: ``lock`` (default a database lock with a 120 s lease), ``call_timeout``,
    ``run_timeout`` and ``list_limit`` for the client, ``grace_seconds`` for delisted models.
    """

    catalog = CATALOG if catalog_dir == CATALOG_DIR else load_catalog(catalog_dir)

    async def publish_(info: SnapshotInfo) -> None:
        published.append(info)

    def make(
        *,
        lock: RefreshLock | None = None,
        call_timeout: float = 5.0,
        run_timeout: float = 60.0,
        list_limit: int = 5000,
        grace_seconds: float = WEEK,
    ) -> Refresher:
        return Refresher(
            repository=repository,
            source=PricePerTokenSource(
                PricePerTokenClient(
                    mcp_upstream.url,
                    call_timeout=call_timeout,
                    run_timeout=run_timeout,
                    retries=2,
                    backoff=0.01,
                    list_limit=list_limit,
                )
            ),
            catalog=catalog,
            lock=lock or DatabaseRefreshLock(repository.engine, 120),
            publish=publish_,
            interval_seconds=43200,
            grace_seconds=grace_seconds,
        )

    return make


class _ScheduledReports(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.sleeping = threading.Event()

    def emit(self, record: logging.LogRecord) -> None:
        if record.getMessage().startswith("refresh.scheduled"):
            self.sleeping.set()


@pytest.fixture
def scheduler_asleep() -> Iterator[Callable[[], Awaitable[None]]]:
    """``await scheduler_asleep()`` returns once a service started in this test has reported
    ``refresh.scheduled``: its scheduler's startup reads (stale runs, seed, when due) are done
    and it sleeps. A test that breaks the database's connections waits for it first, so it
    breaks the requests it means to, not a startup read racing with it.
    """
    logger = logging.getLogger("pricing_service.refresh")
    reports = _ScheduledReports()
    level = logger.level
    logger.setLevel(logging.INFO)
    logger.addHandler(reports)

    async def wait() -> None:
        with anyio.fail_after(60):
            while not await anyio.to_thread.run_sync(reports.sleeping.wait, 1.0):
                pass

    try:
        yield wait
    finally:
        logger.removeHandler(reports)
        logger.setLevel(level)


@pytest.fixture
def catalog_dir() -> Path:
    """The catalog the ``client`` service and the ``make_refresher`` refreshers use: the
    repository's. A module about holds the operators' decisions settle overrides it with
    ``tests.support.recording.undecided_catalog_dir()``."""
    return CATALOG_DIR


@pytest.fixture(params=["sqlite+memory", "postgresql+redis"])
async def client(
    request: pytest.FixtureRequest, mcp_upstream: LoopbackUpstream, catalog_dir: Path
) -> AsyncIterator[AsyncTestClient[Litestar]]:
    """A service on each stack, holding the recorded prices as a good run left them.

    The snapshot (and its succeeded run, finished just now) is stored before the service starts;
    the service loads the database's current snapshot in its lifespan, as after a refresh. No
    upstream call is made. A test that needs a real
    refresh POSTs one with ``"force": true``.
    """
    if request.param == "sqlite+memory":
        database_url = request.getfixturevalue("sqlite_url")
        settings = settings_for(database_url, mcp_upstream.url, pricing_catalog_dir=catalog_dir)
    else:
        database_url = request.getfixturevalue("database_url_pg")
        settings = settings_for(
            database_url,
            mcp_upstream.url,
            redis_url=request.getfixturevalue("redis_url"),
            pricing_catalog_dir=catalog_dir,
        )
    store_snapshot_at(database_url, catalog=load_catalog(catalog_dir))
    async with AsyncTestClient(create_app(settings)) as c:
        yield c
