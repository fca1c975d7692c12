"""A deployment in another local currency: every answer, the Space picker and the console show
the row of ``currency.CURRENCIES`` it is configured with (``PRICING_CURRENCY``), none COP.

Run for every row of the table and for XTS (``tests/support/currencies.py``, a row the table
does not have, with other separators, places and whole units than COP's), each on the recorded
listing over a real app: ``*_cop_*`` fields keep their names (the wire's) and hold amounts in
``currency.code``; every display string ends with that code; no text says COP, but the name of
the setting the rate comes from.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

import pytest
from litestar.testing import AsyncTestClient

from pricing_service.app import create_app
from pricing_service.currency import CURRENCIES, Currency
from tests.support.currencies import XTS
from tests.support.recorded_service import ADMIN, seed_snapshot, service_settings

pytestmark = pytest.mark.integration

RATE = Decimal("17.5")
ANSWERS = (
    "/api/v1/pricing/models?view=curated",
    "/api/v1/pricing/models?view=all",
    "/api/v1/pricing/models?ids=gpt-4o,llama3:8b,gpt-image-1,no-such-model",
    "/api/v1/pricing/prices",
    "/api/v1/pricing/local",
    "/api/v1/pricing/estimate?model_id=gemini-2.5-pro&input_tokens=250000&output_tokens=500",
    "/ready",
)
PAGES = ("/admin", "/admin/selector", "/admin/modelo?id=gpt-4o", "/admin/ollama")


@pytest.fixture(params=[*CURRENCIES, XTS.code])
def local(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Currency:
    monkeypatch.setitem(CURRENCIES, XTS.code, XTS)
    return CURRENCIES[request.param]


def _strings(value: Any, key: str = "") -> list[tuple[str, str]]:
    if isinstance(value, dict):
        return [pair for k, v in value.items() for pair in _strings(v, k)]
    if isinstance(value, list):
        return [pair for v in value for pair in _strings(v, key)]
    return [(key, value)] if isinstance(value, str) else []


def _no_other_currency(text: str, local: Currency) -> None:
    others = {code for code in (*CURRENCIES, "COP") if code != local.code}
    said = set(re.findall(r"\b[A-Z]{3}\b", text.replace("PRICING_USD_TO_COP", ""))) & others
    assert not said, said


async def test_every_answer_and_page_is_in_the_local_currency(
    sqlite_url: str, local: Currency
) -> None:
    seed_snapshot(sqlite_url)
    settings = service_settings(
        sqlite_url, pricing_currency=local.code.lower(), pricing_usd_to_cop=RATE
    )
    async with AsyncTestClient(create_app(settings)) as client:
        answers = {path: (await client.get(path)).json() for path in ANSWERS}
        answers["POST estimate"] = (
            await client.post(
                "/api/v1/pricing/estimate",
                json={
                    "model_id": "gpt-4o",
                    "usage": {"prompt_tokens": 1200, "completion_tokens": 3},
                },
            )
        ).json()
        form = await client.get("/admin/ingresar")
        csrf = form.text.split('name="csrf" value="', 1)[1].split('"', 1)[0]
        login = await client.post(
            "/admin/ingresar", data={"csrf": csrf, "token": ADMIN}, follow_redirects=False
        )
        assert login.status_code == 303, login.text
        pages = {path: (await client.get(path)).text for path in PAGES}

    for path, body in answers.items():
        currency = body["currency"]
        assert (currency["code"], currency["rate"]) == (local.code, float(RATE)), path
        assert currency["rounding"] == local.rounding_rule, path
        displays = [text for key, text in _strings(body) if key.endswith("_display")]
        assert all(text.endswith(f" {local.code}") for text in displays), (path, displays)
        for key, text in _strings(body):
            if key != "rounding":
                _no_other_currency(text, local)
    # The amounts are the rule's at the rate, shown as the row shows them.
    gpt_4o = answers[ANSWERS[2]]["items"][0]
    assert gpt_4o["input_cop_per_million"] == float(Decimal("2.5") * RATE)
    assert gpt_4o["input_cop_per_10k_display"] == local.format(Decimal("2.5") * RATE / 100)
    assert gpt_4o["price_label"].endswith(" por mensaje")
    assert local.code in gpt_4o["price_label"]
    image = answers[ANSWERS[2]]["items"][2]
    assert local.format(Decimal(40) * RATE / 100) in image["price_label"]
    post = answers["POST estimate"]
    assert post["total_cop_display"] == local.format(Decimal(post["total_usd"]) * RATE)
    space = answers["/api/v1/pricing/local"]
    assert all(s["total_cop_per_month_display"].endswith(local.code) for s in space["scenarios"])

    assert f"Tasa USD → {local.code}" in pages["/admin"]
    assert f"{local.code} por hora" in pages["/admin/ollama"]
    assert local.format(Decimal("2.5") * RATE) in pages["/admin/modelo?id=gpt-4o"]
    for path, html in pages.items():
        _no_other_currency(html, local)
        assert local.code in html, path
