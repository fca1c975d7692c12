"""Bad input is a 4xx with a message before the database sees it (issue 19, the edge).

Each case is sent to both stacks (SQLite in memory, PostgreSQL with Redis): PostgreSQL is the one
that refused NUL bytes and INTEGER overflows with a 500 ("database error (DataError)"). The
console cases go through a logged-in session.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import pytest
import pytest_asyncio
from litestar.testing import AsyncTestClient

from pricing_service.app import create_app
from tests.support.recorded_service import NO_UPSTREAM
from tests.support.settings import ADMIN, CRON, settings_for
from tests.support.shared_service import module_stack
from tests.support.snapshots import store_snapshot_at

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from litestar import Litestar

REFRESH = "/api/v1/pricing/refresh"
PRICING = "/api/v1/pricing"

# One service per stack for the module (tests/support/shared_service.py): every case is refused
# before anything is stored or fetched.
pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest_asyncio.fixture(
    scope="module", loop_scope="module", params=["sqlite+memory", "postgresql+redis"]
)
async def client(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[AsyncTestClient[Litestar]]:
    """The recorded prices served on each stack (as ``client`` in conftest.py), no upstream
    (nothing listens at NO_UPSTREAM: a case that reached it would fail, not hang), and a rate
    limit no module of cases reaches: each case counted alone, as on a service of its own."""
    extra: dict[str, Any] = {"pricing_rate_limit_per_minute": 100_000}
    database_url, cache = module_stack(request, tmp_path_factory)
    extra.update(cache)
    store_snapshot_at(database_url)
    async with AsyncTestClient(create_app(settings_for(database_url, NO_UPSTREAM, **extra))) as c:
        yield c


def _errors(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        ({"accept_run_id": 2**31}, "accept_run_id"),
        ({"accept_run_id": 2**63}, "accept_run_id"),
        ({"accept_run_id": 0}, "accept_run_id"),
        ({"accept_run_id": -1}, "accept_run_id"),
        ({"accept_run_id": 1, "accept_model_ids": ["a\u0000b"]}, "control character"),
        ({"accept_run_id": 1, "accept_model_ids": ["a\u202eb"]}, "control character"),
        ({"accept_run_id": 1, "accept_model_ids": ["x" * 201]}, "at most 200 characters"),
        ({"accept_run_id": 1, "accept_model_ids": ["m"] * 201}, "at most 200 ids"),
        ({"accept_run_id": 1, "accept_model_ids": [""]}, "empty"),
        ({"model_ids": ["gpt-4o\u0000"]}, "control character"),
        ({"model_ids": ["x" * 201]}, "at most 200 characters"),
        ({"accept_run_id": 1, "accept_figure": "proposed\u0000"}, "accept_figure"),
    ],
)
async def test_refresh_bodies_out_of_range_are_400(
    client: AsyncTestClient[Litestar],
    caplog: pytest.LogCaptureFixture,
    body: dict[str, Any],
    detail: str,
) -> None:
    answer = await client.post(REFRESH, headers=_bearer(ADMIN), json=body)
    assert answer.status_code == 400, answer.text
    assert detail in answer.json()["detail"]
    assert _errors(caplog) == []


@pytest.mark.parametrize(
    ("path", "params"),
    [
        (f"{PRICING}/changes", {"model_id": "a\u0000b"}),
        (f"{PRICING}/changes", {"model_id": "a\u0085b"}),
        (f"{PRICING}/changes", {"since": "2026-01-01\u0000"}),
        (f"{PRICING}/models", {"ids": "gpt-4o,a\u0000b"}),
        (f"{PRICING}/models", {"category": "chat\u0000"}),
        (f"{PRICING}/estimate", {"model_id": "a\u0000b", "input_tokens": "1"}),
        (f"{PRICING}/estimate", {"model_id": "a\u001bb", "input_tokens": "1"}),
        (f"{PRICING}/runs", {"limit": "1\u0000"}),
    ],
)
async def test_control_characters_in_a_query_are_400(
    client: AsyncTestClient[Litestar],
    caplog: pytest.LogCaptureFixture,
    path: str,
    params: dict[str, str],
) -> None:
    answer = await client.get(path, params=params, headers=_bearer(CRON))
    assert answer.status_code == 400, answer.text
    assert "control character" in answer.json()["detail"]
    assert _errors(caplog) == []


@pytest.mark.parametrize(
    "path",
    [
        "/admin/static/console.css%00.html",
        "/admin/static/" + "a" * 300,
        "/admin/static/" + "a" * 3000,
        "/admin/static/..%2f..%2fpyproject.toml",
        "/admin/static/console.css%0a",
    ],
)
async def test_odd_static_paths_are_4xx(
    client: AsyncTestClient[Litestar], caplog: pytest.LogCaptureFixture, path: str
) -> None:
    answer = await client.get(path)
    assert 400 <= answer.status_code < 500, answer.text
    assert "pyproject" not in answer.text
    assert _errors(caplog) == []


async def test_a_control_character_in_a_path_is_400(
    client: AsyncTestClient[Litestar], caplog: pytest.LogCaptureFixture
) -> None:
    answer = await client.get(f"{PRICING}/models%00")
    assert answer.status_code == 400, answer.text
    assert "control character" in answer.json()["detail"]
    assert _errors(caplog) == []


async def _login(client: AsyncTestClient[Litestar]) -> None:
    client.cookies.clear()  # as a new browser: the shared client kept the last case's session
    form = await client.get("/admin/ingresar")
    csrf = form.text.split('name="csrf" value="', 1)[1].split('"', 1)[0]
    answer = await client.post("/admin/ingresar", data={"csrf": csrf, "token": ADMIN})
    assert answer.status_code in (200, 303), answer.text
    assert "pricing_admin" in client.cookies


@pytest.mark.parametrize(
    ("path", "params"),
    [
        ("/admin/modelo", {"id": "a\u0000b"}),
        ("/admin/cambios", {"modelo": "a\u0000b"}),
        ("/admin/cambios", {"desde": "2026-01-01\u0000"}),
        ("/admin/cambios", {"tipo": "x\u0000"}),
        ("/admin/selector", {"q": "a\u0000b"}),
        ("/admin/sugerencias", {"categoria": "a\u0000b"}),
    ],
)
async def test_console_queries_with_bad_values_are_400(
    client: AsyncTestClient[Litestar],
    caplog: pytest.LogCaptureFixture,
    path: str,
    params: dict[str, str],
) -> None:
    await _login(client)
    answer = await client.get(path, params=params)
    assert answer.status_code == 400, answer.text
    assert _errors(caplog) == []


async def test_console_accept_with_a_nul_model_id_is_400(
    client: AsyncTestClient[Litestar], caplog: pytest.LogCaptureFixture
) -> None:
    await _login(client)
    page = await client.get("/admin")
    csrf = page.text.split('name="csrf" value="', 1)[1].split('"', 1)[0]
    answer = await client.post(
        "/admin/aceptar", data={"csrf": csrf, "run_id": "1", "model_id": "a\u0000b"}
    )
    assert answer.status_code == 400, answer.text
    assert "control" in answer.text
    assert _errors(caplog) == []
