"""Tests for pricing_service.currency: exact USD -> COP and the one rounding rule."""

from __future__ import annotations

import json
from decimal import Decimal
from fractions import Fraction
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pricing_service.config import Settings
from pricing_service.currency import (
    COP,
    CURRENCIES,
    MAX_PLACES,
    CopPrice,
    Currency,
    RateMode,
    cop_price,
    usd_to_cop,
)
from tests.support.currencies import XTS

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures/pricepertoken/2026-04-29/get_model.json"
OFFICIAL = {
    row["model"]: row["pricing"]
    for row in json.loads(FIXTURE.read_text("utf-8"))
    if row["pricing"]["input_per_1m"] is not None and row["pricing"]["output_per_1m"] is not None
}
RATE = Decimal(4000)

prices = st.decimals(
    min_value=Decimal(0), max_value=Decimal(10_000), allow_nan=False, allow_infinity=False
)
positive_prices = st.decimals(
    min_value=Decimal("1E-12"), max_value=Decimal(10_000), allow_nan=False, allow_infinity=False
)
rates = st.decimals(
    min_value=Decimal("0.0001"), max_value=Decimal(100_000), allow_nan=False, allow_infinity=False
)


def _usd(value: float | int) -> Decimal:
    # The fixture is JSON: go through str() as the normalizer does, never Decimal(float).
    return Decimal(str(value))


def test_gpt_5_mini_official_price_at_4000() -> None:
    pricing = OFFICIAL["gpt-5-mini"]
    got = cop_price(_usd(pricing["input_per_1m"]), _usd(pricing["output_per_1m"]), RATE, COP)
    assert got == CopPrice(
        input_cop_per_million=Decimal(1000),
        output_cop_per_million=Decimal(8000),
        input_cop_per_10k=Decimal(10),
        output_cop_per_10k=Decimal(80),
        typical_message_cop=Decimal(5),
        input_cop_per_10k_display="10 COP",
        output_cop_per_10k_display="80 COP",
        typical_message_cop_display="5 COP",
    )
    # Plain digits for JSON: 1000, not 1E+3 or 1000.00.
    assert str(got.input_cop_per_million) == "1000"


@pytest.mark.parametrize(
    ("model_id", "per_10k", "typical"),
    [
        ("gpt-4o", ("100 COP", "400 COP"), "30 COP"),  # 2.5/10
        ("gpt-4o-mini", ("6 COP", "24 COP"), "1,8 COP"),  # 0.15/0.6
        ("gpt-5-nano", ("2 COP", "16 COP"), "1 COP"),  # 0.05/0.4
        ("o1-pro", ("6.000 COP", "24.000 COP"), "1.800 COP"),  # 150/600
    ],
)
def test_recorded_prices_display(model_id: str, per_10k: tuple[str, str], typical: str) -> None:
    pricing = OFFICIAL[model_id]
    got = cop_price(_usd(pricing["input_per_1m"]), _usd(pricing["output_per_1m"]), RATE, COP)
    assert (got.input_cop_per_10k_display, got.output_cop_per_10k_display) == per_10k
    assert got.typical_message_cop_display == typical


def test_every_recorded_price_follows_the_rule() -> None:
    assert len(OFFICIAL) > 300
    for model_id, pricing in OFFICIAL.items():
        input_usd, output_usd = _usd(pricing["input_per_1m"]), _usd(pricing["output_per_1m"])
        got = cop_price(input_usd, output_usd, RATE, COP)
        assert got.input_cop_per_million == input_usd * RATE, model_id
        assert got.input_cop_per_10k == got.input_cop_per_million / 100, model_id
        assert got.output_cop_per_10k == got.output_cop_per_million / 100, model_id
        exact_typical = (1000 * input_usd + 500 * output_usd) / 1_000_000 * RATE
        assert got.typical_message_cop == exact_typical, model_id
        for amount in (got.input_cop_per_million, got.input_cop_per_10k, got.typical_message_cop):
            assert "E" not in str(amount), (model_id, amount)


@pytest.mark.parametrize(
    ("amount", "shown"),
    [
        ("0", "0 COP"),
        ("0.00", "0 COP"),
        ("0.000001", "< 0,01 COP"),
        ("0.004", "< 0,01 COP"),
        ("0.005", "< 0,01 COP"),  # half-even: 0.005 -> 0.00, still positive
        ("0.006", "0,01 COP"),
        ("0.015", "0,02 COP"),  # half-even: to the even cent
        ("0.5", "0,5 COP"),
        ("0.50", "0,5 COP"),
        ("1", "1 COP"),
        ("1.8", "1,8 COP"),
        ("12.345", "12,34 COP"),
        ("12.3451", "12,35 COP"),
        ("99.99", "99,99 COP"),
        ("99.995", "100 COP"),  # rounds into whole pesos
        ("100", "100 COP"),
        ("100.5", "100 COP"),
        ("101.5", "102 COP"),
        ("999.6", "1.000 COP"),
        ("8000", "8.000 COP"),
        ("1E+3", "1.000 COP"),
        ("1234567.89", "1.234.568 COP"),
    ],
)
def test_format_cop(amount: str, shown: str) -> None:
    assert COP.format(Decimal(amount)) == shown


@pytest.mark.parametrize(
    ("input_usd", "field", "expected"),
    [
        # 0.0000001 USD/M × 4000 = 0.0004 COP/M; per 10K 0.000004; typical 0.0000004 -> 0.000001
        ("0.0000001", "typical_message_cop", "0.000001"),
        ("0.0000001", "input_cop_per_10k", "0.000004"),
        # 0.00000000123 × 4000 / 100 = 0.0000000492: quantized to 0, so the floor 0.000001 applies
        ("0.00000000123", "input_cop_per_10k", "0.000001"),
        # 0.000123456789 × 4000 = 0.493827156 per M -> 0.493827 (6 places, half-even)
        ("0.000123456789", "input_cop_per_million", "0.493827"),
        # per 10K 0.00493827156 -> 0.004938
        ("0.000123456789", "input_cop_per_10k", "0.004938"),
    ],
)
def test_numeric_fields_quantize_beyond_six_places(
    input_usd: str, field: str, expected: str
) -> None:
    got = cop_price(Decimal(input_usd), Decimal(0), RATE, COP)
    assert getattr(got, field) == Decimal(expected)
    assert got.output_cop_per_10k == 0
    assert got.output_cop_per_10k_display == "0 COP"
    assert got.input_cop_per_10k_display == "< 0,01 COP"


def test_free_model_is_zero_everywhere() -> None:
    got = cop_price(Decimal(0), Decimal(0), RATE, COP)
    assert got.typical_message_cop == 0
    assert got.typical_message_cop_display == "0 COP"


@pytest.mark.parametrize(
    ("call", "error"),
    [
        (lambda: usd_to_cop(Decimal("-0.01"), RATE), ValueError),
        (lambda: usd_to_cop(Decimal("NaN"), RATE), ValueError),
        (lambda: usd_to_cop(Decimal("Infinity"), RATE), ValueError),
        (lambda: usd_to_cop(Decimal(1), Decimal(0)), ValueError),
        (lambda: usd_to_cop(Decimal(1), Decimal(-4000)), ValueError),
        (lambda: usd_to_cop(Decimal(1), Decimal("sNaN")), ValueError),
        (lambda: usd_to_cop(0.25, RATE), TypeError),  # type: ignore[arg-type]
        (lambda: cop_price(Decimal(1), Decimal(-1), RATE, COP), ValueError),
        (lambda: cop_price(Decimal("-Infinity"), Decimal(1), RATE, COP), ValueError),
        (lambda: COP.format(Decimal("-0.001")), ValueError),
        (lambda: COP.format(Decimal("NaN")), ValueError),
    ],
)
def test_bad_input_raises(call: object, error: type[Exception]) -> None:
    assert callable(call)
    with pytest.raises(error):
        call()


@given(usd=prices, rate=rates)
def test_usd_to_cop_is_exact_multiplication(usd: Decimal, rate: Decimal) -> None:
    got = usd_to_cop(usd, rate)
    # Fraction arithmetic is exact and independent of any decimal context.
    assert Fraction(got) == Fraction(usd) * Fraction(rate)


@given(input_usd=positive_prices, output_usd=positive_prices, rate=rates)
def test_positive_price_never_shows_as_zero(
    input_usd: Decimal, output_usd: Decimal, rate: Decimal
) -> None:
    got = cop_price(input_usd, output_usd, rate, COP)
    for amount in (
        got.input_cop_per_million,
        got.output_cop_per_million,
        got.input_cop_per_10k,
        got.output_cop_per_10k,
        got.typical_message_cop,
    ):
        assert amount > 0
        assert -amount.as_tuple().exponent <= MAX_PLACES  # type: ignore[operator]
    for shown in (
        got.input_cop_per_10k_display,
        got.output_cop_per_10k_display,
        got.typical_message_cop_display,
    ):
        assert shown != "0 COP"
        assert shown.endswith(" COP")


@given(input_usd=prices, output_usd=prices, rate=rates)
def test_numeric_fields_stay_within_half_a_millionth(
    input_usd: Decimal, output_usd: Decimal, rate: Decimal
) -> None:
    got = cop_price(input_usd, output_usd, rate, COP)
    exact = Fraction(input_usd) * Fraction(rate) / 100
    error = abs(Fraction(got.input_cop_per_10k) - exact)
    half = Fraction(1, 2 * 10**MAX_PLACES)
    # Within half a unit of the 6th place, or lifted to 0.000001 from a positive amount below it.
    assert error <= half or (0 < exact < half and got.input_cop_per_10k == Decimal("0.000001"))


@given(amount=st.decimals(min_value=Decimal(0), max_value=Decimal(10**9), places=6))
def test_display_uses_colombian_separators(amount: Decimal) -> None:
    shown = COP.format(amount)
    number = shown.removesuffix(" COP").removeprefix("< ")
    if amount >= 100:
        assert "," not in number
        assert Decimal(number.replace(".", "")) == amount.quantize(Decimal(1))
    elif amount > 0 and shown != "< 0,01 COP":
        assert "." not in number
        assert abs(Decimal(number.replace(",", ".")) - amount) <= Decimal("0.005")


def test_cops_rounding_rule_is_the_text_every_answer_carries() -> None:
    assert COP.rounding_rule == (
        "exact USD x rate (per 10K = per million / 100; typical message = 1000 input + 500 output "
        "tokens); only amounts with more than 6 decimals are rounded half-even to 6, a positive "
        "amount never becomes 0; *_display strings round half-even to whole pesos from 100 COP, "
        "else to at most 2 decimals, '< 0,01 COP' below"
    )


@pytest.mark.parametrize(
    ("amount", "shown"),
    [
        ("0", "0 XTS"),
        ("0.0004", "< 0.001 XTS"),
        ("0.0015", "0.002 XTS"),  # half-even to 3 places
        ("0.5", "0.5 XTS"),
        ("12.3456", "12.346 XTS"),
        ("999.9994", "999.999 XTS"),
        ("999.9996", "1,000 XTS"),  # rounds into whole units
        ("1000.5", "1,000 XTS"),
        ("1234567.89", "1,234,568 XTS"),
    ],
)
def test_another_rows_display(amount: str, shown: str) -> None:
    assert XTS.format(Decimal(amount)) == shown
    assert "'< 0.001 XTS' below" in XTS.rounding_rule
    assert "whole units from 1000 XTS, else to at most 3 decimals" in XTS.rounding_rule


@pytest.mark.parametrize("currency", [*CURRENCIES.values(), XTS], ids=lambda c: c.code)
def test_every_row_can_be_served(currency: Currency) -> None:
    """A row of the table (and the test's XTS) is complete: its own code, the fixed source at
    least, only sources rates.py knows, and a display of every amount that ends with the code."""
    assert CURRENCIES.get(currency.code, currency) is currency
    assert len(currency.code) == 3
    assert currency.code.isupper()
    assert RateMode.FIXED in currency.rate_sources
    assert Settings.model_fields["pricing_cop_rate_source"].annotation is RateMode
    assert {type(source) for source in currency.rate_sources} == {RateMode}
    assert currency.default_rate is None or currency.default_rate > 0
    assert currency.thousands != currency.decimal
    assert currency.places >= 0
    assert currency.whole_from > 0


@given(amount=st.decimals(min_value=Decimal(0), max_value=Decimal(10**9), places=8))
def test_every_row_never_shows_a_positive_amount_as_zero(amount: Decimal) -> None:
    for currency in (*CURRENCIES.values(), XTS):
        shown = currency.format(amount)
        assert shown.endswith(f" {currency.code}")
        assert (shown == f"0 {currency.code}") == (amount == 0), (currency.code, amount, shown)
