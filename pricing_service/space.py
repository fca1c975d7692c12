"""The Ollama Space picker (GET /local): models, hardware tiers and monthly hosting scenarios.

Pure: catalog data and the exchange rate in, plain objects out (``Decimal`` money). Every
figure is computed from ``catalog/local.toml``: a scenario's Space cost is the tier's hourly
price x hours a day x days (or the catalog's range, for sleep mode), plus its fixed monthly
components; local amounts follow ``pricing_service.currency``'s rule and display as its
``Currency`` (``money``) shows them.
"""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING, Any

from pricing_service.catalog import CPU_MEMORY_FACTOR, parameters_billions, suggested_tier
from pricing_service.catalog import fits as fits_memory
from pricing_service.currency import cop_amount, tidy_usd

if TYPE_CHECKING:
    from pricing_service.currency import Currency
    from pricing_service.domain import Catalog, Hardware, HostingScenario, LocalModel

__all__ = ["CPU_MEMORY_FACTOR", "fits", "local_space", "suggested_tier"]


def fits(model: LocalModel, tier: Hardware) -> bool:
    """Whether ``model`` runs on ``tier``: in its VRAM (GPU tiers) or in half its RAM (CPU)."""
    return fits_memory(model.vram_gb, tier)


def _tier_json(tier: Hardware, rate: Decimal) -> dict[str, Any]:
    return {
        "id": tier.id,
        "name": tier.name,
        "gpu": tier.gpu,
        "vram_gb": tier.vram_gb,
        "ram_gb": tier.ram_gb,
        "usd_per_hour": tidy_usd(tier.usd_per_hour),
        "cop_per_hour": cop_amount(tier.usd_per_hour, rate),
        "notes": tier.notes,
        "shared": tier.shared,
    }


def _model_json(model: LocalModel, catalog: Catalog) -> dict[str, Any]:
    return {
        "ollama_tag": model.ollama_tag,
        "display_name": model.display_name,
        "ids": list(model.ids),
        "parameters": model.parameters,
        "parameters_billions": parameters_billions(model.parameters),
        "vram_gb": model.vram_gb,
        "context_window": model.context_window,
        "capabilities": list(model.capabilities),
        "fits": [t.id for t in catalog.hardware.values() if fits(model, t)],
        # catalog.py resolved it with suggested_tier and checked it against the document's.
        "suggested_tier": model.hardware,
        "suggested_by": "rule" if model.document_tier is None else "document",
        "document_tier": model.document_tier,
        "price_status": "local",
    }


def _range(low: Decimal, high: Decimal) -> dict[str, Decimal]:
    return {"min": tidy_usd(low), "max": tidy_usd(high)}


def _cop_range(low: Decimal, high: Decimal, rate: Decimal) -> dict[str, Decimal]:
    return {"min": cop_amount(low, rate), "max": cop_amount(high, rate)}


def _scenario_json(
    scenario: HostingScenario, catalog: Catalog, rate: Decimal, money: Currency
) -> dict[str, Any]:
    tier = catalog.hardware[scenario.tier]
    if scenario.hours_per_day is not None:
        space = tier.usd_per_hour * scenario.hours_per_day * scenario.days
        low = high = space
        formula = (
            f"${tidy_usd(tier.usd_per_hour)} × {tidy_usd(scenario.hours_per_day)} h × "
            f"{scenario.days} días = ${tidy_usd(space)}"
        )
    else:
        # catalog.py guarantees the range when there are no hours.
        assert scenario.space_usd_per_month_min is not None
        assert scenario.space_usd_per_month_max is not None
        low, high = scenario.space_usd_per_month_min, scenario.space_usd_per_month_max
        formula = f"${tidy_usd(low)}–{tidy_usd(high)} (estimación, bajo demanda)"
    fixed = [catalog.fixed_costs[cost_id] for cost_id in scenario.fixed]
    fixed_total = sum((c.usd_per_month for c in fixed), Decimal(0))
    total_low, total_high = low + fixed_total, high + fixed_total
    low_cop, high_cop = cop_amount(total_low, rate), cop_amount(total_high, rate)
    display = money.format(low_cop)
    if total_low != total_high:
        low_shown = money.format(low_cop).removesuffix(f" {money.code}")
        display = f"{low_shown}–{money.format(high_cop)}"
    return {
        "id": scenario.id,
        "name": scenario.name,
        "tier": tier.id,
        "tier_name": tier.name,
        "hours_per_day": None
        if scenario.hours_per_day is None
        else tidy_usd(scenario.hours_per_day),
        "days": scenario.days,
        "space_formula": formula,
        "space_usd_per_month": _range(low, high),
        "space_cop_per_month": _cop_range(low, high, rate),
        "fixed": [
            {
                "id": c.id,
                "name": c.name,
                "plan": c.plan,
                "usd_per_month": tidy_usd(c.usd_per_month),
                "cop_per_month": cop_amount(c.usd_per_month, rate),
            }
            for c in fixed
        ],
        "total_usd_per_month": _range(total_low, total_high),
        "total_cop_per_month": _cop_range(total_low, total_high, rate),
        "total_cop_per_month_display": display,
        "note": scenario.note,
    }


def local_space(
    catalog: Catalog, *, rate: Decimal, currency: dict[str, Any], money: Currency
) -> dict[str, Any]:
    """The body of GET /local: one entry per Ollama model, every tier, every scenario;
    ``currency`` is the answers' own (``SelectorDataset.currency_for``), ``money`` its row."""
    return {
        "models": [_model_json(m, catalog) for m in catalog.local_models],
        "tiers": [_tier_json(t, rate) for t in catalog.hardware.values()],
        "scenarios": [_scenario_json(s, catalog, rate, money) for s in catalog.scenarios],
        "currency": currency,
    }
