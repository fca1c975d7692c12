"""Jinja2 rendering of the console's pages (autoescaped; undefined names are errors).

Jinja2 is imported by the first page rendered, not with the app: a serving worker that never
shows the console never loads it."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pricing_service.domain import (
    AcceptedFigure,
    DeliveryStatus,
    HoldReason,
    PriceStatus,
    RunStatus,
    View,
)

from . import format as fmt

if TYPE_CHECKING:
    from jinja2 import Environment

TEMPLATES = Path(__file__).resolve().parent / "templates"
STATIC = Path(__file__).resolve().parent / "static"


@cache
def environment() -> Environment:
    from jinja2 import Environment, FileSystemLoader, StrictUndefined

    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        auto_reload=False,
    )
    env.filters.update(
        number=fmt.number,
        usd=fmt.usd,
        cop=fmt.cop,
        when=fmt.when,
        age=fmt.age,
        ms=fmt.duration_ms,
        hold_reason=fmt.hold_reason,
        run_status=fmt.run_status,
        run_trigger=fmt.run_trigger,
        run_error=fmt.run_error,
        cache_tier=fmt.cache_tier,
        price_basis=fmt.price_basis,
        price_status=fmt.price_status,
        source=fmt.source,
        figure=fmt.figure,
        day=fmt.day,
        rate_source=fmt.rate_source,
        delivery_status=fmt.delivery_status,
        event_type=fmt.event_type,
        webhook_format=fmt.webhook_format,
        endpoint=fmt.endpoint,
    )
    # The coded values the templates compare with, spelled by their enums.
    env.globals.update(
        AcceptedFigure=AcceptedFigure,
        DeliveryStatus=DeliveryStatus,
        HoldReason=HoldReason,
        PriceStatus=PriceStatus,
        RunStatus=RunStatus,
        View=View,
    )
    return env


def render(template: str, **context: Any) -> str:
    return environment().get_template(template).render(**context)
