"""The bulk rows' mappers: a store inserts their dicts as they are (one Core executemany per
table), so a column a mapper left out would be stored null (or its server default), not the
table's default; and a row written from a mapper's dict reads back as what it was made from."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import pytest
import sqlalchemy as sa

from pricing_service import tables
from pricing_service.domain import ChangeKind, HoldReason, LongContextTier
from pricing_service.gate import Doubt, Event
from pricing_service.rows import (
    event_row,
    held_price,
    held_row,
    history_row,
    model_price,
    price_change,
    price_row,
)
from tests.support.recording import normalized_recording

if TYPE_CHECKING:
    from collections.abc import Iterator

AT = datetime(2026, 4, 29, 8, 14, tzinfo=UTC)
PRICES = normalized_recording().prices


def _columns(table: sa.Table) -> set[str]:
    """Every column but a database-assigned id."""
    return {c.name for c in table.columns if c is not table.autoincrement_column}


@pytest.fixture(scope="module")
def engine() -> Iterator[sa.Engine]:
    engine = sa.create_engine("sqlite://", poolclass=sa.pool.StaticPool)
    tables.metadata.create_all(engine)
    yield engine
    engine.dispose()


def _stored(engine: sa.Engine, table: sa.Table, values: dict[str, Any]) -> sa.Row[Any]:
    """``values`` written to ``table`` and read back (a Core row, as the repository reads it)."""
    with engine.connect() as conn:
        inserted = conn.execute(sa.insert(table).values(**values))
        key = inserted.inserted_primary_key
        assert key is not None
        where = [c == v for c, v in zip(table.primary_key.columns, key, strict=True)]
        row = conn.execute(sa.select(table).where(*where)).one()
        conn.rollback()
    return row


def test_every_mapper_gives_every_column() -> None:
    price = PRICES[0]
    doubt = Doubt(price.model_id, HoldReason.RATIO, "moved", price, None)
    event = Event(price.model_id, ChangeKind.ADDED, None, price)
    assert set(price_row(price, 1)) == _columns(tables.model_price)
    assert set(history_row(price, 1, AT)) == _columns(tables.price_history)
    assert set(event_row(event, 1, AT)) == _columns(tables.price_event)
    assert set(held_row(doubt, 1, AT)) == _columns(tables.held_price)


@pytest.mark.parametrize("index", range(0, len(PRICES), 37))
def test_a_price_row_reads_back_as_the_price(engine: sa.Engine, index: int) -> None:
    price = PRICES[index]
    assert model_price(_stored(engine, tables.model_price, price_row(price, 1))) == price


def test_tiers_and_a_delisting_read_back(engine: sa.Engine) -> None:
    tier = LongContextTier(
        kind="input",
        start=200_000,
        usd_per_million=Decimal("2.5"),
        base_usd_per_million=Decimal("1.25"),
        source="genai-prices",
    )
    price = replace(PRICES[0], long_context_tiers=(tier,), listed=False, delisted_at=AT)
    assert model_price(_stored(engine, tables.model_price, price_row(price, 1))) == price


def test_an_event_and_a_hold_read_back(engine: sa.Engine) -> None:
    old, new = PRICES[0], replace(PRICES[0], input_usd_per_million=Decimal("9.75"))
    change = price_change(
        _stored(
            engine,
            tables.price_event,
            event_row(Event(old.model_id, ChangeKind.CHANGED, old, new), 1, AT),
        )
    )
    assert (change.kind, change.changed_at) == (ChangeKind.CHANGED, AT)
    assert change.old_input_usd_per_million == old.input_usd_per_million
    assert change.new_input_usd_per_million == Decimal("9.75")
    held = held_price(
        _stored(
            engine,
            tables.held_price,
            held_row(Doubt(new.model_id, HoldReason.RATIO, "x", new, old), 7, AT),
        )
    )
    assert (held.run_id, held.reason, held.held_at, held.resolved_at) == (
        7,
        HoldReason.RATIO,
        AT,
        None,
    )
    assert held.proposed_input_usd_per_million == Decimal("9.75")
    assert held.accepted_input_usd_per_million == old.input_usd_per_million
