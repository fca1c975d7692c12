"""GET /api/v1/pricing/changes as a feed, on SQLite and PostgreSQL: ETag and 304, COP beside
USD, and a cursor with which a client resumes exactly where it stopped."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from litestar.testing import AsyncTestClient

from pricing_service.app import create_app
from pricing_service.db import create_db_engine
from pricing_service.repository import Repository
from tests.support.recording import normalized_recording
from tests.support.settings import settings_for
from tests.support.snapshots import store_snapshot

if TYPE_CHECKING:
    from pricing_service.domain import NormalizedListing

CHANGES = "/api/v1/pricing/changes"
RATE = Decimal("4200")


def _moved(listing: NormalizedListing, model_ids: set[str], factor: str) -> NormalizedListing:
    return replace(
        listing,
        prices=tuple(
            replace(p, input_usd_per_million=p.input_usd_per_million * Decimal(factor))
            if p.model_id in model_ids and p.input_usd_per_million
            else p
            for p in listing.prices
        ),
    )


async def _all_after(
    client: AsyncTestClient[Any], cursor: str, **params: Any
) -> tuple[list[Any], str]:
    """Follow next_cursor from ``cursor`` until nothing is new: every item, and the cursor."""
    found: list[Any] = []
    for _ in range(100):
        answer = await client.get(CHANGES, params={"cursor": cursor, "limit": 50, **params})
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert body["order"] == "oldest_first"
        if not body["items"]:
            assert body["next_cursor"] == cursor
            return found, cursor
        found.extend(body["items"])
        cursor = body["next_cursor"]
    raise AssertionError("the feed never ended")


async def test_a_client_resumes_exactly_where_it_stopped(database_url: str) -> None:
    engine = create_db_engine(database_url)
    repository = Repository(engine)
    listing = normalized_recording()
    store_snapshot(repository, listing)  # the first listing: no events
    # 60 prices move by a fifth: 60 changes in the feed.
    priced = sorted(
        p.model_id
        for p in listing.prices
        if p.input_usd_per_million and p.output_usd_per_million and p.model_id != "gpt-4o"
    )
    listing = _moved(listing, set(priced[:60]), "1.2")
    store_snapshot(repository, listing, trigger="moved")
    settings = settings_for(database_url, "http://127.0.0.1:9/mcp", pricing_usd_to_cop=RATE)
    async with AsyncTestClient(create_app(settings)) as client:
        newest = await client.get(CHANGES, params={"limit": 5})
        assert newest.status_code == 200
        body = newest.json()
        assert body["order"] == "newest_first"
        assert len(body["items"]) == 5
        assert body["usd_to_cop"] == 4200.0
        etag = newest.headers["etag"]
        assert etag.startswith('"')
        again = await client.get(CHANGES, params={"limit": 5}, headers={"if-none-match": etag})
        assert again.status_code == 304
        assert again.content == b""
        # Everything from the beginning, page by page, each change once, oldest first.
        everything, position = await _all_after(client, "")
        listed = (await client.get(CHANGES, params={"limit": 1000})).json()
        assert len(everything) == len(listed["items"]) > 50  # a few of the 60 are held
        assert position == listed["next_cursor"]
        key = [(i["model_id"], i["kind"]) for i in everything]
        assert len(set(key)) == len(key)
        # Nothing new after the position: an empty page, the same cursor, and a 304 for it.
        idle = await client.get(CHANGES, params={"cursor": position})
        assert idle.json()["items"] == []
        idle_etag = idle.headers["etag"]
        unchanged = await client.get(
            CHANGES, params={"cursor": position}, headers={"if-none-match": idle_etag}
        )
        assert unchanged.status_code == 304

        # A new snapshot moves gpt-4o by half: the client sees exactly that change next.
        store_snapshot(repository, _moved(listing, {"gpt-4o"}, "1.5"), trigger="again")
        moved = await client.get(
            CHANGES, params={"cursor": position}, headers={"if-none-match": idle_etag}
        )
        assert moved.status_code == 200
        body = moved.json()
        (change,) = body["items"]
        assert change["model_id"] == "gpt-4o"
        assert change["kind"] == "changed"
        assert change["new_input_usd_per_million"] == change["old_input_usd_per_million"] * 1.5
        assert change["new_input_cop_per_million"] == change["new_input_usd_per_million"] * 4200
        assert change["old_output_cop_per_million"] == change["old_output_usd_per_million"] * 4200
        assert body["next_cursor"] != position
        rest, _ = await _all_after(client, body["next_cursor"])
        assert rest == []
        # The filters still apply, with and without a cursor.
        only = await client.get(CHANGES, params={"cursor": "", "model_id": "gpt-4o"})
        assert {i["model_id"] for i in only.json()["items"]} == {"gpt-4o"}
        assert [i["kind"] for i in only.json()["items"]] == ["changed"]
        kinds = await client.get(CHANGES, params={"kind": "added", "since": "2020-01-01"})
        assert kinds.json()["items"] == []
        newest_first = await client.get(CHANGES, params={"kind": "changed", "limit": 1})
        assert [i["model_id"] for i in newest_first.json()["items"]] == ["gpt-4o"]
    engine.dispose()


async def test_a_cursor_the_service_never_gave_is_a_400(sqlite_url: str) -> None:
    settings = settings_for(sqlite_url, "http://127.0.0.1:9/mcp")
    async with AsyncTestClient(create_app(settings)) as client:
        for bad in ("abc", "YzEuLTE", "x" * 64, "Zm9vLjE"):
            answer = await client.get(CHANGES, params={"cursor": bad})
            assert answer.status_code == 400, bad
            assert "cursor is not one this service gave" in answer.json()["detail"]
        too_long = await client.get(CHANGES, params={"cursor": "x" * 65})
        assert too_long.status_code == 400
