"""What each webhook event says: its type, its data, and the Slack or Discord message (pure).

Money in the data is a JSON number of USD per million tokens (as ``/changes`` gives it) beside
its COP figure by ``currency.cop_amount`` at the configured rate; an unknown price is null,
never 0.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from pricing_service.currency import cop_amount
from pricing_service.domain import WebhookFormat

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from pricing_service.domain import Catalog, ModelPrice


class EventType(StrEnum):
    """What a webhook event reports (webhook_event.type, the envelope's ``type``)."""

    PRICES_CHANGED = "prices.changed"  # a run or an acceptance moved served prices
    RUN_HELD = "run.held"  # the gate held a whole run
    PRICE_HELD = "price.held"  # the gate held one model's price
    REFRESH_FAILING = "refresh.failing"  # no run succeeded for a while, and some failed
    REFRESH_RECOVERED = "refresh.recovered"  # a run succeeded after refresh.failing
    DECISION_RECORDED = "decision.recorded"  # an operator accepted held prices
    WEBHOOK_TEST = "webhook.test"  # `pricing-service webhooks test` (never stored)


# A prices.changed body lists at most this many changes (a first listing can add thousands);
# `more` counts the rest, which GET /api/v1/pricing/changes lists.
MAX_CHANGES_PER_EVENT = 1000


@dataclass(frozen=True, slots=True)
class EventContext:
    """What the repository needs to write events: where they go and how to describe them."""

    endpoints: tuple[tuple[str, str], ...] = ()  # (format, url), PRICING_WEBHOOK_URLS
    usd_to_cop: Decimal | None = None  # None: COP figures are null (unknown), never 0
    curated: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # id -> categories
    failing_after_seconds: float = 86400.0


def curated_categories(catalog: Catalog) -> dict[str, tuple[str, ...]]:
    """Every spelling of a curated model (its catalog id, an alias either way, lower-cased)
    -> the categories that list it."""
    found: dict[str, list[str]] = {}
    for category in catalog.categories:
        for model_id in category.model_ids:
            found.setdefault(model_id.lower(), []).append(category.id)
    for alias, target in catalog.aliases.items():
        for one, other in ((alias.lower(), target.lower()), (target.lower(), alias.lower())):
            if one in found:
                for category_id in found[one]:
                    if category_id not in found.setdefault(other, []):
                        found[other].append(category_id)
    return {k: tuple(v) for k, v in found.items()}


def _number(value: Decimal | None) -> float | None:
    return None if value is None or not value.is_finite() else float(value)


def _cop(value: Decimal | None, rate: Decimal | None) -> float | None:
    if value is None or rate is None or not value.is_finite() or value < 0:
        return None
    return float(cop_amount(value, rate))


def figures(
    input_usd: Decimal | None, output_usd: Decimal | None, rate: Decimal | None
) -> dict[str, float | None]:
    return {
        "input_usd_per_million": _number(input_usd),
        "output_usd_per_million": _number(output_usd),
        "input_cop_per_million": _cop(input_usd, rate),
        "output_cop_per_million": _cop(output_usd, rate),
    }


def price_figures(price: ModelPrice | None, rate: Decimal | None) -> dict[str, Any] | None:
    if price is None:
        return None
    return figures(price.input_usd_per_million, price.output_usd_per_million, rate)


@dataclass(frozen=True, slots=True)
class Change:
    model_id: str
    kind: str  # changed | added | removed
    before: ModelPrice | None
    after: ModelPrice | None


def prices_changed(
    snapshot_id: int, changes: Sequence[Change], rate: Decimal | None
) -> dict[str, Any]:
    listed = list(changes)[:MAX_CHANGES_PER_EVENT]
    return {
        "snapshot_id": snapshot_id,
        "usd_to_cop": _number(rate),
        "changes": [
            {
                "model_id": c.model_id,
                "kind": c.kind,
                "before": price_figures(c.before, rate),
                "after": price_figures(c.after, rate),
            }
            for c in listed
        ],
        "more": max(0, len(changes) - len(listed)),
    }


def envelope(event_type: str, created_at: datetime, data: Mapping[str, Any]) -> dict[str, Any]:
    """The JSON body of every delivery: ``{"type", "timestamp", "data"}``."""
    return {"type": event_type, "timestamp": created_at.isoformat(), "data": dict(data)}


def webhook_id(event_id: int, created_at: datetime) -> str:
    """The ``webhook-id`` of an event: the same on every attempt and every endpoint."""
    return f"evt_{event_id}_{int(created_at.timestamp())}"


def _usd(value: Any) -> str:
    return "?" if value is None else f"{value:g} USD"


def message_text(event_type: str, data: Mapping[str, Any]) -> str:
    """A one-paragraph message (Spanish, for the team's Slack or Discord channel)."""
    if event_type == EventType.PRICES_CHANGED:
        changes = data.get("changes", [])
        lines = [
            f"Precios actualizados (snapshot {data.get('snapshot_id')}): {len(changes)} cambios"
        ]
        for change in changes[:10]:
            before = change.get("before") or {}
            after = change.get("after") or {}
            lines.append(
                f"• {change['model_id']} ({change['kind']}): "
                f"{_usd(before.get('input_usd_per_million'))} / "
                f"{_usd(before.get('output_usd_per_million'))} → "
                f"{_usd(after.get('input_usd_per_million'))} / "
                f"{_usd(after.get('output_usd_per_million'))}"
            )
        hidden = len(changes) - 10 + int(data.get("more") or 0)
        if hidden > 0:
            lines.append(f"… y {hidden} más")
        return "\n".join(lines)
    if event_type == EventType.RUN_HELD:
        return (
            f"Ejecución {data.get('run_id')} retenida: {data.get('reason')}. Los precios no "
            f"cambian hasta que un operador la acepte "
            f"(pricing-service refresh --accept {data.get('run_id')})."
        )
    if event_type == EventType.PRICE_HELD:
        curated = data.get("categories") or []
        where = f", curado en {', '.join(curated)}" if curated else ""
        return (
            f"Precio retenido: {data.get('model_id')} (ejecución {data.get('run_id')}, "
            f"{data.get('reason')}{where}): {data.get('detail')}"
        )
    if event_type == EventType.REFRESH_FAILING:
        return (
            f"Las actualizaciones fallan: ninguna ejecución exitosa desde "
            f"{data.get('last_success_at') or 'el inicio'}. Último error: {data.get('last_error')}"
        )
    if event_type == EventType.REFRESH_RECOVERED:
        return f"Las actualizaciones se recuperaron: ejecución {data.get('run_id')} exitosa."
    if event_type == EventType.DECISION_RECORDED:
        models = ", ".join(d.get("model_id") or "*" for d in data.get("decisions", []))
        return (
            f"Decisión registrada por {data.get('by')}: ejecución {data.get('run_id')} ({models})."
        )
    if event_type == EventType.WEBHOOK_TEST:
        return "Prueba del webhook del servicio de precios de Cognitia."
    return event_type


def body_for(
    format_name: str, event_type: str, created_at: datetime, data: Mapping[str, Any]
) -> dict[str, Any]:
    """The body for an endpoint's format: the envelope, or a Slack or Discord message."""
    if format_name == WebhookFormat.SLACK:
        return {"text": message_text(event_type, data)}
    if format_name == WebhookFormat.DISCORD:
        return {"content": message_text(event_type, data)[:2000]}
    return envelope(event_type, created_at, data)


def shown_url(url: str) -> str:
    """An endpoint as shown to people (console, CLI, logs): scheme and host only. A Slack or
    Discord incoming-webhook URL carries its secret in the path."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return "…"
    host = rest.split("/", 1)[0].rsplit("@", 1)[-1]
    return f"{scheme}://{host}/…"
