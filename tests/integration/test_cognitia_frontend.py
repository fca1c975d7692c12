"""The kit's selector module (integrations/cognitia/frontend/src/serviceSelector.ts) over the real
service's views: what Selector.svelte shows with it is the service's curated view as the service
renders it (categories in its order with its names, its lists, its COP texts at its rate), and
"Ver todos" is view=all.

The module runs in Node (its types stripped by esbuild, installed from the kit's own lockfile by
``npm ci``, bounded in time); CI has no copy of Cognitia. The Svelte components with the kit's
edits are checked against a running service by integrations/cognitia/check.sh.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import AsyncTestClient

from pricing_service.app import create_app
from tests.support.recorded_service import seed_snapshot, service_settings

FRONTEND = Path(__file__).resolve().parents[2] / "integrations" / "cognitia" / "frontend"
NOT_IN_SERVICE = ["no-such-model-anywhere", "cognitia_llm_zerogpu.smollm2"]


def _npm(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["npm", *args],
        cwd=FRONTEND,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
        env={**os.environ, "npm_config_audit": "false", "npm_config_fund": "false"},
    )


@pytest.fixture(scope="module")
def built() -> Path:
    """The module as Node runs it: ``npm ci`` (from the lockfile; offline when cached), then
    esbuild. Skips, with the reason, when Node or the npm registry is not available."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.skip("node/npm not on PATH: the kit's frontend module is not tested here")
    if not (FRONTEND / "node_modules" / "esbuild").is_dir():
        installed = _npm("ci", "--prefer-offline", "--no-audit", "--no-fund")
        if installed.returncode != 0:
            pytest.skip(f"npm ci failed (no registry or cache?): {installed.stderr[-400:]}")
    build = _npm("run", "--silent", "build")
    assert build.returncode == 0, build.stderr
    return FRONTEND / "build" / "serviceSelector.mjs"


async def _views(sqlite_url: str, rate: int) -> tuple[dict[str, Any], dict[str, Any]]:
    seed_snapshot(sqlite_url)
    app = create_app(service_settings(sqlite_url, pricing_usd_to_cop=Decimal(rate)))
    async with AsyncTestClient(app) as client:
        curated = (await client.get("/api/v1/pricing/models?view=curated")).json()
        everything = (await client.get("/api/v1/pricing/models?view=all")).json()
    return curated, everything


def _render(built: Path, tmp_path: Path, payload: dict[str, Any]) -> dict[str, Any]:
    source = tmp_path / "input.json"
    source.write_text(json.dumps(payload), encoding="utf-8")
    result = subprocess.run(
        ["node", str(FRONTEND / "test" / "render.mjs"), str(source)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    rendered: dict[str, Any] = json.loads(result.stdout)
    return rendered


def _resolve(view: dict[str, Any]) -> dict[str, dict[str, Any]]:
    by_alias: dict[str, dict[str, Any]] = {}
    for item in view["items"]:
        for spelling in [item["model_id"], *item["aliases"]]:
            by_alias.setdefault(spelling.lower(), item)
    return by_alias


async def test_selector_shows_the_services_views(
    built: Path, tmp_path: Path, sqlite_url: str
) -> None:
    curated, everything = await _views(sqlite_url, 4200)
    rows = [item["model_id"] for item in everything["items"]] + NOT_IN_SERVICE
    out = _render(built, tmp_path, {"curated": curated, "all": everything, "rows": rows})
    by_alias = _resolve(everything)

    def expected(view: dict[str, Any]) -> list[dict[str, Any]]:
        groups = []
        for category in sorted(view["categories"], key=lambda c: c["order"]):
            ids = [by_alias[m.lower()]["model_id"] for m in category["model_ids"]]
            groups.append({"id": category["id"], "name": category["name"], "ids": ids})
        return groups

    # The curated view: the service's categories, order, names and lists (1 to 9 each), no
    # specials, no row the service does not recommend.
    shown = [{k: g[k] for k in ("id", "name", "ids")} for g in out["curated"]]
    assert shown == expected(curated)
    assert all(1 <= len(g["ids"]) <= 9 for g in shown)
    assert [g["id"] for g in shown][:2] == ["coding", "creative"]
    assert {"vision", "documents"} <= {g["id"] for g in shown}  # empty in Cognitia's own list
    assert "gpt-4o" in next(g["ids"] for g in shown if g["id"] == "creative")
    assert "gpt-4o" not in next(g["ids"] for g in shown if g["id"] == "coding")
    # "Ver todos": view=all's categories (specials included), then every other row once.
    everything_shown = out["all"]
    assert [{k: g[k] for k in ("id", "name", "ids")} for g in everything_shown[:-1]] == expected(
        everything
    )
    assert "specials" in [g["id"] for g in everything_shown]
    others = everything_shown[-1]
    assert others["id"] == "others"
    categorized = {m for g in everything_shown[:-1] for m in g["ids"]}
    assert sorted(others["ids"]) == sorted(set(rows) - categorized)
    assert others["ids"][-2:] == NOT_IN_SERVICE  # ids the service lacks come last

    # Prices: the service's texts at its rate, never the frontend's arithmetic, never a 0 for
    # an unknown price.
    prices = out["prices"]
    gpt_4o = by_alias["gpt-4o"]
    assert gpt_4o["input_cop_per_10k_display"] == "105 COP"  # 2.50 USD x 4200 / 100
    assert prices["gpt-4o"]["text"] == "105 COP / 10K (entrada) · 420 COP / 10K (salida)"
    for item in everything["items"]:
        price = prices[item["model_id"]]
        assert price["status"] == item["price_status"]
        if item["price_status"] == "priced":
            assert price["text"] == (
                f"{item['input_cop_per_10k_display']} / 10K (entrada) · "
                f"{item['output_cop_per_10k_display']} / 10K (salida)"
            )
        else:
            assert price["text"] == item["price_label"]
        if item["price_status"] == "unknown":
            assert price["reason"]
            assert price["reason"] in price["tooltip"]
    assert prices["omni-moderation-latest"]["text"] == "Gratis"
    assert prices["cognitia_llm_zerogpu.phi3"]["text"] == "Local (sin costo API)"
    missing = prices["no-such-model-anywhere"]
    assert (missing["status"], missing["text"]) == ("unknown", "Sin precio conocido")
    assert "no gratis" in missing["reason"]
    assert not any("Sin precio aún" in p["text"] or p["text"] == "0" for p in prices.values())
    assert out["note"] == "Precios estimados en COP por 10K tokens. 1 USD = 4.200 COP."
    # Category filters (the pills) follow the service's membership.
    for category in everything["categories"]:
        members = {by_alias[m.lower()]["model_id"] for m in category["model_ids"]}
        assert set(out["in_category"][category["id"]]) == members


async def test_pins_come_first_and_rows_keep_cognitias_spelling(
    built: Path, tmp_path: Path, sqlite_url: str
) -> None:
    curated, everything = await _views(sqlite_url, 4000)
    rows = ["x-ai/grok-3", "grok-3", "claude-sonnet-4-20250514", "gpt-4o"]
    out = _render(
        built,
        tmp_path,
        {"curated": curated, "all": everything, "rows": rows, "pinned": ["gpt-4o"]},
    )
    assert out["curated"][0] == {
        "id": "favorites",
        "name": "Favoritos",
        "emoji": "⭐",
        "ids": ["gpt-4o"],
    }
    analysis = next(g for g in out["curated"] if g["id"] == "analysis")
    # Both spellings of grok-3 and the dated Claude id resolve to the service's items.
    assert set(analysis["ids"]) == {"x-ai/grok-3", "grok-3", "claude-sonnet-4-20250514"}
    assert out["prices"]["grok-3"] == out["prices"]["x-ai/grok-3"]
    assert out["prices"]["gpt-4o"]["text"] == "100 COP / 10K (entrada) · 400 COP / 10K (salida)"
