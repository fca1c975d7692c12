"""Real serving workers and their refresh children: what a worker imports, and SIGTERM.

The SIGTERM test is ``serial`` (in the serial tier, after the parallel part): its service
must stop within ServiceProcess's bound. The imports test's bounds are minutes (a refresh's
POST 300 s, readiness 120 s) against seconds of work, so it runs in the parallel tier.
"""

from __future__ import annotations

import os
import re
import time
from pathlib import Path
from typing import TYPE_CHECKING

import httpx2
import pytest

from pricing_service.domain import RunStatus
from tests.support.process import ServiceProcess, alive, free_port
from tests.support.recording import CATALOG_DIR
from tests.support.served_worker import PROBE
from tests.support.settings import CRON
from tests.support.snapshots import stored_run

if TYPE_CHECKING:
    from tests.support.mcp_upstream import LoopbackUpstream

ROOT = Path(__file__).resolve().parents[2]
REFRESH = "/api/v1/pricing/refresh"
AUTH = {"Authorization": f"Bearer {CRON}"}
# What only a refresh needs (the MCP SDK, genai-prices' price data), the console's templates,
# the webhook client's transport (opened at the first due delivery; the rate here is fixed, so
# no TRM fetch opens one either) and uvicorn's WebSocket protocol (`serve` runs it with
# ws="none"): never in a serving worker that did not show the console or deliver a webhook,
# whatever else it served (POST /estimate with every usage format included: usage.py reads
# genai-prices' extractors through its types, exported from its data) or ran. Nor the database
# dialect this deployment does not use (here SQLite: PostgreSQL's is 2.3 MB of RSS, psycopg 8.5
# MB) or, without REDIS_URL, redis (5.4 MB). Nor an ORM: the database layer is SQLAlchemy Core
# (sqlalchemy.orm is 5.6 MB, sqlmodel 0.5 MB).
NEVER = (
    "mcp",
    "genai_prices.data",
    "jinja2",
    "httpcore2",
    "h11",
    "websockets",
    "sqlalchemy.dialects.postgresql",
    "psycopg",
    "redis",
    "sqlmodel",
    "sqlalchemy.orm",
)
# Not before the first POST /estimate either: httpx2 (1.9 MB), the MCP client's, the TRM fetch's
# and the webhook client's, each imported at its first use; genai-prices' package (whose types
# the estimates read) imports it with its price-update client.
UNTIL_ESTIMATE = ("httpx2",)
# A usage object of every format, and every input token it counts (Anthropic's exclude the cache).
USAGES = (
    (
        {
            "prompt_tokens": 100,
            "completion_tokens": 20,
            "prompt_tokens_details": {"cached_tokens": 5},
        },
        100,
    ),
    ({"input_tokens": 100, "output_tokens": 20, "input_tokens_details": {"cached_tokens": 5}}, 100),
    ({"input_tokens": 100, "output_tokens": 20, "cache_read_input_tokens": 5}, 105),
    (
        {
            "promptTokenCount": 100,
            "candidatesTokenCount": 20,
            "promptTokensDetails": [{"modality": "AUDIO", "tokenCount": 5}],
        },
        100,
    ),
)
CHILD_STARTED = re.compile(r"event=refresh\.child_started job=run child_pid=(\d+)")


def _env(tmp_path: Path, upstream: LoopbackUpstream, port: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PRICING_", "DATABASE_"))}
    env.pop("REDIS_URL", None)
    env.update(
        {
            "DATABASE_URL": f"sqlite:///{tmp_path / 'pricing.db'}",
            "PRICING_CATALOG_DIR": str(CATALOG_DIR),
            "PRICEPERTOKEN_MCP_URL": upstream.url,
            "PRICING_CRON_TOKEN": CRON,
            "PRICING_REFRESH_ON_STARTUP": "false",
            "PRICING_RATE_LIMIT_PER_MINUTE": "1000",
            "PORT": str(port),
        }
    )
    return env


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError(f"no VmRSS for {pid}")


def test_a_serving_worker_never_imports_what_only_a_refresh_needs(
    tmp_path: Path, sqlite_url: str, mcp_upstream: LoopbackUpstream
) -> None:
    port = free_port()
    env = _env(tmp_path, mcp_upstream, port)
    assert env["DATABASE_URL"] == sqlite_url  # migrated already (a copy): no `migrate` process
    with ServiceProcess(
        env, port, module="tests.support.served_worker", args=["--port", str(port)], cwd=ROOT
    ) as server:
        # Seeded at startup (a child), then three runs (three children), then served.
        for _ in range(3):
            answer = httpx2.post(
                f"{server.url}{REFRESH}", headers=AUTH, json={"force": True}, timeout=300
            )
            assert answer.status_code == 200, answer.text
            assert answer.json()["run"]["status"] == "succeeded", answer.text
        # A spelling only genai-prices' rules resolve (spelling.py): the upstream's gpt-4-turbo.
        served = httpx2.get(
            f"{server.url}/api/v1/pricing/models",
            params={"ids": "gpt-4-turbo,gpt-4-1106-preview"},
            timeout=30,
        )
        assert served.status_code == 200, served.text
        assert served.json()["snapshot"]["source"] == "pricepertoken"
        turbo, spelled = served.json()["items"]
        assert spelled["price_status"] == "priced", spelled
        assert spelled["input_usd_per_million"] == turbo["input_usd_per_million"]
        served_only = httpx2.get(f"{server.url}{PROBE}", timeout=30).json()
        for usage, input_tokens in USAGES:
            billed = httpx2.post(
                f"{server.url}/api/v1/pricing/estimate",
                json={"model_id": "gpt-4o", "usage": usage},
                timeout=30,
            )
            assert billed.status_code == 200, billed.text
            assert billed.json()["usage"]["input_tokens"] == input_tokens, billed.text
        modules = httpx2.get(f"{server.url}{PROBE}", timeout=30).json()
        assert server.pid is not None
        rss = _rss_mb(server.pid)
    loaded = [m for m in modules if m in NEVER or m.startswith(tuple(f"{n}." for n in NEVER))]
    assert loaded == [], f"{loaded[:10]} (RSS {rss:.0f} MB)"
    early = [m for m in served_only if m in UNTIL_ESTIMATE or m.startswith(UNTIL_ESTIMATE)]
    assert early == [], early[:10]
    assert "httpx2" in modules  # then imported (the check above is not vacuous)
    # The modules a serving worker does load (the check above is not vacuous).
    assert "pricing_service.refresh_process" in modules
    assert "genai_prices.types" in modules  # the estimates' extractors
    assert "sqlalchemy.dialects.sqlite" in modules  # this deployment's dialect
    assert server.output.count("event=refresh.child_ended") == 4, server.output


# Its service must stop within ServiceProcess's bound (SIGKILL after it): alone.
@pytest.mark.serial
def test_sigterm_to_serve_stops_its_refresh_child_and_records_the_run(
    tmp_path: Path, sqlite_url: str, mcp_upstream: LoopbackUpstream
) -> None:
    port = free_port()
    env = _env(tmp_path, mcp_upstream, port)
    assert env["DATABASE_URL"] == sqlite_url  # migrated already (a copy): no `migrate` process
    with ServiceProcess(env, port, cwd=tmp_path) as server:
        mcp_upstream.set_behaviour("hang", tool="get_all_models")
        answer = httpx2.post(
            f"{server.url}{REFRESH}",
            headers=AUTH,
            json={"force": True, "wait_seconds": 0},
            timeout=60,
        )
        assert answer.status_code == 202, answer.text
        run_id = answer.json()["run_id"]
        deadline = time.monotonic() + 120
        while not (
            CHILD_STARTED.search(server.output) and mcp_upstream.calls["get_all_models"] > 0
        ):
            assert time.monotonic() < deadline, server.output
            time.sleep(0.1)
        found = CHILD_STARTED.search(server.output)
        assert found is not None
        child = int(found.group(1))
        assert alive(child)
    # uvicorn re-raises the SIGTERM once it has shut down (logs.write_directly).
    assert server.returncode in (0, -15), server.output
    assert not alive(child), server.output
    run = stored_run(env["DATABASE_URL"], run_id)
    assert run is not None
    assert run.status is RunStatus.FAILED
    assert run.error == "cancelled: the service stopped mid-run"
