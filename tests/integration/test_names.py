"""Names once: every coded value the service stores or serves is a member of its enum in
domain.py (the enums are the contract's one spelling): a run's status and trigger as stored and
as /runs serves them, where each answer's data came from (``x-cache-tier``, /ready's ``tier``,
the metrics' ``tier`` label), how each refresh trigger came out (the metrics' ``outcome``
label), and each selector item's source."""

from __future__ import annotations

import json
from enum import StrEnum
from typing import TYPE_CHECKING

import sqlalchemy as sa

from pricing_service.api.state import served
from pricing_service.domain import (
    CacheTier,
    PriceBasis,
    PriceStatus,
    RunOutcome,
    RunStatus,
    RunTrigger,
    SnapshotSource,
)
from pricing_service.sources import CATALOG_SOURCE, LOCAL_SOURCE
from tests.integration.test_operations import samples
from tests.support.settings import ADMIN, CRON, bearer

if TYPE_CHECKING:
    from litestar import Litestar
    from litestar.testing import AsyncTestClient

    from tests.support.mcp_upstream import LoopbackUpstream

API = "/api/v1/pricing"
SELECTOR_GETS = ("/models", "/models?view=all", "/prices", "/local", "/changes")
ITEM_SOURCES = {*SnapshotSource, CATALOG_SOURCE, LOCAL_SOURCE}


def _members(values: list[str], enum: type[StrEnum]) -> list[str]:
    """The values that are not a member of ``enum``: none, or the test fails."""
    return [v for v in values if v not in {m.value for m in enum}]


async def test_stored_and_served_codes_are_members_of_their_enums(
    client: AsyncTestClient[Litestar], mcp_upstream: LoopbackUpstream
) -> None:
    listed = await client.get(f"{API}/runs", headers=bearer(ADMIN))
    before = {run["id"] for run in listed.json()["items"]}
    # A run that succeeds, one answered with it (skipped), one that fails.
    succeeded = await client.post(f"{API}/refresh", headers=bearer(CRON), json={"force": True})
    assert succeeded.status_code == 200, succeeded.text
    skipped = await client.post(f"{API}/refresh", headers=bearer(CRON))
    assert skipped.json()["started"] is False
    mcp_upstream.set_behaviour("http_403")
    failed = await client.post(f"{API}/refresh", headers=bearer(CRON), json={"force": True})
    assert failed.status_code == 502, failed.text

    tiers = []
    for path in SELECTOR_GETS:
        for _ in range(2):  # a first answer (a render) and one from the rendered bytes
            response = await client.get(API + path)
            assert response.status_code == 200, (path, response.text)
            tiers.append(response.headers["x-cache-tier"])
    ready = (await client.get("/ready")).json()
    tiers.append(ready["tier"])
    assert _members(tiers, CacheTier) == []

    items = json.loads((await client.get(f"{API}/models", params={"view": "all"})).content)
    assert [i["source"] for i in items["items"] if i["source"] not in ITEM_SOURCES] == []
    assert _members([i["price_status"] for i in items["items"]], PriceStatus) == []
    assert (
        _members([i["price_basis"] for i in items["items"] if i["price_basis"]], PriceBasis) == []
    )

    runs = (await client.get(f"{API}/runs", headers=bearer(ADMIN))).json()["items"]
    assert _members([r["status"] for r in runs], RunStatus) == []
    mine = [r for r in runs if r["id"] not in before]
    assert len(mine) == 2, mine  # the skipped trigger ran nothing
    assert {r["status"] for r in mine} == {RunStatus.SUCCEEDED, RunStatus.FAILED}
    assert _members([r["trigger"] for r in mine], RunTrigger) == []

    engine = served(client.app.state).pricing.repository.engine
    with engine.connect() as connection:
        stored = connection.execute(sa.text("select status, trigger from refresh_run")).all()
    assert _members([str(status) for status, _ in stored], RunStatus) == []
    # The fixture's run is the tests' own ("test"); the service stores only RunTriggers.
    assert _members([str(t) for _, t in stored if t != "test"], RunTrigger) == []

    found = samples((await client.get("/metrics")).text)
    outcomes = [dict(k[1])["outcome"] for k in found if k[0] == "pricing_refresh_runs_total"]
    assert sorted(outcomes) == sorted(
        [RunOutcome.SUCCEEDED, RunOutcome.SKIPPED, RunOutcome.FAILED]
    ), outcomes
    assert _members(outcomes, RunOutcome) == []
    hit_tiers = [dict(k[1])["tier"] for k in found if k[0] == "pricing_cache_hits_total"]
    assert hit_tiers
    assert _members(hit_tiers, CacheTier) == []
