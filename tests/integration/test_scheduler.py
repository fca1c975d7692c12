"""The background schedule: when a refresh is due, and what happens at startup."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import anyio
import pytest
import sqlalchemy as sa

from pricing_service.domain import RunStatus
from pricing_service.refresh import FIRST_RETRY_SECONDS
from tests.integration.test_refresh import make_refresher

if TYPE_CHECKING:
    from pricing_service.repository import Repository
    from tests.support.mcp_upstream import LoopbackUpstream

pytest_plugins = ["tests.integration.test_refresh"]


async def test_due_now_with_only_the_seed(
    repository: Repository, mcp_upstream: LoopbackUpstream
) -> None:
    refresher = make_refresher(repository, mcp_upstream)
    await refresher.ensure_seed()
    assert await refresher.seconds_until_due() == 0


async def test_due_one_interval_after_success_and_backoff_after_failures(
    repository: Repository, mcp_upstream: LoopbackUpstream
) -> None:
    refresher = make_refresher(repository, mcp_upstream)
    assert (await refresher.refresh("test")).run.status is RunStatus.SUCCEEDED
    due = await refresher.seconds_until_due()
    assert 43200 - 5 <= due <= 43200
    # A failure while the snapshot is fresh does not bring the next run forward.
    mcp_upstream.set_behaviour("http_403")
    assert (await refresher.refresh("test", force=True)).run.status is RunStatus.FAILED
    assert 43200 - 10 <= await refresher.seconds_until_due() <= 43200
    # With an old snapshot, failures back off: 5 min, then 10 min, ...
    with repository.engine.begin() as conn:
        conn.execute(
            sa.text("UPDATE snapshot SET fetched_at = :t"),
            {"t": datetime.now(UTC) - timedelta(hours=13)},
        )
    first = await refresher.seconds_until_due()
    assert FIRST_RETRY_SECONDS - 5 <= first <= FIRST_RETRY_SECONDS
    assert (await refresher.refresh("test", force=True)).run.status is RunStatus.FAILED
    second = await refresher.seconds_until_due()
    assert 2 * FIRST_RETRY_SECONDS - 5 <= second <= 2 * FIRST_RETRY_SECONDS


@pytest.mark.parametrize("fresh", [False, True])
async def test_startup_refreshes_only_when_the_last_good_snapshot_is_old(
    repository: Repository, mcp_upstream: LoopbackUpstream, fresh: bool
) -> None:
    refresher = make_refresher(repository, mcp_upstream)
    if fresh:
        assert (await refresher.refresh("test")).run.status is RunStatus.SUCCEEDED
    calls = mcp_upstream.calls["get_all_models"]
    async with anyio.create_task_group() as tasks:
        tasks.start_soon(lambda: refresher.run_forever(refresh_on_startup=True))
        with anyio.move_on_after(8):
            while mcp_upstream.calls["get_all_models"] == calls or repository.last_run() is None:
                await anyio.sleep(0.05)
            while (last := repository.last_run()) and last.status is RunStatus.RUNNING:
                await anyio.sleep(0.05)
        if fresh:
            await anyio.sleep(0.5)
        tasks.cancel_scope.cancel()
    made = mcp_upstream.calls["get_all_models"] - calls
    assert made == (0 if fresh else 1)
    last = repository.last_run()
    assert last is not None
    assert last.trigger == ("test" if fresh else "schedule")
