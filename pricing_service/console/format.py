"""es-CO display of numbers, dates and ages, every coded value in Spanish, and the price chart.

Pure functions: the templates call them as filters. Numbers use ``.`` for thousands and ``,``
for decimals (``1.234,56``); local amounts go through the deployment's
``pricing_service.currency.Currency`` (``cop``'s argument), the one rounding rule of the
service; dates show in Colombia's time (UTC-5, no daylight saving).

Every code the service stores or reports in English (hold reasons, run statuses and sources,
cache tiers, price bases, /ready's degraded lines) is worded in Spanish here, in one table per
kind: templates call these functions as filters, never their own dictionaries. A code a table
does not know yet (a new hold reason from the gate) shows a generic Spanish text, and
tests/unit/test_console_format.py fails until the table names it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING

from pricing_service.currency import RateSource
from pricing_service.domain import (
    AcceptedFigure,
    CacheTier,
    DegradationCode,
    DeliveryStatus,
    HoldReason,
    PriceBasis,
    PriceStatus,
    RunPhase,
    RunStatus,
    RunTrigger,
    SnapshotSource,
    WebhookFormat,
)
from pricing_service.gate import MAX_PRICE_RATIO, MAX_USD_PER_MILLION, SECOND_SOURCE_MAX_RATIO
from pricing_service.sources import CATALOG_SOURCE, LOCAL_SOURCE
from pricing_service.webhooks.events import EventType, shown_url

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from typing import Any

    from pricing_service.currency import Currency
    from pricing_service.domain import HeldPrice

COLOMBIA = timezone(timedelta(hours=-5), "COT")
MAX_PLAIN_DIGITS = 18  # beyond, a figure shows as "1 × 10^300" (held prices can be absurd)


def number(value: Decimal | float | int | str | None, places: int | None = None) -> str:
    """``1234.5`` -> ``"1.234,5"``; ``places`` fixes the decimals; None -> ``"—"``."""
    if value is None:
        return "—"
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        return str(value)
    if not amount.is_finite():
        return str(value)
    if amount != 0 and abs(amount.adjusted()) > MAX_PLAIN_DIGITS:
        digits = amount.scaleb(-amount.adjusted()).normalize()
        return f"{number(digits)} × 10^{amount.adjusted()}"
    if places is not None:
        amount = amount.quantize(Decimal(1).scaleb(-places))
        text = f"{amount:,f}"
    else:
        tidy = amount.normalize()
        if tidy == tidy.to_integral_value():
            tidy = tidy.quantize(Decimal(1))
        text = f"{tidy:,f}"
    whole, _, fraction = text.partition(".")
    whole = whole.replace(",", ".")
    return f"{whole},{fraction}" if fraction else whole


def usd(value: Decimal | float | int | str | None) -> str:
    """A USD figure per million tokens: ``"2,5 US$"``; None -> ``"desconocido"``."""
    if value is None:
        return "desconocido"
    return f"{number(value)} US$"


def cop(value: Decimal | float | int | str | None, currency: Currency) -> str:
    """A local amount as ``currency`` shows it (``"8.000 COP"``); None -> ``"desconocido"``."""
    if value is None:
        return "desconocido"
    return currency.format(Decimal(str(value)))


def when(value: datetime | str | None) -> str:
    """A moment in Colombia's time: ``"29/04/2026 10:15 COT"``."""
    if value is None:
        return "—"
    moment = (
        datetime.fromisoformat(value.replace("Z", "+00:00")) if isinstance(value, str) else value
    )
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(COLOMBIA).strftime("%d/%m/%Y %H:%M COT")


def day(value: str | None) -> str:
    """An ISO date as Colombia writes it: ``"2026-12-02"`` -> ``"02/12/2026"``; None -> ``"—"``."""
    if not value:
        return "—"
    year, _, rest = str(value).partition("-")
    month, _, dom = rest.partition("-")
    return f"{dom}/{month}/{year}" if dom else str(value)


def rate_source(value: str | None) -> str:
    return _spanish(RATE_SOURCES, value, f"otra fuente ({value})")


def age(seconds: float | int | None) -> str:
    """``"3 h 12 min"``, ``"2 d 4 h"``, ``"45 s"``."""
    if seconds is None:
        return "—"
    total = max(0, int(seconds))
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days} d {hours} h"
    if hours:
        return f"{hours} h {minutes} min"
    if minutes:
        return f"{minutes} min"
    return f"{secs} s"


# -- coded values in Spanish ------------------------------------------------------------------

# Why the gate holds a price, by HoldReason (the detail sentence beside it stays the gate's).
HOLD_REASONS: dict[HoldReason, str] = {
    HoldReason.RATIO: f"saltó más de {number(MAX_PRICE_RATIO)} veces",
    HoldReason.CEILING: f"sobre el tope de {number(MAX_USD_PER_MILLION)} US$ por millón",
    HoldReason.ZERO: "cayó a 0 sin estar declarado gratis",
    HoldReason.SECOND_SOURCE: (
        f"la segunda fuente difiere más de {number(SECOND_SOURCE_MAX_RATIO)} veces"
    ),
    HoldReason.DETAIL_UNAVAILABLE: "falló la consulta del detalle (get_model) en esta ejecución",
}
GENERIC_HOLD_REASON = "retenido por el control de precios"

RUN_STATUSES: dict[str, str] = {
    RunStatus.RUNNING: "en curso",
    RunStatus.SUCCEEDED: "correcta",
    RunStatus.FAILED: "fallida",
    RunStatus.HELD: "retenida",
    RunStatus.SEEDED: "semilla guardada",
}
# Who started a run (refresh(trigger)): the scheduler, the CLI, POST /refresh, the seed; and
# the tests' own trigger.
RUN_TRIGGERS: dict[str, str] = {
    RunTrigger.SCHEDULE: "programada",
    RunTrigger.CLI: "línea de comandos",
    RunTrigger.API: "API (petición de actualización)",
    RunTrigger.SEED: "semilla incluida",
    "test": "prueba",
}
CACHE_TIERS: dict[str, str] = {
    CacheTier.MEMORY: "memoria del proceso",
    CacheTier.REDIS: "Redis",
    CacheTier.DATABASE: "base de datos",
    CacheTier.CATALOG: "catálogo",
}
PRICE_BASES: dict[str, str] = {
    PriceBasis.OFFICIAL: "oficial (ficha del modelo en PricePerToken)",
    PriceBasis.LIST: "de la lista de PricePerToken (a veces un proveedor más barato)",
    PriceBasis.CATALOG: "fijado en el catálogo",
    PriceBasis.SEED: "semilla incluida (grabación del 29/04/2026)",
    PriceBasis.SECOND_SOURCE: "de la segunda fuente (PricePerToken no lista el modelo)",
}
PRICE_STATUSES: dict[str, str] = {
    PriceStatus.PRICED: "con precio",
    PriceStatus.FREE: "gratis",
    PriceStatus.LOCAL: "local",
    PriceStatus.UNKNOWN: "sin precio conocido",
}
SOURCES: dict[str, str] = {
    SnapshotSource.PRICEPERTOKEN: "PricePerToken (en vivo)",
    SnapshotSource.GENAI_PRICES: "datos de genai-prices (incluidos en el paquete, sin conexión)",
    SnapshotSource.SEED: "semilla incluida (sin datos en vivo)",
    CATALOG_SOURCE: "catálogo",
    LOCAL_SOURCE: "modelo local (Ollama)",
}
FIGURES: dict[str, str] = {
    AcceptedFigure.PROPOSED: "la cifra propuesta (upstream)",
    AcceptedFigure.SECOND_SOURCE: "la cifra de la segunda fuente",
}
# GET /ready's degraded lines (reports.Degradation), by code; {names} are its facts.
WARNINGS: dict[str, str] = {
    DegradationCode.REDIS_UNREACHABLE: (
        "Redis no responde: se sirve desde la memoria y la base de datos."
    ),
    DegradationCode.STALE: "Instantánea vencida: se obtuvo hace {age}.",
    DegradationCode.NOT_LIVE: "Se sirve la instantánea de {source}, no precios en vivo.",
    DegradationCode.DATABASE_UNREACHABLE: (
        "La base de datos no responde: se sirve la instantánea en caché."
    ),
    DegradationCode.LAST_REFRESH_FAILED: "Falló la última actualización (ejecución {run_id}).",
    DegradationCode.RUN_HELD: (
        "Ejecución {run_id} retenida: los precios no cambian hasta que un operador la acepte."
    ),
    DegradationCode.PRICE_HELD_CURATED: (
        "Precio retenido de {model_id} ({reason}; ejecución {run_id}), curado en {categories}: "
        "se sirve {served} hasta que un operador acepte una cifra."
    ),
    DegradationCode.PRICE_HELD: "Precio retenido de {model_id} ({reason}; ejecución {run_id}).",
    DegradationCode.MORE_HELD: "Y {count} precios retenidos más (vea Ejecuciones).",
    DegradationCode.RATE_FALLBACK: (
        "Aún no hay una TRM aceptada: se usa la tasa fija de {rate} COP por USD ({source})."
    ),
    DegradationCode.RATE_HELD: (
        "TRM de {rate} COP por USD (vigente desde {valid_from}) retenida: se sigue usando "
        "{served} hasta que un operador la acepte (pricing-service rate --accept {rate_id})."
    ),
    DegradationCode.RATE_UNPARSABLE: (
        "La última respuesta de la fuente de la TRM no se pudo leer: queda retenida y se sigue "
        "usando {served} COP por USD."
    ),
    DegradationCode.RATE_UNREACHABLE: (
        "La fuente de la TRM no responde: se mantiene la tasa de {rate} COP por USD (vigente "
        "desde {valid_from}), confirmada por última vez hace {age}."
    ),
}
# Where the USD -> COP rate comes from (the ``currency.source`` of every answer).
RATE_SOURCES: dict[str, str] = {
    RateSource.DEFAULT: "tasa fija incluida (4.000, cifra educativa del documento)",
    RateSource.OPERATOR: "tasa fija del operador (PRICING_USD_TO_COP)",
    RateSource.TRM: "TRM del día (Superintendencia Financiera, datos.gov.co)",
}
# Webhook deliveries (webhooks/outbox.py), the events they carry, the endpoints' formats.
DELIVERY_STATUSES: dict[str, str] = {
    DeliveryStatus.PENDING: "pendiente",
    DeliveryStatus.DELIVERED: "entregada",
    DeliveryStatus.DEAD: "agotada (sin más reintentos)",
}
EVENT_TYPES: dict[str, str] = {
    EventType.PRICES_CHANGED: "cambios de precio",
    EventType.RUN_HELD: "ejecución retenida",
    EventType.PRICE_HELD: "precio retenido",
    EventType.REFRESH_FAILING: "actualizaciones fallando",
    EventType.REFRESH_RECOVERED: "actualizaciones recuperadas",
    EventType.DECISION_RECORDED: "decisión registrada",
    EventType.WEBHOOK_TEST: "evento de prueba",
}
WEBHOOK_FORMATS: dict[str, str] = {
    WebhookFormat.JSON: "JSON firmado (Standard Webhooks)",
    WebhookFormat.SLACK: "mensaje de Slack",
    WebhookFormat.DISCORD: "mensaje de Discord",
}
GENERIC_WARNING = "Aviso del servicio sin texto en español todavía ({code})."


def _spanish(table: Mapping[Any, str], value: object, fallback: str) -> str:
    key = getattr(value, "value", value)
    return table.get(str(key), fallback) if key is not None else "—"


def hold_reason(value: HoldReason | str | None) -> str:
    """A hold reason in Spanish; one the table does not know yet gets a generic text."""
    return _spanish(HOLD_REASONS, value, GENERIC_HOLD_REASON)


def run_status(value: RunStatus | str | None) -> str:
    return _spanish(RUN_STATUSES, value, f"estado desconocido ({value})")


def delivery_status(value: str | None) -> str:
    return _spanish(DELIVERY_STATUSES, value, f"estado desconocido ({value})")


def event_type(value: str | None) -> str:
    return _spanish(EVENT_TYPES, value, f"otro evento ({value})")


def webhook_format(value: str | None) -> str:
    return _spanish(WEBHOOK_FORMATS, value, f"otro formato ({value})")


def endpoint(url: str) -> str:
    """A webhook endpoint as shown: scheme and host (a Slack URL's path is its secret)."""
    return shown_url(url)


def run_trigger(value: str | None) -> str:
    return _spanish(RUN_TRIGGERS, value, f"otro origen ({value})")


def cache_tier(value: str | None) -> str:
    return _spanish(CACHE_TIERS, value, f"otra ({value})")


def price_basis(value: str | None) -> str:
    return _spanish(PRICE_BASES, value, f"otra base ({value})")


def price_status(value: str | None) -> str:
    return _spanish(PRICE_STATUSES, value, f"otro estado ({value})")


def source(value: str | None) -> str:
    return _spanish(SOURCES, value, f"otra fuente ({value})")


# Run errors the service itself writes (repository.abandoned_error, its wording copied: the api
# layer imports this module and may not import the repository); the upstream's and the gate's
# stay as they are.
_ABANDONED = re.compile(
    r"abandoned(?: while (?P<phase>\w+))?: the process running it"
    r"(?: \((?P<worker>[^)]*)\))? stopped or lost its lease"
)
RUN_PHASES: dict[str, str] = {
    RunPhase.FETCHING: "consultando el upstream",
    RunPhase.STORING: "guardando la instantánea",
}


def run_error(value: str | None) -> str | None:
    if value is None:
        return None
    match = _ABANDONED.fullmatch(value)
    if match is None:
        return value
    phase, worker = match.group("phase"), match.group("worker")
    where = f" mientras {RUN_PHASES.get(phase, phase)}" if phase else ""
    who = f" ({worker})" if worker else ""
    return f"abandonada{where}: el proceso que la ejecutaba{who} se detuvo o perdió su turno"


def figure(value: str | None) -> str:
    return _spanish(FIGURES, value or AcceptedFigure.PROPOSED, f"otra cifra ({value})")


def price_status_reason(item: Mapping[str, Any], held: HeldPrice | None) -> str | None:
    """Why a selector item's price is not simply the upstream's current one, in Spanish.

    The item's own ``price_status_reason`` says it in English for API clients; this says it
    from the same facts: the held price (its reason and run) and the delisting date.
    """
    reasons = []
    if item.get("held"):
        served = (
            "sin precio (aún no hay uno aceptado)"
            if item.get("price_status") == "unknown"
            else "el último precio aceptado"
        )
        what = "precio retenido"
        if held is not None:
            what = f"precio retenido ({hold_reason(held.reason)}; ejecución {held.run_id})"
        reasons.append(f"{what}: se sirve {served} hasta que un operador lo acepte")
    if not item.get("listed", True) and item.get("delisted_at") and not item.get("local"):
        reasons.append(
            f"retirado del upstream el {when(item['delisted_at'])}: se conserva el último precio "
            "aceptado durante un periodo de gracia y luego queda sin precio"
        )
    return "; ".join(reasons) or None


def warning(code: str, facts: Mapping[str, Any]) -> str:
    """One of /ready's degraded lines (``reports.Degradation``) in Spanish."""
    template = WARNINGS.get(code)
    if template is None:
        return GENERIC_WARNING.format(code=code)
    values = dict(facts)
    if "reason" in values:
        values["reason"] = hold_reason(values["reason"])
    if "age_seconds" in values:
        values["age"] = age(values["age_seconds"])
    if code.startswith("rate_"):
        for key in ("rate", "served"):
            if key in values:
                values[key] = number(values[key])
        if "valid_from" in values:
            values["valid_from"] = day(values["valid_from"])
        if "source" in values:
            values["source"] = rate_source(values["source"])
    elif "source" in values:
        values["source"] = {SnapshotSource.SEED: "la semilla incluida"}.get(
            values["source"], values["source"]
        )
    if "categories" in values:
        values["categories"] = ", ".join(values["categories"])
    if "served_unknown" in values:
        values["served"] = "sin precio" if values["served_unknown"] else "el último precio aceptado"
    try:
        return template.format(**values)
    except (KeyError, IndexError):  # a fact renamed in readiness.py: still a Spanish line
        return GENERIC_WARNING.format(code=code)


def duration_ms(value: int | None) -> str:
    if value is None:
        return "—"
    if value < 1000:
        return f"{number(value)} ms"
    return f"{number(Decimal(value) / 1000, 1)} s"


# -- the price-history chart ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Chart:
    """What the template draws: step lines for input and output, axis labels, points."""

    width: int
    height: int
    input_path: str
    output_path: str
    y_labels: list[tuple[float, str]]  # (y, label)
    x_labels: list[tuple[float, str]]  # (x, label)
    points: list[tuple[float, float, str]]  # (x, y, title) for every version, both lines
    empty: bool


WIDTH, HEIGHT = 640, 240
LEFT, RIGHT, TOP, BOTTOM = 64, 12, 12, 28


def history_chart(
    history: Sequence[tuple[datetime, Decimal | None, Decimal | None]], now: datetime
) -> Chart:
    """Step lines of a model's price versions (USD per million), from the first to ``now``."""
    known = [(t, i, o) for t, i, o in history if i is not None or o is not None]
    if not known:
        return Chart(WIDTH, HEIGHT, "", "", [], [], [], empty=True)
    start = known[0][0]
    end = max(now, known[-1][0] + timedelta(hours=1))
    span = (end - start).total_seconds() or 1.0
    top = max(max(v for _, i, o in known for v in (i, o) if v is not None), Decimal("0.000001"))
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def x(moment: datetime) -> float:
        return round(LEFT + (moment - start).total_seconds() / span * plot_w, 1)

    def y(value: Decimal) -> float:
        return round(TOP + plot_h - float(value / top) * plot_h, 1)

    def path(index: int) -> str:
        parts: list[str] = []
        last_y: float | None = None
        for moment, *values in known:
            value = values[index]
            if value is None:
                last_y = None
                continue
            px, py = x(moment), y(value)
            if last_y is None:
                parts.append(f"M{px},{py}")
            else:
                parts.append(f"H{px}V{py}")
            last_y = py
        if last_y is not None:
            parts.append(f"H{x(end)}")
        return "".join(parts)

    points: list[tuple[float, float, str]] = []
    for moment, inp, out in known:
        for label, value in (("entrada", inp), ("salida", out)):
            if value is not None:
                points.append((x(moment), y(value), f"{when(moment)}: {label} {usd(value)}"))
    y_labels = [(y(top * k / 4), number(top * k / 4)) for k in range(5)]
    x_labels = [(x(start), when(start)[:10]), (x(end), when(end)[:10])]
    return Chart(WIDTH, HEIGHT, path(0), path(1), y_labels, x_labels, points, empty=False)
