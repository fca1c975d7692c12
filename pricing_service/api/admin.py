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
from datetime import datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import anyio.to_thread
from litestar import Controller, Request, get, post
from litestar.datastructures import Cookie
from litestar.di import NamedDependency
from litestar.enums import MediaType
from litestar.response import Redirect, Response

from pricing_service.api.requests import client_of
from pricing_service.console import pages
from pricing_service.console.format import COLOMBIA, day, number
from pricing_service.console.render import render
from pricing_service.console.session import LOGIN_SECONDS
from pricing_service.domain import MAX_RUN_ID, AcceptedFigure
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
    from collections.abc import Awaitable, Callable

    from pricing_service.access import Access, RateLimiter
    from pricing_service.console.session import ConsoleAuth, Session, Signer
    from pricing_service.domain import RunSummary
    from pricing_service.rates import RateKeeper
    from pricing_service.refresh import Refresher
    from pricing_service.service import PricingService
    from pricing_service.webhooks.delivery import Deliverer

SESSION_COOKIE = "pricing_admin"
LOGIN_COOKIE = "pricing_admin_login"
COOKIE_PATH = "/admin"
ACCEPTED_BY = "consola /admin (token de admin)"
PROPOSED_FIGURE = AcceptedFigure.PROPOSED.value  # the API's default
SECOND_SOURCE_FIGURE = AcceptedFigure.SECOND_SOURCE.value
FIGURES = tuple(figure.value for figure in AcceptedFigure)
LOGIN_BUCKET = "admin-login"
MAX_FIELD = 200

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

NAV = [
    ("/admin", "Estado", "estado"),
    ("/admin/selector", "Selector", "selector"),
    ("/admin/cambios", "Cambios", "cambios"),
    ("/admin/ejecuciones", "Ejecuciones", "ejecuciones"),
    ("/admin/sugerencias", "Sugerencias", "sugerencias"),
    ("/admin/desconocidos", "Ids desconocidos", "desconocidos"),
    ("/admin/ollama", "Ollama Space", "ollama"),
    ("/admin/notificaciones", "Notificaciones", "notificaciones"),
]
DELIVERIES_PAGE = 100


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


def _run_id(text: str) -> int | None:
    """A run id as a form or a query spells it: ASCII digits within PostgreSQL's INTEGER."""
    if not text.isascii() or not text.isdigit() or len(text) > 10:
        return None
    value = int(text)
    return value if 0 < value <= MAX_RUN_ID else None


async def _accepted_notice(pricing: PricingService, run_id: int) -> str | None:
    """What the database records as accepted in run ``run_id``, or None when nothing was: the
    notice shows only what the server recorded (a query string once decided its text)."""
    try:
        run = await pricing.run(run_id)
    except NotFound:
        return None
    holds = await anyio.to_thread.run_sync(pricing.repository.accepted_holds, run_id)
    return accepted_notice(run, holds)


def _retry_error(exc: NotFound | NothingToAccept) -> str:
    if isinstance(exc, NotFound):
        return "esa entrega no existe."
    return "esa entrega no está agotada (ya está pendiente o entregada)."


def accepted_notice(run: RunSummary, holds: list[tuple[str, str | None]]) -> str | None:
    """The notice for a run accepted whole (``accepted_at``) and for its accepted ``holds``
    ((model id, figure) pairs)."""
    parts: list[str] = []
    if run.accepted_at is not None:
        parts.append("la ejecución completa")
    figures = {
        PROPOSED_FIGURE: "propuesta por el upstream",
        SECOND_SOURCE_FIGURE: "de la segunda fuente",
    }
    for figure, words in figures.items():
        models = [m for m, f in holds if (f or PROPOSED_FIGURE) == figure]
        if models:
            parts.append(f"precio(s) de {', '.join(models)} con la cifra {words}")
    if not parts:
        return None
    return (
        f"Aceptado en la ejecución {run.id}: {'; '.join(parts)}. "
        "El selector ya sirve la cifra nueva."
    )


async def _estado_refusal(
    pricing: PricingService, signer: Signer, session: Session, error: str
) -> Response[str]:
    """Estado again, with why an acceptance was refused (409)."""
    data = await pages.estado(pricing)
    body = render(
        "estado.html",
        nav=NAV,
        page="estado",
        csrf=signer.csrf(session),
        notice=None,
        error=error,
        **data,
    )
    return html(body, 409)


def rate_notice(currency: dict[str, Any], rate_id: int) -> str | None:
    """The notice after accepting rate ``rate_id``: only when the rate served is that one (what
    the server records, never what the query string says)."""
    if currency.get("rate_id") != rate_id:
        return None
    return (
        f"Tasa aceptada: {number(currency['rate'])} COP por USD (TRM vigente desde "
        f"{day(currency['valid_from'])}). El selector ya la sirve."
    )


class AdminController(Controller):
    path = "/admin"
    include_in_schema = False

    async def _page(
        self,
        request: Request[Any, Any, Any],
        auth: ConsoleAuth,
        pricing: PricingService,
        page: str,
        template: str,
        context: Callable[[], Awaitable[dict[str, Any]]],
    ) -> Response[Any]:
        """A console page: its data are read only after the session is checked."""
        if not auth.configured:
            return not_configured()
        session = await _session(request, auth, pricing)
        if session is None:
            return Redirect("/admin/ingresar", status_code=303, headers=HEADERS)
        assert auth.signer is not None
        try:
            data = await context()
        except NoDataYet as exc:
            return html(message("Sin datos", exc.detail), 503)
        except InvalidRequest as exc:
            return html(message("Petición no válida", exc.detail, ("/admin", "Volver")), 400)
        return html(render(template, nav=NAV, page=page, csrf=auth.signer.csrf(session), **data))

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
        if _run_id(run_text) is None:
            return html(message("Petición no válida", "Falta el número de ejecución."), 400)
        run_id = int(run_text)
        if UNSAFE_TEXT.search(model_id):
            return html(
                message("Petición no válida", "El id del modelo tiene caracteres de control."), 400
            )
        figure = _text(form, "figure") or PROPOSED_FIGURE
        if figure not in FIGURES:
            return html(message("Petición no válida", "Cifra desconocida."), 400)
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
        rate_id = _run_id(_text(form, "rate_id"))
        if rate_id is None:
            return html(message("Petición no válida", "Falta el número de la tasa."), 400)
        try:
            await rates.accept(rate_id, by=ACCEPTED_BY)
        except (NotFound, NothingToAccept) as exc:
            return await _estado_refusal(
                pricing, signer, session, f"No se pudo aceptar la tasa: {exc.detail}"
            )
        return Redirect(f"/admin?tasa={rate_id}", status_code=303, headers=HEADERS)

    # -- pages ----------------------------------------------------------------------------------

    @get(["/", ""], name="admin:estado")
    async def estado(
        self,
        request: Request[Any, Any, Any],
        console: NamedDependency[ConsoleAuth],
        pricing: NamedDependency[PricingService],
    ) -> Response[Any]:
        run_id = _run_id(request.query_params.get("aceptado") or "")
        rate_id = _run_id(request.query_params.get("tasa") or "")

        async def data() -> dict[str, Any]:
            notice = None
            if run_id is not None:
                notice = await _accepted_notice(pricing, run_id)
            found = await pages.estado(pricing)
            if rate_id is not None:
                notice = rate_notice(found["ready"].get("currency") or {}, rate_id)
            return {**found, "notice": notice, "error": None}

        return await self._page(request, console, pricing, "estado", "estado.html", data)

    @get("/selector", name="admin:selector")
    async def selector(
        self,
        request: Request[Any, Any, Any],
        console: NamedDependency[ConsoleAuth],
        pricing: NamedDependency[PricingService],
    ) -> Response[Any]:
        params = request.query_params

        async def data() -> dict[str, Any]:
            return await pages.selector(
                pricing,
                view=params.get("vista", "curated"),
                category=params.get("categoria"),
                query=(params.get("q") or "")[:MAX_FIELD],
            )

        return await self._page(request, console, pricing, "selector", "selector.html", data)

    @get("/modelo", name="admin:modelo")
    async def modelo(
        self,
        request: Request[Any, Any, Any],
        console: NamedDependency[ConsoleAuth],
        pricing: NamedDependency[PricingService],
    ) -> Response[Any]:
        model_id = (request.query_params.get("id") or "").strip()[:MAX_FIELD]

        async def data() -> dict[str, Any]:
            if not model_id:
                raise InvalidRequest("Falta el id del modelo (?id=gpt-4o).")
            return await pages.modelo(pricing, model_id)

        return await self._page(request, console, pricing, "selector", "modelo.html", data)

    @get("/cambios", name="admin:cambios")
    async def cambios(
        self,
        request: Request[Any, Any, Any],
        console: NamedDependency[ConsoleAuth],
        pricing: NamedDependency[PricingService],
    ) -> Response[Any]:
        params = request.query_params
        kind = params.get("tipo") or None
        model_id = (params.get("modelo") or "").strip()[:MAX_FIELD] or None
        since_text = (params.get("desde") or "").strip()

        async def data() -> dict[str, Any]:
            since = None
            if since_text:
                try:
                    day = datetime.strptime(since_text, "%Y-%m-%d")
                except ValueError:
                    raise InvalidRequest("«Desde» debe ser una fecha (AAAA-MM-DD).") from None
                since = day.replace(tzinfo=COLOMBIA)
            found = await pages.cambios(pricing, kind=kind, model_id=model_id, since=since)
            return {**found, "since": since_text, "error": None}

        return await self._page(request, console, pricing, "cambios", "cambios.html", data)

    @get("/ejecuciones", name="admin:ejecuciones")
    async def ejecuciones(
        self,
        request: Request[Any, Any, Any],
        console: NamedDependency[ConsoleAuth],
        pricing: NamedDependency[PricingService],
    ) -> Response[Any]:
        async def data() -> dict[str, Any]:
            return await pages.ejecuciones(pricing)

        return await self._page(request, console, pricing, "ejecuciones", "ejecuciones.html", data)

    @get("/desconocidos", name="admin:desconocidos")
    async def desconocidos(
        self,
        request: Request[Any, Any, Any],
        console: NamedDependency[ConsoleAuth],
        pricing: NamedDependency[PricingService],
    ) -> Response[Any]:
        async def data() -> dict[str, Any]:
            return await pages.desconocidos(pricing)

        return await self._page(
            request, console, pricing, "desconocidos", "desconocidos.html", data
        )

    @get("/sugerencias", name="admin:sugerencias")
    async def sugerencias(
        self,
        request: Request[Any, Any, Any],
        console: NamedDependency[ConsoleAuth],
        pricing: NamedDependency[PricingService],
    ) -> Response[Any]:
        category = (request.query_params.get("categoria") or "").strip()[:MAX_FIELD] or None

        async def data() -> dict[str, Any]:
            return await pages.sugerencias(pricing, category)

        return await self._page(request, console, pricing, "sugerencias", "sugerencias.html", data)

    @get("/notificaciones", name="admin:notificaciones")
    async def notificaciones(
        self,
        request: Request[Any, Any, Any],
        console: NamedDependency[ConsoleAuth],
        pricing: NamedDependency[PricingService],
        deliverer: NamedDependency[Deliverer],
    ) -> Response[Any]:
        status = (request.query_params.get("estado") or "").strip() or None
        retried = _run_id(request.query_params.get("reintentado") or "")

        async def data() -> dict[str, Any]:
            found = await deliverer.overview(status=status, limit=DELIVERIES_PAGE)
            notice = None
            if retried is not None:
                # Read from the record, never from the query string.
                delivery = await deliverer.get(retried)
                if delivery is not None:
                    notice = (
                        f"Entrega {delivery.id}: "
                        f"{'entregada' if delivery.status == 'delivered' else 'pendiente otra vez'}"
                        f" ({delivery.attempts} intentos desde el reintento)."
                    )
            return {**found, "status": status, "notice": notice, "error": None}

        return await self._page(
            request, console, pricing, "notificaciones", "notificaciones.html", data
        )

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
        delivery_id = _run_id(_text(form, "delivery_id"))
        if delivery_id is None:
            return html(message("Petición no válida", "Falta el número de la entrega."), 400)
        try:
            await deliverer.retry(delivery_id)
        except (NotFound, NothingToAccept) as exc:
            found = await deliverer.overview(status=None, limit=DELIVERIES_PAGE)
            body = render(
                "notificaciones.html",
                nav=NAV,
                page="notificaciones",
                csrf=signer.csrf(session),
                notice=None,
                error=f"No se pudo reintentar: {_retry_error(exc)}",
                status=None,
                **found,
            )
            return html(body, 404 if isinstance(exc, NotFound) else 409)
        return Redirect(
            f"/admin/notificaciones?reintentado={delivery_id}", status_code=303, headers=HEADERS
        )

    @get("/ollama", name="admin:ollama")
    async def ollama(
        self,
        request: Request[Any, Any, Any],
        console: NamedDependency[ConsoleAuth],
        pricing: NamedDependency[PricingService],
    ) -> Response[Any]:
        async def data() -> dict[str, Any]:
            return await pages.ollama(pricing)

        return await self._page(request, console, pricing, "ollama", "ollama.html", data)
