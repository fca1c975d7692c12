"""The COP rate from the TRM (PRICING_COP_RATE_SOURCE=trm) against a loopback stand-in of the
open-data endpoint: the rate, its source and date in every answer, a new rate a new ETag, a
15 % jump held until accepted, an unparsable answer held, and the source down for a day
keeping the last rate with its age in /ready. No test calls the real address."""

from __future__ import annotations

import json
import os
import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import anyio
import pytest
import sqlalchemy as sa
from litestar.testing import AsyncTestClient

from pricing_service.api.state import served
from pricing_service.app import create_app
from pricing_service.migrate import upgrade
from pricing_service.rate_store import RateStore
from tests.support.process import cli
from tests.support.recorded_service import ADMIN, seed_snapshot, service_settings
from tests.support.recording import CATALOG_DIR
from tests.support.trm_standin import TrmStandIn, trm_rows

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterator
    from pathlib import Path

    from litestar import Litestar

PRICING = "/api/v1/pricing"
WAIT_SECONDS = 15


def body(response: Any) -> Any:
    return json.loads(response.content, parse_float=Decimal)


@pytest.fixture
def stand_in() -> Iterator[TrmStandIn]:
    server = TrmStandIn()
    yield server
    server.stop()


@pytest.fixture
async def client(
    database_url: str, stand_in: TrmStandIn
) -> AsyncIterator[AsyncTestClient[Litestar]]:
    seed_snapshot(database_url)
    settings = service_settings(
        database_url,
        pricing_cop_rate_source="trm",
        pricing_trm_url=stand_in.url,
        pricing_trm_timeout_seconds=2,
        # The background loop fetches once at start; the tests fetch again themselves.
        pricing_trm_check_seconds=86400,
    )
    async with AsyncTestClient(create_app(settings)) as c:
        await _until_source(c, "trm")
        yield c


async def _until_source(client: AsyncTestClient[Litestar], source: str) -> None:
    with anyio.fail_after(WAIT_SECONDS):
        while True:
            ready = body(await client.get("/ready"))
            if ready.get("currency", {}).get("source") == source:
                return
            await anyio.sleep(0.05)


async def _console_first_page(client: AsyncTestClient[Litestar]) -> str:
    """Estado, after signing in with the admin token as the login form does."""
    form = await client.get("/admin/ingresar")
    csrf = re.search(r'name="csrf" value="([^"]+)"', form.text)
    assert csrf is not None
    signed = await client.post(
        "/admin/ingresar", data={"csrf": csrf.group(1), "token": ADMIN}, follow_redirects=True
    )
    assert signed.status_code == 200, signed.text
    assert "<h1>Estado</h1>" in signed.text
    return signed.text


def _store(client: AsyncTestClient[Litestar]) -> RateStore:
    """The rates table through the app's own engine (what `pricing-service rate` reads)."""
    return RateStore(served(client.app.state).pricing.repository.engine)


async def _fetch(client: AsyncTestClient[Litestar]) -> None:
    await served(client.app.state).rates.fetch()


async def _answers(client: AsyncTestClient[Litestar]) -> dict[str, Any]:
    """The currency of every answer, and the selector's ETag."""
    models = await client.get(f"{PRICING}/models")
    found = {
        "models": body(models)["currency"],
        "prices": body(await client.get(f"{PRICING}/prices"))["currency"],
        "local": body(await client.get(f"{PRICING}/local"))["currency"],
        "estimate": body(
            await client.get(
                f"{PRICING}/estimate",
                params={"model_id": "gpt-4o", "input_tokens": 1000, "output_tokens": 0},
            )
        ),
        "usage": body(
            await client.post(
                f"{PRICING}/estimate",
                json={
                    "model_id": "gpt-4o",
                    "usage": {"prompt_tokens": 1000, "completion_tokens": 0},
                },
            )
        ),
        "etag": models.headers["etag"],
    }
    return found


async def test_the_trm_is_in_every_answer_and_a_new_rate_is_a_new_etag(
    client: AsyncTestClient[Litestar], stand_in: TrmStandIn
) -> None:
    assert stand_in.queries[0] == {"$order": ["vigenciadesde DESC"], "$limit": ["1"]}
    first = await _answers(client)
    for name in ("models", "prices", "local"):
        assert first[name]["rate"] == Decimal("3912.45"), name
        assert (first[name]["source"], first[name]["valid_from"]) == ("trm", "2026-12-02"), name
    for name in ("estimate", "usage"):
        assert first[name]["currency"]["rate"] == Decimal("3912.45")
        assert first[name]["currency"]["valid_to"] == "2026-12-02"
    # 1000 tokens x 2.5 USD per million = 0.0025 USD x 3912.45 = 9.781125 COP
    assert first["estimate"]["total_cop"] == Decimal("9.781125")
    assert first["usage"]["total_cop"] == Decimal("9.781125")
    # The next day's TRM, within 10 %: accepted, served, new bytes and a new ETag.
    stand_in.body = trm_rows("3950", "2026-12-03", "2026-12-03")
    await _fetch(client)
    second = await _answers(client)
    assert second["models"]["rate"] == 3950
    assert second["models"]["valid_from"] == "2026-12-03"
    assert second["etag"] != first["etag"]
    assert second["estimate"]["total_cop"] == Decimal("9.875")  # 0.0025 x 3950
    again = await client.get(f"{PRICING}/models", headers={"if-none-match": second["etag"]})
    assert again.status_code == 304
    ready = body(await client.get("/ready"))
    assert ready["degraded"] == []
    assert (ready["currency"]["mode"], ready["currency"]["held"]) == ("trm", [])
    # Every rate used is stored with its dates.
    stored = _store(client).history("trm")
    assert [(r.rate, str(r.valid_from), r.status.value) for r in stored] == [
        (Decimal(3950), "2026-12-03", "accepted"),
        (Decimal("3912.45"), "2026-12-02", "accepted"),
    ]


async def test_a_fifteen_percent_jump_is_held_until_accepted(
    client: AsyncTestClient[Litestar], stand_in: TrmStandIn
) -> None:
    before = await client.get(f"{PRICING}/models")
    stand_in.body = trm_rows("4499.32", "2026-12-03", "2026-12-03")  # +15 %
    await _fetch(client)
    ready = body(await client.get("/ready"))
    assert ready["currency"]["rate"] == Decimal("3912.45")  # the last accepted one is kept
    (held,) = ready["currency"]["held"]
    assert held["rate"] == Decimal("4499.32")
    assert any("held" in line and "4499.32" in line for line in ready["degraded"])
    same = await client.get(f"{PRICING}/models")
    assert same.headers["etag"] == before.headers["etag"]
    # Fetched again, it stays held (one row, not a second one).
    await _fetch(client)
    assert len(body(await client.get("/ready"))["currency"]["held"]) == 1
    # The console's first page shows the rate, its date and the hold, in Spanish.
    page = await _console_first_page(client)
    assert "3.912,45 COP por USD: TRM del día" in page
    assert "vigente el 02/12/2026" in page
    assert "TRM retenida" in page
    assert "TRM de 4.499,32 COP por USD (vigente desde 03/12/2026) retenida" in page
    # An operator accepts it (what `pricing-service rate --accept` does), every worker follows.
    _store(client).accept(held["id"], by="test", now=datetime.now(UTC))
    await served(client.app.state).rates.reload()
    after = await client.get(f"{PRICING}/models")
    assert body(after)["currency"]["rate"] == Decimal("4499.32")
    assert after.headers["etag"] != before.headers["etag"]
    assert body(await client.get("/ready"))["currency"]["held"] == []


async def test_an_unparsable_answer_is_held_and_the_rate_kept(
    client: AsyncTestClient[Litestar], stand_in: TrmStandIn
) -> None:
    stand_in.body = b'[{"valor": "n/d", "vigenciadesde": "2026-12-03"}]'
    await _fetch(client)
    ready = body(await client.get("/ready"))
    assert ready["currency"]["rate"] == Decimal("3912.45")
    assert any("could not be read" in line for line in ready["degraded"])
    stand_in.body = b"<html>mantenimiento</html>"
    await _fetch(client)
    assert body(await client.get(f"{PRICING}/models"))["currency"]["rate"] == Decimal("3912.45")
    # A 500 is the source unreachable, not a rate: the same rate is kept.
    stand_in.status = 500
    await _fetch(client)
    ready = body(await client.get("/ready"))
    assert any("unreachable" in line and "HTTP 500" in line for line in ready["degraded"])
    assert ready["currency"]["rate"] == Decimal("3912.45")


async def test_the_source_down_for_a_day_keeps_the_rate_with_its_age(
    client: AsyncTestClient[Litestar], stand_in: TrmStandIn
) -> None:
    # The stored rate was last confirmed a day ago (data moved, not the clock).
    with _store(client).engine.begin() as conn:
        conn.execute(
            sa.text("UPDATE cop_rate SET checked_at = :when"),
            {"when": datetime.now(UTC) - timedelta(days=1, minutes=5)},
        )
    stand_in.stop()
    await _fetch(client)
    ready = body(await client.get("/ready"))
    assert ready["ready"] is True
    assert ready["currency"]["rate"] == Decimal("3912.45")
    assert ready["currency"]["age_seconds"] >= 86400
    (line,) = [line for line in ready["degraded"] if "unreachable" in line]
    assert "keeping the rate 3912.45" in line
    models = body(await client.get(f"{PRICING}/models"))
    assert (models["currency"]["rate"], models["currency"]["source"]) == (
        Decimal("3912.45"),
        "trm",
    )


async def test_fixed_mode_says_so_and_never_calls_out(database_url: str) -> None:
    seed_snapshot(database_url)
    settings = service_settings(database_url, pricing_usd_to_cop=Decimal("4100"))
    async with AsyncTestClient(create_app(settings)) as c:
        currency = body(await c.get(f"{PRICING}/models"))["currency"]
        assert (currency["rate"], currency["source"], currency["valid_from"]) == (
            4100,
            "PRICING_USD_TO_COP",
            None,
        )
        ready = body(await c.get("/ready"))
        assert ready["currency"]["mode"] == "fixed"
        assert not any("TRM" in line for line in ready["degraded"])


def test_the_cli_lists_fetches_and_accepts_rates(tmp_path: Path, stand_in: TrmStandIn) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PRICING_", "DATABASE_"))}
    env.pop("REDIS_URL", None)
    env.update(
        DATABASE_URL=f"sqlite:///{tmp_path / 'pricing.db'}",
        PRICING_CATALOG_DIR=str(CATALOG_DIR),
        PRICING_COP_RATE_SOURCE="trm",
        PRICING_TRM_URL=stand_in.url,
        PRICING_TRM_TIMEOUT_SECONDS="2",
    )
    upgrade(env["DATABASE_URL"])  # in-process: test_cli.py runs the migrate command
    fetched = cli(["rate", "--fetch"], env, tmp_path)
    assert fetched.returncode == 0, fetched.stderr
    assert "served: 3912.45 (trm, valid 2026-12-02 to 2026-12-02" in fetched.stdout
    stand_in.body = trm_rows("4499.32", "2026-12-03")
    held = cli(["rate", "--fetch"], env, tmp_path)
    assert "served: 3912.45" in held.stdout
    assert "held: rate 2: 4499.32 valid from 2026-12-03" in held.stdout
    assert cli(["rate", "--accept", "1"], env, tmp_path).returncode == 2  # not held
    accepted = cli(["rate", "--accept", "2"], env, tmp_path)
    assert accepted.returncode == 0, accepted.stderr
    assert cli(["rate"], env, tmp_path).stdout.startswith("mode: trm\nserved: 4499.32")
    stand_in.stop()
    down = cli(["rate", "--fetch"], env, tmp_path)
    assert down.returncode == 1
    assert "fetch failed" in down.stderr


async def test_a_dataset_left_at_an_old_rate_is_rebuilt_on_the_next_reread(
    client: AsyncTestClient[Litestar],
) -> None:
    # A snapshot whose build began before the rate changed and ended after it (forced here):
    # the keeper's next re-read of the rate makes the service rebuild it.
    tracker = served(client.app.state).pricing.tracker
    snapshot_id = max(tracker._datasets)
    info, prices = tracker._loaded[snapshot_id]
    serving, tracker.rate = tracker.rate, Decimal(4000)
    stale = tracker._build(info, prices)
    tracker.rate = serving
    tracker._datasets[snapshot_id] = stale
    assert body(await client.get(f"{PRICING}/models"))["currency"]["rate"] == 4000
    await served(client.app.state).rates.reload()
    assert body(await client.get(f"{PRICING}/models"))["currency"]["rate"] == Decimal("3912.45")
