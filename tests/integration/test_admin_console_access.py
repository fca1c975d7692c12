"""The console without a browser: not configured without a token; the login is rate limited."""

from __future__ import annotations

from litestar.testing import AsyncTestClient

from pricing_service.app import create_app
from tests.support.recorded_service import ADMIN, seed_snapshot, service_settings

ADMIN_WORDS = ("gpt-4o", "GPT-4o", "Ejecuciones", "retenido", "Salir", "COP")


def _assert_no_admin_data(html: str) -> None:
    for secret in ADMIN_WORDS:
        assert secret not in html, f"{secret!r} leaked without a session"


async def test_without_an_admin_token_the_console_says_it_is_not_configured(
    sqlite_url: str,
) -> None:
    seed_snapshot(sqlite_url)
    app = create_app(service_settings(sqlite_url, pricing_admin_token=None))
    async with AsyncTestClient(app) as client:
        for path in ("/admin", "/admin/ingresar", "/admin/selector"):
            answer = await client.get(path)
            assert answer.status_code == 403
            assert "no está configurada" in answer.text
            _assert_no_admin_data(answer.text)
        answer = await client.post("/admin/ingresar", data={"token": "x"})
        assert answer.status_code == 403


async def test_login_attempts_are_rate_limited_and_cookies_are_strict(sqlite_url: str) -> None:
    seed_snapshot(sqlite_url)
    app = create_app(service_settings(sqlite_url, pricing_rate_limit_per_minute=3))
    async with AsyncTestClient(app) as client:
        form = await client.get("/admin/ingresar")
        cookie = form.headers["set-cookie"]
        assert "HttpOnly" in cookie
        assert "samesite=strict" in cookie.lower()
        assert "Path=/admin" in cookie
        answer = form
        statuses = []
        for _ in range(4):
            # Each answer carries a new login form (a new pre-session and its CSRF token).
            csrf = answer.text.split('name="csrf" value="', 1)[1].split('"', 1)[0]
            answer = await client.post("/admin/ingresar", data={"csrf": csrf, "token": "wrong"})
            statuses.append(answer.status_code)
        assert statuses == [401, 401, 401, 429]
        assert "Demasiados intentos" in answer.text
        # Even the right token waits for the window: guessing is what the limit is for.
        csrf = answer.text.split('name="csrf" value="', 1)[1].split('"', 1)[0]
        answer = await client.post("/admin/ingresar", data={"csrf": csrf, "token": ADMIN})
        assert answer.status_code == 429
        assert "pricing_admin=" not in answer.headers.get("set-cookie", "")
