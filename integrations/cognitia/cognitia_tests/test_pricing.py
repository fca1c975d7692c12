"""Cognitia's pricing router (the cognitia-pricing kit) against a stand-in of the pricing service.

apply.py installs this file as backend/open_webui/test/apps/webui/routers/test_pricing.py. The
router no longer reads the model_pricing table: it serves the service's answers, so the tests
give it a service (an httpx MockTransport answering as the service does) instead of expecting an
empty table, and check the one failure a deployment can have: PRICING_SERVICE_URL not set.
"""

import json

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from open_webui.routers import pricing
from open_webui.utils.auth import get_verified_user

ETAG = '"view-1"'


def _item(model_id, status, price_in, price_out, aliases, label):
    return {
        "model_id": model_id,
        "provider": "openai" if status == "priced" else "ollama",
        "input_usd_per_million": price_in,
        "output_usd_per_million": price_out,
        "context_window": 128000,
        "updated_at": "2026-04-29T08:14:00Z",
        "source": "pricepertoken",
        "price_status": status,
        "price_label": label,
        "aliases": aliases,
    }


VIEW_ALL = {
    "view": "all",
    "items": [
        _item("gpt-4o", "priced", 2.5, 10, ["gpt-4o", "openai/gpt-4o"], "~10 COP por mensaje"),
        _item("cognitia_llm_zerogpu.phi3", "local", 0, 0, ["cognitia_llm_zerogpu.phi3"], "Local"),
        _item("gpt-4o-2024-05-13", "unknown", None, None, ["gpt-4o-2024-05-13"], "Sin precio"),
    ],
    "categories": [],
}
STATUSES = {"gpt-4o": "priced", "cognitia_llm_zerogpu.phi3": "local"}


def _service(request: httpx.Request) -> httpx.Response:
    path = request.url.path
    if path == "/api/v1/pricing/models" and request.url.params.get("view") == "all":
        if request.headers.get("if-none-match") == ETAG:
            return httpx.Response(304)
        return httpx.Response(200, content=json.dumps(VIEW_ALL), headers={"etag": ETAG})
    if path == "/api/v1/pricing/models" and "ids" in request.url.params:
        ids = request.url.params["ids"].split(",")
        items = [{"model_id": i, "price_status": STATUSES.get(i, "unknown")} for i in ids]
        return httpx.Response(200, json={"items": items})
    return httpx.Response(404, json={"detail": "not found"})


@pytest.fixture
def client(monkeypatch):
    monkeypatch.delenv("PRICING_SERVICE_URL", raising=False)
    app = FastAPI()
    app.include_router(pricing.router, prefix="/api/v1/pricing")
    app.dependency_overrides[get_verified_user] = lambda: {"id": "2", "role": "user"}
    pricing.set_client(
        pricing.PricingServiceClient("http://pricing.test", transport=httpx.MockTransport(_service))
    )
    try:
        yield TestClient(app)
    finally:
        pricing.set_client(None)


def test_get_pricing_models_serves_the_services_prices(client):
    res = client.get("/api/v1/pricing/models")
    assert res.status_code == 200
    data = res.json()
    by_id = {i["model_id"]: i for i in data["items"]}
    # Every spelling priced; local at 0 because the service says "local".
    assert by_id["gpt-4o"]["input_usd_per_million"] == 2.5
    assert by_id["openai/gpt-4o"]["output_usd_per_million"] == 10.0
    assert by_id["cognitia_llm_zerogpu.phi3"]["input_usd_per_million"] == 0.0
    # An unknown price has no item (the selector says unknown), never a 0.
    assert "gpt-4o-2024-05-13" not in by_id
    assert data["updated_at"] == max(i["updated_at"] for i in data["items"])


def test_refresh_reports_status_without_fetching(client):
    res = client.post("/api/v1/pricing/refresh", json={"model_ids": ["gpt-4o", "no-such-model"]})
    assert res.status_code == 200
    assert res.json() == {
        "items": ["no-such-model"],
        "models": {"gpt-4o": "priced", "no-such-model": "unknown"},
    }


def test_unconfigured_service_answers_503_with_the_reason(monkeypatch):
    monkeypatch.delenv("PRICING_SERVICE_URL", raising=False)
    pricing.set_client(None)
    app = FastAPI()
    app.include_router(pricing.router, prefix="/api/v1/pricing")
    app.dependency_overrides[get_verified_user] = lambda: {"id": "2", "role": "user"}
    res = TestClient(app).get("/api/v1/pricing/models")
    assert res.status_code == 503
    assert res.json()["detail"] == "PRICING_SERVICE_URL is not set"
