"""Edits to the catalog's TOML that keep the file as a person wrote it; pure (text in, text out).

tomlkit keeps comments, blank lines, key order and quoting; the stdlib's tomllib only reads.
Used by ``pricing-service catalog suggest --write``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import tomlkit
from tomlkit.items import Table

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence


def rewrite_curated(text: str, lists: Mapping[str, Sequence[str]]) -> str:
    """``text`` (categories.toml) with ``[curated]``'s lists for ``lists``' categories replaced.

    Only those lists change: every comment and every other table stays as it is (a comment
    inside a replaced list goes with the list). Each list is written one id a line, like the
    hand-written ones. A category not already under ``[curated]`` is an error: the curator adds
    categories, this only edits their lists.
    """
    doc = tomlkit.parse(text)
    curated = doc.get("curated")
    if not isinstance(curated, Table):
        raise ValueError("categories.toml has no [curated] table")
    for category_id, model_ids in lists.items():
        if category_id not in curated:
            raise ValueError(f"[curated] has no list for {category_id!r}")
        array = tomlkit.array()
        array.extend(model_ids)
        array.multiline(True)
        curated[category_id] = array
    return tomlkit.dumps(doc)
