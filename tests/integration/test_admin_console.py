"""The admin console in a real browser: headless Chromium (Debian's package) driven by Playwright.

One real server (uvicorn on a loopback port) over a database that holds the recorded listing and
a held price made by the real refresher against the loopback MCP server (gpt-4o at 1e12 USD per
million). The tests log in, open every page at 375 and 1280 px (screenshots in var/screenshots/),
compare what the pages show with the API's answers, accept the held price through the form, and
check that no admin data reaches a browser without a valid session.
"""

from __future__ import annotations

import copy
import os
import shutil
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio
import httpx
import pytest

from pricing_service.app import create_app
from pricing_service.console.format import number
from pricing_service.console.session import Signer, derive_key
from pricing_service.db import create_db_engine
from pricing_service.domain import RunStatus
from pricing_service.listings.pricepertoken import PricePerTokenSource
from pricing_service.lock import DatabaseRefreshLock
from pricing_service.migrate import upgrade
from pricing_service.refresh import Refresher
from pricing_service.repository import Repository
from pricing_service.upstream import PricePerTokenClient
from tests.conftest import _missing
from tests.support.mcp_upstream import LoopbackUpstream
from tests.support.recorded_service import ADMIN, seed_snapshot, service_settings
from tests.support.recording import undecided_catalog, undecided_catalog_dir
from tests.support.served_app import serve_in_thread

if TYPE_CHECKING:
    from collections.abc import Iterator

    from playwright.sync_api import Browser, Page

    from pricing_service.domain import SnapshotInfo

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "var" / "screenshots"
CHROMIUM = os.environ.get("PRICING_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
HELD_FIGURE = 1e12
UNKNOWN_ASKED = "gpt-4o-mini-2099-01-01"
PAGES = {
    "estado": ("/admin", "Estado"),
    "selector": ("/admin/selector", "Selector"),
    "selector-todos": ("/admin/selector?vista=all&categoria=todos", "Selector"),
    "modelo": ("/admin/modelo?id=gpt-4o", "GPT-4o"),
    "cambios": ("/admin/cambios", "Cambios"),
    "ejecuciones": ("/admin/ejecuciones", "Ejecuciones"),
    "desconocidos": ("/admin/desconocidos", "Ids desconocidos"),
    "ollama": ("/admin/ollama", "Ollama Space"),
    "notificaciones": ("/admin/notificaciones", "Notificaciones"),
}
WIDTHS = (375, 1280)
# The outermost elements wider than the viewport, for the failure message.
WIDEST = """() => [...document.querySelectorAll('body *')]
  .filter(e => e.getBoundingClientRect().right > innerWidth + 1 && !e.closest('.scroll'))
  .slice(0, 3)
  .map(e => e.tagName + '.' + e.className + ' ' + Math.round(e.getBoundingClientRect().right))"""


# -- the server ---------------------------------------------------------------------------------


class Served:
    def __init__(self, base: str, run_id: int) -> None:
        self.base = base
        self.held_run_id = run_id

    def api(self, path: str, **params: Any) -> Any:
        answer = httpx.get(
            self.base + path, params=params, headers={"authorization": f"Bearer {ADMIN}"}
        )
        answer.raise_for_status()
        return answer.json()


def _with_price(upstream: LoopbackUpstream, slug: str, new_in: float, new_out: float) -> None:
    details = copy.deepcopy(upstream.data.details)
    rows = copy.deepcopy(upstream.data.rows)
    details[slug]["pricing"]["input_per_1m"] = new_in
    details[slug]["pricing"]["output_per_1m"] = new_out
    for row in rows:
        if row["slug"] == slug:
            row["input_per_1m"], row["output_per_1m"] = new_in, new_out
    upstream.set_data(rows=rows, details=details)


async def _hold_a_price(database_url: str, upstream: LoopbackUpstream) -> int:
    """A real refresh in which gpt-4o's input price is 1e12: the gate holds it."""
    engine = create_db_engine(database_url)
    repository = Repository(engine)

    async def publish(info: SnapshotInfo) -> None:
        return None

    refresher = Refresher(
        repository=repository,
        source=PricePerTokenSource(
            PricePerTokenClient(upstream.url, call_timeout=10, run_timeout=120)
        ),
        # Without the operators' decisions: the recording's second-source holds stand beside it.
        catalog=undecided_catalog(),
        lock=DatabaseRefreshLock(repository.engine, 30),
        publish=publish,
        interval_seconds=43200,
        grace_seconds=7 * 24 * 3600,
    )
    try:
        _with_price(upstream, "openai-gpt-4o", HELD_FIGURE, 10.0)
        outcome = await refresher.refresh("test", force=True)
        assert outcome.run.status is RunStatus.SUCCEEDED, outcome.run.error
        # The recording's own second-source holds (test_second_source.py) come beside it.
        held = [h.model_id for h in outcome.run.held_prices if h.reason.value != "second_source"]
        assert held == ["gpt-4o"]
        return outcome.run.id
    finally:
        engine.dispose()


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    database_url = f"sqlite:///{tmp_path_factory.mktemp('console') / 'pricing.db'}"
    upgrade(database_url)
    seed_snapshot(database_url)
    # In a thread of its own: Playwright's sync API keeps an event loop in this one.
    with LoopbackUpstream(json_response=True) as upstream, ThreadPoolExecutor(1) as pool:
        run_id = pool.submit(anyio.run, _hold_a_price, database_url, upstream).result()
    # Every test logs in (one or two widths each): more than the default 10 logins a minute.
    app = create_app(
        service_settings(
            database_url,
            pricing_rate_limit_per_minute=100,
            pricing_catalog_dir=undecided_catalog_dir(),
        )
    )
    with serve_in_thread(app) as base:
        # An id nothing resolves, asked by a client: the Ids desconocidos page lists it.
        httpx.get(f"{base}/api/v1/pricing/models", params={"ids": f"gpt-4o,{UNKNOWN_ASKED}"})
        yield Served(base, run_id)


# -- the browser --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _missing("playwright is not installed (pip install -e '.[dev]'): browser tests skipped")
    if shutil.which(CHROMIUM) is None:
        _missing(f"no Chromium at {CHROMIUM} (apt-get install chromium): browser tests skipped")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


def _page(browser: Browser, served: Served, width: int = 1280) -> Page:
    context = browser.new_context(
        viewport={"width": width, "height": 900}, base_url=served.base, locale="es-CO"
    )
    return context.new_page()


def _login(page: Page) -> None:
    page.goto("/admin/ingresar")
    page.get_by_label("Token de administración").fill(ADMIN)
    page.get_by_role("button", name="Ingresar").click()
    page.wait_for_url("**/admin")


def _assert_no_admin_data(html: str) -> None:
    for secret in ("gpt-4o", "GPT-4o", "Ejecuciones", "retenido", "Salir", "COP"):
        assert secret not in html, f"{secret!r} leaked to a browser without a session"


# -- tests --------------------------------------------------------------------------------------


def test_every_page_at_phone_and_desktop_widths(browser: Browser, served: Served) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    for width in WIDTHS:
        page = _page(browser, served, width)
        _login(page)
        for name, (path, heading) in PAGES.items():
            answer = page.goto(path)
            assert answer is not None
            assert answer.status == 200, path
            assert page.get_by_role("heading", level=1).inner_text() == heading
            # Readable at the width: nothing wider than the viewport (tables scroll inside).
            overflow = page.evaluate("document.documentElement.scrollWidth")
            widest = page.evaluate(WIDEST)
            assert overflow <= width, f"{path} is {overflow} px wide at {width} px: {widest}"
            page.screenshot(path=str(SCREENSHOTS / f"{name}-{width}.png"), full_page=True)
        page.context.close()


def test_the_selector_shows_the_apis_cop_labels(browser: Browser, served: Served) -> None:
    curated = served.api("/api/v1/pricing/models")
    first = curated["categories"][0]
    by_id = {i["model_id"]: i for i in curated["items"]}
    page = _page(browser, served, 375)
    _login(page)
    page.goto(f"/admin/selector?categoria={first['id']}")
    tabs = page.get_by_role("navigation", name="Categorías").get_by_role("link")
    assert [t.inner_text().split(" ", 1)[1] for t in tabs.all()] == [
        c["name"] for c in curated["categories"]
    ]
    assert page.get_by_text(first["description"]).is_visible()
    shown = page.locator("li.model")
    assert shown.count() == len(first["model_ids"])
    for model_id in first["model_ids"]:
        row = page.locator(f'li.model[data-model="{model_id}"]')
        assert row.locator(".label").inner_text() == by_id[model_id]["price_label"]

    # "Ver todos": specials flagged, local models marked; the search box finds a model.
    everything = served.api("/api/v1/pricing/models", view="all")
    special = next(i for i in everything["items"] if i["special"])
    local = next(i for i in everything["items"] if i["local"])
    page.goto("/admin/selector?vista=all&categoria=todos")
    special_row = page.locator(f'li.model[data-model="{special["model_id"]}"]')
    assert "especial" in special_row.locator(".flags").inner_text()
    assert (
        "local" in page.locator(f'li.model[data-model="{local["model_id"]}"] .flags').inner_text()
    )
    page.get_by_label("Buscar modelo").fill("gpt-4o-mini")
    page.get_by_label("Buscar modelo").press("Enter")
    page.wait_for_url("**q=gpt-4o-mini**")
    names = page.locator("li.model").evaluate_all("els => els.map(e => e.dataset.model)")
    assert "gpt-4o-mini" in names
    assert not any(n.startswith("claude") for n in names)
    page.context.close()


def test_the_model_page_lists_every_spelling_and_the_history(
    browser: Browser, served: Served
) -> None:
    item = served.api("/api/v1/pricing/models", ids="gpt-4o")["items"][0]
    page = _page(browser, served)
    _login(page)
    page.goto("/admin/modelo?id=gpt-4o")
    spellings = page.locator("ul.spellings code").all_inner_texts()
    assert spellings == item["aliases"]
    assert "openai/gpt-4o" in spellings
    assert (
        page.locator("dd.price-in")
        .inner_text()
        .startswith(f"{number(item['input_usd_per_million'])} US$")
    )
    assert page.locator("dd.label").inner_text() == item["price_label"]
    assert page.locator("figure.chart svg path.line-in").get_attribute("d")
    page.context.close()


def test_unknown_ids_show_the_alias_line(browser: Browser, served: Served) -> None:
    page = _page(browser, served)
    _login(page)
    page.goto("/admin/desconocidos")
    row = page.locator(f'tr[data-unknown="{UNKNOWN_ASKED}"]')
    assert row.locator("td.n").inner_text() == "1"
    assert row.locator("code.line").inner_text().startswith(f'"{UNKNOWN_ASKED}" = "')
    page.context.close()


def test_no_admin_data_without_a_valid_session(browser: Browser, served: Served) -> None:
    page = _page(browser, served, 375)
    for path, _ in PAGES.values():
        page.goto(path)
        assert page.url.endswith("/admin/ingresar"), path
        _assert_no_admin_data(page.content())

    forged = Signer(derive_key("not-the-admin-token")).issue("session", 3600)[0]
    expired = Signer(derive_key(ADMIN), clock=lambda: time.time() - 9 * 3600).issue(
        "session", 3600
    )[0]
    valid = Signer(derive_key(ADMIN)).issue("session", 3600)[0]
    # One signature character changed, inside it: its last character carries padding bits (two
    # spellings of one byte), and "AA" in its place was, one time in about a thousand, the
    # signature itself (a valid session: seen in make test).
    flipped = "B" if valid[-6] == "A" else "A"
    tampered = valid[:-6] + flipped + valid[-5:]
    assert tampered != valid
    for value in (forged, expired, tampered, "garbage"):
        page.context.clear_cookies()
        page.context.add_cookies(
            [{"name": "pricing_admin", "value": value, "url": served.base + "/admin"}]
        )
        for path, _ in PAGES.values():
            page.goto(path)
            assert page.url.endswith("/admin/ingresar"), (path, value)
            _assert_no_admin_data(page.content())
        # A POST without a valid session changes nothing and says nothing.
        answer = page.request.post(
            "/admin/aceptar", form={"run_id": str(served.held_run_id), "model_id": "gpt-4o"}
        )
        assert answer.status == 401
        _assert_no_admin_data(answer.text())
    held = served.api(f"/api/v1/pricing/runs/{served.held_run_id}")["held_prices"]
    assert [h["model_id"] for h in held if h["reason"] != "second_source"] == ["gpt-4o"]
    page.context.close()


# English the console used to show (hold reasons, runs, cache, price basis, /ready's lines).
ENGLISH = (
    "price held",
    "served as",
    "until an operator",
    "seeded",
    "prices of the stored",
    "memory",
    "official",
    "refresh run",
    "snapshot stale",
    "serving the",
    "unreachable",
    "estimate",
    "on demand",
    "Sleep mode",
)
# What a person reads in <main>, without the English detail sentences the gate writes (shown
# aside, marked lang="en").
MAIN_TEXT = """() => {
  const main = document.querySelector('main').cloneNode(true);
  main.querySelectorAll('[lang="en"]').forEach(e => e.remove());
  return main.innerText;
}"""


def test_the_ollama_page_shows_what_the_picker_answers(browser: Browser, served: Served) -> None:
    space = served.api("/api/v1/pricing/local")
    tiers = {t["id"]: t for t in space["tiers"]}
    for width in WIDTHS:
        page = _page(browser, served, width)
        _login(page)
        page.goto("/admin/ollama")
        rows = page.locator("table.local-models tbody tr")
        assert rows.count() == len(space["models"])  # each model once
        for model in space["models"]:
            cell = page.locator(f'tr[data-model="{model["ollama_tag"]}"] td.suggested')
            assert cell.get_attribute("data-tier") == model["suggested_tier"]
            text = cell.inner_text()
            assert text.startswith(tiers[model["suggested_tier"]]["name"])
            if model["document_tier"] is not None:
                assert f"Tier HF del documento: {model['document_tier']}" in text
            else:
                assert "por la regla" in text
        for tier in space["tiers"]:
            memory = page.locator(f'tr[data-tier="{tier["id"]}"] td.memory').inner_text()
            if tier["vram_gb"] is not None:
                assert f"{number(tier['vram_gb'])} GB VRAM" in memory
            if tier["ram_gb"] is not None:
                assert f"{number(tier['ram_gb'])} GB RAM" in memory
        # T4 Small and T4 Medium: the same GPU, told apart by their RAM.
        small = page.locator('tr[data-tier="t4-small"] td.memory').inner_text()
        medium = page.locator('tr[data-tier="t4-medium"] td.memory').inner_text()
        assert small != medium
        for scenario in space["scenarios"]:
            card = page.locator(f'li[data-scenario="{scenario["id"]}"]')
            usd = scenario["total_usd_per_month"]
            want = number(usd["min"])
            if usd["max"] != usd["min"]:
                want += f"–{number(usd['max'])}"
            assert card.locator(".usd").inner_text() == f"{want} US$"
            cop = card.locator(".total-cop").inner_text()
            assert cop == f"{scenario['total_cop_per_month_display']} al mes"
        text = page.evaluate(MAIN_TEXT)
        assert [e for e in ENGLISH if e in text] == []
        page.context.close()


def test_the_console_speaks_spanish_where_it_shows_held_prices(
    browser: Browser, served: Served
) -> None:
    page = _page(browser, served)
    _login(page)
    pages = ["/admin", "/admin/ejecuciones", "/admin/modelo?id=gpt-4o", "/admin/selector"]
    for path in pages:
        page.goto(path)
        text = page.evaluate(MAIN_TEXT)
        assert [e for e in ENGLISH if e in text] == [], path
    # The states those pages had to word: held prices with their reasons, the cache tier.
    page.goto("/admin")
    assert page.locator("table.held tbody tr").count() >= 2
    reasons = page.locator("table.held td.reason .badge").all_inner_texts()
    assert "sobre el tope de 1.000 US$ por millón" in reasons
    assert "la segunda fuente difiere más de 3 veces" in reasons
    warnings = page.locator("ul.degraded li").all_inner_texts()
    assert any(w.startswith("Precio retenido de gpt-4o (sobre el tope") for w in warnings)
    assert page.locator("dl.facts").inner_text().count("memoria del proceso") == 1
    page.goto("/admin/modelo?id=gpt-4o")
    status = page.locator("dd.status").inner_text()
    assert "precio retenido (sobre el tope de 1.000 US$ por millón; ejecución" in status
    assert page.locator("dd.basis").inner_text() != "official"
    page.context.close()


def test_every_accept_button_is_in_view(browser: Browser, served: Served) -> None:
    for width in WIDTHS:
        page = _page(browser, served, width)
        _login(page)
        buttons = page.locator("table.held button.accept")
        assert buttons.count() >= 2
        for index in range(buttons.count()):
            button = buttons.nth(index)
            # Scrolled to as a person scrolls the page: down only, never the table sideways.
            button.evaluate(
                "b => window.scrollTo(0, b.getBoundingClientRect().top + scrollY - 100)"
            )
            box = button.bounding_box()
            assert box is not None
            where = (width, index, box)
            assert box["x"] >= 0, where
            assert box["x"] + box["width"] <= width, where
            assert box["y"] >= 0, where
            assert box["y"] + box["height"] <= 900, where
        # The table fits its container at desktop widths: nothing to scroll to reach an action.
        widths = page.evaluate(
            "() => { const s = document.querySelector('table.held').parentElement;"
            " return [s.scrollWidth, s.clientWidth]; }"
        )
        assert widths[0] <= widths[1], (width, widths)
        page.context.close()


def test_accepting_a_held_price_through_the_form_applies_it(
    browser: Browser, served: Served
) -> None:
    run = served.api(f"/api/v1/pricing/runs/{served.held_run_id}")
    [held] = [h for h in run["held_prices"] if h["reason"] != "second_source"]
    page = _page(browser, served, 375)
    _login(page)
    row = page.locator('tr[data-held="gpt-4o"]')
    proposed = row.locator("td.proposed").inner_text()
    assert proposed == (
        f"{number(held['proposed_input_usd_per_million'])} US$ / "
        f"{number(held['proposed_output_usd_per_million'])} US$"
    )
    assert number(held["proposed_input_usd_per_million"]) == "1.000.000.000.000"
    assert served.api("/api/v1/pricing/models", ids="gpt-4o")["items"][0]["held"] is True

    # Keyboard only: focus the button and press Enter.
    row.get_by_role("button", name="Aceptar").focus()
    page.keyboard.press("Enter")
    page.wait_for_url("**aceptado=**")
    assert "Aceptado en la ejecución" in page.get_by_role("status").inner_text()
    # The recording's second-source holds stay; gpt-4o's is gone.
    assert page.locator('tr[data-held="gpt-4o"]').count() == 0

    item = served.api("/api/v1/pricing/models", ids="gpt-4o")["items"][0]
    assert item["input_usd_per_million"] == HELD_FIGURE
    assert item["held"] is False
    still = served.api(f"/api/v1/pricing/runs/{served.held_run_id}")["held_prices"]
    # The record keeps the accepted hold, resolved; what is still open is the rest.
    assert [h for h in still if h["reason"] != "second_source" and not h["resolution"]] == []
    assert [h["resolution"] for h in still if h["model_id"] == "gpt-4o"] == ["accepted"]
    page.goto("/admin/modelo?id=gpt-4o")
    assert page.locator("dd.price-in").inner_text().startswith("1.000.000.000.000 US$")
    page.context.close()


def test_salir_ends_the_session_for_a_copied_cookie(browser: Browser, served: Served) -> None:
    page = _page(browser, served)
    _login(page)
    captured = [c for c in page.context.cookies() if c["name"] == "pricing_admin"]
    assert len(captured) == 1
    # A notice comes from the server's record, never from the address bar.
    page.goto(f"/admin?aceptado={served.held_run_id}&modelos=FORJADO&cifra=second_source")
    assert "FORJADO" not in page.content()
    page.get_by_role("button", name="Salir").click()
    page.wait_for_url("**/admin/ingresar")
    page.context.close()

    # The cookie as it was before Salir, in another browser: the console does not open.
    other = _page(browser, served)
    other.context.add_cookies(
        [{"name": "pricing_admin", "value": captured[0]["value"], "url": served.base + "/admin"}]
    )
    other.goto("/admin")
    assert other.url.endswith("/admin/ingresar")
    _assert_no_admin_data(other.content())
    other.context.close()
