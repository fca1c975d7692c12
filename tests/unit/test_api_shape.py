"""The documented body of GET /models (api/schemas.py) matches what curation.py renders."""

from __future__ import annotations

from pricing_service.api.schemas import SelectorItem, SelectorModels
from pricing_service.curation import ITEM_KEYS


def test_documented_item_fields_are_the_rendered_ones() -> None:
    assert tuple(SelectorItem.__struct_fields__) == ITEM_KEYS


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
