"""The console's sessions, login limit, origins and notices (issue 19, the edge), without a
browser: the in-process client on both stacks, two apps on one database for replicas, and a
real socket where the client address matters."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import httpx
import httpx2
import pytest
from litestar.testing import AsyncTestClient

from pricing_service.app import create_app
from tests.integration.test_edge import serving
from tests.support.recording import undecided_catalog_dir
from tests.support.settings import ADMIN, settings_for
from tests.support.snapshots import store_snapshot_at

if TYPE_CHECKING:
    from pathlib import Path

    from litestar import Litestar

    from tests.support.mcp_upstream import LoopbackUpstream

CSRF = re.compile(r'name="csrf" value="([^"]+)"')
HELD_MODEL = "command-r"


@pytest.fixture
def catalog_dir() -> Path:
    """Without the operators' decisions: the recording's second-source holds (command-r's
    among them) stand, for a console with something to accept."""
    return undecided_catalog_dir()


FORGED = "FORJADO-por-la-consulta"


def _csrf(html: str) -> str:
    found = CSRF.search(html)
    assert found is not None, html[:500]
    return found.group(1)


async def _login(client: AsyncTestClient[Litestar], token: str = ADMIN) -> httpx.Response:
    client.follow_redirects = False  # the redirects are what these tests look at
    form = await client.get("/admin/ingresar")
    return await client.post("/admin/ingresar", data={"csrf": _csrf(form.text), "token": token})


async def _held_run(client: AsyncTestClient[Litestar]) -> int:
    """The run store_snapshot_at recorded, with its second-source holds."""
    runs = await client.get(
        "/api/v1/pricing/runs", params={"limit": "1"}, headers={"authorization": f"Bearer {ADMIN}"}
    )
    assert runs.status_code == 200, runs.text
    return int(runs.json()["items"][0]["id"])


async def _held(client: AsyncTestClient[Litestar], run_id: int) -> dict[str, str | None]:
    """The run's open holds (the API lists those only): model id -> figure."""
    run = await client.get(
        f"/api/v1/pricing/runs/{run_id}",
        headers={"authorization": f"Bearer {ADMIN}"},
    )
    assert run.status_code == 200, run.text
    return {h["model_id"]: h["accepted_figure"] for h in run.json()["held_prices"]}


# -- logout ends the session on the server ----------------------------------------------------


async def test_a_cookie_captured_before_logout_opens_nothing(
    client: AsyncTestClient[Litestar],
) -> None:
    assert (await _login(client)).status_code == 303
    held_run = await _held_run(client)
    captured = client.cookies["pricing_admin"]
    page = await client.get("/admin")
    assert page.status_code == 200
    csrf = _csrf(page.text)
    out = await client.post("/admin/salir", data={"csrf": csrf})
    assert out.status_code == 303
    assert out.headers["location"] == "/admin/ingresar"

    # The copied cookie, sent again as an attacker would: no page, no acceptance.
    client.cookies.set("pricing_admin", captured, path="/admin")
    again = await client.get("/admin")
    assert again.status_code == 303
    assert again.headers["location"] == "/admin/ingresar"
    accept = await client.post(
        "/admin/aceptar",
        data={"csrf": csrf, "run_id": str(held_run), "model_id": HELD_MODEL},
    )
    assert accept.status_code == 401
    assert (await _held(client, held_run))[HELD_MODEL] is None
    # A new login still works.
    client.cookies.clear()
    assert (await _login(client)).status_code == 303
    assert (await client.get("/admin")).status_code == 200


async def test_a_logout_on_one_replica_holds_on_another(
    database_url_pg: str, mcp_upstream: LoopbackUpstream
) -> None:
    store_snapshot_at(database_url_pg)
    settings = settings_for(database_url_pg, mcp_upstream.url)
    async with (
        AsyncTestClient(create_app(settings)) as first,
        AsyncTestClient(create_app(settings)) as second,
    ):
        assert (await _login(first)).status_code == 303
        second.follow_redirects = False
        cookie = first.cookies["pricing_admin"]
        second.cookies.set("pricing_admin", cookie, path="/admin")
        assert (await second.get("/admin")).status_code == 200
        csrf = _csrf((await first.get("/admin")).text)
        assert (await first.post("/admin/salir", data={"csrf": csrf})).status_code == 303
        refused = await second.get("/admin")
        assert refused.status_code == 303
        assert refused.headers["location"] == "/admin/ingresar"


# -- the login limit counts failures only -------------------------------------------------------


async def test_successful_logins_do_not_count(
    sqlite_url: str, mcp_upstream: LoopbackUpstream
) -> None:
    store_snapshot_at(sqlite_url)
    app = create_app(settings_for(sqlite_url, mcp_upstream.url, pricing_rate_limit_per_minute=2))
    async with AsyncTestClient(app) as client:
        for _ in range(5):
            client.cookies.clear()
            assert (await _login(client)).status_code == 303
        client.cookies.clear()
        assert (await _login(client, "wrong")).status_code == 401
        client.cookies.clear()
        assert (await _login(client)).status_code == 303  # one failure: under the limit


def test_wrong_tokens_from_one_address_do_not_lock_out_another(
    sqlite_url: str, mcp_upstream: LoopbackUpstream
) -> None:
    store_snapshot_at(sqlite_url)
    settings = settings_for(
        sqlite_url,
        mcp_upstream.url,
        pricing_rate_limit_per_minute=3,
        pricing_trusted_proxies="127.0.0.1",
    )
    with serving(create_app(settings)) as (host, port):

        def attempt(address: str, token: str) -> httpx2.Response:
            with httpx2.Client(
                base_url=f"http://{host}:{port}",
                headers={"x-forwarded-for": address},
                timeout=10,
            ) as http:
                form = http.get("/admin/ingresar")
                return http.post("/admin/ingresar", data={"csrf": _csrf(form.text), "token": token})

        guesser, operator = "203.0.113.5", "198.51.100.7"
        assert [attempt(guesser, "wrong").status_code for _ in range(3)] == [401, 401, 401]
        locked = attempt(guesser, ADMIN)
        assert locked.status_code == 429
        seconds = int(locked.headers["retry-after"])
        assert 1 <= seconds <= 60
        assert f"espere {seconds} s" in locked.text
        # The operator's address was never counted: the right token logs in.
        assert attempt(operator, ADMIN).status_code == 303


# -- console POSTs come from the console: test_admin_console_origins.py (one shared service) -


# -- the notice is the server's record ----------------------------------------------------------


async def test_the_notice_shows_only_what_the_run_recorded(
    client: AsyncTestClient[Litestar],
) -> None:
    assert (await _login(client)).status_code == 303
    held_run = await _held_run(client)
    forged = await client.get(
        "/admin", params={"aceptado": str(held_run), "modelos": FORGED, "cifra": "second_source"}
    )
    assert forged.status_code == 200
    assert FORGED not in forged.text
    assert "Aceptado en la ejecución" not in forged.text  # nothing accepted yet
    for bad in ("99999", "2147483648", "-1", "1e3"):
        page = await client.get("/admin", params={"aceptado": bad})
        assert page.status_code == 200
        assert "Aceptado" not in page.text

    csrf = _csrf(forged.text)
    accept = await client.post(
        "/admin/aceptar",
        data={"csrf": csrf, "run_id": str(held_run), "model_id": HELD_MODEL},
    )
    assert accept.status_code == 303
    assert accept.headers["location"] == f"/admin?aceptado={held_run}"
    # Applied: the run's record keeps the hold, resolved with the figure accepted.
    assert (await _held(client, held_run))[HELD_MODEL] == "proposed"
    shown = await client.get("/admin", params={"aceptado": str(held_run), "modelos": FORGED})
    notice = re.search(r'<p class="notice" role="status">([^<]*)</p>', shown.text)
    assert notice is not None
    assert notice.group(1) == (
        f"Aceptado en la ejecución {held_run}: precio(s) de {HELD_MODEL} con la cifra "
        "propuesta por el upstream. El selector ya sirve la cifra nueva."
    )
    assert FORGED not in shown.text
