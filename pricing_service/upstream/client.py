"""PricePerToken client over the MCP SDK (streamable HTTP): one session a fetch, typed failures."""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

import anyio
import httpx2

from pricing_service import __version__
from pricing_service.errors import UpstreamError, UpstreamRejected, UpstreamUnavailable
from pricing_service.logs import event
from pricing_service.upstream._attempt import (
    AttemptFailed,
    check_model,
    check_providers,
    check_rows,
    payload,
    traced_attempt,
)
from pricing_service.upstream._transport import TracingTransport

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Iterable

    from mcp import ClientSession

    from pricing_service.upstream._attempt import Validator

    ProgressFn = Callable[[str, dict[str, Any]], None]

T = TypeVar("T")

# The package's name, as before the split: log configuration and tests address this logger.
logger = logging.getLogger("pricing_service.upstream")

DEFAULT_USER_AGENT = f"cognitia-pricing/{__version__}"

_MAX_BACKOFF_S = 30.0
_MAX_RETRY_AFTER_S = 60.0
_PROGRESS_EVERY = 100
# Sessions one fetch may open: the first, and new ones after the server forgot one (HTTP 404
# on its session id, which the MCP specification says means "start a new session"). A server
# that forgets every session it gives is broken: the fetch fails rather than loop.
MAX_SESSIONS = 4
# get_model's normal answer for a slug it has no record of: no detail exists (the list row is
# all the upstream knows), which is not a failed call.
NO_DETAIL_PREFIX = "no model found"
# The SDK's 1 MiB default per SSE event would cap an SSE answer of get_all_models at roughly
# 3,000 rows; the listing is 533 rows (under 200 KB) today.
_MAX_SSE_EVENT_BYTES = 32 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class UpstreamFetch:
    """Everything one fetch brought back, plus what it cost."""

    rows: list[dict[str, Any]]
    details: dict[str, dict[str, Any]]
    detail_errors: dict[str, str]  # slug -> why its get_model call failed
    calls: int
    latency_ms: int
    call_latencies_ms: list[float]
    no_detail: list[str] = field(default_factory=list)  # slugs get_model has no record of
    sessions: int = 1  # MCP sessions opened (more than one: the server forgot one)

    @property
    def rows_seen(self) -> int:
        return len(self.rows)

    @property
    def reconnects(self) -> int:
        return self.sessions - 1

    def call_outcomes(self) -> dict[str, int]:
        """get_model calls by outcome: answered, failed, no record of the slug."""
        return {
            "ok": len(self.details),
            "failed": len(self.detail_errors),
            "none": len(self.no_detail),
        }

    def log_fields(self) -> dict[str, Any]:
        """The fetch's own counts, for the refresh's ``refresh.normalized`` line."""
        return {
            "detail_errors": len(self.detail_errors),
            "no_detail": len(self.no_detail),
            "sessions": self.sessions,
        }


class SessionLost(Exception):
    """The server answered HTTP 404 for the session: it forgot it; a new one must be opened."""

    def __init__(self, call: str) -> None:
        super().__init__(call)
        self.call = call


@dataclass(slots=True)
class _Gathered:
    """What a fetch has so far, kept across the sessions it opens."""

    rows: list[dict[str, Any]] | None = None
    slugs: list[str] = field(default_factory=list)
    details: dict[str, dict[str, Any]] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    no_detail: list[str] = field(default_factory=list)
    sessions: int = 0

    def pending(self) -> list[str]:
        done = self.details.keys() | self.errors.keys() | set(self.no_detail)
        return [slug for slug in self.slugs if slug not in done]


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
    """Reads the PricePerToken listing over MCP (streamable HTTP, JSON or SSE answers).

    Failures: `UpstreamUnavailable` for transient ones (connection, timeout, HTTP 5xx and 429,
    after `retries` retries with exponential backoff from `backoff` seconds), and
    `UpstreamRejected` for permanent ones (other 4xx, `isError`, `{"error": ...}`, a payload
    that is not the expected schema), never retried. An empty list is returned as is: judging
    whether a listing is plausible is the sanity gate's job, not the transport's.
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

    async def fetch_listing(
        self,
        enrich: Callable[[list[dict[str, Any]]], Iterable[str]] | None = None,
        progress: Callable[[str, dict[str, Any]], None] | None = None,
    ) -> UpstreamFetch:
        """The whole listing, and `get_model` details for the slugs `enrich(rows)` names.

        `enrich` defaults to every slug. One MCP session; the whole run is bounded by
        `run_timeout`.
        """
        # Here, not at import: the SDK costs a worker that never refreshes 1.5 s and tens of MB.
        from mcp import ClientSession, Implementation
        from mcp.client.streamable_http import streamable_http_client

        started = time.perf_counter()
        run = _Run(progress)
        gathered = _Gathered()
        outcome: UpstreamFetch | None = None
        failure: Exception | None = None
        try:
            with anyio.fail_after(self.run_timeout):
                async with httpx2.AsyncClient(
                    headers={"User-Agent": self.user_agent},
                    timeout=httpx2.Timeout(self.call_timeout + 1.0),
                    transport=TracingTransport(
                        httpx2.AsyncHTTPTransport(
                            limits=httpx2.Limits(max_connections=self.concurrency + 2)
                        )
                    ),
                ) as http:
                    while outcome is None:
                        gathered.sessions += 1
                        failure = None
                        # Transport and session open and close in this one task: the SDK's
                        # task groups must not outlive the scope that bounds them.
                        async with (
                            streamable_http_client(
                                self.url, http_client=http, max_sse_event_size=_MAX_SSE_EVENT_BYTES
                            ) as (read, write),
                            ClientSession(
                                read,
                                write,
                                read_timeout_seconds=self.call_timeout,
                                client_info=Implementation(
                                    name="cognitia-pricing", version=__version__
                                ),
                            ) as session,
                        ):
                            # Caught here, re-raised below: an exception leaving these blocks
                            # comes out wrapped in the SDK's ExceptionGroups.
                            try:
                                outcome = await self._fetch(session, run, enrich, started, gathered)
                            except Exception as exc:
                                failure = exc
                        if not isinstance(failure, SessionLost):
                            break
                        if gathered.sessions >= MAX_SESSIONS:
                            failure = UpstreamUnavailable(
                                f"the MCP server forgot {gathered.sessions} sessions in a row "
                                f"(HTTP 404 on {failure.call}); giving up"
                            )
                            break
                        run.report(
                            "upstream.session_reopened",
                            {
                                "session": gathered.sessions + 1,
                                "call": failure.call,
                                "pending": len(gathered.pending()) if gathered.rows else None,
                            },
                        )
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
        gathered: _Gathered,
    ) -> UpstreamFetch:
        """The phases not done yet in an earlier session of this fetch, on this session."""
        await self._with_retries("initialize", lambda: self._initialize_once(session))
        if gathered.rows is None:
            rows = await self._list(session, run)
            gathered.slugs = list(
                dict.fromkeys(enrich(rows) if enrich else (row["slug"] for row in rows))
            )
            gathered.rows = rows
        await self._enrich(session, run, gathered)
        latency_ms = round((time.perf_counter() - started) * 1000)
        for slug, reason in gathered.errors.items():
            event(logger, "upstream.detail_failed", logging.WARNING, slug=slug, reason=reason)
        event(
            logger,
            "upstream.fetched",
            rows=len(gathered.rows),
            details=len(gathered.details),
            detail_errors=len(gathered.errors),
            no_detail=len(gathered.no_detail),
            sessions=gathered.sessions,
            calls=run.calls,
            duration_ms=latency_ms,
        )
        return UpstreamFetch(
            rows=gathered.rows,
            details=gathered.details,
            detail_errors=gathered.errors,
            calls=run.calls,
            latency_ms=latency_ms,
            call_latencies_ms=run.call_latencies_ms,
            no_detail=gathered.no_detail,
            sessions=gathered.sessions,
        )

    # -- phases ------------------------------------------------------------------------------

    async def _list(self, session: ClientSession, run: _Run) -> list[dict[str, Any]]:
        started = time.perf_counter()
        limit = self.list_limit
        # `limit` always explicit: without it the server answers only the first 100 rows.
        rows: list[dict[str, Any]] = await self._tool(
            session, run, "get_all_models", {"limit": limit}, check_rows
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
            session, run, "get_providers", {}, check_providers
        )
        authors = list(dict.fromkeys(p["author"] for p in providers))
        pages: dict[str, list[dict[str, Any]]] = {}

        async def one(author: str) -> None:
            pages[author] = await self._tool(
                session, run, "get_all_models", {"author": author, "limit": limit}, check_rows
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

    async def _enrich(self, session: ClientSession, run: _Run, gathered: _Gathered) -> None:
        """get_model for every slug not answered yet, into ``gathered``.

        A lost session (SessionLost) leaves the slugs in flight unanswered, for the next one.
        """
        slugs = gathered.pending()
        total = len(gathered.slugs)
        details, errors = gathered.details, gathered.errors
        # Consecutive unreachable answers that mean the server is gone rather than one model
        # failing: stop instead of waiting out every slug's retries.
        breaker = min(len(slugs), max(2 * self.concurrency, 10))
        state = {"done": total - len(slugs), "streak": 0}
        down: list[UpstreamUnavailable] = []

        async def one(slug: str) -> None:
            try:
                value = await self._tool(
                    session, run, "get_model", {"slug": slug}, check_model(slug), no_detail=True
                )
                if value is None:
                    gathered.no_detail.append(slug)
                else:
                    details[slug] = value
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
        with traced_attempt(self.call_timeout):
            await session.initialize()

    async def _tool(
        self,
        session: ClientSession,
        run: _Run,
        tool: str,
        arguments: dict[str, Any],
        check: Validator,
        *,
        no_detail: bool = False,
    ) -> Any:
        """One tool call's checked payload, with retries. ``no_detail``: the upstream's
        "No model found" answer is None (no record exists), not a failure."""

        async def attempt() -> Any:
            started = time.perf_counter()
            try:
                with traced_attempt(self.call_timeout):
                    result = await session.call_tool(tool, arguments)
            finally:
                run.calls += 1
                run.call_latencies_ms.append((time.perf_counter() - started) * 1000)
            if no_detail and _says_no_detail(result):
                return None
            value = payload(result)
            reason = check(value)
            if reason is not None:
                raise AttemptFailed(reason, transient=False)
            return value

        label = (
            tool
            if not arguments
            else f"{tool}({' '.join(f'{k}={v}' for k, v in arguments.items())})"
        )
        return await self._with_retries(label, attempt, in_session=True)

    async def _with_retries(
        self, label: str, attempt: Callable[[], Awaitable[T]], *, in_session: bool = False
    ) -> T:
        """``in_session``: a call on an initialized session, where HTTP 404 means the server
        forgot the session (SessionLost); elsewhere (the handshake) it is a wrong URL."""
        number = 0
        while True:
            number += 1
            try:
                return await attempt()
            except AttemptFailed as failed:
                if in_session and failed.status == HTTP_NOT_FOUND:
                    raise SessionLost(label) from failed
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


HTTP_NOT_FOUND = 404


def _says_no_detail(result: Any) -> bool:
    """Whether a get_model result is the upstream's "No model found" answer."""
    from mcp.types import TextContent

    if result.is_error or not result.content or not isinstance(result.content[0], TextContent):
        return False
    try:
        value = json.loads(result.content[0].text)
    except ValueError:
        return False
    if not isinstance(value, dict) or "pricing" in value:
        return False
    error = value.get("error")
    return isinstance(error, str) and error.strip().lower().startswith(NO_DETAIL_PREFIX)


def _describe_group(exc: BaseException) -> str:
    """The first leaf of an (often nested) ExceptionGroup, named."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    if isinstance(exc, UpstreamError):
        return exc.detail
    return f"{type(exc).__name__}: {exc}"
