"""The bodies of the API: what the handlers return and what the OpenAPI document says.

The operator answers (/health, /ready, runs, the debug sample, POST /refresh) are these structs:
the handlers return them (built in `api/bodies.py`), Litestar encodes them and derives the
document's 200s from the return types. GET /changes and POST /estimate are built as their
structs where they are computed (`feed.PriceChanges`; `estimate_answer.UsageEstimate`, which
`usage.estimate_body` builds; re-exported here) and rendered by the service; their routes
return them typed (`api/feed_estimate.py`), so the document derives their 200s too. The
other selector answers are bytes that curation.py and space.py rendered with an ETag over those
bytes, so their routes return the bytes and document them with these structs (`responses=`);
`tests/unit/test_api_schemas.py` converts real rendered answers into them (unknown fields
forbidden), so a field added to one side only fails there.

Money on the selector's routes is an exact decimal written as a JSON number (parse it as
Decimal); the structs the service builds hold `Decimal` (documented as a number,
`api/document.DecimalAsNumber`), the ones that only document rendered bytes say `float`.
Operator answers, which Litestar encodes, say `float` (a JSON number) or, for figures an operator
compares (held prices, the debug sample, cross-source disagreements), exact decimal strings.
"""

from __future__ import annotations

from typing import Any, Literal

import msgspec

from pricing_service.currency import RateMode
from pricing_service.domain import (
    AcceptedFigure,
    CacheTier,
    HoldReason,
    HoldResolution,
    PriceBasis,
    PriceStatus,
    RunOutcome,
    RunStatus,
)
from pricing_service.estimate_answer import (
    CallEstimateLine,
    EstimateLine,
    MissingPrice,
    UsageCounts,
    UsageEstimate,
)
from pricing_service.feed import PriceChangeEntry, PriceChanges
from pricing_service.long_context import LongContext
from pricing_service.selector_item import (
    LocalModelInfo,
    LongContextTierInfo,
    SelectorCurrency,
    SelectorItem,
    SelectorSnapshot,
)

# Declared beside what builds them, documented here.
__all__ = [
    "CallEstimateLine",
    "EstimateLine",
    "LocalModelInfo",
    "LongContext",
    "MissingPrice",
    "PriceChangeEntry",
    "PriceChanges",
    "SelectorCurrency",
    "SelectorItem",
    "SelectorSnapshot",
    "UsageCounts",
    "UsageEstimate",
]


class _Body(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """A documented body: keyword fields, and converting an answer with an extra key fails."""


class SelectorCategory(_Body):
    id: str
    name: str
    emoji: str
    description: str
    order: int
    model_ids: list[str]


class HeldRate(_Body):
    id: int | None
    rate: float
    valid_from: str | None
    reason: str | None


class ReadyCurrency(_Body):
    """The rate served, as every answer states it (``SelectorCurrency``'s fields; a float
    here: Litestar encodes /ready), and how it is kept."""

    code: str
    rate: float
    source: str  # a RateSource (a test's own fixed rate may name another)
    valid_from: str | None  # ISO date
    valid_to: str | None
    rounding: str
    mode: RateMode
    rate_id: int | None  # the stored TRM served (null: a fixed rate)
    checked_at: str | None  # the last fetch that confirmed it (trm)
    age_seconds: int | None  # since then
    held: list[HeldRate]  # fetched rates waiting for an operator (pricing-service rate --accept)


class SelectorModels(_Body):
    """The body of GET /api/v1/pricing/models (view is "ids" for an `ids=` lookup)."""

    items: list[SelectorItem]
    updated_at: str
    view: str
    category: str | None
    local: bool | None
    categories: list[SelectorCategory]
    currency: SelectorCurrency
    snapshot: SelectorSnapshot


class ErrorBody(_Body):
    status_code: int
    detail: str


class PriceEntry(_Body):
    """One spelling's price; unknown is null with price_status unknown, never 0."""

    input_usd_per_million: float | None
    output_usd_per_million: float | None
    input_cop_per_10k: float | None
    output_cop_per_10k: float | None
    cache_read_usd_per_million: float | None  # cached input; null: unknown, never 0
    cache_write_usd_per_million: float | None
    cache_read_cop_per_10k: float | None
    cache_write_cop_per_10k: float | None
    price_status: PriceStatus
    pricing_source: str | None
    pricing_source_is_author: bool
    # USD and COP per 1,000 calls (null: unknown, never 0)
    web_search_usd_per_thousand: float | None
    web_search_cop_per_thousand: float | None
    request_usd_per_thousand: float | None
    request_cop_per_thousand: float | None
    long_context_tiers: list[LongContextTierInfo] | None  # null: no tiers known
    label: str


class PriceMap(_Body):
    """The body of GET /api/v1/pricing/prices: every spelling of every model -> its price."""

    prices: dict[str, PriceEntry]
    currency: SelectorCurrency
    snapshot: SelectorSnapshot


class SpaceModel(_Body):
    ollama_tag: str
    display_name: str
    ids: list[str]
    parameters: str
    parameters_billions: float
    vram_gb: float
    context_window: int | None
    capabilities: list[str]
    fits: list[str]
    # The cheapest dedicated tier the model fits (never a shared one): the document's "Tier HF"
    # where it lists the model ("document", its text in document_tier), the same rule otherwise.
    suggested_tier: str
    suggested_by: Literal["document", "rule"]
    document_tier: str | None
    price_status: PriceStatus


class SpaceTier(_Body):
    id: str
    name: str
    gpu: str | None
    vram_gb: float | None
    ram_gb: float | None
    usd_per_hour: float
    cop_per_hour: float
    notes: str | None
    shared: bool  # a GPU shared with a daily quota (ZeroGPU): never a suggested tier


class MoneyRange(_Body):
    min: float
    max: float


class SpaceFixedCost(_Body):
    id: str
    name: str
    plan: str
    usd_per_month: float
    cop_per_month: float


class SpaceScenario(_Body):
    """A month of the Space; hours_per_day null means on demand (a range)."""

    id: str
    name: str
    tier: str
    tier_name: str
    hours_per_day: float | None
    days: int
    space_formula: str
    space_usd_per_month: MoneyRange
    space_cop_per_month: MoneyRange
    fixed: list[SpaceFixedCost]
    total_usd_per_month: MoneyRange
    total_cop_per_month: MoneyRange
    total_cop_per_month_display: str
    note: str | None


class LocalSpace(_Body):
    """The body of GET /api/v1/pricing/local: the Ollama Space picker."""

    models: list[SpaceModel]
    tiers: list[SpaceTier]
    scenarios: list[SpaceScenario]
    currency: SelectorCurrency


class Estimate(_Body):
    """The body of GET /api/v1/pricing/estimate: one call's cost; unknown price -> null amounts."""

    model_id: str
    display_name: str
    provider: str | None
    input_tokens: int
    output_tokens: int
    price_status: PriceStatus
    price_basis: PriceBasis | None
    input_usd_per_million: float | None
    output_usd_per_million: float | None
    input_cop_per_million: float | None
    output_cop_per_million: float | None
    input_usd: float | None
    output_usd: float | None
    total_usd: float | None
    input_cop: float | None
    output_cop: float | None
    total_cop: float | None
    total_cop_display: str | None
    price_note: str | None
    pricing_source: str | None
    pricing_source_is_author: bool
    updated_at: str
    source: str
    source_url: str | None
    currency: SelectorCurrency
    snapshot: SelectorSnapshot
    # The model's long-context tiers (null: none known); past the threshold the whole call is
    # billed at the tier prices, as the POST form bills it.
    long_context: LongContext | None


# -- health -----------------------------------------------------------------------------------


class Health(_Body):
    """The body of GET /health."""

    status: str


class ReadySnapshot(_Body):
    id: int
    source: str  # the listing source's name ("pricepertoken"), or "seed"
    fetched_at: str
    age_seconds: int
    stale: bool


class Ready(_Body):
    """GET /ready, 200: selector requests can be answered (`degraded` says what is missing)."""

    ready: bool
    degraded: list[str]
    currency: ReadyCurrency
    snapshot: ReadySnapshot
    tier: CacheTier  # where the snapshot was read from: memory, redis or database


class NotReady(_Body):
    """GET /ready, 503: nothing can be served, and why."""

    ready: bool
    reason: str
    degraded: list[str]


# -- refresh runs -----------------------------------------------------------------------------


class HeldPriceBody(_Body):
    """A proposed price the gate held; the accepted one stays served. Exact decimal strings."""

    model_id: str
    run_id: int
    reason: HoldReason
    detail: str
    proposed_input_usd_per_million: str | None
    proposed_output_usd_per_million: str | None
    accepted_input_usd_per_million: str | None
    accepted_output_usd_per_million: str | None
    held_at: str
    second_input_usd_per_million: str | None
    second_output_usd_per_million: str | None
    second_source: str | None
    accepted_figure: AcceptedFigure | None  # once accepted: which figure was applied
    # How the hold ended (None: still open), when, and by whom (an operator's name, if any).
    resolution: HoldResolution | None
    resolved_at: str | None
    resolved_by: str | None


class CrossSourceDisagreement(_Body):
    model_id: str
    provider: str
    pricing_source: str | None
    pricing_source_is_author: bool
    input_usd_per_million: str | None
    output_usd_per_million: str | None
    second_input_usd_per_million: str | None
    second_output_usd_per_million: str | None
    second_source: str
    factor: str | None
    held: bool


class CrossSource(_Body):
    """A run's prices compared with the second source (genai-prices)."""

    second_source: str  # its version, e.g. "genai-prices 0.2.3"
    agree: int
    disagree: int
    uncovered: int
    # GET /runs/{id}, the debug sample and a refresh's answer only (not GET /runs).
    disagreements: list[CrossSourceDisagreement] | msgspec.UnsetType = msgspec.UNSET


class Run(_Body):
    """One refresh run."""

    id: int
    trigger: str
    status: RunStatus
    started_at: str
    finished_at: str | None
    duration_ms: int | None
    rows_seen: int | None
    priced: int | None
    unknown: int | None
    changes: int | None
    error: str | None
    upstream_latency_ms: int | None
    snapshot_id: int | None
    rows_rejected: int | None
    held_reason: str | None
    accepted_at: str | None
    accepted_by: str | None
    held_prices: list[HeldPriceBody]
    cross_source: CrossSource | None


class Runs(_Body):
    """The body of GET /api/v1/pricing/runs, newest first."""

    items: list[Run]


class RefreshOutcome(_Body):
    """POST /refresh, 200 (succeeded or held) or 502 (failed; prices unchanged)."""

    run: Run
    started: bool  # False: a run that had just succeeded was returned instead of repeated
    # Only when the request named model_ids: each one's price status after the run.
    models: dict[str, str] | msgspec.UnsetType = msgspec.UNSET


class RefreshAccepted(_Body):
    """POST /refresh with accept_run_id, 200: what the acceptance applied."""

    accepted: list[str]
    run: Run
    snapshot_id: int


class RefreshRunning(_Body):
    """POST /refresh, 202: a run is (still) in progress; poll GET /runs/{run_id}."""

    status: RunOutcome  # always in_progress here (another run holds the lease)
    run_id: int | None
    detail: str


# -- the debug sample -------------------------------------------------------------------------


class SampleSnapshot(_Body):
    id: int
    source: str
    fetched_at: str
    model_count: int


class SamplePriceCounts(_Body):
    models: int
    null_input: int
    null_output: int
    unknown: int


class NormalizedPrice(_Body):
    """A stored price as normalized from the raw row (exact decimal strings)."""

    model_id: str
    slug: str | None
    provider: str | None
    display_name: str
    price_status: PriceStatus
    price_basis: PriceBasis
    input_usd_per_million: str | None
    output_usd_per_million: str | None
    cache_read_usd_per_million: str | None
    cache_write_usd_per_million: str | None
    context_window: int | None
    capabilities: list[str]
    input_modalities: list[str]
    output_modalities: list[str]
    pricing_source: str | None


class SampleRow(_Body):
    model_id: str
    raw: dict[str, Any]  # the upstream's row (and get_model detail) as stored
    normalized: NormalizedPrice | None


class DebugSample(_Body):
    """The body of GET /api/v1/pricing/debug/sample."""

    limit: int
    last_run: Run | None
    current_snapshot: SampleSnapshot | None
    sampled_snapshot: SampleSnapshot | None
    field_names: list[str]
    prices: SamplePriceCounts
    unmatched_catalog_ids: list[str]
    held_prices: list[HeldPriceBody]
    cross_source: CrossSource | None
    unknown_ids_asked: dict[str, int]
    rows: list[SampleRow]
