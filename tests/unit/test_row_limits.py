"""Bounded rows: an upstream row over a storage limit is left out and listed, the rest stays."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from pricing_service import tables
from pricing_service.domain import NormalizedListing
from pricing_service.listings.pricepertoken_rows import normalize_listing
from pricing_service.normalize import (
    LIMITS,
    MAX_FIELD_NAMES,
    MAX_LISTED_REJECTIONS,
    REJECTED_ID_CHARS,
)

RECORDING = Path(__file__).resolve().parents[1] / "fixtures" / "pricepertoken" / "2026-04-29"
ROWS: list[dict[str, Any]] = json.loads((RECORDING / "get_all_models.json").read_text())
DETAILS: dict[str, dict[str, Any]] = {
    d["slug"]: d for d in json.loads((RECORDING / "get_model.json").read_text())
}
BASELINE = normalize_listing(ROWS, DETAILS)


def _column_length(table: sa.Table, name: str) -> int:
    column: sa.Column[Any] = table.c[name]
    assert isinstance(column.type, sa.String), (name, column.type)
    assert column.type.length is not None, name
    return column.type.length


def test_limits_fit_the_columns() -> None:
    for name, limit in LIMITS.items():
        assert limit <= _column_length(tables.model_price, name), name
    assert LIMITS["model_id"] <= _column_length(tables.price_history, "model_id")


def test_the_recorded_listing_fits() -> None:
    assert BASELINE.rows_rejected == 0
    assert BASELINE.rejected == ()


def _mutated(
    slug: str, *, row: dict[str, Any] | None = None, detail: dict[str, Any] | None = None
) -> NormalizedListing:
    rows = copy.deepcopy(ROWS)
    details = copy.deepcopy(DETAILS)
    target = next(r for r in rows if r["slug"] == slug)
    target.update(row or {})
    details[slug].update(detail or {})
    return normalize_listing(rows, details)


@pytest.mark.parametrize(
    ("row", "detail", "reason"),
    [
        ({}, {"model": "m" * 201}, "model_id longer than 200"),
        ({"model_name": "N" * 100_000}, {}, "display_name longer than 300"),
        ({"model_name": "GPT-4o \ud800"}, {}, "display_name holds NUL or invalid unicode"),
        ({}, {"author": "p" * 101}, "provider longer than 100"),
        ({}, {"pricing_source": "s" * 201}, "pricing_source longer than 200"),
        ({}, {"context_length": 2**31}, "context_window out of range"),
        ({}, {"capabilities": {f"c{n}": True for n in range(65)}}, "more than 64"),
        ({}, {"modalities": {"input": ["x" * 65]}}, "input_modalities: an entry"),
        ({"notes": "z" * 70_000}, {}, "raw row larger than"),
    ],
)
def test_a_row_over_a_limit_is_left_out_and_listed(
    row: dict[str, Any], detail: dict[str, Any], reason: str
) -> None:
    listing = _mutated("openai-gpt-4o", row=row, detail=detail)
    assert listing.rows_rejected == 1
    assert len(listing.rejected) == 1
    assert reason in listing.rejected[0].reason
    assert listing.rows_seen == BASELINE.rows_seen
    assert len(listing.prices) == len(BASELINE.prices) - 1
    assert "gpt-4o" not in {p.model_id for p in listing.prices}
    assert "gpt-4o" not in listing.raw_by_model_id
    assert {p.model_id for p in listing.prices} == {p.model_id for p in BASELINE.prices} - {
        "gpt-4o"
    }


def test_a_listed_id_is_short_and_storable() -> None:
    listing = _mutated("openai-gpt-4o", detail={"model": "\x00\ud800é" + "x" * 500})
    listed = listing.rejected[0].model_id
    assert len(listed) <= REJECTED_ID_CHARS
    assert listed.isprintable()
    listed.encode("utf-8")
    assert listed.startswith("?é")  # the NUL removed at normalization, the surrogate shown as ?


def test_every_rejection_is_counted_but_only_the_first_are_listed() -> None:
    rows = copy.deepcopy(ROWS)
    for row in rows[: MAX_LISTED_REJECTIONS + 20]:
        row["model_name"] = "N" * 400
    listing = normalize_listing(rows, DETAILS)
    assert listing.rows_rejected == MAX_LISTED_REJECTIONS + 20
    assert len(listing.rejected) == MAX_LISTED_REJECTIONS


def test_field_names_are_bounded() -> None:
    rows = copy.deepcopy(ROWS)
    for n, row in enumerate(rows):
        row[f"extra_{n}"] = 1
        row["k" * 200] = 1  # too long to list
        row["nul\x00"] = 1
    listing = normalize_listing(rows, DETAILS)
    assert listing.rows_rejected == 0
    assert len(listing.field_names) == MAX_FIELD_NAMES
    assert all(len(n) <= 100 and "\x00" not in n for n in listing.field_names)
