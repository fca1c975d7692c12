"""Accepting a held COP rate from the console, in a real browser (Playwright, Debian's Chromium).

A real server (uvicorn on a loopback port) in TRM mode against the loopback TRM stand-in. Before
it starts, the service's own RateKeeper fetched twice: 3912.45 (accepted) then 4499.32, a 15 %
jump, held. Estado shows both figures and an "Aceptar" button; pressing it does what
``pricing-service rate --accept`` does, and the selector serves the new rate at once.
"""

from __future__ import annotations

import re
import time
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import anyio
import httpx
import pytest

from pricing_service.app import create_app
from pricing_service.currency import RateMode, RateSource
from pricing_service.db import create_db_engine
from pricing_service.domain import RateStatus
from pricing_service.migrate import upgrade
from pricing_service.rate_store import RateStore
from pricing_service.rates import RateKeeper, fixed_rate
from tests.integration.test_admin_console import _login, browser
from tests.support.recorded_service import seed_snapshot, service_settings
from tests.support.served_app import serve_in_thread
from tests.support.trm_standin import TrmStandIn, trm_rows

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from playwright.sync_api import Browser

pytestmark = pytest.mark.integration
__all__ = ["browser"]  # the module's browser fixture, shared with the console's other tests

PRICING = "/api/v1/pricing"


def _fetch_twice(database_url: str, stand_in: TrmStandIn) -> None:
    """The service's own keeper: 3912.45 for 2026-12-02, accepted; then 4499.32 (+15 %), held."""
    engine = create_db_engine(database_url)
    try:
        keeper = RateKeeper(
            mode=RateMode.TRM,
            fixed=fixed_rate(Decimal(4000), "default"),
            store=RateStore(engine),
            url=stand_in.url,
            timeout_seconds=2,
            check_seconds=86400,
        )
        anyio.run(keeper.fetch)
        stand_in.body = trm_rows("4499.32", "2026-12-03", "2026-12-03")
        anyio.run(keeper.fetch)
        held = keeper.state().held
        assert [(h.rate, h.status) for h in held] == [(Decimal("4499.32"), RateStatus.HELD)]
    finally:
        engine.dispose()


class Served:
    def __init__(self, base: str, database_url: str) -> None:
        self.base = base
        self.database_url = database_url

    def rates(self) -> list[tuple[Decimal, str]]:
        engine = create_db_engine(self.database_url)
        try:
            return [
                (r.rate, r.status.value) for r in RateStore(engine).history(RateSource.TRM, limit=5)
            ]
        finally:
            engine.dispose()


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    database_url = f"sqlite:///{tmp_path / 'pricing.db'}"
    upgrade(database_url)
    seed_snapshot(database_url)
    stand_in = TrmStandIn()
    try:
        # In a thread of its own: Playwright's sync API keeps an event loop in this one.
        with ThreadPoolExecutor(1) as pool:
            pool.submit(_fetch_twice, database_url, stand_in).result(timeout=60)
        app = create_app(
            service_settings(
                database_url,
                pricing_cop_rate_source="trm",
                pricing_trm_url=stand_in.url,
                pricing_trm_timeout_seconds=2,
                pricing_trm_check_seconds=86400,
            )
        )
        with serve_in_thread(app) as base:
            deadline = time.monotonic() + 20
            while True:  # serving the accepted TRM, with the held one beside it
                currency = httpx.get(f"{base}/ready", timeout=5).json().get("currency") or {}
                if currency.get("source") == "trm" and currency.get("held"):
                    break
                assert time.monotonic() < deadline, "the held TRM was not read in time"
                time.sleep(0.05)
            yield Served(base, database_url)
    finally:
        stand_in.stop()


def _currency(served: Served) -> dict[str, Any]:
    found: dict[str, Any] = httpx.get(f"{served.base}{PRICING}/models", timeout=5).json()[
        "currency"
    ]
    return found


def test_a_held_rate_is_shown_with_both_figures_and_accepted_from_estado(
    browser: Browser, served: Served
) -> None:
    assert _currency(served)["rate"] == 3912.45
    context = browser.new_context(
        viewport={"width": 375, "height": 900}, base_url=served.base, locale="es-CO"
    )
    page = context.new_page()
    _login(page)
    row = page.locator("tr[data-held-rate]")
    assert row.count() == 1
    assert row.locator("td").nth(0).inner_text().startswith("4.499,32")
    assert "vigente desde 03/12/2026" in row.locator("td").nth(0).inner_text()
    assert row.locator("td").nth(1).inner_text().startswith("3.912,45")
    assert "vigente desde 02/12/2026" in row.locator("td").nth(1).inner_text()
    assert page.get_by_text("TRM retenida").first.is_visible()
    # Readable on a phone: nothing wider than the viewport (the table scrolls inside).
    assert page.evaluate("document.documentElement.scrollWidth") <= 375

    page.get_by_role("button", name="Aceptar la TRM retenida de 4.499,32 COP por USD").click()
    page.wait_for_url(re.compile(r".*/admin\?tasa=\d+$"))
    notice = page.get_by_role("status").inner_text()
    assert notice == (
        "Tasa aceptada: 4.499,32 COP por USD (TRM vigente desde 03/12/2026). "
        "El selector ya la sirve."
    )
    assert page.locator("tr[data-held-rate]").count() == 0
    assert "4.499,32 COP por USD: TRM del día" in page.locator("[data-rate]").inner_text()
    # This worker serves it at once; the table records it as `rate --accept` does.
    currency = _currency(served)
    assert (currency["rate"], currency["valid_from"]) == (4499.32, "2026-12-03")
    assert served.rates()[:2] == [
        (Decimal("4499.32"), "accepted"),
        (Decimal("3912.45"), "accepted"),
    ]
    # Accepting it again (a second tab, a reload of the form) is refused with a message.
    again = page.context.request.post(
        "/admin/tasa/aceptar",
        form={"csrf": _csrf(page), "rate_id": str(_rate_id(page.url))},
        headers={"origin": served.base},
        max_redirects=0,
    )
    assert again.status == 409
    assert "No se pudo aceptar la tasa" in again.text()
    context.close()


def test_the_accept_form_is_guarded_like_every_console_post(served: Served) -> None:
    with httpx.Client(base_url=served.base, timeout=5, follow_redirects=False) as http:
        # No session: nothing accepted, and the rate stays held.
        anonymous = http.post("/admin/tasa/aceptar", data={"csrf": "x", "rate_id": "2"})
        assert anonymous.status_code == 401
        foreign = http.post(
            "/admin/tasa/aceptar",
            data={"csrf": "x", "rate_id": "2"},
            headers={"origin": "http://evil.example"},
        )
        assert foreign.status_code == 403
    assert _currency(served)["rate"] == 3912.45
    assert [status for _, status in served.rates()[:1]] == ["held"]


def _csrf(page: Any) -> str:
    value: str = page.locator('input[name="csrf"]').first.get_attribute("value")
    return value


def _rate_id(url: str) -> int:
    found = re.search(r"tasa=(\d+)", url)
    assert found is not None
    return int(found.group(1))
