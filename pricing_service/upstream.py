"""PricePerToken client over the MCP SDK (streamable HTTP): one session a fetch, typed failures."""

from __future__ import annotations

import contextvars
import json
import logging
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

import anyio
import httpx2
import pydantic
from mcp import ClientSession, Implementation, MCPError
from mcp.client.streamable_http import streamable_http_client
from mcp.types import (
    CONNECTION_CLOSED,
    INTERNAL_ERROR,
    REQUEST_TIMEOUT,
    TextContent,
)

from pricing_service import __version__
from pricing_service.errors import UpstreamError, UpstreamRejected, UpstreamUnavailable
from pricing_service.logs import event

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Awaitable, Callable, Iterable

    from mcp.types import CallToolResult

    ProgressFn = Callable[[str, dict[str, Any]], None]
    Validator = Callable[[Any], str | None]

T = TypeVar("T")

logger = logging.getLogger(__name__)

DEFAULT_USER_AGENT = f"cognitia-pricing/{__version__}"

# A synthetic status for a request that got no HTTP answer at all (connect error, timeout).
_NO_ANSWER_STATUS = 599
# The SDK's own per-request timeout fires first; this outer bound only catches its hangs.
_ATTEMPT_GRACE_S = 5.0
_MAX_BACKOFF_S = 30.0
_MAX_RETRY_AFTER_S = 60.0
_PROGRESS_EVERY = 100
# The SDK's 1 MiB default per SSE event would cap an SSE answer of get_all_models at roughly
# 3,000 rows; the catalogue is 533 rows (under 200 KB) today.
_MAX_SSE_EVENT_BYTES = 32 * 1024 * 1024
_SNIPPET = 160


@dataclass(frozen=True, slots=True)
class UpstreamFetch:
    """Everything one fetch brought back, plus what it cost."""

    rows: list[dict[str, Any]]
    details: dict[str, dict[str, Any]]
    detail_errors: dict[str, str]
    calls: int
    latency_ms: int
    call_latencies_ms: list[float]


# --- HTTP tracing ---------------------------------------------------------------------------


@dataclass(slots=True)
class _HttpTrace:
    """What the HTTP layer saw for one MCP request (set by `_TracingTransport`)."""

    status: int | None = None
    retry_after: float | None = None
    transport_error: httpx2.TransportError | None = None


# The SDK sends each POST from a task that runs in a copy of the calling task's context, so a
# trace set around `call_tool` is the one the transport sees for that call's requests.
_TRACE: contextvars.ContextVar[_HttpTrace | None] = contextvars.ContextVar(
    "pricing_service_upstream_trace", default=None
)


class _GuardedStream(httpx2.AsyncByteStream):
    """A response body whose read errors end the body instead of raising.

    The SDK reads a JSON body outside any error handling: a dropped connection there would tear
    down the whole session. A short body fails just that request (as a parse error), and the
    trace keeps the real cause.
    """

    def __init__(self, inner: httpx2.AsyncByteStream, trace: _HttpTrace) -> None:
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


class _TracingTransport(httpx2.AsyncBaseTransport):
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
        trace = _TRACE.get()
        if trace is None:
            return await self._inner.handle_async_request(request)
        try:
            response = await self._inner.handle_async_request(request)
        except httpx2.TransportError as exc:
            trace.transport_error = exc
            return httpx2.Response(
                _NO_ANSWER_STATUS, headers={"content-type": "text/plain"}, content=b"no answer"
            )
        if response.status_code >= 400 and trace.status is None:
            trace.status = response.status_code
            trace.retry_after = _retry_after(response.headers.get("retry-after"))
        if isinstance(response.stream, httpx2.AsyncByteStream):
            response.stream = _GuardedStream(response.stream, trace)
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


# --- failures of one attempt ----------------------------------------------------------------


class _AttemptFailed(Exception):
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


def _from_trace(trace: _HttpTrace) -> _AttemptFailed | None:
    """Classify by what the HTTP layer saw, if it saw a failure."""
    if trace.transport_error is not None:
        error = trace.transport_error
        kind = "timeout" if isinstance(error, httpx2.TimeoutException) else "connection error"
        return _AttemptFailed(f"{kind}: {type(error).__name__}: {error}", transient=True)
    status = trace.status
    if status is None:
        return None
    if status == 429 or status >= 500:
        return _AttemptFailed(
            f"HTTP {status}", transient=True, status=status, retry_after=trace.retry_after
        )
    hint = " (the server refuses default library User-Agents)" if status == 403 else ""
    return _AttemptFailed(f"HTTP {status}{hint}", transient=False, status=status)


def _classify(exc: BaseException, trace: _HttpTrace, timeout: float) -> _AttemptFailed:
    traced = _from_trace(trace)
    if traced is not None:
        return traced
    if isinstance(exc, TimeoutError):
        return _AttemptFailed(f"no answer within {timeout:g}s", transient=True)
    if isinstance(exc, MCPError):
        if exc.code == REQUEST_TIMEOUT:
            return _AttemptFailed(f"no answer within {timeout:g}s", transient=True)
        # CONNECTION_CLOSED: an SSE stream ended before its answer; INTERNAL_ERROR: the
        # server's handler crashed. Both may pass; other JSON-RPC errors (bad method or
        # params, unparsable answer) will not.
        transient = exc.code in (CONNECTION_CLOSED, INTERNAL_ERROR)
        return _AttemptFailed(f"JSON-RPC error {exc.code}: {exc.message}", transient=transient)
    if isinstance(exc, httpx2.TransportError):
        return _AttemptFailed(f"connection error: {type(exc).__name__}: {exc}", transient=True)
    # pydantic.ValidationError / RuntimeError: a result that is not a valid MCP result.
    return _AttemptFailed(f"malformed MCP result: {exc}", transient=False)


def _payload(result: CallToolResult) -> Any:
    """The JSON value in `content[0].text`; raises `_AttemptFailed` (permanent) otherwise."""
    first = result.content[0] if result.content else None
    text = first.text if isinstance(first, TextContent) else None
    if result.is_error:
        raise _AttemptFailed(f"tool reported an error: {_snippet(text or '')}", transient=False)
    if text is None:
        raise _AttemptFailed("result has no text content", transient=False)
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise _AttemptFailed(f"payload is not JSON: {_snippet(text)}", transient=False) from exc
    if isinstance(value, dict) and "error" in value:
        raise _AttemptFailed(f"upstream error: {_snippet(str(value['error']))}", transient=False)
    return value


def _snippet(text: str) -> str:
    text = " ".join(text.split())
    return repr(text if len(text) <= _SNIPPET else text[:_SNIPPET] + "...")


# --- payload schemas (return a reason when the value does not fit) ---------------------------


def _check_rows(value: Any) -> str | None:
    if not isinstance(value, list):
        return f"expected a JSON array of models, got {type(value).__name__}"
    for index, row in enumerate(value):
        if not isinstance(row, dict) or not isinstance(row.get("slug"), str) or not row["slug"]:
            return f"row {index} is not an object with a string slug: {_snippet(str(row))}"
    return None


def _check_providers(value: Any) -> str | None:
    if not isinstance(value, list):
        return f"expected a JSON array of providers, got {type(value).__name__}"
    for index, row in enumerate(value):
        if not isinstance(row, dict) or not isinstance(row.get("author"), str):
            return f"provider {index} is not an object with a string author: {_snippet(str(row))}"
    return None


def _check_model(slug: str) -> Validator:
    def check(value: Any) -> str | None:
        if not isinstance(value, dict):
            return f"expected a JSON object, got {type(value).__name__}"
        if value.get("slug") != slug:
            return f"answer is for slug {value.get('slug')!r}"
        return None

    return check


# --- the client -----------------------------------------------------------------------------


@dataclass(slots=True)
class _Run:
    """Counters of one fetch."""

    progress: ProgressFn | None
    calls: int = 0
    call_latencies_ms: list[float] = field(default_factory=list)

    def report(self, name: str, fields: dict[str, Any]) -> None:
        event(logger, name, **fields)
        if self.progress is None:
            return
        try:
            self.progress(name, fields)
        except Exception:
            # A broken progress hook must not cost a fetch.
            logger.exception("upstream.progress_failed event=%s", name)


class PricePerTokenClient:
    """Reads the PricePerToken catalogue over MCP (streamable HTTP, JSON or SSE answers).

    Failures: `UpstreamUnavailable` for transient ones (connection, timeout, HTTP 5xx and 429,
    after `retries` retries with exponential backoff from `backoff` seconds), and
    `UpstreamRejected` for permanent ones (other 4xx, `isError`, `{"error": ...}`, a payload
    that is not the expected schema), never retried. An empty list is returned as is: judging
    whether a catalogue is plausible is the sanity gate's job, not the transport's.
    """

    def __init__(
        self,
        url: str,
        *,
        user_agent: str = DEFAULT_USER_AGENT,
        call_timeout: float = 20.0,
        run_timeout: float = 600.0,
        retries: int = 3,
        backoff: float = 0.5,
        concurrency: int = 8,
        list_limit: int = 5000,
    ) -> None:
        if concurrency < 1 or list_limit < 1 or retries < 0:
            raise ValueError("concurrency and list_limit must be >= 1, retries >= 0")
        self.url = url
        self.user_agent = user_agent
        self.call_timeout = call_timeout
        self.run_timeout = run_timeout
        self.retries = retries
        self.backoff = backoff
        self.concurrency = concurrency
        self.list_limit = list_limit

    async def fetch_catalogue(
        self,
        enrich: Callable[[list[dict[str, Any]]], Iterable[str]] | None = None,
        progress: Callable[[str, dict[str, Any]], None] | None = None,
    ) -> UpstreamFetch:
        """The whole catalogue, and `get_model` details for the slugs `enrich(rows)` names.

        `enrich` defaults to every slug. One MCP session; the whole run is bounded by
        `run_timeout`.
        """
        started = time.perf_counter()
        run = _Run(progress)
        outcome: UpstreamFetch | None = None
        failure: Exception | None = None
        try:
            with anyio.fail_after(self.run_timeout):
                # Client, transport and session open and close in this one task: the SDK's task
                # groups must not outlive the scope that bounds them.
                async with (
                    httpx2.AsyncClient(
                        headers={"User-Agent": self.user_agent},
                        timeout=httpx2.Timeout(self.call_timeout + 1.0),
                        transport=_TracingTransport(
                            httpx2.AsyncHTTPTransport(
                                limits=httpx2.Limits(max_connections=self.concurrency + 2)
                            )
                        ),
                    ) as http,
                    streamable_http_client(
                        self.url, http_client=http, max_sse_event_size=_MAX_SSE_EVENT_BYTES
                    ) as (read, write),
                    ClientSession(
                        read,
                        write,
                        read_timeout_seconds=self.call_timeout,
                        client_info=Implementation(name="cognitia-pricing", version=__version__),
                    ) as session,
                ):
                    # Caught here, re-raised below: an exception leaving these blocks comes out
                    # wrapped in the SDK's ExceptionGroups.
                    try:
                        outcome = await self._fetch(session, run, enrich, started)
                    except Exception as exc:
                        failure = exc
        except TimeoutError as exc:
            raise UpstreamUnavailable(
                f"fetch did not finish within {self.run_timeout:g}s ({run.calls} tool calls made)"
            ) from exc
        except Exception as exc:
            raise UpstreamUnavailable(f"MCP session failed: {_describe_group(exc)}") from exc
        if failure is not None:
            raise failure
        assert outcome is not None
        return outcome

    async def _fetch(
        self,
        session: ClientSession,
        run: _Run,
        enrich: Callable[[list[dict[str, Any]]], Iterable[str]] | None,
        started: float,
    ) -> UpstreamFetch:
        await self._with_retries("initialize", lambda: self._initialize_once(session))
        rows = await self._list(session, run)
        slugs = list(dict.fromkeys(enrich(rows) if enrich else (row["slug"] for row in rows)))
        details, detail_errors = await self._enrich(session, run, slugs)
        latency_ms = round((time.perf_counter() - started) * 1000)
        event(
            logger,
            "upstream.fetched",
            rows=len(rows),
            details=len(details),
            detail_errors=len(detail_errors),
            calls=run.calls,
            duration_ms=latency_ms,
        )
        return UpstreamFetch(
            rows=rows,
            details=details,
            detail_errors=detail_errors,
            calls=run.calls,
            latency_ms=latency_ms,
            call_latencies_ms=run.call_latencies_ms,
        )

    # -- phases ------------------------------------------------------------------------------

    async def _list(self, session: ClientSession, run: _Run) -> list[dict[str, Any]]:
        started = time.perf_counter()
        limit = self.list_limit
        # `limit` always explicit: without it the server answers only the first 100 rows.
        rows: list[dict[str, Any]] = await self._tool(
            session, run, "get_all_models", {"limit": limit}, _check_rows
        )
        if len(rows) >= limit:
            event(logger, "upstream.truncated", logging.WARNING, rows=len(rows), limit=limit)
            rows = await self._list_by_author(session, run, rows)
        duration_ms = round((time.perf_counter() - started) * 1000)
        run.report("upstream.list", {"rows": len(rows), "duration_ms": duration_ms})
        return rows

    async def _list_by_author(
        self, session: ClientSession, run: _Run, first_page: list[dict[str, Any]]
    ) -> list[dict[str, Any]]:
        limit = self.list_limit
        providers: list[dict[str, Any]] = await self._tool(
            session, run, "get_providers", {}, _check_providers
        )
        authors = list(dict.fromkeys(p["author"] for p in providers))
        pages: dict[str, list[dict[str, Any]]] = {}

        async def one(author: str) -> None:
            pages[author] = await self._tool(
                session, run, "get_all_models", {"author": author, "limit": limit}, _check_rows
            )

        await self._each(authors, one, stop_on_error=True)
        # One provider's author slug is empty, and a server may read author="" as no filter at
        # all: its page is merged but cannot prove truncation.
        still = sorted(author for author, page in pages.items() if author and len(page) >= limit)
        if still:
            raise UpstreamRejected(
                f"get_all_models: {len(still)} author(s) still return {limit} rows, the limit "
                f"({', '.join(still[:5])}); raise list_limit"
            )
        merged = {row["slug"]: row for row in first_page}
        for author in authors:
            for row in pages[author]:
                merged.setdefault(row["slug"], row)
        expected = sum(p["model_count"] for p in providers if isinstance(p.get("model_count"), int))
        if len(merged) < expected:
            event(
                logger,
                "upstream.fanout_short",
                logging.WARNING,
                rows=len(merged),
                expected=expected,
            )
        run.report("upstream.fanout", {"authors": len(authors), "rows": len(merged)})
        return sorted(merged.values(), key=lambda row: str(row["slug"]))

    async def _enrich(
        self, session: ClientSession, run: _Run, slugs: list[str]
    ) -> tuple[dict[str, dict[str, Any]], dict[str, str]]:
        total = len(slugs)
        details: dict[str, dict[str, Any]] = {}
        errors: dict[str, str] = {}
        # Consecutive unreachable answers that mean the server is gone rather than one model
        # failing: stop instead of waiting out every slug's retries.
        breaker = min(total, max(2 * self.concurrency, 10))
        state = {"done": 0, "streak": 0}
        down: list[UpstreamUnavailable] = []

        async def one(slug: str) -> None:
            try:
                details[slug] = await self._tool(
                    session, run, "get_model", {"slug": slug}, _check_model(slug)
                )
                state["streak"] = 0
            except UpstreamRejected as exc:
                errors[slug] = exc.detail
                state["streak"] = 0
            except UpstreamUnavailable as exc:
                errors[slug] = exc.detail
                state["streak"] += 1
                if state["streak"] >= breaker:
                    down.append(exc)
            state["done"] += 1
            done = state["done"]
            if done % _PROGRESS_EVERY == 0 or done == total:
                run.report("upstream.enrich", {"done": done, "total": total})

        await self._each(slugs, one, stop=lambda: bool(down))
        if down:
            raise UpstreamUnavailable(
                f"get_model: upstream unreachable, {breaker} calls in a row failed "
                f"({state['done']} of {total} done); last: {down[0].detail}"
            ) from down[0]
        for slug, reason in errors.items():
            event(logger, "upstream.detail_failed", slug=slug, reason=reason)
        return details, errors

    # -- calls -------------------------------------------------------------------------------

    async def _each(
        self,
        items: list[str],
        fn: Callable[[str], Awaitable[None]],
        *,
        stop: Callable[[], bool] = lambda: False,
        stop_on_error: bool = False,
    ) -> None:
        """`fn(item)` for every item, `concurrency` at a time on the one session.

        An exception is kept and re-raised after the workers stop, so it leaves unwrapped.
        """
        pending = iter(items)
        failures: list[Exception] = []

        async def worker() -> None:
            for item in pending:
                if stop() or failures:
                    return
                try:
                    await fn(item)
                except Exception as exc:
                    failures.append(exc)
                    if stop_on_error:
                        tg.cancel_scope.cancel()
                    return

        async with anyio.create_task_group() as tg:
            for _ in range(min(self.concurrency, len(items))):
                tg.start_soon(worker)
        if failures:
            raise failures[0]

    async def _initialize_once(self, session: ClientSession) -> None:
        trace = _HttpTrace()
        token = _TRACE.set(trace)
        try:
            with anyio.fail_after(self.call_timeout + _ATTEMPT_GRACE_S):
                await session.initialize()
        except (MCPError, TimeoutError, httpx2.TransportError, RuntimeError) as exc:
            raise _classify(exc, trace, self.call_timeout) from (trace.transport_error or exc)
        finally:
            _TRACE.reset(token)

    async def _tool(
        self,
        session: ClientSession,
        run: _Run,
        tool: str,
        arguments: dict[str, Any],
        check: Validator,
    ) -> Any:
        async def attempt() -> Any:
            trace = _HttpTrace()
            token = _TRACE.set(trace)
            started = time.perf_counter()
            try:
                with anyio.fail_after(self.call_timeout + _ATTEMPT_GRACE_S):
                    result = await session.call_tool(tool, arguments)
            except (
                MCPError,
                TimeoutError,
                httpx2.TransportError,
                pydantic.ValidationError,
                RuntimeError,
            ) as exc:
                failed = _classify(exc, trace, self.call_timeout)
                raise failed from (trace.transport_error or exc)
            finally:
                _TRACE.reset(token)
                run.calls += 1
                run.call_latencies_ms.append((time.perf_counter() - started) * 1000)
            value = _payload(result)
            reason = check(value)
            if reason is not None:
                raise _AttemptFailed(reason, transient=False)
            return value

        label = (
            tool
            if not arguments
            else f"{tool}({' '.join(f'{k}={v}' for k, v in arguments.items())})"
        )
        return await self._with_retries(label, attempt)

    async def _with_retries(self, label: str, attempt: Callable[[], Awaitable[T]]) -> T:
        number = 0
        while True:
            number += 1
            try:
                return await attempt()
            except _AttemptFailed as failed:
                if failed.transient and number <= self.retries:
                    delay = min(self.backoff * 2 ** (number - 1), _MAX_BACKOFF_S)
                    if failed.retry_after is not None:
                        delay = max(delay, min(failed.retry_after, _MAX_RETRY_AFTER_S))
                    event(
                        logger,
                        "upstream.retry",
                        logging.WARNING,
                        call=label,
                        attempt=number + 1,
                        delay_s=round(delay, 3),
                        reason=failed.reason,
                    )
                    await anyio.sleep(delay)
                    continue
                tries = f" after {number} attempts" if number > 1 else ""
                detail = f"{label}: {failed.reason}{tries}"
                error = UpstreamUnavailable if failed.transient else UpstreamRejected
                raise error(detail) from (failed.__cause__ or failed)


def _describe_group(exc: BaseException) -> str:
    """The first leaf of an (often nested) ExceptionGroup, named."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    if isinstance(exc, UpstreamError):
        return exc.detail
    return f"{type(exc).__name__}: {exc}"
