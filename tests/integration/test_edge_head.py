"""HEAD on a real server (issue 19, the edge): headers only, the GET's Content-Length, no
traceback, and the keep-alive connection still answers the next request.

A raw socket, because an HTTP client library would hide what matters here: whether the server
kept the connection open after the HEAD and answered a GET sent on it.
"""

from __future__ import annotations

import os
import socket
from typing import TYPE_CHECKING

import pytest

from pricing_service.migrate import upgrade
from tests.support.process import ServiceProcess, free_port
from tests.support.recording import CATALOG_DIR

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

ADMIN = "admin-token-for-head-tests-0b7e"
PATHS = (
    "/ready",
    "/health",
    "/metrics",
    "/admin/ingresar",
    "/admin/static/console.css",
    "/api/v1/pricing/models",
    "/api/v1/pricing/prices",
    "/api/v1/pricing/changes",
)
TIMEOUT = 10.0


def _env(tmp_path: Path, port: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PRICING_", "DATABASE_"))}
    env.pop("REDIS_URL", None)
    env["DATABASE_URL"] = f"sqlite:///{tmp_path / 'pricing.db'}"
    env["PRICING_CATALOG_DIR"] = str(CATALOG_DIR)
    env["PRICING_ADMIN_TOKEN"] = ADMIN
    env["PRICEPERTOKEN_MCP_URL"] = f"http://127.0.0.1:{free_port()}/mcp"  # nothing listens
    # No startup refresh: its failure, landing between a GET and its HEAD on a loaded machine,
    # changed /ready's body (and length) under the test. The seed is served either way.
    env["PRICING_REFRESH_ON_STARTUP"] = "false"
    env["PORT"] = str(port)
    return env


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceProcess]:
    tmp_path = tmp_path_factory.mktemp("head")
    port = free_port()
    env = _env(tmp_path, port)
    upgrade(env["DATABASE_URL"])  # in-process: test_cli.py runs the migrate command
    with ServiceProcess(env, port, cwd=tmp_path) as service:
        yield service


class Connection:
    """One keep-alive HTTP/1.1 connection, read by hand."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
        self.buffer = b""

    def close(self) -> None:
        self.sock.close()

    def _more(self) -> None:
        chunk = self.sock.recv(65536)
        if not chunk:
            raise ConnectionError("the server closed the connection")
        self.buffer += chunk

    def request(self, method: str, path: str) -> tuple[int, dict[str, str], bytes]:
        self.sock.sendall(f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
        while b"\r\n\r\n" not in self.buffer:
            self._more()
        head, _, self.buffer = self.buffer.partition(b"\r\n\r\n")
        status_line, *lines = head.decode("latin-1").split("\r\n")
        headers = {}
        for line in lines:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        if method == "HEAD":
            return int(status_line.split()[1]), headers, b""
        length = int(headers.get("content-length", "0"))
        while len(self.buffer) < length:
            self._more()
        body, self.buffer = self.buffer[:length], self.buffer[length:]
        return int(status_line.split()[1]), headers, body


@pytest.mark.parametrize("path", PATHS)
def test_head_then_get_on_one_connection(server: ServiceProcess, path: str) -> None:
    connection = Connection(server.port)
    try:
        got_status, got_headers, got_body = connection.request("GET", path)
        status, headers, _ = connection.request("HEAD", path)
        # The same connection still answers: the HEAD neither broke nor closed it.
        after_status, _, after_body = connection.request("GET", "/health")
    finally:
        connection.close()
    assert status == got_status
    assert headers.get("connection", "keep-alive") != "close"
    # The GET's length, or none (the metrics text grows between two scrapes: its own length).
    if "content-length" in headers and "content-length" in got_headers:
        assert headers["content-length"] == got_headers["content-length"] or path == "/metrics"
    assert int(got_headers.get("content-length", len(got_body))) == len(got_body)
    assert after_status == 200
    assert after_body == b'{"status":"ok"}'


def test_no_traceback_after_every_head(server: ServiceProcess) -> None:
    connection = Connection(server.port)
    try:
        for path in PATHS:
            connection.request("HEAD", path)
        assert connection.request("GET", "/health")[0] == 200
    finally:
        connection.close()
    output = server.output
    assert "Traceback" not in output
    assert "Content-Length" not in output
