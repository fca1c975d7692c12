"""The selector's hot path answers exactly as the full route does, and only when it can."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest
import pytest_asyncio
from litestar.testing import AsyncTestClient

from pricing_service.api.state import served
from pricing_service.app import create_app
from pricing_service.metrics import Metrics
from tests.support.recorded_service import seed_snapshot, service_settings
from tests.support.shared_service import module_sqlite

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from httpx import Response
    from litestar import Litestar

MODELS = "/api/v1/pricing/models"
PRICES = "/api/v1/pricing/prices"
# Headers that legitimately differ between two answers (time, request identity).
VARYING = {"age", "cache-control", "date", "x-request-id"}


def same(first: Response, second: Response) -> None:
    assert first.status_code == second.status_code
    assert first.content == second.content
    one = {k: v for k, v in first.headers.items() if k not in VARYING}
    two = {k: v for k, v in second.headers.items() if k not in VARYING}
    assert one == two


@pytest.mark.parametrize(
    ("path", "params", "headers"),
    [
        (MODELS, {}, {}),
        (MODELS, {"view": "all"}, {"accept-encoding": "gzip"}),
        (MODELS, {"view": "all", "category": "coding", "local": "false"}, {}),
        (MODELS, {"local": "true"}, {"accept-encoding": "gzip;q=0"}),
        (PRICES, {}, {"accept-encoding": "gzip"}),
    ],
)
async def test_the_second_answer_comes_from_the_hot_path_byte_for_byte(
    sqlite_url: str,
    path: str,
    params: dict[str, str],
    headers: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    seed_snapshot(sqlite_url)
    metrics = Metrics()
    app = create_app(service_settings(sqlite_url), metrics=metrics)
    async with AsyncTestClient(app) as client:
        first = await client.get(path, params=params, headers=headers)  # renders, via Litestar
        assert first.status_code == 200
        service = served(app.state).pricing

        async def full_route_must_not_run(**_: Any) -> None:
            raise AssertionError("the full route answered what the hot path should have")

        # From here on, the full route's service calls fail: only the hot path can answer.
        monkeypatch.setattr(service, "models", full_route_must_not_run)
        monkeypatch.setattr(service, "prices", full_route_must_not_run)
        fast = await client.get(path, params=params, headers=headers)
        same(first, fast)
        etag = fast.headers["etag"]
        not_modified = await client.get(
            path, params=params, headers={**headers, "if-none-match": etag}
        )
        assert not_modified.status_code == 304
        assert not_modified.content == b""
        head = await client.head(path, params=params, headers=headers)
        assert head.status_code == 200
        assert head.content == b""
        assert head.headers["content-length"] == fast.headers["content-length"]
    # Both paths are counted under the route's template.
    scraped = metrics.exposition().decode()
    assert f'pricing_http_requests_total{{method="GET",route="{path}",status="200"}} 2.0' in scraped
    assert f'pricing_http_requests_total{{method="GET",route="{path}",status="304"}} 1.0' in scraped


# The hot-path tests above count their own requests and need the first answer uncached: each
# has a service of its own. The full-route cases only read, on one service for the module
# (tests/support/shared_service.py), on the module's event loop.
@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def cached(
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[AsyncTestClient[Litestar]]:
    database_url = module_sqlite(tmp_path_factory)
    seed_snapshot(database_url)
    async with AsyncTestClient(create_app(service_settings(database_url))) as client:
        yield client


@pytest.mark.parametrize(
    ("params", "status"),
    [
        ({"view": "nope"}, 400),
        ({"category": "nope"}, 400),
        ({"colour": "red"}, 400),
        ({"local": "maybe"}, 400),
        ({"ids": "gpt-4o,anthropic/claude-3-opus"}, 200),
    ],
)
@pytest.mark.asyncio(loop_scope="module")
async def test_what_the_hot_path_cannot_answer_takes_the_full_route(
    cached: AsyncTestClient[Litestar], params: dict[str, Any], status: int
) -> None:
    await cached.get(MODELS)
    await cached.get(MODELS)  # the curated view is cached now
    answer = await cached.get(MODELS, params=params)
    assert answer.status_code == status, answer.text
    if status == 400:
        assert answer.json()["detail"]
