"""The documented body of GET /models (api/schemas.py) matches what curation.py renders.

The item is declared once (selector_item.SelectorItem): curation.py reads its keys from it and
the OpenAPI document describes it; the peso amounts are currency.CopPrice's fields.
"""

from __future__ import annotations

from dataclasses import fields

from pricing_service.api.schemas import SelectorItem, SelectorModels
from pricing_service.curation import ITEM_KEYS
from pricing_service.currency import CopPrice


def test_documented_item_fields_are_the_rendered_ones() -> None:
    assert tuple(SelectorItem.__struct_fields__) == ITEM_KEYS


def test_every_peso_amount_is_an_item_field() -> None:
    cop_keys = [f.name for f in fields(CopPrice)]
    start = ITEM_KEYS.index(cop_keys[0])
    assert list(ITEM_KEYS[start : start + len(cop_keys)]) == cop_keys


def test_documented_top_level_fields() -> None:
    assert set(SelectorModels.__struct_fields__) == {
        "items",
        "updated_at",
        "view",
        "category",
        "local",
        "categories",
        "currency",
        "snapshot",
    }
