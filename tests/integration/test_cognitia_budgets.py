"""The kit's budget prices (integrations/cognitia/budget_prices.py) against a real service
process on a loopback port: the synchronous cost Cognitia's ``calculate_message_cost`` uses
equals the service's own ``/estimate``, local and free models cost 0 by their status, and an
unknown price is refused or charged at the operator's ceiling, never free.
"""

from __future__ import annotations

import json
import os
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from integrations.cognitia.budget_prices import (
    BudgetPrices,
    PolicyError,
    UnknownPolicy,
    UnknownPrice,
)
from pricing_service.migrate import upgrade
from tests.support.process import ServiceProcess, free_port
from tests.support.recording import CATALOG_DIR
from tests.support.snapshots import store_snapshot_at

if TYPE_CHECKING:
    from collections.abc import Iterator

# Priced (several spellings), local in the price map, local only by the service's prefix rule
# (no key in /prices), declared free, and unknown.
IDS = [
    "gpt-4o",
    "anthropic/claude-sonnet-4",
    "claude-sonnet-4-20250514",
    "x-ai/grok-3",
    "google/gemini-2.0-flash",
    "cognitia_llm_zerogpu.phi3",
    "cognitia_llm_zerogpu.smollm2",
    "omni-moderation-latest",
    "gpt-4o-2024-05-13",
    "gemma-3-1b-it",
    "google/gemini-2.5-pro",  # long-context tier past 200K input tokens
    "gemini-1.5-flash",  # a tier whose price is unknown (the base differs from the price served)
]
TOKENS = [(0, 0), (1, 1), (1234, 567), (1_000_000, 250_000), (7, 99_999_999)]


class Counting(httpx.HTTPTransport):
    def __init__(self) -> None:
        super().__init__()
        self.requests: list[httpx.Request] = []
        self.statuses: list[int] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        response = super().handle_request(request)
        self.statuses.append(response.status_code)
        return response


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceProcess]:
    """``pricing-service serve`` on SQLite holding the recorded prices (no upstream reachable)."""
    tmp = tmp_path_factory.mktemp("budgets")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PRICING_", "DATABASE_"))}
    env.pop("REDIS_URL", None)
    database_url = f"sqlite:///{tmp / 'pricing.db'}"
    env.update(
        DATABASE_URL=database_url,
        PRICING_CATALOG_DIR=str(CATALOG_DIR),
        PORT=str(port),
        PRICEPERTOKEN_MCP_URL=f"http://127.0.0.1:{free_port()}/mcp",
        PRICING_REFRESH_ON_STARTUP="false",
    )
    upgrade(env["DATABASE_URL"])  # in-process: test_cli.py runs the migrate command
    store_snapshot_at(database_url)
    with ServiceProcess(env, port, cwd=tmp) as server:
        yield server


@pytest.fixture
def transport() -> Counting:
    return Counting()


@pytest.fixture
def prices(service: ServiceProcess, transport: Counting) -> Iterator[BudgetPrices]:
    source = BudgetPrices(service.url, transport=transport, background=False, timeout=5)
    yield source
    source.close()


def test_cost_equals_the_services_estimate(service: ServiceProcess, prices: BudgetPrices) -> None:
    with httpx.Client(base_url=service.url, timeout=5) as http:
        for model_id in IDS:
            for input_tokens, output_tokens in TOKENS:
                answer = http.get(
                    "/api/v1/pricing/estimate",
                    params={
                        "model_id": model_id,
                        "input_tokens": input_tokens,
                        "output_tokens": output_tokens,
                    },
                )
                assert answer.status_code == 200, answer.text
                estimate = json.loads(answer.content, parse_float=Decimal)
                price = prices.price(model_id)
                assert price.price_status == estimate["price_status"], model_id
                if estimate["total_usd"] is None:
                    assert not price.known
                    with pytest.raises(UnknownPrice):
                        prices.cost(model_id, input_tokens, output_tokens)
                    continue
                cost = prices.cost(model_id, input_tokens, output_tokens)
                assert (cost.input_usd, cost.output_usd, cost.total_usd) == (
                    Decimal(estimate["input_usd"]),
                    Decimal(estimate["output_usd"]),
                    Decimal(estimate["total_usd"]),
                ), (model_id, input_tokens, output_tokens)
                assert cost.as_floats()[2] == float(Decimal(estimate["total_usd"]))


def test_local_and_free_cost_zero_by_their_status(
    prices: BudgetPrices, transport: Counting
) -> None:
    # Not a key of /prices: the service resolves it by its local prefix, asked once with ?ids=.
    local = prices.price("cognitia_llm_zerogpu.smollm2")
    assert (local.price_status, local.known) == ("local", True)
    asked = [r for r in transport.requests if r.url.path.endswith("/models")]
    assert [r.url.params["ids"] for r in asked] == ["cognitia_llm_zerogpu.smollm2"]
    assert prices.cost("cognitia_llm_zerogpu.smollm2", 5000, 5000).total_usd == 0
    assert len([r for r in transport.requests if r.url.path.endswith("/models")]) == 1  # kept
    free = prices.cost("omni-moderation-latest", 5000, 5000)
    assert (free.charged_as, free.total_usd) == ("free", Decimal(0))
    assert prices.unknown_counts == {}


def test_unknown_is_refused_and_counted(prices: BudgetPrices) -> None:
    for model_id in ("gemma-3-1b-it", "no-such-model-anywhere"):
        with pytest.raises(UnknownPrice, match=model_id):
            prices.cost(model_id, 100, 100)
        with pytest.raises(UnknownPrice):
            prices.check_billable(model_id)
    assert prices.unknown_counts == {"gemma-3-1b-it": 2, "no-such-model-anywhere": 2}
    assert prices.check_billable("gpt-4o").known


def test_unknown_is_charged_at_the_ceiling(service: ServiceProcess, transport: Counting) -> None:
    policy = UnknownPolicy("ceiling", Decimal(75), Decimal(150))
    source = BudgetPrices(service.url, policy=policy, transport=transport, background=False)
    try:
        cost = source.cost("gemma-3-1b-it", 1000, 2000)
        assert (cost.charged_as, cost.price_status) == ("ceiling", "unknown")
        assert cost.total_usd == Decimal("0.375")  # 1000 x 75 + 2000 x 150, per million
        assert source.check_billable("gemma-3-1b-it").price_status == "unknown"  # allowed
        assert source.unknown_counts == {"gemma-3-1b-it": 1}
        known = source.cost("gpt-4o", 1000, 2000)  # a known price is never the ceiling
        assert (known.charged_as, known.total_usd) == ("priced", Decimal("0.0225"))
    finally:
        source.close()


def test_map_is_revalidated_with_its_etag(service: ServiceProcess, transport: Counting) -> None:
    now = [0.0]
    source = BudgetPrices(
        service.url, transport=transport, background=False, max_age=60, clock=lambda: now[0]
    )
    try:
        source.price("gpt-4o")
        source.price("x-ai/grok-3")
        assert transport.statuses == [200]  # one fetch, then the map answers
        now[0] += 61
        assert source.price("gpt-4o").known
        assert transport.statuses == [200, 304]
        assert transport.requests[-1].headers["if-none-match"].startswith('"')
    finally:
        source.close()


def test_background_thread_keeps_the_map(service: ServiceProcess, transport: Counting) -> None:
    source = BudgetPrices(service.url, transport=transport, background=True, max_age=3600)
    try:
        assert source.price("gpt-4o").known
        assert source.cost("gpt-4o", 1000, 0).total_usd == Decimal("0.0025")
    finally:
        source.close()
    assert 1 <= len([r for r in transport.requests if r.url.path.endswith("/prices")]) <= 2


def test_service_down_with_nothing_fetched_is_unknown_not_free(transport: Counting) -> None:
    now = [0.0]
    source = BudgetPrices(
        f"http://127.0.0.1:{free_port()}",
        transport=transport,
        background=False,
        timeout=1,
        clock=lambda: now[0],
    )
    try:
        assert source.price("gpt-4o").price_status == "unknown"
        assert [r.url.path for r in transport.requests] == [
            "/api/v1/pricing/prices",
            "/api/v1/pricing/models",
        ]
        with pytest.raises(UnknownPrice):
            source.cost("gpt-4o", 10, 10)
        assert len(transport.requests) == 2  # backing off: no wait for a timeout per message
        now[0] += 11
        source.price("gpt-4o")
        assert len(transport.requests) == 4  # tried again after the back-off
    finally:
        source.close()


def test_policy_from_the_environment() -> None:
    assert UnknownPolicy.from_env({}).name == "refuse"
    ceiling = UnknownPolicy.from_env(
        {
            "PRICING_UNKNOWN_PRICE_POLICY": "ceiling",
            "PRICING_UNKNOWN_CEILING_INPUT_USD_PER_MILLION": "75",
            "PRICING_UNKNOWN_CEILING_OUTPUT_USD_PER_MILLION": "150.5",
        }
    )
    assert (ceiling.ceiling_input_usd_per_million, ceiling.ceiling_output_usd_per_million) == (
        Decimal(75),
        Decimal("150.5"),
    )
    with pytest.raises(PolicyError, match="takes refuse or ceiling"):
        UnknownPolicy.from_env({"PRICING_UNKNOWN_PRICE_POLICY": "free"})
    with pytest.raises(PolicyError, match="needs PRICING_UNKNOWN_CEILING_INPUT"):
        UnknownPolicy.from_env({"PRICING_UNKNOWN_PRICE_POLICY": "ceiling"})
    with pytest.raises(PolicyError, match="not a number"):
        UnknownPolicy.from_env({"PRICING_UNKNOWN_CEILING_INPUT_USD_PER_MILLION": "lots"})
    with pytest.raises(PolicyError, match="positive"):
        UnknownPolicy("ceiling", Decimal(0), Decimal(1))


# Usage objects as the providers return them (the figures are worked out in
# tests/unit/test_usage.py): the kit bills each as the service's POST /estimate does.
USAGES = [
    (
        "gpt-4o",
        {
            "prompt_tokens": 2006,
            "completion_tokens": 300,
            "prompt_tokens_details": {"cached_tokens": 1920, "audio_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": 0},
        },
    ),
    (
        "o4-mini",
        {
            "prompt_tokens": 1200,
            "completion_tokens": 1850,
            "completion_tokens_details": {"reasoning_tokens": 1600},
        },
    ),
    (
        "gpt-5",
        {
            "input_tokens": 5000,
            "input_tokens_details": {"cached_tokens": 4096},
            "output_tokens": 2300,
            "output_tokens_details": {"reasoning_tokens": 1792},
        },
    ),
    (
        "claude-sonnet-4-20250514",
        {
            "input_tokens": 50,
            "cache_creation_input_tokens": 10000,
            "cache_read_input_tokens": 20000,
            "cache_creation": {
                "ephemeral_5m_input_tokens": 4000,
                "ephemeral_1h_input_tokens": 6000,
            },
            "output_tokens": 200,
        },
    ),
    (
        "claude-3-5-haiku-20241022",  # no cache prices: unknown with cached tokens
        {"input_tokens": 100, "cache_read_input_tokens": 5000, "output_tokens": 50},
    ),
    (
        "google/gemini-2.5-flash",
        {
            "promptTokenCount": 12000,
            "cachedContentTokenCount": 10000,
            "candidatesTokenCount": 400,
            "thoughtsTokenCount": 1200,
        },
    ),
    (
        "gemini-2.0-flash",  # audio: no price
        {
            "promptTokenCount": 1000,
            "candidatesTokenCount": 10,
            "promptTokensDetails": [{"modality": "AUDIO", "tokenCount": 400}],
        },
    ),
    ("cognitia_llm_zerogpu.phi3", {"prompt_tokens": 1000, "completion_tokens": 10}),
    ("gpt-4o-2024-05-13", {"prompt_tokens": 1000, "completion_tokens": 10}),
    # Web searches (tests/unit/test_call_prices.py): claude-sonnet-4 at 10 USD per 1,000;
    # claude-3-haiku has no known search price (unknown, never free); Sonar's request fee and
    # Perplexity's num_search_queries.
    (
        "claude-sonnet-4-20250514",
        {"input_tokens": 1500, "output_tokens": 400, "server_tool_use": {"web_search_requests": 3}},
    ),
    (
        "claude-3-haiku",
        {"input_tokens": 1000, "output_tokens": 100, "server_tool_use": {"web_search_requests": 2}},
    ),
    ("sonar", {"prompt_tokens": 1000, "completion_tokens": 500}),
    (
        "sonar-deep-research",
        {"prompt_tokens": 1000, "completion_tokens": 200, "num_search_queries": 4},
    ),
    # Long context (tests/unit/test_usage.py): gemini-2.5-pro past 200K is 0.655 USD.
    (
        "google/gemini-2.5-pro",
        {"promptTokenCount": 250000, "candidatesTokenCount": 1000, "thoughtsTokenCount": 1000},
    ),
    ("gemini-1.5-flash", {"promptTokenCount": 130000, "candidatesTokenCount": 10}),
]


def test_usage_cost_equals_the_services_usage_estimate(
    service: ServiceProcess, prices: BudgetPrices
) -> None:
    billed: list[tuple[str, Decimal, Decimal]] = []
    with httpx.Client(base_url=service.url, timeout=5) as http:
        for model_id, usage in USAGES:
            answer = http.post(
                "/api/v1/pricing/estimate", json={"model_id": model_id, "usage": usage}
            )
            assert answer.status_code == 200, answer.text
            estimate = json.loads(answer.content, parse_float=Decimal)
            if estimate["total_usd"] is None:
                with pytest.raises(UnknownPrice):
                    prices.usage_cost(model_id, usage)
                continue
            cost = prices.usage_cost(model_id, usage)
            assert cost.total_usd == Decimal(estimate["total_usd"]), model_id
            calls = sum((Decimal(c["usd"]) for c in estimate["calls"]), Decimal(0))
            output = sum(
                (Decimal(line["usd"]) for line in estimate["items"] if line["kind"] == "output"),
                Decimal(0),
            )
            assert cost.output_usd == output, model_id
            assert cost.input_usd == cost.total_usd - output, model_id
            billed.append((model_id, cost.total_usd, calls))
    # The figures worked out by hand: web searches 3 x 10 / 1000 = 0.03 (total 0.0405), Sonar's
    # request 0.012 (total 0.0135), 4 deep-research searches x 5 / 1000 = 0.02 (total 0.0236),
    # gemini-2.5-pro at its tier 0.655.
    for expected in (
        ("claude-sonnet-4-20250514", Decimal("0.0405"), Decimal("0.03")),
        ("sonar", Decimal("0.0135"), Decimal("0.012")),
        ("sonar-deep-research", Decimal("0.0236"), Decimal("0.02")),
        ("google/gemini-2.5-pro", Decimal("0.655"), Decimal(0)),
    ):
        assert expected in billed, billed


def test_usage_cost_refuses_what_the_service_refuses(prices: BudgetPrices) -> None:
    cases: list[Any] = [{"input_tokens": 1, "output_tokens": 1}, {"prompt_tokens": 1.5}, []]
    for usage in cases:
        with pytest.raises(ValueError, match="usage"):
            prices.usage_cost("gpt-4o", usage)
    # The same tokens named as Anthropic's: its input_tokens exclude the cache.
    named = prices.usage_cost(
        "claude-sonnet-4-20250514", {"input_tokens": 1000, "output_tokens": 0}, "anthropic"
    )
    assert named.total_usd == Decimal("0.003")  # 1000 x 3 USD per million
