"""One service per test module and engine, for modules whose tests only read what it serves.

Building a service for a test costs about a second of CPU (migrating a database, storing the
recorded snapshot, the app's startup and its first renders); a module of 60 to 100 such tests
spent minutes of ``make test`` on it. A module using these builds its databases once per engine
(module-scoped fixtures) and runs its tests on the module's event loop
(``pytestmark = pytest.mark.asyncio(loop_scope="module")``), so one app serves them all. Such a
module uses no per-test database fixture on PostgreSQL (``database_url_pg`` empties the tables
the shared service reads); a test there that changes what the service holds in memory (counts,
limits) builds a service of its own on the module's database. Tests that need an empty database
per test (they refresh, accept or count) and the reads that can share live in two files (as
test_api.py and test_api_refresh.py do): ``database_url_pg`` and ``redis_url`` would empty what
the shared service holds in the middle of the module. A module whose shared service is on a SQLite
file of its own (test_edge.py, test_fast_path.py) may keep both.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import redis
import sqlalchemy as sa

from pricing_service.migrate import upgrade
from pricing_service.tables import metadata

if TYPE_CHECKING:
    import pytest


def module_sqlite(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A migrated SQLite database of the module's own."""
    url = f"sqlite:///{tmp_path_factory.mktemp('module-db') / 'pricing.db'}"
    upgrade(url)
    return url


def module_postgres(request: pytest.FixtureRequest) -> str:
    """The run's PostgreSQL database (tests/conftest.py's ``postgres_url``), emptied for the
    module."""
    url = str(request.getfixturevalue("postgres_url"))
    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:
            for table in reversed(metadata.sorted_tables):
                conn.execute(table.delete())
    finally:
        engine.dispose()
    return url


def module_redis(request: pytest.FixtureRequest) -> str:
    """The run's Redis index (tests/conftest.py's ``_redis_base_url``), flushed for the module."""
    url = str(request.getfixturevalue("_redis_base_url"))
    client = redis.Redis.from_url(url, socket_connect_timeout=2)
    try:
        client.flushdb()
    finally:
        client.close()
    return url


def module_database(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> str:
    """The module's database for the fixture's param: ``sqlite`` or ``postgresql``, alone or as
    a stack's first part (``sqlite+memory``, ``postgresql+redis``)."""
    engine = str(request.param).partition("+")[0]
    if engine == "sqlite":
        return module_sqlite(tmp_path_factory)
    if engine == "postgresql":
        return module_postgres(request)
    raise ValueError(f"no module database for {request.param!r}")


def module_stack(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> tuple[str, dict[str, Any]]:
    """The module's database for a stack param (``sqlite+memory``, ``postgresql+redis``) and the
    settings that give it its cache: ``redis_url`` on the module's flushed index with ``+redis``."""
    database_url = module_database(request, tmp_path_factory)
    if str(request.param).endswith("+redis"):
        return database_url, {"redis_url": module_redis(request)}
    return database_url, {}
