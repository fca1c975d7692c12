"""A service app over the recorded 2026-04-29 listing, stored directly (no MCP refresh)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from pricing_service.config import Settings
from pricing_service.db import create_db_engine
from pricing_service.domain import NormalizedListing, SnapshotInfo
from pricing_service.repository import Repository
from pricing_service.second_source import second_source
from tests.support.recording import CATALOG_DIR, normalized_recording
from tests.support.snapshots import store_listing

ADMIN = "admin-token-for-client-tests"
# Nothing listens here: a test that reached the upstream would fail, not hang.
NO_UPSTREAM = "http://127.0.0.1:9/mcp"


def recorded_listing() -> NormalizedListing:
    """The recording as a refresh normalizes it (``tests.support.recording``, parsed once)."""
    return normalized_recording()


def seed_snapshot(database_url: str, *, age: timedelta = timedelta(minutes=30)) -> SnapshotInfo:
    """Store the recorded listing as the current snapshot, fetched ``age`` ago, each price with
    the long-context tiers genai-prices states for it (a refresh stores them so)."""
    engine = create_db_engine(database_url)
    fetched_at = datetime.now(UTC) - age
    listing = recorded_listing()
    second = second_source()
    tiered = tuple(
        replace(p, long_context_tiers=second.long_context_tiers(p.provider, p.model_id))
        for p in listing.prices
    )
    try:
        info = store_listing(
            Repository(engine), replace(listing, prices=tiered), fetched_at=fetched_at
        )
    finally:
        engine.dispose()
    return info


def service_settings(database_url: str, **extra: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": database_url,
        "pricepertoken_mcp_url": NO_UPSTREAM,
        "pricing_refresh_on_startup": False,
        "pricing_admin_token": ADMIN,
        "pricing_catalog_dir": CATALOG_DIR,
    }
    values.update(extra)
    return Settings(**values)
