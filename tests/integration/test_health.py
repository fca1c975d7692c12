"""Liveness, readiness and the OpenAPI document."""

from __future__ import annotations

from typing import TYPE_CHECKING

from litestar.testing import AsyncTestClient

from pricing_service.app import create_app
from pricing_service.config import Settings

if TYPE_CHECKING:
    from pathlib import Path


async def test_health_ready_and_schema(database_url: str) -> None:
    app = create_app(Settings(database_url=database_url))
    async with AsyncTestClient(app) as client:
        health = await client.get("/health")
        assert health.status_code == 200
        assert health.json() == {"status": "ok"}
        ready = await client.get("/ready")
        assert ready.status_code == 200, ready.text
        assert ready.json()["ready"] is True
        schema = await client.get("/schema/openapi.json")
        assert schema.status_code == 200
        assert "/health" in schema.json()["paths"]


async def test_ready_is_503_with_reason_before_migrations(tmp_path: Path) -> None:
    app = create_app(Settings(database_url=f"sqlite:///{tmp_path / 'empty.db'}"))
    async with AsyncTestClient(app) as client:
        assert (await client.get("/health")).status_code == 200
        ready = await client.get("/ready")
        assert ready.status_code == 503
        assert "migrate" in ready.json()["reason"]
