"""Shared pytest wiring: real PostgreSQL and Redis when configured, SQLite always.

PRICING_TEST_DATABASE_URL and PRICING_TEST_REDIS_URL point at dedicated test resources;
without them the tests that need them skip with the reason shown in the summary, unless
PRICING_TEST_REQUIRE_SERVICES=1, which turns a missing service into a failure.

HYPOTHESIS_PROFILE picks the hypothesis profile: "dev" (the default: random examples, so local
runs keep exploring) or "ci" (what .ci/run sets: derandomized, the same examples on every run,
so a CI result depends on the code alone).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import pytest
import sqlalchemy as sa
from hypothesis import settings as hypothesis_settings

from pricing_service.migrate import upgrade

if TYPE_CHECKING:
    from pathlib import Path

pytest_plugins = ["tests.support.mcp_upstream"]

REQUIRE_SERVICES = os.environ.get("PRICING_TEST_REQUIRE_SERVICES") == "1"

# Tests that set max_examples themselves keep it; the profile sets it for the others.
hypothesis_settings.register_profile("dev", deadline=None)
hypothesis_settings.register_profile(
    "ci", derandomize=True, max_examples=100, deadline=None, database=None, print_blob=True
)
hypothesis_settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))


def _missing(reason: str) -> None:
    if REQUIRE_SERVICES:
        pytest.fail(f"{reason} (PRICING_TEST_REQUIRE_SERVICES=1)", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def postgres_url() -> str:
    """A migrated PostgreSQL database, emptied before each test that uses it."""
    url = os.environ.get("PRICING_TEST_DATABASE_URL")
    if not url:
        _missing("PRICING_TEST_DATABASE_URL not set: PostgreSQL tests skipped")
    assert url is not None
    engine = sa.create_engine(url, connect_args={"connect_timeout": 3})
    try:
        with engine.begin() as conn:
            conn.execute(sa.text("DROP SCHEMA IF EXISTS public CASCADE"))
            conn.execute(sa.text("CREATE SCHEMA public"))
    except sa.exc.OperationalError as exc:
        _missing(f"PostgreSQL at PRICING_TEST_DATABASE_URL unreachable: {exc.orig}")
    finally:
        engine.dispose()
    upgrade(url)
    return url


@pytest.fixture
def redis_url() -> str:
    """A dedicated Redis database index, flushed for each test."""
    import redis

    url = os.environ.get("PRICING_TEST_REDIS_URL")
    if not url:
        _missing("PRICING_TEST_REDIS_URL not set: Redis tests skipped")
    assert url is not None
    client = redis.Redis.from_url(url, socket_connect_timeout=2)
    try:
        client.flushdb()
    except redis.exceptions.ConnectionError as exc:
        _missing(f"Redis at PRICING_TEST_REDIS_URL unreachable: {exc}")
    finally:
        client.close()
    return url


def _empty_tables(url: str) -> None:
    from pricing_service.tables import metadata

    engine = sa.create_engine(url)
    with engine.begin() as conn:
        for table in reversed(metadata.sorted_tables):
            conn.execute(table.delete())
    engine.dispose()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'pricing.db'}"
    upgrade(url)
    return url


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
