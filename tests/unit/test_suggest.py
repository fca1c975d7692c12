"""The curation assistant on the recorded benchmarks, its weights' validation, and the alias
suggestions from genai-prices (printed, never written)."""

from __future__ import annotations

import json
import shutil
from functools import cache
from pathlib import Path

import pytest

from pricing_service.catalog import load_catalog
from pricing_service.cli import main
from pricing_service.domain import ModelPrice, PriceStatus
from pricing_service.errors import CatalogError
from pricing_service.listings.pricepertoken_rows import normalize_listing
from pricing_service.suggest import MAX_SUGGESTED, rank, suggest

ROOT = Path(__file__).resolve().parents[2]
RECORDING = ROOT / "tests" / "fixtures" / "pricepertoken" / "2026-04-29"
CATALOG = load_catalog(ROOT / "catalog")


@cache
def recorded() -> tuple[ModelPrice, ...]:
    rows = json.loads((RECORDING / "get_all_models.json").read_text())
    details = json.loads((RECORDING / "get_model.json").read_text())
    return normalize_listing(rows, {d["slug"]: d for d in details}).prices


def category(category_id: str):  # type: ignore[no-untyped-def]
    found = CATALOG.category(category_id)
    assert found is not None
    return found


def test_coding_ranks_by_the_recorded_benchmarks() -> None:
    ranked = rank(category("coding"), recorded(), CATALOG)
    assert len(ranked) > MAX_SUGGESTED
    by_id = {p.model_id: p for p in recorded()}
    for entry in ranked:
        price = by_id[entry.model_id]
        assert price.price_status is not PriceStatus.UNKNOWN
        assert price.listed
        assert any(entry.figures[m] is not None for m in ("coding", "livecodebench", "aider"))
        assert 0 <= entry.score <= 1
    scores = [r.score for r in ranked]
    assert scores == sorted(scores, reverse=True)
    assert ranked[0].figures["coding"] is not None


def test_the_suggestion_beside_the_curated_list() -> None:
    result = suggest(category("fast"), recorded(), CATALOG)
    assert 1 <= len(result.ranked) <= MAX_SUGGESTED
    assert set(result.add).isdisjoint(result.kept)
    curated = set(category("fast").model_ids)
    assert set(result.kept) | set(result.drop) | set(result.unranked) == curated
    assert "cognitia_llm_zerogpu.phi3" in result.unranked
    # Specials never come up (no image, audio, embedding model).
    assert not any("image" in r.model_id or "embed" in r.model_id for r in result.ranked)


def write_catalog(tmp_path: Path, extra: str) -> Path:
    directory = tmp_path / "catalog"
    shutil.copytree(ROOT / "catalog", directory)
    path = directory / "categories.toml"
    path.write_text(path.read_text() + extra)
    return directory


@pytest.mark.parametrize(
    ("extra", "reason"),
    [
        ("\n[weights.nope]\ncoding = 1\n", "unknown category 'nope'"),
        ("\n[weights.local]\nvibes = 1\n", "unknown key 'vibes'"),
        ("\n[weights.local]\ncoding = 0\n", "must weigh more than 0"),
        ("\n[weights.local]\ncoding = 'a lot'\n", "coding"),
    ],
)
def test_weights_are_validated(tmp_path: Path, extra: str, reason: str) -> None:
    with pytest.raises(CatalogError, match=reason):
        load_catalog(write_catalog(tmp_path, extra))


def test_the_commands_print_and_write_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    directory = write_catalog(tmp_path, "")
    curated = directory / "categories.toml"
    text = curated.read_text().replace(
        '"x-ai/grok-3",\n]', '"x-ai/grok-3",\n    "o3-2025-04-16",\n    "grok-3-latest",\n]'
    )
    curated.write_text(text)
    before = {p.name: p.read_text() for p in directory.iterdir()}
    monkeypatch.setenv("PRICING_CATALOG_DIR", str(directory))
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'empty.sqlite'}")

    assert main(["catalog", "suggest", "--category", "coding"]) == 0
    out = capsys.readouterr().out
    assert "from bundled seed (2026-04-29)" in out
    assert "[coding] weights: coding 3" in out
    assert "suggested to add:" in out
    assert " 1. " in out
    assert "coding=" in out

    assert main(["catalog", "aliases", "--suggest"]) == 0
    out = capsys.readouterr().out
    # Ids nothing resolves today, that genai-prices maps to a model the upstream lists.
    assert '"o3-2025-04-16" = "o3"' in out
    assert '"grok-3-latest" = "grok-3"' in out
    assert {p.name: p.read_text() for p in directory.iterdir()} == before
