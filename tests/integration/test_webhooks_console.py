"""Webhook deliveries in the console (a real browser) and in /metrics: dead deliveries shown with
their last error, retried with the console's form (CSRF, same origin), then delivered."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import httpx
import pytest

from pricing_service.app import create_app
from pricing_service.db import create_db_engine
from pricing_service.domain import DeliveryStatus
from pricing_service.migrate import upgrade
from pricing_service.webhooks import outbox
from pricing_service.webhooks.events import EventContext
from tests.integration.test_admin_console import (
    ENGLISH,
    MAIN_TEXT,
    WIDEST,
    WIDTHS,
    _login,
    _page,
    browser,  # noqa: F401 - the module's browser fixture
)
from tests.support.recorded_service import seed_snapshot, service_settings
from tests.support.served_app import serve_in_thread
from tests.support.webhook_receiver import WebhookReceiver

if TYPE_CHECKING:
    from collections.abc import Iterator

    from playwright.sync_api import Browser

pytestmark = pytest.mark.integration

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
DEAD = 3


class Served:
    def __init__(self, base: str, receiver: WebhookReceiver, database_url: str) -> None:
        self.base = base
        self.receiver = receiver
        self.database_url = database_url

    def deliveries(self) -> list[outbox.Delivery]:
        engine = create_db_engine(self.database_url)
        try:
            return outbox.deliveries(engine)
        finally:
            engine.dispose()


def _wait(check: object, seconds: float, what: str) -> object:
    deadline = time.monotonic() + seconds
    while True:
        value = check()  # type: ignore[operator]
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    database_url = f"sqlite:///{tmp_path_factory.mktemp('webhooks') / 'pricing.db'}"
    upgrade(database_url)
    seed_snapshot(database_url)
    with WebhookReceiver(mode="error") as receiver:
        engine = create_db_engine(database_url)
        context = EventContext(endpoints=(("json", receiver.url),))
        with engine.begin() as conn:
            for n in range(DEAD):
                outbox.record(conn, context, "run.held", {"run_id": n}, datetime.now(UTC))
        engine.dispose()
        app = create_app(
            service_settings(
                database_url,
                pricing_rate_limit_per_minute=100,
                pricing_webhook_urls=receiver.url,
                pricing_webhook_secret=SECRET,
                pricing_webhook_retry_seconds="0.05",
                pricing_webhook_poll_seconds=0.05,
                pricing_webhook_timeout_seconds=2,
            )
        )
        with serve_in_thread(app) as base:
            result = Served(base, receiver, database_url)
            # Each delivery fails twice (HTTP 500) and is dead: the schedule has one retry.
            _wait(
                lambda: [d.status for d in result.deliveries()] == [DeliveryStatus.DEAD] * DEAD,
                20,
                "dead",
            )
            yield result


def test_the_page_shows_dead_deliveries_at_phone_and_desktop_widths(
    browser: Browser,  # noqa: F811
    served: Served,
) -> None:
    for width in WIDTHS:
        page = _page(browser, served, width)  # type: ignore[arg-type]
        _login(page)
        answer = page.goto("/admin/notificaciones")
        assert answer is not None
        assert answer.status == 200
        assert page.get_by_role("heading", level=1).inner_text() == "Notificaciones"
        overflow = page.evaluate("document.documentElement.scrollWidth")
        assert overflow <= width, (width, page.evaluate(WIDEST))
        text = page.evaluate(MAIN_TEXT)
        assert [e for e in ENGLISH if e in text] == []
        assert page.locator("dd.count-dead").inner_text() == str(DEAD)
        rows = page.locator("table.deliveries tbody tr[data-status=dead]")
        assert rows.count() == DEAD
        assert rows.first.locator("td.status").inner_text() == "agotada (sin más reintentos)"
        assert rows.first.locator("td.last-error").inner_text().startswith("HTTP 500")
        assert "/hook" not in page.content()  # the endpoint's path is never shown
        buttons = page.get_by_role("button", name=re.compile("^Reintentar"))
        assert buttons.count() == DEAD
        box = buttons.first.bounding_box()
        assert box is not None
        assert box["x"] >= 0, (width, box)
        assert box["x"] + box["width"] <= width, (width, box)
        page.context.close()


def test_metrics_count_the_deliveries(served: Served) -> None:
    def dead_counted() -> bool:
        text = httpx.get(f"{served.base}/metrics").text
        return f'pricing_webhook_deliveries{{status="dead"}} {DEAD}.0' in text

    _wait(dead_counted, 20, "the dead deliveries in /metrics")
    text = httpx.get(f"{served.base}/metrics").text
    assert 'pricing_webhook_attempts_total{outcome="dead"} 3.0' in text
    assert 'pricing_webhook_attempts_total{outcome="failed"} 3.0' in text


def test_a_foreign_or_tokenless_retry_is_refused(
    browser: Browser,  # noqa: F811
    served: Served,
) -> None:
    dead = [d for d in served.deliveries() if d.status is DeliveryStatus.DEAD]
    page = _page(browser, served)  # type: ignore[arg-type]
    _login(page)
    form: dict[str, str | float | bool] = {"delivery_id": str(dead[0].id), "csrf": "forged"}
    url = f"{served.base}/admin/notificaciones/reintentar"
    foreign = page.request.post(url, form=form, headers={"origin": "https://evil.example"})
    assert foreign.status == 403
    forged = page.request.post(url, form=form, headers={"origin": served.base})
    assert forged.status == 401
    assert httpx.post(url, data=form).status_code in (401, 403)
    assert [d.status for d in served.deliveries()].count(DeliveryStatus.DEAD) == len(dead)
    page.context.close()


def test_retrying_a_dead_delivery_from_the_console_delivers_it(
    browser: Browser,  # noqa: F811
    served: Served,
) -> None:
    served.receiver.mode = "ok"
    page = _page(browser, served, 375)  # type: ignore[arg-type]
    _login(page)
    page.goto("/admin/notificaciones")
    row = page.locator("table.deliveries tbody tr[data-status=dead]").first
    delivery_id = int(row.get_attribute("data-delivery") or 0)
    row.get_by_role("button", name=re.compile("^Reintentar")).click()
    page.wait_for_url("**reintentado=**")
    assert page.get_by_role("status").inner_text().startswith(f"Entrega {delivery_id}:")
    _wait(
        lambda: (
            {d.id: d.status for d in served.deliveries()}[delivery_id] is DeliveryStatus.DELIVERED
        ),
        20,
        "the retried delivery delivered",
    )
    page.goto("/admin/notificaciones?estado=delivered")
    delivered = page.locator(f'tr[data-delivery="{delivery_id}"] td.status')
    assert delivered.inner_text() == "entregada"
    # Retrying it again is refused: it is not dead.
    again = page.request.post(
        f"{served.base}/admin/notificaciones/reintentar",
        form={"delivery_id": str(delivery_id), "csrf": _csrf(page.content())},
        headers={"origin": served.base},
    )
    assert again.status == 409
    assert "no está agotada" in again.text()
    ids = served.receiver.ok_ids()
    assert len(ids) == 1
    page.context.close()


def _csrf(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found is not None
    return found.group(1)
