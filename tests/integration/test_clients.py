"""What the real clients call: the price map, the Space picker, the estimate, and HTTP caching
done right (stable ETags, one per encoding, HEAD, q-values, unknown parameters), on both engines.
"""

from __future__ import annotations

import gzip
import json
from datetime import timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import pytest
import pytest_asyncio
from litestar.testing import AsyncTestClient

from pricing_service import selector_replies as replies_module
from pricing_service.app import create_app
from pricing_service.domain import utcnow
from tests.support.recorded_service import ADMIN, seed_snapshot, service_settings
from tests.support.shared_service import module_database

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from litestar import Litestar

    from pricing_service.config import Settings

PRICING = "/api/v1/pricing"
ORIGIN = "https://cognitia.example"
MAX_PRICES_GZIP = 40 * 1024


# One service per engine for the module (tests/support/shared_service.py): the tests read what
# it serves; the one that counts what it was asked builds its own (``own_client``).
pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def module_database_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> str:
    return module_database(request, tmp_path_factory)


def _settings(database_url: str) -> Settings:
    return service_settings(database_url, pricing_cors_origins=[ORIGIN])


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def client(module_database_url: str) -> AsyncIterator[AsyncTestClient[Litestar]]:
    seed_snapshot(module_database_url)
    async with AsyncTestClient(create_app(_settings(module_database_url))) as c:
        yield c


@pytest_asyncio.fixture(loop_scope="module")
async def own_client(
    client: AsyncTestClient[Litestar], module_database_url: str
) -> AsyncIterator[AsyncTestClient[Litestar]]:
    """A service of the test's own on the module's database (stored by ``client``): its counts
    start at zero."""
    async with AsyncTestClient(create_app(_settings(module_database_url))) as c:
        yield c


def body(response: Any) -> Any:
    return json.loads(response.content, parse_float=Decimal)


def gunzipped(response: Any) -> Any:
    """The body as sent, gunzipped by hand (the test client does not decode it)."""
    assert response.headers["content-encoding"] == "gzip"
    return json.loads(gzip.decompress(response.content), parse_float=Decimal)


async def raw_get(
    client: AsyncTestClient[Litestar],
    path: str,
    *,
    accept_encoding: str = "identity",
    if_none_match: str | None = None,
) -> Any:
    """A GET with exactly this Accept-Encoding; the body stays as sent (never decoded)."""
    headers = {"accept-encoding": accept_encoding}
    if if_none_match is not None:
        headers["if-none-match"] = if_none_match
    request = client.build_request("GET", path, headers=headers)
    response = await client.send(request, stream=True)
    raw = b"".join([chunk async for chunk in response.aiter_raw()])
    await response.aclose()
    response._content = raw  # what was on the wire, not httpx's decoded body
    return response


# -- the price map ----------------------------------------------------------------------------


async def test_price_map_prices_every_spelling(client: AsyncTestClient[Litestar]) -> None:
    response = await raw_get(client, f"{PRICING}/prices")
    assert response.status_code == 200
    assert "content-encoding" not in response.headers
    data = body(response)
    assert set(data) == {"prices", "currency", "snapshot"}
    assert set(data["snapshot"]) == {"id", "fetched_at", "stale", "source"}
    prices = data["prices"]
    assert list(prices) == sorted(prices)
    expected = {
        # bare, provider/model in the upstream's and OpenRouter's spelling
        "grok-3": (Decimal(5), Decimal(25)),
        "xai/grok-3": (Decimal(5), Decimal(25)),
        "x-ai/grok-3": (Decimal(5), Decimal(25)),
        "mistralai/mistral-large": (Decimal(2), Decimal(6)),
        "anthropic/claude-3-opus": (Decimal(15), Decimal(75)),
        # catalog aliases, bare and provider-prefixed
        "claude-sonnet-4-20250514": (Decimal(3), Decimal(15)),
        "claude-3-5-sonnet-20241022": (Decimal(3), Decimal(15)),
        "anthropic/claude-sonnet-4-20250514": (Decimal(3), Decimal(15)),
        "gemini-2.0-flash": (Decimal("0.1"), Decimal("0.4")),
        "google/gemini-2.0-flash": (Decimal("0.1"), Decimal("0.4")),
        # an override
        "gpt-image-1": (Decimal(5), Decimal(40)),
    }
    for spelling, (price_in, price_out) in expected.items():
        entry = prices[spelling]
        assert (entry["input_usd_per_million"], entry["output_usd_per_million"]) == (
            price_in,
            price_out,
        ), spelling
        assert entry["price_status"] == "priced"
        assert entry["input_cop_per_10k"] == price_in * 40
        # "(vía <host>)" follows when the price is a host's, not the model author's. An image
        # model is billed by its tokens, and no source states a per-image price: it says so.
        if spelling == "gpt-image-1":
            assert entry["label"].startswith("Sin precio por imagen en las fuentes"), entry
        else:
            assert "por mensaje" in entry["label"]
    for local_id in ("phi3:latest", "cognitia_llm_zerogpu.phi3", "cognitia_llm_zerogpu.gemma2-9b"):
        assert prices[local_id]["price_status"] == "local"
        assert prices[local_id]["label"] == "Local (sin costo API)"
    # Unknown is listed as unknown, never 0; a dated id without an alias is absent.
    unknown = [v for v in prices.values() if v["price_status"] == "unknown"]
    assert unknown
    assert all(
        v["input_usd_per_million"] is None and v["input_cop_per_10k"] is None for v in unknown
    )
    assert "gpt-4o-2024-05-13" not in prices
    assert "gemini-1.5-pro" not in prices


async def test_price_map_is_small_and_cached(client: AsyncTestClient[Litestar]) -> None:
    identity = await raw_get(client, f"{PRICING}/prices")
    packed = await raw_get(client, f"{PRICING}/prices", accept_encoding="gzip")
    assert len(packed.content) <= MAX_PRICES_GZIP, len(packed.content)
    assert gunzipped(packed) == body(identity)
    assert int(packed.headers["content-length"]) == len(packed.content)
    # One ETag per representation.
    assert identity.headers["etag"] != packed.headers["etag"]
    assert packed.headers["etag"] == identity.headers["etag"][:-1] + '-gz"'
    for response in (identity, packed):
        again = await raw_get(
            client,
            f"{PRICING}/prices",
            accept_encoding=response.headers.get("content-encoding", "identity"),
            if_none_match=response.headers["etag"],
        )
        assert again.status_code == 304
        assert again.content == b""
        assert again.headers["etag"] == response.headers["etag"]
    # The other representation's tag does not validate this one.
    crossed = await raw_get(client, f"{PRICING}/prices", if_none_match=packed.headers["etag"])
    assert crossed.status_code == 200


# -- HTTP done right --------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/prices", "/models", "/models?view=all", "/local"])
async def test_etag_is_stable_until_the_data_changes(
    client: AsyncTestClient[Litestar], monkeypatch: pytest.MonkeyPatch, path: str
) -> None:
    first = await raw_get(client, PRICING + path)
    real_now = utcnow()
    monkeypatch.setattr(replies_module, "utcnow", lambda: real_now + timedelta(minutes=2))
    later = await raw_get(client, PRICING + path)
    assert later.status_code == 200
    assert later.headers["etag"] == first.headers["etag"]
    assert later.content == first.content
    if path != "/local":  # the Space picker depends on the catalog alone: no snapshot, no age
        age = int(later.headers["age"])
        assert age >= int(first.headers["age"]) + 120
        # Fresh for one minute from now, whatever the data's age.
        assert f"max-age={age + 60}," in later.headers["cache-control"]
        # Past the TTL the snapshot turns stale: that is data, so the bytes and tag change once.
        monkeypatch.setattr(replies_module, "utcnow", lambda: real_now + timedelta(days=2))
        stale = await raw_get(client, PRICING + path)
        assert stale.headers["etag"] != first.headers["etag"]
        assert body(stale)["snapshot"]["stale"] is True
        assert "age_seconds" not in body(stale)["snapshot"]


@pytest.mark.parametrize(
    ("accept_encoding", "gzipped"),
    [
        ("gzip", True),
        ("gzip;q=0", False),
        ("gzip; q=0.000", False),
        ("br, gzip;q=0.5", True),
        ("*", True),
        ("*, gzip;q=0", False),
        ("identity", False),
        ("deflate, br", False),
        ("gzip;q=bogus", False),
    ],
)
async def test_accept_encoding_q_values(
    client: AsyncTestClient[Litestar], accept_encoding: str, gzipped: bool
) -> None:
    for path in ("/models", "/prices", "/models?ids=gpt-4o,grok-3", "/local"):
        response = await raw_get(client, PRICING + path, accept_encoding=accept_encoding)
        assert response.status_code == 200
        assert (response.headers.get("content-encoding") == "gzip") is gzipped, path
        assert response.headers["vary"].startswith("Accept-Encoding")


async def test_ids_lookup_is_gzipped_with_its_own_etag(client: AsyncTestClient[Litestar]) -> None:
    path = f"{PRICING}/models?ids=claude-sonnet-4-20250514,gpt-4o"
    plain = await raw_get(client, path)
    packed = await raw_get(client, path, accept_encoding="gzip")
    assert gunzipped(packed) == body(plain)
    assert packed.headers["etag"] != plain.headers["etag"]
    items = body(plain)["items"]
    assert items[0]["model_id"] == "claude-sonnet-4-20250514"
    assert items[0]["input_usd_per_million"] == 3
    not_modified = await raw_get(
        client, path, accept_encoding="gzip", if_none_match=packed.headers["etag"]
    )
    assert not_modified.status_code == 304


@pytest.mark.parametrize(
    "path",
    [
        "/prices",
        "/models",
        "/models?view=all&local=true",
        "/local",
        "/estimate?model_id=gpt-4o&input_tokens=1&output_tokens=1",
        "/changes",
    ],
)
async def test_head_answers_like_get_without_a_body(
    client: AsyncTestClient[Litestar], path: str
) -> None:
    got = await raw_get(client, PRICING + path)
    head = await client.head(PRICING + path, headers={"accept-encoding": "identity"})
    assert head.status_code == 200
    assert head.content == b""
    assert head.headers["content-length"] == got.headers["content-length"]
    assert head.headers.get("etag") == got.headers.get("etag")


async def test_head_on_health_and_not_on_post_routes(client: AsyncTestClient[Litestar]) -> None:
    assert (await client.head("/health")).status_code == 200
    assert (await client.head(f"{PRICING}/refresh")).status_code == 405


@pytest.mark.parametrize(
    ("path", "named"),
    [
        ("/models?view=all&categroy=coding", "categroy"),
        ("/models?ids=gpt-4o&foo=1&bar=2", "bar, foo"),
        ("/prices?view=all", "view"),
        ("/local?model=phi3", "model"),
        ("/estimate?model_id=gpt-4o&input_tokens=1&output_tokens=1&tokens=3", "tokens"),
        ("/changes?limt=5", "limt"),
    ],
)
async def test_unknown_query_parameters_are_named(
    client: AsyncTestClient[Litestar], path: str, named: str
) -> None:
    response = await client.get(PRICING + path)
    assert response.status_code == 400
    assert f": {named} (this route takes" in response.json()["detail"]


@pytest.mark.parametrize("path", ["/models", "/prices", "/local", "/estimate", "/changes"])
async def test_cors_exposes_etag_and_age(client: AsyncTestClient[Litestar], path: str) -> None:
    query = "?model_id=gpt-4o&input_tokens=1&output_tokens=1" if path == "/estimate" else ""
    response = await client.get(PRICING + path + query, headers={"origin": ORIGIN})
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == ORIGIN
    assert response.headers["access-control-expose-headers"] == "ETag, Age"
    preflight = await client.options(
        PRICING + path,
        headers={"origin": ORIGIN, "access-control-request-method": "HEAD"},
    )
    assert preflight.status_code == 204


async def test_refresh_and_debug_stay_without_cors(client: AsyncTestClient[Litestar]) -> None:
    response = await client.get(f"{PRICING}/debug/sample", headers={"origin": ORIGIN})
    assert "access-control-allow-origin" not in response.headers


# -- view=all: aliases and provenance ---------------------------------------------------------


async def test_all_view_items_carry_aliases_and_provenance(
    client: AsyncTestClient[Litestar],
) -> None:
    data = body(await raw_get(client, f"{PRICING}/models?view=all"))
    by_id = {i["model_id"]: i for i in data["items"]}
    opus = next(i for i in data["items"] if "claude-3-opus" in i["aliases"])
    assert "anthropic/claude-3-opus" in opus["aliases"]
    assert "claude-3-opus-20240229" in opus["aliases"]
    grok = by_id.get("grok-3") or by_id["x-ai/grok-3"]
    assert {"grok-3", "xai/grok-3", "x-ai/grok-3"} <= set(grok["aliases"])
    seen: dict[str, str] = {}
    for item in data["items"]:
        assert item["model_id"] in item["aliases"]
        for spelling in item["aliases"]:
            assert spelling not in seen, (spelling, seen.get(spelling), item["model_id"])
            seen[spelling] = item["model_id"]
    image = by_id["gpt-image-1"]
    assert image["updated_at"] == "2025-04-23T00:00:00Z"  # the override's own date
    assert image["source_url"] == "https://platform.openai.com/docs/pricing"
    assert "imagen" in image["price_note"]
    assert "búsqueda" in by_id["gpt-4o-search-preview"]["price_note"]
    assert by_id["omni-moderation-latest"]["price_note"] is None
    assert by_id["gpt-4o"]["source_url"] is None
    assert by_id["gpt-4o"]["updated_at"] == data["snapshot"]["fetched_at"]
    local = by_id["cognitia_llm_zerogpu.qwen2.5-7b"]
    assert local["context_window"] == 32768
    assert local["capabilities"] == ["tool_calls"]


# -- the Ollama Space picker ------------------------------------------------------------------


async def test_local_space_reproduces_the_documents_figures(
    client: AsyncTestClient[Litestar],
) -> None:
    data = body(await raw_get(client, f"{PRICING}/local"))
    assert set(data) == {"models", "tiers", "scenarios", "currency"}
    assert len(data["models"]) == 10
    phi3 = next(m for m in data["models"] if m["ollama_tag"] == "phi3")
    assert phi3["ids"] == ["cognitia_llm_zerogpu.phi3", "phi3:latest"]
    assert phi3["parameters_billions"] == Decimal("3.8")
    assert phi3["context_window"] == 4096
    # The document: phi3 "CPU o T4", llama3.1:8b "T4", llama3.1:70b "A100".
    assert {"cpu-upgrade", "t4-small"} <= set(phi3["fits"])
    assert "cpu-basic" not in phi3["fits"]
    by_tag = {m["ollama_tag"]: m for m in data["models"]}
    assert len(by_tag) == len(data["models"])  # each model once
    suggested = {t: (m["suggested_tier"], m["document_tier"]) for t, m in by_tag.items()}
    assert suggested == {
        "phi3": ("cpu-upgrade", "CPU o T4"),
        "llama3.2:3b": ("cpu-upgrade", "CPU o T4"),
        "llama3.1:8b": ("t4-small", "T4"),
        "mistral:7b": ("t4-small", "T4"),
        "codellama:13b": ("t4-small", "T4"),
        "llama3.1:70b": ("a100-large", "A100"),
        # Not in the document's table: the same rule, the tier of its memory.
        "qwen2.5:7b": ("t4-small", None),
        "gemma2:9b": ("t4-small", None),
        "codellama:7b": ("t4-small", None),
        "smollm2:1.7b": ("cpu-upgrade", None),
    }
    assert "cpu-upgrade" not in by_tag["llama3.1:8b"]["fits"]
    assert "t4-small" in by_tag["llama3.1:8b"]["fits"]
    assert set(by_tag["llama3.1:70b"]["fits"]) == {"zerogpu", "a100-large"}
    tiers = {t["id"]: t for t in data["tiers"]}
    assert tiers["t4-small"]["usd_per_hour"] == Decimal("0.6")
    assert tiers["t4-small"]["cop_per_hour"] == 2400
    assert tiers["t4-small"]["ram_gb"] == 16
    assert "$9/mes" in tiers["zerogpu"]["notes"]
    scenarios = {s["id"]: s for s in data["scenarios"]}
    moderate, low, sleep = scenarios["moderate"], scenarios["low"], scenarios["sleep"]
    assert moderate["space_usd_per_month"] == {"min": 144, "max": 144}
    assert moderate["total_usd_per_month"] == {"min": 151, "max": 151}
    assert moderate["total_cop_per_month"] == {"min": 604000, "max": 604000}
    assert [f["usd_per_month"] for f in moderate["fixed"]] == [5, 2]
    assert (moderate["hours_per_day"], moderate["days"], moderate["tier"]) == (8, 30, "t4-small")
    assert moderate["space_formula"] == "$0.6 × 8 h × 30 días = $144"
    assert low["space_usd_per_month"] == {"min": 36, "max": 36}
    assert low["total_usd_per_month"] == {"min": 43, "max": 43}
    assert sleep["hours_per_day"] is None
    assert sleep["total_usd_per_month"] == {"min": 15, "max": 25}
    assert sleep["total_cop_per_month_display"] == "60.000–100.000 COP"
    assert sleep["space_formula"] == "$10–20 (estimación, bajo demanda)"


# -- the estimate -----------------------------------------------------------------------------


async def test_estimate_is_exact(client: AsyncTestClient[Litestar]) -> None:
    response = await client.get(
        f"{PRICING}/estimate",
        params={"model_id": "claude-sonnet-4-20250514", "input_tokens": 1234, "output_tokens": 567},
    )
    assert response.status_code == 200
    data = body(response)
    assert data["price_status"] == "priced"
    assert (data["input_usd_per_million"], data["output_usd_per_million"]) == (3, 15)
    assert data["input_usd"] == Decimal("0.003702")
    assert data["output_usd"] == Decimal("0.008505")
    assert data["total_usd"] == Decimal("0.012207")
    assert data["total_cop"] == Decimal("48.828")
    assert data["total_cop_display"] == "48,83 COP"
    tiny = body(
        await client.get(
            f"{PRICING}/estimate",
            params={"model_id": "gpt-5-nano", "input_tokens": 1, "output_tokens": 0},
        )
    )
    # 0.05 USD per million x 1 token = 0.00000005 USD = 0.0002 COP: exact, never 0.
    assert tiny["total_usd"] == Decimal("0.00000005")
    assert tiny["total_cop"] == Decimal("0.0002")
    assert tiny["total_cop_display"] == "< 0,01 COP"


async def test_estimate_of_unknown_local_and_noted_models(
    client: AsyncTestClient[Litestar],
) -> None:
    def ask(model_id: str) -> Any:
        return client.get(
            f"{PRICING}/estimate",
            params={"model_id": model_id, "input_tokens": 1000, "output_tokens": 1000},
        )

    unknown = body(await ask("gpt-4o-2024-05-13"))
    assert unknown["price_status"] == "unknown"
    for key in (
        "input_usd",
        "total_usd",
        "total_cop",
        "total_cop_display",
        "input_usd_per_million",
    ):
        assert unknown[key] is None, key
    local = body(await ask("phi3:latest"))
    assert (local["price_status"], local["total_usd"], local["total_cop"]) == ("local", 0, 0)
    search = body(await ask("gpt-4o-search-preview"))
    assert search["price_status"] == "priced"
    assert "búsqueda" in search["price_note"]
    assert search["source_url"] == "https://platform.openai.com/docs/pricing"


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("input_tokens=1&output_tokens=1", "model_id is required"),
        ("model_id=gpt-4o&output_tokens=1", "input_tokens is required"),
        ("model_id=gpt-4o&input_tokens=1", "output_tokens is required"),
        ("model_id=gpt-4o&input_tokens=-1&output_tokens=1", "input_tokens must be a whole"),
        ("model_id=gpt-4o&input_tokens=1.5&output_tokens=1", "input_tokens must be a whole"),
        ("model_id=gpt-4o&input_tokens=1&output_tokens=abc", "output_tokens must be a whole"),
        ("model_id=gpt-4o&input_tokens=1&output_tokens=100000001", "at most 100000000"),
    ],
)
async def test_estimate_refuses_bad_numbers(
    client: AsyncTestClient[Litestar], query: str, message: str
) -> None:
    response = await client.get(f"{PRICING}/estimate?{query}")
    assert response.status_code == 400
    assert message in response.json()["detail"]


# -- unknown ids asked ------------------------------------------------------------------------


async def test_unknown_ids_are_counted_for_the_operator(
    own_client: AsyncTestClient[Litestar],
) -> None:
    client = own_client
    await client.get(f"{PRICING}/models", params={"ids": "gpt-4o,no-such-model,gpt-4o-2024-05-13"})
    await client.get(f"{PRICING}/models", params={"ids": "no-such-model"})
    await client.get(
        f"{PRICING}/estimate",
        params={"model_id": "no-such-model", "input_tokens": 1, "output_tokens": 1},
    )
    sample = await client.get(
        f"{PRICING}/debug/sample", headers={"authorization": f"Bearer {ADMIN}"}
    )
    assert sample.status_code == 200
    assert sample.json()["unknown_ids_asked"] == {"no-such-model": 3, "gpt-4o-2024-05-13": 1}
    metrics = (await client.get("/metrics")).text
    assert 'pricing_unknown_ids_asked_total{endpoint="ids",model_id="no-such-model"} 2.0' in metrics
    assert (
        'pricing_unknown_ids_asked_total{endpoint="estimate",model_id="no-such-model"} 1.0'
        in metrics
    )
    assert 'model_id="gpt-4o"' not in metrics


# -- the OpenAPI document ---------------------------------------------------------------------


async def test_openapi_types_every_new_response(client: AsyncTestClient[Litestar]) -> None:
    schema = (await client.get("/schema/openapi.json")).json()
    expected = {
        "/api/v1/pricing/prices": "PriceMap",
        "/api/v1/pricing/local": "LocalSpace",
        "/api/v1/pricing/estimate": "Estimate",
        "/api/v1/pricing/models": "SelectorModels",
    }
    for path, name in expected.items():
        ok = schema["paths"][path]["get"]["responses"]["200"]["content"]["application/json"]
        assert ok["schema"]["$ref"].endswith("/" + name), path
    components = schema["components"]["schemas"]
    assert "age_seconds" not in components["SelectorSnapshot"]["properties"]
    assert {"aliases", "source_url", "price_note"} <= set(components["SelectorItem"]["properties"])
    assert "label" in components["PriceEntry"]["properties"]
    assert "scenarios" in components["LocalSpace"]["properties"]
