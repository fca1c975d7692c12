"""Shared pytest wiring: real PostgreSQL and Redis when configured, SQLite always.

PRICING_TEST_DATABASE_URL and PRICING_TEST_REDIS_URL point at dedicated test resources;
without them the tests that need them skip with the reason shown in the summary, unless
PRICING_TEST_REQUIRE_SERVICES=1, which turns a missing service into a failure.

Under pytest-xdist (``make test`` runs the suite on ``TEST_WORKERS`` processes) each worker gets
resources of its own, derived here from the configured ones, so no test needs anything special:
worker ``gwN`` uses the database ``<database>_gwN`` (dropped and created by this wiring, dropped
again at the end) and the Redis index ``<index> + N``. Tests marked ``serial`` (real processes
whose timing matters on a busy machine) run afterwards in a pytest run of their own, on fewer
workers (``SERIAL_WORKERS``, the same ``gwN`` resources).

HYPOTHESIS_PROFILE picks the hypothesis profile: "dev" (the default: random examples, so local
runs keep exploring) or "ci" (what .ci/run sets: derandomized, the same examples on every run,
so a CI result depends on the code alone).
"""

from __future__ import annotations

import logging
import logging.handlers
import os
import shutil
from typing import TYPE_CHECKING
from urllib.parse import urlsplit, urlunsplit

import pytest
import sqlalchemy as sa
from hypothesis import settings as hypothesis_settings

from pricing_service.logs import flush_logs
from pricing_service.migrate import upgrade

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

pytest_plugins = ["tests.support.mcp_upstream"]

REQUIRE_SERVICES = os.environ.get("PRICING_TEST_REQUIRE_SERVICES") == "1"

# Tests that set max_examples themselves keep it; the profile sets it for the others.
hypothesis_settings.register_profile("dev", deadline=None)
hypothesis_settings.register_profile(
    "ci", derandomize=True, max_examples=100, deadline=None, database=None, print_blob=True
)
hypothesis_settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))


@pytest.fixture(autouse=True)
def _logging_left_as_found() -> Iterator[None]:
    """A test that runs the CLI's ``main`` (or ``create_app_from_env``) in this process leaves
    the service's logging behind it: ``configure_logging`` replaces the root's handlers with a
    queue whose writer thread holds the ``sys.stderr`` of that moment, pytest's capture. Every
    later record of the worker went there, and those still queued when pytest closed it were
    written at exit to a closed file ("--- Logging error ---", seen once in a busy CI run).
    After such a test: the queue drained and removed, the root's level as it was."""
    root = logging.getLogger()
    level = root.level
    yield
    queued = [h for h in root.handlers if isinstance(h, logging.handlers.QueueHandler)]
    if queued:
        flush_logs()
        for handler in queued:
            root.removeHandler(handler)
        root.setLevel(level)


def _missing(reason: str) -> None:
    if REQUIRE_SERVICES:
        pytest.fail(f"{reason} (PRICING_TEST_REQUIRE_SERVICES=1)", pytrace=False)
    pytest.skip(reason)


def _xdist_worker() -> tuple[str, int] | None:
    """("gw1", 1) in pytest-xdist's worker gw1; None in a plain run (and in xdist's controller,
    which runs no test)."""
    name = os.environ.get("PYTEST_XDIST_WORKER", "")
    if not name.startswith("gw") or not name[2:].isdigit():
        return None
    return name, int(name[2:])


def _worker_database(url: str, worker: str) -> str:
    """``<database>_<worker>`` on the configured server, dropped and created anew: created through
    the configured database, which must exist (``.ci/run`` creates it)."""
    base = sa.engine.make_url(url)
    name = f"{base.database}_{worker}"
    admin = sa.create_engine(url, isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 3})
    try:
        with admin.connect() as conn:
            quoted = conn.dialect.identifier_preparer.quote(name)
            conn.execute(sa.text(f"DROP DATABASE IF EXISTS {quoted} WITH (FORCE)"))
            conn.execute(sa.text(f"CREATE DATABASE {quoted}"))
    finally:
        admin.dispose()
    return base.set(database=name).render_as_string(hide_password=False)


def _drop_database(url: str, via: str) -> None:
    """Drop the database at ``url``, connected to the one at ``via`` (the configured one)."""
    target = sa.engine.make_url(url)
    admin = sa.create_engine(via, isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 3})
    try:
        with admin.connect() as conn:
            quoted = conn.dialect.identifier_preparer.quote(target.database or "")
            conn.execute(sa.text(f"DROP DATABASE IF EXISTS {quoted} WITH (FORCE)"))
    except sa.exc.SQLAlchemyError:  # a leftover test database is harmless: the next run drops it
        pass
    finally:
        admin.dispose()


def _worker_redis(url: str, offset: int) -> str:
    """The configured Redis URL, its index moved up by ``offset`` (from 0 when it names none)."""
    parts = urlsplit(url)
    path = parts.path.strip("/")
    if path and not path.isdigit():
        pytest.fail(f"PRICING_TEST_REDIS_URL must end in a database index, got {url!r}")
    index = int(path or "0") + offset
    return urlunsplit(parts._replace(path=f"/{index}"))


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A migrated PostgreSQL database, emptied before each test that uses it (a worker's own
    under pytest-xdist)."""
    url = os.environ.get("PRICING_TEST_DATABASE_URL")
    if not url:
        _missing("PRICING_TEST_DATABASE_URL not set: PostgreSQL tests skipped")
    assert url is not None
    configured, worker = url, _xdist_worker()
    try:
        if worker is not None:
            url = _worker_database(configured, worker[0])
        engine = sa.create_engine(url, connect_args={"connect_timeout": 3})
        try:
            with engine.begin() as conn:
                conn.execute(sa.text("DROP SCHEMA IF EXISTS public CASCADE"))
                conn.execute(sa.text("CREATE SCHEMA public"))
        finally:
            engine.dispose()
    except sa.exc.OperationalError as exc:
        _missing(f"PostgreSQL at PRICING_TEST_DATABASE_URL unreachable: {exc.orig}")
    upgrade(url)
    yield url
    if worker is not None:
        _drop_database(url, via=configured)


@pytest.fixture(scope="session")
def _redis_base_url() -> str:
    """The Redis index of this run (a worker's own under pytest-xdist), checked to exist."""
    import redis

    url = os.environ.get("PRICING_TEST_REDIS_URL")
    if not url:
        _missing("PRICING_TEST_REDIS_URL not set: Redis tests skipped")
    assert url is not None
    worker = _xdist_worker()
    if worker is not None:
        url = _worker_redis(url, worker[1])
    client = redis.Redis.from_url(url, socket_connect_timeout=2)
    try:
        client.ping()
    except redis.exceptions.ConnectionError as exc:
        _missing(f"Redis at PRICING_TEST_REDIS_URL unreachable: {exc}")
    except redis.exceptions.ResponseError as exc:  # SELECT past the server's `databases`
        pytest.fail(
            f"Redis index of {url} unusable ({exc}): under pytest-xdist worker gwN uses the "
            "configured index + N; configure a lower index or fewer workers",
            pytrace=False,
        )
    finally:
        client.close()
    return url


@pytest.fixture
def redis_url(_redis_base_url: str) -> str:
    """A dedicated Redis database index, flushed for each test."""
    import redis

    client = redis.Redis.from_url(_redis_base_url, socket_connect_timeout=2)
    try:
        client.flushdb()
    except redis.exceptions.ConnectionError as exc:
        _missing(f"Redis at PRICING_TEST_REDIS_URL unreachable: {exc}")
    finally:
        client.close()
    return _redis_base_url


def _empty_tables(url: str) -> None:
    from pricing_service.tables import metadata

    engine = sa.create_engine(url)
    with engine.begin() as conn:
        for table in reversed(metadata.sorted_tables):
            conn.execute(table.delete())
    engine.dispose()


@pytest.fixture(scope="session")
def _migrated_sqlite(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite file migrated once per process: each test's database is a copy of it (a file
    copy is a millisecond, the migration a sixth of a second of CPU, for some 200 tests)."""
    path = tmp_path_factory.mktemp("migrated-sqlite") / "pricing.db"
    upgrade(f"sqlite:///{path}")
    return path


@pytest.fixture
def sqlite_url(tmp_path: Path, _migrated_sqlite: Path) -> str:
    """A migrated SQLite database of the test's own (a copy of the one migrated once)."""
    path = tmp_path / "pricing.db"
    shutil.copyfile(_migrated_sqlite, path)
    return f"sqlite:///{path}"


@pytest.fixture
def database_url_pg(postgres_url: str) -> str:
    """The PostgreSQL test database, emptied."""
    _empty_tables(postgres_url)
    return postgres_url


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest) -> str:
    """Each test using it runs on both engines."""
    if request.param == "sqlite":
        return str(request.getfixturevalue("sqlite_url"))
    return str(request.getfixturevalue("database_url_pg"))
