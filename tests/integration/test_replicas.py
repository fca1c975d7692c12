"""Real processes: replicas converging on the database's snapshot, SIGTERM mid-refresh.

Two `pricing-service serve` processes share PostgreSQL and a private Redis server (started here
on a free port, so it can be paused with SIGSTOP without touching anyone else's Redis).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx2
import pytest

from pricing_service.db import create_db_engine
from pricing_service.domain import RunStatus
from pricing_service.lease_rows import LeaseRows
from pricing_service.lock import LOCK_NAME
from pricing_service.repository import Repository
from tests.support.process import READY_TIMEOUT_SECONDS, free_port
from tests.support.recording import CATALOG_DIR

if TYPE_CHECKING:
    from collections.abc import Iterator

    from tests.support.mcp_upstream import LoopbackUpstream


CRON = "cron-token-for-tests"


def wait_until(check: Any, seconds: float, what: str) -> Any:
    """Poll ``check`` until it returns a truthy value; fail naming ``what`` after ``seconds``."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            value = check()
        except httpx2.TransportError:
            value = None
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


@contextlib.contextmanager
def serve(
    env: dict[str, str], tmp_path: Path, count: int = 1
) -> Iterator[list[tuple[subprocess.Popen[str], str]]]:
    """``count`` `serve` processes, spawned at once (their start-ups overlap), each ready; each
    one's output in ``tmp_path / serve-<port>.log``."""
    started: list[tuple[subprocess.Popen[str], str]] = []
    logs = []
    try:
        for _ in range(count):
            port = free_port()
            log = (tmp_path / f"serve-{port}.log").open("w")
            logs.append(log)
            process = subprocess.Popen(
                [sys.executable, "-m", "pricing_service", "serve", "--port", str(port)],
                env=env,
                cwd=tmp_path,
                stdout=log,
                stderr=subprocess.STDOUT,
                text=True,
            )
            started.append((process, f"http://127.0.0.1:{port}"))
        for _, base in started:
            wait_until(
                lambda b=base: httpx2.get(f"{b}/ready", timeout=2).status_code == 200,
                READY_TIMEOUT_SECONDS,
                "ready",
            )
        yield started
    finally:
        for process, _ in started:
            if process.poll() is None:
                process.kill()
        for process, _ in started:
            process.wait(timeout=10)
        for log in logs:
            log.close()


def repairs(tmp_path: Path) -> int:
    """Lagging Redis pointers the replicas have put right so far (their logs' lines)."""
    return sum(
        path.read_text().count("event=service.pointer_repaired")
        for path in tmp_path.glob("serve-*.log")
    )


def environment(database_url: str, upstream: LoopbackUpstream, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PRICING_", "DATABASE_"))}
    env.pop("REDIS_URL", None)
    env.update(
        DATABASE_URL=database_url,
        PRICING_CATALOG_DIR=str(CATALOG_DIR),
        PRICEPERTOKEN_MCP_URL=upstream.url,
        PRICING_REFRESH_ON_STARTUP="false",
        PRICING_CRON_TOKEN=CRON,
        PRICING_RATE_LIMIT_PER_MINUTE="1000",
    )
    env.update(extra)
    return env


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server is not installed")
    port = free_port()
    process = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
    )
    import redis

    client = redis.Redis(port=port, socket_connect_timeout=1)
    wait_until(lambda: client.ping(), 20, "redis-server")
    client.close()
    try:
        yield process, f"redis://127.0.0.1:{port}/0"
    finally:
        process.send_signal(signal.SIGCONT)
        process.kill()
        process.wait(timeout=10)


def served_snapshot(base: str) -> int:
    body = httpx2.get(f"{base}/api/v1/pricing/models", timeout=5).json()
    return int(body["snapshot"]["id"])


def gpt4o_input(base: str) -> float:
    body = httpx2.get(f"{base}/api/v1/pricing/models", params={"ids": "gpt-4o"}, timeout=5)
    return float(body.json()["items"][0]["input_usd_per_million"])


# Two serving processes and a Redis stalled by SIGSTOP under bounded waits (both replicas switch
# within 15 s): in the serial tier, after the parallel part of `make test`, so that a busy
# machine does not stretch the bounds.
@pytest.mark.serial
def test_replicas_follow_the_database_while_redis_is_stalled(
    database_url_pg: str,
    private_redis: tuple[subprocess.Popen[bytes], str],
    mcp_upstream: LoopbackUpstream,
    tmp_path: Path,
) -> None:
    redis_process, redis_url = private_redis
    # database_url_pg is migrated already (tests/conftest.py): no `migrate` process here.
    env = environment(database_url_pg, mcp_upstream, REDIS_URL=redis_url)
    with serve(env, tmp_path, count=2) as [(_, one), (_, two)]:
        seed = served_snapshot(one)
        assert served_snapshot(two) == seed
        details = mcp_upstream.data.details
        details["openai-gpt-4o"]["pricing"]["input_per_1m"] = 5.0
        mcp_upstream.set_data(details=details)

        redis_process.send_signal(signal.SIGSTOP)
        try:
            refreshed = httpx2.post(
                f"{one}/api/v1/pricing/refresh",
                headers={"Authorization": f"Bearer {CRON}"},
                json={"force": True},
                timeout=120,
            )
            assert refreshed.status_code == 200, refreshed.text
            new = refreshed.json()["run"]["snapshot_id"]
            assert new > seed
            # Redis is stalled: both replicas still move to the database's snapshot.
            started = time.monotonic()
            for base in (one, two):
                wait_until(lambda b=base: served_snapshot(b) == new, 15, f"{base} to switch")
            print(f"converged with Redis stalled in {time.monotonic() - started:.1f} s")
            assert gpt4o_input(two) == 5.0
        finally:
            redis_process.send_signal(signal.SIGCONT)

        # Redis back: its lagging pointer (still the seed's) is repaired, never obeyed.
        import redis

        client = redis.Redis.from_url(redis_url)
        try:
            wait_until(lambda: client.get("pricing:current") == str(new).encode(), 60, "repair")
            repaired = repairs(tmp_path)
            client.set("pricing:current", str(seed), ex=86400)  # a pointer that lags by hand
            # A replica's pointer check (every 2 s) has met it: it put it right, not obeyed it.
            wait_until(
                lambda: (
                    repairs(tmp_path) > repaired
                    and client.get("pricing:current") == str(new).encode()
                ),
                60,
                "a replica to meet the lagging pointer and repair it",
            )
            assert served_snapshot(one) == new
            assert served_snapshot(two) == new
            assert client.get("pricing:current") == str(new).encode()
        finally:
            client.close()


# In the parallel tier: its waits are bounds on a hang (readiness 120 s, the run's first call
# 120 s, the exit 60 s), and its run is made to last minutes (0.5 s a call), so SIGTERM finds
# it mid-way however slow the machine.
def test_sigterm_mid_refresh_stops_serve_and_records_the_run_as_failed(
    database_url_pg: str, mcp_upstream: LoopbackUpstream, tmp_path: Path
) -> None:
    env = environment(database_url_pg, mcp_upstream)  # migrated already (tests/conftest.py)
    mcp_upstream.latency = 0.5  # a run of minutes: SIGTERM finds it mid-way
    with serve(env, tmp_path) as [(process, base)]:
        answers: list[int] = []

        # The client that triggered the run waits on it (up to 600 s): its open request must
        # not keep the process alive.
        def trigger_and_wait() -> None:
            with contextlib.suppress(httpx2.TransportError):
                answer = httpx2.post(
                    f"{base}/api/v1/pricing/refresh",
                    headers={"Authorization": f"Bearer {CRON}"},
                    json={"wait_seconds": 600},
                    timeout=120,
                )
                answers.append(answer.status_code)

        waiter = threading.Thread(target=trigger_and_wait)
        waiter.start()
        wait_until(
            lambda: mcp_upstream.calls["get_model"] > 0,
            READY_TIMEOUT_SECONDS,  # a refresh child's start: seconds, tens under heavy load
            "the run to reach get_model",
        )
        sent = time.monotonic()
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=60)
        print(f"serve exited {time.monotonic() - sent:.1f} s after SIGTERM (answers {answers})")
        waiter.join(timeout=60)
    engine = create_db_engine(database_url_pg)
    try:
        repository = Repository(engine)
        run = repository.last_run()
        assert run is not None
        assert run.status is RunStatus.FAILED
        assert "cancelled" in (run.error or "")
        assert LeaseRows(engine).lock_run(LOCK_NAME, run.started_at) == (False, None)
    finally:
        engine.dispose()
