"""The Ollama Space picker (GET /local) against the target-state document's tables.

The document's "Modelos Disponibles" and "Estimación de Costos" figures are copied here (and in
catalog/local.toml's comments): the suggested tier comes from one rule of the memory a model
needs (catalog.suggested_tier), which must give every "Tier HF" the document prints.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from pricing_service.catalog import load_catalog, suggested_tier
from pricing_service.currency import COP
from pricing_service.domain import Hardware
from pricing_service.space import fits, local_space
from tests.support.recording import CATALOG_DIR

CATALOG = load_catalog(Path(CATALOG_DIR))
RATE = Decimal(4000)
SPACE = local_space(CATALOG, rate=RATE, currency={"code": "COP", "rate": RATE}, money=COP)
MODELS = {m["ollama_tag"]: m for m in SPACE["models"]}
TIERS = {t["id"]: t for t in SPACE["tiers"]}

# "Modelos Disponibles": tag -> (VRAM Requerida in GB, Tier HF as printed).
DOCUMENT_MODELS = {
    "phi3": (4, "CPU o T4"),
    "llama3.2:3b": (3, "CPU o T4"),
    "llama3.1:8b": (8, "T4"),
    "mistral:7b": (6, "T4"),
    "codellama:13b": (12, "T4"),
    "llama3.1:70b": (45, "A100"),
}
# What each printed Tier HF allows, by tier name ("CPU" is a CPU tier, "T4" a T4 tier...).
DOCUMENT_TIER_NAMES = {
    "CPU o T4": {"CPU Basic", "CPU Upgrade", "T4 Small", "T4 Medium"},
    "T4": {"T4 Small", "T4 Medium"},
    "A100": {"A100 Large"},
}
# "Estimación de Costos": scenario -> (total USD a month, low and high).
DOCUMENT_TOTALS = {"moderate": (151, 151), "low": (43, 43), "sleep": (15, 25)}


def _tier(tier_id: str, usd: str, *, vram: int | None = None, ram: int | None = None) -> Hardware:
    return Hardware(
        id=tier_id,
        name=tier_id,
        gpu="GPU" if vram is not None else None,
        vram_gb=None if vram is None else Decimal(vram),
        usd_per_hour=Decimal(usd),
        ram_gb=None if ram is None else Decimal(ram),
    )


# -- the rule -----------------------------------------------------------------------------------


def test_the_rule_is_the_cheapest_dedicated_tier_that_fits() -> None:
    shared = Hardware("shared", "Shared", "H200", Decimal(70), Decimal(0), shared=True)
    cpu = _tier("cpu", "0.03", ram=8)
    small, big = _tier("small", "0.6", vram=16, ram=16), _tier("big", "0.9", vram=16, ram=32)
    huge = _tier("huge", "8", vram=80)
    tiers = [shared, cpu, big, small, huge]
    assert suggested_tier(Decimal(4), tiers) is cpu  # half of 8 GB of RAM: fits
    assert suggested_tier(Decimal("4.5"), tiers) is small  # cheaper than big, declared later
    assert suggested_tier(Decimal(16), tiers) is small
    assert suggested_tier(Decimal(17), tiers) is huge
    assert suggested_tier(Decimal(81), tiers) is None  # the shared tier is never the answer
    assert suggested_tier(Decimal(1), [shared]) is None


def test_the_rule_never_suggests_a_cheaper_tier_for_more_memory() -> None:
    tiers = list(CATALOG.hardware.values())
    previous = Decimal(0)
    for tenths in range(1, 801):
        tier = suggested_tier(Decimal(tenths) / 10, tiers)
        assert tier is not None, tenths
        assert not tier.shared
        assert tier.usd_per_hour >= previous, tenths
        previous = tier.usd_per_hour


@pytest.mark.parametrize(("tag", "document"), sorted(DOCUMENT_MODELS.items()))
def test_the_suggested_tier_is_the_documents_tier_hf(tag: str, document: tuple[int, str]) -> None:
    vram_gb, tier_hf = document
    model = MODELS[tag]
    assert model["vram_gb"] == vram_gb
    assert model["document_tier"] == tier_hf
    assert model["suggested_by"] == "document"
    assert TIERS[model["suggested_tier"]]["name"] in DOCUMENT_TIER_NAMES[tier_hf]
    rule = suggested_tier(Decimal(vram_gb), CATALOG.hardware.values())
    assert rule is not None
    assert model["suggested_tier"] == rule.id


def test_models_the_document_does_not_list_follow_the_rule() -> None:
    unlisted = [m for tag, m in MODELS.items() if tag not in DOCUMENT_MODELS]
    assert {m["ollama_tag"] for m in unlisted} == {
        "qwen2.5:7b",
        "gemma2:9b",
        "codellama:7b",
        "smollm2:1.7b",
    }
    for model in unlisted:
        assert (model["suggested_by"], model["document_tier"]) == ("rule", None)
        rule = suggested_tier(Decimal(model["vram_gb"]), CATALOG.hardware.values())
        assert rule is not None
        assert model["suggested_tier"] == rule.id, model["ollama_tag"]
    # gemma2:9b needs what llama3.1:8b needs (8 GB): the same tier, T4 Small.
    assert MODELS["gemma2:9b"]["suggested_tier"] == MODELS["llama3.1:8b"]["suggested_tier"]


def test_one_memory_one_suggested_tier() -> None:
    by_memory: dict[Decimal, set[str]] = {}
    for model in CATALOG.local_models:
        by_memory.setdefault(model.vram_gb, set()).add(model.hardware)
    assert all(len(tiers) == 1 for tiers in by_memory.values()), by_memory


def test_zerogpu_takes_every_model_and_is_never_suggested() -> None:
    assert TIERS["zerogpu"]["shared"] is True
    for model in SPACE["models"]:
        assert "zerogpu" in model["fits"]
        assert model["suggested_tier"] != "zerogpu"
    for model in CATALOG.local_models:
        assert fits(model, CATALOG.hardware[model.hardware]), model.ollama_tag


# -- the data -----------------------------------------------------------------------------------


def test_each_local_model_is_listed_once_in_every_category() -> None:
    tag_of = {mid: m.ollama_tag for m in CATALOG.local_models for mid in m.ids}
    for category in CATALOG.categories:
        tags = [tag_of[mid] for mid in category.model_ids if mid in tag_of]
        assert len(tags) == len(set(tags)), (category.id, category.model_ids)
    local = next(c for c in CATALOG.categories if c.id == "local")
    assert [tag_of[mid] for mid in local.model_ids].count("phi3") == 1


def test_every_gpu_tier_gives_vram_and_ram_as_the_document_prints_them() -> None:
    # "Hardware HF Spaces": GPU (VRAM) and RAM per tier; ZeroGPU's table gives VRAM only.
    printed = {
        "cpu-basic": (None, 2),
        "cpu-upgrade": (None, 8),
        "t4-small": (16, 16),
        "t4-medium": (16, 32),
        "a10g-small": (24, 24),
        "a10g-large": (24, 72),
        "a100-large": (80, 142),
        "zerogpu": (70, None),
    }
    assert {t: (TIERS[t]["vram_gb"], TIERS[t]["ram_gb"]) for t in TIERS} == printed


@pytest.mark.parametrize(("scenario_id", "totals"), sorted(DOCUMENT_TOTALS.items()))
def test_scenario_totals_are_the_documents_in_usd_and_cop(
    scenario_id: str, totals: tuple[int, int]
) -> None:
    scenario = next(s for s in SPACE["scenarios"] if s["id"] == scenario_id)
    low, high = totals
    assert scenario["total_usd_per_month"] == {"min": low, "max": high}
    assert scenario["total_cop_per_month"] == {"min": low * RATE, "max": high * RATE}


def test_scenario_formulas_are_spanish() -> None:
    formulas = {s["id"]: s["space_formula"] for s in SPACE["scenarios"]}
    assert formulas == {
        "moderate": "$0.6 × 8 h × 30 días = $144",
        "low": "$0.6 × 2 h × 30 días = $36",
        "sleep": "$10–20 (estimación, bajo demanda)",
    }
