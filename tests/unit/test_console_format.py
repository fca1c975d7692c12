"""es-CO numbers, dates in Colombia's time, and the price-history chart."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from pricing_service.console.format import age, history_chart, number, usd, when
from pricing_service.console.pages import alias_line


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (Decimal("1234.56"), "1.234,56"),
        (Decimal("2.50"), "2,5"),
        (Decimal("1E+12"), "1.000.000.000.000"),
        ("1000000000000", "1.000.000.000.000"),
        (1e12, "1.000.000.000.000"),
        (Decimal("0.000001"), "0,000001"),
        (0, "0"),
        (Decimal("1E+300"), "1 × 10^300"),
        (None, "—"),
    ],
)
def test_numbers_read_the_colombian_way(value: object, shown: str) -> None:
    assert number(value) == shown  # type: ignore[arg-type]


def test_usd_and_unknown() -> None:
    assert usd(Decimal("2.5")) == "2,5 US$"
    assert usd(None) == "desconocido"


def test_dates_show_in_colombia_and_ages_read_short() -> None:
    assert when(datetime(2026, 4, 29, 15, 5, tzinfo=UTC)) == "29/04/2026 10:05 COT"
    assert when("2026-04-29T00:30:00Z") == "28/04/2026 19:30 COT"
    assert age(45) == "45 s"
    assert age(3 * 3600 + 12 * 60) == "3 h 12 min"
    assert age(2 * 86400 + 4 * 3600) == "2 d 4 h"


def test_the_chart_steps_from_version_to_version_up_to_now() -> None:
    start = datetime(2026, 4, 1, tzinfo=UTC)
    history = [
        (start, Decimal("2.5"), Decimal(10)),
        (start + timedelta(days=10), Decimal(5), Decimal(10)),
    ]
    chart = history_chart(history, start + timedelta(days=20))
    assert not chart.empty
    # Input starts at x=left, steps at the middle of the span, runs to the right edge.
    assert chart.input_path.startswith("M64.0,")
    assert "H346.0V" in chart.input_path
    assert chart.input_path.endswith("H628.0")
    # The top of the scale is the highest figure; both lines end on it or below.
    assert chart.y_labels[-1][1] == "10"
    assert len(chart.points) == 4
    assert history_chart([], start).empty
    assert history_chart([(start, None, None)], start).empty


def test_the_alias_line_is_valid_toml() -> None:
    import tomllib

    line = alias_line('odd "id"', "gpt-4o")
    assert tomllib.loads(line) == {'odd "id"': "gpt-4o"}
    assert tomllib.loads(alias_line("x", None)) == {"x": "ID-DEL-UPSTREAM"}
