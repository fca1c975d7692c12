"""es-CO display of numbers, dates and ages, and the price-history chart as SVG coordinates.

Pure functions: the templates call them as filters. Numbers use ``.`` for thousands and ``,``
for decimals (``1.234,56``); pesos go through ``pricing_service.currency.format_cop``, the one
rounding rule of the service; dates show in Colombia's time (UTC-5, no daylight saving).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING

from pricing_service.currency import format_cop

if TYPE_CHECKING:
    from collections.abc import Sequence

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


def cop(value: Decimal | float | int | str | None) -> str:
    if value is None:
        return "desconocido"
    return format_cop(Decimal(str(value)))


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
