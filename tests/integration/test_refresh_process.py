"""A serving worker's refreshes in a child process (refresh_process.py, refresh_child.py).

The app runs here (``create_app(..., refresh_in_child=True)``, as ``create_app_from_env`` does);
each run, acceptance and seed is a real ``python -m pricing_service.refresh_child`` process on
the same database, Redis and loopback upstream. The outcomes are those of an in-process run
(tests/integration/test_refresh.py and test_api_refresh.py cover them in depth); what is tested here
is what the process boundary adds: the result, the publish and the events come back, the
lease and the 409 stay in the parent, the bound kills a child that outlives it, and a parent
that stops takes its child with it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import anyio
import redis
from litestar.testing import AsyncTestClient

from pricing_service.api.state import served
from pricing_service.app import create_app
from pricing_service.cache import POINTER_KEY
from pricing_service.catalog import load_catalog
from pricing_service.domain import RunStatus
from pricing_service.refresh_process import ChildRefresher
from tests.integration.test_operations import samples, value
from tests.support.process import alive
from tests.support.recording import CATALOG_DIR
from tests.support.settings import ADMIN, CRON, bearer, settings_for
from tests.support.snapshots import store_snapshot_at, stored_run

if TYPE_CHECKING:
    from litestar import Litestar

    from tests.support.mcp_upstream import LoopbackUpstream

REFRESH = "/api/v1/pricing/refresh"
MODELS = "/api/v1/pricing/models"


class Children:
    """The child pids a refresher reported (its ``refresh.child_started`` events)."""

    def __init__(self) -> None:
        self.started: list[int] = []
        self.ended: list[dict[str, Any]] = []

    def __call__(self, name: str, fields: dict[str, Any]) -> None:
        if name == "refresh.child_started":
            self.started.append(int(fields["child_pid"]))
        if name == "refresh.child_ended":
            self.ended.append(fields)


async def _wait_for(condition: Any, seconds: float = 120) -> None:
    with anyio.fail_after(seconds):
        while not condition():
            await anyio.sleep(0.05)


async def _launch_hanging(client: AsyncTestClient[Litestar], upstream: LoopbackUpstream) -> int:
    """Start a run whose upstream never answers; its id."""
    upstream.set_behaviour("hang", tool="get_all_models")
    first = await client.post(
        REFRESH, headers=bearer(CRON), json={"force": True, "wait_seconds": 0}
    )
    assert first.status_code == 202, first.text
    return int(first.json()["run_id"])


async def _run(client: AsyncTestClient[Litestar], run_id: int) -> dict[str, Any]:
    answer = await client.get(f"/api/v1/pricing/runs/{run_id}", headers=bearer(CRON))
    assert answer.status_code == 200, answer.text
    run: dict[str, Any] = answer.json()
    return run


def _child(app: Litestar) -> ChildRefresher:
    """The app's refresher, which a serving app built with ``refresh_in_child`` makes a child's."""
    refresher = served(app.state).refresher
    assert isinstance(refresher, ChildRefresher)
    return refresher


def _app(settings_url: str, upstream: LoopbackUpstream, **extra: Any) -> Litestar:
    settings = settings_for(settings_url, upstream.url, **extra)
    return create_app(settings, refresh_in_child=True)


def _watch(app: Litestar) -> Children:
    refresher = _child(app)
    assert isinstance(refresher, ChildRefresher)
    children = Children()
    refresher.observers.append(children)
    return children


async def test_a_run_in_a_child_is_published_here_and_in_redis(
    database_url_pg: str, redis_url: str, mcp_upstream: LoopbackUpstream
) -> None:
    store_snapshot_at(database_url_pg, catalog=load_catalog(CATALOG_DIR))
    app = _app(database_url_pg, mcp_upstream, redis_url=redis_url)
    async with AsyncTestClient(app) as client:
        children = _watch(app)
        # A run that just succeeded is returned without a child.
        recent = await client.post(REFRESH, headers=bearer(CRON), json={})
        assert recent.status_code == 200, recent.text
        assert recent.json()["started"] is False
        assert children.started == []
        answer = await client.post(REFRESH, headers=bearer(CRON), json={"force": True})
        assert answer.status_code == 200, answer.text
        run = answer.json()["run"]
        assert run["status"] == "succeeded"
        assert run["trigger"] == "api"
        assert len(children.started) == 1
        assert children.ended[0]["returncode"] == 0
        assert not alive(children.started[0])
        # This worker serves what the child stored, and made it current in Redis (the tracker's
        # publish: one write, tests/unit/test_tracker.py), so every worker follows.
        served = await client.get(MODELS)
        assert served.json()["snapshot"]["id"] == run["snapshot_id"]
        assert served.json()["snapshot"]["source"] == "pricepertoken"
        # (On a loaded machine Redis's 0.25 s bound may trip the breaker: then the watcher
        # repairs the pointer within seconds.)
        store = redis.Redis.from_url(redis_url, socket_timeout=5)
        try:
            with anyio.fail_after(60):
                while store.get(POINTER_KEY) != str(run["snapshot_id"]).encode():
                    await anyio.sleep(0.1)
        finally:
            store.close()
        # The child's events and fetch reached this worker's metrics.
        found = samples((await client.get("/metrics")).text)
        assert value(found, "pricing_refresh_runs_total", outcome="succeeded") == 1
        assert value(found, "pricing_refresh_runs_total", outcome="skipped") == 1
        assert value(found, "pricing_upstream_details_total", outcome="ok") == len(
            mcp_upstream.data.rows
        )


async def test_held_run_and_its_acceptance_each_in_a_child(
    sqlite_url: str, mcp_upstream: LoopbackUpstream
) -> None:
    store_snapshot_at(sqlite_url, catalog=load_catalog(CATALOG_DIR))
    app = _app(sqlite_url, mcp_upstream)
    mcp_upstream.set_data(rows=mcp_upstream.data.rows[:200])
    async with AsyncTestClient(app) as client:
        children = _watch(app)
        before = (await client.get(MODELS)).json()["snapshot"]["id"]
        held = await client.post(REFRESH, headers=bearer(CRON), json={"force": True})
        assert held.status_code == 200, held.text
        run = held.json()["run"]
        assert run["status"] == "held"
        assert (await client.get(MODELS)).json()["snapshot"]["id"] == before
        missing = await client.post(REFRESH, headers=bearer(ADMIN), json={"accept_run_id": 999})
        assert missing.status_code == 409, missing.text
        assert "run 999 does not exist" in missing.json()["detail"]
        accepted = await client.post(
            REFRESH, headers=bearer(ADMIN), json={"accept_run_id": run["id"]}
        )
        assert accepted.status_code == 200, accepted.text
        assert accepted.json()["accepted"] == ["*"]
        snapshot_id = accepted.json()["snapshot_id"]
        assert snapshot_id > before
        assert (await client.get(MODELS)).json()["snapshot"]["id"] == snapshot_id
        assert len(children.started) == 3
        assert [e["job"] for e in children.ended] == ["run", "accept", "accept"]


async def test_a_running_child_means_in_progress_and_the_bound_kills_it(
    sqlite_url: str, mcp_upstream: LoopbackUpstream
) -> None:
    store_snapshot_at(sqlite_url, catalog=load_catalog(CATALOG_DIR))
    app = _app(sqlite_url, mcp_upstream, pricing_refresh_timeout_seconds=4)
    async with AsyncTestClient(app) as client:
        children = _watch(app)
        run_id = await _launch_hanging(client, mcp_upstream)
        again = await client.post(REFRESH, headers=bearer(CRON), json={"force": True})
        assert again.status_code == 202, again.text
        assert again.json()["run_id"] == run_id
        accept = await client.post(REFRESH, headers=bearer(ADMIN), json={"accept_run_id": 1})
        assert accept.status_code == 409, accept.text
        await _wait_for(lambda: children.ended)
        assert children.ended[0]["failure"].startswith("the refresh process outlived 4 s")
        assert not alive(children.started[0])
        with anyio.fail_after(60):  # recorded just after the child's end is reported
            while (failed := await _run(client, run_id))["status"] == "running":
                await anyio.sleep(0.05)
        assert failed["status"] == "failed"
        assert "PRICING_REFRESH_TIMEOUT_SECONDS" in failed["error"]
        # The lease went with it: the next run (with time to finish) starts and succeeds.
        mcp_upstream.set_behaviour("ok")
        _child(app).timeout_seconds = 300
        # The run is recorded failed just before its lease is released: a POST between the two
        # meets the lease (202, nothing started), so it is asked again until the lease is free.
        with anyio.fail_after(60):
            while (
                ok := await client.post(REFRESH, headers=bearer(CRON), json={"force": True})
            ).status_code == 202:
                await anyio.sleep(0.05)
        assert ok.status_code == 200, ok.text
        assert ok.json()["run"]["status"] == "succeeded"


async def test_a_stopping_service_stops_its_child_and_records_the_run(
    sqlite_url: str, mcp_upstream: LoopbackUpstream
) -> None:
    store_snapshot_at(sqlite_url, catalog=load_catalog(CATALOG_DIR))
    app = _app(sqlite_url, mcp_upstream)
    async with AsyncTestClient(app) as client:
        children = _watch(app)
        run_id = await _launch_hanging(client, mcp_upstream)
        await _wait_for(lambda: children.started)
        # Wait until the child has begun the run (its upstream call hangs).
        await _wait_for(lambda: mcp_upstream.calls["get_all_models"] > 0)
    assert children.ended, "the lifespan's end waited for the child"
    assert not alive(children.started[0])
    run = stored_run(sqlite_url, run_id)
    assert run is not None
    assert run.status is RunStatus.FAILED
    assert run.error == "cancelled: the service stopped mid-run"


async def test_an_empty_database_is_seeded_by_a_child(
    sqlite_url: str, mcp_upstream: LoopbackUpstream
) -> None:
    app = _app(sqlite_url, mcp_upstream)
    async with AsyncTestClient(app) as client:
        answer = await client.get(MODELS)
        assert answer.status_code == 200, answer.text
        assert answer.json()["snapshot"]["source"] == "seed"
        assert _child(app).children_started == 1


async def test_a_child_that_fails_is_a_failure_not_a_hang(
    sqlite_url: str, mcp_upstream: LoopbackUpstream
) -> None:
    store_snapshot_at(sqlite_url, catalog=load_catalog(CATALOG_DIR))
    app = _app(sqlite_url, mcp_upstream)
    async with AsyncTestClient(app):
        refresher = _child(app)
        end = await refresher._in_child({"job": "nonsense"})
        assert end.result is None
        assert end.failure is not None
        assert "exited with code" in end.failure
