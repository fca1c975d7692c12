"""The Cognitia kit follows the service's pushes: a real service process delivers a signed
prices.changed to the kit's webhook route (a real FastAPI server on loopback), which verifies
it with standardwebhooks and drops its cached answers and the budgets' map at once."""

from __future__ import annotations

import asyncio
import importlib
import os
import socket
import threading
import time
from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from standardwebhooks import Webhook

from tests.support.process import ServiceProcess, free_port
from tests.support.recording import CATALOG_DIR
from tests.support.settings import CRON, bearer
from tests.support.snapshots import store_snapshot_at

if TYPE_CHECKING:
    from collections.abc import Iterator

    from tests.support.mcp_upstream import LoopbackUpstream

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
WEBHOOK = "/api/v1/pricing/webhook"


def _user() -> dict[str, str]:
    return {"id": "user-1"}


class KitServer:
    """The kit's router in a FastAPI app served by uvicorn on a loopback port (its own thread)."""

    def __init__(self, service_url: str | None = None) -> None:
        self.pricing = importlib.import_module("integrations.cognitia.pricing")
        self.budgets = importlib.import_module("integrations.cognitia.budget_prices")
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.service_url = service_url or "http://127.0.0.1:9"
        self.dropped = threading.Event()
        self.drops = 0
        self.announced: int | None = None
        self.budget: Any = None
        self.client: Any = None
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    def _on_prices_changed(self, snapshot_id: int | None) -> None:
        self.drops += 1
        self.announced = snapshot_id
        if self.budget is not None:
            self.budget.invalidate(snapshot_id)
        self.dropped.set()

    def start(self) -> None:
        # A long revalidation: only a push can make the kit ask the service again this soon.
        self.client = self.pricing.PricingServiceClient(self.service_url, revalidate_seconds=3600)
        app = FastAPI()
        app.include_router(
            self.pricing.create_router(
                lambda: self.client,
                _user,
                webhook_secret=lambda: SECRET,
                on_prices_changed=self._on_prices_changed,
            ),
            prefix="/api/v1/pricing",
        )
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", self.port))
        self._server = uvicorn.Server(
            uvicorn.Config(
                app,
                log_level="warning",
                access_log=False,
                lifespan="off",
                ws="none",
                loop="asyncio",
            )
        )
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [sock]}, daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + 20
        while not self._server.started:
            assert time.monotonic() < deadline, "the kit server did not start"
            time.sleep(0.01)

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
        if self.budget is not None:
            self.budget.close()


@pytest.fixture
def kit_server() -> Iterator[KitServer]:
    server = KitServer()
    yield server
    server.stop()


def _gpt4o(kit: KitServer) -> float:
    body = httpx.get(f"{kit.url}/api/v1/pricing/selector", params={"view": "all"}, timeout=10)
    assert body.status_code == 200, body.text
    (item,) = [i for i in body.json()["items"] if i["model_id"] == "gpt-4o"]
    return float(item["input_usd_per_million"])


def test_a_price_change_reaches_the_kit_at_once(
    database_url_pg: str, mcp_upstream: LoopbackUpstream, tmp_path: Any
) -> None:
    store_snapshot_at(database_url_pg)
    port = free_port()
    kit = KitServer(f"http://127.0.0.1:{port}")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PRICING_", "DATABASE_"))}
    env.pop("REDIS_URL", None)
    env.update(
        DATABASE_URL=database_url_pg,
        PRICING_CATALOG_DIR=str(CATALOG_DIR),
        PRICEPERTOKEN_MCP_URL=mcp_upstream.url,
        PRICING_REFRESH_ON_STARTUP="false",
        PRICING_CRON_TOKEN=CRON,
        PRICING_WEBHOOK_URLS=f"{kit.url}{WEBHOOK}",
        PRICING_WEBHOOK_SECRET=SECRET,
        PRICING_WEBHOOK_POLL_SECONDS="0.2",
    )
    try:
        with ServiceProcess(env, port, args=("serve", "--port", str(port))) as service:
            kit.start()
            kit.budget = kit.budgets.BudgetPrices(service.url, max_age=3600)
            before = _gpt4o(kit)
            assert kit.budget.price("gpt-4o").input_usd_per_million == Decimal(str(before))
            mcp_upstream.set_prices({"openai-gpt-4o": (before + 0.5, 12.0)})
            refreshed = httpx.post(
                f"{service.url}/api/v1/pricing/refresh",
                headers=bearer(CRON),
                json={"force": True},
                timeout=120,
            )
            assert refreshed.status_code == 200, refreshed.text
            assert refreshed.json()["run"]["status"] == "succeeded"
            assert kit.dropped.wait(30), f"no webhook reached the kit:\n{service.output[-3000:]}"
            # The kit's cache (an hour) was dropped: the selector shows the new price now.
            assert _gpt4o(kit) == before + 0.5
            deadline = time.monotonic() + 20
            while kit.budget.price("gpt-4o").input_usd_per_million != Decimal(str(before + 0.5)):
                assert time.monotonic() < deadline, "the budgets' map was not revalidated"
                time.sleep(0.05)
            assert kit.drops == 1
            assert isinstance(kit.announced, int)
    finally:
        kit.stop()


def _signed(body: str, message_id: str = "evt_1_1", secret: str = SECRET) -> dict[str, str]:
    now = datetime.now(UTC)
    return {
        "content-type": "application/json",
        "webhook-id": message_id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": Webhook(secret).sign(message_id, now, body),
    }


def test_the_webhook_route_verifies_and_drops_once(kit_server: KitServer) -> None:
    kit_server.start()
    url = f"{kit_server.url}{WEBHOOK}"
    body = (
        '{"type":"prices.changed","timestamp":"2026-12-02T00:00:00+00:00","data":{"snapshot_id":7}}'
    )
    unsigned = httpx.post(url, content=body, headers={"content-type": "application/json"})
    assert unsigned.status_code == 401
    wrong = httpx.post(url, content=body, headers=_signed(body, secret="whsec_" + "B" * 32))
    assert wrong.status_code == 401
    tampered = httpx.post(url, content=body.replace("7", "8"), headers=_signed(body))
    assert tampered.status_code == 401
    assert kit_server.drops == 0
    ok = httpx.post(url, content=body, headers=_signed(body))
    assert ok.status_code == 204
    assert kit_server.drops == 1
    assert kit_server.announced == 7
    # The service's retry of the same event (same webhook-id): acknowledged, not acted on.
    again = httpx.post(url, content=body, headers=_signed(body))
    assert again.status_code == 204
    assert kit_server.drops == 1
    other = '{"type":"run.held","timestamp":"2026-12-02T00:00:00+00:00","data":{}}'
    held = httpx.post(url, content=other, headers=_signed(other, "evt_2_1"))
    assert held.status_code == 204
    assert kit_server.drops == 1  # nothing cached changes with a held run


def test_without_a_secret_the_webhook_is_not_configured() -> None:
    pricing = importlib.import_module("integrations.cognitia.pricing")
    app = FastAPI()
    app.include_router(
        pricing.create_router(lambda: None, _user, webhook_secret=lambda: None),
        prefix="/api/v1/pricing",
    )

    async def post() -> httpx.Response:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://kit"
        ) as client:
            return await client.post(WEBHOOK, content=b"{}")

    answer = asyncio.run(post())
    assert answer.status_code == 503
    assert "PRICING_WEBHOOK_SECRET" in answer.text
