"""One attempt at an MCP request: its time bound, the classification of its failure, and the
checks on its payload."""

from __future__ import annotations

import json
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import anyio
import httpx2
import pydantic

from pricing_service.upstream._transport import TRACE, HttpTrace

# The MCP SDK (about 1.5 s and tens of MB to import) is imported where a fetch uses it, never at
# the service's start: a worker that never refreshes never loads it.
if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from mcp.types import CallToolResult

    Validator = Callable[[Any], str | None]

# The SDK's own per-request timeout fires first; this outer bound only catches its hangs.
ATTEMPT_GRACE_S = 5.0
_SNIPPET = 160


class AttemptFailed(Exception):
    """One attempt failed; `transient` says whether another attempt may help."""

    def __init__(
        self,
        reason: str,
        *,
        transient: bool,
        status: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.transient = transient
        self.status = status
        self.retry_after = retry_after


@contextmanager
def traced_attempt(call_timeout: float) -> Iterator[HttpTrace]:
    """Bound one SDK request and turn whatever it raises into an `AttemptFailed`.

    The trace is what the transport saw for this request's HTTP exchanges; it is set for the
    duration of the block only, and decides the classification when it holds a failure.
    """
    from mcp import MCPError

    trace = HttpTrace()
    token = TRACE.set(trace)
    try:
        with anyio.fail_after(call_timeout + ATTEMPT_GRACE_S):
            yield trace
    except (
        MCPError,
        TimeoutError,
        httpx2.TransportError,
        pydantic.ValidationError,
        RuntimeError,
    ) as exc:
        raise classify(exc, trace, call_timeout) from (trace.transport_error or exc)
    finally:
        TRACE.reset(token)


def _from_trace(trace: HttpTrace) -> AttemptFailed | None:
    """Classify by what the HTTP layer saw, if it saw a failure."""
    if trace.transport_error is not None:
        error = trace.transport_error
        kind = "timeout" if isinstance(error, httpx2.TimeoutException) else "connection error"
        return AttemptFailed(f"{kind}: {type(error).__name__}: {error}", transient=True)
    status = trace.status
    if status is None:
        return None
    if status == 429 or status >= 500:
        return AttemptFailed(
            f"HTTP {status}", transient=True, status=status, retry_after=trace.retry_after
        )
    hint = " (the server refuses default library User-Agents)" if status == 403 else ""
    return AttemptFailed(f"HTTP {status}{hint}", transient=False, status=status)


def classify(exc: BaseException, trace: HttpTrace, timeout: float) -> AttemptFailed:
    from mcp import MCPError
    from mcp.types import CONNECTION_CLOSED, INTERNAL_ERROR, REQUEST_TIMEOUT

    traced = _from_trace(trace)
    if traced is not None:
        return traced
    if isinstance(exc, TimeoutError):
        return AttemptFailed(f"no answer within {timeout:g}s", transient=True)
    if isinstance(exc, MCPError):
        if exc.code == REQUEST_TIMEOUT:
            return AttemptFailed(f"no answer within {timeout:g}s", transient=True)
        # CONNECTION_CLOSED: an SSE stream ended before its answer; INTERNAL_ERROR: the
        # server's handler crashed. Both may pass; other JSON-RPC errors (bad method or
        # params, unparsable answer) will not.
        transient = exc.code in (CONNECTION_CLOSED, INTERNAL_ERROR)
        return AttemptFailed(f"JSON-RPC error {exc.code}: {exc.message}", transient=transient)
    if isinstance(exc, httpx2.TransportError):
        return AttemptFailed(f"connection error: {type(exc).__name__}: {exc}", transient=True)
    # pydantic.ValidationError / RuntimeError: a result that is not a valid MCP result.
    return AttemptFailed(f"malformed MCP result: {exc}", transient=False)


def payload(result: CallToolResult) -> Any:
    """The JSON value in `content[0].text`; raises `AttemptFailed` (permanent) otherwise."""
    from mcp.types import TextContent

    first = result.content[0] if result.content else None
    text = first.text if isinstance(first, TextContent) else None
    if result.is_error:
        raise AttemptFailed(f"tool reported an error: {_snippet(text or '')}", transient=False)
    if text is None:
        raise AttemptFailed("result has no text content", transient=False)
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise AttemptFailed(f"payload is not JSON: {_snippet(text)}", transient=False) from exc
    if isinstance(value, dict) and "error" in value:
        raise AttemptFailed(f"upstream error: {_snippet(str(value['error']))}", transient=False)
    return value


def _snippet(text: str) -> str:
    text = " ".join(text.split())
    return repr(text if len(text) <= _SNIPPET else text[:_SNIPPET] + "...")


# --- payload schemas (return a reason when the value does not fit) ---------------------------


def check_rows(value: Any) -> str | None:
    if not isinstance(value, list):
        return f"expected a JSON array of models, got {type(value).__name__}"
    for index, row in enumerate(value):
        if not isinstance(row, dict) or not isinstance(row.get("slug"), str) or not row["slug"]:
            return f"row {index} is not an object with a string slug: {_snippet(str(row))}"
    return None


def check_providers(value: Any) -> str | None:
    if not isinstance(value, list):
        return f"expected a JSON array of providers, got {type(value).__name__}"
    for index, row in enumerate(value):
        if not isinstance(row, dict) or not isinstance(row.get("author"), str):
            return f"provider {index} is not an object with a string author: {_snippet(str(row))}"
    return None


def check_model(slug: str) -> Validator:
    def check(value: Any) -> str | None:
        if not isinstance(value, dict):
            return f"expected a JSON object, got {type(value).__name__}"
        if value.get("slug") != slug:
            return f"answer is for slug {value.get('slug')!r}"
        return None

    return check
