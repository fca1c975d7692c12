"""The HTTP contract of the reads: selector views, filters, caching and the change feed, on both
storage stacks (the refresh and the services of a test's own: test_api_refresh.py)."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import pytest
import pytest_asyncio
from litestar.testing import AsyncTestClient

from pricing_service.app import create_app
from tests.support.recorded_service import NO_UPSTREAM
from tests.support.settings import settings_for
from tests.support.shared_service import module_stack
from tests.support.snapshots import store_snapshot_at

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from litestar import Litestar

SPECIALS = {
    "gpt-audio-mini",
    "gpt-realtime-mini",
    "gpt-image-1",
    "omni-moderation-latest",
    "gpt-4o-search-preview",
}

# One service per stack for the module (tests/support/shared_service.py): every test here only
# reads what it serves (the selector has no rate limit). The tests that refresh or build a
# service of their own are in test_api_refresh.py, whose per-test PostgreSQL fixture empties the
# tables this service reads.
pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest_asyncio.fixture(
    scope="module", loop_scope="module", params=["sqlite+memory", "postgresql+redis"]
)
async def client(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[AsyncTestClient[Litestar]]:
    """What tests/integration/conftest.py's ``client`` serves (the recorded prices as a good run
    left them, stored before the service starts), once per stack; no upstream (none is called)."""
    database_url, cache = module_stack(request, tmp_path_factory)
    settings = settings_for(database_url, NO_UPSTREAM, **cache)
    store_snapshot_at(database_url)
    async with AsyncTestClient(create_app(settings)) as c:
        yield c


def body(response: Any) -> Any:
    return json.loads(response.content, parse_float=Decimal)


async def test_curated_view_contract(client: AsyncTestClient[Litestar]) -> None:
    response = await client.get("/api/v1/pricing/models")
    assert response.status_code == 200
    data = body(response)
    assert data["view"] == "curated"
    assert data["currency"]["code"] == "COP"
    assert data["currency"]["rate"] == 4000
    assert data["currency"]["source"] == "default"
    assert data["snapshot"]["source"] == "pricepertoken"
    assert data["snapshot"]["stale"] is False
    categories = data["categories"]
    assert "specials" not in {c["id"] for c in categories}
    for category in categories:
        assert 1 <= len(category["model_ids"]) <= 9, category["id"]
    items = {i["model_id"]: i for i in data["items"]}
    assert not SPECIALS & set(items)
    assert all(i["special"] is None for i in items.values())
    # Cognitia's client fields, with Cognitia's types.
    for item in items.values():
        assert isinstance(item["model_id"], str)
        assert item["provider"] is None or isinstance(item["provider"], str)
        for key in ("input_usd_per_million", "output_usd_per_million"):
            assert item[key] is None or isinstance(item[key], int | Decimal), (key, item)
        assert item["context_window"] is None or isinstance(item["context_window"], int)
        assert isinstance(item["updated_at"], str)
        assert isinstance(item["source"], str)
    mini = items["gpt-5-mini"]
    assert (mini["input_usd_per_million"], mini["output_usd_per_million"]) == (
        Decimal("0.25"),
        2,
    )
    assert mini["price_basis"] == "official"
    assert mini["input_cop_per_million"] == 1000
    assert mini["output_cop_per_10k"] == 80
    assert mini["typical_message_cop"] == 5
    for item in items.values():
        if item["price_status"] == "priced":
            rate = Decimal(4000)
            assert (
                Decimal(str(item["input_cop_per_million"]))
                == Decimal(str(item["input_usd_per_million"])) * rate
            )
            assert (
                Decimal(str(item["output_cop_per_million"]))
                == Decimal(str(item["output_usd_per_million"])) * rate
            )
    local = items["cognitia_llm_zerogpu.phi3"]
    assert local["local"] is True
    assert local["price_status"] == "local"
    assert local["input_usd_per_million"] == 0
    assert local["output_usd_per_million"] == 0
    assert local["price_label"] == "Local (sin costo API)"
    # Its suggested tier, the document's "CPU o T4": CPU Upgrade, the cheaper of the two.
    assert local["local_model"]["hardware_id"] == "cpu-upgrade"
    assert local["local_model"]["hardware_usd_per_hour"] == Decimal("0.03")


async def test_all_view_flags_specials_and_never_shows_unknown_as_zero(
    client: AsyncTestClient[Litestar],
) -> None:
    data = body(await client.get("/api/v1/pricing/models", params={"view": "all"}))
    items = {i["model_id"]: i for i in data["items"]}
    assert len(items) > 500
    for model_id in SPECIALS | {"sonar-pro-search"}:
        assert items[model_id]["special"] is not None, model_id
        assert "specials" in items[model_id]["categories"]
    assert items["hermes-4-70b"]["special"] is None
    unknown = [i for i in items.values() if i["price_status"] == "unknown"]
    assert unknown
    for item in unknown:
        assert item["input_usd_per_million"] is None
        assert item["output_usd_per_million"] is None
        assert item["input_cop_per_million"] is None
    for item in items.values():
        if item["price_status"] in ("priced",):
            assert item["input_usd_per_million"] is not None
            assert item["output_usd_per_million"] is not None


async def test_filters_and_lookup(client: AsyncTestClient[Litestar]) -> None:
    coding = body(await client.get("/api/v1/pricing/models", params={"category": "coding"}))
    assert [c["id"] for c in coding["categories"]] == ["coding"]
    assert all("coding" in i["categories"] for i in coding["items"])
    local = body(await client.get("/api/v1/pricing/models", params={"local": "true"}))
    assert local["items"]
    assert all(i["local"] for i in local["items"])
    remote = body(await client.get("/api/v1/pricing/models", params={"local": "false"}))
    assert not any(i["local"] for i in remote["items"])
    lookup = body(
        await client.get(
            "/api/v1/pricing/models",
            params={"ids": "x-ai/grok-3,gpt-4o-2024-05-13,made-up/model-x,gpt-image-1"},
        )
    )
    found = [i["model_id"] for i in lookup["items"]]
    assert found == ["x-ai/grok-3", "gpt-4o-2024-05-13", "made-up/model-x", "gpt-image-1"]
    grok, dated, made_up, image = lookup["items"]
    assert (grok["input_usd_per_million"], grok["output_usd_per_million"]) == (5, 25)
    # A dated id never silently takes the undated price: gpt-4o-2024-05-13 is its own model,
    # which the upstream does not list, at genai-prices' figure for it (not gpt-4o's 2.5/10).
    assert (dated["input_usd_per_million"], dated["output_usd_per_million"]) == (5, 15)
    assert dated["price_basis"] == "second_source"
    assert dated["pricing_source"].startswith("genai-prices ")
    assert made_up["price_status"] == "unknown"
    assert image["special"] == "image"
    assert image["price_basis"] == "catalog"


async def test_etag_304_and_gzip(client: AsyncTestClient[Litestar]) -> None:
    first = await client.get("/api/v1/pricing/models", headers={"Accept-Encoding": "identity"})
    etag = first.headers["etag"]
    assert etag.startswith('"')
    assert "stale-while-revalidate" in first.headers["cache-control"]
    again = await client.get(
        "/api/v1/pricing/models", headers={"If-None-Match": etag, "Accept-Encoding": "identity"}
    )
    assert again.status_code == 304
    assert again.content == b""
    assert again.headers["etag"] == etag
    zipped = await client.get(
        "/api/v1/pricing/models", params={"view": "all"}, headers={"Accept-Encoding": "gzip"}
    )
    assert zipped.headers["content-encoding"] == "gzip"
    plain = await client.get(
        "/api/v1/pricing/models", params={"view": "all"}, headers={"Accept-Encoding": "identity"}
    )
    assert "content-encoding" not in plain.headers
    # The test client inflates gzip itself: the inflated body is the identity body.
    assert zipped.content == plain.content
    # Two representations, two strong ETags.
    assert zipped.headers["etag"] == plain.headers["etag"][:-1] + '-gz"'


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"view": "everything"}, "view must be one of"),
        ({"category": "nope"}, "unknown category 'nope'"),
        ({"local": "maybe"}, "local must be true or false"),
        ({"ids": ",".join(f"m{i}" for i in range(101))}, "too many ids"),
        ({"ids": "x" * 4001}, "ids"),
        ({"ids": " , "}, "ids is empty"),
    ],
)
async def test_bad_input_is_400_with_a_message(
    client: AsyncTestClient[Litestar], params: dict[str, str], message: str
) -> None:
    response = await client.get("/api/v1/pricing/models", params=params)
    assert response.status_code == 400, response.text
    assert message in response.text


async def test_changes_endpoint(client: AsyncTestClient[Litestar]) -> None:
    response = await client.get("/api/v1/pricing/changes", params={"since": "2026-01-01T00:00:00Z"})
    assert response.status_code == 200
    body = response.json()
    assert body["items"] == []
    assert body["order"] == "newest_first"
    # Nothing recorded yet: the cursor is the beginning (the same as an empty cursor=).
    assert body["next_cursor"] == "YzEuMA"
    bad = await client.get("/api/v1/pricing/changes", params={"since": "yesterday"})
    assert bad.status_code == 400
    assert "ISO-8601" in bad.text
    too_many = await client.get("/api/v1/pricing/changes", params={"limit": "100000"})
    assert too_many.status_code == 400
    not_a_number = await client.get("/api/v1/pricing/changes", params={"limit": "ten"})
    assert not_a_number.status_code == 400
