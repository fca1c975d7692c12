"""The console's pages, one row each: path, title, template and what the page reads.

``api/admin.py`` serves every row the same way (the console configured, a live session, then
the page's read, then its template), so a page is one row and one read here. A read gets the
request's query and the services through ``PageQuery`` and runs only after the session is
checked: nothing of the admin data is read for a request without one. Every page needs the
admin session (the console's one role). Titles are the navigation's, in Spanish; a row without
a title (the model page) is not in the navigation and highlights its parent's entry.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

import anyio.to_thread

from pricing_service.console import pages
from pricing_service.console.format import COLOMBIA, day, number
from pricing_service.domain import MAX_RUN_ID, AcceptedFigure, DeliveryStatus
from pricing_service.errors import InvalidRequest, NotFound

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from litestar.datastructures import MultiDict

    from pricing_service.domain import RunSummary
    from pricing_service.service import PricingService
    from pricing_service.webhooks.delivery import Deliverer

MAX_FIELD = 200
DELIVERIES_PAGE = 100


@dataclass(frozen=True, slots=True)
class PageQuery:
    """What a page's read may use: the query string and the services."""

    params: MultiDict[str]
    pricing: PricingService
    deliverer: Deliverer


@dataclass(frozen=True, slots=True)
class Page:
    paths: tuple[str, ...]  # the first is the navigation's link
    key: str  # the route's name is admin:<key>
    title: str | None  # the navigation's entry (None: not in the navigation)
    nav: str  # the navigation entry highlighted on the page
    template: str
    read: Callable[[PageQuery], Awaitable[dict[str, Any]]]


def run_id_of(text: str) -> int | None:
    """A run id as a form or a query spells it: ASCII digits within PostgreSQL's INTEGER."""
    if not text.isascii() or not text.isdigit() or len(text) > 10:
        return None
    value = int(text)
    return value if 0 < value <= MAX_RUN_ID else None


def accepted_notice(run: RunSummary, holds: list[tuple[str, str | None]]) -> str | None:
    """The notice for a run accepted whole (``accepted_at``) and for its accepted ``holds``
    ((model id, figure) pairs)."""
    parts: list[str] = []
    if run.accepted_at is not None:
        parts.append("la ejecución completa")
    figures = {
        AcceptedFigure.PROPOSED: "propuesta por el upstream",
        AcceptedFigure.SECOND_SOURCE: "de la segunda fuente",
    }
    for figure, words in figures.items():
        models = [m for m, f in holds if (f or AcceptedFigure.PROPOSED) == figure]
        if models:
            parts.append(f"precio(s) de {', '.join(models)} con la cifra {words}")
    if not parts:
        return None
    return (
        f"Aceptado en la ejecución {run.id}: {'; '.join(parts)}. "
        "El selector ya sirve la cifra nueva."
    )


async def _accepted_notice(pricing: PricingService, run_id: int) -> str | None:
    """What the database records as accepted in run ``run_id``, or None when nothing was: the
    notice shows only what the server recorded (a query string once decided its text)."""
    try:
        run = await pricing.run(run_id)
    except NotFound:
        return None
    holds = await anyio.to_thread.run_sync(pricing.repository.accepted_holds, run_id)
    return accepted_notice(run, holds)


def rate_notice(currency: dict[str, Any], rate_id: int) -> str | None:
    """The notice after accepting rate ``rate_id``: only when the rate served is that one (what
    the server records, never what the query string says)."""
    if currency.get("rate_id") != rate_id:
        return None
    return (
        f"Tasa aceptada: {number(currency['rate'])} COP por USD (TRM vigente desde "
        f"{day(currency['valid_from'])}). El selector ya la sirve."
    )


async def estado(q: PageQuery) -> dict[str, Any]:
    run_id = run_id_of(q.params.get("aceptado") or "")
    rate_id = run_id_of(q.params.get("tasa") or "")
    notice = None
    if run_id is not None:
        notice = await _accepted_notice(q.pricing, run_id)
    found = await pages.estado(q.pricing)
    if rate_id is not None:
        notice = rate_notice(found["ready"].get("currency") or {}, rate_id)
    return {**found, "notice": notice, "error": None}


async def selector(q: PageQuery) -> dict[str, Any]:
    return await pages.selector(
        q.pricing,
        view=q.params.get("vista", "curated"),
        category=q.params.get("categoria"),
        query=(q.params.get("q") or "")[:MAX_FIELD],
    )


async def modelo(q: PageQuery) -> dict[str, Any]:
    model_id = (q.params.get("id") or "").strip()[:MAX_FIELD]
    if not model_id:
        raise InvalidRequest("Falta el id del modelo (?id=gpt-4o).")
    return await pages.modelo(q.pricing, model_id)


async def cambios(q: PageQuery) -> dict[str, Any]:
    kind = q.params.get("tipo") or None
    model_id = (q.params.get("modelo") or "").strip()[:MAX_FIELD] or None
    since_text = (q.params.get("desde") or "").strip()
    since = None
    if since_text:
        try:
            day = datetime.strptime(since_text, "%Y-%m-%d")
        except ValueError:
            raise InvalidRequest("«Desde» debe ser una fecha (AAAA-MM-DD).") from None
        since = day.replace(tzinfo=COLOMBIA)
    found = await pages.cambios(q.pricing, kind=kind, model_id=model_id, since=since)
    return {**found, "since": since_text, "error": None}


async def ejecuciones(q: PageQuery) -> dict[str, Any]:
    return await pages.ejecuciones(q.pricing)


async def desconocidos(q: PageQuery) -> dict[str, Any]:
    return await pages.desconocidos(q.pricing)


async def sugerencias(q: PageQuery) -> dict[str, Any]:
    category = (q.params.get("categoria") or "").strip()[:MAX_FIELD] or None
    return await pages.sugerencias(q.pricing, category)


async def notificaciones(q: PageQuery) -> dict[str, Any]:
    status = (q.params.get("estado") or "").strip() or None
    retried = run_id_of(q.params.get("reintentado") or "")
    found = await q.deliverer.overview(status=status, limit=DELIVERIES_PAGE)
    notice = None
    if retried is not None:
        # Read from the record, never from the query string.
        delivery = await q.deliverer.get(retried)
        if delivery is not None:
            delivered = delivery.status is DeliveryStatus.DELIVERED
            notice = (
                f"Entrega {delivery.id}: {'entregada' if delivered else 'pendiente otra vez'}"
                f" ({delivery.attempts} intentos desde el reintento)."
            )
    return {**found, "status": status, "notice": notice, "error": None}


async def ollama(q: PageQuery) -> dict[str, Any]:
    return await pages.ollama(q.pricing)


PAGES = (
    Page(("/admin", "/admin/"), "estado", "Estado", "estado", "estado.html", estado),
    Page(("/admin/selector",), "selector", "Selector", "selector", "selector.html", selector),
    Page(("/admin/modelo",), "modelo", None, "selector", "modelo.html", modelo),
    Page(("/admin/cambios",), "cambios", "Cambios", "cambios", "cambios.html", cambios),
    Page(
        ("/admin/ejecuciones",),
        "ejecuciones",
        "Ejecuciones",
        "ejecuciones",
        "ejecuciones.html",
        ejecuciones,
    ),
    Page(
        ("/admin/sugerencias",),
        "sugerencias",
        "Sugerencias",
        "sugerencias",
        "sugerencias.html",
        sugerencias,
    ),
    Page(
        ("/admin/desconocidos",),
        "desconocidos",
        "Ids desconocidos",
        "desconocidos",
        "desconocidos.html",
        desconocidos,
    ),
    Page(("/admin/ollama",), "ollama", "Ollama Space", "ollama", "ollama.html", ollama),
    Page(
        ("/admin/notificaciones",),
        "notificaciones",
        "Notificaciones",
        "notificaciones",
        "notificaciones.html",
        notificaciones,
    ),
)
# The navigation, in the table's order.
NAV = [(page.paths[0], page.title, page.nav) for page in PAGES if page.title is not None]
