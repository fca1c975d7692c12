"""The TRM answer read and judged (rates.py): what is a rate, and when it is held."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal

import pytest

from pricing_service.rates import TrmUnparsable, hold_reason, parse_trm


def _body(*rows: object) -> bytes:
    return json.dumps(list(rows)).encode()


def test_the_latest_socrata_row_is_read() -> None:
    body = _body(
        {
            "valor": "3912.45",
            "unidad": "COP",
            "vigenciadesde": "2026-12-02T00:00:00.000",
            "vigenciahasta": "2026-12-02T00:00:00.000",
        }
    )
    assert parse_trm(body) == (Decimal("3912.45"), date(2026, 12, 2), date(2026, 12, 2))
    # A weekend TRM is valid Saturday to Monday; a whole figure loses its zeros.
    weekend = _body(
        {"valor": "4000.00", "vigenciadesde": "2026-12-05", "vigenciahasta": "2026-12-07"}
    )
    assert parse_trm(weekend) == (Decimal(4000), date(2026, 12, 5), date(2026, 12, 7))
    assert parse_trm(_body({"valor": 3999.5, "vigenciadesde": "2026-12-05"}))[2] is None


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"<html>busy</html>", "not JSON"),
        (b"{}", "non-empty list"),
        (b"[]", "non-empty list"),
        (b"[1]", "not an object"),
        (_body({"vigenciadesde": "2026-12-02"}), "valor is missing"),
        (_body({"valor": True, "vigenciadesde": "2026-12-02"}), "valor is missing"),
        (_body({"valor": "n/a", "vigenciadesde": "2026-12-02"}), "valor is not a number"),
        (_body({"valor": "NaN", "vigenciadesde": "2026-12-02"}), "not a positive rate"),
        (_body({"valor": "-3", "vigenciadesde": "2026-12-02"}), "not a positive rate"),
        (_body({"valor": "3900"}), "vigenciadesde is missing"),
        (_body({"valor": "3900", "vigenciadesde": "ayer"}), "not an ISO date"),
        (
            _body({"valor": "3900", "vigenciadesde": "2026-12-02", "vigenciahasta": "2026-12-01"}),
            "before vigenciadesde",
        ),
    ],
)
def test_what_is_not_a_trm_is_unparsable(body: bytes, message: str) -> None:
    with pytest.raises(TrmUnparsable, match=message):
        parse_trm(body)


def test_a_move_of_more_than_ten_percent_is_held() -> None:
    last = Decimal("3912.45")
    assert hold_reason(Decimal("4303.69"), last) is None  # +9.99999 %
    assert hold_reason(Decimal("3521.21"), last) is None  # -9.99997 %
    jump = hold_reason(Decimal("4499.32"), last)  # +15 %
    assert jump is not None
    assert "moved 15.0 %" in jump
    assert hold_reason(Decimal("3325.58"), last) is not None  # -15 %
    # The first TRM has nothing to move from: it is checked against what a rate can be.
    assert hold_reason(Decimal("3912.45"), None) is None
    assert hold_reason(Decimal("39.12"), None) is not None
