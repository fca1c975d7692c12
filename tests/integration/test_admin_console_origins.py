"""Console POSTs come from the console (issue 19, the edge): a foreign origin is refused, the
same origin or none goes on, on both stacks (sessions, logout and the notice:
test_admin_console_hardening.py)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest
import pytest_asyncio
from litestar.testing import AsyncTestClient

from pricing_service.app import create_app
from tests.integration.test_admin_console_hardening import (
    HELD_MODEL,
    _csrf,
    _held,
    _held_run,
    _login,
)
from tests.support.recorded_service import NO_UPSTREAM
from tests.support.recording import undecided_catalog, undecided_catalog_dir
from tests.support.settings import ADMIN, settings_for
from tests.support.shared_service import module_stack
from tests.support.snapshots import store_snapshot_at

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from litestar import Litestar

# One service per stack for the module (tests/support/shared_service.py). These tests accept
# nothing (each acceptance they send is refused, and each checks so), log in only with the right
# token (the login limit counts failures) and end no session; each starts with no cookie, as a
# service of its own gave it (``console``).
pytestmark = pytest.mark.asyncio(loop_scope="module")
# The run API's rate limit counts every call of the module in one budget (8 of the default 10 a
# minute); these tests are not about it (test_operations.py's rate-limit test is): a budget no
# order of them, nor a test added here, reaches.
RATE_LIMIT = 1000


@pytest_asyncio.fixture(
    scope="module", loop_scope="module", params=["sqlite+memory", "postgresql+redis"]
)
async def shared(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[AsyncTestClient[Litestar]]:
    """What tests/integration/conftest.py's ``client`` serves with the hardening module's
    catalog (no operators' decisions: command-r's second-source hold stands), once per stack;
    no upstream (none is called)."""
    extra: dict[str, Any] = {
        "pricing_catalog_dir": undecided_catalog_dir(),
        "pricing_rate_limit_per_minute": RATE_LIMIT,
    }
    database_url, cache = module_stack(request, tmp_path_factory)
    extra.update(cache)
    store_snapshot_at(database_url, catalog=undecided_catalog())
    async with AsyncTestClient(create_app(settings_for(database_url, NO_UPSTREAM, **extra))) as c:
        yield c


@pytest.fixture
def console(shared: AsyncTestClient[Litestar]) -> AsyncTestClient[Litestar]:
    """The shared service's client as a new one starts: no cookies, redirects followed."""
    shared.cookies.clear()
    shared.follow_redirects = True
    return shared


@pytest.mark.parametrize(
    "headers",
    [
        {"origin": "https://evil.example"},
        {"origin": "null"},
        {"origin": "http://testserver.local.evil.example"},
        {"referer": "https://evil.example/page"},
    ],
)
async def test_a_foreign_origin_is_refused(
    console: AsyncTestClient[Litestar], headers: dict[str, str]
) -> None:
    assert (await _login(console)).status_code == 303
    held_run = await _held_run(console)
    csrf = _csrf((await console.get("/admin")).text)
    accept = await console.post(
        "/admin/aceptar",
        data={"csrf": csrf, "run_id": str(held_run), "model_id": HELD_MODEL},
        headers=headers,
    )
    assert accept.status_code == 403
    assert "Origen no permitido" in accept.text
    assert (await _held(console, held_run))[HELD_MODEL] is None
    out = await console.post("/admin/salir", data={"csrf": csrf}, headers=headers)
    assert out.status_code == 403
    assert (await console.get("/admin")).status_code == 200  # still logged in
    console.cookies.clear()
    form = await console.get("/admin/ingresar")
    login = await console.post(
        "/admin/ingresar", data={"csrf": _csrf(form.text), "token": ADMIN}, headers=headers
    )
    assert login.status_code == 403
    assert "pricing_admin=" not in login.headers.get("set-cookie", "")


@pytest.mark.parametrize(
    "headers",
    [
        {"origin": "http://testserver.local"},
        {"referer": "http://testserver.local/admin"},
        {},  # curl or a script: neither header, the CSRF token decides
    ],
)
async def test_same_origin_or_no_origin_goes_on(
    console: AsyncTestClient[Litestar], headers: dict[str, str]
) -> None:
    console.follow_redirects = False
    form = await console.get("/admin/ingresar")
    login = await console.post(
        "/admin/ingresar", data={"csrf": _csrf(form.text), "token": ADMIN}, headers=headers
    )
    assert login.status_code == 303
