"""The Cognitia integration kit (integrations/cognitia/pricing.py) against the real service app,
in-process: Open WebUI's FastAPI router -> httpx over an ASGI transport -> create_app(settings).
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import json
import os
import sys
import types
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest
import pytest_asyncio
from fastapi import FastAPI, Header, HTTPException
from litestar.testing import AsyncTestClient

from integrations.cognitia.budget_prices import BudgetPrices
from pricing_service.app import create_app
from pricing_service.migrate import upgrade
from tests.support.mcp_upstream import LoopbackUpstream
from tests.support.process import ServiceProcess, free_port
from tests.support.recorded_service import ADMIN, seed_snapshot, service_settings
from tests.support.recording import CATALOG_DIR
from tests.support.settings import CRON, bearer
from tests.support.shared_service import module_database

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterator

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


# One service per engine for the module (tests/support/shared_service.py), on its own databases;
# each test gets a kit of its own (a fresh import, client, transport and clock) on it. The kit's
# tests only read; the one that counts the unknown ids asked has a service of its own
# (``own_kit``). They run on the module's event loop, as the service does.
ON_SHARED = pytest.mark.asyncio(loop_scope="module")


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def module_database_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> str:
    return module_database(request, tmp_path_factory)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def service_app(module_database_url: str) -> AsyncIterator[Any]:
    """The service app over the recorded prices, its lifespan run once for the module."""
    seed_snapshot(module_database_url)
    app = create_app(service_settings(module_database_url))
    async with AsyncTestClient(app):
        yield app


@contextlib.asynccontextmanager
async def _kit_on(service_app: Any) -> AsyncIterator[Kit]:
    """The drop-in imported anew, with a client of its own on ``service_app``."""
    _fake_open_webui()
    sys.modules.pop("integrations.cognitia.pricing", None)
    module = importlib.import_module("integrations.cognitia.pricing")
    assert module.router is not None  # built with Open WebUI's user dependency
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


@pytest_asyncio.fixture(loop_scope="module")
async def kit(service_app: Any) -> AsyncIterator[Kit]:
    async with _kit_on(service_app) as kit:
        yield kit


@pytest_asyncio.fixture(loop_scope="module")
async def own_kit(service_app: Any, module_database_url: str) -> AsyncIterator[Kit]:
    """A kit on a service of the test's own on the module's database (stored by
    ``service_app``): its counts start at zero."""
    app = create_app(service_settings(module_database_url))
    async with AsyncTestClient(app), _kit_on(app) as kit:
        yield kit


@ON_SHARED
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


# -- every id Cognitia shows, after a real refresh ----------------------------------------------

SHOWN = sorted(
    {m for ids in COGNITIA["curated_models_by_category"].values() for m in ids}
    | set(COGNITIA["also_seen_in_selector"])
)


DEPLOYMENT_IDS: list[str] = json.loads(
    (Path(__file__).resolve().parents[1] / "fixtures/cognitia/deployment_ids.json").read_text()
)["ids"]


def _is_local(model_id: str) -> bool:
    return model_id.startswith("cognitia_llm_") or ":" in model_id


@pytest.fixture(scope="module")
def refreshed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A real service process after a real refresh over MCP (the loopback upstream serving the
    recording), through the gate and the second source; the kit reads it over HTTP."""
    tmp = tmp_path_factory.mktemp("kit-refreshed")
    with LoopbackUpstream() as upstream:
        port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PRICING_", "DATABASE_"))}
        env.pop("REDIS_URL", None)
        env.update(
            DATABASE_URL=f"sqlite:///{tmp / 'pricing.db'}",
            PRICING_CATALOG_DIR=str(CATALOG_DIR),
            PORT=str(port),
            PRICEPERTOKEN_MCP_URL=upstream.url,
            PRICING_REFRESH_ON_STARTUP="false",
            PRICING_CRON_TOKEN=CRON,
        )
        upgrade(env["DATABASE_URL"])  # in-process: test_cli.py runs the migrate command
        with ServiceProcess(env, port, cwd=tmp) as service:
            refreshed = httpx.post(
                f"{service.url}/api/v1/pricing/refresh",
                headers=bearer(CRON),
                json={"force": True},
                timeout=110,
            )
            assert refreshed.status_code == 200, refreshed.text
            run = refreshed.json()["run"]
            assert run["status"] == "succeeded", run
            assert upstream.calls["get_all_models"] >= 1  # prices came over MCP

            async def read() -> dict[str, Any]:
                _fake_open_webui()
                sys.modules.pop("integrations.cognitia.pricing", None)
                module = importlib.import_module("integrations.cognitia.pricing")
                client = module.PricingServiceClient(service.url)
                try:
                    legacy = await client.legacy_models()
                    prices = await client.price_map()
                    asked = await client._http.get(
                        "/api/v1/pricing/models", params={"ids": ",".join(SHOWN)}
                    )
                    deployment = {}
                    for start in range(0, len(DEPLOYMENT_IDS), 100):  # ids= takes 100 at most
                        chunk = DEPLOYMENT_IDS[start : start + 100]
                        answer = await client._http.get(
                            "/api/v1/pricing/models", params={"ids": ",".join(chunk)}
                        )
                        deployment.update({i["model_id"]: i for i in answer.json()["items"]})
                finally:
                    await client.aclose()
                    sys.modules.pop("integrations.cognitia.pricing", None)
                items = {i["model_id"]: i for i in asked.json()["items"]}
                budgets = BudgetPrices(service.url, background=False, timeout=30)
                try:
                    budget = {m: budgets.price(m) for m in SHOWN}
                finally:
                    budgets.close()
                return {
                    "legacy": legacy,
                    "prices": prices,
                    "items": items,
                    "budget": budget,
                    "deployment": deployment,
                }

            yield asyncio.run(read())


@pytest.mark.parametrize("model_id", SHOWN)
def test_every_id_cognitia_shows_is_priced(refreshed: dict[str, Any], model_id: str) -> None:
    item = refreshed["items"][model_id]
    status = item["price_status"]
    price_in, price_out = item["input_usd_per_million"], item["output_usd_per_million"]
    # Priced means a price: 0/0 counts only when the service declares it free, or local for a
    # local id (no API cost), never because nothing is known.
    if status == "priced":
        assert price_in is not None
        assert price_out is not None
        assert price_in > 0 or price_out > 0, f"{model_id}: 'priced' at 0/0"
    elif status == "local":
        assert _is_local(model_id), f"{model_id} is not a local id but is served as local"
        assert (price_in, price_out) == (0, 0)
    else:
        assert status == "free", f"{model_id}: {status} ({item['price_status_reason']})"
    legacy = {i["model_id"]: i for i in refreshed["legacy"]["items"]}
    assert model_id in legacy  # the unchanged frontend sees its price
    # The budgets bill what ?ids= says: from /prices when it lists the spelling, else asked.
    billed = refreshed["budget"][model_id]

    def exact(value: Any) -> Decimal | None:
        return None if value is None else Decimal(str(value))

    assert (billed.price_status, billed.input_usd_per_million, billed.output_usd_per_million) == (
        status,
        exact(price_in),
        exact(price_out),
    )
    if model_id in refreshed["prices"]:
        assert refreshed["prices"][model_id]["price_status"] == status


@ON_SHARED
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


@ON_SHARED
async def test_service_down_serves_the_last_answer(kit: Kit) -> None:
    first = (await kit.cognitia.get("/api/v1/pricing/models")).json()
    kit.transport.down = True
    kit.clock.now += 61
    response = await kit.cognitia.get("/api/v1/pricing/models")
    assert response.status_code == 200
    assert response.json() == first
    never_cached = await kit.cognitia.get("/api/v1/pricing/prices")
    assert never_cached.status_code == 503


@ON_SHARED
async def test_routes_need_a_verified_user(kit: Kit) -> None:
    for method, path in (("GET", "/models"), ("POST", "/refresh"), ("GET", "/prices")):
        response = await kit.cognitia.request(
            method, "/api/v1/pricing" + path, headers={"authorization": ""}, json={}
        )
        assert response.status_code == 401, path
    assert kit.transport.requests == []


@ON_SHARED
async def test_refresh_reports_status_and_never_refreshes(own_kit: Kit) -> None:
    kit = own_kit
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


@ON_SHARED
async def test_price_for_keeps_unknown_unknown(kit: Kit) -> None:
    price = await kit.module.price_for("claude-sonnet-4-20250514")
    assert price.known
    assert (price.input_usd_per_million, price.output_usd_per_million) == (Decimal(3), Decimal(15))
    assert isinstance(price.input_usd_per_million, Decimal)
    assert price.cost_usd(1234, 567) == Decimal("0.012207")
    assert await kit.module.price_for("no-such-model") is None
    local = await kit.module.price_for("cognitia_llm_zerogpu.phi3")
    assert (local.price_status, local.cost_usd(1000, 1000)) == ("local", 0)
    # Not a key of /prices: resolved by the service as local (free by its status), not refused.
    prices_map = (await kit.cognitia.get("/api/v1/pricing/prices")).json()["prices"]
    assert "cognitia_llm_zerogpu.smollm2" not in prices_map
    tag = await kit.module.price_for("cognitia_llm_zerogpu.smollm2")
    assert (tag.price_status, tag.known, tag.cost_usd(1000, 1000)) == ("local", True, 0)
    prices = (await kit.cognitia.get("/api/v1/pricing/prices")).json()["prices"]
    unknown_id = next(k for k, v in prices.items() if v["price_status"] == "unknown")
    unknown = await kit.module.price_for(unknown_id)
    assert unknown is not None
    assert not unknown.known
    assert unknown.input_usd_per_million is None
    assert unknown.cost_usd(1000, 1000) is None


@ON_SHARED
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


def test_every_id_a_deployment_shows_is_priced_or_no_source_knows_it(
    refreshed: dict[str, Any],
) -> None:
    from pricing_service.second_source import second_source

    answers = refreshed["deployment"]
    assert sorted(answers) == sorted(set(DEPLOYMENT_IDS))
    unknown = {}
    for model_id, item in answers.items():
        status = item["price_status"]
        if status == "priced":
            assert (item["input_usd_per_million"] or 0) + (item["output_usd_per_million"] or 0) > 0
        elif status == "local":
            assert _is_local(model_id), model_id
        elif status != "free":
            unknown[model_id] = item["price_status_reason"]
    # Unknown only where no source has a price: the upstream does not list it (or the service
    # would have resolved it) and genai-prices' own matching knows nothing of it.
    assert {m: r for m, r in unknown.items() if second_source().match(m) is not None} == {}
    assert sorted(unknown) == ["deepseek-coder", "text-embedding-3-small"]
    # Free models are shown as free, never unknown.
    assert answers["omni-moderation-latest"]["price_status"] == "free"
    # genai-prices' figures say so; a spelling it matches carries the upstream's own figure.
    assert answers["gpt-4.5-preview"]["price_basis"] == "second_source"
    assert answers["gpt-4.5-preview"]["price_label"].endswith("(según genai-prices)")
    assert answers["gpt-4-1106-preview"]["price_basis"] == "official"
    assert answers["gpt-4-1106-preview"]["input_usd_per_million"] == 10
