"""The Cognitia integration kit (integrations/cognitia/pricing.py) against the real service app,
in-process: Open WebUI's FastAPI router -> httpx over an ASGI transport -> create_app(settings).
"""

from __future__ import annotations

import importlib
import json
import sys
import types
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from fastapi import FastAPI, Header, HTTPException
from litestar.testing import AsyncTestClient

from pricing_service.app import create_app
from tests.support.recorded_service import ADMIN, seed_snapshot, service_settings

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

USER_TOKEN = "cognitia-user-session"
LEGACY_KEYS = {
    "model_id",
    "provider",
    "input_usd_per_million",
    "output_usd_per_million",
    "context_window",
    "updated_at",
    "source",
}
COGNITIA = json.loads(
    (Path(__file__).resolve().parents[1] / "fixtures" / "cognitia" / "selector.json").read_text()
)


def _fake_open_webui() -> None:
    """What the drop-in imports from Open WebUI: a verified user or 401."""

    def get_verified_user(authorization: str | None = Header(default=None)) -> dict[str, str]:
        if authorization != f"Bearer {USER_TOKEN}":
            raise HTTPException(status_code=401, detail="Not authenticated")
        return {"id": "user-1"}

    auth = types.ModuleType("open_webui.utils.auth")
    auth.get_verified_user = get_verified_user  # type: ignore[attr-defined]
    for name in ("open_webui", "open_webui.utils"):
        sys.modules.setdefault(name, types.ModuleType(name))
    sys.modules["open_webui.utils.auth"] = auth


class CountingTransport(httpx.ASGITransport):
    """The service app in-process, with every request the kit makes recorded."""

    def __init__(self, app: Any) -> None:
        super().__init__(app=app)
        self.requests: list[httpx.Request] = []
        self.down = False

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if self.down:
            raise httpx.ConnectError("service down", request=request)
        return await super().handle_async_request(request)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Kit:
    def __init__(self, module: Any, transport: CountingTransport, clock: Clock) -> None:
        self.module = module
        self.transport = transport
        self.clock = clock
        app = FastAPI()
        app.include_router(module.router, prefix="/api/v1/pricing", tags=["pricing"])
        self.cognitia = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app),
            base_url="http://cognitia",
            headers={"authorization": f"Bearer {USER_TOKEN}"},
        )


@pytest.fixture
async def kit(database_url: str, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Kit]:
    seed_snapshot(database_url)
    _fake_open_webui()
    sys.modules.pop("integrations.cognitia.pricing", None)
    module = importlib.import_module("integrations.cognitia.pricing")
    assert module.router is not None  # built with Open WebUI's user dependency
    service_app = create_app(service_settings(database_url))
    async with AsyncTestClient(service_app):  # runs the service's lifespan
        transport = CountingTransport(service_app)
        clock = Clock()
        client = module.PricingServiceClient("http://pricing", transport=transport, clock=clock)
        module.set_client(client)
        kit = Kit(module, transport, clock)
        try:
            yield kit
        finally:
            await kit.cognitia.aclose()
            await client.aclose()
            module.set_client(None)
    sys.modules.pop("integrations.cognitia.pricing", None)


async def test_legacy_models_shape_prices_every_spelling(kit: Kit) -> None:
    response = await kit.cognitia.get("/api/v1/pricing/models")
    assert response.status_code == 200
    data = response.json()
    assert set(data) == {"items", "updated_at"}
    by_id = {i["model_id"]: i for i in data["items"]}
    assert len(by_id) == len(data["items"])  # one item per spelling
    for item in data["items"]:
        assert set(item) == LEGACY_KEYS
        assert isinstance(item["updated_at"], int)
        assert isinstance(item["input_usd_per_million"], float)
    assert data["updated_at"] == max(i["updated_at"] for i in data["items"])
    for spelling in ("claude-sonnet-4-20250514", "anthropic/claude-sonnet-4", "claude-sonnet-4"):
        item = by_id[spelling]
        assert (item["input_usd_per_million"], item["output_usd_per_million"]) == (3.0, 15.0)
        assert item["provider"] == "anthropic"
        assert item["context_window"] == 200000
    assert by_id["x-ai/grok-3"]["input_usd_per_million"] == 5.0
    assert by_id["google/gemini-2.0-flash"]["output_usd_per_million"] == 0.4
    assert by_id["cognitia_llm_zerogpu.phi3"]["input_usd_per_million"] == 0.0
    assert by_id["gpt-image-1"]["updated_at"] < by_id["gpt-4o"]["updated_at"]  # its own date
    # Unknown prices have no item (the selector shows "Sin precio aún"), never a 0.
    assert "gpt-4o-2024-05-13" not in by_id
    unknown = await kit.transport.handle_async_request(
        httpx.Request("GET", "http://pricing/api/v1/pricing/models?ids=gpt-4o-2024-05-13")
    )
    await unknown.aread()
    assert json.loads(unknown.content)["items"][0]["price_status"] == "unknown"


async def test_every_id_cognitia_shows_is_priced(kit: Kit) -> None:
    data = (await kit.cognitia.get("/api/v1/pricing/models")).json()
    priced = {i["model_id"] for i in data["items"]}
    shown = {m for ids in COGNITIA["curated_models_by_category"].values() for m in ids}
    shown |= set(COGNITIA["also_seen_in_selector"])
    assert shown - priced == set()


async def test_models_are_cached_with_the_services_etag(kit: Kit) -> None:
    first = (await kit.cognitia.get("/api/v1/pricing/models")).json()
    assert len(kit.transport.requests) == 1
    await kit.cognitia.get("/api/v1/pricing/models")
    assert len(kit.transport.requests) == 1  # within the minute: no call at all
    kit.clock.now += 61
    again = (await kit.cognitia.get("/api/v1/pricing/models")).json()
    assert len(kit.transport.requests) == 2
    revalidation = kit.transport.requests[-1]
    assert revalidation.headers["if-none-match"].startswith('"')
    assert again == first


async def test_service_down_serves_the_last_answer(kit: Kit) -> None:
    first = (await kit.cognitia.get("/api/v1/pricing/models")).json()
    kit.transport.down = True
    kit.clock.now += 61
    response = await kit.cognitia.get("/api/v1/pricing/models")
    assert response.status_code == 200
    assert response.json() == first
    never_cached = await kit.cognitia.get("/api/v1/pricing/prices")
    assert never_cached.status_code == 503


async def test_routes_need_a_verified_user(kit: Kit) -> None:
    for method, path in (("GET", "/models"), ("POST", "/refresh"), ("GET", "/prices")):
        response = await kit.cognitia.request(
            method, "/api/v1/pricing" + path, headers={"authorization": ""}, json={}
        )
        assert response.status_code == 401, path
    assert kit.transport.requests == []


async def test_refresh_reports_status_and_never_refreshes(kit: Kit) -> None:
    response = await kit.cognitia.post(
        "/api/v1/pricing/refresh",
        json={"model_ids": ["gpt-4o", "no-such-model", "claude-sonnet-4-20250514", "phi3:latest"]},
    )
    assert response.status_code == 200
    data = response.json()
    assert data["models"] == {
        "gpt-4o": "priced",
        "no-such-model": "unknown",
        "claude-sonnet-4-20250514": "priced",
        "phi3:latest": "local",
    }
    assert data["items"] == ["no-such-model"]
    assert all(r.url.path != "/api/v1/pricing/refresh" for r in kit.transport.requests)
    sample = await kit.transport.handle_async_request(
        httpx.Request(
            "GET",
            "http://pricing/api/v1/pricing/debug/sample",
            headers={"authorization": f"Bearer {ADMIN}"},
        )
    )
    await sample.aread()
    assert json.loads(sample.content)["unknown_ids_asked"] == {"no-such-model": 1}


async def test_price_for_keeps_unknown_unknown(kit: Kit) -> None:
    price = await kit.module.price_for("claude-sonnet-4-20250514")
    assert price.known
    assert (price.input_usd_per_million, price.output_usd_per_million) == (Decimal(3), Decimal(15))
    assert isinstance(price.input_usd_per_million, Decimal)
    assert price.cost_usd(1234, 567) == Decimal("0.012207")
    assert await kit.module.price_for("no-such-model") is None
    local = await kit.module.price_for("cognitia_llm_zerogpu.phi3")
    assert (local.price_status, local.cost_usd(1000, 1000)) == ("local", 0)
    prices = (await kit.cognitia.get("/api/v1/pricing/prices")).json()["prices"]
    unknown_id = next(k for k, v in prices.items() if v["price_status"] == "unknown")
    unknown = await kit.module.price_for(unknown_id)
    assert unknown is not None
    assert not unknown.known
    assert unknown.input_usd_per_million is None
    assert unknown.cost_usd(1000, 1000) is None


async def test_selector_passthrough(kit: Kit) -> None:
    curated = await kit.cognitia.get("/api/v1/pricing/selector")
    assert curated.status_code == 200
    data = curated.json()
    assert data["view"] == "curated"
    assert {c["id"] for c in data["categories"]} >= {"coding", "local"}
    assert all("order" in c for c in data["categories"])
    everything = (await kit.cognitia.get("/api/v1/pricing/selector?view=all")).json()
    assert everything["view"] == "all"
    assert (await kit.cognitia.get("/api/v1/pricing/selector?view=nope")).status_code == 422
