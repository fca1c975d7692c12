"""Control and bidi characters in upstream text are removed at normalization and counted
(issue 19, the edge): U+202E would show "gpt-4o" as "o4-tpg", a NUL failed PostgreSQL."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from pricing_service.listings.pricepertoken_rows import normalize_listing
from pricing_service.normalize import UNSAFE_TEXT, clean_text, unsafe_text_count

RECORDING = Path(__file__).resolve().parents[1] / "fixtures" / "pricepertoken" / "2026-04-29"
ROWS: list[dict[str, Any]] = json.loads((RECORDING / "get_all_models.json").read_text())
DETAILS: dict[str, dict[str, Any]] = {
    d["slug"]: d for d in json.loads((RECORDING / "get_model.json").read_text())
}
SLUG = "openai-gpt-4o"


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("GPT\u202e-4o", "GPT-4o"),
        ("\u2066GPT-4o\u2069", "GPT-4o"),
        ("GPT\x00-4o\n", "GPT-4o"),
        ("one\ntwo\tthree", "one two three"),
        ("GPT\x1b[31m-4o", "GPT[31m-4o"),
        ("GPT\x85-4o\x7f", "GPT-4o"),
        ("Añadido — ¿sí? 模型 ✓", "Añadido — ¿sí? 模型 ✓"),  # printable text stays as it is
    ],
)
def test_clean_text(given: str, expected: str) -> None:
    assert clean_text(given) == expected
    assert not UNSAFE_TEXT.search(clean_text(given))


def test_unsafe_strings_are_counted_in_nested_payloads() -> None:
    payload = {"a": "x\u202ey", "b": ["ok", "n\x00"], "c": {"k\x07": 1}, "d": 3}
    assert unsafe_text_count(payload) == 3
    assert unsafe_text_count({"clean": ["text"]}) == 0


def test_the_recorded_listing_has_no_unsafe_text() -> None:
    assert normalize_listing(ROWS, DETAILS).text_cleaned == 0


def test_upstream_text_is_cleaned_and_counted() -> None:
    rows = copy.deepcopy(ROWS)
    details = copy.deepcopy(DETAILS)
    row = next(r for r in rows if r["slug"] == SLUG)
    row["model_name"] = "GPT\u202e-4o\x00"
    details[SLUG]["pricing_source"] = "\u2067openai.com/pricing\u2069"
    details[SLUG]["modalities"] = {"input": ["text\x1b", "image"], "output": ["text"]}
    listing = normalize_listing(rows, details)
    price = next(p for p in listing.prices if p.slug == SLUG)
    assert price.display_name == "GPT-4o"
    assert price.pricing_source == "openai.com/pricing"
    assert price.input_modalities == ("image", "text")
    assert listing.rows_rejected == 0
    assert listing.text_cleaned == 3
