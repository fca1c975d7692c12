"""The read path: which view, which bytes, which ETag."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import anyio.to_thread

if TYPE_CHECKING:
    from pricing_service.repository import Repository


class PricingService:
    def __init__(self, repository: Repository) -> None:
        self.repository = repository

    async def readiness(self) -> dict[str, Any]:
        try:
            revision = await anyio.to_thread.run_sync(self.repository.schema_revision)
        except Exception as exc:  # any driver error means the database cannot be used now
            return {"ready": False, "reason": f"database unreachable: {type(exc).__name__}"}
        if revision is None:
            return {
                "ready": False,
                "reason": "database not migrated: run `pricing-service migrate`",
            }
        return {"ready": True, "database": "ok", "schema_revision": revision}
