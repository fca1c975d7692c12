"""The HTTP transport under the MCP SDK: per-call traces, transport errors kept inside a call."""

from __future__ import annotations

import contextvars
from dataclasses import dataclass
from typing import TYPE_CHECKING

import httpx2

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

# A synthetic status for a request that got no HTTP answer at all (connect error, timeout).
NO_ANSWER_STATUS = 599


@dataclass(slots=True)
class HttpTrace:
    """What the HTTP layer saw for one MCP request (set by `TracingTransport`)."""

    status: int | None = None
    retry_after: float | None = None
    transport_error: httpx2.TransportError | None = None


# The SDK sends each POST from a task that runs in a copy of the calling task's context, so a
# trace set around `call_tool` is the one the transport sees for that call's requests.
TRACE: contextvars.ContextVar[HttpTrace | None] = contextvars.ContextVar(
    "pricing_service_upstream_trace", default=None
)


class GuardedStream(httpx2.AsyncByteStream):
    """A response body whose read errors end the body instead of raising.

    The SDK reads a JSON body outside any error handling: a dropped connection there would tear
    down the whole session. A short body fails just that request (as a parse error), and the
    trace keeps the real cause.
    """

    def __init__(self, inner: httpx2.AsyncByteStream, trace: HttpTrace) -> None:
        self._inner = inner
        self._trace = trace

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._inner:
                yield chunk
        except httpx2.TransportError as exc:
            self._trace.transport_error = exc

    async def aclose(self) -> None:
        await self._inner.aclose()


class TracingTransport(httpx2.AsyncBaseTransport):
    """Records each call's HTTP outcome and keeps transport errors inside that call.

    Found in mcp 2.3: the SDK turns every non-2xx answer into the same JSON-RPC INTERNAL_ERROR
    ("Server returned an error response", status lost), and an httpx2 exception in a POST task
    escapes into the transport's task group, cancelling every call of the session and surfacing
    as a nested ExceptionGroup. Here the status is recorded in the caller's trace, and a request
    that got no answer is given a synthetic 599 so the SDK fails only that request.
    """

    def __init__(self, inner: httpx2.AsyncBaseTransport) -> None:
        self._inner = inner

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        trace = TRACE.get()
        if trace is None:
            return await self._inner.handle_async_request(request)
        try:
            response = await self._inner.handle_async_request(request)
        except httpx2.TransportError as exc:
            trace.transport_error = exc
            return httpx2.Response(
                NO_ANSWER_STATUS, headers={"content-type": "text/plain"}, content=b"no answer"
            )
        if response.status_code >= 400 and trace.status is None:
            trace.status = response.status_code
            trace.retry_after = _retry_after(response.headers.get("retry-after"))
        if isinstance(response.stream, httpx2.AsyncByteStream):
            response.stream = GuardedStream(response.stream, trace)
        return response

    async def aclose(self) -> None:
        await self._inner.aclose()


def _retry_after(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None  # an HTTP date: rare enough that the normal backoff will do
