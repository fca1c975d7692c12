"""The debug sample: raw upstream rows beside what the service made of them, its limit and who
may read it, on both storage stacks (the rest of operations: test_operations.py)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import pytest
import pytest_asyncio
from litestar.testing import AsyncTestClient

from pricing_service.app import create_app
from tests.support.recorded_service import NO_UPSTREAM
from tests.support.recording import DETAILS, ROWS
from tests.support.settings import ADMIN, CRON, WRONG, bearer, settings_for
from tests.support.shared_service import module_stack
from tests.support.snapshots import store_snapshot_at

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from litestar import Litestar

SAMPLE = "/api/v1/pricing/debug/sample"
MODELS = "/api/v1/pricing/models"

# One service per stack for the module (tests/support/shared_service.py): the tests read the
# sample and the selector and change nothing the service holds. They were split from
# test_operations.py, whose per-test PostgreSQL and Redis fixtures empty what this service reads.
pytestmark = pytest.mark.asyncio(loop_scope="module")
# The sample's rate limit counts every call of the module in one budget; these tests are not
# about it (test_operations.py's test_rate_limit_per_endpoint_with_retry_after is), so the
# budget is one that no order of them reaches.
RATE_LIMIT = 1000


@pytest_asyncio.fixture(
    scope="module", loop_scope="module", params=["sqlite+memory", "postgresql+redis"]
)
async def client(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[AsyncTestClient[Litestar]]:
    """What tests/integration/conftest.py's ``client`` serves (the recorded prices as a good run
    left them, stored before the service starts), once per stack; no upstream (none is called)."""
    extra: dict[str, Any] = {"pricing_rate_limit_per_minute": RATE_LIMIT}
    database_url, cache = module_stack(request, tmp_path_factory)
    extra.update(cache)
    store_snapshot_at(database_url)
    async with AsyncTestClient(create_app(settings_for(database_url, NO_UPSTREAM, **extra))) as c:
        yield c


async def test_debug_sample_shows_raw_rows_beside_normalized(
    client: AsyncTestClient[Litestar],
) -> None:
    response = await client.get(SAMPLE, headers=bearer(ADMIN))
    assert response.status_code == 200, response.text
    data = response.json()
    assert data["limit"] == 5
    assert response.headers["cache-control"] == "no-store"
    run = data["last_run"]
    assert run["status"] == "succeeded"
    assert run["rows_seen"] == len(ROWS)
    assert run["finished_at"] is not None
    assert run["duration_ms"] >= 0
    assert run["error"] is None
    # Every field the recorded rows and get_model answers carry: a renamed field shows at once.
    fields = set().union(*(row.keys() for row in ROWS), *(d.keys() for d in DETAILS.values()))
    assert set(data["field_names"]) == fields
    assert data["current_snapshot"]["source"] == "pricepertoken"
    assert data["sampled_snapshot"]["id"] == data["current_snapshot"]["id"]
    rows = data["rows"]
    assert len(rows) == 5
    # Curated models come first: they are the ones people use.
    curated = body_ids(await client.get(MODELS))
    assert all(r["model_id"] in curated for r in rows)
    by_slug = {row["slug"]: row for row in ROWS}
    for row in rows:
        raw, normalized = row["raw"], row["normalized"]
        assert normalized["model_id"] == row["model_id"]
        assert raw["row"] == by_slug[raw["row"]["slug"]]
        assert normalized["slug"] == raw["row"]["slug"]
        if normalized["price_basis"] == "official":
            official = raw["detail"]["pricing"]
            assert float(normalized["input_usd_per_million"]) == pytest.approx(
                float(official["input_per_1m"])
            ), row
    prices = data["prices"]
    all_items = json.loads((await client.get(MODELS, params={"view": "all"})).content)["items"]
    upstream_unknown = [
        i for i in all_items if i["price_status"] == "unknown" and i["price_basis"] is not None
    ]
    # The current prices: the upstream's listing (the snapshot's count, the run's) and the
    # models genai-prices prices that the upstream does not list (served, not counted).
    filled = [i for i in all_items if i["price_basis"] == "second_source"]
    assert filled
    assert (
        prices["models"] - len(filled)
        == data["current_snapshot"]["model_count"]
        == run["priced"] + run["unknown"]
    )
    # Served unknown: the upstream's unknowns, plus models held with no accepted price yet.
    held_first_seen = [
        h for h in data["held_prices"] if h["accepted_input_usd_per_million"] is None
    ]
    assert prices["unknown"] == run["unknown"] + len(held_first_seen)
    assert prices["unknown"] >= max(prices["null_input"], prices["null_output"]) > 0
    assert prices["unknown"] >= len(upstream_unknown)
    unmatched = data["unmatched_catalog_ids"]
    assert isinstance(unmatched, list)
    for model_id in unmatched:
        looked_up = json.loads((await client.get(MODELS, params={"ids": model_id})).content)
        assert looked_up["items"][0]["price_basis"] != "official", model_id


def body_ids(response: Any) -> set[str]:
    return {i["model_id"] for i in json.loads(response.content)["items"]}


async def test_debug_sample_limit(client: AsyncTestClient[Litestar]) -> None:
    one = await client.get(SAMPLE, params={"limit": "1"}, headers=bearer(ADMIN))
    assert one.status_code == 200
    assert len(one.json()["rows"]) == 1
    twenty = await client.get(SAMPLE, params={"limit": "20"}, headers=bearer(ADMIN))
    assert len(twenty.json()["rows"]) == 20
    assert len({r["model_id"] for r in twenty.json()["rows"]}) == 20
    for bad in ("0", "21", "-3", "five", "1.5"):
        response = await client.get(SAMPLE, params={"limit": bad}, headers=bearer(ADMIN))
        assert response.status_code == 400, (bad, response.text)


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({}, 401),
        (bearer(WRONG), 401),
        (bearer(CRON), 401),  # the cron token may refresh, not read the sample
        ({"Authorization": ADMIN}, 401),  # not a bearer credential
        ({"Authorization": f"Basic {ADMIN}"}, 401),
    ],
)
async def test_debug_sample_refusals(
    client: AsyncTestClient[Litestar], headers: dict[str, str], status: int
) -> None:
    response = await client.get(SAMPLE, headers=headers)
    assert response.status_code == status, response.text
    assert response.headers["www-authenticate"] == "Bearer"
    assert "rows" not in response.text
