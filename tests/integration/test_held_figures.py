"""Held second-source prices where people look: /ready names the curated ones, the console's
Aceptar offers both figures and records which was applied, and so does the CLI (--figure).

The bundled seed is the listing: stored at startup, it is checked against genai-prices, and
gemini-1.5-flash (curated in "fast", 0.35/1.05 by google against 0.075/0.30) and deepseek-chat
(not curated) are held for the second-source reason. The catalog here is the repository's
without its decisions (catalog/decisions.toml decides both: with it nothing is held). SQLite
only: nothing here is database-specific beyond what test_second_source.py covers on both.
"""

from __future__ import annotations

import re
import shutil
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio
import pytest
from litestar.testing import AsyncTestClient

from pricing_service.app import create_app
from pricing_service.catalog import DECISIONS_FILE, load_catalog
from pricing_service.cli import main
from pricing_service.db import create_db_engine
from pricing_service.domain import HoldReason
from pricing_service.listings.pricepertoken import PricePerTokenSource
from pricing_service.lock import DatabaseRefreshLock
from pricing_service.refresh import Refresher
from pricing_service.repository import Repository
from pricing_service.upstream import PricePerTokenClient
from tests.support.recorded_service import ADMIN, NO_UPSTREAM, service_settings

if TYPE_CHECKING:
    from httpx import Response

    from pricing_service.domain import SnapshotInfo

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
CURATED = "gemini-1.5-flash"  # curated in "fast" as google/gemini-1.5-flash
NOT_CURATED = "deepseek-chat"


def csrf_of(html: str) -> str:
    return html.split('name="csrf" value="', 1)[1].split('"', 1)[0]


async def login(client: Any) -> str:
    form = await client.get("/admin/ingresar")
    answer = await client.post(
        "/admin/ingresar",
        data={"csrf": csrf_of(form.text), "token": ADMIN},
        follow_redirects=False,
    )
    assert answer.status_code == 303, answer.text
    page = await client.get("/admin")
    assert page.status_code == 200
    return csrf_of(page.text)


@pytest.fixture
def undecided_catalog(tmp_path: Path) -> Path:
    """The repository's catalog without the operators' decisions."""
    directory = tmp_path / "catalog"
    directory.mkdir()
    for source in (ROOT / "catalog").glob("*.toml"):
        if source.name != DECISIONS_FILE:
            shutil.copy(source, directory / source.name)
    return directory


def held_row(page: Response, model_id: str) -> str:
    match = re.search(rf'<tr data-held="{re.escape(model_id)}">(.*?)</tr>', page.text, re.S)
    assert match is not None, f"no held row for {model_id}"
    return match.group(1)


async def test_console_accepts_the_second_source_figure_and_ready_names_curated_holds(
    sqlite_url: str, undecided_catalog: Path
) -> None:
    settings = service_settings(sqlite_url, pricing_catalog_dir=undecided_catalog)
    async with AsyncTestClient(create_app(settings)) as client:
        ready = (await client.get("/ready")).json()
        curated = [d for d in ready["degraded"] if d.startswith(f"price held: {CURATED} ")]
        assert len(curated) == 1, ready["degraded"]
        assert "(second_source, run " in curated[0]
        assert "curated in fast" in curated[0]
        assert "served as unknown" in curated[0]
        assert f"--model {CURATED} --figure proposed|second_source" in curated[0]
        other = [d for d in ready["degraded"] if d.startswith(f"price held: {NOT_CURATED} ")]
        assert len(other) == 1
        assert "curated" not in other[0]
        # Curated second-source holds come first, before the count-limited list.
        held_lines = [d for d in ready["degraded"] if d.startswith("price held: ")]
        assert held_lines[0] == curated[0]

        headers = {"Authorization": f"Bearer {ADMIN}"}
        runs = (await client.get("/api/v1/pricing/runs", headers=headers)).json()
        [seeded] = [r for r in runs["items"] if r["status"] == "seeded"]
        one = await client.get(f"/api/v1/pricing/runs/{seeded['id']}", headers=headers)
        held = next(h for h in one.json()["held_prices"] if h["model_id"] == CURATED)
        assert held["reason"] == "second_source"
        second = (held["second_input_usd_per_million"], held["second_output_usd_per_million"])
        assert None not in second

        csrf = await login(client)
        page = await client.get("/admin")
        row = held_row(page, CURATED)
        # Both figures side by side, and one button for each.
        assert 'data-figure="proposed"' in row
        assert 'data-figure="second_source"' in row
        assert "Aceptar propuesto" in row
        assert "Aceptar segunda fuente" in row
        assert "genai-prices" in row

        bad = await client.post(
            "/admin/aceptar",
            data={"csrf": csrf, "run_id": str(seeded["id"]), "model_id": CURATED, "figure": "x"},
            follow_redirects=False,
        )
        assert bad.status_code == 400
        answer = await client.post(
            "/admin/aceptar",
            data={
                "csrf": csrf,
                "run_id": str(seeded["id"]),
                "model_id": CURATED,
                "figure": "second_source",
            },
            follow_redirects=False,
        )
        assert answer.status_code == 303, answer.text
        page = await client.get(answer.headers["location"])
        assert "con la cifra de la segunda fuente" in page.text
        assert f'data-held="{CURATED}"' not in page.text
        assert f'data-held="{NOT_CURATED}"' in page.text

        item = (await client.get("/api/v1/pricing/models", params={"ids": CURATED})).json()
        served = item["items"][0]
        assert (
            Decimal(str(served["input_usd_per_million"])),
            Decimal(str(served["output_usd_per_million"])),
        ) == (Decimal(second[0]), Decimal(second[1]))
        ready = (await client.get("/ready")).json()
        assert not any(d.startswith(f"price held: {CURATED} ") for d in ready["degraded"])

        # Estado lists who accepted which figure.
        match = re.search(rf'<tr data-accepted="{CURATED}">(.*?)</tr>', page.text, re.S)
        assert match is not None
        assert 'data-figure="second_source"' in match.group(1)
        assert "la cifra de la segunda fuente" in match.group(1)
        assert "consola /admin (token de admin)" in match.group(1)


async def _store_seed(database_url: str, catalog_dir: Path) -> int:
    engine = create_db_engine(database_url)
    repository = Repository(engine)

    async def publish(info: SnapshotInfo) -> None:
        return None

    refresher = Refresher(
        repository=repository,
        source=PricePerTokenSource(PricePerTokenClient(NO_UPSTREAM, call_timeout=1, run_timeout=1)),
        catalog=load_catalog(catalog_dir),
        lock=DatabaseRefreshLock(repository.engine, 30),
        publish=publish,
        interval_seconds=43200,
        grace_seconds=7 * 24 * 3600,
    )
    try:
        assert await refresher.ensure_seed() is not None
        return repository.recent_runs(1)[0].id
    finally:
        engine.dispose()


def test_cli_accepts_the_second_source_figure(
    sqlite_url: str,
    undecided_catalog: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    run_id = anyio.run(_store_seed, sqlite_url, undecided_catalog)
    monkeypatch.setenv("PRICING_CATALOG_DIR", str(undecided_catalog))
    monkeypatch.setenv("DATABASE_URL", sqlite_url)
    monkeypatch.delenv("REDIS_URL", raising=False)
    monkeypatch.setenv("PRICEPERTOKEN_MCP_URL", NO_UPSTREAM)

    with pytest.raises(SystemExit, match="--figure needs --accept"):
        main(["refresh", "--figure", "second_source"])
    with pytest.raises(SystemExit):
        main(["refresh", "--accept", str(run_id), "--figure", "theirs"])
    capsys.readouterr()

    code = main(
        ["refresh", "--accept", str(run_id), "--model", CURATED, "--figure", "second_source"]
    )
    out = capsys.readouterr().out
    assert code == 0, out
    assert f"accepted {CURATED} of run {run_id} at the second source figure" in out

    engine = create_db_engine(sqlite_url)
    try:
        repository = Repository(engine)
        [done] = repository.accepted_held_prices(5)
        assert done.model_id == CURATED
        assert done.resolved_at is not None
        assert done.reason is HoldReason.SECOND_SOURCE
        assert (done.accepted_figure, done.resolved_by) == ("second_source", "cli")
        found = repository.current_snapshot()
        assert found is not None
        price = next(p for p in found[1] if p.model_id == CURATED)
        assert (price.input_usd_per_million, price.output_usd_per_million) == (
            done.second_input_usd_per_million,
            done.second_output_usd_per_million,
        )
        # The other hold is untouched.
        assert any(h.model_id == NOT_CURATED for h in repository.open_held_prices())
    finally:
        engine.dispose()
