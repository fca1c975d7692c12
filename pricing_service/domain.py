"""Frozen value types shared by every layer; no I/O here."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any


def utcnow() -> datetime:
    """Now, timezone-aware UTC: the one clock of the package (tests patch it where it is read)."""
    return datetime.now(UTC)


# refresh_run.id is an INTEGER on PostgreSQL: a larger run id is a bad id, never a query.
MAX_RUN_ID = 2**31 - 1


class PriceStatus(StrEnum):
    PRICED = "priced"
    FREE = "free"
    LOCAL = "local"
    UNKNOWN = "unknown"


class PriceBasis(StrEnum):
    OFFICIAL = "official"  # get_model().pricing
    LIST = "list"  # the get_all_models row (often a cheaper third-party endpoint)
    CATALOG = "catalog"  # a price override in catalog/
    SEED = "seed"  # the bundled 2026-04-29 recording
    # genai-prices' figure, for a model of an author the upstream lists that it does not list
    SECOND_SOURCE = "second_source"


class SnapshotSource(StrEnum):
    """Where a snapshot's prices came from: the built-in names. A snapshot's ``source`` is the
    name of the listing source that fetched it (``ListingSource.name``, listings/), any string;
    ``seed`` is the bundled recording."""

    PRICEPERTOKEN = (
        "pricepertoken"  # a refresh run against PricePerToken (listings/pricepertoken.py)
    )
    GENAI_PRICES = "genai-prices"  # genai-prices' bundled data (listings/genai_prices.py)
    SEED = "seed"  # the bundled 2026-04-29 recording, stored on a first start


class RunStatus(StrEnum):
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    HELD = "held"  # the gate doubted the whole run: not applied until an operator accepts it
    # The bundled seed was stored and the gate held some of its prices: this run owns them, so
    # they are accepted like any run's (`refresh --accept <id>`). Not a fetch: never "recent".
    SEEDED = "seeded"


class RunTrigger(StrEnum):
    """Who started a refresh run (refresh_run.trigger, /runs' ``trigger``): the service's own
    callers, each worded in Spanish by console/format.py. ``Refresher.refresh`` stores any
    trigger it is given (a test or a benchmark names its own); the service passes only these."""

    SCHEDULE = "schedule"  # the background scheduler (refresh.py)
    CLI = "cli"  # pricing-service refresh
    API = "api"  # POST /refresh
    SEED = "seed"  # the bundled seed stored on a first start (the run owning its held prices)


class RunOutcome(StrEnum):
    """What one refresh trigger came to (the ``outcome`` of pricing_refresh_runs_total; the
    ``status`` of POST /refresh's 202): how the run ended (a ``RunStatus``), or why none ran."""

    SUCCEEDED = RunStatus.SUCCEEDED.value
    FAILED = RunStatus.FAILED.value
    HELD = RunStatus.HELD.value
    SKIPPED = "skipped"  # a run succeeded moments ago: that run is returned (not forced)
    IN_PROGRESS = "in_progress"  # another run holds the lease


class CacheTier(StrEnum):
    """Where a served answer's data was read from: the ``x-cache-tier`` header, /ready's
    ``tier``, the ``tier`` label of pricing_cache_hits_total, the console's Estado."""

    MEMORY = "memory"  # this worker's dataset, built before
    REDIS = "redis"  # the shared snapshot in Redis
    DATABASE = "database"  # the repository (a cold load, or the change feed)
    CATALOG = "catalog"  # catalog data alone, no snapshot (GET /local)


class DeliveryStatus(StrEnum):
    """Where one webhook delivery stands (webhook_delivery.status; the ``status`` label of
    pricing_webhook_deliveries, ``webhooks list --status``, the console's Notificaciones)."""

    PENDING = "pending"  # due now or after its next delay
    DELIVERED = "delivered"  # an endpoint answered 2xx
    DEAD = "dead"  # the retry schedule is spent (an operator may retry it)


class AttemptOutcome(StrEnum):
    """What one delivery attempt came to (the ``outcome`` of pricing_webhook_attempts_total,
    the ``webhooks.<outcome>`` log line)."""

    DELIVERED = DeliveryStatus.DELIVERED.value
    FAILED = "failed"  # not delivered: due again after the next delay of the schedule
    DEAD = DeliveryStatus.DEAD.value  # not delivered, and the schedule is spent


class WebhookFormat(StrEnum):
    """What an endpoint of PRICING_WEBHOOK_URLS is sent (``[format:]url``;
    webhook_delivery.format)."""

    JSON = "json"  # the signed Standard Webhooks envelope (the default)
    SLACK = "slack"  # a Slack incoming-webhook message
    DISCORD = "discord"  # a Discord incoming-webhook message


class DegradationCode(StrEnum):
    """What /ready reports as degraded (its English line is served; the console words each
    code in Spanish, console/format.py's WARNINGS, and names it in ``data-warning``)."""

    REDIS_UNREACHABLE = "redis_unreachable"
    STALE = "stale"  # the snapshot is older than the cache TTL
    NOT_LIVE = "not_live"  # the seed is served, not a live listing
    DATABASE_UNREACHABLE = "database_unreachable"
    LAST_REFRESH_FAILED = "last_refresh_failed"
    RUN_HELD = "run_held"  # a whole run waits for an operator
    PRICE_HELD_CURATED = "price_held_curated"  # a held price of a curated model
    PRICE_HELD = "price_held"
    MORE_HELD = "more_held"  # the held prices past those listed one by one
    RATE_FALLBACK = "rate_fallback"  # trm mode, no TRM accepted yet: the fixed rate is served
    RATE_HELD = "rate_held"  # a fetched TRM waits for an operator
    RATE_UNPARSABLE = "rate_unparsable"  # the TRM source's last answer could not be read
    RATE_UNREACHABLE = "rate_unreachable"  # the TRM source does not answer: the last is kept


class RunPhase(StrEnum):
    """What a running run is doing (refresh_run.phase), named when it is abandoned."""

    FETCHING = "fetching"  # talking to the upstream
    STORING = "storing"  # gating and writing the snapshot


class ChangeKind(StrEnum):
    CHANGED = "changed"  # a listed model's price moved
    ADDED = "added"  # the upstream lists a model it did not list before (or lists it again)
    REMOVED = "removed"  # the upstream stopped listing a model (its price is kept for a grace)


class HoldReason(StrEnum):
    """Why one model's proposed price is held instead of served (held_price.reason: <= 32)."""

    RATIO = "ratio"  # moved more than MAX_PRICE_RATIO either way against the accepted price
    CEILING = "ceiling"  # above MAX_USD_PER_MILLION
    ZERO = "zero"  # from a positive price to 0, and the catalog does not declare it free
    # The author's own price, contradicted by the second source (genai-prices) by more than
    # SECOND_SOURCE_MAX_RATIO on either side.
    SECOND_SOURCE = "second_source"
    # get_model failed for the model this run (an error, a lost session): its list price, often
    # a cheaper host's figure, is never served in place of the official one.
    DETAIL_UNAVAILABLE = "detail_unavailable"


class HoldResolution(StrEnum):
    """How a held price stopped being open (held_price.resolution)."""

    ACCEPTED = "accepted"  # an operator applied a figure
    SUPERSEDED = "superseded"  # a later run proposed another figure (served, or held again)
    RETURNED = "returned"  # the upstream went back to the price that stayed served


class View(StrEnum):
    """Which models the selector shows (GET /models?view=)."""

    CURATED = "curated"  # the catalog's categories (the default)
    ALL = "all"  # every model with a price ("ver todos")


class AcceptedFigure(StrEnum):
    """Which figure an operator applies to a held price (held_price.accepted_figure)."""

    PROPOSED = "proposed"  # the upstream's held figure, as it states it (the default)
    SECOND_SOURCE = "second_source"  # the second source's figure (second-source holds only)


class PriceKind(StrEnum):
    """Every kind of price a model carries. ``ModelPrice`` has one price field per member
    (``<kind>_usd_per_million`` for a token kind, ``<kind>_usd_per_thousand`` for a per-call
    one) and no other price field (tests/unit/test_gate_kinds.py checks), so the gate, which
    checks every member, checks a kind as soon as it exists."""

    INPUT = "input"
    OUTPUT = "output"
    CACHE_READ = "cache_read"
    CACHE_WRITE = "cache_write"
    # Per call, in USD per 1,000 calls (as providers publish them): a server-side web search
    # (Anthropic's server_tool_use.web_search_requests) and a per-request fee (Perplexity).
    WEB_SEARCH = "web_search"
    REQUEST = "request"

    @property
    def per_call(self) -> bool:
        return self in _PER_CALL

    @property
    def field(self) -> str:
        return (
            f"{self.value}_usd_per_thousand" if self.per_call else f"{self.value}_usd_per_million"
        )

    @property
    def unit(self) -> str:
        """How the kind's figure is stated: ``USD per million`` (tokens) or per 1,000 calls."""
        return "USD per 1,000 calls" if self.per_call else "USD per million"


_PER_CALL = frozenset({PriceKind.WEB_SEARCH, PriceKind.REQUEST})


class SpecialKind(StrEnum):
    AUDIO = "audio"
    REALTIME = "realtime"
    IMAGE = "image"
    SEARCH = "search"
    MODERATION = "moderation"
    TRANSCRIPTION = "transcription"
    SPEECH = "speech"
    EMBEDDING = "embedding"
    VIDEO = "video"


@dataclass(frozen=True, slots=True)
class ModelPrice:
    """One upstream model, normalized. A ``None`` price is unknown, never zero."""

    model_id: str  # bare id as chat UIs use it: "gpt-4o"
    slug: str | None  # upstream slug: "openai-gpt-4o"
    provider: str  # canonical provider slug: "openai", "xai"
    display_name: str
    input_usd_per_million: Decimal | None
    output_usd_per_million: Decimal | None
    price_basis: PriceBasis
    cache_read_usd_per_million: Decimal | None = None
    cache_write_usd_per_million: Decimal | None = None
    # Per-call prices (USD per 1,000 calls): PricePerToken states none; genai-prices' figures
    # for the model's own provider, named in call_prices_source.
    web_search_usd_per_thousand: Decimal | None = None
    request_usd_per_thousand: Decimal | None = None
    call_prices_source: str | None = None
    # Long-context tiers (the second source's; PricePerToken states none), stored with the price
    # by the refresh so that serving workers never read genai-prices' data: () when none.
    long_context_tiers: tuple[LongContextTier, ...] = ()
    context_window: int | None = None
    capabilities: tuple[str, ...] = ()  # names of capabilities that are true, sorted
    input_modalities: tuple[str, ...] = ()
    output_modalities: tuple[str, ...] = ()
    pricing_source: str | None = None  # upstream's own note of where the price comes from
    # What get_model says of the model besides its price (null where the upstream gives none):
    # benchmark scores by name, sorted, in the upstream's scale; speed; a description.
    benchmarks: tuple[tuple[str, float | None], ...] = ()
    tokens_per_second: float | None = None
    time_to_first_token: float | None = None
    description: str | None = None
    # Set on current prices only (what is served), never on a freshly fetched row:
    listed: bool = True  # False: the upstream stopped listing it; its last price is kept a while
    delisted_at: datetime | None = None  # when the upstream first stopped listing it
    held: HeldPrice | None = None  # a newer proposed price that is held, not served

    def figure(self, kind: PriceKind) -> Decimal | None:
        """This model's price of ``kind`` in ``kind.unit`` (None: unknown)."""
        value: Decimal | None = getattr(self, kind.field)
        return value

    def without_prices(self) -> ModelPrice:
        """This model with every kind of price unknown."""
        unknown: dict[str, Any] = {kind.field: None for kind in PriceKind}
        return replace(self, **unknown)

    def figures(self) -> dict[PriceKind, Decimal]:
        """The known prices by kind (unknown kinds left out)."""
        found = {}
        for kind in PriceKind:
            value = self.figure(kind)
            if value is not None:
                found[kind] = value
        return found

    @property
    def price_status(self) -> PriceStatus:
        if self.input_usd_per_million is None or self.output_usd_per_million is None:
            return PriceStatus.UNKNOWN
        if self.input_usd_per_million == 0 and self.output_usd_per_million == 0:
            return PriceStatus.FREE
        return PriceStatus.PRICED


@dataclass(frozen=True, slots=True)
class HeldPrice:
    """A proposed price the gate held back; the last accepted price stays served."""

    model_id: str
    run_id: int
    reason: HoldReason
    detail: str  # a sentence for operators: which figure, against what
    proposed_input_usd_per_million: Decimal | None
    proposed_output_usd_per_million: Decimal | None
    accepted_input_usd_per_million: Decimal | None  # what is served meanwhile (None: unknown)
    accepted_output_usd_per_million: Decimal | None
    held_at: datetime
    # The second source's figures the proposal was compared with (SECOND_SOURCE holds).
    second_input_usd_per_million: Decimal | None = None
    second_output_usd_per_million: Decimal | None = None
    second_source: str | None = None
    accepted_figure: AcceptedFigure | None = None  # once accepted: which figure was applied
    resolved_by: str | None = None
    resolved_at: datetime | None = None
    resolution: HoldResolution | None = None  # None while open


@dataclass(frozen=True, slots=True)
class SecondPrice:
    """What the second source (genai-prices' bundled data) says one model costs."""

    model_id: str  # our bare id
    input_usd_per_million: Decimal | None
    output_usd_per_million: Decimal | None
    source: str  # "genai-prices 0.2.3 deepseek/deepseek-chat": version, provider, its model id


@dataclass(frozen=True, slots=True)
class CrossSourceEntry:
    """One model whose price the two sources state differently (beyond the tolerance)."""

    model_id: str
    provider: str
    pricing_source: str | None
    pricing_source_is_author: bool
    input_usd_per_million: Decimal | None
    output_usd_per_million: Decimal | None
    second_input_usd_per_million: Decimal | None
    second_output_usd_per_million: Decimal | None
    second_source: str
    factor: Decimal | None  # the larger of the two sides' ratios (>= 1); None: one side is 0
    held: bool  # the gate held it for this disagreement


@dataclass(frozen=True, slots=True)
class CrossSourceReport:
    """A run's prices compared with the second source."""

    version: str  # "genai-prices 0.2.3"
    agree: int  # both sources know the model, within the tolerance on both prices
    disagree: int
    uncovered: int  # priced by us, unknown to the second source
    disagreements: tuple[CrossSourceEntry, ...] = ()  # largest factor first


@dataclass(frozen=True, slots=True)
class RejectedRow:
    """An upstream row left out of a run because it broke a limit (see normalize.py)."""

    model_id: str  # at most 80 characters, printable: safe to store and show
    reason: str


@dataclass(frozen=True, slots=True)
class NormalizedListing:
    """What one fetch produced after normalization."""

    prices: tuple[ModelPrice, ...]
    rows_seen: int
    field_names: tuple[str, ...]  # every key the upstream rows carried, sorted
    raw_by_model_id: dict[str, dict[str, Any]] = field(default_factory=dict)
    rows_rejected: int = 0  # upstream rows refused before storage (over the field limits)
    rejected: tuple[RejectedRow, ...] = ()  # the first of them, with the reason
    # Models whose get_model call failed this run (model id -> why): their list price is held,
    # never served in place of the official one (gate.py).
    detail_failed: dict[str, str] = field(default_factory=dict)
    # Upstream strings (kept rows, nested) that held control or bidi characters, which
    # normalize.clean_text removes from the text it takes.
    text_cleaned: int = 0

    @property
    def priced_count(self) -> int:
        return sum(1 for p in self.prices if p.price_status is not PriceStatus.UNKNOWN)

    @property
    def unknown_count(self) -> int:
        return sum(1 for p in self.prices if p.price_status is PriceStatus.UNKNOWN)


@dataclass(frozen=True, slots=True)
class SnapshotInfo:
    id: int
    fetched_at: datetime  # aware UTC
    source: str  # the listing source's name (SnapshotSource names the built-in ones)
    model_count: int


@dataclass(frozen=True, slots=True)
class PriceChange:
    model_id: str
    changed_at: datetime
    kind: ChangeKind
    old_input_usd_per_million: Decimal | None
    new_input_usd_per_million: Decimal | None
    old_output_usd_per_million: Decimal | None
    new_output_usd_per_million: Decimal | None


@dataclass(frozen=True, slots=True)
class RunSummary:
    id: int
    trigger: str
    status: RunStatus
    started_at: datetime
    finished_at: datetime | None
    rows_seen: int | None
    priced: int | None
    unknown: int | None
    changes: int | None
    error: str | None
    upstream_latency_ms: int | None
    snapshot_id: int | None
    held_reason: str | None = None  # why the gate held the run (status held, or accepted later)
    accepted_at: datetime | None = None
    accepted_by: str | None = None
    rows_rejected: int | None = None
    held_prices: tuple[HeldPrice, ...] = ()
    cross_source: CrossSourceReport | None = None  # the second-source comparison of the run

    @property
    def duration_ms(self) -> int | None:
        if self.finished_at is None:
            return None
        return int((self.finished_at - self.started_at).total_seconds() * 1000)


@dataclass(frozen=True, slots=True)
class Category:
    id: str
    name: str
    emoji: str
    description: str
    order: int
    model_ids: tuple[str, ...]  # curated, in display order (1..9)
    # What the curation assistant ranks by (catalog/categories.toml [weights.<id>]): a metric
    # name (a benchmark, a speed, "price", a capability) -> its weight.
    weights: tuple[tuple[str, Decimal], ...] = ()


@dataclass(frozen=True, slots=True)
class PriceOverride:
    """A price for a model the upstream does not list, with where it came from."""

    model_id: str
    provider: str
    display_name: str
    input_usd_per_million: Decimal
    output_usd_per_million: Decimal
    source: str
    as_of: date
    price_note: str | None = None  # Spanish: what else the model bills (per call, per image)
    # Why the figure stands though genai-prices states another, with the source that supports it.
    second_source_disagrees: str | None = None


@dataclass(frozen=True, slots=True)
class PriceDecision:
    """An operator's decision on a price the gate holds, kept in the catalog (decisions.toml)
    so that every install applies it, the bundled seed included.

    It applies while the upstream states exactly the figures it was taken against; the figure
    it serves is the upstream's ("proposed") or the second source's ("second_source").
    """

    model_id: str
    figure: str  # "proposed" | "second_source"
    upstream_input_usd_per_million: Decimal | None
    upstream_output_usd_per_million: Decimal | None
    input_usd_per_million: Decimal  # what is served while it applies
    output_usd_per_million: Decimal
    reason: str  # what the figure was checked against (the provider's page)
    decided_on: date
    by: str

    def applies_to(self, price: ModelPrice) -> bool:
        return (price.input_usd_per_million, price.output_usd_per_million) == (
            self.upstream_input_usd_per_million,
            self.upstream_output_usd_per_million,
        )


@dataclass(frozen=True, slots=True)
class Hardware:
    id: str  # "zerogpu", "t4-small", ...
    name: str
    gpu: str | None
    vram_gb: Decimal | None
    usd_per_hour: Decimal
    ram_gb: Decimal | None = None
    notes: str | None = None  # Spanish, for the Space picker: quotas, plans
    # A GPU shared between Spaces with a daily quota (ZeroGPU): a model may run there, but it
    # is never the tier suggested for one (catalog.suggested_tier).
    shared: bool = False


@dataclass(frozen=True, slots=True)
class LocalModel:
    """A model served by Ollama on the Hugging Face Space."""

    ollama_tag: str  # "qwen2.5:7b"
    display_name: str
    parameters: str  # "7B"
    vram_gb: Decimal
    hardware: str  # Hardware.id suggested for it: catalog.suggested_tier's answer
    ids: tuple[str, ...]  # ids the selector uses: "cognitia_llm_zerogpu.qwen2.5-7b", ...
    context_window: int | None = None
    capabilities: tuple[str, ...] = ()  # the upstream's names: "tool_calls", "vision", ...
    # The target-state document's "Tier HF" for it, as printed ("CPU o T4"); None when the
    # document's "Modelos Disponibles" table does not list the model.
    document_tier: str | None = None


@dataclass(frozen=True, slots=True)
class FixedCost:
    """A monthly cost that does not depend on Space hours (Railway's Cognitia, its database)."""

    id: str
    name: str
    plan: str
    usd_per_month: Decimal


@dataclass(frozen=True, slots=True)
class HostingScenario:
    """A month of the Ollama Space: hours a day on a tier, or a cost range (sleep mode)."""

    id: str
    name: str
    tier: str  # Hardware.id
    days: int
    hours_per_day: Decimal | None  # None: on demand, priced by the range below
    space_usd_per_month_min: Decimal | None
    space_usd_per_month_max: Decimal | None
    fixed: tuple[str, ...]  # FixedCost ids
    note: str | None = None


@dataclass(frozen=True, slots=True)
class Catalog:
    categories: tuple[Category, ...]  # sorted by order
    aliases: dict[str, str]  # selector id -> upstream bare id or slug (explicit, may be dated)
    specials: dict[str, SpecialKind]  # explicit special flags by model id
    overrides: dict[str, PriceOverride]  # by model id
    local_models: tuple[LocalModel, ...]
    hardware: dict[str, Hardware]
    # Models whose price is legitimately 0 (model id -> why): a drop to 0 is not held for them.
    free: dict[str, str] = field(default_factory=dict)
    fixed_costs: dict[str, FixedCost] = field(default_factory=dict)
    scenarios: tuple[HostingScenario, ...] = ()
    # Operators' decisions on held prices, by model id (catalog/decisions.toml).
    decisions: dict[str, PriceDecision] = field(default_factory=dict)

    def category(self, category_id: str) -> Category | None:
        for c in self.categories:
            if c.id == category_id:
                return c
        return None

    def referenced_ids(self) -> tuple[str, ...]:
        """Every model id the catalog names, first appearance order."""
        seen: dict[str, None] = {}
        for c in self.categories:
            for mid in c.model_ids:
                seen.setdefault(mid, None)
        for mid in (*self.aliases, *self.specials, *self.overrides):
            seen.setdefault(mid, None)
        return tuple(seen)


class RateStatus(StrEnum):
    """Where a fetched USD -> COP rate stands (cop_rate.status)."""

    ACCEPTED = "accepted"  # served (the newest accepted one)
    HELD = "held"  # moved too far from the last accepted rate: waits for an operator
    SUPERSEDED = "superseded"  # held, then a later rate was accepted instead


@dataclass(frozen=True, slots=True)
class CopRate:
    """A USD -> COP rate, where it came from and the dates it is valid for.

    ``source``: "default" (the built-in 4000), "PRICING_USD_TO_COP" (the operator's fixed
    figure) or "trm" (the day's TRM, fetched and stored). A fixed rate has no dates.
    """

    rate: Decimal
    source: str
    valid_from: date | None = None
    valid_to: date | None = None
    fetched_at: datetime | None = None  # first fetched (trm)
    checked_at: datetime | None = None  # last fetch that gave the same rate (trm)
    id: int | None = None  # cop_rate.id (trm)
    status: RateStatus = RateStatus.ACCEPTED
    reason: str | None = None  # why it is held
    resolved_by: str | None = None
    resolved_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class RateState:
    """What /ready and the console say of the rate: the one served and what is wrong with it."""

    mode: str  # "fixed" | "trm"
    current: CopRate  # served
    held: tuple[CopRate, ...] = ()  # fetched rates waiting for an operator
    fallback: bool = False  # trm mode, no TRM accepted yet: the fixed rate is served
    last_attempt_at: datetime | None = None
    last_error: str | None = None  # the last fetch failed: why (unreachable, HTTP status)
    unparsable: str | None = None  # the last answer could not be read as a TRM: why


@dataclass(frozen=True, slots=True)
class LongContextTier:
    """A price that applies to every token of its kind once a request's prompt has more than
    ``start`` input tokens (the "cliff" Google and Anthropic bill), from the second source."""

    kind: str  # usage.Line value: "input", "cache_read", "cache_write", "cache_write_1h", "output"
    start: int  # input tokens (cache included) the prompt must exceed
    usd_per_million: Decimal  # the price past the threshold
    base_usd_per_million: Decimal  # the second source's price below it
    source: str  # "genai-prices 0.2.3 google/gemini-2.5-pro"
