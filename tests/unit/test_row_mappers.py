"""The bulk rows' mappers: a store inserts their dicts as they are (one Core executemany per
table), so a column a mapper left out would be stored null (or its server default), not the
model's default."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

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
from pricing_service.tables import HeldPriceRow, ModelPriceRow, PriceEventRow, PriceHistoryRow
from tests.support.recording import normalized_recording

AT = datetime(2026, 4, 29, 8, 14, tzinfo=UTC)
PRICES = normalized_recording().prices


def _columns(table: Any) -> set[str]:
    """Every column but a database-assigned id."""
    columns = table.__table__
    return {c.name for c in columns.columns if c is not columns.autoincrement_column}


def test_every_mapper_gives_every_column() -> None:
    price = PRICES[0]
    doubt = Doubt(price.model_id, HoldReason.RATIO, "moved", price, None)
    event = Event(price.model_id, ChangeKind.ADDED, None, price)
    assert set(price_row(price, 1)) == _columns(ModelPriceRow)
    assert set(history_row(price, 1, AT)) == _columns(PriceHistoryRow)
    assert set(event_row(event, 1, AT)) == _columns(PriceEventRow)
    assert set(held_row(doubt, 1, AT)) == _columns(HeldPriceRow)


@pytest.mark.parametrize("index", range(0, len(PRICES), 37))
def test_a_price_row_reads_back_as_the_price(index: int) -> None:
    price = PRICES[index]
    assert model_price(ModelPriceRow(**price_row(price, 1))) == price


def test_tiers_and_a_delisting_read_back() -> None:
    tier = LongContextTier(
        kind="input",
        start=200_000,
        usd_per_million=Decimal("2.5"),
        base_usd_per_million=Decimal("1.25"),
        source="genai-prices",
    )
    price = replace(PRICES[0], long_context_tiers=(tier,), listed=False, delisted_at=AT)
    assert model_price(ModelPriceRow(**price_row(price, 1))) == price


def test_an_event_and_a_hold_read_back() -> None:
    old, new = PRICES[0], replace(PRICES[0], input_usd_per_million=Decimal("9.75"))
    change = price_change(
        PriceEventRow(**event_row(Event(old.model_id, ChangeKind.CHANGED, old, new), 1, AT))
    )
    assert (change.kind, change.changed_at) == (ChangeKind.CHANGED, AT)
    assert change.old_input_usd_per_million == old.input_usd_per_million
    assert change.new_input_usd_per_million == Decimal("9.75")
    held = held_price(
        HeldPriceRow(**held_row(Doubt(new.model_id, HoldReason.RATIO, "x", new, old), 7, AT))
    )
    assert (held.run_id, held.reason, held.held_at, held.resolved_at) == (
        7,
        HoldReason.RATIO,
        AT,
        None,
    )
    assert held.proposed_input_usd_per_million == Decimal("9.75")
    assert held.accepted_input_usd_per_million == old.input_usd_per_million
