"""A loopback PricePerToken MCP server for tests and benchmarks, on the MCP SDK's own server."""

from __future__ import annotations

import asyncio
import copy
import json
import socket
import threading
import time
from collections import Counter
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Self

import anyio
import pytest
import uvicorn
from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError

from tests.support.recording import Listing, recorded_listing

if TYPE_CHECKING:
    from collections.abc import Iterator
    from types import TracebackType

    from starlette.types import ASGIApp, Message, Receive, Scope, Send

# The live server answers only the first 100 rows (by slug) when `limit` is left out.
DEFAULT_LIST_LIMIT = 100

# Default library and CLI User-Agents that the live server answers with 403.
BLOCKED_USER_AGENT_PREFIXES = ("python-httpx", "httpx", "python-requests", "curl", "Python")

UNKNOWN_MODEL = "No model found for slug"


class Behaviour(StrEnum):
    """What the server does to the requests a fault matches."""

    OK = "ok"
    HTTP_500 = "http_500"
    HTTP_403 = "http_403"
    HTTP_429 = "http_429"
    HANG = "hang"
    GARBAGE = "garbage"
    IS_ERROR = "is_error"
    EMPTY = "empty"
    TRUNCATED = "truncated"
    # The server forgets the request's session: 404 now and for every later request carrying
    # that session id, as the MCP specification says a server does for a session it ended.
    SESSION_LOST = "session_lost"


# Applied by the ASGI wrapper, before the MCP app sees the request.
HTTP_BEHAVIOURS = frozenset(
    {
        Behaviour.HTTP_500,
        Behaviour.HTTP_403,
        Behaviour.HTTP_429,
        Behaviour.HANG,
        Behaviour.SESSION_LOST,
    }
)


@dataclass(slots=True)
class Fault:
    """A behaviour and the requests it applies to.

    ``tool`` None matches every ``tools/call``; ``"initialize"`` matches the handshake instead.
    ``slugs`` narrows ``get_model`` calls; ``times`` limits the fault to the first N matches.
    """

    behaviour: Behaviour = Behaviour.OK
    tool: str | None = None
    slugs: frozenset[str] | None = None
    times: int | None = None


def _recorded() -> Listing:
    # Parsed once per process (tests.support.recording); each server changes its own copy.
    return recorded_listing()


class LoopbackUpstream:
    """A PricePerToken look-alike MCP server on 127.0.0.1, in a background thread.

    ``with LoopbackUpstream() as upstream: ... upstream.url ...``. Tests switch
    ``upstream.behaviour`` (or call :meth:`set_behaviour`) and :meth:`set_data` at run time.
    """

    def __init__(
        self,
        *,
        json_response: bool = True,
        listing: Listing | None = None,
        stateful: bool = False,
    ) -> None:
        self.json_response = json_response
        # Stateful: the SDK's server gives each session an id (Mcp-Session-Id) and expects it on
        # every later request; the live server is stateless.
        self.stateful = stateful
        self.sessions_seen: set[str] = set()
        self.forgotten: set[str] = set()  # session ids answered 404 from now on
        self._lock = threading.Lock()
        self._data = listing if listing is not None else _recorded()
        self._fault = Fault()
        self.calls: Counter[str] = Counter()  # tools/call requests received, per tool
        self.requests: Counter[str] = Counter()  # JSON-RPC requests received, per method
        self.tool_arguments: list[tuple[str, dict[str, Any]]] = []
        self.user_agents: list[str] = []
        self.latency = 0.0  # seconds added before each tools/call is served
        self.in_flight = 0
        self.peak_in_flight = 0  # most tools/call requests served at once
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._release: asyncio.Event | None = None
        self.host = "127.0.0.1"
        self.port = 0

    # -- control ---------------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/mcp"

    @property
    def behaviour(self) -> Behaviour:
        return self._fault.behaviour

    @behaviour.setter
    def behaviour(self, value: Behaviour | str) -> None:
        self.set_behaviour(value)

    def set_behaviour(
        self,
        behaviour: Behaviour | str,
        *,
        tool: str | None = None,
        slugs: set[str] | frozenset[str] | None = None,
        times: int | None = None,
    ) -> None:
        """Apply ``behaviour`` to the matching requests from now on."""
        with self._lock:
            self._fault = Fault(
                Behaviour(behaviour), tool, frozenset(slugs) if slugs is not None else None, times
            )

    def set_data(
        self,
        *,
        rows: list[dict[str, Any]] | None = None,
        details: dict[str, dict[str, Any]] | None = None,
        providers: list[dict[str, Any]] | None = None,
    ) -> None:
        """Serve another listing (for example with a few prices changed)."""
        with self._lock:
            self._data = Listing(
                rows=rows if rows is not None else self._data.rows,
                details=details if details is not None else self._data.details,
                providers=providers if providers is not None else self._data.providers,
            )

    def set_prices(self, changes: dict[str, tuple[float | None, float | None]]) -> None:
        """Serve the current data with these slugs' (input, output) prices, list and detail."""
        details = copy.deepcopy(self._data.details)
        rows = copy.deepcopy(self._data.rows)
        for slug, (new_in, new_out) in changes.items():
            details[slug]["pricing"]["input_per_1m"] = new_in
            details[slug]["pricing"]["output_per_1m"] = new_out
            for row in rows:
                if row["slug"] == slug:
                    row["input_per_1m"], row["output_per_1m"] = new_in, new_out
        self.set_data(rows=rows, details=details)

    def forget_sessions(self) -> None:
        """Forget every session seen so far (a restarted server): their requests get 404."""
        with self._lock:
            self.forgotten |= self.sessions_seen

    def reset(self) -> None:
        """Back to the recorded data, behaviour ``ok`` and zero counters."""
        with self._lock:
            self._data = _recorded()
            self._fault = Fault()
            self.calls.clear()
            self.requests.clear()
            self.tool_arguments.clear()
            self.user_agents.clear()
            self.latency = 0.0
            self.peak_in_flight = 0
            self.forgotten.clear()

    @property
    def data(self) -> Listing:
        return self._data

    def _take_fault(
        self, method: str, tool: str | None, slug: str | None, *, http_level: bool
    ) -> Behaviour:
        """The behaviour for this request; consumes one of ``times`` when it matches.

        The ASGI wrapper asks for HTTP-level faults, the tools for tool-level ones, so each
        request consumes a fault once.
        """
        with self._lock:
            fault = self._fault
            if (
                fault.behaviour is Behaviour.OK
                or (fault.behaviour in HTTP_BEHAVIOURS) != http_level
            ):
                return Behaviour.OK
            if fault.tool == "initialize":
                matches = method == "initialize"
            else:
                matches = method == "tools/call" and fault.tool in (None, tool)
            if matches and fault.slugs is not None:
                matches = slug in fault.slugs
            if not matches:
                return Behaviour.OK
            if fault.times is not None:
                if fault.times <= 0:
                    return Behaviour.OK
                fault.times -= 1
            return fault.behaviour

    # -- tools -----------------------------------------------------------------------------

    def _author_of(self, row: Any) -> str:
        slug = _slug_key(row)
        detail = self._data.details.get(slug)
        if detail is not None and isinstance(detail.get("author"), str):
            return str(detail["author"])
        return slug.split("-", 1)[0]

    def _tool_behaviour(self, tool: str, slug: str | None = None) -> Behaviour:
        return self._take_fault("tools/call", tool, slug, http_level=False)

    def _common(self, behaviour: Behaviour) -> None:
        if behaviour is Behaviour.IS_ERROR:
            raise ToolError("upstream database unavailable")

    def build_server(self) -> MCPServer:
        mcp = MCPServer("pricepertoken-loopback", log_level="WARNING")

        @mcp.tool(structured_output=False)
        def get_all_models(limit: int | None = None, author: str | None = None) -> str:
            """List models with prices, sorted by slug."""
            behaviour = self._tool_behaviour("get_all_models")
            self._common(behaviour)
            if behaviour is Behaviour.GARBAGE:
                return "<html>Bad gateway</html>"
            if behaviour is Behaviour.EMPTY:
                return "[]"
            # Served as stored, malformed rows too, so that clients' schema checks can be tested.
            rows = sorted(self._data.rows, key=_slug_key)
            if author is not None:
                rows = [r for r in rows if self._author_of(r) == author]
            cap = DEFAULT_LIST_LIMIT if limit is None else limit
            if behaviour is Behaviour.TRUNCATED:
                # Exactly `cap` rows whatever is asked, so a client's truncation guard must fire.
                pad = [
                    {**rows[0], "slug": f"zz-synthetic-{author or 'any'}-{n}"}
                    if rows
                    else {"slug": f"zz-synthetic-{author or 'any'}-{n}"}
                    for n in range(max(0, cap - len(rows)))
                ]
                rows = (rows + pad)[:cap]
            return json.dumps(rows[:cap])

        @mcp.tool(structured_output=False)
        def get_model(slug: str) -> str:
            """One model's full record."""
            behaviour = self._tool_behaviour("get_model", slug)
            self._common(behaviour)
            if behaviour is Behaviour.GARBAGE:
                return "not json {"
            if behaviour is Behaviour.EMPTY:
                return "{}"
            detail = self._data.details.get(slug)
            if detail is None:
                return json.dumps({"error": f"{UNKNOWN_MODEL} '{slug}'"})
            return json.dumps(detail)

        @mcp.tool(structured_output=False)
        def get_providers() -> str:
            """Providers with their model counts."""
            behaviour = self._tool_behaviour("get_providers")
            self._common(behaviour)
            if behaviour is Behaviour.GARBAGE:
                return "providers: many"
            if behaviour is Behaviour.EMPTY:
                return "[]"
            return json.dumps(self._data.providers)

        return mcp

    # -- the ASGI wrapper ------------------------------------------------------------------

    def _wrap(self, app: ASGIApp) -> ASGIApp:
        async def wrapper(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] == "lifespan":
                self._loop = asyncio.get_running_loop()
                self._release = asyncio.Event()
                await app(scope, receive, send)
                return
            if scope["type"] != "http":
                await app(scope, receive, send)
                return
            headers = {
                k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]
            }
            user_agent = headers.get("user-agent", "")
            session_id = headers.get("mcp-session-id")
            body = await _read_body(receive)
            method, tool, slug, arguments = _describe(body)
            with self._lock:
                if session_id is not None:
                    self.sessions_seen.add(session_id)
                forgotten = session_id is not None and session_id in self.forgotten
                self.user_agents.append(user_agent)
                if method is not None:
                    self.requests[method] += 1
                if tool is not None:
                    self.calls[tool] += 1
                    self.tool_arguments.append((tool, arguments))
            if not user_agent or user_agent.startswith(BLOCKED_USER_AGENT_PREFIXES):
                await _plain(send, 403, b"error code: 1010")
                return
            if forgotten:
                await _plain(send, 404, b"Session not found")
                return
            if scope["method"] == "POST" and method is not None:
                behaviour = self._take_fault(method, tool, slug, http_level=True)
                if behaviour is Behaviour.SESSION_LOST:
                    if session_id is not None:
                        with self._lock:
                            self.forgotten.add(session_id)
                    await _plain(send, 404, b"Session not found")
                    return
                if behaviour is Behaviour.HTTP_500:
                    await _plain(send, 500, b"Internal Server Error")
                    return
                if behaviour is Behaviour.HTTP_403:
                    await _plain(send, 403, b"Forbidden")
                    return
                if behaviour is Behaviour.HTTP_429:
                    await _plain(send, 429, b"Too Many Requests")
                    return
                if behaviour is Behaviour.HANG:
                    await self._hang(receive)
                    await _plain(send, 503, b"shutting down")
                    return
            if tool is None:
                await app(scope, _replay(body, receive), send)
                return
            with self._lock:
                self.in_flight += 1
                self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
            try:
                if self.latency:
                    await anyio.sleep(self.latency)
                await app(scope, _replay(body, receive), send)
            finally:
                with self._lock:
                    self.in_flight -= 1

        return wrapper

    async def _hang(self, receive: Receive) -> None:
        """Never answer: wait for the client to go away or the server to stop."""
        release = self._release
        assert release is not None
        async with anyio.create_task_group() as tg:

            async def until_released() -> None:
                await release.wait()
                tg.cancel_scope.cancel()

            async def until_disconnected() -> None:
                while (await receive())["type"] != "http.disconnect":
                    pass
                tg.cancel_scope.cancel()

            tg.start_soon(until_released)
            tg.start_soon(until_disconnected)

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> Self:
        app = self._wrap(
            self.build_server().streamable_http_app(
                stateless_http=not self.stateful,
                json_response=self.json_response,
                host=self.host,
            )
        )
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind((self.host, 0))
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(
            app,
            log_level="warning",
            access_log=False,
            lifespan="on",
            ws="none",
            timeout_graceful_shutdown=2,
        )
        server = uvicorn.Server(config)
        self._server = server
        self._sock = sock
        self._thread = threading.Thread(
            target=server.run, kwargs={"sockets": [sock]}, name="mcp-loopback", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + 10
        while not server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("loopback MCP server did not start")
            time.sleep(0.005)
        return self

    def stop(self) -> None:
        if self._loop is not None and self._release is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._release.set)
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
        if getattr(self, "_sock", None) is not None:
            self._sock.close()
        self._server = None
        self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def _slug_key(row: Any) -> str:
    return str(row.get("slug")) if isinstance(row, dict) else str(row)


async def _read_body(receive: Receive) -> bytes:
    chunks: list[bytes] = []
    more = True
    while more:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        more = message.get("more_body", False)
    return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


def _describe(body: bytes) -> tuple[str | None, str | None, str | None, dict[str, Any]]:
    """(JSON-RPC method, tool name, get_model slug, tool arguments) of a request body."""
    try:
        message = json.loads(body)
    except ValueError:
        return None, None, None, {}
    if not isinstance(message, dict) or "id" not in message:
        return None, None, None, {}
    method = message.get("method")
    params = message.get("params") or {}
    if method != "tools/call":
        return method, None, None, {}
    arguments = params.get("arguments") or {}
    slug = arguments.get("slug")
    return method, params.get("name"), slug if isinstance(slug, str) else None, arguments


async def _plain(send: Send, status: int, body: bytes) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"text/plain"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


@pytest.fixture
def mcp_upstream() -> Iterator[LoopbackUpstream]:
    """The loopback server answering ``application/json``."""
    with LoopbackUpstream(json_response=True) as upstream:
        yield upstream


@pytest.fixture
def mcp_upstream_sse() -> Iterator[LoopbackUpstream]:
    """The loopback server answering ``text/event-stream``."""
    with LoopbackUpstream(json_response=False) as upstream:
        yield upstream
