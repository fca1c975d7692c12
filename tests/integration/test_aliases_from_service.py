"""`catalog aliases --suggest --from-service URL`: the ids clients asked a running service for
that nothing resolved (read from its /metrics, merged across workers) join the curated ids."""

from __future__ import annotations

import re
import socket
import threading
import time
from typing import TYPE_CHECKING

import httpx
import pytest
import uvicorn

from pricing_service.app import create_app
from pricing_service.cli import asked_unknown_ids, main
from tests.support.recorded_service import seed_snapshot, service_settings

if TYPE_CHECKING:
    from collections.abc import Iterator

pytestmark = pytest.mark.integration

METRICS = """\
# HELP pricing_unknown_ids_asked_total Ids asked that nothing resolves
# TYPE pricing_unknown_ids_asked_total counter
pricing_unknown_ids_asked_total{endpoint="models",model_id="o3-2025-04-16"} 3.0
pricing_unknown_ids_asked_total{endpoint="estimate",model_id="o3-2025-04-16"} 2.0
pricing_unknown_ids_asked_total{endpoint="models",model_id="grok-3-latest"} 7.0
pricing_unknown_ids_asked_total{endpoint="models",model_id="(other)"} 40.0
pricing_unknown_ids_asked_created{endpoint="models",model_id="grok-3-latest"} 1.7e9
# TYPE pricing_models gauge
pricing_models{status="priced"} 480.0
"""


def test_the_metric_is_read_per_id_across_endpoints() -> None:
    assert asked_unknown_ids(METRICS) == {"grok-3-latest": 7, "o3-2025-04-16": 5}
    assert asked_unknown_ids("") == {}


@pytest.fixture
def served(sqlite_url: str) -> Iterator[str]:
    seed_snapshot(sqlite_url)
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(service_settings(sqlite_url)),
            log_level="warning",
            access_log=False,
            lifespan="on",
            ws="none",
        )
    )
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert thread.is_alive(), "the service did not start"
        assert time.monotonic() < deadline, "the service did not start in time"
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


def test_asked_ids_are_suggested_from_a_running_service(
    served: str,
    sqlite_url: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    for _ in range(3):
        httpx.get(f"{served}/api/v1/pricing/models", params={"ids": "gpt-4o,o3-2025-04-16"})
    httpx.get(
        f"{served}/api/v1/pricing/estimate",
        params={"model_id": "grok-3-latest", "input_tokens": 10, "output_tokens": 10},
    )
    httpx.get(f"{served}/api/v1/pricing/models", params={"ids": "no-such-model-anywhere"})
    monkeypatch.setenv("DATABASE_URL", sqlite_url)

    # Without --from-service the catalog alone: none of these.
    assert main(["catalog", "aliases", "--suggest"]) == 0
    assert "o3-2025-04-16" not in capsys.readouterr().out

    # The service itself resolves the two genai-prices matches (o3-2025-04-16 is its o3,
    # grok-3-latest its grok-3): not unknown, nothing to suggest; only what no source knows.
    for spelling, model in (("o3-2025-04-16", "o3"), ("grok-3-latest", "grok-3")):
        item = httpx.get(f"{served}/api/v1/pricing/models", params={"ids": spelling}).json()
        assert item["items"][0]["price_status"] == "priced", spelling
        assert model in item["items"][0]["aliases"], spelling
    assert main(["catalog", "aliases", "--suggest", "--from-service", served + "/"]) == 0
    out = capsys.readouterr().out
    assert f"# with 1 unresolved ids clients asked {served}/ for" in out
    assert "o3-2025-04-16" not in out
    assert "grok-3-latest" not in out
    assert "# no-such-model-anywhere: genai-prices does not know it; asked 1 time" in out


def test_an_unreachable_service_is_one_line(
    monkeypatch: pytest.MonkeyPatch, sqlite_url: str
) -> None:
    monkeypatch.setenv("DATABASE_URL", sqlite_url)
    with pytest.raises(SystemExit, match=re.escape("cannot read http://127.0.0.1:9/metrics")):
        main(["catalog", "aliases", "--suggest", "--from-service", "http://127.0.0.1:9"])
    with pytest.raises(SystemExit, match="needs an http"):
        main(["catalog", "aliases", "--suggest", "--from-service", "file:///etc/passwd"])
