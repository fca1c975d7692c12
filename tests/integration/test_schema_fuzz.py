"""Schemathesis against the app's own OpenAPI: no 5xx, every answer matches what it declares.

The service runs under uvicorn on loopback (the real HTTP stack, gzip and 304 included), on a
scratch SQLite database holding the recorded prices, with the loopback PricePerToken MCP server
as its upstream.
"""

from __future__ import annotations

import socket
import threading
import time
from typing import TYPE_CHECKING, Any

import httpx2
import pytest
import schemathesis
import uvicorn
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from pricing_service.app import create_app
from pricing_service.config import Settings
from pricing_service.migrate import upgrade
from tests.support.mcp_upstream import LoopbackUpstream
from tests.support.snapshots import store_snapshot_at

if TYPE_CHECKING:
    from collections.abc import Iterator

    from schemathesis import Case
    from schemathesis.schemas import APIOperation

pytestmark = pytest.mark.integration

CRON = "cron-token-for-schema-fuzz"
# status_code_conformance (every status declared) is left out until every route declares its
# error answers with `responses=`; GET /models and POST /refresh do.
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
]


class LiveServer:
    """The app under uvicorn on 127.0.0.1 in a background thread (lifespan included)."""

    def __init__(self, settings: Settings) -> None:
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._sock.getsockname()[1]}"
        config = uvicorn.Config(
            create_app(settings),
            log_level="warning",
            access_log=False,
            lifespan="on",
            ws="none",
            timeout_graceful_shutdown=2,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._sock]}, daemon=True
        )

    def __enter__(self) -> LiveServer:
        self._thread.start()
        deadline = time.monotonic() + 15
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the service did not start under uvicorn")
            time.sleep(0.01)
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)
        self._sock.close()


def _openapi() -> dict[str, Any]:
    # Building the app connects nothing; the document is the one /schema/openapi.json serves.
    app = create_app(Settings(database_url="sqlite://", pricing_cron_token=CRON))
    return app.openapi_schema.to_schema()


# Loaded at collection (one test per operation); schemathesis's lazy `from_fixture` loader
# breaks on pytest 9.2 (it reads the removed `Function._nodeid`).
schema = schemathesis.openapi.from_dict(_openapi())


@pytest.fixture(scope="module")
def service_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    database_url = f"sqlite:///{tmp_path_factory.mktemp('fuzz') / 'pricing.db'}"
    upgrade(database_url)
    store_snapshot_at(database_url)  # the recorded prices, as a good run stored them
    with LoopbackUpstream() as upstream:
        settings = Settings(
            database_url=database_url,
            pricepertoken_mcp_url=upstream.url,
            pricing_refresh_on_startup=False,
            pricing_cron_token=CRON,
            pricing_upstream_call_timeout_seconds=5,
            pricing_upstream_run_timeout_seconds=60,
            pricing_database_wait_seconds=20.0,  # wide for a loaded machine (support/settings.py)
        )
        with LiveServer(settings) as server:
            served = httpx2.get(f"{server.url}/schema/openapi.json", timeout=10)
            assert served.json() == _openapi()
            yield server.url
            # Fuzzed refresh calls carry no valid token: the upstream was never asked.
            assert upstream.calls.total() == 0


@schema.parametrize()
@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
def test_api_conforms_to_its_schema(
    case: Case[APIOperation[Any, Any, Any, Any]], service_url: str
) -> None:
    case.call_and_validate(base_url=service_url, checks=CHECKS)
