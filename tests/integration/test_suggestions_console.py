"""The console's Sugerencias page: the curation assistant beside the curated lists.

Over the recorded listing (stored directly), compared with what `suggest` computes for the
same prices and catalog: the page shows the same kept / add / drop lists and the figures
behind each rank.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import AsyncTestClient

from pricing_service.app import create_app
from pricing_service.catalog import load_catalog
from pricing_service.console.format import number
from pricing_service.suggest import suggest
from tests.support.recorded_service import (
    ADMIN,
    recorded_listing,
    seed_snapshot,
    service_settings,
)

pytestmark = pytest.mark.integration

CATALOG = load_catalog(Path(__file__).resolve().parents[2] / "catalog")


def csrf_of(html: str) -> str:
    return html.split('name="csrf" value="', 1)[1].split('"', 1)[0]


async def login(client: Any) -> None:
    form = await client.get("/admin/ingresar")
    answer = await client.post(
        "/admin/ingresar",
        data={"csrf": csrf_of(form.text), "token": ADMIN},
        follow_redirects=False,
    )
    assert answer.status_code == 303, answer.text


def section(html: str, category_id: str) -> str:
    match = re.search(
        rf'<section class="suggestion" data-category="{category_id}">(.*?)</section>', html, re.S
    )
    assert match is not None, f"no section for {category_id}"
    return match.group(1)


def listed(html: str, css: str) -> list[str]:
    match = re.search(rf'<dd class="{css}">(.*?)</dd>', html, re.S)
    assert match is not None, css
    return re.findall(r'data-model="([^"]+)"', match.group(1))


async def test_the_page_shows_the_suggestion_beside_the_curation(sqlite_url: str) -> None:
    seed_snapshot(sqlite_url)
    async with AsyncTestClient(create_app(service_settings(sqlite_url))) as client:
        # Without a session: to the login form, nothing of the page.
        anonymous = await client.get("/admin/sugerencias", follow_redirects=False)
        assert anonymous.status_code == 303
        await login(client)
        page = await client.get("/admin/sugerencias")
        assert page.status_code == 200
        assert '<a href="/admin/sugerencias" aria-current="page">Sugerencias</a>' in page.text
        prices = recorded_listing().prices
        weighted = [c for c in CATALOG.categories if c.weights]
        assert {"coding", "fast"} <= {c.id for c in weighted}
        for category in weighted:
            expected = suggest(category, prices, CATALOG)
            html = section(page.text, category.id)
            assert listed(html, "kept") == list(expected.kept)
            assert listed(html, "add") == list(expected.add)
            assert listed(html, "drop") == list(expected.drop)
            ranked = re.findall(r'<tr data-ranked="([^"]+)"', html)
            assert ranked == [r.model_id for r in expected.ranked]
            for metric, _ in category.weights:
                assert f">{metric}</th>" in html
            # The figures behind the first rank, as the console formats them.
            first = expected.ranked[0]
            row = html.split(f'<tr data-ranked="{first.model_id}"', 1)[1].split("</tr>", 1)[0]
            assert number(first.score, 3) in row
            for metric, value in first.figures.items():
                assert f'data-label="{metric}">{number(value)}</td>' in row
        fast = section(page.text, "fast")
        assert "cognitia_llm_zerogpu.phi3" in fast  # not judged, shown as such
        # Local, specials: no weights, no section.
        assert 'data-category="local"' not in page.text

        one = await client.get("/admin/sugerencias", params={"categoria": "coding"})
        assert 'data-category="coding"' in one.text
        assert 'data-category="fast"' not in one.text
        bad = await client.get("/admin/sugerencias", params={"categoria": "local"})
        assert bad.status_code == 400

        # The selector links each weighted category to its suggestion.
        selector = await client.get("/admin/selector", params={"categoria": "coding"})
        assert 'href="/admin/sugerencias?categoria=coding"' in selector.text
