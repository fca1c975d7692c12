"""Service settings and tokens for tests that run the app in process."""

from __future__ import annotations

from typing import Any

from pricing_service.config import Settings
from tests.support.recording import CATALOG_DIR

CRON = "cron-token-for-tests-c7f1"
ADMIN = "admin-token-for-tests-9a2e"
WRONG = "wrong-token-for-tests-4b8d"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def settings_for(database_url: str, upstream_url: str, **extra: Any) -> Settings:
    """Both tokens set, no refresh at startup, the repository's catalog, generous timeouts."""
    values: dict[str, Any] = {
        "database_url": database_url,
        "pricepertoken_mcp_url": upstream_url,
        "pricing_refresh_on_startup": False,
        "pricing_cron_token": CRON,
        "pricing_admin_token": ADMIN,
        "pricing_upstream_call_timeout_seconds": 5,
        "pricing_upstream_run_timeout_seconds": 60,
        # A bound on a database read, wide for a loaded machine (3 s, the service's default,
        # gave a healthy SQLite read a 503 under load); tests of a stall set the default.
        "pricing_database_wait_seconds": 20.0,
        "pricing_catalog_dir": CATALOG_DIR,
    }
    values.update(extra)
    return Settings(**values)
