"""SQLModel tables: the database shape only; alembic reads their metadata."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.types import TypeDecorator
from sqlmodel import Field, SQLModel


class DecimalText(TypeDecorator[Decimal]):
    """Exact decimals on every engine (SQLite has no exact numeric type).

    Unbounded text: an absurd upstream figure (1e300, 1e-30) is stored the same way on SQLite
    and PostgreSQL, so the gate can hold it instead of the database refusing the whole run.
    """

    impl = sa.Text
    cache_ok = True

    def process_bind_param(self, value: Decimal | None, dialect: sa.Dialect) -> str | None:
        if value is None:
            return None
        # Plain notation for ordinary figures (readable in SQL), exponent notation for extremes.
        text = format(value, "f")
        return text if len(text) <= 40 else str(value)

    def process_result_value(self, value: str | None, dialect: sa.Dialect) -> Decimal | None:
        return None if value is None else Decimal(value)


class UtcDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes on every engine (SQLite drops the zone)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the database")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def _price() -> Any:
    return Field(default=None, sa_type=DecimalText, nullable=True)


def _when(*, nullable: bool = False, index: bool = False) -> Any:
    return Field(
        default=None if nullable else ..., sa_type=UtcDateTime, nullable=nullable, index=index
    )


class RefreshRunRow(SQLModel, table=True):
    __tablename__ = "refresh_run"

    id: int | None = Field(default=None, primary_key=True)
    trigger: str = Field(max_length=32)
    status: str = Field(max_length=16, index=True)
    started_at: datetime = _when(index=True)
    finished_at: datetime | None = _when(nullable=True)
    rows_seen: int | None = None
    priced: int | None = None
    unknown: int | None = None
    changes: int | None = None
    error: str | None = Field(default=None, sa_type=sa.Text)
    upstream_latency_ms: int | None = None
    snapshot_id: int | None = None
    held_reason: str | None = Field(default=None, sa_type=sa.Text)
    accepted_at: datetime | None = _when(nullable=True)
    accepted_by: str | None = Field(default=None, max_length=64)
    rows_rejected: int | None = None
    # Which process runs it ("host:pid") and what it is doing (RunPhase): a run whose process
    # was killed is closed as abandoned naming both.
    worker: str | None = Field(default=None, max_length=128)
    phase: str | None = Field(default=None, max_length=16)
    # A held run's normalized listing, kept until it is accepted or superseded.
    proposal: dict[str, Any] | None = Field(default=None, sa_type=sa.JSON)
    # The run's prices compared with the second source (genai-prices): counts, version, and
    # the disagreements with both figures.
    cross_agree: int | None = None
    cross_disagree: int | None = None
    cross_uncovered: int | None = None
    second_source_version: str | None = Field(default=None, max_length=64)
    cross_source: dict[str, Any] | None = Field(default=None, sa_type=sa.JSON)


class SnapshotRow(SQLModel, table=True):
    __tablename__ = "snapshot"

    id: int | None = Field(default=None, primary_key=True)
    run_id: int | None = Field(default=None, foreign_key="refresh_run.id")
    fetched_at: datetime = _when(index=True)
    source: str = Field(max_length=32)
    model_count: int
    priced: int
    unknown: int
    field_names: list[str] = Field(default_factory=list, sa_type=sa.JSON)
    unmatched_ids: list[str] = Field(default_factory=list, sa_type=sa.JSON)
    # The raw upstream rows by model id, for the admin debug sample; pruned on old snapshots.
    raw_rows: dict[str, Any] | None = Field(default=None, sa_type=sa.JSON)


class ModelPriceRow(SQLModel, table=True):
    """The current price of each model: the last good snapshot."""

    __tablename__ = "model_price"

    model_id: str = Field(primary_key=True, max_length=200)
    slug: str | None = Field(default=None, max_length=200)
    provider: str = Field(max_length=100)
    display_name: str = Field(max_length=300)
    input_usd_per_million: Decimal | None = _price()
    output_usd_per_million: Decimal | None = _price()
    cache_read_usd_per_million: Decimal | None = _price()
    cache_write_usd_per_million: Decimal | None = _price()
    # USD per 1,000 calls (domain.PriceKind.WEB_SEARCH, REQUEST) and whose figures they are.
    web_search_usd_per_thousand: Decimal | None = _price()
    request_usd_per_thousand: Decimal | None = _price()
    call_prices_source: str | None = Field(default=None, max_length=200)
    # Long-context tiers (domain.LongContextTier as JSON: kind, start, the two prices as
    # strings, source), the second source's, written by the refresh; null: none.
    long_context_tiers: list[dict[str, Any]] | None = Field(default=None, sa_type=sa.JSON)
    price_basis: str = Field(max_length=16)
    context_window: int | None = None
    capabilities: list[str] = Field(default_factory=list, sa_type=sa.JSON)
    input_modalities: list[str] = Field(default_factory=list, sa_type=sa.JSON)
    output_modalities: list[str] = Field(default_factory=list, sa_type=sa.JSON)
    pricing_source: str | None = Field(default=None, max_length=200)
    snapshot_id: int = Field(foreign_key="snapshot.id", index=True)
    listed: bool = Field(default=True, sa_column_kwargs={"server_default": sa.true()})
    delisted_at: datetime | None = _when(nullable=True)
    # get_model's benchmark scores ({name: score or null}), speed and description.
    benchmarks: dict[str, Any] | None = Field(default=None, sa_type=sa.JSON)
    tokens_per_second: float | None = None
    time_to_first_token: float | None = None
    description: str | None = Field(default=None, sa_type=sa.Text)


class PriceHistoryRow(SQLModel, table=True):
    """Every version of a model's price; ``valid_to`` is null for the current one."""

    __tablename__ = "price_history"
    __table_args__ = (sa.Index("ix_price_history_model_valid_from", "model_id", "valid_from"),)

    id: int | None = Field(default=None, primary_key=True)
    model_id: str = Field(max_length=200)
    input_usd_per_million: Decimal | None = _price()
    output_usd_per_million: Decimal | None = _price()
    price_basis: str = Field(max_length=16)
    valid_from: datetime = _when(index=True)
    valid_to: datetime | None = _when(nullable=True)
    snapshot_id: int = Field(foreign_key="snapshot.id")


class PriceEventRow(SQLModel, table=True):
    """The change feed: one row per price change, arrival or removal, as it was applied."""

    __tablename__ = "price_event"
    __table_args__ = (sa.Index("ix_price_event_model_changed_at", "model_id", "changed_at"),)

    id: int | None = Field(default=None, primary_key=True)
    model_id: str = Field(max_length=200)
    kind: str = Field(max_length=16)
    changed_at: datetime = _when(index=True)
    old_input_usd_per_million: Decimal | None = _price()
    new_input_usd_per_million: Decimal | None = _price()
    old_output_usd_per_million: Decimal | None = _price()
    new_output_usd_per_million: Decimal | None = _price()
    snapshot_id: int = Field(foreign_key="snapshot.id")


class PriceBaselineRow(SQLModel, table=True):
    """The last accepted non-null price of each model and price kind: what the gate compares a
    proposed price with, so a run listing a model without a price erases nothing."""

    __tablename__ = "price_baseline"

    model_id: str = Field(primary_key=True, max_length=200)
    kind: str = Field(primary_key=True, max_length=32)  # domain.PriceKind
    usd_per_million: Decimal = Field(sa_type=DecimalText, nullable=False)
    accepted_at: datetime = _when()
    snapshot_id: int = Field(foreign_key="snapshot.id")


class HeldPriceRow(SQLModel, table=True):
    """A proposed price the gate held; open while ``resolved_at`` is null."""

    __tablename__ = "held_price"

    id: int | None = Field(default=None, primary_key=True)
    model_id: str = Field(max_length=200, index=True)
    run_id: int = Field(foreign_key="refresh_run.id", index=True)
    reason: str = Field(max_length=32)  # domain.HoldReason
    detail: str = Field(sa_type=sa.Text)
    proposed_input_usd_per_million: Decimal | None = _price()
    proposed_output_usd_per_million: Decimal | None = _price()
    accepted_input_usd_per_million: Decimal | None = _price()
    accepted_output_usd_per_million: Decimal | None = _price()
    # The whole proposed row (display name, modalities...), applied as is when accepted.
    proposal: dict[str, Any] = Field(default_factory=dict, sa_type=sa.JSON)
    held_at: datetime = _when()
    resolved_at: datetime | None = _when(nullable=True)
    resolution: str | None = Field(default=None, max_length=16)  # domain.HoldResolution
    resolved_by: str | None = Field(default=None, max_length=64)
    # What the second source said (second_source holds), and which figure an operator accepted.
    second_input_usd_per_million: Decimal | None = _price()
    second_output_usd_per_million: Decimal | None = _price()
    second_source: str | None = Field(default=None, max_length=200)
    accepted_figure: str | None = Field(default=None, max_length=16)  # proposed | second_source


class RefreshLockRow(SQLModel, table=True):
    """The single-flight lock when no Redis is configured."""

    __tablename__ = "refresh_lock"

    name: str = Field(primary_key=True, max_length=64)
    holder: str | None = Field(default=None, max_length=128)
    run_id: int | None = None
    expires_at: datetime | None = _when(nullable=True)


class RevokedSessionRow(SQLModel, table=True):
    """A console session ended by "Salir" before its cookie expires (every worker and replica
    reads it); a row is useless once ``expires_at`` passes and is purged then."""

    __tablename__ = "revoked_session"

    sid: str = Field(primary_key=True, max_length=64)
    expires_at: datetime = _when(index=True)


class CopRateRow(SQLModel, table=True):
    """A USD -> COP rate the service fetched (PRICING_COP_RATE_SOURCE=trm), with the dates it is
    valid for. The newest accepted row is served; a held one waits for an operator (rates.py).
    One row per (source, valid_from, rate): every worker may fetch the same day's rate."""

    __tablename__ = "cop_rate"
    __table_args__ = (sa.UniqueConstraint("source", "valid_from", "rate", name="uq_cop_rate"),)

    id: int | None = Field(default=None, primary_key=True)
    source: str = Field(max_length=16)  # "trm"
    rate: Decimal = Field(sa_type=DecimalText, nullable=False)
    valid_from: date = Field(sa_type=sa.Date, nullable=False, index=True)
    valid_to: date | None = Field(default=None, sa_type=sa.Date, nullable=True)
    fetched_at: datetime = _when()
    checked_at: datetime = _when()  # the last fetch that gave this same rate
    status: str = Field(max_length=16, index=True)  # accepted | held | superseded
    reason: str | None = Field(default=None, sa_type=sa.Text)  # why held
    resolved_at: datetime | None = _when(nullable=True)
    resolved_by: str | None = Field(default=None, max_length=64)


class WebhookEventRow(SQLModel, table=True):
    """The outbox: one row per event, written in the transaction of the change it reports.

    ``dedupe_key`` (unique when set) makes an event that must be told once per period
    (``refresh.failing``, ``refresh.recovered``) impossible to record twice.
    """

    __tablename__ = "webhook_event"

    id: int | None = Field(default=None, primary_key=True)
    type: str = Field(max_length=32, index=True)  # a webhooks.events.EventType
    created_at: datetime = _when(index=True)
    data: dict[str, Any] = Field(default_factory=dict, sa_type=sa.JSON)
    dedupe_key: str | None = Field(default=None, max_length=128, unique=True)


class WebhookDeliveryRow(SQLModel, table=True):
    """One event for one endpoint: pending until delivered or dead after the last attempt.

    A worker claims a due row until ``claimed_until`` (its lease): a killed worker's claim
    expires and another worker takes the row over.
    """

    __tablename__ = "webhook_delivery"
    __table_args__ = (sa.UniqueConstraint("event_id", "endpoint", name="uq_webhook_delivery"),)

    id: int | None = Field(default=None, primary_key=True)
    event_id: int = Field(foreign_key="webhook_event.id", index=True)
    endpoint: str = Field(max_length=2000)
    format: str = Field(max_length=16)  # a WebhookFormat
    status: str = Field(max_length=16, index=True)  # a DeliveryStatus
    attempts: int = 0
    next_attempt_at: datetime = _when(index=True)
    claimed_until: datetime | None = _when(nullable=True)
    claimed_by: str | None = Field(default=None, max_length=128)
    last_attempt_at: datetime | None = _when(nullable=True)
    last_status: int | None = None
    last_error: str | None = Field(default=None, sa_type=sa.Text)
    delivered_at: datetime | None = _when(nullable=True)
    created_at: datetime = _when()


metadata = SQLModel.metadata
