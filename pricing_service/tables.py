"""The database tables (SQLAlchemy Core): the shape only; alembic reads their metadata.

Every module reads and writes them as ``tables.<name>`` (``tables.refresh_run.c.status``): Core
statements on a ``Connection``, rows read by attribute (``row.status``). No ORM: a serving
worker never imports ``sqlalchemy.orm``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy.types import TypeDecorator


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


metadata = sa.MetaData()


def _id() -> sa.Column[int]:
    return sa.Column("id", sa.Integer, primary_key=True)


def _text(
    name: str,
    length: int,
    *,
    nullable: bool = False,
    primary_key: bool = False,
    index: bool | None = None,
    unique: bool | None = None,
) -> sa.Column[str]:
    return sa.Column(
        name,
        sa.String(length),
        nullable=nullable,
        primary_key=primary_key,
        index=index,
        unique=unique,
    )


def _price(name: str) -> sa.Column[Decimal]:
    return sa.Column(name, DecimalText, nullable=True)


def _when(name: str, *, nullable: bool = False, index: bool = False) -> sa.Column[datetime]:
    return sa.Column(name, UtcDateTime, nullable=nullable, index=index)


def _int(name: str, *, nullable: bool = True) -> sa.Column[int]:
    return sa.Column(name, sa.Integer, nullable=nullable)


refresh_run = sa.Table(
    "refresh_run",
    metadata,
    _id(),
    _text("trigger", 32),
    _text("status", 16, index=True),
    _when("started_at", index=True),
    _when("finished_at", nullable=True),
    _int("rows_seen"),
    _int("priced"),
    _int("unknown"),
    _int("changes"),
    sa.Column("error", sa.Text, nullable=True),
    _int("upstream_latency_ms"),
    _int("snapshot_id"),
    sa.Column("held_reason", sa.Text, nullable=True),
    _when("accepted_at", nullable=True),
    _text("accepted_by", 64, nullable=True),
    _int("rows_rejected"),
    # Which process runs it ("host:pid") and what it is doing (RunPhase): a run whose process
    # was killed is closed as abandoned naming both.
    _text("worker", 128, nullable=True),
    _text("phase", 16, nullable=True),
    # A held run's normalized listing, kept until it is accepted or superseded.
    sa.Column("proposal", sa.JSON, nullable=True),
    # The run's prices compared with the second source (genai-prices): counts, version, and
    # the disagreements with both figures.
    _int("cross_agree"),
    _int("cross_disagree"),
    _int("cross_uncovered"),
    _text("second_source_version", 64, nullable=True),
    sa.Column("cross_source", sa.JSON, nullable=True),
)

snapshot = sa.Table(
    "snapshot",
    metadata,
    _id(),
    sa.Column("run_id", sa.Integer, sa.ForeignKey("refresh_run.id"), nullable=True),
    _when("fetched_at", index=True),
    _text("source", 32),
    _int("model_count", nullable=False),
    _int("priced", nullable=False),
    _int("unknown", nullable=False),
    sa.Column("field_names", sa.JSON, nullable=False, default=list),
    sa.Column("unmatched_ids", sa.JSON, nullable=False, default=list),
    # The raw upstream rows by model id, for the admin debug sample; pruned on old snapshots.
    sa.Column("raw_rows", sa.JSON, nullable=True),
)

# The current price of each model: the last good snapshot.
model_price = sa.Table(
    "model_price",
    metadata,
    _text("model_id", 200, primary_key=True),
    _text("slug", 200, nullable=True),
    _text("provider", 100),
    _text("display_name", 300),
    _price("input_usd_per_million"),
    _price("output_usd_per_million"),
    _price("cache_read_usd_per_million"),
    _price("cache_write_usd_per_million"),
    # USD per 1,000 calls (domain.PriceKind.WEB_SEARCH, REQUEST) and whose figures they are.
    _price("web_search_usd_per_thousand"),
    _price("request_usd_per_thousand"),
    _text("call_prices_source", 200, nullable=True),
    # Long-context tiers (domain.LongContextTier as JSON: kind, start, the two prices as
    # strings, source), the second source's, written by the refresh; null: none.
    sa.Column("long_context_tiers", sa.JSON, nullable=True),
    _text("price_basis", 16),
    _int("context_window"),
    sa.Column("capabilities", sa.JSON, nullable=False, default=list),
    sa.Column("input_modalities", sa.JSON, nullable=False, default=list),
    sa.Column("output_modalities", sa.JSON, nullable=False, default=list),
    _text("pricing_source", 200, nullable=True),
    sa.Column("snapshot_id", sa.Integer, sa.ForeignKey("snapshot.id"), nullable=False, index=True),
    sa.Column("listed", sa.Boolean, nullable=False, default=True, server_default=sa.true()),
    _when("delisted_at", nullable=True),
    # get_model's benchmark scores ({name: score or null}), speed and description.
    sa.Column("benchmarks", sa.JSON, nullable=True),
    sa.Column("tokens_per_second", sa.Float, nullable=True),
    sa.Column("time_to_first_token", sa.Float, nullable=True),
    sa.Column("description", sa.Text, nullable=True),
)

# Every version of a model's price; ``valid_to`` is null for the current one.
price_history = sa.Table(
    "price_history",
    metadata,
    _id(),
    _text("model_id", 200),
    _price("input_usd_per_million"),
    _price("output_usd_per_million"),
    _text("price_basis", 16),
    _when("valid_from", index=True),
    _when("valid_to", nullable=True),
    sa.Column("snapshot_id", sa.Integer, sa.ForeignKey("snapshot.id"), nullable=False),
    sa.Index("ix_price_history_model_valid_from", "model_id", "valid_from"),
)

# The change feed: one row per price change, arrival or removal, as it was applied.
price_event = sa.Table(
    "price_event",
    metadata,
    _id(),
    _text("model_id", 200),
    _text("kind", 16),
    _when("changed_at", index=True),
    _price("old_input_usd_per_million"),
    _price("new_input_usd_per_million"),
    _price("old_output_usd_per_million"),
    _price("new_output_usd_per_million"),
    sa.Column("snapshot_id", sa.Integer, sa.ForeignKey("snapshot.id"), nullable=False),
    sa.Index("ix_price_event_model_changed_at", "model_id", "changed_at"),
)

# The last accepted non-null price of each model and price kind: what the gate compares a
# proposed price with, so a run listing a model without a price erases nothing.
price_baseline = sa.Table(
    "price_baseline",
    metadata,
    _text("model_id", 200, primary_key=True),
    _text("kind", 32, primary_key=True),  # domain.PriceKind
    sa.Column("usd_per_million", DecimalText, nullable=False),
    _when("accepted_at"),
    sa.Column("snapshot_id", sa.Integer, sa.ForeignKey("snapshot.id"), nullable=False),
)

# A proposed price the gate held; open while ``resolved_at`` is null.
held_price = sa.Table(
    "held_price",
    metadata,
    _id(),
    _text("model_id", 200, index=True),
    sa.Column("run_id", sa.Integer, sa.ForeignKey("refresh_run.id"), nullable=False, index=True),
    _text("reason", 32),  # domain.HoldReason
    sa.Column("detail", sa.Text, nullable=False),
    _price("proposed_input_usd_per_million"),
    _price("proposed_output_usd_per_million"),
    _price("accepted_input_usd_per_million"),
    _price("accepted_output_usd_per_million"),
    # The whole proposed row (display name, modalities...), applied as is when accepted.
    sa.Column("proposal", sa.JSON, nullable=False, default=dict),
    _when("held_at"),
    _when("resolved_at", nullable=True),
    _text("resolution", 16, nullable=True),  # domain.HoldResolution
    _text("resolved_by", 64, nullable=True),
    # What the second source said (second_source holds), and which figure an operator accepted.
    _price("second_input_usd_per_million"),
    _price("second_output_usd_per_million"),
    _text("second_source", 200, nullable=True),
    _text("accepted_figure", 16, nullable=True),  # proposed | second_source
)

# The single-flight lock when no Redis is configured.
refresh_lock = sa.Table(
    "refresh_lock",
    metadata,
    _text("name", 64, primary_key=True),
    _text("holder", 128, nullable=True),
    _int("run_id"),
    _when("expires_at", nullable=True),
)

# A console session ended by "Salir" before its cookie expires (every worker and replica reads
# it); a row is useless once ``expires_at`` passes and is purged then.
revoked_session = sa.Table(
    "revoked_session",
    metadata,
    _text("sid", 64, primary_key=True),
    _when("expires_at", index=True),
)

# A USD -> COP rate the service fetched (PRICING_COP_RATE_SOURCE=trm), with the dates it is
# valid for. The newest accepted row is served; a held one waits for an operator (rates.py).
# One row per (source, valid_from, rate): every worker may fetch the same day's rate.
cop_rate = sa.Table(
    "cop_rate",
    metadata,
    _id(),
    _text("source", 16),  # "trm"
    sa.Column("rate", DecimalText, nullable=False),
    sa.Column("valid_from", sa.Date, nullable=False, index=True),
    sa.Column("valid_to", sa.Date, nullable=True),
    _when("fetched_at"),
    _when("checked_at"),  # the last fetch that gave this same rate
    _text("status", 16, index=True),  # accepted | held | superseded
    sa.Column("reason", sa.Text, nullable=True),  # why held
    _when("resolved_at", nullable=True),
    _text("resolved_by", 64, nullable=True),
    sa.UniqueConstraint("source", "valid_from", "rate", name="uq_cop_rate"),
)

# The outbox: one row per event, written in the transaction of the change it reports.
# ``dedupe_key`` (unique when set) makes an event that must be told once per period
# (``refresh.failing``, ``refresh.recovered``) impossible to record twice.
webhook_event = sa.Table(
    "webhook_event",
    metadata,
    _id(),
    _text("type", 32, index=True),  # a webhooks.events.EventType
    _when("created_at", index=True),
    sa.Column("data", sa.JSON, nullable=False, default=dict),
    _text("dedupe_key", 128, nullable=True, unique=True),
)

# One event for one endpoint: pending until delivered or dead after the last attempt. A worker
# claims a due row until ``claimed_until`` (its lease): a killed worker's claim expires and
# another worker takes the row over.
webhook_delivery = sa.Table(
    "webhook_delivery",
    metadata,
    _id(),
    sa.Column(
        "event_id", sa.Integer, sa.ForeignKey("webhook_event.id"), nullable=False, index=True
    ),
    _text("endpoint", 2000),
    _text("format", 16),  # a WebhookFormat
    _text("status", 16, index=True),  # a DeliveryStatus
    sa.Column("attempts", sa.Integer, nullable=False, default=0),
    _when("next_attempt_at", index=True),
    _when("claimed_until", nullable=True),
    _text("claimed_by", 128, nullable=True),
    _when("last_attempt_at", nullable=True),
    _int("last_status"),
    sa.Column("last_error", sa.Text, nullable=True),
    _when("delivered_at", nullable=True),
    _when("created_at"),
    sa.UniqueConstraint("event_id", "endpoint", name="uq_webhook_delivery"),
)
