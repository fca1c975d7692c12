"""PricePerTokenClient against the loopback MCP server over real HTTP, JSON and SSE answers."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import anyio
import httpx2
import pytest
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.types import TextContent

from pricing_service.errors import UpstreamRejected, UpstreamUnavailable
from pricing_service.upstream import DEFAULT_USER_AGENT, PricePerTokenClient
from tests.support.mcp_upstream import (
    DEFAULT_LIST_LIMIT,
    Behaviour,
    LoopbackUpstream,
)
from tests.support.recording import recorded_listing

if TYPE_CHECKING:
    from collections.abc import Iterable

pytestmark = pytest.mark.integration

# Stops a test that really hangs. Not a measurement: bounds are asserted through the errors,
# which name the timeout that fired and the attempts made.
HANG_GUARD = 60

RECORDED = recorded_listing()
ALL_SLUGS = sorted(row["slug"] for row in RECORDED.rows)
OPENAI = sorted(slug for slug in ALL_SLUGS if RECORDED.details[slug]["author"] == "openai")


def no_details(rows: list[dict[str, Any]]) -> Iterable[str]:
    return []


def openai_only(rows: list[dict[str, Any]]) -> Iterable[str]:
    return [row["slug"] for row in rows if row["slug"] in OPENAI]


def client_for(upstream: LoopbackUpstream, **overrides: Any) -> PricePerTokenClient:
    """Small delays so failure paths stay fast; the call timeout is a bound on a hang, wide
    enough that a loaded machine's slow answer is not a failure (3 s timed out under load, and a
    test counting HTTP 500s then saw timeouts too). Tests of the timeout pass their own."""
    settings: dict[str, Any] = {
        "backoff": 0.01,
        "retries": 2,
        "call_timeout": 20.0,
        "run_timeout": 50.0,  # under HANG_GUARD
    }
    settings.update(overrides)
    return PricePerTokenClient(upstream.url, **settings)


@pytest.fixture(params=["json", "sse"])
def upstream(request: pytest.FixtureRequest) -> LoopbackUpstream:
    """The loopback server, once answering application/json and once text/event-stream."""
    name = "mcp_upstream" if request.param == "json" else "mcp_upstream_sse"
    server: LoopbackUpstream = request.getfixturevalue(name)
    return server


async def test_whole_listing_arrives_enriched(upstream: LoopbackUpstream) -> None:
    events: list[tuple[str, dict[str, Any]]] = []

    fetch = await client_for(upstream).fetch_listing(
        progress=lambda event, fields: events.append((event, fields))
    )

    assert [row["slug"] for row in fetch.rows] == ALL_SLUGS
    assert fetch.rows == sorted(RECORDED.rows, key=lambda row: row["slug"])
    assert fetch.details == RECORDED.details
    assert fetch.detail_errors == {}
    # grok-3: the list shows the cheapest endpoint (3), get_model the official price (5).
    assert fetch.rows[ALL_SLUGS.index("xai-grok-3")]["input_per_1m"] == 3
    assert fetch.details["xai-grok-3"]["pricing"]["input_per_1m"] == 5
    assert fetch.calls == 1 + len(ALL_SLUGS)
    assert upstream.calls == {"get_all_models": 1, "get_model": len(ALL_SLUGS)}
    assert len(fetch.call_latencies_ms) == fetch.calls
    assert all(ms > 0 for ms in fetch.call_latencies_ms)
    assert fetch.latency_ms >= max(fetch.call_latencies_ms)
    assert events[0][0] == "upstream.list"
    assert events[0][1]["rows"] == len(ALL_SLUGS)
    enrich_done = [fields["done"] for event, fields in events if event == "upstream.enrich"]
    assert enrich_done == [100, 200, 300, 400, 500, 533]


async def test_sends_the_product_user_agent(mcp_upstream: LoopbackUpstream) -> None:
    await client_for(mcp_upstream).fetch_listing(enrich=no_details)

    assert mcp_upstream.user_agents
    assert set(mcp_upstream.user_agents) == {DEFAULT_USER_AGENT}


@pytest.mark.parametrize("user_agent", ["python-httpx/0.28.1", "curl/8.5.0", "Python-urllib/3.11"])
async def test_default_user_agent_is_rejected_once(
    upstream: LoopbackUpstream, user_agent: str
) -> None:
    with pytest.raises(UpstreamRejected, match="initialize: HTTP 403") as caught:
        await client_for(upstream, user_agent=user_agent).fetch_listing()

    assert "User-Agent" in caught.value.detail
    assert upstream.requests == {"initialize": 1}  # permanent: not retried


async def test_limit_is_explicit(mcp_upstream: LoopbackUpstream) -> None:
    fetch = await client_for(mcp_upstream).fetch_listing(enrich=no_details)

    assert len(fetch.rows) == len(ALL_SLUGS) > DEFAULT_LIST_LIMIT
    assert mcp_upstream.tool_arguments == [("get_all_models", {"limit": 5000})]


async def test_server_without_limit_answers_only_100_rows(mcp_upstream: LoopbackUpstream) -> None:
    """The loopback server mimics the live default, so a client that forgot `limit` would fail."""
    async with (
        httpx2.AsyncClient(headers={"User-Agent": DEFAULT_USER_AGENT}) as http,
        streamable_http_client(mcp_upstream.url, http_client=http) as (read, write),
        ClientSession(read, write) as session,
    ):
        await session.initialize()
        result = await session.call_tool("get_all_models", {})
    assert isinstance(result.content[0], TextContent)
    assert result.content[0].text.count('"slug"') == DEFAULT_LIST_LIMIT


async def test_truncated_list_fans_out_by_author(upstream: LoopbackUpstream) -> None:
    events: list[str] = []

    fetch = await client_for(upstream, list_limit=100).fetch_listing(
        enrich=no_details, progress=lambda event, fields: events.append(event)
    )

    assert [row["slug"] for row in fetch.rows] == ALL_SLUGS
    authors = [provider["author"] for provider in RECORDED.providers]
    assert upstream.calls == {"get_all_models": 1 + len(authors), "get_providers": 1}
    listed = [args for tool, args in upstream.tool_arguments if tool == "get_all_models"]
    asked = {args.get("author") for args in listed}
    assert asked == {None, *authors}
    assert all(args.get("limit") == 100 for _, args in upstream.tool_arguments if args)
    assert events == ["upstream.fanout", "upstream.list"]


@pytest.mark.parametrize(
    ("behaviour", "list_limit", "named"),
    [
        ("truncated", 200, "71 author(s)"),  # every answer is exactly `limit` rows
        ("ok", 50, "qwen"),  # real data: Qwen has 98 models, more than a 50-row page
    ],
)
async def test_truncation_guard_fires(
    upstream: LoopbackUpstream, behaviour: str, list_limit: int, named: str
) -> None:
    upstream.behaviour = behaviour

    with pytest.raises(UpstreamRejected, match="raise list_limit") as caught:
        await client_for(upstream, list_limit=list_limit).fetch_listing(enrich=no_details)

    assert named in caught.value.detail
    assert upstream.calls["get_model"] == 0


@pytest.mark.parametrize(
    ("behaviour", "error", "detail", "attempts"),
    [
        ("is_error", UpstreamRejected, "tool reported an error: 'Error executing tool", 1),
        ("garbage", UpstreamRejected, "payload is not JSON: '<html>Bad gateway</html>'", 1),
        ("http_403", UpstreamRejected, "get_all_models(limit=5000): HTTP 403", 1),
        ("http_500", UpstreamUnavailable, "get_all_models(limit=5000): HTTP 500 after 3 att", 3),
        ("http_429", UpstreamUnavailable, "get_all_models(limit=5000): HTTP 429 after 3 att", 3),
    ],
)
async def test_list_failures_are_typed_and_counted(
    upstream: LoopbackUpstream,
    behaviour: str,
    error: type[Exception],
    detail: str,
    attempts: int,
) -> None:
    upstream.set_behaviour(behaviour, tool="get_all_models")

    with pytest.raises(error) as caught:
        await client_for(upstream, retries=2).fetch_listing()

    assert detail in str(caught.value)
    assert caught.value.__cause__ is not None
    assert upstream.calls == {"get_all_models": attempts}


async def test_retry_is_logged_and_then_succeeds(
    mcp_upstream: LoopbackUpstream, caplog: pytest.LogCaptureFixture
) -> None:
    mcp_upstream.set_behaviour("http_500", tool="get_all_models", times=2)

    with caplog.at_level(logging.INFO, logger="pricing_service.upstream"):
        fetch = await client_for(mcp_upstream, retries=2).fetch_listing(enrich=no_details)

    assert len(fetch.rows) == len(ALL_SLUGS)
    assert fetch.calls == 3
    messages = [record.getMessage() for record in caplog.records]
    retries = [message for message in messages if message.startswith("upstream.retry")]
    assert len(retries) == 2
    assert 'call="get_all_models(limit=5000)" attempt=2' in retries[0]
    assert 'reason="HTTP 500"' in retries[0]
    assert "attempt=3" in retries[1]
    assert any(message.startswith("upstream.fetched rows=533 ") for message in messages)


async def test_empty_list_is_returned_for_the_sanity_gate(upstream: LoopbackUpstream) -> None:
    """Emptiness is a plausibility question, answered by the sanity gate, not the transport."""
    upstream.behaviour = "empty"

    fetch = await client_for(upstream).fetch_listing()

    assert (fetch.rows, fetch.details, fetch.detail_errors, fetch.calls) == ([], {}, {}, 1)


@pytest.mark.parametrize(
    ("rows", "detail"),
    [
        ([{"model_name": "no slug"}], "row 0 is not an object with a string slug"),
        ([RECORDED.rows[0], {"slug": 42}], "is not an object with a string slug: .*42"),
        ([RECORDED.rows[0], "openai-gpt-4o"], "row 1 is not an object"),
    ],
)
async def test_list_schema_is_checked(
    mcp_upstream: LoopbackUpstream, rows: list[Any], detail: str
) -> None:
    mcp_upstream.set_data(rows=rows)

    with pytest.raises(UpstreamRejected, match=detail):
        await client_for(mcp_upstream).fetch_listing()

    assert mcp_upstream.calls == {"get_all_models": 1}


async def test_hang_is_bounded_by_the_call_timeout(upstream: LoopbackUpstream) -> None:
    upstream.behaviour = "hang"

    # The message names the bound; fail_after only stops a real hang (no wall-clock assertion).
    with (
        anyio.fail_after(HANG_GUARD),
        pytest.raises(UpstreamUnavailable, match=r"no answer within 0\.3s after 2 attempts"),
    ):
        await client_for(upstream, call_timeout=0.3, retries=1).fetch_listing()

    assert upstream.calls == {"get_all_models": 2}


async def test_hang_is_bounded_by_the_run_timeout(upstream: LoopbackUpstream) -> None:
    upstream.set_behaviour("hang", tool="get_model")

    with (
        anyio.fail_after(HANG_GUARD),
        pytest.raises(UpstreamUnavailable, match=r"did not finish within 0\.5s"),
    ):
        await client_for(upstream, call_timeout=10, run_timeout=0.5).fetch_listing()


async def test_unreachable_server_is_unavailable_after_retries() -> None:
    with LoopbackUpstream() as gone:
        url = gone.url
    client = PricePerTokenClient(url, backoff=0.01, retries=2, call_timeout=2)

    with (
        anyio.fail_after(HANG_GUARD),
        pytest.raises(UpstreamUnavailable, match="initialize: connection error") as caught,
    ):
        await client.fetch_listing()

    assert "after 3 attempts" in caught.value.detail
    assert isinstance(caught.value.__cause__, httpx2.ConnectError)


async def test_server_dying_mid_run_is_unavailable() -> None:
    upstream = LoopbackUpstream().start()
    try:

        def stop_after_list(event: str, fields: dict[str, Any]) -> None:
            if event == "upstream.list":
                upstream.stop()

        client = client_for(upstream, retries=1, concurrency=4)
        with (
            anyio.fail_after(HANG_GUARD),
            pytest.raises(UpstreamUnavailable, match="get_model: upstream unreachable") as caught,
        ):
            await client.fetch_listing(progress=stop_after_list)
    finally:
        upstream.stop()

    last = caught.value.__cause__
    assert isinstance(last, UpstreamUnavailable)
    assert "connection error: ConnectError" in last.detail
    assert isinstance(last.__cause__, httpx2.ConnectError)


async def test_get_model_failures_land_in_detail_errors_and_no_record_is_no_detail(
    upstream: LoopbackUpstream,
) -> None:
    missing = {OPENAI[0], OPENAI[1]}
    failing = OPENAI[2]
    upstream.set_data(
        details={slug: d for slug, d in RECORDED.details.items() if slug not in missing}
    )
    upstream.set_behaviour("http_500", tool="get_model", slugs={failing})

    fetch = await client_for(upstream, retries=2).fetch_listing(enrich=openai_only)

    assert len(fetch.rows) == len(ALL_SLUGS)
    # "No model found" is the upstream saying it has no record: no detail, not a failure.
    assert sorted(fetch.no_detail) == sorted(missing)
    assert set(fetch.detail_errors) == {failing}
    assert set(fetch.details) == set(OPENAI) - {*missing, failing}
    assert "HTTP 500 after 3 attempts" in fetch.detail_errors[failing]
    assert f"get_model(slug={failing})" in fetch.detail_errors[failing]
    assert upstream.calls["get_model"] == len(OPENAI) + 2  # the failing slug was tried 3 times


async def test_a_forgotten_session_is_reopened_and_the_fetch_resumes() -> None:
    # HTTP 404 on a session id means "start a new session" (MCP, streamable HTTP): the client
    # opens one, initializes it, and asks only for what the lost session did not answer.
    with LoopbackUpstream(stateful=True) as upstream:
        upstream.set_behaviour("session_lost", tool="get_model", slugs={OPENAI[5]}, times=1)

        fetch = await client_for(upstream).fetch_listing(enrich=openai_only)

        assert fetch.sessions == 2
        assert fetch.detail_errors == {}
        assert fetch.details == {slug: RECORDED.details[slug] for slug in OPENAI}
        assert upstream.requests["initialize"] == 2
        assert upstream.calls["get_all_models"] == 1  # the list was not fetched again
        assert len(upstream.forgotten) == 1


async def test_a_server_that_forgets_every_session_fails_the_fetch() -> None:
    with LoopbackUpstream(stateful=True) as upstream:
        upstream.set_behaviour("session_lost", tool="get_model")

        with pytest.raises(UpstreamUnavailable, match="forgot 4 sessions in a row"):
            await client_for(upstream).fetch_listing(enrich=openai_only)

        assert upstream.requests["initialize"] == 4


async def test_a_session_that_cannot_be_reopened_fails_the_fetch() -> None:
    with LoopbackUpstream(stateful=True) as upstream:
        upstream.set_behaviour("session_lost", tool="get_model", times=1)
        real = upstream._take_fault

        def refuse_new_sessions(method: str, *args: Any, **kwargs: Any) -> Any:
            if method == "initialize" and upstream.forgotten:
                return Behaviour.HTTP_403
            return real(method, *args, **kwargs)

        upstream._take_fault = refuse_new_sessions  # type: ignore[method-assign]

        with pytest.raises(UpstreamRejected, match="initialize: HTTP 403"):
            await client_for(upstream).fetch_listing(enrich=openai_only)


@pytest.mark.parametrize(
    ("behaviour", "reason"),
    [
        ("is_error", "tool reported an error"),
        ("garbage", "payload is not JSON: 'not json {'"),
        ("empty", "answer is for slug None"),
    ],
)
async def test_permanent_get_model_failures_are_not_retried(
    mcp_upstream: LoopbackUpstream, behaviour: str, reason: str
) -> None:
    bad = OPENAI[3]
    mcp_upstream.set_behaviour(behaviour, tool="get_model", slugs={bad})

    fetch = await client_for(mcp_upstream).fetch_listing(enrich=openai_only)

    assert list(fetch.detail_errors) == [bad]
    assert reason in fetch.detail_errors[bad]
    assert mcp_upstream.calls["get_model"] == len(OPENAI)


async def test_transient_get_model_failure_is_retried(upstream: LoopbackUpstream) -> None:
    slug = OPENAI[0]
    upstream.set_behaviour("http_500", tool="get_model", slugs={slug}, times=1)

    fetch = await client_for(upstream).fetch_listing(enrich=openai_only)

    assert fetch.detail_errors == {}
    assert fetch.details[slug] == RECORDED.details[slug]
    assert upstream.calls["get_model"] == len(OPENAI) + 1


async def test_get_model_unreachable_for_all_is_unavailable(upstream: LoopbackUpstream) -> None:
    upstream.set_behaviour("http_500", tool="get_model")

    with pytest.raises(UpstreamUnavailable, match="get_model: upstream unreachable") as caught:
        await client_for(upstream, retries=1, concurrency=4).fetch_listing()

    assert isinstance(caught.value.__cause__, UpstreamUnavailable)
    # The breaker stops after 2 x concurrency failed slugs instead of trying all 533.
    assert upstream.calls["get_model"] < 2 * 20 + 2 * 4


async def test_changed_listing_is_served(mcp_upstream: LoopbackUpstream) -> None:
    rows = [dict(row) for row in RECORDED.rows]
    details = {slug: dict(d) for slug, d in RECORDED.details.items()}
    target = rows[ALL_SLUGS.index("xai-grok-3")]
    target["input_per_1m"] = 4
    details["xai-grok-3"]["pricing"] = {**details["xai-grok-3"]["pricing"], "input_per_1m": 6}
    mcp_upstream.set_data(rows=rows, details=details)

    fetch = await client_for(mcp_upstream).fetch_listing(enrich=lambda _: ["xai-grok-3"])

    assert fetch.rows[ALL_SLUGS.index("xai-grok-3")]["input_per_1m"] == 4
    assert fetch.details["xai-grok-3"]["pricing"]["input_per_1m"] == 6
    assert RECORDED.details["xai-grok-3"]["pricing"]["input_per_1m"] == 5


async def test_concurrency_is_bounded(mcp_upstream: LoopbackUpstream) -> None:
    mcp_upstream.latency = 0.02  # keep calls in flight long enough to overlap

    fetch = await client_for(mcp_upstream, concurrency=3).fetch_listing(enrich=openai_only)

    assert len(fetch.details) == len(OPENAI)
    assert mcp_upstream.peak_in_flight == 3
