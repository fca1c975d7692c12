"""The admin console at /admin: server-rendered Spanish HTML behind a signed session cookie.

Every page needs a valid session; without one a GET is redirected to the login form and a POST
gets an empty 401 page, so nothing of the admin data (nor a hint of it) leaves without a
session. A session is valid while its signed cookie is and "Salir" has not ended it: logout
records the session as revoked in the database (console/session.py), so a copied cookie opens
nothing afterwards. With PRICING_ADMIN_TOKEN unset every console route answers 403 "no
configurada". Logging in checks the admin token with the API's constant-time check; failed
attempts are counted per client address (the API's limiter, its own bucket), successful ones
never: once an address has failed PRICING_RATE_LIMIT_PER_MINUTE times in a window it waits for
the rest of that window (the page says how many seconds), the right token included, since a
guesser must not learn whether a guess was right. Other addresses are never affected.

Every POST form carries a CSRF token bound to the session (the login form's to a short
pre-session) and must come from the console itself: a foreign ``Origin`` (or, without one, a
foreign ``Referer``) is refused with 403 (``_foreign``). Acceptance goes through
Refresher.accept, the API's and the CLI's path, recorded as done by the console; the notice on
the page after it is read back from the run's record, never from the query string.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from litestar import Controller, Request, get, post
from litestar.datastructures import Cookie
from litestar.di import NamedDependency
from litestar.enums import MediaType
from litestar.response import Redirect, Response

from pricing_service.api.console_pages import (
    DELIVERIES_PAGE,
    MAX_FIELD,
    NAV,
    PAGES,
    Page,
    PageQuery,
    run_id_of,
)
from pricing_service.api.requests import client_of
from pricing_service.console import pages
from pricing_service.console.render import render
from pricing_service.console.session import LOGIN_SECONDS
from pricing_service.domain import AcceptedFigure
from pricing_service.errors import (
    InvalidRequest,
    NoDataYet,
    NotAuthorized,
    NotFound,
    NothingToAccept,
    RateLimited,
    RefreshInProgress,
)
from pricing_service.normalize import UNSAFE_TEXT

if TYPE_CHECKING:
    from litestar.handlers import HTTPRouteHandler

    from pricing_service.access import Access, RateLimiter
    from pricing_service.console.session import ConsoleAuth, Session, Signer
    from pricing_service.rates import RateKeeper
    from pricing_service.refresh import Refresher
    from pricing_service.service import PricingService
    from pricing_service.webhooks.delivery import Deliverer

SESSION_COOKIE = "pricing_admin"
LOGIN_COOKIE = "pricing_admin_login"
COOKIE_PATH = "/admin"
ACCEPTED_BY = "consola /admin (token de admin)"
LOGIN_BUCKET = "admin-login"

HEADERS = {
    "cache-control": "no-store",
    "content-security-policy": (
        "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    ),
    "x-frame-options": "DENY",
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",
}


def _client(request: Request[Any, Any, Any]) -> str:
    return client_of(request)  # the real client behind PRICING_TRUSTED_PROXIES


def _secure(request: Request[Any, Any, Any]) -> bool:
    # RequestObserver sets the scheme from X-Forwarded-Proto for PRICING_TRUSTED_PROXIES peers.
    return request.url.scheme == "https"


def html(body: str, status: int = 200, cookies: list[Cookie] | None = None) -> Response[str]:
    return Response(
        body, status_code=status, media_type=MediaType.HTML, headers=HEADERS, cookies=cookies
    )


def message(heading: str, text: str, link: tuple[str, str] | None = None) -> str:
    """A page with one message and no navigation (nothing else of the console)."""
    return render("message.html", heading=heading, text=text, link=link, nav=None)


NOT_CONFIGURED = (
    "Consola no configurada",
    "La consola de administración no está configurada: defina PRICING_ADMIN_TOKEN.",
)


def not_configured() -> Response[str]:
    return html(message(*NOT_CONFIGURED), 403)


def nothing(status: int = 401) -> Response[str]:
    """An answer without any admin data: for a POST without a valid session or CSRF token."""
    return html(
        message("Sesión no válida", "Ingrese de nuevo.", ("/admin/ingresar", "Ingresar")), status
    )


async def _session(
    request: Request[Any, Any, Any], auth: ConsoleAuth, pricing: PricingService
) -> Session | None:
    """The request's session: signed, unexpired, and not ended by "Salir" (read from the
    database, so a logout on one worker or replica holds on all of them)."""
    if auth.signer is None:
        return None
    session = auth.signer.read(request.cookies.get(SESSION_COOKIE), "session")
    if session is None or await auth.revoked(pricing.repository, session):
        return None
    return session


FOREIGN = (
    "Origen no permitido",
    "Este formulario solo se puede enviar desde la consola de este servicio (/admin).",
)


def _foreign(request: Request[Any, Any, Any]) -> bool:
    """Whether a POST comes from a page of another site.

    The ``Origin`` a browser sends (or, without one, its ``Referer``) must name this host as the
    request's ``Host`` header does; ``Origin: null`` (a sandboxed frame, a data: page) is
    foreign. The host and port are compared, not the scheme: behind a proxy that ends TLS the
    request arrives as http while the page was https, and another scheme on the same host and
    port is this same server. With neither header (curl, a CLI, a script: nothing a browser
    sends cross-site) the POST goes on to the CSRF token check like any other, which such a
    client can only pass by reading the form with a valid session first.
    """
    source = request.headers.get("origin")
    if source is None:
        source = request.headers.get("referer")
        if source is None:
            return False
    try:
        parts = urlsplit(source.strip())
    except ValueError:
        return True
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return True
    return parts.netloc.lower() != request.headers.get("host", "").strip().lower()


async def _checked_post(
    request: Request[Any, Any, Any], console: ConsoleAuth, pricing: PricingService
) -> tuple[Any, Any, Signer] | Response[str]:
    """Every console POST's guard, in one place: the console configured, a same-origin request,
    a live session and its CSRF token. The session, the form and the signer, or the refusal
    to send."""
    signer = console.signer
    if signer is None:
        return not_configured()
    if _foreign(request):
        return foreign()
    session = await _session(request, console, pricing)
    form = await request.form()
    if session is None or not signer.check_csrf(session, _text(form, "csrf")):
        return nothing()
    return session, form, signer


def invalid(detail: str) -> Response[str]:
    """A console form that cannot be acted on (400), and why."""
    return html(message("Petición no válida", detail), 400)


def foreign() -> Response[str]:
    return html(message(*FOREIGN), 403)


def _cookie(request: Request[Any, Any, Any], key: str, value: str, seconds: int) -> Cookie:
    return Cookie(
        key=key,
        value=value,
        path=COOKIE_PATH,
        max_age=seconds,
        httponly=True,
        samesite="strict",
        secure=_secure(request),
    )


def _expired(request: Request[Any, Any, Any], key: str) -> Cookie:
    return _cookie(request, key, "", 0)


def _text(form: Any, name: str) -> str:
    value = form.get(name)
    return value.strip()[:MAX_FIELD] if isinstance(value, str) else ""


def _retry_error(exc: NotFound | NothingToAccept) -> str:
    if isinstance(exc, NotFound):
        return "esa entrega no existe."
    return "esa entrega no está agotada (ya está pendiente o entregada)."


async def _estado_refusal(
    pricing: PricingService, signer: Signer, session: Session, error: str
) -> Response[str]:
    """Estado again, with why an acceptance was refused (409)."""
    page = {**await pages.estado(pricing), "notice": None, "error": error}
    return html(render_page(ESTADO, signer.csrf(session), page), 409)


class AdminController(Controller):
    path = "/admin"
    include_in_schema = False

    # -- login and logout ---------------------------------------------------------------------

    @get("/ingresar", name="admin:login")
    async def login_form(
        self,
        request: Request[Any, Any, Any],
        console: NamedDependency[ConsoleAuth],
        pricing: NamedDependency[PricingService],
    ) -> Response[Any]:
        if console.signer is None:
            return not_configured()
        if await _session(request, console, pricing) is not None:
            return Redirect("/admin", status_code=303, headers=HEADERS)
        return self._login_page(request, console, None, 200)

    @staticmethod
    def _login_page(
        request: Request[Any, Any, Any], console: ConsoleAuth, error: str | None, status: int
    ) -> Response[str]:
        assert console.signer is not None
        value, pre = console.signer.issue("login", LOGIN_SECONDS)
        body = render("login.html", nav=None, error=error, csrf=console.signer.csrf(pre))
        return html(body, status, [_cookie(request, LOGIN_COOKIE, value, LOGIN_SECONDS)])

    @post("/ingresar", name="admin:login-post", status_code=303)
    async def login(
        self,
        request: Request[Any, Any, Any],
        console: NamedDependency[ConsoleAuth],
        access: NamedDependency[Access],
        limiter: NamedDependency[RateLimiter],
    ) -> Response[Any]:
        if console.signer is None:
            return not_configured()
        if _foreign(request):
            return foreign()
        client = _client(request)
        # Only failures count (below); a client over the limit waits, right token or not.
        retry_after = await limiter.blocked(LOGIN_BUCKET, client)
        if retry_after is not None:
            page = self._login_page(
                request,
                console,
                f"Demasiados intentos fallidos desde esta dirección: espere {retry_after} s.",
                429,
            )
            page.headers["retry-after"] = str(retry_after)
            return page
        form = await request.form()
        pre = console.signer.read(request.cookies.get(LOGIN_COOKIE), "login")
        if pre is None or not console.signer.check_csrf(pre, _text(form, "csrf")):
            return self._login_page(
                request, console, "El formulario venció: intente de nuevo.", 400
            )
        token = form.get("token")
        try:
            access.require(f"Bearer {token if isinstance(token, str) else ''}", admin_only=True)
        except NotAuthorized:
            with contextlib.suppress(RateLimited):  # counted; blocked() refuses the next
                await limiter.hit(LOGIN_BUCKET, client)
            return self._login_page(request, console, "Token incorrecto.", 401)
        value, _ = console.signer.issue("session", console.session_seconds)
        return Redirect(
            "/admin",
            status_code=303,
            headers=HEADERS,
            cookies=[
                _cookie(request, SESSION_COOKIE, value, console.session_seconds),
                _expired(request, LOGIN_COOKIE),
            ],
        )

    @post("/salir", name="admin:logout", status_code=303)
    async def logout(
        self,
        request: Request[Any, Any, Any],
        console: NamedDependency[ConsoleAuth],
        pricing: NamedDependency[PricingService],
    ) -> Response[Any]:
        checked = await _checked_post(request, console, pricing)
        if isinstance(checked, Response):
            return checked
        session, _, _ = checked
        await console.revoke(pricing.repository, session)
        return Redirect(
            "/admin/ingresar",
            status_code=303,
            headers=HEADERS,
            cookies=[_expired(request, SESSION_COOKIE)],
        )

    # -- accepting held runs and prices -------------------------------------------------------

    @post("/aceptar", name="admin:accept", status_code=303)
    async def accept(
        self,
        request: Request[Any, Any, Any],
        console: NamedDependency[ConsoleAuth],
        refresher: NamedDependency[Refresher],
        pricing: NamedDependency[PricingService],
    ) -> Response[Any]:
        checked = await _checked_post(request, console, pricing)
        if isinstance(checked, Response):
            return checked
        session, form, signer = checked
        run_text, model_id = _text(form, "run_id"), _text(form, "model_id")
        if run_id_of(run_text) is None:
            return invalid("Falta el número de ejecución.")
        run_id = int(run_text)
        if UNSAFE_TEXT.search(model_id):
            return invalid("El id del modelo tiene caracteres de control.")
        figure = _text(form, "figure") or AcceptedFigure.PROPOSED.value
        if figure not in set(AcceptedFigure):
            return invalid("Cifra desconocida.")
        try:
            await refresher.accept(
                run_id, by=ACCEPTED_BY, model_ids=[model_id] if model_id else (), figure=figure
            )
        except (NothingToAccept, RefreshInProgress) as exc:
            return await _estado_refusal(
                pricing, signer, session, f"No se pudo aceptar: {exc.detail}"
            )
        # Only the run's id: the page reads what was accepted from the run's record.
        return Redirect(f"/admin?aceptado={run_id}", status_code=303, headers=HEADERS)

    # -- accepting a held COP rate -------------------------------------------------------------

    @post("/tasa/aceptar", name="admin:rate-accept", status_code=303)
    async def accept_rate(
        self,
        request: Request[Any, Any, Any],
        console: NamedDependency[ConsoleAuth],
        pricing: NamedDependency[PricingService],
        rates: NamedDependency[RateKeeper],
    ) -> Response[Any]:
        """``pricing-service rate --accept`` from Estado: the held TRM is served from now on."""
        checked = await _checked_post(request, console, pricing)
        if isinstance(checked, Response):
            return checked
        session, form, signer = checked
        rate_id = run_id_of(_text(form, "rate_id"))
        if rate_id is None:
            return invalid("Falta el número de la tasa.")
        try:
            await rates.accept(rate_id, by=ACCEPTED_BY)
        except (NotFound, NothingToAccept) as exc:
            return await _estado_refusal(
                pricing, signer, session, f"No se pudo aceptar la tasa: {exc.detail}"
            )
        return Redirect(f"/admin?tasa={rate_id}", status_code=303, headers=HEADERS)

    @post("/notificaciones/reintentar", name="admin:webhook-retry", status_code=303)
    async def retry_delivery(
        self,
        request: Request[Any, Any, Any],
        console: NamedDependency[ConsoleAuth],
        pricing: NamedDependency[PricingService],
        deliverer: NamedDependency[Deliverer],
    ) -> Response[Any]:
        checked = await _checked_post(request, console, pricing)
        if isinstance(checked, Response):
            return checked
        session, form, signer = checked
        delivery_id = run_id_of(_text(form, "delivery_id"))
        if delivery_id is None:
            return invalid("Falta el número de la entrega.")
        try:
            await deliverer.retry(delivery_id)
        except (NotFound, NothingToAccept) as exc:
            found = await deliverer.overview(status=None, limit=DELIVERIES_PAGE)
            error = f"No se pudo reintentar: {_retry_error(exc)}"
            page = {**found, "notice": None, "error": error, "status": None}
            body = render_page(NOTIFICACIONES, signer.csrf(session), page)
            return html(body, 404 if isinstance(exc, NotFound) else 409)
        return Redirect(
            f"/admin/notificaciones?reintentado={delivery_id}", status_code=303, headers=HEADERS
        )


# -- pages: one row each in api/console_pages.py, served by one handler shape ------------------

_BY_KEY = {page.key: page for page in PAGES}
ESTADO, NOTIFICACIONES = _BY_KEY["estado"], _BY_KEY["notificaciones"]  # re-rendered by POSTs


def render_page(page: Page, csrf: str, data: dict[str, Any]) -> str:
    return render(page.template, nav=NAV, page=page.nav, csrf=csrf, **data)


def page_route(page: Page) -> HTTPRouteHandler:
    """The GET handler of one console page: the console configured, a live session, then the
    page's read (its data are read only after the session is checked), then its template."""

    async def serve(
        request: Request[Any, Any, Any],
        console: NamedDependency[ConsoleAuth],
        pricing: NamedDependency[PricingService],
        deliverer: NamedDependency[Deliverer],
    ) -> Response[Any]:
        if not console.configured:
            return not_configured()
        session = await _session(request, console, pricing)
        if session is None:
            return Redirect("/admin/ingresar", status_code=303, headers=HEADERS)
        assert console.signer is not None
        try:
            data = await page.read(PageQuery(request.query_params, pricing, deliverer))
        except NoDataYet as exc:
            return html(message("Sin datos", exc.detail), 503)
        except InvalidRequest as exc:
            return html(message("Petición no válida", exc.detail, ("/admin", "Volver")), 400)
        return html(render_page(page, console.signer.csrf(session), data))

    serve.__name__ = serve.__qualname__ = f"page_{page.key}"
    return get(list(page.paths), name=f"admin:{page.key}", include_in_schema=False)(serve)


PAGE_ROUTES = [page_route(page) for page in PAGES]
