"""The pricing-service command as a deployment runs it: migrate, then serve with environment."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from typing import TYPE_CHECKING

import httpx2
import pytest

if TYPE_CHECKING:
    from pathlib import Path


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PRICING_", "DATABASE_"))}
    env.pop("REDIS_URL", None)
    env["DATABASE_URL"] = f"sqlite:///{tmp_path / 'var' / 'pricing.db'}"
    env.update(extra)
    return env


def _cli(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pricing_service", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_bad_setting_stops_with_one_line(tmp_path: Path) -> None:
    result = _cli(["migrate"], _env(tmp_path, PRICING_USD_TO_COP="abc"), tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "pricing-service: PRICING_USD_TO_COP: Input should be a valid decimal (got 'abc')"
    ]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_migrate_then_serve_answers_health_and_ready(tmp_path: Path) -> None:
    port = _free_port()
    # No network: the upstream URL points at a closed loopback port.
    env = _env(
        tmp_path,
        PORT=str(port),
        PRICEPERTOKEN_MCP_URL=f"http://127.0.0.1:{_free_port()}/mcp",
    )
    migrated = _cli(["migrate"], env, tmp_path)
    assert migrated.returncode == 0, migrated.stderr
    server = subprocess.Popen(
        [sys.executable, "-m", "pricing_service", "serve"],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        ready = None
        while time.monotonic() < deadline:
            try:
                ready = httpx2.get(f"http://127.0.0.1:{port}/ready", timeout=2)
                if ready.status_code == 200:
                    break
            except httpx2.TransportError:
                pass
            time.sleep(0.2)
        assert ready is not None, "the service never answered"
        assert ready.status_code == 200, ready.text
        health = httpx2.get(f"http://127.0.0.1:{port}/health", timeout=2)
        assert health.json() == {"status": "ok"}
    finally:
        server.terminate()
        try:
            output, _ = server.communicate(timeout=15)
        except subprocess.TimeoutExpired:  # pragma: no cover
            server.kill()
            output, _ = server.communicate()
    assert "app.started" in output


@pytest.mark.parametrize("workers", ["0", "-1"])
def test_serve_rejects_bad_worker_count(tmp_path: Path, workers: str) -> None:
    result = _cli(["serve", "--workers", workers], _env(tmp_path), tmp_path)
    assert result.returncode != 0
    assert "--workers must be at least 1" in result.stderr
