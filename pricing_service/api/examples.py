"""The examples of the OpenAPI document: one per documented answer.

The selector's pre-rendered answers (`/models`, `/prices`, `/local`, GET `/estimate`) were
rendered from the bundled seed snapshot and trimmed to a few entries, and their routes name them
in `responses=`; the operator ones are written by hand. Each of these is checked against its
documented type in `tests/unit/test_api_schemas.py`. GET /changes and POST /estimate's are
computed by the code that builds those answers (``feed_body``, ``estimate_body``) from a few
figures, so they cannot drift from it. Routes whose 200 is derived from their return type get
theirs from ``SUCCESS_EXAMPLES`` (api/document.py).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from litestar.openapi.spec import Example

from pricing_service.currency import COP
from pricing_service.domain import ChangeKind, PriceChange, PriceKind
from pricing_service.feed import feed_body
from pricing_service.replies import render
from pricing_service.usage import TokenUsage, UsageFormat, estimate_body

# -- the selector's answers (rendered from the seed, trimmed) -------------------------------

_ROUNDING = COP.rounding_rule  # as every answer of the default deployment says it
_CURRENCY: dict[str, Any] = {
    "code": "COP",
    "rate": 4000,
    "source": "default",
    "valid_from": None,
    "valid_to": None,
    "rounding": _ROUNDING,
}
_SNAPSHOT = {"id": 1, "fetched_at": "2026-04-29T08:14:00Z", "stale": True, "source": "seed"}

_MODELS: dict[str, Any] = {
    "items": [
        {
            "model_id": "gpt-5-codex",
            "provider": "openai",
            "display_name": "GPT-5 Codex",
            "input_usd_per_million": 1.25,
            "output_usd_per_million": 10,
            "context_window": 400000,
            "updated_at": "2026-04-29T08:14:00Z",
            "source": "seed",
            "slug": "openai-gpt-5-codex",
            "categories": ["coding"],
            "special": None,
            "local": False,
            "price_status": "priced",
            "price_basis": "seed",
            "price_label": "~25 COP por mensaje",
            "cache_read_usd_per_million": 0.125,
            "cache_write_usd_per_million": None,
            "capabilities": ["prompt_caching", "reasoning", "tool_calls", "vision"],
            "input_modalities": ["image", "text"],
            "output_modalities": ["text"],
            "input_cop_per_million": 5000,
            "output_cop_per_million": 40000,
            "input_cop_per_10k": 50,
            "output_cop_per_10k": 400,
            "cache_read_cop_per_million": 500,
            "cache_write_cop_per_million": None,
            "cache_read_cop_per_10k": 5,
            "cache_write_cop_per_10k": None,
            "typical_message_cop": 25,
            "input_cop_per_10k_display": "50 COP",
            "output_cop_per_10k_display": "400 COP",
            "typical_message_cop_display": "25 COP",
            "local_model": None,
            "listed": True,
            "delisted_at": None,
            "held": False,
            "price_status_reason": None,
            "aliases": ["gpt-5-codex", "openai/gpt-5-codex"],
            "source_url": None,
            "price_note": None,
            "pricing_source": "openai",
            "pricing_source_is_author": True,
            "benchmarks": {
                "aider": None,
                "coding": 38.9,
                "gpqa": 83.7,
                "intelligence": 44.6,
                "livecodebench": 84.0,
                "math": 98.7,
                "math_hard": None,
                "mmlu_pro": 86.5,
            },
            "tokens_per_second": 200.217,
            "time_to_first_token": 9.111,
            "description": "GPT-5-Codex is a specialized version of GPT-5 optimized for "
            "software engineering and coding workflows. It is designed...",
            "web_search_usd_per_thousand": 10,
            "web_search_cop_per_thousand": 40000,
            "request_usd_per_thousand": None,
            "request_cop_per_thousand": None,
            "call_prices_source": "genai-prices 0.2.3 openai/gpt-5",
            "long_context_tiers": None,
        },
        {
            "model_id": "cognitia_llm_zerogpu.mistral-7b",
            "provider": "ollama",
            "display_name": "Mistral 7B",
            "input_usd_per_million": 0,
            "output_usd_per_million": 0,
            "context_window": 32768,
            "updated_at": "2026-04-29T08:14:00Z",
            "source": "local",
            "slug": None,
            "categories": ["coding", "local"],
            "special": None,
            "local": True,
            "price_status": "local",
            "price_basis": "catalog",
            "price_label": "Local (sin costo API)",
            "cache_read_usd_per_million": None,
            "cache_write_usd_per_million": None,
            "capabilities": ["tool_calls"],
            "input_modalities": [],
            "output_modalities": [],
            "input_cop_per_million": 0,
            "output_cop_per_million": 0,
            "input_cop_per_10k": 0,
            "output_cop_per_10k": 0,
            "cache_read_cop_per_million": None,
            "cache_write_cop_per_million": None,
            "cache_read_cop_per_10k": None,
            "cache_write_cop_per_10k": None,
            "typical_message_cop": 0,
            "input_cop_per_10k_display": "0 COP",
            "output_cop_per_10k_display": "0 COP",
            "typical_message_cop_display": "0 COP",
            "local_model": {
                "ollama_tag": "mistral:7b",
                "parameters": "7B",
                "vram_gb": 6,
                "hardware_id": "t4-small",
                "hardware_name": "T4 Small",
                "gpu": "T4",
                "hardware_usd_per_hour": 0.6,
                "hardware_cop_per_hour": 2400,
            },
            "listed": True,
            "delisted_at": None,
            "held": False,
            "price_status_reason": None,
            "aliases": ["cognitia_llm_zerogpu.mistral-7b"],
            "source_url": None,
            "price_note": None,
            "pricing_source": "local",
            "pricing_source_is_author": True,
            "benchmarks": None,
            "tokens_per_second": None,
            "time_to_first_token": None,
            "description": None,
            "web_search_usd_per_thousand": None,
            "web_search_cop_per_thousand": None,
            "request_usd_per_thousand": None,
            "request_cop_per_thousand": None,
            "call_prices_source": None,
            "long_context_tiers": None,
        },
    ],
    "updated_at": "2026-04-29T08:14:00Z",
    "view": "curated",
    "category": None,
    "local": None,
    "categories": [
        {
            "id": "coding",
            "name": "Coding & Desarrollo",
            "emoji": "💻",
            "description": "Generación de código, debugging, code reviews",
            "order": 1,
            "model_ids": ["gpt-5-codex", "cognitia_llm_zerogpu.mistral-7b"],
        }
    ],
    "currency": _CURRENCY,
    "snapshot": _SNAPSHOT,
}

_PRICES: dict[str, Any] = {
    "prices": {
        "gpt-5-codex": {
            "input_usd_per_million": 1.25,
            "output_usd_per_million": 10,
            "input_cop_per_10k": 50,
            "output_cop_per_10k": 400,
            "cache_read_usd_per_million": 0.125,
            "cache_write_usd_per_million": None,
            "cache_read_cop_per_10k": 5,
            "cache_write_cop_per_10k": None,
            "price_status": "priced",
            "pricing_source": "openai",
            "pricing_source_is_author": True,
            "web_search_usd_per_thousand": 10,
            "web_search_cop_per_thousand": 40000,
            "request_usd_per_thousand": None,
            "request_cop_per_thousand": None,
            "long_context_tiers": None,
            "label": "~25 COP por mensaje",
        },
        "openai/gpt-5-codex": {
            "input_usd_per_million": 1.25,
            "output_usd_per_million": 10,
            "input_cop_per_10k": 50,
            "output_cop_per_10k": 400,
            "cache_read_usd_per_million": 0.125,
            "cache_write_usd_per_million": None,
            "cache_read_cop_per_10k": 5,
            "cache_write_cop_per_10k": None,
            "price_status": "priced",
            "pricing_source": "openai",
            "pricing_source_is_author": True,
            "web_search_usd_per_thousand": 10,
            "web_search_cop_per_thousand": 40000,
            "request_usd_per_thousand": None,
            "request_cop_per_thousand": None,
            "long_context_tiers": None,
            "label": "~25 COP por mensaje",
        },
    },
    "currency": _CURRENCY,
    "snapshot": _SNAPSHOT,
}

_LOCAL: dict[str, Any] = {
    "models": [
        {
            "ollama_tag": "phi3",
            "display_name": "Phi-3",
            "ids": ["cognitia_llm_zerogpu.phi3", "phi3:latest"],
            "parameters": "3.8B",
            "parameters_billions": 3.8,
            "vram_gb": 4,
            "context_window": 4096,
            "capabilities": [],
            "fits": [
                "zerogpu",
                "cpu-upgrade",
                "t4-small",
                "t4-medium",
                "a10g-small",
                "a10g-large",
                "a100-large",
            ],
            "suggested_tier": "cpu-upgrade",
            "suggested_by": "document",
            "document_tier": "CPU o T4",
            "price_status": "local",
        }
    ],
    "tiers": [
        {
            "id": "zerogpu",
            "name": "ZeroGPU",
            "gpu": "H200 (compartida)",
            "vram_gb": 70,
            "ram_gb": None,
            "usd_per_hour": 0,
            "cop_per_hour": 0,
            "notes": "Gratis con cuota diaria base y prioridad normal en la cola; el plan PRO "
            "($9/mes) da 8x más cuota y prioridad alta.",
            "shared": True,
        },
        {
            "id": "cpu-basic",
            "name": "CPU Basic",
            "gpu": None,
            "vram_gb": None,
            "ram_gb": 2,
            "usd_per_hour": 0,
            "cop_per_hour": 0,
            "notes": "Gratis; con 2 GB de RAM solo caben modelos muy pequeños.",
            "shared": False,
        },
    ],
    "scenarios": [
        {
            "id": "moderate",
            "name": "Uso moderado (8 h/día)",
            "tier": "t4-small",
            "tier_name": "T4 Small",
            "hours_per_day": 8,
            "days": 30,
            "space_formula": "$0.6 × 8 h × 30 días = $144",
            "space_usd_per_month": {"min": 144, "max": 144},
            "space_cop_per_month": {"min": 576000, "max": 576000},
            "fixed": [
                {
                    "id": "railway-cognitia",
                    "name": "Railway Cognitia",
                    "plan": "Hobby",
                    "usd_per_month": 5,
                    "cop_per_month": 20000,
                },
                {
                    "id": "railway-postgres",
                    "name": "Railway PostgreSQL",
                    "plan": "Addon",
                    "usd_per_month": 2,
                    "cop_per_month": 8000,
                },
            ],
            "total_usd_per_month": {"min": 151, "max": 151},
            "total_cop_per_month": {"min": 604000, "max": 604000},
            "total_cop_per_month_display": "604.000 COP",
            "note": None,
        }
    ],
    "currency": _CURRENCY,
}

_ESTIMATE: dict[str, Any] = {
    "model_id": "gpt-5-codex",
    "display_name": "GPT-5 Codex",
    "provider": "openai",
    "input_tokens": 1200,
    "output_tokens": 400,
    "price_status": "priced",
    "price_basis": "seed",
    "input_usd_per_million": 1.25,
    "output_usd_per_million": 10,
    "input_cop_per_million": 5000,
    "output_cop_per_million": 40000,
    "input_usd": 0.0015,
    "output_usd": 0.004,
    "total_usd": 0.0055,
    "input_cop": 6,
    "output_cop": 16,
    "total_cop": 22,
    "total_cop_display": "22 COP",
    "price_note": None,
    "pricing_source": "openai",
    "pricing_source_is_author": True,
    "updated_at": "2026-04-29T08:14:00Z",
    "source": "seed",
    "source_url": None,
    "currency": _CURRENCY,
    "snapshot": _SNAPSHOT,
    "long_context": None,
}

MODELS_EXAMPLE = Example(summary="The curated view, trimmed to two models", value=_MODELS)
PRICES_EXAMPLE = Example(summary="Three spellings of one model", value=_PRICES)
LOCAL_EXAMPLE = Example(summary="One model, two tiers, one scenario", value=_LOCAL)
ESTIMATE_EXAMPLE = Example(summary="1,200 input and 400 output tokens", value=_ESTIMATE)

# -- operators' answers ---------------------------------------------------------------------

_RUN: dict[str, Any] = {
    "id": 42,
    "trigger": "cron",
    "status": "succeeded",
    "started_at": "2026-11-26T00:00:03.512000+00:00",
    "finished_at": "2026-11-26T00:01:10.204000+00:00",
    "duration_ms": 66692,
    "rows_seen": 533,
    "priced": 520,
    "unknown": 13,
    "changes": 4,
    "error": None,
    "upstream_latency_ms": 61870,
    "snapshot_id": 40,
    "rows_rejected": 0,
    "held_reason": None,
    "accepted_at": None,
    "accepted_by": None,
    "held_prices": [
        {
            "model_id": "gemini-1.5-flash",
            "run_id": 42,
            "reason": "second_source",
            "detail": "input 0.35 USD per million from google, the author; genai-prices 0.2.3 "
            "google/gemini-1.5-flash says 0.075, more than 3x apart",
            "proposed_input_usd_per_million": "0.35",
            "proposed_output_usd_per_million": "1.05",
            "accepted_input_usd_per_million": "0.075",
            "accepted_output_usd_per_million": "0.3",
            "held_at": "2026-11-26T00:01:10.204000+00:00",
            "second_input_usd_per_million": "0.075",
            "second_output_usd_per_million": "0.3",
            "second_source": "genai-prices 0.2.3 google/gemini-1.5-flash",
            "accepted_figure": None,
            "resolution": None,
            "resolved_at": None,
            "resolved_by": None,
        }
    ],
    "cross_source": {
        "second_source": "genai-prices 0.2.3",
        "agree": 212,
        "disagree": 9,
        "uncovered": 299,
    },
}
_FAILED_RUN = {
    **_RUN,
    "id": 43,
    "status": "failed",
    "priced": None,
    "unknown": None,
    "changes": None,
    "rows_seen": None,
    "snapshot_id": None,
    "rows_rejected": None,
    "error": "UpstreamUnavailable: get_all_models(limit=5000): HTTP 503 after 4 attempts",
    "held_prices": [],
    "cross_source": None,
}

HEALTH_EXAMPLE = Example(summary="The process answers", value={"status": "ok"})
READY_EXAMPLE = Example(
    summary="Ready, serving live prices",
    value={
        "ready": True,
        "degraded": [],
        "currency": {
            "code": "COP",
            "rate": 3912.45,
            "source": "trm",
            "valid_from": "2026-11-26",
            "valid_to": "2026-11-26",
            "rounding": _ROUNDING,
            "mode": "trm",
            "rate_id": 12,
            "checked_at": "2026-11-26T00:00:02.118000+00:00",
            "age_seconds": 3600,
            "held": [],
        },
        "snapshot": {
            "id": 40,
            "source": "pricepertoken",
            "fetched_at": "2026-11-26T00:01:10.204000+00:00",
            "age_seconds": 3600,
            "stale": False,
        },
        "tier": "memory",
    },
)
NOT_READY_EXAMPLE = Example(
    summary="Nothing to serve",
    value={
        "ready": False,
        "reason": "database not migrated: run `pricing-service migrate`",
        "degraded": [],
    },
)
RUNS_EXAMPLE = Example(summary="The newest run", value={"items": [_RUN]})
_RUN_WITH_DISAGREEMENTS: dict[str, Any] = {
    **_RUN,
    "cross_source": {
        **_RUN["cross_source"],
        "disagreements": [
            {
                "model_id": "gemini-1.5-flash",
                "provider": "google",
                "pricing_source": "google",
                "pricing_source_is_author": True,
                "input_usd_per_million": "0.35",
                "output_usd_per_million": "1.05",
                "second_input_usd_per_million": "0.075",
                "second_output_usd_per_million": "0.3",
                "second_source": "genai-prices 0.2.3 google/gemini-1.5-flash",
                "factor": "4.666666666666666666666666667",
                "held": True,
            }
        ],
    },
}
RUN_EXAMPLE = Example(
    summary="A run with a held price and its second-source comparison",
    value=_RUN_WITH_DISAGREEMENTS,
)
REFRESH_EXAMPLES = [
    Example(summary="The run succeeded", value={"run": _RUN_WITH_DISAGREEMENTS, "started": True}),
    Example(
        summary="With model_ids: each one's price status after the run",
        value={
            "run": _RUN_WITH_DISAGREEMENTS,
            "started": True,
            "models": {"gpt-4.1-mini": "priced", "mystery-model": "not_in_catalog"},
        },
    ),
    Example(
        summary="accept_run_id: the held prices applied",
        value={"accepted": ["gemini-1.5-flash"], "run": _RUN, "snapshot_id": 41},
    ),
]
REFRESH_RUNNING_EXAMPLE = Example(
    summary="Still running after wait_seconds",
    value={
        "status": "in_progress",
        "run_id": 44,
        "detail": "run 44 is still running; see GET /api/v1/pricing/runs/44",
    },
)
REFRESH_FAILED_EXAMPLE = Example(
    summary="The upstream was unavailable; prices unchanged",
    value={"run": _FAILED_RUN, "started": True},
)
DEBUG_SAMPLE_EXAMPLE = Example(
    summary="One sampled row",
    value={
        "limit": 1,
        "last_run": _RUN,
        "current_snapshot": {
            "id": 40,
            "source": "pricepertoken",
            "fetched_at": "2026-11-26T00:01:10.204000+00:00",
            "model_count": 533,
        },
        "sampled_snapshot": {
            "id": 40,
            "source": "pricepertoken",
            "fetched_at": "2026-11-26T00:01:10.204000+00:00",
            "model_count": 533,
        },
        "field_names": ["slug", "name", "author", "input_price", "output_price", "context"],
        "prices": {"models": 533, "null_input": 13, "null_output": 13, "unknown": 13},
        "unmatched_catalog_ids": [],
        "held_prices": _RUN["held_prices"],
        "cross_source": _RUN_WITH_DISAGREEMENTS["cross_source"],
        "unknown_ids_asked": {"gpt-4o-mini-2024-07-18": 3},
        "rows": [
            {
                "model_id": "gpt-4.1-mini",
                "raw": {
                    "slug": "openai-gpt-4.1-mini",
                    "name": "GPT-4.1 Mini",
                    "author": "openai",
                    "input_price": 0.4,
                    "output_price": 1.6,
                    "context": 1047576,
                },
                "normalized": {
                    "model_id": "gpt-4.1-mini",
                    "slug": "openai-gpt-4.1-mini",
                    "provider": "openai",
                    "display_name": "GPT-4.1 Mini",
                    "price_status": "priced",
                    "price_basis": "official",
                    "input_usd_per_million": "0.4",
                    "output_usd_per_million": "1.6",
                    "cache_read_usd_per_million": "0.1",
                    "cache_write_usd_per_million": None,
                    "context_window": 1047576,
                    "capabilities": ["tools", "vision"],
                    "input_modalities": ["text", "image"],
                    "output_modalities": ["text"],
                    "pricing_source": "openai",
                },
            }
        ],
    },
)

# -- built by the code they document (feed.feed_body, usage.estimate_body) ------------------
# GET /changes and POST /estimate answer structs the service computes; their examples are what
# that code computes from a few figures (the inputs below), as the service would send them.


def _sent(body: object) -> Any:
    """A body as a client decodes it (Decimal money as JSON numbers, as replies.render)."""
    return json.loads(render(body, compress=False).body)


_MOVED = PriceChange(
    model_id="gpt-4.1-mini",
    changed_at=datetime(2026, 11, 26, 0, 1, 10, 204000, tzinfo=UTC),
    kind=ChangeKind.CHANGED,
    old_input_usd_per_million=Decimal("0.4"),
    new_input_usd_per_million=Decimal("0.3"),
    old_output_usd_per_million=Decimal("1.6"),
    new_output_usd_per_million=Decimal("1.6"),
)
_ARRIVED = PriceChange(
    model_id="deepseek-v3.2",
    changed_at=datetime(2026, 11, 25, 12, 0, 48, 117000, tzinfo=UTC),
    kind=ChangeKind.ADDED,
    old_input_usd_per_million=None,
    new_input_usd_per_million=Decimal("0.28"),
    old_output_usd_per_million=None,
    new_output_usd_per_million=Decimal("0.42"),
)
CHANGES_EXAMPLE = Example(
    summary="A price that moved and a model newly listed",
    value=_sent(feed_body([_MOVED, _ARRIVED], Decimal(4200), 4217, "newest_first")),
)


def _claude(model_id: str, display_name: str, **prices: str | None) -> dict[str, Any]:
    """A selector item as the estimate reads it: the model, its provenance, its prices."""
    item: dict[str, Any] = {
        "model_id": model_id,
        "display_name": display_name,
        "provider": "anthropic",
        "price_status": "priced",
        "price_status_reason": None,
        "price_basis": "seed",
        "price_note": None,
        "pricing_source": "anthropic",
        "pricing_source_is_author": True,
        "updated_at": "2026-04-29T08:14:00Z",
        "source": "seed",
        "source_url": None,
        "call_prices_source": (
            "genai-prices 0.2.3 anthropic/claude-sonnet-4-0" if "web_search" in prices else None
        ),
    }
    for kind in PriceKind:
        figure = prices.get(kind.value)
        item[kind.field] = None if figure is None else Decimal(figure)
    return item


def _anthropic(**counts: int) -> TokenUsage:
    return TokenUsage(
        format=UsageFormat.ANTHROPIC,
        detected=True,
        input_tokens=counts["input_tokens"],
        cache_read_tokens=counts.get("cache_read_tokens", 0),
        cache_write_tokens=counts.get("cache_write_tokens", 0),
        cache_write_1h_tokens=0,
        output_tokens=counts["output_tokens"],
        reasoning_tokens=0,
        web_searches=counts.get("web_searches", 0),
    )


def _usage_example(item: dict[str, Any], usage: TokenUsage) -> Any:
    return _sent(
        estimate_body(
            item, usage, rate=Decimal(4000), local=COP, currency=_CURRENCY, snapshot=_SNAPSHOT
        )
    )


USAGE_ESTIMATE_EXAMPLES = [
    Example(
        summary="An Anthropic usage object with cache reads and writes",
        value=_usage_example(
            _claude(
                "claude-sonnet-4-20250514",
                "Claude Sonnet 4",
                input="3",
                output="15",
                cache_read="0.3",
                cache_write="3.75",
                web_search="10",
            ),
            _anthropic(
                input_tokens=24200,
                cache_read_tokens=20000,
                cache_write_tokens=3000,
                output_tokens=800,
                web_searches=1,
            ),
        ),
    ),
    Example(
        summary="Cached tokens without a known cache price: the total is null",
        value=_usage_example(
            _claude(
                "claude-3-5-haiku-20241022",
                "Claude 3.5 Haiku (2024-10-22)",
                input="0.8",
                output="4",
            ),
            _anthropic(input_tokens=5100, cache_read_tokens=5000, output_tokens=50),
        ),
    ),
]

# The examples of each route's derived success answer (api/document.py), by operation id.
SUCCESS_EXAMPLES: dict[str, list[Example]] = {
    "health": [HEALTH_EXAMPLE],
    "ready": [READY_EXAMPLE],
    "listPriceChanges": [CHANGES_EXAMPLE],
    "estimateUsageCost": USAGE_ESTIMATE_EXAMPLES,
    "listRuns": [RUNS_EXAMPLE],
    "getRun": [RUN_EXAMPLE],
    "debugSample": [DEBUG_SAMPLE_EXAMPLE],
    "refreshPrices": REFRESH_EXAMPLES,
}
