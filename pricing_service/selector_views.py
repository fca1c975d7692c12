"""The selector's two views of one snapshot, assembled once: which items, in what order, in
which categories; pure.

``curated``: the catalog's normal categories and their items, in the catalog's order, without
specials. ``all``: the curated items first (their spelling is the one items show), then every
other model (the snapshot's, the overrides', the local ones) by provider and id, with the
specials category holding every special item. Category lists hold item model_ids, without
repeats.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pricing_service.domain import View
from pricing_service.item_builder import item_dict

if TYPE_CHECKING:
    from collections.abc import Sequence

    from pricing_service.domain import Catalog, Category, ModelPrice
    from pricing_service.item_builder import ItemBuilder
    from pricing_service.resolver import ModelKey, Resolver
    from pricing_service.selector_item import SelectorItem

__all__ = ["SPECIALS_CATEGORY", "Views", "category_dict"]

SPECIALS_CATEGORY = "specials"


@dataclass(frozen=True, slots=True)
class Views:
    """Both views' items (rendered dicts) and categories; ``all_by_key``: view=all by model."""

    curated_items: list[dict[str, Any]]
    curated_categories: list[dict[str, Any]]
    all_items: list[dict[str, Any]]
    all_categories: list[dict[str, Any]]
    all_by_key: dict[ModelKey, dict[str, Any]]

    def of(self, view: View) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """The items and categories of ``view``: the one place a view is mapped to its lists
        (a new ``View`` member gets its lists here and in ``build``)."""
        if view is View.CURATED:
            return self.curated_items, self.curated_categories
        return self.all_items, self.all_categories

    @classmethod
    def build(
        cls,
        catalog: Catalog,
        prices: Sequence[ModelPrice],
        resolver: Resolver,
        builder: ItemBuilder,
    ) -> Views:
        items = _Items(resolver, builder)
        # Curated ids first, so their spelling is the one items show.
        # Ordered sets (dicts): the listing may hold tens of thousands of models.
        curated_keys = list(
            dict.fromkeys(
                items.key_of(mid) for category in catalog.categories for mid in category.model_ids
            )
        )
        curated_set = set(curated_keys)
        others = [
            *(items.key_of(p.model_id) for p in prices),
            *(items.key_of(o.model_id) for o in resolver.overrides),
            *(items.key_of(mid) for m in catalog.local_models for mid in m.ids),
        ]
        rest_keys = [k for k in dict.fromkeys(others) if k not in curated_set]
        rest_keys.sort(key=lambda k: (items[k].provider or "", items[k].model_id))
        all_keys = [*curated_keys, *rest_keys]

        normal = [c for c in catalog.categories if c.id != SPECIALS_CATEGORY]
        curated_lists = {c.id: items.members(c) for c in normal}
        all_lists = dict(curated_lists)
        specials_category = catalog.category(SPECIALS_CATEGORY)
        if specials_category is not None:
            special_keys = list(dict.fromkeys(items.key_of(m) for m in specials_category.model_ids))
            listed = set(special_keys)
            special_keys += [
                k for k in all_keys if items[k].special is not None and k not in listed
            ]
            all_lists[SPECIALS_CATEGORY] = [items[k].model_id for k in special_keys]

        curated_categories = [category_dict(c, curated_lists[c.id]) for c in normal]
        all_categories = [
            category_dict(c, all_lists[c.id]) for c in catalog.categories if c.id in all_lists
        ]
        curated_view_keys = [
            k
            for k in curated_keys
            if items[k].special is None
            and any(items[k].model_id in ids for ids in curated_lists.values())
        ]
        all_items = items.rendered(all_keys, all_categories)
        return cls(
            curated_items=items.rendered(curated_view_keys, curated_categories),
            curated_categories=curated_categories,
            all_items=all_items,
            all_categories=all_categories,
            all_by_key=dict(zip(all_keys, all_items, strict=True)),
        )


def category_dict(category: Category, model_ids: list[str]) -> dict[str, Any]:
    return {
        "id": category.id,
        "name": category.name,
        "emoji": category.emoji,
        "description": category.description,
        "order": category.order,
        "model_ids": model_ids,
    }


class _Items:
    """Each model's item while the views are assembled: built on first use, named by the first
    spelling that asked for it."""

    def __init__(self, resolver: Resolver, builder: ItemBuilder) -> None:
        self._resolver = resolver
        self._builder = builder
        self._by_key: dict[ModelKey, SelectorItem] = {}

    def key_of(self, requested: str) -> ModelKey:
        key, price = self._resolver.resolve(requested)
        if key not in self._by_key:
            self._by_key[key] = self._builder.build(key, requested, price)
        return key

    def __getitem__(self, key: ModelKey) -> SelectorItem:
        return self._by_key[key]

    def members(self, category: Category) -> list[str]:
        """The item model_ids of a category: its curated ids, without specials or repeats."""
        keys: list[ModelKey] = []
        for mid in category.model_ids:
            key = self.key_of(mid)
            if self._by_key[key].special is None and key not in keys:
                keys.append(key)
        return [self._by_key[k].model_id for k in keys]

    def rendered(
        self, keys: list[ModelKey], categories: list[dict[str, Any]]
    ) -> list[dict[str, Any]]:
        """The items of ``keys`` as a view renders them, each in its categories of the view."""
        membership: dict[str, list[str]] = {}
        for category in categories:
            for mid in category["model_ids"]:
                membership.setdefault(mid, []).append(category["id"])
        return [
            item_dict(item, membership.get(item.model_id, []))
            for item in (self._by_key[key] for key in keys)
        ]
