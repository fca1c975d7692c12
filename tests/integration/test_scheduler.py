"""The background schedule: when a refresh is due, and what happens at startup."""

from __future__ import annotations

import functools
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import anyio
import pytest
import sqlalchemy as sa

from pricing_service.domain import RunStatus
from pricing_service.refresh import FIRST_RETRY_SECONDS
from tests.support.snapshots import store_snapshot

if TYPE_CHECKING:
    from collections.abc import Callable

    from pricing_service.refresh import Refresher
    from pricing_service.repository import Repository
    from tests.support.mcp_upstream import LoopbackUpstream

INTERVAL = 43200  # the refreshers' interval (conftest.make_refresher)


async def _due_between(
    refresher: Refresher, due: Callable[[datetime], float]
) -> tuple[float, float, float]:
    """``seconds_until_due()`` with the bounds ``due(now)`` gives just after and before it.

    The refresher reads the clock itself; bracketing its read makes the check exact however
    long a loaded machine takes between storing a run and asking.
    """
    before = datetime.now(UTC)
    got = await refresher.seconds_until_due()
    after = datetime.now(UTC)
    return due(after), got, due(before)


async def test_due_now_with_only_the_seed(
    repository: Repository, make_refresher: Callable[..., Refresher]
) -> None:
    refresher = make_refresher()
    await refresher.ensure_seed()
    assert await refresher.seconds_until_due() == 0


async def test_due_one_interval_after_success_and_backoff_after_failures(
    repository: Repository,
    mcp_upstream: LoopbackUpstream,
    make_refresher: Callable[..., Refresher],
) -> None:
    refresher = make_refresher()
    snapshot, _ = store_snapshot(repository)

    def one_interval(now: datetime) -> float:
        return INTERVAL - (now - snapshot.fetched_at).total_seconds()

    low, due, high = await _due_between(refresher, one_interval)
    assert low <= due <= high <= INTERVAL
    # A failure while the snapshot is fresh does not bring the next run forward.
    mcp_upstream.set_behaviour("http_403")
    assert (await refresher.refresh("test", force=True)).run.status is RunStatus.FAILED
    low, due, high = await _due_between(refresher, one_interval)
    assert low <= due <= high
    # With an old snapshot, failures back off: 5 min, then 10 min, ...
    with repository.engine.begin() as conn:
        conn.execute(
            sa.text("UPDATE snapshot SET fetched_at = :t"),
            {"t": datetime.now(UTC) - timedelta(hours=13)},
        )
    low, due, high = await _due_between(refresher, _backoff(repository, failures=1))
    assert low <= due <= high <= FIRST_RETRY_SECONDS
    assert (await refresher.refresh("test", force=True)).run.status is RunStatus.FAILED
    low, due, high = await _due_between(refresher, _backoff(repository, failures=2))
    assert low <= due <= high <= 2 * FIRST_RETRY_SECONDS


def _backoff(repository: Repository, *, failures: int) -> Callable[[datetime], float]:
    """Seconds until due after ``failures`` failed runs in a row, the last one just recorded."""
    last = repository.last_run()
    assert last is not None
    assert last.finished_at is not None
    finished = last.finished_at
    return lambda now: FIRST_RETRY_SECONDS * 2 ** (failures - 1) - (now - finished).total_seconds()


async def _run_until_scheduled_later(refresher: Refresher) -> list[tuple[str, dict[str, Any]]]:
    """Run the scheduler (refresh on startup) until it reports a wait above zero; then cancel.

    That report (``refresh.scheduled in_seconds=...``) is the scheduler deciding to sleep: after
    it nothing happens for the whole wait, so there is nothing more to see.
    """
    reports: list[tuple[str, dict[str, Any]]] = []
    sleeping = anyio.Event()

    def observe(name: str, fields: dict[str, Any]) -> None:
        reports.append((name, fields))
        if name == "refresh.scheduled" and fields["in_seconds"] > 0:
            sleeping.set()

    refresher.observers.append(observe)
    with anyio.fail_after(60):
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(functools.partial(refresher.run_forever, refresh_on_startup=True))
            await sleeping.wait()
            tasks.cancel_scope.cancel()
    return reports


@pytest.mark.parametrize("fresh", [False, True])
async def test_startup_refreshes_only_when_the_last_good_snapshot_is_old(
    repository: Repository,
    mcp_upstream: LoopbackUpstream,
    make_refresher: Callable[..., Refresher],
    fresh: bool,
) -> None:
    refresher = make_refresher()
    if fresh:
        store_snapshot(repository)
    reports = await _run_until_scheduled_later(refresher)
    names = [name for name, _ in reports]
    made = mcp_upstream.calls["get_all_models"]
    assert made == (0 if fresh else 1)
    last = repository.last_run()
    assert last is not None
    assert last.trigger == ("test" if fresh else "schedule")
    if fresh:
        # Due in one interval (plus jitter): scheduled at once, no run started.
        assert names == ["refresh.scheduled"]
        assert reports[0][1]["in_seconds"] >= INTERVAL - 60
    else:
        # Due now: the seed, a run at once, then the next one an interval later.
        assert last.status is RunStatus.SUCCEEDED, last.error
        assert names[0] == "refresh.seeded"
        assert reports[1] == ("refresh.scheduled", {"in_seconds": 0})
        assert "refresh.completed" in names
        assert names[-1] == "refresh.scheduled"
